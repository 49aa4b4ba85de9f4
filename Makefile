# Two commands do everything on a fresh machine:
#   make demo   create .venv with python3.12, install, run `bayescale demo`
#   make test   create/install if needed, run the whole test suite, build the docs (strict)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# python3.12 may be a pyenv shim that only works when 3.12 is selected: find a working one.
PYTHON312 ?= $(shell for p in python3.12 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	if [ -x "$$(command -v $$p 2>/dev/null)" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then echo $$p; break; fi; done)
STAMP := $(VENV)/.installed
# the tested versions of every dependency (see its header)
CONSTRAINTS := .ci/constraints.txt

.PHONY: demo test test-fast docs docs-strict adversarial lint format bench bench-setup bench-gpu backtest constraints clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@if [ -z "$(PYTHON312)" ]; then echo "error: python3.12 not found (install it or set PYTHON312=/path/to/python3.12)" >&2; exit 2; fi
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev,docs]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bayescale demo

# pytest exits 5 when it collects no tests: that must fail loudly, never pass quietly.
# then the docs site in strict mode: a warning or a broken internal link fails the target.
test: $(STAMP)
	@MPLBACKEND=Agg $(PY) -m pytest -q --durations=15; status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi
	@$(MAKE) --no-print-directory docs-strict

test-fast: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q -m "not slow and not notebook"

# the documentation site into site/; notebooks show the outputs of the last
# tests/test_notebooks.py run (build/notebooks/), else they are shown without outputs
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 MPLBACKEND=Agg $(PY) -m mkdocs build --quiet

docs-strict: $(STAMP)
	NO_MKDOCS_2_WARNING=1 MPLBACKEND=Agg $(PY) -m mkdocs build --strict --quiet

# hostile tables, priors and TOML specs with many more random examples (and a fit sweep)
adversarial: $(STAMP)
	BAYESCALE_ADVERSARIAL_FULL=1 MPLBACKEND=Agg $(PY) -m pytest -q -s tests/test_adversarial.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bayescale tests bench docs/hooks
	$(VENV)/bin/ruff format --check bayescale tests bench docs/hooks

format: $(STAMP)
	$(VENV)/bin/ruff format bayescale tests bench docs/hooks
	$(VENV)/bin/ruff check --fix bayescale tests bench docs/hooks

bench-setup: $(STAMP)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -r bench/requirements.txt

bench: bench-setup
	$(PY) bench/run.py

# the real-data backtest corpus with the defaults: one row per study (docs/backtest.md)
backtest: $(STAMP)
	@mkdir -p bench/results
	$(PY) bench/backtest.py --json bench/results/backtest.json

# batched fits on the GPU JAX sees (install jax with CUDA first: README, GPU)
bench-gpu: $(STAMP)
	$(PY) bench/gpu.py

# after upgrading packages in .venv (pip install -U ...) and passing `make test` and `make bench`
# on them: record the environment as the tested set
constraints:
	@{ sed -n '/^#/p' $(CONSTRAINTS); $(PY) -m pip freeze --exclude-editable; } > $(CONSTRAINTS).new
	@mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist site *.egg-info
