# The two commands a new machine needs:
#   make up     set everything up and run the platform (with demo traffic)
#   make test   set everything up and run the whole test suite
.PHONY: setup up lint test test-fast bench

setup:
	@bash infra/bootstrap.sh

up: setup
	.venv/bin/pixel up --demo

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: lint
	.venv/bin/python -m pytest $(PYTEST_ARGS)

test-fast: lint
	.venv/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	.venv/bin/python bench/collector_http.py
