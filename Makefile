# sso-filter: build, demo, tests. Every target installs what it needs (scripts/setup.sh).
#   make run     demo: Envoy on http://127.0.0.1:8080 with the filter, upstream on :8081
#   make test    setup, cargo test, wasm + CLI build, end-to-end suite through the real Envoy,
#                then the edge worker (wasm-bindgen-harness/): build, its tests, the same
#                end-to-end suite through it under Node and in workerd (in parallel)
#   make lint    clippy (host, all targets; wasm32-wasip1 lib; the edge crate) and rustfmt --check
#   make bench   bench/run.sh
#   make fuzz    every cargo-fuzz target for FUZZ_SECONDS (default 60) each (fuzz/README.md)
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
VENV  := .venv
WASM  := target/wasm32-wasip1/release/sso_filter.wasm
CLI   := target/release/sso-filter
EDGE  := wasm-bindgen-harness
PYTEST_ARGS ?=

# $(call phase,NAME,COMMAND): run COMMAND, print how long it took, and remember it for the summary.
define phase
	@start=$$(date +%s); echo "==> $(1)"; \
	$(2); \
	echo "<== $(1): $$(( $$(date +%s) - start ))s" | tee -a target/phase-times.txt
endef

.PHONY: help setup setup-demo wasm cli build run demo test unit e2e lint fmt bench clean \
	edge edge-test e2e-node e2e-workerd e2e-edge fuzz fuzz-replay corpora

help:
	@sed -n '1,8p' Makefile

setup:
	scripts/setup.sh

setup-demo:
	SSO_SETUP_NO_BROWSER=1 scripts/setup.sh

wasm:
	$(CARGO) build --release --target wasm32-wasip1 --lib
	@ls -l $(WASM)

cli:
	$(CARGO) build --release

build: wasm cli

run demo: setup-demo wasm
	scripts/run-demo.sh

unit:
	$(CARGO) test

# The end-to-end suite alone (expects `make setup wasm cli edge` done: the LDAP tests drive the
# Node worker). pytest's exit 5 (no test
# collected) is a failure here.
e2e:
	@rc=0; $(VENV)/bin/python -m pytest -c tests/e2e/pytest.ini tests/e2e $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc = 5 ]; then echo "e2e: pytest collected no test" >&2; exit 1; fi; exit $$rc

# The edge worker (wasm-bindgen-harness/): the engine for wasm32-unknown-unknown + wasm-bindgen.
edge:
	$(EDGE)/build.sh

# Its own tests: api.rs natively, then the JS module with Node's test runner.
edge-test: edge
	cd $(EDGE) && $(CARGO) test
	cd $(EDGE) && npm test

# The end-to-end suite through the Node worker instead of Envoy (expects `make edge cli`).
e2e-node:
	SSO_E2E_HOST=node $(MAKE) --no-print-directory e2e

# The same suite through workerd, Cloudflare's Workers runtime (npm workerd, pinned in
# wasm-bindgen-harness/package-lock.json; expects `make setup edge cli`).
e2e-workerd:
	SSO_E2E_HOST=workerd $(MAKE) --no-print-directory e2e

# Both edge runs side by side (each mostly waits on its servers and IdPs): each writes its own
# log under target/; the closing line of each is printed, and the whole log of a run that failed.
e2e-edge:
	@mkdir -p target; pids=(); \
	for h in node workerd; do \
	  SSO_E2E_HOST=$$h $(MAKE) --no-print-directory e2e > target/e2e-$$h.log 2>&1 & pids+=($$!); \
	done; \
	rc=0; i=0; for h in node workerd; do \
	  r=0; wait $${pids[$$i]} || r=$$?; i=$$((i + 1)); \
	  if [ $$r != 0 ]; then rc=1; echo "== e2e $$h failed (exit $$r): target/e2e-$$h.log"; \
	    cat target/e2e-$$h.log; fi; \
	  echo "e2e $$h: $$(tail -n 1 target/e2e-$$h.log)"; \
	done; exit $$rc

test:
	@mkdir -p target; : > target/phase-times.txt
	$(call phase,setup,scripts/setup.sh)
	$(call phase,cargo test,$(CARGO) test)
	# Issue 11: the fuzz targets' seeds, crash reproducers and a short mutation pass on stable
	# (libFuzzer itself runs in `make fuzz`), then the public corpora and the differential
	# checks against lxml and jwcrypto (they need the venv that setup made).
	$(call phase,fuzz replay,$(MAKE) --no-print-directory fuzz-replay)
	$(call phase,corpora,$(MAKE) --no-print-directory corpora)
	$(call phase,build wasm,$(CARGO) build --release --target wasm32-wasip1 --lib)
	$(call phase,build cli,$(CARGO) build --release)
	# The edge worker is built before either end-to-end run: some suites (LDAP) drive the
	# Node worker even in the Envoy run.
	$(call phase,build edge,$(EDGE)/build.sh)
	$(call phase,edge tests,(cd $(EDGE) && $(CARGO) test && npm test))
	$(call phase,e2e,$(MAKE) --no-print-directory e2e)
	# The Node and workerd runs of the same suite, in parallel (make e2e-edge).
	$(call phase,e2e node + workerd,$(MAKE) --no-print-directory e2e-edge)
	@echo "== make test phase times"; cat target/phase-times.txt

# libFuzzer over every target (nightly + cargo-fuzz, installed by fuzz/run.sh when missing).
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# The same target functions on stable: seeds, fuzz/regressions/, FUZZ_CI_ITERS mutations each.
fuzz-replay:
	$(CARGO) test --features fuzzing --test fuzz_regressions

# Wycheproof, RFC 7520, open-redirect lists, SAML attack classes, differential checks.
corpora:
	$(CARGO) test --features fuzzing --test corpora --test differential -- --nocapture --test-threads 2 2>&1 \
		| grep -vE '^(running|$$)'

# All three run; the target fails if any of them did.
lint:
	@rc=0; \
	$(CARGO) clippy --all-targets -- -D warnings || rc=1; \
	$(CARGO) clippy --target wasm32-wasip1 --lib -- -D warnings || rc=1; \
	$(CARGO) fmt --check || { rc=1; echo "cargo fmt --check: run 'make fmt'" >&2; }; \
	(cd $(EDGE) && $(CARGO) clippy --all-targets -- -D warnings && $(CARGO) fmt --check) || rc=1; \
	exit $$rc

fmt:
	$(CARGO) fmt

bench: setup wasm
	bench/run.sh

clean:
	$(CARGO) clean
