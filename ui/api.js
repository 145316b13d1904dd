// api.js - the one way the app reads the server: the public API with the
// bearer token of the sign-in screen (sessionStorage "rfm.token"). A 401
// signs out with the server's reason; any other failure is an ApiError
// with the server's message, shown by the page.

export const TOKEN_KEY = 'rfm.token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(t) { sessionStorage.setItem(TOKEN_KEY, t); }
export function clearToken() { sessionStorage.removeItem(TOKEN_KEY); }

async function reason(res) {
  try {
    const j = await res.json();
    if (j && j.error && typeof j.error.message === 'string') return j.error.message;
  } catch (e) { /* not JSON */ }
  return `HTTP ${res.status}`;
}

// The response of METHOD path (body: JSON or none); throws ApiError.
// headers: more request headers; signal: an AbortSignal (an abort rethrows
// the fetch's AbortError as it is).
export async function request(method, path, body, { raw = false, tok = token(), quiet401 = false, headers: extra = {}, signal } = {}) {
  const headers = { ...extra, Authorization: `Bearer ${tok || ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `the server did not answer (${e.message})`);
  }
  if (res.status === 401) {
    const why = await reason(res);
    if (!quiet401) onUnauthorized(why);
    throw new ApiError(401, why);
  }
  if (!res.ok) throw new ApiError(res.status, await reason(res));
  return raw ? res : res.json();
}

export const get = (path, opts) => request('GET', path, undefined, opts);
export const post = (path, body, opts) => request('POST', path, body, opts);
