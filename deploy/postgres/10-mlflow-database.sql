-- The MLflow server's backend store, beside the Dagster instance's database (POSTGRES_DB) on the same server.
CREATE DATABASE mlflow;
