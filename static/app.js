// cifarnet page: model panel, image input (picker, drag and drop, paste,
// samples) and results. The classifier itself runs in worker.js.
//
// Every result card carries its numbers as data attributes (data-state,
// data-top-index, data-top-label, data-probs, data-ms, data-error-code), which
// the end-to-end tests read.

import {initTeach} from './teach.js'; // rewritten by static/assemble.sh

const WORKER_URL = 'worker.js'; // rewritten by static/assemble.sh
const WASM_URL = 'cifarnet.wasm'; // rewritten by static/assemble.sh
const WASM_CACHE = 'cifarnet-wasm'; // worker.js's stored copy of the module
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
  retry: $('#retry'),
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
  card: $('#model-card'),
  perClass: $('#per-class'),
  perClassNote: $('#per-class-note'),
  compareChoice: $('#compare-choice'),
  compareSelect: $('#compare-select'),
  compareNote: $('#compare-note'),
  batch: $('#batch'),
  batchProgress: $('#batch-progress'),
  batchText: $('#batch-text'),
  batchCancel: $('#batch-cancel'),
  view: $('#view'),
  viewClass: $('#view-class'),
  viewSort: $('#view-sort'),
  viewUnsure: $('#view-unsure'),
  viewCompact: $('#view-compact'),
  viewCount: $('#view-count'),
};

// Timings for the benchmark (bench/browser.sh reads them back).
const marks = (globalThis.cifarnetMarks = {});
let firstResultShown = null;
const firstResult = new Promise((resolve) => { firstResultShown = resolve; });
function mark(name, at = performance.now()) {
  if (name in marks) return;
  marks[name] = at;
  if (name === 'firstResult') firstResultShown();
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
let modelList = []; // the site's models, as listModels gives them
// The listed entry of each load the first worker has not answered yet
// (null for a dropped file): its answers come in request order.
const loadsInFlight = [];
const pending = new Map(); // id → card
// Images given before a model was asked for wait here, so that the worker
// (which runs requests in order) sees the load first.
let modelRequested = false;
let held = [];

function spawn(primary) {
  const slot = {w: primary ? primaryWorker() : new Worker(WORKER_URL), primary, ready: false, jobs: new Map(), quiet: 0, answered: 0};
  slot.w.onmessage = (e) => {
    if (!pool.includes(slot)) return; // replaced; anything it still says is stale
    if (slot.primary) onPrimaryMessage(slot, e.data);
    else onHelperMessage(slot, e.data);
  };
  slot.w.onerror = (e) => {
    e.preventDefault();
    const why = e.message || 'worker error';
    // Before the module is compiled the first worker cannot be
    // replaced from it: downloading it again is the cure.
    if (slot.primary && !compiledModule) startFailed(slot, 'network', `The classifier could not start: ${why}`);
    else crashed(slot, why);
  };
  pool.push(slot);
  return slot;
}

// The first worker is a SharedWorker where the browser keeps one alive
// after its pages have gone (extendedLifetime, in Chromium): a reload
// or a new tab finds it started with the model loaded and its code
// optimised, and answers its first image without the start-up
// (bench/RESULTS.md, eleventh session). One page uses it at a time: the
// one holding the Web Lock OWNER_LOCK (worker.js); a second tab, or a
// browser without the lifetime, gets a dedicated worker as before.
const OWNER_LOCK = 'cifarnet-primary';
const SHARED_SILENT_MS = 5000;
const sharedLasts = (() => {
  if (typeof SharedWorker !== 'function' || !(navigator.locks && navigator.locks.request)) return false;
  let read = false;
  try {
    // The options are read before the URL is parsed, and this one fails
    // to parse: no worker starts.
    new SharedWorker('http://[', {get extendedLifetime() { read = true; return true; }});
  } catch {
    // expected
  }
  return read;
})();
// A first worker that failed is replaced by a dedicated one: the shared
// one may still be ending, and a new page gets a fresh one anyway.
let shareFirst = sharedLasts;

// primaryWorker is the first worker, behind the Worker interface the
// pool uses. Whether it is shared is known once the lock is answered;
// messages posted meanwhile wait. A shared one starts its own module (a
// compiled module cannot be sent to it) and is left, not stopped, when
// the slot is dropped: terminate lets go of the port and the lock.
function primaryWorker() {
  if (!shareFirst) return new Worker(WORKER_URL);
  let real = null;
  let release = null;
  const early = [];
  const on = {message: null, error: null};
  const use = (w) => {
    real = w;
    real.onmessage = on.message;
    real.onerror = on.error;
    for (const [msg, transfer] of early.splice(0)) real.postMessage(msg, transfer);
  };
  const proxy = {
    postMessage(msg, transfer = []) {
      if (real) real.postMessage(msg, transfer);
      else early.push([msg, transfer]);
    },
    terminate() {
      if (release) release();
      if (real) real.terminate();
      real = {postMessage() {}, terminate() {}}; // anything still posted goes nowhere
    },
    set onmessage(f) { on.message = f; if (real) real.onmessage = f; },
    set onerror(f) { on.error = f; if (real) real.onerror = f; },
  };
  navigator.locks.request(OWNER_LOCK, {ifAvailable: true}, (lock) => {
    if (real) return undefined; // dropped before the answer
    if (!lock) {
      use(new Worker(WORKER_URL));
      return undefined;
    }
    let sw = null;
    try {
      sw = new SharedWorker(WORKER_URL, {name: 'cifarnet', extendedLifetime: true});
    } catch {
      use(new Worker(WORKER_URL));
      return undefined;
    }
    const port = sw.port;
    const held = new Promise((resolve) => { release = resolve; }); // the lock, while this page uses it
    // The worker says 'attached' as it takes the port. One that says it
    // is gone (its Go program ended) or never says anything (it was
    // ending as this page connected) is left for a dedicated worker,
    // given what it was sent: nothing was answered.
    let heard = false;
    const sent = [];
    const giveUp = () => {
      clearTimeout(silent);
      port.close();
      release();
      release = null;
      shareFirst = false;
      use(new Worker(WORKER_URL));
      for (const [msg, transfer] of sent.splice(0)) real.postMessage(msg, transfer);
    };
    const silent = setTimeout(giveUp, SHARED_SILENT_MS);
    use({
      postMessage: (msg, transfer) => {
        const m = msg.type === 'init' ? {type: 'start'} : msg;
        if (!heard) sent.push([m, transfer]);
        port.postMessage(m, transfer);
      },
      terminate: () => {
        clearTimeout(silent);
        port.close();
      },
      set onmessage(f) {
        port.onmessage = (e) => {
          if (!heard) {
            if (e.data.type === 'gone') {
              giveUp();
              return;
            }
            heard = true;
            clearTimeout(silent);
            sent.length = 0;
          }
          f(e);
        };
      },
      set onerror(f) { sw.onerror = f; },
    });
    mark('sharedWorker');
    return held;
  }).catch(() => {
    if (!real) use(new Worker(WORKER_URL));
  });
  return proxy;
}

// broadcast posts a load or setting to every worker, each with its own copy of
// any bytes.
function broadcast(msg) {
  for (const slot of pool) slot.w.postMessage(copyMsg(msg));
}

const copyMsg = (msg) => (msg.bytes ? {...msg, bytes: msg.bytes.slice(0)} : msg);

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
// helpers only once they have the model. A lone image with test-time
// augmentation is split across the idle workers instead.
function pump() {
  splitLone();
  for (const slot of pool) {
    while (waiting.length > 0 && (slot.ready || slot.primary) && slot.jobs.size < JOBS_PER_WORKER) {
      const msg = waiting.shift();
      // A lone image, whole on one worker: with test-time augmentation
      // the worker sends the answer from the image alone first.
      if (msg.type === 'classify') msg.first = waiting.length === 0 && pending.size === 1;
      slot.jobs.set(msg.id, msg);
      slot.w.postMessage(msg);
    }
  }
}

// ---------------------------------------------------------------- one image, several workers

// With test-time augmentation an image costs one forward pass per view (6
// for flip + translate). When it is the only image waiting and two or
// more workers have nothing to do, its views are split between them
// (cifarnet.classifyPart) and the parts' logit sums added here as
// models.Predictor.PredictTTA adds them, so that one image is answered
// in about the time of half its views. A batch keeps one image per
// worker: that already uses every core, without the page doing each
// image's decoding twice.
const splits = new Map(); // id of the image → {msg, results, left}

function splitViews() {
  if (!modelInfo || lastTTA === false || !modelInfo.ttaOn || loadsInFlight.length > 0) return 1;
  return modelInfo.ttaViews;
}

function splitLone() {
  if (waiting.length !== 1 || incoming.length > 0 || waiting[0].type !== 'classify') return;
  const views = splitViews();
  const idle = pool.filter((s) => s.ready && s.jobs.size === 0);
  if (views < 2 || idle.length < 2) return;
  const msg = waiting.shift();
  const parts = Math.min(views, idle.length);
  splits.set(msg.id, {msg, results: new Array(parts), left: parts});
  for (let part = 0; part < parts; part++) {
    const job = {type: 'classifyPart', id: nextId++, of: msg.id, file: msg.file, part, parts};
    idle[part].jobs.set(job.id, job);
    idle[part].w.postMessage(job);
  }
}

// partDone takes one part's answer; the last one completes the image.
function partDone(job, msg) {
  const s = splits.get(job.of);
  if (!s) return; // the image already failed, or was cancelled
  if (msg.type === 'error') {
    splits.delete(job.of);
    // A worker that disagrees about the model's views (a setting that
    // changed meanwhile) gets the image whole.
    if (msg.code === 'bad_argument') dispatch(s.msg);
    else settle(job.of, msg);
    return;
  }
  s.results[job.part] = msg.result;
  if (--s.left > 0) return;
  splits.delete(job.of);
  settle(job.of, {type: 'result', result: combineParts(s.results)});
}

// combineParts adds the parts' weighted logits in part order in float32
// and applies the softmax as Go's models.softmax does, so that the
// probabilities equal the one-worker result up to float rounding.
function combineParts(results) {
  const first = results[0];
  const n = first.logits.length;
  const sum = new Float32Array(n);
  for (const r of results) {
    for (let j = 0; j < n; j++) sum[j] += r.logits[j]; // stored as float32: rounded as Go rounds
  }
  let probs = sum;
  if (first.softmax) {
    probs = new Float32Array(n);
    let hi = sum[0];
    for (const x of sum) hi = Math.max(hi, x);
    let total = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp(Math.fround(sum[j] - hi));
      probs[j] = e;
      total += e;
    }
    for (let j = 0; j < n; j++) probs[j] /= total;
  }
  let top = 0;
  for (let j = 1; j < n; j++) if (probs[j] > probs[top]) top = j;
  return {
    probs, classes: first.classes, top: {index: top, label: first.classes[top] || '', p: probs[top]}, tta: true,
    ms: Math.max(...results.map((r) => r.ms)), totalMs: Math.max(...results.map((r) => r.totalMs)),
    input: first.input, inputWidth: first.inputWidth, inputHeight: first.inputHeight,
    decodedBy: first.decodedBy, parts: results.length,
  };
}

