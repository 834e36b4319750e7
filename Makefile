# WeCity — two commands on a fresh machine:
#   make run    the demo city on http://127.0.0.1:8000 (embedded SQLite); HOST=0.0.0.0 PORT=8080 to change
#   make test   installs and starts what the tests need (PostgreSQL, Mosquitto, Chromium), runs everything
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
export WECITY_TEST_PG_URL ?= postgresql+psycopg://wecity:wecity@127.0.0.1:5432/postgres
export WECITY_TEST_MQTT_URL ?= mqtt://127.0.0.1:1883
HOST    ?= 127.0.0.1
PORT    ?= 8000

.PHONY: run test install services lint typecheck bench fuzz clean ngsild-client

# What running needs, and (for the tests) the test extras on top: `make run` installs no test tools.
$(BIN)/.installed-run: pyproject.toml
	bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.installed: $(BIN)/.installed-run
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# HOST=0.0.0.0 lets a phone on the same network open it (at this machine's address and PORT).
run: $(BIN)/.installed-run
	$(BIN)/wecity demo --host $(HOST) --port $(PORT)

services:
	bash scripts/test-services.sh

lint: install
	$(BIN)/ruff check src tests bench

typecheck: install
	$(BIN)/mypy src/wecity

# The PyPI NGSI-LD client pins an old httpx, so it lives in an environment of its own that a test drives.
NGSILD_VENV ?= .venv-ngsild
$(NGSILD_VENV)/.installed:
	$(PYTHON) -m venv $(NGSILD_VENV)
	$(NGSILD_VENV)/bin/pip install --quiet 'ngsildclient==0.5.2'
	touch $@

ngsild-client: $(NGSILD_VENV)/.installed

test: install services lint typecheck ngsild-client
	$(BIN)/python -m pytest -q -p no:cacheprovider

# The OpenAPI fuzzing alone (it also runs in `make test`).
fuzz: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz

# Every benchmark under bench/ beside its ceilings, measured in the same run; load from wrk on 127.0.0.1.
# BENCH_SECONDS (default 5) per load run, BENCH_CONNECTIONS (default 32), BENCH_ONLY=name,... to pick some.
bench: install services
	command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	[ -x $(BIN)/py-spy ] || $(BIN)/pip install --quiet py-spy  # names where the time goes when a goal is missed
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(NGSILD_VENV) var .pytest_cache
