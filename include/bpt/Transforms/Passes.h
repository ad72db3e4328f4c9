//===- Passes.h - bpt transformation passes ---------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TRANSFORMS_PASSES_H
#define BPT_TRANSFORMS_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class RewritePatternSet;
class RewriterBase;
} // namespace mlir

namespace bpt {

class TransformerBlockOp;

#define GEN_PASS_DECL
#include "bpt/Transforms/Passes.h.inc"

/// Adds the pattern that expands bpt.transformer_block into its primitives,
/// or into its chunk loops where its strategy takes the wgmma path.
void populateDecomposeBlockPatterns(mlir::RewritePatternSet &patterns);

/// Expands one bpt.transformer_block into its primitives, replacing it.
void decomposeTransformerBlock(mlir::RewriterBase &rewriter,
                               TransformerBlockOp op);

#define GEN_PASS_REGISTRATION
#include "bpt/Transforms/Passes.h.inc"

} // namespace bpt

#endif // BPT_TRANSFORMS_PASSES_H
