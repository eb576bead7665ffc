// Runs an ONNX model with ONNX Runtime (onnxruntime-node) on a batch of
// float32 images, for the Go tests of package onnx.
//
// usage: node run.js MODEL.onnx INPUT.f32 N C H W OUTPUT.f32
//
// INPUT.f32 holds N×C×H×W little-endian float32 values; OUTPUT.f32 gets the
// model's only output the same way. Stdout is one JSON line with the input
// and output names and the output's dimensions.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, n, c, h, w, output] = process.argv.slice(2);
  const dims = [n, c, h, w].map(Number);
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1, // keep to one core beside other work
  });
  if (session.inputNames.length !== 1 || session.outputNames.length !== 1) {
    throw new Error(`want one input and one output, have ${session.inputNames} and ${session.outputNames}`);
  }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, dims) };
  const results = await session.run(feeds);
  const y = results[session.outputNames[0]];
  fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(JSON.stringify({ input: session.inputNames[0], output: session.outputNames[0], dims: y.dims }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
