// Package onnxpb holds the Go message types of the ONNX model format,
// generated from onnx.proto (onnx v1.12.0: IR version 8, opsets up to 17).
//
// To regenerate onnx.pb.go (tests and builds do not need protoc), install
// protoc (Debian: protobuf-compiler) and the Go plugin at the version of
// google.golang.org/protobuf in go.mod, then run go generate:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.28.0
//	go generate ./trainer/internal/onnx/onnxpb
package onnxpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go_opt=Monnx.proto=github.com/cifarnet-go/cifarnet/trainer/internal/onnx/onnxpb;onnxpb onnx.proto
