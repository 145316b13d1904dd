// explain.js - Explainability: GET /analytics/shap-sample (global
// importance, a beeswarm of the served churn model's exact contributions
// over a sample) and POST /predict_churn with a customer_id (a waterfall
// of that customer's contributions and the counterfactual).
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, PALETTE } from './charts.js';

const UP = '#D55E00'; // raises the churn risk
const DOWN = '#0072B2'; // lowers it

function card(title, hint, cls = 'chart') {
  const box = el('div', { class: cls, role: 'img', 'aria-label': title });
  return [el('section', { class: 'card' }, el('h2', { text: title }), el('p', { class: 'hint', text: hint }), box), box];
}

// A fixed jitter in [-0.35, 0.35] from the row index (no randomness: the
// same picture each time).
const jitter = (i) => (((i * 2654435761) % 1000) / 1000 - 0.5) * 0.7;

// Each value's rank within its feature, 0..1 (missing: null), for colour.
function ranks(values, f) {
  const col = values.map((r) => r[f]);
  const sorted = col.filter(fmt.ok).sort((a, b) => a - b);
  return col.map((v) => {
    if (!fmt.ok(v) || sorted.length < 2) return null;
    let lo = 0, hi = sorted.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (sorted[m] < v) lo = m + 1; else hi = m; }
    return lo / (sorted.length - 1);
  });
}

function waterfall(box, features, base, contrib) {
  const order = features.map((f, i) => i).sort((a, b) => Math.abs(contrib[b]) - Math.abs(contrib[a]));
  const labels = ['base value', ...order.map((i) => features[i]), 'customer'];
  const hidden = [], up = [], down = [], ends = [];
  let cum = base;
  hidden.push(Math.min(0, base)); up.push('-'); down.push('-'); ends.push(Math.abs(base));
  for (const i of order) {
    const c = contrib[i], next = cum + c;
    hidden.push(Math.min(cum, next));
    up.push(c > 0 ? c : '-');
    down.push(c <= 0 ? -c : '-');
    ends.push('-');
    cum = next;
  }
  hidden.push(Math.min(0, cum)); up.push('-'); down.push('-'); ends.push(Math.abs(cum));
  const min = Math.min(0, ...hidden);
  const shown = hidden.map((h) => h - min); // bars stack from the axis minimum
  chart(box, {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, formatter: (ps) => {
      const k = ps[0].dataIndex;
      if (k === 0) return `base value (log-odds) ${fmt.num(base, 3)}`;
      if (k === labels.length - 1) return `customer's log-odds ${fmt.num(cum, 3)}`;
      const c = contrib[order[k - 1]];
      return `${labels[k]}: ${c > 0 ? '+' : ''}${fmt.num(c, 3)} log-odds`;
    } },
    grid: { left: 24, right: 24, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: labels, axisLabel: { interval: 0, rotate: 30 } },
    // Every bar is shifted up by -min (stacks grow from 0); labels undo it.
    yAxis: { type: 'value', min: 0, name: 'log-odds of churn', nameLocation: 'middle', nameGap: 40, axisLabel: { formatter: (v) => fmt.num(v + min, 1) } },
    series: [
      { type: 'bar', stack: 'w', name: 'offset', data: shown, itemStyle: { color: 'transparent' }, silent: true },
      { type: 'bar', stack: 'w', name: 'raises risk', data: up, itemStyle: { color: UP } },
      { type: 'bar', stack: 'w', name: 'lowers risk', data: down, itemStyle: { color: DOWN } },
      { type: 'bar', stack: 'w', name: 'total', data: ends, itemStyle: { color: '#5a6472' } },
    ],
  });
}

function counterfactualText(cf) {
  if (!cf) return 'No counterfactual for this model.';
  if (!cf.needed) return `Below the counterfactual threshold (${fmt.pct(cf.threshold, 0)}): no action needed.`;
  if (cf.found) return `${cf.action} (${fmt.num(cf.purchases)} purchase${cf.purchases === 1 ? '' : 's'} of about ${fmt.money(cf.order_value)}) would bring the probability to ${fmt.pct(cf.probability_after)}, under ${fmt.pct(cf.threshold, 0)}.`;
  return `No number of purchases up to the search bound brings it under ${fmt.pct(cf.threshold, 0)} (lowest: ${fmt.pct(cf.probability_after)}).`;
}

