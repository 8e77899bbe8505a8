# The course's two commands (see README.md):
#   make course   set everything up, then run the whole course on the embedded synthetic dataset
#   make test     set everything up, then run the tests (unit tests, papermill chapters, nbval)
# and for teaching and checking what learners see:
#   make lab           JupyterLab on notebooks/ with the project's kernel and settings (jupyter/)
#   make test-browser  every chapter run in JupyterLab in headless Chromium (tests/browser/README.md)
# Everything is installed into .venv from pyproject.toml; nothing else is needed but Python ≥ 3.10
# (and, for test-browser only, Debian's chromium package).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.installed-browser

PROFILE ?= quick
DATASET ?= synthetic
OUT     ?= runs/$(PROFILE)-$(DATASET)

.PHONY: setup course test test-fast test-browser lab notebooks student clean-runs

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[notebooks,test,classroom]"
	touch $(STAMP)

course: setup
	$(PY) -m ctutils course run --profile $(PROFILE) --dataset $(DATASET) --out $(OUT)

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests -m "not slow and not notebooks"

$(BROWSER_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[notebooks,test,classroom,browser]"
	touch $(BROWSER_STAMP)

# ARGS: more pytest arguments, e.g. ARGS="-k 01_data" (one chapter) or ARGS="--notebooks DIR"
test-browser: $(BROWSER_STAMP)
	$(PY) -m pytest tests/browser $(ARGS)

# The project's Jupyter settings live in jupyter/ (no announcements pop-up); LAB_ARGS: more options,
# e.g. LAB_ARGS="--no-browser --port 8890". As root (containers) JupyterLab needs --allow-root.
lab: setup
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

notebooks: setup
	$(PY) -m ctutils course run --profile quick --dataset synthetic --write-back

student: setup
	$(PY) -m ctutils course student --out student

clean-runs:
	rm -rf runs student
