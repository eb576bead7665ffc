// cifarnet page: model panel, image input (picker, drag and drop, paste,
// samples) and results. The classifier itself runs in worker.js.
//
// Every result card carries its numbers as data attributes (data-state,
// data-top-index, data-top-label, data-probs, data-ms, data-error-code), which
// the end-to-end tests read.

import {initTeach} from './teach.js'; // rewritten by static/assemble.sh

const WORKER_URL = 'worker.js'; // rewritten by static/assemble.sh
const MAX_FILE_BYTES = 100e6; // 100 MB, the unit rule of trainer info: MB = 10^6 bytes

// A result whose top probability is under this is shown as unsure. Chosen
// by bench/confidence on the default model so that 90 % of the correctly
// classified CIFAR-10 test images pass (bench/RESULTS.md has the figures).
const UNSURE_BELOW = 0.48;

const $ = (sel, root = document) => root.querySelector(sel);

// Labels under the heat strip, where only a few letters fit.
const SHORT_NAMES = {airplane: 'plane', automobile: 'car'};

const ui = {
  status: $('#status'),
  progress: $('#progress'),
  choice: $('#model-choice'),
  select: $('#model-select'),
  facts: $('#model-facts'),
  ttaChoice: $('#tta-choice'),
  tta: $('#tta'),
  ttaViews: $('#tta-views'),
  file: $('#file'),
  drop: $('#drop'),
  results: $('#results'),
  empty: $('#empty'),
  clear: $('#clear'),
  exportCSV: $('#export-csv'),
  exportJSON: $('#export-json'),
  cameraOpen: $('#camera-open'),
  camera: $('#camera'),
  cameraVideo: $('#camera-video'),
  cameraCapture: $('#camera-capture'),
  cameraClose: $('#camera-close'),
  cameraMessage: $('#camera-message'),
  announce: $('#announce'),
  template: $('#result-template'),
};

// Timings for the benchmark (bench/browser.sh reads them back).
const marks = (globalThis.cifarnetMarks = {});
function mark(name) {
  if (!(name in marks)) marks[name] = performance.now();
}

// Content Security Policy violations are collected for the tests: the page
// must not need inline scripts or styles.
globalThis.cifarnetCSPViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  globalThis.cifarnetCSPViolations.push(`${e.violatedDirective}: ${e.blockedURI}`);
});

// ---------------------------------------------------------------- status

function setStatus(text, state = 'loading') {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
}

function setProgress(loaded, total) {
  ui.progress.hidden = false;
  if (total > 0) {
    ui.progress.max = total;
    ui.progress.value = Math.min(loaded, total);
  } else {
    ui.progress.removeAttribute('value'); // indeterminate
  }
}

function hideProgress() {
  ui.progress.hidden = true;
}

