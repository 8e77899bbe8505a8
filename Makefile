# The course's two commands (see README.md):
#   make course   set everything up, then run the whole course on the embedded synthetic dataset
#   make test     set everything up, then run the tests (unit tests, papermill chapters, nbval)
# Everything is installed into .venv from pyproject.toml; nothing else is needed but Python ≥ 3.10.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

PROFILE ?= quick
DATASET ?= synthetic
OUT     ?= runs/$(PROFILE)-$(DATASET)

.PHONY: setup course test test-fast notebooks student clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[notebooks,test]"
	touch $(STAMP)

course: setup
	$(PY) -m ctutils course run --profile $(PROFILE) --dataset $(DATASET) --out $(OUT)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests -m "not slow and not notebooks"

notebooks: setup
	$(PY) -m ctutils course run --profile quick --dataset synthetic --write-back

student: setup
	$(PY) -m ctutils course student --out student

clean-runs:
	rm -rf runs student
