# tvote: the two quick-start commands are `make demo` and `make test`.
# Both create the virtual environment at .venv/ (repository root) and install tvote with its extras, from the
# hash-pinned lock file requirements/server.txt (CPython 3.11, Linux x86_64). `make locks` rewrites the locks
# from pyproject.toml; `make check-locks` fails when a lock is out of date with it.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out

# The locks: the server install (every extra that `make` installs) and the auditor install (the core
# dependencies alone: crypto/, ledger/'s record format, verifier/). tools.txt locks pip-tools itself, which runs
# in its own environment (.venv-tools/) so that it never changes the versions in .venv/.
SERVER_LOCK  := requirements/server.txt
AUDITOR_LOCK := requirements/auditor.txt
TOOLS_LOCK   := requirements/tools.txt
SERVER_EXTRAS := server pdf cluster kiosk dev fast
AUDITOR_VENV  := .venv-auditor
AUDITOR_STAMP := $(AUDITOR_VENV)/.installed
TOOLS_VENV    := .venv-tools
TOOLS_STAMP   := $(TOOLS_VENV)/.installed
SBOM_DIR      := sbom
# --all-build-deps pins the build backend (setuptools, wheel) too, so that `pip install --no-build-isolation`
# of tvote itself fetches nothing unpinned.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND='make locks' $(TOOLS_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
  --no-emit-index-url --no-emit-find-links --newline lf
COMPILE_SERVER  = $(PIP_COMPILE) --all-build-deps $(addprefix --extra ,$(SERVER_EXTRAS)) --output-file
COMPILE_AUDITOR = $(PIP_COMPILE) --all-build-deps --output-file
COMPILE_TOOLS   = $(PIP_COMPILE) --output-file

.PHONY: all venv native demo test test-fast lint bench bench-million vectors web clean locks check-locks sbom auditor check-auditor

all: test

# The protocol's group (ristretto255) is the system libsodium >= 1.0.18, used through pysodium.
LIBSODIUM_HINT := tvote needs the system libsodium >= 1.0.18 (ristretto255). Install it first: Debian/Ubuntu \
  'sudo apt-get install libsodium23', Fedora/RHEL 'sudo dnf install libsodium', Alpine 'apk add libsodium', \
  macOS 'brew install libsodium'.
CHECK_LIBSODIUM = @$(PYTHON) -c "import ctypes, ctypes.util, sys; n = ctypes.util.find_library('sodium'); \
	  sys.exit(0 if n and hasattr(ctypes.CDLL(n), 'crypto_core_ristretto255_add') else 1)" \
	  || { echo "make: $(LIBSODIUM_HINT)" >&2; exit 1; }
# The locks are resolved for CPython 3.11 on Linux x86_64; another interpreter could need other packages.
CHECK_PYTHON = @$(PYTHON) -c "import platform, sys; sys.exit(0 if sys.version_info[:2] == (3, 11) \
	  and platform.python_implementation() == 'CPython' and sys.platform == 'linux' \
	  and platform.machine() == 'x86_64' else 1)" \
	  || { echo "make: the lock files in requirements/ are for CPython 3.11 on Linux x86_64;" \
	  "$(PYTHON) is not (set PYTHON=python3.11)" >&2; exit 1; }

