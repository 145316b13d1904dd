// ui.test.mjs - the /ui/ app in Debian's chromium against the real daemon
// (`make ui-test`, part of `make test`; docs/ui.md). Checks: a wrong token
// is refused on the sign-in screen with the server's reason; the right one
// opens the app; every page shows its data (each chart has series with
// points); the explain page's waterfall, the embedding explorer's
// lookalikes, the uplift slider and the planner's export link work;
// the keyboard reaches the navigation; no "NaN", "undefined" or "null" is
// shown;
// the exports page answers its endpoint (the CSV downloaded equals the
// endpoint's, or a clear message while the server has none); a 401 later
// returns to sign-in with the reason; no console error and no failed
// request beyond those the steps provoke on purpose. Screenshots of every
// page at 1440x900 go to build/ui/.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TOKEN, PAGES, startServer, browser, visit, chartData, signIn } from './harness.mjs';

const shots = join(ROOT, process.env.B || 'build', 'ui');
mkdirSync(shots, { recursive: true });
let failures = 0;
function check(ok, what) {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

const srv = await startServer();
const ctx = await browser();
const page = await ctx.newPage();
const problems = [];
let allowed = []; // [status, path] answers a step provokes on purpose
// Chromium also logs each 4xx as a console error: those of allowed answers are expected.
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  const at = m.location().url || '';
  const expected = /Failed to load resource: the server responded with a status of (401|404)/.test(m.text()) &&
    allowed.some(([s, p]) => m.text().includes(String(s)) && at.includes(p));
  if (!expected) problems.push({ kind: 'console', text: `${m.text()} (${at})` });
});
page.on('pageerror', (e) => problems.push({ kind: 'exception', text: String(e) }));
page.on('requestfailed', (r) => problems.push({ kind: 'request failed', text: `${r.url()} ${r.failure()?.errorText}` }));
page.on('response', (r) => {
  const path = new URL(r.url()).pathname;
  if (r.status() >= 400 && !allowed.some(([s, p]) => s === r.status() && p === path))
    problems.push({ kind: 'HTTP', text: `${r.status()} ${r.url()}` });
});

