/* Content operations cards: an experiment's result, the interactions report, the 4C scorecard.
 *
 * app.js registers OPERATION_LOADERS, OPERATION_CARDS and OPERATION_RENDER with its own; the
 * pickers inside these cards (experiment, scorecard level and group) reload or redraw their
 * card themselves, and their CSV buttons download the API's own CSV. */
import { NA, $, state } from './config.js';
import { isNull, nf, fmtInt, fmtPct, fmtRatio, fmtMoney, fmtDuration, withCurrency } from './format.js';
import { ApiError, request, getJson } from './api.js';
import { el, svg, mountSvg, cardState, fillTable, saveBlob } from './dom.js';

// ---- loading ---------------------------------------------------------------------------
const range = (f) => ({ from: f.from, to: f.to });
const experimentParam = () => ($('#experiment-pick') && $('#experiment-pick').value) || '';
const scorecardLevel = () => ($('#scorecard-level') && $('#scorecard-level').value) || 'account';

async function loadExperiment() {
  const { experiments } = await getJson('v1/experiments', {}, 'experiments');
  const wanted = experimentParam();
  const chosen = experiments.find((e) => e.experiment_id === wanted) || experiments[0] || null;
  const results = chosen ? await getJson(
    `v1/experiments/${encodeURIComponent(chosen.experiment_id)}/results`, {}, 'experiment results',
  ) : null;
  return { experiments, chosen, results };
}

export const OPERATION_LOADERS = {
  experiment: () => loadExperiment(),
  interactions: (f) => getJson('v1/reports/interactions', range(f), 'interactions report'),
  scorecard: (f) => getJson('v1/reports/scorecard', { ...range(f), level: scorecardLevel() }, 'scorecard'),
};

export const OPERATION_CARDS = {
  'experiment-card': [['experiment'], 'experiment'],
  'interactions-card': [['interactions'], 'interactions'],
  'scorecard-card': [['scorecard'], 'scorecard'],
};

// ---- the experiment --------------------------------------------------------------------
const METRIC_LABELS = {
  click_rate: 'Click rate', order_rate: 'Order rate', completion_rate: 'Completion rate',
  engagement_rate: 'Engagement rate', gmv_per_viewer: 'GMV per viewer',
};
const wholePct = (v) => `${nf(0, 0).format(Number(v) * 100)} %`;
const signedPct = (v) => (isNull(v) ? NA : `${Number(v) > 0 ? '+' : ''}${nf(1, 1).format(Number(v) * 100)}%`);
const interval = (ci) => (ci ? `${signedPct(ci[0])} … ${signedPct(ci[1])}` : NA);
const pValue = (p) => (p < 0.001 ? '< 0.001' : nf(3, 3).format(p));

/** "B is better with 97 % chance; p = 0.066 — not yet significant at 5 %". */
export function verdict(control, variant) {
  const vs = variant.vs_control || {};
  if (isNull(vs.chance_to_win) || isNull(vs.p_value)) {
    return `Not enough data yet to compare ${variant.key} with ${control.key}.`;
  }
  const better = vs.chance_to_win >= 0.5;
  const who = better ? `${variant.key} is better` : `${variant.key} is worse`;
  const chance = better ? vs.chance_to_win : 1 - vs.chance_to_win;
  const significant = vs.p_value < 0.05 ? 'significant at 5 %' : 'not yet significant at 5 %';
  return `${who} with ${wholePct(chance)} chance; p = ${pValue(vs.p_value)} — ${significant}`;
}

