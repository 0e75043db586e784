'use strict';
// Everything shown comes from strangers (file names, labels, error texts): it reaches the page
// only as text, or through html`...`, which escapes every value it is given.
const csrf = document.querySelector('meta[name=csrf]').content;
const $ = (q) => document.querySelector(q);
const ESCAPES = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
class Html { constructor(text) { this.text = text; } }
const escaped = (value) => value instanceof Html ? value.text
  : Array.isArray(value) ? value.map(escaped).join('') : String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
const html = (strings, ...values) => new Html(strings.reduce((out, s, i) => out + s + (i < values.length ? escaped(values[i]) : ''), ''));
const put = (el, fragment) => { el.innerHTML = fragment.text; };  // the only way markup enters the page
const lists = {results: [], detections: []};
let focused = null, page = 1;

async function call(url, options = {}) {
  options.headers = Object.assign({'x-audioscan-csrf': csrf}, options.headers || {});
  const response = await fetch(url, options);
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) {}
    throw new Error(message);
  }
  return response;
}
const post = (url, body) => call(url, {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
const label = () => $('#label').value.trim() || 'sound';
// the moments search and detections are limited to
const FILTERS = ['site', 'after', 'before', 'hours', 'path', 'channel'];
const filtered = (form) => { for (const f of FILTERS) { const v = $('#f-' + f).value.trim(); if (v) form.append(f, v); } return form; };
const filterQuery = () => FILTERS.map((f) => [f, $('#f-' + f).value.trim()]).filter(([, v]) => v)
  .map(([f, v]) => `&${f}=${encodeURIComponent(v)}`).join('');
const seconds = (s) => (Math.round(s * 10) / 10).toFixed(1) + ' s';

function card(hit, list) {
  const el = document.createElement('div');
  el.className = 'card';
  const q = `start=${hit.start}&end=${hit.end}` + (hit.channel ? `&channel=${hit.channel}` : '');
  put(el, html`<div class="name" title="${hit.path}"></div>
    <div>${seconds(hit.start)} – ${seconds(hit.end)}${hit.channel ? ` · channel ${hit.channel}` : ''} · score
      <b class="score">${hit.score.toFixed(3)}</b></div>
    ${hit.datetime || hit.site ? html`<div class="clock" title="when the recording says this moment began, and its site">${
      [hit.datetime, hit.site && 'site ' + hit.site].filter(Boolean).join(' · ')}</div>` : ''}
    <div class="peak">sound at <b>${seconds(hit.peak ?? (hit.start + hit.end) / 2)}</b>${hit.onset == null ? '' :
      html` (${seconds(hit.onset)} – ${seconds(hit.offset)})`}</div>
    <img alt="spectrogram" loading="lazy" src="/media/${hit.media_id}/spectrogram.png?${q}">
    <audio controls preload="none" src="/media/${hit.media_id}/audio?${q}"></audio>
    <div class="row"><button class="yes">✓</button><button class="no">✗</button>
    <button class="more">more like this</button><span class="judged"></span></div>`);
  el.querySelector('.name').textContent = hit.name;
  el.querySelector('.yes').onclick = () => judge(el, hit, true);
  el.querySelector('.no').onclick = () => judge(el, hit, false);
  el.querySelector('.more').onclick = () => searchWindow(hit);
  el.onclick = () => setFocus(el);
  el.hit = hit;
  return el;
}

function show(list, hits) {
  lists[list] = hits;
  const box = $('#' + list);
  box.replaceChildren(...hits.map((h) => card(h, list)));
  setFocus(box.firstChild);
}

function setFocus(el) {
  if (focused) focused.classList.remove('focus');
  focused = el;
  if (el) { el.classList.add('focus'); el.scrollIntoView({block: 'nearest'}); }
}

async function judge(el, hit, positive) {
  const made = await (await post('/api/labels', {media_id: hit.media_id, start: hit.start, end: hit.end,
                                                 label: label(), positive, channel: hit.channel || 0})).json();
  put(el.querySelector('.judged'), positive ? html`<span class="yes">labelled ✓</span>` : html`<span class="no">labelled ✗</span>`);
  el.dataset.labelId = made.id;
  loadLabels();
}

async function search() {
  const file = $('#clip').files[0];
  if (!file) { $('#search-status').textContent = 'choose a clip first'; return; }
  const form = new FormData();
  form.append('clip', file); form.append('k', $('#k').value);
  if ($('#sets').value) form.append('sets', $('#sets').value);
  if ($('#start').value) form.append('start', $('#start').value);
  if ($('#end').value) form.append('end', $('#end').value);
  $('#search-status').textContent = 'searching…';
  const t0 = performance.now();
  try {
    const found = await (await call('/api/search', {method: 'POST', body: filtered(form)})).json();
    show('results', found.hits);
    $('#search-status').textContent = `${found.hits.length} moments in ${Math.round(performance.now() - t0)} ms`;
  } catch (e) { put($('#search-status'), html`<span class="err">${e.message}</span>`); }
}

async function searchWindow(hit) {
  const form = new FormData();
  form.append('media_id', hit.media_id); form.append('at', (hit.start + hit.end) / 2); form.append('k', $('#k').value);
  if (hit.channel) form.append('from_channel', hit.channel);
  if ($('#sets').value) form.append('sets', $('#sets').value);
  const found = await (await call('/api/search', {method: 'POST', body: filtered(form)})).json();
  tab('search'); show('results', found.hits);
}

let labelsAsked = 0;
async function loadLabels() {
  const asked = ++labelsAsked;  // answers can arrive out of order: only the newest question is shown
  const found = await (await call('/api/labels?label=' + encodeURIComponent(label()))).json();
  if (asked !== labelsAsked) return;
  const rows = found.labels.map((l) => html`<tr><td class="${l.negative ? 'no' : 'yes'}">${l.negative ? '✗' : '✓'}</td>
    <td>${l.path.split('/').pop()}${l.channel ? ` · channel ${l.channel}` : ''}</td>
    <td>${seconds(l.start)} – ${seconds(l.end)}</td>
    <td><button data-undo="${l.id}">undo</button></td></tr>`);
  put($('#labels'), html`<table>${rows}</table>`);
  $('#labels').querySelectorAll('[data-undo]').forEach((b) => b.onclick = async () => {
    await call(`/api/labels/${b.dataset.undo}/delete`, {method: 'POST'}); loadLabels(); });
}

async function train() {
  $('#train-report').textContent = 'training…';
  try {
    const r = await (await post('/api/train', {name: label()})).json();
    const warnings = (r.warnings || []).map((w) => html`<div class="warn">⚠ ${w}</div>`);
    put($('#train-report'), html`<div id="figures">${r.name} v${r.version}: ${r.positives} positive / ${r.negatives} negative windows;
      CV AP ${r.cv_ap.toFixed(3)}, ROC AUC ${r.cv_roc_auc.toFixed(3)};
      at ${r.threshold}: precision ${r.cv_precision ?? 'n/a'}, recall ${r.cv_recall ?? 'n/a'}
      ${r.reliable ? html`<span class="yes">reliable</span>` : html`<span class="warn">not reliable yet</span>`}</div>${warnings}`);
    loadVersions();
  } catch (e) { put($('#train-report'), html`<span class="err">${e.message}</span>`); }
}

async function rescore(number = 1) {
  page = number;
  const found = await (await call(`/api/detections?name=${encodeURIComponent(label())}&threshold=${encodeURIComponent($('#threshold').value || 0)}&page=${page}${filterQuery()}`)).json();
  show('detections', found.hits);
  const pages = Math.max(1, Math.ceil(found.total / 20));
  put($('#pages'), html`${found.total} detections, best first · page ${page} of ${pages}
    <button id="prev">‹</button><button id="next">›</button>`);
  $('#prev').disabled = page <= 1;
  $('#next').disabled = page >= pages;
  $('#prev').onclick = () => rescore(page - 1);
  $('#next').onclick = () => rescore(page + 1);
  drawSummary().catch((e) => put($('#summary'), html`<span class="err">${e.message}</span>`));
}

// Detections per hour, day or site, as bars of detections per hour of audio (the rate, which the
// hours behind each count make comparable); drawn here as SVG from numbers, with no script from elsewhere.
async function drawSummary() {
  const by = $('#summary-by').value;
  if (!by) { $('#summary').textContent = ''; return; }
  const found = await (await call(`/api/summary?name=${encodeURIComponent(label())}&by=${by}&threshold=${encodeURIComponent($('#threshold').value || 0)}${filterQuery()}`)).json();
  const rates = found.periods.map((p) => p.hours ? p.detections / p.hours : 0);
  const top = Math.max(1e-9, ...rates), width = 18, height = 120;
  const bars = found.periods.map((p, i) => html`<rect x="${i * width}" y="${height - Math.round(rates[i] / top * height)}"
    width="${width - 2}" height="${Math.round(rates[i] / top * height)}"><title>${p.period}: ${p.detections} detections in ${p.hours.toFixed(2)} h</title></rect>`);
  put($('#summary'), html`<svg class="chart" width="${Math.max(1, found.periods.length) * width}" height="${height}"
    role="img" aria-label="detections per hour of audio, by ${by}">${bars}</svg>
    <div><small>detections per hour of audio, by ${by}; ${found.periods.length} periods (hover a bar)</small></div>`);
}

async function suggestions() {
  const found = await (await call(`/api/suggestions?name=${encodeURIComponent(label())}&n=12${filterQuery()}`)).json();
  show('detections', found.hits);
  $('#pages').textContent = 'the moments the detector is least sure about: judge these next';
}

async function loadVersions() {
  const lib = await (await call('/api/library')).json();
  const rows = lib.detectors.filter((d) => d.name === label()).map((d) => html`<tr><td>v${d.version}</td>
    <td>AP ${d.cv_ap}</td><td>ROC AUC ${d.cv_roc_auc}</td><td>${d.reliable === false ? 'not reliable' : ''}</td>
    <td>${d.created.slice(0, 19)}</td><td><button data-version="${d.version}">roll back to this</button></td></tr>`);
  put($('#versions'), html`<table>${rows}</table>`);
  $('#versions').querySelectorAll('[data-version]').forEach((b) => b.onclick = async () => {
    await post('/api/rollback', {name: label(), version: Number(b.dataset.version)}); loadVersions(); });
}

async function exportList(list, kind) {
  const moments = lists[list].map((h) => ({media_id: h.media_id, start: h.start, end: h.end, score: h.score,
    peak: h.peak ?? null, onset: h.onset ?? null, offset: h.offset ?? null, label: label(), channel: h.channel || 0}));
  const response = await post('/api/export', {kind, moments, length: kind === 'clips' ? 8 : null});
  const name = (response.headers.get('content-disposition') || '').split('filename=')[1]?.replaceAll('"', '') || kind;
  const link = document.createElement('a');
  link.href = URL.createObjectURL(await response.blob()); link.download = name; link.click();
}

// The sets a search may use: every set combined (the default), or one; kept as they come and go.
async function loadSets() {
  const lib = await (await call('/api/library')).json();
  const chosen = $('#sets').value;
  const names = lib.status.sets.map((x) => x.name);
  const options = [html`<option value="">${names.length > 1 ? 'every set, combined' : 'every set'}</option>`,
    ...names.map((name) => html`<option value="${name}">${name}</option>`)];
  put($('#sets'), html`${options}`);
  $('#sets').value = names.includes(chosen) ? chosen : '';
}

async function loadLibrary() {
  const lib = await (await call('/api/library')).json();
  const s = lib.status;
  const sets = s.sets.map((x) => html`<tr><td>${x.name}</td><td>${x.windows} windows</td><td>${x.behind} files behind</td></tr>`);
  const failed = s.failed.map((f) => html`<li>${f.path}: ${f.error}</li>`);
  put($('#status'), html`<p>${s.store}</p><table>${sets}</table>
    <p>${s.media.ok} files indexed, ${s.media.failed} failed, ${s.media.missing} missing, ${s.media.unavailable} unavailable</p><ul>${failed}</ul>`);
}

async function build() {
  try {
    await post('/api/build', {folder: $('#folder').value});
  } catch (e) { put($('#build-status'), html`<span class="err">${e.message}</span>`); return; }
  $('#build-progress').hidden = false;
  const timer = setInterval(async () => {
    const state = await (await call('/api/build')).json();
    $('#build-status').textContent = `${state.files} files, ${state.windows} windows`;
    if (!state.running) {
      clearInterval(timer);
      $('#build-progress').value = 1;
      put($('#build-status'), state.error ? html`<span class="err">${state.error}</span>` :
        html`done: ${state.report.files_indexed} indexed, ${state.report.windows_embedded} windows`);
      loadLibrary();
    }
  }, 300);
}

function tab(name) {
  document.querySelectorAll('section').forEach((s) => s.classList.toggle('on', s.id === name));
  document.querySelectorAll('header [data-tab]').forEach((b) => b.classList.toggle('on', b.dataset.tab === name));
  if (name === 'library') loadLibrary();
  if (name === 'detectors') loadVersions();
}

document.querySelectorAll('header [data-tab]').forEach((b) => b.onclick = () => tab(b.dataset.tab));
document.querySelectorAll('.export button').forEach((b) => b.onclick = () => exportList(b.parentElement.dataset.list, b.dataset.kind));
$('#search').addEventListener('dragover', (e) => e.preventDefault());
$('#search').addEventListener('drop', (e) => {  // drop a clip anywhere on the search tab
  e.preventDefault();
  if (e.dataTransfer.files.length) { $('#clip').files = e.dataTransfer.files; search(); }
});
$('#go').onclick = search; $('#train').onclick = train; $('#rescore').onclick = () => rescore(1);
$('#summary-by').onchange = () => drawSummary().catch((e) => put($('#summary'), html`<span class="err">${e.message}</span>`));
$('#suggest').onclick = suggestions; $('#build').onclick = build; $('#label').onchange = loadLabels;
document.addEventListener('keydown', (e) => {
  if (['INPUT', 'TEXTAREA'].includes(document.activeElement.tagName) || !focused) return;
  const all = [...focused.parentElement.children], at = all.indexOf(focused);
  if (e.key === 'ArrowRight' || e.key === 'ArrowDown') { setFocus(all[Math.min(all.length - 1, at + 1)]); e.preventDefault(); }
  else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') { setFocus(all[Math.max(0, at - 1)]); e.preventDefault(); }
  else if (e.key === ' ') { const a = focused.querySelector('audio'); a.paused ? a.play() : a.pause(); e.preventDefault(); }
  else if (e.key === 'y') judge(focused, focused.hit, true);
  else if (e.key === 'n') judge(focused, focused.hit, false);
});
loadLabels();
loadSets();
$('#sets').onfocus = loadSets;
