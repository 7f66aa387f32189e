#!/usr/bin/env bash
# The image's entry point: the first argument chooses the process (docs/DEPLOYMENT.md), anything else runs
# as given (`rcm extract --date ...`, `dagster ...`, `bash`).
#   code-server | webserver | daemon | worker [NAME] | mlflow | <command...>
# RCM_WAIT_FOR="host:port ..." makes the process wait (up to RCM_WAIT_SECONDS, default 180) until each
# address accepts connections: compose's depends_on conditions express the order, and this keeps it on
# engines that only order the starts (podman-compose 1.0).
set -euo pipefail
cd /opt/rcm

wait_for() {
  [ -n "${RCM_WAIT_FOR:-}" ] || return 0
  python - "${RCM_WAIT_SECONDS:-180}" ${RCM_WAIT_FOR} <<'PY'
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
for address in sys.argv[2:]:
    host, port = address.rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                sys.exit(f"entrypoint: {address} not reachable after {sys.argv[1]} s ({exc})")
            time.sleep(1)
PY
}

workspace=/opt/rcm/deploy/workspace-grpc.yaml
grpc_port="${DAGSTER_GRPC_PORT:-4000}"
case "${1:-code-server}" in
  code-server)
    shift || true
    wait_for
    # The instance's tables are created here, in one process, before the webserver and daemon start
    # (they wait for this server): two processes creating them at once race on the schema version.
    python -c "import dagster as dg; dg.DagsterInstance.get().dispose()"
    exec dagster api grpc -m rcm_assets.definitions -h 0.0.0.0 -p "$grpc_port" "$@" ;;
  webserver)
    shift; wait_for
    exec dagster-webserver -h 0.0.0.0 -p "${DAGSTER_WEBSERVER_PORT:-3000}" -w "$workspace" "$@" ;;
  daemon)
    shift; wait_for
    exec dagster-daemon run -w "$workspace" "$@" ;;
  worker)
    shift; wait_for
    exec /opt/rcm/deploy/start-worker.sh "${1:-rcm-$(hostname)}" "${@:2}" ;;
  mlflow)
    shift; wait_for
    exec /opt/rcm/deploy/start-mlflow.sh --host 0.0.0.0 --port "${MLFLOW_PORT:-5000}" "$@" ;;
  *)
    wait_for
    exec "$@" ;;
esac
