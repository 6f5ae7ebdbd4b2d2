# Everything installs on demand: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_PY := $(VENV)/.installed
STAMP_JS := browser/node_modules/.installed
ASSETS := build/assets/manifest.json

.PHONY: demo test lint types assets bench clean

$(STAMP_PY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

$(STAMP_JS): browser/package.json browser/package-lock.json
	cd browser && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(ASSETS): $(STAMP_PY) $(STAMP_JS) browser/wheels.txt $(shell find browser pipeline -maxdepth 1 -type f -not -path '*/node_modules/*')
	$(BIN)/loadbay assets build

assets: $(ASSETS)

demo: $(ASSETS)
	$(BIN)/loadbay demo

lint: $(STAMP_PY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP_PY)
	$(BIN)/mypy

test: $(ASSETS) lint types
	$(BIN)/pytest -q

# Engine vs PapaParse in Chromium on a generated 1M x 20 CSV and a 200k-row xlsx (cached in
# bench/data); writes bench/results/<timestamp>.json, latest.json and latest.png.
bench: $(ASSETS)
	$(BIN)/python -m bench.run

clean:
	rm -rf build .venv browser/node_modules
