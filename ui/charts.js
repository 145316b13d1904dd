// charts.js - ECharts (window.echarts, loaded by index.html) with the
// app's palette and formatting. Okabe-Ito: eight colours told apart with
// any common colour-vision deficiency.
import * as fmt from './format.js';

export const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];
// Sequential (heatmaps): light to dark blue, readable without hue.
export const SEQUENTIAL = ['#f2f7fb', '#c6dbef', '#6baed6', '#2171b5', '#08306b'];
export const RISK = { low: '#009E73', medium: '#E69F00', high: '#D55E00' };

const live = new Set();

// A chart in el with option (series need data); resized with the window,
// disposed when the page changes (disposeAll).
export function chart(el, option) {
  const c = window.echarts.init(el, null, { renderer: 'canvas' });
  c.setOption({
    color: PALETTE,
    textStyle: { fontFamily: 'system-ui, sans-serif' },
    animation: false,
    grid: { left: 56, right: 16, top: 28, bottom: 36, containLabel: true },
    tooltip: { trigger: 'item', confine: true },
    ...option,
  });
  live.add(c);
  return c;
}

export function disposeAll() {
  for (const c of live) c.dispose();
  live.clear();
}

window.addEventListener('resize', () => { for (const c of live) c.resize(); });

// Value axes formatted for people.
export const axisNum = { type: 'value', axisLabel: { formatter: (v) => fmt.num(v) } };
export const axisMoney = { type: 'value', axisLabel: { formatter: (v) => fmt.moneyShort(v) } };
export const axisPct = { type: 'value', max: 1, axisLabel: { formatter: (v) => fmt.pct(v, 0) } };
