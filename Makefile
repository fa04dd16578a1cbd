# Two commands do all set-up on a fresh machine with Python 3.11 and pip:
#   make run    the whole stack on embedded defaults (Temporal dev server, PostgreSQL, worker, API)
#   make test   lint (ruff, mypy) and the whole test suite (without the slow fault loops)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-slow screenshots lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/kruxt dev

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its own PostgreSQL and
# Temporal dev server: most tests wait on servers and timers, so two share 2 cores well
# (about 5 minutes instead of 9). TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

# The README's two console pictures, retaken by the browser test (a plain `make test` keeps its
# screenshots with the test's artefacts and leaves docs/ as it is).
screenshots: $(STAMP)
	KRUXT_README_SCREENSHOTS=1 $(BIN)/pytest tests/test_console_browser.py

# The long fault tests (marked slow, left out of `make test`; .ci/run runs them after it):
# 20 worker kills mid-saga, and the Temporal dev server restarted under waiting approvals.
test-slow: $(STAMP)
	$(BIN)/pytest -m slow

# Every figure at its documented size (the scale bench opens 10,000 tickets: about half an
# hour on 2 cores); quick: make bench BENCH_ARGS="--tickets 1000 --pipeline 50".
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
