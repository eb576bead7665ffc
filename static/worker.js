// cifarnet worker: hosts the Go WebAssembly classifier off the main thread,
// so that downloading, compiling and classifying never freeze the page.
//
// Messages from the page:
//   {type: 'start'}                     download (or read the stored copy of) the
//                                       module, compile and start it
//   {type: 'init', module}              start from a compiled WebAssembly.Module
//                                       instead; the other requests wait for one of
//                                       the two, even those that came before it
//   {type: 'load', url, size, sha256}   download a weight file and use it; with
//                                       sha256 (the file's own, from the model
//                                       list) its saved build when there is one
//   {type: 'loadBytes', bytes, name}    use a weight file the user picked
//   {type: 'classify', id, file, first} classify a Blob/File; with first (a lone
//                                       image) and test-time augmentation on, the
//                                       answer from the image alone comes first
//   {type: 'classifyPart', id, file, part, parts}
//                                       one part of its test-time views (the page
//                                       splits one image across idle workers)
//   {type: 'setTTA', on}                turn the model's test-time augmentation on or off
//   {type: 'saliency', id, pixels, width, height, patch, stride, index}
//                                       occlusion sensitivity of class index
// Messages to the page:
//   {type: 'progress', phase, loaded, total}   phase: 'wasm' (downloading and compiling),
//                                              'compile' (compiled), 'model'
//   {type: 'module', module}                   the compiled module, for the pool
//   {type: 'ready', info}                      a model is loaded (info as cifarnet.info())
//   {type: 'tta', info}                        test-time augmentation switched
//   {type: 'loadError', code, message}         a model could not be loaded
//   {type: 'startError', code, message}        the module could not be downloaded,
//                                              compiled or started (code 'unsupported':
//                                              this browser cannot run it)
//   {type: 'exited', code}                     the Go program ended (a fatal error, such
//                                              as running out of memory): nothing more
//                                              will be answered
//   {type: 'first', id, result}                the answer from the image alone, while
//                                              its other test-time views run
//   {type: 'result', id, result}               for classifyPart, result has logits
//                                              instead of probs (cifarnet.classifyPart)
//   {type: 'error', id, code, message}
//   {type: 'saliencyProgress', id, done, total}
//   {type: 'saliency', id, result}             {base, drop, cols, rows, patch, stride, passes, ms}
//   {type: 'timing', timing}                   start-up steps, ms since the epoch
//   {type: 'attached'}                         a shared worker has taken the page's port
//   {type: 'gone'}                             a shared worker whose Go program has ended:
//                                              the page uses a dedicated one instead
//
// As a SharedWorker (the page's first worker, where the browser keeps a
// shared worker alive after its pages have gone: SharedWorker's
// extendedLifetime) it serves one page at a time, the one holding the
// Web Lock OWNER_LOCK: the page that connected last. A reload or a new
// tab finds the module started, its code optimised and the model loaded,
// and gets its first answer without any of the start-up (bench/RESULTS.md,
// eleventh session). It sends no 'module' (a compiled module cannot leave
// a shared worker), ends itself when its Go program ends or cannot start
// (so that the page's replacement is a fresh one), and once no page has
// held the lock for SHARED_IDLE_MS.
// static/assemble.sh rewrites the three names below to content-hashed ones.
'use strict';

// Steps of starting up, in ms on the page's clock (performance.timeOrigin
// differs per context), sent in a message type 'timing' after an image
// when there are new ones, for the benchmark's breakdown of the time to
// the first prediction.
const timing = {};
let timingSent = 0; // steps in the last message
function step(name) {
  if (!(name in timing)) timing[name] = performance.timeOrigin + performance.now();
}
function sendTiming() {
  const n = Object.keys(timing).length;
  if (n === timingSent) return;
  timingSent = n;
  post({type: 'timing', timing});
}
step('workerStart');

importScripts('wasm_exec.js');

const WASM_URL = 'cifarnet.wasm';
const WASM_SIZE = 0; // bytes, set by assemble.sh: the response may be compressed

