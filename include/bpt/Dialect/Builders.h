//===- Builders.h - build bpt ops from C++ with inferred types --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// Convenience builders for embedding compilers: each infers the result type
// from the operands (as the verifiers define it), so a caller writes
// `buildAttention(b, loc, q, k, v, /*causal=*/true)` instead of spelling the
// result tensor type. The generated `OpTy::create(...)` builders remain
// available for full control.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_DIALECT_BUILDERS_H
#define BPT_DIALECT_BUILDERS_H

#include "bpt/Dialect/BPTOps.h"

#include <optional>

namespace bpt {

/// bpt.attention; the result has the query's type. `scale` defaults to
/// 1/sqrt(head_dim).
AttentionOp buildAttention(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Value query, mlir::Value key,
                           mlir::Value value, bool causal,
                           std::optional<double> scale = std::nullopt);

/// bpt.linear; the result is the input's shape with the weight's width last.
LinearOp buildLinear(mlir::OpBuilder &b, mlir::Location loc, mlir::Value input,
                     mlir::Value weight, mlir::Value bias = nullptr);

/// bpt.ffn; `gate` is required for (only) the gated activations.
FFNOp buildFFN(mlir::OpBuilder &b, mlir::Location loc, Activation activation,
               mlir::Value input, mlir::Value wIn, mlir::Value wOut,
               mlir::Value wGate = nullptr);

/// bpt.layer_norm (with `bias`) or bpt.rms_norm (without).
mlir::Operation *buildNorm(mlir::OpBuilder &b, mlir::Location loc,
                           mlir::Value input, mlir::Value weight,
                           mlir::Value bias = nullptr, double epsilon = 1e-5);

} // namespace bpt

#endif // BPT_DIALECT_BUILDERS_H