// ---------------------------------------------------------------- workers that fail

// A worker whose Go program ends (a fatal error, e.g. out of memory) or
// that throws is replaced by a fresh one from the compiled module, given
// the current model and TTA setting. The image it was working on (the
// first it holds: a worker runs them in order) gets an error on its card
// rather than a second try, so that an image that kills the classifier
// cannot do it again; the images queued behind it go to the others. At
// most MAX_RESTARTS replacements in RESTART_WINDOW_MS, then the pool
// shrinks, and once it is empty the status line offers Retry.
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60e3;
let restarts = []; // times of recent replacements
let restartNote = ''; // said on the status line when the replacement is ready

// The first worker cannot download the module: tried again after 1, 2 and
// 4 s, then Retry.
const START_RETRIES = 3;
let startTries = 0;
let retryTimer = 0;
let cannotRun = false; // the module needs what this browser lacks

const CRASHED = 'crashed';
const crashedMessage = (restarted) => (restarted
  ? 'The classifier stopped while working on this image and was restarted. The image was not classified; add it again to retry.'
  : 'The classifier stopped while working on this image, again and again, so it was not restarted. The image was not classified.');

// drop takes a worker out of the pool and returns the jobs it held, in
// the order it would have run them.
function drop(slot) {
  slot.w.terminate();
  pool.splice(pool.indexOf(slot), 1);
  return [...slot.jobs.values()];
}

// requeue puts jobs back at the front of the queue, except parts of an
// image that has already failed.
function requeue(jobs) {
  waiting.unshift(...jobs.filter((m) => m.type !== 'classifyPart' || splits.has(m.of)));
  pump();
}

// failJob answers a job with an error as its worker would have.
function failJob(job, code, message) {
  const msg = {type: 'error', id: job.id, code, message};
  if (job.type === 'saliency') onSaliencyMessage(null, msg);
  else if (job.type === 'classifyPart') partDone(job, msg);
  else settle(job.id, msg);
}

// retire drops a helper that never got the model; its images go to the others.
function retire(slot) {
  requeue(drop(slot));
  if (pool.length === 0) stalled('The classifier could not be started again.');
}

function crashed(slot, why) {
  if (!pool.includes(slot)) return;
  if (slot.primary) shareFirst = false;
  const [held, ...queued] = drop(slot);
  const now = performance.now();
  restarts = restarts.filter((t) => now - t < RESTART_WINDOW_MS);
  const replace = restarts.length < MAX_RESTARTS;
  const card = held && pending.get(held.type === 'classifyPart' ? held.of : held.id);
  const what = card ? ` while working on ${$('.file', card).textContent}` : '';
  console.warn(`cifarnet: a classifier worker stopped (${why})`);
  if (held) failJob(held, CRASHED, crashedMessage(replace));
  if (replace) {
    restarts.push(now);
    respawn(slot.primary);
    restartNote = `The classifier stopped unexpectedly${what} and was restarted.`;
    const alive = pool.some((s) => s.ready);
    setStatus(alive ? restartNote : `The classifier stopped unexpectedly${what}; restarting it…`, alive ? 'ready' : 'loading');
  } else if (pool.length > 0) {
    // Carry on with fewer workers; one of them drives the status line.
    if (slot.primary) pool[0].primary = true;
    setStatus(`The classifier stopped unexpectedly${what}, ${MAX_RESTARTS + 1} times within a minute; it goes on with ${pool.length} worker${pool.length > 1 ? 's' : ''}.`, 'ready');
  } else {
    stalled(`The classifier stopped unexpectedly${what}, ${MAX_RESTARTS + 1} times within a minute, so it was not restarted.`);
  }
  requeue(queued);
}

