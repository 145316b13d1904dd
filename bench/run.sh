#!/usr/bin/env bash
# bench/run.sh - benchmarks for `make bench`; prints figures and ratios
# against references measured in the same run. Not a test: it never fails
# on a slow machine, it reports.
set -euo pipefail
B=${B:-build}
OUT=bench/out
mkdir -p "$OUT"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
# A VM's steal time (the host running other guests on our cores) slows every
# wall figure: its share of the CPU time since the run began, per section.
vm_ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $9}' /proc/stat; }
read -r T0 S0 < <(vm_ticks); TS=$T0 SS=$S0
steal() { # the share since the last call, and since the start
  local t s; read -r t s < <(vm_ticks)
  printf '  (VM steal time: %.0f %% of the CPU time in this section, %.0f %% since the start)\n' \
    "$(echo "($s - $SS) * 100 / ($t - $TS + 1)" | bc -l)" "$(echo "($s - $S0) * 100 / ($t - $T0 + 1)" | bc -l)"
  TS=$t SS=$s
}

echo "== ingest, RFM and segments on the bundled file (data/online_retail.csv.gz)"
# The segments model reads no product column; the benchmark uses the same config.
sed 's/^\(    product:\).*/\1 null/' config/rfm.yaml > "$OUT/bench.yaml"
runs=()
for i in 1 2 3 4 5; do runs+=("$("$B/bench/bench_ingest" "$OUT/bench.yaml" data/online_retail.csv.gz)"); done
total=$(printf '%s\n' "${runs[@]}" | while read -r l; do echo "$l" | field total_s; done | median)
ingest=$(printf '%s\n' "${runs[@]}" | while read -r l; do echo "$l" | field ingest_s; done | median)
floor=$(for i in 1 2 3 4 5; do secs gzip -dc data/online_retail.csv.gz; done | median)
echo "  ${runs[0]}"
printf '  median of 5: %.3f s wall (ingest %.3f s); target < 0.300 s\n' "$total" "$ingest"
printf '  reference, same run: gzip -dc alone %.3f s -> ours / decompress-only = %.2f\n' "$floor" \
  "$(echo "$total / $floor" | bc -l)"
if line=$(/usr/bin/python3 bench/python_train.py data/online_retail.csv.gz segments); then
  printf '  pandas + scikit-learn, the same steps (bench/python_train.py): %s s -> ours %.1fx faster\n' \
    "$(echo "$line" | field total_s)" "$(echo "$(echo "$line" | field total_s) / $total" | bc -l)"
else
  echo "  pandas + scikit-learn: not installed (make bench-deps), line skipped"
fi

steal
echo "== synthetic exports: 20,000 customers, 400,000 invoices, growing lines (bigger baskets)"
for n in 1000000 4000000 10000000; do
  f="$OUT/syn_$n.csv"
  [ -f "$f" ] || "$B/bench/gen_txn" "$n" 20000 400000 "$f"
  line=$("$B/bench/bench_ingest" "$OUT/bench.yaml" "$f")
  wcs=$(secs wc -l "$f")
  rate=$(echo "$line" | field mlines_per_s)
  printf '  %9d lines: %s M lines/s, peak RSS %s MB (wc -l reads it at %.2f M lines/s: ours/wc = %.2f)\n' \
    "$n" "$rate" "$(echo "$line" | field peak_rss_mb)" "$(echo "$n / $wcs / 1000000" | bc -l)" \
    "$(echo "$rate / ($n / $wcs / 1000000)" | bc -l)"
done
echo "  targets: >= 2 M lines/s; peak RSS flat as lines grow (memory follows customers and purchases)"
steal
echo "== the 10 M-line file read on one thread, the default (one per core) and one parse thread per core, alternating"
# CPU of the calling thread is the parse's critical path (the reader thread
# reads and hashes beside it); on a loaded machine it says more than wall.
# The reader's thread counts as one of txn_options.threads (one fewer
# parses), so the default parses on nproc - 1 threads and nproc + 1 parses
# on every core beside the reader.
for i in 1 2; do
  for t in 1 "$(nproc)" "$(($(nproc) + 1))"; do
    line=$(RFM_THREADS=$t "$B/bench/bench_ingest" "$OUT/bench.yaml" "$OUT/syn_10000000.csv")
    printf '  threads=%s (%s parsing): %s M lines/s, read CPU %s s (calling thread %s s), parts %s, windows read again %s, peak RSS %s MB\n' \
      "$(echo "$line" | field threads)" "$(( t > 1 ? t - 1 : 1 ))" "$(echo "$line" | field mlines_per_s)" "$(echo "$line" | field ingest_cpu_s)" \
      "$(echo "$line" | field ingest_main_cpu_s)" "$(echo "$line" | field parts)" "$(echo "$line" | field reread)" \
      "$(echo "$line" | field peak_rss_mb)"
  done