// Sizes in decimal units with one decimal, as trainer info prints them.
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
const fmtSize = (n) => (n >= 1e6 ? mb(n) : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} bytes`);
const pct = (p, digits = 1) => `${(p * 100).toFixed(digits)}%`;
// sentence capitalises a Go error message and ends it with a full stop.
const sentence = (m) => `${m.charAt(0).toUpperCase()}${m.slice(1)}${/[.!?]$/.test(m) ? '' : '.'}`;

function progressText(what, loaded, total) {
  return total > 0 ? `${what}: ${mb(loaded)} of ${mb(total)}` : `${what}: ${mb(loaded)}`;
}

// ---------------------------------------------------------------- worker

// A pool of workers, each holding the module and the model once. Images
// wait in one queue and each worker takes the next as it finishes one
// (two at a time, so that it never idles between messages): a drop of
// many images uses every core, helpers that start late get their share,
// and a slow worker holds back only its own two. The
// first worker downloads and compiles the module and drives the status
// line; the others start from its compiled module once the first model is
// in, so that they do not compete with the first image for the CPU.
const POOL_SIZE = Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4));
const pool = []; // {w, primary, ready, jobs: Map id → message}
let compiledModule = null;
let lastLoad = null; // the model load every worker must run, replayed to late joiners
let lastTTA = null;

let loadStarted = 0;
let modelName = ''; // the model in use, if any
let modelInfo = null; // its info (cifarnet.info()), for the export
const pending = new Map(); // id → card
// Images given before a model was asked for wait here, so that the worker
// (which runs requests in order) sees the load first.
let modelRequested = false;
let held = [];

function spawn(primary) {
  const slot = {w: new Worker(WORKER_URL), primary, ready: false, jobs: new Map()};
  slot.w.onmessage = (e) => (primary ? onPrimaryMessage(slot, e.data) : onHelperMessage(slot, e.data));
  slot.w.onerror = (e) => {
    if (primary) {
      hideProgress();
      setStatus(`The classifier failed to start (${e.message || 'worker error'}). Reload the page to try again.`, 'error');
    } else {
      retire(slot);
    }
  };
  pool.push(slot);
  return slot;
}

// broadcast posts a load or setting to every worker, each with its own copy of
// any bytes.
function broadcast(msg) {
  for (const slot of pool) slot.w.postMessage(msg.bytes ? {...msg, bytes: msg.bytes.slice(0)} : msg);
}

// waiting holds the requests no worker has taken yet, in order.
const waiting = [];
const JOBS_PER_WORKER = 2;

// dispatch queues a request for the next free worker.
function dispatch(msg) {
  waiting.push(msg);
  pump();
}

// pump hands queued requests to workers with room. The first worker takes
// them before its model is in (it runs them after the load, in order);
// helpers only once they have the model.
function pump() {
  for (const slot of pool) {
    while (waiting.length > 0 && (slot.ready || slot.primary) && slot.jobs.size < JOBS_PER_WORKER) {
      const msg = waiting.shift();
      slot.jobs.set(msg.id, msg);
      slot.w.postMessage(msg);
    }
  }
}

// grow starts the other workers from the compiled module, with the model
// and TTA choice the first one has.
function grow() {
  if (!compiledModule || !lastLoad) return;
  while (pool.length < POOL_SIZE) {
    const slot = spawn(false);
    slot.w.postMessage({type: 'init', module: compiledModule});
    slot.w.postMessage(lastLoad.bytes ? {...lastLoad, bytes: lastLoad.bytes.slice(0)} : lastLoad);
    if (lastTTA !== null) slot.w.postMessage({type: 'setTTA', on: lastTTA});
  }
}

// retire drops a helper worker that failed; its images go to the others.
function retire(slot) {
  slot.w.terminate();
  pool.splice(pool.indexOf(slot), 1);
  waiting.unshift(...slot.jobs.values());
  pump();
}

function finishJob(slot, msg) {
  slot.jobs.delete(msg.id);
  pump();
  const card = pending.get(msg.id);
  pending.delete(msg.id);
  if (!card) return;
  if (msg.type === 'result') {
    showResult(card, msg.result);
    mark('firstResult');
  } else {
    showError(card, msg.code, friendly(msg.code, msg.message));
  }
}

function onHelperMessage(slot, msg) {
  if (onSaliencyMessage(slot, msg)) return;
  switch (msg.type) {
    case 'ready':
      slot.ready = true;
      pump();
      break;
    case 'loadError':
      // One that never got a model cannot classify; one that had the
      // model keeps it, as the first worker does after a bad weight file.
      if (!slot.ready) retire(slot);
      break;
    case 'result':
    case 'error':
      finishJob(slot, msg);
      break;
  }
}

let latestProgress = null;
function showProgress() {
  const msg = latestProgress;
  latestProgress = null;
  if (ui.status.dataset.state !== 'loading') return; // the model is in, or failed
  if (msg.phase !== 'model' && ui.status.dataset.code === 'no_model') {
    // The model list can come back empty before the classifier has
    // compiled: its progress must not hide the no-model message.
  } else if (msg.phase === 'wasm') {
    setStatus(msg.total > 0 ? progressText('Downloading the classifier', msg.loaded, msg.total) : 'Downloading and compiling the classifier…');
    setProgress(msg.loaded, msg.total);
  } else if (msg.phase === 'compile') {
    setStatus('Starting the classifier…');
    setProgress(0, -1);
  } else {
    setStatus(progressText('Downloading the model weights', msg.loaded, msg.total));
    setProgress(msg.loaded, msg.total);
  }
}

function onPrimaryMessage(slot, msg) {
  if (onSaliencyMessage(slot, msg)) return;
  switch (msg.type) {
    case 'module':
      compiledModule = msg.module;
      break;
    case 'progress':
      if (msg.phase === 'compile') mark('wasmDownloaded');
      if (msg.phase === 'model') mark('wasmReady');
      // A download sends a message per chunk; the status line is redrawn
      // at most once a frame.
      if (!latestProgress) requestAnimationFrame(showProgress);
      latestProgress = msg;
      break;
    case 'ready':
      mark('modelReady');
      slot.ready = true;
      modelName = msg.info.name;
      modelInfo = msg.info;
      registerServiceWorker();
      showModel(msg.info);
      applyTTAChoice(msg.info);
      hideProgress();
      setStatus(`Ready in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s. Everything runs on this device.`, 'ready');
      // After the first image, so that the helpers do not slow it down.
      setTimeout(grow, 0);
      break;
    case 'tta':
      showModel(msg.info);
      break;
    case 'loadError':
      hideProgress();
      setStatus(`${sentence(msg.message)}${modelName ? ` Still using ${modelName}.` : ''}`, 'error');
      ui.status.dataset.code = msg.code;
      break;
    case 'result':
    case 'error':
      finishJob(slot, msg);
      break;
  }
}

spawn(true).w.postMessage({type: 'start'}); // download and compile while the model list loads

function loadModel(entry) {
  loadStarted = performance.now();
  setStatus(`Loading ${entry.file}…`);
  setProgress(0, entry.size || -1);
  lastLoad = {type: 'load', url: entry.url, size: entry.size};
  broadcast(lastLoad);
  modelRequested = true;
  flushHeld();
}

function flushHeld() {
  for (const msg of held) dispatch(msg);
  held = [];
}

// ---------------------------------------------------------------- models

// The site lists its models in models/manifest.json; bin/server also
// lists a live models directory at api/models and says so with the
// X-Cifarnet-Models header on every response. Asking api/models only when
// told keeps a plain static host free of an expected 404 in the console.
// Both lists are {models: [{file, url, size, latest, default, ...}]}.
async function listModels() {
  const read = async (url) => {
    const resp = await fetch(url, {headers: {Accept: 'application/json'}});
    if (!resp.ok || !(resp.headers.get('Content-Type') || '').includes('json')) return {resp, list: null};
    const body = await resp.json();
    return {resp, list: body && Array.isArray(body.models) ? body.models.filter((m) => !m.error && m.url) : null};
  };
  let live = '';
  let built = null;
  try {
    const {resp, list} = await read('models/manifest.json');
    live = resp.headers.get('X-Cifarnet-Models') || '';
    if (list && !live) return list;
    built = list;
  } catch {
    // Offline or not served: the live list may still answer.
  }
  try {
    const {list} = await read(live || 'api/models');
    if (list) return list;
  } catch {
    // Offline with no cached live list: the site's own list will do.
  }
  return built || [];
}

// Short enough for the selector's width; the option's title has the rest.
function describeEntry(m) {
  const acc = m.provenance && m.provenance.test_accuracy ? `${pct(m.provenance.test_accuracy)} test` : 'accuracy not recorded';
  return `${m.file.replace(/\.cnw$/, '')} · ${acc} · ${fmtSize(m.size)}`;
}

function showModel(info) {
  const fact = (name, text) => {
    $(`[data-fact="${name}"]`, ui.facts).textContent = text;
  };
  fact('name', info.name);
  fact('arch', `${info.spec}, ${info.layers} layers`);
  fact('params', commas(info.params));
  let acc = info.testAccuracy ? pct(info.testAccuracy) : 'not measured';
  if (info.testAccuracyTTA) acc += ` (${pct(info.testAccuracyTTA)} with TTA)`;
  fact('accuracy', acc);
  fact('dtype', info.dtype + (info.tta && info.tta.length ? `, TTA: ${info.tta.join(' + ')}` : ''));
  fact('size', fmtSize(info.size));
  const tta = info.tta || [];
  ui.ttaChoice.hidden = tta.length === 0;
  ui.tta.checked = info.ttaOn;
  ui.ttaViews.textContent = String(ttaViews(tta));
}

// commas groups digits as en-US does; toLocaleString would first load the
// locale data, a main-thread pause of 100 ms or more on a phone.
const commas = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

// ttaViews is how many forward passes models.Predictor.PredictTTA runs.
const ttaViews = (tta) => (tta.includes('flip') ? 2 : 1) * (tta.includes('translate') ? 3 : 1);

// The TTA choice is remembered across visits; a model loads with TTA on.
const TTA_KEY = 'cifarnet.tta';
function applyTTAChoice(info) {
  let off = false;
  try {
    off = localStorage.getItem(TTA_KEY) === 'off';
  } catch {
    // Storage blocked: keep the default.
  }
  if (off && info.ttaOn) {
    lastTTA = false;
    broadcast({type: 'setTTA', on: false});
  }
}
ui.tta.addEventListener('change', () => {
  const on = ui.tta.checked;
  try {
    localStorage.setItem(TTA_KEY, on ? 'on' : 'off');
  } catch {
    // Storage blocked: the choice lasts for this visit.
  }
  lastTTA = on;
  broadcast({type: 'setTTA', on});
});

async function initModels() {
  const list = await listModels();
  if (list.length === 0) {
    hideProgress();
    setStatus('No model is bundled with this site. Drop a .cnw weight file on the page to load one.', 'error');
    ui.status.dataset.code = 'no_model';
    // The worker answers held images with a no-model error.
    modelRequested = true;
    flushHeld();
    registerServiceWorker();
    return;
  }
  const chosen = list.find((m) => m.default) || list.find((m) => m.latest) || list[0];
  if (list.length > 1) {
    for (const m of list) {
      const opt = document.createElement('option');
      opt.value = m.url;
      opt.textContent = describeEntry(m);
      opt.title = `${m.file}: ${m.dtype || ''} weights, ${fmtSize(m.size)}`;
      opt.selected = m === chosen;
      ui.select.append(opt);
    }
    ui.choice.hidden = false;
    ui.select.addEventListener('change', () => {
      const m = list.find((x) => x.url === ui.select.value);
      if (m) loadModel(m);
    });
  }
  loadModel(chosen);
}

// ---------------------------------------------------------------- images

let nextId = 1;

function friendly(code, message) {
  switch (code) {
    case 'unsupported_format':
      return 'This file is not an image, or not in a format that can be read here.';
    case 'corrupt_image':
      return 'This image file is damaged or incomplete, so it cannot be read.';
    case 'too_large':
      return message;
    case 'no_model':
      return 'No model is loaded, so nothing can be classified yet.';
    case 'empty_file':
      return 'This file is empty (0 bytes): there is no image in it.';
    default:
      return message;
  }
}

function newCard(name, blob) {
  const card = ui.template.content.firstElementChild.cloneNode(true);
  $('.file', card).textContent = name;
  const img = $('.thumb img', card);
  img.alt = `Preview of ${name}`;
  if (blob) {
    const url = URL.createObjectURL(blob);
    img.src = url;
    img.addEventListener('load', () => {
      URL.revokeObjectURL(url);
      // Tiny pictures (CIFAR-10 itself is 32×32) are shown as pixels, not blur.
      if (img.naturalWidth <= 64 && img.naturalHeight <= 64) img.classList.add('small');
    }, {once: true});
    img.addEventListener('error', () => {
      URL.revokeObjectURL(url);
      $('.thumb', card).classList.add('broken');
    }, {once: true});
  } else {
    $('.thumb', card).classList.add('broken');
  }
  ui.results.prepend(card);
  ui.empty.hidden = true;
  ui.clear.disabled = false;
  card.dataset.time = new Date().toISOString();
  return card;
}

function showError(card, code, message) {
  card.dataset.state = 'error';
  ui.announce.textContent = `${$('.file', card).textContent}: ${message}`;
  card.dataset.errorCode = code;
  $('.answer .label', card).textContent = 'Not classified';
  $('.message', card).textContent = message;
  finished(card);
}

function showResult(card, r) {
  const probs = Array.from(r.probs);
  const classes = r.classes;
  card.dataset.state = 'done';
  card.dataset.model = modelName;
  if (modelInfo && modelInfo.provenance && modelInfo.provenance.created) card.dataset.modelVersion = modelInfo.provenance.created;
  card.dataset.topIndex = String(r.top.index);
  card.dataset.topLabel = r.top.label;
  card.dataset.probs = JSON.stringify(probs);
  card.dataset.ms = String(r.ms);
  if (r.decodedBy) card.dataset.decodedBy = r.decodedBy;

  $('.answer .label', card).textContent = r.top.label;
  $('.answer .confidence', card).textContent = pct(r.top.p);
  const unsure = r.top.p < UNSURE_BELOW;
  card.dataset.unsure = String(unsure);
  $('.sureness', card).textContent = unsure
    ? `Unsure: under ${pct(UNSURE_BELOW, 0)}, so this may not be one of the ten classes, or is hard to tell.`
    : 'Confident';
  ui.announce.textContent = `${$('.file', card).textContent}: ${r.top.label}, ${pct(r.top.p, 0)}${unsure ? ', unsure' : ''}`;
  card.dataset.tta = String(Boolean(r.tta));
  const via = r.decodedBy === 'browser' ? ' · decoded by the browser' : '';
  const tta = r.tta ? ' (test-time augmentation)' : '';
  $('.timing', card).textContent = `Inference ${r.ms.toFixed(1)} ms${tta} · total ${r.totalMs.toFixed(1)} ms${via}`;

  // The model input, drawn at 32×32 and scaled up crisply by CSS.
  const canvas = $('.seen canvas.input', card);
  canvas.width = r.inputWidth;
  canvas.height = r.inputHeight;
  canvas.getContext('2d').putImageData(new ImageData(r.input, r.inputWidth, r.inputHeight), 0, 0);

  // Kept for the saliency map: the 32×32 input only, not the file.
  inputs.set(card, {pixels: r.input.slice(), width: r.inputWidth, height: r.inputHeight, index: r.top.index, label: r.top.label});
  const explain = $('.explain', card);
  explain.hidden = false;
  // The name starts with the visible words, as speech input expects.
  explain.setAttribute('aria-label', `Show what mattered for ${r.top.label} in ${$('.file', card).textContent}`);

  // Heat strip in class order.
  const heat = $('.heat', card);
  heat.style.setProperty('--n', String(classes.length));
  heat.setAttribute('aria-label', `Probability heat map: ${classes.map((c, i) => `${c} ${pct(probs[i])}`).join(', ')}`);
  const cells = document.createDocumentFragment();
  const labels = document.createDocumentFragment();
  classes.forEach((c, i) => {
    const cell = document.createElement('span');
    cell.style.setProperty('--q', String(Math.sqrt(probs[i])));
    cell.title = `${c}: ${pct(probs[i])}`;
    cells.append(cell);
    const ab = document.createElement('abbr');
    ab.title = c;
    ab.textContent = SHORT_NAMES[c] || c.slice(0, 5);
    labels.append(ab);
  });
  heat.append(cells, labels);

  // Bars, most probable first.
  const bars = $('.bars', card);
  bars.setAttribute('aria-label', 'Probability of each class');
  const order = probs.map((p, i) => i).sort((a, b) => probs[b] - probs[a]);
  for (const i of order) {
    const li = document.createElement('li');
    li.dataset.index = String(i);
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = classes[i];
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.setProperty('--p', String(probs[i]));
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'pct';
    value.textContent = pct(probs[i]);
    li.append(name, track, value);
    bars.append(li);
  }
  finished(card);
}

// classify queues one image; the worker runs them in order.
function classify(file, name = file.name || 'pasted image') {
  const card = newCard(name, file);
  if (file.size === 0) {
    showError(card, 'empty_file', friendly('empty_file'));
    return card;
  }
  if (file.size > MAX_FILE_BYTES) {
    showError(card, 'too_large', `This file is ${mb(file.size)}; the limit is 100 MB.`);
    return card;
  }
  const id = nextId++;
  pending.set(id, card);
  const msg = {type: 'classify', id, file};
  if (modelRequested) dispatch(msg);
  else held.push(msg);
  return card;
}

// The first card of what the user just gave is brought into view and
// focused when it is done, so that on a phone the answer is not left far
// below the picker.
let revealNext = null;
function finished(card) {
  updateExportButtons();
  if (card !== revealNext) return;
  revealNext = null;
  card.focus({preventScroll: true});
  const r = card.getBoundingClientRect();
  if (r.top < 0 || r.bottom > window.innerHeight) {
    // An instant jump: a smooth scroll would move whatever the user is
    // about to tap next.
    card.scrollIntoView({block: r.height > window.innerHeight ? 'start' : 'nearest'});
  }
}

async function handleFiles(files) {
  let first = true;
  for (const f of files) {
    if (/\.cnw$/i.test(f.name)) {
      loadStarted = performance.now();
      setStatus(`Loading ${f.name}…`);
      const bytes = await f.arrayBuffer();
      lastLoad = {type: 'loadBytes', bytes, name: f.name};
      broadcast(lastLoad);
      modelRequested = true;
      flushHeld();
      continue;
    }
    const card = classify(f);
    if (first) revealNext = card;
    first = false;
    if (card.dataset.state !== 'pending') finished(card);
  }
}

ui.file.addEventListener('change', () => {
  handleFiles(Array.from(ui.file.files));
  ui.file.value = ''; // the same file can be chosen again
});

// Drag and drop anywhere on the page.
let dragDepth = 0;
document.addEventListener('dragenter', (e) => {
  if (!e.dataTransfer || !Array.from(e.dataTransfer.types).includes('Files')) return;
  dragDepth++;
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) document.body.classList.remove('dragging');
});
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (e) => {
  const taken = e.defaultPrevented; // by a teach-mode class (teach.js)
  e.preventDefault();
  dragDepth = 0;
  document.body.classList.remove('dragging');
  if (taken) return;
  const files = e.dataTransfer ? Array.from(e.dataTransfer.files) : [];
  if (files.length > 0) {
    handleFiles(files);
  } else {
    setStatusNote('Only files can be dropped here; to use a picture from another site, save it first.');
  }
});

// Paste an image (a screenshot, a copied picture or copied files).
document.addEventListener('paste', (e) => {
  const data = e.clipboardData;
  if (!data) return;
  const files = Array.from(data.files || []);
  if (files.length === 0) {
    for (const item of data.items || []) {
      if (item.kind === 'file') {
        const f = item.getAsFile();
        if (f) files.push(f);
      }
    }
  }
  if (files.length === 0) return; // let text pastes into the select etc. through
  e.preventDefault();
  handleFiles(files);
});

function setStatusNote(text) {
  if (ui.status.dataset.state === 'ready') setStatus(text, 'ready');
}

// Samples: fetched from our own origin (and precached for offline use).
for (const btn of document.querySelectorAll('.sample')) {
  btn.addEventListener('click', async () => {
    const name = `${btn.dataset.sample}.png`;
    try {
      const resp = await fetch(`samples/${name}`);
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const blob = await resp.blob();
      revealNext = classify(new File([blob], name, {type: 'image/png'}));
    } catch (err) {
      const card = newCard(name, null);
      revealNext = card;
      showError(card, 'network', `The sample could not be fetched (${err.message}).`);
    }
  });
}

ui.clear.addEventListener('click', () => {
  for (const card of ui.results.querySelectorAll('.result:not([data-state="pending"])')) card.remove();
  const left = ui.results.children.length > 0;
  ui.empty.hidden = left;
  ui.clear.disabled = !left;
  updateExportButtons();
});

// ---------------------------------------------------------------- saliency

// Occlusion sensitivity, computed in a worker: an 8×8 grey square slid
// over the 32×32 input in steps of 4 (49 positions), each cell showing how
// much the top class's probability falls with that part hidden.
const inputs = new WeakMap(); // card → its model input and top class
const explaining = new Map(); // job id → card

function onSaliencyMessage(slot, msg) {
  const card = explaining.get(msg.id);
  if (!card) return false;
  if (msg.type === 'saliencyProgress') {
    $('.explain-note', card).textContent = `Working: ${msg.done} of ${msg.total} positions…`;
    return true;
  }
  if (msg.type !== 'saliency' && msg.type !== 'error') return false;
  slot.jobs.delete(msg.id);
  pump();
  explaining.delete(msg.id);
  if (msg.type === 'error') {
    card.dataset.saliency = 'error';
    $('.explain-note', card).textContent = `The map could not be made: ${msg.message}`;
    $('.explain', card).disabled = false;
    return true;
  }
  drawSaliency(card, msg.result);
  return true;
}

function drawSaliency(card, s) {
  const max = Math.max(1e-6, ...s.drop);
  for (const overlay of card.querySelectorAll('canvas.overlay')) {
    overlay.width = s.cols;
    overlay.height = s.rows;
    const g = overlay.getContext('2d');
    const img = g.createImageData(s.cols, s.rows);
    s.drop.forEach((d, i) => {
      img.data.set([220, 38, 38, Math.round(200 * Math.max(0, d) / max)], 4 * i);
    });
    g.putImageData(img, 0, 0);
    overlay.hidden = false;
  }
  card.dataset.saliency = 'done';
  card.dataset.saliencyDrop = JSON.stringify(Array.from(s.drop));
  const what = inputs.get(card);
  const btn = $('.explain', card);
  btn.hidden = true;
  $('.explain-note', card).textContent = `Red: hiding it lowers ${what ? what.label : 'the answer'} most (up to ${pct(max)}). ` +
    `${s.passes} forward passes without TTA, ${(s.ms / 1000).toFixed(1)} s.`;
}

ui.results.addEventListener('click', (e) => {
  const btn = e.target.closest('.explain');
  if (!btn) return;
  const card = btn.closest('.result');
  const input = inputs.get(card);
  if (!input) return;
  btn.disabled = true;
  card.dataset.saliency = 'running';
  $('.explain-note', card).textContent = 'Working…';
  const id = nextId++;
  explaining.set(id, card);
  dispatch({type: 'saliency', id, pixels: input.pixels.slice(), width: input.width, height: input.height, patch: 8, stride: 4, index: input.index});
});

// ---------------------------------------------------------------- export

// The finished results, oldest first, as plain records: what the CSV and
// JSON downloads hold. Built from the cards alone; nothing is sent anywhere.
function exportRecords() {
  const cards = Array.from(ui.results.querySelectorAll('.result:not([data-state="pending"])')).reverse();
  return cards.map((card) => {
    const done = card.dataset.state === 'done';
    const probs = done ? JSON.parse(card.dataset.probs) : [];
    const classes = done && modelInfo ? modelInfo.classes : [];
    return {
      file: $('.file', card).textContent,
      status: done ? 'classified' : 'error',
      error: done ? '' : card.dataset.errorCode || '',
      top_class: done ? card.dataset.topLabel : '',
      top_probability: done ? probs[Number(card.dataset.topIndex)] : null,
      unsure: done ? card.dataset.unsure === 'true' : null,
      probabilities: Object.fromEntries(classes.map((c, i) => [c, probs[i]])),
      model: card.dataset.model || '',
      model_version: card.dataset.modelVersion || '',
      tta: done ? card.dataset.tta === 'true' : null,
      inference_ms: done ? Number(card.dataset.ms) : null,
      time: card.dataset.time,
    };
  });
}

function csvCell(v) {
  let s = v === null || v === undefined ? '' : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`; // never a formula in a spreadsheet
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function toCSV(records) {
  const classes = modelInfo ? modelInfo.classes : [];
  const head = ['file', 'status', 'error', 'top_class', 'top_probability', 'unsure', ...classes.map((c) => `p_${c}`),
    'model', 'model_version', 'tta', 'inference_ms', 'time'];
  const rows = records.map((r) => [r.file, r.status, r.error, r.top_class, r.top_probability, r.unsure,
    ...classes.map((c) => r.probabilities[c]), r.model, r.model_version, r.tta, r.inference_ms, r.time]);
  return [head, ...rows].map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

const exportName = (ext) => `cifarnet-results-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}.${ext}`;

function updateExportButtons() {
  const any = ui.results.querySelector('.result:not([data-state="pending"])') !== null;
  ui.exportCSV.disabled = !any;
  ui.exportJSON.disabled = !any;
}

ui.exportCSV.addEventListener('click', () => download(exportName('csv'), 'text/csv', toCSV(exportRecords())));
ui.exportJSON.addEventListener('click', () => download(exportName('json'), 'application/json',
  `${JSON.stringify({classes: modelInfo ? modelInfo.classes : [], unsure_below: UNSURE_BELOW, results: exportRecords()}, null, 2)}\n`));

// ---------------------------------------------------------------- camera

let cameraStream = null;

function cameraMessage(text) {
  ui.cameraMessage.textContent = text;
}

// cameraError puts a getUserMedia failure in plain words.
function cameraError(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera permission was refused. Allow the camera for this site in your browser\u2019s settings, then press Camera again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found on this device.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera could not be started: another app may be using it.';
    default:
      return `The camera could not be started (${err && err.message ? err.message : err}).`;
  }
}

