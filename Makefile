# Two commands matter: `make dev` runs Atelier locally, `make test` runs every check.
# Both install what they need first (npm packages; redis-server through apt when missing).
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help install build proto proto-check typecheck lint test dev bench migrate clean

help:
	@echo "make dev     start Postgres, Redis, the bucket, both sandboxes, the four services and the gateway"
	@echo "make test    install, check generated code, type-check, lint and run every test"
	@echo "make bench   run the benchmarks in bench/ and save their figures in bench/results/"
	@echo "make proto   regenerate protos/gen from protos/atelier"

# npm ci only when the lockfile changed since the last install.
$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NPM_STAMP)

install: $(NPM_STAMP)

proto: install
	npm run proto

proto-check: install
	npm run --silent proto:check

build: install
	npx tsc -b

typecheck: build
	npx tsc -p tsconfig.test.json

lint: install
	npx eslint . --max-warnings 0
	npx prettier --check . --log-level warn

test: install proto-check typecheck lint
	npx jest --ci

dev: build
	node infra/dist/dev/main.js

migrate: build
	node infra/dist/migrate/cli.js

bench: build
	node bench/run.mjs $(NAME)

clean:
	rm -rf node_modules */dist services/*/dist .atelier/test
