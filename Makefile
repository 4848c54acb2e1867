# Two commands for a fresh clone (see README):
#   make lab    set everything up, open JupyterLab on notebooks/
#   make test   set everything up, run unit tests + strict nbval (+ browser tests)
# Course material (see README): make site, make slides (outputs in _build/).
# Both are idempotent: the virtual environment is rebuilt only when
# pyproject.toml or constraints.txt change.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where pip finds torch. Set TORCH_INDEX to PyTorch's CPU wheel index on
# Linux to avoid the multi-GB CUDA build (see README).
TORCH_INDEX ?=
PIP_TORCH_FLAGS := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX),)

# The browser libraries the site and decks serve themselves (MathJax, reveal.js), pinned in package-lock.json.
NODE_STAMP := node_modules/.installed

.PHONY: lab test unit notebooks e2e lint format execute bench site slides clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and alone, pinned, so nothing can pull another build.
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_FLAGS) -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_FLAGS) -c constraints.txt -e ".[test,lab,site]"
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

# JupyterLab refuses to run as root unless told (containers, some cloud VMs).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/

# Two pytest workers, each taking one test file (or notebook) at a time: nbval runs a notebook's
# cells in order in one kernel, and each browser test module shares one JupyterLab or one site build.
# Files go out in collection order (--no-loadscope-reorder), so the few long browser modules of
# tests/e2e start first instead of last (xdist's default sends files with the most tests first).
TEST_WORKERS ?= 2

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check mtl_teach tests benchmarks notebooks tools site
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --nbval --nbval-sanitize-with notebooks/sanitize.cfg --timeout=900 tests notebooks

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval --nbval-sanitize-with notebooks/sanitize.cfg notebooks

e2e: $(STAMP) $(NODE_STAMP)
	$(BIN)/python -m pytest -m e2e tests

# The course site, from the stored notebooks (never re-executed): _build/site/index.html.
site: $(STAMP) $(NODE_STAMP)
	$(BIN)/python tools/build_site.py

# One static reveal.js deck per notebook, opening from disk with no network: _build/slides/index.html.
slides: $(STAMP) $(NODE_STAMP)
	$(BIN)/python tools/build_slides.py

lint: $(STAMP)
	$(BIN)/ruff check mtl_teach tests benchmarks notebooks tools site
	$(BIN)/ruff format --check mtl_teach tests benchmarks tools site

format: $(STAMP)
	$(BIN)/ruff format mtl_teach tests benchmarks tools site
	$(BIN)/ruff check --fix mtl_teach tests benchmarks tools site

# Re-execute every notebook in place (after a change to the package or a notebook).
execute: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py notebooks/*.ipynb notebooks/zh-CN/*.ipynb

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) node_modules _build
