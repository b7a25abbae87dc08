# The two commands of a fresh machine (Python 3.11+, Debian, root for the browser packages):
#   make serve   install facefaas in .venv and start the service on the embedded default model
#   make test    install everything the tests need (Python packages, Debian's chromium and
#                postgresql, redis-server) and run every test (browser, PostgreSQL, Redis and
#                Ray tests included)
#
# Installs are remembered by stamp files in .venv: they run again only when pyproject.toml
# changes (the install is editable, so edits under src/ need none). `make clean-venv` forgets all.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: serve test install install-dev lint typecheck bench clean-venv

$(BIN)/python:
	@echo "creating the virtual environment $(VENV)..."
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

# $(call pip-install,EXTRAS,WHAT): an editable install of facefaas with EXTRAS, saying so and timing it.
define pip-install
	@echo "installing $(2) into $(VENV) ($(if $(wildcard $@),pyproject.toml changed,first run), $(3))..."
	@start=$$(date +%s); $(BIN)/python -m pip install --quiet -e '.[$(1)]' && \
		echo "installed in $$(( $$(date +%s) - start )) s"
	@touch $@
endef

$(VENV)/.installed-server: pyproject.toml | $(BIN)/python
	$(call pip-install,server,facefaas,about a minute)

# The dev extra includes the server's, so it also stands for the server install.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(call pip-install,dev$(comma)postgres,facefaas and the test tools,a few minutes)
	@touch $(VENV)/.installed-server

comma := ,

install: $(VENV)/.installed-server

install-dev: $(VENV)/.installed-dev
	@sh .ci/install-browser.sh
	@sh .ci/install-postgres.sh
	@sh .ci/install-redis.sh

serve: install
	@echo "starting facefaas serve (Ctrl+C stops it)..."
	@$(BIN)/facefaas serve

test: install-dev
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: install-dev
	$(BIN)/python benchmarks/speed.py

clean-venv:
	rm -rf $(VENV)
