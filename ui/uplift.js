// uplift.js - Uplift simulator: GET /analytics/qini. Qini curves per arm
// against the random line, uplift by decile, and a slider for the share
// targeted -> expected incremental outcomes and net gain with the
// configured value (per outcome) and cost (per contact).
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, axisMoney, PALETTE } from './charts.js';

function card(title, hint, cls = 'chart') {
  const box = el('div', { class: cls, role: 'img', 'aria-label': title });
  return [el('section', { class: 'card' }, el('h2', { text: title }), el('p', { class: 'hint', text: hint }), box), box];
}

// The cumulative uplift rate among the top share s, interpolated on the
// arm's points [share, rate] (0 below the first point's share).
export function rateAt(points, s) {
  if (!points.length || s <= 0) return 0;
  if (s <= points[0][0]) return points[0][1];
  for (let k = 1; k < points.length; k++) {
    const [f0, r0] = points[k - 1], [f1, r1] = points[k];
    if (s <= f1) return r0 + (r1 - r0) * (s - f0) / (f1 - f0);
  }
  return points[points.length - 1][1];
}

// Incremental outcomes and net gain of contacting the top share s of a
// population with an arm.
export function simulate(arm, s, population, value, cost) {
  const contacted = s * population;
  const incremental = rateAt(arm.uplift_rate, s) * contacted;
  return { contacted, incremental, gain: incremental * value - contacted * cost };
}