function drawIntervals(container, variants) {
  const rows = variants.filter((v) => v.vs_control && v.vs_control.ci95);
  if (!rows.length) { container.replaceChildren(); return; }
  const rowH = 34;
  const label = `Relative lift with its 95% interval: ${rows.map((v) => `${v.key} ${interval(v.vs_control.ci95)}`).join(', ')}`;
  const [root, width] = mountSvg(container, rows.length * rowH + 24, label);
  const lows = rows.map((v) => v.vs_control.ci95[0]);
  const highs = rows.map((v) => v.vs_control.ci95[1]);
  const lo = Math.min(0, ...lows);
  const hi = Math.max(0, ...highs);
  const pad = (hi - lo) * 0.1 || 0.1;
  const left = 60;
  const x = (v) => left + ((v - (lo - pad)) / (hi - lo + 2 * pad)) * (width - left - 10);
  root.append(svg('line', { x1: x(0), x2: x(0), y1: 0, y2: rows.length * rowH, class: 'gridline' }));
  root.append(svg('text', { x: x(0), y: rows.length * rowH + 16, class: 'sub', 'text-anchor': 'middle' }, 'no change'));
  rows.forEach((v, i) => {
    const y = i * rowH + rowH / 2;
    const [a, b] = v.vs_control.ci95;
    const g = svg('g', { class: 'interval', 'data-variant': v.key });
    g.append(svg('title', {}, `${v.key}: ${signedPct(v.vs_control.relative_lift)} (95% ${interval(v.vs_control.ci95)})`));
    g.append(svg('text', { x: 0, y: y + 4, class: 'lbl' }, v.key));
    g.append(svg('line', { x1: x(a), x2: x(b), y1: y, y2: y, class: 'ci', stroke: 'currentColor', 'stroke-width': 3 }));
    g.append(svg('circle', { cx: x(v.vs_control.relative_lift), cy: y, r: 5, class: 'point' }));
    root.append(g);
  });
}

function fillPicker(experiments, chosen) {
  const pick = $('#experiment-pick');
  pick.replaceChildren(...experiments.map((e) => new Option(
    `${e.name} (${e.experiment_id})`, e.experiment_id, false, chosen && e.experiment_id === chosen.experiment_id,
  )));
  pick.disabled = experiments.length === 0;
}

function renderExperiment() {
  const data = state.data.experiment;
  const table = $('#experiment-table');
  if (!data) { table.replaceChildren(); $('#experiment-verdicts').replaceChildren(); return; }
  const { experiments, chosen, results } = data;
  fillPicker(experiments, chosen);
  if (!results) {
    cardState('experiment', 'No experiment yet: PUT /v1/experiments/{id} with two cuts of a video (see the README).');
    table.replaceChildren();
    $('#experiment-verdicts').replaceChildren();
    $('#experiment-intervals').replaceChildren();
    return;
  }
  const money = results.metric === 'gmv_per_viewer';
  const [control, ...others] = results.variants;
  const notes = [...(results.warnings || [])];
  if (results.mixed_exposure) notes.push(`${fmtInt(results.mixed_exposure)} viewers saw several variants and are left out.`);
  cardState('experiment', notes.join(' '));
  $('#experiment-metric').textContent = `${METRIC_LABELS[results.metric] || results.metric}` +
    (chosen.hypothesis ? ` · ${chosen.hypothesis}` : '');
  $('#experiment-verdicts').replaceChildren(...others.map((v) => el('p', {
    class: 'verdict', 'data-variant': v.key,
  }, verdict(control, v))));
  const vs = (v, key, fmt) => (v.vs_control ? fmt(v.vs_control[key]) : NA);
  fillTable(table, [
    { key: 'key', label: 'Variant', fmt: (v) => (v === control ? `${v.key} (control)` : v.key) },
    { key: 'units', label: 'Viewers', numeric: true, fmt: (v) => fmtInt(v.units) },
    money
      ? { key: 'sum', label: withCurrency('GMV', results.currency), numeric: true, fmt: (v) => fmtMoney(v.sum) }
      : { key: 'conversions', label: 'Converted', numeric: true, fmt: (v) => fmtInt(v.conversions) },
    money
      ? { key: 'mean', label: withCurrency('Per viewer', results.currency), numeric: true, fmt: (v) => (isNull(v.mean) ? NA : nf(2, 2).format(v.mean)) }
      : { key: 'rate', label: 'Rate', numeric: true, fmt: (v) => fmtPct(v.rate) },
    { key: 'relative_lift', label: 'Lift', numeric: true, fmt: (v) => vs(v, 'relative_lift', signedPct) },
    { key: 'ci95', label: '95% interval', numeric: true, fmt: (v) => vs(v, 'ci95', interval) },
    { key: 'p_value', label: 'p-value', numeric: true, fmt: (v) => vs(v, 'p_value', (p) => (isNull(p) ? NA : pValue(p))) },
    { key: 'chance_to_win', label: 'Chance to win', numeric: true, fmt: (v) => vs(v, 'chance_to_win', fmtPct) },
  ], results.variants, (v) => v.key);
  drawIntervals($('#experiment-intervals'), results.variants);
}

