# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: the broker (tests start their own), GL for Kivy under SDL's offscreen driver,
# Node for running the MicroPython firmware under the real interpreter, faketime for `make test-night`,
# pg_dump/pg_restore for `smileloop backup` on PostgreSQL, chromium for the console's browser tests (Playwright).
SYSTEM_PACKAGES := mosquitto mosquitto-clients libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri nodejs faketime postgresql-client chromium
PYTEST_ARGS ?=
# PostgreSQL tests run against 127.0.0.1:5432. They are required (fail, never skip) when pg_isready answers
# there (tests/conftest.py decides), and always in CI; SMILELOOP_REQUIRE_POSTGRES=0/1 overrides.
PYTEST := $(if $(CI),SMILELOOP_REQUIRE_POSTGRES=1 )$(BIN)/python -m pytest -n 2 -p no:cacheprovider
# `make test-night`: the whole suite with the wall clock at these times (UTC), in turn.
NIGHT_TIMES := "2026-12-03 02:30:00" "2026-12-03 23:30:00"
# The MicroPython interpreter (webassembly port, from npm) that runs the panel firmware in tests.
FIRMWARE_TEST := hardware/firmware/host-test
NODE_STAMP := $(FIRMWARE_TEST)/node_modules/.package-lock.json

.PHONY: demo test test-night test-random test-reverse lint typecheck check system-deps venv pre-commit bench bench-full clean screenshots

demo: system-deps $(STAMP)
	$(BIN)/smileloop demo $(if $(DURATION),--duration $(DURATION))

# A fixed test order (pytest-randomly stays off: `-p no:randomly`, also in pyproject's addopts).
test: system-deps $(STAMP) $(NODE_STAMP) lint
	$(PYTEST) -p no:randomly $(PYTEST_ARGS)

# The suite at night and just before midnight (UTC) under libfaketime: the wall clock starts there and ticks
# on; monotonic clocks stay real, so timeouts behave (tests/faketime/sitecustomize.py says why Python's sleep
# needs help there). Both runs go; it fails if either failed.
test-night: system-deps $(STAMP) $(NODE_STAMP)
	@command -v faketime >/dev/null || { echo "faketime is missing (Debian: apt-get install faketime)"; exit 1; }
	@rc=0; for t in $(NIGHT_TIMES); do \
		echo "== the suite at $$t UTC"; \
		PYTHONPATH=$(CURDIR)/tests/faketime$${PYTHONPATH:+:$$PYTHONPATH} TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 \
			faketime -f "@$$t" $(PYTEST) -p no:randomly $(PYTEST_ARGS) || rc=1; \
	done; exit $$rc

# The suite in reverse order: no test may depend on the one before it.
test-reverse: system-deps $(STAMP) $(NODE_STAMP)
	$(PYTEST) -p no:randomly --reverse-order $(PYTEST_ARGS)

# The suite in a random order (pytest-randomly). The seed is printed; `make test-random SEED=n` repeats an order.
test-random: system-deps $(STAMP) $(NODE_STAMP)
	@seed=$${SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
		echo "== random test order, seed $$seed (repeat it with: make test-random SEED=$$seed)"; \
		$(PYTEST) -p randomly --randomly-seed=$$seed $(PYTEST_ARGS) \
		|| { echo "== failed with seed $$seed: make test-random SEED=$$seed"; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: system-deps $(STAMP)
	$(BIN)/python -m bench --quick

bench-full: system-deps $(STAMP)
	$(BIN)/python -m bench --full

venv: $(STAMP)

# ruff and mypy before every commit (.pre-commit-config.yaml).
pre-commit: $(STAMP)
	$(BIN)/pre-commit install

$(NODE_STAMP): $(FIRMWARE_TEST)/package.json $(FIRMWARE_TEST)/package-lock.json
	cd $(FIRMWARE_TEST) && npm ci --no-audit --no-fund --loglevel=error

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "smileloop needs Python 3.11 or newer; found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	@missing=""; \
	if ! command -v dpkg >/dev/null 2>&1; then \
		command -v mosquitto >/dev/null 2>&1 || command -v /usr/sbin/mosquitto >/dev/null 2>&1 || \
		{ echo "Please install: mosquitto (the MQTT broker), Mesa GL/EGL libraries, Node.js"; exit 1; }; \
		exit 0; \
	fi; \
	for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing system packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing system packages:$$missing"; \
			echo "install them with: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Full-page PNGs of every console page (desk and 390 px phone) on demo data, into docs/console/.
screenshots: $(STAMP)
	SMILELOOP_SCREENSHOTS=1 $(BIN)/python -m pytest tests/console/test_screenshots.py -p no:randomly -q