// Limits stated on the page.
const MAX_FILE_BYTES = 100e6; // 100 MB (MB = 10^6 bytes, as the page and trainer info count)
const GO_MAX_PIXELS = 40e6; // models.MaxImagePixels
const MAX_BROWSER_PIXELS = 100e6; // what we ask the browser to decode at all
const DOWNSCALE_TO = 2048; // long side handed to the classifier after downscaling

const shared = typeof SharedWorkerGlobalScope !== 'undefined' && self instanceof SharedWorkerGlobalScope;
const OWNER_LOCK = 'cifarnet-primary'; // app.js holds it while it uses this worker
const SHARED_IDLE_MS = 5 * 60e3;

// owner is where messages go: the page (a dedicated worker's self, or the
// port of the page that connected last). running is the page a queued
// request came from while it runs: what a request of a page that has
// since gone says is dropped, so that its ids cannot be taken for the
// new page's.
let owner = shared ? null : self;
let running = null;
const post = (msg, transfer) => {
  if (owner && (!running || running === owner)) owner.postMessage(msg, transfer || []);
};

// ended stops a shared worker whose Go program cannot go on. Not at once:
// its last message must reach the page (and a debugger's answer its
// client); a page that connects meanwhile is told it is gone, and its
// next try gets a fresh worker.
let gone = false;
const ended = () => {
  if (!shared) return;
  gone = true;
  setTimeout(() => self.close(), 1000);
};

class CodedError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// downloadError is the error for a download the server answered with an
// error status.
const downloadError = (url, resp) => new CodedError('network', `Could not download ${url}: the server answered ${resp.status} ${resp.statusText}.`);

// fetchWithProgress reads a response body chunk by chunk, reporting bytes.
async function fetchWithProgress(url, phase, expected) {
  const resp = await fetch(url);
  if (!resp.ok) throw downloadError(url, resp);
  const total = expected || Number(resp.headers.get('Content-Length')) || -1;
  if (!resp.body) {
    const buf = new Uint8Array(await resp.arrayBuffer());
    post({type: 'progress', phase, loaded: buf.length, total: buf.length});
    return buf;
  }
  const reader = resp.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    post({type: 'progress', phase, loaded, total});
  }
  const out = new Uint8Array(loaded);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

// The module is kept in a Cache Storage cache of its own (the service
// worker does not precache it), so that the page works offline. The first
// visit compiles it while it downloads and stores a copy at the same time;
// later visits compile that copy (reading the cache here also skips
// starting the service worker). Chromium 156 keeps no compiled code for a
// module compiled from a Cache Storage response. For an HTTP response V8
// offers its optimised code for caching once optimising has paused for
// 2 s, yet in traces of 25 s after the first result it never did, and the
// small entry written with the pause shortened did not speed up the next
// session (bench/RESULTS.md, sixth session); so each visit compiles the
// module again. Older modules' entries are deleted.
const WASM_CACHE = 'cifarnet-wasm';

async function wasmCache() {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(WASM_CACHE);
  } catch {
    return null; // storage blocked
  }
}

// store puts the module's response in the cache and deletes older
// modules' entries. Failing only loses the offline copy.
async function store(cache, resp) {
  try {
    await cache.put(WASM_URL, resp);
    for (const req of await cache.keys()) {
      if (!req.url.endsWith(`/${WASM_URL}`)) await cache.delete(req);
    }
  } catch {
    // Quota or storage errors: the next visit downloads the module again.
  }
}

// compileWasm compiles the stored copy, or else the module as it
// downloads while a copy is stored. A server that answers with an error
// status ends the try at once; a host that sends the wrong Content-Type
// gets the module compiled from its bytes.
async function compileWasm() {
  if (typeof WebAssembly.compileStreaming === 'function') {
    const cache = await wasmCache();
    const hit = cache && await cache.match(WASM_URL).catch(() => undefined);
    if (hit) {
      try {
        return await WebAssembly.compileStreaming(hit);
      } catch {
        // A damaged stored copy or a wrong Content-Type: drop it, the network's copy follows.
        await cache.delete(WASM_URL).catch(() => {});
      }
    }
    let resp = null;
    try {
      resp = await fetch(WASM_URL);
    } catch {
      // Offline: the download below fails with a clear message.
    }
    if (resp && !resp.ok) throw downloadError(WASM_URL, resp);
    if (resp) {
      if (cache) store(cache, resp.clone());
      try {
        return await WebAssembly.compileStreaming(resp);
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // not a MIME type problem
      }
    }
  }
  return WebAssembly.compile(await fetchWithProgress(WASM_URL, 'wasm', WASM_SIZE));
}

