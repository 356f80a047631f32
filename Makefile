# The two entry points of the README: `make demo` and `make test`. Everything else is set up by them.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint bench cluster-build

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check pip==25.3
	$(VENV)/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[operator,test]'
	touch $@

demo: venv
	$(VENV)/bin/s1mple run config/operations/ma_crossover.yaml

cluster-build:
	tests/cluster/build

test: venv cluster-build
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint operator/Dockerfile runner-image/Dockerfile
	$(PY) -m pytest tests

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint operator/Dockerfile runner-image/Dockerfile

bench: venv
	$(PY) benchmarks/run.py