done
echo "  with parts: the calling thread's CPU about 1/parsing threads of one thread's, total CPU about the same"
echo "  (on 2 cores one parse thread beside the reader is the fastest: the window's serial merge and the"
echo "  reader's four blocks of read-ahead leave two parse threads waiting)"
steal
echo "== the same 10 M lines in other dialects (config only: data.separator, data.decimal)"
sed 's/^\(  separator:\).*/\1 ";"/; s/^\(  decimal:\).*/\1 ","/' "$OUT/bench.yaml" > "$OUT/bench_semicolon.yaml"
sed 's/^\(  separator:\).*/\1 whitespace/' "$OUT/bench.yaml" > "$OUT/bench_whitespace.yaml"
for d in semicolon whitespace; do
  f="$OUT/syn_10000000_$d.csv"
  [ -f "$f" ] || "$B/bench/gen_txn" 10000000 20000 400000 "$f" "$d"
  cat "$f" > /dev/null # in the page cache, as the 10 M-line file above: the parser's speed, not the disk's
  line=$("$B/bench/bench_ingest" "$OUT/bench_$d.yaml" "$f")
  printf '  %-10s %s M lines/s, %s customers, peak RSS %s MB\n' "$d" "$(echo "$line" | field mlines_per_s)" \
    "$(echo "$line" | field customers)" "$(echo "$line" | field peak_rss_mb)"
done
echo "  target: >= 4 M lines/s each (each file read once first, so the figure is the parser's, not the disk's)"

steal
echo "== scale: 10 M, 30 M and 100 M synthetic lines piped from the generator (nothing on disk)"
# The generator (about 0.15 CPU s per million lines) shares the 2 cores with
# the reader, so these rates are a floor for a file or a gzip stream.
# 100 M lines take minutes here: RFM_BENCH_SCALE=0 skips the section.
if [ "${RFM_BENCH_SCALE:-1}" != 0 ]; then
  for n in 10000000 30000000 100000000; do
    line=$("$B/bench/gen_txn" "$n" 20000 400000 /dev/stdout | "$B/bench/bench_ingest" "$OUT/bench.yaml" -)
    printf '  %9d lines: %s M lines/s (ingest %s s, total %s s), peak RSS %s MB\n' "$n" \
      "$(echo "$line" | field mlines_per_s)" "$(echo "$line" | field ingest_s)" \
      "$(echo "$line" | field total_s)" "$(echo "$line" | field peak_rss_mb)"
  done
  echo "  targets: 100 M lines <= 30 s on 2 cores (>= 3.3 M lines/s); peak RSS flat in lines"
  if line=$(/usr/bin/python3 bench/pandas_rfm.py "$OUT/syn_10000000.csv"); then
    printf '  pandas, the same 10 M lines from the file (read_csv, cleaning, RFM): %s s, %s M lines/s, peak RSS %s MB\n' \
      "$(echo "$line" | field total_s)" "$(echo "$line" | field mlines_per_s)" "$(echo "$line" | field peak_rss_mb)"
  else
    echo "  pandas: not installed (make bench-deps), line skipped"
  fi
fi