// respawn starts a worker in the place of one that failed, from the
// compiled module if there is one, and replays the model load and TTA
// setting. A primary's answer to the replayed load is not news for the
// model panel (quiet), unless a load the page asked for was still
// unanswered: then it is that answer.
function respawn(primary) {
  const slot = spawn(primary);
  slot.w.postMessage(compiledModule ? {type: 'init', module: compiledModule} : {type: 'start'});
  if (lastLoad) {
    if (primary && loadsInFlight.length > 0) loadsInFlight.splice(0, loadsInFlight.length - 1);
    else slot.quiet = 1;
    slot.w.postMessage(copyMsg(lastLoad));
  }
  if (lastTTA !== null) slot.w.postMessage({type: 'setTTA', on: lastTTA});
  return slot;
}

// replacementReady tells that a restarted worker is working.
function replacementReady() {
  if (!restartNote) return;
  setStatus(restartNote, 'ready');
  restartNote = '';
}

// startFailed: the first worker could not download, compile or start
// the module. Nothing it held ran; a fresh worker tries again.
function startFailed(slot, code, message) {
  if (!pool.includes(slot)) return;
  shareFirst = false;
  const jobs = drop(slot);
  waiting.unshift(...jobs);
  hideProgress();
  if (code === 'unsupported') { // this browser cannot run it: no retry helps
    cannotRun = true;
    setStatus(sentence(message), 'error');
    ui.status.dataset.code = code;
    return;
  }
  if (startTries < START_RETRIES) {
    const delay = 2 ** startTries;
    startTries++;
    setStatus(`${sentence(message)} Trying again in ${delay} s…`, 'error');
    retryTimer = setTimeout(() => {
      retryTimer = 0;
      setStatus('Downloading the classifier…');
      setProgress(0, -1);
      respawn(true);
    }, delay * 1000);
  } else {
    stalled(`${sentence(message)} Check the connection, then press Retry.`);
  }
}

// startTrouble says the status line is telling of a module that would not
// download or cannot run in this browser; a model list arriving later
// must not cover that message.
const startTrouble = () => cannotRun || retryTimer !== 0 || !ui.retry.hidden;

// stalled: no worker is left and none is started on its own. Queued
// images stay queued for Retry (or Cancel).
function stalled(text) {
  hideProgress();
  setStatus(text, 'error');
  ui.status.dataset.code = 'stopped';
  ui.retry.hidden = false;
}

ui.retry.addEventListener('click', () => {
  ui.retry.hidden = true;
  delete ui.status.dataset.code;
  startTries = 0;
  restarts = [];
  clearTimeout(retryTimer);
  retryTimer = 0;
  restartNote = 'The classifier was started again.';
  setStatus(compiledModule ? 'Starting the classifier…' : 'Downloading the classifier…');
  setProgress(0, -1);
  if (!pool.some((s) => s.primary)) respawn(true);
  if (compiledModule) grow();
});

// globalThis.cifarnetPool tells the tests what the pool holds.
globalThis.cifarnetPool = () => pool.map((s) => ({primary: s.primary, ready: s.ready, jobs: s.jobs.size, answered: s.answered}));

// ---------------------------------------------------------------- answers

// grow starts the other workers from the compiled module, with the model
// and TTA choice the first one has.
function grow() {
  if (!lastLoad) return;
  while (pool.length < POOL_SIZE) {
    // Without the compiled module (a shared first worker cannot hand it
    // over) the first helper compiles the stored copy itself, off this
    // thread, and hands it over; the others wait for it.
    if (!compiledModule && pool.some((s) => !s.primary)) return;
    const slot = spawn(false);
    slot.w.postMessage(compiledModule ? {type: 'init', module: compiledModule} : {type: 'start'});
    slot.w.postMessage(copyMsg(lastLoad));
    if (lastTTA !== null) slot.w.postMessage({type: 'setTTA', on: lastTTA});
  }
}

let growAfterAnswer = false;

function finishJob(slot, msg) {
  const job = slot.jobs.get(msg.id);
  slot.jobs.delete(msg.id);
  slot.answered++;
  if (growAfterAnswer) {
    growAfterAnswer = false;
    setTimeout(grow, 0);
  }
  if (job && job.type === 'classifyPart') partDone(job, msg);
  else settle(msg.id, msg);
  pump();
}

// settle shows an image's answer on its card.
function settle(id, msg) {
  const card = pending.get(id);
  pending.delete(id);
  pumpIncoming();
  if (!card) return;
  if (msg.type === 'result') {
    showResult(card, msg.result);
    mark('firstResult');
  } else {
    showError(card, msg.code, friendly(msg.code, msg.message));
  }
}

// A worker's messages about itself, the same for the first and the others.
function onWorkerFault(slot, msg) {
  switch (msg.type) {
    case 'exited':
      crashed(slot, `its Go program ended${msg.code === null ? '' : ` with code ${msg.code}`}`);
      return true;
    case 'startError':
      // A browser that cannot run the module says so even when the page
      // compiled it (a later visit): restarting would not help.
      if (slot.primary && (!compiledModule || msg.code === 'unsupported')) startFailed(slot, msg.code, msg.message);
      else crashed(slot, msg.message);
      return true;
  }
  return false;
}

