# isosweep: the two commands that matter are `make demo` and `make test`.
SWIFT ?= swift
RELEASE_BIN := .build/release/isosweep

.PHONY: all deps build demo test bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

## demo: install what is missing, build, train a handful of cells across widths and print the table.
demo: build
	$(RELEASE_BIN) demo

## test: install what is missing, build, run every test (unit and integration, real processes).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

## bench: the training step against SGEMM on the same shapes, 1 and 2 BLAS threads.
bench: build
	$(RELEASE_BIN) bench train --n 4000 --d 100 --width 1000 --threads 1
	$(RELEASE_BIN) bench train --n 4000 --d 100 --width 1000 --threads 2

clean:
	rm -rf .build
