//===- InitAll.h - register bpt with an MLIR context ------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// What an embedding compiler (and bpt-opt) calls to get the bpt dialect, its
// passes, and the upstream pieces bpt's pipelines rely on. Registration is
// explicit: only what the pipelines need, never registerAllDialects().
//
//===----------------------------------------------------------------------===//

#ifndef BPT_INITALL_H
#define BPT_INITALL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace bpt {

/// Registers the bpt dialect and every upstream dialect and external
/// interface model that bpt's passes and pipelines produce or consume.
void registerBPTDialect(mlir::DialectRegistry &registry);

/// Registers bpt's passes and the upstream passes and pipelines bpt's
/// lowering is built from, for textual pipelines and bpt-opt flags.
void registerBPTPasses();

/// Registers bpt's named pipelines (bpt-blockwise, bpt-to-cpu).
void registerBPTPipelines();

} // namespace bpt

#endif // BPT_INITALL_H
