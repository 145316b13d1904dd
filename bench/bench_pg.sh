#!/usr/bin/env bash
# bench/bench_pg.sh - PostgreSQL streaming rate for `make bench`: loads the
# synthetic export bench/out/syn_1000000.csv into a throwaway PostgreSQL 15
# cluster (temporary folder, free port, as `nobody` when run as root) and
# times bench_ingest reading it through data.transactions: postgresql://
# with data.query, against the same file read directly. Stops the cluster
# whatever happens (trap). Skips with a message without PostgreSQL.
set -euo pipefail
B=${B:-build}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
f=${1:-bench/out/syn_1000000.csv}
if [ ! -x "$PGBIN/initdb" ]; then
  echo "  skipped: $PGBIN/initdb not found (make deps installs postgresql)"; exit 0
fi
d=$(mktemp -d /tmp/rfmbench_pg_XXXXXX)
as=()
if [ "$(id -u)" = 0 ]; then chown nobody "$d"; as=(runuser -u nobody --); fi
stop() { "${as[@]}" "$PGBIN/pg_ctl" -D "$d/cluster" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$d"; }
trap stop EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as[@]}" "$PGBIN/initdb" -D "$d/cluster" -U rfm -A trust --no-locale -E UTF8 --no-sync >"$d/initdb.log" 2>&1
"${as[@]}" "$PGBIN/pg_ctl" -D "$d/cluster" -l "$d/pg.log" -w -t 30 \
  -o "-p $port -k $d -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
url="postgresql://rfm@127.0.0.1:$port/postgres"
head -1 "$f" | grep -q '^InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country' ||
  { echo "  skipped: $f has not the columns of bench/gen_txn"; exit 0; }
psql -q "$url" -c "CREATE TABLE tx (line_no bigserial, invoice_no text, stock_code text,
  description text, quantity integer, invoice_ts timestamp, unit_price numeric,
  customer_id text, country text)"
psql -q "$url" -c "\\copy tx (invoice_no, stock_code, description, quantity, invoice_ts, unit_price, customer_id, country) FROM '$f' CSV HEADER"
q='SELECT invoice_no AS "InvoiceNo", stock_code AS "StockCode", quantity AS "Quantity", invoice_ts AS "InvoiceDate", unit_price AS "UnitPrice", customer_id AS "CustomerID" FROM tx ORDER BY line_no'
sed -e "s|^  transactions:.*|  transactions: $url\n  query: '${q//\'/\'\'}'|" bench/out/bench.yaml > "$d/pg.yaml"
line=$("$B/bench/bench_ingest" "$d/pg.yaml" "$url")
file=$("$B/bench/bench_ingest" bench/out/bench.yaml "$f")
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
printf '  PostgreSQL COPY stream: %s lines, %s M lines/s, peak RSS %s MB (the same rows from the file: %s M lines/s, peak RSS %s MB)\n' \
  "$(echo "$line" | field lines)" "$(echo "$line" | field mlines_per_s)" "$(echo "$line" | field peak_rss_mb)" \
  "$(echo "$file" | field mlines_per_s)" "$(echo "$file" | field peak_rss_mb)"
