/* The pages behind a row: a content (video or live room) and an ad. Each is a page module
 * (registerPage): its funnel, its daily series, the orders credited to it with the model's
 * explanation of each, its products, and for a live room its minute-by-minute timeline. */
import { NA, LOCALE, $, state } from './config.js';
import {
  isNull, fmtInt, fmtCount, fmtPct, fmtRatio, fmtMoney, fmtDuration, withCurrency,
  formatLabel,
} from './format.js';
import { ApiError, getJson } from './api.js';
import { el, cardState, fillTable, clearCard, CARD_PARTS } from './dom.js';
import { drawFunnel, drawLine } from './charts.js';
import { registerPage, pageHref, hashOf } from './nav.js';
import { previousFilters, drawTiles, fillStepsTable } from './compare.js';
import { accountName, adName, link, titlesFrom } from './names.js';

const CARDS = {
  'page-head-card': 'page-head', 'page-funnel-card': 'page-funnel', 'page-series-card': 'page-series',
  'page-timeline-card': 'page-timeline', 'page-orders-card': 'page-orders', 'page-products-card': 'page-products',
};
Object.assign(CARD_PARTS, {
  'page-head': ['page-tiles'], 'page-funnel': ['page-funnel-chart', 'page-funnel-table'],
  'page-series': ['page-gmv-chart', 'page-orders-chart'],
  'page-timeline': ['timeline-entries-chart', 'timeline-clicks-chart', 'timeline-orders-chart', 'timeline-gmv-chart', 'timeline-pins', 'timeline-table'],
  'page-orders': ['page-orders-table'], 'page-products': ['page-products-table'],
});
let ticket = 0;
const enc = encodeURIComponent;

function forgetErrors() {
  for (const key of Object.keys(state.errors)) if (key.startsWith('page:')) delete state.errors[key];
}

function busy(on) {
  for (const [id, key] of Object.entries(CARDS)) {
    const card = document.getElementById(id);
    card.setAttribute('aria-busy', String(on));
    if (on) {
      card.dataset.state = 'loading';
      cardState(key, 'Loading…', 'loading');
    }
  }
}

function settle(id, error) {
  const card = document.getElementById(id);
  card.setAttribute('aria-busy', 'false');
  card.dataset.state = error ? 'error' : 'ready';
  if (error) cardState(CARDS[id], 'Not loaded: see the message at the top of the page.', 'error');
}

/** Runs the page's loads; returns {key: answer|null}, errors recorded in state.errors. */
async function fetchAll(jobs) {
  const keys = Object.keys(jobs);
  const results = await Promise.allSettled(keys.map((k) => jobs[k]()));
  const out = {};
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') out[keys[i]] = r.value;
    else {
      out[keys[i]] = null;
      state.errors[`page:${keys[i]}`] = r.reason instanceof ApiError
        ? r.reason : new ApiError(`Loading the page failed: ${r.reason}`);
    }
  });
  return out;
}

/** A link naming what this tenant does not have says so (not "no such endpoint"). */
function notFound(key, what) {
  const err = state.errors[`page:${key}`];
  if (err && err.status === 404) {
    state.errors[`page:${key}`] = new ApiError(`This link names ${what}, which this tenant's catalog does not have: a link from another tenant, or a content not synced yet (POST /v1/sync).`, 404);
  }
}

const failedWith = (status) => Object.entries(state.errors)
  .some(([k, e]) => k.startsWith('page:') && e && e.status === status);

function funnelBody(f, filters) {
  const body = {
    steps: state.steps.map((type) => ({ type })), from: f.from, to: f.to, window_seconds: f.window,
  };
  body.filters = filters;
  return body;
}

const series = (f, metric, filter) => getJson('v1/reports/timeseries', {
  from: f.from, to: f.to, model: f.model, metric, interval: 'day', ...filter,
}, `${metric} per day`);

