// Lighthouse (its default mobile profile) and axe-core against a running
// cifarnet site, the page's product checks (issue 18 item 7):
//
//   node check.mjs [URL]        default http://127.0.0.1:8080/
//
// CHROMIUM names the browser (default /usr/bin/chromium); LH_RUNS runs
// Lighthouse that many times and judges the median (default 3). Prints the
// figures and exits 1 when a limit is missed or axe finds a violation in
// any state (empty, results with an unsure and an error card, the model
// card, compare mode, the compact filtered layout, camera, a trained
// teach-mode model, phone width).
import fs from 'node:fs';
import {createRequire} from 'node:module';
import * as chromeLauncher from 'chrome-launcher';
import lighthouse from 'lighthouse';
import puppeteer from 'puppeteer-core';
import {quiet} from './chromeflags.mjs';

const require = createRequire(import.meta.url);
const url = process.argv[2] || 'http://127.0.0.1:8080/';
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
const runs = Number(process.env.LH_RUNS || 3);
const limits = {performance: 95, accessibility: 100, 'best-practices': 100, tbtMs: 200, cls: 0.05};

const baseFlags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
const flags = quiet(baseFlags);
const failures = [];
const warnings = [];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Lighthouse: a fresh browser (empty cache) per run.
const results = [];
for (let i = 0; i < runs; i++) {
  // chrome-launcher's defaults have a --disable-features of their own: merged.
  const chrome = await chromeLauncher.launch({chromePath, chromeFlags: quiet([...chromeLauncher.Launcher.defaultFlags(), ...baseFlags]), ignoreDefaultFlags: true});
  try {
    const {lhr} = await lighthouse(url, {port: chrome.port, output: 'json', logLevel: 'error'});
    const r = {
      performance: Math.round(lhr.categories.performance.score * 100),
      accessibility: Math.round(lhr.categories.accessibility.score * 100),
      'best-practices': Math.round(lhr.categories['best-practices'].score * 100),
      seo: Math.round(lhr.categories.seo.score * 100),
      tbtMs: lhr.audits['total-blocking-time'].numericValue,
      cls: lhr.audits['cumulative-layout-shift'].numericValue,
      fcpMs: lhr.audits['first-contentful-paint'].numericValue,
      lcpMs: lhr.audits['largest-contentful-paint'].numericValue,
    };
    results.push(r);
    if (process.env.LH_JSON) fs.writeFileSync(`${process.env.LH_JSON}.${i + 1}.json`, JSON.stringify(lhr));
    console.log(`lighthouse run ${i + 1}: ${JSON.stringify(r)}`);
    for (const [id, a] of Object.entries(lhr.audits)) {
      if (a.score !== null && a.score < 1 && a.scoreDisplayMode === 'binary') console.log(`  failed audit: ${id}: ${a.title}`);
    }
  } finally {
    await chrome.kill();
  }
}
const med = Object.fromEntries(Object.keys(results[0]).map((k) => [k, median(results.map((r) => r[k]))]));
console.log(`lighthouse median of ${runs}: ${JSON.stringify(med)}`);
// Speed depends on the machine: PAGECHECK_SPEED=report (what CI sets, on
// shared machines) prints a missed performance score or blocking time
// instead of failing; accessibility, best practices, layout shift and axe
// always gate.
const speed = process.env.PAGECHECK_SPEED === 'report' ? warnings : failures;
for (const k of ['performance', 'accessibility', 'best-practices']) {
  if (med[k] < limits[k]) (k === 'performance' ? speed : failures).push(`lighthouse ${k} ${med[k]} < ${limits[k]}`);
}
if (med.tbtMs > limits.tbtMs) speed.push(`total blocking time ${med.tbtMs.toFixed(0)} ms > ${limits.tbtMs}`);
if (med.cls > limits.cls) failures.push(`cumulative layout shift ${med.cls.toFixed(3)} > ${limits.cls}`);

