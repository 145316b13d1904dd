#!/usr/bin/env bash
# bench/restart.sh - rfm-serve restarted on a store of a million customers:
# seconds from exec to GET /ready answering 200 (models loaded, the store
# opened, listening), the issue's "restart with 1 M customers in state:
# ready in <= 2 s". The store is seeded once by a first start from MODELS
# (trained on bench/run.sh's synthetic million), stopped with SIGTERM, then
# the daemon is started again RUNS times on it. Prints each start, their
# median, the daemon's CPU seconds for the median's start and peak RSS.
# usage: bench/restart.sh CONFIG MODELS [RUNS]   (stops what it started)
set -euo pipefail
CFG=$1 MODELS=$2 RUNS=${3:-3}
DIR=$(mktemp -d /tmp/rfmbench_restart_XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # sets pid, and T (s from exec to /ready 200); $1: how long to wait at most
  local p t0 i
  p=$(port)
  t0=$(date +%s.%N)
  RFM_API_TOKENS=bench-token bin/rfm-serve --config "$CFG" --models "$MODELS" --port "$p" \
    --state "$DIR/state.db" 2>>"$DIR/serve.log" & pid=$!
  for i in $(seq $(( $1 * 200 ))); do
    curl -sf -o /dev/null "http://127.0.0.1:$p/ready" && break
    sleep 0.005
  done
  T=$(echo "$(date +%s.%N) - $t0" | bc -l)
  curl -sf -o /dev/null "http://127.0.0.1:$p/ready" || { echo "  not ready after $1 s"; tail -3 "$DIR/serve.log"; exit 1; }
}
stop() {
  local ticks rss
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  CPU=$(echo "$ticks / $(getconf CLK_TCK)" | bc -l); RSS=$((rss / 1024))
}
start 600
stop
seeded=$(grep -c . "$DIR/serve.log" >/dev/null; sed -n 's/.*state \(.*\) seeded.*/\1/p' "$DIR/serve.log" | head -n 1)
printf '  first start seeds the store: %.1f s (%s MB file)\n' "$T" "$(du -m "$DIR/state.db" | cut -f1)"
ts=()
for r in $(seq "$RUNS"); do
  start 60
  stop
  ts+=("$T")
  printf '  restart %d: ready in %.3f s wall, %.2f CPU s, peak RSS %d MB\n' "$r" "$T" "$CPU" "$RSS"
done
med=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
printf '  median restart %.3f s; target <= 2 s\n' "$med"
grep -m1 "customers" "$DIR/serve.log" | sed 's/^/  daemon: /' || true
