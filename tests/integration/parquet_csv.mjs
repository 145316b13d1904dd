// parquet_csv.mjs - a Parquet file read by DuckDB (@duckdb/node-api, an
// independent reader) and printed as the CSV rfm-score writes: header, then
// each row with doubles in JavaScript's shortest round-trip text (numfmt's
// layout), nulls empty, strings quoted when they hold , " or a line break.
// test_score.c and test_export.c compare it byte for byte with the CSV
// export of the same rows. Usage: node parquet_csv.mjs FILE.parquet > out.csv
import { DuckDBInstance } from '@duckdb/node-api';

const path = process.argv[2];
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
const q = `SELECT * FROM read_parquet('${path.replaceAll("'", "''")}')`;
const types = (await con.runAndReadAll(`DESCRIBE ${q}`)).getRowObjectsJson()
  .map((r) => [r.column_name, r.column_type]);
const field = (s) => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
const out = [types.map(([n]) => field(n)).join(',')];
const reader = await con.runAndReadAll(q);
for (const row of reader.getRowsJson()) {
  out.push(row.map((v, j) => {
    if (v === null) return '';
    if (types[j][1] === 'DOUBLE') return String(Number(v));
    return field(String(v));
  }).join(','));
}
process.stdout.write(out.join('\n') + '\n');
