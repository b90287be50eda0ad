PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test quickstart install clean

install: $(STAMP)

# pip takes torch / torchvision from this machine's local wheels (no multi-GB download).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

quickstart: $(STAMP)
	$(BIN)/smcl-tune run studies/quickstart.yaml

clean:
	rm -rf $(VENV) smcl-runs .pytest_cache
