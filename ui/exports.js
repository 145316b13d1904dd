// exports.js - a targeting list: filters, a preview table and the CSV
// download, all from GET /exports/customers.csv (query: by, limit,
// segment - repeatable -, min_p_alive, as_of; the rows and columns of
// rfm-score's CSV, docs/exports.md), fetched with the bearer token and
// saved from a blob, and the equivalent curl and rfm-score lines.
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';

const PREVIEW = 20;
const COLUMNS = ['customer_id', 'segment', 'rfm_segment', 'churn_probability', 'churn_risk', 'p_alive', 'cltv', 'recency', 'frequency', 'monetary'];

// RFC 4180 rows of text (quoted fields, doubled quotes, CRLF or LF).
export function parseCsv(text) {
  const rows = [];
  let row = [], f = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') { f += '"'; i++; } else if (c === '"') q = false; else f += c;
    } else if (c === '"') q = true;
    else if (c === ',') { row.push(f); f = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(f); rows.push(row); row = []; f = '';
    } else f += c;
  }
  if (f !== '' || row.length) { row.push(f); rows.push(row); }
  return rows;
}

function query(form, limit) {
  const q = new URLSearchParams();
  q.set('by', form.by.value);
  q.set('limit', String(limit));
  if (form.segment.value) q.append('segment', form.segment.value);
  if (form.min_p_alive.value !== '') q.set('min_p_alive', form.min_p_alive.value);
  if (form.as_of.value) q.set('as_of', form.as_of.value);
  return q;
}

function shellQuote(s) { return `'${s.replace(/'/g, "'\\''")}'`; }

// live: the day the server's rows are as of when it scores a live state
// (their scored_at differs from the training snapshot), else null.
function commands(form, out, live) {
  const n = Number(form.limit.value) || 0;
  const url = `${location.origin}/exports/customers.csv?${query(form, n)}`;
  const curl = `curl -sS -H "Authorization: Bearer $RFM_TOKEN" -o targets.csv ${shellQuote(url)}`;
  let score = `bin/rfm-score --out targets.csv --top ${n} --by ${form.by.value}`;
  if (form.segment.value) score += ` --segment ${shellQuote(form.segment.value)}`;
  if (form.min_p_alive.value !== '') score += ` --min-p-alive ${form.min_p_alive.value}`;
  // A server with a state store answers from it (as of today by default):
  // rfm-score reads the same store for the same day.
  const day = form.as_of.value || live;
  if (day) score += ` --state state/state.db --as-of ${day}`;
  out.replaceChildren(el('h2', { text: 'The same list from a shell' }),
    el('pre', { class: 'cmd', 'data-cmd': 'curl', text: curl }),
    el('button', { type: 'button', class: 'secondary', onclick: () => navigator.clipboard.writeText(curl).catch(() => {}) }, 'Copy curl'),
    el('pre', { class: 'cmd', 'data-cmd': 'rfm-score', text: score }),
    el('button', { type: 'button', class: 'secondary', onclick: () => navigator.clipboard.writeText(score).catch(() => {}) }, 'Copy rfm-score'),
    el('p', { class: 'hint', text: 'Both write the same bytes for the same filters and day (rfm-score reads the models and the state store directly).' }));
}

function table(rows) {
  const [head, ...body] = rows;
  const show = COLUMNS.filter((c) => head.includes(c));
  const cols = show.length ? show : head;
  const idx = cols.map((c) => head.indexOf(c));
  const num = (c) => !['customer_id', 'segment', 'rfm_segment', 'churn_risk', 'rfm_score'].includes(c);
  const cell = (c, v) => {
    if (!num(c) || v === '') return v === '' ? '-' : v;
    const x = Number(v);
    if (!Number.isFinite(x)) return '-';
    if (c === 'cltv' || c === 'monetary') return fmt.money(x);
    if (c === 'churn_probability' || c === 'p_alive') return fmt.pct(x);
    return fmt.num(x, Number.isInteger(x) ? 0 : 2);
  };
  return el('table', {},
    el('thead', {}, el('tr', {}, cols.map((c) => el('th', { scope: 'col', class: num(c) ? 'num' : null, text: c })))),
    el('tbody', {}, body.map((r) => el('tr', {}, idx.map((k, j) => el('td', { class: num(cols[j]) ? 'num' : null, text: cell(cols[j], r[k] ?? '') }))))));
}

async function fetchCsv(form, limit) {
  const res = await api.get(`/exports/customers.csv?${query(form, limit)}`, { raw: true });
  return res;
}

