# Developers and CI share these targets. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# bench/peers.py runs bytewax and quixstreams from a venv of their own: quixstreams pins
# dependencies (pydantic, confluent-kafka) below what Kestrel's venv has.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
# Debian packages the tests use as real peers: a Redis to start when none runs, Prometheus
# (server + promtool), Alertmanager, docker-compose v1 to validate docker-compose.yml, a Java
# runtime and Maven for Apache Kafka (see `kafka`), openssl for the TLS tests' certificates, and
# PostgreSQL for the cold store's tests (its initdb and pg_ctl, in /usr/lib/postgresql/*/bin).
APT_PACKAGES := redis-server prometheus prometheus-alertmanager docker-compose default-jre-headless maven openssl chromium chromium-driver postgresql
APT_BINARIES := redis-server prometheus promtool prometheus-alertmanager amtool docker-compose java mvn openssl chromium chromedriver pg_ctlcluster

.PHONY: setup compiled system-packages kafka demo test lint typecheck unit bench bench-peers clean

setup: compiled system-packages kafka

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Kestrel needs Python 3.11 or newer, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# mypyc compiles the detector modules detectors/compiled.py names, in place (setup.py; pure
# Python when it cannot), whenever one is not compiled or older than its source: Python imports
# the extension, so it would shadow an edit (the tests refuse to start then).
compiled: $(STAMP)
	@$(BIN)/python -m detectors.compiled || $(BIN)/python setup.py -q build_ext --inplace --force

system-packages:
	@missing=""; for b in $(APT_BINARIES); do command -v $$b >/dev/null || [ -x /usr/bin/$$b ] || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages for:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

# The tests' broker: Apache Kafka's jars (pinned in engine/devtools/apache_kafka_pom.xml), fetched
# by Maven from Maven Central into ~/.cache/kestrel/kafka-<version>/lib (or $$KESTREL_KAFKA_HOME/lib)
# once; when that cache is complete this does nothing.
kafka: $(STAMP) system-packages
	@$(BIN)/python -m engine.devtools.apache_kafka fetch

demo: compiled
	$(BIN)/kestrel demo --duration $${DURATION:-60}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q

test: setup lint typecheck
	$(BIN)/pytest -q --durations=15

# On Apache Kafka: under load, the embedded broker's fetches slow down (bench/broker_fetch.py).
bench: setup
	$(BIN)/python bench/throughput.py --broker apache $(ARGS)

$(PEERS_STAMP): pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -e '.[bench]'
	touch $(PEERS_STAMP)

# Kestrel and the plain/Faust loops run in .venv, bytewax and quixstreams in .venv-peers.
# Options through ARGS, e.g. make bench-peers ARGS="--events 50000 --rounds 3".
bench-peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python bench/peers.py --peers-python $(PEERS_VENV)/bin/python $(ARGS)

clean:
	rm -rf $(VENV) $(PEERS_VENV) *.egg-info .mypy_cache .ruff_cache build
	rm -f detectors/*.so
