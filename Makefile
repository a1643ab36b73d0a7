# OncoLab: `make book` builds the executed book; `make test` runs every test.
# Both create the virtual environment from requirements-lock.txt when it is missing or stale.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.oncolab-installed
KERNEL := oncolab
export PYTHONHASHSEED := 0

.PHONY: setup book test test-fast browser browser-deps lint student student-book clean help
help:
	@echo "make setup   create .venv from requirements-lock.txt and register the '$(KERNEL)' kernel"
	@echo "make book    execute every chapter and build the HTML book into _build/html"
	@echo "make test    unit tests + every chapter executed with SMOKE=True + book build"
	@echo "make browser open the built book (make book) in headless Chromium and check every page"
	@echo "make student write the student notebooks (chapters and assignments: stubs + checks) to student/"
	@echo "             and the assignments' autograders and reference solutions to autograder/"
	@echo "make student-book  build the student edition of the book (no solutions) into _build/student-book"
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

# Chromium (Debian's package) for the browser check; installed when we are root with apt-get.
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (Debian) for the browser check"; \
	    { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "note: installing chromium failed; the browser check will be skipped"; \
	  else echo "note: /usr/bin/chromium not found; the browser check will be skipped (apt-get install chromium)"; fi; \
	fi

# The tests build the book from the chapters they executed (SMOKE) into _build/test-book and
# check that build in the browser; `make browser` checks the full `make book` build instead.
test: $(STAMP) browser-deps
	ONCOLAB_HTML=$(CURDIR)/_build/test-book/_build/html $(PY) -m pytest

browser: $(STAMP) browser-deps
	ONCOLAB_HTML=$(CURDIR)/_build/html $(PY) -m pytest tests/test_browser.py

# Student editions. student/ is what students get (chapters and assignments, no answer);
# autograder/ is the instructor's (hidden tests, reference solutions): never hand it out.
student: $(STAMP)
	$(PY) tools/chapters.py student student/
	$(PY) assignments/coursework.py build --student student/assignments --autograder autograder

# The book without solutions: chapters from `make book`'s cache (or the tests' _build/smoke) keep
# their outputs; a chapter found in neither is executed.
student-book: $(STAMP)
	$(PY) tools/chapters.py student-book _build/student-book/src --cache _build/.jupyter_cache --executed _build/smoke
	$(VENV)/bin/jupyter-book build _build/student-book/src --path-output _build/student-book --builder html
	@echo "open _build/student-book/_build/html/index.html"

test-fast: $(STAMP)
	$(PY) -m pytest -m "not chapter and not book"

lint: $(STAMP)
	$(VENV)/bin/ruff check oncolab tests data_scripts benchmarks tools

clean:
	rm -rf _build .pytest_cache .ruff_cache .jupyter_cache
