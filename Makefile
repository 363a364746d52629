# Two commands do all the set-up on a fresh machine:
#   make run    the main job (installs on first use)
#   make test   the test suite (installs on first use)
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
export JAXVIZ_WEIGHTS ?= $(SHARED)/weights/squeezenet1_1_tv_fp16.npz
export JAXVIZ_SHARED ?= $(SHARED)

.PHONY: install run test bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/jaxviz classify --samples $(wildcard $(SHARED)/data/imagenet_val_25.npz)
	$(VENV)/bin/jaxviz demo --out out/demo

# two processes, each shorter (conftest.py also frees compiled programs per module)
test: install
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q parity_tests

bench: install
	$(PY) -m benchmarks.run
