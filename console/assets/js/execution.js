// execution.js is "/executions/{id}": the record in words, what it waits
// for, input/output/error, parent and children, the graph of its pinned
// definition with each step's status, a timeline, the raw journal, and the
// resume, cancel and rerun actions. It stays live while the execution runs.
import { h, replace, path } from './dom.js';
import { get, post, query, enc, newKey, ApiError } from './api.js';
import { setTitle, failure, can } from './ui.js';
import { stateBadge, timeEl, valueView, errorView, labelsView, duration, time } from './format.js';
import { schemaForm } from './form.js';
import { drawGraph } from './graph.js';
import { statuses } from './status.js';
import { drawTimeline } from './timeline.js';
import { watch, debounce } from './live.js';

const MAX_EVENTS = 20000; // read for the graph and timeline; the journal pages itself
const JOURNAL_PAGE = 100;
const CHILDREN_PAGE = 20;
const FINISHED = ['COMPLETED', 'FAILED', 'CANCELLED'];

export async function executionPage(main, id) {
  setTitle(id);
  const base = '/v1/executions/' + enc(id);
  const st = { rec: null, events: [], truncated: false, def: null };
  const parts = {
    head: h('div'), actions: h('div', { id: 'actions' }), values: h('div'), family: h('div'),
    graph: h('div', { id: 'graph' }), timeline: h('div', { id: 'timeline' }), journal: h('div', { id: 'journal' }), yaml: h('div'),
  };
  replace(main, parts.head, parts.actions, parts.values, parts.family,
    h('section', { 'aria-labelledby': 'h-graph' }, h('h2', { id: 'h-graph' }, 'Graph'), parts.graph),
    h('section', { 'aria-labelledby': 'h-tl' }, h('h2', { id: 'h-tl' }, 'Timeline'), parts.timeline),
    h('section', { 'aria-labelledby': 'h-j' }, h('h2', { id: 'h-j' }, 'Journal'), parts.journal),
    parts.yaml);
  try {
    st.rec = await get(base);
  } catch (err) {
    replace(main, h('h1', {}, 'Execution ', h('code', {}, id)), failure(err));
    return;
  }
  const loadEvents = async () => {
    let after = st.events.length ? st.events[st.events.length - 1].seq : 0;
    for (;;) {
      const page = await get(`${base}/events` + query({ after, limit: 1000 }));
      const evs = page.events || [];
      st.events.push(...evs);
      if (evs.length) after = evs[evs.length - 1].seq;
      if (!page.has_more || !evs.length) break;
      if (st.events.length >= MAX_EVENTS) {
        st.truncated = true;
        break;
      }
    }
  };
  const [, def] = await Promise.all([loadEvents().catch(() => {}), get(base + '/definition').catch((err) => ({ error: err }))]);
  st.def = def;

  const renderAll = () => {
    renderHead(parts.head, st.rec);
    renderActions(parts.actions, st.rec, base, onRecord);
    renderValues(parts.values, st.rec);
    renderGraph(parts.graph, st);
    replace(parts.timeline, drawTimeline(st.events, st.rec));
  };
  const onRecord = (rec) => {
    if (!rec) return;
    st.rec = rec;
    renderAll();
  };
  renderAll();
  if (location.hash === '#resume') {
    // From the inbox's Answer: the section exists only now, so go there.
    const first = document.querySelector('#resume input, #resume select, #resume textarea');
    if (first) first.focus();
  }
  renderFamily(parts.family, st.rec);
  journalPage(parts.journal, base, 0);
  renderYAML(parts.yaml, st.def);

  if (FINISHED.includes(st.rec.state) && !st.truncated) return;
  const refreshRecord = debounce(async () => {
    try {
      onRecord(await get(base));
    } catch (err) { /* the next event or poll tries again */ }
  }, 200);
  const rerender = debounce(renderAll, 150);
  const after = st.events.length ? st.events[st.events.length - 1].seq : 0;
  const stop = watch(`${base}/events` + query({ after }), {
    onEvent: (ev) => {
      if (st.events.length && ev.seq <= st.events[st.events.length - 1].seq) return;
      st.events.push(ev);
      rerender();
      refreshRecord();
    },
    onEnd: (rec) => {
      if (rec && rec.id) onRecord(rec);
      else refreshRecord();
    },
    poll: async () => {
      try {
        await loadEvents();
        onRecord(await get(base));
        if (FINISHED.includes(st.rec.state)) stop();
      } catch (err) { /* try again at the next tick */ }
    },
  });
}

