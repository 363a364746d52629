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

# Seven pytest processes, two at a time (make -j2): most of the suite's time is XLA compiling
# small programs, which runs on one core, so two processes use a 2-core machine fully.  The
# order packs them so that the two cores finish together (each process's time in the last
# two full runs, 2026-12-02: float64 805-880 s and 794-861 s, library 435-461, CLI 420-441,
# parity 268-288 and 271-285, long 149-157): packed in this order on those times the run
# ends 46 s and 22 s sooner than with the longest first (simulated); measured: 25 min 10 s.
# On the slower AVX2-only 2-core AMD EPYC of 2026-12-03/04 the same order took 33 min 18 s,
# 43 min 6 s (float64 1241 s and 1168 s, library 886, CLI 651, parity 465 and 382, long 286;
# packed within 20 s of half the total), 36 min 27 s and, after init_model's compile fell
# from 6-19 s to 2-4 s per architecture, 32 min 35 s (float64 914 s and 869 s, library 637,
# CLI 505, parity 337 and 306, long 210) and 33 min 13 s a stop later (float64 954 s and 870 s,
# library 675, CLI 513, parity 339 and 294, long 212), then 33 min 35 s at b6b8b66
# (float64 943 s and 910 s, library 655, CLI 486, parity 326 and 323, long 239), and 38 min
# 43 s at 0df2529 with no library change (float64 1106 s and 1005 s, library 780, CLI 580,
# parity 401 and 354, long 228: the -O0 lanes 17-19 % slower, the long lane as before),
# and 39 min 10 s at d6aa992 (float64 1070 s and 1090 s, library 766, CLI 637, parity 363
# and 357, long 261), and 41 min 6 s at 43a32e6 (float64 1163 s and 1126 s, library 843,
# CLI 654, parity 377 and 387, long 238): over the 30-minute target there.  On a 2-core
# AMD EPYC with AVX-512 (2026-12-04/05): 21 min 6 s at 7604290 (float64 614 s and 594 s,
# library 435, CLI 307, parity 200 and 187, long 141) and 20 min 18 s at 9a2bf6a (float64
# 612 s and 531 s, library 436, CLI 293, parity 196 and 175, long 122).
# Every test compiles with LLVM at -O0 (FAST_COMPILE) except those marked `runs_long`
# (test-long): -O0 halves the compile time, and its results differ from the default
# settings' by rounding alone -- float64 <= 1e-15 relative against tolerances of 1e-9, and
# float32 <= 3e-7 against the criterion of 1e-4, which parity_tests/test_compile_settings.py
# checks on the pretrained model at 224 under both settings.  A test whose running
# outweighs its compiling (synthesis loops, the 1300 images) runs at XLA's default
# settings, the code users get: class visualisation took 59 s at -O0, 17 s at the default.
# (XLA's older loop emitters, --xla_cpu_use_fusion_emitters=false, compile faster still but
# computed LRP's float64 relevance 2 % wrong: not used.)
# --output-sync prints each process's report whole when it ends; -k runs them all even
# after one fails.
# `make test` leaves out the tests marked `exhaustive` (further families of a parity test);
# `make test-exhaustive` runs everything the same way.
SELECT ?= and not exhaustive
CLI_TESTS := tests/test_cli.py tests/test_sharding.py tests/test_batch_safety.py \
	tests/test_benchmarks.py tests/test_weights.py
# the files that make the first of the two float64 processes and of the two float32 ones
FLOAT64_FIRST := parity_tests/test_families_attribution.py parity_tests/test_captum_methods_parity.py \
	parity_tests/test_attribution_parity.py parity_tests/test_pair_parity.py
PARITY_FIRST := parity_tests/test_attribution_parity.py
PYTEST := $(PY) -m pytest -q --durations=20
FAST_COMPILE := XLA_FLAGS="$(XLA_FLAGS) --xla_backend_optimization_level=0"
LANES := test-float64-first test-library test-parity-rest test-cli test-float64-rest test-parity-first test-long
# One PyTorch / BLAS thread per process: two processes share the two cores, and a second
# thread in each only contends (the course's fooling loop: 45 s with two, 27 s with one).
$(LANES): export OMP_NUM_THREADS ?= 1

# One XLA compilation cache for the whole run, shared by the processes and the CLI
# processes the tests start: the same program (a model's forward and gradient at one size)
# is compiled in many test modules, and conftest.py's per-module release would compile
# it again each time; from the disk cache it loads in a fraction of the time.  Its keys are
# the program, the XLA flags and the jax version, so a hit is the same executable.  A fresh
# folder each run, removed afterwards: what `make test` measures is what CI runs.
test: install
	@cache=$$(mktemp -d) && trap 'rm -rf "$$cache"' EXIT && \
	JAX_COMPILATION_CACHE_DIR=$$cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
	$(MAKE) --no-print-directory -k -j2 --output-sync=target $(LANES)

test-exhaustive: install
	@$(MAKE) --no-print-directory test SELECT=

.PHONY: test-exhaustive $(LANES)
test-parity-first:
	$(FAST_COMPILE) $(PYTEST) $(PARITY_FIRST) -m "not float64_only and not runs_long $(SELECT)"
test-parity-rest:
	$(FAST_COMPILE) $(PYTEST) parity_tests $(addprefix --ignore=,$(PARITY_FIRST)) -m "not float64_only and not runs_long $(SELECT)"
test-float64-first:
	$(FAST_COMPILE) $(PYTEST) $(FLOAT64_FIRST) -m "float64_only and not runs_long $(SELECT)"
test-float64-rest:
	$(FAST_COMPILE) $(PYTEST) tests parity_tests $(addprefix --ignore=,$(FLOAT64_FIRST)) -m "float64_only and not runs_long $(SELECT)"
test-cli:
	$(FAST_COMPILE) $(PYTEST) $(CLI_TESTS) -m "not float64_only and not runs_long $(SELECT)"
test-library:
	$(FAST_COMPILE) $(PYTEST) tests $(addprefix --ignore=,$(CLI_TESTS)) -m "not float64_only and not runs_long $(SELECT)"
test-long:
	$(PYTEST) tests parity_tests -m "runs_long $(SELECT)"

bench: install
	$(PY) -m benchmarks.run
