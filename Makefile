# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Extras (pyproject.toml): the demo runs training and the Beam job and writes plots;
# tests, lint and benchmarks need everything (`test` includes beam, dask and plots).
DEMO_EXTRAS := beam,plots
TEST_EXTRAS := test

.PHONY: install demo test lint bench bench-quick clean lock

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Installs take the versions in constraints.txt (the set the suite last passed on), so
# a new release upstream cannot turn CI red without a change here; `make lock` moves
# them to the newest releases (then run `make test`). `pip install -e .` alone takes
# the newest versions pyproject.toml allows.
CONSTRAINTS := constraints.txt

# One stamp per set of extras, redone when the packaging or the constraints change.
$(VENV)/.installed-demo: pyproject.toml setup.py $(CONSTRAINTS) | $(PY)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[$(DEMO_EXTRAS)]"
	touch $@

$(VENV)/.installed-test: pyproject.toml setup.py $(CONSTRAINTS) | $(PY)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[$(TEST_EXTRAS)]"
	touch $@

# Newest releases of everything (test and bench extras) in a fresh venv, frozen.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -e ".[$(TEST_EXTRAS),bench]"
	{ echo "# make lock: the versions make demo / make test install (pip -c)."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	rm -rf .lock-venv

install: $(VENV)/.installed-test

demo: $(VENV)/.installed-demo
	$(PY) -m logo_batch.cli.demo

# Two pytest-xdist workers, one test file each at a time (a file's fixtures are built
# once), the longest files first (tests/conftest.py): 12-13 min on 2 cores (docs/architecture.md).
test: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n 2 --dist loadfile

bench: $(VENV)/.installed-test
	$(PY) -m benchmarks.run

bench-quick: $(VENV)/.installed-test
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf $(VENV) demo_output runs *.egg-info
