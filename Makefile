# singer-rs: Singer taps and targets in Rust.
#
# One cargo profile (release) serves tests, demo and benches, so the bundled DuckDB C++ is
# compiled once per machine; the target directory lives outside the clone so rebuilds are
# incremental across clones and CI runs.

SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/singer-rs/target
CARGO ?= cargo
BIN := $(CARGO_TARGET_DIR)/release
export BIN
NEXTEST := $(shell $(CARGO) nextest --version >/dev/null 2>&1 && echo yes)

.PHONY: build test lint unit demo bench conformance soak fuzz clean-demo

build:
	$(CARGO) build --release --workspace --bins

## test: formatting, clippy (warnings are errors), every unit, integration and doc test.
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

unit: build
ifeq ($(NEXTEST),yes)
	$(CARGO) nextest run --release --workspace --no-fail-fast
else
	$(CARGO) test --release --workspace --no-fail-fast
endif
	$(CARGO) test --release --workspace --doc

## demo: the Jira mock into a DuckDB file, twice (full, then incremental), with queries.
demo: build
	scripts/demo.sh

## conformance: every fixture through any Singer target. TARGET=path/to/binary
conformance: build
	scripts/conformance.sh $(TARGET)

## bench: speed and memory against the Python target and DuckDB's own loader.
bench: build
	scripts/bench.sh

## soak: the long crash-consistency mode.
soak: build
	SOAK=1 $(CARGO) nextest run --release --workspace -E 'binary(crash)' --no-capture

## fuzz: each cargo-fuzz target for FUZZ_SECONDS (default 30).
fuzz:
	scripts/fuzz.sh

clean-demo:
	rm -rf .demo