$(STAMP): pyproject.toml $(SERVER_LOCK)
	$(CHECK_LIBSODIUM)
	$(CHECK_PYTHON)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(SERVER_LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@touch $(STAMP)

# The native engine (native/, README "The fast engine"): a Rust extension module (PyO3, built by maturin from
# the lock's `fast` extra) that the verifier uses when it is installed. `make venv` and `make test` build it
# into .venv/ when `cargo` is on the PATH, and fall back to the reference engine without it; `make native`
# requires it. `make test` also runs its Rust tests (`cargo test`).
CARGO ?= cargo
HAVE_CARGO := $(shell command -v $(CARGO) >/dev/null 2>&1 && echo yes)
NATIVE_STAMP := $(VENV)/.native-installed
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock native/pyproject.toml native/tvote_native.pyi $(wildcard native/src/*.rs)
NATIVE_IF_CARGO := $(if $(HAVE_CARGO),$(NATIVE_STAMP))

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	@command -v $(CARGO) >/dev/null 2>&1 || { echo "make: the native engine needs a Rust toolchain" \
	  "(cargo; https://rustup.rs or 'apt-get install cargo'); without it tvote uses the reference engine" >&2; exit 1; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pip install --quiet --no-deps --no-build-isolation ./native
	@touch $(NATIVE_STAMP)

native: $(NATIVE_STAMP)

venv: $(STAMP) $(NATIVE_IF_CARGO)

demo: $(STAMP)
	$(VENV)/bin/tvote demo --out $(DEMO_OUT)
	$(VENV)/bin/tvote-verify $(DEMO_OUT)/record --pins $(DEMO_OUT)/pins.json

# --durations: the slowest tests are listed at the end of every run (CI's log too), so the suite's time can be
# watched (the guide: well under 20 minutes on CI's 2 cores).
test: $(STAMP) $(NATIVE_IF_CARGO)
	$(if $(HAVE_CARGO),$(CARGO) test --quiet --locked --manifest-path native/Cargo.toml)
	$(PY) -m pytest -n 2 --dist loadgroup -q --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow"

# What `make lint` checks: ruff (lint and format) on every package, the tools, the benchmarks and the tests;
# mypy --strict on all of them but the tests. pyproject.toml's [tool.mypy] files lists the same packages (a
# bare `mypy` checks them) and the README says so; tests/system/test_tooling.py holds the three together.
LINT_PACKAGES := crypto ledger verifier voting kiosk tools bench

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PACKAGES) tests
	$(VENV)/bin/ruff format --check $(LINT_PACKAGES) tests
	$(VENV)/bin/mypy --strict

bench: $(STAMP)
	$(PY) bench/run_all.py

# A million ballots end to end (docs/benchmarks.md, section "million"): hours on 2 cores (the encryption alone
# is about an hour of CPU); resumable, its cast ballots cached under $(MILLION_CACHE). MILLION_N to choose.
MILLION_N     ?= 1000000
MILLION_CACHE ?= /var/tmp
bench-million: $(STAMP)
	nice -n 10 $(PY) bench/bench_million.py --n $(MILLION_N) --memory-n 20000 --jobs 2 \
	  --cache $(MILLION_CACHE) --write-docs

vectors: $(STAMP)
	$(PY) tools/gen_vectors.py
	$(PY) tools/gen_threshold_vectors.py

# The booth's JavaScript (web/README.md): install web/'s locked npm dependencies and rebuild voting/web/ (the
# built assets, committed as package data so that installing tvote needs no Node; tests/system/test_web_build.py
# fails when they differ from a fresh build).
web:
	cd web && npm ci --no-audit --no-fund && node build.mjs

clean:
	rm -rf native/target
	rm -rf $(VENV) $(AUDITOR_VENV) $(TOOLS_VENV) $(SBOM_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(DEMO_OUT) *.egg-info

# -- supply chain ---------------------------------------------------------------------------------------------

$(TOOLS_STAMP): $(TOOLS_LOCK)
	$(CHECK_PYTHON)
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --require-hashes -r $(TOOLS_LOCK)
	@touch $(TOOLS_STAMP)

# Rewrites the three locks from pyproject.toml and requirements/tools.in. Pins already in a lock are kept;
# to move one package: `make locks UPGRADE='--upgrade-package NAME'`; everything: `make locks UPGRADE=--upgrade`.
locks: $(TOOLS_STAMP)
	$(COMPILE_TOOLS) $(TOOLS_LOCK) $(UPGRADE) requirements/tools.in
	$(COMPILE_SERVER) $(SERVER_LOCK) $(UPGRADE) pyproject.toml
	$(COMPILE_AUDITOR) $(AUDITOR_LOCK) $(UPGRADE) pyproject.toml

# Resolves each lock again from a copy of itself (so its pins are kept) and fails if anything differs: a
# requirement added to or removed from pyproject.toml, or a changed bound, that `make locks` was not run for.
check-locks: $(TOOLS_STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && status=0 && \
	for lock in tools server auditor; do cp requirements/$$lock.txt "$$tmp/$$lock.txt"; done && \
	$(COMPILE_TOOLS) "$$tmp/tools.txt" requirements/tools.in && \
	$(COMPILE_SERVER) "$$tmp/server.txt" pyproject.toml && \
	$(COMPILE_AUDITOR) "$$tmp/auditor.txt" pyproject.toml && \
	for lock in tools server auditor; do \
	  diff -u requirements/$$lock.txt "$$tmp/$$lock.txt" || { status=1; \
	    echo "make: requirements/$$lock.txt is out of date with its sources; run 'make locks'" >&2; }; \
	done; exit $$status

# The auditor's install in its own environment: the core dependencies from the auditor lock and tvote itself
# (not editable), nothing of the server.
$(AUDITOR_STAMP): pyproject.toml $(AUDITOR_LOCK)
	$(CHECK_LIBSODIUM)
	$(CHECK_PYTHON)
	@test -x $(AUDITOR_VENV)/bin/python || $(PYTHON) -m venv $(AUDITOR_VENV)
	$(AUDITOR_VENV)/bin/python -m pip install --quiet --require-hashes -r $(AUDITOR_LOCK)
	$(AUDITOR_VENV)/bin/python -m pip install --quiet --no-deps --no-build-isolation .
	$(AUDITOR_VENV)/bin/python -m pip check
	@touch $(AUDITOR_STAMP)

auditor: $(AUDITOR_STAMP)

# The auditor's install re-checks the demo's record, the result-PDF signature included.
check-auditor: $(AUDITOR_STAMP) demo
	@$(AUDITOR_VENV)/bin/python -c "import importlib.util as u, sys; \
	  bad = [m for m in ('fastapi', 'sqlmodel', 'sqlalchemy', 'uvicorn') if u.find_spec(m)]; \
	  sys.exit('make: the auditor install holds server packages: ' + ', '.join(bad) if bad else 0)"
	cd /tmp && $(CURDIR)/$(AUDITOR_VENV)/bin/tvote-verify $(abspath $(DEMO_OUT))/record \
	  --pins $(abspath $(DEMO_OUT))/pins.json

# CycloneDX 1.6 JSON software bills of materials (see README, "Supply chain"):
#   sbom/server.cdx.json   what `make` installed into .venv/ (versions, licenses, the dependency graph)
#   sbom/auditor.cdx.json  the auditor lock (versions and the sha256 of every file pip may install)
# cyclonedx-py validates each against the CycloneDX schema as it writes it (a minute or two: the schema's URL
# format check is slow); SBOM_VALIDATE=--no-validate skips that.
SBOM_VALIDATE ?= --validate
SBOM_FLAGS = --pyproject pyproject.toml --mc-type application --sv 1.6 --output-reproducible --of JSON $(SBOM_VALIDATE)
sbom: $(STAMP)
	@mkdir -p $(SBOM_DIR)
	$(VENV)/bin/cyclonedx-py environment $(SBOM_FLAGS) --output-file $(SBOM_DIR)/server.cdx.json $(PY)
	$(VENV)/bin/cyclonedx-py requirements $(SBOM_FLAGS) --output-file $(SBOM_DIR)/auditor.cdx.json $(AUDITOR_LOCK)
