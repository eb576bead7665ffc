// cifarnet page: model panel, image input (picker, drag and drop, paste,
// samples) and results. The classifier itself runs in worker.js.
//
// Every result card carries its numbers as data attributes (data-state,
// data-top-index, data-top-label, data-probs, data-ms, data-error-code), which
// the end-to-end tests read.

const WORKER_URL = 'worker.js'; // rewritten by static/assemble.sh
const MAX_FILE_BYTES = 100 * 1024 * 1024;

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

const mb = (n) => `${(n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0)} MB`;
const fmtSize = (n) => (n >= 1048576 ? mb(n) : `${Math.max(1, Math.round(n / 1024))} kB`);
const pct = (p, digits = 1) => `${(p * 100).toFixed(digits)}%`;
// sentence capitalises a Go error message and ends it with a full stop.
const sentence = (m) => `${m.charAt(0).toUpperCase()}${m.slice(1)}${/[.!?]$/.test(m) ? '' : '.'}`;

function progressText(what, loaded, total) {
  return total > 0 ? `${what}: ${mb(loaded)} of ${mb(total)}` : `${what}: ${mb(loaded)}`;
}

// ---------------------------------------------------------------- worker

const worker = new Worker(WORKER_URL);
let loadStarted = 0;
let modelName = ''; // the model in use, if any
const pending = new Map(); // id → card
// Images given before a model was asked for wait here, so that the worker
// (which runs requests in order) sees the load first.
let modelRequested = false;
let held = [];

worker.onmessage = (e) => {
  const msg = e.data;
  switch (msg.type) {
    case 'progress':
      if (msg.phase === 'compile') mark('wasmDownloaded');
      if (msg.phase !== 'model' && ui.status.dataset.code === 'no_model') {
        // The model list can come back empty before the classifier has
        // compiled: its progress must not hide the no-model message.
      } else if (msg.phase === 'wasm') {
        setStatus(progressText('Downloading the classifier', msg.loaded, msg.total));
        setProgress(msg.loaded, msg.total);
      } else if (msg.phase === 'compile') {
        setStatus('Compiling the classifier…');
        setProgress(0, -1);
      } else {
        mark('wasmReady');
        setStatus(progressText('Downloading the model weights', msg.loaded, msg.total));
        setProgress(msg.loaded, msg.total);
      }
      break;
    case 'ready':
      mark('modelReady');
      modelName = msg.info.name;
      registerServiceWorker();
      showModel(msg.info);
      applyTTAChoice(msg.info);
      hideProgress();
      setStatus(`Ready. ${msg.info.name} loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s. Everything runs on this device.`, 'ready');
      break;
    case 'tta':
      showModel(msg.info);
      break;
    case 'loadError':
      hideProgress();
      setStatus(`${sentence(msg.message)}${modelName ? ` Still using ${modelName}.` : ''}`, 'error');
      ui.status.dataset.code = msg.code;
      break;
    case 'result': {
      const card = pending.get(msg.id);
      pending.delete(msg.id);
      if (card) showResult(card, msg.result);
      mark('firstResult');
      break;
    }
    case 'error': {
      const card = pending.get(msg.id);
      pending.delete(msg.id);
      if (card) showError(card, msg.code, friendly(msg.code, msg.message));
      break;
    }
  }
};

worker.onerror = (e) => {
  hideProgress();
  setStatus(`The classifier failed to start (${e.message || 'worker error'}). Reload the page to try again.`, 'error');
};

function loadModel(entry) {
  loadStarted = performance.now();
  setStatus(`Loading ${entry.file}…`);
  setProgress(0, entry.size || -1);
  worker.postMessage({type: 'load', url: entry.url, size: entry.size});
  modelRequested = true;
  flushHeld();
}

function flushHeld() {
  for (const msg of held) worker.postMessage(msg);
  held = [];
}

// ---------------------------------------------------------------- models

// The server lists models at api/models; a static host has the same list
// in models/manifest.json. Both are {models: [{file, url, size, latest, default, ...}]}.
async function listModels() {
  for (const url of ['api/models', 'models/manifest.json']) {
    try {
      const resp = await fetch(url, {headers: {Accept: 'application/json'}});
      if (!resp.ok || !(resp.headers.get('Content-Type') || '').includes('json')) continue;
      const body = await resp.json();
      if (body && Array.isArray(body.models)) {
        return body.models.filter((m) => !m.error && m.url);
      }
    } catch {
      // Offline or not served: try the next source.
    }
  }
  return [];
}

