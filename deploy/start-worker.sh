#!/usr/bin/env bash
# Start one dagster-celery worker process for the rcm_assets code location (run as many as you need, on
# any machine with the package installed and the environment of deploy/env.example).
#   deploy/start-worker.sh [NAME]      extra Celery options after NAME, e.g. --concurrency=2
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:-rcm-$(hostname)-$$}"
shift || true
: "${DAGSTER_HOME:?DAGSTER_HOME must hold deploy/dagster.yaml}"
: "${RCM_CELERY_BROKER:?RCM_CELERY_BROKER must name the broker, e.g. pyamqp://guest:guest@127.0.0.1:5672//}"
exec dagster-celery worker start -A dagster_celery.app -y "$here/celery-worker.yaml" \
  -q "${RCM_CELERY_QUEUE:-dagster}" -n "$name" -- --concurrency="${RCM_CELERY_CONCURRENCY:-1}" "$@"
