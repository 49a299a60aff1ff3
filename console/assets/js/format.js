// format.js renders states, times, durations and values as text.
import { h } from './dom.js';

// A state is told by a word and a symbol, not by colour alone.
const STATES = {
  RUNNING: ['▶', 'running'],
  PAUSED: ['‖', 'paused'],
  WAITING: ['◔', 'waiting'],
  COMPLETED: ['✓', 'completed'],
  FAILED: ['✗', 'failed'],
  CANCELLED: ['⊘', 'cancelled'],
};

export function stateBadge(state) {
  const [sym, cls] = STATES[state] || ['?', 'unknown'];
  return h('span', { class: ['state', 'state-' + cls] }, h('span', { 'aria-hidden': 'true' }, sym + ' '), state || 'UNKNOWN');
}

// Step statuses of the graph and timeline.
const STEPS = {
  done: '✓', running: '▶', paused: '‖', waiting: '◔', failed: '✗', skipped: '↷',
  compensated: '↺', retrying: '↻', pending: '·', cancelled: '⊘',
};

export function stepSymbol(status) {
  return STEPS[status] || '';
}

export function stepBadge(status) {
  return h('span', { class: ['step', 'step-' + status] }, h('span', { 'aria-hidden': 'true' }, stepSymbol(status) + ' '), status);
}

export function time(t) {
  if (!t) return '';
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function timeEl(t) {
  return h('time', { datetime: t || '', title: t || '' }, time(t));
}

// duration renders milliseconds as "1h 2m", "3.4 s", "120 ms".
export function duration(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '';
  const neg = ms < 0;
  let s = Math.abs(ms);
  let out;
  if (s < 1000) out = Math.round(s) + ' ms';
  else if (s < 60000) out = (s / 1000).toFixed(s < 10000 ? 1 : 0) + ' s';
  else {
    s = Math.round(s / 1000);
    const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    out = [d && d + 'd', hh && hh + 'h', m && m + 'm', !d && !hh && sec && sec + 's'].filter(Boolean).join(' ');
  }
  return neg ? '-' + out : out;
}

export function since(t, now) {
  return (now || Date.now()) - new Date(t).getTime();
}

// COLLAPSE is the size past which a value is collapsed and offered as a
// download (SPEC §7: 64 KiB).
export const COLLAPSE = 64 * 1024;

// valueView shows a JSON value as pretty text; a big one is collapsed
// behind a button and a download link.
export function valueView(v, label) {
  if (v === undefined) return h('p', { class: 'muted' }, 'none');
  const text = JSON.stringify(v, null, 2);
  if (text.length <= COLLAPSE) return h('pre', { class: 'value', tabindex: '0', 'aria-label': label || 'value' }, text);
  const pre = h('pre', { class: 'value', tabindex: '0', hidden: true }, '');
  const dl = h('a', { download: (label || 'value') + '.json' }, 'Download');
  dl.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const btn = h('button', { type: 'button', onclick: () => {
    pre.textContent = text;
    pre.hidden = false;
    btn.remove();
  } }, `Show (${Math.round(text.length / 1024)} KiB)`);
  return h('div', { class: 'collapsed' }, h('p', {}, `This value is ${Math.round(text.length / 1024)} KiB. `, btn, ' ', dl), pre);
}

export function errorView(err) {
  if (!err) return null;
  return h('dl', { class: 'error-box' },
    h('dt', {}, 'Type'), h('dd', {}, h('code', {}, err.type || '')),
    h('dt', {}, 'Message'), h('dd', { class: 'error-message' }, err.message || ''),
    err.step ? [h('dt', {}, 'Failing step'), h('dd', {}, h('code', { class: 'error-step' }, err.step))] : null,
    err.data !== undefined && err.data !== null ? [h('dt', {}, 'Data'), h('dd', {}, valueView(err.data, 'error data'))] : null);
}

export function labelsView(labels) {
  const ks = Object.keys(labels || {}).sort();
  if (!ks.length) return null;
  return h('ul', { class: 'labels' }, ks.map((k) => h('li', {}, h('code', {}, k + '=' + labels[k]))));
}

// pauseWords says what a paused execution waits for, for list rows.
export function waitingSummary(rec) {
  if (rec.state === 'PAUSED' && rec.pauses && rec.pauses.length) {
    const names = [...new Set(rec.pauses.map((p) => p.name))];
    return 'waits for a person: ' + names.join(', ');
  }
  const w = rec.waiting_on || [];
  if (w.length) return w.map((x) => x.detail || x.kind).join('; ');
  return '';
}
