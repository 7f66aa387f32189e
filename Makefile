# Small task runner: `make demo` (install + run the whole graph on embedded defaults), `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint dev bench clean image

install: $(VENV)/.installed

# uv resolves and installs the same pinned set (constraints.txt) as pip in about a sixth of the time
# (18 s vs 111 s here); it is pinned too, and installed into the venv by pip.
UV_VERSION ?= 0.13.9

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(BIN)/rcm demo

# The suite (under 15 minutes on 2 cores), then the end-to-end tests marked slow (servers, live daemon,
# browser, drift world); CI runs both.
test: install
	$(BIN)/pytest -m "not slow"
	$(BIN)/pytest -m slow

lint: install
	$(BIN)/ruff check rcm_assets rcm_assets_tests benchmarks

# The UI and daemon on the CLI's instance (./.dagster_home unless DAGSTER_HOME is set).
dev: install
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} $(BIN)/python -c "from rcm_assets.platform.instance import prepare_instance; prepare_instance()"
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# One table of ratios measured in one run (benchmarks/run.py; ARGS="--year" for 365 days x 20,000 claims).
bench: install
	$(BIN)/python benchmarks/run.py $(ARGS)

# The images of compose.yaml (docs/DEPLOYMENT.md): localhost/rcm_assets:$(IMAGE_TAG) from the Dockerfile, and,
# on machines without a registry, PostgreSQL and RabbitMQ images and the Python base from Debian packages
# (podman, mmdebstrap; installed with apt-get when missing). Elsewhere: docker build -t rcm_assets .
IMAGE_TAG ?= dev
image:
	RCM_IMAGE_TAG=$(IMAGE_TAG) deploy/images/build.sh

clean:
	rm -rf $(VENV) data .dagster_home
