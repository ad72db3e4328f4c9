//===- BPTDialect.h - bpt dialect -------------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_DIALECT_BPTDIALECT_H
#define BPT_DIALECT_BPTDIALECT_H

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/Operation.h"

#include "bpt/Dialect/BPTOpsDialect.h.inc"
#include "bpt/Dialect/BPTOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "bpt/Dialect/BPTOpsAttrs.h.inc"

namespace bpt {

/// True for the gated activations (swiglu, geglu), which take a third
/// matrix, `w_gate`.
bool isGatedActivation(Activation activation);

/// Discardable attribute naming what a host allocation of a kernel set
/// holds (e.g. "delta"): the manifest lists it in the workspace slot that
/// holds it.
inline constexpr llvm::StringLiteral kBufferNameAttrName = "bpt.buffer_name";

/// Unit attribute on an op that bpt-rematerialize repeated (with
/// `projections`) before CSE has run for the last time: it keeps CSE from
/// merging the repeat back into the original, whose value would then live
/// across the gap again.
inline constexpr llvm::StringLiteral kRecomputedAttrName = "bpt.recomputed";

/// Unit attribute on a gpu.launch_func whose kernel begins with
/// griddepcontrol.wait (`bpt-dependent-launch`): the manifest marks the
/// launch "dependent".
inline constexpr llvm::StringLiteral kDependentLaunchAttrName =
    "bpt.dependent_launch";

/// On a gpu.launch_func: `array<i64: w0, r0, w1, r1, ...>`, pairs of kernel
/// operands where the written buffer `w` may take the bytes of the read
/// buffer `r` (or of the buffer under the tensor map `r`). The kernel
/// promises that each thread block reads the part of `r` it reads before
/// writing the same part of `w`, and that no block reads a part that
/// another block writes (the tensor-core attention backwards: a block owns
/// its key/value rows, loads K and V once and writes dK and dV last). The
/// manifest then gives `w` the workspace bytes of `r` when this launch is
/// the last use of `r` and the first of `w` (docs/design.md, "Workspace").
inline constexpr llvm::StringLiteral kWritesOverAttrName = "bpt.writes_over";

/// On a linalg op in a portable loop body (`bpt-tile-gemms`' shared-memory
/// GEMM tile): `array<i64: rm, rn>`, the register tile of rm x rn output
/// elements each thread computes (`bpt-map-to-gpu`), along the output's
/// second-to-last and last dimensions. Threads next to each other take
/// neighbouring columns; a thread's elements lie extent/rm rows and
/// extent/rn columns apart.
inline constexpr llvm::StringLiteral kThreadTileAttrName = "bpt.thread_tile";

/// Bounds the #bpt.strategy verifier puts on a tensor-core (or row-kernel)
/// tiling: every kernel's own choices lie well inside them, and each
/// conversion checks its kernel's exact rules. A wild hand-written tiling
/// is then an error, not a kernel unrolled for hours.
inline constexpr int64_t kMaxStrategyTile = 256, kMaxStrategyStages = 8,
                         kMaxStrategyWarps = 32, kMaxStrategyGemmSplit = 8;
/// The most key/value splits of an attention (any path).
inline constexpr int64_t kMaxKVSplits = 1024;

/// Names the buffer that `alloc` allocates (see kBufferNameAttrName).
inline void setBufferName(mlir::Operation *alloc, llvm::StringRef name) {
  alloc->setAttr(kBufferNameAttrName,
                 mlir::StringAttr::get(alloc->getContext(), name));
}

} // namespace bpt

#endif // BPT_DIALECT_BPTDIALECT_H
