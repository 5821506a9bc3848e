/* The choices of the page's fixed <select>s, one list per select (value, label); the markup
 * keeps each <select> with its <label>. Imported first by app.js, so every select is filled
 * before any module reads or restores a value. */
import { PLATFORM_LABELS } from './config.js';

const CHOICES = {
  'f-platform': [['', 'All platforms'], ...Object.entries(PLATFORM_LABELS)],
  'f-kind': [['', 'Videos and live'], ['video', 'Videos'], ['live', 'Live streams']],
  'f-model': [
    ['last_touch', 'Last touch'], ['first_touch', 'First touch'], ['linear', 'Linear'],
    ['time_decay', 'Time decay'], ['position_based', 'Position based'],
  ],
  'f-window': [
    ['3600', '1 hour'], ['86400', '1 day'], ['604800', '7 days'], ['1209600', '14 days'],
    ['2592000', '30 days'],
  ],
  'f-order': [
    ['ordered', 'Steps in order'], ['strict', 'Strict: nothing in between'], ['unordered', 'Any order'],
  ],
  'f-trend-interval': [['day', 'Per day'], ['week', 'Per week']],
  'format-metric': [['roas', 'ROAS'], ['ctr', 'CTR'], ['cvr', 'CVR'], ['cpa', 'CPA']],
  'scorecard-level': [['account', 'Account'], ['content', 'Content'], ['campaign', 'Campaign']],
  'scorecard-group': [
    ['consumer', 'Consumer'], ['cost', 'Cost'], ['convenience', 'Convenience'],
    ['communication', 'Communication'],
  ],
};
/** The choice a select starts on where it is not the first. */
const DEFAULTS = { 'f-window': '604800' };

for (const [id, choices] of Object.entries(CHOICES)) {
  const select = document.getElementById(id);
  for (const [value, label] of choices) {
    const chosen = DEFAULTS[id] === value;
    select.append(new Option(label, value, chosen, chosen));
  }
}
