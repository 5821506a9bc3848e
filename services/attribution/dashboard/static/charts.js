/* Charts: the funnel and bars as SVG, daily series with uPlot. */
import { LOCALE } from './config.js';
import { isNull, fmtInt, fmtPct, fmtCompact, fmtDuration, stepLabel, dayLabel } from './format.js';
import { el, svg, mountSvg } from './dom.js';

// ---- charts (hand-written SVG) -------------------------------------------------------------
export function drawFunnel(container, steps) {
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
export function drawBars(container, items, caption) {
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

/** A daily (or per-minute) series with the vendored uPlot (a canvas; global `uPlot`).
 *  points: [{start (ISO), value}]. Each point is also listed for screen readers and tests as a
 *  hidden `data-point` item, since a canvas has no nodes to read. `bands`: optional shaded
 *  [startMs, endMs, label] windows (pinned products on a live room's timeline). */
export function drawLine(container, points, { label, fmt, tz, cls, bands = [], minutes = false }) {
  const width = Math.max(240, Math.floor(container.clientWidth || 600));
  const xs = points.map((p) => Date.parse(p.start) / 1000);
  const ys = points.map((p) => Number(p.value) || 0);
  const when = (sec) => (minutes
    ? new Intl.DateTimeFormat(LOCALE, { timeZone: tz, hour: '2-digit', minute: '2-digit' }).format(new Date(sec * 1000))
    : dayLabel(new Date(sec * 1000).toISOString(), tz));
  const colour = getComputedStyle(container).getPropertyValue('--series') || '#2563eb';
  const figure = el('div', { class: `uplot-wrap ${cls}`, role: 'img', 'aria-label': label });
  const list = el('ul', { class: 'sr-only' });
  points.forEach((p, i) => {
    list.append(el('li', { class: 'dot', 'data-point': i, title: `${minutes ? when(xs[i]) : dayLabel(p.start, tz, true)}: ${fmt(p.value)}` },
      `${minutes ? when(xs[i]) : dayLabel(p.start, tz, true)}: ${fmt(p.value)}`));
  });
  container.replaceChildren(figure, list);
  if (typeof window.uPlot !== 'function' || !points.length) return;
  const shade = {
    hooks: {
      drawClear: [(u) => {
        const { ctx } = u;
        ctx.save();
        bands.forEach(([a, b], i) => {
          const x0 = u.valToPos(a / 1000, 'x', true);
          const x1 = u.valToPos(b / 1000, 'x', true);
          // Neighbouring windows alternate shades, each opened by a line.
          ctx.fillStyle = i % 2 ? 'rgba(124, 58, 237, 0.10)' : 'rgba(234, 88, 12, 0.12)';
          ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          ctx.fillStyle = 'rgba(194, 65, 12, 0.7)';
          ctx.fillRect(x0, u.bbox.top, 2, u.bbox.height);
        });
        ctx.restore();
      }],
    },
  };
  // eslint-disable-next-line new-cap
  new window.uPlot({
    width, height: 190, legend: { show: false }, cursor: { y: false }, plugins: [shade],
    scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
    axes: [
      { values: (u, ticks) => ticks.map(when), stroke: '#475569' },
      { values: (u, ticks) => ticks.map(fmtCompact), stroke: '#475569', size: 52 },
    ],
    series: [{}, { label, stroke: colour.trim() || '#2563eb', width: 2, fill: 'rgba(37, 99, 235, 0.08)', points: { show: points.length < 60 } }],
  }, [xs, ys], figure);
}