// hasSIMD reports whether this browser runs WebAssembly SIMD128, which
// the module is built with: a one-function module using i8x16.popcnt
// (the test wasm-feature-detect uses) validates only where it does.
const hasSIMD = WebAssembly.validate(new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]));

// The Go module starts once, on the page's 'start' or 'init' message;
// every request waits for it, including those sent before it (the page
// may still be compiling the module it will hand over).
let begin = null;
const started = new Promise((resolve) => { begin = resolve; }).then(async (module) => {
  if (!hasSIMD) {
    throw new CodedError('unsupported', 'This browser cannot run the classifier: it needs WebAssembly SIMD (Chrome or Edge 91+, Firefox 89+, Safari 16.4+). Update the browser or open the page in another one.');
  }
  let mod = module;
  if (!mod) {
    post({type: 'progress', phase: 'wasm', loaded: 0, total: -1});
    mod = await compileWasm();
    step('compiled');
    post({type: 'progress', phase: 'compile', loaded: 0, total: -1});
    if (!shared) post({type: 'module', module: mod});
  }
  const go = new Go();
  const instance = await WebAssembly.instantiate(mod, go.importObject);
  step('instantiated');
  // The size of the module's memory, which never shrinks: the tests
  // read it through the DevTools protocol to watch for leaks.
  self.cifarnetMemory = () => instance.exports.mem.buffer.byteLength;
  const ready = new Promise((resolve) => { self.cifarnetReady = resolve; });
  // main never returns, so the program ends only on a fatal error (out
  // of memory, a runtime bug): the requests it held never settle, and
  // the page replaces this worker.
  let exitCode = null;
  go.exit = (code) => { exitCode = code; };
  go.run(instance).then(() => {
    post({type: 'exited', code: exitCode});
    ended();
  });
  await ready;
  step('goStarted');
  return self.cifarnet;
});
started.catch((err) => {
  if (err.code === 'unsupported') post({type: 'startError', code: err.code, message: err.message});
  else post({type: 'startError', code: err.code || 'network', message: `The classifier could not start: ${err.message || err}`});
  ended();
});

// Requests queued or running, so that saving a build waits for a quiet
// moment instead of holding up an image; and images among them.
let pending = 0;
let imagesPending = 0;

// One thing at a time: loads and classifications run in arrival order.
// A request of a page that has gone (from, a shared worker's earlier
// page) is skipped; the worker's own (from null) always runs.
let queue = Promise.resolve();
function enqueue(task, from = owner) {
  if (++pending === 1) markBusy(true);
  const run = queue.then(() => {
    if (from && from !== owner) return undefined;
    running = from;
    return task();
  }).finally(() => {
    running = null;
    if (--pending === 0) markBusy(false);
  });
  queue = run.catch(() => {});
  return run;
}

// While a worker has work queued it holds a shared Web Lock, so that a
// save of a built model waits until every worker of the page (the pool,
// teach mode, other tabs) is quiet.
const BUSY_LOCK = 'cifarnet-busy';
let busyWanted = false;
let busyAsked = false; // a request is outstanding or granted
let releaseBusy = null;
function markBusy(busy) {
  busyWanted = busy;
  if (!(self.navigator && navigator.locks)) return;
  if (busy && !busyAsked) {
    busyAsked = true;
    navigator.locks.request(BUSY_LOCK, {mode: 'shared'},
      () => busyWanted && new Promise((resolve) => { releaseBusy = resolve; }))
      .catch(() => {})
      .finally(() => {
        busyAsked = false;
        releaseBusy = null;
        if (busyWanted) markBusy(true);
      });
  } else if (!busy && releaseBusy) {
    releaseBusy();
  }
}

