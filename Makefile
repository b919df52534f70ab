# tvote: the two quick-start commands are `make demo` and `make test`.
# Both create the virtual environment at .venv/ (repository root) and install tvote with its extras.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: all venv demo test test-fast lint bench vectors clean

all: test

# The protocol's group (ristretto255) is the system libsodium >= 1.0.18, used through pysodium.
LIBSODIUM_HINT := tvote needs the system libsodium >= 1.0.18 (ristretto255). Install it first: Debian/Ubuntu \
  'sudo apt-get install libsodium23', Fedora/RHEL 'sudo dnf install libsodium', Alpine 'apk add libsodium', \
  macOS 'brew install libsodium'.

$(STAMP): pyproject.toml
	@$(PYTHON) -c "import ctypes, ctypes.util, sys; n = ctypes.util.find_library('sodium'); \
	  sys.exit(0 if n and hasattr(ctypes.CDLL(n), 'crypto_core_ristretto255_add') else 1)" \
	  || { echo "make: $(LIBSODIUM_HINT)" >&2; exit 1; }
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
