/* ClipFunnel dashboard: loading, rendering the cards, filters and wiring. */
import './options.js';
import { STEP_LABELS, DEFAULT_STEPS, MIN_STEPS, MAX_STEPS, FORMAT_ORDER, TOP_CONTENTS, NA, LOCALE, $, state, store } from './config.js';
import { isNull, fmtInt, fmtCount, fmtPct, fmtRatio, fmtMoney, platformLabel, withCurrency, formatLabel, zoneOr, startOfDay, todayIn, addDays, dayLabel } from './format.js';
import { ApiError, request, getJson } from './api.js';
import { el, cardState, fillTable, clearCard, saveBlob, CARD_PARTS } from './dom.js';
import { drawFunnel, drawBars, drawLine } from './charts.js';
import { OPERATION_LOADERS, OPERATION_CARDS, OPERATION_RENDER } from './operations.js';
import { PAGES, readView, remember, pageHref } from './nav.js';
import { previousFilters, changeColumn, drawTiles, fillStepsTable, total, ratioOf } from './compare.js';
import { contentName, accountName, adName, link, titlesFrom } from './names.js';
import './drill.js';
import { withModes, syncSteps, loadFunnel, renderFunnelModes, initFunnelModes } from './funnel_modes.js';

// ---- what each card loads ----------------------------------------------------------------
function funnelQuery(f) {
  const filters = {};
  if (f.platform) filters.platform = f.platform;
  if (f.kind) filters.content_kind = f.kind;
  const query = {
    steps: state.steps.map((type) => ({ type })), from: f.from, to: f.to,
    window_seconds: f.window,
  };
  if (Object.keys(filters).length) query.filters = filters;
  return withModes(query);
}

const reportParams = (f, extra = {}) => ({ from: f.from, to: f.to, model: f.model, ...extra });
const contentParams = (f, extra = {}) => reportParams(f, {
  kind: f.kind, platform: f.platform, ...extra,
});
const seriesParams = (f, metric) => reportParams(f, { metric, interval: 'day' });

/** How many paths the data-driven answer lists at most (its most frequent ones). */
const TOP_PATHS = 20;
const markovParams = (f) => ({ from: f.from, to: f.to, method: 'markov', channel: 'content', order: 1 });

const LOADERS = {
  funnel: (f) => loadFunnel(funnelQuery(f)),
  ads: (f) => getJson('v1/reports/ads', reportParams(f), 'ads report'),
  contents: (f) => getJson('v1/reports/contents', contentParams(f), 'contents report'),
  gmv: (f) => getJson('v1/reports/timeseries', seriesParams(f, 'gmv'), 'GMV time series'),
  orders: (f) => getJson('v1/reports/timeseries', seriesParams(f, 'orders'), 'orders time series'),
  datadriven: async (f) => {
    const [markov, last] = await Promise.all([
      getJson('v1/attribution/data-driven', markovParams(f), 'data-driven attribution'),
      getJson('v1/reports/contents', contentParams(f, { model: 'last_touch' }), 'last-touch contents'),
    ]);
    return { markov, last };
  },
  shops: async () => {
    const { integrations } = await getJson('v1/integrations', {}, 'connected shops');
    const unmatched = await Promise.all(integrations.map((i) => getJson(
      `v1/integrations/${encodeURIComponent(i.integration_id)}/unmatched-products`, {},
      'unmatched products')));
    return integrations.map((i, n) => ({ ...i, unmatched: unmatched[n].products || [] }));
  },
};
// Each card: the loads it shows, and the key of its status line.
const CARDS = {
  'funnel-card': [['funnel'], 'funnel'],
  'formats-card': [['ads'], 'ads'],
  'timeseries-card': [['gmv', 'orders'], 'timeseries'],
  'contents-card': [['contents'], 'contents'],
  'live-card': [['contents'], 'live'],
  'datadriven-card': [['datadriven'], 'datadriven'],
  'shops-card': [['shops'], 'shops'],
};
Object.assign(LOADERS, OPERATION_LOADERS);
Object.assign(CARDS, OPERATION_CARDS);
// ---- rendering each card ---------------------------------------------------------------
const currencyOf = (answer) => (answer && answer.currency) || (state.settings && state.settings.currency) || '';
const tz = () => zoneOr((state.settings && state.settings.timezone) || 'UTC');

function renderFunnel() {
  const data = state.data.funnel;
  if (!data) { clearCard('funnel'); return; }
  const steps = data.steps || [];
  cardState('funnel', steps.length && steps[0].users === 0
    ? 'No viewer reached the first step in this range and these filters.' : '');
  drawFunnel($('#funnel-chart'), steps);
  fillStepsTable($('#funnel-table'), steps, state.data.funnelPrev, { fromStart: true });
  renderFunnelModes(data, tz());
}

const METRICS = {
  ctr: { label: 'CTR', fmt: (v) => fmtPct(v) },
  cvr: { label: 'CVR', fmt: (v) => fmtPct(v) },
  cpa: { label: 'CPA', money: true },
  roas: { label: 'ROAS', fmt: (v) => fmtRatio(v) },
};

