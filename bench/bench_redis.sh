#!/usr/bin/env bash
# bench/bench_redis.sh - the customer state in Redis through HTTP: one
# rfm-serve with --state redis://..., a redis-server of its own (free port,
# temporary folder, appendonly yes + appendfsync everysec, the documented
# default), POST /events (batches of 500 new events, 32 connections) then
# GET /customers/{id} (32 connections), with wrk on the same cores.
# Then the same with appendfsync always. Stops what it started whatever
# happens. Usage: B=build bench/bench_redis.sh [OUT]  (needs models/)
set -euo pipefail
OUT=${1:-bench/out}
mkdir -p "$OUT"
export RFM_BENCH_TOKEN=${RFM_BENCH_TOKEN:-bench-token}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rps() { sed -n 's/^Requests\/sec: *//p'; }
p99() { awk '/^ *99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}'; }
[ -x /usr/bin/redis-server ] || { echo "  skipped: /usr/bin/redis-server is absent (make deps)"; exit 0; }
[ -f models/manifest.json ] || bin/rfm-train --quiet --config config/rfm.yaml
RDIR=$(mktemp -d /tmp/rfmbench_redis_XXXXXX)
rpid=""; spid=""
cleanup() {
  [ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
  rm -rf "$RDIR"
}
trap cleanup EXIT
for fsync in everysec always; do
  rp=$(port)
  rm -rf "$RDIR"/*
  /usr/bin/redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync "$fsync" --dir "$RDIR" --daemonize no >"$RDIR/../rfmbench_redis.log" 2>&1 & rpid=$!
  wait_port "$rp"
  sed "s/^\(  threads:\).*/\1 32/" config/rfm.yaml > "$OUT/redis.yaml"
  sp=$(port)
  RFM_API_TOKENS=$RFM_BENCH_TOKEN bin/rfm-serve --config "$OUT/redis.yaml" --port "$sp" \
    --state "redis://127.0.0.1:$rp/0" 2>"$OUT/redis_serve.log" & spid=$!
  wait_port "$sp"
  ev_out=$(wrk -t2 -c32 -d10s -s bench/events.lua "http://127.0.0.1:$sp/events")
  commits=$(curl -s "http://127.0.0.1:$sp/metrics" | awk '/^rfm_state_commits_total\{result="ok"\}/ {c=$2} /^rfm_state_commit_events_total/ {e=$2} END {printf "%.0f", e / (c ? c : 1)}')
  get_out=$(wrk -t2 -c32 -d10s --latency -s bench/customer.lua "http://127.0.0.1:$sp/")
  kill "$spid"; wait "$spid" 2>/dev/null || true; spid=""
  kill "$rpid"; wait "$rpid" 2>/dev/null || true; rpid=""
  printf '  appendfsync %-8s: POST /events %8.0f events/s (%.1f req/s x 500), non-2xx: %s, %s events per script\n' \
    "$fsync" "$(echo "$(echo "$ev_out" | rps) * 500" | bc -l)" "$(echo "$ev_out" | rps)" \
    "$(echo "$ev_out" | sed -n 's/.*Non-2xx or 3xx responses: *//p')" "$commits"
  printf '                        GET /customers/{id} %8.0f req/s, p99 %.3f ms (about 30 %% are 404: ids not in the file)\n' \
    "$(echo "$get_out" | rps)" "$(echo "$get_out" | p99)"
done
echo "  target: >= 20,000 by-id reads/s in Redis mode (issue 15)"
