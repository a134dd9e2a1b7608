# regauth — build, run, test.
#   make run    start a dev server (generates certs/token.key on first run)
#   make test   install test dependencies (Debian packages, as root) and run
#               unit, integration and end-to-end suites
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/regauth
DEV_CONFIG := examples/dev/config.yml

.PHONY: all build run test test-rust test-e2e deps lint fmt check clean

all: build

build:
	$(CARGO) build --locked

certs/token.key:
	$(CARGO) run --locked --quiet -- keygen --out certs --alg ES256

run: build certs/token.key
	@echo
	@echo "regauth dev server on http://127.0.0.1:5001/auth (users admin/admin, dev/dev, ci/ci; anonymous allowed)"
	@echo "Point a registry at it with:"
	@echo
	@$(BIN) registry-config --config $(DEV_CONFIG) --service registry.local
	@echo
	$(BIN) serve --config $(DEV_CONFIG)

deps:
	tests/e2e/deps.sh

test: deps test-rust test-e2e

test-rust:
	$(CARGO) test --locked --all-targets

test-e2e: build
	tests/e2e/run.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

check: build certs/token.key
	$(BIN) check --config $(DEV_CONFIG)

clean:
	$(CARGO) clean