// axe-core in each state of the page.
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const browser = await puppeteer.launch({executablePath: chromePath, args: flags, headless: true});
try {
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 800});
  await page.goto(url);
  await page.waitForFunction(`document.getElementById('status').dataset.state === 'ready'`, {timeout: 60000});
  const axe = async (state) => {
    // Run through the DevTools protocol, which the page's CSP does not govern.
    const v = await page.evaluate(`(async () => {
      if (!window.axe) { ${axeSource} }
      const r = await axe.run(document, {resultTypes: ['violations']});
      return r.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', '));
    })()`);
    console.log(`axe ${state}: ${v.length} violations${v.length ? `\n  ${v.join('\n  ')}` : ''}`);
    for (const x of v) failures.push(`axe ${state}: ${x}`);
  };
  await axe('empty');
  await page.evaluate(`(() => {
    document.querySelector('button[data-sample="cat"]').click();
    const dt = new DataTransfer();
    dt.items.add(new File([], 'empty.png', {type: 'image/png'}));
    const c = document.createElement('canvas');
    c.width = c.height = 64;
    const g = c.getContext('2d');
    g.fillStyle = '#808080';
    g.fillRect(0, 0, 64, 64);
    return new Promise((resolve) => c.toBlob((b) => {
      dt.items.add(new File([b], 'grey.png', {type: 'image/png'}));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
      resolve();
    }));
  })()`);
  await page.waitForFunction(`document.querySelectorAll('#results .result').length === 3 &&
    !document.querySelector('#results .result[data-state="pending"]')`, {timeout: 60000});
  await axe('results');
  // The model card, open, with its per-class table (or "not measured").
  await page.click('#model-card summary');
  await page.waitForFunction(`document.getElementById('model-card').dataset.report !== 'loading' &&
    document.getElementById('model-card').dataset.file`, {timeout: 30000});
  await axe('card');
  // Compare mode, where the site lists a second model: a result with both
  // answers; then the compact layout with a filter.
  const second = await page.evaluate(`(() => {
    const sel = document.getElementById('compare-select');
    const other = Array.from(sel.options).find((o) => o.value && o.value !== document.getElementById('model-select').value);
    if (document.getElementById('compare-choice').hidden || !other) return false;
    sel.value = other.value;
    sel.dispatchEvent(new Event('change'));
    return true;
  })()`);
  if (second) {
    await page.waitForFunction(`document.getElementById('compare-choice').dataset.state === 'ready'`, {timeout: 60000});
    await page.click('button[data-sample="ship"]');
    await page.waitForFunction(`document.querySelector('#results .result[data-compare="done"][data-state="done"]')`, {timeout: 60000});
    await axe('compare');
  } else {
    warnings.push('one model listed: the compare state was not checked');
  }
  await page.click('#view-compact');
  await page.click('#view-unsure');
  await axe('compact');
  await page.click('#view-unsure');
  await page.click('#camera-open');
  await page.waitForFunction(`document.getElementById('camera-video').videoWidth > 0`, {timeout: 30000});
  await axe('camera');
  await page.click('#camera-close');
  // Teach mode: two named classes of a few pictures each, trained.
  await page.evaluate(`(async () => {
    const names = document.querySelectorAll('#teach-classes .teach-name');
    names[0].value = 'light';
    names[1].value = 'dark';
    const rows = document.querySelectorAll('#teach-classes .teach-class');
    for (const [i, grey] of [[0, 220], [1, 30]]) {
      const dt = new DataTransfer();
      for (let k = 0; k < 3; k++) {
        const c = document.createElement('canvas');
        c.width = c.height = 32;
        const g = c.getContext('2d');
        g.fillStyle = 'rgb(' + (grey + 8 * k) + ',' + grey + ',' + grey + ')';
        g.fillRect(0, 0, 32, 32);
        const b = await new Promise((resolve) => c.toBlob(resolve));
        dt.items.add(new File([b], 'p' + k + '.png', {type: 'image/png'}));
      }
      rows[i].dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }
    document.getElementById('teach-train').click();
  })()`);
  await page.waitForFunction(`document.querySelector('section.teach').dataset.state === 'trained'`, {timeout: 60000});
  await axe('teach');
  await page.setViewport({width: 390, height: 844, isMobile: true, hasTouch: true});
  await axe('phone');
} finally {
  await browser.close();
}

if (warnings.length) console.log(`speed not met (PAGECHECK_SPEED=report):\n  ${warnings.join('\n  ')}`);
if (failures.length) {
  console.log(`FAIL\n  ${failures.join('\n  ')}`);
  process.exit(1);
}
console.log('PASS');