try {
  console.log(`ui test against ${srv.base}/ui/`);
  await page.goto(`${srv.base}/ui/`);
  await page.waitForSelector('#signin:not([hidden])');
  check(true, 'sign-in screen shown first');

  allowed = [[401, '/clusters/summary']];
  await signIn(page, 'not-the-token');
  const err = await page.waitForSelector('#signin-error:not([hidden])');
  const msg = await err.textContent();
  check(/unknown bearer token/.test(msg), `wrong token refused: "${msg}"`);
  check(await page.evaluate(() => sessionStorage.getItem('rfm.token')) === null, 'wrong token not kept');
  await page.screenshot({ path: join(shots, 'signin.png') });
  allowed = [];

  await signIn(page, TOKEN);
  await page.waitForSelector('#shell:not([hidden])');
  check(await page.evaluate(() => sessionStorage.getItem('rfm.token')) === TOKEN, 'token kept in sessionStorage rfm.token');

  for (const p of PAGES) {
    if (p.hash === 'exports') allowed = [[404, '/exports/customers.csv']];
    const ms = await visit(page, p.hash);
    const charts = await chartData(page);
    const text = await page.innerText('#main');
    const empty = charts.filter((c) => !c.series || c.series.length === 0 || c.series.some((n) => n === 0));
    check(charts.length >= p.charts && empty.length === 0,
      `#/${p.hash}: ${charts.length} charts with data (${ms} ms)${empty.length ? `; empty: ${empty.map((c) => c.label).join(', ')}` : ''}`);
    check((await page.$('#main [data-state="coming"]')) === null, `#/${p.hash}: nothing left "coming"`);
    if (p.hash === 'explain') {
      const t = await page.innerText('#main [role="status"]');
      check(/churn probability \d/.test(t), `explain: the first sampled customer explained ("${t.slice(0, 80)}...")`);
      const id = await page.inputValue('#main input[name="id"]');
      await page.fill('#main input[name="id"]', id);
      await page.press('#main input[name="id"]', 'Enter');
      await page.waitForFunction(() => /churn probability \d/.test(document.querySelector('#main [role="status"]').innerText));
      check(true, 'explain: a customer id typed in and Enter explains it');
    }
    if (p.hash === 'embeddings') {
      const rows = await page.$$eval('#main table tbody tr', (r) => r.length);
      check(rows === 10, `embeddings: 10 lookalikes of the first customer listed (${rows})`);
      // A click on a point of the map lists that customer's lookalikes.
      const before = await page.inputValue('#main input[name="id"]');
      const at = await page.evaluate(() => {
        const el = document.querySelector('#main .chart');
        const c = window.echarts.getInstanceByDom(el);
        const series = c.getOption().series.filter((x) => x.id !== 'selected');
        const last = series.length - 1, d = series[last].data;
        const v = d[Math.floor(d.length / 2)];
        const [x, y] = c.convertToPixel({ seriesIndex: last }, Array.isArray(v) ? v : v.value);
        const r = el.getBoundingClientRect();
        return [r.left + x, r.top + y];
      });
      await page.mouse.click(at[0], at[1]);
      await page.waitForFunction((b) => document.querySelector('#main input[name="id"]').value !== b, before, { timeout: 5000 }).catch(() => {});
      const picked = await page.inputValue('#main input[name="id"]');
      await page.waitForFunction((id) => document.querySelector('#main [role="status"]').innerText.includes(`like ${id}`), picked, { timeout: 5000 }).catch(() => {});
      const said = await page.innerText('#main [role="status"]');
      check(picked !== before && said.includes(`like ${picked}`), `embeddings: a click on the map lists the lookalikes of the customer clicked (${before} -> ${picked})`);
    }
    if (p.hash === 'uplift') {
      const gain = () => page.innerText('#main [role="status"] .kpi:nth-child(3) .value');
      const before = await gain();
      await page.focus('#main input[name="share"]');
      for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowRight');
      const after = await gain();
      const contacted = await page.innerText('#main [role="status"] .kpi:nth-child(1) .note');
      check(before !== after && /^50%/.test(contacted), `uplift: the slider (by keyboard) moves the net gain (${before} -> ${after}, ${contacted})`);
    }
    if (p.hash === 'planner') {
      const link = await page.$('#main table a[href^="#/exports?segment="]');
      check(link !== null, 'planner: proposed segments with an export link');
      if (link) {
        const href = await link.getAttribute('href');
        const seg = new URLSearchParams(href.split('?')[1]).get('segment');
        await link.click();
        await page.waitForFunction(() => document.getElementById('main').dataset.page === 'exports' && document.getElementById('main').dataset.ready === 'true');
        check(await page.inputValue('#main select[name="segment"]') === seg, `planner: the export link opens Exports with segment "${seg}"`);
        await visit(page, 'planner');
      }
    }
    check(!/NaN|undefined|null|\[object /.test(text), `#/${p.hash}: no NaN, undefined, null or [object shown`);
    const error = await page.$('#main > p.error');
    check(error === null, `#/${p.hash}: no error shown${error ? `: ${await error.textContent()}` : ''}`);
    if (p.hash === 'exports') {
      await page.click('#main form button[type="submit"]');
      const r = await page.waitForSelector('#main table, #main [data-state="no-endpoint"], #main [data-state="error"]');
      const state = await r.getAttribute('data-state');
      check(state === null, `exports: preview table shown${state ? `: ${await r.textContent()}` : ''}`);
      if (state === null) {
        check((await page.$$('#main table tbody tr')).length === 20, 'exports: the preview has the first 20 rows');
        const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#main button[name="download"]')]);
        const got = readFileSync(await dl.path(), 'utf8');
        const lines = got.split('\n');
        check(lines[0].startsWith('customer_id,recency,frequency,monetary,rfm_score,rfm_segment,cluster,segment,churn_probability,') &&
          lines[0].endsWith(',model_version,scored_at'), 'exports: the download starts with the pinned header');
        check(lines.length === 1002 && lines[1001] === '', `exports: the download has the header and 1,000 rows (${lines.length - 2})`);
        check(/^customers-\d{4}-\d{2}-\d{2}\.csv$/.test(dl.suggestedFilename()), `exports: saved as the server's file name (${dl.suggestedFilename()})`);
        check(/Downloaded 1,000 rows/.test(await page.textContent('#export-status')), 'exports: the page says how many rows were downloaded');
        const curl = await page.textContent('#main pre[data-cmd="curl"]');
        const url = /'([^']+)'/.exec(curl)[1];
        const want = await (await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
        check(got === want, `exports: the CSV downloaded equals the endpoint's answer (${got.length} bytes)`);
      }
      check(/rfm-score --out targets.csv --top 1000 --by value_at_risk/.test(await page.innerText('#main')),
        'exports: the equivalent rfm-score line is shown');
    }
    await page.screenshot({ path: join(shots, `${p.hash}.png`) });
    allowed = [];
  }

  // Keyboard: from the page, Tab reaches the navigation and Enter follows a link.
  await page.focus('#main');
  let onClusters = false;
  for (let i = 0; i < 30 && !onClusters; i++) {
    await page.keyboard.press('Shift+Tab');
    onClusters = await page.evaluate(() => document.activeElement?.getAttribute('href') === '#/clusters');
  }
  check(onClusters, 'keyboard: Shift+Tab from the page reaches the Clusters link');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.getElementById('main').dataset.page === 'clusters' && document.getElementById('main').dataset.ready === 'true');
  check(true, 'keyboard: Enter on a link opens its page');

  // A token the server stops accepting: back to sign-in with the reason.
  allowed = [[401, '/analytics/overview']];
  await page.evaluate(() => sessionStorage.setItem('rfm.token', 'revoked-token'));
  await page.evaluate(() => { location.hash = '#/executive'; });
  const back = await page.waitForSelector('#signin-error:not([hidden])');
  check(/Signed out: unknown bearer token/.test(await back.textContent()), 'a 401 returns to sign-in with the reason');
  allowed = [];

  const bad = problems;
  for (const p of bad) console.log(`    ${p.kind}: ${p.text}`);
  check(bad.length === 0, 'no console errors and no failed requests');
} catch (e) {
  console.log(`  FAIL ${e.stack || e}`);
  failures++;
} finally {
  await ctx.close();
  const code = await srv.stop();
  // Under the sanitizers a leak or an error report makes the exit non-zero.
  check(code === 0, `rfm-serve stopped cleanly on SIGTERM (exit ${code})`);
  if (code !== 0) console.log(srv.stderr().split('\n').slice(-40).join('\n'));
}
console.log(failures ? `ui test: ${failures} failed` : `ui test: passed; screenshots in ${shots}/`);
process.exit(failures ? 1 : 0);