function renderHead(el, rec) {
  const waits = waitingWords(rec);
  replace(el,
    h('h1', {}, 'Execution ', h('code', { class: 'exec-id' }, rec.id)),
    h('p', { class: 'status-line' }, stateBadge(rec.state), ' ',
      h('span', { id: 'waiting', class: 'waiting' }, waits.length ? waits.join(' ') : '')),
    h('dl', { class: 'facts' },
      fact('Workflow', h('a', { href: path('workflows', rec.workflow) }, rec.workflow), ' ', h('span', { class: 'muted' }, 'version ' + rec.version)),
      fact('Created', timeEl(rec.created_at)),
      fact('Updated', timeEl(rec.updated_at)),
      rec.started_by ? fact('Started by', rec.started_by) : null,
      rec.wake_at ? fact('Wakes at', timeEl(rec.wake_at)) : null,
      rec.takeovers ? fact('Takeovers', String(rec.takeovers)) : null,
      rec.labels && Object.keys(rec.labels).length ? fact('Labels', labelsView(rec.labels)) : null,
      rec.parent_id ? fact('Parent', h('a', { href: path('executions', rec.parent_id) }, rec.parent_id)) : null,
      rec.root_id && rec.root_id !== rec.id && rec.root_id !== rec.parent_id ? fact('Root', h('a', { href: path('executions', rec.root_id) }, rec.root_id)) : null));
}

function fact(k, ...v) {
  return [h('dt', {}, k), h('dd', {}, ...v)];
}

// waitingWords says in words what the execution waits for: the server's
// waiting_on sentences, else what the record itself tells.
function waitingWords(rec) {
  const out = [];
  if (rec.cancel_requested && !FINISHED.includes(rec.state)) out.push('Cancel requested: compensations run, then it becomes CANCELLED.');
  for (const w of rec.waiting_on || []) out.push(w.detail || w.kind);
  if (!out.length && rec.state === 'PAUSED' && rec.pauses) {
    for (const p of rec.pauses) out.push(`Waiting for a person to resume pause ${p.name} at ${p.path}${p.deadline ? ' (deadline ' + time(p.deadline) + ')' : ''}.`);
  }
  if (!out.length && rec.state === 'WAITING' && rec.wake_at) out.push(`Waiting for a timer until ${time(rec.wake_at)}.`);
  return out;
}

function renderValues(el, rec) {
  replace(el,
    h('section', { 'aria-labelledby': 'h-in' }, h('h2', { id: 'h-in' }, 'Input'), valueView(rec.input, 'input')),
    rec.state === 'COMPLETED' ? h('section', { 'aria-labelledby': 'h-out' }, h('h2', { id: 'h-out' }, 'Output'), h('div', { id: 'output' }, valueView(rec.output, 'output'))) : null,
    rec.error ? h('section', { 'aria-labelledby': 'h-err' }, h('h2', { id: 'h-err' }, 'Error'), h('div', { id: 'error' }, errorView(rec.error))) : null);
}

function renderActions(el, rec, base, onRecord) {
  const blocks = [];
  const pauses = rec.state === 'PAUSED' ? rec.pauses || [] : [];
  if (pauses.length && can('operate')) {
    blocks.push(h('section', { id: 'resume', 'aria-labelledby': 'h-resume' }, h('h2', { id: 'h-resume' }, pauses.length > 1 ? 'Open pauses' : 'Open pause'),
      pauses.map((p) => resumeForm(rec, p, onRecord))));
  } else if (pauses.length) {
    blocks.push(h('section', { id: 'resume' }, h('h2', {}, 'Open pause'),
      h('p', { class: 'muted' }, `Waiting for pause ${pauses.map((p) => p.name).join(', ')}. Your role (read${can('start') ? ', start' : ''}) cannot resume it; a person with the operate role can.`)));
  }
  if (!FINISHED.includes(rec.state) && can('operate')) {
    if (!rec.parent_id) blocks.push(cancelBlock(rec, base, onRecord));
    else blocks.push(h('p', { class: 'muted' }, 'A child execution is cancelled with its tree: cancel the root, ',
      h('a', { href: path('executions', rec.root_id || rec.parent_id) }, rec.root_id || rec.parent_id), '.'));
  }
  if ((rec.state === 'FAILED' || rec.state === 'CANCELLED') && !rec.parent_id && can('operate')) blocks.push(rerunBlock(rec, base));
  replace(el, blocks);
}