// ---- interactions ----------------------------------------------------------------------
function renderInteractions() {
  const data = state.data.interactions;
  if (!data) { $('#interactions-table').replaceChildren(); $('#interactions-totals').replaceChildren(); return; }
  const t = data.totals;
  cardState('interactions', t.comments || t.dms ? '' : 'No comment or DM in this range.');
  const facts = [
    ['comments', 'Comments', fmtInt(t.comments)],
    ['reply_rate_1h', 'Answered within 1 h', fmtPct(t.reply_rate_1h)],
    ['reply_rate_24h', 'Answered within 24 h', fmtPct(t.reply_rate_24h)],
    ['median_reply_seconds', 'Median reply time', fmtDuration(t.median_reply_seconds)],
    ['unanswered_over_24h', 'Waiting over 24 h', fmtInt(t.unanswered_over_24h)],
    ['dms', 'DMs', fmtInt(t.dms)],
    ['dm_reply_rate', 'DMs answered', fmtPct(t.dm_reply_rate)],
  ];
  $('#interactions-totals').replaceChildren(...facts.map(([key, label, value]) => {
    const item = el('div', { class: 'fact', 'data-fact': key });
    item.append(el('dt', {}, label), el('dd', {}, value));
    return item;
  }));
  fillTable($('#interactions-table'), [
    { key: 'account_id', label: 'Account', fmt: (r) => r.account_id },
    { key: 'comments', label: 'Comments', numeric: true, fmt: (r) => fmtInt(r.comments) },
    { key: 'reply_rate_1h', label: 'Within 1 h', numeric: true, fmt: (r) => fmtPct(r.reply_rate_1h) },
    { key: 'reply_rate_24h', label: 'Within 24 h', numeric: true, fmt: (r) => fmtPct(r.reply_rate_24h) },
    { key: 'median_reply_seconds', label: 'Median reply', numeric: true, fmt: (r) => fmtDuration(r.median_reply_seconds) },
    { key: 'p90_reply_seconds', label: 'p90 reply', numeric: true, fmt: (r) => fmtDuration(r.p90_reply_seconds) },
    { key: 'unanswered_over_24h', label: 'Waiting > 24 h', numeric: true, fmt: (r) => fmtInt(r.unanswered_over_24h) },
    { key: 'dms', label: 'DMs', numeric: true, fmt: (r) => fmtInt(r.dms) },
    { key: 'dm_reply_rate', label: 'DMs answered', numeric: true, fmt: (r) => fmtPct(r.dm_reply_rate) },
    { key: 'median_dm_reply_seconds', label: 'Median DM reply', numeric: true, fmt: (r) => fmtDuration(r.median_dm_reply_seconds) },
  ], data.accounts || [], (r) => r.account_id);
}

// ---- the 4C scorecard ------------------------------------------------------------------
const GROUPS = {
  consumer: [['completion_rate', 'Completion'], ['engagement_rate', 'Engagement'], ['follow_rate', 'Follow rate'], ['click_rate', 'Click rate']],
  cost: [['cpm', 'CPM'], ['cpc', 'CPC'], ['cpa', 'CPA'], ['cost_per_engaged_view', 'Per engagement'], ['roas', 'ROAS']],
  convenience: [['cart_to_order_rate', 'Cart → order'], ['median_seconds_to_order', 'Median time to order'], ['direct_gmv_share', 'Live-room GMV share'], ['product_card_order_share', 'Product-card orders']],
  communication: [['comment_reply_rate', 'Reply rate'], ['median_reply_seconds', 'Median reply'], ['comments_per_1000_views', 'Comments / 1,000 views'], ['share_rate', 'Share rate']],
};
const MONEY = new Set(['cpm', 'cpc', 'cpa', 'cost_per_engaged_view']);

