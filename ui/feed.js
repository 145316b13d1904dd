// feed.js - following GET /feed (Server-Sent Events) with the bearer token:
// fetch() through api.js, the body read as a stream and parsed by sse.js.
// When the stream ends or the network drops, it reconnects after the
// server's retry delay and sends the id of the last record it got as
// Last-Event-ID, so the server goes on after it (or says, with a gap event,
// how many records it no longer has). A 401 signs out (api.js); a 403 or
// 400 stops; other failures (503: no store, too many readers, stopping)
// are retried with a growing delay.
import * as api from './api.js';
import { SseParser } from './sse.js';

const MAX_DELAY_MS = 60000;

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// Follows the feed until close(). on.event({type, data, id}) for each event
// (data as sent: a JSON text); on.state(state, info) with state one of
// 'connecting', 'open', 'retry' (info: {ms, reason}), 'stopped' (info:
// {reason}). Returns {close()}.
export function follow(on, path = '/feed') {
  const ctl = new AbortController();
  let lastId = null;     // the id of the last event received
  let delay = 2000;      // the server's retry: (ms), until it says otherwise
  let failures = 0;      // attempts in a row that got no stream
  let opened = false;    // the current attempt got its stream

  async function once() {
    const headers = { Accept: 'text/event-stream' };
    if (lastId !== null) headers['Last-Event-ID'] = lastId;
    const res = await api.request('GET', path, undefined, { raw: true, headers, signal: ctl.signal });
    opened = true;
    on.state('open');
    const p = new SseParser();
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const x of p.push(dec.decode(value, { stream: true }))) {
        if (x.kind === 'comment') {
          // Before any record, the server's opening comment names the id
          // the stream starts after: resuming from it loses nothing that
          // was published while reconnecting.
          const m = lastId === null && /^rfm feed after id (\d{1,19})$/.exec(x.text);
          if (m) lastId = m[1];
          continue;
        }
        if (x.id !== null && x.id !== '') lastId = x.id;
        on.event(x);
      }
      if (p.retry !== null) delay = p.retry;
    }
    return 'the stream ended';
  }

  (async () => {
    while (!ctl.signal.aborted) {
      on.state('connecting');
      let reason;
      opened = false;
      try {
        reason = await once();
      } catch (e) {
        if (ctl.signal.aborted) return;
        if (e.status === 401 || e.status === 403 || e.status === 400) {
          on.state('stopped', { reason: e.message });
          return;
        }
        reason = e.message;
      }
      if (ctl.signal.aborted) return;
      // A stream that ran and ended: the server's delay; no stream: longer each time.
      failures = opened ? 0 : failures + 1;
      const ms = Math.min(MAX_DELAY_MS, delay * 2 ** Math.min(failures, 5));
      on.state('retry', { ms, reason });
      await sleep(ms, ctl.signal);
    }
  })();
  return { close: () => ctl.abort() };
}
