// workflows.js is the catalog ("/workflows") and one workflow
// ("/workflows/{name}"): its YAML, graph, pauses, schedule with its next
// fire times, and a start form built from its input schema.
import { h, replace, path } from './dom.js';
import { get, post, enc, ApiError } from './api.js';
import { setTitle, failure, can } from './ui.js';
import { schemaForm } from './form.js';
import { drawGraph } from './graph.js';

export async function workflowsPage(main) {
  setTitle('Workflows');
  let r;
  try {
    r = await get('/v1/workflows');
  } catch (err) {
    replace(main, h('h1', {}, 'Workflows'), failure(err));
    return;
  }
  const wfs = r.workflows || [];
  replace(main, h('h1', {}, 'Workflows'),
    wfs.length ? h('table', { class: 'grid workflows' },
      h('caption', { class: 'sr-only' }, 'The catalog'),
      h('thead', {}, h('tr', {}, ['Name', 'Version', 'Description'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, wfs.map((w) => h('tr', {},
        h('td', {}, h('a', { href: path('workflows', w.name) }, w.name)),
        h('td', {}, String(w.version || 1)),
        h('td', {}, w.description || '')))))
      : h('p', { class: 'empty' }, 'The catalog is empty.'));
}

export async function workflowPage(main, name) {
  setTitle(name);
  let wf;
  let sch = null;
  try {
    // The schedule is a help: a failure to read it leaves it out.
    const [w, all] = await Promise.all([get('/v1/workflows/' + enc(name)),
      get('/v1/schedules?next=' + NEXT_FIRES).catch(() => ({ schedules: [] }))]);
    wf = w;
    sch = (all.schedules || []).find((x) => x.workflow === w.name) || null;
  } catch (err) {
    replace(main, h('h1', {}, 'Workflow ', h('code', {}, name)), failure(err));
    return;
  }
  // The pauses a person may be asked to answer: the API's list, else the
  // graph's pause nodes.
  const pauses = wf.pauses || (wf.graph && wf.graph.nodes ? wf.graph.nodes.filter((n) => n.kind === 'pause').map((n) => ({ name: n.name, path: n.path })) : []);
  replace(main,
    h('h1', {}, 'Workflow ', h('code', {}, wf.name), ' ', h('span', { class: 'muted' }, 'version ' + (wf.version || 1))),
    wf.description ? h('p', { class: 'description' }, wf.description) : null,
    h('p', {}, h('a', { href: '/?workflow=' + enc(wf.name) }, 'Executions of this workflow')),
    sch ? scheduleView(sch) : null,
    can('start') ? startForm(wf) : h('p', { class: 'muted' }, 'Your role cannot start executions.'),
    h('section', { 'aria-labelledby': 'h-graph' }, h('h2', { id: 'h-graph' }, 'Graph'),
      wf.graph && wf.graph.nodes ? drawGraph(wf.graph, null) : h('p', { class: 'muted' }, 'No graph.')),
    pauses.length ? h('section', { 'aria-labelledby': 'h-pauses' }, h('h2', { id: 'h-pauses' }, 'Pauses'),
      h('ul', {}, pauses.map((p) => h('li', {}, h('code', {}, p.name), p.path ? [' at ', h('code', {}, p.path)] : null,
        p.schema ? h('pre', { class: 'value' }, JSON.stringify(p.schema, null, 2)) : null)))) : null,
    h('section', { 'aria-labelledby': 'h-yaml' }, h('h2', { id: 'h-yaml' }, 'YAML'), h('pre', { class: 'yaml', tabindex: '0' }, wf.yaml || '')));
}

// NEXT_FIRES is how many next fire times a scheduled workflow's page shows.
const NEXT_FIRES = 5;

// scheduleView says when loom serve starts the workflow by itself
// (docs/schedules.md): the schedule, its policies, the last slot decided
// and the next fire times, in the schedule's own time zone.
function scheduleView(s) {
  const last = s.last ? [h('code', {}, s.last.at), ' ', s.last.skipped ? `skipped (${s.last.skipped})`
    : ['started ', h('a', { href: path('executions', s.last.execution_id) }, s.last.execution_id)]] : 'none yet';
  return h('section', { id: 'schedule', 'aria-labelledby': 'h-schedule' }, h('h2', { id: 'h-schedule' }, 'Schedule'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Fires'), h('dd', {}, h('code', {}, s.schedule)),
      h('dt', {}, 'Overlap'), h('dd', {}, s.overlap),
      h('dt', {}, 'Catch-up'), h('dd', {}, s.catch_up),
      h('dt', {}, 'Last slot'), h('dd', {}, last)),
    h('h3', {}, s.due ? 'Due, then next' : 'Next fire times'),
    h('ol', { class: 'next-fires' }, (s.next || []).map((t) => h('li', {}, h('time', { datetime: t }, t)))));
}

function startForm(wf) {
  // SPEC §6 names it "input schema"; the server sends input_schema.
  const schema = wf.input_schema !== undefined ? wf.input_schema : wf.input;
  const form = schemaForm(schema, { legend: 'Input', optional: !schema });
  const idIn = h('input', { id: 'start-id', name: 'id', autocomplete: 'off', maxlength: '128', 'aria-describedby': 'start-id-help' });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Start');
  const msg = h('p', { class: 'form-status', 'aria-live': 'polite' });
  return h('section', { 'aria-labelledby': 'h-start' }, h('h2', { id: 'h-start' }, 'Start an execution'),
    h('form', { class: 'card start-form', novalidate: true, onsubmit: async (ev) => {
      ev.preventDefault();
      const r = form.read();
      if (!r.ok) return;
      btn.disabled = true;
      msg.textContent = 'Starting…';
      const body = { workflow: wf.name };
      if (r.value !== undefined) body.input = r.value;
      if (idIn.value.trim()) body.id = idIn.value.trim();
      try {
        const rec = await post('/v1/executions', body);
        location.assign(path('executions', rec.id));
      } catch (err) {
        msg.textContent = '';
        if (err instanceof ApiError && (err.code === 'invalid_input' || err.code === 'bad_request')) form.showErrors(err.details, err.message);
        else form.showErrors([], err.message);
        btn.disabled = false;
      }
    } },
    form.el,
    h('div', { class: 'field' }, h('label', { for: 'start-id' }, 'Execution id (optional)'), idIn,
      h('p', { class: 'help', id: 'start-id-help' }, 'Give one to make the start idempotent: starting again with the same id and input returns the same execution.')),
    btn, msg));
}
