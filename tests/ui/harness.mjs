// harness.mjs - the real daemon and a real browser for the /ui/ test and
// bench (docs/ui.md). Models: RFM_UI_MODELS, or trained here from the
// bundled data (every model and their analytics; about 40 s on 2 cores).
// The daemon binds port 0 and says which port it got; everything started
// here is stopped when the process ends, however it ends.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, connect } from 'node:net';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TOKEN = 'ui-test-token';
const B = process.env.B || 'build';

const children = new Set();
const temps = new Set();
function cleanup() {
  for (const c of children) { try { c.kill('SIGKILL'); } catch (e) { /* gone */ } }
  for (const t of temps) rmSync(t, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { cleanup(); process.exit(130); });

export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.add(d);
  return d;
}

// A config for the test: a state store of its own in dir (POST /events,
// GET /feed), an access log (server times).
function testConfig(dir) {
  let y = readFileSync(join(ROOT, 'config/rfm.yaml'), 'utf8');
  y = y.replace('path: state/state.db', `path: ${join(dir, 'state.db')}`);
  y = y.replace('access_log: null', `access_log: ${join(dir, 'access.log')}`);
  y = y.replace('openapi: openapi.yaml', `openapi: ${join(ROOT, 'openapi.yaml')}`);
  const f = join(dir, 'rfm.yaml');
  writeFileSync(f, y);
  return f;
}

export function models(dir, config) {
  if (process.env.RFM_UI_MODELS) return process.env.RFM_UI_MODELS;
  const out = join(dir, 'models');
  const r = spawnSync(join(ROOT, 'bin/rfm-train'), ['--quiet', '--config', config,
    '--transactions', join(ROOT, 'data/online_retail.csv.gz'), '--models', out],
    { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) throw new Error(`rfm-train exited ${r.status}`);
  return out;
}

// Start rfm-serve; resolves to {base, dir, log(), stop()} once it listens.
export async function startServer() {
  const dir = tempDir('rfm-ui-');
  const config = testConfig(dir);
  const m = models(dir, config);
  const serve = process.env.RFM_SERVE ? resolve(ROOT, process.env.RFM_SERVE) : join(ROOT, B, 'bin/rfm-serve');
  const ui = join(ROOT, B, 'ui-assets');
  if (!existsSync(join(ui, 'index.html'))) throw new Error(`${ui} is missing: run make`);
  const child = spawn(serve, ['--config', config, '--port', '0', '--models', m, '--ui', ui],
    { cwd: ROOT, env: { ...process.env, RFM_API_TOKENS: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  const port = await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`rfm-serve did not listen within 20 s:\n${err}`)), 20000);
    child.stderr.on('data', (b) => {
      err += b;
      const m2 = /listening on https?:\/\/[^:]+:(\d+)/.exec(err);
      if (m2) { clearTimeout(t); res(Number(m2[1])); }
    });
    child.on('exit', (code) => { clearTimeout(t); rej(new Error(`rfm-serve exited ${code}:\n${err}`)); });
  });
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    dir,
    log: () => (existsSync(join(dir, 'access.log')) ? readFileSync(join(dir, 'access.log'), 'utf8') : ''),
    stderr: () => err,
    // SIGTERM; resolves to the exit status (0: a clean shutdown).
    async stop() {
      child.removeAllListeners('exit');
      const done = new Promise((res) => child.once('exit', (code) => res(code)));
      child.kill('SIGTERM');
      const code = await done;
      children.delete(child);
      return code;
    },
  };
}

// A TCP relay to the daemon's port that the test can cut: cut(true) closes
// every connection through it (the browser sees its stream end) and
// refuses new ones until cut(false). Chromium's offline mode would not do:
// it leaves a stream already open alone. Resolves to {base, cut, close}.
export async function relay(port) {
  const socks = new Set();
  let refusing = false;
  const server = createServer((c) => {
    if (refusing) return c.destroy();
    const u = connect(port, '127.0.0.1');
    socks.add(c).add(u);
    const drop = () => { c.destroy(); u.destroy(); socks.delete(c); socks.delete(u); };
    c.on('error', drop).on('close', drop);
    u.on('error', drop).on('close', drop);
    c.pipe(u);
    u.pipe(c);
  });
  await new Promise((res) => server.listen(0, '127.0.0.1', res));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    cut(on) {
      refusing = on;
      if (on) for (const s of socks) s.destroy();
    },
    close: () => new Promise((res) => { for (const s of socks) s.destroy(); server.close(res); }),
  };
}

// Debian's chromium, headless, in a fresh profile.
export async function browser() {
  const profile = tempDir('rfm-ui-profile-');
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const PAGES = [
  { hash: 'executive', charts: 4 },
  { hash: 'clusters', charts: 3 },
  { hash: 'cltv-churn', charts: 9 },
  { hash: 'planner', charts: 1 },
  { hash: 'explain', charts: 3 },
  { hash: 'uplift', charts: 3 },
  { hash: 'embeddings', charts: 1 },
  { hash: 'exports', charts: 0 },
];

// Go to #/hash and wait until its data is shown; returns ms taken.
export async function visit(page, hash) {
  const t0 = Date.now();
  await page.evaluate((h) => { location.hash = `#/${h}`; }, hash);
  await page.waitForFunction((h) => {
    const m = document.getElementById('main');
    return m && m.dataset.page === h && m.dataset.ready === 'true';
  }, hash, { timeout: 15000 });
  return Date.now() - t0;
}

// For each chart of the page: its series and how many data points each has.
export function chartData(page) {
  return page.evaluate(() => [...document.querySelectorAll('#main .chart')].map((el) => {
    const c = window.echarts.getInstanceByDom(el);
    if (!c) return { label: el.getAttribute('aria-label'), series: null };
    const o = c.getOption();
    return { label: el.getAttribute('aria-label'), series: (o.series || []).map((s) => (s.data || []).length) };
  }));
}

export async function signIn(page, token) {
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
}
