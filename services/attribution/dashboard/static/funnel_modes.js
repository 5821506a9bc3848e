/* The funnel card's modes: order, optional steps, held properties and exclusions (read into
 * the funnel request), the time-to-convert histogram, the conversion trend and the download
 * of the users who dropped off. */
import { STEP_LABELS, $, state } from './config.js';
import { fmtInt, fmtPct, fmtDuration, stepLabel } from './format.js';
import { request, getJson, ApiError } from './api.js';
import { el, svg, mountSvg, cardState } from './dom.js';
import { drawLine } from './charts.js';

const MAX_EXCLUSIONS = 5;
const modes = { optional: new Set(), exclusions: [], lastQuery: null };

// ---- the controls → the request --------------------------------------------------------
/** The funnel request with the card's modes added (the steps' order, optional flags,
 *  held properties and exclusions). */
export function withModes(query) {
  const order = $('#f-order') ? $('#f-order').value : 'ordered';
  const last = query.steps.length - 1;
  const inOrder = order !== 'unordered';
  const steps = query.steps.map((step, i) => (
    inOrder && i > 0 && i < last && modes.optional.has(i) ? { ...step, optional: true } : step));
  const out = { ...query, steps };
  if (order !== 'ordered') out.order = order;
  const hold = [...document.querySelectorAll('#hold input[name="hold"]:checked')].map((c) => c.value);
  if (hold.length) out.hold_constant = hold;
  const required = (i) => !steps[i] || !steps[i].optional;
  const exclusions = modes.exclusions.filter((x) => (
    x.from < x.to && x.to <= last && required(x.from) && required(x.to)));
  if (inOrder && exclusions.length) {
    out.exclusions = exclusions.map((x) => ({ type: x.type, from_step: x.from, to_step: x.to }));
  }
  return out;
}

/** The step-dependent controls: optional flags, exclusion steps, the drop-off step. */
export function syncSteps(steps) {
  const last = steps.length - 1;
  for (const i of [...modes.optional]) if (i <= 0 || i >= last) modes.optional.delete(i);
  const box = $('#optional-steps');
  if (box) {
    box.replaceChildren();
    steps.forEach((type, i) => {
      if (i === 0 || i === last) return;
      const id = `optional-${i}`;
      const input = el('input', { type: 'checkbox', id, 'data-step': i });
      input.checked = modes.optional.has(i);
      input.addEventListener('change', () => {
        if (input.checked) modes.optional.add(i); else modes.optional.delete(i);
        modes.reload();
      });
      const item = el('span', { class: 'check' });
      item.append(input, el('label', { for: id }, `${i + 1}. ${stepLabel(type)} optional`));
      box.append(item);
    });
  }
  modes.exclusions = modes.exclusions.filter((x) => x.to <= last);
  renderExclusions(steps);
  const dropped = $('#dropped-step');
  if (dropped) {
    const keep = Number(dropped.value) || last;
    dropped.replaceChildren(...steps.slice(1).map((type, j) => new Option(
      `${j + 2}. ${stepLabel(type)}`, String(j + 1), false, j + 1 === Math.min(keep, last))));
  }
}

function stepOptions(steps, chosen, from, to) {
  return steps.map((type, i) => new Option(`${i + 1}. ${stepLabel(type)}`, String(i), false, i === chosen))
    .slice(from, to);
}

function renderExclusions(steps) {
  const list = $('#exclusions');
  if (!list) return;
  list.replaceChildren();
  modes.exclusions.forEach((x, n) => {
    const type = el('select', { id: `exclusion-type-${n}`, 'aria-label': `Exclusion ${n + 1} event` });
    for (const [value, text] of Object.entries(STEP_LABELS)) type.append(new Option(text, value, false, value === x.type));
    const from = el('select', { id: `exclusion-from-${n}`, 'aria-label': `Exclusion ${n + 1} after step` });
    from.append(...stepOptions(steps, x.from, 0, steps.length - 1));
    const to = el('select', { id: `exclusion-to-${n}`, 'aria-label': `Exclusion ${n + 1} before step` });
    to.append(...stepOptions(steps, x.to, 1, steps.length));
    const change = () => {
      x.type = type.value;
      x.from = Number(from.value);
      x.to = Math.max(Number(to.value), x.from + 1);
      renderExclusions(state.steps);
      modes.reload();
    };
    for (const node of [type, from, to]) node.addEventListener('change', change);
    const remove = el('button', {
      type: 'button', class: 'icon', 'aria-label': `Remove exclusion ${n + 1}`, title: 'Remove this exclusion',
    }, '×');
    remove.addEventListener('click', () => {
      modes.exclusions.splice(n, 1);
      renderExclusions(state.steps);
      modes.reload();
    });
    const item = el('li');
    item.append(type, el('span', {}, ' between '), from, el('span', {}, ' and '), to, remove);
    list.append(item);
  });
  const add = $('#add-exclusion');
  if (add) add.disabled = modes.exclusions.length >= MAX_EXCLUSIONS;
}

