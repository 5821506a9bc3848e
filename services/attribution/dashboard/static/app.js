/* ClipFunnel dashboard: plain ES2020, no dependencies, no build step.
 *
 * The page holds no data. It asks the attribution service's API (same origin) with the bearer
 * token the user pastes, kept in this tab's sessionStorage and sent only in the Authorization
 * header. Every value from the API is written as text (never as HTML); charts are SVG built
 * with DOM calls.
 */
'use strict';

(() => {
  const TOKEN_KEY = 'clipfunnel.token';
  const STEP_LABELS = {
    impression: 'Impression', view: 'View', view_complete: 'Complete view', like: 'Like',
    comment: 'Comment', share: 'Share', follow: 'Follow', click: 'Click',
    add_to_cart: 'Add to cart', live_enter: 'Live enter', live_exit: 'Live exit', order: 'Order',
  };
  const DEFAULT_STEPS = ['impression', 'view', 'click', 'order'];
  const MIN_STEPS = 2;
  const MAX_STEPS = 10;
  const FORMAT_LABELS = { native: 'Native', pre_roll: 'Pre-roll', overlay: 'Overlay', banner: 'Banner' };
  const FORMAT_ORDER = ['native', 'pre_roll', 'overlay', 'banner'];
  const PLATFORM_LABELS = {
    douyin: 'Douyin', kuaishou: 'Kuaishou', tiktok: 'TikTok', instagram: 'Instagram',
    youtube: 'YouTube', wechat_channels: 'WeChat Channels', bilibili: 'Bilibili',
    xiaohongshu: 'Xiaohongshu', other: 'Other',
  };
  const TOP_CONTENTS = 10;
  const REQUEST_TIMEOUT_MS = 120000;
  const NA = '—';
  const LOCALE = navigator.language || 'en-US';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (selector) => document.querySelector(selector);
  const state = {
    token: null,
    settings: null,
    steps: [...DEFAULT_STEPS],
    data: {},
    errors: {},
    tickets: {},
    filters: null,
    modelChosen: false,
  };

  // ---- storage (sessionStorage may be unavailable, e.g. with storage disabled) ----------
  const memory = {};
  const store = {
    get() {
      try { return window.sessionStorage.getItem(TOKEN_KEY); } catch { return memory.token || null; }
    },
    set(value) {
      try { window.sessionStorage.setItem(TOKEN_KEY, value); } catch { memory.token = value; }
    },
    clear() {
      try { window.sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing stored */ }
      delete memory.token;
    },
  };

  // ---- formatting ----------------------------------------------------------------------
  const numberFormats = new Map();
  function nf(min, max, extra = {}) {
    const key = `${min}:${max}:${JSON.stringify(extra)}`;
    if (!numberFormats.has(key)) {
      numberFormats.set(key, new Intl.NumberFormat(LOCALE, {
        minimumFractionDigits: min, maximumFractionDigits: max, ...extra,
      }));
    }
    return numberFormats.get(key);
  }
  const isNull = (v) => v === null || v === undefined || v === '';
  const fmtInt = (v) => (isNull(v) ? NA : nf(0, 0).format(Number(v)));
  const fmtCount = (v) => (isNull(v) ? NA : nf(0, 2).format(Number(v)));
  const fmtPct = (v) => (isNull(v) ? NA : `${nf(2, 2).format(Number(v) * 100)}%`);
  const fmtRatio = (v) => (isNull(v) ? NA : `${nf(2, 2).format(Number(v))}×`);
  const fmtCompact = (v) => nf(0, 1, { notation: 'compact' }).format(v);

  function decimalsOf(text) {
    if (/e/i.test(text)) return 2;
    const dot = text.indexOf('.');
    return dot < 0 ? 0 : text.length - dot - 1;
  }

  /** A decimal string from the API, grouped for reading, its decimals kept, then the currency. */
  function fmtMoney(v, currency) {
    if (isNull(v)) return NA;
    const text = String(v);
    const digits = Math.min(decimalsOf(text), 6);
    const amount = nf(digits, digits).format(Number(text));
    return currency ? `${amount} ${currency}` : amount;
  }

  function fmtDuration(v) {
    if (isNull(v)) return NA;
    const s = Math.round(Number(v));
    if (s < 60) return `${s}s`;
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (s < 3600) return `${m}m ${s % 60}s`;
    if (s < 86400) return `${h}h ${m}m`;
    return `${d}d ${h}h`;
  }

  const stepLabel = (type) => STEP_LABELS[type] || type;
  const platformLabel = (p) => (isNull(p) ? NA : PLATFORM_LABELS[p] || p);
  const withCurrency = (label, currency) => (currency ? `${label} (${currency})` : label);
  const formatLabel = (f) => (isNull(f) ? 'Not in catalog yet' : FORMAT_LABELS[f] || f);

  // ---- dates in the tenant's time zone ---------------------------------------------------
  function zoneOr(tz) {
    try { new Intl.DateTimeFormat('en-US', { timeZone: tz }); return tz; } catch { return 'UTC'; }
  }

  function partsIn(ms, tz) {
    const f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    const parts = {};
    for (const { type, value } of f.formatToParts(new Date(ms))) parts[type] = value;
    return parts;
  }

  function offsetMs(ms, tz) {
    const p = partsIn(ms, tz);
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
    return asUtc - Math.floor(ms / 1000) * 1000;
  }

  /** Midnight starting `day` (YYYY-MM-DD) in `tz`, as a UTC ISO instant. */
  function startOfDay(day, tz) {
    const [y, m, d] = day.split('-').map(Number);
    const guess = Date.UTC(y, m - 1, d);
    let t = guess - offsetMs(guess, tz);
    const again = guess - offsetMs(t, tz);
    if (again !== t) t = again;
    return new Date(t).toISOString();
  }

  function todayIn(tz) {
    const p = partsIn(Date.now(), tz);
    return `${p.year}-${p.month}-${p.day}`;
  }

  function addDays(day, n) {
    const [y, m, d] = day.split('-').map(Number);
    return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
  }

  function dayLabel(iso, tz, withYear = false) {
    const opts = { timeZone: tz, month: 'short', day: 'numeric' };
    if (withYear) opts.year = 'numeric';
    return new Intl.DateTimeFormat(LOCALE, opts).format(new Date(iso));
  }

  // ---- the API -------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, status = 0) {
      super(message);
      this.status = status;
    }
  }

  const sentence = (text) => (text && !/[.!?]$/.test(text) ? `${text}.` : text || '');

  function networkError() {
    return new ApiError(
      `Cannot reach the ClipFunnel attribution service at ${window.location.origin}: the request ` +
      'failed before any answer came back. Check that the services are running (make run starts ' +
      'them), then press Refresh.', 0);
  }

  async function problemOf(res, what) {
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

  async function request(path, { params = {}, body = null, accept = 'application/json', what }) {
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

  async function getJson(path, params, what, body = null) {
    const res = await request(path, { params, body, what });
    try {
      return await res.json();
    } catch {
      throw new ApiError(`The answer for ${what} was not valid JSON.`, res.status);
    }
  }

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
  };
  // Each card: the loads it shows, and the key of its status line.
  const CARDS = {
    'funnel-card': [['funnel'], 'funnel'],
    'formats-card': [['ads'], 'ads'],
    'timeseries-card': [['gmv', 'orders'], 'timeseries'],
    'contents-card': [['contents'], 'contents'],
    'live-card': [['contents'], 'live'],
  };

  // ---- DOM helpers ---------------------------------------------------------------------
  function el(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function mountSvg(container, height, label) {
    const width = Math.max(240, Math.floor(container.clientWidth || 600));
    const root = svg('svg', {
      width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label,
    });
    container.replaceChildren(root);
    return [root, width];
  }

  function cardState(key, text, kind = '') {
    const node = document.querySelector(`.card-state[data-for="${key}"]`);
    if (!node) return;
    node.textContent = text;
    node.className = `card-state ${kind}`.trim();
    node.hidden = !text;
  }

  /** columns: [{key, label, fmt(row), numeric}]; every cell carries data-col for tests and CSS. */
  function fillTable(table, columns, rows, rowKey) {
    const caption = table.querySelector('caption');
    const head = el('thead');
    const tr = el('tr');
    for (const c of columns) tr.append(el('th', { scope: 'col', class: c.numeric ? 'num' : '' }, c.label));
    head.append(tr);
    const bodyNode = el('tbody');
    for (const row of rows) {
      const line = el('tr', { 'data-row': rowKey(row) });
      columns.forEach((c, i) => {
        const cell = el(i === 0 ? 'th' : 'td', {
          'data-col': c.key, class: c.numeric ? 'num' : '',
        }, c.fmt(row));
        if (i === 0) cell.setAttribute('scope', 'row');
        line.append(cell);
      });
      bodyNode.append(line);
    }
    table.replaceChildren(...(caption ? [caption] : []), head, bodyNode);
  }

  function clearCard(key) {
    const ids = {
      funnel: ['funnel-chart', 'funnel-table'], ads: ['formats-chart', 'formats-table'],
      contents: ['contents-table'], live: ['live-table'],
      timeseries: ['gmv-chart', 'orders-chart', 'timeseries-table'],
    }[key] || [];
    for (const id of ids) {
      const node = document.getElementById(id);
      const caption = node.querySelector('caption');
      node.replaceChildren(...(caption ? [caption] : []));
    }
  }

  // ---- charts (hand-written SVG) -------------------------------------------------------------
  function drawFunnel(container, steps) {
    const rowH = 68;
    const label = `Funnel chart: ${steps.map((s) => `${stepLabel(s.type)} ${fmtInt(s.users)}`).join(', ')}`;
    const [root, width] = mountSvg(container, steps.length * rowH, label);
    const max = Math.max(1, ...steps.map((s) => s.users));
    const narrow = width < 440;
    steps.forEach((s, i) => {
      const y = i * rowH;
      const g = svg('g', { class: 'funnel-step', 'data-step': i });
      g.append(svg('title', {}, `${stepLabel(s.type)}: ${fmtInt(s.users)} users`));
      g.append(svg('text', { x: 0, y: y + 14, class: 'lbl' }, `${i + 1}. ${stepLabel(s.type)}`));
      g.append(svg('text', { x: width, y: y + 14, class: 'val', 'text-anchor': 'end' }, fmtInt(s.users)));
      const w = Math.max(2, (s.users / max) * width);
      g.append(svg('rect', {
        x: (width - w) / 2, y: y + 21, width: w, height: 22, rx: 3, class: `bar c${i % 6}`,
      }));
      let sub;
      if (i === 0) {
        sub = 'viewers who start the funnel';
      } else if (narrow) {
        sub = `${fmtPct(s.conversion_from_previous)} of previous · median ${fmtDuration(s.median_seconds_from_previous)}`;
      } else {
        sub = `${fmtPct(s.conversion_from_previous)} of previous · ${fmtPct(s.conversion_from_start)} of start · ` +
          `median ${fmtDuration(s.median_seconds_from_previous)}`;
      }
      g.append(svg('text', { x: 0, y: y + 58, class: 'sub' }, sub));
      root.append(g);
    });
  }

  /** Horizontal bars: items [{key, label, value (number|null), text, highlight}]. */
  function drawBars(container, items, caption) {
    const rowH = 30;
    const [root, width] = mountSvg(container, items.length * rowH + 4, caption);
    const labelW = 78;
    const valueW = 110;
    const span = Math.max(40, width - labelW - valueW);
    const max = Math.max(0, ...items.map((it) => (isNull(it.value) ? 0 : it.value)));
    items.forEach((it, i) => {
      const y = i * rowH + 2;
      const g = svg('g', { class: 'bar-row', 'data-key': it.key });
      g.append(svg('text', { x: 0, y: y + 18, class: 'lbl' }, it.label));
      const w = isNull(it.value) || max <= 0 ? 0 : Math.max(2, (it.value / max) * span);
      g.append(svg('rect', {
        x: labelW, y: y + 5, width: w, height: 18, rx: 3, class: it.highlight ? 'bar c0' : 'bar muted',
      }));
      g.append(svg('text', { x: labelW + w + 6, y: y + 18, class: 'val' }, it.text));
      root.append(g);
    });
  }

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    const power = 10 ** Math.floor(Math.log10(raw));
    const f = raw / power;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
  }

  function drawLine(container, points, { label, fmt, tz, cls }) {
    const height = 190;
    const [root, width] = mountSvg(container, height, label);
    const m = { l: 52, r: 14, t: 10, b: 26 };
    const plotW = width - m.l - m.r;
    const plotH = height - m.t - m.b;
    const values = points.map((p) => Number(p.value) || 0);
    const step = niceStep(Math.max(0, ...values) / 4);
    const top = step * Math.max(1, Math.ceil(Math.max(0, ...values) / step));
    const x = (i) => m.l + (points.length <= 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
    const y = (v) => m.t + plotH - (v / top) * plotH;
    for (let v = 0; v <= top + step / 2; v += step) {
      root.append(svg('line', { x1: m.l, x2: width - m.r, y1: y(v), y2: y(v), class: 'gridline' }));
      root.append(svg('text', { x: m.l - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmtCompact(v)));
    }
    const every = Math.max(1, Math.ceil(points.length / Math.max(1, Math.floor(plotW / 64))));
    points.forEach((p, i) => {
      if (i % every === 0) {
        root.append(svg('text', { x: x(i), y: height - 8, class: 'axis', 'text-anchor': 'middle' }, dayLabel(p.start, tz)));
      }
    });
    if (points.length) {
      const line = points.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(values[i]).toFixed(1)}`).join('');
      const area = `${line}L${x(points.length - 1).toFixed(1)},${y(0)}L${x(0).toFixed(1)},${y(0)}Z`;
      root.append(svg('path', { d: area, class: `area ${cls}` }));
      root.append(svg('path', { d: line, class: `line ${cls}` }));
      points.forEach((p, i) => {
        const dot = svg('circle', { cx: x(i), cy: y(values[i]), r: 2.5, class: `dot ${cls}` });
        dot.append(svg('title', {}, `${dayLabel(p.start, tz, true)}: ${fmt(p.value)}`));
        root.append(dot);
      });
    }
  }

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
  };

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

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
