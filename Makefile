PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests a change is checked against while it is written: no Ray, no browser, nothing slow.
FAST := -m "not slow and not ray and not browser"
# WORKERS=2 runs the suite in two pytest-xdist workers, each test file whole in one of them (its
# module fixtures are made once), the files in the order tests/conftest.py gives them (longest
# first), not xdist's: 20 to 35 minutes here, against 26 to 39 in one process. It stays off by
# default: on two cores, two Ray studies at once overload the machine, and the tests that wait on a
# server or a browser time out (1 green run of 4; docs/RESULTS.md, "the suite in two workers").
# Meant for a machine with more cores.
WORKERS ?= 0

.PHONY: test test-fast lint quickstart install clean

install: $(STAMP)

# pip takes torch / torchvision from this machine's local wheels (no multi-GB download); every
# other version comes from docker/constraints.txt, the file the Docker image installs with.
$(STAMP): pyproject.toml docker/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --constraint docker/constraints.txt -e '.[dev]'
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
