// app.js starts the console: who is signed in, the header, and the page
// for this address. Pages are plain addresses (/, /pauses,
// /executions/{id}, /workflows, /workflows/{name}) with their filters in
// the query string, so any of them can be shared.
import { h, replace, clear } from './dom.js';
import { get, post, del, setCSRF } from './api.js';
import { session, setTitle, failure } from './ui.js';
import { executionsPage } from './executions.js';
import { inboxPage } from './inbox.js';
import { executionPage } from './execution.js';
import { workflowsPage, workflowPage } from './workflows.js';

async function main() {
  const main = document.getElementById('main');
  let info;
  try {
    info = await get('/console/session');
  } catch (err) {
    replace(main, failure(err));
    return;
  }
  Object.assign(session, { auth: info.auth, name: info.name || '', role: info.role || '' });
  setCSRF(info.csrf);
  header(info);
  if (info.auth && !info.signed_in) {
    signInPage(main);
    return;
  }
  route(main);
}

function header(info) {
  const who = document.getElementById('who');
  const banner = document.getElementById('banner');
  for (const a of document.querySelectorAll('nav a[data-nav]')) {
    const p = location.pathname;
    const cur = a.dataset.nav === 'executions' ? p === '/' || p.startsWith('/executions/')
      : p === '/' + a.dataset.nav || p.startsWith('/' + a.dataset.nav + '/');
    if (cur) a.setAttribute('aria-current', 'page');
  }
  if (!info.auth) {
    banner.hidden = false;
    replace(banner, h('strong', {}, 'No authentication. '),
      'This server has no token file: anyone who can reach it on this machine can start, resume and cancel.');
    replace(who, h('span', {}, 'local · operate'));
    return;
  }
  if (!info.signed_in) {
    clear(who);
    return;
  }
  replace(who, h('span', {}, `${info.name} · ${info.role}`), ' ',
    h('button', { type: 'button', class: 'link', onclick: async () => {
      try {
        await del('/console/session');
      } finally {
        location.assign('/');
      }
    } }, 'Sign out'));
}

function signInPage(main) {
  setTitle('Sign in');
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const msg = h('p', { class: 'field-error', id: 'token-error', 'aria-live': 'polite' });
  input.setAttribute('aria-describedby', 'token-error');
  const form = h('form', { class: 'card signin', onsubmit: async (ev) => {
    ev.preventDefault();
    msg.textContent = '';
    try {
      await post('/console/session', { token: input.value });
      input.value = '';
      location.reload();
    } catch (err) {
      msg.textContent = err.message;
      input.focus();
    }
  } },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Paste a token from ', h('code', {}, 'loom token new'), '. It is sent once, in the body, and the browser keeps only a session cookie.'),
  h('label', { for: 'token' }, 'Token'), input, msg,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  replace(main, form);
  input.focus();
}

function route(main) {
  const p = location.pathname;
  let m;
  if (p === '/') return executionsPage(main);
  if (p === '/pauses') return inboxPage(main);
  if ((m = p.match(/^\/executions\/([^/]+)$/))) return executionPage(main, decodeURIComponent(m[1]));
  if (p === '/workflows') return workflowsPage(main);
  if ((m = p.match(/^\/workflows\/([^/]+)$/))) return workflowPage(main, decodeURIComponent(m[1]));
  setTitle('Not found');
  replace(main, h('h1', {}, 'Not found'), h('p', {}, 'No console page lives at this address.'));
  return null;
}

main();
