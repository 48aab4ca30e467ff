# New Visions: `make run` starts the whole stack; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test demo bench install sysdeps testdeps clean

run: install  ## the whole stack in the foreground (Ctrl-C stops it)
	$(BIN)/newvisions dev up

demo: install  ## a whole user journey; writes a voice note under ./out/
	$(BIN)/newvisions demo $(if $(SAMPLE),--sample $(SAMPLE),)

test: install testdeps  ## the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install  ## benchmarks (BENCH_QUICK=1 for the short form)
	$(BIN)/python -m bench $(if $(BENCH_QUICK),--quick,)

install: sysdeps $(STAMP)

sysdeps:
	@bash deploy/sysdeps.sh

testdeps:  ## what only the tests need (a headless browser; Node.js and npm for the contract tests)
	@bash deploy/sysdeps.sh --test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

clean:  ## remove local data and the virtualenv
	rm -rf .data $(VENV) out
