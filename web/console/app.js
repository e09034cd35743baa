// Trove web console: plain JavaScript, no library, nothing loaded from elsewhere.
//
// Every call goes to Trove's own HTTP API with the admin token, kept in
// sessionStorage (gone when the tab closes) and sent as a Bearer token.
// Every string that comes from data is put in the page as text (el() and
// textContent), never as HTML.
'use strict';

const TOKEN_KEY = 'trove.adminToken';
const APP_KEY = 'trove.app';
const LIVE_MAX = 500; // rows kept on the Live page
const state = { token: sessionStorage.getItem(TOKEN_KEY) || '', apps: [], cleanup: null };

// ---- DOM helpers -----------------------------------------------------------

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'multiple', 'readOnly', 'required']);

// el builds an element. Strings among children become text nodes.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) e[k] = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

const nf = new Intl.NumberFormat('en-US');
const fmtN = (n) => nf.format(n);
function fmtRate(r) { return r >= 100 ? fmtN(Math.round(r)) : r.toFixed(1); }
function fmtBytes(b) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i === 0 ? b : b.toFixed(b < 10 ? 1 : 0)) + ' ' + u[i];
}
function field(labelText, input, cls) {
  return el('div', { class: 'field' + (cls ? ' ' + cls : '') }, el('label', { for: input.id }, labelText), input);
}
function errorBox(id) { return el('div', { class: 'error', role: 'alert', id }); }
function showError(box, err) {
  if (!err) { box.textContent = ''; return; }
  let msg = err.message || String(err);
  if (err.status) msg = `${err.status} ${err.code}: ${msg}` + (err.field ? ` (field: ${err.field})` : '');
  box.textContent = msg;
}
function shellQuote(s) { return /^[A-Za-z0-9_.,:/=@%+-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const t = el('textarea', { value: text });
    document.body.append(t);
    t.select();
    document.execCommand('copy');
    t.remove();
  }
  const old = button.textContent;
  button.textContent = 'Copied';
  setTimeout(() => { button.textContent = old; }, 1500);
}

// confirmButton is a danger button that asks for a second click within
// 5 s before it runs action; a failed action enables it again.
function confirmButton(label, props, action) {
  const b = el('button', { type: 'button', ...props, class: 'danger ' + (props.class || '') }, label);
  let armed = 0;
  b.addEventListener('click', async () => {
    if (!armed) {
      b.textContent = 'Confirm ' + label.toLowerCase();
      b.classList.add('confirm');
      armed = setTimeout(() => { armed = 0; b.textContent = label; b.classList.remove('confirm'); }, 5000);
      return;
    }
    clearTimeout(armed);
    b.disabled = true;
    if (!(await action())) b.disabled = false;
  });
  return b;
}

// ---- API ---------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, fieldName) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = fieldName || '';
  }
}

// api calls Trove with the admin token; an answer that is not 2xx becomes an
// ApiError with the server's message. A 401 signs out.
async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  headers.set('Authorization', 'Bearer ' + state.token);
  let res;
  try {
    res = await fetch(path, { method: opts.method || 'GET', body: opts.body, headers, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'cannot reach the Trove server: ' + e.message);
  }
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { /* not JSON */ }
    const err = new ApiError(res.status, (body && body.error) || 'http_' + res.status,
      (body && body.message) || res.statusText || 'request failed', body && body.field);
    if (res.status === 401 && !opts.signIn) signOut('The server no longer accepts this token: ' + err.message);
    throw err;
  }
  return res;
}
async function apiJSON(path, opts) { return (await api(path, opts)).json(); }
function postJSON(path, obj) {
  return apiJSON(path, { method: 'POST', body: JSON.stringify(obj), headers: { 'Content-Type': 'application/json' } });
}

// lines yields the lines of a streamed NDJSON body as they arrive.
async function* lines(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let start = 0;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n', start)) {
      yield buf.slice(start, i);
      start = i + 1;
    }
    buf = buf.slice(start);
  }
  buf += dec.decode();
  if (buf) yield buf;
}

async function loadApps() {
  const r = await apiJSON('/admin/apps');
  state.apps = r.apps || [];
  return state.apps;
}
function appName(key) {
  const a = state.apps.find((x) => x.appKey === key);
  return a ? a.name : key;
}

// appSelect is a select of the known apps, remembering the choice.
function appSelect(id, onchange) {
  const saved = sessionStorage.getItem(APP_KEY);
  const s = el('select', { id, onchange: () => { sessionStorage.setItem(APP_KEY, s.value); if (onchange) onchange(s.value); } },
    state.apps.map((a) => el('option', { value: a.appKey, selected: a.appKey === saved }, `${a.name} (${a.appKey})`)));
  return s;
}

// ---- Shell, sign-in and routing -----------------------------------------------

const PAGES = [
  ['overview', 'Overview', renderOverview],
  ['live', 'Live', renderLive],
  ['profiles', 'Profiles', renderProfiles],
  ['export', 'Export', renderExport],
  ['contracts', 'Contracts', renderContracts],
  ['apps', 'Apps and tokens', renderApps],
];

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = '';
  renderSignIn(message);
}

function stopPage() {
  if (state.cleanup) {
    const c = state.cleanup;
    state.cleanup = null;
    c();
  }
}

function renderSignIn(message) {
  stopPage();
  const input = el('input', { id: 'token', type: 'password', autocomplete: 'current-password', required: true, autofocus: true });
  const err = el('p', { id: 'signin-error', class: 'error', role: 'alert' }, message || '');
  const button = el('button', { type: 'submit', class: 'primary', id: 'signin' }, 'Sign in');
  const form = el('form', {
    class: 'panel',
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      err.textContent = '';
      state.token = input.value.trim();
      try {
        await apiJSON('/admin/overview', { signIn: true });
        sessionStorage.setItem(TOKEN_KEY, state.token);
        if (!location.hash) history.replaceState(null, '', '#/overview');
        await route();
      } catch (ex) {
        state.token = '';
        if (ex.status === 401) err.textContent = 'Sign-in failed: the server does not accept this token (' + ex.message + ').';
        else if (ex.status === 403) err.textContent = 'Sign-in failed: this token has no admin scope. Use the admin token (admin_token in the config, TROVE_ADMIN_TOKEN, or the file admin.token in the data directory).';
        else err.textContent = 'Sign-in failed: ' + ex.message;
        button.disabled = false;
        input.focus();
      }
    },
  },
  el('h1', {}, 'Trove console'),
  el('p', { class: 'hint' }, 'Sign in with the admin token. It is kept in this browser tab only (sessionStorage) and sent with each API call.'),
  field('Admin token', input), button, err);
  document.getElementById('root').replaceChildren(el('main', { class: 'signin' }, form));
  input.focus();
}

