// planner.js - Campaign planner: a goal, a budget and a cost per contact
// -> which RFM segments to contact, ranked by expected gain per contact,
// with the expected incremental revenue; each row links to the Exports
// page with that segment. Reads GET /analytics/cltv-churn (per segment:
// customers, mean churn probability, mean CLTV), GET /analytics/overview
// (revenue per segment, currency) and GET /analytics/qini (the measured
// response to a contact; without an uplift model the page asks for one).
//
// The arithmetic (docs/ui.md): value per contact V by goal,
//   win back: P(churn) x past revenue per customer (what returns if they do)
//   retain:   P(churn) x CLTV (the value at risk)
//   upsell:   (1 - P(churn)) x CLTV (the value of those who stay)
// expected incremental revenue per contact = response x V, gain = that -
// cost; segments with a positive gain, best first, take the budget.
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, axisMoney, PALETTE } from './charts.js';
import { rateAt } from './uplift.js';

const GOALS = {
  winback: ['Win back', (s) => s.p * s.revenue],
  retain: ['Retain', (s) => s.p * s.cltv],
  upsell: ['Upsell', (s) => (1 - s.p) * s.cltv],
};

export function plan(segments, goal, budget, cost, response) {
  const value = GOALS[goal][1];
  const rows = segments.map((s) => {
    const v = value(s);
    return { ...s, perContact: response * v - cost, incrementalPer: response * v };
  }).filter((r) => fmt.ok(r.perContact) && r.perContact > 0)
    .sort((a, b) => b.perContact - a.perContact);
  let left = budget;
  for (const r of rows) {
    r.contacts = cost > 0 ? Math.max(0, Math.min(r.customers, Math.floor(left / cost))) : r.customers;
    left -= r.contacts * cost;
    r.spend = r.contacts * cost;
    r.incremental = r.contacts * r.incrementalPer;
    r.gain = r.incremental - r.spend;
  }
  return rows.filter((r) => r.contacts > 0);
}

