//===- bpt-compile.cpp - shapes or .mlir in, PTX + manifest out -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Compiler/KernelSet.h"
#include "bpt/Conversion/AttentionCostModel.h"
#include "bpt/Dialect/BPTOps.h"
#include "bpt/InitAll.h"
#include "bpt/Target/Chip.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

#include <set>
#include <tuple>

using namespace mlir;
namespace cl = llvm::cl;

/// bpt-compile's own flags: --help lists these only (--help-hidden adds
/// LLVM's and MLIR's).
static cl::OptionCategory compileCategory("bpt-compile options");

static cl::opt<std::string> input(cl::Positional,
                                  cl::desc("[model-level .mlir]"),
                                  cl::cat(compileCategory), cl::init(""));
static cl::opt<std::string> output("o",
                                   cl::desc("Output base name: writes "
                                            "<o>.ptx and <o>.json"),
                                   cl::cat(compileCategory), cl::init("bpt"));
static cl::opt<std::string> emit("emit",
                                 cl::desc("ptx (default), mlir or cubin"),
                                 cl::cat(compileCategory), cl::init("ptx"));
static cl::opt<std::string> stage(
    "stage",
    cl::desc("With --emit=mlir: model, blockwise, linalg, bufferized, gpu or "
             "binary"),
    cl::cat(compileCategory), cl::init("binary"));
static cl::opt<std::string> op(
    "op",
    cl::desc("attention, attention_grad (the gradients dq, dk, dv from q, k, "
             "v, o, dO and the lse), ffn or block"),
    cl::cat(compileCategory), cl::init("attention"));
