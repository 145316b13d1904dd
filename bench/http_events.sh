#!/usr/bin/env bash
# bench/http_events.sh - the HTTP figures of the customer-state store (issue 14):
# POST /events (batches of 500 new events, 32 connections) and GET /customers/{id}
# (32 connections), then GET while batches stream in. Part of `make bench`
# (bench/run.sh); alone: `bench/http_events.sh [OUT]` from the repository root,
# after `make all` and with models/ trained.
#
# Besides wall-clock rates it prints the daemon's CPU time (user + sys from
# /proc/PID/stat, every thread) per event and per GET: the machine is shared
# (wrk runs on the same 2 cores, other jobs too), so CPU per unit of work is
# the figure that compares two runs; the rates are the share of 2 cores the
# daemon got. A fresh store is seeded from models/ (the bundled file) for each
# server.threads setting (0: one per core; 1: wrk has the other core; 32).
set -euo pipefail
B=${B:-build}
OUT=${1:-bench/out}
mkdir -p "$OUT"
[ -f models/manifest.json ] || bin/rfm-train --quiet --config config/rfm.yaml
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rps() { sed -n 's/^Requests\/sec: *//p'; }
p99() { awk '/^ *99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}'; }
nreq() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p'; }
# CPU seconds (user + sys) of a process and its threads so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
export RFM_BENCH_TOKEN=${RFM_BENCH_TOKEN:-bench-token}
DUR=${BENCH_HTTP_SECONDS:-10}

for th in 0 1 32; do
  sed "s/^\(  threads:\).*/\1 $th/" config/rfm.yaml > "$OUT/events_$th.yaml"
  rm -f "$OUT"/events.db*
  ep=$(port)
  RFM_API_TOKENS=$RFM_BENCH_TOKEN bin/rfm-serve --config "$OUT/events_$th.yaml" --port "$ep" \
    --state "$OUT/events.db" 2>"$OUT/events.log" & epid=$!
  wait_port "$ep"
  c0=$(cpu "$epid")
  ev_out=$(wrk -t2 -c32 -d"$DUR"s -s bench/events.lua "http://127.0.0.1:$ep/events")
  c1=$(cpu "$epid")
  commits=$(curl -s "http://127.0.0.1:$ep/metrics" | awk '/^rfm_state_commits_total\{result="ok"\}/ {c=$2} /^rfm_state_commit_events_total/ {e=$2} END {printf "%.0f", e / (c ? c : 1)}')
  get_out=$(wrk -t2 -c32 -d"$DUR"s --latency -s bench/customer.lua "http://127.0.0.1:$ep/")
  c2=$(cpu "$epid")
  wrk -t1 -c16 -d"$DUR"s -s bench/events.lua "http://127.0.0.1:$ep/events" >"$OUT/mixed_events.txt" & wpid=$!
  mix_out=$(wrk -t1 -c16 -d"$DUR"s --latency -s bench/customer.lua "http://127.0.0.1:$ep/")
  wait "$wpid" || true
  # Server-side view over the whole run: GETs answered within 2.5 ms of their first
  # callback (the share the daemon's own work and locks explain), and store lookups
  # (GETs and the feed's scoring, read lock included) within 1 ms.
  metrics=$(curl -s "http://127.0.0.1:$ep/metrics")
  kill "$epid"; wait "$epid" 2>/dev/null || true
  share() { echo "$metrics" | awk -v sel="$1" -v le="$2" 'index($0, sel) && index($0, "le=\"" le "\"") {w=$2}
    index($0, sel) && index($0, "le=\"+Inf\"") {t=$2} END {printf "%.2f", t ? 100 * w / t : 0}'; }
  get_in=$(share 'endpoint="/customers/{id}"' 0.0025)
  look_in=$(share 'op="get"' 0.001)
  nev=$(( $(echo "$ev_out" | nreq) * 500 )); nget=$(echo "$get_out" | nreq)
  printf '  server.threads %-2s: POST /events %8.0f events/s (%.1f req/s x 500), non-2xx: %s, %s events per commit\n' \
    "$th" "$(echo "$(echo "$ev_out" | rps) * 500" | bc -l)" "$(echo "$ev_out" | rps)" \
    "$(echo "$ev_out" | sed -n 's/.*Non-2xx or 3xx responses: *//p')" "$commits"
  printf '                     daemon CPU %.2f us per event (%.2f s for %d events)\n' \
    "$(echo "($c1 - $c0) * 1000000 / $nev" | bc -l)" "$(echo "$c1 - $c0" | bc -l)" "$nev"
  printf '                     GET /customers/{id} %8.0f req/s, p99 %.3f ms, daemon CPU %.1f us per request\n' \
    "$(echo "$get_out" | rps)" "$(echo "$get_out" | p99)" "$(echo "($c2 - $c1) * 1000000 / $nget" | bc -l)"
  printf '                     GET while batches stream: p99 %.3f ms, %.0f req/s (%0.f events/s beside it)\n' \
    "$(echo "$mix_out" | p99)" "$(echo "$mix_out" | rps)" "$(echo "$(rps <"$OUT/mixed_events.txt") * 500" | bc -l)"
  printf '                     server side, whole run: %s%% of GETs answered within 2.5 ms, %s%% of store lookups within 1 ms\n' \
    "$get_in" "$look_in"
done
printf '  load average now: %s (the rates are the share of 2 cores the daemon got)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
echo "  targets: POST /events >= 50,000 events/s durable; GET /customers/{id} p99 <= 2 ms (alone and beside the stream)"
