// api.js talks to the public /v1 API and /console/session, nothing else.
// Requests go to this origin with the session cookie; state-changing ones
// carry the session's CSRF token.

let csrf = '';

export function setCSRF(token) {
  csrf = token || '';
}

// ApiError is a refused request: the API's {error: {code, message, details}}.
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `the server answered ${status}`);
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.details = e.details || [];
  }
}

async function request(method, url, body, headers) {
  const h = Object.assign({ Accept: 'application/json' }, headers || {});
  const init = { method, headers: h, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && csrf) h['X-Loom-CSRF'] = csrf;
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, { error: { code: 'unreachable', message: 'the server did not answer; check that loom serve is running' } });
  }
  if (resp.status === 204) return null;
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (err) {
      data = { error: { message: text.slice(0, 200) } };
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const get = (url) => request('GET', url);
export const post = (url, body, headers) => request('POST', url, body, headers);
export const del = (url) => request('DELETE', url);

// query builds "?k=v&…" from an object, leaving out empty values; arrays
// repeat their key.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => x !== '' && q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

export const enc = encodeURIComponent;

// newKey is an Idempotency-Key: one per form, so a double click resumes once.
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
