# The README's front door: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-search bench-claims clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "icdq needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip 2>/dev/null || true
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: install
	$(PY) -m ops.demo

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: bench-search bench-claims

bench-search: install
	$(PY) -m bench.search

bench-claims: install
	$(PY) -m bench.claims

clean:
	rm -rf $(VENV) var
