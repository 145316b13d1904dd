// bench/ui.mjs - the /ui/ app's figures for `make bench` (docs/ui.md), with
// the harness of the browser test: the bytes of a first visit (every
// response under /ui/, as sent: gzip), each page's time to interactive
// (from the hash change to its charts drawn with data; median of 5 visits),
// and the server time of the data endpoints (the access log's latency_us).
// Reports; never fails on a slow machine.
import { TOKEN, PAGES, startServer, browser, visit, signIn } from '../tests/ui/harness.mjs';

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
const srv = await startServer();
const ctx = await browser();
try {
  const page = await ctx.newPage();
  const sizes = new Map();
  // Each response's headers arrive asynchronously, and modules and the
  // charts library load after the load event: every one is awaited once
  // the network is idle, or the sum misses the largest files.
  const pending = [];
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/ui/')) return;
    pending.push(r.allHeaders().then((h) => {
      sizes.set(u.pathname, { bytes: Number(h['content-length'] || 0), gzip: h['content-encoding'] === 'gzip' });
    }));
  });
  const t0 = Date.now();
  await page.goto(`${srv.base}/ui/`, { waitUntil: 'load' });
  const loadMs = Date.now() - t0;
  await page.waitForLoadState('networkidle');
  await Promise.all(pending);
  const total = [...sizes.values()].reduce((s, x) => s + x.bytes, 0);
  const plain = [...sizes.entries()].filter(([, x]) => !x.gzip && x.bytes > 1024).map(([p]) => p);
  console.log(`  first load of /ui/: ${sizes.size} files, ${(total / 1024).toFixed(0)} KiB as sent` +
    ` (gzip${plain.length ? `; not compressed: ${plain.join(', ')}` : ''}), load event after ${loadMs} ms; target < 1.5 MB`);
  await signIn(page, TOKEN);
  await page.waitForSelector('#shell:not([hidden])');
  const rows = [];
  for (const p of PAGES) {
    const times = [];
    for (let i = 0; i < 5; i++) {
      await visit(page, 'planner' === p.hash ? 'exports' : 'planner'); // from another page each time
      times.push(await visit(page, p.hash));
    }
    rows.push(`${p.hash} ${median(times)} ms`);
  }
  console.log(`  time to interactive, median of 5: ${rows.join(', ')}; target < 1000 ms each`);
} finally {
  await ctx.close();
  await srv.stop();
}
const lat = {};
for (const line of srv.log().split('\n')) {
  if (!line) continue;
  const j = JSON.parse(line);
  if (j.path.startsWith('/analytics/') || j.path === '/clusters/summary') (lat[j.path] ||= []).push(j.latency_us);
}
console.log(`  server time (access log, median): ${Object.entries(lat).map(([p, v]) => `${p} ${median(v)} us (n=${v.length})`).join(', ')}; target < 50 ms`);
