// ui.test.mjs - the /ui/ app in Debian's chromium against the real daemon
// (`make ui-test`, part of `make test`; docs/ui.md). Checks: a wrong token
// is refused on the sign-in screen with the server's reason; the right one
// opens the app; every page shows its data (each chart has series with
// points); the explain page's waterfall, the embedding explorer's
// lookalikes, the uplift slider and the planner's export link work; the
// executive page's live feed shows the changes a POST /events makes, holds
// them back while paused, and resumes with Last-Event-ID after its stream
// was cut;
// the keyboard reaches the navigation; at 1024 px no page scrolls sideways
// and every chart fits; no "NaN", "undefined" or "null" is shown;
// the exports page answers its endpoint (the CSV downloaded equals the
// endpoint's, or a clear message while the server has none); a 401 later
// returns to sign-in with the reason; no console error and no failed
// request beyond those the steps provoke on purpose. Screenshots of every
// page at 1440x900 go to build/ui/.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, TOKEN, PAGES, startServer, relay, browser, visit, chartData, signIn } from './harness.mjs';

const shots = join(ROOT, process.env.B || 'build', 'ui');
mkdirSync(shots, { recursive: true });
let failures = 0;
function check(ok, what) {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

const srv = await startServer();
// The browser goes through a relay the feed step cuts to drop its stream.
const net = await relay(srv.port);
const ctx = await browser();
const page = await ctx.newPage();
const problems = [];
let allowed = []; // [status, path] answers a step provokes on purpose
// Chromium also logs each 4xx as a console error: those of allowed answers are expected.
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  const at = m.location().url || '';
  const expected = (/Failed to load resource: the server responded with a status of (401|404)/.test(m.text()) &&
    allowed.some(([s, p]) => m.text().includes(String(s)) && at.includes(p))) ||
    (offline && /net::ERR_/.test(m.text()) && at.includes('/feed'));
  if (!expected) problems.push({ kind: 'console', text: `${m.text()} (${at})` });
});
page.on('pageerror', (e) => problems.push({ kind: 'exception', text: String(e) }));
// The executive page closes its GET /feed stream when it is left (aborted);
// while the test cuts the relay, the stream and its retries fail.
let offline = false; // the relay is cut
page.on('requestfailed', (r) => {
  const why = r.failure()?.errorText || '';
  const feed = new URL(r.url()).pathname === '/feed';
  if (feed && (why === 'net::ERR_ABORTED' || offline)) return;
  problems.push({ kind: 'request failed', text: `${r.url()} ${why}` });
});
page.on('response', (r) => {
  const path = new URL(r.url()).pathname;
  if (r.status() >= 400 && !allowed.some(([s, p]) => s === r.status() && p === path))
    problems.push({ kind: 'HTTP', text: `${r.status()} ${r.url()}` });
});

