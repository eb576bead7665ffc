// cifarnet page: teach mode. The user names classes and gives each some
// pictures; workers of its own (worker.js, the teach* messages) run the Go
// module, which computes the network's features of each picture as it
// arrives, and one of them trains a new last layer on them
// (models/finetune, as `trainer train --init W.cnw --freeze head-only`
// does). The result is an
// ordinary .cnw: used like a dropped weight file, kept in IndexedDB and
// downloadable.
//
// The section carries its state as data attributes for the end-to-end
// tests: data-state (idle, adding, training, trained, error), data-accuracy,
// data-images, data-seconds, data-saved (count of saved models), data-base
// (the model the worker teaches, once it has it).

const MIN_CLASSES = 2;
const MAX_CLASSES = 10;
const MAX_FILE_BYTES = 100e6;
const THUMB_SIDE = 256; // camera frames are scaled to this first: the model sees 32×32

const $ = (sel, root = document) => root.querySelector(sel);

// hooks (from app.js):
//   workerURL         the worker script (content-hashed)
//   module()          the compiled WebAssembly module, or null while it compiles
//   current()         the model load in use: {type: 'load', url, size} or
//                     {type: 'loadBytes', bytes, name, taught?}, or null
//   use(bytes, name)  make a taught model the one that classifies
//   download(name, type, data)  save data (a string or bytes) as a file
//   showPixels(canvas, pixels, w, h)  show w×h RGBA pixels (Uint8ClampedArray) on a canvas
export function initTeach(hooks) {
  const section = $('section.teach');
  if (!section) return;
  const ui = {
    classes: $('#teach-classes'),
    template: $('#teach-class-template'),
    addClass: $('#teach-add-class'),
    train: $('#teach-train'),
    status: $('#teach-status'),
    progress: $('#teach-progress'),
    result: $('#teach-result'),
    use: $('#teach-use'),
    save: $('#teach-save'),
    download: $('#teach-download'),
    saved: $('#teach-saved'),
    savedUse: $('#teach-saved-use'),
    savedDownload: $('#teach-saved-download'),
    savedDelete: $('#teach-saved-delete'),
  };

  // Workers of their own: every one computes features, the first also
  // trains. As many as the page's classifier pool, since the features of
  // a drop of pictures are most of the time training takes.
  const WORKERS = Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 4));
  const workers = []; // {w, busy: requests sent and not answered}
  let baseKey = ''; // the base model the workers have
  let baseLoad = null; // the last load that was not a taught model
  let dim = 0; // length of a feature row
  let baseClasses = []; // the base model's classes, from the workers
  let nextId = 1;
  let nextReq = 1;
  let nextRow = 1;
  // id → {file, li (thumbnail), row (class li), features (Float32Array or null), state: 'pending' | 'ready'}
  const images = new Map();
  const requests = new Map(); // request id → {id, slot}: answers to older requests are dropped
  let trainWhenDone = false;
  let job = 0;
  let taught = null; // the latest result: {file: ArrayBuffer, name, classes, accuracy, ...}

  function setStatus(text, state) {
    ui.status.textContent = text;
    if (state) section.dataset.state = state;
  }

  // ------------------------------------------------------------ worker

  function base() {
    const cur = hooks.current();
    if (cur && !cur.taught) baseLoad = cur;
    // A taught model in use with no other seen since the page loaded
    // teaches as well as its base: the layers before the head are the same.
    return baseLoad || cur;
  }

  // ensureWorker starts the teach workers and gives them the model in
  // use as the base; when that changed, every picture is sent again, since
  // its features came from the old one.
  function ensureWorker() {
    const b = base();
    if (!b) {
      setStatus('No model is loaded yet to teach; wait until the page says Ready.', 'error');
      return false;
    }
    while (workers.length < WORKERS) {
      const slot = {w: new Worker(hooks.workerURL), busy: 0};
      slot.w.onmessage = (e) => onMessage(slot, e.data);
      slot.w.onerror = (e) => setStatus(`Teach mode failed to start (${e.message || 'worker error'}). Reload the page to try again.`, 'error');
      const mod = hooks.module();
      slot.w.postMessage(mod ? {type: 'init', module: mod} : {type: 'start'});
      workers.push(slot);
    }
    const key = b.url || `${b.name}:${b.bytes.byteLength}`;
    if (key !== baseKey) {
      baseKey = key;
      for (const slot of workers) {
        slot.w.postMessage(b.url
          ? {type: 'teachBase', url: b.url, name: b.url.split('/').pop()}
          : {type: 'teachBase', bytes: b.bytes.slice(0), name: b.name});
      }
      requests.clear();
      for (const slot of workers) slot.busy = 0;
      for (const [id, img] of images) {
        img.state = 'pending';
        img.features = null;
        request(id);
      }
    }
    return true;
  }

  // request sends image id to the least busy worker.
  function request(id) {
    const slot = workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    const req = nextReq++;
    requests.set(req, {id, slot});
    slot.busy++;
    slot.w.postMessage({type: 'teachAdd', id: req, file: images.get(id).file});
  }

  // answered returns the image a teachAdd answer is for, or null when the
  // answer is stale (the image is gone, or was sent again).
  function answered(req) {
    const r = requests.get(req);
    if (!r) return null;
    requests.delete(req);
    r.slot.busy--;
    return images.has(r.id) ? r.id : null;
  }

  function onMessage(slot, msg) {
    switch (msg.type) {
      case 'teachBase':
        dim = msg.dim;
        section.dataset.base = msg.name;
        baseClasses = msg.classes || [];
        markAllKnown();
        break;
      case 'teachAdded': {
        const id = answered(msg.id);
        if (id === null) return;
        const img = images.get(id);
        img.state = 'ready';
        img.features = msg.row;
        toShow.push({id, msg});
        answeredOne();
        break;
      }
      case 'teachProgress':
        if (msg.job !== job) return;
        ui.progress.max = msg.total;
        ui.progress.value = msg.done;
        setStatus(`Training: ${Math.round((100 * msg.done) / msg.total)} %…`);
        break;
      case 'teachDone':
        if (msg.job === job) trained(msg.result);
        break;
      case 'teachError':
        if (msg.op === 'add') {
          const id = answered(msg.id);
          if (id === null) return;
          const img = images.get(id);
          rowMessage(img.row, `${img.file.name || 'An image'}: ${friendly(msg)}`);
          removeImage(id);
          answeredOne();
        } else if (msg.op === 'base') {
          baseKey = '';
          trainWhenDone = false;
          endTraining();
          setStatus(`The model to teach could not be loaded: ${msg.message}`, 'error');
        } else if (msg.job === job) {
          endTraining();
          setStatus(sentence(msg.message), 'error');
        }
        break;
      case 'loadError':
        if (slot === workers[0]) setStatus(`Teach mode could not start: ${msg.message}`, 'error');
        break;
    }
  }

  const sentence = (m) => `${m.charAt(0).toUpperCase()}${m.slice(1)}${/[.!?]$/.test(m) ? '' : '.'}`;

  function friendly(msg) {
    switch (msg.code) {
      case 'unsupported_format':
        return 'not an image, or not in a format that can be read here; skipped.';
      case 'corrupt_image':
        return 'the file is damaged or incomplete; skipped.';
      default:
        return `${sentence(msg.message)} Skipped.`;
    }
  }

  // ------------------------------------------------------------ classes

  const rows = () => Array.from(ui.classes.querySelectorAll('.teach-class'));

  function setUpRow(li) {
    const n = nextRow++;
    const file = $('.teach-file', li);
    const drop = $('.teach-drop', li);
    file.id = `teach-file-${n}`;
    drop.htmlFor = file.id;
    $('.teach-name', li).placeholder = `Class ${n}, e.g. ${['cat', 'mug', 'plant', 'dog', 'bike', 'cup', 'shoe', 'pen', 'book', 'key'][(n - 1) % 10]}`;
    li.dataset.row = String(n);
    file.addEventListener('change', () => {
      addFiles(li, Array.from(file.files));
      file.value = '';
    });
    $('.teach-remove-class', li).addEventListener('click', () => removeClass(li));
    $('.teach-name', li).addEventListener('input', markAllKnown);
    markKnown(li);
    $('.teach-camera', li).addEventListener('click', () => cameraFrame(li));
    li.addEventListener('dragover', (e) => {
      e.preventDefault();
      li.classList.add('teach-over');
    });
    li.addEventListener('dragleave', (e) => {
      if (!li.contains(e.relatedTarget)) li.classList.remove('teach-over');
    });
    li.addEventListener('drop', (e) => {
      // app.js leaves a drop whose default was prevented to us.
      e.preventDefault();
      li.classList.remove('teach-over');
      addFiles(li, e.dataTransfer ? Array.from(e.dataTransfer.files) : []);
    });
    $('.teach-thumbs', li).addEventListener('click', (e) => {
      const btn = e.target.closest('.teach-thumb-remove');
      if (btn) {
        removeImage(Number(btn.closest('li').dataset.id));
        updateCounts();
      }
    });
  }

  // markKnown says under a class whose name the base model has (case
  // aside) that it starts from what the model learnt (models/finetune),
  // and under a name another class has too (case aside) that it must
  // change: Train refuses the pair (wasm/teach.go, checkClasses).
  function markKnown(li) {
    const key = (row) => $('.teach-name', row).value.trim().toLowerCase();
    const name = key(li);
    const twice = name !== '' && rows().some((other) => other !== li && key(other) === name);
    const known = name && !twice ? baseClasses.find((c) => c.toLowerCase() === name) : undefined;
    const hint = $('.teach-known', li);
    hint.hidden = !known && !twice;
    if (twice) hint.textContent = `Another class is also called “${$('.teach-name', li).value.trim()}”: give each class its own name.`;
    else hint.textContent = known ? `${section.dataset.base} knows “${known}”: this class starts from what it learnt.` : '';
    li.dataset.known = known ? 'true' : 'false';
  }

  // A name's hint depends on the other classes' names too.
  function markAllKnown() {
    for (const li of rows()) markKnown(li);
  }

  function updateCounts() {
    const all = rows();
    for (const li of all) {
      const n = $('.teach-thumbs', li).children.length;
      $('.teach-count', li).textContent = `${n} image${n === 1 ? '' : 's'}`;
      $('.teach-remove-class', li).disabled = all.length <= MIN_CLASSES;
    }
    ui.addClass.disabled = all.length >= MAX_CLASSES;
    section.dataset.images = String(images.size);
  }

  function addClass() {
    if (rows().length >= MAX_CLASSES) return;
    const li = ui.template.content.firstElementChild.cloneNode(true);
    ui.classes.append(li);
    setUpRow(li);
    updateCounts();
    $('.teach-name', li).focus();
  }

  function removeClass(li) {
    if (rows().length <= MIN_CLASSES) return;
    for (const t of Array.from($('.teach-thumbs', li).children)) removeImage(Number(t.dataset.id));
    li.remove();
    updateCounts();
    markAllKnown();
  }

  function rowMessage(li, text) {
    $('.teach-class-message', li).textContent = text;
  }

  // ------------------------------------------------------------ images

  // addFiles hands the files to the worker, a few at a time with a pause
  // between, so that a drop of many never holds the main thread for long.
  async function addFiles(li, files) {
    if (files.length === 0) {
      rowMessage(li, 'Only files can be dropped here; to use a picture from another site, save it first.');
      return;
    }
    if (!ensureWorker()) return;
    rowMessage(li, '');
    const thumbs = $('.teach-thumbs', li);
    const skipped = [];
    for (const [i, file] of files.entries()) {
      if (i > 0 && i % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      if (file.size === 0 || file.size > MAX_FILE_BYTES) {
        skipped.push(`${file.name || 'a file'} (${file.size === 0 ? 'empty' : 'over 100 MB'})`);
        continue;
      }
      const id = nextId++;
      const t = document.createElement('li');
      t.dataset.id = String(id);
      t.dataset.state = 'pending';
      const canvas = document.createElement('canvas');
      canvas.width = 32;
      canvas.height = 32;
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', file.name || 'pasted image');
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'teach-thumb-remove';
      remove.textContent = '×';
      remove.setAttribute('aria-label', `Remove ${file.name || 'this image'}`);
      t.append(canvas, remove);
      thumbs.append(t);
      images.set(id, {file, li: t, row: li, features: null, state: 'pending'});
      request(id);
    }
    if (skipped.length) rowMessage(li, `Skipped ${skipped.join(', ')}.`);
    if (section.dataset.state !== 'training') setStatus(pendingText(), 'adding');
    updateCounts();
  }

  // Answers reach the panel together, at most every SHOW_MS and at once
  // when the last is in: a frame for each (thumbnail, counts, status line)
  // is dozens a second while the workers hold every core, and each such
  // frame waits for one.
  const SHOW_MS = 200;
  const toShow = []; // {id, msg}: answered, not drawn yet
  let showTimer = 0;

  function answeredOne() {
    if (pending() === 0) showAdded();
    else if (!showTimer) showTimer = setTimeout(showAdded, SHOW_MS);
  }

  function showAdded() {
    clearTimeout(showTimer);
    showTimer = 0;
    for (const {id, msg} of toShow.splice(0)) {
      const img = images.get(id);
      if (!img || img.state !== 'ready') continue; // removed, or sent again for a new base
      drawThumb(img.li, msg.input, msg.inputWidth, msg.inputHeight);
      img.li.dataset.state = 'ready';
    }
    afterAdd();
  }

  function drawThumb(li, pixels, w, h) {
    hooks.showPixels($('canvas', li), new Uint8ClampedArray(pixels), w, h);
  }

  function removeImage(id) {
    const img = images.get(id);
    if (!img) return;
    images.delete(id);
    img.li.remove();
  }

  const pending = () => Array.from(images.values()).filter((i) => i.state === 'pending').length;
  const pendingText = () => {
    const p = pending();
    return p > 0 ? `Reading ${p} image${p === 1 ? '' : 's'}…` : `${images.size} image${images.size === 1 ? '' : 's'} ready. Press Train when every class has some.`;
  };

  function afterAdd() {
    updateCounts();
    if (section.dataset.state === 'training') {
      if (trainWhenDone && pending() === 0) startTraining();
      return;
    }
    setStatus(pendingText(), pending() > 0 ? 'adding' : 'idle');
  }

  // cameraFrame adds the current frame of the page's camera (the Images
  // panel's Camera button), scaled down: the model sees 32×32 anyway.
  function cameraFrame(li) {
    const v = document.getElementById('camera-video');
    if (!v || !v.srcObject || !v.videoWidth) {
      rowMessage(li, 'Turn the camera on first with the Camera button in the Images panel.');
      return;
    }
    const scale = Math.min(1, THUMB_SIDE / Math.max(v.videoWidth, v.videoHeight));
    const canvas = document.createElement('canvas');
    canvas.width = Math.round(v.videoWidth * scale);
    canvas.height = Math.round(v.videoHeight * scale);
    canvas.getContext('2d').drawImage(v, 0, 0, canvas.width, canvas.height);
    canvas.toBlob((blob) => {
      if (!blob) {
        rowMessage(li, 'The frame could not be captured.');
        return;
      }
      addFiles(li, [new File([blob], `camera-${Date.now()}.png`, {type: 'image/png'})]);
    }, 'image/png');
  }

  // A paste while a class (its name, picker or pictures) has the focus
  // goes to that class; elsewhere app.js classifies it.
  section.addEventListener('paste', (e) => {
    const li = document.activeElement && document.activeElement.closest('.teach-class');
    if (!li || !e.clipboardData) return;
    const files = Array.from(e.clipboardData.files || []);
    if (files.length === 0) return; // text into the name field
    e.preventDefault();
    e.stopPropagation();
    addFiles(li, files);
  });

  // ------------------------------------------------------------ training

  function train() {
    const names = rows().map((li) => $('.teach-name', li).value.trim());
    const empty = names.findIndex((n) => n === '');
    if (empty >= 0) {
      setStatus(`Class ${empty + 1} has no name: type one first.`, 'error');
      $('.teach-name', rows()[empty]).focus();
      return;
    }
    if (images.size === 0) {
      setStatus('Add some pictures to each class first.', 'error');
      return;
    }
    if (!ensureWorker()) return;
    ui.train.disabled = true;
    ui.result.hidden = true;
    ui.progress.hidden = false;
    ui.progress.removeAttribute('value');
    section.dataset.state = 'training';
    trainWhenDone = true;
    if (pending() > 0) setStatus(pendingText());
    else startTraining();
  }

  function startTraining() {
    trainWhenDone = false;
    const names = [];
    const feats = [];
    const labels = [];
    rows().forEach((li, c) => {
      names.push($('.teach-name', li).value);
      for (const t of $('.teach-thumbs', li).children) {
        const img = images.get(Number(t.dataset.id));
        if (!img || !img.features) continue;
        feats.push(img.features);
        labels.push(c);
      }
    });
    const all = new Float32Array(feats.length * dim);
    feats.forEach((f, i) => all.set(f, i * dim));
    job++;
    setStatus('Training…');
    workers[0].w.postMessage({type: 'teachTrain', job, classes: names, rows: all, labels}, [all.buffer]);
  }

  function endTraining() {
    ui.train.disabled = false;
    ui.progress.hidden = true;
  }

  function trained(r) {
    endTraining();
    taught = r;
    section.dataset.accuracy = String(r.accuracy);
    section.dataset.seconds = String(r.seconds);
    section.dataset.known = (r.known || []).join(',');
    // Classes the base model already had start from what it learnt.
    const known = r.known && r.known.length > 0
      ? ` ${r.known.join(', ')} started from what ${r.base} already knew of ${r.known.length === 1 ? 'it' : 'them'}.`
      : '';
    setStatus(`Trained on ${r.images} images in ${r.seconds.toFixed(1)} s. Cross-validated accuracy: ` +
      `${(100 * r.accuracy).toFixed(1)} % (${r.folds}-fold: each picture judged by a model trained without it).${known} ` +
      `Press "Classify with it" to use ${r.name} for the images above.`, 'trained');
    ui.result.hidden = false;
    ui.save.disabled = false;
  }

  function useTaught(bytes, name) {
    hooks.use(bytes.slice(0), name);
    setStatus(`Classifying with ${name}: add images in the Images panel.`);
  }

  ui.train.addEventListener('click', train);
  ui.addClass.addEventListener('click', addClass);
  ui.use.addEventListener('click', () => taught && useTaught(taught.file, taught.name));
  ui.download.addEventListener('click', () => taught && download(taught.file, taught.name));
  ui.save.addEventListener('click', async () => {
    if (!taught) return;
    try {
      await store.put({name: taught.name, classes: taught.classes, base: taught.base, accuracy: taught.accuracy,
        images: taught.images, created: new Date().toISOString(), bytes: taught.file});
      ui.save.disabled = true;
      setStatus(`Saved ${taught.name} in this browser: it stays after a reload and works offline.`);
      await refreshSaved();
    } catch (err) {
      setStatus(`The model could not be saved in this browser (${err.message || err}); download it instead.`, 'error');
    }
  });

  const download = (bytes, name) => hooks.download(name, 'application/octet-stream', bytes);

  // ------------------------------------------------------------ saved models

  const store = openStore();
  let saved = []; // records without their bytes, newest first

  async function refreshSaved() {
    let list = [];
    try {
      list = await store.list();
    } catch {
      // No IndexedDB (some private modes): saving says so when tried.
    }
    saved = list.sort((a, b) => b.id - a.id);
    ui.saved.replaceChildren();
    if (saved.length === 0) {
      const opt = document.createElement('option');
      opt.value = '';
      opt.textContent = 'None yet';
      ui.saved.append(opt);
    }
    for (const r of saved) {
      const opt = document.createElement('option');
      opt.value = String(r.id);
      opt.textContent = `${r.classes.join(', ')} · ${(100 * r.accuracy).toFixed(0)} % · ${r.created.slice(0, 10)}`;
      opt.title = `${r.name}, taught from ${r.base} on ${r.images} images`;
      ui.saved.append(opt);
    }
    const none = saved.length === 0;
    ui.savedUse.disabled = none;
    ui.savedDownload.disabled = none;
    ui.savedDelete.disabled = none;
    section.dataset.saved = String(saved.length);
  }

  const chosen = () => saved.find((r) => String(r.id) === ui.saved.value);

  ui.savedUse.addEventListener('click', async () => {
    const r = chosen();
    if (r) useTaught(await store.bytes(r.id), r.name);
  });
  ui.savedDownload.addEventListener('click', async () => {
    const r = chosen();
    if (r) download(await store.bytes(r.id), r.name);
  });
  ui.savedDelete.addEventListener('click', async () => {
    const r = chosen();
    if (!r) return;
    await store.delete(r.id);
    setStatus(`Deleted ${r.name} (${r.classes.join(', ')}) from this browser.`);
    await refreshSaved();
  });

  // The worker starts (module, base model) while the user names the
  // classes, so that the first pictures do not wait for it.
  section.addEventListener('focusin', () => {
    if (workers.length === 0 && hooks.current()) ensureWorker();
  });

  for (const li of rows()) setUpRow(li);
  updateCounts();
  section.dataset.state = 'idle';
  refreshSaved();
}

