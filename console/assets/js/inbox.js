// inbox.js is "/pauses": every open pause across executions, oldest
// first, with how long it has waited and the time left to its deadline.
import { h, replace, path } from './dom.js';
import { get, query } from './api.js';
import { setTitle, failure } from './ui.js';
import { timeEl, duration, since } from './format.js';
import { watch, debounce, liveText } from './live.js';

export async function inboxPage(main) {
  setTitle('Inbox');
  const q = new URLSearchParams(location.search);
  const params = { workflow: q.get('workflow') || '', name: q.get('name') || '', limit: 50, cursor: q.get('cursor') || '' };
  const body = h('div', { id: 'inbox' });
  const live = h('p', { class: 'live muted', 'aria-live': 'polite' });
  replace(main, h('h1', {}, 'Inbox'),
    h('p', { class: 'muted' }, 'Open pauses across executions, oldest first: each waits for a person to resume it.'), live, body);
  const load = async () => {
    try {
      const page = await get('/v1/pauses' + query(params));
      replace(body, table(page.pauses || []), next(page.next_cursor));
    } catch (err) {
      replace(body, failure(err));
    }
  };
  await load();
  // A pause opens or closes with its root's state: the list stream of
  // paused roots says when to read the inbox again.
  watch('/v1/executions' + query({ state: 'PAUSED', roots: 'true', workflow: params.workflow, limit: 50 }), {
    onEvent: debounce(load, 300), poll: load, onMode: (mode) => { live.textContent = liveText(mode); },
  });
  // Ages and deadlines tick meanwhile.
  setInterval(() => {
    if (!document.hidden) load();
  }, AGE_MS);
}

// AGE_MS is how often the inbox redraws its ages while nothing changes.
const AGE_MS = 60000;

function table(rows) {
  if (!rows.length) return h('p', { class: 'empty' }, 'No open pauses: nothing waits for a person.');
  const now = Date.now();
  return h('table', { class: 'grid pauses' },
    h('caption', { class: 'sr-only' }, 'Open pauses, oldest first'),
    h('thead', {}, h('tr', {}, ['Workflow', 'Pause', 'Execution', 'Step', 'Waiting for', 'Deadline in', ''].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((p) => {
      const left = p.deadline ? -since(p.deadline, now) : null;
      return h('tr', { 'data-execution': p.execution_id, 'data-path': p.path },
        h('td', {}, p.workflow),
        h('td', {}, h('strong', {}, p.name)),
        h('td', {}, h('a', { href: path('executions', p.execution_id) }, p.execution_id)),
        h('td', {}, h('code', {}, p.path)),
        h('td', {}, duration(since(p.opened_at, now)), ' ', h('span', { class: 'muted' }, '(since ', timeEl(p.opened_at), ')')),
        h('td', { class: left !== null && left < 0 ? 'overdue' : '' },
          left === null ? h('span', { class: 'muted' }, 'no deadline') : left < 0 ? 'overdue by ' + duration(-left) : duration(left)),
        h('td', {}, h('a', { href: path('executions', p.execution_id) + '#resume', class: 'button' }, 'Answer')));
    })));
}

function next(cursor) {
  if (!cursor) return null;
  const q = new URLSearchParams(location.search);
  q.set('cursor', cursor);
  return h('nav', { class: 'pager', 'aria-label': 'Pages' }, h('a', { href: '/pauses?' + q.toString(), rel: 'next' }, 'Next page'));
}
