#!/usr/bin/env bash
# `make test`: start a throwaway PostgreSQL cluster and Redis server, run ruff and the
# whole pytest suite against them (a real Celery worker and the system Chromium
# included), stop them, and exit with the suite's status.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv

say() { printf '\n== %s\n' "$*"; }

# --- system packages --------------------------------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  else
    echo "The test suite needs: ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# --- throwaway services -------------------------------------------------------------
WORK=$(mktemp -d /tmp/mlops-test.XXXXXX)
chmod 755 "$WORK"
free_port() { "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port)
REDIS_PORT=$(free_port)
PG_USER=$(id -un)
run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  status=$?
  set +e
  [ -f "$WORK/redis.pid" ] && kill "$(cat "$WORK/redis.pid")" 2>/dev/null
  [ -d "$WORK/pg/data" ] && run_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT INT TERM

say "starting PostgreSQL ($PG_BIN) on port $PG_PORT"
mkdir -p "$WORK/pg"
if [ "$(id -u)" = 0 ]; then chown postgres "$WORK/pg"; PG_USER=postgres; fi
run_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U "$PG_USER" -A trust --no-sync >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -w -l "$WORK/pg/log" \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
run_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" mlops

say "starting Redis on port $REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" --dir "$WORK"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

export DATABASE_URL="postgresql://$PG_USER@127.0.0.1:$PG_PORT/mlops"
export CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export SECRET_KEY="test-only-$(date +%s)-not-secret"
export DEBUG=0 SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0
export ALLOWED_HOSTS="localhost,127.0.0.1,testserver"
export MLOPS_VAR_DIR="$WORK/var"
export CHROMIUM_PATH="${CHROMIUM_PATH:-$(command -v chromium)}"
export DJANGO_ALLOW_ASYNC_UNSAFE=true
export MLOPS_REQUIRE_SERVICES=1

say "ruff"
"$VENV/bin/ruff" check .

say "pytest"
set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ $status -ne 0 ] && grep -qE 'ERROR|FATAL' "$WORK/pg/log" 2>/dev/null; then
  say "PostgreSQL errors during the run (last 40 lines)"
  grep -E -A2 'ERROR|FATAL' "$WORK/pg/log" | tail -40
fi
exit $status
