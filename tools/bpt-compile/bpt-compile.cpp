//===- bpt-compile.cpp - shapes or .mlir in, PTX + manifest out -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Compiler/KernelSet.h"
#include "bpt/InitAll.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;

static cl::opt<std::string> input(cl::Positional,
                                  cl::desc("[model-level .mlir]"),
                                  cl::init(""));
static cl::opt<std::string> output("o", cl::desc("Output base name: writes "
                                                 "<o>.ptx and <o>.json"),
                                   cl::init("bpt"));
static cl::opt<std::string> emit("emit",
                                 cl::desc("ptx (default), mlir or cubin"),
                                 cl::init("ptx"));
static cl::opt<std::string> stage(
    "stage",
    cl::desc("With --emit=mlir: model, blockwise, linalg, bufferized, gpu or "
             "binary"),
    cl::init("binary"));
static cl::opt<std::string> op("op", cl::desc("attention, ffn or block"),
                               cl::init("attention"));
static cl::opt<int64_t> batch("batch", cl::init(1));
static cl::opt<int64_t> heads("heads", cl::init(8));
static cl::opt<int64_t> kvHeads("kv-heads", cl::desc("(default: --heads)"),
                                cl::init(0));
static cl::opt<int64_t> seq("seq", cl::init(1024));
static cl::opt<int64_t> kvSeq("kv-seq", cl::desc("(default: --seq)"),
                              cl::init(0));
static cl::opt<int64_t> headDim("head-dim", cl::init(64));
static cl::opt<int64_t> hidden("hidden",
                               cl::desc("Model width (ffn, block)"),
                               cl::init(0));
static cl::opt<int64_t> ffn("ffn", cl::desc("FFN width (default 4x hidden)"),
                            cl::init(0));
static cl::opt<std::string> activation(
    "activation", cl::desc("gelu, gelu_tanh, relu, silu, swiglu, geglu"),
    cl::init("gelu"));
static cl::opt<std::string> norm("norm", cl::desc("layer_norm or rms_norm"),
                                 cl::init("rms_norm"));
static cl::opt<std::string> dtype("dtype", cl::desc("f32, f16 or bf16"),
                                  cl::init("bf16"));
static cl::opt<bool> causal("causal", cl::init(false));
static cl::opt<int64_t> qBlock("q-block", cl::init(64));
static cl::opt<int64_t> kvBlock("kv-block", cl::init(64));
static cl::opt<bool> noFuse("no-fuse", cl::init(false));
static cl::opt<int64_t> chunkRows(
    "chunk-rows",
    cl::desc("Rows per chunk of the sm_90a FFN and block kernels (a multiple "
             "of 128)"),
    cl::init(2048));
static cl::opt<bool> noTensorCores(
    "no-tensor-cores",
    cl::desc("Keep every op on the portable path (no sm_90a wgmma kernels)"),
    cl::init(false));
static cl::opt<std::string> chip("chip", cl::init("sm_90a"));
static cl::opt<std::string> features(
    "features", cl::desc("PTX features (default +ptx80)"), cl::init("+ptx80"));
static cl::opt<int64_t> threads("block-threads", cl::desc("Threads per block"),
                                cl::init(256));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "bpt-compile: " << message << "\n";
  return 1;
}

static LogicalResult writeFile(StringRef path, StringRef contents) {
  std::string error;
  auto file = openOutputFile(path, &error);
  if (!file) {
    llvm::errs() << "bpt-compile: " << error << "\n";
    return failure();
  }
  file->os() << contents;
  file->keep();
  return success();
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::ParseCommandLineOptions(
      argc, argv,
      "bpt-compile: compile a transformer op or block, given by shapes or a "
      "model-level .mlir file, to PTX and a launch manifest\n");
  if (emit != "ptx" && emit != "mlir" && emit != "cubin")
    return fail("--emit must be ptx, mlir or cubin, got '" + emit + "'");
  std::optional<bpt::Stage> lastStage = bpt::parseStage(stage);
  if (!lastStage)
    return fail("--stage must be model, blockwise, linalg, bufferized, gpu or "
                "binary, got '" + stage + "'");
  if (qBlock < 1 || kvBlock < 1)
    return fail("--q-block and --kv-block must be positive");
  if (threads < 32 || threads > 1024 || threads % 32 != 0)
    return fail("--block-threads must be a multiple of 32 in [32, 1024], got " +
                std::to_string(threads));
  if (!StringRef(chip).starts_with("sm_"))
    return fail("--chip must name an NVIDIA architecture such as sm_90a, got '" +
                chip + "'");

  DialectRegistry registry;
  bpt::registerBPTDialect(registry);
  MLIRContext context(registry);
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  if (input.empty()) {
    bpt::ModelSpec spec;
    spec.op = op;
    spec.batch = batch;
    spec.heads = heads;
    spec.kvHeads = kvHeads;
    spec.seq = seq;
    spec.kvSeq = kvSeq;
    spec.headDim = headDim;
    spec.hidden = hidden;
    spec.ffn = ffn;
    spec.activation = activation;
    spec.norm = norm;
    spec.dtype = dtype;
    spec.causal = causal;
    llvm::Expected<std::string> ir = bpt::buildModelIR(spec);
    if (!ir)
      return fail(llvm::toString(ir.takeError()));
    sourceMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(*ir, "<bpt-compile model>"),
        llvm::SMLoc());
  } else {
    std::string error;
    auto file = openInputFile(input, &error);
    if (!file)
      return fail(error);
    sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  }
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;

  bpt::CompileOptions options;
  options.qBlock = qBlock;
  options.kvBlock = kvBlock;
  options.fuse = !noFuse;
  options.tensorCores = !noTensorCores;
  options.chunkRows = chunkRows;
  options.chip = chip;
  options.features = features;
  options.threads = threads;

  if (emit == "mlir") {
    if (failed(bpt::lowerToStage(*module, *lastStage, options)))
      return 1;
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    if (output.getNumOccurrences() == 0) {
      llvm::outs() << text;
      return 0;
    }
    return failed(writeFile(output, text)) ? 1 : 0;
  }

  std::string ptxPath = output + ".ptx", manifestPath = output + ".json";
  FailureOr<bpt::KernelSet> set = bpt::compileKernelSet(
      *module, options, llvm::sys::path::filename(ptxPath));
  if (failed(set))
    return 1;
  std::string manifest;
  llvm::raw_string_ostream ms(manifest);
  ms << llvm::formatv("{0:2}", llvm::json::Value(std::move(set->manifest)))
     << "\n";
  if (failed(writeFile(ptxPath, set->ptx)) ||
      failed(writeFile(manifestPath, manifest)))
    return 1;
  if (emit == "cubin") {
    llvm::ErrorOr<std::string> ptxas = llvm::sys::findProgramByName("ptxas");
    if (!ptxas)
      return fail("--emit=cubin needs ptxas (from a CUDA toolkit) on PATH; it "
                  "was not found. The PTX and manifest were written.");
    std::string cubin = output + ".cubin";
    std::string arch = "-arch=" + chip;
    StringRef args[] = {*ptxas, arch, ptxPath, "-o", cubin};
    std::string error;
    if (llvm::sys::ExecuteAndWait(*ptxas, args, std::nullopt, {}, 0, 0,
                                  &error) != 0)
      return fail("ptxas failed" + (error.empty() ? "" : ": " + error));
  }
  return 0;
}
