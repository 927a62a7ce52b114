# The README's front door: `make demo` and `make test`. Everything installs into .venv.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-search bench-claims clean

install: $(STAMP)

# setup.py compiles the claim path (coding/native.py), so its sources are prerequisites too
$(STAMP): pyproject.toml setup.py coding/native.py coding/claims.py coding/claim_csv.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "icdq needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing icdq and its tools into $(VENV) ..."
	@# pip's notes about this machine's unused local package mirrors are noise, not errors
	@$(PY) -m pip install --quiet -e '.[test]' 2>&1 | { grep -vE "is ignored: it is neither|^\s*$$|BuildBackendWarning|editable_wheel|Please be careful|same name as your package|with strategy|^\s*!!|\*{10}" || true; }
	@$(PY) -c 'from coding import native; print("claim coding path:", native.describe())'
	@touch $(STAMP)

demo: install
	$(PY) -m ops.demo

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	@# the compiled modules must type-check, or the install quietly runs them as Python; search too
	$(VENV)/bin/mypy coding/claims.py coding/claim_csv.py coding/search.py coding/index.py coding/terms.py

bench: bench-search bench-claims

bench-search: install
	$(PY) -m bench.search

bench-claims: install
	$(PY) -m bench.claims

clean:
	rm -rf $(VENV) var build .mypy_cache coding/*.so coding/native.json
