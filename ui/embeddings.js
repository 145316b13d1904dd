// embeddings.js - Embedding explorer: GET /analytics/embedding-map (the
// customer embeddings on their first two principal axes, coloured by
// cluster); a click, or a customer id typed in, lists the customer's
// lookalikes from POST /similar_customers.
import * as api from './api.js';
import * as fmt from './format.js';
import { el } from './format.js';
import { chart, PALETTE } from './charts.js';

export async function render(main) {
  const m = await api.get('/analytics/embedding-map');
  const p = m.points;
  const names = [...m.segments, 'unknown'];
  main.append(el('h1', { text: 'Embedding explorer' }),
    el('p', { class: 'sub', text: `${fmt.num(p.ids.length)} of ${fmt.num(m.customers)} customers' ${fmt.num(m.dim)}-dimensional purchase embeddings on their first two principal components (${fmt.pct(m.explained_variance[0])} and ${fmt.pct(m.explained_variance[1])} of the variance) · model ${m.model_version || '-'}` }));
  const box = el('div', { class: 'chart map', role: 'img', 'aria-label': 'Embedding map' });
  const form = el('form', { class: 'filters', 'aria-label': 'Find lookalikes' },
    el('label', {}, 'Customer id', el('input', { name: 'id', required: true, value: p.ids[0] || '' })),
    el('label', {}, 'Lookalikes', el('input', { name: 'k', type: 'number', min: '1', max: '50', value: '10' })),
    el('button', { type: 'submit', text: 'Find lookalikes' }));
  const list = el('div', { role: 'status', 'aria-live': 'polite' });
  main.append(el('div', { class: 'grid2 wide-left' },
    el('section', { class: 'card' }, el('h2', { text: 'Customers by cluster' }),
      el('p', { class: 'hint', text: 'Close points bought alike. Click a point to list its lookalikes.' }), box),
    el('section', { class: 'card' }, el('h2', { text: 'Lookalikes' }), form, list)));
  const bySeg = names.map(() => []);
  p.ids.forEach((id, i) => {
    const s = p.segment[i] >= 0 && p.segment[i] < m.segments.length ? p.segment[i] : names.length - 1;
    bySeg[s].push({ value: [p.x[i], p.y[i]], id });
  });
  // large: drawn in one pass (thousands of points); clicks still name the point.
  const series = names.map((n, s) => ({ id: `seg${s}`, name: n, type: 'scatter', symbolSize: 5, large: true, largeThreshold: 500, data: bySeg[s], itemStyle: { color: s < m.segments.length ? PALETTE[s % 8] : '#b8bec7', opacity: 0.75 } }))
    .filter((s) => s.data.length);
  // The customer of a clicked or hovered point (large series may not hand
  // back the data item itself).
  const byId = new Map(series.map((x) => [x.id, x.data]));
  let selected = [];
  const pointId = (q) => (q.seriesId === 'selected' ? selected[q.dataIndex] : (byId.get(q.seriesId) || [])[q.dataIndex]?.id);
  const c = chart(box, {
    tooltip: { formatter: (q) => `customer ${pointId(q) || '-'} · ${q.seriesName}` },
    legend: { top: 0 },
    grid: { left: 28, right: 16, top: 32, bottom: 28, containLabel: true },
    xAxis: { type: 'value', name: 'component 1', nameLocation: 'middle', nameGap: 24, scale: true, axisLabel: { formatter: (v) => fmt.num(v, 2) } },
    yAxis: { type: 'value', name: 'component 2', nameLocation: 'middle', nameGap: 44, scale: true, axisLabel: { formatter: (v) => fmt.num(v, 2) } },
    series,
  });

  const where = new Map(p.ids.map((id, i) => [id, [p.x[i], p.y[i]]]));
  async function lookalikes(id, k) {
    list.replaceChildren(el('p', { class: 'muted', text: 'Loading...' }));
    try {
      const r = await api.post('/similar_customers', { customer_id: id, k });
      const near = r.neighbors.filter((n) => where.has(n.customer_id));
      c.setOption({ series: [{ id: 'selected', name: 'selected', type: 'scatter', symbolSize: 12, z: 5,
        itemStyle: { color: '#000', borderColor: '#fff', borderWidth: 1 },
        data: (selected = [id, ...near.map((n) => n.customer_id)].filter((x) => where.has(x))).map((x) => where.get(x)) }] });
      list.replaceChildren(el('p', { text: `The ${fmt.num(r.neighbors.length)} customers who bought most like ${id} (cosine similarity of the embeddings; black on the map when sampled):` }),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: 'customer' }), el('th', { text: 'cluster' }), el('th', { class: 'num', text: 'similarity' }))),
          el('tbody', {}, r.neighbors.map((n) => el('tr', {}, el('td', { text: n.customer_id }), el('td', { text: fmt.text(n.segment) }), el('td', { class: 'num', text: fmt.num(n.similarity, 3) }))))));
    } catch (e) {
      if (e.status === 401) return;
      list.replaceChildren(el('p', { class: 'error', role: 'alert', 'data-state': 'error', text: `No lookalikes for ${id}: ${e.message}` }));
    }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); lookalikes(form.id.value.trim(), Math.min(50, Math.max(1, Number(form.k.value) || 10))); });
  c.on('click', (q) => { const id = pointId(q); if (id) { form.id.value = id; lookalikes(id, Number(form.k.value) || 10); } });
  if (p.ids.length) await lookalikes(p.ids[0], 10);
}
