# Two commands do everything on a fresh clone: `make report` and `make test`.
# Each creates the virtual environment, installs sslnb into it and registers
# the Jupyter kernel that papermill uses, the first time it is needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sslnb-installed
PYTEST_ARGS ?=
REPORT ?= demo
FORCE  ?=
DATA   ?=

.PHONY: help venv test test-all report render bench clean-venv browser

help:
	@echo "make report   - run the study (params/report/\$$(REPORT).yaml) and render report/report.html"
	@echo "               REPORT=<name> picks another report, FORCE=1 reruns everything,"
	@echo "               DATA=/path sets data.root (e.g. REPORT=imagenet100 DATA=/kaggle/input/imagenet100)"
	@echo "make render   - re-render report \$$(REPORT) from its committed logs: no training, no checkpoints"
	@echo "make test     - create .venv if needed, install sslnb, run the test suite (minutes)"
	@echo "make test-all - the same with the slow tests too (learning, torchrun, kill-and-resume): what CI runs"
	@echo "make bench    - benchmarks into logs/bench/ (GPU: bench/gpu_check.py; CPU: bench/*.py + step bench)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[report,test]'
	$(PY) -m ipykernel install --sys-prefix --name sslnb --display-name "Python (sslnb)" >/dev/null
	touch $(STAMP)

# Headless Chromium prints the PDF and opens the report in the tests; Debian's package, installed
# when missing and we are root (CI, containers), else skipped with a message.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "note: chromium not installed: no PDF, browser test skipped"; }

report: $(STAMP) browser
	$(PY) -m sslnb report --params params/report/$(REPORT).yaml $(if $(FORCE),--force,) \
	  $(if $(DATA),--set data.root=$(DATA),)

render: $(STAMP) browser
	$(PY) -m sslnb report --params params/report/$(REPORT).yaml --render

test: $(STAMP) browser
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

# On a GPU: bench/gpu_check.py (every full-scale configuration's step, MFU, the demos on the GPU);
# on a CPU: the bench/ scripts and the training-step bench of the two demo runs.
bench: $(STAMP)
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
	  $(PY) bench/gpu_check.py; \
	else \
	  $(PY) -m sslnb bench && \
	  $(PY) -m sslnb bench --params params/demo/mae_vit_tiny.yaml && \
	  $(PY) -m sslnb bench --params params/demo/simclr_resnet18.yaml; \
	fi

clean-venv:
	rm -rf $(VENV)
