//go:build !(js && wasm)

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "cifarnet wasm: this program runs in a browser; build it with GOOS=js GOARCH=wasm (see build.sh)")
	os.Exit(2)
}
