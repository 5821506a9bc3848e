/* Change against the previous period of equal length: the range, the change badge, the tiles. */
import { NA } from './config.js';
import {
  isNull, nf, fmtMoney, fmtPct, fmtRatio, fmtCount, fmtInt, fmtDuration, stepLabel, addDays, startOfDay,
} from './format.js';
import { el, fillTable } from './dom.js';

const DAY_MS = 86400000;

/** The filters of the period just before `f`, as many whole local days long. */
export function previousFilters(f, zone) {
  const days = Math.round((Date.parse(`${f.toDay}T00:00:00Z`) - Date.parse(`${f.fromDay}T00:00:00Z`)) / DAY_MS) + 1;
  const fromDay = addDays(f.fromDay, -days);
  const toDay = addDays(f.fromDay, -1);
  return { ...f, fromDay, toDay, from: startOfDay(fromDay, zone), to: f.from };
}

/** How a figure prints, and which way is good: `up` (GMV, ROAS), `down` (CPA, spend per order). */
const KINDS = {
  money: { text: (v) => fmtMoney(Number(v).toFixed(2)), diff: (d) => nf(2, 2).format(d) },
  pct: { text: fmtPct, diff: (d) => `${nf(2, 2).format(d * 100)} pp` },
  ratio: { text: fmtRatio, diff: (d) => `${nf(2, 2).format(d)}×` },
  count: { text: fmtCount, diff: (d) => nf(0, 2).format(d) },
  int: { text: fmtInt, diff: (d) => nf(0, 0).format(d) },
};

const signed = (text, d) => (d > 0 ? `+${text}` : d < 0 ? `−${text.replace(/^-/, '')}` : text);

/** A badge: "▲ +12.34% (+1,234.00)", classed good/bad/flat by whether the move is welcome. */
export function changeBadge(current, previous, { kind = 'count', better = 'up' } = {}) {
  const spec = KINDS[kind];
  const badge = el('span', { class: 'delta flat', 'data-trend': 'none' });
  if (isNull(current) || isNull(previous)) {
    badge.textContent = NA;
    badge.title = 'No figure to compare in one of the two periods';
    return badge;
  }
  const cur = Number(current);
  const prev = Number(previous);
  const d = cur - prev;
  const absText = signed(spec.diff(Math.abs(d)), d);
  let pctText;
  if (prev === 0) pctText = d === 0 ? '0%' : 'new';
  else pctText = signed(`${nf(1, 1).format(Math.abs(d / prev) * 100)}%`, d);
  const arrow = d > 0 ? '▲' : d < 0 ? '▼' : '■';
  const trend = d === 0 || better === null ? 'flat' : (d > 0) === (better === 'up') ? 'good' : 'bad';
  badge.className = `delta ${trend}`;
  badge.dataset.trend = d === 0 ? 'same' : trend;
  badge.dataset.change = String(d);
  badge.textContent = `${arrow} ${pctText} (${absText})`;
  const verdict = trend === 'good' ? ', better' : trend === 'bad' ? ', worse' : '';
  badge.title = `Previous period: ${spec.text(previous)}`;
  badge.setAttribute('aria-label', `${badge.textContent} against ${spec.text(previous)} in the previous period${verdict}`);
  return badge;
}

/** A table column showing the change of `metric` for a row against its match in `previous`. */
export function changeColumn({ key, label = 'vs previous', metric, kind, better, previous, match }) {
  return {
    key, label, numeric: true,
    fmt: (row) => {
      if (!previous) return NA;
      const before = match(row, previous);
      return changeBadge(row[metric], before ? before[metric] : 0, { kind, better });
    },
  };
}

/** A funnel's steps as a table: users, conversion from the previous step (and from the
 *  first with `fromStart`), median time from the previous step, and the users' change
 *  against the `before` funnel's steps. */
export function fillStepsTable(table, steps, before, { fromStart = false } = {}) {
  fillTable(table, [
    { key: 'step', label: 'Step', fmt: (s) => `${s.index + 1}. ${stepLabel(s.type)}` },
    { key: 'users', label: 'Users', numeric: true, fmt: (s) => fmtInt(s.users) },
    { key: 'conversion_from_previous', label: 'From previous', numeric: true, fmt: (s) => fmtPct(s.conversion_from_previous) },
    ...(fromStart ? [{ key: 'conversion_from_start', label: 'From start', numeric: true, fmt: (s) => fmtPct(s.conversion_from_start) }] : []),
    { key: 'median_seconds_from_previous', label: 'Median time', numeric: true, fmt: (s) => fmtDuration(s.median_seconds_from_previous) },
    changeColumn({
      key: 'users_change', label: 'Users vs previous', metric: 'users', kind: 'int', better: 'up',
      previous: before && before.steps, match: (s, prev) => prev[s.index],
    }),
  ], steps.map((s, index) => ({ ...s, index })), (s) => s.index);
}

/** Metric tiles: [{key, label, value (text), current, previous, kind, better}]. */
export function drawTiles(container, tiles) {
  container.replaceChildren(...tiles.map((t) => {
    const tile = el('div', { class: 'tile', 'data-tile': t.key, role: 'group', 'aria-label': t.label });
    tile.append(
      el('span', { class: 'tile-label' }, t.label),
      el('span', { class: 'tile-value' }, t.value),
      changeBadge(t.current, t.previous, { kind: t.kind, better: t.better }),
    );
    return tile;
  }));
}

/** Σ of one field over rows (money strings or numbers). */
export const total = (rows, key) => (rows || []).reduce((sum, r) => sum + (Number(r[key]) || 0), 0);
export const ratioOf = (a, b) => (b ? a / b : null);
