# The two entry points of the README: `make demo` and `make test`. Everything else is set up by them.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint bench cluster-build system images

venv: $(STAMP)

$(STAMP): pyproject.toml runner-image/pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check pip==25.3
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ./runner-image -e '.[operator,test]'
	touch $@

# The embedded default: one backtest, a 640-run sweep and a variant race, on the shipped sample data.
# Results land in ./runs/<name>/; run it again and the sweep resumes (nothing is run twice).
demo: venv
	$(VENV)/bin/s1mple run config/operations/ma_crossover.yaml
	$(VENV)/bin/s1mple optimize config/optimizations/ma_crossover_grid.yaml
	$(VENV)/bin/s1mple variant-test config/variants/ma_crossover_variants.yaml

cluster-build:
	tests/cluster/build

# Debian packages the tests use (headless Chromium, Lua 5.1, mmdebstrap, buildah, bubblewrap); idempotent.
system:
	tests/system/install

# s1mple-operator and s1mple-runner from their Dockerfiles: buildah on a Debian base made by mmdebstrap,
# no daemon, no registry; OCI archives cached by content under ~/.cache/s1mple/images (instant when built).
images: system
	tests/cluster/images

test: venv system cluster-build images lint
	$(PY) -m pytest tests

# ruff, the layers (import-linter: engine <- meta <- executors <- kube <- cli, contracts in
# pyproject.toml), the types (mypy over operator/ and runner-image/) and the Dockerfiles.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint operator/Dockerfile runner-image/Dockerfile

# Speed goals are shown by these scripts (they print numbers; none of them is a test).  The `bench` extra
# adds the peers benchmarks/meta.py runs beside s1mple (vectorbt: large, so not part of `make venv`).
bench: venv cluster-build
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ./runner-image -e '.[operator,test,bench]'
	$(PY) benchmarks/engine.py
	$(PY) benchmarks/meta.py
	$(PY) benchmarks/operator.py
	$(PY) benchmarks/report.py
