# regauth — build, run, test.
#   make run    start a dev server (generates certs/token.key on first run)
#   make test   install test dependencies (Debian packages, as root) and run
#               unit, integration and end-to-end suites
#   make image  the OCI image localhost/regauth:dev, built offline (Containerfile)
SHELL := /bin/bash
CARGO ?= cargo
BIN := target/debug/regauth
DEV_CONFIG := examples/dev/config.yml

.PHONY: all build run test test-rust test-e2e deps lint fmt check clean bench fuzz soak image

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

# The OCI image (Containerfile, FROM scratch): the release binary, the shared
# libraries it links, the host's CA certificates and a minimal /etc, staged in
# target/image by image/build.sh and built by podman with no network and no
# base image. Tagged localhost/regauth:dev and localhost/regauth:<version>;
# prints the image's size. IMAGE_TAGS="--tag NAME ..." to name it otherwise.
IMAGE_TAGS ?=
image:
	$(CARGO) build --release --locked --bin regauth
	image/build.sh --bin target/release/regauth $(IMAGE_TAGS)

# Fuzz every parser for FUZZ_SECONDS each (cargo-fuzz on the stable
# toolchain, see fuzz/run.sh); the minimized corpus is in fuzz/corpus/.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# Mixed load on loopback for SOAK_SECS while LDAP restarts and the ACL
# reloads; prints the soak report (needs slapd: `make deps`).
SOAK_SECS ?= 150
soak:
	SOAK_SECS=$(SOAK_SECS) $(CARGO) test --locked --test integration soak:: -- --ignored --nocapture

# Benchmarks (BENCHMARKS.md): criterion micro-benchmarks, then the wrk load
# benchmark against the baseline server, then one PASS/FAIL line per
# item computed from both (fails if any item fails).
# Installs wrk, curl and slapd (for the LDAP case) with apt-get when missing
# and run as root.
bench:
	@missing=""; command -v wrk >/dev/null || missing="wrk"; \
	  command -v curl >/dev/null || missing="$$missing curl"; \
	  [ -x /usr/sbin/slapd ] || missing="$$missing slapd ldap-utils"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	    else \
	      echo "make bench needs:$$missing; install with: sudo apt-get install$$missing" >&2; exit 1; \
	    fi; \
	  fi
	$(CARGO) build --release --locked --bin regauth --example baseline
	@stamp=$$(mktemp) && trap 'rm -f "$$stamp"' EXIT && \
	  echo "$(CARGO) bench --locked --bench micro" && $(CARGO) bench --locked --bench micro && \
	  echo "benches/load.sh" && BENCH_MICRO_SINCE="$$stamp" benches/load.sh
