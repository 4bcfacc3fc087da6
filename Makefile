# The two commands a newcomer needs: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: the broker (tests start their own), GL for Kivy under SDL's offscreen driver,
# Node for running the MicroPython firmware under the real interpreter.
SYSTEM_PACKAGES := mosquitto mosquitto-clients libgl1 libegl1 libegl-mesa0 libgl1-mesa-dri nodejs
PYTEST_ARGS ?=
# The MicroPython interpreter (webassembly port, from npm) that runs the panel firmware in tests.
FIRMWARE_TEST := hardware/firmware/host-test
NODE_STAMP := $(FIRMWARE_TEST)/node_modules/.package-lock.json

.PHONY: demo test lint typecheck check system-deps venv bench bench-full clean

demo: system-deps $(STAMP)
	$(BIN)/smileloop demo $(if $(DURATION),--duration $(DURATION))

# PostgreSQL tests run against 127.0.0.1:5432; they must pass (not skip) in CI or wherever it answers.
test: system-deps $(STAMP) $(NODE_STAMP) lint
	SMILELOOP_REQUIRE_POSTGRES=$$( { [ -n "$$CI" ] || pg_isready -q -h 127.0.0.1 2>/dev/null; } && echo 1 || echo 0) \
		$(BIN)/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: system-deps $(STAMP)
	$(BIN)/python -m bench --quick

bench-full: system-deps $(STAMP)
	$(BIN)/python -m bench --full

venv: $(STAMP)

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