// lockHeld says whether some context of the origin holds the Web Lock
// name; null where that cannot be known (no lock manager).
async function lockHeld(name) {
  if (!(self.navigator && navigator.locks && navigator.locks.query)) return null;
  try {
    const {held} = await navigator.locks.query();
    return held.some((l) => l.name === name);
  } catch {
    return null;
  }
}

function errorMessage(err) {
  return {code: err && err.code ? err.code : 'internal', message: err && err.message ? err.message : String(err)};
}

// ---------------------------------------------------------------- built models
// Decoding a weight file and transforming its weights for the forward
// pass is most of what a visit's first prediction waits for: it runs
// before the engine has optimised the module's code (bench/RESULTS.md).
// So the built model (cifarnet.snapshot(): the packed, Winograd-transformed
// weights, 14 MB for cifarnet-fast) is kept in the origin private file
// system, and later visits copy it in instead: a synchronous read in this
// worker takes a third of the time IndexedDB does (bench/RESULTS.md). A
// file is named by this module's content-hashed name and the weight
// file's own SHA-256 (models/manifest.json lists it), so a new module or
// a changed weight file never meets an old build; the snapshot carries a
// check of its bytes that Go verifies at every load (1.5–6 ms for 14 MB
// where a check in this script took 20–60 ms), so a damaged or
// half-written file is refused, deleted and the weight file used. Only
// models the site serves are kept, the newest BUILT_KEEP of them; anything
// failing here only costs the time the cache would have saved.
const BUILT_DIR = 'cifarnet-built';
const BUILT_KEEP = 2;

const builtName = (sha256) => `${WASM_URL}.${sha256}`;

async function builtDir() {
  if (!(self.navigator && navigator.storage && navigator.storage.getDirectory)) return null;
  try {
    return await (await navigator.storage.getDirectory()).getDirectoryHandle(BUILT_DIR, {create: true});
  } catch {
    return null; // storage blocked
  }
}

// readFile reads a whole file: synchronously where the browser lets
// several readers share it, else through a File.
async function readFile(handle) {
  if (handle.createSyncAccessHandle) {
    let access = null;
    try {
      access = await handle.createSyncAccessHandle({mode: 'read-only'});
    } catch {
      // Older browsers: only one exclusive handle at a time.
    }
    if (access) {
      try {
        const bytes = new Uint8Array(access.getSize());
        if (access.read(bytes, {at: 0}) !== bytes.length) return null;
        return bytes;
      } finally {
        access.close();
      }
    }
  }
  return new Uint8Array(await (await handle.getFile()).arrayBuffer());
}

// readBuilt returns the saved build of the weight file with this SHA-256
// as a Uint8Array, or null; an empty or unreadable file is deleted (Go
// refuses a damaged one at loadSnapshot, and loadModel deletes it then).
async function readBuilt(sha256) {
  try {
    const dir = await builtDir();
    if (!dir) return null;
    let handle;
    try {
      handle = await dir.getFileHandle(builtName(sha256));
    } catch {
      return null; // none saved
    }
    const file = await readFile(handle);
    if (file && file.length > 0) return file;
    await deleteBuilt(sha256);
  } catch {
    // Unreadable (being written by another worker, say): build from the weight file.
  }
  return null;
}

async function deleteBuilt(sha256) {
  try {
    await (await builtDir()).removeEntry(builtName(sha256));
  } catch {
    // Gone or unreachable either way.
  }
}

// writeFile writes a whole file of dir, or leaves none: synchronously
// where the worker can (a dedicated one), else through a writable stream,
// which the browser puts in place only once it is closed.
async function writeFile(dir, name, bytes) {
  const handle = await dir.getFileHandle(name, {create: true});
  if (!handle.createSyncAccessHandle) {
    const out = await handle.createWritable();
    try {
      await out.write(bytes);
      await out.close();
    } catch (err) {
      await out.abort().catch(() => {});
      await dir.removeEntry(name).catch(() => {});
      throw err;
    }
    return;
  }
  const access = await handle.createSyncAccessHandle();
  try {
    access.truncate(0);
    const ok = access.write(bytes, {at: 0}) === bytes.length;
    access.flush();
    if (!ok) throw new Error('short write');
  } catch (err) {
    access.close();
    await dir.removeEntry(name).catch(() => {});
    throw err;
  }
  access.close();
}

