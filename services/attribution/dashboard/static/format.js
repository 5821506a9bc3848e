/* Number, money, duration and label formatting; dates in the tenant's time zone. */
import { STEP_LABELS, FORMAT_LABELS, PLATFORM_LABELS, NA, LOCALE } from './config.js';

// ---- formatting ----------------------------------------------------------------------
export const numberFormats = new Map();
export function nf(min, max, extra = {}) {
  const key = `${min}:${max}:${JSON.stringify(extra)}`;
  if (!numberFormats.has(key)) {
    numberFormats.set(key, new Intl.NumberFormat(LOCALE, {
      minimumFractionDigits: min, maximumFractionDigits: max, ...extra,
    }));
  }
  return numberFormats.get(key);
}
export const isNull = (v) => v === null || v === undefined || v === '';
export const fmtInt = (v) => (isNull(v) ? NA : nf(0, 0).format(Number(v)));
export const fmtCount = (v) => (isNull(v) ? NA : nf(0, 2).format(Number(v)));
export const fmtPct = (v) => (isNull(v) ? NA : `${nf(2, 2).format(Number(v) * 100)}%`);
export const fmtRatio = (v) => (isNull(v) ? NA : `${nf(2, 2).format(Number(v))}×`);
export const fmtCompact = (v) => nf(0, 1, { notation: 'compact' }).format(v);

export function decimalsOf(text) {
  if (/e/i.test(text)) return 2;
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}

/** A decimal string from the API, grouped for reading, its decimals kept, then the currency. */
export function fmtMoney(v, currency) {
  if (isNull(v)) return NA;
  const text = String(v);
  const digits = Math.min(decimalsOf(text), 6);
  const amount = nf(digits, digits).format(Number(text));
  return currency ? `${amount} ${currency}` : amount;
}

export function fmtDuration(v) {
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

export const stepLabel = (type) => STEP_LABELS[type] || type;
export const platformLabel = (p) => (isNull(p) ? NA : PLATFORM_LABELS[p] || p);
export const withCurrency = (label, currency) => (currency ? `${label} (${currency})` : label);
export const formatLabel = (f) => (isNull(f) ? 'Not in catalog yet' : FORMAT_LABELS[f] || f);

// ---- dates in the tenant's time zone ---------------------------------------------------
export function zoneOr(tz) {
  try { new Intl.DateTimeFormat('en-US', { timeZone: tz }); return tz; } catch { return 'UTC'; }
}

export function partsIn(ms, tz) {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const parts = {};
  for (const { type, value } of f.formatToParts(new Date(ms))) parts[type] = value;
  return parts;
}

export function offsetMs(ms, tz) {
  const p = partsIn(ms, tz);
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour % 24, +p.minute, +p.second);
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** Midnight starting `day` (YYYY-MM-DD) in `tz`, as a UTC ISO instant. */
export function startOfDay(day, tz) {
  const [y, m, d] = day.split('-').map(Number);
  const guess = Date.UTC(y, m - 1, d);
  let t = guess - offsetMs(guess, tz);
  const again = guess - offsetMs(t, tz);
  if (again !== t) t = again;
  return new Date(t).toISOString();
}

export function todayIn(tz) {
  const p = partsIn(Date.now(), tz);
  return `${p.year}-${p.month}-${p.day}`;
}

export function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

export function dayLabel(iso, tz, withYear = false) {
  const opts = { timeZone: tz, month: 'short', day: 'numeric' };
  if (withYear) opts.year = 'numeric';
  return new Intl.DateTimeFormat(LOCALE, opts).format(new Date(iso));
}