// ---- loading: the funnel with its time to convert and trend -----------------------------
/** The funnel answer, with `modes` = {timeToConvert, trend} (or their errors) beside it. */
export async function loadFunnel(query) {
  modes.lastQuery = query;
  const interval = $('#f-trend-interval') ? $('#f-trend-interval').value : 'day';
  const timed = query.order === 'unordered' ? null
    : getJson('v1/funnels/time-to-convert', {}, 'time to convert', query);
  const trend = getJson('v1/funnels/trends', {}, 'conversion trend', { ...query, interval });
  const funnel = getJson('v1/funnels', {}, 'funnel', query);
  const [main, ttc, line] = await Promise.allSettled([funnel, timed, trend]);
  if (main.status === 'rejected') throw main.reason;
  const part = (r) => (r.status === 'fulfilled' ? { value: r.value } : { error: r.reason });
  return { ...main.value, modes: { timeToConvert: part(ttc), trend: { ...part(line), interval } } };
}

// ---- rendering ---------------------------------------------------------------------------
export function drawHistogram(container, answer) {
  const bins = (answer && answer.bins) || [];
  const rowH = 24;
  const label = `Time to convert: ${fmtInt(answer ? answer.users : 0)} users, median ${fmtDuration(answer && answer.median_seconds)}`;
  const [root, width] = mountSvg(container, Math.max(1, bins.length) * rowH + 4, label);
  const max = Math.max(1, ...bins.map((b) => b.users));
  const labelW = 150;
  const span = Math.max(40, width - labelW - 60);
  bins.forEach((b, i) => {
    const y = i * rowH + 2;
    const g = svg('g', { class: 'bin', 'data-bin': i, 'data-users': b.users });
    const range = `${fmtDuration(b.from_seconds)} – ${fmtDuration(b.to_seconds)}`;
    g.append(svg('title', {}, `${range}: ${fmtInt(b.users)} users`));
    g.append(svg('text', { x: 0, y: y + 15, class: 'lbl' }, range));
    const w = b.users ? Math.max(2, (b.users / max) * span) : 0;
    g.append(svg('rect', { x: labelW, y: y + 3, width: w, height: 16, rx: 2, class: 'bar c2' }));
    g.append(svg('text', { x: labelW + w + 6, y: y + 15, class: 'val' }, fmtInt(b.users)));
    root.append(g);
  });
}

export function drawTrend(container, answer, tz) {
  const points = ((answer && answer.points) || []).map((p) => ({
    start: p.period_start, value: p.conversion_rate === null ? 0 : p.conversion_rate,
  }));
  drawLine(container, points, {
    label: 'Conversion rate per period', fmt: (v) => fmtPct(v), tz, cls: 'trend',
  });
}

/** Draws the card's mode parts from the funnel answer (see loadFunnel). */
export function renderFunnelModes(data, tz) {
  const extra = (data && data.modes) || {};
  const ttc = extra.timeToConvert || {};
  if (ttc.value) {
    cardState('ttc', ttc.value.users ? `${fmtInt(ttc.value.users)} users converted · median ${fmtDuration(ttc.value.median_seconds)} · mean ${fmtDuration(ttc.value.average_seconds)}`
      : 'No user converted in this range.');
    drawHistogram($('#ttc-chart'), ttc.value);
  } else {
    $('#ttc-chart').replaceChildren();
    cardState('ttc', ttc.error ? ttc.error.message : 'An any-order funnel has no time to convert.');
  }
  const trend = extra.trend || {};
  if (trend.value) {
    cardState('trend', trend.value.points.length ? '' : 'No period in this range.');
    drawTrend($('#trend-chart'), trend.value, tz);
  } else {
    $('#trend-chart').replaceChildren();
    cardState('trend', trend.error ? trend.error.message : '');
  }
}

// ---- download of the users who dropped off ---------------------------------------------
async function downloadDropped(button) {
  if (!modes.lastQuery) return;
  const step = Number($('#dropped-step').value) || modes.lastQuery.steps.length - 1;
  button.disabled = true;
  try {
    const res = await request('v1/funnels/users', {
      params: { format: 'csv' },
      body: { ...modes.lastQuery, step, status: 'dropped', limit: 10000 },
      accept: 'text/csv',
      what: 'users who dropped off',
    });
    const url = URL.createObjectURL(await res.blob());
    const link = el('a', { href: url, download: `clipfunnel-dropped-before-step-${step + 1}.csv` });
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    cardState('dropped', '');
  } catch (err) {
    cardState('dropped', err instanceof ApiError ? err.message : `The download failed: ${err}`, 'error');
  } finally {
    button.disabled = false;
  }
}

/** Wires the controls; `reload()` asks for the funnel again. */
export function initFunnelModes(reload) {
  modes.reload = reload;
  $('#f-order').addEventListener('change', reload);
  $('#f-trend-interval').addEventListener('change', reload);
  for (const box of document.querySelectorAll('#hold input[name="hold"]')) box.addEventListener('change', reload);
  $('#add-exclusion').addEventListener('click', () => {
    if (modes.exclusions.length >= MAX_EXCLUSIONS) return;
    const last = state.steps.length - 1;
    modes.exclusions.push({ type: 'like', from: 0, to: last });
    renderExclusions(state.steps);
    reload();
  });
  $('#download-dropped').addEventListener('click', (event) => downloadDropped(event.currentTarget));
}
