// Package kernels holds the CUDA kernels of the training backend
// (kernels.cu, compiled to the embedded kernels.ptx by gen.sh) and one Go
// launcher per op, which sizes the grid and calls device.Device. The same
// kernel source runs on the host in package emu, which the tests use.
//
// Tensors are row-major (NCHW), float32 unless said otherwise; every
// buffer is a device.Ptr, and ops that reduce take a workspace whose size
// (in float32 elements) the matching …Workspace function gives.
package kernels

import (
	_ "embed"
	"regexp"
)

// PTX is kernels.cu compiled for compute_80, for cuModuleLoadData.
//
//go:embed kernels.ptx
var PTX string

// kernel is the name of a kernel in the PTX.
type kernel string

const (
	kFill          kernel = "fill_f32"
	kAdd           kernel = "add_f32"
	kMul           kernel = "mul_f32"
	kLerp          kernel = "lerp_f32"
	kBiasAdd       kernel = "bias_add"
	kReLU          kernel = "relu_fwd"
	kReLUGrad      kernel = "relu_bwd"
	kLeakyReLU     kernel = "leaky_relu_fwd"
	kLeakyReLUGrad kernel = "leaky_relu_bwd"
	kGELU          kernel = "gelu_fwd"
	kGELUGrad      kernel = "gelu_bwd"
	kDropout       kernel = "dropout_fwd"
	kChanSum       kernel = "chsum_partial"
	kDSumPartial   kernel = "dsum_partial"
	kDSumFinal     kernel = "dsum_final"
	kBNStats       kernel = "bn_stats_partial"
	kBNStatsFinal  kernel = "bn_stats_final"
	kBNApply       kernel = "bn_apply"
	kBNEval        kernel = "bn_eval"
	kBNDGamma      kernel = "bn_dgamma_partial"
	kBNDGammaFinal kernel = "bn_dgamma_final"
	kBNDx          kernel = "bn_dx"
	kIm2col        kernel = "im2col"
	kCol2im        kernel = "col2im"
	kSwap01        kernel = "swap01"
	kMaxPool       kernel = "maxpool_fwd"
	kMaxPoolGrad   kernel = "maxpool_bwd"
	kGAP           kernel = "gap_fwd"
	kGAPGrad       kernel = "gap_bwd"
	kXent          kernel = "xent_partial"
	kXentGrad      kernel = "xent_grad"
	kSumSq         kernel = "sumsq_partial"
	kClipCoef      kernel = "clip_coef"
	kClipScale     kernel = "clip_scale"
	kAdam          kernel = "adam_step"
	kSGD           kernel = "sgd_step"
)

// allKernels lists every kernel the launchers use; a test checks it
// against the PTX's entries.
var allKernels = []kernel{
	kFill, kAdd, kMul, kLerp, kBiasAdd,
	kReLU, kReLUGrad, kLeakyReLU, kLeakyReLUGrad, kGELU, kGELUGrad, kDropout,
	kChanSum, kDSumPartial, kDSumFinal,
	kBNStats, kBNStatsFinal, kBNApply, kBNEval, kBNDGamma, kBNDGammaFinal, kBNDx,
	kIm2col, kCol2im, kSwap01,
	kMaxPool, kMaxPoolGrad, kGAP, kGAPGrad,
	kXent, kXentGrad, kSumSq, kClipCoef, kClipScale, kAdam, kSGD,
}

var entryRE = regexp.MustCompile(`(?m)^\.visible \.entry (\w+)\(`)

// Entries returns the names of the kernels in PTX, in their order there.
func Entries() []string {
	var names []string
	for _, m := range entryRE.FindAllStringSubmatch(PTX, -1) {
		names = append(names, m[1])
	}
	return names
}
