// ui.js holds what every page shares: the session's role, the title,
// and how a failed request shows.
import { h } from './dom.js';
import { ApiError } from './api.js';

const ROLES = { read: 1, start: 2, operate: 3 };

// session is who the page acts for; can(role) says whether a button shows
// (the server checks anyway).
export const session = { auth: false, name: '', role: '' };
export function can(role) {
  return (ROLES[session.role] || 0) >= ROLES[role];
}

// setTitle names the page for the tab and for screen readers.
export function setTitle(t) {
  document.title = t ? `${t} · Loom` : 'Loom';
}

// failure shows a refused or failed request in the page.
export function failure(err) {
  const msg = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  return h('p', { class: 'alert', role: 'alert' }, msg);
}

