.PHONY: setup test lint bench

setup:  ## create the environment and run the demo on the shipped models
	bash scripts/setup.sh

test:  ## lint + the whole test suite (needs `make setup` first)
	.venv/bin/ruff check .
	.venv/bin/python -m pytest -q

bench:
	.venv/bin/python -m vsshiftnet.bench
