"""The production services (see services.py) as fixtures of this folder."""

from rcm_assets_tests.production.services import amqp_broker, pg_databases, s3_env, s3_server

__all__ = ["amqp_broker", "pg_databases", "s3_env", "s3_server"]
