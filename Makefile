# tvote: the two quick-start commands are `make demo` and `make test`.
# Both create the virtual environment at .venv/ (repository root) and install tvote with its extras.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: all venv demo test test-fast lint bench vectors clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[server,pdf,cluster,kiosk,dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tvote demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check crypto ledger voting verifier kiosk tests tools bench
	$(VENV)/bin/mypy --strict crypto ledger verifier

bench: $(STAMP)
	$(PY) bench/run_all.py

vectors: $(STAMP)
	$(PY) tools/gen_vectors.py
	$(PY) tools/gen_threshold_vectors.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(DEMO_OUT) *.egg-info