try {
  console.log(`ui test against ${srv.base}/ui/`);
  await page.goto(`${net.base}/ui/`);
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
        // The daemon has a state store: the rows are as of today, and the
        // rfm-score line reads the same store for that day.
        const day = lines[1].split(',').pop();
        check(new RegExp(`--state state/state.db --as-of ${day}`).test(await page.textContent('#main pre[data-cmd="rfm-score"]')),
          `exports: the rfm-score line reads the state store as of the rows' day (${day})`);
      }
      check(/rfm-score --out targets.csv --top 1000 --by value_at_risk/.test(await page.innerText('#main')),
        'exports: the equivalent rfm-score line is shown');
    }
    await page.screenshot({ path: join(shots, `${p.hash}.png`) });
    allowed = [];
  }

  // The live feed on Executive. A purchase today (POST /events, from here)
  // moves customer 17850, idle since 2011, across its RFM segment; each
  // label GET /customers/{id} shows changed must appear in the panel with
  // its from and to. Then the relay cuts the stream (and refuses the
  // retries), a purchase of another customer is posted meanwhile, and the
  // page, once the relay lets it through again, must resume
  // with Last-Event-ID = the last record shown and show that change too.
  {
    const call = async (method, path, body) => {
      const r = await fetch(srv.base + path, { method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body) });
      return [r.status, await r.json()];
    };
    const labels = async (id) => {
      const [st, c] = await call('GET', `/customers/${id}`);
      if (st !== 200) throw new Error(`GET /customers/${id}: ${st} ${JSON.stringify(c)}`);
      return { rfm_segment: c.rfm_segment, cluster: c.segment, churn_risk: c.churn_risk };
    };
    let nev = 0;
    // The changes a purchase of id now makes: [{field, from, to}].
    const buyNow = async (id) => {
      const b = await labels(id);
      const [st, r] = await call('POST', '/events', { events: [{ event_id: `ui-feed-${Date.now()}-${nev++}`, customer_id: id,
        time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), amount: 250 }] });
      if (st !== 200 || r.accepted !== 1) throw new Error(`POST /events: ${st} ${JSON.stringify(r)}`);
      const a = await labels(id);
      return ['rfm_segment', 'cluster', 'churn_risk'].filter((f) => b[f] !== a[f]).map((f) => ({ field: f, from: b[f], to: a[f] }));
    };
    const rows = (id) => page.$$eval(`#main .feed-table tr[data-customer="${id}"]`, (rs) => rs.map((r) => ({
      id: r.dataset.id, field: r.dataset.field, from: r.querySelector('.from').textContent, to: r.querySelector('.to').textContent,
      cells: [...r.cells].map((c) => c.textContent) })));
    const same = (got, want) => want.length === got.length && want.every((w) => got.some((g) =>
      g.field === w.field && g.from.toLowerCase() === w.from.toLowerCase() && g.to.toLowerCase() === w.to.toLowerCase()));

    await visit(page, 'executive');
    await page.waitForSelector('#main .feed-status[data-state="open"]', { timeout: 10000 });
    check(true, 'feed: the executive page follows GET /feed');
    const want = await buyNow('17850');
    check(want.length > 0, `feed: a purchase today changes customer 17850's labels (${want.map((w) => `${w.field} ${w.from} -> ${w.to}`).join(', ')})`);
    await page.waitForFunction((n) => document.querySelectorAll('#main .feed-table tr[data-customer="17850"]').length >= n, want.length, { timeout: 10000 }).catch(() => {});
    const got = await rows('17850');
    check(same(got, want), `feed: the panel shows each change of 17850 with from and to (${got.map((g) => `${g.field} ${g.from} -> ${g.to}`).join(', ')})`);
    check(got.length > 0 && got.every((g) => /\d{2}:\d{2}:\d{2}$/.test(g.cells[0]) && /^(Churn risk|RFM segment|Cluster)$/.test(g.cells[2]) &&
      /^\d+(\.\d)?%$/.test(g.cells[4])), `feed: time, label and churn probability formatted for people (${got[0] ? got[0].cells.join(' | ') : ''})`);
    const feedText = await page.innerText('#main .feed');
    check(!/NaN|undefined|null|\[object /.test(feedText), 'feed: no NaN, undefined, null or [object shown');
    await page.screenshot({ path: join(shots, 'executive.png') });
    await page.locator('#main .feed').screenshot({ path: join(shots, 'executive-feed.png') });

    // A purchase of the first of ids that changes a label: [id, changes].
    const used = new Set();
    const buyChanging = async (ids) => {
      for (const id of ids) {
        if (used.has(id)) continue;
        used.add(id);
        const w = await buyNow(id);
        if (w.length) return [id, w];
      }
      return [null, []];
    };

    // Keyboard: Pause (Enter) holds new rows back and counts them; Resume
    // (Enter again) shows them.
    const pauseSel = '#main .feed-head button[name="pause"]';
    await page.focus(pauseSel);
    await page.keyboard.press('Enter');
    const pressed = await page.getAttribute(pauseSel, 'aria-pressed');
    const [held, wantHeld] = await buyChanging(['12350', '12352', '12353']);
    await page.waitForFunction(([sel, n]) => document.querySelector(sel).textContent === `Resume (${n} new)`,
      [pauseSel, wantHeld.length], { timeout: 10000 }).catch(() => {});
    const label = await page.textContent(pauseSel);
    const hidden = (await rows(held)).length === 0;
    await page.keyboard.press('Enter');
    const shownAfter = await rows(held);
    check(pressed === 'true' && label === `Resume (${wantHeld.length} new)` && hidden &&
      await page.getAttribute(pauseSel, 'aria-pressed') === 'false' && same(shownAfter, wantHeld),
      `feed: Pause by keyboard holds ${held}'s changes back ("${label}"), Resume shows them`);

    const resumes = [];
    const onReq = (r) => { if (new URL(r.url()).pathname === '/feed') resumes.push(r.headers()['last-event-id'] || null); };
    page.on('request', onReq);
    const last = await page.$eval('#main .feed-table tbody tr[data-id]', (r) => r.dataset.id);
    offline = true;
    net.cut(true);
    await page.waitForSelector('#main .feed-status[data-state="retry"]', { timeout: 10000 });
    const [who, want2] = await buyChanging(['12346', '12347', '12348', '12349', '12355']);
    net.cut(false);
    check(who !== null, `feed: a purchase while the stream is cut changes customer ${who}'s labels`);
    await page.waitForFunction((id) => document.querySelector(`#main .feed-table tr[data-customer="${id}"]`) !== null, who, { timeout: 20000 }).catch(() => {});
    await page.waitForSelector('#main .feed-status[data-state="open"]', { timeout: 5000 }).catch(() => {});
    offline = false;
    page.off('request', onReq);
    const got2 = await rows(who);
    check(resumes.length > 0 && resumes.every((h) => h === last), `feed: reconnects send Last-Event-ID ${last} (${resumes.join(', ')})`);
    check(same(got2, want2), `feed: the change made while cut off is shown after the reconnect (${got2.map((g) => `${g.field} ${g.from} -> ${g.to}`).join(', ')})`);
    check((await rows('17850')).length === got.length, 'feed: nothing shown twice after the reconnect');
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

  // 1024 px wide (the narrowest the app is laid out for): no page scrolls
  // sideways and every chart fits the page's column.
  await page.setViewportSize({ width: 1024, height: 768 });
  for (const p of PAGES) {
    allowed = p.hash === 'exports' ? [[404, '/exports/customers.csv']] : [];
    await visit(page, p.hash);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const fit = await page.evaluate(() => {
      const main = document.getElementById('main').getBoundingClientRect();
      const charts = [...document.querySelectorAll('#main .chart')].map((el) => el.getBoundingClientRect());
      return { scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
        charts: charts.length, out: charts.filter((c) => c.width <= 0 || c.left < main.left - 1 || c.right > main.right + 1).length };
    });
    check(fit.scroll <= fit.inner && fit.out === 0,
      `#/${p.hash} at 1024 px: page ${fit.scroll} px wide in a ${fit.inner} px window, ${fit.charts - fit.out} of ${fit.charts} charts inside the page`);
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  allowed = [];

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
  await net.close();
  const code = await srv.stop();
  // Under the sanitizers a leak or an error report makes the exit non-zero.
  check(code === 0, `rfm-serve stopped cleanly on SIGTERM (exit ${code})`);
  if (code !== 0) console.log(srv.stderr().split('\n').slice(-40).join('\n'));
}
console.log(failures ? `ui test: ${failures} failed` : `ui test: passed; screenshots in ${shots}/`);
process.exit(failures ? 1 : 0);
