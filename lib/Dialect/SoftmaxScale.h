//===- SoftmaxScale.h - the range of attention scales -----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// One bound for every place a softmax scale is given: bpt.attention,
// bpt.attention_grad and the #bpt.attention_nest / #bpt.attention_grad_nest
// attributes that the kernels read.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_DIALECT_SOFTMAXSCALE_H
#define BPT_LIB_DIALECT_SOFTMAXSCALE_H

#include <cmath>

namespace bpt {

/// The softmax scale is applied in f32, pre-multiplied by log2(e): it must
/// be an f32 normal number (>= 2^-126) and at most 2^16, so that
/// scale·log2(e)·q·k stays finite for |q·k| up to 2^110. Larger scales
/// overflow the online softmax to inf - inf = NaN on ordinary data (a
/// softmax that sharp is an argmax anyway).
inline bool isSoftmaxScaleInRange(double scale) {
  constexpr double kMinScale = 0x1p-126, kMaxScale = 0x1p16;
  return std::isfinite(scale) && scale >= kMinScale && scale <= kMaxScale;
}

/// The diagnostic's wording of that range.
inline constexpr const char *kSoftmaxScaleRange =
    "finite and in [2^-126, 2^16] (applied in f32 in the online softmax)";

} // namespace bpt

#endif // BPT_LIB_DIALECT_SOFTMAXSCALE_H