export async function render(main) {
  const [cc, ov] = await Promise.all([api.get('/analytics/cltv-churn'), api.get('/analytics/overview')]);
  let q = null;
  try { q = await api.get('/analytics/qini'); } catch (e) { if (e.status !== 503) throw e; }
  fmt.setCurrency(ov.currency);
  const rev = new Map((ov.segments || []).map((s) => [s.segment, s.customers ? s.revenue / s.customers : NaN]));
  const segments = (cc.by_segment || []).filter((s) => s.churn_probability && s.cltv && s.customers > 0)
    .map((s) => ({ segment: s.segment, customers: s.customers, p: s.churn_probability.mean, cltv: s.cltv.mean, revenue: rev.get(s.segment) }));
  // The measured response to a contact: the served uplift learner's rate
  // over everyone, averaged over its arms.
  const response = q && q.arms.length ? q.arms.reduce((t, a) => t + rateAt(a.uplift_rate, 1), 0) / q.arms.length : 0.05;
  main.append(el('h1', { text: 'Campaign planner' }),
    el('p', { class: 'sub', text: `Whom to contact for a goal and a budget: RFM segments ranked by expected gain per contact from their CLTV, churn probability and the campaign response${q ? ` measured by the uplift model (${q.learner}, outcome ${q.outcome})` : ''}.` }));
  if (!segments.length) {
    main.append(el('p', { class: 'muted', 'data-state': 'no-data', text: 'Needs the segments, cltv and churn models (rfm-train).' }));
    return;
  }
  const form = el('form', { class: 'card filters', 'aria-label': 'Plan' },
    el('label', {}, 'Goal', el('select', { name: 'goal' }, Object.entries(GOALS).map(([k, [t]]) => el('option', { value: k, text: t })))),
    el('label', {}, `Budget (${ov.currency || 'money'})`, el('input', { name: 'budget', type: 'number', min: '0', step: '100', value: '5000' })),
    el('label', {}, 'Cost per contact', el('input', { name: 'cost', type: 'number', min: '0', step: '0.1', value: String(q ? q.cost : 1) })),
    el('label', {}, 'Response to a contact', el('input', { name: 'response', type: 'number', min: '0', max: '1', step: '0.005', value: response.toFixed(4) })));
  const note = el('p', { class: 'hint', text: q
    ? `Response: the share of contacted customers who respond because of the contact (incremental ${q.outcome} rate over the whole campaign, mean of the arms: ${fmt.pct(response, 2)}); change it for another channel.`
    : 'No uplift model: the response to a contact is a guess (5 %); train uplift for a measured one.' });
  const totals = el('div', { class: 'kpis kpis3', role: 'status', 'aria-live': 'polite' });
  const table = el('div');
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': 'Expected incremental revenue by segment' });
  main.append(form, note, totals, el('div', { class: 'grid2' },
    el('section', { class: 'card' }, el('h2', { text: 'Proposed contacts' }), table),
    el('section', { class: 'card' }, el('h2', { text: 'Expected incremental revenue and cost' }), box)));
  const c = chart(box, { series: [] });
  const kpi = (label, value, n) => el('div', { class: 'kpi' }, el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }), el('div', { class: 'note', text: n }));
  const update = () => {
    const goal = form.goal.value, budget = Math.max(0, Number(form.budget.value) || 0);
    const cost = Math.max(0, Number(form.cost.value) || 0), resp = Math.min(1, Math.max(0, Number(form.response.value) || 0));
    const rows = plan(segments, goal, budget, cost, resp);
    const sum = (k) => rows.reduce((t, r) => t + r[k], 0);
    totals.replaceChildren(
      kpi('Customers to contact', fmt.num(sum('contacts')), `in ${fmt.num(rows.length)} segments`),
      kpi('Expected incremental revenue', fmt.money(sum('incremental')), `for ${fmt.money(sum('spend'))} spent`),
      kpi('Expected net gain', fmt.money(sum('gain')), `${GOALS[goal][0].toLowerCase()}, budget ${fmt.money(budget)}`));
    table.replaceChildren(rows.length ? el('table', {},
      el('thead', {}, el('tr', {}, ['segment', 'customers', 'contact', 'gain per contact', 'incremental revenue', ''].map((h, i) => el('th', { class: i && i < 5 ? 'num' : null, text: h })))),
      el('tbody', {}, rows.map((r) => el('tr', {},
        el('td', { text: r.segment }), el('td', { class: 'num', text: fmt.num(r.customers) }),
        el('td', { class: 'num', text: fmt.num(r.contacts) }), el('td', { class: 'num', text: fmt.money(r.perContact, 2) }),
        el('td', { class: 'num', text: fmt.money(r.incremental) }),
        el('td', {}, el('a', { href: `#/exports?segment=${encodeURIComponent(r.segment)}&limit=${r.contacts}&by=${goal === 'upsell' ? 'cltv' : 'value_at_risk'}`, text: 'Export list' }))))))
      : el('p', { class: 'muted', 'data-state': 'empty', text: 'No segment gains more than a contact costs at this response: raise the response or lower the cost.' }));
    c.setOption({
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => fmt.money(v) },
      legend: { top: 0 },
      grid: { left: 32, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: 'category', data: rows.map((r) => r.segment), axisLabel: { interval: 0, rotate: 30 } },
      yAxis: axisMoney,
      series: [
        { name: 'incremental revenue', type: 'bar', data: rows.map((r) => r.incremental), itemStyle: { color: PALETTE[2] } },
        { name: 'cost', type: 'bar', data: rows.map((r) => r.spend), itemStyle: { color: PALETTE[5] } },
      ],
    }, { replaceMerge: ['series'] });
  };
  form.addEventListener('input', update);
  form.addEventListener('submit', (ev) => ev.preventDefault());
  update();
}
