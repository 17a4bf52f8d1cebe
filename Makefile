.PHONY: run test lint format worker beat migrate clean

## Bring up the whole gateway on its embedded defaults (SQLite, a local Redis, ASGI server, Celery worker and beat).
run:
	@scripts/run.sh

## Install what the tests need and run every suite: SQLite, PostgreSQL, headless Chromium.
test:
	@scripts/test.sh

lint:
	@scripts/venv.sh requirements-dev.txt && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports

format:
	@.venv/bin/ruff check --fix . && .venv/bin/ruff format .

migrate:
	@scripts/venv.sh requirements.txt && .venv/bin/python manage.py migrate

clean:
	rm -rf .venv var test-artifacts db.sqlite3 staticfiles
