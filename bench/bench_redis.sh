#!/usr/bin/env bash
# bench/bench_redis.sh - the customer state in Redis through HTTP.
#
# 0. One rfm-serve with the embedded SQLite store (the default), for the
#    ratio: the phases below in the same run.
# 1. One rfm-serve with --state redis://..., a redis-server of its own (free
#    port, temporary folder, appendonly yes + appendfsync everysec, the
#    documented default): POST /events (batches of 500 new events, 32
#    connections), then GET /customers/{id} as of 2011-12-09 (inside the
#    histories the events just extended: the server walks the days) and as
#    of today (the aggregates alone), 32 connections each. Then the same
#    with appendfsync always.
# 2. Two rfm-serve replicas on one redis-server (everysec) behind nginx
#    (nginx.conf generated in the temporary folder, upstream keepalive to
#    both): the same events and reads through nginx.
# Between 0 and 1: build/bench/bench_redis_read (the Redis call alone, no
# HTTP: the calling thread's CPU per read) over TCP and the Unix socket.
# Per phase: Redis's own CPU per request and its commands per request
# (INFO commandstats), so a slow figure can be told from a busy machine.
# Per phase also the daemons' CPU per request (user + system, /proc ticks
# over the run; for POST /events per batch of 500).
# wrk, nginx, Redis and the daemons share the machine's cores. Stops what
# it started whatever happens. Usage: B=build bench/bench_redis.sh [OUT]
# (needs models/). RFM_BENCH_SECONDS (default 10) per wrk run; RFM_SERVE_BIN
# another daemon binary (to compare two builds in the same conditions);
# RFM_BENCH_REDIS_UNIX=1: the daemons reach Redis through its Unix socket
# (redis+unix://) instead of TCP on the loopback.
set -euo pipefail
OUT=${1:-bench/out}
mkdir -p "$OUT"
export RFM_BENCH_TOKEN=${RFM_BENCH_TOKEN:-bench-token}
SECS=${RFM_BENCH_SECONDS:-10}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rps() { sed -n 's/^Requests\/sec: *//p'; }
p99() { awk '/^ *99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}'; }
nreq() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p'; }
non2xx() { sed -n 's/.*Non-2xx or 3xx responses: *//p'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
[ -x /usr/bin/redis-server ] || { echo "  skipped: /usr/bin/redis-server is absent (make deps)"; exit 0; }
[ -f models/manifest.json ] || bin/rfm-train --quiet --config config/rfm.yaml
RDIR=$(mktemp -d /tmp/rfmbench_redis_XXXXXX)
rpid=""; spids=(); sports=(); npid=""
stop_all() {
  [ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
  for p in "${spids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
  npid=""; spids=(); sports=(); rpid=""
  return 0
}
cleanup() { stop_all; rm -rf "$RDIR"; }
trap cleanup EXIT
# RFM_BENCH_REDIS_THREADS: the daemons' server.threads (default 32: a request waits on Redis).
sed "s/^\(  threads:\).*/\1 ${RFM_BENCH_REDIS_THREADS:-32}/" config/rfm.yaml > "$OUT/redis.yaml"
HZ=$(getconf CLK_TCK)
: > "$OUT/redis_serve.log"

start_redis() { # $1 appendfsync
  rp=$(port)
  rm -rf "${RDIR:?}"/redis; mkdir -p "$RDIR/redis"
  /usr/bin/redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly yes \
    --unixsocket "$RDIR/redis/redis.sock" --unixsocketperm 700 \
    --appendfsync "$1" --dir "$RDIR/redis" --daemonize no >"$RDIR/redis.log" 2>&1 & rpid=$!
  wait_port "$rp"
}
redis_url() { # the Redis started, over TCP or its Unix socket
  if [ "${RFM_BENCH_REDIS_UNIX:-0}" = 1 ]; then echo "redis+unix://$RDIR/redis/redis.sock?db=0"
  else echo "redis://127.0.0.1:$rp/0"; fi
}
start_serve() { # [STATE]: SERVE_PORT; the pid goes to spids (default: the Redis started)
  local sp; sp=$(port)
  RFM_API_TOKENS=$RFM_BENCH_TOKEN "${RFM_SERVE_BIN:-bin/rfm-serve}" --config "$OUT/redis.yaml" --port "$sp" \
    --state "${1:-$(redis_url)}" 2>>"$OUT/redis_serve.log" & spids+=($!)
  wait_port "$sp"
  SERVE_PORT=$sp; sports+=("$sp")
}
redis_calls() { # commands Redis ran, scripts' inner ones included
  redis-cli -p "$rp" info commandstats | awk -F'[=,:]' '/^cmdstat_/ && $1 !~ /cmdstat_(info|config)/ {n += $3} END {print n + 0}'
}
committed() { # events the daemons committed so far
  local p; for p in "${sports[@]}"; do curl -s "http://127.0.0.1:$p/metrics"; done |
    awk '/^rfm_state_commit_events_total/ {n += $2} END {printf "%.0f", n}'
}
# wrk leaves up to 32 batches unanswered when it stops; the daemons still
# commit them. Wait until no event has been committed for half a second, so
# that one phase's work is not counted in the next.
settle() {
  local a b
  a=$(committed)
  for _ in $(seq 120); do sleep 0.5; b=$(committed); [ "$a" = "$b" ] && return 0; a=$b; done
}
# One wrk run against $1 with script $2; sets W (wrk's output) and LOADTXT
# (Redis CPU and commands per request during the run).
daemon_ticks() { # CPU ticks of the daemons so far (user + system)
  local p n=0; for p in "${spids[@]}"; do n=$((n + $(cpu_ticks "$p"))); done; echo "$n"
}
run_wrk() {
  local c0=0 t0=0 c1=0 t1=0 n e0 d0 d1
  [ -n "$rpid" ] && { c0=$(redis_calls); t0=$(cpu_ticks "$rpid"); }
  e0=$(committed)
  d0=$(daemon_ticks)
  W=$(wrk -t2 -c32 -d"${SECS}s" --latency -s "$2" "$1")
  settle
  [ -n "$rpid" ] && { c1=$(redis_calls); t1=$(cpu_ticks "$rpid"); }
  d1=$(daemon_ticks)
  n=$(echo "$W" | nreq)
  # A batch's cost: over the batches committed, those wrk left unanswered too.
  [ "$2" = bench/events.lua ] && n=$(echo "$(committed) $e0" | awk '{printf "%.0f", ($1 - $2) / 500}')
  LOADTXT=$(echo "$d0 $d1 $n $HZ" | awk '{n = $3 ? $3 : 1; printf "; daemons %.0f us CPU a request", ($2 - $1) / $4 * 1e6 / n}')
  [ -n "$rpid" ] && LOADTXT=$LOADTXT$(echo "$c0 $c1 $t0 $t1 $n $HZ" | awk '{n = $5 ? $5 : 1; printf "; Redis %.0f us CPU and %.1f commands a request", ($4 - $3) / $6 * 1e6 / n, ($2 - $1) / n}')
  return 0
}
report() { # $1 label, $2 the request kind (events: x500)
  if [ "$2" = events ]; then
    printf '  %-34s POST /events %8.0f events/s (%.1f req/s x 500), p99 %.0f ms, non-2xx: %s%s\n' \
      "$1" "$(echo "$(echo "$W" | rps) * 500" | bc -l)" "$(echo "$W" | rps)" "$(echo "$W" | p99)" \
      "$(echo "$W" | non2xx)" "$LOADTXT"
  else
    printf '  %-34s GET /customers/{id} %-9s %8.0f req/s, p99 %.2f ms, non-2xx %s%s\n' \
      "$1" "$2" "$(echo "$W" | rps)" "$(echo "$W" | p99)" "$(echo "$W" | non2xx)" "$LOADTXT"
  fi
}
TODAY_LUA=$RDIR/customer_today.lua
sed 's/?as_of=2011-12-09//' bench/customer.lua > "$TODAY_LUA"

echo "  load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores); Redis through $( [ "${RFM_BENCH_REDIS_UNIX:-0}" = 1 ] && echo "its Unix socket" || echo TCP)"
# The embedded SQLite store, the same phases and config (threads 32), for the ratio.
rm -f "$RDIR"/state.db*
start_serve "$RDIR/state.db"
run_wrk "http://127.0.0.1:$SERVE_PORT/events" bench/events.lua
report "one daemon, SQLite (embedded):" events
run_wrk "http://127.0.0.1:$SERVE_PORT/" bench/customer.lua
report "" "2011-12-09"
run_wrk "http://127.0.0.1:$SERVE_PORT/" "$TODAY_LUA"
report "" "today"
# The first read phase runs right after the ingest: as of 2011-12-09 once
# more, so that a worse tail there is told to belong to the path (both
# runs) or to the position (the first only; issue 14).
run_wrk "http://127.0.0.1:$SERVE_PORT/" bench/customer.lua
report "" "2011-12-09 again"
stop_all
# The Redis call alone (no HTTP): the calling thread's CPU per read, over
# TCP and over the Unix socket, on a Redis of its own.
if [ -x "${B:-build}/bench/bench_redis_read" ]; then
  start_redis everysec
  for u in "redis://127.0.0.1:$rp/0" "redis+unix://$RDIR/redis/redis.sock"; do
    "${B:-build}/bench/bench_redis_read" "$u" 20000 2000 | sed 's/^/  /'
  done
  stop_all
fi
for fsync in everysec always; do
  start_redis "$fsync"
  start_serve
  run_wrk "http://127.0.0.1:$SERVE_PORT/events" bench/events.lua
  report "one daemon, appendfsync $fsync:" events
  run_wrk "http://127.0.0.1:$SERVE_PORT/" bench/customer.lua
  report "" "2011-12-09"
  run_wrk "http://127.0.0.1:$SERVE_PORT/" "$TODAY_LUA"
  report "" "today"
  stop_all
done

# Two replicas behind nginx, on one Redis (everysec).
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "  two replicas behind nginx: skipped, nginx is absent (make deps: nginx-light)"
  exit 0
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
start_redis everysec
start_serve; s1=$SERVE_PORT
start_serve; s2=$SERVE_PORT
np=$(port)
mkdir -p "$RDIR/nginx/tmp"
{
  [ "$(id -u)" = 0 ] && echo "user root;"
  cat <<EOF
worker_processes 1;
pid $RDIR/nginx/nginx.pid;
error_log $RDIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $RDIR/nginx/tmp/body;
  proxy_temp_path $RDIR/nginx/tmp/proxy;
  fastcgi_temp_path $RDIR/nginx/tmp/fastcgi;
  uwsgi_temp_path $RDIR/nginx/tmp/uwsgi;
  scgi_temp_path $RDIR/nginx/tmp/scgi;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  upstream rfm {
    server 127.0.0.1:$s1;
    server 127.0.0.1:$s2;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$np;
    location / {
      proxy_pass http://rfm;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 16 64k;
    }
  }
}
EOF
} > "$RDIR/nginx/nginx.conf"
"$NGINX" -e "$RDIR/nginx/error.log" -c "$RDIR/nginx/nginx.conf" -p "$RDIR/nginx" -g 'daemon off;' & npid=$!
wait_port "$np"
run_wrk "http://127.0.0.1:$np/events" bench/events.lua
report "two replicas behind nginx:" events
run_wrk "http://127.0.0.1:$np/" bench/customer.lua
report "" "2011-12-09"
run_wrk "http://127.0.0.1:$np/" "$TODAY_LUA"
report "" "today"
# Upstream keepalive at work: a connection nginx closed to a replica stays
# in TIME-WAIT for a minute; with keepalive only the bench's own /metrics
# reads (curl, a connection each) leave any.
tw=$(ss -tan state time-wait 2>/dev/null | awk -v a=":$s1" -v b=":$s2" '$4 ~ a"$" || $4 ~ b"$" {n++} END {print n + 0}')
echo "  nginx -> replicas: $tw connections closed over all its runs (TIME-WAIT; keepalive 64)"
stop_all
echo "  load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  target: >= 20,000 by-id reads/s in Redis mode (issue 15); docs/scaling.md reads these lines"