function header(title, meta, back, ctx) {
  $('#page-title').textContent = title;
  $('#page-meta').replaceChildren(...meta);
  $('#page-back').setAttribute('href', hashOf(ctx.urlFilters()));
  if (back) $('#page-up').replaceChildren(back); else $('#page-up').replaceChildren();
}

function drawPageFunnel(answer, before) {
  if (!answer) { clearCard('page-funnel'); return; }
  const steps = answer.steps || [];
  cardState('page-funnel', steps.length && steps[0].users === 0 ? 'No viewer reached the first step here.' : '');
  drawFunnel($('#page-funnel-chart'), steps);
  fillStepsTable($('#page-funnel-table'), steps, before);
}

function drawSeries(gmv, orders, ctx, currency) {
  if (!gmv && !orders) { clearCard('page-series'); return; }
  const zone = (gmv && gmv.timezone) || ctx.tz();
  $('#page-gmv-caption').textContent = withCurrency('GMV per day', currency);
  if (gmv) drawLine($('#page-gmv-chart'), gmv.points, { label: 'GMV per day', fmt: (v) => fmtMoney(v, currency), tz: zone, cls: 's0' });
  if (orders) drawLine($('#page-orders-chart'), orders.points, { label: 'Orders per day', fmt: fmtCount, tz: zone, cls: 's1' });
  const sum = (a) => ((a && a.points) || []).reduce((t, p) => t + (Number(p.value) || 0), 0);
  cardState('page-series', sum(gmv) === 0 && sum(orders) === 0 ? 'No credited order was paid in this range.' : '');
}

const when = (iso, zone) => (isNull(iso) ? NA : new Intl.DateTimeFormat(LOCALE, {
  timeZone: zone, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
}).format(new Date(iso)));
const clock = (iso, zone) => new Intl.DateTimeFormat(LOCALE, {
  timeZone: zone, hour: '2-digit', minute: '2-digit',
}).format(new Date(iso));

function drawProducts(page, zone) {
  if (!page) { clearCard('page-products'); return; }
  const rows = page.products || [];
  cardState('page-products', rows.length ? '' : 'No product is placed in this content.');
  fillTable($('#page-products-table'), [
    { key: 'product_id', label: 'Product', fmt: (p) => p.title || p.product_id, title: (p) => `Product id ${p.product_id}` },
    { key: 'placement', label: 'Placement', fmt: (p) => p.placement.replace(/_/g, ' ') },
    { key: 'window', label: 'Pinned', fmt: (p) => (p.starts_at ? `${when(p.starts_at, zone)} – ${clock(p.ends_at, zone)}` : NA) },
  ], rows, (p) => p.product_id);
}

/** The orders credited, each with a button that asks GET /v1/orders/{id}/attribution why. */
function drawOrders(page, f, ctx, titles) {
  if (!page) { clearCard('page-orders'); return; }
  const zone = page.timezone || ctx.tz();
  const currency = page.currency || '';
  const rows = page.orders || [];
  const shown = rows.length < page.orders_total ? ` The latest ${rows.length} of ${page.orders_total} are listed.` : '';
  cardState('page-orders', rows.length ? shown.trim() : 'No order paid in this range is credited here under this model.');
  fillTable($('#page-orders-table'), [
    { key: 'order_id', label: 'Order', fmt: (o) => o.order_id },
    { key: 'paid_at', label: 'Paid', fmt: (o) => when(o.paid_at, zone) },
    { key: 'orders', label: 'Credited share', numeric: true, fmt: (o) => fmtPct(o.orders) },
    { key: 'gmv', label: withCurrency('Credited GMV', currency), numeric: true, fmt: (o) => fmtMoney(o.gmv) },
    { key: 'explain', label: 'Why', fmt: (o) => explainButton(o, f, zone, titles, currency) },
  ], rows, (o) => o.order_id);
}

