#!/usr/bin/env bash
# The MLflow tracking server: PostgreSQL backend store, artifacts proxied to the object store.
#   MLFLOW_BACKEND_URI=postgresql://mlflow:...@db:5432/mlflow MLFLOW_ARTIFACTS_DESTINATION=s3://rcm-mlflow/artifacts \
#   [MLFLOW_S3_ENDPOINT_URL=http://minio:9000] deploy/start-mlflow.sh [--host 0.0.0.0 --port 5000]
set -euo pipefail
: "${MLFLOW_BACKEND_URI:?MLFLOW_BACKEND_URI must be a database URL (postgresql://...)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?MLFLOW_ARTIFACTS_DESTINATION must be an object store URL (s3://...)}"
# The pipeline uses tracking and the model registry only: MLflow's job runner (GenAI jobs, seven huey consumer
# processes) stays off unless asked for.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
# The backend URI holds the database password: passed in the environment, not on the command line (ps).
export MLFLOW_BACKEND_STORE_URI="$MLFLOW_BACKEND_URI"
exec mlflow server --serve-artifacts \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" --workers "${MLFLOW_WORKERS:-1}" "$@"