// rerunBlock reruns a FAILED or CANCELLED root as `loom rerun` does
// (docs/rerun.md): a new execution reuses what this one recorded before
// the step that failed and runs the rest live; the page goes to it.
function rerunBlock(rec, base) {
  const status = h('p', { class: 'form-status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', class: 'primary', id: 'rerun-btn', onclick: async () => {
    btn.disabled = true;
    status.textContent = 'Starting the rerun…';
    try {
      const rec2 = await post(base + '/rerun', {});
      location.assign(path('executions', rec2.id));
    } catch (err) {
      status.textContent = err.message;
      btn.disabled = false;
    }
  } }, 'Rerun');
  return h('section', { id: 'rerun', 'aria-labelledby': 'h-rerun' }, h('h2', { id: 'h-rerun' }, 'Rerun'),
    h('p', { class: 'muted' }, rec.state === 'FAILED'
      ? 'Starts a new execution that reuses the outcomes recorded before the step that failed and runs the rest live.'
      : 'Starts a new execution that reuses every outcome this one recorded and runs the rest live.'),
    btn, status);
}

function resumeForm(rec, p, onRecord) {
  const target = p.execution_id || rec.id;
  const form = schemaForm(p.schema, { legend: 'Payload', optional: !p.schema });
  const key = newKey(); // one per form: a double click or a retry resumes once
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Resume');
  const msg = h('p', { class: 'form-status', 'aria-live': 'polite' });
  const el = h('form', { class: 'card resume-form', novalidate: true, 'data-pause': p.path, onsubmit: async (ev) => {
    ev.preventDefault();
    const r = form.read();
    if (!r.ok) return;
    btn.disabled = true;
    msg.textContent = 'Resuming…';
    const body = { pause: p.path };
    if (r.value !== undefined) body.payload = r.value;
    try {
      const rec2 = await post('/v1/executions/' + enc(target) + '/resume', body, { 'Idempotency-Key': key });
      msg.textContent = 'Resumed.';
      if (target === rec.id) onRecord(rec2);
    } catch (err) {
      msg.textContent = '';
      if (err instanceof ApiError && (err.code === 'invalid_payload' || err.code === 'bad_request')) form.showErrors(err.details, err.message);
      else form.showErrors([], err.message);
      btn.disabled = false;
    }
  } },
  h('h3', {}, 'Resume ', h('code', {}, p.name), ' ', h('span', { class: 'muted' }, 'at ', h('code', {}, p.path))),
  p.execution_id && p.execution_id !== rec.id ? h('p', { class: 'muted' }, 'Held by child ', h('a', { href: path('executions', p.execution_id) }, p.execution_id)) : null,
  p.deadline ? h('p', {}, 'Deadline: ', timeEl(p.deadline), ` (in ${duration(Date.parse(p.deadline) - Date.now())})`) : null,
  form.el, btn, msg);
  return el;
}

function cancelBlock(rec, base, onRecord) {
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': 'cancel-title' });
  const open = async () => {
    let kids = 0;
    let more = false;
    try {
      const page = await get('/v1/executions' + query({ parent_id: rec.id, limit: 500 }));
      kids = (page.executions || []).filter((c) => !FINISHED.includes(c.state)).length;
      more = !!page.next_cursor;
    } catch (err) { /* the count is a help; the cancel still works */ }
    const status = h('p', { class: 'form-status', 'aria-live': 'polite' });
    const yes = h('button', { type: 'button', class: 'danger', onclick: async () => {
      yes.disabled = true;
      try {
        const rec2 = await post(base + '/cancel', {});
        dialog.close();
        onRecord(rec2);
      } catch (err) {
        status.textContent = err.message;
        yes.disabled = false;
      }
    } }, 'Cancel execution');
    replace(dialog,
      h('h2', { id: 'cancel-title' }, 'Cancel ', h('code', {}, rec.id), '?'),
      h('p', {}, 'The recorded compensations will run (children\'s first, each in reverse order), then it becomes CANCELLED.'),
      h('p', { class: 'cancel-children' }, kids === 0 && !more ? 'It has no running child executions.'
        : `${kids}${more ? ' or more' : ''} child execution${kids === 1 && !more ? '' : 's'} will be cancelled with it.`),
      status,
      h('div', { class: 'buttons' }, yes, ' ', h('button', { type: 'button', onclick: () => dialog.close() }, 'Keep running')));
    dialog.showModal();
    yes.focus();
  };
  return h('div', { class: 'cancel' }, h('button', { type: 'button', class: 'danger', id: 'cancel-btn', onclick: open }, 'Cancel…'), dialog);
}

