// dom.js builds elements. Every value becomes a text node (textContent),
// never markup: a workflow value can hold "<script>" and must show as text.

// h(tag, attrs, ...children): attrs are attributes, except "on*" keys
// (event listeners) and "class". Children are nodes or strings (text).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// svg(tag, attrs, ...children) is h for SVG elements.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'href') {
      el.setAttribute('href', safeHref(v));
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// safeHref keeps links inside the console: a path on this origin, never a
// "javascript:" or other scheme, whatever a value holds.
export function safeHref(v) {
  const s = String(v);
  return s.startsWith('/') && !s.startsWith('//') ? s : '#';
}

// link to a console address built from parts; each part is encoded.
export function path(...parts) {
  return '/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

let idSeq = 0;
// uid returns a fresh element id for label/for and aria links.
export function uid(prefix) {
  idSeq += 1;
  return `${prefix || 'f'}-${idSeq}`;
}
