# isosweep: the two commands that matter are `make demo` and `make test`.
SWIFT ?= swift
RELEASE_BIN := .build/release/isosweep

.PHONY: all deps build demo test lint format bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

## demo: install what is missing, build, run the quick sweep with local workers and print the table.
demo: build
	@mkdir -p out
	@rm -f out/quick.db out/quick.db-wal out/quick.db-shm
	$(RELEASE_BIN) run sweeps/quick.yaml --db out/quick.db

## test: install what is missing, build, run every test (unit and integration, real processes).
test:
	@bash scripts/install-deps.sh --test
	$(MAKE) lint
	bash scripts/fuzz-wire.sh 20
	ISOSWEEP_WARNINGS_AS_ERRORS=1 $(SWIFT) test

## lint: the toolchain's swift-format with .swift-format (120 columns), then a build of every
## target and test in which a compiler warning in the project's own code is an error
## (ISOSWEEP_WARNINGS_AS_ERRORS, Package.swift); any finding fails.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Fuzz Package.swift
	ISOSWEEP_WARNINGS_AS_ERRORS=1 $(SWIFT) build --build-tests

## format: rewrite the sources as lint wants them.
format:
	$(SWIFT) format format --in-place --recursive Sources Tests Fuzz Package.swift

## bench: the training step against SGEMM (1 and 2 BLAS threads), and the dispatch system.
bench: build
	$(RELEASE_BIN) bench train --n 4000 --d 100 --width 1000 --threads 1
	$(RELEASE_BIN) bench train --n 4000 --d 100 --width 1000 --threads 2
	$(RELEASE_BIN) bench dispatch --workers 2 --cells 20000 --log-level warning

clean:
	rm -rf .build
