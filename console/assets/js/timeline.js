// timeline.js lays the journal out in time: a row per step (per item of a
// map), its attempts as segments of the row, each with its duration.
// Parallel items are rows that overlap in time.
import { h } from './dom.js';
import { duration, stepSymbol } from './format.js';

export const MAX_ROWS = 300;

export function spans(events, now) {
  const rows = new Map(); // concrete path → {path, segs: []}
  const open = new Map(); // path with attempt → open segment
  const row = (p) => {
    const k = p.replace(/@\d+$/, '');
    if (!rows.has(k)) rows.set(k, { path: k, segs: [] });
    return rows.get(k);
  };
  for (const ev of events) {
    if (!ev.path) continue;
    const t = Date.parse(ev.time);
    const at = /@(\d+)$/.exec(ev.path);
    const attempt = at ? Number(at[1]) : 1;
    switch (ev.kind) {
      case 'pause.opened':
      case 'timer.set':
      case 'child.started': {
        const seg = { start: t, end: null, attempt, status: ev.kind === 'pause.opened' ? 'paused' : ev.kind === 'timer.set' ? 'waiting' : 'running', name: ev.name };
        open.set(ev.path, seg);
        row(ev.path).segs.push(seg);
        break;
      }
      case 'step.completed':
      case 'step.failed': {
        const status = ev.kind === 'step.completed' ? 'done' : 'failed';
        const seg = open.get(ev.path);
        if (seg) {
          seg.end = t;
          seg.status = status;
          open.delete(ev.path);
        } else {
          const st = ev.data && ev.data.started_at ? Date.parse(ev.data.started_at) : t;
          row(ev.path).segs.push({ start: isNaN(st) ? t : st, end: t, attempt, status, name: ev.name });
        }
        break;
      }
      default:
    }
  }
  const out = [...rows.values()].filter((r) => r.segs.length);
  for (const r of out) for (const s of r.segs) if (s.end === null) s.end = now;
  out.sort((a, b) => a.segs[0].start - b.segs[0].start);
  return out;
}

export function drawTimeline(events, rec) {
  const now = rec.state === 'COMPLETED' || rec.state === 'FAILED' || rec.state === 'CANCELLED' ? Date.parse(rec.updated_at) : Date.now();
  const rows = spans(events, now);
  if (!rows.length) return h('p', { class: 'empty' }, 'No step has run yet.');
  const t0 = Math.min(Date.parse(rec.created_at) || Infinity, ...rows.map((r) => r.segs[0].start));
  const t1 = Math.max(now, ...rows.flatMap((r) => r.segs.map((s) => s.end)));
  const span = Math.max(1, t1 - t0);
  const shown = rows.slice(0, MAX_ROWS);
  return h('div', { class: 'timeline' },
    h('p', { class: 'muted' }, `From ${new Date(t0).toISOString()} over ${duration(span)}.`,
      rows.length > MAX_ROWS ? ` Showing the first ${MAX_ROWS} of ${rows.length} steps.` : ''),
    h('ol', { class: 'tl-rows' }, shown.map((r) => {
      const total = r.segs.reduce((a, s) => a + (s.end - s.start), 0);
      const last = r.segs[r.segs.length - 1];
      const bar = h('div', { class: 'tl-bar' }, r.segs.map((s) => {
        const seg = h('span', { class: ['tl-seg', 'st-' + s.status], title: `${r.path} attempt ${s.attempt}: ${s.status}, ${duration(s.end - s.start)}` });
        // CSSOM, not a style attribute: allowed under style-src 'self'.
        seg.style.left = ((s.start - t0) / span) * 100 + '%';
        seg.style.width = Math.max(0.4, ((s.end - s.start) / span) * 100) + '%';
        return seg;
      }));
      return h('li', { class: 'tl-row', 'data-path': r.path },
        h('code', { class: 'tl-path' }, r.path),
        bar,
        h('span', { class: 'tl-info' }, `${stepSymbol(last.status)} ${last.status} · ${duration(total)}`,
          r.segs.length > 1 ? ` · ${r.segs.length} attempts` : ''));
    })));
}
