// clusters.js - one card per cluster (GET /clusters/summary) and the RFM
// segment x cluster matrix (GET /analytics/rfm-matrix).
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, PALETTE, SEQUENTIAL } from './charts.js';

const FEATURES = [
  ['recency', 'Recency', 'days since the last purchase', (v) => `${fmt.num(v)} days`],
  ['frequency', 'Frequency', 'purchases', (v) => fmt.num(v, 1)],
  ['monetary', 'Monetary', 'total spend', (v) => fmt.money(v)],
];

// The population's mean of each feature, from the clusters' means and sizes.
function population(clusters) {
  const n = clusters.reduce((s, c) => s + c.customers, 0);
  const out = {};
  for (const [f] of FEATURES) out[f] = n ? clusters.reduce((s, c) => s + c[f].mean * c.customers, 0) / n : NaN;
  return out;
}

function clusterCard(c, pop, colour) {
  const box = el('div', { class: 'chart', role: 'img', 'aria-label': `Profile of ${c.segment}` });
  const rule = c.rule;
  const card = el('article', { class: 'card cluster', tabindex: '0', 'aria-label': c.segment },
    el('h2', {}, el('span', { class: 'swatch', style: `background:${colour}` }), c.segment),
    el('div', { class: 'size', text: `${fmt.num(c.customers)} customers · ${fmt.pct(c.share)} of all` }),
    box,
    el('p', { text: c.strategy }),
    rule ? el('p', {}, el('span', { class: 'muted', text: 'Rule: ' }), el('span', { class: 'rule', text: rule.text })) : null,
    rule ? el('p', { class: 'hint', text: `matches ${fmt.pct(rule.coverage, 0)} of this cluster and ${fmt.pct(rule.leak, 0)} of the others` }) : null);
  return [card, () => chart(box, {
    grid: { left: 8, right: 48, top: 4, bottom: 4, containLabel: true },
    tooltip: { trigger: 'item', formatter: (p) => {
      const [f, name, unit, show] = FEATURES[p.dataIndex];
      return `${name} (${unit}): mean ${show(c[f].mean)}, median ${show(c[f].median)}; everyone: ${show(pop[f])}`;
    } },
    xAxis: { type: 'value', min: 0, max: (e) => Math.max(1.25, Math.ceil(e.max * 11) / 10), axisLabel: { formatter: (v) => `${fmt.num(v, 1)}x` }, splitNumber: 3 },
    yAxis: { type: 'category', inverse: true, data: FEATURES.map((f) => f[1]) },
    series: [{ type: 'bar', name: 'against everyone', itemStyle: { color: colour },
      data: FEATURES.map(([f]) => (fmt.ok(pop[f]) && pop[f] > 0 ? c[f].mean / pop[f] : null)),
      markLine: { symbol: 'none', silent: true, data: [{ xAxis: 1 }], lineStyle: { color: '#5a6472', type: 'dashed' }, label: { show: false } },
      label: { show: true, position: 'right', formatter: (p) => FEATURES[p.dataIndex][3](c[FEATURES[p.dataIndex][0]].mean) } }],
  })];
}

export async function render(main) {
  const [summary, matrix] = await Promise.all([api.get('/clusters/summary'), api.get('/analytics/rfm-matrix')]);
  const clusters = summary.clusters;
  const pop = population(clusters);
  main.append(
    el('h1', { text: 'Clusters' }),
    el('p', { class: 'sub', text: `${clusters.length} clusters of ${fmt.num(clusters.reduce((s, c) => s + c.customers, 0))} customers · bars: the cluster's mean against everyone's (dashed line: 1x) · model ${summary.model_version || '-'}` }));
  const grid = el('div', { class: 'clusters' });
  main.append(grid);
  const draws = clusters.map((c, i) => {
    const [card, draw] = clusterCard(c, pop, PALETTE[i % PALETTE.length]);
    grid.append(card);
    return draw;
  });
  draws.forEach((d) => d());

  if (!matrix.segments) {
    main.append(el('p', { class: 'muted', text: 'The RFM segment x cluster matrix needs the analytics model: run rfm-train.' }));
    return;
  }
  const mBox = el('div', { class: 'chart tall', role: 'img', 'aria-label': 'RFM segment by cluster' });
  const gBox = el('div', { class: 'chart tall', role: 'img', 'aria-label': 'Recency score by frequency score' });
  main.append(el('div', { class: 'grid2' },
    el('section', { class: 'card' }, el('h2', { text: 'RFM segment x cluster' }), el('p', { class: 'hint', text: 'Customers of each named RFM segment in each cluster.' }), mBox),
    el('section', { class: 'card' }, el('h2', { text: 'Recency x frequency scores' }), el('p', { class: 'hint', text: 'Customers by their recency and frequency scores (5: most recent, most frequent).' }), gBox)));
  const cells = [];
  matrix.counts.forEach((row, i) => row.forEach((v, j) => cells.push([j, i, v])));
  const heat = (xs, ys, data, xName, yName) => ({
    tooltip: { formatter: (p) => `${ys[p.value[1]]} · ${xs[p.value[0]]}: ${fmt.num(p.value[2])} customers` },
    grid: { left: 24, right: 16, top: 8, bottom: 64, containLabel: true },
    xAxis: { type: 'category', data: xs, name: xName, nameLocation: 'middle', nameGap: 40, axisLabel: { interval: 0, overflow: 'break', width: 80 } },
    yAxis: { type: 'category', data: ys, name: yName, inverse: true },
    visualMap: { min: 0, max: Math.max(1, ...data.map((c) => c[2])), orient: 'horizontal', right: 0, bottom: 0, itemHeight: 120, inRange: { color: SEQUENTIAL }, formatter: (v) => fmt.num(v) },
    series: [{ type: 'heatmap', data, label: { show: true, formatter: (p) => (p.value[2] ? fmt.num(p.value[2]) : '') } }],
  });
  chart(mBox, heat(matrix.clusters, matrix.segments, cells, 'cluster', ''));
  const g = [];
  matrix.grid.forEach((row, r) => row.forEach((v, f) => g.push([f, r, v])));
  chart(gBox, heat(matrix.frequency_scores.map(String), matrix.recency_scores.map(String), g, 'frequency score', 'recency score'));
}