// saveBuilt stores the current model's build under the weight file's
// SHA-256 unless another worker of the page is at it or has done it, then
// deletes other modules' files and all but the newest BUILT_KEEP.
async function saveBuilt(api, sha256, isCurrent) {
  const dir = await builtDir();
  if (!dir) return;
  const save = async () => {
    const name = builtName(sha256);
    if (!isCurrent() || await dir.getFileHandle(name).then(() => true, () => false)) return;
    const snap = await api.snapshot();
    // A load that started meanwhile may have replaced the model.
    if (!isCurrent()) return;
    await writeFile(dir, name, snap);
    const stale = [];
    const ours = [];
    for await (const [entry, handle] of dir.entries()) {
      if (!entry.startsWith(`${WASM_URL}.`)) stale.push(entry);
      else ours.push({entry, modified: (await handle.getFile()).lastModified});
    }
    ours.sort((a, b) => b.modified - a.modified);
    for (const entry of stale.concat(ours.slice(BUILT_KEEP).map((o) => o.entry))) await dir.removeEntry(entry);
  };
  try {
    if (self.navigator && navigator.locks) {
      await navigator.locks.request(BUILT_DIR, {ifAvailable: true}, (lock) => lock && save());
    } else {
      await save();
    }
  } catch {
    // Quota or storage errors: the next visit builds the model again (a
    // file left half-written fails its check in Go and is deleted).
  }
}

// whenQuiet runs task once no worker of the page has had work for ms.
// Not on the queue: images never wait for storage.
function whenQuiet(task, ms = 1000) {
  setTimeout(async () => {
    if (pending || await lockHeld(BUSY_LOCK)) whenQuiet(task, ms);
    else task();
  }, ms);
}

// READ_BUILT_MS bounds the wait for a saved build; past it the weight
// file is used, as if there were none.
const READ_BUILT_MS = 3000;
const readBuiltInTime = (sha256) => Promise.race([
  readBuilt(sha256),
  new Promise((resolve) => setTimeout(() => resolve(null), READ_BUILT_MS)),
]);

let loads = 0; // which model load is the current one
// The listed weight file the Go program holds ({url, sha256, ttaOn} as
// loaded), which a shared worker's next page may ask for again.
let kept = null;

// holds says a shared worker's Go program has the listed weight file a
// load asks for.
const holds = (msg) => shared && kept !== null && Boolean(msg.sha256) && kept.sha256 === msg.sha256 && kept.url === msg.url;

// keptInfo answers a load of the weight file the Go program already
// holds, as a fresh load would: test-time augmentation as the model
// starts. Null when it holds another (or a file the user picked).
async function keptInfo(api, msg) {
  if (!holds(msg)) return null;
  let info = api.info();
  if (info && info.ttaOn !== kept.ttaOn) info = await api.setTTA(kept.ttaOn);
  if (!info) return null;
  const {refetched, ...fresh} = info; // that load's news, not this one's
  return fresh;
}

// warmUp runs a blank picture through the network after a load: the first
// run of a freshly compiled module is several times slower than later ones
// while the engine optimises it, better spent now than on the user's first
// image. One test-time view at a time, and none once an image has arrived,
// so that an image sent during the warm-up waits for one view rather than
// for all six.
const WARM_UP_AFTER_MS = 300;
function warmUp(api) {
  const info = api.info(); // now: the TTA choice may have come after the load
  if (!info) return;
  const views = info.ttaOn ? info.ttaViews : 1;
  const blank = new Uint8ClampedArray(4);
  for (let part = 0; part < views; part++) {
    enqueue(async () => {
      if (imagesPending) return;
      await (views > 1 ? api.classifyPartRGBA(blank, 1, 1, part, views) : api.classifyRGBA(blank, 1, 1)).catch(() => {});
    }, null);
  }
}

