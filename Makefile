# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_UPDATE_CHECK := 1

.PHONY: demo test install install-dev lint bench clean htmx

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Core, pinned: requirements.lock holds the whole resolved set.
$(VENV)/.core: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.lock $(VENV)/.core
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

install: $(VENV)/.core
install-dev: $(VENV)/.dev

demo: install
	rm -rf kumiai-demo
	$(BIN)/kumiai demo --dir kumiai-demo

lint: install-dev
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/lint-imports

# Three workers on two cores: the slowest tests mostly wait on the processes they started
# (nodes, SuperLinks, timeouts), so one worker per core left the cores half idle (CPU time
# 1.15 x wall time). A module's tests stay on one worker, so its fixtures are built once.
# The slowest tests are named at the end, to keep the suite within CI's time.
WORKERS ?= 3
test: lint
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --durations=25

bench: install
	$(BIN)/kumiai bench heart-disease --seeds 5 --json

clean:
	rm -rf $(VENV) kumiai-demo .pytest_cache .ruff_cache

# The dashboard's vendored htmx (src/kumiai/interfaces/web/static/README.md): from npm, at
# install time only; the server never fetches it.
HTMX_VERSION ?= 2.0.11
WEB_STATIC := src/kumiai/interfaces/web/static
htmx:
	cd $$(mktemp -d) && npm pack --silent htmx.org@$(HTMX_VERSION) && tar xzf htmx.org-$(HTMX_VERSION).tgz \
		&& cp package/dist/htmx.min.js $(CURDIR)/$(WEB_STATIC)/htmx.min.js \
		&& cp package/LICENSE $(CURDIR)/$(WEB_STATIC)/htmx.LICENSE
