//===- bpt-cpu-run.cpp - run a bpt function on the CPU ----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// Compiles a model-level function through bpt-blockwise and bpt-to-cpu, runs
// it in-process on seeded random inputs, and checks it against the float64
// reference. Exit status 0 only if every output is within tolerance.
//
//===----------------------------------------------------------------------===//

#include "bpt/Execution/CPURunner.h"
#include "bpt/InitAll.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

/// bpt-cpu-run's own flags: --help lists these only (--help-hidden adds
/// LLVM's and MLIR's).
static cl::OptionCategory runCategory("bpt-cpu-run options");

static cl::opt<std::string> inputFilename(cl::Positional,
                                          cl::desc("<input .mlir>"),
                                          cl::cat(runCategory), cl::init("-"));
static cl::opt<std::string>
    functionName("function",
                 cl::desc("Function to run (default: the only one)"),
                 cl::cat(runCategory), cl::init(""));
static cl::opt<int64_t> qBlock("q-block", cl::desc("Query rows per block"),
                               cl::cat(runCategory), cl::init(64));
static cl::opt<int64_t> kvBlock("kv-block",
                                cl::desc("Key/value rows per block"),
                                cl::cat(runCategory), cl::init(64));
static cl::list<std::string> blockSizes(
    "block-sizes",
    cl::desc("Run several Q:KV block-size configurations on the same inputs "
             "(e.g. 16:16,32:64); each must match the reference and the "
             "first. Overrides --q-block/--kv-block"),
    cl::CommaSeparated, cl::cat(runCategory));
static cl::opt<bool> noFuse("no-fuse",
                            cl::desc("Do not fuse the FFN and residuals into "
                                     "the query-block loop"),
                            cl::cat(runCategory), cl::init(false));
static cl::opt<uint64_t> seed("seed", cl::desc("Seed of the random inputs"),
                              cl::cat(runCategory), cl::init(1));
static cl::opt<bool> backward(
    "backward",
    cl::desc("Check training instead: build the function's training forward "
             "and backward (bpt-build-backward), run both, and compare every "
             "result and gradient with float64 (whose gradients are checked "
             "by finite differences)"),
    cl::cat(runCategory), cl::init(false));
static cl::opt<int64_t> queryChunk(
    "query-chunk",
    cl::desc("With --backward: rows per query chunk of each transformer "
             "block's backward (bpt-build-backward's query-chunk; 0, the "
             "default, for whole sequences)"),
    cl::cat(runCategory), cl::init(0));
static cl::opt<bool> recomputeProjections(
    "recompute-projections",
    cl::desc("With --backward: compute the attention's query, key and value "
             "projections again where its gradient reads them "
             "(bpt-blockwise's recompute-projections)"),
    cl::cat(runCategory), cl::init(false));
static cl::opt<bool> tileGemms(
    "tile-gemms",
    cl::desc("Tile the GEMMs left outside loop nests into shared-memory "
             "tiles, as the GPU's portable path does (bpt-tile-gemms)"),
    cl::cat(runCategory), cl::init(false));
static cl::opt<int64_t> chunkRows(
    "chunk-rows",
    cl::desc("Rows per chunk of the FFNs (and FFN gradients) that go by "
             "chunks of rows, a multiple of 128 (default 0: 2048)"),
    cl::cat(runCategory), cl::init(0));
static cl::opt<unsigned> optLevel(
    "opt-level",
    cl::desc("LLVM optimization level of the JIT-compiled code, 0 to 3 "
             "(default 2); a module with a function of more than 1500 "
             "blocks, such as a training function's unrolled query chunks, "
             "is compiled unoptimized at any level"),
    cl::cat(runCategory), cl::init(2));
static cl::opt<bool> perturbOutput(
    "perturb-output",
    cl::desc("Testing: add 2·tolerance·||ref|| to the first output element, "
             "to show that a wrong result fails"),
    cl::cat(runCategory), cl::init(false), cl::Hidden);

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::HideUnrelatedOptions(runCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "bpt-cpu-run: compile a model-level bpt function for the CPU, run it on "
      "random inputs, and check it against the float64 reference\n");
  std::vector<std::pair<int64_t, int64_t>> configs;
  if (blockSizes.empty())
    configs.push_back({qBlock, kvBlock});
  for (StringRef config : blockSizes) {
    auto [q, kv] = config.split(':');
    int64_t qSize = 0, kvSize = 0;
    if (q.getAsInteger(10, qSize) || kv.getAsInteger(10, kvSize)) {
      llvm::errs() << "bpt-cpu-run: --block-sizes takes Q:KV pairs, got '"
                   << config << "'\n";
      return 2;
    }
    configs.push_back({qSize, kvSize});
  }
  for (auto [q, kv] : configs)
    if (q < 1 || kv < 1) {
      llvm::errs() << "bpt-cpu-run: block sizes must be positive, got q-block "
                   << q << " and kv-block " << kv << "\n";
      return 2;
    } else if (q > INT32_MAX || kv > INT32_MAX) {
      // Tilings are 32-bit in the kernels and the pipelines' checks.
      llvm::errs() << "bpt-cpu-run: block sizes must be at most " << INT32_MAX
                   << ", got q-block " << q << " and kv-block " << kv << "\n";
      return 2;
    }

  if (queryChunk.getNumOccurrences() && !backward) {
    llvm::errs() << "bpt-cpu-run: --query-chunk chunks the backward; it "
                    "needs --backward\n";
    return 2;
  }
  if (recomputeProjections && !backward) {
    llvm::errs() << "bpt-cpu-run: --recompute-projections recomputes for the "
                    "backward; it needs --backward\n";
    return 2;
  }
  if (optLevel > 3) {
    llvm::errs() << "bpt-cpu-run: --opt-level must be 0 to 3, got " << optLevel
                 << "\n";
    return 2;
  }
  if (queryChunk < 0) {
    llvm::errs() << "bpt-cpu-run: --query-chunk must be 0 (whole sequences) "
                    "or a number of rows, got "
                 << queryChunk << "\n";
    return 2;
  }

  DialectRegistry registry;
  bpt::registerBPTDialect(registry);
  MLIRContext context(registry);
  context.printOpOnDiagnostic(false);

  // A device such as /dev/zero, or a FIFO, would be read forever.
  llvm::sys::fs::file_status status;
  if (inputFilename != "-" && !llvm::sys::fs::status(inputFilename, status) &&
      status.type() != llvm::sys::fs::file_type::regular_file) {
    llvm::errs() << "bpt-cpu-run: input '" << inputFilename
                 << "' is not a regular file\n";
    return 2;
  }
  std::string error;
  auto file = openInputFile(inputFilename, &error);
  if (!file) {
    llvm::errs() << "bpt-cpu-run: " << error << "\n";
    return 2;
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return 2;

  bpt::CPUCheckOptions options;
  options.function = functionName;
  options.blockSizes = configs;
  options.reportBlockSizes = qBlock.getNumOccurrences() ||
                             kvBlock.getNumOccurrences() ||
                             !blockSizes.empty();
  options.fuse = !noFuse;
  options.seed = seed;
  options.perturbOutput = perturbOutput;
  options.backward = backward;
  options.queryChunk = queryChunk;
  options.recomputeProjections = recomputeProjections;
  options.tileGemms = tileGemms;
  options.optLevel = optLevel;
  options.chunkRows = chunkRows;
  FailureOr<bpt::CPUCheckResult> result = bpt::checkOnCPU(*module, options);
  if (failed(result))
    return 2;
  bpt::printCheckResult(llvm::outs(), *result);
  return result->passed() ? 0 : 1;
}
