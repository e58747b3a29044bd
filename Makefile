# Two commands do everything on a fresh clone: `make report` and `make test`.
# Each creates the virtual environment, installs sslnb into it and registers
# the Jupyter kernel that papermill uses, the first time it is needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sslnb-installed
PYTEST_ARGS ?=

.PHONY: help venv test bench clean-venv

help:
	@echo "make test     - create .venv if needed, install sslnb, run the test suite"
	@echo "make bench    - CPU benchmarks (augmentation, training loop overhead)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[report,test]'
	$(PY) -m ipykernel install --sys-prefix --name sslnb --display-name "Python (sslnb)" >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/augment_throughput.py
	$(PY) bench/loop_overhead.py

clean-venv:
	rm -rf $(VENV)
