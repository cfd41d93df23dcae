# robex: `make reproduce-atex` (the main job) and `make test`. Both create the virtual environment
# on first use (torch 2.14.1 / torchvision 0.29.1 and the pinned requirements).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.robex-installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv data test test-slow reproduce-atex reproduce-aggmean reproduce-smoothed reproduce-relex bench clean-cache

help:
	@echo "make reproduce-atex   every ATEX table and figure, beside the paper's numbers (results/)"
	@echo "make reproduce-aggmean every AGG-Mean table and figure (offline: on the FashionMNIST stand-in)"
	@echo "make reproduce-smoothed the smoothed-explanations quality tables and figures (offline: stand-ins)"
	@echo "make reproduce-relex    RelEx Table 1, Figs. 1, 3-6 (offline: stand-ins; hours on a CPU)"
	@echo "make test             the fast test suite (what CI runs)"
	@echo "make bench            throughput of the attack and of ATEX fine-tuning on this machine"
	@echo "make data             install FashionMNIST (Debian package dataset-fashion-mnist) if missing"

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

data:
	@if [ -f $(FMNIST) ]; then echo "FashionMNIST: $(dir $(FMNIST))"; \
	elif command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist); \
	else echo "FashionMNIST missing and no apt-get: put the four IDX files in a folder and pass dataset.root=<folder>"; exit 1; fi

TEST_WORKERS ?= 2
test: venv data
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow and not gpu"

test-slow: venv data
	$(PY) -m pytest -q -m "slow"

reproduce-atex: venv data
	$(PY) scripts/reproduce.py atex

reproduce-aggmean: venv data
	$(PY) scripts/reproduce.py aggmean

reproduce-smoothed: venv data
	$(PY) scripts/reproduce.py smoothed

reproduce-relex: venv data
	$(PY) scripts/reproduce.py relex

bench: venv data
	$(PY) scripts/bench.py

clean-cache:
	rm -rf .cache