function renderShell(page) {
  let nav = document.getElementById('nav');
  if (!nav) {
    nav = el('nav', { id: 'nav', 'aria-label': 'Pages' }, PAGES.map(([k, title]) => el('a', { href: '#/' + k, id: 'nav-' + k }, title)));
    const header = el('header', { class: 'top' },
      el('span', { class: 'brand' }, el('img', { src: '/console/favicon.svg', alt: '' }), 'Trove'),
      nav,
      el('button', { type: 'button', id: 'signout', onclick: () => { signOut(''); location.hash = ''; } }, 'Sign out'));
    document.getElementById('root').replaceChildren(header, el('main', { id: 'main' }));
  }
  for (const [k] of PAGES) {
    const a = document.getElementById('nav-' + k);
    if (k === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function route() {
  if (!state.token) { renderSignIn(''); return; }
  stopPage();
  const name = location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
  const page = PAGES.find(([k]) => k === name) || PAGES[0];
  renderShell(page[0]);
  document.title = page[1] + ' · Trove console';
  const main = document.getElementById('main');
  main.dataset.page = '';
  main.replaceChildren(el('p', { class: 'status' }, 'Loading…'));
  try {
    await loadApps();
  } catch (e) {
    if (!state.token) return;
    const box = errorBox('page-error');
    showError(box, e);
    main.replaceChildren(box);
    return;
  }
  if (!state.token) return;
  main.replaceChildren();
  let alive = true;
  const cleanups = [];
  state.cleanup = () => { alive = false; cleanups.forEach((f) => f()); };
  page[2](main, { alive: () => alive, onStop: (f) => cleanups.push(f) });
  main.dataset.page = page[0];
}

// ---- Overview ----------------------------------------------------------------

function renderOverview(main, page) {
  const err = errorBox('overview-error');
  const cards = el('div', { class: 'cards', id: 'overview-cards' });
  const pick = el('select', { id: 'overview-app', onchange: () => last && draw(last) }, el('option', { value: '' }, 'All apps'),
    state.apps.map((a) => el('option', { value: a.appKey }, a.name)));
  const chart = el('div', { class: 'chart', id: 'overview-chart' });
  const tbody = el('tbody', { id: 'overview-apps' });
  const updated = el('span', { class: 'status', id: 'overview-updated' });
  main.append(
    el('div', { class: 'head' }, el('h1', {}, 'Overview'), updated),
    err, cards,
    el('section', { class: 'panel' },
      el('div', { class: 'head' }, el('h2', {}, 'Events per hour, last 7 days (UTC, by eventTime)'), field('App', pick)),
      chart),
    el('section', { class: 'panel' }, el('h2', {}, 'Apps'),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'App'), el('th', { class: 'hide-narrow' }, 'appKey'), el('th', { class: 'num' }, 'Events'),
          el('th', { class: 'num' }, 'Today'), el('th', { class: 'num' }, 'Events/s'), el('th', { class: 'num' }, 'Rejected'),
          el('th', { class: 'num hide-narrow' }, 'Raw size'))),
        tbody))));
  let last = null;
  let timer = 0;

  function draw(ov) {
    last = ov;
    const sum = (f) => ov.apps.reduce((s, a) => s + f(a), 0);
    const card = (label, value, sub, id) => el('div', { class: 'card', id }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value), el('div', { class: 'sub' }, sub));
    cards.replaceChildren(
      card('Events stored', fmtN(sum((a) => a.total)), `${ov.apps.length} apps`, 'card-total'),
      card('Today', fmtN(sum((a) => a.today)), 'eventTime, UTC day', 'card-today'),
      card('Ingest rate', fmtRate(sum((a) => a.ratePerSec)) + ' /s', 'last 10 seconds', 'card-rate'),
      card('Rejected', fmtN(sum((a) => a.rejected)), 'in quarantine', 'card-rejected'),
      card('Storage', fmtBytes(ov.diskUsageBytes), 'data directory on disk', 'card-storage'));
    const chosen = ov.apps.filter((a) => !pick.value || a.appKey === pick.value);
    const hourly = new Array(ov.hours).fill(0);
    for (const a of chosen) a.hourly.forEach((n, i) => { hourly[i] += n; });
    chart.replaceChildren(barChart(hourly, Date.parse(ov.start)));
    tbody.replaceChildren(...(ov.apps.length ? ov.apps.map((a) => el('tr', {},
      el('td', {}, a.name || '(undeclared)'), el('td', { class: 'mono wrap hide-narrow' }, a.appKey),
      el('td', { class: 'num' }, fmtN(a.total)), el('td', { class: 'num' }, fmtN(a.today)),
      el('td', { class: 'num' }, fmtRate(a.ratePerSec)), el('td', { class: 'num' }, fmtN(a.rejected)),
      el('td', { class: 'num hide-narrow' }, fmtBytes(a.rawBytes)))) : [el('tr', { class: 'empty-row' }, el('td', { colspan: 7 }, 'No apps yet: create one on the Apps and tokens page.'))]));
    updated.textContent = 'Updated ' + new Date(ov.computedAt).toLocaleTimeString() + ' · refreshes every 5 s';
  }
  async function refresh() {
    try {
      draw(await apiJSON('/admin/overview'));
      showError(err, null);
    } catch (e) {
      if (page.alive()) showError(err, e);
    }
    if (page.alive()) timer = setTimeout(refresh, 5000);
  }
  page.onStop(() => clearTimeout(timer));
  refresh();
}

