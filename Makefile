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

# three processes, each shorter (conftest.py also frees compiled programs per module).
# The float64-only comparisons are compile-bound (small inputs, deep networks): LLVM at -O0
# halves their compile time and changes float64 results by rounding alone (≤ 1e-15
# relative, against tolerances of 1e-9); every float32 criterion runs at the default level.
test: install
	$(PY) -m pytest -q tests -m "not float64_only"
	$(PY) -m pytest -q parity_tests -m "not float64_only"
	XLA_FLAGS="$(XLA_FLAGS) --xla_backend_optimization_level=0" $(PY) -m pytest -q tests parity_tests -m float64_only

bench: install
	$(PY) -m benchmarks.run