static cl::opt<int64_t> batch("batch", cl::cat(compileCategory), cl::init(1));
static cl::opt<int64_t> heads("heads", cl::cat(compileCategory), cl::init(8));
static cl::opt<int64_t> kvHeads("kv-heads", cl::desc("(default: --heads)"),
                                cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> seq("seq", cl::cat(compileCategory), cl::init(1024));
static cl::opt<int64_t> kvSeq("kv-seq", cl::desc("(default: --seq)"),
                              cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> headDim("head-dim", cl::cat(compileCategory),
                                cl::init(64));
static cl::opt<int64_t> hidden("hidden", cl::desc("Model width (ffn, block)"),
                               cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> ffn("ffn", cl::desc("FFN width (default 4x hidden)"),
                            cl::cat(compileCategory), cl::init(0));
static cl::opt<std::string>
    activation("activation",
               cl::desc("gelu, gelu_tanh, relu, silu, swiglu, geglu"),
               cl::cat(compileCategory), cl::init("gelu"));
static cl::opt<std::string> norm("norm", cl::desc("layer_norm or rms_norm"),
                                 cl::cat(compileCategory),
                                 cl::init("rms_norm"));
static cl::opt<std::string> dtype("dtype", cl::desc("f32, f16 or bf16"),
                                  cl::cat(compileCategory), cl::init("bf16"));
static cl::opt<bool> causal("causal", cl::cat(compileCategory),
                            cl::init(false));
static cl::opt<bool> backward(
    "backward",
    cl::desc("--op=attention: the forward with its log-sum-exp and the "
             "gradients dq, dk, dv, one kernel set; --op=block: the block's "
             "training step (output, then the gradient of the input and of "
             "every weight; the lse in a workspace), one kernel set"),
    cl::cat(compileCategory), cl::init(false));
static cl::opt<int64_t> queryChunk(
    "query-chunk",
    cl::desc("--op=block --backward: the block's backward by query chunks "
             "of this many rows (the fused blockwise backward: each chunk's "
             "recomputation and gradients together, the keys' and values' "
             "gradients summed across chunks); 0, the default, for the "
             "whole sequence at once"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<bool> recomputeProjections(
    "recompute-projections",
    cl::desc("--op=block --backward: compute the attention's query, key and "
             "value projections again where its gradient reads them, so "
             "that they do not live across the FFN's backward (three GEMMs "
             "more, three [S, hidden] buffers fewer at that point)"),
    cl::cat(compileCategory), cl::init(false));
static cl::opt<bool> lse(
    "lse",
    cl::desc("--op=attention: the forward that also returns its log-sum-exp "
             "(outputs output, lse), what --op=attention_grad takes"),
    cl::cat(compileCategory), cl::init(false));
static cl::opt<double> scale(
    "scale",
    cl::desc("Softmax scale of the attention ops (default 1/sqrt(head-dim))"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> qBlock("q-block", cl::cat(compileCategory),
                               cl::init(64));
static cl::opt<int64_t> kvBlock("kv-block", cl::cat(compileCategory),
                                cl::init(64));
static cl::opt<bool> noFuse("no-fuse", cl::cat(compileCategory),
                            cl::init(false));
static cl::opt<bool> noGemmTiles(
    "no-gemm-tiles",
    cl::desc("Portable path: leave GEMMs at one thread per output element "
             "instead of shared-memory tiles (for comparison)"),
    cl::cat(compileCategory), cl::init(false));
static cl::opt<int64_t> chunkRows(
    "chunk-rows",
    cl::desc("Rows per chunk of the tensor-core FFN and block kernels (a "
             "multiple of 128; an FFN's rows past its last whole chunk are "
             "one shorter chunk; 0: 2048, and a lone wgmma FFN's chosen "
             "from its GEMMs' waves)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<bool> noTensorCores(
    "no-tensor-cores",
    cl::desc("Keep every op on the portable path (no wgmma, mma.sync or "
             "row kernels)"),
    cl::cat(compileCategory), cl::init(false));
static cl::opt<bool> allowTF32(
    "allow-tf32",
    cl::desc("Multiply f32 FFNs on tensor cores as TF32 (the mma.sync GEMMs; "
             "off, as PyTorch's default: f32 stays on the portable path)"),
    cl::cat(compileCategory), cl::init(false));
static cl::opt<int64_t> sm90KvBlock(
    "sm90-kv-block",
    cl::desc("sm_90a attention key/value block: 64, 80, 96, 112 or 128 (0: "
             "the cost model's choice)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm90Stages(
    "sm90-stages",
    cl::desc("sm_90a attention K/V ring stages: 2 to 4 (0: the cost model's "
             "choice)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t>
    sm90GemmBlockN("sm90-gemm-block-n",
                   cl::desc("sm_90a GEMM tile width: 128 or 256 (0: per GEMM)"),
                   cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm90GemmStages(
    "sm90-gemm-stages",
    cl::desc("sm_90a GEMM shared-memory stages: 2 to 8 (0: three, two blocks a multiprocessor, where the epilogue allows; else as many as fit)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm90GemmSplit(
    "sm90-gemm-split",
    cl::desc("sm_90a GEMMs of a lone FFN: the most parts a mostly idle last "
             "wave's tiles are split into along K, summed by a second "
             "launch: 1 (no split) to 8 (0: where the wave model predicts a "
             "gain, up to 8)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80QBlock(
    "sm80-q-block",
    cl::desc("mma.sync attention query rows per thread block: 64 or 128 (0: "
             "the cost model's choice)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80KvBlock(
    "sm80-kv-block",
    cl::desc("mma.sync attention key/value block: 32, 64 or 128 (0: the cost "
             "model's choice)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80Stages(
    "sm80-stages",
    cl::desc("mma.sync attention K/V ring stages: 2 to 4 (0: the cost "
             "model's choice)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80GemmBlockN(
    "sm80-gemm-block-n",
    cl::desc("mma.sync GEMM tile width: 128 or 256 (0: 256 where N allows)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80GradQBlock(
    "sm80-grad-q-block",
    cl::desc("mma.sync attention backward: query rows a step, 32 or 64 (0: "
             "64, or 32 where the default tiling does not fit)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80GradKvBlock(
    "sm80-grad-kv-block",
    cl::desc("mma.sync attention backward: key/value rows a thread block, 64 "
             "or 128 (0: 128, or 64 where that does not fit)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> sm80GradStages(
    "sm80-grad-stages",
    cl::desc("mma.sync attention backward: Q/dO ring stages, 2 to 4 (0: 2)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<int64_t> kvSplits(
    "kv-splits",
    cl::desc("Attention with short queries (at most 64 rows): key/value "
             "splits of the mma.sync split kernel, up to 1024 (0: the cost "
             "rule's choice; 1: never split)"),
    cl::cat(compileCategory), cl::init(0));
static cl::opt<bool>
    tune("tune",
         cl::desc("Write one kernel set per candidate tensor-core tiling (for "
                  "--chip) into the "
                  "directory -o names, with tune.json; time them on the GPU "
                  "machine with `bpt-run --tune=DIR`, then compile with "
                  "--tuning=DIR/tuning.json"),
         cl::cat(compileCategory), cl::init(false));
static cl::opt<std::string> tuning(
    "tuning",
    cl::desc("Apply the winning tiling recorded by `bpt-run --tune` (flags "
             "given on the command line take precedence)"),
    cl::cat(compileCategory), cl::init(""));
static cl::opt<std::string> chip(
    "chip",
    cl::desc("The chip, e.g. sm_90a (default) or sm_80: one LLVM 22's NVPTX "
             "back end supports"),
    cl::cat(compileCategory), cl::init("sm_90a"));
static cl::opt<std::string> features(
    "features",
    cl::desc("PTX features, e.g. +ptx83 (default: +ptx80, or the chip's "
             "minimum PTX version where that is higher)"),
    cl::cat(compileCategory), cl::init(""));
static cl::opt<int64_t> threads("block-threads", cl::desc("Threads per block"),
                                cl::cat(compileCategory), cl::init(256));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "bpt-compile: " << message << "\n";
  return 1;
}

/// An input file must be a regular file ("-": standard input): a device
/// such as /dev/zero, or a FIFO, would be read forever.
static LogicalResult checkRegularFile(StringRef path, StringRef what) {
  if (path == "-")
    return success();
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(path, status))
    return success(); // opening it reports the error
  if (status.type() == llvm::sys::fs::file_type::regular_file)
    return success();
  fail(what + " '" + path + "' is not a regular file");
  return failure();
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

/// The tiling flags and where they live in StrategyOptions.
static const struct {
  const char *flag;
  cl::opt<int64_t> *option;
  int64_t bpt::StrategyOptions::*field;
} kTilingFlags[] = {
    {"chunk-rows", &chunkRows, &bpt::StrategyOptions::chunkRows},
    {"sm90-kv-block", &sm90KvBlock, &bpt::StrategyOptions::sm90KvBlock},
    {"sm90-stages", &sm90Stages, &bpt::StrategyOptions::sm90Stages},
    {"sm90-gemm-block-n", &sm90GemmBlockN, &bpt::StrategyOptions::gemmBlockN},
    {"sm90-gemm-stages", &sm90GemmStages, &bpt::StrategyOptions::gemmStages},
    {"sm90-gemm-split", &sm90GemmSplit, &bpt::StrategyOptions::gemmSplit},
    {"sm80-q-block", &sm80QBlock, &bpt::StrategyOptions::sm80QBlock},
    {"sm80-kv-block", &sm80KvBlock, &bpt::StrategyOptions::sm80KvBlock},
    {"sm80-stages", &sm80Stages, &bpt::StrategyOptions::sm80Stages},
    {"sm80-gemm-block-n", &sm80GemmBlockN,
     &bpt::StrategyOptions::sm80GemmBlockN},
    {"kv-splits", &kvSplits, &bpt::StrategyOptions::kvSplits},
    {"sm80-grad-q-block", &sm80GradQBlock,
     &bpt::StrategyOptions::sm80GradQBlock},
    {"sm80-grad-kv-block", &sm80GradKvBlock,
     &bpt::StrategyOptions::sm80GradKvBlock},
    {"sm80-grad-stages", &sm80GradStages,
     &bpt::StrategyOptions::sm80GradStages},
};

/// Reads a tuning file's "flags" object into `options`; a flag given on
/// the command line keeps its value.
static LogicalResult applyTuning(StringRef path,
                                 bpt::CompileOptions &options) {
  if (failed(checkRegularFile(path, "--tuning file")))
    return failure();
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer) {
    fail("cannot read --tuning file '" + path + "': " +
         buffer.getError().message());
    return failure();
  }
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*buffer)->getBuffer());
  if (!json) {
    fail("--tuning file '" + path + "': " + llvm::toString(json.takeError()));
    return failure();
  }
  const llvm::json::Object *flags =
      json->getAsObject() ? json->getAsObject()->getObject("flags") : nullptr;
  if (!flags) {
    fail("--tuning file '" + path + "' has no \"flags\" object");
    return failure();
  }
  for (const auto &[key, value] : *flags) {
    const auto *known = llvm::find_if(
        kTilingFlags, [&](const auto &f) { return key == f.flag; });
    std::optional<int64_t> number = value.getAsInteger();
    if (known == std::end(kTilingFlags) || !number) {
      fail("--tuning file '" + path + "': unknown or non-integer flag '" +
           key.str() + "'");
      return failure();
    }
    if (known->option->getNumOccurrences() == 0)
      options.strategy.*(known->field) = *number;
  }
  return success();
}

/// The candidate tilings of --tune for the module's ops.
static std::vector<std::vector<std::pair<const char *, int64_t>>>
tuningCandidates(ModuleOp module, StringRef chip) {
  bool hasAttention = false, hasAttentionGrad = false, hasFFN = false,
       hasBlock = false;
  // Whether every attention has short 16-bit queries (decode: the split-K/V
  // schedule's).
  bool allShort = true;
  // The widest head: the wgmma candidates' key blocks depend on it.
  int64_t headDim = 0;
  module.walk([&](Operation *op) {
    if (auto attention = dyn_cast<bpt::AttentionOp>(op)) {
      RankedTensorType q = attention.getQuery().getType();
      headDim = std::max(headDim, q.getDimSize(3));
      allShort &= q.getDimSize(2) <= bpt::kMaxSplitKVQueryRows &&
                  q.getElementType().getIntOrFloatBitWidth() == 16;
    }
    hasAttention |= isa<bpt::AttentionOp>(op);
    hasAttentionGrad |= isa<bpt::AttentionGradOp>(op);
    hasFFN |= isa<bpt::FFNOp>(op);
    hasBlock |= isa<bpt::TransformerBlockOp>(op);
  });
  std::vector<std::vector<std::pair<const char *, int64_t>>> candidates;
  if (hasAttention && allShort && !hasFFN && !hasBlock &&
      bpt::getChipInfo(chip).hasMmaSync) {
    // Decode: split counts (0: the cost model's; 1: unsplit, the chip's
    // attention kernel) and the split kernel's key blocks.
    candidates.push_back({{"kv-splits", 1}});
    for (int64_t splits : {0, 4, 8, 16, 32, 64, 128, 256})
      for (int64_t kvBlock : {32, 64})
        candidates.push_back(
            {{"kv-splits", splits}, {"sm80-kv-block", kvBlock}});
    return candidates;
  }
  if (!bpt::getChipInfo(chip).hasWgmma) {
    // Other chips have the mma.sync attention only.
    if (hasAttention)
      for (const bpt::AttentionTiling &t : bpt::attentionTilingCandidates(
               bpt::AttentionKernelKind::MmaSync))
        candidates.push_back({{"sm80-q-block", t.blockM},
                              {"sm80-kv-block", t.blockN},
                              {"sm80-stages", t.stages}});
    // The backward's tilings, with the forward's at its default: one at a
    // time, not their product (a training set's forward and backward are
    // separate kernels). The chip's default first (with a forward, the
    // same kernels as a forward candidate, so timed once); a tiling whose
    // shared memory does not fit is left out at compile time.
    if (hasAttentionGrad) {
      for (auto [q, kv, stages] : {std::tuple{0, 0, 0},
                                   {64, 128, 3},
                                   {32, 128, 2},
                                   {32, 64, 2},
                                   {64, 64, 2}})
        candidates.push_back({{"sm80-grad-q-block", q},
                              {"sm80-grad-kv-block", kv},
                              {"sm80-grad-stages", stages}});
    }
    return candidates;
  }
  std::vector<std::vector<std::pair<const char *, int64_t>>> attention = {{}},
                                                            gemm = {{}};
  if (hasAttention || hasBlock) {
    attention.clear();
    for (const bpt::AttentionTiling &t : bpt::attentionTilingCandidates(
             bpt::AttentionKernelKind::Wgmma, headDim))
      if (!hasBlock || t.stages <= 3)
        attention.push_back(
            {{"sm90-kv-block", t.blockN}, {"sm90-stages", t.stages}});
  }
  if (hasFFN || hasBlock) {
    // gemm's first, empty entry stays: the chip's default tiling, where no
    // stage count is pinned, so a launch of enough whole 256-row tiles
    // takes 256 x 128 tiles, which no pinned candidate gives.
    // Stages of 32 KiB (128-wide tiles) or 48 KiB (256-wide) that fit.
    for (int64_t n : {128, 256})
      for (int64_t stages : hasBlock ? std::vector<int64_t>{3, 4}
                            : n == 128 ? std::vector<int64_t>{2, 3, 4, 6}
                                       : std::vector<int64_t>{2, 3, 4})
        gemm.push_back({{"sm90-gemm-block-n", n}, {"sm90-gemm-stages", stages}});
  }
  // A lone FFN's chunk sets its launches' waves (a chunk's last wave of
  // tiles may be part-full): the wave model's chunks (chunk-rows 0) and
  // chunks of 1024, 2048 and 4096 rows, where the rows allow them (the same
  // kernels are timed once).
  std::vector<std::vector<std::pair<const char *, int64_t>>> chunks = {{}};
  if (hasFFN && !hasBlock && !hasAttention)
    chunks = {{{"chunk-rows", 0}},
              {{"chunk-rows", 0}, {"sm90-gemm-split", 1}},
              {{"chunk-rows", 1024}},
              {{"chunk-rows", 2048}},
              {{"chunk-rows", 4096}}};
  for (const auto &a : attention)
    for (const auto &g : gemm)
      for (const auto &c : chunks) {
        candidates.push_back(a);
        llvm::append_range(candidates.back(), g);
        llvm::append_range(candidates.back(), c);
      }
  return candidates;
}

/// The attention cost model's prediction for a module that is one attention
/// op, with the tiling of `options` (what --tune records next to the
/// measurement, so that the two can be compared).
static std::optional<double>
predictedAttentionMs(ModuleOp module, const bpt::CompileOptions &options) {
  SmallVector<bpt::AttentionOp> ops;
  module.walk([&](bpt::AttentionOp op) { ops.push_back(op); });
  if (ops.size() != 1)
    return std::nullopt;
  ArrayRef<int64_t> q = ops[0].getQuery().getType().getShape();
  bpt::AttentionProblem problem{q[0], q[1], q[2],
                                ops[0].getKey().getType().getDimSize(2), q[3],
                                ops[0].getCausal()};
  bpt::ChipInfo chip = bpt::getChipInfo(options.strategy.chip);
  bool wgmma = chip.hasWgmma;
  bpt::AttentionTiling tiling =
      wgmma ? bpt::AttentionTiling{128, options.strategy.sm90KvBlock,
                                   options.strategy.sm90Stages}
            : bpt::AttentionTiling{options.strategy.sm80QBlock,
                                   options.strategy.sm80KvBlock,
                                   options.strategy.sm80Stages};
  // Only a candidate that pins the whole tiling has a prediction (a
  // split-K/V candidate pins its split count, not this kernel's tiling).
  if (!tiling.blockM || !tiling.blockN || !tiling.stages ||
      options.strategy.kvSplits)
    return std::nullopt;
  return bpt::predictAttentionMs(
      wgmma ? bpt::AttentionKernelKind::Wgmma
            : bpt::AttentionKernelKind::MmaSync,
      problem, tiling, bpt::ChipModel::forChip(options.strategy.chip),
      chip.sharedMemoryPerBlock);
}

/// --tune: one kernel set per candidate tiling in `dir`, and tune.json.
static int writeCandidates(StringRef text, const bpt::CompileOptions &base,
                           StringRef dir, MLIRContext &context) {
  OwningOpRef<ModuleOp> probe = parseSourceString<ModuleOp>(text, &context);
  if (!probe)
    return 1;
  if (auto error = llvm::sys::fs::create_directories(dir))
    return fail("cannot create '" + dir + "': " + error.message());
  auto candidates = tuningCandidates(*probe, base.strategy.chip);
  if (llvm::all_of(candidates, [](const auto &c) { return c.empty(); }))
    return fail("--tune: nothing to tune for " + base.strategy.chip +
                ": only attention, FFNs, blocks and the mma.sync attention "
                "backward have tiling choices (the attention backward's "
                "wgmma kernel has a fixed tiling)");
  llvm::json::Array list;
  int64_t index = 0;
  // The PTX of each candidate kept: split counts that cover the same key
  // blocks compile to the same kernels, which are timed once.
  llvm::StringMap<std::string> kept;
  for (const auto &candidate : candidates) {
    bpt::CompileOptions options = base;
    llvm::json::Object flags;
    for (auto [flag, value] : candidate) {
      for (const auto &f : kTilingFlags)
        if (StringRef(flag) == f.flag)
          options.strategy.*(f.field) = value;
      flags[flag] = value;
    }
    flags["chunk-rows"] = options.strategy.chunkRows;
    std::string name = llvm::formatv("candidate-{0}", index++).str();
    OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
    // A tiling that does not fit (shared memory, divisibility) is an error
    // of the pass; it is left out, with its message.
    std::string ptxName = name + ".ptx";
    FailureOr<bpt::KernelSet> set =
        bpt::compileKernelSet(*module, options, ptxName);
    if (failed(set)) {
      llvm::errs() << "bpt-compile: --tune: " << name
                   << " left out (see the error above)\n";
      continue;
    }
    // The candidate's flags tune the chip's own kernels: one that falls
    // back (to mma.sync on sm_90a, or to the portable path) is not timed.
    // A split count is for the mma.sync split kernel on every chip (and 1
    // for the chip's own), so there either tensor-core kernel counts.
    bool split = llvm::any_of(candidate, [](const auto &flag) {
      return StringRef(flag.first) == "kv-splits";
    });
    StringRef ptx = set->ptx;
    StringRef own = bpt::getChipInfo(base.strategy.chip).hasWgmma
                        ? "wgmma.mma_async"
                        : "mma.sync.aligned";
    if (!ptx.contains(own) && !(split && ptx.contains("mma.sync.aligned"))) {
      llvm::errs() << "bpt-compile: --tune: " << name << " left out: it has no "
                   << (split ? StringRef("tensor-core") : own.split('.').first)
                   << " kernel (see the remarks above)\n";
      continue;
    }
    auto [same, isNew] = kept.try_emplace(set->ptx, name);
    if (!isNew) {
      llvm::errs() << "bpt-compile: --tune: " << name
                   << " left out: the same kernels as " << same->second
                   << "\n";
      continue;
    }
    std::string manifest;
    llvm::raw_string_ostream ms(manifest);
    ms << llvm::formatv("{0:2}", llvm::json::Value(std::move(set->manifest)))
       << "\n";
    SmallString<128> ptxPath(dir), manifestPath(dir);
    llvm::sys::path::append(ptxPath, name + ".ptx");
    llvm::sys::path::append(manifestPath, name + ".json");
    if (failed(writeFile(ptxPath, set->ptx)) ||
        failed(writeFile(manifestPath, manifest)))
      return 1;
    llvm::json::Object entry{{"name", name},
                             {"manifest", name + ".json"},
                             {"flags", std::move(flags)}};
    if (std::optional<double> ms = predictedAttentionMs(*probe, options))
      entry["predicted_ms"] = *ms;
    list.push_back(std::move(entry));
  }
  if (list.empty())
    return fail("--tune: no candidate takes the tensor-core kernels (see "
                "the remarks); there is no tiling to tune");
  size_t count = list.size();
  std::string tuneJson;
  llvm::raw_string_ostream ts(tuneJson);
  ts << llvm::formatv("{0:2}", llvm::json::Value(llvm::json::Object{
                                   {"candidates", std::move(list)}}))
     << "\n";
  SmallString<128> tunePath(dir);
  llvm::sys::path::append(tunePath, "tune.json");
  if (failed(writeFile(tunePath, tuneJson)))
    return 1;
  llvm::outs() << "bpt-compile: " << count << " candidates in " << dir
               << "; on the GPU machine: bpt-run --tune=" << dir << "\n";
  return 0;
}

/// Checks the flags that need no module; returns --stage parsed.
static FailureOr<bpt::Stage> checkFlags() {
  if (emit != "ptx" && emit != "mlir" && emit != "cubin") {
    fail("--emit must be ptx, mlir or cubin, got '" + emit + "'");
    return failure();
  }
  std::optional<bpt::Stage> lastStage = bpt::parseStage(stage);
  if (!lastStage) {
    fail("--stage must be model, blockwise, linalg, bufferized, gpu or "
         "binary, got '" + stage + "'");
    return failure();
  }
  if (qBlock < 1 || kvBlock < 1) {
    fail("--q-block and --kv-block must be positive");
    return failure();
  }
  if (threads < 32 || threads > 1024 || threads % 32 != 0) {
    fail("--block-threads must be a multiple of 32 in [32, 1024], got " +
         std::to_string(threads));
    return failure();
  }
  if (stage.getNumOccurrences() && emit != "mlir") {
    fail("--stage has no effect without --emit=mlir (kernel sets are always "
         "lowered to the binary stage)");
    return failure();
  }
  if (features.empty())
    features = bpt::defaultPTXFeatures(chip);
  if (std::optional<std::string> why =
          bpt::checkChipAndFeatures(chip, features, "--chip", "--features")) {
    fail(*why);
    return failure();
  }
  return *lastStage;
}

/// The shape flags given on the command line, as "--name".
static std::vector<std::string> givenShapeFlags() {
  std::vector<std::string> given;
  const cl::Option *options[] = {
      &op,     &batch, &heads,      &kvHeads, &seq,   &kvSeq, &headDim,
      &hidden, &ffn,   &activation, &norm,    &dtype, &causal};
  for (const cl::Option *option : options)
    if (option->getNumOccurrences())
      given.push_back(("--" + option->ArgStr).str());
  return given;
}

/// Warns when --recompute-projections repeats no projection (no attention
/// gradient reads one far from where it is computed): the flag would
/// change nothing.
static LogicalResult
warnIneffectiveRecompute(ModuleOp module, const bpt::CompileOptions &options) {
  if (!options.recomputeProjections)
    return success();
  // bpt-rematerialize marks each projection it repeats.
  OwningOpRef<ModuleOp> copy = module.clone();
  if (failed(bpt::lowerToStage(*copy, bpt::Stage::Blockwise, options)))
    return failure();
  bool repeated = false;
  copy->walk([&](bpt::LinearOp op) {
    repeated |= op->hasAttr(bpt::kRecomputedAttrName);
  });
  if (!repeated)
    llvm::errs() << "bpt-compile: warning: --recompute-projections has no "
                    "effect: no projection is read again far from where it "
                    "is computed (a training step's attention gradient "
                    "reads the query, key and value)\n";
  return success();
}

/// Warns about tiling flags given for a kernel path that no op takes: they
/// change nothing, which a user tuning them should know.
static LogicalResult
warnIneffectiveTilingFlags(ModuleOp module,
                           const bpt::CompileOptions &options) {
  struct PathFlags {
    bool bpt::KernelPathsUsed::*path;
    const char *why;
    std::vector<cl::Option *> flags;
  };
  const cl::Option *portableFlags[] = {&qBlock, &kvBlock, &noFuse};
  const PathFlags groups[] = {
      {&bpt::KernelPathsUsed::wgmmaAttention,
       "no attention takes an sm_90a wgmma forward kernel (the attention "
       "backward's has a fixed tiling)",
       {&sm90KvBlock, &sm90Stages}},
      {&bpt::KernelPathsUsed::wgmmaGemm,
       "no GEMM (FFN, projection, block) takes an sm_90a wgmma kernel",
       {&sm90GemmBlockN, &sm90GemmStages}},
      {&bpt::KernelPathsUsed::mmaSyncAttention,
       "no attention takes an mma.sync forward kernel (the attention "
       "backward's tiling is the --sm80-grad-* flags)",
       {&sm80QBlock, &sm80KvBlock, &sm80Stages}},
      {&bpt::KernelPathsUsed::mmaSyncGemm,
       "no GEMM (FFN, projection) takes an mma.sync kernel",
       {&sm80GemmBlockN}},
      {&bpt::KernelPathsUsed::mmaSyncAttentionGrad,
       "no attention backward takes the mma.sync kernel",
       {&sm80GradQBlock, &sm80GradKvBlock, &sm80GradStages}},
      {&bpt::KernelPathsUsed::chunked,
       "no op is cut into chunks of rows (FFNs and blocks on tensor cores)",
       {&chunkRows}},
      {&bpt::KernelPathsUsed::wgmmaFFN,
       "no lone FFN takes the sm_90a wgmma GEMMs (only theirs split a last "
       "wave)",
       {&sm90GemmSplit}},
  };
  // --kv-splits decides whether short queries are split, whichever kernel
  // then takes them (--kv-splits=1 leaves them to the unsplit kernels).
  if (kvSplits.getNumOccurrences()) {
    bool shortQuery = false;
    module.walk([&](bpt::AttentionOp op) {
      shortQuery |=
          op.getQuery().getType().getDimSize(2) <= bpt::kMaxSplitKVQueryRows;
    });
    if (!shortQuery)
      llvm::errs() << "bpt-compile: warning: --kv-splits has no effect: no "
                      "attention has at most "
                   << bpt::kMaxSplitKVQueryRows
                   << " query rows (the ones split over their keys)\n";
  }
  // TF32 covers f32 FFNs; f32 attention and blocks stay portable.
  if (allowTF32) {
    bool f32FFN = false;
    module.walk([&](bpt::FFNOp op) {
      f32FFN |= op.getInput().getType().getElementType().isF32();
    });
    if (!f32FFN)
      llvm::errs() << "bpt-compile: warning: --allow-tf32 has no effect: no "
                      "FFN has f32 operands (f32 attention and blocks stay "
                      "on the portable path)\n";
  }
  bool anyGiven = noGemmTiles.getNumOccurrences() > 0;
  for (const cl::Option *flag : portableFlags)
    anyGiven |= flag->getNumOccurrences() > 0;
  for (const PathFlags &group : groups)
    for (cl::Option *flag : group.flags)
      anyGiven |= flag->getNumOccurrences() > 0;
  if (!anyGiven)
    return success();
  FailureOr<bpt::KernelPathsUsed> used = bpt::kernelPathsUsed(module, options);
  if (failed(used))
    return failure();
  // The portable block sizes and fusion apply to the portable attention
  // loops only: other portable ops (an FFN, a projection) take neither.
  for (const cl::Option *flag : portableFlags)
    if (flag->getNumOccurrences() && used->portableBlocks.empty())
      llvm::errs() << "bpt-compile: warning: --" << flag->ArgStr
                   << " has no effect: no "
                   << (used->portable ? "attention" : "op")
                   << " takes the portable path (tensor-core kernels take "
                      "their tilings from the --sm90-* / --sm80-* flags)\n";
  if (noGemmTiles.getNumOccurrences() && !used->portable)
    llvm::errs() << "bpt-compile: warning: --no-gemm-tiles has no effect: no "
                    "op takes the portable path\n";
  // A block larger than the sequence it tiles is clamped to it.
  for (auto [flag, value, first, what] :
       {std::make_tuple(&qBlock, int64_t(qBlock), true, "query"),
        std::make_tuple(&kvBlock, int64_t(kvBlock), false, "key/value")}) {
    if (!flag->getNumOccurrences())
      continue;
    std::set<int64_t> clamped;
    for (auto [q, kv] : used->portableBlocks)
      if ((first ? q : kv) < value)
        clamped.insert(first ? q : kv);
    if (clamped.empty())
      continue;
    llvm::errs() << "bpt-compile: warning: --" << flag->ArgStr << "="
                 << value << " is larger than the " << what
                 << " sequence: clamped to ";
    llvm::interleave(clamped, llvm::errs(), " / ");
    llvm::errs() << " rows (one block covers the sequence)\n";
  }
  for (const PathFlags &group : groups)
    for (cl::Option *flag : group.flags)
      if (flag->getNumOccurrences() && !((*used).*group.path))
        llvm::errs() << "bpt-compile: warning: --" << flag->ArgStr
                     << " has no effect: " << group.why << "\n";
  return success();
}

/// The model-level module: built from the shape flags, or parsed from the
/// input file (its diagnostics through `sourceMgr`). Null on failure, with
/// the error printed.
static OwningOpRef<ModuleOp> loadModule(MLIRContext &context,
                                        llvm::SourceMgr &sourceMgr) {
  if (input.empty()) {
    // In these flags 0 stands for the default (the same as --heads, --seq;
    // 4 x --hidden): given explicitly it is a mistake, not that default.
    for (cl::opt<int64_t> *flag : {&kvHeads, &kvSeq, &hidden, &ffn})
      if (flag->getNumOccurrences() && *flag == 0) {
        fail("--" + flag->ArgStr + " must be positive, got 0");
        return nullptr;
      }
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
    spec.backward = backward;
    spec.queryChunk = queryChunk;
    spec.lse = lse;
    spec.scale = scale;
    // The flags as given (buildModel fills defaults in `spec`), checked
    // once their values are known to be valid.
    const bpt::ModelSpec given = spec;
    llvm::Expected<OwningOpRef<ModuleOp>> built =
        bpt::buildModel(spec, context);
    if (!built) {
      fail(llvm::toString(built.takeError()));
      return nullptr;
    }
    if (llvm::Error error =
            bpt::checkShapeFlagsApply(given, givenShapeFlags(), false)) {
      fail(llvm::toString(std::move(error)));
      return nullptr;
    }
    return std::move(*built);
  }
  if (llvm::Error error = bpt::checkShapeFlagsApply(
          bpt::ModelSpec(), givenShapeFlags(), /*fromFile=*/true)) {
    fail(llvm::toString(std::move(error)));
    return nullptr;
  }
  if (failed(checkRegularFile(input, "input")))
    return nullptr;
  std::string error;
  auto file = openInputFile(input, &error);
  if (!file) {
    fail(error);
    return nullptr;
  }
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  return parseSourceFile<ModuleOp>(sourceMgr, &context);
}

/// The compile options from the flags, then from a --tuning file, checked.
static FailureOr<bpt::CompileOptions> compileOptionsFromFlags() {
  bpt::CompileOptions options;
  bpt::StrategyOptions &strategy = options.strategy;
  strategy.chip = chip;
  strategy.tensorCores = !noTensorCores;
  strategy.allowTF32 = allowTF32;
  strategy.qBlock = qBlock;
  strategy.kvBlock = kvBlock;
  // The tiling flags (also set by --tuning files) from their table.
  for (const auto &f : kTilingFlags)
    strategy.*(f.field) = *f.option;
  options.fuse = !noFuse;
  options.recomputeProjections = recomputeProjections;
  options.tileGemms = !noGemmTiles;
  options.features = features;
  options.threads = threads;
  if (!tuning.empty())
    if (failed(applyTuning(tuning, options)))
      return failure();
  if (std::optional<std::string> why =
          bpt::checkStrategyOptions(options.strategy)) {
    fail("--" + *why);
    return failure();
  }
  return options;
}

/// --tune: the candidates' kernel sets into the directory -o names.
static int emitTuningCandidates(ModuleOp module,
                                const bpt::CompileOptions &options,
                                MLIRContext &context) {
  if (emit != "ptx")
    return fail("--tune writes kernel sets: it takes no --emit");
  if (output.getNumOccurrences() == 0)
    return fail("--tune needs -o DIR (the candidates' directory)");
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  return writeCandidates(text, options, output, context);
}

/// --emit=mlir: the module lowered up to `lastStage`, to -o or stdout.
static int emitMLIR(ModuleOp module, bpt::Stage lastStage,
                    const bpt::CompileOptions &options) {
  if (failed(bpt::lowerToStage(module, lastStage, options)))
    return 1;
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os);
  if (output.getNumOccurrences() == 0) {
    llvm::outs() << text;
    return 0;
  }
  return failed(writeFile(output, text)) ? 1 : 0;
}

/// --emit=cubin: assembles the written PTX with ptxas.
static int assembleCubin(StringRef ptxPath) {
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
  return 0;
}

/// The kernel set: <o>.ptx and <o>.json, and <o>.cubin with --emit=cubin.
static int emitKernelSet(ModuleOp module, const bpt::CompileOptions &options) {
  std::string ptxPath = output + ".ptx", manifestPath = output + ".json";
  FailureOr<bpt::KernelSet> set = bpt::compileKernelSet(
      module, options, llvm::sys::path::filename(ptxPath));
  if (failed(set))
    return 1;
  std::string manifest;
  llvm::raw_string_ostream ms(manifest);
  ms << llvm::formatv("{0:2}", llvm::json::Value(std::move(set->manifest)))
     << "\n";
  if (failed(writeFile(ptxPath, set->ptx)) ||
      failed(writeFile(manifestPath, manifest)))
    return 1;
  std::vector<std::string> unresolved =
      bpt::unresolvedLibdeviceFunctions(set->ptx);
  if (!unresolved.empty())
    llvm::errs() << "bpt-compile: warning: " << ptxPath
                 << " calls libdevice functions that were not linked ("
                 << llvm::join(unresolved, ", ")
                 << "): math that bpt-math-to-intrinsics does not lower (f32 "
                    "only), and no CUDA toolkit was found to link them "
                    "(CUDA_ROOT, CUDA_HOME, CUDA_PATH); a driver will not "
                    "load it; point CUDA_HOME at a toolkit and compile "
                    "again\n";
  if (emit == "cubin")
    return assembleCubin(ptxPath);
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  cl::HideUnrelatedOptions(compileCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "bpt-compile: compile a transformer op or block, given by shapes or a "
      "model-level .mlir file, to PTX and a launch manifest\n");
  FailureOr<bpt::Stage> lastStage = checkFlags();
  if (failed(lastStage))
    return 1;

  DialectRegistry registry;
  bpt::registerBPTDialect(registry);
  MLIRContext context(registry);
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  OwningOpRef<ModuleOp> module = loadModule(context, sourceMgr);
  if (!module)
    return 1;
  FailureOr<bpt::CompileOptions> options = compileOptionsFromFlags();
  if (failed(options))
    return 1;
  if (!tune && (emit != "mlir" || *lastStage >= bpt::Stage::Blockwise) &&
      (failed(warnIneffectiveTilingFlags(*module, *options)) ||
       failed(warnIneffectiveRecompute(*module, *options))))
    return 1;
  if (tune)
    return emitTuningCandidates(*module, *options, context);
  if (emit == "mlir")
    return emitMLIR(*module, *lastStage, *options);
  return emitKernelSet(*module, *options);
}
