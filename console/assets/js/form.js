// form.js builds a form from a JSON Schema: strings, numbers, integers,
// booleans, enums, nested objects and arrays, and a raw-JSON field for what
// a form cannot express (or for the whole value, on request). The browser's
// checks only help: the form is sent as it is and the engine decides; its
// messages are shown next to the fields they name.
import { h, uid, replace } from './dom.js';

// schemaForm returns {el, read, showErrors, clearErrors}. read() gives
// {ok, value} — ok false when a raw-JSON field does not parse (its message
// is shown next to it). showErrors takes the API's details, [{location,
// message}], location a JSON pointer into the value.
export function schemaForm(schema, opts) {
  const o = Object.assign({ legend: 'Value', optional: false }, opts || {});
  const fields = new Map(); // JSON pointer → field
  const root = fieldFor(schema === undefined || schema === null ? {} : schema, '', o.legend, !o.optional, fields);
  const formErr = h('div', { class: 'form-errors', 'aria-live': 'polite' });
  const rawId = uid('raw');
  const raw = h('textarea', { id: rawId, rows: 8, class: 'json', spellcheck: 'false' });
  const rawBox = h('div', { class: 'field', hidden: true }, h('label', { for: rawId }, o.legend + ' as JSON'), raw,
    h('p', { class: 'field-error', id: rawId + '-err' }));
  raw.setAttribute('aria-describedby', rawId + '-err');
  const toggleId = uid('asjson');
  const toggle = h('input', { type: 'checkbox', id: toggleId });
  const onlyRaw = root.raw;
  toggle.addEventListener('change', () => {
    if (toggle.checked) {
      const r = root.read();
      raw.value = r.value === undefined ? '' : JSON.stringify(r.value, null, 2);
    }
    root.el.hidden = toggle.checked;
    rawBox.hidden = !toggle.checked;
  });
  const el = h('div', { class: 'schema-form' }, formErr, root.el, onlyRaw ? null : rawBox,
    onlyRaw ? null : h('div', { class: 'field check' }, toggle, h('label', { for: toggleId }, 'Edit as raw JSON')));

  function clearErrors() {
    replace(formErr);
    for (const f of fields.values()) f.setError('');
    rawBox.querySelector('.field-error').textContent = '';
  }

  function read() {
    clearErrors();
    if (toggle.checked) {
      if (raw.value.trim() === '') return { ok: true, value: undefined };
      try {
        return { ok: true, value: JSON.parse(raw.value) };
      } catch (err) {
        rawBox.querySelector('.field-error').textContent = 'This is not valid JSON: ' + err.message;
        raw.focus();
        return { ok: false };
      }
    }
    const r = root.read();
    return r;
  }

  // showErrors puts each of the API's details next to the field at its
  // location (a missing required property comes located at the property),
  // or the nearest enclosing field; what has no field is listed under the
  // engine's sentence at the top. The sentence is never parsed.
  function showErrors(details, message) {
    clearErrors();
    const rest = [];
    const per = new Map(); // field → its messages, several joined
    for (const d of details || []) {
      const loc = normalise(d.location);
      const msg = d.message || '';
      const f = toggle.checked ? null : nearest(fields, loc);
      if (f && f !== root) per.set(f, (per.get(f) || []).concat(msg));
      else rest.push((loc ? loc + ': ' : '') + msg);
    }
    for (const [f, msgs] of per) f.setError(msgs.join('; '));
    if (rest.length || (!details || !details.length)) {
      replace(formErr, h('div', { class: 'alert', role: 'alert' },
        h('p', {}, message || 'The server refused this value.'),
        rest.length ? h('ul', {}, rest.map((m) => h('li', {}, m))) : null));
    } else {
      replace(formErr, h('p', { class: 'alert', role: 'alert' }, message || 'The server refused this value; see the fields below.'));
    }
  }

  return { el, read, showErrors, clearErrors };
}

function normalise(loc) {
  let s = String(loc || '');
  if (s.startsWith('#')) s = s.slice(1);
  if (s === '/') s = '';
  if (s && !s.startsWith('/')) s = '/' + s;
  return s;
}