async function loadModel(msg) {
  const load = ++loads;
  try {
    const api = await started;
    let info = await keptInfo(api, msg);
    if (info) {
      step('modelKept');
      post({type: 'ready', info});
      return;
    }
    kept = null;
    let built = false;
    if (msg.url && msg.sha256) {
      // Read since the load arrived, unless the worker held the model then.
      const snap = await (msg.built || readBuiltInTime(msg.sha256));
      if (snap) {
        const name = decodeURIComponent(new URL(msg.url, self.location.href).pathname.split('/').pop());
        info = await api.loadSnapshot(snap, name, msg.size || 0).catch(() => deleteBuilt(msg.sha256));
        built = Boolean(info);
        if (built) step('builtLoaded');
      }
    }
    if (!info) {
      info = msg.bytes
        ? await api.loadBytes(new Uint8Array(msg.bytes), msg.name)
        : await api.load(msg.url, (loaded, total) => post({type: 'progress', phase: 'model', loaded, total}), msg.size || 0);
    }
    step('modelLoaded');
    if (msg.url && msg.sha256) kept = {url: msg.url, sha256: msg.sha256, ttaOn: info.ttaOn};
    post({type: 'ready', info});
    // Not at once: an image sent while the model was loading (this thread
    // was busy in Go, its message still queued) or just after it, as
    // when a sample is clicked as soon as the page shows, skips the
    // warm-up rather than waiting for a first view that takes 100–500 ms
    // in baseline code on fresh memory.
    setTimeout(() => warmUp(api), WARM_UP_AFTER_MS);
    if (!built && msg.url && msg.sha256) whenQuiet(() => saveBuilt(api, msg.sha256, () => load === loads));
  } catch (err) {
    post({type: 'loadError', ...errorMessage(err)});
  }
}

// classifyFile hands the file's bytes to Go; for formats only the browser
// decodes, and for images too large for the classifier, the browser
// decodes and scales them and Go gets the pixels.
// With part and parts, only that part of the test-time views is run
// (cifarnet.classifyPart); onFirst (whole images only) gets the answer
// from the image alone before the other views run.
async function classifyFile(api, file, part, parts, onFirst) {
  if (file.size > MAX_FILE_BYTES) {
    throw new CodedError('too_large', `The file is ${(file.size / 1e6).toFixed(1)} MB; the limit is 100 MB.`);
  }
  const bytes = new Uint8Array(await file.arrayBuffer());
  try {
    return await (parts ? api.classifyPart(bytes, part, parts) : api.classify(bytes, onFirst));
  } catch (err) {
    if (err.code !== 'unsupported_format' && err.code !== 'too_large') throw err;
    const {data, width, height} = await browserPixels(file, err);
    const viaBrowser = await (parts ? api.classifyPartRGBA(data, width, height, part, parts) : api.classifyRGBA(data, width, height, onFirst));
    viaBrowser.decodedBy = 'browser';
    return viaBrowser;
  }
}

// browserPixels decodes file with the browser, scaled down to DOWNSCALE_TO
// on its long side, for the images Go cannot decode (goErr says why).
async function browserPixels(file, goErr) {
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function') throw goErr;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    if (goErr.code === 'too_large') {
      throw new CodedError('too_large', `The image is too large to decode here (the limit is ${GO_MAX_PIXELS / 1e6} megapixels).`);
    }
    throw new CodedError('unsupported_format', 'This file is not an image, or not in a format this browser can read.');
  }
  try {
    const {width, height} = bitmap;
    if (width * height > MAX_BROWSER_PIXELS) {
      throw new CodedError('too_large', `The image is ${(width * height / 1e6).toFixed(0)} megapixels; the limit is ${MAX_BROWSER_PIXELS / 1e6}.`);
    }
    const scale = Math.min(1, DOWNSCALE_TO / Math.max(width, height));
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    let source = bitmap;
    if (scale < 1) {
      source = await createImageBitmap(bitmap, {resizeWidth: w, resizeHeight: h, resizeQuality: 'high'});
    }
    const canvas = new OffscreenCanvas(w, h);
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    ctx.drawImage(source, 0, 0);
    if (source !== bitmap) source.close();
    return {data: ctx.getImageData(0, 0, w, h).data, width: w, height: h};
  } finally {
    bitmap.close();
  }
}