function explainButton(order, f, zone, titles, currency) {
  const target = `explain-${order.order_id}`;
  const button = el('button', {
    type: 'button', class: 'secondary small', 'aria-expanded': 'false', 'aria-controls': target,
    'aria-label': `Explain the credit of order ${order.order_id}`,
  }, 'Explain');
  button.addEventListener('click', async () => {
    const row = button.closest('tr');
    const open = document.getElementById(target);
    if (open) {
      open.remove();
      button.setAttribute('aria-expanded', 'false');
      return;
    }
    button.disabled = true;
    const detail = el('tr', { id: target, class: 'explain', 'data-explains': order.order_id });
    const cell = el('td', { colspan: row.children.length });
    detail.append(cell);
    try {
      const answer = await getJson(`v1/orders/${enc(order.order_id)}/attribution`, { model: f.model }, 'order attribution');
      cell.append(explanation(answer, order, zone, titles, currency));
    } catch (err) {
      cell.append(el('p', { class: 'card-state error' }, err.message));
    } finally {
      button.disabled = false;
    }
    row.after(detail);
    button.setAttribute('aria-expanded', 'true');
  });
  return button;
}

const windowLabel = (seconds) => {
  const s = Number(seconds);
  if (s % 86400 === 0) return `${s / 86400}-day`;
  if (s % 3600 === 0) return `${s / 3600}-hour`;
  return fmtDuration(s);
};

/** Touches, their windows and the model's weights, in words. */
function explanation(answer, order, zone, titles, currency) {
  const rules = state.settings || {};
  const paid = Date.parse(order.paid_at);
  const windows = { click: rules.click_window_seconds, view: rules.view_window_seconds };
  const box = el('div', { class: 'why' });
  box.append(el('p', {}, `Under ${answer.model.replace(/_/g, ' ')}, order ${answer.order_id} (${fmtMoney(answer.revenue, answer.currency)}) is shared by ${answer.credits.length} touch(es):`));
  const list = el('ol', { class: 'touches' });
  for (const c of answer.credits) {
    const before = fmtDuration(Math.max(0, (paid - Date.parse(c.occurred_at)) / 1000));
    const windowText = isNull(windows[c.touch]) ? '' : `, inside the ${windowLabel(windows[c.touch])} ${c.touch} window`;
    const where = c.content_id ? (titles.get(c.content_id) || c.content_id) : 'no content';
    const item = el('li', { 'data-event': c.event_id });
    item.textContent = `${c.touch === 'click' ? 'Click' : 'View'} on “${where}”${c.ad_id ? ` (ad ${c.ad_id})` : ''} at ${when(c.occurred_at, zone)}, ${before} before payment${windowText} · weight ${fmtPct(c.weight)} · ${fmtMoney(c.amount, currency || answer.currency)} for ${titles.get(`product:${c.product_id}`) || c.product_id}${c.flags && c.flags.length ? ` · flagged: ${c.flags.join(', ')}` : ''}`;
    list.append(item);
  }
  box.append(list);
  if (answer.suspicious_touches && answer.suspicious_touches.length) {
    box.append(el('p', { class: 'note' }, `${answer.suspicious_touches.length} suspicious touch(es): ${answer.suspicious_touches.map((t) => `${t.reason} (${t.mode})`).join(', ')}.`));
  }
  return box;
}

