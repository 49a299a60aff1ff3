// status.js derives each graph node's status from the journal's events,
// with the mapping of docs/design.md ("The graph of a definition"): an
// "@N" attempt suffix is dropped; a segment "X[N]" is literal when the
// graph has it (a switch arm), else "X[*]" (an item body), else the item
// of the map node X.

const RANK = { failed: 7, retrying: 6, paused: 5, waiting: 4, running: 3, cancelled: 2, done: 1, skipped: 0 };
const JOURNALED = new Set(['task', 'call', 'pause', 'sleep', 'map']);

export function resolver(graph) {
  const nodes = new Set(graph.nodes.map((n) => n.path));
  const prefixes = new Set();
  for (const p of nodes) {
    const segs = p.split('/');
    for (let i = 1; i <= segs.length; i++) prefixes.add(segs.slice(0, i).join('/'));
  }
  const join = (a, b) => (a ? a + '/' + b : b);
  // resolve returns {node, items: [{map, key}]}: the node a journal path
  // belongs to, and for each map it passes through the map node and the
  // concrete item prefix ("stars[3]").
  return function resolve(path) {
    const items = [];
    if (!path) return { node: null, items };
    let cur = '';
    let concrete = '';
    for (const seg of path.split('/')) {
      const s = seg.replace(/@\d+$/, '');
      const lit = join(cur, s);
      if (prefixes.has(lit)) {
        cur = lit;
        concrete = join(concrete, s);
        continue;
      }
      const m = /^(.*)\[(\d+)\]$/.exec(s);
      if (m) {
        const base = join(cur, m[1]);
        const star = join(cur, m[1] + '[*]');
        const key = join(concrete, s);
        if (prefixes.has(star)) {
          items.push({ map: base, key });
          cur = star;
          concrete = key;
          continue;
        }
        if (nodes.has(base)) {
          items.push({ map: base, key });
          return { node: base, items, item: true };
        }
      }
      return { node: nodes.has(cur) ? cur : null, items };
    }
    return { node: nodes.has(cur) ? cur : null, items };
  };
}

function stateOf(kind) {
  switch (kind) {
    case 'step.completed': return 'done';
    case 'step.failed': return 'failed';
    case 'pause.opened': return 'paused';
    case 'timer.set': return 'waiting';
    case 'child.started': return 'running';
    default: return null;
  }
}

function worst(a, b) {
  if (!a) return b;
  if (!b) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

// statuses returns a Map node path → {status, counts, attempts, items,
// failing, started, finished} for a graph, the events read so far and the
// execution's record.
export function statuses(graph, events, rec) {
  const resolve = resolver(graph);
  const out = new Map(graph.nodes.map((n) => [n.path, { status: '', counts: {}, attempts: 0, items: new Map(), failing: false }]));
  const byConcrete = new Map(); // concrete path (no @N) → {node, state, attempt, items}
  let lastStepSeq = 0;
  let lastStepKey = '';
  for (const ev of events) {
    if (!ev.path) continue;
    const r = resolve(ev.path);
    if (!r.node) continue;
    const conc = ev.path.replace(/@(\d+)$/, '');
    const at = /@(\d+)$/.exec(ev.path);
    let c = byConcrete.get(conc);
    if (!c) {
      c = { node: r.node, state: null, attempt: 1, items: r.items };
      byConcrete.set(conc, c);
    }
    if (at) c.attempt = Math.max(c.attempt, Number(at[1]));
    const st = stateOf(ev.kind);
    if (st) {
      c.state = st;
      lastStepSeq = ev.seq;
      lastStepKey = conc;
    } else if (ev.kind === 'builtin' && !c.state) {
      c.state = 'done'; // an expression of the step ran (a set with now())
    }
  }
  const finished = ['COMPLETED', 'FAILED', 'CANCELLED'].includes(rec.state);
  for (const [conc, c] of byConcrete) {
    let st = c.state;
    if (!st) continue;
    if (st === 'failed' && !finished && conc === lastStepKey && lastStepSeq) st = 'retrying';
    if (finished && rec.state === 'CANCELLED' && (st === 'running' || st === 'paused' || st === 'waiting')) st = 'cancelled';
    const n = out.get(c.node);
    n.counts[st] = (n.counts[st] || 0) + 1;
    n.status = worst(n.status, st);
    n.attempts = Math.max(n.attempts, c.attempt);
    if (c.attempt > 1) n.retried = (n.retried || 0) + 1;
    for (const it of c.items) {
      const m = out.get(it.map);
      if (m) m.items.set(it.key, worst(m.items.get(it.key), st));
    }
  }
  // A compensated step: its compensation completed.
  for (const n of graph.nodes) {
    if (n.kind === 'compensate' && out.get(n.path).status === 'done') {
      const step = out.get(n.path.replace(/\/#compensate$/, ''));
      if (step) step.status = 'compensated';
    }
  }
  // Constructs take their status from what ran inside them, a map from its
  // items (counted once each).
  const idx = new Map(graph.nodes.map((n, i) => [n.path, i]));
  for (const n of [...graph.nodes].reverse()) {
    const s = out.get(n.path);
    if (s.items.size) {
      s.counts = {};
      let agg = '';
      for (const v of s.items.values()) {
        s.counts[v] = (s.counts[v] || 0) + 1;
        agg = worst(agg, v);
      }
      s.status = worst(s.status, agg);
      continue;
    }
    if (['parallel', 'switch', 'try', 'for', 'map'].includes(n.kind) && !s.status) {
      for (const m of graph.nodes) {
        if (m.path !== n.path && (m.path.startsWith(n.path + '/') || m.path.startsWith(n.path + '['))) {
          s.status = worst(s.status, out.get(m.path).status);
        }
      }
    }
  }
  // A failing step is the error's step; what ran nothing is skipped (the
  // run went past it) or not reached yet.
  if (rec.error && rec.error.step) {
    const r = resolve(rec.error.step);
    if (r.node && out.has(r.node)) {
      const s = out.get(r.node);
      s.failing = true;
      if (s.status !== 'failed') s.status = worst(s.status, 'failed');
    }
  }
  let lastRan = -1;
  graph.nodes.forEach((n, i) => {
    if (out.get(n.path).status) lastRan = i;
  });
  for (const n of graph.nodes) {
    const s = out.get(n.path);
    if (s.status || !JOURNALED.has(n.kind) || n.path.includes('[*]') || n.kind === 'compensate') continue;
    if (rec.state === 'COMPLETED' || idx.get(n.path) < lastRan) s.status = 'skipped';
    else if (!finished) s.status = 'pending';
  }
  return out;
}
