# Two entry points: `make run` starts the studio, `make test` runs every test.
# Both create .venv from requirements.txt on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test bench

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

run: $(VENV)/.installed
	$(PY) launch.py $(ARGS)

test: $(VENV)/.installed
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest -q $(ARGS)

bench: $(VENV)/.installed
	$(PY) bench/studio.py
