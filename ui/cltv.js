// cltv.js - CLTV & churn: GET /analytics/cltv-churn. The churn model's
// ROC and calibration curves and the holdout comparison come later.
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, axisMoney, axisNum, PALETTE, SEQUENTIAL } from './charts.js';

function section(title, hint, cls = 'chart') {
  const box = el('div', { class: cls, role: 'img', 'aria-label': title });
  return [el('section', { class: 'card' }, el('h2', { text: title }), el('p', { class: 'hint', text: hint }), box), box];
}

// A heatmap of BG/NBD figures: frequency across, days since last purchase down.
function heatmap(box, m, show) {
  const data = [];
  let max = 0;
  m.values.forEach((row, i) => row.forEach((v, j) => {
    if (fmt.ok(v)) { data.push([j, i, v]); max = Math.max(max, v); }
  }));
  chart(box, {
    tooltip: { formatter: (p) => `${fmt.num(m.frequency[p.value[0]])} repeat purchases, last ${fmt.num(m.days_since_last[p.value[1]])} days ago: ${show(p.value[2])}` },
    grid: { left: 36, right: 16, top: 8, bottom: 72, containLabel: true },
    xAxis: { type: 'category', name: 'repeat purchases (frequency)', nameLocation: 'middle', nameGap: 28, data: m.frequency.map(String) },
    yAxis: { type: 'category', name: 'days since last purchase', nameLocation: 'middle', nameGap: 36, data: m.days_since_last.map((d) => fmt.num(d)) },
    visualMap: { min: 0, max: max || 1, orient: 'horizontal', right: 0, bottom: 0, itemHeight: 140, inRange: { color: SEQUENTIAL }, text: [show(max || 1), show(0)] },
    series: [{ type: 'heatmap', data }],
  });
}

function boxplot(box, by, key, axis, show, floor = -Infinity) {
  const rows = by.filter((s) => s[key]);
  chart(box, {
    tooltip: { trigger: 'item', formatter: (p) => {
      const s = rows[p.dataIndex], f = s[key];
      return `${s.segment} (${fmt.num(s.customers)} customers)<br>min ${show(f.min)} · q1 ${show(f.q1)} · median ${show(f.median)} · q3 ${show(f.q3)} · max ${show(f.max)} · mean ${show(f.mean)}`;
    } },
    grid: { left: 8, right: 16, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: 'category', data: rows.map((s) => s.segment), axisLabel: { interval: 0, rotate: 30 } },
    yAxis: axis,
    series: [{ type: 'boxplot', itemStyle: { color: '#e8f1f8', borderColor: PALETTE[0] },
      data: rows.map((s) => [s[key].min, s[key].q1, s[key].median, s[key].q3, s[key].max].map((v) => Math.max(floor, v))) }],
  });
}

export async function render(main) {
  const [cc, ov] = await Promise.all([api.get('/analytics/cltv-churn'), api.get('/analytics/overview')]);
  fmt.setCurrency(ov.currency);
  main.append(el('h1', { text: 'CLTV & churn' }),
    el('p', { class: 'sub', text: `BG/NBD, Gamma-Gamma and the churn model over ${fmt.num(ov.customers)} training customers · model ${cc.model_version || '-'}` }));
  const [histCard, hBox] = section('Churn probability', 'Customers by the churn model\'s probability.');
  const [pCard, pBox] = section('Churn probability by segment', 'Per RFM segment: minimum, quartiles, maximum.');
  const [vCard, vBox] = section('CLTV by segment', `Lifetime value over ${fmt.num(ov.cltv ? ov.cltv.horizon_days : NaN)} days; log scale.`);
  const [aCard, aBox] = section('P(alive)', cc.p_alive ? `For a customer first seen ${fmt.num(cc.p_alive.T_days)} days ago (the median customer), by repeat purchases and days since the last purchase.` : '', 'chart tall');
  const [eCard, eBox] = section('Expected purchases', cc.expected_purchases ? `Over the next ${fmt.num(cc.expected_purchases.horizon_days)} days, same customer.` : '', 'chart tall');
  const ho = cc.holdout;
  const [hoCard, hoBox] = section('Actual against predicted purchases over the holdout',
    ho ? `BG/NBD fitted on purchases before ${ho.cut}, then the next ${fmt.num(ho.days)} days: mean repeat purchase days per customer, by repeat purchases before the cut. All ${fmt.num(ho.customers)} customers: ${fmt.num(ho.actual)} actual, ${fmt.num(ho.predicted)} predicted.` : '');
  main.append(el('div', { class: 'grid3' }, histCard, pCard, vCard), el('div', { class: 'grid2' }, aCard, eCard),
    el('div', { class: 'grid2' }, hoCard,
      el('section', { class: 'card coming', 'data-state': 'coming' }, el('h2', { text: 'Coming' }),
        el('p', { text: 'The churn model\'s ROC and calibration curves, once the server exposes them.' }))));
  if (ho) {
    chart(hoBox, {
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => fmt.num(v, 2) },
      legend: { top: 0 },
      grid: { left: 8, right: 16, top: 32, bottom: 36, containLabel: true },
      xAxis: { type: 'category', name: 'repeat purchases before the cut', nameLocation: 'middle', nameGap: 26, data: ho.groups.map((g) => g.repeat_purchases) },
      yAxis: { type: 'value', axisLabel: { formatter: (v) => fmt.num(v, 1) } },
      series: [
        { name: 'Actual', type: 'bar', data: ho.groups.map((g) => g.actual_mean) },
        { name: 'Predicted', type: 'bar', data: ho.groups.map((g) => g.predicted_mean) },
      ],
    });
  } else hoBox.replaceWith(el('p', { class: 'muted', text: 'The cltv model is not trained, or its holdout check did not run.' }));
  if (cc.churn_histogram) {
    const h = cc.churn_histogram;
    chart(hBox, {
      tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => `${fmt.num(v)} customers` },
      grid: { left: 8, right: 16, top: 8, bottom: 24, containLabel: true },
      xAxis: { type: 'category', data: h.counts.map((_, i) => `${fmt.pct(h.edges[i], 0)}-${fmt.pct(h.edges[i + 1], 0)}`) },
      yAxis: axisNum,
      series: [{ type: 'bar', name: 'Customers', data: h.counts, barCategoryGap: '5%' }],
    });
  } else hBox.replaceWith(el('p', { class: 'muted', text: 'The churn model is not trained.' }));
  if (cc.by_segment && cc.by_segment.some((s) => s.churn_probability))
    boxplot(pBox, cc.by_segment, 'churn_probability', { type: 'value', min: 0, max: 1, axisLabel: { formatter: (v) => fmt.pct(v, 0) } }, (v) => fmt.pct(v));
  else pBox.replaceWith(el('p', { class: 'muted', text: 'Needs the segments and churn models.' }));
  if (cc.by_segment && cc.by_segment.some((s) => s.cltv))
    boxplot(vBox, cc.by_segment, 'cltv', { ...axisMoney, type: 'log', min: 1 }, (v) => fmt.money(v), 1);
  else vBox.replaceWith(el('p', { class: 'muted', text: 'Needs the segments and cltv models.' }));
  if (cc.p_alive) heatmap(aBox, cc.p_alive, (v) => fmt.pct(v));
  else aBox.replaceWith(el('p', { class: 'muted', text: 'The cltv model is not trained.' }));
  if (cc.expected_purchases) heatmap(eBox, cc.expected_purchases, (v) => fmt.num(v, 1));
  else eBox.replaceWith(el('p', { class: 'muted', text: 'The cltv model is not trained.' }));
}
