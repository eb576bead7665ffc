// Navigation to the first answer with the shipped default model, as a
// user meets it: per round a fresh profile visits the page (cold), reloads
// it (warm: the service worker, the stored module and the saved build),
// leaves it for about:blank and opens it again (new tab: the same caches
// in a new renderer process, as a tab opened later gets, without the
// optimised code a reload finds in its process), leaves it again and ends
// the shared first worker before opening it (expired: a later tab once the
// worker's lifetime is over), then the browser closes and starts again
// with that profile and visits once more (restart: a user's next
// session). Where the first worker is shared (static/README.md) the
// reload and the new tab find it alive with the model loaded. Each visit
// clicks the cat sample as soon as its button exists and records the
// page's clock at the first answer (the image alone, shown while the other
// test-time views run) and at the final one, with the start-up steps;
// medians last.
//
//   node firstanswer.mjs URL      ROUNDS (default 3)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import {quiet} from './chromeflags.mjs';

const url = process.argv[2] || 'http://127.0.0.1:8080/';
const rounds = Number(process.env.ROUNDS || 3);
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
const steps = ['workerSpawned', 'compiled', 'worker.compiled', 'worker.goStarted', 'worker.modelLoaded', 'firstAnswer', 'firstResult'];

const launch = (dir) => puppeteer.launch({executablePath: chromePath, headless: true, userDataDir: dir, args: quiet(['--no-sandbox', '--disable-gpu'])});

async function visit(page) {
  page.goto(url).catch(() => {}); // the click below waits for the button, not for the load event
  await page.waitForFunction(`document.querySelector('button[data-sample="cat"]')`, {polling: 10, timeout: 120000});
  await page.click('button[data-sample="cat"]');
  await page.waitForFunction(`document.querySelector('#results .result[data-state="done"]')`, {polling: 20, timeout: 120000});
  return page.evaluate(() => globalThis.cifarnetMarks);
}

// endShared ends the browser's shared workers, as their lifetime's end
// does. Not through a session of their own: puppeteer attached to a
// shared worker leaves the next one waiting for a debugger.
async function endShared(browser) {
  const session = await browser.target().createCDPSession();
  const shared = async () => (await session.send('Target.getTargets')).targetInfos.filter((t) => t.type === 'shared_worker');
  for (const t of await shared()) await session.send('Target.closeTarget', {targetId: t.targetId});
  while ((await shared()).length > 0) await new Promise((resolve) => setTimeout(resolve, 50));
  await session.detach();
}

const seen = {cold: [], warm: [], newtab: [], expired: [], restart: []};
for (let r = 1; r <= rounds; r++) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifarnet-fa-'));
  try {
    let browser = await launch(dir);
    let page = await browser.newPage();
    const got = {cold: await visit(page)};
    await page.evaluate('navigator.serviceWorker.ready');
    await new Promise((resolve) => setTimeout(resolve, 5000)); // the build is saved once the page is quiet
    got.warm = await visit(page);
    await page.goto('about:blank');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    got.newtab = await visit(page);
    await page.goto('about:blank');
    await endShared(browser);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    got.expired = await visit(page);
    await browser.close();
    browser = await launch(dir);
    page = await browser.newPage();
    got.restart = await visit(page);
    await browser.close();
    for (const [what, m] of Object.entries(got)) {
      seen[what].push(m);
      console.log(`round ${r} ${what.padEnd(7)} (load ${os.loadavg()[0].toFixed(2)}): ` +
        steps.filter((k) => k in m).map((k) => `${k} ${m[k].toFixed(0)}`).join(', '));
    }
  } finally {
    fs.rmSync(dir, {recursive: true, force: true});
  }
}
const median = (v) => {
  const s = v.filter((x) => x !== undefined).sort((a, b) => a - b);
  return s.length ? s[(s.length - 1) >> 1] : NaN;
};
for (const [what, ms] of Object.entries(seen)) {
  console.log(`${what.padEnd(7)} first answer ${median(ms.map((m) => m.firstAnswer)).toFixed(0)} ms, ` +
    `final answer ${median(ms.map((m) => m.firstResult)).toFixed(0)} ms from navigation (median of ${ms.length})`);
}
