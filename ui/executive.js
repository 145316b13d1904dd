// executive.js - the executive dashboard: GET /analytics/overview, and the
// live feed of customers crossing a churn-risk band or segment (GET /feed).
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, axisMoney, axisNum, RISK, SEQUENTIAL } from './charts.js';
import { follow } from './feed.js';

function kpi(label, value, note) {
  return el('div', { class: 'card kpi' },
    el('div', { class: 'label', text: label }),
    el('div', { class: 'value', text: value }),
    note ? el('div', { class: 'note', text: note }) : null);
}

function card(title, hint, cls = 'chart') {
  const box = el('div', { class: cls, role: 'img', 'aria-label': title });
  return [el('section', { class: 'card' }, el('h2', { text: title }), hint ? el('p', { class: 'hint', text: hint }) : null, box), box];
}

// ---- the live feed ---------------------------------------------------------

const FEED_ROWS = 50; // records kept on the page, newest first
const FIELD = { churn_risk: 'Churn risk', rfm_segment: 'RFM segment', cluster: 'Cluster' };
const RISK_ORDER = { low: 0, medium: 1, high: 2 };

let feed = null; // the stream followed while the page is shown
let shown = 0;   // bumped by leave(): a render that outlived its page starts nothing

export function leave() {
  shown++;
  if (feed) feed.close();
  feed = null;
}

function label(field, v) {
  if (typeof v !== 'string' || v === '') return '-';
  return field === 'churn_risk' ? `${v[0].toUpperCase()}${v.slice(1)}` : v;
}

// "Higher risk" / "Lower risk" for a move between bands, in words as well
// as colour (colour alone is lost on some readers).
function riskMove(r) {
  if (r.field !== 'churn_risk' || !(r.from in RISK_ORDER) || !(r.to in RISK_ORDER)) return null;
  return RISK_ORDER[r.to] > RISK_ORDER[r.from] ? 'higher risk' : 'lower risk';
}

function recordRow(r, id) {
  const p = r.scores ? r.scores.churn_probability : undefined;
  const move = riskMove(r);
  const band = (v) => (r.field === 'churn_risk' && RISK[v] ? el('span', { class: 'swatch', style: `background:${RISK[v]}`, 'aria-hidden': 'true' }) : null);
  return el('tr', { 'data-id': id, 'data-customer': r.customer_id, 'data-field': r.field },
    el('td', { text: fmt.time(r.time), title: typeof r.time === 'string' ? r.time : null }),
    el('td', { text: fmt.text(r.customer_id) }),
    el('td', { text: FIELD[r.field] || fmt.text(r.field) }),
    el('td', { class: 'move' }, band(r.from), el('span', { class: 'from', text: label(r.field, r.from) }),
      el('span', { class: 'arrow', text: ' \u2192 ', 'aria-label': 'to' }),
      band(r.to), el('span', { class: 'to', text: label(r.field, r.to) }),
      move ? el('span', { class: 'muted', text: ` (${move})` }) : null),
    el('td', { class: 'num', text: fmt.pct(p) }));
}

function gapRow(g, id) {
  const what = g.reason === 'unknown_id'
    ? 'Some changes may have been missed: the server restarted or no longer knows where this page left off.'
    : `${fmt.num(g.missed)} change${g.missed === 1 ? ' was' : 's were'} missed while this page was disconnected (older than the server keeps).`;
  return el('tr', { 'data-id': id, class: 'gap' }, el('td', { colspan: 5, text: what }));
}

