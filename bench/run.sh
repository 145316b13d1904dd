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
printf '  pandas + scikit-learn (issue figure, 1.5 s) / ours = %.1fx\n' "$(echo "1.5 / $total" | bc -l)"

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
