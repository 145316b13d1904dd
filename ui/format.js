// format.js - every number, money amount, share and date the app shows.
// A value that is missing or not finite is shown as "-", never as NaN or
// undefined.

let currency = null; // ISO 4217 code from the API (GET /analytics/overview)

export function setCurrency(code) {
  currency = typeof code === 'string' && /^[A-Z]{3}$/.test(code) ? code : null;
}

export function ok(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

const cache = new Map();
function nf(opts) {
  const key = JSON.stringify(opts);
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat('en-GB', opts));
  return cache.get(key);
}

// 12,345 (digits: decimals shown).
export function num(v, digits = 0) {
  return ok(v) ? nf({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v) : '-';
}

// £12,345 with the data's currency, or 12,345 without one.
export function money(v, digits = 0) {
  if (!ok(v)) return '-';
  if (!currency) return num(v, digits);
  return nf({ style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
}

// £1.2M, £340k: for axes and tight places.
export function moneyShort(v) {
  if (!ok(v)) return '-';
  const opts = { notation: 'compact', maximumFractionDigits: 1 };
  return nf(currency ? { ...opts, style: 'currency', currency } : opts).format(v);
}

export function pct(v, digits = 1) {
  return ok(v) ? nf({ style: 'percent', minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v) : '-';
}

// "2011-03" to "Mar 2011".
export function month(s) {
  if (typeof s !== 'string' || !/^\d{4}-\d{2}$/.test(s)) return '-';
  const [y, m] = s.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleDateString('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });
}

// An ISO 8601 instant ("2026-12-02T08:26:00Z") in the viewer's time zone:
// "14:03:12" today, "2 Dec, 14:03:12" on another day.
export function time(s) {
  const d = typeof s === 'string' ? new Date(s) : null;
  if (!d || !Number.isFinite(d.getTime())) return '-';
  const t = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (d.toDateString() === new Date().toDateString()) return t;
  return `${d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })}, ${t}`;
}

// Text for a value of unknown kind (table cells).
export function text(v) {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'number') return ok(v) ? num(v, Number.isInteger(v) ? 0 : 2) : '-';
  return String(v);
}

// An element with text content (never innerHTML: ids and names are data).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