// The file name the server gives (Content-Disposition), else targets.csv.
function fileName(res) {
  const m = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
  return m ? m[1] : 'targets.csv';
}

function unavailable(e) {
  return e.status === 404
    ? 'This server has no GET /exports/customers.csv (it answered 404): it is older than the export endpoint. Use the rfm-score line below.'
    : `The export failed: ${e.message}`;
}

export async function render(main, params = new URLSearchParams()) {
  const [summary, ov] = await Promise.all([api.get('/clusters/summary'), api.get('/analytics/overview')]);
  fmt.setCurrency(ov.currency);
  const segOpts = [el('option', { value: '', text: 'All customers' })];
  segOpts.push(el('optgroup', { label: 'Clusters' }, summary.clusters.map((c) => el('option', { value: c.segment, text: c.segment }))));
  if (ov.segments) segOpts.push(el('optgroup', { label: 'RFM segments' }, ov.segments.map((s) => el('option', { value: s.segment, text: s.segment }))));
  const form = el('form', { class: 'card filters', 'aria-label': 'Targeting list filters' },
    el('label', {}, 'Segment', el('select', { name: 'segment' }, segOpts)),
    el('label', {}, 'Top N by', el('select', { name: 'by' },
      el('option', { value: 'value_at_risk', text: 'value at risk (churn x CLTV)' }),
      el('option', { value: 'cltv', text: 'CLTV' }),
      el('option', { value: 'churn', text: 'churn probability' }),
      el('option', { value: 'uplift_gain', text: 'uplift gain (campaign model; needs uplift.id_column)' }))),
    el('label', {}, 'N', el('input', { name: 'limit', type: 'number', min: '1', max: '1000000', value: '1000', required: true })),
    el('label', {}, 'Minimum P(alive)', el('input', { name: 'min_p_alive', type: 'number', min: '0', max: '1', step: '0.05', placeholder: 'any' })),
    el('label', {}, 'As of', el('input', { name: 'as_of', type: 'date' })),
    el('button', { type: 'submit', text: 'Preview' }),
    el('button', { type: 'button', class: 'secondary', name: 'download', text: 'Download CSV' }));
  const status = el('div', { id: 'export-status', role: 'status' });
  const preview = el('section', { class: 'card', 'aria-label': 'Preview' });
  const shell = el('section', { class: 'card' });
  main.append(el('h1', { text: 'Exports' }),
    el('p', { class: 'sub', text: 'Build a targeting list, check the first rows, download it as CSV.' }),
    form, status, preview, shell);

  // Filters given by the link that opened the page (the planner's).
  for (const k of ['segment', 'by', 'limit', 'min_p_alive']) {
    const v = params.get(k);
    if (v !== null && form[k] && (form[k].tagName !== 'SELECT' || [...form[k].options].some((o) => o.value === v))) form[k].value = v;
  }
  let live = null;
  const update = () => commands(form, shell, live);
  form.addEventListener('input', update);
  update();
  const run = async () => {
    status.replaceChildren();
    preview.replaceChildren(el('p', { class: 'muted', text: 'Loading...' }));
    try {
      const rows = parseCsv(await (await fetchCsv(form, Math.min(PREVIEW, Number(form.limit.value) || PREVIEW))).text());
      const at = rows[0] ? rows[0].indexOf('scored_at') : -1;
      const day = at >= 0 && rows[1] ? rows[1][at] : null;
      live = day && day !== ov.snapshot_date ? day : null;
      update();
      preview.replaceChildren(el('h2', { text: `First ${fmt.num(Math.max(0, rows.length - 1))} rows` }), table(rows));
    } catch (e) {
      if (e.status === 401) return;
      preview.replaceChildren(el('p', { class: 'error', role: 'alert', 'data-state': e.status === 404 ? 'no-endpoint' : 'error', text: unavailable(e) }));
    }
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(); });
  form.download.addEventListener('click', async () => {
    try {
      const res = await fetchCsv(form, Number(form.limit.value) || 1);
      const blob = await res.blob();
      const text = await blob.text();
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: fileName(res) });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      status.replaceChildren(el('p', { class: 'muted', text: `Downloaded ${fmt.num(parseCsv(text).length - 1)} rows.` }));
    } catch (e) {
      if (e.status !== 401) status.replaceChildren(el('p', { class: 'error', role: 'alert', text: unavailable(e) }));
    }
  });
  preview.replaceChildren(el('p', { class: 'muted', text: 'Choose the filters and press Preview to see the first rows.' }));
}