function escapePtr(k) {
  return String(k).replace(/~/g, '~0').replace(/\//g, '~1');
}

function nearest(fields, loc) {
  let p = loc;
  for (;;) {
    if (fields.has(p)) return fields.get(p);
    if (p === '') return null;
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

function typeOf(s) {
  let t = s.type;
  if (Array.isArray(t)) t = t.find((x) => x !== 'null');
  if (!t && s.properties) t = 'object';
  if (!t && s.items) t = 'array';
  return t;
}

// fieldFor builds the field of one schema; every field is
// {el, read() → {ok, value}, setError(msg), raw?}.
function fieldFor(s, ptr, label, required, fields) {
  let f;
  const t = typeOf(s);
  if (Array.isArray(s.enum) && s.enum.length) f = enumField(s, label, required);
  else if (t === 'object' && s.properties && !s.oneOf && !s.anyOf) f = objectField(s, ptr, label, required, fields);
  else if (t === 'array' && s.items && typeof s.items === 'object' && !Array.isArray(s.items)) f = arrayField(s, ptr, label, required, fields);
  else if (t === 'string' && !s.oneOf && !s.anyOf) f = inputField(s, label, required, 'string');
  else if ((t === 'number' || t === 'integer') && !s.oneOf && !s.anyOf) f = inputField(s, label, required, t);
  else if (t === 'boolean') f = boolField(s, label);
  else f = rawField(s, label, required);
  fields.set(ptr, f);
  return f;
}

function help(s, id) {
  const parts = [];
  if (s.description) parts.push(s.description);
  if (s.minimum !== undefined) parts.push('at least ' + s.minimum);
  if (s.maximum !== undefined) parts.push('at most ' + s.maximum);
  if (s.minLength !== undefined) parts.push('at least ' + s.minLength + ' characters');
  if (s.maxLength !== undefined) parts.push('at most ' + s.maxLength + ' characters');
  if (s.pattern) parts.push('matches ' + s.pattern);
  if (s.format) parts.push('format ' + s.format);
  return parts.length ? h('p', { class: 'help', id }, parts.join('; ')) : null;
}

// wrap lays out label, control, help and the engine's message, linked by
// aria-describedby so a screen reader reads the message with the field.
function wrap(control, id, label, required, s, cls) {
  const errId = id + '-err';
  const helpId = id + '-help';
  const hp = help(s, helpId);
  const err = h('p', { class: 'field-error', id: errId, 'aria-live': 'polite' });
  control.setAttribute('aria-describedby', [hp ? helpId : '', errId].filter(Boolean).join(' '));
  const el = h('div', { class: ['field', cls] },
    h('label', { for: id }, label, required ? h('span', { class: 'req' }, ' (required)') : null), control, hp, err);
  return {
    el,
    setError(msg) {
      err.textContent = msg;
      if (msg) control.setAttribute('aria-invalid', 'true');
      else control.removeAttribute('aria-invalid');
    },
  };
}

function inputField(s, label, required, t) {
  const id = uid('in');
  const attrs = { id, name: label, required, autocomplete: 'off' };
  let control;
  if (t === 'string') {
    if (s.maxLength === undefined || s.maxLength > 200) {
      control = (s.format || s.pattern) ? h('input', Object.assign(attrs, { type: 'text' })) : h('textarea', Object.assign(attrs, { rows: 2 }));
    } else control = h('input', Object.assign(attrs, { type: 'text' }));
    if (s.minLength !== undefined) control.setAttribute('minlength', s.minLength);
    if (s.maxLength !== undefined) control.setAttribute('maxlength', s.maxLength);
    if (s.pattern) control.setAttribute('pattern', s.pattern);
    if (s.default !== undefined && typeof s.default === 'string') control.value = s.default;
  } else {
    control = h('input', Object.assign(attrs, { type: 'number', step: t === 'integer' ? '1' : 'any', inputmode: t === 'integer' ? 'numeric' : 'decimal' }));
    if (s.minimum !== undefined) control.setAttribute('min', s.minimum);
    if (s.maximum !== undefined) control.setAttribute('max', s.maximum);
    if (typeof s.default === 'number') control.value = String(s.default);
  }
  const w = wrap(control, id, label, required, s);
  return {
    el: w.el,
    setError: w.setError,
    read() {
      const v = control.value;
      if (v === '') return { ok: true, value: undefined };
      if (t === 'string') return { ok: true, value: v };
      const n = Number(v);
      // Sent as typed even if not a number: the engine's message says why.
      return { ok: true, value: isNaN(n) ? v : n };
    },
  };
}

function boolField(s, label) {
  const id = uid('bool');
  const control = h('input', { id, type: 'checkbox', name: label, checked: s.default === true });
  const w = wrap(control, id, label, false, s, 'check');
  return { el: w.el, setError: w.setError, read: () => ({ ok: true, value: control.checked }) };
}

function enumField(s, label, required) {
  const id = uid('enum');
  const control = h('select', { id, name: label, required },
    h('option', { value: '' }, required ? 'choose…' : '(none)'),
    s.enum.map((v, i) => h('option', { value: String(i), selected: s.default !== undefined && JSON.stringify(s.default) === JSON.stringify(v) },
      typeof v === 'string' ? v : JSON.stringify(v))));
  const w = wrap(control, id, label, required, s);
  return {
    el: w.el,
    setError: w.setError,
    read: () => ({ ok: true, value: control.value === '' ? undefined : s.enum[Number(control.value)] }),
  };
}

function rawField(s, label, required) {
  const id = uid('json');
  const control = h('textarea', { id, name: label, rows: 4, class: 'json', spellcheck: 'false', placeholder: 'a JSON value' });
  if (s.default !== undefined) control.value = JSON.stringify(s.default, null, 2);
  const w = wrap(control, id, label + ' (JSON)', required, s);
  return {
    el: w.el,
    setError: w.setError,
    raw: true,
    read() {
      if (control.value.trim() === '') return { ok: true, value: undefined };
      try {
        return { ok: true, value: JSON.parse(control.value) };
      } catch (err) {
        w.setError('This is not valid JSON: ' + err.message);
        return { ok: false };
      }
    },
  };
}

function objectField(s, ptr, label, required, fields) {
  const req = new Set(s.required || []);
  const children = Object.entries(s.properties).map(([k, ps]) => [k, fieldFor(ps || {}, ptr + '/' + escapePtr(k), (ps && ps.title) || k, req.has(k), fields)]);
  const err = h('p', { class: 'field-error', 'aria-live': 'polite' });
  const el = h('fieldset', { class: 'object' }, h('legend', {}, label, required ? '' : h('span', { class: 'muted' }, ' (optional)')),
    s.description ? h('p', { class: 'help' }, s.description) : null, err, children.map(([, f]) => f.el));
  return {
    el,
    setError: (m) => { err.textContent = m; },
    read() {
      const out = {};
      let any = false;
      for (const [k, f] of children) {
        const r = f.read();
        if (!r.ok) return r;
        if (r.value !== undefined) {
          out[k] = r.value;
          if (!(f.el.classList.contains('check'))) any = true;
        }
      }
      return { ok: true, value: required || any ? out : undefined };
    },
  };
}

function arrayField(s, ptr, label, required, fields) {
  const items = [];
  const list = h('ol', { class: 'array-items' });
  const err = h('p', { class: 'field-error', 'aria-live': 'polite' });
  const add = () => {
    const i = items.length;
    const f = fieldFor(s.items, ptr + '/' + i, `${label} item ${i + 1}`, true, fields);
    const li = h('li', {}, f.el, h('button', { type: 'button', class: 'link', onclick: () => {
      const at = items.indexOf(entry);
      items.splice(at, 1);
      li.remove();
    } }, `Remove item`));
    const entry = { f, li };
    items.push(entry);
    list.append(li);
    return f;
  };
  if (Array.isArray(s.default)) s.default.forEach(() => add());
  const el = h('fieldset', { class: 'array' }, h('legend', {}, label, required ? '' : h('span', { class: 'muted' }, ' (optional)')),
    s.description ? h('p', { class: 'help' }, s.description) : null, err, list,
    h('button', { type: 'button', onclick: () => {
      const f = add();
      const first = f.el.querySelector('input, select, textarea');
      if (first) first.focus();
    } }, `Add ${label} item`));
  return {
    el,
    setError: (m) => { err.textContent = m; },
    read() {
      // Item pointers follow positions: re-register them after removals.
      items.forEach(({ f }, i) => fields.set(ptr + '/' + i, f));
      const out = [];
      for (const { f } of items) {
        const r = f.read();
        if (!r.ok) return r;
        if (r.value !== undefined) out.push(r.value);
      }
      return { ok: true, value: required || out.length ? out : undefined };
    },
  };
}
