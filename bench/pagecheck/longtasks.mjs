// The page's main-thread long tasks, from a Chromium trace (issue 17 item 4,
// issue 19): what runs in each task over 50 ms, in four windows:
//
//   load    navigation (empty profile) to the first prediction of a sample
//           clicked as soon as the button exists
//   warm    the same after a reload, the service worker in control
//   drop    200 generated JPEG photos (640×480) dropped at once, to the last result
//   teach   two classes of TEACH_IMAGES/2 pictures each (default 10) added and
//           trained, to the trained model
//
//   node longtasks.mjs URL [windows...]     default: all four
//
// Each window prints its long tasks (wall time, the main thread's own CPU
// time in it, and the events inside), their count, the longest and the
// blocking time (the sum of each long task's time over 50 ms, as total
// blocking time counts it, but over the whole window). On a loaded machine
// a task's wall time can be mostly waiting for a core: the CPU figure
// tells the page's own work from that.
//
// CPU=4 slows the page's CPU fourfold as Lighthouse's mobile profile does
// (DevTools' CPU throttling; Lighthouse itself simulates it). ROUNDS
// (default 1) repeats each window in a fresh browser. TRACE_OUT=PREFIX
// keeps each raw trace as PREFIX.WINDOW.N.json, which `node longtasks.mjs
// URL FILE.json...` analyses again. MARKS=1 prints the page's start-up
// marks. CHROMIUM names the browser; CHROME_FLAGS (space-separated) adds
// flags to it, e.g. --js-flags=... to try a V8 setting.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import {quiet} from './chromeflags.mjs';

const url = process.argv[2] || 'http://127.0.0.1:8080/';
const windows = process.argv.length > 3 ? process.argv.slice(3) : ['load', 'warm', 'drop', 'teach'];
const cpu = Number(process.env.CPU || 1);
const rounds = Number(process.env.ROUNDS || 1);
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
const LONG = 50;

const categories = [
  '-*', 'toplevel', 'devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'v8.execute',
  'blink', 'blink.user_timing', 'loading', 'disabled-by-default-v8.gc', 'devtools.timeline.frame',
  ...(process.env.CATEGORIES ? process.env.CATEGORIES.split(',') : []),
];

// Events worth naming inside a long task: what the renderer was doing.
const named = new Set([
  'EvaluateScript', 'v8.compileModule', 'v8.evaluateModule', 'FunctionCall', 'EventDispatch', 'TimerFire',
  'FireAnimationFrame', 'Layout', 'UpdateLayoutTree', 'Paint', 'PrePaint', 'Layerize', 'ParseHTML', 'ParseAuthorStyleSheet',
  'MajorGC', 'MinorGC', 'V8.GC_MARK_COMPACTOR', 'BlinkGC.AtomicPhase', 'v8.compile', 'v8.parseOnBackground', 'Decode Image',
  'ImageDecodeTask', 'HitTest', 'ScheduleStyleRecalculation', 'RunMicrotasks', 'v8.run', 'XHRLoad', 'ResourceReceivedData',
  'Commit', 'CompositeLayers', 'UpdateLayer', 'v8.deserializeWasmModule', 'wasm.DeserializeModule', 'ScriptEvaluation',
  'V8.DeserializeWasmModule', 'v8.callFunction', 'HandlePostMessage', 'MessagePort::Accept', 'WorkerStart',
  'ResourceSendRequest', 'v8.produceCache', 'v8.produceModuleCache', 'v8.newInstance', 'ServiceWorker', 'CpuProfiler::StartProfiling',
]);

function describe(e) {
  const d = (e.args && (e.args.data || e.args.beginData)) || {};
  const bits = [e.name];
  if (d.url) bits.push(d.url.split('/').pop().replace(/\.[0-9a-f]{12}\./, '.'));
  if (d.functionName) bits.push(d.functionName);
  if (d.type) bits.push(d.type);
  if (e.args && e.args.fileName) bits.push(String(e.args.fileName).split('/').pop());
  return bits.join(' ');
}