// axis returns the y axis for a largest value v: a step of 1, 2 or 5 times
// a power of ten, and the top, a whole number of steps (at most about 5).
function axis(v) {
  const raw = Math.max(1, v / 4);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw);
  return { step, max: Math.max(step, Math.ceil(v / step) * step) };
}

// barChart draws counts, one per hour from startMs, as an SVG bar chart.
function barChart(counts, startMs) {
  const W = 960, H = 240, L = 48, R = 8, T = 10, B = 28;
  const pw = W - L - R, ph = H - T - B;
  const { step, max } = axis(Math.max(...counts));
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Events per hour over the last 7 days' });
  for (let v = 0; v <= max; v += step) {
    const y = T + ph - (ph * v) / max;
    s.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }));
    s.append(svg('text', { class: 'axis', x: L - 6, y: y + 4, 'text-anchor': 'end' }, fmtN(v)));
  }
  const bw = pw / counts.length;
  const hourMs = 3600e3;
  counts.forEach((n, i) => {
    const t = new Date(startMs + i * hourMs);
    if (t.getUTCHours() === 0) {
      const x = L + i * bw;
      s.append(svg('line', { class: 'grid', x1: x, x2: x, y1: T, y2: T + ph }));
      s.append(svg('text', { class: 'axis', x: x + 3, y: H - 8 }, t.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' })));
    }
    if (!n) return;
    const h = Math.max(1, (ph * n) / max);
    const bar = svg('rect', { class: 'bar', x: L + i * bw + 0.5, y: T + ph - h, width: Math.max(1, bw - 1), height: h });
    bar.append(svg('title', {}, `${t.toISOString().slice(0, 13).replace('T', ' ')}:00 UTC: ${fmtN(n)} events`));
    s.append(bar);
  });
  if (counts.every((n) => n === 0)) {
    s.append(svg('text', { class: 'empty', x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle' }, 'No events with an eventTime in the last 7 days'));
  }
  return s;
}

// ---- Live --------------------------------------------------------------------

function renderLive(main, page) {
  const err = errorBox('live-error');
  const app = appSelect('live-app', () => start());
  const pause = el('button', { type: 'button', id: 'live-pause', 'aria-pressed': 'false' }, 'Pause');
  const filter = el('input', { type: 'search', id: 'live-filter', placeholder: 'event name or userId' });
  const clear = el('button', { type: 'button', id: 'live-clear' }, 'Clear');
  const dot = el('span', { class: 'dot' });
  const status = el('span', { class: 'status', id: 'live-status', role: 'status' }, 'Connecting…');
  const tbody = el('tbody', { id: 'live-rows' });
  const detail = el('pre', { id: 'live-json', tabindex: '0' }, 'Select an event to see its JSON.');
  const rejBody = el('tbody', { id: 'live-rejected' });
  const rejButton = el('button', { type: 'button', id: 'live-rejected-refresh' }, 'Refresh');
  main.append(
    el('div', { class: 'head' }, el('h1', {}, 'Live'), el('span', {}, dot, status)),
    err,
    el('div', { class: 'panel row' }, field('App', app), field('Filter', filter, 'grow'), pause, clear),
    el('div', { class: 'live' },
      el('section', { class: 'panel' }, el('h2', {}, 'Events as they are stored'),
        el('div', { class: 'table-wrap events' }, el('table', {},
          el('thead', {}, el('tr', {}, el('th', {}, 'eventTime'), el('th', {}, 'Event'), el('th', {}, 'userId'), el('th', { class: 'hide-narrow' }, 'Attributes'))),
          tbody))),
      el('section', { class: 'panel' }, el('h2', {}, 'Event JSON'), detail)),
    el('section', { class: 'panel' },
      el('div', { class: 'head' }, el('h2', {}, 'Rejected events (quarantine)'), rejButton),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Received'), el('th', {}, 'Reason'), el('th', {}, 'Event or line'))),
        rejBody))));

  let events = []; // newest first, at most LIVE_MAX
  let paused = false, pending = 0, received = 0;
  let ctrl = null, retry = 0;
  let selected = null;

  function matches(ev) {
    const f = filter.value.trim().toLowerCase();
    if (!f) return true;
    return String(ev.event ?? '').toLowerCase().includes(f) || String(ev.userId ?? '').toLowerCase().includes(f);
  }
  function row(ev) {
    const attrs = ev.attributes ? JSON.stringify(ev.attributes) : '';
    const tr = el('tr', { class: 'pick' + (ev === selected ? ' selected' : ''), tabindex: '0' },
      el('td', { class: 'mono time' }, String(ev.eventTime ?? '')), el('td', { class: 'name' }, String(ev.event ?? '')), el('td', { class: 'wrap' }, String(ev.userId ?? '')),
      el('td', { class: 'mono json hide-narrow' }, attrs.length > 90 ? attrs.slice(0, 90) + '…' : attrs));
    const show = () => {
      selected = ev;
      detail.textContent = JSON.stringify(ev, null, 2);
      for (const r of tbody.children) r.classList.remove('selected');
      tr.classList.add('selected');
    };
    tr.addEventListener('click', show);
    tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); show(); } });
    return tr;
  }
  function render() {
    const shown = events.filter(matches);
    tbody.replaceChildren(...(shown.length ? shown.map(row)
      : [el('tr', { class: 'empty-row' }, el('td', { colspan: 4 }, events.length ? 'No event matches the filter.' : 'Waiting for events…'))]));
    updateStatus(shown.length);
  }
  function updateStatus(shown) {
    if (shown == null) shown = events.filter(matches).length;
    dot.className = 'dot ' + (paused ? 'paused' : ctrl ? 'on' : '');
    status.textContent = (paused ? `Paused: ${pending} new events held. ` : ctrl ? 'Streaming. ' : 'Disconnected. ') +
      `${received} received, ${shown} shown.`;
  }
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) { pending = 0; render(); } else updateStatus();
  });
  filter.addEventListener('input', render);
  clear.addEventListener('click', () => { events = []; pending = 0; selected = null; detail.textContent = 'Select an event to see its JSON.'; render(); });

  async function start() {
    if (ctrl) ctrl.abort();
    events = []; pending = 0; received = 0; selected = null;
    render();
    loadRejected();
    const c = new AbortController();
    ctrl = c;
    try {
      // From a little before now: the last stored events, then each new one.
      const ov = await apiJSON('/admin/overview', { signal: c.signal });
      const since = Math.max(0, ov.watermark - 200);
      const res = await api(`/v1/stream/events?appKey=${encodeURIComponent(app.value)}&since=${since}`, { signal: c.signal });
      showError(err, null);
      retry = 0;
      updateStatus();
      for await (const line of lines(res)) {
        if (!line.trim()) continue; // heartbeat
        let ev;
        try { ev = JSON.parse(line); } catch { continue; }
        received++;
        events.unshift(ev);
        if (events.length > LIVE_MAX) events.length = LIVE_MAX;
        if (paused) { pending++; updateStatus(); } else if (matches(ev)) {
          tbody.querySelector('.empty-row')?.remove();
          tbody.prepend(row(ev));
          while (tbody.children.length > LIVE_MAX) tbody.lastChild.remove();
          updateStatus();
        } else updateStatus();
      }
      throw new ApiError(0, 'closed', 'the server closed the stream');
    } catch (e) {
      if (c.signal.aborted || !page.alive()) return;
      if (ctrl === c) ctrl = null;
      updateStatus();
      showError(err, e);
      if (e.status === 401 || e.status === 403 || e.status === 400) return;
      retry = Math.min(retry + 1, 5);
      setTimeout(() => { if (page.alive() && !ctrl) start(); }, 1000 * retry);
    }
  }
  async function loadRejected() {
    try {
      const res = await api(`/v1/export/rejected?appKey=${encodeURIComponent(app.value)}`);
      const recent = [];
      for await (const line of lines(res)) {
        if (!line.trim()) continue;
        try { recent.push(JSON.parse(line)); } catch { continue; }
        if (recent.length > 50) recent.shift();
      }
      recent.reverse();
      rejBody.replaceChildren(...(recent.length ? recent.map((r) => el('tr', {},
        el('td', { class: 'mono time' }, String(r.receivedAt ?? '')),
        el('td', {}, `${r.message ?? ''}`, r.field ? el('div', { class: 'hint' }, `field: ${r.field} · ${r.error ?? ''}`) : null),
        el('td', { class: 'mono json' }, r.event !== undefined ? JSON.stringify(r.event) : String(r.raw ?? '')))) :
        [el('tr', { class: 'empty-row' }, el('td', { colspan: 3 }, 'No rejected events for this app.'))]));
    } catch (e) {
      if (page.alive()) showError(err, e);
    }
  }
  rejButton.addEventListener('click', loadRejected);
  page.onStop(() => { if (ctrl) ctrl.abort(); ctrl = null; });
  if (!state.apps.length) { showError(err, new Error('No apps yet: create one on the Apps and tokens page.')); return; }
  start();
}

