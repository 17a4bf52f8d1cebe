#!/usr/bin/env bash
# `make run`: bring up the whole gateway on its embedded defaults. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh requirements.txt
PY=.venv/bin/python
mkdir -p var
export COUNTERSIGN_DEBUG="${COUNTERSIGN_DEBUG:-true}"
PORT="${PORT:-8000}"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping Countersign…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

if [ -z "${REDIS_URL:-}" ]; then
  REDIS_PORT="${COUNTERSIGN_REDIS_PORT:-6379}"
  if $PY -c "import socket,sys; s=socket.socket(); s.settimeout(0.3); sys.exit(0 if s.connect_ex(('127.0.0.1', $REDIS_PORT)) == 0 else 1)"; then
    echo "Using the Redis already listening on 127.0.0.1:$REDIS_PORT"
  else
    REDIS_BIN="$($PY -c 'from countersign_servers import redis_server_binary; print(redis_server_binary())')"
    echo "Starting $REDIS_BIN on 127.0.0.1:$REDIS_PORT"
    "$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/var" --save 60 1 --appendonly no >var/redis.log 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do
      $PY -c "import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(('127.0.0.1', $REDIS_PORT)) == 0 else 1)" && break
      sleep 0.1
    done
  fi
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
fi

$PY manage.py migrate --noinput -v0
$PY manage.py seed_demo --key-file var/demo-agent.key
[ -f var/demo-agent.key ] && echo "  (the demo agent's key is also in var/demo-agent.key, for the README tour)"

.venv/bin/celery -A config worker --loglevel=INFO --concurrency=2 >var/worker.log 2>&1 &
pids+=($!)
.venv/bin/celery -A config beat --loglevel=INFO --schedule var/celerybeat-schedule >var/beat.log 2>&1 &
pids+=($!)
# --ws-max-size: the websocket's largest message, the same setting the queue consumer enforces (1009 above it).
.venv/bin/uvicorn config.asgi:application --host "${HOST:-127.0.0.1}" --port "$PORT" --ws websockets --lifespan off \
  --ws-max-size "${COUNTERSIGN_WS_MAX_MESSAGE_BYTES:-65536}" &
pids+=($!)

echo
echo "Countersign is running: http://127.0.0.1:$PORT/queue/  (API docs: http://127.0.0.1:$PORT/api/docs/)"
echo "Logs: var/worker.log, var/beat.log. Press Ctrl-C to stop."
wait -n "${pids[@]}"