export function scoreText(metric, value) {
  if (isNull(value)) return NA;
  if (MONEY.has(metric)) return fmtMoney(value);
  if (metric === 'roas') return fmtRatio(value);
  if (metric.startsWith('median_')) return fmtDuration(value);
  if (metric === 'comments_per_1000_views') return nf(1, 1).format(Number(value));
  return fmtPct(value);
}

const percentileText = (p) => (isNull(p) ? '' : ` · P${nf(0, 0).format(p)}`);
const changeText = (c) => (isNull(c) ? '' : ` · ${signedPct(c)}`);

function renderScorecard() {
  const data = state.data.scorecard;
  if (!data) { $('#scorecard-table').replaceChildren(); return; }
  const group = $('#scorecard-group').value;
  const items = data.items || [];
  cardState('scorecard', items.length ? (data.warnings || []).join(' ') : 'No item had events, orders or spend in this range.');
  const money = (label, metric) => (MONEY.has(metric) ? withCurrency(label, data.currency) : label);
  fillTable($('#scorecard-table'), [
    { key: 'item', label: { account: 'Account', content: 'Content', campaign: 'Campaign' }[data.level], fmt: (i) => (i.name ? `${i.name} (${i.id})` : i.id) },
    ...GROUPS[group].map(([metric, label]) => ({
      key: metric, label: money(label, metric), numeric: true,
      fmt: (i) => {
        const s = i[group][metric];
        return `${scoreText(metric, s.value)}${percentileText(s.percentile)}${changeText(s.change)}`;
      },
    })),
  ], items, (i) => i.id);
}

export const OPERATION_RENDER = {
  experiment: renderExperiment, interactions: renderInteractions, scorecard: renderScorecard,
};

// ---- the cards' own controls -----------------------------------------------------------
async function reload(key, what) {
  const card = document.getElementById(`${key}-card`);
  card.setAttribute('aria-busy', 'true');
  card.dataset.state = 'loading';
  cardState(key, 'Loading…', 'loading');
  try {
    state.data[key] = await OPERATION_LOADERS[key](state.filters);
    cardState(key, '');
    OPERATION_RENDER[key]();
    card.dataset.state = 'ready';
  } catch (err) {
    const message = err instanceof ApiError ? err.message : `Loading ${what} failed: ${err}`;
    cardState(key, message, 'error');
    card.dataset.state = 'error';
  } finally {
    card.setAttribute('aria-busy', 'false');
  }
}

async function downloadCsv(kind, button) {
  const f = state.filters;
  if (!f) return;
  const data = state.data.experiment;
  const jobs = {
    experiment: data && data.chosen
      ? [`v1/experiments/${encodeURIComponent(data.chosen.experiment_id)}/results`, {}, `clipfunnel-experiment-${data.chosen.experiment_id}.csv`]
      : null,
    interactions: ['v1/reports/interactions', range(f), `clipfunnel-interactions-${f.fromDay}_${f.toDay}.csv`],
    scorecard: ['v1/reports/scorecard', { ...range(f), level: scorecardLevel() }, `clipfunnel-scorecard-${scorecardLevel()}-${f.fromDay}_${f.toDay}.csv`],
  };
  if (!jobs[kind]) return;
  const [path, params, filename] = jobs[kind];
  button.disabled = true;
  try {
    const res = await request(path, { params: { ...params, format: 'csv' }, accept: 'text/csv', what: `${kind} CSV` });
    saveBlob(await res.blob(), filename);
  } catch (err) {
    cardState(kind, err instanceof ApiError ? err.message : `The download failed: ${err}`, 'error');
  } finally {
    button.disabled = false;
  }
}

function wire() {
  const pick = $('#experiment-pick');
  if (!pick) return;
  pick.addEventListener('change', () => reload('experiment', 'the experiment'));
  $('#scorecard-level').addEventListener('change', () => reload('scorecard', 'the scorecard'));
  $('#scorecard-group').addEventListener('change', () => renderScorecard());
  for (const button of document.querySelectorAll('button[data-ops-csv]')) {
    button.addEventListener('click', () => downloadCsv(button.dataset.opsCsv, button));
  }
}

wire();