// longTasks finds the top-level tasks over LONG ms on every renderer main
// thread of the trace, with what ran inside each (events of 3 ms or more,
// the longest first).
function longTasks(events) {
  const mains = new Set();
  for (const e of events) {
    if (e.ph === 'M' && e.name === 'thread_name' && e.args.name === 'CrRendererMain') mains.add(`${e.pid}:${e.tid}`);
  }
  // Only the page's own renderer: Chromium's new-tab page and other
  // WebUI renderers run their own long tasks in a fresh profile.
  const origin = new URL(url).origin;
  const ours = new Set();
  for (const e of events) {
    const d = e.args && (e.args.data || e.args.beginData);
    const u = d && (d.url || d.documentURL || (d.frames && d.frames[0] && d.frames[0].url));
    if (typeof u === 'string' && u.startsWith(origin) && mains.has(`${e.pid}:${e.tid}`)) ours.add(`${e.pid}:${e.tid}`);
  }
  const byThread = new Map();
  for (const e of events) {
    if (e.ph !== 'X' || !ours.has(`${e.pid}:${e.tid}`)) continue;
    const k = `${e.pid}:${e.tid}`;
    if (!byThread.has(k)) byThread.set(k, []);
    byThread.get(k).push(e);
  }
  const out = [];
  for (const evs of byThread.values()) {
    evs.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    let end = -1;
    const tops = [];
    for (const e of evs) {
      if (e.name !== 'RunTask' && e.name !== 'ThreadControllerImpl::RunTask') continue;
      if (e.ts < end) continue; // nested
      tops.push(e);
      end = e.ts + e.dur;
    }
    for (const t of tops) {
      if (t.dur / 1000 <= LONG) continue;
      const inside = evs.filter((e) => e !== t && e.ts >= t.ts && e.ts + e.dur <= t.ts + t.dur && named.has(e.name) && e.dur >= 3000);
      inside.sort((a, b) => b.dur - a.dur);
      const seen = new Set();
      const what = [];
      for (const e of inside) {
        const s = describe(e);
        if (seen.has(s)) continue;
        seen.add(s);
        what.push(`${s} ${(e.dur / 1000).toFixed(0)}`);
        if (what.length === 6) break;
      }
      out.push({at: t.ts, ms: t.dur / 1000, cpu: (t.tdur || 0) / 1000, what});
    }
  }
  out.sort((a, b) => a.at - b.at);
  return out;
}

async function newBrowser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifarnet-lt-'));
  const browser = await puppeteer.launch({
    executablePath: chromePath, headless: true, userDataDir: dir,
    args: quiet(['--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']),
  });
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 900});
  const cdp = await page.createCDPSession();
  if (cpu > 1) await cdp.send('Emulation.setCPUThrottlingRate', {rate: cpu});
  return {browser, page, close: async () => { await browser.close(); fs.rmSync(dir, {recursive: true, force: true}); }};
}

const firstResult = `document.querySelector('#results .result[data-state="done"]')`;
const clickCat = async (page) => {
  await page.waitForSelector('button[data-sample="cat"]');
  await page.click('button[data-sample="cat"]');
  await page.waitForFunction(firstResult, {timeout: 120000, polling: 50});
};