function feedPanel() {
  const status = el('p', { class: 'feed-status', role: 'status', 'data-state': 'connecting', text: 'Connecting to the live feed...' });
  const empty = el('tr', { class: 'empty' }, el('td', { colspan: 5, class: 'muted', text: 'No changes yet: they appear here as events arrive.' }));
  const body = el('tbody', {}, empty);
  let paused = false;
  const held = []; // rows that came while paused, oldest first (the latest FEED_ROWS)
  let heldCount = 0; // how many came while paused
  const pause = el('button', { type: 'button', class: 'secondary', name: 'pause', 'aria-pressed': 'false', text: 'Pause' });
  const table = el('table', { class: 'feed-table' },
    el('caption', { class: 'sr-only', text: 'Latest changes, newest first' }),
    el('thead', {}, el('tr', {}, ...['Time', 'Customer', 'Label', 'Change'].map((t) => el('th', { scope: 'col', text: t })),
      el('th', { scope: 'col', class: 'num', text: 'Churn probability' }))),
    body);
  const section = el('section', { class: 'card feed', 'aria-labelledby': 'feed-title' },
    el('div', { class: 'feed-head' },
      el('h2', { id: 'feed-title', text: 'Live churn-risk feed' }), pause),
    el('p', { class: 'hint', text: `Customers who cross a churn-risk band, an RFM segment or a cluster as events arrive or days pass; the latest ${FEED_ROWS}, newest first.` }),
    status,
    el('div', { class: 'feed-scroll', tabindex: '0', role: 'region', 'aria-label': 'Live changes' }, table));

  function add(row) {
    if (paused) {
      held.push(row);
      if (held.length > FEED_ROWS) held.shift();
      heldCount++;
      return;
    }
    empty.remove();
    body.prepend(row);
    while (body.rows.length > FEED_ROWS) body.lastElementChild.remove();
  }
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? `Resume${heldCount ? ` (${fmt.num(heldCount)} new)` : ''}` : 'Pause';
    if (!paused) {
      held.splice(0).forEach(add);
      heldCount = 0;
    }
  });
  const onEvent = (x) => {
    let d;
    try { d = JSON.parse(x.data); } catch (e) { return; }
    if (!d || typeof d !== 'object') return;
    if (x.type === 'change') add(recordRow(d, x.id));
    else if (x.type === 'gap') add(gapRow(d, x.id));
    if (paused) pause.textContent = `Resume (${fmt.num(heldCount)} new)`;
  };
  let since = null;
  const onState = (state, info = {}) => {
    status.dataset.state = state;
    if (state === 'connecting') status.textContent = since ? 'Reconnecting to the live feed...' : 'Connecting to the live feed...';
    else if (state === 'open') {
      since = since || new Date().toISOString();
      status.textContent = `Live since ${fmt.time(since)}.`;
    } else if (state === 'retry') status.textContent = `Disconnected (${info.reason}); trying again in ${fmt.num(info.ms / 1000)} s.`;
    else status.textContent = `The live feed is not available: ${info.reason}.`;
  };
  return { section, onEvent, onState };
}

