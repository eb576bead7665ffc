// cifarnet service worker: makes the page work offline after the first
// visit. static/assemble.sh fills in the build version and the precache
// list (the page, its content-hashed scripts, the samples, the model
// manifest and the default model; the WebAssembly module is kept by the
// worker, worker.js, in a cache of its own). A new build has a new
// version, so it installs a fresh cache and deletes the old ones.
'use strict';

const VERSION = 'dev';
const PRECACHE = ['./'];

const CACHE = `cifarnet-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(PRECACHE);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    // The page's request starts while this worker starts up, rather than
    // after (a browser's first visit of a session starts it).
    if (self.registration.navigationPreload) await self.registration.navigationPreload.enable().catch(() => {});
    for (const key of await caches.keys()) {
      // cifarnet-wasm is the worker's copy of the module (worker.js keeps
      // it there and prunes it itself).
      if (key.startsWith('cifarnet-') && key !== CACHE && key !== 'cifarnet-wasm') await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

// Lists and the page itself change between builds without changing their
// names, so they come from the network when it answers; everything else
// (content-hashed assets, weight files, samples) comes from the cache
// first.
function networkFirst(url) {
  return url.pathname.endsWith('/') || url.pathname.endsWith('.html') ||
    url.pathname.endsWith('/api/models') || url.pathname.endsWith('/manifest.json');
}

// Both strategies answer as soon as they have a response and store the
// network's copy afterwards (event.waitUntil keeps the service worker
// alive for it): the page does not wait for a cache write.
async function fromNetworkFirst(event) {
  const request = event.request;
  try {
    const resp = (request.mode === 'navigate' && await event.preloadResponse) || await fetch(request);
    if (resp.ok) store(event, resp.clone());
    return resp;
  } catch (err) {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request, {ignoreSearch: true}) ||
      (request.mode === 'navigate' ? await cache.match('./') : undefined);
    if (hit) return hit;
    throw err;
  }
}

async function fromCacheFirst(event) {
  const request = event.request;
  // A page that found the cached copy damaged asks again with cache
  // 'reload': the server's copy replaces it.
  const hit = request.cache === 'reload' ? undefined : await (await caches.open(CACHE)).match(request);
  if (hit) return hit;
  const resp = await fetch(request);
  // Keep other weight files and samples too, once used, for offline use.
  if (resp.ok && resp.status === 200) store(event, resp.clone());
  return resp;
}

function store(event, resp) {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.put(event.request, resp)).catch(() => {}));
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.headers.has('range')) return; // partial responses are not cached
  if (url.pathname.endsWith('.wasm')) return; // the worker keeps the module itself
  event.respondWith(request.mode === 'navigate' || networkFirst(url) ? fromNetworkFirst(event) : fromCacheFirst(event));
});
