// One round of the side-by-side benchmark, run by main.go in a fresh
// headless Chromium: the same 32×32 pixels through our module (forward
// pass times as the module reports them, without and with TTA) and through
// onnxruntime-web's wasm EP (1 thread and hardwareConcurrency threads) on
// the ONNX export of the same weight file. Warm-up runs are not timed.
"use strict";

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function samplePixels(url) {
  const img = await createImageBitmap(await (await fetch(url)).blob());
  const c = new OffscreenCanvas(32, 32);
  const g = c.getContext("2d");
  g.drawImage(img, 0, 0, 32, 32);
  return g.getImageData(0, 0, 32, 32).data;
}

async function ours(rgba, warm, runs) {
  await new Promise((resolve, reject) => {
    globalThis.cifarnetReady = resolve;
    const go = new Go();
    WebAssembly.instantiateStreaming(fetch("cifarnet.wasm"), go.importObject)
      .then((r) => go.run(r.instance), reject);
  });
  const info = await cifarnet.load("model.cnw");
  const out = {};
  for (const tta of [false, true]) {
    await cifarnet.setTTA(tta);
    const ms = [];
    let top = -1;
    for (let i = 0; i < warm + runs; i++) {
      const r = await cifarnet.classifyRGBA(rgba, 32, 32);
      top = r.top.index;
      if (i >= warm) ms.push(r.ms);
    }
    out[tta ? "oursTTA" : "ours"] = median(ms);
    out[tta ? "oursTTATop" : "oursTop"] = top;
  }
  out.normalization = info.normalization;
  return out;
}

async function ortRun(input, threads, warm, runs) {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  const s = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
  const feeds = { [s.inputNames[0]]: new ort.Tensor("float32", input, [1, 3, 32, 32]) };
  const ms = [];
  let top = -1;
  for (let i = 0; i < warm + runs; i++) {
    const t0 = performance.now();
    const r = await s.run(feeds);
    const t = performance.now() - t0;
    const v = r[s.outputNames[0]].data;
    top = v.indexOf(Math.max(...v));
    if (i >= warm) ms.push(t);
  }
  await s.release();
  return { ms: median(ms), top };
}

// bench runs one engine per page load (threads must be set before ORT's
// first session).
globalThis.bench = async function (engine, warm, runs) {
  const rgba = await samplePixels("sample.png");
  if (engine === "ours") return ours(rgba, warm, runs);
  const { mean, std } = JSON.parse(new URLSearchParams(location.search).get("norm"));
  const x = new Float32Array(3 * 32 * 32);
  for (let c = 0; c < 3; c++)
    for (let i = 0; i < 32 * 32; i++) x[c * 1024 + i] = (rgba[i * 4 + c] / 255 - mean[c]) / std[c];
  const threads = engine === "ort1" ? 1 : navigator.hardwareConcurrency;
  const r = await ortRun(x, threads, warm, runs);
  return { ...r, threads, isolated: crossOriginIsolated };
};
