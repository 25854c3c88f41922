# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Extras (pyproject.toml): the demo runs training and the Beam job and writes plots;
# tests, lint and benchmarks need everything (`test` includes beam, dask and plots).
DEMO_EXTRAS := beam,plots
TEST_EXTRAS := test

.PHONY: install demo test lint bench bench-quick clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# One stamp per set of extras, redone when the packaging changes.
$(VENV)/.installed-demo: pyproject.toml setup.py | $(PY)
	$(PY) -m pip install -q -e ".[$(DEMO_EXTRAS)]"
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py | $(PY)
	$(PY) -m pip install -q -e ".[$(TEST_EXTRAS)]"
	touch $@

install: $(VENV)/.installed-test

demo: $(VENV)/.installed-demo
	$(PY) -m logo_batch.demo

test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

bench: $(VENV)/.installed-test
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed-test
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) demo_output runs *.egg-info