function onHelperMessage(slot, msg) {
  if (onSaliencyMessage(slot, msg) || onWorkerFault(slot, msg)) return;
  switch (msg.type) {
    case 'module':
      if (!compiledModule) {
        haveModule(msg.module);
        grow();
      }
      break;
    case 'ready':
      slot.ready = true;
      replacementReady();
      pump();
      break;
    case 'loadError':
      // One that never got a model cannot classify; one that had the
      // model keeps it, as the first worker does after a bad weight file.
      if (!slot.ready) retire(slot);
      break;
    case 'first':
      showFirst(msg.id, msg.result);
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
  if (onSaliencyMessage(slot, msg) || onWorkerFault(slot, msg)) return;
  if (slot.quiet > 0 && (msg.type === 'ready' || msg.type === 'loadError')) {
    // A replacement's answer to the load replayed to it.
    slot.quiet--;
    if (msg.type === 'ready') {
      slot.ready = true;
      replacementReady();
      pump();
    } else {
      stalled(`The classifier was restarted but could not load the model again: ${sentence(msg.message)}`);
    }
    return;
  }
  switch (msg.type) {
    case 'module':
      haveModule(msg.module);
      break;
    case 'timing':
      for (const [name, t] of Object.entries(msg.timing)) mark(`worker.${name}`, t - performance.timeOrigin);
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
      startTries = 0;
      modelName = msg.info.name;
      modelInfo = msg.info;
      registerServiceWorker();
      showModel(msg.info);
      showModelCard(msg.info, loadsInFlight.shift() || null);
      fillClassFilter(msg.info.classes);
      applyTTAChoice(msg.info);
      hideProgress();
      setStatus(`Ready in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s. ${msg.info.refetched
        ? 'The stored copy of the model was damaged and was downloaded again.' : 'Everything runs on this device.'}`, 'ready');
      // The helpers start once the first worker has answered what it
      // holds, so that loading their models does not slow down the first
      // image (on two cores they would take the core it needs).
      // Without a compiled module for them yet (a shared first worker),
      // the first helper compiles one, which would take the CPU a first
      // image given now needs: that waits for the first answer or a quiet
      // second.
      if (slot.jobs.size > 0 || !compiledModule) growAfterAnswer = true;
      if (slot.jobs.size === 0) setTimeout(grow, compiledModule ? 0 : 1000);
      break;
    case 'tta':
      modelInfo = msg.info;
      showModel(msg.info);
      break;
    case 'loadError':
      loadsInFlight.shift();
      hideProgress();
      setStatus(`${sentence(msg.message)}${modelName ? ` Still using ${modelName}.` : ''}`, 'error');
      ui.status.dataset.code = msg.code;
      break;
    case 'first':
      showFirst(msg.id, msg.result);
      break;
    case 'result':
    case 'error':
      finishJob(slot, msg);
      break;
  }
}

// compileStored compiles worker.js's stored copy of the module, or
// answers null when there is none (a first visit: the worker downloads
// and compiles it while it stores it). The compile runs on the engine's
// background threads while the first worker fetches and evaluates its
// scripts, 100–150 ms it would otherwise spend before starting it
// (bench/RESULTS.md, ninth session).
async function compileStored() {
  if (typeof caches === 'undefined') return null;
  try {
    const hit = await (await caches.open(WASM_CACHE)).match(WASM_URL);
    if (!hit) return null;
    // From the bytes rather than the stream: streaming compilation decodes
    // the module on the thread that owns the stream, here the page's, in
    // one 40–70 ms task when a stored copy's chunks arrive together;
    // WebAssembly.compile decodes on the engine's background threads.
    const module = await WebAssembly.compile(await hit.arrayBuffer());
    mark('compiled');
    return module;
  } catch {
    return null; // storage blocked, a damaged copy, no SIMD: the worker tries and says why
  }
}

mark('workerSpawned');
const firstSlot = spawn(true);
if (sharedLasts) {
  // A shared first worker starts its own module, or has it started
  // already; the pool's copy is compiled after the first answer (grow).
  firstSlot.w.postMessage({type: 'start'});
} else {
  compileStored().then((module) => {
    if (!pool.includes(firstSlot)) return; // replaced meanwhile, and started its own way
    if (module && !compiledModule) haveModule(module);
    firstSlot.w.postMessage(module ? {type: 'init', module} : {type: 'start'});
  });
}

// haveModule keeps the compiled module for the other workers and starts
// a comparison asked for before it was there.
function haveModule(module) {
  compiledModule = module;
  if (compareWanted) startCompare(compareWanted);
}

function loadModel(entry) {
  loadStarted = performance.now();
  if (!startTrouble()) { // its message stays until the module is in
    setStatus(`Loading ${entry.file}…`);
    setProgress(0, entry.size || -1);
  }
  lastLoad = {type: 'load', url: entry.url, size: entry.size, sha256: entry.sha256};
  loadsInFlight.push(entry);
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
  // A server that had a live list on the last visit is asked for it at
  // once, beside the site's list, rather than one round trip later.
  const guess = storedLiveList();
  const early = guess ? read(guess).catch(() => null) : null;
  let live = '';
  let built = null;
  try {
    const {resp, list} = await read('models/manifest.json');
    live = resp.headers.get('X-Cifarnet-Models') || '';
    storeLiveList(live);
    if (list && !live) return list;
    built = list;
  } catch {
    // Offline or not served: the live list may still answer.
  }
  try {
    const got = live && live === guess ? await early : null;
    const {list} = got || await read(live || 'api/models');
    if (list) return list;
  } catch {
    // Offline with no cached live list: the site's own list will do.
  }
  return built || [];
}

const LIVE_LIST_KEY = 'cifarnet.liveList';
function storedLiveList() {
  try {
    return localStorage.getItem(LIVE_LIST_KEY) || '';
  } catch {
    return ''; // storage blocked: one round trip more
  }
}
function storeLiveList(url) {
  try {
    if (url) localStorage.setItem(LIVE_LIST_KEY, url);
    else localStorage.removeItem(LIVE_LIST_KEY);
  } catch {
    // As above.
  }
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
  // A taught model has no test-set figure, only its held-out or
  // cross-validated one.
  const val = info.provenance && info.provenance.val_accuracy;
  let acc = info.testAccuracy ? pct(info.testAccuracy) : val ? `not measured (validation ${pct(val)})` : 'not measured';
  if (info.testAccuracyTTA) acc += ` (${pct(info.testAccuracyTTA)} with TTA)`;
  fact('accuracy', acc);
  fact('dtype', info.dtype + (info.tta && info.tta.length ? `, TTA: ${info.tta.join(' + ')}` : ''));
  fact('size', fmtSize(info.size));
  const tta = info.tta || [];
  ui.ttaChoice.hidden = tta.length === 0;
  ui.tta.checked = info.ttaOn;
  ui.ttaViews.textContent = String(info.ttaViews);
}

// ---------------------------------------------------------------- model card

// The card shows the weight file's own metadata (as the classifier read
// it) and, for a listed model with a test report (NAME.report.json, made
// by static/assemble.sh from trainer eval's report.json), the per-class
// accuracy. A dropped file has no report: "not measured".
let cardToken = 0;

// duration writes seconds as trainer info does, in words: "47 min 55 s".
function duration(sec) {
  const t = Math.round(sec);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const parts = [];
  if (h) parts.push(`${h} h`);
  if (h || m) parts.push(`${m} min`);
  parts.push(`${t % 60} s`);
  return parts.join(' ');
}

function showModelCard(info, entry) {
  const p = info.provenance || {};
  const fact = (name, text) => {
    $(`[data-card="${name}"]`, ui.card).textContent = text;
  };
  const orNot = (v, what = 'not recorded') => (v === undefined || v === null || v === '' || v === 0 ? what : String(v));
  fact('file', info.name);
  fact('arch', `${info.spec}, ${info.layers} layers, input ${info.input.c}×${info.input.h}×${info.input.w}`);
  fact('params', commas(info.params));
  fact('flops', `${(info.flops / 1e6).toFixed(1)} MFLOPs`);
  fact('size', `${fmtSize(info.size)} (${commas(info.size)} bytes)`);
  fact('dtype', info.dtype);
  fact('accuracy', p.test_accuracy ? pct(p.test_accuracy, 2) : 'not measured');
  fact('accuracy-tta', p.test_accuracy_tta ? `${pct(p.test_accuracy_tta, 2)}${info.tta.length ? ` (${info.tta.join(' + ')})` : ''}` : 'not measured');
  fact('dataset', orNot(p.dataset));
  fact('recipe', orNot(p.recipe));
  fact('epochs', orNot(p.epochs));
  fact('device', orNot(p.device));
  fact('train-time', p.train_seconds ? duration(p.train_seconds) : 'not recorded');
  fact('created', orNot(p.created));
  fact('trainer', orNot(p.trainer));
  ui.card.dataset.file = info.name;
  const token = ++cardToken; // an earlier model's report, still coming, is ignored
  showPerClass(null, 'Not measured: there is no test report for this file.');
  if (!entry || !entry.report) return;
  ui.card.dataset.report = 'loading';
  ui.perClassNote.textContent = 'Loading the test report…';
  fetch(entry.report, {headers: {Accept: 'application/json'}})
    .then((resp) => {
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      return resp.json();
    })
    .then((r) => {
      if (token !== cardToken) return;
      if (!r || !Array.isArray(r.per_class) || r.per_class.length !== info.classes.length) {
        throw new Error('it does not match this model');
      }
      const same = r.measured === info.name;
      const what = same ? 'this file' : `${r.measured} (${r.dtype}), the file this one was exported from`;
      showPerClass(r, `Measured on ${what}: ${commas(r.test_images)} test images, ${pct(r.accuracy, 2)} overall` +
        `${r.accuracy_tta ? `, ${pct(r.accuracy_tta, 2)} with TTA` : ''}.`);
    })
    .catch((err) => {
      if (token === cardToken) showPerClass(null, `Not measured: the test report could not be read (${err.message}).`);
    });
}

function showPerClass(report, note) {
  ui.perClassNote.textContent = note;
  ui.card.dataset.report = report ? 'shown' : 'none';
  const body = $('tbody', ui.perClass);
  body.textContent = '';
  ui.perClass.hidden = !report;
  if (!report) return;
  for (const c of report.per_class) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = c.class;
    const acc = document.createElement('td');
    acc.textContent = pct(c.accuracy);
    const tta = document.createElement('td');
    tta.textContent = typeof c.accuracy_tta === 'number' ? pct(c.accuracy_tta) : 'not measured';
    tr.append(th, acc, tta);
    body.append(tr);
  }
}