export async function render(main) {
  const q = await api.get('/analytics/qini');
  fmt.setCurrency(q.currency);
  const outcome = q.outcome || 'outcome';
  main.append(el('h1', { text: 'Uplift simulator' }),
    el('p', { class: 'sub', text: `Served learner ${q.learner}, evaluated on the held-out campaign customers · outcome: ${outcome} · value ${fmt.money(q.value, 2)} per ${outcome}, cost ${fmt.money(q.cost, 2)} per contact (uplift.value, uplift.cost) · model ${q.model_version || '-'}` }));
  const [qCard, qBox] = card('Qini curves', 'Incremental outcomes among the top share of the ranking (solid) against targeting at random (dashed).');
  const [dCard, dBox] = card('Uplift by decile', `Incremental ${outcome}s per customer in each tenth of the ranking (best first).`);
  main.append(el('div', { class: 'grid2' }, qCard, dCard));

  chart(qBox, {
    tooltip: { trigger: 'axis', valueFormatter: (v) => fmt.num(v, 1) },
    legend: { top: 0, type: 'scroll' },
    grid: { left: 28, right: 16, top: 32, bottom: 28, containLabel: true },
    xAxis: { type: 'value', min: 0, max: 1, name: 'share targeted', nameLocation: 'middle', nameGap: 24, axisLabel: { formatter: (v) => fmt.pct(v, 0) } },
    yAxis: { type: 'value', name: `incremental ${outcome}s`, nameLocation: 'middle', nameGap: 44, axisLabel: { formatter: (v) => fmt.num(v) } },
    series: q.arms.flatMap((a, i) => [
      { name: a.arm, type: 'line', showSymbol: false, data: a.qini.map((p) => [p[0], p[1]]), lineStyle: { color: PALETTE[i % 8], width: 2 }, itemStyle: { color: PALETTE[i % 8] } },
      { name: `${a.arm} (random)`, type: 'line', showSymbol: false, data: a.qini.map((p) => [p[0], p[2]]), lineStyle: { color: PALETTE[i % 8], type: 'dashed' }, itemStyle: { color: PALETTE[i % 8] } },
    ]),
  });
  chart(dBox, {
    tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => fmt.pct(v, 2) },
    legend: { top: 0 },
    grid: { left: 8, right: 16, top: 32, bottom: 28, containLabel: true },
    xAxis: { type: 'category', name: 'decile of the ranking', nameLocation: 'middle', nameGap: 24, data: q.arms[0].uplift_by_decile.map((_, i) => String(i + 1)) },
    yAxis: { type: 'value', axisLabel: { formatter: (v) => fmt.pct(v, 1) } },
    series: q.arms.map((a, i) => ({ name: a.arm, type: 'bar', data: a.uplift_by_decile, itemStyle: { color: PALETTE[i % 8] } })),
  });

  // The simulator.
  const form = el('form', { class: 'filters', 'aria-label': 'Simulator' },
    el('label', {}, 'Arm', el('select', { name: 'arm' }, q.arms.map((a, i) => el('option', { value: String(i), text: a.arm })))),
    el('label', {}, 'Customers', el('input', { name: 'population', type: 'number', min: '1', step: '1', value: String(q.customers || 10000) })),
    el('label', { class: 'wide' }, 'Share targeted', el('input', { name: 'share', type: 'range', min: '0', max: '100', step: '1', value: '30', 'aria-valuetext': '30 %' })),
    el('output', { name: 'shareOut', class: 'big' }));
  const results = el('div', { class: 'kpis kpis3', role: 'status', 'aria-live': 'polite' });
  const [gCard, gBox] = card('Net gain by share targeted', 'Incremental outcomes x value - contacts x cost; the dot is the share chosen.');
  const sim = el('section', { class: 'card' }, el('h2', { text: 'Simulator' }), form, results);
  main.append(el('div', { class: 'grid2' }, sim, gCard));
  const kpi = (label, value, note) => el('div', { class: 'kpi' }, el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }), el('div', { class: 'note', text: note }));
  const shares = Array.from({ length: 101 }, (_, i) => i / 100);
  const gchart = chart(gBox, { series: [] });
  const update = () => {
    const arm = q.arms[Number(form.arm.value)] || q.arms[0];
    const s = Number(form.share.value) / 100;
    const pop = Math.max(1, Number(form.population.value) || 1);
    const r = simulate(arm, s, pop, q.value, q.cost);
    form.shareOut.value = fmt.pct(s, 0);
    form.share.setAttribute('aria-valuetext', fmt.pct(s, 0));
    results.replaceChildren(
      kpi('Customers contacted', fmt.num(r.contacted), `${fmt.pct(s, 0)} of ${fmt.num(pop)}`),
      kpi(`Incremental ${outcome}s`, fmt.num(r.incremental), `uplift rate ${fmt.pct(rateAt(arm.uplift_rate, s), 2)} among them`),
      kpi('Net gain', fmt.money(r.gain), `${fmt.money(r.incremental * q.value)} value - ${fmt.money(r.contacted * q.cost)} cost`));
    gchart.setOption({
      tooltip: { trigger: 'axis', valueFormatter: (v) => fmt.money(v) },
      grid: { left: 8, right: 16, top: 16, bottom: 28, containLabel: true },
      xAxis: { type: 'value', min: 0, max: 1, name: 'share targeted', nameLocation: 'middle', nameGap: 24, axisLabel: { formatter: (v) => fmt.pct(v, 0) } },
      yAxis: axisMoney,
      series: [
        { name: arm.arm, type: 'line', showSymbol: false, data: shares.map((x) => [x, simulate(arm, x, pop, q.value, q.cost).gain]) },
        { name: 'chosen', type: 'scatter', symbolSize: 12, data: [[s, r.gain]], itemStyle: { color: '#D55E00' } },
      ],
    });
  };
  form.addEventListener('input', update);
  form.addEventListener('submit', (ev) => ev.preventDefault());
  update();

  const best = q.comparison.length ? q.comparison[0].learner : null;
  main.append(el('section', { class: 'card' }, el('h2', { text: 'Learners compared on the held-out customers' }),
    el('p', { class: 'hint', text: 'Normalised Qini (1: a perfect ranking, 0: random); the served learner is the best mean unless the config names one.' }),
    el('table', {},
      el('thead', {}, el('tr', {}, el('th', { text: 'learner' }), el('th', { class: 'num', text: 'mean' }), q.arms.map((a) => el('th', { class: 'num', text: a.arm })))),
      el('tbody', {}, q.comparison.map((c) => el('tr', {},
        el('td', { text: `${c.learner}${c.learner === q.learner ? ' (served)' : ''}${c.learner === best && c.learner !== q.learner ? ' (best)' : ''}` }),
        el('td', { class: 'num', text: fmt.num(c.mean_qini_normalised, 4) }),
        q.arms.map((a) => el('td', { class: 'num', text: fmt.num(c.arms ? c.arms[a.arm] : NaN, 4) }))))))));
}
