// Where the CPU goes while the page classifies a drop of 100 images: a
// Chromium trace of the drop, summed per thread (each thread's top-level
// tasks, thread CPU time), with the page's frames counted and its main
// thread's busiest events listed. It shows what the worker pool competes
// with on a machine of few cores: the page's own rendering, the
// compositor, image decoding and the browser's I/O threads.
//
//   node dropcpu.mjs URL [CORES]
//
// CORES (default 2) is the navigator.hardwareConcurrency the page is told
// (the pool's size). The page waits for its whole pool, classifies a
// first drop of 100 (the engine optimises the module then), clears it and
// traces the second. TTA=0 turns test-time augmentation off first.
// THREAD=name lists that thread's events instead of the main thread's.
// CHROMIUM names the browser.
import puppeteer from 'puppeteer-core';
import {quiet} from './chromeflags.mjs';

const url = process.argv[2] || 'http://127.0.0.1:8080/';
const cores = Number(process.argv[3] || 2);
const thread = process.env.THREAD || 'CrRendererMain';

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: 'new',
  args: quiet(['--no-sandbox']),
});
const page = await browser.newPage();
const cdp = await page.createCDPSession();
await cdp.send('Emulation.setHardwareConcurrencyOverride', {hardwareConcurrency: cores});
await page.goto(url);
await page.waitForFunction(`document.getElementById('status').dataset.state === 'ready'`, {timeout: 120000});
await page.waitForFunction(`cifarnetPool().length === ${Math.min(cores, 4)} && cifarnetPool().every((s) => s.ready)`, {timeout: 120000});
if (process.env.TTA === '0') {
  await page.evaluate(`(() => { const t = document.getElementById('tta'); if (t.checked) t.click(); })()`);
}

// dropHundred drops the ten samples ten times and resolves with the
// milliseconds until the progress line says all are done.
const dropHundred = () => page.evaluate(async () => {
  const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
  const bytes = {};
  for (const c of names) bytes[c] = new Uint8Array(await (await fetch(`samples/${c}.png`)).arrayBuffer());
  const dt = new DataTransfer();
  for (let i = 0; i < 100; i++) dt.items.add(new File([bytes[names[i % 10]]], `${names[i % 10]}-${i}.png`, {type: 'image/png'}));
  const batch = document.getElementById('batch');
  const done = new Promise((resolve) => {
    const mo = new MutationObserver(() => {
      if (batch.dataset.state === 'done') {
        mo.disconnect();
        resolve();
      }
    });
    mo.observe(batch, {attributes: true, attributeFilter: ['data-state']});
  });
  const t0 = performance.now();
  document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
  await done;
  return performance.now() - t0;
});

await dropHundred();
await page.evaluate(`document.getElementById('clear').click()`);
await page.tracing.start({categories: ['-*', 'toplevel', 'devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'blink']});
const ms = await dropHundred();
const events = JSON.parse(Buffer.from(await page.tracing.stop()).toString()).traceEvents;
await browser.close();

const names = {};
for (const e of events) if (e.ph === 'M' && e.name === 'thread_name') names[`${e.pid}:${e.tid}`] = e.args.name;
const byThread = new Map();
for (const e of events) {
  if (e.ph !== 'X' || !(e.tdur >= 0)) continue;
  const k = `${e.pid}:${e.tid}`;
  if (!byThread.has(k)) byThread.set(k, []);
  byThread.get(k).push(e);
}
const cpu = {}; // thread name → ms of CPU in top-level tasks
const inThread = {}; // event name → ms of CPU, on the listed thread
let frames = 0;
for (const [k, list] of byThread) {
  const name = names[k] || '?';
  list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  let end = -1;
  for (const e of list) {
    if (e.ts >= end) { // not nested in the task before
      cpu[name] = (cpu[name] || 0) + e.tdur / 1000;
      end = e.ts + e.dur;
    }
    if (name === thread) inThread[e.name] = (inThread[e.name] || 0) + e.tdur / 1000;
    if (name === 'CrRendererMain' && e.name === 'WebFrameWidgetImpl::UpdateLifecycle') frames++;
  }
}
const list = (o, n) => Object.entries(o).sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
console.log(`${Math.min(cores, 4)} worker(s), TTA ${process.env.TTA === '0' ? 'off' : 'as the model says'}: 100 images in ${ms.toFixed(0)} ms (${(100000 / ms).toFixed(1)} images/s), ${frames} frames rendered`);
console.log(`CPU ms per thread: ${list(cpu, 12)}`);
console.log(`${thread}, CPU ms per event (nested events counted in each): ${list(inThread, 16)}`);
