#!/usr/bin/env bash
# bench/callgrind.sh - instructions per request of rfm-serve, per endpoint,
# and of the floor (bench/floor.c): the stable figure behind bench/http.sh's
# wall ratios, which other work on the machine moves. Each server runs under
# callgrind with instrumentation off until warmed up (200 requests), then
# on for N keep-alive requests over 4 connections (a Python client, outside
# the count). User space only: the kernel's share (sockets, epoll) is not
# counted, and it is the same for both.
#
# usage: bench/callgrind.sh [ENDPOINT...]   (segment churn cltv customer customer_today
#   similar floor; customer is bench/customer.lua's ?as_of=2011-12-09, customer_today
#   the same ids without as_of)
#   BIN=path/to/rfm-serve (default bin/rfm-serve), N=2000, B=build, STATE=--state's
#   argument (e.g. redis://127.0.0.1:6379/0, a server seeded already: seeding
#   under callgrind takes minutes)
# Prints "endpoint Ir/request memset/request": memset is libmicrohttpd
# zeroing its per-connection memory pool between requests (one instruction
# per byte under callgrind, far less on the CPU), shown apart.
set -euo pipefail
B=${B:-build}
BIN=${BIN:-bin/rfm-serve}
N=${N:-2000}
OUT=bench/out/callgrind
mkdir -p "$OUT"
export RFM_BENCH_TOKEN=${RFM_BENCH_TOKEN:-bench-token}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
load() { # PORT ENDPOINT COUNT
  python3 - "$@" <<'PY'
import http.client, os, sys, threading
port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
tok = os.environ.get("RFM_BENCH_TOKEN", "")
REQ = {
 "segment": ("POST", lambda i: "/segment", '{"recency": 12, "frequency": 7, "monetary": 4310.5}'),
 "floor": ("POST", lambda i: "/segment", '{"recency": 12, "frequency": 7, "monetary": 4310.5}'),
 "churn": ("POST", lambda i: "/predict_churn", '{"recency": 300, "frequency": 1, "monetary": 50}'),
 "cltv": ("POST", lambda i: "/predict_cltv", '{"customer_id": "12347"}'),
 "customer": ("GET", lambda i: "/customers/%d?as_of=2011-12-09" % (12346 + (i * 7919) % 6000), None),
 "customer_today": ("GET", lambda i: "/customers/%d" % (12346 + (i * 7919) % 6000), None),
 "similar": ("POST", lambda i: "/similar_customers", '{"customer_id": "12347", "k": 10}'),
}
m, path, body = REQ[kind]
bad = [0]
def run(k):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(k):
        h = {"Authorization": "Bearer " + tok}
        if body: h["Content-Type"] = "application/json"
        c.request(m, path(i), body=body, headers=h)
        r = c.getresponse(); r.read()
        if r.status not in (200, 404): bad[0] += 1
ts = [threading.Thread(target=run, args=(n // 4,)) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
if bad[0]: print("unexpected statuses:", bad[0], file=sys.stderr)
PY
}
for ep in "${@:-segment churn cltv customer similar floor}"; do
  for e in $ep; do
    p=$(port); f="$OUT/$e.out"
    if [ "$e" = floor ]; then
      valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$f" "$B/bench/floor" "$p" 2>"$OUT/$e.err" & pid=$!
    else
      RFM_API_TOKENS=$RFM_BENCH_TOKEN valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$f" \
        "$BIN" --config config/rfm.yaml --port "$p" ${STATE:+--state "$STATE"} 2>"$OUT/$e.err" & pid=$!
    fi
    wait_port "$p"
    load "$p" "$e" 200
    callgrind_control -i on "$pid" >/dev/null
    load "$p" "$e" "$N"
    callgrind_control -i off "$pid" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ && !d {gsub(",","",$1); print $1; d=1}')
    ms=$(callgrind_annotate "$f" 2>/dev/null | awk '/__memset_(avx2|evex|sse2)_unaligned_erms/ && !d {gsub(",","",$1); print $1; d=1}')
    printf '%-9s Ir/request %8d  memset/request %6d  without memset %8d\n' "$e" $((ir / N)) $((${ms:-0} / N)) $(((ir - ${ms:-0}) / N))
  done
done
