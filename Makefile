PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install install-dev clean

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

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) tether-data .mypy_cache .ruff_cache .pytest_cache