// ---- Profiles ----------------------------------------------------------------

const BUILTIN = ['first_name', 'last_name', 'email_id', 'gender', 'date_of_birth', 'date_of_first_use', 'date_of_last_use',
  'phone', 'city', 'country', 'language', 'time_zone'];
const IDENTITY = ['pyze_id', 'userId', 'user_alias', 'created_at', 'updated_at', 'attributes', 'attribute_types'];

function renderProfiles(main, page) {
  const err = errorBox('profile-error');
  const app = appSelect('pf-app');
  const kind = el('select', { id: 'pf-kind' }, el('option', { value: 'userId' }, 'userId'), el('option', { value: 'pyze_id' }, 'pyze_id'), el('option', { value: 'alias' }, 'alias'));
  const value = el('input', { type: 'text', id: 'pf-value', required: true, placeholder: 'user123' });
  const label = el('input', { type: 'text', id: 'pf-alias-label', placeholder: 'facebook' });
  const labelField = field('alias_label', label);
  labelField.hidden = true;
  const result = el('div', { id: 'pf-result' });
  const button = el('button', { type: 'submit', class: 'primary', id: 'pf-lookup' }, 'Look up');
  const valueLabel = el('label', { for: 'pf-value' }, 'userId');
  kind.addEventListener('change', () => {
    labelField.hidden = kind.value !== 'alias';
    valueLabel.textContent = kind.value === 'alias' ? 'alias_id' : kind.value;
  });
  const form = el('form', { class: 'panel row', onsubmit: (e) => { e.preventDefault(); lookup(); } },
    field('App', app), field('Look up by', kind), labelField,
    el('div', { class: 'field grow' }, valueLabel, value), button);
  main.append(el('h1', {}, 'Profiles'), err, form, result);
  value.focus();

  async function lookup() {
    showError(err, null);
    const q = new URLSearchParams({ appKey: app.value });
    if (kind.value === 'alias') { q.set('alias_label', label.value); q.set('alias_id', value.value); } else q.set(kind.value, value.value);
    button.disabled = true;
    result.replaceChildren(el('p', { class: 'status' }, 'Looking up…'));
    let profile = null;
    try {
      profile = await apiJSON('/v1/users/profile?' + q);
    } catch (e) {
      if (e.status !== 404) { showError(err, e); result.replaceChildren(); button.disabled = false; return; }
    }
    button.disabled = false;
    if (!page.alive()) return;
    const userId = profile ? profile.userId : (kind.value === 'userId' ? value.value : null);
    const left = el('section', { class: 'panel', id: 'pf-profile' });
    if (!profile) {
      left.append(el('h2', {}, 'No profile'), el('p', { class: 'hint' }, 'No profile of this app has that identity.'));
    } else {
      const dl = (entries) => el('dl', { class: 'fields' }, entries.map(([k, v]) => [el('dt', {}, k), el('dd', { class: typeof v === 'string' ? '' : 'mono' }, typeof v === 'string' ? v : JSON.stringify(v))]));
      const aliases = (profile.user_alias || []).map((a) => `${a.alias_label}: ${a.alias_id}`).join(', ');
      const ident = [['pyze_id', profile.pyze_id], ['userId', profile.userId ?? '—'], ['aliases', aliases || '—'], ['created_at', profile.created_at], ['updated_at', profile.updated_at]];
      // Built-in fields, then anything else at the top level that a newer
      // server may add.
      const builtin = BUILTIN.filter((k) => k in profile).map((k) => [k, profile[k]])
        .concat(Object.keys(profile).filter((k) => !BUILTIN.includes(k) && !IDENTITY.includes(k)).sort().map((k) => [k, profile[k]]));
      const attrs = profile.attributes || {};
      const types = profile.attribute_types || {};
      const custom = Object.keys(attrs).sort().map((k) => [k, attrs[k], types[k]]);
      left.append(el('h2', {}, 'Profile'), dl(ident),
        el('h2', {}, 'Fields'), builtin.length ? dl(builtin) : el('p', { class: 'hint' }, 'No built-in fields.'),
        el('h2', {}, 'Attributes'), custom.length ? el('dl', { class: 'fields', id: 'pf-attributes' }, custom.map(([k, v, t]) => [
          el('dt', {}, k),
          el('dd', {}, el('span', { class: typeof v === 'string' ? '' : 'mono' }, typeof v === 'string' ? v : JSON.stringify(v)), ' ', t ? el('span', { class: 'pill' }, t) : null)])) :
          el('p', { class: 'hint' }, 'No custom attributes.'));
    }
    const right = el('section', { class: 'panel', id: 'pf-events-panel' }, el('h2', {}, 'Recent events'));
    result.replaceChildren(el('div', { class: 'cols' }, left, right));
    if (userId) loadEvents(app.value, userId, right);
    else right.append(el('p', { class: 'hint' }, 'This profile has no userId, so no events name it.'));
  }

  async function loadEvents(appKey, userId, box) {
    const from = new Date(Date.now() - 90 * 864e5).toISOString().slice(0, 10);
    const tbody = el('tbody', { id: 'pf-events' });
    const note = el('p', { class: 'hint' }, 'Loading…');
    box.append(note, el('div', { class: 'table-wrap' }, el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'eventTime'), el('th', {}, 'Event'), el('th', { class: 'hide-narrow' }, 'Attributes'))), tbody)));
    try {
      const res = await api(`/v1/export/events?appKey=${encodeURIComponent(appKey)}&userId=${encodeURIComponent(userId)}&from=${from}`);
      const recent = [];
      let n = 0;
      for await (const line of lines(res)) {
        if (!line.trim()) continue;
        n++;
        try { recent.push(JSON.parse(line)); } catch { continue; }
        if (recent.length > 50) recent.shift();
      }
      recent.reverse();
      note.textContent = n ? `The ${recent.length} most recent of ${fmtN(n)} events since ${from} (by eventTime).` : `No events since ${from}.`;
      tbody.replaceChildren(...recent.map((ev) => el('tr', {}, el('td', { class: 'mono time' }, String(ev.eventTime ?? '')), el('td', { class: 'name' }, String(ev.event ?? '')),
        el('td', { class: 'mono json hide-narrow' }, ev.attributes ? JSON.stringify(ev.attributes) : ''))));
    } catch (e) {
      note.textContent = '';
      if (page.alive()) showError(err, e);
    }
  }
}

