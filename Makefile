# OncoLab: `make book` builds the executed book; `make test` runs every test.
# Both create the virtual environment from requirements-lock.txt when it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.oncolab-installed
KERNEL := oncolab
export PYTHONHASHSEED := 0

.PHONY: setup book test test-fast lint student clean help
help:
	@echo "make setup   create .venv from requirements-lock.txt and register the '$(KERNEL)' kernel"
	@echo "make book    execute every chapter and build the HTML book into _build/html"
	@echo "make test    unit tests + every chapter executed with SMOKE=True + book build"
	@echo "make lint    ruff"
	@echo "make clean   remove build outputs (keeps .venv)"

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (oncolab)" >/dev/null
	@touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --builder html
	@echo "open _build/html/index.html"

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not chapter and not book"

lint: $(STAMP)
	$(VENV)/bin/ruff check oncolab tests data_scripts benchmarks tools

clean:
	rm -rf _build .pytest_cache .ruff_cache .jupyter_cache