async function traced(page, name, round, body) {
  await page.tracing.start({categories});
  const t0 = Date.now();
  await body();
  const wall = Date.now() - t0;
  const buf = Buffer.from(await page.tracing.stop()).toString('utf8');
  if (process.env.TRACE_OUT) fs.writeFileSync(`${process.env.TRACE_OUT}.${name}.${round}.json`, buf);
  const events = JSON.parse(buf).traceEvents;
  const tasks = longTasks(events);
  // Functions compiled on first call: none when the module came with its
  // compiled code from the cache (needs CATEGORIES=v8.wasm).
  const lazy = events.filter((e) => e.name === 'wasm.CompileLazy').length;
  const marks = await page.evaluate(() => globalThis.cifarnetMarks || {});
  const longest = tasks.reduce((m, t) => Math.max(m, t.ms), 0);
  const blocking = tasks.reduce((s, t) => s + t.ms - LONG, 0);
  console.log(`${name} round ${round} (CPU ×${cpu}, load ${os.loadavg()[0].toFixed(2)}): ${tasks.length} long tasks, longest ${longest.toFixed(0)} ms, ` +
    `blocking ${blocking.toFixed(0)} ms, window ${wall} ms${lazy ? `, ${lazy} wasm functions compiled lazily` : ''}` +
    (marks.firstResult ? `, first result at ${marks.firstResult.toFixed(0)} ms` : ''));
  for (const t of tasks) console.log(`  ${t.ms.toFixed(0).padStart(5)} ms (${t.cpu.toFixed(0)} on the CPU): ${t.what.join('; ')}`);
  if (process.env.MARKS && name !== 'drop' && name !== 'teach') {
    console.log(`  marks: ${Object.entries(marks).sort((a, b) => a[1] - b[1]).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
  }
  return {count: tasks.length, longest, blocking};
}

// photos makes n JPEG files of w×h in the page (before the trace starts).
const makePhotos = (n, w, h) => `(async () => {
  const files = [];
  const c = document.createElement('canvas');
  c.width = ${w}; c.height = ${h};
  const g = c.getContext('2d');
  for (let i = 0; i < ${n}; i++) {
    const grad = g.createLinearGradient(0, 0, ${w}, ${h});
    grad.addColorStop(0, 'hsl(' + (i * 37 % 360) + ',70%,50%)');
    grad.addColorStop(1, 'hsl(' + (i * 91 % 360) + ',60%,30%)');
    g.fillStyle = grad;
    g.fillRect(0, 0, ${w}, ${h});
    g.fillStyle = 'rgba(255,255,255,0.6)';
    g.fillRect((i * 13) % ${w}, (i * 7) % ${h}, ${w} / 4, ${h} / 4);
    const b = await new Promise((r) => c.toBlob(r, 'image/jpeg', 0.85));
    files.push(new File([b], 'photo' + i + '.jpg', {type: 'image/jpeg'}));
  }
  globalThis.ltFiles = files;
})()`;

// node longtasks.mjs URL TRACE.json...: analyse traces kept with TRACE_OUT.
if (windows.every((w) => w.endsWith('.json'))) {
  for (const f of windows) {
    const tasks = longTasks(JSON.parse(fs.readFileSync(f, 'utf8')).traceEvents);
    console.log(`${f}: ${tasks.length} long tasks, longest ${tasks.reduce((m, t) => Math.max(m, t.ms), 0).toFixed(0)} ms`);
    for (const t of tasks) console.log(`  ${t.ms.toFixed(0).padStart(5)} ms (${t.cpu.toFixed(0)} on the CPU): ${t.what.join('; ')}`);
  }
  process.exit(0);
}

const summary = {};
for (const name of windows) {
  for (let r = 1; r <= rounds; r++) {
    const {page, close} = await newBrowser();
    try {
      let res;
      if (name === 'load') {
        res = await traced(page, name, r, async () => {
          await page.goto(url, {waitUntil: 'domcontentloaded'});
          await clickCat(page);
        });
      } else if (name === 'warm') {
        await page.goto(url);
        await clickCat(page);
        await page.evaluate(() => navigator.serviceWorker.ready);
        // Let the precache finish before the reload.
        await page.waitForFunction(() => navigator.serviceWorker.controller || navigator.serviceWorker.ready, {timeout: 60000});
        // V8 hands Chromium the optimised module to keep about 2 s after
        // optimising it; a user's second visit comes later than that.
        await new Promise((r) => setTimeout(r, Number(process.env.WARM_WAIT_MS || 5000)));
        // RELOADS=n: n - 1 untraced warm visits first (a third visit may
        // find code cached that the second stored).
        for (let i = 1; i < Number(process.env.RELOADS || 1); i++) {
          await page.goto(url, {waitUntil: 'domcontentloaded'});
          await clickCat(page);
          await new Promise((r) => setTimeout(r, 3000));
        }
        res = await traced(page, name, r, async () => {
          await page.goto(url, {waitUntil: 'domcontentloaded'});
          await clickCat(page);
        });
      } else if (name === 'drop') {
        await page.goto(url);
        await page.waitForFunction(`document.getElementById('status').dataset.state === 'ready'`, {timeout: 120000});
        await page.evaluate(makePhotos(200, 640, 480));
        res = await traced(page, name, r, async () => {
          await page.evaluate(() => {
            const dt = new DataTransfer();
            for (const f of globalThis.ltFiles) dt.items.add(f);
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
          });
          await page.waitForFunction(`document.querySelectorAll('#results .result').length === 200 &&
            !document.querySelector('#results .result[data-state="pending"]')`, {timeout: 600000, polling: 200});
        });
      } else if (name === 'teach') {
        await page.goto(url);
        await page.waitForFunction(`document.getElementById('status').dataset.state === 'ready'`, {timeout: 120000});
        const perClass = Math.max(1, Math.floor(Number(process.env.TEACH_IMAGES || 20) / 2));
        await page.evaluate(makePhotos(2 * perClass, 320, 240));
        res = await traced(page, name, r, async () => {
          // One user action a task, as a person's come: the focus (which
          // starts the workers), the names, each drop, the Train button.
          await page.evaluate(() => document.querySelector('#teach-classes .teach-name').focus());
          await page.evaluate(() => {
            const names = document.querySelectorAll('#teach-classes .teach-name');
            names[0].value = 'one';
            names[1].value = 'two';
          });
          for (let i = 0; i < 2; i++) {
            await page.evaluate((i, perClass) => {
              const rows = document.querySelectorAll('#teach-classes .teach-class');
              const dt = new DataTransfer();
              for (const f of globalThis.ltFiles.slice(i * perClass, (i + 1) * perClass)) dt.items.add(f);
              rows[i].dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
            }, i, perClass);
          }
          await page.evaluate(() => document.getElementById('teach-train').click());
          await page.waitForFunction(`document.querySelector('section.teach').dataset.state === 'trained'`, {timeout: 300000, polling: 200});
        });
      } else {
        throw new Error(`unknown window ${name}`);
      }
      (summary[name] ||= []).push(res);
    } finally {
      await close();
    }
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, rs] of Object.entries(summary)) {
  console.log(`${name} (CPU ×${cpu}): long tasks per round ${rs.map((r) => r.count).join(', ')}; longest ${rs.map((r) => r.longest.toFixed(0)).join(', ')} ms; ` +
    `blocking ${rs.map((r) => r.blocking.toFixed(0)).join(', ')} ms; medians ${med(rs.map((r) => r.count))} tasks, longest ${med(rs.map((r) => r.longest)).toFixed(0)} ms, ` +
    `blocking ${med(rs.map((r) => r.blocking)).toFixed(0)} ms`);
}
