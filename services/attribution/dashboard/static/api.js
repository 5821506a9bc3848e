/* Calls to the attribution API with the bearer token, and readable errors. */
import { REQUEST_TIMEOUT_MS, state } from './config.js';
import { isNull } from './format.js';

// ---- the API -------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

export const sentence = (text) => (text && !/[.!?]$/.test(text) ? `${text}.` : text || '');

export function networkError() {
  return new ApiError(
    `Cannot reach the ClipFunnel attribution service at ${window.location.origin}: the request ` +
    'failed before any answer came back. Check that the services are running (make run starts ' +
    'them), then press Refresh.', 0);
}

export async function problemOf(res, what) {
  let title = res.statusText || '';
  let detail = '';
  try {
    const type = res.headers.get('content-type') || '';
    if (type.includes('json')) {
      const body = await res.json();
      title = body.title || title;
      detail = typeof body.detail === 'string' ? body.detail : '';
    }
  } catch { /* keep the status line */ }
  const code = `${res.status}${title ? ` ${title}` : ''}`;
  const said = detail ? ` ${sentence(detail)}` : '';
  if (res.status === 401) {
    return new ApiError(
      `The token was refused (${code}).${said} Paste a valid token: make run prints one, or run ` +
      'clipfunnel token --tenant YOUR_TENANT --scopes reports:read.', 401);
  }
  if (res.status === 403) {
    return new ApiError(
      `This token may not read reports (${code}).${said} Use a token with the reports:read scope.`,
      403);
  }
  if (res.status === 404) {
    return new ApiError(
      `The service has no ${what} endpoint (${code}).${said} Is the attribution service up to date?`,
      404);
  }
  if (res.status === 422 || res.status === 400) {
    return new ApiError(`The service refused the ${what} query (${code}).${said}`, res.status);
  }
  if (res.status >= 500) {
    return new ApiError(
      `The attribution service could not answer ${what} (${code}).${said} Try Refresh in a moment.`,
      res.status);
  }
  return new ApiError(`Loading ${what} failed (${code}).${said}`, res.status);
}

export async function request(path, { params = {}, body = null, accept = 'application/json', what }) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params)) {
    if (!isNull(value)) url.searchParams.set(key, String(value));
  }
  const headers = { Authorization: `Bearer ${state.token}`, Accept: accept };
  const init = {
    method: body ? 'POST' : 'GET', headers, cache: 'no-store', credentials: 'omit',
    referrerPolicy: 'no-referrer',
  };
  if (body) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  init.signal = abort.signal;
  let res;
  try {
    res = await fetch(url, init);
  } catch {
    throw abort.signal.aborted
      ? new ApiError(`The attribution service did not answer ${what} within ${REQUEST_TIMEOUT_MS / 1000} seconds. Try a shorter date range, or Refresh in a moment.`, 0)
      : networkError();
  } finally {
    clearTimeout(timer);
  }
  if (!res.ok) throw await problemOf(res, what);
  return res;
}

export async function getJson(path, params, what, body = null) {
  const res = await request(path, { params, body, what });
  try {
    return await res.json();
  } catch {
    throw new ApiError(`The answer for ${what} was not valid JSON.`, res.status);
  }
}
