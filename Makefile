# Everything starts from a fresh clone: `make demo` and `make test` create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean venv

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# setuptools announces every editable install of a package_dir layout in a warning block
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/seatgate demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core adapters
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every figure of the closing notes, with the commands they quote (about 40 minutes; the fleet
# bench needs Redis and PostgreSQL, as its tests do).
bench: $(STAMP)
	$(BIN)/python bench/cli_startup.py --runs 7
	$(BIN)/python bench/core_bench.py --runs 5
	$(BIN)/python bench/sync_engine.py --users 100000 --runs 3
	$(BIN)/python bench/billing_run.py --accounts 1000 --runs 5
	$(BIN)/python bench/adapter_sync.py --users 100000 --runs 5
	$(BIN)/python bench/http_check.py --runs 3 --sync-users 100000
	$(BIN)/python bench/check_during_sync.py --users 100000 --runs 3 --rate 2000
	$(BIN)/python bench/console_pages.py --users 100000 --runs 3 --requests 5
	$(BIN)/python bench/webhook_deliver.py --events 2000 --runs 3
	$(BIN)/python bench/fleet.py --accounts 40 --users 1000 --workers 1,2,4 --periods 2

clean:
	rm -rf $(VENV) build *.egg-info seatgate.db*
