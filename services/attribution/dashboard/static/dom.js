/* DOM helpers: elements, SVG nodes, tables and card states (values go in as text). */
import { SVG_NS } from './config.js';

// ---- DOM helpers ---------------------------------------------------------------------
export function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function mountSvg(container, height, label) {
  const width = Math.max(240, Math.floor(container.clientWidth || 600));
  const root = svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label,
  });
  container.replaceChildren(root);
  return [root, width];
}

export function cardState(key, text, kind = '') {
  const node = document.querySelector(`.card-state[data-for="${key}"]`);
  if (!node) return;
  node.textContent = text;
  node.className = `card-state ${kind}`.trim();
  node.hidden = !text;
}

/** columns: [{key, label, fmt(row), numeric, title(row)}]; `fmt` returns text or a node (a
 *  link, a change badge), `title` a hover text (the id behind a name). Every cell carries
 *  data-col for tests and CSS. */
export function fillTable(table, columns, rows, rowKey) {
  const caption = table.querySelector('caption');
  const head = el('thead');
  const tr = el('tr');
  for (const c of columns) tr.append(el('th', { scope: 'col', class: c.numeric ? 'num' : '' }, c.label));
  head.append(tr);
  const bodyNode = el('tbody');
  for (const row of rows) {
    const line = el('tr', { 'data-row': rowKey(row) });
    columns.forEach((c, i) => {
      const value = c.fmt(row);
      const cell = el(i === 0 ? 'th' : 'td', {
        'data-col': c.key, class: c.numeric ? 'num' : '',
      }, value instanceof Node ? undefined : value);
      if (value instanceof Node) cell.append(value);
      if (c.title) {
        const hover = c.title(row);
        if (hover) cell.title = hover;
      }
      if (i === 0) cell.setAttribute('scope', 'row');
      line.append(cell);
    });
    bodyNode.append(line);
  }
  table.replaceChildren(...(caption ? [caption] : []), head, bodyNode);
  // A table wider than its card scrolls sideways: keyboards reach it too.
  const wrap = table.parentElement;
  if (wrap && wrap.classList.contains('table-wrap') && !wrap.hasAttribute('tabindex')) {
    wrap.setAttribute('tabindex', '0');
    wrap.setAttribute('role', 'region');
    wrap.setAttribute('aria-label', `${caption ? caption.textContent : 'Table'} (scrolls sideways)`);
  }
}

/** Extra cards: the ids a card's clearCard empties (pages and other modules add theirs). */
export const CARD_PARTS = {};

export function clearCard(key) {
  const ids = CARD_PARTS[key] || {
    funnel: ['funnel-chart', 'funnel-table'], ads: ['formats-chart', 'formats-table'],
    contents: ['contents-table'], live: ['live-table'],
    datadriven: ['datadriven-table', 'paths-table'], shops: ['shops-table'],
    timeseries: ['gmv-chart', 'orders-chart', 'timeseries-table'],
  }[key] || [];
  for (const id of ids) {
    const node = document.getElementById(id);
    if (!node) continue;
    const caption = node.querySelector('caption');
    node.replaceChildren(...(caption ? [caption] : []));
  }
}

/** Download `blob` as `filename` (a link clicked, then let go). */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename });
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