function renderGraph(el, st) {
  if (!st.def || st.def.error) {
    replace(el, st.def && st.def.error ? failure(st.def.error) : h('p', { class: 'muted' }, 'No definition.'));
    return;
  }
  const graph = st.def.graph;
  if (!graph || !graph.nodes) {
    replace(el, h('p', { class: 'muted' }, 'The server sent no graph for this definition.'));
    return;
  }
  replace(el, drawGraph(graph, statuses(graph, st.events, st.rec)),
    st.truncated ? h('p', { class: 'muted' }, `Statuses are drawn from the first ${st.events.length} events.`) : null);
}

async function renderFamily(el, rec) {
  const page = async (cursor) => {
    try {
      const r = await get('/v1/executions' + query({ parent_id: rec.id, limit: CHILDREN_PAGE, cursor }));
      const kids = r.executions || [];
      if (!kids.length && !cursor) {
        replace(el);
        return;
      }
      replace(el, h('section', { 'aria-labelledby': 'h-kids' }, h('h2', { id: 'h-kids' }, 'Children'),
        h('ul', { class: 'children' }, kids.map((c) => h('li', {}, h('a', { href: path('executions', c.id) }, c.id), ' ', c.workflow, ' ', stateBadge(c.state)))),
        h('div', { class: 'pager' },
          cursor ? h('button', { type: 'button', onclick: () => page('') }, 'First children') : null, ' ',
          r.next_cursor ? h('button', { type: 'button', onclick: () => page(r.next_cursor) }, 'More children') : null)));
    } catch (err) {
      replace(el, failure(err));
    }
  };
  page('');
}

async function journalPage(el, base, after) {
  try {
    const r = await get(`${base}/events` + query({ after, limit: JOURNAL_PAGE }));
    const evs = r.events || [];
    replace(el,
      h('table', { class: 'grid journal' },
        h('caption', { class: 'sr-only' }, 'Journal events in order'),
        h('thead', {}, h('tr', {}, ['Seq', 'Time', 'Path', 'Kind', 'Name', 'Data'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, evs.map((e) => h('tr', {},
          h('td', {}, String(e.seq)), h('td', {}, timeEl(e.time)), h('td', {}, h('code', {}, e.path || '')),
          h('td', {}, e.kind), h('td', {}, e.name || ''),
          h('td', {}, dataCell(e.data)))))),
      h('div', { class: 'pager' },
        after > 0 ? h('button', { type: 'button', onclick: () => journalPage(el, base, Math.max(0, after - JOURNAL_PAGE)) }, 'Previous events') : null, ' ',
        r.has_more ? h('button', { type: 'button', onclick: () => journalPage(el, base, evs[evs.length - 1].seq) }, 'Next events') : null));
  } catch (err) {
    replace(el, failure(err));
  }
}

function dataCell(d) {
  if (d === undefined || d === null) return '';
  const s = JSON.stringify(d);
  if (s.length <= 160) return h('code', { class: 'data' }, s);
  return h('details', {}, h('summary', {}, h('code', {}, s.slice(0, 120) + '…')), valueView(d, 'event data'));
}

function renderYAML(el, def) {
  if (!def || def.error || !def.yaml) return;
  replace(el, h('section', { 'aria-labelledby': 'h-yaml' }, h('h2', { id: 'h-yaml' }, 'Pinned definition'),
    h('details', {}, h('summary', {}, 'YAML', def.hash ? h('span', { class: 'muted' }, ' (sha256 ' + def.hash.slice(0, 12) + '…)') : null),
      h('pre', { class: 'yaml', tabindex: '0' }, def.yaml))));
}