// saliency measures occlusion sensitivity on the model input (msg.pixels,
// RGBA, msg.width × msg.height): a grey square of msg.patch pixels is slid
// over it in steps of msg.stride, and each cell gets how much the
// probability of class msg.index falls with that part hidden. One plain
// forward pass per position (test-time augmentation is switched off for
// the run and restored), so the cost is known up front.
async function saliency(api, msg) {
  const {width: w, height: h, patch, stride, index} = msg;
  const t0 = performance.now();
  const wasOn = Boolean(api.info() && api.info().ttaOn);
  if (wasOn) await api.setTTA(false);
  try {
    const base = (await api.classifyRGBA(msg.pixels, w, h)).probs[index];
    const cols = Math.floor((w - patch) / stride) + 1;
    const rows = Math.floor((h - patch) / stride) + 1;
    const drop = new Float32Array(cols * rows);
    const work = new Uint8ClampedArray(msg.pixels.length);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        work.set(msg.pixels);
        for (let y = r * stride; y < r * stride + patch; y++) {
          for (let x = c * stride; x < c * stride + patch; x++) {
            const o = 4 * (y * w + x);
            work[o] = work[o + 1] = work[o + 2] = 128;
          }
        }
        drop[r * cols + c] = base - (await api.classifyRGBA(work, w, h)).probs[index];
      }
      post({type: 'saliencyProgress', id: msg.id, done: (r + 1) * cols, total: rows * cols});
    }
    return {base, drop, cols, rows, patch, stride, passes: rows * cols + 1, ms: performance.now() - t0};
  } finally {
    if (wasOn) await api.setTTA(true);
  }
}

// ---------------------------------------------------------------- teach mode
// The page's teach panel (static/teach.js) runs workers of its own with
// these messages; the Go side is cifarnet.teach* (wasm/teach_js.go). Any
// of them computes features; the page keeps the rows and one trains.
//
// Messages from the page:
//   {type: 'teachBase', url | bytes, name}   the model to teach
//   {type: 'teachAdd', id, file}             decode a Blob/File, compute its features
//   {type: 'teachTrain', job, classes, rows, labels}   rows: Float32Array, labels.length rows
// Messages to the page:
//   {type: 'teachBase', name, dim, classes}  classes: the base model's
//   {type: 'teachAdded', id, row, input, inputWidth, inputHeight}   row: Float32Array of dim;
//                                            input: the 32×32 RGBA model input
//   {type: 'teachProgress', job, done, total}                  epochs
//   {type: 'teachDone', job, result}         result as cifarnet.teachTrain, file an ArrayBuffer
//   {type: 'teachError', op, id, job, code, message}           op: 'base', 'add' or 'train'

async function teachFeatures(api, file) {
  if (file.size > MAX_FILE_BYTES) {
    throw new CodedError('too_large', `The file is ${(file.size / 1e6).toFixed(1)} MB; the limit is 100 MB.`);
  }
  try {
    return await api.teachFeatures(new Uint8Array(await file.arrayBuffer()));
  } catch (err) {
    if (err.code !== 'unsupported_format' && err.code !== 'too_large') throw err;
    const {data, width, height} = await browserPixels(file, err);
    return api.teachFeaturesRGBA(data, width, height);
  }
}