function describeEntry(m) {
  const parts = [m.dtype, fmtSize(m.size)];
  if (m.provenance && m.provenance.test_accuracy) parts.push(`${pct(m.provenance.test_accuracy)} accurate`);
  return `${m.file} (${parts.filter(Boolean).join(', ')})`;
}

function showModel(info) {
  const fact = (name, text) => {
    $(`[data-fact="${name}"]`, ui.facts).textContent = text;
  };
  fact('name', info.name);
  fact('arch', `${info.spec}, ${info.layers} layers`);
  fact('params', info.params.toLocaleString('en-US'));
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
  if (off && info.ttaOn) worker.postMessage({type: 'setTTA', on: false});
}
ui.tta.addEventListener('change', () => {
  const on = ui.tta.checked;
  try {
    localStorage.setItem(TTA_KEY, on ? 'on' : 'off');
  } catch {
    // Storage blocked: the choice lasts for this visit.
  }
  worker.postMessage({type: 'setTTA', on});
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
  return card;
}

function showError(card, code, message) {
  card.dataset.state = 'error';
  ui.announce.textContent = `${$('.file', card).textContent}: ${message}`;
  card.dataset.errorCode = code;
  $('.answer .label', card).textContent = 'Not classified';
  $('.message', card).textContent = message;
}

function showResult(card, r) {
  const probs = Array.from(r.probs);
  const classes = r.classes;
  card.dataset.state = 'done';
  card.dataset.topIndex = String(r.top.index);
  card.dataset.topLabel = r.top.label;
  card.dataset.probs = JSON.stringify(probs);
  card.dataset.ms = String(r.ms);
  if (r.decodedBy) card.dataset.decodedBy = r.decodedBy;

  $('.answer .label', card).textContent = r.top.label;
  $('.answer .confidence', card).textContent = pct(r.top.p);
  ui.announce.textContent = `${$('.file', card).textContent}: ${r.top.label}, ${pct(r.top.p, 0)}`;
  card.dataset.tta = String(Boolean(r.tta));
  const via = r.decodedBy === 'browser' ? ' · decoded by the browser' : '';
  const tta = r.tta ? ' (test-time augmentation)' : '';
  $('.timing', card).textContent = `Inference ${r.ms.toFixed(1)} ms${tta} · total ${r.totalMs.toFixed(1)} ms${via}`;

  // The model input, drawn at 32×32 and scaled up crisply by CSS.
  const canvas = $('.seen canvas', card);
  canvas.width = r.inputWidth;
  canvas.height = r.inputHeight;
  canvas.getContext('2d').putImageData(new ImageData(r.input, r.inputWidth, r.inputHeight), 0, 0);

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
}

// classify queues one image; the worker runs them in order.
function classify(file, name = file.name || 'pasted image') {
  const card = newCard(name, file);
  if (file.size > MAX_FILE_BYTES) {
    showError(card, 'too_large', `This file is ${mb(file.size)}; the limit is 100 MB.`);
    return;
  }
  const id = nextId++;
  pending.set(id, card);
  const msg = {type: 'classify', id, file};
  if (modelRequested) worker.postMessage(msg);
  else held.push(msg);
}

async function handleFiles(files) {
  for (const f of files) {
    if (/\.cnw$/i.test(f.name)) {
      loadStarted = performance.now();
      setStatus(`Loading ${f.name}…`);
      const bytes = await f.arrayBuffer();
      worker.postMessage({type: 'loadBytes', bytes, name: f.name}, [bytes]);
      modelRequested = true;
      flushHeld();
      continue;
    }
    classify(f);
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
  e.preventDefault();
  dragDepth = 0;
  document.body.classList.remove('dragging');
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
      classify(new File([blob], name, {type: 'image/png'}));
    } catch (err) {
      const card = newCard(name, null);
      showError(card, 'network', `The sample could not be fetched (${err.message}).`);
    }
  });
}

ui.clear.addEventListener('click', () => {
  for (const card of ui.results.querySelectorAll('.result:not([data-state="pending"])')) card.remove();
  const left = ui.results.children.length > 0;
  ui.empty.hidden = left;
  ui.clear.disabled = !left;
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

setStatus('Downloading the classifier…');
setProgress(0, -1);
initModels();
