# Everything installs on demand: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_JS := browser/node_modules/.installed
ASSETS := build/assets/manifest.json

.PHONY: demo test test-js lint types assets bench clean

$(STAMP_PY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

$(STAMP_JS): browser/package.json browser/package-lock.json
	cd browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

APP_SOURCES := $(shell find browser pipeline tools -type f -not -path '*/node_modules/*' -not -name '*.pyc')

# Building assets is a build-time tool (tools/), not server code.
$(ASSETS): $(STAMP_PY) $(STAMP_JS) $(APP_SOURCES)
	$(BIN)/python -m tools.build_assets --out build/assets

assets: $(ASSETS)

demo: $(ASSETS)
	$(BIN)/loadbay demo

lint: $(STAMP_PY) $(STAMP_JS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd browser && node_modules/.bin/eslint --max-warnings=0 .
	cd browser && node_modules/.bin/tsc -p jsconfig.json
	cd browser && node_modules/.bin/tsc -p sdk/react/tsconfig.json

# The browser's pure modules under Node's own test runner.
test-js: $(STAMP_JS)
	node --test tests/browser/*.test.mjs

types: $(STAMP_PY)
	$(BIN)/mypy

# pytest runs last, so its closing line is the last line CI reads. Two processes (xdist),
# each taking the next test when it is free: a browser test waits on Chromium about half
# its time, and the machines these run on have two cores.
test: $(ASSETS) lint types test-js
	$(BIN)/pytest -q -n 2 --dist worksteal

# Engine vs PapaParse in Chromium on a generated 1M x 20 CSV and a 200k-row xlsx (cached in
# bench/data); writes bench/results/<timestamp>.json, latest.json and latest.png. Then the
# edge under hostile requests, the server's ingest and submit-to-webhook time, a headless
# import's peak memory for 100k and 1M rows (headless-latest.json), 1M x 20
# delivered to PostgreSQL, S3 (moto) and a webhook, a 1M-row import downloaded in each
# format, passthrough against stored, and the importer's cold and warm start
# (bench/results/edge-latest.json, ingest-latest.json, destinations-latest.json,
# downloads-latest.json, passthrough-latest.json, warm-start-latest.json).
bench: $(ASSETS)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.edge
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.headless
	$(BIN)/python -m bench.destinations
	$(BIN)/python -m bench.downloads 1000000
	$(BIN)/python -m bench.passthrough
	$(BIN)/python -m bench.warm_start

clean:
	rm -rf build .venv browser/node_modules
