// graph.js draws a workflow's graph as SVG, each node with its status in
// words and a symbol (never colour alone). A map shows counts per status;
// its items are listed beside the graph, at most 100 at a time.
import { h, svg, replace } from './dom.js';
import { stepSymbol, stepBadge } from './format.js';

const W = 210, H = 64, GX = 28, GY = 34, PAD = 12;
export const ITEMS_PER_PAGE = 100;

function layout(graph) {
  // Edges run from earlier to later nodes (the definition's order), so one
  // pass gives each node its layer: one below its lowest predecessor.
  const layer = new Map();
  const preds = new Map(graph.nodes.map((n) => [n.path, []]));
  for (const e of graph.edges) if (preds.has(e.to)) preds.get(e.to).push(e.from);
  for (const n of graph.nodes) {
    let l = 0;
    for (const p of preds.get(n.path)) if (layer.has(p)) l = Math.max(l, layer.get(p) + 1);
    layer.set(n.path, l);
  }
  const rows = [];
  for (const n of graph.nodes) {
    const l = layer.get(n.path);
    (rows[l] = rows[l] || []).push(n);
  }
  const widest = Math.max(1, ...rows.map((r) => (r ? r.length : 0)));
  const pos = new Map();
  rows.forEach((row, l) => {
    if (!row) return;
    const off = ((widest - row.length) * (W + GX)) / 2;
    row.forEach((n, i) => pos.set(n.path, { x: PAD + off + i * (W + GX), y: PAD + l * (H + GY) }));
  });
  return { pos, width: PAD * 2 + widest * (W + GX) - GX, height: PAD * 2 + rows.length * (H + GY) - GY };
}

function clip(s, n) {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

// statusText is the node's third line: its status, counts for several
// runs (map items) with how many of them were retried, or the attempts of
// a single run that was.
export function statusText(s) {
  if (!s || !s.status) return '';
  const keys = Object.keys(s.counts || {});
  const total = keys.reduce((a, k) => a + s.counts[k], 0);
  let t = total > 1 ? keys.sort().map((k) => `${s.counts[k]} ${k}`).join(' · ') : s.status;
  if (total > 1 && s.retried) t += ` · ${s.retried} retried`;
  else if (s.attempts > 1) t += ` · ${s.attempts} attempts`;
  if (s.failing) t += ' · failing step';
  return t;
}

// drawGraph returns a figure with the SVG and a panel for map items.
// stats may be null (a workflow's graph, nothing ran).
export function drawGraph(graph, stats, opts) {
  const { pos, width, height } = layout(graph);
  const panel = h('div', { class: 'items-panel', 'aria-live': 'polite' });
  const root = svg('svg', { class: 'graph', width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Workflow graph' },
    svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))));
  const kinds = new Map(graph.nodes.map((n) => [n.path, n.kind]));
  for (const e of graph.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y;
    const side = kinds.get(e.to) === 'compensate' || kinds.get(e.to) === 'fallback';
    root.append(svg('path', { d: `M ${x1} ${y1} C ${x1} ${y1 + GY / 2}, ${x2} ${y2 - GY / 2}, ${x2} ${y2}`,
      class: side ? 'edge side' : 'edge', 'marker-end': 'url(#arrow)' }));
  }
  for (const n of graph.nodes) {
    const p = pos.get(n.path);
    const s = stats ? stats.get(n.path) : null;
    const status = s && s.status ? s.status : '';
    const line2 = n.name ? `${n.kind} ${n.name}` : n.kind;
    const line3 = statusText(s);
    const label = [n.path, line2, line3].filter(Boolean).join(', ');
    const hasItems = s && s.items && s.items.size > 0;
    const g = svg('g', { class: ['node', 'kind-' + n.kind, status && 'st-' + status, s && s.failing && 'failing'],
      transform: `translate(${p.x},${p.y})`, 'data-path': n.path, 'data-status': status,
      tabindex: '0', role: hasItems ? 'button' : 'img', 'aria-label': label },
    svg('title', {}, label),
    svg('rect', { width: W, height: H, rx: n.kind === 'pause' ? 14 : 6 }),
    svg('text', { x: 10, y: 19, class: 'n-path' }, clip(n.path, 30)),
    svg('text', { x: 10, y: 36, class: 'n-kind' }, clip(line2, 32)),
    line3 ? svg('text', { x: 10, y: 54, class: 'n-status' }, (stepSymbol(status) ? stepSymbol(status) + ' ' : '') + clip(line3, 30)) : null);
    if (hasItems) {
      const open = () => showItems(panel, n.path, s.items, 0, opts);
      g.addEventListener('click', open);
      g.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          open();
        }
      });
    }
    root.append(g);
  }
  return h('figure', { class: 'graph-box' }, h('div', { class: 'graph-scroll' }, root), panel,
    h('figcaption', { class: 'muted' }, stats ? 'Each step shows its status; select a map to list its items.' : 'The steps in the order they run.'));
}

// showItems lists one page (≤ 100) of a map's items with their statuses.
function showItems(panel, mapPath, items, page) {
  const keys = [...items.keys()].sort((a, b) => itemIndex(a) - itemIndex(b) || (a < b ? -1 : 1));
  const pages = Math.max(1, Math.ceil(keys.length / ITEMS_PER_PAGE));
  const slice = keys.slice(page * ITEMS_PER_PAGE, (page + 1) * ITEMS_PER_PAGE);
  const nav = [];
  if (page > 0) nav.push(h('button', { type: 'button', onclick: () => showItems(panel, mapPath, items, page - 1) }, 'Previous items'));
  if (page + 1 < pages) nav.push(h('button', { type: 'button', onclick: () => showItems(panel, mapPath, items, page + 1) }, 'Next items'));
  replace(panel, h('section', { class: 'items', 'aria-label': `Items of ${mapPath}` },
    h('h3', {}, `Items of ${mapPath} (${keys.length}; page ${page + 1} of ${pages})`),
    h('ol', { class: 'item-list' }, slice.map((k) => h('li', { class: 'st-' + items.get(k), 'data-item': k }, h('code', {}, k), ' ', stepBadge(items.get(k))))),
    nav.length ? h('div', { class: 'pager' }, nav) : null));
}

function itemIndex(k) {
  const m = /\[(\d+)\]$/.exec(k);
  return m ? Number(m[1]) : 0;
}
