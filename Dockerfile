# The one image of rcm_assets: the gRPC code server, webserver, daemon, Celery workers, the MLflow server and
# `rcm` commands, chosen by its command (deploy/entrypoint.sh; docs/DEPLOYMENT.md).
#   docker build -t rcm_assets:0.1.0 .                          (public base python:3.11-slim)
#   make image                                                  (this kind of machine: base from Debian packages)
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG UV_VERSION=0.13.9
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home RCM_DATA_DIR=/var/lib/rcm

# The virtual environment and uv (outside it, so `pip freeze` in the venv is the pinned set alone), and the
# user every process runs as. Writable places: the instance home and the data folder (volumes in compose).
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --quiet --target /opt/uv "uv==${UV_VERSION}" \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/rcm rcm \
    && mkdir -p /opt/dagster/home /var/lib/rcm /var/lib/mlflow \
    && chown rcm:rcm /opt/dagster/home /var/lib/rcm /var/lib/mlflow

# Dependencies: the runtime closure of pyproject.toml at the exact versions of constraints.txt (what
# `make install` resolves, without the dev extra). Only these two files: a code change keeps this layer.
WORKDIR /opt/rcm
COPY pyproject.toml constraints.txt ./
RUN SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt /opt/uv/bin/uv pip install --no-cache --quiet --compile-bytecode \
        --python /opt/venv/bin/python -c constraints.txt -r pyproject.toml

# The code: the package without its dependencies (already there), then the deployment files.
COPY README.md setup.cfg ./
COPY rcm_assets ./rcm_assets
RUN SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt /opt/uv/bin/uv pip install --no-cache --quiet --compile-bytecode \
        --python /opt/venv/bin/python -c constraints.txt --no-deps . \
    && rm -rf build rcm_assets.egg-info
COPY deploy ./deploy
RUN cp deploy/dagster.yaml /opt/dagster/home/dagster.yaml && chmod 0755 deploy/*.sh

USER rcm
EXPOSE 3000 4000 5000
ENTRYPOINT ["/opt/rcm/deploy/entrypoint.sh"]
CMD ["code-server"]
