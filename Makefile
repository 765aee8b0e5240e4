# Two commands matter: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core by default; TEST_WORKERS=0 runs
# the suite in this process (for pdb, or to compare timings).
TEST_WORKERS ?= auto
XDIST = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist worksteal)

.PHONY: run test test-sqlite test-postgres fuzz check audit lock clean

$(STAMP): requirements/dev.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "leb needs Python 3.11 or newer"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
		{ echo "Could not create $(VENV): on Debian/Ubuntu run 'apt-get install python3-venv'"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)
	@mkdir -p var
	$(BIN)/leb migrate --no-input
	$(BIN)/leb demo
	$(BIN)/leb serve --with-worker

test: $(STAMP)
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$LEB_TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "LEB_TEST_DATABASE_URL not set: PostgreSQL run skipped"; fi

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite"
	env -u LEB_DATABASE_URL $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@test -n "$$LEB_TEST_DATABASE_URL" || { echo "set LEB_TEST_DATABASE_URL"; exit 1; }
	@echo "== test suite on $$LEB_TEST_DATABASE_URL"
	LEB_DATABASE_URL="$$LEB_TEST_DATABASE_URL" LEB_REQUIRE_POSTGRES=1 $(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

# schemathesis over /api/v1 and /agent/v1 (docs/reliability.md); on
# PostgreSQL too when LEB_TEST_DATABASE_URL is set.
fuzz: $(STAMP)
	@echo "== API fuzzing on SQLite"
	env -u LEB_DATABASE_URL $(BIN)/pytest -m fuzz $(XDIST) $(PYTEST_ARGS)
	@if [ -n "$$LEB_TEST_DATABASE_URL" ]; then \
		echo "== API fuzzing on $$LEB_TEST_DATABASE_URL"; \
		LEB_DATABASE_URL="$$LEB_TEST_DATABASE_URL" LEB_REQUIRE_POSTGRES=1 $(BIN)/pytest -m fuzz $(XDIST) $(PYTEST_ARGS); \
	fi

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy leb
	$(BIN)/lint-imports --no-cache
	LEB_VAR_DIR="$$(mktemp -d)" $(BIN)/leb makemigrations --check --dry-run

# pip-audit over both locks: fails on a known vulnerability, says so and
# passes when no vulnerability database is reachable (docs/reliability.md).
audit: $(STAMP)
	$(BIN)/python scripts/audit_deps.py

lock: $(STAMP)
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o base.lock base.in
	cd requirements && ../$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o dev.lock dev.in

clean:
	rm -rf $(VENV) var/*.sqlite3*