function onTeachMessage(msg) {
  const fail = (op, err) => post({type: 'teachError', op, id: msg.id, job: msg.job, ...errorMessage(err)});
  switch (msg.type) {
    case 'teachBase':
      enqueue(async () => {
        try {
          const api = await started;
          const r = await api.teachBase(msg.bytes ? new Uint8Array(msg.bytes) : msg.url, msg.name);
          post({type: 'teachBase', name: r.name, dim: r.dim, classes: r.classes});
        } catch (err) {
          fail('base', err);
        }
      });
      return true;
    case 'teachAdd':
      enqueue(async () => {
        try {
          const r = await teachFeatures(await started, msg.file);
          post({type: 'teachAdded', id: msg.id, row: r.row, input: r.input, inputWidth: r.inputWidth, inputHeight: r.inputHeight},
            [r.row.buffer, r.input.buffer]);
        } catch (err) {
          fail('add', err);
        }
      });
      return true;
    case 'teachTrain':
      enqueue(async () => {
        try {
          const api = await started;
          const r = await api.teachTrain(msg.classes, msg.rows, msg.labels,
            (done, total) => post({type: 'teachProgress', job: msg.job, done, total}));
          const file = r.file.buffer;
          post({type: 'teachDone', job: msg.job, result: {...r, file}}, [file]);
        } catch (err) {
          fail('train', err);
        }
      });
      return true;
  }
  return false;
}

// onMessage handles a message from the page at from (self, or a shared
// worker's port); one from a page that has since gone is ignored.
function onMessage(msg, from) {
  if (from !== owner) return;
  if (msg.type === 'start' || msg.type === 'init') {
    if (begin) begin(msg.type === 'init' ? msg.module : null);
    begin = null;
    return;
  }
  if (onTeachMessage(msg)) return;
  switch (msg.type) {
    case 'load':
      // Read the saved build now: the module may still be compiling.
      // Not for the model a shared worker holds.
      if (msg.sha256 && !holds(msg)) msg.built = readBuiltInTime(msg.sha256);
      enqueue(() => loadModel(msg));
      break;
    case 'loadBytes':
      enqueue(() => loadModel(msg));
      break;
    case 'setTTA':
      enqueue(async () => {
        try {
          const api = await started;
          post({type: 'tta', info: await api.setTTA(Boolean(msg.on))});
        } catch {
          // No model yet: the next load starts with TTA on, and the page
          // applies the remembered choice when it is ready.
        }
      });
      break;
    case 'saliency':
      enqueue(async () => {
        try {
          const api = await started;
          post({type: 'saliency', id: msg.id, result: await saliency(api, msg)});
        } catch (err) {
          post({type: 'error', id: msg.id, ...errorMessage(err)});
        }
      });
      break;
    case 'classify':
    case 'classifyPart':
      imagesPending++;
      enqueue(async () => {
        try {
          const api = await started;
          step('classifyStart');
          const onFirst = msg.first ? (r) => post({type: 'first', id: msg.id, result: r}, [r.probs.buffer, r.input.buffer]) : undefined;
          const r = await classifyFile(api, msg.file, msg.part, msg.parts, onFirst);
          step('classified');
          sendTiming();
          post({type: 'result', id: msg.id, result: r}, [(r.probs || r.logits).buffer, r.input.buffer]);
        } catch (err) {
          post({type: 'error', id: msg.id, ...errorMessage(err)});
        }
      }).finally(() => { imagesPending--; });
      break;
  }
}

if (shared) {
  self.onconnect = (e) => {
    const port = e.ports[0];
    if (gone) {
      port.postMessage({type: 'gone'});
      return;
    }
    owner = port;
    // The new page's clock: the steps it is told of are its own.
    for (const name of Object.keys(timing)) delete timing[name];
    timingSent = 0;
    step('workerStart');
    port.onmessage = (m) => onMessage(m.data, port);
    port.postMessage({type: 'attached'}); // the page waits for a word before it trusts this worker
  };
  closeWhenUnowned();
} else {
  self.onmessage = (e) => onMessage(e.data, self);
}

// closeWhenUnowned ends a shared worker once no page has held the owner
// lock for SHARED_IDLE_MS (a page's locks go with it, however it ends),
// so that the memory it holds is not kept for long after the last tab.
function closeWhenUnowned(since = performance.now()) {
  setTimeout(async () => {
    // Not known (no lock manager): kept to the browser's own lifetime.
    const held = (await lockHeld(OWNER_LOCK)) !== false;
    if (held) closeWhenUnowned();
    else if (performance.now() - since >= SHARED_IDLE_MS) self.close();
    else closeWhenUnowned(since);
  }, 15e3);
}