// ---- Export ------------------------------------------------------------------

function renderExport(main, page) {
  const err = errorBox('export-error');
  const app = appSelect('ex-app', () => update());
  const input = (id, ph) => el('input', { type: 'text', id, placeholder: ph, oninput: () => update() });
  const from = input('ex-from', '2026-11-01 or 2026-11-01T00:00:00Z');
  const to = input('ex-to', '2026-12-01 (exclusive)');
  const events = input('ex-events', 'signup,purchase');
  const user = input('ex-user', 'user123');
  const comp = el('select', { id: 'ex-compression', onchange: () => update() },
    el('option', { value: 'none' }, 'none (.ndjson)'), el('option', { value: 'gzip' }, 'gzip (.ndjson.gz)'), el('option', { value: 'zstd' }, 'zstd (.ndjson.zst)'));
  const button = el('button', { type: 'submit', class: 'primary', id: 'ex-download' }, 'Download');
  const status = el('p', { class: 'status', id: 'ex-status', role: 'status' });
  const curl = el('pre', { id: 'ex-curl' });
  const cli = el('pre', { id: 'ex-cli' });
  const cmd = (pre) => el('div', { class: 'cmd' }, pre, el('button', { type: 'button', onclick: (e) => copyText(pre.textContent, e.target) }, 'Copy'));
  const form = el('form', { class: 'panel', onsubmit: (e) => { e.preventDefault(); download(); } },
    el('div', { class: 'row' }, field('App', app), field('From (eventTime ≥)', from, 'grow'), field('To (eventTime <)', to, 'grow')),
    el('div', { class: 'row' }, field('Events (comma-separated)', events, 'grow'), field('userId', user, 'grow'), field('Compression', comp), button),
    el('p', { class: 'hint' }, 'The browser builds the file from the export stream, so it holds it in memory: for very large exports use one of the commands below.'),
    status);
  main.append(el('h1', {}, 'Export'), err, form,
    el('section', { class: 'panel' }, el('h2', {}, 'The same export from a shell'),
      el('label', {}, 'curl'), cmd(curl), el('label', {}, 'trove export (token from TROVE_TOKEN)'), cmd(cli)));

  const ext = { none: '.ndjson', gzip: '.ndjson.gz', zstd: '.ndjson.zst' };
  function params() {
    const q = new URLSearchParams({ appKey: app.value });
    if (from.value.trim()) q.set('from', from.value.trim());
    if (to.value.trim()) q.set('to', to.value.trim());
    if (events.value.trim()) q.set('event', events.value.replace(/\s*,\s*/g, ',').trim());
    if (user.value.trim()) q.set('userId', user.value.trim());
    return q;
  }
  function filename() { return `${appName(app.value).replace(/[^A-Za-z0-9_-]+/g, '_')}-events${ext[comp.value]}`; }
  function update() {
    const q = params();
    const url = `${location.origin}/v1/export/events?${q}`;
    const enc = comp.value === 'none' ? '' : ` -H 'Accept-Encoding: ${comp.value}'`;
    curl.textContent = `curl -fS -H "Authorization: Bearer $TROVE_TOKEN"${enc} -o ${shellQuote(filename())} ${shellQuote(url)}`;
    const flags = [['--server', location.origin], ['--app', app.value], ['--from', q.get('from')], ['--to', q.get('to')],
      ['--event', q.get('event')], ['--user', q.get('userId')], ['-o', filename()]].filter(([, v]) => v);
    cli.textContent = 'trove export events ' + flags.map(([f, v]) => `${f} ${shellQuote(v)}`).join(' ');
  }
  update();

  async function download() {
    showError(err, null);
    const name = filename();
    let format = comp.value;
    if (format !== 'none') {
      try { new CompressionStream(format); } catch {
        showError(err, new Error(`This browser cannot write ${format}: choose another compression, or use the commands below.`));
        return;
      }
    }
    button.disabled = true;
    status.textContent = 'Starting the export…';
    try {
      const res = await api('/v1/export/events?' + params() + '&download=1');
      let nLines = 0, bytes = 0;
      const counter = new TransformStream({
        transform(chunk, ctl) {
          bytes += chunk.length;
          for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) nLines++;
          status.textContent = `Receiving… ${fmtN(nLines)} events, ${fmtBytes(bytes)}`;
          ctl.enqueue(chunk);
        },
      });
      // The browser has already undone the transfer's Content-Encoding.
      let body = res.body.pipeThrough(counter);
      if (format !== 'none') body = body.pipeThrough(new CompressionStream(format));
      const blob = await new Response(body).blob();
      const a = el('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60e3);
      status.textContent = `Downloaded ${fmtN(nLines)} events (${fmtBytes(bytes)} of NDJSON) as ${name}. Watermark ${res.headers.get('X-Trove-Watermark')}: pass it as since= for the next incremental export.`;
    } catch (e) {
      status.textContent = '';
      if (page.alive()) showError(err, e);
    }
    button.disabled = false;
  }
}

