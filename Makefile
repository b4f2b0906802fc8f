# Two commands do everything on a fresh Debian machine with Python 3.11:
#   make demo   -- set up, then run the main job on the embedded default, writing a report
#   make test   -- set up, then run the whole test suite, the linters and the installed-wheel smoke run
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_OUT ?= demo_out

.PHONY: setup demo test unit quick lint smoke test-slow bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	@command -v iverilog >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq iverilog >/dev/null; \
	  else echo "note: iverilog missing and not root; RTL tests will be skipped"; fi; }
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/coexplore demo --out $(DEMO_OUT)

# Every stage runs; the target fails if any failed.
test: setup
	@rc=0; $(MAKE) --no-print-directory unit || rc=1; \
	$(MAKE) --no-print-directory lint || rc=1; \
	$(MAKE) --no-print-directory smoke || rc=1; \
	if [ $$rc -ne 0 ]; then echo "FAILED: see the stage above"; fi; exit $$rc

# pytest exits 5 when it collects nothing: treat that as a failure, never as success.
unit: setup
	@$(PY) -m pytest -q -n 2 --full -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "FAILED: pytest collected no tests"; exit 1; fi; exit $$rc

# The edit loop: no RTL, heavy or slow test (tests/conftest.py); every core.
quick: setup
	@$(PY) -m pytest -q -n auto -m "not rtl"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "FAILED: pytest collected no tests"; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/typecheck.py

# The installed wheel (not the editable checkout) runs evaluate, simulate and verify.
smoke: setup
	PYTHON=$(PYTHON) tools/wheel_smoke.sh

test-slow: setup
	$(PY) -m pytest -q -m slow

bench: setup
	$(PY) benchmarks/bench_analytical.py
	$(PY) benchmarks/bench_cycle.py --install-scalesim
	$(PY) benchmarks/bench_mapping.py
	$(PY) benchmarks/bench_rtl.py --faults
	$(PY) benchmarks/bench_search.py
	$(PY) benchmarks/bench_search_space.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) tour_out build .pytest_cache
