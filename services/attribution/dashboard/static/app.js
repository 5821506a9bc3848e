/* ClipFunnel dashboard: loading, rendering the cards, filters and wiring. */
import { STEP_LABELS, MIN_STEPS, MAX_STEPS, FORMAT_ORDER, TOP_CONTENTS, NA, LOCALE, $, state, store } from './config.js';
import { isNull, fmtInt, fmtCount, fmtPct, fmtRatio, fmtMoney, fmtDuration, stepLabel, platformLabel, withCurrency, formatLabel, zoneOr, startOfDay, todayIn, addDays, dayLabel } from './format.js';
import { ApiError, request, getJson } from './api.js';
import { el, cardState, fillTable, clearCard } from './dom.js';
import { drawFunnel, drawBars, drawLine } from './charts.js';
import { OPERATION_LOADERS, OPERATION_CARDS, OPERATION_RENDER } from './operations.js';

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
  return query;
}

const reportParams = (f, extra = {}) => ({ from: f.from, to: f.to, model: f.model, ...extra });
const contentParams = (f, extra = {}) => reportParams(f, {
  kind: f.kind, platform: f.platform, ...extra,
});
const seriesParams = (f, metric) => reportParams(f, { metric, interval: 'day' });

const LOADERS = {
  funnel: (f) => getJson('v1/funnels', {}, 'funnel', funnelQuery(f)),
  ads: (f) => getJson('v1/reports/ads', reportParams(f), 'ads report'),
  contents: (f) => getJson('v1/reports/contents', contentParams(f), 'contents report'),
  gmv: (f) => getJson('v1/reports/timeseries', seriesParams(f, 'gmv'), 'GMV time series'),
  orders: (f) => getJson('v1/reports/timeseries', seriesParams(f, 'orders'), 'orders time series'),
  datadriven: async (f) => {
    const [markov, last] = await Promise.all([
      getJson('v1/attribution/data-driven', {
        from: f.from, to: f.to, method: 'markov', channel: 'content', order: 1,
      }, 'data-driven attribution'),
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
  fillTable($('#funnel-table'), [
    { key: 'step', label: 'Step', fmt: (s) => `${s.index + 1}. ${stepLabel(s.type)}` },
    { key: 'users', label: 'Users', numeric: true, fmt: (s) => fmtInt(s.users) },
    { key: 'conversion_from_previous', label: 'From previous', numeric: true, fmt: (s) => fmtPct(s.conversion_from_previous) },
    { key: 'conversion_from_start', label: 'From start', numeric: true, fmt: (s) => fmtPct(s.conversion_from_start) },
    { key: 'median_seconds_from_previous', label: 'Median time', numeric: true, fmt: (s) => fmtDuration(s.median_seconds_from_previous) },
  ], steps.map((s, index) => ({ ...s, index })), (s) => s.index);
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
  fillTable($('#contents-table'), [
    { key: 'content_id', label: 'Content', fmt: (r) => r.content_id },
    { key: 'kind', label: 'Kind', fmt: (r) => (r.kind === 'live' ? 'Live' : r.kind === 'video' ? 'Video' : r.kind || NA) },
    { key: 'platform', label: 'Platform', fmt: (r) => platformLabel(r.platform) },
    { key: 'views', label: 'Views', numeric: true, fmt: (r) => fmtInt(r.views) },
    { key: 'clicks', label: 'Clicks', numeric: true, fmt: (r) => fmtInt(r.clicks) },
    { key: 'ctr', label: 'CTR', numeric: true, fmt: (r) => fmtPct(r.ctr) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
    { key: 'gmv', label: inCurrency('GMV'), numeric: true, fmt: money('gmv') },
    { key: 'gpm', label: inCurrency('GPM'), numeric: true, fmt: money('gpm') },
  ], top, (r) => r.content_id);
  const live = rows.filter((r) => r.kind === 'live');
  cardState('live', live.length ? '' : 'No live room had activity in this range and these filters.');
  fillTable($('#live-table'), [
    { key: 'content_id', label: 'Live room', fmt: (r) => r.content_id },
    { key: 'platform', label: 'Platform', fmt: (r) => platformLabel(r.platform) },
    { key: 'unique_viewers', label: 'Viewers', numeric: true, fmt: (r) => fmtInt(r.unique_viewers) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
    { key: 'gmv', label: inCurrency('GMV'), numeric: true, fmt: money('gmv') },
    { key: 'direct_gmv', label: inCurrency('Direct GMV'), numeric: true, fmt: money('direct_gmv') },
    { key: 'indirect_gmv', label: inCurrency('Indirect GMV'), numeric: true, fmt: money('indirect_gmv') },
    { key: 'gpm', label: inCurrency('GPM'), numeric: true, fmt: money('gpm') },
  ], live, (r) => r.content_id);
}

function renderDataDriven() {
  const data = state.data.datadriven;
  if (!data) { clearCard('datadriven'); return; }
  const { markov, last } = data;
  const currency = markov.currency || currencyOf(last);
  const lastBy = new Map((last.rows || []).map((r) => [r.content_id, r]));
  const rows = markov.channels || [];
  cardState('datadriven', rows.length ? '' : 'No journey with a content touch in this range.');
  fillTable($('#datadriven-table'), [
    { key: 'channel', label: 'Content', fmt: (r) => r.channel },
    { key: 'removal_effect', label: 'Removal effect', numeric: true, fmt: (r) => fmtPct(r.removal_effect) },
    { key: 'conversions', label: 'Markov orders', numeric: true, fmt: (r) => fmtCount(r.conversions) },
    { key: 'revenue', label: withCurrency('Markov GMV', currency), numeric: true, fmt: (r) => fmtMoney(r.revenue) },
    { key: 'last_orders', label: 'Last-touch orders', numeric: true, fmt: (r) => fmtCount((lastBy.get(r.channel) || {}).orders) },
    { key: 'last_gmv', label: withCurrency('Last-touch GMV', currency), numeric: true, fmt: (r) => fmtMoney((lastBy.get(r.channel) || {}).gmv) },
  ], rows, (r) => r.channel);
  fillTable($('#paths-table'), [
    { key: 'path', label: 'Path', fmt: (r) => r.path },
    { key: 'conversions', label: 'Converting', numeric: true, fmt: (r) => fmtInt(r.conversions) },
    { key: 'non_conversions', label: 'Not converting', numeric: true, fmt: (r) => fmtInt(r.non_conversions) },
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
  fillTable($('#timeseries-table'), [
    { key: 'start', label: 'Day', fmt: (r) => dayLabel(r.start, zone, true) },
    { key: 'gmv', label: withCurrency('GMV', currency), numeric: true, fmt: (r) => fmtMoney(r.gmv) },
    { key: 'orders', label: 'Orders', numeric: true, fmt: (r) => fmtCount(r.orders) },
  ], [...days.values()].sort((a, b) => (a.start < b.start ? -1 : 1)), (r) => r.start);
}

const RENDER = {
  funnel: renderFunnel, ads: renderFormats, contents: renderContents,
  gmv: renderTimeseries, orders: renderTimeseries,
  datadriven: renderDataDriven, shops: renderShops,
};
Object.assign(RENDER, OPERATION_RENDER);

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
async function load(keys) {
  if (!state.token) return;
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
  await loadAll();
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
      load(['funnel']);
    });
    const remove = el('button', {
      type: 'button', class: 'icon', 'aria-label': `Remove step ${i + 1}`, title: 'Remove this step',
    }, '×');
    remove.disabled = state.steps.length <= MIN_STEPS;
    remove.addEventListener('click', () => {
      state.steps.splice(i, 1);
      renderSteps();
      load(['funnel']);
    });
    item.append(el('label', { for: id, class: 'sr-only' }, `Step ${i + 1}`), select, remove);
    list.append(item);
  });
  $('#add-step').disabled = state.steps.length >= MAX_STEPS;
}

// ---- CSV -----------------------------------------------------------------------------
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename });
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

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
  $('#filters').addEventListener('submit', (event) => { event.preventDefault(); loadAll(); });
  for (const id of ['#f-from', '#f-to', '#f-platform', '#f-kind']) {
    $(id).addEventListener('change', loadAll);
  }
  $('#f-model').addEventListener('change', () => { state.modelChosen = true; loadAll(); });
  $('#f-window').addEventListener('change', () => load(['funnel']));
  $('#format-metric').addEventListener('change', () => render('ads'));
  $('#add-step').addEventListener('click', () => {
    if (state.steps.length >= MAX_STEPS) return;
    state.steps.push('order');
    renderSteps();
    load(['funnel']);
  });
  $('#reset-steps').addEventListener('click', () => {
    state.steps = [...DEFAULT_STEPS];
    renderSteps();
    load(['funnel']);
  });
  for (const button of document.querySelectorAll('button[data-csv]')) {
    button.addEventListener('click', () => downloadCsv(button.dataset.csv, button));
  }
  let pending = 0;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = setTimeout(() => { for (const key of ['funnel', 'ads', 'gmv']) render(key); }, 150);
  });
  renderSteps();
  const saved = store.get();
  if (saved) connect(saved); else showAuth();
}

init();