// commas groups digits as en-US does; toLocaleString would first load the
// locale data, a main-thread pause of 100 ms or more on a phone.
const commas = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

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
    if (compare) compare.w.postMessage({type: 'setTTA', on: false});
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
  if (compare) compare.w.postMessage({type: 'setTTA', on});
});

async function initModels() {
  const list = await listModels();
  mark('modelsListed');
  if (list.length === 0) {
    hideProgress();
    if (!cannotRun) { // a dropped file would not run either
      setStatus('No model is bundled with this site. Drop a .cnw weight file on the page to load one.', 'error');
      ui.status.dataset.code = 'no_model';
    }
    // The worker answers held images with a no-model error.
    modelRequested = true;
    flushHeld();
    registerServiceWorker();
    return;
  }
  modelList = list;
  const chosen = list.find((m) => m.default) || list.find((m) => m.latest) || list[0];
  if (list.length > 1) {
    fillCompareChoice(list);
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

let nextSeq = 1; // order of arrival, for "newest first"

function newCard(name, blob) {
  const card = ui.template.content.firstElementChild.cloneNode(true);
  card.dataset.seq = String(nextSeq++);
  $('.file', card).textContent = name;
  $('.thumb canvas.preview', card).setAttribute('aria-label', `Preview of ${name}`);
  if (!inBulk()) {
    ui.results.prepend(card);
    updateEmpty();
  }
  if (blob) queueThumb(card, blob);
  else $('.thumb', card).classList.add('broken');
  card.dataset.time = new Date().toISOString();
  return card;
}

function showError(card, code, message) {
  card.dataset.state = 'error';
  countBatch();
  if (batch.total <= 1) ui.announce.textContent = `${$('.file', card).textContent}: ${message}`;
  card.dataset.errorCode = code;
  $('.answer .label', card).textContent = 'Not classified';
  $('.message', card).textContent = message;
  finished(card);
}

// showFirst shows the answer from the image alone while the other
// test-time views run (a lone image on one worker); showResult replaces it.
// The card stays pending: it is counted, announced and exported when done.
function showFirst(id, r) {
  const card = pending.get(id);
  if (!card || card.dataset.state !== 'pending') return;
  mark('firstAnswer');
  card.dataset.firstLabel = r.top.label;
  card.dataset.firstP = String(r.top.p);
  $('.answer .label', card).textContent = r.top.label;
  $('.answer .confidence', card).textContent = pct(r.top.p);
  const views = modelInfo ? modelInfo.ttaViews : 0;
  $('.sureness', card).textContent = `From the image alone; checking ${views > 1 ? `the other ${views - 1} test-time views` : 'its test-time views'}…`;
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
  card.dataset.topP = String(r.top.p);
  card.dataset.ms = String(r.ms);
  if (r.decodedBy) card.dataset.decodedBy = r.decodedBy;
  if (r.parts) card.dataset.parts = String(r.parts); // its TTA views ran on that many workers

  $('.answer .label', card).textContent = r.top.label;
  $('.answer .confidence', card).textContent = pct(r.top.p);
  const unsure = r.top.p < UNSURE_BELOW;
  card.dataset.unsure = String(unsure);
  $('.sureness', card).textContent = unsure
    ? `Unsure: under ${pct(UNSURE_BELOW, 0)}, so this may not be one of the ten classes, or is hard to tell.`
    : 'Confident';
  // One image is announced; a batch is announced when it ends.
  countBatch();
  if (batch.total <= 1) ui.announce.textContent = `${$('.file', card).textContent}: ${r.top.label}, ${pct(r.top.p, 0)}${unsure ? ', unsure' : ''}`;
  card.dataset.tta = String(Boolean(r.tta));
  const via = r.decodedBy === 'browser' ? ' · decoded by the browser' : '';
  const tta = r.tta ? ` (test-time augmentation${r.parts ? `, on ${r.parts} workers at once` : ''})` : '';
  $('.timing', card).textContent = `Inference ${r.ms.toFixed(1)} ms${tta} · total ${r.totalMs.toFixed(1)} ms${via}`;

  // Kept for the saliency map: the 32×32 input only, not the file.
  inputs.set(card, {pixels: r.input.slice(), width: r.inputWidth, height: r.inputHeight, index: r.top.index, label: r.top.label});
  const explain = $('.explain', card);
  explain.hidden = false;
  // The name starts with the visible words, as speech input expects.
  explain.setAttribute('aria-label', `Show what mattered for ${r.top.label} in ${$('.file', card).textContent}`);

  if (ui.results.classList.contains('compact')) undetailed.set(card, classes);
  else showDetails(card, probs, classes);
  finished(card);
}

// Compact cards show no model input, heat strip or bars: those are made
// when the card is first shown in full, which most cards of a drop of
// hundreds never are. Making them costs the main thread about a
// millisecond a card (two bitmaps, a canvas context, some sixty
// elements), which on two cores is taken from the workers.
const undetailed = new Map(); // finished card whose details wait → its classes

function showDetails(card, probs, classes) {
  const input = inputs.get(card);
  // The model input, drawn at 32×32 and scaled up crisply by CSS.
  showPixels($('.seen canvas.input', card), input.pixels, input.width, input.height);

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

// showAllDetails makes the details of the cards that wait for them, a
// few dozen a task, the cards first in the list first.
function showAllDetails() {
  const shown = Array.from(ui.results.children).filter((c) => undetailed.has(c));
  const cards = [...new Set([...shown, ...undetailed.keys()])].map((c) => [c, undetailed.get(c)]);
  undetailed.clear();
  const step = () => {
    for (const [card, classes] of cards.splice(0, 40)) {
      if (!gone.has(card)) showDetails(card, JSON.parse(card.dataset.probs), classes);
    }
    if (cards.length > 0) setTimeout(step, 0);
  };
  step();
}

// classify queues one image; the worker runs them in order.
function classify(file, name = file.name || 'pasted image') {
  const card = newCard(name, file);
  batch.made++;
  scheduleBatch();
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
  if (compare) queueCompare(id, card, file);
  return card;
}

// The first card of what the user just gave is brought into view and
// focused when it is done, so that on a phone the answer is not left far
// below the picker.
let revealNext = null;
function finished(card) {
  if (card.dataset.compare) renderVersus(card);
  if (!card.isConnected) {
    staged.push(card);
    scheduleBatch();
    return;
  }
  updateExportButtons();
  scheduleView();
  scheduleBatch();
  reveal(card);
}

function reveal(card) {
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

// A drop of many images waits in incoming; cards are made only a few
// ahead of the workers (as each result comes in), so that the page never
// builds hundreds of cards in one go and Cancel has little to take back.
const incoming = []; // {file, reveal}
const LOOKAHEAD = POOL_SIZE * JOBS_PER_WORKER + 2;
let making = 0; // handleFiles calls still reading their files
let batchGen = 0; // changed by Cancel: a drop still being read stops
const COMPACT_FROM = 12; // a drop of this many images switches to the compact layout

function pumpIncoming(ahead = LOOKAHEAD) {
  while (incoming.length > 0 && pending.size < ahead) {
    const {file, reveal} = incoming.shift();
    const card = classify(file);
    if (reveal) revealNext = card;
    if (card.dataset.state !== 'pending') finished(card);
  }
  scheduleBatch();
}

async function handleFiles(files) {
  const gen = batchGen;
  const images = files.filter((f) => !/\.cnw$/i.test(f.name)).length;
  if (images >= COMPACT_FROM && !compactChosen) setCompact(true);
  resetBatchIfIdle();
  let first = true;
  making++;
  try {
    for (const f of files) {
      if (gen !== batchGen) break;
      if (/\.cnw$/i.test(f.name)) {
        // Images before the weight file go to the model in use.
        pumpIncoming(Infinity);
        loadStarted = performance.now();
        setStatus(`Loading ${f.name}…`);
        const bytes = await f.arrayBuffer();
        lastLoad = {type: 'loadBytes', bytes, name: f.name};
        loadsInFlight.push(null);
        broadcast(lastLoad);
        modelRequested = true;
        flushHeld();
        continue;
      }
      incoming.push({file: f, reveal: first});
      first = false;
    }
  } finally {
    making--;
  }
  pumpIncoming();
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
    mark('sampleClicked');
    try {
      const resp = await fetch(`samples/${name}`);
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const blob = await resp.blob();
      mark('sampleFetched');
      resetBatchIfIdle();
      revealNext = classify(new File([blob], name, {type: 'image/png'}));
    } catch (err) {
      const card = newCard(name, null);
      revealNext = card;
      showError(card, 'network', `The sample could not be fetched (${err.message}).`);
    }
  });
}

ui.clear.addEventListener('click', () => {
  for (const card of staged.splice(0)) discard(card);
  for (const card of ui.results.querySelectorAll('.result:not([data-state="pending"])')) discard(card);
  updateEmpty();
  updateExportButtons();
  scheduleView();
});

function updateEmpty() {
  const any = ui.results.children.length > 0;
  ui.empty.hidden = any;
  ui.view.hidden = !any;
  ui.clear.disabled = !any;
}

// ---------------------------------------------------------------- thumbnails

// A card keeps a small copy of the picture, not the file or its full
// decoded bitmap: a drop of hundreds of photos must not hold them all.
// One is made at a time, decoded and scaled by createImageBitmap off the
// main thread.
const THUMB = 160; // pixels; the preview is 7.5rem (120 CSS pixels)
const thumbQueue = [];
let thumbBusy = false;

function queueThumb(card, blob) {
  thumbQueue.push({card, blob});
  if (!thumbBusy) drainThumbs();
}

async function drainThumbs() {
  thumbBusy = true;
  while (thumbQueue.length > 0) {
    const {card, blob} = thumbQueue.shift();
    if (gone.has(card)) continue; // cancelled or cleared
    try {
      await drawThumb($('.thumb canvas.preview', card), blob);
    } catch {
      $('.thumb', card).classList.add('broken');
    }
  }
  thumbBusy = false;
}

async function drawThumb(canvas, blob) {
  const full = await createImageBitmap(blob);
  const {width: w, height: h} = full;
  if (w <= 64 && h <= 64) {
    // Tiny pictures (CIFAR-10 itself is 32×32) are shown as pixels, not blur.
    canvas.classList.add('small');
    showBitmap(canvas, full);
    return;
  }
  // The centred square the preview shows, as object-fit: cover would.
  const side = Math.min(w, h);
  try {
    showBitmap(canvas, await createImageBitmap(full, (w - side) / 2, (h - side) / 2, side, side,
      {resizeWidth: THUMB, resizeHeight: THUMB, resizeQuality: 'medium'}));
  } finally {
    full.close();
  }
}

// showBitmap hands a bitmap to a canvas's bitmap renderer, which takes it
// over without copying or drawing on this thread: a 2D context and a
// draw per card cost the main thread over a millisecond each, twice a
// card, in a drop of hundreds.
function showBitmap(canvas, bitmap) {
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext('bitmaprenderer').transferFromImageBitmap(bitmap);
}

// showPixels shows w×h RGBA pixels on a canvas, sized to them at once and
// drawn when their bitmap is made.
function showPixels(canvas, pixels, w, h) {
  canvas.width = w;
  canvas.height = h;
  createImageBitmap(new ImageData(pixels, w, h)).then((b) => showBitmap(canvas, b), () => {});
}

// ---------------------------------------------------------------- many images

// The progress line counts the images since the queue was last empty;
// Cancel drops those no worker has finished (their cards go), keeping the
// results so far.
const batch = {made: 0, cancelled: 0, total: 0, done: 0};
let batchFrame = 0;

// A new batch starts when nothing is waiting.
function resetBatchIfIdle() {
  if (batchActive()) return;
  batch.made = 0;
  batch.cancelled = 0;
  batch.total = 0;
  batch.done = 0;
}

// batchActive: images of the batch are still being read, queued or classified.
const batchActive = () => pending.size > 0 || incoming.length > 0 || making > 0;

function countBatch() {
  batch.total = batch.made + incoming.length + batch.cancelled;
  batch.done = batch.made - pending.size;
}

function scheduleBatch() {
  if (staged.length > 0 || inBulk()) scheduleFlush();
  else if (!batchFrame) batchFrame = requestAnimationFrame(showBatch);
}

// In a drop of several images a card joins the page when its answer is
// in, with the others finished by then, at most every BULK_FLUSH_MS (and
// at once when the last one is done): laying out, painting and committing
// a frame for every card and every answer took the main thread about as
// much CPU as classifying took a worker, which on two cores left the
// worker pool nothing to gain.
const BULK_FLUSH_MS = 250;
const staged = []; // finished cards not on the page yet, in order of finishing
let flushTimer = 0;
let lastFlush = 0;

// inBulk: more than one image is on its way to a working classifier, so
// cards wait to be shown. While the model is still loading they are shown
// at once, waiting, so that a drop is not met with an empty list.
const inBulk = () => batch.made + incoming.length > 1 && pool.some((s) => s.ready);

function scheduleFlush() {
  if (!batchActive()) {
    clearTimeout(flushTimer);
    flushTimer = 0;
    flushStaged();
    return;
  }
  if (flushTimer) return;
  const wait = Math.max(0, lastFlush + BULK_FLUSH_MS - performance.now());
  flushTimer = setTimeout(() => {
    flushTimer = 0;
    flushStaged();
  }, wait);
}

// flushStaged puts the finished cards on the page, newest first, and
// updates what depends on them.
function flushStaged() {
  lastFlush = performance.now();
  if (staged.length > 0) {
    const cards = staged.splice(0).filter((c) => !gone.has(c));
    cards.sort((a, b) => Number(b.dataset.seq) - Number(a.dataset.seq));
    ui.results.prepend(...cards);
    updateEmpty();
    updateExportButtons();
    scheduleView();
    if (revealNext && cards.includes(revealNext)) reveal(revealNext);
  }
  showBatch();
}

// Cards cancelled or cleared before they reached the page: their
// thumbnails are not drawn and they are not shown.
const gone = new WeakSet();
function discard(card) {
  gone.add(card);
  undetailed.delete(card);
  card.remove();
}

function showBatch() {
  batchFrame = 0;
  countBatch();
  const active = batchActive();
  const wasActive = ui.batch.dataset.state === 'running';
  ui.batch.dataset.state = active ? 'running' : batch.cancelled ? 'cancelled' : 'done';
  if (batch.total <= 1 && batch.cancelled === 0) {
    ui.batch.hidden = true;
    ui.batchCancel.disabled = true;
    return;
  }
  ui.batch.hidden = false;
  ui.batchProgress.max = Math.max(1, batch.total);
  ui.batchProgress.value = batch.done;
  ui.batchCancel.disabled = !active;
  if (active) {
    ui.batchText.textContent = `${batch.done} of ${batch.total}`;
  } else {
    // Short, to fit beside the heading on a phone; the announcement says all.
    ui.batchText.textContent = batch.cancelled ? `Stopped at ${batch.done} of ${batch.total}` : `All ${batch.total} done`;
    if (wasActive) {
      ui.announce.textContent = batch.cancelled
        ? `Stopped: ${batch.done} of ${batch.total} images classified, ${batch.cancelled} cancelled.`
        : `All ${batch.total} images classified.`;
    }
  }
}

function cancelBatch() {
  batchGen++;
  const ids = new Set(pending.keys());
  for (const card of pending.values()) discard(card);
  pending.clear();
  batch.made -= ids.size;
  batch.cancelled += ids.size + incoming.length;
  incoming.length = 0;
  const keep = (m) => !(m.type === 'classify' && ids.has(m.id)) && !(m.type === 'classifyPart' && ids.has(m.of));
  for (const id of ids) splits.delete(id);
  const left = waiting.filter(keep);
  waiting.length = 0;
  waiting.push(...left);
  held = held.filter(keep);
  if (compare) {
    compare.queue = compare.queue.filter(keep);
    for (const id of ids) compare.cards.delete(id);
  }
  // Jobs a worker already holds finish; finishJob finds no card for them.
  // The answers so far go on the page now, with the progress line.
  clearTimeout(flushTimer);
  flushTimer = 0;
  flushStaged();
  updateEmpty();
  updateExportButtons();
  scheduleView();
  ui.batchText.focus();
}
ui.batchCancel.addEventListener('click', cancelBatch);

// ---------------------------------------------------------------- view

// Filter by class, sort by confidence, only unsure ones, compact cards.
// Cards are reordered in the DOM (not with CSS order), so that keyboard
// and screen reader order follow what is shown.
let viewFrame = 0;
let compactChosen = false; // the user set Compact: no automatic switch

function fillClassFilter(classes) {
  const chosen = ui.viewClass.value;
  ui.viewClass.length = 1;
  for (const c of classes) ui.viewClass.add(new Option(c, c, false, c === chosen));
  scheduleView();
}

function setCompact(on) {
  ui.viewCompact.checked = on;
  ui.results.classList.toggle('compact', on);
  if (!on) showAllDetails();
}

function scheduleView() {
  if (!viewFrame) viewFrame = requestAnimationFrame(applyView);
}

// rank orders cards for the chosen sort: finished ones by confidence,
// then errors, then those still waiting; ties newest first.
function rank(sort) {
  const group = (c) => (c.dataset.state === 'done' ? 0 : c.dataset.state === 'error' ? 1 : 2);
  const seq = (c) => Number(c.dataset.seq);
  return (a, b) => {
    if (sort !== 'newest') {
      const g = group(a) - group(b);
      if (g !== 0) return g;
      if (group(a) === 0) {
        const d = Number(a.dataset.topP) - Number(b.dataset.topP);
        if (d !== 0) return sort === 'sure' ? -d : d;
      }
    }
    return seq(b) - seq(a);
  };
}

function applyView() {
  viewFrame = 0;
  const cards = Array.from(ui.results.children);
  const sorted = cards.slice().sort(rank(ui.viewSort.value));
  // Only the cards out of place move (in a drop, the few that finished
  // out of turn): moving all of them costs a layout of every card, and
  // moving the focused one loses its focus.
  const focused = document.activeElement;
  let next = ui.results.firstElementChild;
  for (const c of sorted) {
    if (c === next) next = next.nextElementSibling;
    else ui.results.insertBefore(c, next);
  }
  if (focused && focused !== document.activeElement && focused.isConnected) focused.focus({preventScroll: true});
  const cls = ui.viewClass.value;
  const unsureOnly = ui.viewUnsure.checked;
  let shown = 0;
  for (const c of cards) {
    const show = (!cls || c.dataset.topLabel === cls) && (!unsureOnly || c.dataset.unsure === 'true');
    c.classList.toggle('filtered', !show);
    if (show) shown++;
  }
  const n = cards.length;
  ui.viewCount.textContent = shown === n ? `${n} ${n === 1 ? 'result' : 'results'}` : `Showing ${shown} of ${n}`;
  ui.results.dataset.shown = String(shown);
}

ui.viewClass.addEventListener('change', scheduleView);
ui.viewSort.addEventListener('change', scheduleView);
ui.viewUnsure.addEventListener('change', scheduleView);
ui.viewCompact.addEventListener('change', () => {
  compactChosen = true;
  setCompact(ui.viewCompact.checked);
});

// ---------------------------------------------------------------- compare

// Compare mode: a worker of its own holds the second model; every image
// given while it is on goes to both, and its card shows both answers and
// whether they agree.
let compareWanted = null; // the entry chosen before the module was compiled
let compare = null; // {w, entry, info, queue, inFlight, cards: Map id → card}

function fillCompareChoice(list) {
  for (const m of list) ui.compareSelect.add(new Option(describeEntry(m), m.url));
  ui.compareChoice.hidden = false;
  ui.compareSelect.addEventListener('change', () => {
    stopCompare('Images you add are then classified by both models.');
    const m = modelList.find((x) => x.url === ui.compareSelect.value);
    if (m) startCompare(m);
  });
}

function compareNote(text, state) {
  ui.compareNote.textContent = text;
  ui.compareChoice.dataset.state = state;
}

function startCompare(entry) {
  compareWanted = entry;
  // Without the compiled module, wait for the worker that hands it over
  // (the first, or with a shared first worker the first helper); a pool
  // of one with a shared first worker has none: compare compiles its own.
  if (!compiledModule && (!sharedLasts || POOL_SIZE > 1)) {
    grow();
    compareNote('Waiting for the classifier to start…', 'loading');
    return;
  }
  compareWanted = null;
  const c = {w: new Worker(WORKER_URL), entry, info: null, queue: [], inFlight: 0, cards: new Map()};
  compare = c;
  c.w.onmessage = (e) => onCompareMessage(c, e.data);
  c.w.onerror = (e) => {
    if (compare === c) stopCompare(`The second classifier failed (${e.message || 'worker error'}).`, 'error');
  };
  c.w.postMessage(compiledModule ? {type: 'init', module: compiledModule} : {type: 'start'});
  c.w.postMessage({type: 'load', url: entry.url, size: entry.size, sha256: entry.sha256});
  if (lastTTA !== null) c.w.postMessage({type: 'setTTA', on: lastTTA});
  compareNote(`Loading ${entry.file} to compare…`, 'loading');
}

// stopCompare ends compare mode; cards still waiting for the second
// model say so.
function stopCompare(note, state = 'off') {
  compareWanted = null;
  const c = compare;
  compare = null;
  if (c) {
    c.w.terminate();
    for (const card of c.cards.values()) setCompareError(card, 'not compared (compare mode ended)');
  }
  compareNote(note, state);
}

function onCompareMessage(c, msg) {
  if (compare !== c) return;
  switch (msg.type) {
    case 'ready':
      c.info = msg.info;
      compareNote(`Comparing with ${msg.info.name}: images you add now are classified by both models.`, 'ready');
      break;
    case 'loadError':
      stopCompare(`${sentence(msg.message)} Nothing is compared.`, 'error');
      break;
    case 'result':
    case 'error': {
      c.inFlight--;
      const card = c.cards.get(msg.id);
      c.cards.delete(msg.id);
      pumpCompare();
      if (!card) break;
      if (msg.type === 'result') setCompareResult(card, msg.result, c.info);
      else setCompareError(card, friendly(msg.code, msg.message));
      break;
    }
  }
}

function queueCompare(id, card, file) {
  card.dataset.compare = 'pending';
  card.dataset.compareModel = compare.info ? compare.info.name : compare.entry.file;
  compare.cards.set(id, card);
  compare.queue.push({type: 'classify', id, file});
  pumpCompare();
  renderVersus(card);
}

function pumpCompare() {
  const c = compare;
  while (c && c.queue.length > 0 && c.inFlight < JOBS_PER_WORKER) {
    c.w.postMessage(c.queue.shift());
    c.inFlight++;
  }
}

function setCompareResult(card, r, info) {
  card.dataset.compare = 'done';
  if (info) card.dataset.compareModel = info.name;
  card.dataset.compareTopIndex = String(r.top.index);
  card.dataset.compareTopLabel = r.top.label;
  card.dataset.compareTopP = String(r.top.p);
  card.dataset.compareProbs = JSON.stringify(Array.from(r.probs));
  renderVersus(card);
}

function setCompareError(card, message) {
  card.dataset.compare = 'error';
  card.dataset.compareMessage = message;
  renderVersus(card);
}

// renderVersus fills the card's side-by-side block from its data
// attributes; the models disagree when their top classes differ.
function renderVersus(card) {
  const v = $('.versus', card);
  v.hidden = false;
  const side = (which, model, state, label, p, message) => {
    const row = $(`[data-side="${which}"]`, v);
    $('dt', row).textContent = model;
    $('dd', row).textContent = state === 'done' ? `${label} ${pct(Number(p))}`
      : state === 'error' ? (message || 'not classified') : 'classifying…';
  };
  const d = card.dataset;
  side('a', d.model || modelName || 'This model', d.state, d.topLabel, d.topP, 'not classified');
  side('b', d.compareModel, d.compare, d.compareTopLabel, d.compareTopP, d.compareMessage);
  const both = d.state === 'done' && d.compare === 'done';
  if (both) d.disagree = String(d.topLabel !== d.compareTopLabel);
  else delete d.disagree;
  $('.versus-verdict', v).textContent = !both ? 'Side by side' : d.disagree === 'true' ? 'The models disagree' : 'Both models agree';
}

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
  if (slot) slot.jobs.delete(msg.id);
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
    const d = card.dataset;
    const compared = d.compare === 'done';
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
      // Compare mode: the second model's answer, when it gave one.
      compare_model: compared ? d.compareModel : '',
      compare_top_class: compared ? d.compareTopLabel : '',
      compare_top_probability: compared ? Number(d.compareTopP) : null,
      models_disagree: d.disagree === undefined ? null : d.disagree === 'true',
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
    'model', 'model_version', 'tta', 'inference_ms', 'time',
    'compare_model', 'compare_top_class', 'compare_top_probability', 'models_disagree'];
  const rows = records.map((r) => [r.file, r.status, r.error, r.top_class, r.top_probability, r.unsure,
    ...classes.map((c) => r.probabilities[c]), r.model, r.model_version, r.tta, r.inference_ms, r.time,
    r.compare_model, r.compare_top_class, r.compare_top_probability, r.models_disagree]);
  return [head, ...rows].map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

// download saves data (a string or bytes) as a file named name.
function download(name, type, data) {
  const url = URL.createObjectURL(new Blob([data], {type}));
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
    resetBatchIfIdle();
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
// the HTTP cache instead of downloading everything a second time; and not
// before the first result or, with no image given, a few idle seconds, so
// that starting it and its precache do not compete with the first image
// (nor with the page's start on a slow phone).
let swRegistered = false;
const SW_IDLE_MS = 4000;
function registerServiceWorker() {
  if (swRegistered || !('serviceWorker' in navigator) || !globalThis.isSecureContext) return;
  swRegistered = true;
  Promise.race([firstResult, new Promise((resolve) => setTimeout(resolve, SW_IDLE_MS))])
    .then(() => new Promise((resolve) => (globalThis.requestIdleCallback ? requestIdleCallback(resolve, {timeout: 1000}) : setTimeout(resolve, 0))))
    .then(() => navigator.serviceWorker.register('sw.js'))
    .catch((err) => console.warn('cifarnet: service worker not registered:', err));
}

// Teach mode (teach.js) runs a worker of its own from the compiled module,
// teaches the model in use, and hands back a taught model to use like a
// dropped weight file.
initTeach({
  workerURL: WORKER_URL,
  showPixels,
  module: () => compiledModule,
  current: () => lastLoad,
  use: (bytes, name) => {
    loadStarted = performance.now();
    setStatus(`Loading ${name}…`);
    lastLoad = {type: 'loadBytes', bytes, name, taught: true};
    loadsInFlight.push(null);
    broadcast(lastLoad);
    modelRequested = true;
    flushHeld();
  },
  download,
});

setStatus('Downloading the classifier…');
setProgress(0, -1);
initModels();
