PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests a change is checked against while it is written: no Ray, no browser, nothing slow.
FAST := -m "not slow and not ray and not browser"
# The suite runs in three pytest-xdist workers, each test file whole in one of them (its module
# fixtures are made once), the files in the order tests/conftest.py gives them (longest first), not
# xdist's. With one Ray per worker shared by the studies that need no Ray of their own
# (tests/conftest.py), two workers left the 2 cores about a tenth idle (studies, servers and
# browsers waited); a third fills it: on a 2-core machine 571.42 s in three workers against 611.98 s
# in two at the same code (f14d890; docs/RESULTS.md, 2026-12-07), 24 min in one process before its
# tiny trials trained the tiny CNN. WORKERS=2 runs it as before, WORKERS=0 in one process.
WORKERS ?= 3

.PHONY: test test-fast lint quickstart install clean

install: $(STAMP)

# pip takes torch / torchvision from this machine's local wheels (no multi-GB download); every
# other version comes from docker/constraints.txt, the file the Docker image installs with.
$(STAMP): pyproject.toml docker/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --constraint docker/constraints.txt -e '.[dev,cluster]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile --no-loadscope-reorder

test-fast: lint
	$(BIN)/python -m pytest -q $(FAST)

quickstart: $(STAMP)
	$(BIN)/smcl-tune run studies/quickstart.yaml

clean:
	rm -rf $(VENV) .pytest_cache
