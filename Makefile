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

# Four pytest processes, two at a time (make -j2): most of the suite's time is XLA compiling
# small programs, which runs on one core, so two processes use a 2-core machine fully.
# The float64-only comparisons are compile-bound (small inputs, deep networks): LLVM at -O0
# halves their compile time and changes float64 results by rounding alone (≤ 1e-15
# relative, against tolerances of 1e-9); every float32 criterion runs at the default level.
# --output-sync prints each process's report whole when it ends; -k runs them all even
# after one fails.
CLI_TESTS := tests/test_cli.py tests/test_sharding.py tests/test_batch_safety.py \
	tests/test_benchmarks.py tests/test_weights.py
PYTEST := $(PY) -m pytest -q --durations=20

test: install
	@$(MAKE) --no-print-directory -k -j2 --output-sync=target \
		test-parity test-float64 test-cli test-library

.PHONY: test-parity test-float64 test-cli test-library
test-parity:
	$(PYTEST) parity_tests -m "not float64_only"
test-float64:
	XLA_FLAGS="$(XLA_FLAGS) --xla_backend_optimization_level=0" \
		$(PYTEST) tests parity_tests -m float64_only
test-cli:
	$(PYTEST) $(CLI_TESTS) -m "not float64_only"
test-library:
	$(PYTEST) tests $(addprefix --ignore=,$(CLI_TESTS)) -m "not float64_only"

bench: install
	$(PY) -m benchmarks.run
