# Two commands matter: `make dev` runs Atelier locally, `make test` runs every check.
# Both install what they need first (npm packages; redis-server through apt when missing).
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json
OPS_TOOLS_BIN := $(CURDIR)/.atelier/tools/bin

.PHONY: help install build proto proto-check typecheck lint test ops ops-tools dev bench migrate clean console chromium

help:
	@echo "make dev     start Postgres, Redis, the bucket, both sandboxes, the four services and the gateway"
	@echo "make test    install, check generated code, type-check, lint and run every test"
	@echo "make ops     only the operations checks (compose, Prometheus, Alertmanager, Grafana, Kubernetes)"
	@echo "make bench   run the benchmarks in bench/ and save their figures in bench/results/"
	@echo "make proto   regenerate protos/gen from protos/atelier"
	@echo "make console build the web console (console/dist, served by the gateway at /console)"

# npm ci only when the lockfile changed since the last install.
$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

install: $(NPM_STAMP)

proto: install
	npm run proto

# Generated code is current, protos pass buf lint, and nothing published on main was broken
# (buf breaking against the commit where this branch left main, so fields main gained since
# are not mistaken for fields this branch removed).
proto-check: install
	npm run --silent proto:check
	cd protos && npx buf lint
	@base=$$(git merge-base HEAD main 2>/dev/null) || { echo "buf breaking skipped: no main branch"; exit 0; }; \
	npx buf breaking protos --against ".git#ref=$$base,subdir=protos"

build: install
	npx tsc -b

typecheck: build
	npx tsc -p tsconfig.test.json

lint: install
	node infra/scripts/check-roles.mjs
	npx eslint . --max-warnings 0
	npx prettier --check . --log-level warn
	npx knip --no-progress

# The console's typed client is generated from gateway/openapi.json, then type-checked and bundled.
console: install
	npm run --silent build -w console

# The console's browser tests drive Debian's Chromium (never a browser download).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium)

# Jest writes its report (--json) so every run prints the time of each project and the ten
# slowest files, pass or fail. One project alone: `npx jest --selectProjects unit|service|e2e`.
test: install proto-check typecheck lint ops console chromium
	@mkdir -p .atelier
	@status=0; npx jest --ci --json --outputFile=.atelier/jest-results.json || status=$$?; \
	node infra/scripts/test-timings.mjs .atelier/jest-results.json; exit $$status

# Operations checks without a Docker engine or a cluster: compose, Prometheus rules and their
# tests, Alertmanager, dashboards, the Kubernetes manifests (infra/ops). Not jest: the tools are
# installed here first (docker-compose, promtool, amtool, kubectl; each only when missing).
ops-tools:
	bash infra/ops/tools.sh

ops: build ops-tools
	PATH="$(OPS_TOOLS_BIN):$$PATH" node --test infra/dist/ops/

dev: build console
	node infra/dist/dev/main.js

migrate: build
	node infra/dist/migrate/cli.js

bench: build
	node bench/run.mjs $(NAME)

clean:
	rm -rf node_modules */dist services/*/dist .atelier/test console/src/api/schema.gen.ts
