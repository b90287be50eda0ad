PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests a change is checked against while it is written: no Ray, no browser, nothing slow.
FAST := -m "not slow and not ray and not browser"
# The suite runs in two pytest-xdist workers, each test file whole in one of them (its module
# fixtures are made once), the files in the order tests/conftest.py gives them (longest first), not
# xdist's. The tests wait on studies, servers and browsers more than they compute; with one Ray per
# worker shared by the studies that need no Ray of their own (tests/conftest.py), the whole suite
# takes about 12 min in two workers on a 2-core machine (docs/RESULTS.md: 719.17 s at dc77549,
# 2026-12-06), against 24 min in one process before its tiny trials trained the tiny CNN (1461.90 s;
# a third worker was slower then). WORKERS=0 runs it in one process.
WORKERS ?= 2

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
