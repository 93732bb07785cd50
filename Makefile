# The two commands a newcomer needs: `make run` and `make test`.
.PHONY: run test

HOST ?= 127.0.0.1
PORT ?= 8080

run:  ## install obfleet (runtime dependencies only) into .venv and serve the API on SQLite (data in ~/.obfleet)
	bash scripts/venv.sh runtime
	.venv/bin/obfleet serve --host $(HOST) --port $(PORT)

test:  ## install what the suite needs and run it on SQLite, PostgreSQL and MariaDB
	bash scripts/test.sh