steal
echo "== training on the bundled data: CPU seconds (user + sys, this process and its threads) and wall"
cpu_wall() { python3 -c 'import resource,subprocess,sys,time
t=time.monotonic(); subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
r=resource.getrusage(resource.RUSAGE_CHILDREN); print("%.2f %.2f" % (r.ru_utime+r.ru_stime, time.monotonic()-t))' "$@"; }
for only in "" "segments,churn,cltv" churn uplift; do
  read -r c w < <(cpu_wall bin/rfm-train --quiet --config config/rfm.yaml --models "$OUT/models_train" \
    ${only:+--only "$only"})
  printf '  %-28s %6.2f s CPU, %6.2f s wall\n' "${only:-everything}" "$c" "$w"
done
echo "  targets: everything near 6 s wall on a quiet machine; segments,churn,cltv <= 0.2 s"
# The same steps in the Python stack (bench/python_train.py), in this run:
# the 10x target is against it (the issue's figure: 2.19 s on its machine).
# Ours into an empty models folder: the same steps. Into the folder above,
# which holds every model, --only keeps the others and analytics also maps
# the embeddings and reads uplift's Qini curves (printed beside it).
kept=$(for i in 1 2 3; do cpu_wall bin/rfm-train --quiet --config config/rfm.yaml \
  --models "$OUT/models_train" --only segments,churn,cltv | cut -d' ' -f2; done | median)
# Ours and the Python stack in alternating rounds (the host's load moves
# within a minute on a VM: a block of runs each would compare two loads),
# the ratio of the medians; each round's own ratio shows the spread.
ours_w='' py_w='' ratios='' py_imp='' line=''
for i in 1 2 3 4 5; do
  rm -rf "$OUT/models_only"
  w=$(cpu_wall bin/rfm-train --quiet --config config/rfm.yaml --models "$OUT/models_only" \
    --only segments,churn,cltv | cut -d' ' -f2)
  line=$(/usr/bin/python3 bench/python_train.py data/online_retail.csv.gz) || break
  p=$(echo "$line" | field total_s)
  ours_w="$ours_w $w" py_w="$py_w $p" py_imp="$py_imp $(echo "$line" | field import_s)"
  ratios="$ratios $(echo "$p / $w" | bc -l)"
done
if [ -n "$py_w" ]; then
  ours=$(echo $ours_w | tr ' ' '\n' | median) py=$(echo $py_w | tr ' ' '\n' | median)
  printf '  Python stack, the same steps (pandas, scikit-learn, XGBoost, scipy for lifetimes'"'"' likelihoods), median of 5: %s s (imports %s s more)\n' \
    "$py" "$(echo $py_imp | tr ' ' '\n' | median)"
  printf '  segments,churn,cltv into an empty models folder, median of 5 alternating with it: %.3f s wall -> %.1fx the Python stack (rounds %s); target >= 10x\n' \
    "$ours" "$(echo "$py / $ours" | bc -l)" \
    "$(echo $ratios | tr ' ' '\n' | sort -n | awk '{printf "%s%.1f", (NR > 1 ? " " : ""), $1}')"
  printf '  (into the folder holding every model, whose analytics also maps the embeddings and reads the Qini curves: %.2f s, %.1fx)\n' \
    "$kept" "$(echo "$py / $kept" | bc -l)"
else
  echo "  Python stack: not installed (make bench-deps), line skipped"
fi

steal
echo "== the 1,000,000-line export streamed from PostgreSQL (COPY TO STDOUT through libpq)"
B=$B bench/bench_pg.sh "$OUT/syn_1000000.csv"
echo "  the server formats the rows; peak RSS should match the file's (memory flat, no result set held)"

[ -f models/manifest.json ] || bin/rfm-train --quiet --config config/rfm.yaml
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
rps() { sed -n 's/^Requests\/sec: *//p'; }
p99() { awk '/^ *99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; print v}'; }
export RFM_BENCH_TOKEN=bench-token
# The request path, endpoint by endpoint, each against the floor measured
# right before it (bench/http.sh; instructions per request: bench/callgrind.sh).
steal
B=$B bench/http.sh

steal
echo "== bin/rfm-score: every customer of a synthetic million scored to CSV and Parquet"
# Trained with --only segments,churn,cltv; k fixed and a small penalty, so the
# training (minutes) is not the figure and BG/NBD has a proper optimum here.
sed 's/^\(  k:\).*/\1 4/; s/^\(  penalizer_coef:\).*/\1 0.001/' "$OUT/bench.yaml" > "$OUT/bench_score.yaml"
f="$OUT/score_1m.csv"
[ -f "$f" ] || "$B/bench/gen_txn" 4800000 1170000 2400000 "$f"
[ -f "$OUT/models_1m/manifest.json" ] || bin/rfm-train --quiet --config "$OUT/bench_score.yaml" \
  --transactions "$f" --models "$OUT/models_1m" --only segments,churn,cltv
# rfm-score prints rows/s and peak RSS; bash's time adds the CPU seconds (2 threads), which
# say what the wall time would be on an idle machine when other work shares the cores.
# The churn learner rfm-train chose (churn_choose) sets much of the cost: say which.
printf '  churn learner: %s\n' "$(sed -n 's/^ *"learner": "\([a-z]*\)".*/\1/p' "$OUT/models_1m/churn.json" | head -n 1)"
declare -A wall
for ext in csv parquet; do
  TIMEFORMAT='%R %U %S'
  { t=$( { time bin/rfm-score --config "$OUT/bench_score.yaml" --models "$OUT/models_1m" \
      --out "$OUT/scores_1m.$ext" 2>"$OUT/score_$ext.log" >/dev/null; } 2>&1 ); } || true
  read -r w u s <<<"$t"
  wall[$ext]=$w
  rows=$(tail -n 1 "$OUT/score_$ext.log" | sed -n 's/.*: \([0-9]*\) rows of.*/\1/p')
  printf '  %s; %.2f s wall, %.2f s CPU (user %.2f + sys %.2f), %.0f rows per CPU second\n' \
    "$(tail -n 1 "$OUT/score_$ext.log")" "$w" "$(echo "$u + $s" | bc -l)" "$u" "$s" \
    "$(echo "${rows:-0} / ($u + $s)" | bc -l)"
done
printf '  Parquet / CSV wall = %.2f\n' "$(echo "${wall[parquet]} / ${wall[csv]}" | bc -l)"
echo "  targets: CSV <= 4 s for a million customers, all columns; Parquet within 1.5x of CSV"

steal
echo "== rfm-serve restarted on a store of a million customers (bench/restart.sh)"
bash bench/restart.sh "$OUT/bench_score.yaml" "$OUT/models_1m" 3

steal
echo "== lifetime value (BG/NBD + Gamma-Gamma) on the bundled file"
line=$("$B/bench/bench_cltv" config/rfm.yaml data/online_retail.csv.gz)
echo "  $line"
echo "  targets: fit < 50 ms; scoring < 20 us per customer (point scores; the interval: its terms' derivatives and 14 more valuations)"

steal
echo "== segments fit times on simulated customers (five planted groups, RFM units)"
echo "  fit_s: segments_fit whole (k sweep 4-8 with silhouettes, names, rules); rules_s: the rules alone"
"$B/bench/bench_segments" config/rfm.yaml 100000 1000000 | sed 's/^/  /'
echo "  bundled file: segments_s in the first section"

steal
echo "== uplift models on the bundled Hillstrom experiment"
echo "  today's t_learner and causal_forest, then cf_tuned, x_learner, dr_learner, the best rule,"
echo "  random orderings; per arm the held-out normalised Qini [90 % bootstrap interval]"
"$B/bench/bench_uplift" data/hillstrom.csv.gz 2 | sed 's/^/  /'
echo "  targets: all learners' fits within a few seconds on 2 cores; scoring < 50 us per customer"

steal
echo "== customer embeddings and the lookalike index"
t0=$(date +%s.%N)
bin/rfm-train --quiet --config config/rfm.yaml --models "$OUT/models_emb" --only embeddings
printf '  training (embeddings + FAISS index + last-basket evaluation), bundled file: %.2f s (target < 10 s)\n' \
  "$(echo "$(date +%s.%N) - $t0" | bc -l)"
echo "  /similar_customers under load: in the request-path section above (p99 target < 2 ms)"
N=${BENCH_ANN_N:-200000}
echo "  synthetic index, $N customers (BENCH_ANN_N=1000000 for the million; its HNSW build takes minutes with Debian's non-SIMD FAISS):"
"$B/bench/bench_ann" "$N" | sed 's/^/    /'
[ ! -f models/customer2vec.faiss ] || "$B/bench/bench_ann" --model models/customer2vec.faiss | sed 's/^/  /'

steal
echo "== churn model on the bundled file"
echo "  $("$B/bench/bench_churn" config/rfm.yaml data/online_retail.csv.gz)"
echo "  target: scoring < 10 us per customer"

steal
echo "== customer-state store (no HTTP): the floor under POST /events and GET /customers/{id}, and a restart"
state_out=$("$B/bench/bench_state" "$OUT" "${BENCH_STATE_EVENTS:-500000}" 100000 "${BENCH_RESTART_CUSTOMERS:-1000000}")
echo "$state_out" | sed 's/^/  /'
echo "  batches of 500, each durable (synchronous FULL) before the next; NORMAL for comparison"
echo "  restart: open a store of a million customers (rows loaded, ids read back, the log after"
echo "  the last complete fold replayed); target <= 2 s"
echo "  issue targets through HTTP: >= 50,000 events/s; lookups feed a p99 <= 2 ms at 32 connections"

steal
echo "== POST /events (batches of 500 new events, 32 connections) and GET /customers/{id} (32 connections)"
# bench/http_events.sh: a fresh store seeded from models/ (the bundled file), server.threads 0
# (one per core) and 32. A batch waits for the group commit on one of the daemon's 32 waiter
# threads, its connection suspended, not on a libmicrohttpd thread. The wrk client runs on
# the same 2 cores (bench/events.lua makes a body with one gsub). GET runs after the ingest,
# on the store it left, then again (16 connections) while 16 connections stream batches.
# The daemon's CPU per event and per GET is the figure to compare across runs.
echo "  reading a body (no HTTP, CPU of this thread): $("$B/bench/bench_events_parse")"
B=$B bench/http_events.sh "$OUT"
printf '  store floor of this run (no HTTP, above): %s\n' "$(echo "$state_out" | grep "^ingest")"

steal
echo "== the state in Redis (--state redis://): one daemon, then two replicas behind nginx, beside SQLite in the same phases"
B=$B bench/bench_redis.sh "$OUT"
steal
echo "== Kafka ingest: events from librdkafka's mock cluster (4 partitions) into a fresh store, durable commits"
# bench_kafka produces N synthetic events (keyed by customer), starts bin/rfm-serve on the topic
# and times it from the group join to every offset committed (each batch fsync'd before its
# commit); cpu_us_per_event is the daemon's CPU time (all its threads) per event over that
# window, the figure to trust on a loaded machine. Feed on is the shipped config (every batch
# scored before and after for GET /feed); feed off the same with feed.enabled: false.
sed 's/^\(  enabled:\) true /\1 false/' config/rfm.yaml > "$OUT/kafka_nofeed.yaml"
grep -q '^  enabled: false' "$OUT/kafka_nofeed.yaml"
best=0
for feed in on off; do
  cfg=config/rfm.yaml; [ "$feed" = off ] && cfg="$OUT/kafka_nofeed.yaml"
  for bm in 5000 20000; do
    if ! line=$("$B/bench/bench_kafka" "$cfg" models "$OUT" "${BENCH_KAFKA_EVENTS:-100000}" "$bm"); then
      echo "  feed $feed batch_max $bm: failed (exit $?; $OUT/kafka_bench.log)"; continue
    fi
    rate=$(echo "$line" | field events_per_s)
    printf '  feed %-3s batch_max %5s: %6s events/s, %5s CPU us/event (%6.0f events/s a core), store commits %s of the time\n' \
      "$feed" "$bm" "$rate" "$(echo "$line" | field cpu_us_per_event)" \
      "$(echo "1000000 / $(echo "$line" | field cpu_us_per_event)" | bc -l)" "$(echo "$line" | field store_commit_share)"
    [ "$feed" = on ] && [ "$rate" -gt "$best" ] && best=$rate
    echo "    $line"
  done
done
printf '  target: >= 30,000 events/s with durable commits (shipped config, feed on): best here %s -> %s\n' \
  "$best" "$([ "$best" -ge 30000 ] && echo met || echo "NOT met")"
printf '  load average now: %s (wall rates are the share of 2 cores the daemon got)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
steal
echo "== the /ui/ web app: first-load bytes, time to interactive per page, data endpoints' server time"
B="$B" node bench/ui.mjs

steal
echo "== soak: ${SOAK_SECONDS:-60} s at full load, a mix of every scoring endpoint"
sp=$(port)
RFM_API_TOKENS=$RFM_BENCH_TOKEN bin/rfm-serve --config config/rfm.yaml --port "$sp" 2>/dev/null & spid=$!
wait_port "$sp"
( for s in $(seq 1 $(( ${SOAK_SECONDS:-60} / 5 ))); do sleep 5; \
    echo "$((s * 5)) $(awk '/VmRSS/ {print $2}' /proc/$spid/status)"; done ) > "$OUT/soak_rss.txt" &
rpid=$!
soak=$(wrk -t2 -c32 -d"${SOAK_SECONDS:-60}"s --latency -s bench/mixed.lua "http://127.0.0.1:$sp/")
wait "$rpid" 2>/dev/null || true
kill "$spid"; wait "$spid" 2>/dev/null || true
non2xx=$(echo "$soak" | sed -n 's/.*Non-2xx or 3xx responses: *//p')
sockerr=$(echo "$soak" | sed -n 's/.*Socket errors: *//p')
total=$(echo "$soak" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
first=$(sed -n 2p "$OUT/soak_rss.txt" | awk '{print $2}'); last=$(tail -1 "$OUT/soak_rss.txt" | awk '{print $2}')
printf '  %s requests, %.0f req/s, p99 %.3f ms; non-2xx: %s; socket errors: %s\n' "$total" \
  "$(echo "$soak" | rps)" "$(echo "$soak" | p99)" "${non2xx:-0}" "${sockerr:-none}"
printf '  resident memory after warm-up (10 s): %s kB, at the end: %s kB (%+.1f%%)\n' "$first" "$last" \
  "$(echo "100 * ($last - $first) / $first" | bc -l)"
echo "  targets: zero errors; resident memory flat after warm-up"
steal