export async function render(main) {
  const mine = shown;
  const ov = await api.get('/analytics/overview');
  fmt.setCurrency(ov.currency);
  const cl = ov.cltv, risk = ov.churn_risk;
  const riskTotal = risk ? risk.low + risk.medium + risk.high : 0;
  main.append(
    el('h1', { text: 'Executive overview' }),
    el('p', { class: 'sub', text: `${fmt.num(ov.customers)} customers as of ${ov.snapshot_date || '-'} · model ${ov.model_version || '-'}` }),
    el('div', { class: 'kpis' },
      kpi('Customers', fmt.num(ov.customers), `${fmt.num(ov.active_customers)} bought in the last ${fmt.num(ov.active_days)} days`),
      kpi('Active share', fmt.pct(ov.active_share), `bought within ${fmt.num(ov.active_days)} days`),
      kpi('Revenue', fmt.money(ov.revenue), 'all purchases in the training data'),
      kpi(`Predicted ${cl ? fmt.num(cl.horizon_days / 30.4375, 0) : '-'}-month value`, cl ? fmt.money(cl.total) : '-',
        cl ? `95% interval ${fmt.money(cl.lower)} to ${fmt.money(cl.upper)}` : 'the CLTV model is not trained'),
      kpi('High churn risk', risk ? fmt.pct(risk.high / riskTotal) : '-', risk ? `${fmt.num(risk.high)} customers` : 'the churn model is not trained')));

  const [monthly, mBox] = card('Monthly revenue and customers who bought',
    'Calendar months of the training data; the last one may be partial.', 'chart tall');
  const [riskCard, rBox] = card('Churn-risk mix', 'Customers by the churn model\'s risk band.');
  const [segCard, sBox] = card('Segment mix', 'Customers by RFM segment.');
  const [cohortCard, cBox] = card('Cohort retention',
    'Share of each first-purchase month\'s customers who bought again N months later.', 'chart tall');
  const live = feedPanel();
  main.append(monthly, el('div', { class: 'grid2' }, riskCard, segCard), live.section, cohortCard);
  if (mine === shown) feed = follow({ event: live.onEvent, state: live.onState });

  const months = ov.monthly.map((m) => fmt.month(m.month));
  chart(mBox, {
    tooltip: { trigger: 'axis', valueFormatter: (v) => fmt.num(v) },
    legend: { top: 0 },
    xAxis: { type: 'category', data: months },
    yAxis: [{ ...axisMoney, name: 'Revenue' }, { ...axisNum, name: 'Customers', splitLine: { show: false } }],
    series: [
      { name: 'Revenue', type: 'bar', data: ov.monthly.map((m) => m.revenue), tooltip: { valueFormatter: (v) => fmt.money(v) } },
      { name: 'Customers who bought', type: 'line', yAxisIndex: 1, data: ov.monthly.map((m) => m.customers) },
      { name: 'New customers', type: 'line', yAxisIndex: 1, data: ov.monthly.map((m) => m.new_customers), lineStyle: { type: 'dashed' } },
    ],
  });
  if (risk) {
    chart(rBox, {
      tooltip: { trigger: 'item', formatter: (p) => `${p.name}: ${fmt.num(p.value)} (${fmt.pct(p.percent / 100)})` },
      legend: { bottom: 0 },
      series: [{ type: 'pie', radius: ['45%', '72%'], label: { formatter: (p) => `${p.name} ${fmt.pct(p.percent / 100)}` },
        data: ['low', 'medium', 'high'].map((k) => ({ name: k, value: risk[k], itemStyle: { color: RISK[k] } })) }],
    });
  } else {
    rBox.replaceWith(el('p', { class: 'muted', text: 'The churn model is not trained.' }));
  }
  if (ov.segments) {
    const segs = [...ov.segments].sort((a, b) => a.customers - b.customers);
    chart(sBox, {
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => fmt.num(v) },
      grid: { left: 8, right: 24, top: 8, bottom: 24, containLabel: true },
      xAxis: axisNum,
      yAxis: { type: 'category', data: segs.map((s) => s.segment) },
      series: [{ name: 'Customers', type: 'bar', data: segs.map((s) => s.customers), label: { show: true, position: 'right', formatter: (p) => fmt.num(p.value) } }],
    });
  } else {
    sBox.replaceWith(el('p', { class: 'muted', text: 'The segments model is not trained.' }));
  }
  const cohorts = ov.cohorts;
  const cells = [];
  let maxK = 0;
  cohorts.forEach((c, i) => c.retention.forEach((v, k) => {
    if (k > 0 && fmt.ok(v)) cells.push([k, i, v]);
    maxK = Math.max(maxK, k);
  }));
  chart(cBox, {
    tooltip: { formatter: (p) => `${fmt.month(cohorts[p.value[1]].cohort)} cohort (${fmt.num(cohorts[p.value[1]].customers)}), ${p.value[0] + 1} months later: ${fmt.pct(p.value[2])}` },
    grid: { left: 8, right: 24, top: 8, bottom: 56, containLabel: true },
    xAxis: { type: 'category', name: 'months after the first purchase', nameLocation: 'middle', nameGap: 28, data: Array.from({ length: maxK }, (_, k) => String(k + 1)) },
    yAxis: { type: 'category', inverse: true, data: cohorts.map((c) => `${fmt.month(c.cohort)} (${fmt.num(c.customers)})`) },
    visualMap: { min: 0, max: Math.max(0.01, ...cells.map((c) => c[2])), calculable: false, orient: 'horizontal', right: 0, bottom: 0, itemHeight: 120, inRange: { color: SEQUENTIAL }, formatter: (v) => fmt.pct(v, 0) },
    series: [{ type: 'heatmap', data: cells.map(([k, i, v]) => [k - 1, i, v]), label: { show: true, fontSize: 10, formatter: (p) => fmt.pct(p.value[2], 0) } }],
  });
}