/** A live room minute by minute, the pinned products shaded behind. */
function drawTimeline(timeline, ctx) {
  const card = $('#page-timeline-card');
  if (!timeline) { clearCard('page-timeline'); return; }
  card.hidden = false;
  const zone = timeline.timezone || ctx.tz();
  const currency = timeline.currency || '';
  const bands = (timeline.pinned || []).map((p) => [Date.parse(p.starts_at), Date.parse(p.ends_at), p.title || p.product_id]);
  const minutes = timeline.minutes || [];
  const pick = (key) => minutes.map((m) => ({ start: m.start, value: m[key] }));
  drawLine($('#timeline-entries-chart'), pick('entries'), { label: 'Viewers entering per minute', fmt: fmtInt, tz: zone, cls: 's0', bands, minutes: true });
  drawLine($('#timeline-clicks-chart'), pick('clicks'), { label: 'Clicks per minute', fmt: fmtInt, tz: zone, cls: 's0', bands, minutes: true });
  drawLine($('#timeline-orders-chart'), pick('orders'), { label: 'Orders per minute', fmt: fmtCount, tz: zone, cls: 's1', bands, minutes: true });
  drawLine($('#timeline-gmv-chart'), pick('gmv'), { label: withCurrency('GMV per minute', currency), fmt: (v) => fmtMoney(v, currency), tz: zone, cls: 's1', bands, minutes: true });
  $('#timeline-gmv-caption').textContent = withCurrency('GMV per minute', currency);
  $('#timeline-pins').replaceChildren(...(timeline.pinned || []).map((p) => el('li', { 'data-product': p.product_id, title: `Product id ${p.product_id}` },
    `${clock(p.starts_at, zone)}–${clock(p.ends_at, zone)} pinned: ${p.title || p.product_id}`)));
  const busyMinutes = minutes.filter((m) => m.entries || m.clicks || m.orders || Number(m.gmv));
  fillTable($('#timeline-table'), [
    { key: 'start', label: 'Minute', fmt: (m) => clock(m.start, zone) },
    { key: 'entries', label: 'Entering', numeric: true, fmt: (m) => fmtInt(m.entries) },
    { key: 'clicks', label: 'Clicks', numeric: true, fmt: (m) => fmtInt(m.clicks) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (m) => fmtCount(m.orders) },
    { key: 'gmv', label: withCurrency('GMV', currency), numeric: true, fmt: (m) => fmtMoney(m.gmv) },
  ], busyMinutes, (m) => m.start);
  const total = (key) => minutes.reduce((t, m) => t + (Number(m[key]) || 0), 0);
  $('#timeline-summary').textContent = `${fmtInt(minutes.length)} minutes from ${when(timeline.from, zone)}: ${fmtInt(total('entries'))} entries, ${fmtInt(total('clicks'))} clicks, ${fmtCount(total('orders'))} orders, ${fmtMoney(total('gmv').toFixed(2), currency)} credited to the room while it ran.`;
  cardState('page-timeline', total('entries') ? '' : 'Nobody entered the room in these minutes.');
}

/** Product titles join the content titles, keyed `product:<id>`. */
function withProducts(titles, page) {
  for (const p of (page && page.products) || []) if (p.title) titles.set(`product:${p.product_id}`, p.title);
  return titles;
}

function tilesFor(row, prev, specs, currency) {
  const money = (v) => (isNull(v) ? NA : fmtMoney(v, currency));
  const text = { money, int: fmtInt, count: fmtCount, pct: fmtPct, ratio: fmtRatio };
  drawTiles($('#page-tiles'), specs.map(([key, label, kind, better]) => ({
    key, label, kind, better,
    value: row ? text[kind](row[key]) : NA,
    current: row ? row[key] : null,
    previous: prev ? prev[key] : (row ? 0 : null),
  })));
}

function finish(ctx, results) {
  for (const id of Object.keys(CARDS)) settle(id, false);
  const errorIn = {
    'page-head-card': ['page', 'row', 'ad'], 'page-funnel-card': ['funnel'], 'page-series-card': ['gmv', 'orders'],
    'page-timeline-card': ['timeline'], 'page-orders-card': ['page'], 'page-products-card': ['page'],
  };
  for (const [id, keys] of Object.entries(errorIn)) {
    if (keys.some((k) => state.errors[`page:${k}`])) settle(id, true);
  }
  ctx.showErrors();
  if (failedWith(401)) { ctx.refused(); return; }
  const time = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date());
  const failed = Object.keys(state.errors).filter((k) => k.startsWith('page:')).length;
  ctx.setStatus(failed ? `Tried at ${time}: ${failed} parts could not be loaded.` : `Updated ${time} · days in ${ctx.tz()}`);
  $('#page-title').focus({ preventScroll: true });
  return results;
}

