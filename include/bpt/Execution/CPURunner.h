//===- CPURunner.h - compile and check a function on the CPU ----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// The CPU execution path: a model-level function goes through bpt-blockwise
// and bpt-to-cpu, is JIT-compiled in-process (MLIR ExecutionEngine), runs on
// seeded random inputs, and is compared with the float64 reference.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_EXECUTION_CPURUNNER_H
#define BPT_EXECUTION_CPURUNNER_H

#include "bpt/Reference/HostTensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace bpt {

/// How to compile and check a function.
struct CPUCheckOptions {
  /// The function to run; empty means the module's only function.
  std::string function;
  /// (q-block, kv-block) configurations to compile and run, each on the same
  /// inputs; every one is checked against the reference, and each after the
  /// first also against the first (block sizes must not change the result).
  std::vector<std::pair<int64_t, int64_t>> blockSizes = {{64, 64}};
  /// The user gave the block sizes: a size larger than the sequence it
  /// tiles gets a remark that it was clamped (see bpt-tile-attention).
  bool reportBlockSizes = false;
  /// Run bpt-fuse-ffn-residual (bpt-blockwise's `fuse` option).
  bool fuse = true;
  uint64_t seed = 1;
  /// Adds 2 · tolerance · ||ref|| to the first output element after each
  /// run, to show that the comparison catches a wrong result.
  bool perturbOutput = false;
  /// Check the training forward and the gradients (checkGradientsOnCPU)
  /// instead of the function itself.
  bool backward = false;
  /// With `backward`: bpt-build-backward's `query-chunk` (rows per query
  /// chunk of each block's backward; 0 for whole sequences).
  int64_t queryChunk = 0;
  /// With `backward`: bpt-blockwise's `recompute-projections` (the
  /// attention's query, key and value computed again where its gradient
  /// reads them).
  bool recomputeProjections = false;
  /// Tile top-level GEMMs as the GPU path does (bpt-tile-gemms).
  bool tileGemms = false;
  /// Rows per chunk of the FFNs and their gradients that go by chunks of
  /// rows (bpt-blockwise's `chunk-rows`; 0 for its default).
  int64_t chunkRows = 0;
  /// LLVM's optimization level for the JIT-compiled code, 0 to 3; a module
  /// with a function of more than 1500 blocks (the unrolled query chunks
  /// of a training function) is compiled unoptimized at any level,
  /// since LLVM's loop analyses cost more than linearly in a function's
  /// blocks.
  unsigned optLevel = 2;
};

/// What the check found.
struct CPUCheckResult {
  struct Output {
    /// E.g. "output 0", "forward 1", "gradient 3".
    std::string name;
    std::string type;
    /// ||out - ref|| / ||ref||, and the same against the first
    /// configuration's output (0 for the first).
    double relativeError, differenceFromFirst, tolerance;
    bool passed;
  };
  struct Run {
    int64_t qBlock, kvBlock;
    std::vector<Output> outputs;
    /// Peak live intermediate buffers after bufferization (the larger of
    /// the two functions' when checking gradients).
    int64_t peakBytes = 0, numAllocations = 0;
    double compileSeconds = 0, runSeconds = 0;
  };
  std::vector<Run> runs;
  /// Backward checks: the float64 gradient of an argument against central
  /// finite differences of the function, along a random direction (the
  /// `directions`-th drawn: earlier ones crossed a kink, see
  /// checkGradientsOnCPU). Not `smooth`: no direction drawn was, since the
  /// point itself lies on a kink.
  struct GradientCheck {
    unsigned argument;
    double analytic = 0, numeric = 0, relativeError = 0, tolerance = 0;
    bool passed = false;
    unsigned directions = 1;
    bool smooth = true;
  };
  std::vector<GradientCheck> gradientChecks;
  double referenceSeconds = 0;

  bool passed() const;
};

/// The storage type of a tensor element type, if bpt supports it.
std::optional<DType> getDType(mlir::Type elementType);

/// Compiles the chosen function of `module` (model level; each block-size
/// configuration compiles a copy), runs it on seeded random inputs with
/// NaN-poisoned outputs, and compares every output with the float64
/// reference. Fails, with a diagnostic, if anything cannot be compiled or
/// run; a numerical mismatch is a successful check whose result has
/// passed() == false.
mlir::FailureOr<CPUCheckResult> checkOnCPU(mlir::ModuleOp module,
                                           const CPUCheckOptions &options);

/// The backward check: builds `@f_train` and `@f_grad` of the chosen
/// function (bpt-build-backward), compiles both, runs the training forward
/// on seeded random inputs and the backward on its log-sum-exps and random
/// result gradients, and compares every output with the float64 reference
/// evaluation of the same functions; the float64 gradients are themselves
/// checked against finite differences of the function (central, at two
/// steps; a direction whose two differences disagree, across a kink of
/// ReLU or a mask, is replaced by another, up to four).
mlir::FailureOr<CPUCheckResult>
checkGradientsOnCPU(mlir::ModuleOp module, const CPUCheckOptions &options);

/// A module JIT-compiled for this CPU once, whose functions can be called
/// any number of times.
class CPUExecutable {
public:
  /// JIT-compiles `module` (LLVM dialect, as bpt-to-cpu leaves it) at LLVM
  /// optimization level `optLevel` (0 to 3; see CPUCheckOptions::optLevel).
  static mlir::FailureOr<CPUExecutable> compile(mlir::ModuleOp module,
                                                unsigned optLevel = 2);
  /// Calls `function` with a bare pointer to each buffer (inputs, then
  /// outputs); a failure is reported at `module`'s location.
  mlir::LogicalResult call(llvm::StringRef function,
                           std::vector<HostTensor> &buffers);

private:
  CPUExecutable(mlir::ModuleOp module,
                std::unique_ptr<mlir::ExecutionEngine> engine);
  mlir::ModuleOp module;
  std::shared_ptr<mlir::ExecutionEngine> engine;
};

/// Prints a result as the CLI shows it.
void printCheckResult(llvm::raw_ostream &os, const CPUCheckResult &result);

} // namespace bpt

#endif // BPT_EXECUTION_CPURUNNER_H
