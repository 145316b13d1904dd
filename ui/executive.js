// executive.js - the executive dashboard: GET /analytics/overview.
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, axisMoney, axisNum, RISK, SEQUENTIAL } from './charts.js';

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

export async function render(main) {
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
  main.append(monthly, el('div', { class: 'grid2' }, riskCard, segCard), cohortCard);

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
