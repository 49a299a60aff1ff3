// executions.js is the executions list at "/": filters in the address,
// pages by cursor, live through the list stream.
import { h, replace, path } from './dom.js';
import { get, query } from './api.js';
import { setTitle, failure } from './ui.js';
import { stateBadge, timeEl, waitingSummary, labelsView } from './format.js';
import { watch, debounce, liveText } from './live.js';

const STATES = ['RUNNING', 'PAUSED', 'WAITING', 'COMPLETED', 'FAILED', 'CANCELLED'];

// filtersOf reads the page's filters from its address.
function filtersOf(search) {
  const q = new URLSearchParams(search);
  return {
    state: q.get('state') || '',
    workflow: q.get('workflow') || '',
    id_prefix: q.get('id_prefix') || '',
    label: q.getAll('label').filter(Boolean),
    created_after: q.get('created_after') || '',
    created_before: q.get('created_before') || '',
    children: q.get('children') === '1',
    cursor: q.get('cursor') || '',
  };
}

// apiFilters turns the page's filters into /v1/executions parameters.
function apiFilters(f) {
  return {
    state: f.state, workflow: f.workflow, id_prefix: f.id_prefix, label: f.label,
    created_after: toRFC3339(f.created_after), created_before: toRFC3339(f.created_before),
    roots: f.children ? '' : 'true',
  };
}

// toRFC3339 reads a datetime-local value as UTC.
function toRFC3339(v) {
  if (!v) return '';
  const d = new Date(/Z|[+-]\d\d:\d\d$/.test(v) ? v : v + 'Z');
  return isNaN(d) ? v : d.toISOString();
}

export async function executionsPage(main) {
  setTitle('Executions');
  const f = filtersOf(location.search);
  const body = h('div', { id: 'list' });
  const live = h('p', { class: 'live muted', 'aria-live': 'polite' });
  replace(main, h('h1', {}, 'Executions'), filterForm(f), live, body);
  const load = async () => {
    try {
      const page = await get('/v1/executions' + query(Object.assign(apiFilters(f), { limit: 50, cursor: f.cursor })));
      replace(body, damagedNotice(page.damaged || []), table(page.executions || []), pager(f, page.next_cursor));
    } catch (err) {
      replace(body, failure(err));
    }
  };
  await load();
  if (f.cursor) {
    live.textContent = 'Later pages do not update by themselves; go back to the first page for live updates.';
    return;
  }
  const refresh = debounce(load, 300);
  watch('/v1/executions' + query(Object.assign(apiFilters(f), { limit: 50 })), {
    onEvent: refresh, onDamaged: refresh, poll: load, onMode: (mode) => { live.textContent = liveText(mode); },
  });
}

function filterForm(f) {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const stateSel = h('select', { id: 'f-state', name: 'state' },
    h('option', { value: '' }, 'any'),
    STATES.map((s) => h('option', { value: s, selected: s === f.state }, s)));
  const wfList = h('datalist', { id: 'f-workflows' });
  get('/v1/workflows').then((r) => {
    for (const w of r.workflows || []) wfList.append(h('option', { value: w.name }));
  }).catch(() => {});
  return h('form', { class: 'filters', method: 'get', action: '/', role: 'search', 'aria-label': 'Filter executions' },
    field('f-state', 'State', stateSel),
    field('f-workflow', 'Workflow', h('input', { id: 'f-workflow', name: 'workflow', value: f.workflow, list: 'f-workflows', autocomplete: 'off' })),
    wfList,
    field('f-id', 'Id starts with', h('input', { id: 'f-id', name: 'id_prefix', value: f.id_prefix, autocomplete: 'off' })),
    field('f-label', 'Label (key:value)', h('input', { id: 'f-label', name: 'label', value: f.label[0] || '', placeholder: 'team:billing', autocomplete: 'off' })),
    field('f-after', 'Created after (UTC)', h('input', { id: 'f-after', name: 'created_after', type: 'datetime-local', value: f.created_after })),
    field('f-before', 'Created before (UTC)', h('input', { id: 'f-before', name: 'created_before', type: 'datetime-local', value: f.created_before })),
    h('div', { class: 'field check' },
      h('input', { id: 'f-children', name: 'children', type: 'checkbox', value: '1', checked: f.children }),
      h('label', { for: 'f-children' }, 'Show child executions')),
    h('div', { class: 'field actions' }, h('button', { type: 'submit', class: 'primary' }, 'Filter'), ' ', h('a', { href: '/' }, 'Clear')));
}

// damagedNotice names the records the journal could not read: a list
// never leaves one out silently (as loom list names them and exits 1).
function damagedNotice(rows) {
  if (!rows.length) return null;
  const n = rows.length === 1 ? '1 execution' : rows.length + ' executions';
  return h('div', { class: 'alert damaged', role: 'alert' },
    h('p', {}, `The journal is damaged: ${n} could not be read and ${rows.length === 1 ? 'is' : 'are'} left out of this list. `,
      h('code', {}, 'loom doctor'), ' checks the whole journal and says what can be recovered.'),
    h('ul', {}, rows.map((r) => h('li', {}, h('code', {}, r.id), ': ' + r.problem))));
}

function table(rows) {
  if (!rows.length) return h('p', { class: 'empty' }, 'No executions match.');
  return h('table', { class: 'grid executions' },
    h('caption', { class: 'sr-only' }, 'Executions, newest first'),
    h('thead', {}, h('tr', {}, ['Id', 'Workflow', 'State', 'Waiting on', 'Labels', 'Created', 'Updated'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-id': r.id, 'data-state': r.state },
      h('td', {}, h('a', { href: path('executions', r.id) }, r.id), r.parent_id ? h('span', { class: 'muted' }, ' (child)') : null),
      h('td', {}, r.workflow),
      h('td', {}, stateBadge(r.state)),
      h('td', { class: 'waiting' }, waitingSummary(r)),
      h('td', {}, labelsView(r.labels)),
      h('td', {}, timeEl(r.created_at)),
      h('td', {}, timeEl(r.updated_at))))));
}

function pager(f, next) {
  const links = [];
  if (f.cursor) {
    const q = new URLSearchParams(location.search);
    q.delete('cursor');
    const s = q.toString();
    links.push(h('a', { href: '/' + (s ? '?' + s : '') }, 'First page'));
  }
  if (next) {
    const q = new URLSearchParams(location.search);
    q.set('cursor', next);
    links.push(h('a', { href: '/?' + q.toString(), rel: 'next' }, 'Next page'));
  }
  return links.length ? h('nav', { class: 'pager', 'aria-label': 'Pages' }, links.flatMap((l, i) => (i ? [' · ', l] : [l]))) : null;
}
