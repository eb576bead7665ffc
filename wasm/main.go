// Command wasm is the in-browser classifier: built with GOOS=js GOARCH=wasm,
// it installs a small JavaScript API on globalThis.cifarnet that loads a
// weight file and classifies images with it, entirely on the user's machine.
// See README.md for the API.
//
// The portable part (Classifier) builds and is tested on every platform; only
// the JavaScript bindings need js/wasm.
package main
