/* Constants, the shared page state and the token's storage. */

export const TOKEN_KEY = 'clipfunnel.token';
export const STEP_LABELS = {
  impression: 'Impression', view: 'View', view_complete: 'Complete view', like: 'Like',
  comment: 'Comment', share: 'Share', follow: 'Follow', click: 'Click',
  add_to_cart: 'Add to cart', live_enter: 'Live enter', live_exit: 'Live exit', order: 'Order',
};
export const DEFAULT_STEPS = ['impression', 'view', 'click', 'order'];
export const MIN_STEPS = 2;
export const MAX_STEPS = 10;
export const FORMAT_LABELS = { native: 'Native', pre_roll: 'Pre-roll', overlay: 'Overlay', banner: 'Banner' };
export const FORMAT_ORDER = ['native', 'pre_roll', 'overlay', 'banner'];
export const PLATFORM_LABELS = {
  douyin: 'Douyin', kuaishou: 'Kuaishou', tiktok: 'TikTok', instagram: 'Instagram',
  youtube: 'YouTube', wechat_channels: 'WeChat Channels', bilibili: 'Bilibili',
  xiaohongshu: 'Xiaohongshu', other: 'Other',
};
export const TOP_CONTENTS = 10;
export const REQUEST_TIMEOUT_MS = 120000;
export const NA = '—';
export const LOCALE = navigator.language || 'en-US';
export const SVG_NS = 'http://www.w3.org/2000/svg';
export const $ = (selector) => document.querySelector(selector);
export const state = {
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
export const memory = {};
export const store = {
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