// openStore is the IndexedDB database of taught models: one record per
// model, its weight file in bytes.
function openStore() {
  let db = null;
  const open = () => {
    if (!db) {
      db = new Promise((resolve, reject) => {
        if (typeof indexedDB === 'undefined') {
          reject(new Error('this browser has no IndexedDB'));
          return;
        }
        const req = indexedDB.open('cifarnet-teach', 1);
        req.onupgradeneeded = () => req.result.createObjectStore('models', {keyPath: 'id', autoIncrement: true});
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      db.catch(() => {
        db = null;
      });
    }
    return db;
  };
  const run = async (mode, fn) => {
    const tx = (await open()).transaction('models', mode);
    const req = fn(tx.objectStore('models'));
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error('aborted'));
    });
  };
  return {
    put: (record) => run('readwrite', (s) => s.add(record)),
    delete: (id) => run('readwrite', (s) => s.delete(id)),
    bytes: async (id) => (await run('readonly', (s) => s.get(id))).bytes,
    // The list leaves the weights in the database: a cursor reads each
    // record, and only its description is kept.
    list: async () => {
      const out = [];
      await run('readonly', (s) => {
        s.openCursor().onsuccess = (e) => {
          const c = e.target.result;
          if (!c) return;
          const {bytes, ...meta} = c.value;
          out.push(meta);
          c.continue();
        };
        return null;
      });
      return out;
    },
  };
}
