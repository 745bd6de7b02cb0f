# The two commands: `make run` (site + worker + beat on an embedded default) and
# `make test` (the whole suite on throwaway PostgreSQL and Redis).
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
TOOLS := .tools
export PYTHONUNBUFFERED := 1

.PHONY: run test venv lint clean bench

$(TOOLS)/bin/uv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else "Python 3.12 is required (found " + sys.version.split()[0] + "); see .python-version")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs exactly what uv.lock pins (--frozen: never re-resolves).
$(VENV)/.installed: $(TOOLS)/bin/uv uv.lock pyproject.toml
	$(TOOLS)/bin/uv sync --frozen --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	@touch $@

venv: $(VENV)/.installed

run: venv
	@mkdir -p var
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py seed_demo --users-only
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py runstack --demo

test: venv
	bash tests/run.sh

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(VENV)/bin/python bench/profile.py
	$(VENV)/bin/python bench/training.py
	$(VENV)/bin/python bench/drift.py

clean:
	rm -rf var .pytest_cache
