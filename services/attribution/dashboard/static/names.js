/* Names instead of ids: a content's title, an account's handle and platform, an ad's name.
 * The id stays on hover (title attribute) and in every CSV. */
import { NA } from './config.js';
import { isNull, platformLabel, formatLabel } from './format.js';
import { el } from './dom.js';

export const contentName = (row) => (row && row.title) || (row && row.content_id) || NA;

export function accountName(handle, platform) {
  const who = isNull(handle) ? '' : `@${String(handle).replace(/^@/, '')}`;
  const where = isNull(platform) ? '' : platformLabel(platform);
  return [who, where].filter(Boolean).join(' · ') || NA;
}

/** An ad: its name, else its format on its content's title, else its id. */
export function adName(row) {
  if (!row) return NA;
  if (row.ad_name) return row.ad_name;
  if (row.content_title) return `${formatLabel(row.format)} · ${row.content_title}`;
  return row.ad_id || NA;
}

/** A link to one of the dashboard's pages (keyboard- and new-tab-friendly). */
export function link(text, href, hover) {
  const a = el('a', { href, class: 'drill' }, text);
  if (hover) a.title = hover;
  return a;
}

/** content id → title, from any answers with rows of contents (or ads with content titles). */
export function titlesFrom(...answers) {
  const titles = new Map();
  for (const answer of answers) {
    for (const row of (answer && answer.rows) || []) {
      if (row.content_id && row.title) titles.set(row.content_id, row.title);
      if (row.content_id && row.content_title && !titles.has(row.content_id)) {
        titles.set(row.content_id, row.content_title);
      }
    }
  }
  return titles;
}