function renderFormats() {
  const data = state.data.ads;
  if (!data) { clearCard('ads'); return; }
  const currency = currencyOf(data);
  const rank = (f) => (FORMAT_ORDER.includes(f) ? FORMAT_ORDER.indexOf(f) : FORMAT_ORDER.length);
  const rows = [...(data.by_format || [])].sort((a, b) => rank(a.format) - rank(b.format));
  cardState('ads', rows.length ? warningsOf(data) : 'No ad had impressions, clicks, orders or spend in this range.');
  const money = (key) => (r) => fmtMoney(r[key]);
  const inCurrency = (label) => withCurrency(label, currency);
  fillTable($('#formats-table'), [
    { key: 'format', label: 'Format', fmt: (r) => formatLabel(r.format) },
    { key: 'ctr', label: 'CTR', numeric: true, fmt: (r) => fmtPct(r.ctr) },
    { key: 'cvr', label: 'CVR', numeric: true, fmt: (r) => fmtPct(r.cvr) },
    { key: 'cpa', label: inCurrency('CPA'), numeric: true, fmt: money('cpa') },
    { key: 'roas', label: 'ROAS', numeric: true, fmt: (r) => fmtRatio(r.roas) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
    { key: 'spend', label: inCurrency('Spend'), numeric: true, fmt: money('spend') },
    { key: 'gmv', label: inCurrency('GMV'), numeric: true, fmt: money('gmv') },
    changeColumn({
      key: 'roas_change', label: 'ROAS vs previous', metric: 'roas', kind: 'ratio', better: 'up',
      previous: state.data.adsPrev && state.data.adsPrev.by_format,
      match: (r, prev) => prev.find((p) => p.format === r.format),
    }),
  ], rows, (r) => (isNull(r.format) ? 'none' : r.format));
  const metric = $('#format-metric').value;
  const spec = METRICS[metric];
  const text = (v) => (spec.money ? fmtMoney(v, currency) : spec.fmt(v));
  drawBars($('#formats-chart'), rows.map((r) => ({
    key: r.format, label: formatLabel(r.format), value: isNull(r[metric]) ? null : Number(r[metric]),
    text: text(r[metric]), highlight: r.format === 'native',
  })), `${spec.label} by ad format: ${rows.map((r) => `${formatLabel(r.format)} ${text(r[metric])}`).join(', ')}`);
}

const warningsOf = (answer) => ((answer && answer.warnings) || []).join(' ');

/** Most GMV first; ties by content id in code-unit order (stable across locales). */
function byGmv(a, b) {
  const diff = Number(b.gmv || 0) - Number(a.gmv || 0);
  if (diff) return diff;
  return a.content_id < b.content_id ? -1 : a.content_id > b.content_id ? 1 : 0;
}

function renderContents() {
  const data = state.data.contents;
  if (!data) { clearCard('contents'); clearCard('live'); return; }
  const currency = currencyOf(data);
  const money = (key) => (r) => fmtMoney(r[key]);
  const inCurrency = (label) => withCurrency(label, currency);
  const rows = [...(data.rows || [])].sort(byGmv);
  const top = rows.slice(0, TOP_CONTENTS);
  cardState('contents', rows.length ? warningsOf(data) : 'No content had views, clicks or orders in this range and these filters.');
  const before = state.data.contentsPrev && state.data.contentsPrev.rows;
  const sameContent = (r, prev) => prev.find((p) => p.content_id === r.content_id);
  const gmvChange = changeColumn({
    key: 'gmv_change', label: 'GMV vs previous', metric: 'gmv', kind: 'money', better: 'up',
    previous: before, match: sameContent,
  });
  const nameCell = (r) => (r.kind === 'live' || r.kind === 'video'
    ? link(contentName(r), pageHref('content', r.content_id, urlFilters()))
    : contentName(r));
  fillTable($('#contents-table'), [
    { key: 'content_id', label: 'Content', fmt: nameCell, title: (r) => `Content id ${r.content_id}` },
    { key: 'account', label: 'Account', fmt: (r) => accountName(r.account_handle, null), title: (r) => r.account_id && `Account id ${r.account_id}` },
    { key: 'kind', label: 'Kind', fmt: (r) => (r.kind === 'live' ? 'Live' : r.kind === 'video' ? 'Video' : r.kind || NA) },
    { key: 'platform', label: 'Platform', fmt: (r) => platformLabel(r.platform) },
    { key: 'views', label: 'Views', numeric: true, fmt: (r) => fmtInt(r.views) },
    { key: 'clicks', label: 'Clicks', numeric: true, fmt: (r) => fmtInt(r.clicks) },
    { key: 'ctr', label: 'CTR', numeric: true, fmt: (r) => fmtPct(r.ctr) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
    { key: 'gmv', label: inCurrency('GMV'), numeric: true, fmt: money('gmv') },
    { key: 'gpm', label: inCurrency('GPM'), numeric: true, fmt: money('gpm') },
    gmvChange,
  ], top, (r) => r.content_id);
  const live = rows.filter((r) => r.kind === 'live');
  cardState('live', live.length ? '' : 'No live room had activity in this range and these filters.');
  fillTable($('#live-table'), [
    { key: 'content_id', label: 'Live room', fmt: nameCell, title: (r) => `Content id ${r.content_id}` },
    { key: 'account', label: 'Account', fmt: (r) => accountName(r.account_handle, null), title: (r) => r.account_id && `Account id ${r.account_id}` },
    { key: 'platform', label: 'Platform', fmt: (r) => platformLabel(r.platform) },
    { key: 'unique_viewers', label: 'Viewers', numeric: true, fmt: (r) => fmtInt(r.unique_viewers) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
    { key: 'gmv', label: inCurrency('GMV'), numeric: true, fmt: money('gmv') },
    { key: 'direct_gmv', label: inCurrency('Direct GMV'), numeric: true, fmt: money('direct_gmv') },
    { key: 'indirect_gmv', label: inCurrency('Indirect GMV'), numeric: true, fmt: money('indirect_gmv') },
    { key: 'gpm', label: inCurrency('GPM'), numeric: true, fmt: money('gpm') },
    gmvChange,
  ], live, (r) => r.content_id);
}

function renderDataDriven() {
  const data = state.data.datadriven;
  if (!data) { clearCard('datadriven'); return; }
  const { markov, last } = data;
  const before = state.data.datadrivenPrev;
  const currency = markov.currency || currencyOf(last);
  const lastBy = new Map((last.rows || []).map((r) => [r.content_id, r]));
  const rows = markov.channels || [];
  cardState('datadriven', rows.length ? '' : 'No journey with a content touch in this range.');
  const titles = titlesFrom(last, state.data.contents);
  const named = (id) => titles.get(id) || id;
  fillTable($('#datadriven-table'), [
    { key: 'channel', label: 'Content', fmt: (r) => named(r.channel), title: (r) => `Content id ${r.channel}` },
    { key: 'removal_effect', label: 'Removal effect', numeric: true, fmt: (r) => fmtPct(r.removal_effect) },
    { key: 'conversions', label: 'Markov orders', numeric: true, fmt: (r) => fmtCount(r.conversions) },
    { key: 'revenue', label: withCurrency('Markov GMV', currency), numeric: true, fmt: (r) => fmtMoney(r.revenue) },
    { key: 'last_orders', label: 'Last-touch orders', numeric: true, fmt: (r) => fmtCount((lastBy.get(r.channel) || {}).orders) },
    { key: 'last_gmv', label: withCurrency('Last-touch GMV', currency), numeric: true, fmt: (r) => fmtMoney((lastBy.get(r.channel) || {}).gmv) },
    changeColumn({
      key: 'revenue_change', label: 'Markov GMV vs previous', metric: 'revenue', kind: 'money', better: 'up',
      previous: before && before.channels, match: (r, prev) => prev.find((p) => p.channel === r.channel),
    }),
  ], rows, (r) => r.channel);
  // The previous period lists its most frequent paths only: a path missing from a full list
  // had no journey, one missing from a cut list is not known.
  const beforePaths = before && before.top_paths;
  const cut = beforePaths && beforePaths.length >= TOP_PATHS;
  fillTable($('#paths-table'), [
    { key: 'path', label: 'Path', fmt: (r) => r.path.split(' > ').map(named).join(' → '), title: (r) => r.path },
    { key: 'conversions', label: 'Converting', numeric: true, fmt: (r) => fmtInt(r.conversions) },
    { key: 'non_conversions', label: 'Not converting', numeric: true, fmt: (r) => fmtInt(r.non_conversions) },
    changeColumn({
      key: 'conversions_change', label: 'Converting vs previous', metric: 'conversions', kind: 'int', better: 'up',
      previous: beforePaths,
      match: (r, prev) => prev.find((p) => p.path === r.path) || (cut ? { conversions: null } : null),
    }),
  ], markov.top_paths || [], (r) => r.path);
}

function renderShops() {
  const shops = state.data.shops;
  if (!shops) { clearCard('shops'); return; }
  cardState('shops', shops.length ? '' : 'No shop is connected: see the README for PUT /v1/integrations/{id}.');
  const names = (s) => s.unmatched.slice(0, 5).map((p) => `${p.product_id} (${p.quantity})`).join(', ');
  fillTable($('#shops-table'), [
    { key: 'integration_id', label: 'Integration', fmt: (s) => s.integration_id },
    { key: 'platform', label: 'Platform', fmt: (s) => (s.platform === 'shopify' ? 'Shopify' : 'WooCommerce') },
    { key: 'shop', label: 'Shop', fmt: (s) => s.shop },
    { key: 'webhook_path', label: 'Webhook URL path', fmt: (s) => s.webhook_path },
    { key: 'unmatched', label: 'Unmatched products', numeric: true, fmt: (s) => fmtInt(s.unmatched.length) },
    { key: 'unmatched_ids', label: 'Unmatched (units)', fmt: (s) => names(s) || NA },
  ], shops, (s) => s.integration_id);
}

function renderTimeseries() {
  const gmv = state.data.gmv;
  const orders = state.data.orders;
  if (!gmv && !orders) { clearCard('timeseries'); return; }
  const zone = (gmv && gmv.timezone) || (orders && orders.timezone) || tz();
  const currency = (gmv && gmv.currency) || currencyOf(state.data.ads) || currencyOf(state.data.contents);
  $('#gmv-caption').textContent = withCurrency('GMV', currency);
  const gmvPoints = (gmv && gmv.points) || [];
  const orderPoints = (orders && orders.points) || [];
  const money = (v) => fmtMoney(v, currency);
  if (gmv) drawLine($('#gmv-chart'), gmvPoints, { label: 'GMV per day', fmt: money, tz: zone, cls: 's0' });
  else $('#gmv-chart').replaceChildren();
  if (orders) drawLine($('#orders-chart'), orderPoints, { label: 'Orders per day', fmt: fmtCount, tz: zone, cls: 's1' });
  else $('#orders-chart').replaceChildren();
  const total = (pts) => pts.reduce((sum, p) => sum + (Number(p.value) || 0), 0);
  cardState('timeseries', total(gmvPoints) === 0 && total(orderPoints) === 0
    ? 'No attributed order was paid in this range.' : '');
  const days = new Map();
  for (const p of gmvPoints) days.set(p.start, { start: p.start, gmv: p.value, orders: null });
  for (const p of orderPoints) {
    const row = days.get(p.start) || { start: p.start, gmv: null, orders: null };
    row.orders = p.value;
    days.set(p.start, row);
  }
  // Day n of the range beside day n of the previous period.
  const gmvBefore = (state.data.gmvPrev && state.data.gmvPrev.points) || null;
  const ordersBefore = (state.data.ordersPrev && state.data.ordersPrev.points) || null;
  const before = gmvBefore || ordersBefore
    ? (gmvBefore || ordersBefore).map((p, i) => ({
      gmv: gmvBefore && gmvBefore[i] ? gmvBefore[i].value : null,
      orders: ordersBefore && ordersBefore[i] ? ordersBefore[i].value : null,
    }))
    : null;
  const dayRows = [...days.values()].sort((a, b) => (a.start < b.start ? -1 : 1)).map((r, index) => ({ ...r, index }));
  fillTable($('#timeseries-table'), [
    { key: 'start', label: 'Day', fmt: (r) => dayLabel(r.start, zone, true) },
    { key: 'gmv', label: withCurrency('GMV', currency), numeric: true, fmt: (r) => fmtMoney(r.gmv) },
    changeColumn({
      key: 'gmv_change', label: 'GMV vs same day before', metric: 'gmv', kind: 'money', better: 'up',
      previous: before, match: (r, prev) => prev[r.index],
    }),
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
    changeColumn({
      key: 'orders_change', label: 'Orders vs same day before', metric: 'orders', kind: 'count', better: 'up',
      previous: before, match: (r, prev) => prev[r.index],
    }),
  ], dayRows, (r) => r.start);
}

const RENDER = {
  funnel: renderFunnel, ads: renderFormats, contents: renderContents,
  gmv: renderTimeseries, orders: renderTimeseries,
  datadriven: renderDataDriven, shops: renderShops,
};
Object.assign(RENDER, OPERATION_RENDER);

// ---- cards added in a few lines: loads, what to draw when each arrives, status key ------------
/** An overview card in a few lines: `loaders` join LOADERS, `draws[key]` runs after RENDER[key]
 *  (chained, so several cards can draw from one load), and `sources` (load keys) with `status`
 *  (its card-state key) make or extend its entry in CARDS. A key `xPrev` beside a loader `x`
 *  is loaded with it, for the previous period (see load()). A whole view is a page module
 *  instead: registerPage in nav.js (drill.js registers the content and ad pages). */
function registerCard(id, { loaders = {}, draws = {}, sources = [], status = id }) {
  Object.assign(LOADERS, loaders);
  for (const [key, draw] of Object.entries(draws)) {
    const before = RENDER[key];
    RENDER[key] = before ? () => { before(); draw(); } : draw;
  }
  const [had, known] = CARDS[id] || [[], status];
  CARDS[id] = [[...new Set([...had, ...sources])], known];
}

/** The previous period's answers: same endpoints, same filters, the range just before. */
const previous = (f) => previousFilters(f, tz());
registerCard('funnel-card', {
  sources: ['funnel'], status: 'funnel',
  loaders: { funnelPrev: (f) => getJson('v1/funnels', {}, 'funnel (previous period)', funnelQuery(previous(f))) },
  draws: { funnelPrev: renderFunnel },
});
registerCard('formats-card', {
  sources: ['ads'], status: 'ads',
  loaders: { adsPrev: (f) => getJson('v1/reports/ads', reportParams(previous(f)), 'ads report (previous period)') },
  draws: { adsPrev: renderFormats },
});
registerCard('timeseries-card', {
  sources: ['gmv', 'orders'], status: 'timeseries',
  loaders: {
    gmvPrev: (f) => getJson('v1/reports/timeseries', seriesParams(previous(f), 'gmv'), 'GMV time series (previous period)'),
    ordersPrev: (f) => getJson('v1/reports/timeseries', seriesParams(previous(f), 'orders'), 'orders time series (previous period)'),
  },
  draws: { gmvPrev: renderTimeseries, ordersPrev: renderTimeseries },
});
registerCard('datadriven-card', {
  sources: ['datadriven'], status: 'datadriven',
  loaders: { datadrivenPrev: (f) => getJson('v1/attribution/data-driven', markovParams(previous(f)), 'data-driven attribution (previous period)') },
  draws: { datadrivenPrev: renderDataDriven },
});
registerCard('contents-card', {
  sources: ['contents'], status: 'contents',
  loaders: { contentsPrev: (f) => getJson('v1/reports/contents', contentParams(previous(f)), 'contents report (previous period)') },
  draws: { contentsPrev: renderContents },
});

function renderTiles() {
  const ads = state.data.ads;
  const contents = state.data.contents;
  if (!ads && !contents) { $('#kpi-tiles').replaceChildren(); return; }
  const currency = currencyOf(ads) || currencyOf(contents);
  const sums = (answer) => {
    if (!answer) return null;
    return { rows: answer.rows || [], formats: answer.by_format || [] };
  };
  const figures = (c, a) => {
    const rows = c ? c.rows : [];
    const formats = a ? a.formats : [];
    const spend = total(formats, 'spend');
    const adGmv = total(formats, 'gmv');
    const adOrders = total(formats, 'orders');
    return {
      gmv: c ? total(rows, 'gmv') : null,
      orders: c ? total(rows, 'orders') : null,
      views: c ? total(rows, 'views') : null,
      ctr: c ? ratioOf(total(rows, 'clicks'), total(rows, 'impressions')) : null,
      spend: a ? spend : null,
      roas: a ? ratioOf(adGmv, spend) : null,
      cpa: a ? ratioOf(spend, adOrders) : null,
    };
  };
  const now = figures(sums(contents), sums(ads));
  const prevContents = state.data.contentsPrev;
  const prevAds = state.data.adsPrev;
  const then = prevContents || prevAds ? figures(sums(prevContents), sums(prevAds)) : {};
  const money = (v) => (isNull(v) ? NA : fmtMoney(Number(v).toFixed(2), currency));
  drawTiles($('#kpi-tiles'), [
    { key: 'gmv', label: 'Attributed GMV', value: money(now.gmv), current: now.gmv, previous: then.gmv, kind: 'money', better: 'up' },
    { key: 'orders', label: 'Attributed orders', value: fmtCount(now.orders), current: now.orders, previous: then.orders, kind: 'count', better: 'up' },
    { key: 'views', label: 'Views', value: fmtInt(now.views), current: now.views, previous: then.views, kind: 'int', better: 'up' },
    { key: 'ctr', label: 'Content CTR', value: fmtPct(now.ctr), current: now.ctr, previous: then.ctr, kind: 'pct', better: 'up' },
    { key: 'spend', label: 'Ad spend', value: money(now.spend), current: now.spend, previous: then.spend, kind: 'money', better: null },
    { key: 'roas', label: 'Ad ROAS', value: fmtRatio(now.roas), current: now.roas, previous: then.roas, kind: 'ratio', better: 'up' },
    { key: 'cpa', label: 'Ad CPA', value: money(now.cpa), current: now.cpa, previous: then.cpa, kind: 'money', better: 'down' },
  ]);
  const f = state.filters;
  if (f) {
    const p = previous(f);
    $('#kpi-range').textContent = `${f.fromDay} to ${f.toDay}, compared with ${p.fromDay} to ${p.toDay} (the ${
      Math.round((Date.parse(f.to) - Date.parse(f.from)) / 86400000)} days before). Green is better, red is worse (for CPA, lower is better).`;
  }
  const quiet = (prevContents || prevAds) && !then.gmv && !then.views && !then.spend;
  cardState('kpi', quiet && f
    ? `The previous period (${previous(f).fromDay} to ${previous(f).toDay}) has no data, so every change reads “new”: pick a shorter range to compare two periods that both have data.`
    : '');
}
registerCard('kpi-card', {
  sources: ['ads', 'contents'], status: 'kpi',
  draws: { ads: renderTiles, contents: renderTiles, adsPrev: renderTiles, contentsPrev: renderTiles },
});

function renderAdList() {
  const data = state.data.ads;
  if (!data) { clearCard('adlist'); return; }
  const currency = currencyOf(data);
  const inCurrency = (label) => withCurrency(label, currency);
  const rows = [...(data.rows || [])];
  cardState('adlist', rows.length ? '' : 'No ad had impressions, clicks, orders or spend in this range.');
  const filters = urlFilters();
  fillTable($('#adlist-table'), [
    { key: 'ad_id', label: 'Ad', fmt: (r) => link(adName(r), pageHref('ad', r.ad_id, filters)), title: (r) => `Ad id ${r.ad_id}` },
    { key: 'campaign', label: 'Campaign', fmt: (r) => r.campaign_name || r.campaign_id || NA, title: (r) => r.campaign_id && `Campaign id ${r.campaign_id}` },
    { key: 'format', label: 'Format', fmt: (r) => formatLabel(r.format) },
    { key: 'product', label: 'Product', fmt: (r) => r.product_title || r.product_id || NA, title: (r) => r.product_id && `Product id ${r.product_id}` },
    { key: 'spend', label: inCurrency('Spend'), numeric: true, fmt: (r) => fmtMoney(r.spend) },
    { key: 'gmv', label: inCurrency('GMV'), numeric: true, fmt: (r) => fmtMoney(r.gmv) },
    { key: 'roas', label: 'ROAS', numeric: true, fmt: (r) => fmtRatio(r.roas) },
    { key: 'cpa', label: inCurrency('CPA'), numeric: true, fmt: (r) => fmtMoney(r.cpa) },
    changeColumn({
      key: 'gmv_change', label: 'GMV vs previous', metric: 'gmv', kind: 'money', better: 'up',
      previous: state.data.adsPrev && state.data.adsPrev.rows,
      match: (r, prev) => prev.find((p) => p.ad_id === r.ad_id),
    }),
  ], rows, (r) => r.ad_id);
}
CARD_PARTS.adlist = ['adlist-table'];
CARD_PARTS.kpi = ['kpi-tiles'];
registerCard('adlist-card', { sources: ['ads'], status: 'adlist', draws: { ads: renderAdList, adsPrev: renderAdList } });

/** The filters as the URL keeps them: local days, and the defaults left out. */
function urlFilters(f = state.filters) {
  if (!f) return {};
  const steps = state.steps.join(',');
  return {
    from: f.fromDay, to: f.toDay, platform: f.platform, kind: f.kind, model: f.model,
    window: f.window === 604800 ? '' : String(f.window),
    steps: steps === DEFAULT_STEPS.join(',') ? '' : steps,
  };
}

function render(key) {
  try {
    RENDER[key]();
  } catch (err) {
    state.errors[`render:${key}`] = new ApiError(`Could not draw ${key}: ${err.message}`);
  }
}

// ---- banner and status ---------------------------------------------------------------
function showBanner(messages) {
  const unique = [...new Set(messages.filter(Boolean))];
  const banner = $('#banner');
  const box = $('#banner-text');
  box.replaceChildren(...unique.map((m) => el('p', {}, m)));
  banner.hidden = unique.length === 0;
}

function showErrors() {
  showBanner(Object.values(state.errors).filter(Boolean).map((e) => e.message));
}

const setStatus = (text) => { $('#status').textContent = text; };

function setBusy(keys, busy) {
  for (const [id, [sources]] of Object.entries(CARDS)) {
    if (!sources.some((key) => keys.includes(key))) continue;
    const card = document.getElementById(id);
    card.setAttribute('aria-busy', String(busy));
    if (busy) {
      card.dataset.state = 'loading';
      cardState(CARDS[id][1], 'Loading…', 'loading');
    }
  }
}

function settleCards() {
  for (const [id, [sources, stateKey]] of Object.entries(CARDS)) {
    const card = document.getElementById(id);
    if (card.getAttribute('aria-busy') === 'true') continue;
    const failed = sources.some((key) => state.errors[key]);
    card.dataset.state = failed ? 'error' : 'ready';
    if (failed) cardState(stateKey, 'Not loaded: see the message at the top of the page.', 'error');
  }
}

// ---- filters -------------------------------------------------------------------------
function readFilters() {
  const fromDay = $('#f-from').value;
  const toDay = $('#f-to').value;
  if (!fromDay || !toDay) return { error: 'Pick both a From and a To date.' };
  if (toDay < fromDay) return { error: 'The To date must be on or after the From date.' };
  const zone = tz();
  return {
    fromDay, toDay, from: startOfDay(fromDay, zone), to: startOfDay(addDays(toDay, 1), zone),
    platform: $('#f-platform').value, kind: $('#f-kind').value, model: $('#f-model').value,
    window: Number($('#f-window').value),
  };
}

function applySettings() {
  const s = state.settings || {};
  const zone = tz();
  if (!$('#f-to').value) {
    const today = todayIn(zone);
    $('#f-to').value = today;
    $('#f-from').value = addDays(today, -30);
  }
  if (s.default_model && !state.modelChosen) $('#f-model').value = s.default_model;
  const claims = tokenClaims(state.token);
  const bits = [];
  const tenant = claims && (claims.sub || claims.tid);  // JWTs name the tenant in sub
  if (tenant) bits.push(`Tenant ${tenant}`);
  if (s.currency) bits.push(s.currency);
  bits.push(zone);
  $('#tenant-info').textContent = bits.join(' · ');
}

/** What the token says about itself (not verified here: display only). */
function tokenClaims(token) {
  try {
    const part = String(token).split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

// ---- loading -------------------------------------------------------------------------
async function load(requested) {
  if (!state.token) return;
  // Each part with a previous-period twin loads it too, for its change column.
  const keys = [...new Set(requested.flatMap((k) => (LOADERS[`${k}Prev`] ? [k, `${k}Prev`] : [k])))];
  if (!state.settings) {
    const ok = await loadSettings();
    if (!ok) return;
  }
  const f = readFilters();
  if (f.error) {
    state.errors.filters = new ApiError(f.error);
    showErrors();
    return;
  }
  delete state.errors.filters;
  state.filters = f;
  const tickets = {};
  for (const key of keys) {
    state.tickets[key] = (state.tickets[key] || 0) + 1;
    tickets[key] = state.tickets[key];
  }
  setBusy(keys, true);
  setStatus('Loading…');
  const results = await Promise.allSettled(keys.map((key) => LOADERS[key](f)));
  const fresh = keys.filter((key) => state.tickets[key] === tickets[key]);
  results.forEach((result, i) => {
    const key = keys[i];
    if (!fresh.includes(key)) return;
    if (result.status === 'fulfilled') {
      state.data[key] = result.value;
      delete state.errors[key];
    } else {
      state.data[key] = null;
      state.errors[key] = result.reason instanceof ApiError
        ? result.reason : new ApiError(`Loading ${key} failed: ${result.reason}`);
    }
  });
  for (const key of Object.keys(state.errors)) if (key.startsWith('render:')) delete state.errors[key];
  for (const key of new Set(fresh.map((k) => (k === 'orders' ? 'gmv' : k)))) render(key);
  setBusy(fresh, false);
  settleCards();
  showErrors();
  if (fresh.some((key) => state.errors[key] && state.errors[key].status === 401)) {
    forget({ keepBanner: true });
    return;
  }
  const failed = fresh.filter((key) => state.errors[key]).length;
  const time = new Intl.DateTimeFormat(LOCALE, { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date());
  setStatus(failed
    ? `Tried at ${time}: ${failed} of ${fresh.length} parts could not be loaded.`
    : `Updated ${time} · days in ${tz()}`);
}

const loadAll = () => load(Object.keys(LOADERS));

// ---- views: the overview, or a page module (see nav.js); the URL says which -------------------
const pageContext = {
  tz, currencyOf, showErrors, setStatus, urlFilters,
  refused: () => forget({ keepBanner: true }),
};

/** The URL's filters into the form (before loading): dates, platform, kind, model, window, steps. */
function applyView(view) {
  if (view.from && view.to) {
    $('#f-from').value = view.from;
    $('#f-to').value = view.to;
  }
  $('#f-platform').value = view.platform || '';
  $('#f-kind').value = view.kind || '';
  if (view.model) {
    $('#f-model').value = view.model;
    state.modelChosen = true;
  }
  $('#f-window').value = view.window || '604800';
  if (!$('#f-window').value) $('#f-window').value = '604800';
  const steps = view.steps ? view.steps.split(',').filter((t) => STEP_LABELS[t]) : DEFAULT_STEPS;
  if (steps.length >= MIN_STEPS && steps.length <= MAX_STEPS && steps.join(',') !== state.steps.join(',')) {
    state.steps = [...steps];
    renderSteps();
  }
}

let shownPage = null;
function showView(name) {
  const spec = name ? PAGES[name] : null;
  if (shownPage && shownPage !== name && PAGES[shownPage].hide) PAGES[shownPage].hide();
  shownPage = spec ? name : null;
  $('#overview').hidden = Boolean(spec);
  $('#page-view').hidden = !spec;
  document.title = spec ? `${spec.label} · ClipFunnel dashboard` : 'ClipFunnel dashboard';
}

/** Draw what the URL names with the form's filters; `keys`: the overview parts to reload. */
async function refreshView(keys = null, { replace = false } = {}) {
  if (!state.token) return;
  if (!state.settings && !(await loadSettings())) return;
  const view = readView();
  const f = readFilters();
  if (!f.error) {
    state.filters = f;
    remember({ ...urlFilters(f), page: view.page, id: view.id }, { replace });
  }
  followed = window.location.hash;
  showView(view.page);
  if (view.page && !f.error) {
    delete state.errors.filters;
    await PAGES[view.page].show(view.id, f, pageContext);
    return;
  }
  await (keys ? load(keys) : loadAll());
}

/** A filter changed: a new history entry, then the open view again. */
const changed = (keys = null) => refreshView(keys);

let followed = null;
function followUrl() {
  if (window.location.hash === followed) return;  // popstate and hashchange both report it
  followed = window.location.hash;
  applyView(readView());
  refreshView(null, { replace: true });
}

async function loadSettings() {
  try {
    state.settings = await getJson('v1/settings', {}, 'settings');
    delete state.errors.settings;
    applySettings();
    return true;
  } catch (err) {
    state.errors.settings = err;
    if (err.status === 401 || err.status === 403) {
      forget({ keepBanner: true });
    } else {
      setStatus('');
      showErrors();
    }
    return false;
  }
}

async function connect(token) {
  state.token = token;
  state.settings = null;
  state.errors = {};
  store.set(token);
  showDashboard();
  setStatus('Checking the token…');
  await refreshView(null, { replace: true });
}

function forget({ keepBanner = false } = {}) {
  store.clear();
  state.token = null;
  state.settings = null;
  state.data = {};
  for (const key of Object.keys(state.tickets)) state.tickets[key] += 1;
  for (const key of ['funnel', 'ads', 'contents', 'live', 'timeseries']) {
    clearCard(key);
    cardState(key, '');
  }
  for (const key of Object.keys(CARD_PARTS)) clearCard(key);  // tiles, ads, the pages' parts
  if (!keepBanner) {
    state.errors = {};
    showBanner([]);
  } else {
    showErrors();
    state.errors = {};
  }
  $('#tenant-info').textContent = '';
  $('#f-to').value = '';
  $('#f-from').value = '';
  setStatus('');
  showAuth();
}

function showAuth() {
  $('#auth').hidden = false;
  $('#dashboard').hidden = true;
  $('#session').hidden = true;
  $('#token-input').focus();
}

function showDashboard() {
  $('#auth').hidden = true;
  $('#dashboard').hidden = false;
  $('#session').hidden = false;
}

// ---- steps editor --------------------------------------------------------------------
function renderSteps() {
  const list = $('#steps');
  list.replaceChildren();
  state.steps.forEach((type, i) => {
    const item = el('li');
    const id = `step-${i}`;
    const select = el('select', { id });
    for (const [value, text] of Object.entries(STEP_LABELS)) {
      select.append(new Option(text, value, false, value === type));
    }
    select.addEventListener('change', () => {
      state.steps[i] = select.value;
      changed(['funnel']);
    });
    const remove = el('button', {
      type: 'button', class: 'icon', 'aria-label': `Remove step ${i + 1}`, title: 'Remove this step',
    }, '×');
    remove.disabled = state.steps.length <= MIN_STEPS;
    remove.addEventListener('click', () => {
      state.steps.splice(i, 1);
      renderSteps();
      changed(['funnel']);
    });
    item.append(el('label', { for: id, class: 'sr-only' }, `Step ${i + 1}`), select, remove);
    list.append(item);
  });
  $('#add-step').disabled = state.steps.length >= MAX_STEPS;
  syncSteps(state.steps);
}

// ---- CSV -----------------------------------------------------------------------------
const csvCell = (v) => {
  const text = isNull(v) ? '' : String(v);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

function funnelCsv() {
  const steps = (state.data.funnel && state.data.funnel.steps) || [];
  const header = ['step', 'type', 'users', 'conversion_from_start', 'conversion_from_previous', 'median_seconds_from_previous'];
  const lines = steps.map((s, i) => [i + 1, s.type, s.users, s.conversion_from_start,
    s.conversion_from_previous, s.median_seconds_from_previous].map(csvCell).join(','));
  return new Blob([[header.join(','), ...lines].join('\r\n') + '\r\n'], { type: 'text/csv' });
}

async function downloadCsv(kind, button) {
  const f = state.filters || readFilters();
  if (f.error) { showBanner([f.error]); return; }
  const range = `${f.fromDay}_${f.toDay}`;
  const jobs = {
    formats: ['v1/reports/ads', reportParams(f, { table: 'by_format' }), `clipfunnel-ad-formats-${range}-${f.model}.csv`, 'ad formats CSV'],
    ads: ['v1/reports/ads', reportParams(f), `clipfunnel-ads-${range}-${f.model}.csv`, 'ads CSV'],
    contents: ['v1/reports/contents', contentParams(f), `clipfunnel-contents-${range}-${f.model}.csv`, 'contents CSV'],
    live: ['v1/reports/contents', contentParams(f, { kind: 'live' }), `clipfunnel-live-${range}-${f.model}.csv`, 'live rooms CSV'],
    gmv: ['v1/reports/timeseries', seriesParams(f, 'gmv'), `clipfunnel-gmv-daily-${range}-${f.model}.csv`, 'GMV CSV'],
    orders: ['v1/reports/timeseries', seriesParams(f, 'orders'), `clipfunnel-orders-daily-${range}-${f.model}.csv`, 'orders CSV'],
  };
  button.disabled = true;
  try {
    if (kind === 'funnel') {
      saveBlob(funnelCsv(), `clipfunnel-funnel-${range}.csv`);
      return;
    }
    const [path, params, filename, what] = jobs[kind];
    const res = await request(path, { params: { ...params, format: 'csv' }, accept: 'text/csv', what });
    saveBlob(await res.blob(), filename);
    delete state.errors.csv;
  } catch (err) {
    state.errors.csv = err instanceof ApiError ? err : new ApiError(`The download failed: ${err}`);
    if (err.status === 401) { forget({ keepBanner: true }); return; }
  } finally {
    button.disabled = false;
    showErrors();
  }
}

// ---- wiring --------------------------------------------------------------------------
function init() {
  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = $('#token-input');
    const value = input.value.trim().replace(/^Bearer\s+/i, '');
    input.value = '';
    if (!value) return;
    connect(value);
  });
  $('#forget-token').addEventListener('click', () => forget());
  $('#banner-close').addEventListener('click', () => { $('#banner').hidden = true; });
  $('#filters').addEventListener('submit', (event) => { event.preventDefault(); refreshView(null, { replace: true }); });
  for (const id of ['#f-from', '#f-to', '#f-platform', '#f-kind']) {
    $(id).addEventListener('change', () => changed());
  }
  $('#f-model').addEventListener('change', () => { state.modelChosen = true; changed(); });
  $('#f-window').addEventListener('change', () => changed(['funnel']));
  // Back, Forward, a pasted link or an edited hash: draw what the URL says.
  window.addEventListener('popstate', followUrl);
  window.addEventListener('hashchange', followUrl);
  $('#format-metric').addEventListener('change', () => render('ads'));
  $('#add-step').addEventListener('click', () => {
    if (state.steps.length >= MAX_STEPS) return;
    state.steps.push('order');
    renderSteps();
    changed(['funnel']);
  });
  $('#reset-steps').addEventListener('click', () => {
    state.steps = [...DEFAULT_STEPS];
    renderSteps();
    changed(['funnel']);
  });
  for (const button of document.querySelectorAll('button[data-csv]')) {
    button.addEventListener('click', () => downloadCsv(button.dataset.csv, button));
  }
  let pending = 0;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = setTimeout(() => { for (const key of ['funnel', 'ads', 'gmv']) render(key); }, 150);
  });
  initFunnelModes(() => load(['funnel']));
  renderSteps();
  applyView(readView());
  const saved = store.get();
  if (saved) connect(saved); else showAuth();
}

init();
