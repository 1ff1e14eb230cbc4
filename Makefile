# Two commands do all set-up on a fresh clone:
#   make demo   creates .venv, installs the core and every plugin (editable), runs the main job
#   make test   the same install, then the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned: 2.13.0 resolves to the CPU build here; an unpinned torch pulls GBs of CUDA wheels.
TORCH  := torch==2.13.0
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench tiny clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $(STAMP)

demo: setup
	$(BIN)/splice plugins
	$(BIN)/splice compose --quant rtn --quant-opt w_bits=4 --out runs/demo --force

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

bench: setup
	$(BIN)/python bench/run.py

tiny: setup
	$(BIN)/python scripts/build_tiny.py

clean:
	rm -rf $(VENV) runs .pytest_cache