// ---- Contracts and quarantine ------------------------------------------------

// QUARANTINE_FIELDS bounds the fields counted per reason; the rest are
// counted together, so a quarantine of any size takes bounded memory here.
const QUARANTINE_FIELDS = 20;

function renderContracts(main, page) {
  const err = errorBox('ct-error');
  const app = appSelect('ct-app', () => { drawSchemas(); loadQuarantine(); });
  const policy = el('p', { class: 'hint', id: 'ct-policy' });
  const rows = el('tbody', { id: 'ct-rows' });
  const view = el('pre', { id: 'ct-view', class: 'schema', hidden: true });
  const eventIn = el('input', { type: 'text', id: 'ct-event', required: true, placeholder: 'Checkout Completed' });
  const schemaIn = el('textarea', { id: 'ct-schema', required: true, rows: 9, spellcheck: false,
    placeholder: '{"properties":{"attributes":{"required":["revenue"],"properties":{"revenue":{"type":"number"}}}}}' });
  const put = el('button', { type: 'submit', class: 'primary', id: 'ct-put' }, 'Save as a new version');
  const ctStatus = el('p', { class: 'status', id: 'ct-status', role: 'status' });
  const qErr = errorBox('q-error');
  const qStatus = el('p', { class: 'status', id: 'q-status', role: 'status' });
  const qRows = el('tbody', { id: 'q-rows' });
  const qResult = el('p', { class: 'status', id: 'q-result', role: 'status' });
  const qRefresh = el('button', { type: 'button', id: 'q-refresh', onclick: () => loadQuarantine() }, 'Refresh');
  const qAll = el('button', { type: 'button', class: 'primary', id: 'q-replay-all', onclick: () => replay('', qAll) }, 'Replay all');

  main.append(el('h1', {}, 'Contracts and quarantine'), err,
    el('div', { class: 'row panel' }, field('App', app)),
    el('section', { class: 'panel' }, el('h2', {}, 'Contracts'), policy,
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Event'), el('th', { class: 'num' }, 'Version'), el('th', { class: 'hide-narrow' }, 'Updated'), el('th', {}, ''))),
        rows)),
      view,
      el('form', { id: 'ct-form', onsubmit: (e) => { e.preventDefault(); save(); } },
        el('h2', {}, 'New contract or version'),
        el('div', { class: 'row' }, field('Event name', eventIn, 'grow')),
        el('div', { class: 'row' }, field('JSON Schema (draft 2020-12), applied to the whole stored event', schemaIn, 'grow')),
        el('div', { class: 'row' }, put), ctStatus)),
    el('section', { class: 'panel' },
      el('div', { class: 'head' }, el('h2', {}, 'Quarantine'), el('div', { class: 'checks' }, qRefresh, qAll)),
      el('p', { class: 'hint' }, 'Events refused at the door, by reason. A replay checks them again against today\'s rules and contracts and stores those that now pass, once each.'),
      qErr, qStatus,
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Reason'), el('th', { class: 'num' }, 'Events'), el('th', {}, 'Fields'), el('th', {}, 'Latest sample'), el('th', {}, ''))),
        qRows)),
      qResult));

  // The quarantine is read as a stream, counted as it arrives; a new read
  // or leaving the page stops the one under way.
  let ctrl = null;
  page.onStop(() => { if (ctrl) ctrl.abort(); ctrl = null; });

  function showSchema(s) {
    view.hidden = false;
    view.textContent = `${s.event} · version ${s.version}\n` + JSON.stringify(s.schema, null, 2);
    eventIn.value = s.event;
    schemaIn.value = JSON.stringify(s.schema, null, 2);
  }
  async function drawSchemas() {
    showError(err, null);
    view.hidden = true;
    try {
      const r = await apiJSON(`/admin/apps/${encodeURIComponent(app.value)}/schemas`);
      if (!page.alive()) return;
      policy.textContent = `schema_mode = "${r.schemaMode}" · schema_unknown = "${r.schemaUnknown}" (set per app in the config file)` +
        (r.schemaMode === 'off' ? ': contracts are kept but not applied until schema_mode is warn or reject.' : '.');
      const list = r.schemas || [];
      rows.replaceChildren(...(list.length ? list.map((s) => {
        const del = confirmButton('Delete', { class: 'ct-delete', 'aria-label': `Delete the contract of ${s.event}` }, async () => {
          try {
            const d = await apiJSON(`/admin/apps/${encodeURIComponent(app.value)}/schemas/${encodeURIComponent(s.event)}`, { method: 'DELETE' });
            ctStatus.textContent = `Deleted the contract of ${d.event} (version ${d.version}): its events are now events without a contract (schema_unknown).`;
            await drawSchemas();
            return true;
          } catch (e) { showError(err, e); return false; }
        });
        return el('tr', { 'data-event': s.event },
          el('td', { class: 'name' }, s.event), el('td', { class: 'num' }, String(s.version)),
          el('td', { class: 'mono time hide-narrow' }, s.updatedAt || ''),
          el('td', { class: 'actions' }, el('button', { type: 'button', class: 'ct-view', onclick: () => showSchema(s) }, 'View'), ' ', del));
      }) : [el('tr', { class: 'empty-row' }, el('td', { colspan: 4 }, 'No contracts for this app yet.'))]));
    } catch (e) { if (page.alive()) showError(err, e); }
  }
  async function save() {
    showError(err, null);
    ctStatus.textContent = '';
    const text = schemaIn.value.trim();
    try { JSON.parse(text); } catch (e) {
      showError(err, new Error('The schema is not JSON: ' + e.message + '. Paste a JSON Schema object.'));
      return;
    }
    put.disabled = true;
    try {
      const s = await apiJSON(`/admin/apps/${encodeURIComponent(app.value)}/schemas/${encodeURIComponent(eventIn.value.trim())}`,
        { method: 'PUT', body: text, headers: { 'Content-Type': 'application/json' } });
      ctStatus.textContent = `Saved the contract of ${s.event} as version ${s.version}. It applies to events received from now on; replay the quarantine to re-check those refused before.`;
      await drawSchemas();
    } catch (e) { showError(err, e); }
    put.disabled = false;
  }

  async function loadQuarantine() {
    if (ctrl) ctrl.abort();
    const mine = new AbortController();
    ctrl = mine;
    showError(qErr, null);
    qStatus.textContent = 'Reading the quarantine…';
    const groups = new Map();
    let total = 0;
    try {
      const res = await api(`/v1/export/rejected?appKey=${encodeURIComponent(app.value)}`, { signal: mine.signal });
      for await (const line of lines(res)) {
        if (!line.trim()) continue;
        let r;
        try { r = JSON.parse(line); } catch { continue; }
        total++;
        const code = r.error || 'unknown';
        let g = groups.get(code);
        if (!g) { g = { code, count: 0, fields: new Map(), other: 0, sample: null }; groups.set(code, g); }
        g.count++;
        const f = r.field || '(none)';
        if (g.fields.has(f) || g.fields.size < QUARANTINE_FIELDS) g.fields.set(f, (g.fields.get(f) || 0) + 1); else g.other++;
        g.sample = r;
        if (total % 5000 === 0) qStatus.textContent = `Reading the quarantine… ${fmtN(total)} events`;
      }
    } catch (e) {
      if (e.name === 'AbortError' || !page.alive()) return;
      qStatus.textContent = '';
      showError(qErr, e);
      return;
    }
    if (ctrl !== mine) return;
    ctrl = null;
    const list = [...groups.values()].sort((a, b) => b.count - a.count);
    qStatus.textContent = total ? `${fmtN(total)} quarantined events, ${list.length} ${list.length === 1 ? 'reason' : 'reasons'}.` : '';
    qAll.disabled = total === 0;
    qRows.replaceChildren(...(list.length ? list.map((g) => {
      const fields = [...g.fields.entries()].sort((a, b) => b[1] - a[1]);
      const s = g.sample;
      const b = el('button', { type: 'button', class: 'q-replay', 'data-reason': g.code, 'aria-label': `Replay the ${g.code} events` }, 'Replay');
      b.addEventListener('click', () => replay(g.code, b));
      return el('tr', { 'data-reason': g.code },
        el('td', { class: 'mono name' }, g.code),
        el('td', { class: 'num' }, fmtN(g.count)),
        el('td', { class: 'mono' }, fields.map(([f, n]) => el('div', { class: 'nowrap' }, `${f} × ${fmtN(n)}`)),
          g.other ? el('div', { class: 'hint' }, `${fmtN(g.other)} more in other fields`) : null),
        el('td', { class: 'json' }, el('div', {}, s.message || ''),
          el('div', { class: 'mono hint' }, s.event !== undefined ? JSON.stringify(s.event) : String(s.raw ?? ''))),
        el('td', {}, b));
    }) : [el('tr', { class: 'empty-row' }, el('td', { colspan: 5 }, 'The quarantine of this app is empty.'))]));
  }
  async function replay(reason, button) {
    showError(qErr, null);
    qResult.textContent = `Replaying${reason ? ' the ' + reason + ' events' : ''}…`;
    button.disabled = true;
    const q = new URLSearchParams({ appKey: app.value });
    if (reason) q.set('reason', reason);
    try {
      const r = await apiJSON('/admin/quarantine/replay?' + q, { method: 'POST' });
      qResult.replaceChildren(el('span', { class: r.replayed ? 'ok' : '' },
        `Replay${reason ? ' of ' + reason : ''}: ${fmtN(r.replayed)} stored, ${fmtN(r.stillRejected)} still rejected (with today's reason), ` +
        `${fmtN(r.duplicates || 0)} already stored (their messageId was).`));
      await loadQuarantine();
    } catch (e) {
      qResult.textContent = '';
      if (page.alive()) showError(qErr, e);
    }
    button.disabled = false;
  }

  if (!state.apps.length) { showError(err, new Error('No apps yet: create one on the Apps and tokens page.')); return; }
  drawSchemas();
  loadQuarantine();
}

