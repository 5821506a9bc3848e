/* Where the page is: the open view and its filters live in the URL's hash (never the token),
 * so a link opens the same view for a colleague with their own token, and Back works.
 * A view other than the overview is a page module: registerPage(name, {title, show, hide}). */

/** The filter fields kept in the URL, in this order. */
export const URL_KEYS = ['page', 'id', 'from', 'to', 'platform', 'kind', 'model', 'window', 'steps'];
export const PAGES = {};

/** A page: `show(id, filters)` loads and draws it, `cards` are the ids of its cards. */
export function registerPage(name, spec) {
  PAGES[name] = spec;
}

/** The view the URL names: {page, id, from, to, …}; the overview has no page. */
export function readView(hash = window.location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const view = {};
  for (const key of URL_KEYS) {
    const value = params.get(key);
    if (value !== null && value !== '') view[key] = value;
  }
  if (view.page && !PAGES[view.page]) delete view.page;
  if (!view.page) delete view.id;
  return view;
}

export function hashOf(view) {
  const params = new URLSearchParams();
  for (const key of URL_KEYS) {
    if (view[key] !== undefined && view[key] !== null && view[key] !== '') params.set(key, String(view[key]));
  }
  const text = params.toString();
  return text ? `#${text}` : '#';
}

/** A link to a page with the current filters (an <a href>, so keyboards and new tabs work). */
export function pageHref(page, id, filters) {
  return hashOf({ ...filters, page, id });
}

/** Record `view` in the URL: a new history entry, or the current one replaced. */
export function remember(view, { replace = false } = {}) {
  const hash = hashOf(view);
  if (hash === (window.location.hash || '#')) return;
  const url = `${window.location.pathname}${window.location.search}${hash}`;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
}