// ---- a content: a video or a live room ------------------------------------------------
const CONTENT_TILES = [
  ['views', 'Views', 'int', 'up'], ['clicks', 'Clicks', 'int', 'up'], ['ctr', 'CTR', 'pct', 'up'],
  ['orders', 'Orders', 'count', 'up'], ['gmv', 'GMV', 'money', 'up'], ['gpm', 'GPM', 'money', 'up'],
];
const LIVE_TILES = [['unique_viewers', 'Viewers', 'int', 'up'], ['direct_gmv', 'Direct GMV', 'money', 'up']];

/** A page starts loading: a new ticket (answers for an older one are dropped), no errors,
 *  busy; the query params of the range and of the previous period. */
function beginPage(f, ctx) {
  const mine = ++ticket;
  forgetErrors();
  busy(true);
  $('#page-timeline-card').hidden = true;
  ctx.setStatus('Loading…');
  const prev = previousFilters(f, ctx.tz());
  return {
    mine, prev,
    params: { from: f.from, to: f.to, model: f.model },
    prevParams: { from: prev.from, to: prev.to, model: f.model },
  };
}

/** What both pages load for their `filter` (a content or an ad): the funnel, in the range
 *  and the previous period, and the daily GMV and orders. */
const funnelAndSeries = (f, prev, what, filter) => ({
  funnel: () => getJson('v1/funnels', {}, `${what} funnel`, funnelBody(f, filter)),
  funnelPrev: () => getJson('v1/funnels', {}, `${what} funnel (previous period)`, funnelBody(prev, filter)),
  gmv: () => series(f, 'gmv', filter),
  orders: () => series(f, 'orders', filter),
});

async function showContent(id, f, ctx) {
  const { mine, prev, params, prevParams } = beginPage(f, ctx);
  const got = await fetchAll({
    page: () => getJson(`v1/reports/contents/${enc(id)}`, { ...params, max_orders: 100 }, 'content page'),
    row: () => getJson('v1/reports/contents', params, 'contents report'),
    rowPrev: () => getJson('v1/reports/contents', prevParams, 'contents report (previous period)'),
    ...funnelAndSeries(f, prev, 'content', { content_id: id }),
  });
  if (mine !== ticket) return;
  notFound('page', `content ${id}`);
  let timeline = null;
  if (got.page && got.page.kind === 'live') {
    const more = await fetchAll({ timeline: () => getJson(`v1/reports/live/${enc(id)}/timeline`, { model: f.model }, 'live-room timeline') });
    if (mine !== ticket) return;
    timeline = more.timeline;
  }
  const page = got.page;
  const rows = (got.row && got.row.rows) || [];
  const row = rows.find((r) => r.content_id === id) || null;
  const before = ((got.rowPrev && got.rowPrev.rows) || []).find((r) => r.content_id === id) || null;
  const currency = (page && page.currency) || ctx.currencyOf(got.row);
  const zone = (page && page.timezone) || ctx.tz();
  const kind = page ? page.kind : row && row.kind;
  const label = page ? page.title : id;
  const meta = [
    el('span', { title: `Content id ${id}` }, kind === 'live' ? 'Live room' : 'Video'),
    el('span', { title: page && page.account_id ? `Account id ${page.account_id}` : '' }, page ? accountName(page.account_handle, page.platform) : NA),
  ];
  if (page && page.started_at) meta.push(el('span', {}, `Live ${when(page.started_at, zone)} – ${page.ended_at ? clock(page.ended_at, zone) : 'now'}`));
  header(label, meta.flatMap((m, i) => (i ? [document.createTextNode(' · '), m] : [m])), null, ctx);
  document.title = `${label} · ClipFunnel dashboard`;
  tilesFor(row, before, kind === 'live' ? [...CONTENT_TILES, ...LIVE_TILES] : CONTENT_TILES, currency);
  cardState('page-head', row ? '' : 'No activity in this range.');
  drawPageFunnel(got.funnel, got.funnelPrev);
  drawSeries(got.gmv, got.orders, ctx, currency);
  drawOrders(page, f, ctx, withProducts(titlesFrom(got.row), page));
  drawProducts(page, zone);
  $('#page-orders-title').textContent = 'Orders credited to this content';
  if (kind === 'live') drawTimeline(timeline, ctx);
  finish(ctx, got);
}

