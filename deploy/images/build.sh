#!/usr/bin/env bash
# `make image`: the images of compose.yaml on a machine that cannot reach a container registry (Debian 12,
# podman; ../../docs/DEPLOYMENT.md). Bases come from Debian packages (mmdebstrap), their root file systems
# cached under RCM_IMAGE_CACHE, so only the first run on a machine pays for them:
#   localhost/rcm-postgres:15       PostgreSQL 15 with the public image's interface (images/postgres)
#   localhost/rcm-rabbitmq:3        RabbitMQ with the public image's interface (images/rabbitmq)
#   localhost/rcm_assets:$TAG       the project image (../../Dockerfile) on bookworm's Python 3.11
# Idempotent: an image that exists is kept (the project image is always rebuilt; its layers are cached).
# Tools missing are installed with apt-get (root, or sudo).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${RCM_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rcm_assets/images}"
tag="${RCM_IMAGE_TAG:-dev}"
suite=bookworm
export CONTAINERS_CONF="${CONTAINERS_CONF:-$repo/deploy/podman/containers.conf}"

need=()
for tool in podman:podman runc:runc mmdebstrap:mmdebstrap podman-compose:podman-compose newuidmap:uidmap \
            slirp4netns:slirp4netns fuse-overlayfs:fuse-overlayfs; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "build.sh: installing ${need[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Debian mirrors this machine's apt uses (deb822 `URIs:` lines), else deb.debian.org.
mirror="$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 '/debian/\?$' || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
security="$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 'debian-security' || true)"
sources=("deb ${mirror} ${suite} main" "deb ${mirror} ${suite}-updates main")
[ -n "$security" ] && sources+=("deb ${security} ${suite}-security main")

# base NAME PACKAGES: localhost/rcm-debian-NAME:bookworm from a cached mmdebstrap root file system.
base() {
  local name="$1" packages="$2" image="localhost/rcm-debian-$1:${suite}"
  podman image exists "$image" && return 0
  mkdir -p "$cache"
  local tar="$cache/${name}-${suite}-$(printf '%s' "$packages" | sha1sum | cut -c1-10).tar"
  if [ ! -s "$tar" ]; then
    echo "build.sh: mmdebstrap $name ($packages)"
    mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" "$suite" "$tar.part" "${sources[@]}"
    mv "$tar.part" "$tar"
  fi
  podman import --quiet "$tar" "$image" >/dev/null
}

build() {  # build IMAGE CONTEXT [podman build options...]
  local image="$1" context="$2"; shift 2
  podman build --quiet --network=host -v /etc/ssl/certs:/etc/ssl/certs:ro -t "$image" "$@" "$context" >/dev/null
  echo "build.sh: built $image"
}

base py python3,python3-venv,ca-certificates
base postgres postgresql-15
base rabbitmq rabbitmq-server
podman image exists localhost/rcm-postgres:15 || build localhost/rcm-postgres:15 "$repo/deploy/images/postgres"
podman image exists localhost/rcm-rabbitmq:3 || build localhost/rcm-rabbitmq:3 "$repo/deploy/images/rabbitmq"
build "localhost/rcm_assets:$tag" "$repo" --build-arg "BASE=localhost/rcm-debian-py:${suite}"
