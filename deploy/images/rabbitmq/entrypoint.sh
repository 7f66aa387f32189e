#!/usr/bin/env bash
# The default user from the environment (as the public rabbitmq image does), then the server in the foreground.
set -euo pipefail
[ "${1:-rabbitmq-server}" = rabbitmq-server ] || exec "$@"
cat > /etc/rabbitmq/rabbitmq.conf <<CONF
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
loopback_users = none
listeners.tcp.default = 5672
CONF
exec /usr/lib/rabbitmq/bin/rabbitmq-server