async function openCamera() {
  if (!globalThis.isSecureContext) {
    cameraMessage('The camera only works on a secure page: open this site over https:// (or on localhost).');
    return;
  }
  if (!navigator.mediaDevices || typeof navigator.mediaDevices.getUserMedia !== 'function') {
    cameraMessage('This browser cannot use a camera here.');
    return;
  }
  cameraMessage('Asking for the camera…');
  ui.cameraOpen.disabled = true;
  try {
    // The rear camera where there is one (phones); any camera otherwise.
    cameraStream = await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: {facingMode: {ideal: 'environment'}, width: {ideal: 1280}, height: {ideal: 720}},
    });
  } catch (err) {
    ui.cameraOpen.disabled = false;
    cameraMessage(cameraError(err));
    return;
  }
  ui.cameraVideo.srcObject = cameraStream;
  ui.camera.hidden = false;
  ui.cameraOpen.setAttribute('aria-expanded', 'true');
  try {
    await ui.cameraVideo.play();
  } catch {
    // Autoplay refused: the preview starts when the video is clicked.
  }
  cameraMessage('Camera on. Nothing is recorded or sent; a capture is classified on this device.');
  ui.cameraCapture.focus();
}

function closeCamera() {
  if (cameraStream) for (const track of cameraStream.getTracks()) track.stop();
  cameraStream = null;
  ui.cameraVideo.srcObject = null;
  ui.camera.hidden = true;
  ui.cameraOpen.disabled = false;
  ui.cameraOpen.setAttribute('aria-expanded', 'false');
  cameraMessage('');
}