// ---- an ad ---------------------------------------------------------------------------
const AD_TILES = [
  ['impressions', 'Impressions', 'int', 'up'], ['clicks', 'Clicks', 'int', 'up'], ['ctr', 'CTR', 'pct', 'up'],
  ['spend', 'Spend', 'money', null], ['gmv', 'GMV', 'money', 'up'], ['roas', 'ROAS', 'ratio', 'up'],
  ['cpa', 'CPA', 'money', 'down'], ['cpc', 'CPC', 'money', 'down'],
];

async function showAd(id, f, ctx) {
  const { mine, prev, params, prevParams } = beginPage(f, ctx);
  const got = await fetchAll({
    ad: () => getJson('v1/reports/ads', params, 'ads report'),
    adPrev: () => getJson('v1/reports/ads', prevParams, 'ads report (previous period)'),
    ...funnelAndSeries(f, prev, 'ad', { ad_id: id }),
  });
  if (mine !== ticket) return;
  const row = ((got.ad && got.ad.rows) || []).find((r) => r.ad_id === id) || null;
  if (got.ad && !row) {
    state.errors['page:ad'] = new ApiError(`This link names ad ${id}, which has no activity, spend or catalog entry for this tenant in this range: a link from another tenant, or another range.`, 404);
  }
  const before = ((got.adPrev && got.adPrev.rows) || []).find((r) => r.ad_id === id) || null;
  let page = null;
  if (row && row.content_id) {
    const more = await fetchAll({
      page: () => getJson(`v1/reports/contents/${enc(row.content_id)}`, { ...params, ad_id: id, max_orders: 100 }, 'ad orders'),
    });
    if (mine !== ticket) return;
    page = more.page;
  }
  const currency = ctx.currencyOf(got.ad);
  const label = row ? adName(row) : id;
  const meta = [el('span', {}, row ? `${formatLabel(row.format)} ad` : 'Ad')];
  if (row && row.campaign_id) meta.push(el('span', { title: `Campaign id ${row.campaign_id}` }, `campaign ${row.campaign_name || row.campaign_id}`));
  if (row && row.product_id) meta.push(el('span', { title: `Product id ${row.product_id}` }, `promotes ${row.product_title || row.product_id}`));
  const up = row && row.content_id
    ? link(`On ${row.content_title || row.content_id}`, pageHref('content', row.content_id, ctx.urlFilters()), `Content id ${row.content_id}`)
    : null;
  header(label, meta.flatMap((m, i) => (i ? [document.createTextNode(' · '), m] : [m])), up, ctx);
  document.title = `${label} · ClipFunnel dashboard`;
  tilesFor(row, before, AD_TILES, currency);
  cardState('page-head', row ? '' : 'No activity in this range.');
  drawPageFunnel(got.funnel, got.funnelPrev);
  drawSeries(got.gmv, got.orders, ctx, currency);
  drawOrders(page, f, ctx, withProducts(titlesFrom(got.ad), page));
  drawProducts(page, page ? page.timezone : ctx.tz());
  $('#page-orders-title').textContent = 'Orders credited to this ad';
  finish(ctx, got);
}

registerPage('content', { label: 'Content', show: showContent, hide: () => { ticket += 1; } });
registerPage('ad', { label: 'Ad', show: showAd, hide: () => { ticket += 1; } });
