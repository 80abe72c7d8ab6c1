# Two entry points: `make run` starts the studio, `make test` runs every test.
# Both create .venv from requirements.txt on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test lint bench

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	touch $@

run: $(VENV)/.installed
	$(PY) launch.py $(ARGS)

test: $(VENV)/.installed
	bash scripts/ensure-chromium.sh
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

bench: $(VENV)/.installed
	$(PY) bench/studio.py
