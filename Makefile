# The two commands of a fresh machine (Python 3.11+, Debian, root for the browser packages):
#   make serve   install facefaas in .venv and start the service on the embedded default model
#   make test    install everything the tests need (Python packages, Debian's chromium and
#                postgresql) and run every test (browser and PostgreSQL tests included)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test install install-dev lint typecheck bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[server]'

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	sh .ci/install-browser.sh
	sh .ci/install-postgres.sh

serve: install
	$(BIN)/facefaas serve

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/speed.py
