#!/usr/bin/env bash
# The container recipe's steps, run on this machine (it cannot build images): what the
# Dockerfile and deploy/compose.yaml do, in order, each checked.
#
#   1. install the package into a fresh virtualenv            (Dockerfile: pip install .)
#   2. migrate a fresh PostgreSQL database                     (compose: migrate, db upgrade)
#   3. serve it in production mode, JSON logs, several workers,
#      as an unprivileged user when run as root                (Dockerfile: USER, CMD serve)
#   4. /health and /ready answer 200, /docs and its assets too (HEALTHCHECK)
#   5. SIGTERM: the server drains and exits 0                  (STOPSIGNAL, stop_grace_period)
#
# Environment:
#   MODELFAUCET_SMOKE_POSTGRES_URL  a PostgreSQL server URL whose user may CREATE DATABASE
#                                   (default postgresql://postgres@127.0.0.1:5432/postgres);
#                                   the smoke database is created beside it and dropped.
#   SMOKE_PYTHON                    skip step 1: use this interpreter, where the package is
#                                   already installed (the test suite's quick run)
#   SMOKE_WORKERS                   worker processes (default 2)
# Prints "smoke: ok" and exits 0 when every step passed.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVER_URL="${MODELFAUCET_SMOKE_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
WORKERS="${SMOKE_WORKERS:-2}"
WORK="$(mktemp -d)"
chmod 755 "$WORK"
SERVER_PID=""

step() { echo "smoke: $*"; }
fail() { echo "smoke: FAILED: $*" >&2; [ -f "$WORK/server.log" ] && tail -n 40 "$WORK/server.log" >&2; exit 1; }

if [ -n "${SMOKE_PYTHON:-}" ]; then
  PYTHON="$SMOKE_PYTHON"
  RUN_AS=()
else
  step "1. install into a fresh virtualenv"
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check .
  PYTHON="$WORK/venv/bin/python"
  # As the image's USER: an unprivileged account that owns nothing it runs (where that
  # account may execute this machine's python3: a per-user install under /root it may not).
  RUN_AS=()
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    UNPRIVILEGED=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    if "${UNPRIVILEGED[@]}" "$PYTHON" -c 'import subprocess, sys; subprocess.run([sys.executable, "-c", ""], check=True)' 2>/dev/null; then
      RUN_AS=("${UNPRIVILEGED[@]}")
    else
      step "(serving as root: $(readlink -f "$PYTHON") is not executable by an unprivileged user here)"
    fi
  fi
fi
MODELFAUCET=("$PYTHON" -m modelfaucet)

# A fresh database of its own (name, URL) and a free port, chosen by the installed Python.
read -r DB_NAME DATABASE_URL PORT < <("$PYTHON" - "$SERVER_URL" <<'PY'
import socket, sys, time, os
from sqlalchemy.engine import make_url
base = make_url(sys.argv[1])
name = f"mf_smoke_{int(time.time())}_{os.getpid()}"
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
print(name, base.set(database=name).render_as_string(hide_password=False), port)
PY
)

admin_sql() {  # run one statement on the server's maintenance database
  "$PYTHON" - "$SERVER_URL" "$1" <<'PY'
import sys
import psycopg
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1]).set(drivername="postgresql", database="postgres")
with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, connect_timeout=5) as conn:
    conn.execute(sys.argv[2])
PY
}

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  admin_sql "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

export DATABASE_URL PORT
export HOST=127.0.0.1 MODELFAUCET_ENV=production LOG_FORMAT=json
export ADMIN_TOKEN="smoke-admin-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')"
export GATEWAY_SERVICE_TOKEN="smoke-gateway-$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')"
export STRIPE_WEBHOOK_SECRET="whsec_smoke_not_a_secret"
export MODELFAUCET_SECRET_KEY="$("${MODELFAUCET[@]}" secrets generate-key)"

step "2. migrate a fresh PostgreSQL database"
admin_sql "CREATE DATABASE \"$DB_NAME\""
"${MODELFAUCET[@]}" db upgrade | tee "$WORK/upgrade.out"
grep -q "^applied " "$WORK/upgrade.out" || fail "db upgrade applied nothing to a fresh database"

step "3. serve with $WORKERS workers on 127.0.0.1:$PORT"
cd "$WORK"  # as the image: a working directory that holds nothing of the service
"${RUN_AS[@]}" "${MODELFAUCET[@]}" serve --workers "$WORKERS" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

step "4. /health, /ready, /docs"
"$PYTHON" - "$PORT" <<'PY' || fail "the service did not become ready and healthy"
import json, sys, time, urllib.error, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"

def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=3) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, "", b""

deadline = time.monotonic() + 60
while True:
    try:
        status, _, body = get("/ready")
        if status == 200:
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("not ready after 60 s")
    time.sleep(0.5)
assert json.loads(body) == {"status": "ready", "database": "reachable", "migrations": "current"}, body
status, _, body = get("/health")
assert (status, json.loads(body)) == (200, {"status": "ok"}), body
for path, media in [("/docs", "text/html"), ("/docs/static/docs.js", "text/javascript"),
                    ("/docs/static/swagger-ui-bundle.js", "text/javascript")]:
    status, content_type, _ = get(path)
    assert status == 200 and content_type.startswith(media), (path, status, content_type)
PY

step "5. SIGTERM: drain and exit 0"
kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
[ "$status" = 0 ] || fail "the server exited $status after SIGTERM"
grep -q '"logger": "modelfaucet.access"' "$WORK/server.log" || fail "no JSON request log line"
! grep -q "Traceback" "$WORK/server.log" || fail "a traceback in the server log"
step "ok"
