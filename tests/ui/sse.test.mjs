// sse.test.mjs - ui/sse.js, the Server-Sent Events parser the app reads
// GET /feed with (`make ui-test`). The reference is the WHATWG examples and
// rules (event stream interpretation); every stream is also fed cut into
// every pair of pieces, and one character at a time, and must give the same
// events: a network chunk may end anywhere, in a CRLF too.
import { readFileSync } from 'node:fs';

// ui/ has no package.json saying its .js files are modules: load the file
// as one, whatever node's detection does.
const src = readFileSync(new URL('../../ui/sse.js', import.meta.url), 'utf8');
const { SseParser } = await import(`data:text/javascript,${encodeURIComponent(src)}`);

let failures = 0;
function check(ok, what) {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}

function parse(chunks) {
  const p = new SseParser();
  const out = [];
  for (const c of chunks) out.push(...p.push(c));
  return { out, p };
}

// Whole, in every split into two pieces, and a character at a time: the same.
function same(text, want, what) {
  const whole = JSON.stringify(parse([text]).out);
  let ok = whole === JSON.stringify(want);
  if (!ok) console.log(`    got  ${whole}\n    want ${JSON.stringify(want)}`);
  for (let i = 1; i < text.length && ok; i++) {
    const got = JSON.stringify(parse([text.slice(0, i), text.slice(i)]).out);
    if (got !== whole) { ok = false; console.log(`    split at ${i}: ${got}`); }
  }
  if (ok && JSON.stringify(parse([...text]).out) !== whole) { ok = false; console.log('    one character at a time differs'); }
  check(ok, what);
}

const ev = (type, data, id = null) => ({ kind: 'event', type, data, id });
const comment = (text) => ({ kind: 'comment', text });

// What GET /feed sends (docs/events.md).
same('retry: 2000\n: rfm feed after id 17\n\nid: 18\nevent: change\ndata: {"customer_id":"17850"}\n\n: heartbeat\n\n',
  [comment('rfm feed after id 17'), ev('change', '{"customer_id":"17850"}', '18'), comment('heartbeat')],
  'the feed: retry, comments, one change with its id');
same('id: 7\nevent: gap\ndata: {"reason":"behind","missed":3}\n\n',
  [ev('gap', '{"reason":"behind","missed":3}', '7')], 'a gap event');
// Line ends: CRLF, CR and LF alike, mixed.
same('data: a\r\ndata: b\rdata: c\n\r\n', [ev('message', 'a\nb\nc')], 'CRLF, CR and LF end lines; data lines join with LF');
// One leading space is dropped, no more; no colon: the whole line is the field.
same('data:  two spaces\ndata:none\ndata\n\n', [ev('message', ' two spaces\nnone\n')], 'one space after the colon dropped; "data" alone is an empty line of data');
// No data: nothing dispatched, but the id still counts for resuming.
{
  const { out, p } = parse(['id: 41\nevent: change\n\n']);
  check(out.length === 0 && p.lastId === '41', 'an event without data is not dispatched; its id is the one to resume after');
}
// The id stays until another is given; an id with NUL is ignored.
same('id: 5\ndata: x\n\ndata: y\n\nid: 6\u0000\ndata: z\n\n', [ev('message', 'x', '5'), ev('message', 'y', '5'), ev('message', 'z', '5')],
  'the last id carries over; an id with NUL is ignored');
// Unknown fields ignored; retry only when all digits.
{
  const { out, p } = parse(['foo: bar\nretry: 1x\nretry: 3000\ndata: q\n\n']);
  check(JSON.stringify(out) === JSON.stringify([ev('message', 'q')]) && p.retry === 3000, 'unknown fields ignored; retry taken when all digits');
}
// An event not yet ended by a blank line is not dispatched.
check(parse(['data: half\n']).out.length === 0, 'an event is dispatched only at its blank line');
// A lone CR at the end of a chunk waits for the next: CR then LF is one line end.
{
  const { out } = parse(['data: a\r', '\n\r', '\n']);
  check(JSON.stringify(out) === JSON.stringify([ev('message', 'a')]), 'a CRLF split across chunks is one line end');
}

console.log(failures ? `sse test: ${failures} failed` : 'sse test: passed');
process.exit(failures ? 1 : 0);