// ---- Apps and tokens ---------------------------------------------------------

function renderApps(main, page) {
  const err = errorBox('apps-error');
  const appsBody = el('tbody', { id: 'apps-rows' });
  const tokBody = el('tbody', { id: 'tokens-rows' });
  const appNameIn = el('input', { type: 'text', id: 'app-name', required: true, placeholder: 'shop' });
  const requireTok = el('input', { type: 'checkbox', id: 'app-require' });
  const tokName = el('input', { type: 'text', id: 'tok-name', required: true, placeholder: 'shop-backend' });
  const scopes = ['ingest', 'export', 'admin'].map((s) => el('input', { type: 'checkbox', id: 'tok-scope-' + s, value: s, checked: s !== 'admin' }));
  const allApps = el('input', { type: 'checkbox', id: 'tok-all' });
  const tokApps = el('select', { id: 'tok-apps', multiple: true });
  const secretBox = el('div', { id: 'tok-secret-box' });
  allApps.addEventListener('change', () => { tokApps.disabled = allApps.checked; });

  main.append(el('h1', {}, 'Apps and tokens'), err,
    el('section', { class: 'panel' }, el('h2', {}, 'Apps'),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'appKey'), el('th', { class: 'hide-narrow' }, 'Source'), el('th', { class: 'hide-narrow' }, 'Token required'), el('th', { class: 'hide-narrow' }, 'Created'))),
        appsBody)),
      el('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); createApp(); } },
        field('New app name', appNameIn, 'grow'),
        el('div', { class: 'checks' }, el('label', {}, requireTok, 'Require a token to ingest')),
        el('button', { type: 'submit', class: 'primary', id: 'app-create' }, 'Create app'))),
    el('section', { class: 'panel' }, el('h2', {}, 'Tokens'),
      el('div', { class: 'table-wrap' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'id'), el('th', {}, 'Name'), el('th', {}, 'Scopes'), el('th', { class: 'hide-narrow' }, 'Apps'), el('th', { class: 'hide-narrow' }, 'Source'), el('th', {}, ''))),
        tokBody)),
      el('form', { id: 'tok-form', onsubmit: (e) => { e.preventDefault(); createToken(); } },
        el('h2', {}, 'New token'),
        // One row per kind of control, so a tall control (the apps list)
        // never leaves an empty block beside short ones.
        el('div', { class: 'row' }, field('Name', tokName, 'grow'),
          el('fieldset', { class: 'field scopes' }, el('legend', {}, 'Scopes'), el('div', { class: 'checks' }, scopes.map((c) => el('label', {}, c, c.value))))),
        el('div', { class: 'row' },
          el('div', { class: 'field grow' }, el('label', { for: 'tok-apps' }, 'Apps'), tokApps, el('label', { class: 'checks' }, allApps, 'every app, present and future'))),
        el('div', { class: 'row' }, el('button', { type: 'submit', class: 'primary', id: 'tok-create' }, 'Create token')),
        secretBox)));

  function drawApps() {
    appsBody.replaceChildren(...state.apps.map((a) => el('tr', {},
      el('td', {}, a.name), el('td', { class: 'mono wrap' }, a.appKey), el('td', { class: 'hide-narrow' }, a.source),
      el('td', { class: 'hide-narrow' }, a.requireToken ? 'yes' : 'no'), el('td', { class: 'mono time hide-narrow' }, a.createdAt || ''))));
    const chosen = new Set([...tokApps.selectedOptions].map((o) => o.value));
    tokApps.replaceChildren(...state.apps.map((a) => el('option', { value: a.appKey, selected: chosen.has(a.appKey) }, `${a.name} (${a.appKey})`)));
  }
  async function drawTokens() {
    const r = await apiJSON('/admin/tokens');
    tokBody.replaceChildren(...(r.tokens || []).map((t) => {
      const cell = el('td', {});
      if (t.source === 'api') {
        cell.append(confirmButton('Revoke', { class: 'revoke', 'data-id': t.id, 'aria-label': `Revoke token ${t.name}` }, async () => {
          try {
            await apiJSON('/admin/tokens/' + encodeURIComponent(t.id), { method: 'DELETE' });
            showError(err, null);
            await drawTokens();
            return true;
          } catch (e) { showError(err, e); return false; }
        }));
      } else cell.append(el('span', { class: 'hint' }, t.source === 'config' ? 'config file' : 'admin token'));
      return el('tr', { 'data-id': t.id },
        el('td', { class: 'mono' }, t.id), el('td', {}, t.name), el('td', {}, (t.scopes || []).map((s) => el('span', { class: 'pill' }, s))),
        el('td', { class: 'mono wrap hide-narrow' }, (t.apps || []).map((k) => (k === '*' ? 'every app' : appName(k))).join(', ')),
        el('td', { class: 'hide-narrow' }, t.source), cell);
    }));
  }
  async function createApp() {
    try {
      const a = await postJSON('/admin/apps', { name: appNameIn.value, requireToken: requireTok.checked });
      appNameIn.value = '';
      showError(err, null);
      await loadApps();
      drawApps();
      secretBox.replaceChildren(el('p', { class: 'ok', role: 'status' }, `Created app ${a.name} with appKey ${a.appKey}.`));
    } catch (e) { showError(err, e); }
  }
  async function createToken() {
    const body = {
      name: tokName.value,
      scopes: scopes.filter((c) => c.checked).map((c) => c.value),
      apps: allApps.checked ? ['*'] : [...tokApps.selectedOptions].map((o) => o.value),
    };
    try {
      const t = await postJSON('/admin/tokens', body);
      showError(err, null);
      tokName.value = '';
      const secret = el('input', { type: 'text', id: 'tok-secret', readOnly: true, value: t.token, 'aria-label': 'New token secret' });
      secretBox.replaceChildren(el('div', { class: 'secret', role: 'status' },
        el('strong', {}, `Token ${t.name} (id ${t.id}) created. Copy its secret now: it is shown this once, and Trove keeps only its SHA-256.`),
        secret,
        el('button', { type: 'button', id: 'tok-copy', onclick: (e) => copyText(t.token, e.target) }, 'Copy'),
        el('button', { type: 'button', onclick: () => secretBox.replaceChildren() }, 'Done')));
      secret.select();
      await drawTokens();
    } catch (e) { showError(err, e); }
  }
  drawApps();
  drawTokens().catch((e) => { if (page.alive()) showError(err, e); });
}

window.addEventListener('hashchange', () => { route(); });
route();
