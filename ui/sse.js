// sse.js - the Server-Sent Events format read from a fetch() body.
// EventSource cannot send the bearer token, so the app reads GET /feed
// with fetch and parses the stream here, as the WHATWG "event stream
// interpretation" says: lines end with CRLF, LF or CR (a chunk may split
// any of them, or a line, anywhere); "event", "data", "id", "retry" fields;
// lines starting with ":" are comments; a blank line ends an event; an
// event without data is not dispatched. Pure: text in, events out (no DOM,
// no network), so node tests it as it is (tests/ui/sse.test.mjs).

export class SseParser {
  constructor() {
    this.buf = '';      // text not yet split into lines
    this.data = [];     // data lines of the event being read
    this.event = '';    // its type
    this.idBuf = null;  // the id field seen last (kept across events)
    this.lastId = null; // the id of the last dispatched event: what to resume after
    this.retry = null;  // the reconnection delay (ms) the server asked for
  }

  // Parse a decoded chunk; returns what it completed, in order:
  // {kind: 'event', type, data, id} and {kind: 'comment', text}.
  push(text) {
    this.buf += text;
    const out = [];
    let start = 0;
    for (;;) {
      const m = /\r\n|\r|\n/g;
      m.lastIndex = start;
      const hit = m.exec(this.buf);
      if (!hit) break;
      // A CR last in the buffer may be the first half of a CRLF: wait.
      if (hit[0] === '\r' && hit.index === this.buf.length - 1) break;
      this.line(this.buf.slice(start, hit.index), out);
      start = hit.index + hit[0].length;
    }
    this.buf = this.buf.slice(start);
    return out;
  }

  line(l, out) {
    if (l === '') {
      this.lastId = this.idBuf;
      if (this.data.length) out.push({ kind: 'event', type: this.event || 'message', data: this.data.join('\n'), id: this.lastId });
      this.data = [];
      this.event = '';
      return;
    }
    if (l[0] === ':') {
      out.push({ kind: 'comment', text: l.slice(1).replace(/^ /, '') });
      return;
    }
    const c = l.indexOf(':');
    const field = c < 0 ? l : l.slice(0, c);
    const value = c < 0 ? '' : l.slice(c + 1).replace(/^ /, '');
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.idBuf = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}
