"""`rcm serve`: the pre-submission scoring service (rcm_assets/serving) under uvicorn."""

from __future__ import annotations

import ipaddress
import os
from argparse import Namespace

from rcm_assets.cli.console import EXIT_OK, UsageError, say

TOKEN_ENV = "RCM_API_TOKEN"
LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_config(args: Namespace):
    """The service's configuration from the arguments and the environment; refuses an unsafe one."""
    from rcm_assets.lib import settings
    from rcm_assets.serving.bundle import ServeConfig

    env = settings.environment()
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and env != "demo":
        raise UsageError(f"{TOKEN_ENV} is not set: outside the demo environment (RCM_ENV=demo) the service "
                         "requires a bearer token")
    if token is None and not is_loopback(args.host):
        raise UsageError(f"{TOKEN_ENV} is not set: the service binds to {args.host} only with a bearer token "
                         f"(without one it listens on the loopback address only)")
    return ServeConfig(env=env, token=token, day=args.day.isoformat() if args.day else None,
                       reload_seconds=args.reload_seconds, request_timeout_seconds=args.request_timeout,
                       load_timeout_seconds=args.load_timeout)


def run(args: Namespace) -> int:
    config = serve_config(args)
    # MLflow calls of a remote tracking server time out instead of hanging a reload
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    # a SQLite registry is read from the reload thread only: no pooled connection outlives it in another thread
    os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    import uvicorn

    from rcm_assets.platform.resources import build_resources
    from rcm_assets.serving.app import configure_logging, create_app

    configure_logging()
    app = create_app(build_resources(config.env), config)
    say(f"rcm serve: http://{args.host}:{args.port} (docs /docs, ready /readyz, metrics /metrics)"
        + ("" if config.token else "; no bearer token (demo environment)"))
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False,
                timeout_keep_alive=30, workers=1)
    return EXIT_OK