export async function render(main) {
  const [s, ov] = await Promise.all([api.get('/analytics/shap-sample'), api.get('/analytics/overview')]);
  fmt.setCurrency(ov.currency);
  const F = s.features, sm = s.sample;
  main.append(el('h1', { text: 'Explainability' }),
    el('p', { class: 'sub', text: `The served churn model (${s.learner}): exact contributions in log-odds; base value ${fmt.num(s.base_value, 3)} · importance over ${fmt.num(s.customers)} customers · model ${s.model_version || '-'}` }));
  const [impCard, impBox] = card('Global importance', 'Mean |contribution| per feature over every training customer (log-odds).');
  const [beeCard, beeBox] = card(`Contributions over ${fmt.num(sm.ids.length)} customers`, 'Each dot a customer: right raises the churn risk, left lowers it; colour: the feature\'s value (blue low, orange high, grey missing). Click a dot to explain that customer.', 'chart tall');
  const form = el('form', { class: 'filters', 'aria-label': 'Explain a customer' },
    el('label', {}, 'Customer id', el('input', { name: 'id', required: true, value: sm.ids[0] || '' })),
    el('button', { type: 'submit', text: 'Explain' }));
  const [wfCard, wfBox] = card('One customer', 'Base value plus each contribution gives the customer\'s log-odds of churn.', 'chart tall');
  const facts = el('div', { role: 'status' });
  wfCard.insertBefore(form, wfCard.children[1]);
  wfCard.append(facts);
  main.append(el('div', { class: 'grid2' }, impCard, wfCard), beeCard);

  const order = F.map((f, i) => i).sort((a, b) => s.importance[a] - s.importance[b]);
  chart(impBox, {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => fmt.num(v, 3) },
    grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: 'value', name: 'mean |contribution|', nameLocation: 'middle', nameGap: 24 },
    yAxis: { type: 'category', data: order.map((i) => F[i]) },
    series: [{ type: 'bar', name: 'importance', data: order.map((i) => s.importance[i]), itemStyle: { color: PALETTE[0] } }],
  });

  const data = [];
  order.forEach((f, row) => {
    const r = ranks(sm.values, f);
    sm.contributions.forEach((c, i) => data.push({ value: [c[f], row + jitter(i), r[i] === null ? -1 : r[i]], id: sm.ids[i], f }));
  });
  const bee = chart(beeBox, {
    tooltip: { formatter: (p) => `customer ${p.data.id}<br>${F[p.data.f]} = ${fmt.text(sm.values[sm.ids.indexOf(p.data.id)][p.data.f])}: ${fmt.num(p.value[0], 3)} log-odds` },
    grid: { left: 8, right: 90, top: 8, bottom: 24, containLabel: true },
    xAxis: { type: 'value', name: 'contribution (log-odds)', nameLocation: 'middle', nameGap: 24, axisLabel: { formatter: (v) => fmt.num(v, 1) } },
    yAxis: { type: 'value', min: -0.5, max: F.length - 0.5, interval: 1, axisLabel: { formatter: (v) => (Number.isInteger(v) && order[v] !== undefined ? F[order[v]] : '') } },
    visualMap: { type: 'piecewise', dimension: 2, right: 0, top: 'middle', pieces: [
      { min: -1, max: -0.5, color: '#b8bec7', label: 'missing' },
      { min: 0, max: 0.33, color: DOWN, label: 'low value' },
      { min: 0.33, max: 0.67, color: '#56B4E9', label: 'middle' },
      { min: 0.67, max: 1, color: '#E69F00', label: 'high value' }] },
    series: [{ type: 'scatter', symbolSize: 4, data, large: false }],
  });

  async function explain(id) {
    facts.replaceChildren(el('p', { class: 'muted', text: 'Loading...' }));
    try {
      const r = await api.post('/predict_churn', { customer_id: id });
      const cs = F.map((f) => r.explanation.contributions[f]);
      if (cs.some((c) => !fmt.ok(c))) throw new api.ApiError(0, 'the answer has no contribution for some feature');
      waterfall(wfBox, F, r.explanation.base_value, cs);
      facts.replaceChildren(el('p', {}, el('strong', { text: `Customer ${id}: ` }), `churn probability ${fmt.pct(r.churn_probability)} (${r.risk} risk). `, counterfactualText(r.counterfactual)));
    } catch (e) {
      if (e.status === 401) return;
      facts.replaceChildren(el('p', { class: 'error', role: 'alert', 'data-state': 'error', text: `Could not explain customer ${id}: ${e.message}` }));
    }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); explain(form.id.value.trim()); });
  bee.on('click', (p) => { if (p.data && p.data.id) { form.id.value = p.data.id; explain(p.data.id); } });
  if (sm.ids.length) await explain(sm.ids[0]);
}
