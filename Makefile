# Everything a fresh clone needs: `make demo` to explore, `make test` to check.
VENV       ?= .venv
PY         := $(VENV)/bin/python
# A CPU build of torch keeps the environment small; pick another build with TORCH_SPEC=...
TORCH_SPEC ?= torch==2.13.0
CHROMIUM   ?= /usr/bin/chromium
BUNDLE     := src/attn_widget/static/widget.js
# runpy warns that the package (imported first) already holds the module: harmless here.
CONTRACT   := $(PY) -W ignore::RuntimeWarning -m attn_widget.contract
# A second environment with TransformerLens 3.x (HookedTransformer), for the backend tests.
VENV_TL3   ?= .venv-tl3
TL3_SPEC   ?= transformer-lens==3.9.0 transformers>=5.9,<6

.PHONY: setup demo test test-python test-tl3 test-wheel test-zoo lint contract js js-watch chromium clean bench bench-gpu bench-switch

setup: $(VENV)/.installed $(BUNDLE)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

$(BUNDLE): node_modules/.installed $(shell find js -name '*.ts' -o -name '*.css' -o -name '*.mjs')
	npm run --silent build

js: $(BUNDLE)

js-watch: node_modules/.installed
	npm run dev

# Browser tests drive Debian's Chromium (Playwright cannot download browsers here).
chromium:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(PY) -m jupyter lab examples/quickstart.ipynb $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

lint: setup
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(CONTRACT) --check js/contract.gen.ts
	npx tsc --noEmit -p .
	npx biome lint js
	npx biome format js

# js/contract.gen.ts: the constants and lists kernel and browser share, from src/attn_widget/contract.py.
# Committed (tsc, biome and esbuild need no Python); the --check in `make lint` and a test catch drift.
contract: $(VENV)/.installed
	$(CONTRACT) > js/contract.gen.ts

test-python: setup
	$(PY) -m pytest -m "not browser"

# The browser tests run in a process of their own: Playwright's sync API keeps an event loop set
# in the process while its browser is open, which the kernel-side tests must not see.
test: setup chromium lint test-tl3 test-wheel
	$(PY) -m pytest -m "not browser"
	ATTN_WIDGET_REQUIRE_BROWSER=1 $(PY) -m pytest -m browser

# Every causal-LM architecture in the installed transformers, tiny and random, against its own eager
# weights (scripts/architecture_sweep.py, two processes at a time; about 2 minutes on 2 cores).
# `make test` runs it too (tests/backends/test_zoo.py); this runs it alone and prints the counts.
test-zoo: setup
	$(PY) -m pytest -q -s -p no:cacheprovider tests/backends/test_zoo.py

# A wheel that installs anywhere: the sdist, a wheel built from the sdist alone (python -m build
# does both), installed into a clean venv; it imports, runs the demo model and saves a standalone
# page that Chromium then draws. torch is pinned first: unpinned, pip pulls a multi-GB CUDA build.
WHEEL_DIR  ?= build/wheel-check
test-wheel: setup chromium
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	$(PY) -m build --outdir $(WHEEL_DIR)/dist .
	python3 -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(WHEEL_DIR)/venv/bin/python -m pip install -q $(WHEEL_DIR)/dist/*.whl
	cd $(WHEEL_DIR) && env -u PYTHONPATH venv/bin/python $(CURDIR)/scripts/check_wheel.py installed page.html
	$(PY) scripts/check_wheel.py browser $(WHEEL_DIR)/page.html

# The project asks for TransformerLens 4: here it is installed over 3.x, its dependencies listed by hand.
$(VENV_TL3)/.installed: pyproject.toml
	test -x $(VENV_TL3)/bin/python || python3 -m venv $(VENV_TL3)
	$(VENV_TL3)/bin/python -m pip install -q --upgrade pip
	$(VENV_TL3)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(VENV_TL3)/bin/python -m pip install -q $(foreach spec,$(TL3_SPEC),"$(spec)") anywidget traitlets numpy safetensors ipython pytest pillow scipy
	$(VENV_TL3)/bin/python -m pip install -q --no-deps -e .
	touch $@

test-tl3: $(VENV_TL3)/.installed $(BUNDLE)
	$(VENV_TL3)/bin/python -m pytest -q -p no:cacheprovider tests/backends/test_backends.py tests/maths/test_composition.py tests/maths/test_qk_hooked_transformer.py tests/analysis/test_ablation_hooked_transformer.py

# Side-by-side measurements against CircuitsVis, a bare forward pass and run_with_cache (minutes).
bench: setup chromium
	$(PY) benchmarks/run.py

# The same kernel rows on a GPU: a Llama-3-8B-shaped model (bf16, random weights), 2k to 32k tokens.
# Needs a CUDA build of torch (TORCH_SPEC=torch); about 6 minutes on one H100.
# Only the explorer's head switches (prefetch, cache, previews) at each prompt length: no CircuitsVis, no kernel part.
bench-switch: setup chromium
	$(PY) benchmarks/run.py --switch-only

bench-gpu: setup
	$(PY) benchmarks/run.py --sizes "" --kernel-sizes 4096 --llama-model llama3-8b \
	  --llama-sizes 2048,4096,8192,16384,32768

clean:
	rm -rf $(VENV) node_modules src/attn_widget/static