// capture classifies the current frame as a PNG file, like any upload.
function capture() {
  const v = ui.cameraVideo;
  if (!cameraStream || !v.videoWidth) {
    cameraMessage('The camera has no picture yet; try again in a moment.');
    return;
  }
  const canvas = document.createElement('canvas');
  canvas.width = v.videoWidth;
  canvas.height = v.videoHeight;
  canvas.getContext('2d').drawImage(v, 0, 0);
  canvas.toBlob((blob) => {
    if (!blob) {
      cameraMessage('The frame could not be captured.');
      return;
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    revealNext = classify(new File([blob], `camera-${stamp}.png`, {type: 'image/png'}));
  }, 'image/png');
}

ui.cameraOpen.setAttribute('aria-expanded', 'false');
ui.cameraOpen.addEventListener('click', openCamera);
ui.cameraClose.addEventListener('click', closeCamera);
ui.cameraCapture.addEventListener('click', capture);
// A hidden tab gives the camera back.
document.addEventListener('visibilitychange', () => {
  if (document.hidden && cameraStream) closeCamera();
});

// ---------------------------------------------------------------- offline

// Registered once the model is in, so that its precache is served from
// the HTTP cache instead of downloading everything a second time.
let swRegistered = false;
async function registerServiceWorker() {
  if (swRegistered || !('serviceWorker' in navigator) || !globalThis.isSecureContext) return;
  swRegistered = true;
  try {
    await navigator.serviceWorker.register('sw.js');
  } catch (err) {
    console.warn('cifarnet: service worker not registered:', err);
  }
}

// Teach mode (teach.js) runs a worker of its own from the compiled module,
// teaches the model in use, and hands back a taught model to use like a
// dropped weight file.
initTeach({
  workerURL: WORKER_URL,
  module: () => compiledModule,
  current: () => lastLoad,
  use: (bytes, name) => {
    loadStarted = performance.now();
    setStatus(`Loading ${name}…`);
    lastLoad = {type: 'loadBytes', bytes, name, taught: true};
    broadcast(lastLoad);
    modelRequested = true;
    flushHeld();
  },
});

setStatus('Downloading the classifier…');
setProgress(0, -1);
initModels();
