PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install install-dev node-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

run: install
	$(BIN)/tether serve

lint: install-dev
	$(BIN)/ruff check tether tests bench
	$(BIN)/ruff format --check tether tests bench
	$(BIN)/mypy tether

# Node tools the tests run (Azurite), pinned by tests/node/package-lock.json; installed
# again only when that lock file or package.json changes.
NODE_DIR := tests/node
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund
	touch $@

node-tools: $(NODE_STAMP)

test: lint node-tools
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) tether-data .mypy_cache .ruff_cache .pytest_cache
