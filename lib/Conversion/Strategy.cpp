//===- Strategy.cpp - the kernel strategy of each op ------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Each op is offered the paths its chip has, fastest first: wgmma (sm_90a),
// then mma.sync (sm_80 and later), then the portable blockwise loops, which
// take anything. A path that does not take the op says why, in a remark.
// The eligibility rules are the kernels' own limits (element types, head
// dimensions, divisibility, shared memory); the tilings come from pinned
// options, else the attention cost model or the GEMM kernels' rules.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Strategy.h"

#include "AttentionNest.h"
#include "NormKernel.h"
#include "SM80Kernels.h"
#include "SM90Kernels.h"
#include "StrategyOps.h"

#include "bpt/Conversion/AttentionCostModel.h"
#include "bpt/Target/Chip.h"

#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace bpt;

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

std::optional<std::string>
bpt::checkStrategyOptions(const StrategyOptions &o) {
  auto oneOf = [](int64_t v, std::initializer_list<int64_t> allowed) {
    return llvm::is_contained(allowed, v);
  };
  auto inRange = [](int64_t v, int64_t lo, int64_t hi) {
    return v == 0 || (v >= lo && v <= hi);
  };
  // A chip LLVM's NVPTX back end does not know fails late and unlocated
  // there (or silently writes `.target sm_junk`).
  if (!minimumPTXVersion(o.chip))
    return "chip: unknown chip '" + o.chip +
           "' (LLVM's NVPTX back end supports " + supportedChipList() + ")";
  if (o.qBlock < 1)
    return llvm::formatv("q-block must be positive, got {0}", o.qBlock).str();
  if (o.kvBlock < 1)
    return llvm::formatv("kv-block must be positive, got {0}", o.kvBlock).str();
  // Tilings are 32-bit in the kernels and in the manifest's options.
  for (auto [name, value] :
       {std::pair<const char *, int64_t>{"q-block", o.qBlock},
        {"kv-block", o.kvBlock},
        {"chunk-rows", o.chunkRows}})
    if (value > INT32_MAX)
      return llvm::formatv("{0} must be at most {1}, got {2}", name, INT32_MAX,
                           value)
          .str();
  if (o.chunkRows < 0 || o.chunkRows % 128 != 0)
    return llvm::formatv("chunk-rows must be 0 or a positive multiple of "
                         "128, got {0}",
                         o.chunkRows)
        .str();
  // wgmma's N (scores) and k16 steps (P·V): multiples of 16; at least 64.
  if (!oneOf(o.sm90KvBlock, {0, 64, 80, 96, 112, 128}))
    return llvm::formatv("sm90-kv-block must be 0, 64, 80, 96, 112 or 128, "
                         "got {0}",
                         o.sm90KvBlock)
        .str();
  if (!inRange(o.sm90Stages, 2, 4))
    return llvm::formatv("sm90-stages must be 0 or in [2, 4], got {0}",
                         o.sm90Stages)
        .str();
  if (!oneOf(o.gemmBlockN, {0, 128, 256}))
    return llvm::formatv("sm90-gemm-block-n must be 0, 128 or 256, got {0}",
                         o.gemmBlockN)
        .str();
  if (!inRange(o.gemmStages, 2, 8))
    return llvm::formatv("sm90-gemm-stages must be 0 or in [2, 8], got {0}",
                         o.gemmStages)
        .str();
  if (!inRange(o.gemmSplit, 1, kMaxStrategyGemmSplit))
    return llvm::formatv("sm90-gemm-split must be 0 or in [1, {0}], got {1}",
                         kMaxStrategyGemmSplit, o.gemmSplit)
        .str();
  if (!oneOf(o.sm80QBlock, {0, 64, 128}))
    return llvm::formatv("sm80-q-block must be 0, 64 or 128, got {0}",
                         o.sm80QBlock)
        .str();
  if (!oneOf(o.sm80KvBlock, {0, 32, 64, 128}))
    return llvm::formatv("sm80-kv-block must be 0, 32, 64 or 128, got {0}",
                         o.sm80KvBlock)
        .str();
  if (!inRange(o.sm80Stages, 2, 4))
    return llvm::formatv("sm80-stages must be 0 or in [2, 4], got {0}",
                         o.sm80Stages)
        .str();
  if (o.kvSplits < 0 || o.kvSplits > kMaxKVSplits)
    return llvm::formatv("kv-splits must be in [0, {0}], got {1}",
                         kMaxKVSplits, o.kvSplits)
        .str();
  if (!oneOf(o.sm80GradQBlock, {0, 32, 64}))
    return llvm::formatv("sm80-grad-q-block must be 0, 32 or 64, got {0}",
                         o.sm80GradQBlock)
        .str();
  if (!oneOf(o.sm80GradKvBlock, {0, 64, 128}))
    return llvm::formatv("sm80-grad-kv-block must be 0, 64 or 128, got {0}",
                         o.sm80GradKvBlock)
        .str();
  if (!inRange(o.sm80GradStages, 2, 4))
    return llvm::formatv("sm80-grad-stages must be 0 or in [2, 4], got {0}",
                         o.sm80GradStages)
        .str();
  if (!oneOf(o.sm80GemmBlockN, {0, 128, 256}))
    return llvm::formatv("sm80-gemm-block-n must be 0, 128 or 256, got {0}",
                         o.sm80GemmBlockN)
        .str();
  return std::nullopt;
}

namespace {

/// Why a path does not take an op, or nothing when it does.
using Refusal = std::optional<std::string>;

Refusal checkTensorCoreElement(Type element, StringRef path) {
  if (element.isBF16() || element.isF16())
    return std::nullopt;
  std::string name;
  llvm::raw_string_ostream(name) << element;
  return llvm::formatv("element type {0} (the {1} path takes bf16 and f16)",
                       name, path)
      .str();
}

Refusal checkHeadDim(int64_t headDim) {
  if (headDim == 64 || headDim == 128)
    return std::nullopt;
  return llvm::formatv("head dimension {0} (64 and 128 are supported)", headDim)
      .str();
}

/// The wgmma attention forward's head dimensions (AttentionKernelConfig:
/// 64 and 128 as they are; 32, 80 and 96 padded to whole 64-column blocks
/// by TMA's zero fill; 192 and 256 with the narrower key blocks the cost
/// model gives them).
Refusal checkWgmmaForwardHeadDim(int64_t headDim) {
  if (sm90::AttentionKernelConfig::takesHeadDim(headDim))
    return std::nullopt;
  return llvm::formatv("head dimension {0} (32, 64, 80, 96, 128, 192 and 256 "
                       "are supported)",
                       headDim)
      .str();
}

/// The mma.sync attention forward: k16 steps over the head dim, at most 256
/// columns (the output accumulators take D/2 registers a thread; above 128
/// the kernel reloads Q's fragments from shared memory at every key block).
constexpr int64_t kMaxMmaSyncHeadDim = 256;
Refusal checkMmaSyncAttentionHeadDim(int64_t headDim) {
  if (headDim % 16 == 0 && headDim <= kMaxMmaSyncHeadDim)
    return std::nullopt;
  return llvm::formatv("head dimension {0} (multiples of 16 up to {1} are "
                       "supported)",
                       headDim, kMaxMmaSyncHeadDim)
      .str();
}

/// CUDA's grid limit along y and z (every chip since sm_30; x takes
/// 2^31 - 1). The tensor-core kernels put heads and batch, or a GEMM's row
/// tiles, there.
constexpr int64_t kMaxGridYZ = 65535;
/// Rows (all dimensions but the last) that a tensor-core kernel's 32-bit
/// TMA coordinates and row offsets address.
constexpr int64_t kMaxKernelRows = (int64_t(1) << 31) - 1;

/// What every tensor-core attention kernel needs of Q [B, Hq, Sq, D] and K
/// [B, Hkv, Skv, D] whatever its tiling: rows its 32-bit offsets address,
/// heads and batch within the grid's y and z. Checked before the cost
/// model, which need not consider launches that cannot exist.
Refusal checkAttentionGrid(ArrayRef<int64_t> q, ArrayRef<int64_t> kv) {
  // The verifier bounds each tensor's bytes by 2^62: these cannot overflow.
  if (q[0] * q[1] * q[2] > kMaxKernelRows ||
      kv[0] * kv[1] * kv[2] > kMaxKernelRows)
    return std::string("more rows than 32-bit row offsets and TMA "
                       "coordinates address");
  if (q[1] > kMaxGridYZ || q[0] > kMaxGridYZ)
    return llvm::formatv("{0} heads and batch {1}: a grid's y and z take at "
                         "most {2} blocks",
                         q[1], q[0], kMaxGridYZ)
        .str();
  return std::nullopt;
}

/// A GEMM launch's grid: `rows / blockM` blocks along y.
Refusal checkGemmGridRows(int64_t rows, int64_t blockM) {
  if ((rows + blockM - 1) / blockM <= kMaxGridYZ)
    return std::nullopt;
  return llvm::formatv("{0} rows in {1}-row tiles exceed a grid's {2} blocks "
                       "along y",
                       rows, blockM, kMaxGridYZ)
      .str();
}

/// What a wgmma attention kernel (forward or backward) with `config`'s
/// blocks needs of Q [B, Hq, Sq, D] and K [B, Hkv, Skv, D] beside its head
/// dimension and sequences (which the callers check: the forward takes any
/// length): rows that 32-bit TMA coordinates address, and its shared
/// memory.
template <typename Config>
Refusal checkWgmmaAttentionKernel(ArrayRef<int64_t> q, ArrayRef<int64_t> kv,
                                  const Config &config, int64_t sharedMemory) {
  if (Refusal why = checkAttentionGrid(q, kv))
    return why;
  if (config.sharedMemoryBytes() > sharedMemory)
    return llvm::formatv("needs {0} bytes of shared memory, {1} available",
                         config.sharedMemoryBytes(), sharedMemory)
        .str();
  return std::nullopt;
}

/// The FFN and block kernels' chunks: see kMaxUnrolledChunks.
Refusal checkUnrolledChunks(int64_t rows, int64_t chunk) {
  if (rows / chunk <= kMaxUnrolledChunks)
    return std::nullopt;
  return llvm::formatv("{0} chunks of {1} rows, each its own launch "
                       "sequence: at most {2} (raise chunk-rows)",
                       rows / chunk, chunk, kMaxUnrolledChunks)
      .str();
}

/// The chunk of a block whose sequences are `span` rows (a multiple of
/// 128: the block's token-major attention takes whole 128-row blocks) and
/// chunk-rows `chunkRows`: the largest multiple of 128 up to chunkRows
/// that divides the span, as a chunk lies in one sequence.
int64_t chunkDividing(int64_t span, int64_t chunkRows) {
  // chunkRows is a multiple of 128, but for a chunk recorded by hand.
  int64_t chunk = std::max<int64_t>(128, std::min(chunkRows, span) / 128 * 128);
  while (span % chunk != 0)
    chunk -= 128;
  return chunk;
}

/// The smallest multiple of 128 above `chunk` that divides `span` and
/// leaves at most kMaxUnrolledChunks chunks of `rows`; `chunk` when there
/// is none.
int64_t raisedChunk(int64_t rows, int64_t span, int64_t chunk) {
  for (int64_t c = chunk + 128; c <= span; c += 128)
    if (span % c == 0 && rows / c <= kMaxUnrolledChunks)
      return c;
  return chunk;
}

/// Decides one op: the context every path's rule needs.
class Selector {
public:
  Selector(Operation *op, const StrategyOptions &options, bool remarks)
      : op(op), options(options), remarks(remarks),
        chip(getChipInfo(options.chip)),
        sharedMemory(chip.sharedMemoryPerBlock) {}

  FailureOr<StrategyAttr> select();

private:
  Operation *op;
  const StrategyOptions &options;
  bool remarks;
  ChipInfo chip;
  int64_t sharedMemory;

  MLIRContext *ctx() { return op->getContext(); }
  StrategyAttr make(KernelPath path, int64_t qBlock = 0, int64_t kvBlock = 0,
                    int64_t stages = 0, int64_t warps = 0,
                    int64_t chunkRows = 0, int64_t gemmBlockN = 0,
                    int64_t gemmStages = 0, int64_t gemmSplit = 0,
                    int64_t kvSplits = 0) {
    return StrategyAttr::get(ctx(), path, options.chip, qBlock, kvBlock, stages,
                             warps, chunkRows, gemmBlockN, gemmStages,
                             gemmSplit, kvSplits);
  }
  StrategyAttr portable(int64_t qBlock = 0, int64_t kvBlock = 0) {
    return make(KernelPath::portable, qBlock, kvBlock);
  }
  void refuse(StringRef what, StringRef path, const std::string &why) {
    if (remarks)
      op->emitRemark() << what << " does not take the " << path
                       << " path: " << why;
  }
  bool wgmma() {
    return options.tensorCores && options.allowWgmma && chip.hasWgmma;
  }
  bool mmaSync() { return options.tensorCores && chip.hasMmaSync; }

  /// The chunk of the block's `rows` rows, whose sequences are `span` rows
  /// (see chunkDividing), raised where more than kMaxUnrolledChunks chunks
  /// would be unrolled, with a remark; GEMM row tiles of `blockM` within
  /// grid y.
  Refusal chooseBlockChunk(int64_t rows, int64_t span, int64_t blockM,
                           int64_t &chunk);
  /// The chunk of an FFN of `rows` rows: all of them up to chunk-rows;
  /// above, the fewest chunks of at most chunk-rows rows (at most
  /// kMaxUnrolledChunks: the chunk is raised, with a remark, where more
  /// would be unrolled), as equal as whole 128-row tiles allow. The rows
  /// past the last whole chunk are a shorter last chunk (bpt-chunk-ffn's
  /// tail), so the row tiles are as few as the rows allow and no chunk is
  /// a sliver. A recorded chunk is taken as it is. GEMM row tiles of
  /// `blockM` within grid y.
  Refusal chooseFFNChunk(int64_t rows, int64_t blockM, int64_t &chunk);
  /// The remark that a chunk of `wanted` rows was raised to `chunk` to
  /// keep the unrolled chunks within kMaxUnrolledChunks.
  void remarkChunkRaised(int64_t wanted, int64_t chunk) {
    if (remarks)
      op->emitRemark() << "chunk rows raised from " << wanted << " to " << chunk
                       << ": at most " << kMaxUnrolledChunks
                       << " chunks are unrolled into launches";
  }
  FailureOr<StrategyAttr> selectAttention(AttentionOp op);
  FailureOr<StrategyAttr> selectAttentionGrad(AttentionGradOp op);
  Refusal attentionGradWgmma(AttentionGradOp op, StrategyAttr &strategy);
  Refusal attentionGradMmaSync(AttentionGradOp op, StrategyAttr &strategy);
  FailureOr<StrategyAttr> selectFFN(FFNOp op);
  StrategyAttr portableFFN(int64_t rows);
  FailureOr<StrategyAttr> selectLinear(LinearOp op);
  StrategyAttr selectGradientGemm(StringRef name, Type element, int64_t rows,
                                  ArrayRef<int64_t> widths, bool chunked);
  FailureOr<StrategyAttr> selectMatmul(MatmulOp op);
  FailureOr<StrategyAttr> selectBlock(TransformerBlockOp op);
  StrategyAttr selectNorm(Operation *norm);
  Refusal attentionWgmma(AttentionOp op, StrategyAttr &strategy);
  /// The wgmma attention kernel's key/value block and stages for
  /// `problem`: the pinned options, the rest from the cost model.
  AttentionTiling wgmmaAttentionTiling(const AttentionProblem &problem) {
    AttentionTiling pinned{128, options.sm90KvBlock, options.sm90Stages};
    AttentionTiling tiling{128, pinned.blockN ? pinned.blockN : 128,
                           pinned.stages ? pinned.stages : 2};
    if (!pinned.blockN || !pinned.stages)
      if (std::optional<AttentionTiling> chosen = chooseAttentionTiling(
              AttentionKernelKind::Wgmma, problem,
              ChipModel::forChip(options.chip), sharedMemory, pinned))
        tiling = *chosen;
    return tiling;
  }
  Refusal attentionMmaSync(AttentionOp op, StrategyAttr &strategy);
  /// The split-K/V schedule on the mma.sync kernel for short queries;
  /// nothing (no remark) for queries too long to be worth it.
  Refusal attentionSplitKV(AttentionOp op, StrategyAttr &strategy);
};

Refusal Selector::chooseBlockChunk(int64_t rows, int64_t span, int64_t blockM,
                                   int64_t &chunk) {
  chunk = chunkDividing(span, options.chunkRowsOrDefault());
  if (rows / chunk > kMaxUnrolledChunks) {
    int64_t wanted = chunk;
    chunk = raisedChunk(rows, span, chunk);
    if (Refusal why = checkUnrolledChunks(rows, chunk))
      return why;
    remarkChunkRaised(wanted, chunk);
  }
  return checkGemmGridRows(chunk, blockM);
}

Refusal Selector::chooseFFNChunk(int64_t rows, int64_t blockM, int64_t &chunk) {
  chunk = rows;
  if (options.chunkRowsRecorded) {
    chunk = std::min(options.chunkRows, rows);
    if (Refusal why = checkUnrolledChunks(rows + chunk - 1, chunk))
      return why;
  } else if (int64_t wanted = options.chunkRowsOrDefault(); rows > wanted) {
    int64_t chunks = (rows + wanted - 1) / wanted;
    bool raised = chunks > kMaxUnrolledChunks;
    chunks = std::min(chunks, kMaxUnrolledChunks);
    chunk = ((rows + chunks - 1) / chunks + 127) / 128 * 128;
    if (raised)
      remarkChunkRaised(wanted, chunk);
  }
  return checkGemmGridRows(chunk, blockM);
}

FailureOr<StrategyAttr> Selector::select() {
  return llvm::TypeSwitch<Operation *, FailureOr<StrategyAttr>>(op)
      .Case([&](AttentionOp a) { return selectAttention(a); })
      .Case([&](AttentionGradOp g) { return selectAttentionGrad(g); })
      .Case([&](FFNOp f) { return selectFFN(f); })
      .Case([&](LinearOp l) { return selectLinear(l); })
      .Case([&](LinearGradOp g) {
        RankedTensorType x = g.getInput().getType();
        ArrayRef<int64_t> w = g.getWeight().getType().getShape();
        return selectGradientGemm("linear_grad", x.getElementType(),
                                  x.getNumElements() / x.getShape().back(),
                                  {w[0], w[1]}, /*chunked=*/false);
      })
      .Case([&](FFNGradOp g) {
        RankedTensorType x = g.getInput().getType();
        ArrayRef<int64_t> w = g.getWIn().getType().getShape();
        return selectGradientGemm("ffn_grad", x.getElementType(),
                                  x.getNumElements() / x.getShape().back(),
                                  {w[0], w[1]}, /*chunked=*/true);
      })
      .Case([&](MatmulOp m) { return selectMatmul(m); })
      .Case<LayerNormOp, RMSNormOp>(
          [&](Operation *norm) { return selectNorm(norm); })
      // The norms' gradients are row-wise loops on every target (their
      // weight gradients sum over rows, which the row kernel does not).
      .Case<LayerNormGradOp, RMSNormGradOp>(
          [&](Operation *) { return portable(); })
      .Case([&](TransformerBlockOp b) { return selectBlock(b); })
      .Default([](Operation *) { return StrategyAttr(); });
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

Refusal Selector::attentionWgmma(AttentionOp op, StrategyAttr &strategy) {
  RankedTensorType qType = op.getQuery().getType();
  RankedTensorType kvType = op.getKey().getType();
  if (Refusal why = checkTensorCoreElement(qType.getElementType(), "wgmma"))
    return why;
  ArrayRef<int64_t> q = qType.getShape(), kv = kvType.getShape();
  if (Refusal why = checkAttentionGrid(q, kv))
    return why;
  if (Refusal why = checkWgmmaForwardHeadDim(q[3]))
    return why;
  // Any sequence lengths: TMA zero-fills a ragged block's rows past the
  // end, the last key block masks them (head-major only; the block's
  // token-major kernel takes whole blocks).
  sm90::AttentionKernelConfig config{};
  config.headDim = q[3];
  AttentionTiling tiling = wgmmaAttentionTiling(
      AttentionProblem{q[0], q[1], q[2], kv[2], q[3], op.getCausal()});
  config.blockN = tiling.blockN;
  config.stages = tiling.stages;
  if (Refusal why = checkWgmmaAttentionKernel(q, kv, config, sharedMemory))
    return why;
  strategy = make(KernelPath::wgmma, config.blockM, config.blockN,
                  config.stages, config.threads() / 32);
  return std::nullopt;
}

Refusal Selector::attentionMmaSync(AttentionOp op, StrategyAttr &strategy) {
  RankedTensorType qType = op.getQuery().getType();
  if (Refusal why = checkTensorCoreElement(qType.getElementType(), "mma.sync"))
    return why;
  ArrayRef<int64_t> q = qType.getShape();
  if (Refusal why = checkMmaSyncAttentionHeadDim(q[3]))
    return why;
  if (Refusal why = checkAttentionGrid(q, op.getKey().getType().getShape()))
    return why;
  AttentionTiling pinned{options.sm80QBlock, options.sm80KvBlock,
                         options.sm80Stages};
  // Above 128 columns, 128-key blocks' scores would not fit beside the
  // output accumulators in registers.
  if (q[3] > 128 && !pinned.blockN)
    pinned.blockN = 64;
  AttentionTiling tiling = {pinned.blockM ? pinned.blockM : 64,
                            pinned.blockN ? pinned.blockN : 64,
                            pinned.stages ? pinned.stages : 2};
  if (!pinned.blockM || !pinned.blockN || !pinned.stages) {
    AttentionProblem problem{q[0], q[1], q[2],
                             op.getKey().getType().getDimSize(2), q[3],
                             op.getCausal()};
    if (std::optional<AttentionTiling> chosen =
            chooseAttentionTiling(AttentionKernelKind::MmaSync, problem,
                                  ChipModel::forChip(options.chip), sharedMemory, pinned))
      tiling = *chosen;
  }
  sm80::AttentionKernelConfig config{};
  config.headDim = q[3];
  config.blockM = tiling.blockM;
  config.blockN = tiling.blockN;
  config.stages = tiling.stages;
  if (config.sharedMemoryBytes() > sharedMemory)
    return llvm::formatv("needs {0} bytes of shared memory, {1} available",
                         config.sharedMemoryBytes(), sharedMemory)
        .str();
  strategy = make(KernelPath::mma_sync, config.blockM, config.blockN,
                  config.stages, config.warps());
  return std::nullopt;
}

Refusal Selector::attentionSplitKV(AttentionOp op, StrategyAttr &strategy) {
  // Pinned "never split", or no keys to split: the unsplit kernels, quietly.
  RankedTensorType qType = op.getQuery().getType();
  ArrayRef<int64_t> q = qType.getShape();
  ArrayRef<int64_t> kv = op.getKey().getType().getShape();
  if (options.kvSplits == 1)
    return std::nullopt;
  if (op.getLse())
    return std::string("the log-sum-exp is asked for (a training forward "
                       "keeps the unsplit kernels)");
  if (Refusal why = checkTensorCoreElement(qType.getElementType(), "mma.sync"))
    return why;
  if (Refusal why = checkMmaSyncAttentionHeadDim(q[3]))
    return why;
  if (Refusal why = checkAttentionGrid(q, kv))
    return why;
  if (options.sm80QBlock)
    return llvm::formatv("sm80-q-block={0} is pinned (the split kernel's rows "
                         "are the packed query rows of a key/value group)",
                         options.sm80QBlock)
        .str();
  // The query heads of a group share their keys: their rows are one tile.
  sm80::AttentionKernelConfig config{};
  fillAttentionShape(config, qType, op.getKey().getType());
  config.packedHeads = q[1] / kv[1];
  int64_t rows = config.packedRows();
  if (rows > 128)
    return llvm::formatv("{0} query heads of {1} rows a key/value group are "
                         "{2} rows (at most 128 are packed)",
                         config.packedHeads, q[2], rows)
        .str();
  config.blockM = (rows + sm80::kWarpRows - 1) / sm80::kWarpRows *
                  sm80::kWarpRows;
  // Memory-bound: small key blocks and two stages keep a block's shared
  // memory small, so that several stream keys on one multiprocessor; above
  // D 64, 32-row blocks (with 64, ptxas spills the split kernel at D 128:
  // 255 registers and 56 bytes of spills, against 226 and none).
  config.blockN = options.sm80KvBlock ? options.sm80KvBlock
                                      : (q[3] > 64 ? 32 : 64);
  config.stages = options.sm80Stages ? options.sm80Stages : 2;
  if (config.sharedMemoryBytes() > sharedMemory)
    return llvm::formatv("needs {0} bytes of shared memory, {1} available",
                         config.sharedMemoryBytes(), sharedMemory)
        .str();
  int64_t blocksPerSM = std::min<int64_t>(
      16, std::max<int64_t>(1, chip.sharedMemoryPerSM /
                                   config.sharedMemoryBytes()));
  int64_t keyBlocks = config.keyBlocks();
  int64_t splits = options.kvSplits
                       ? coveringKVSplits(keyBlocks,
                                          std::min(options.kvSplits, keyBlocks))
                       : chooseKVSplits(q[0] * kv[1], keyBlocks, blocksPerSM,
                                        ChipModel::forChip(options.chip),
                                        maxKVSplitsForTraffic(kv[2], rows));
  if (remarks && options.kvSplits && splits != options.kvSplits)
    op->emitRemark() << "kv-splits=" << options.kvSplits << " over "
                     << keyBlocks << " key blocks of " << config.blockN
                     << " rows: " << splits
                     << " splits cover them (none empty)";
  if (splits <= 1)
    return std::nullopt;
  strategy = make(KernelPath::mma_sync, config.blockM, config.blockN,
                  config.stages, config.warps(), 0, 0, 0, 0, splits);
  return std::nullopt;
}

FailureOr<StrategyAttr> Selector::selectAttention(AttentionOp op) {
  StrategyAttr strategy;
  if (op.getQuery().getType().getDimSize(2) <= kMaxSplitKVQueryRows &&
      mmaSync()) {
    if (Refusal why = attentionSplitKV(op, strategy))
      refuse("attention", "split-K/V", *why);
    else if (strategy)
      return strategy;
  }
  if (wgmma()) {
    if (Refusal why = attentionWgmma(op, strategy))
      refuse("attention", "wgmma", *why);
    else
      return strategy;
  }
  if (mmaSync()) {
    if (Refusal why = attentionMmaSync(op, strategy))
      refuse("attention", "mma.sync", *why);
    else
      return strategy;
  }
  return portable(options.qBlock, options.kvBlock);
}

Refusal Selector::attentionGradWgmma(AttentionGradOp op,
                                     StrategyAttr &strategy) {
  RankedTensorType qType = op.getQuery().getType();
  if (Refusal why = checkTensorCoreElement(qType.getElementType(), "wgmma"))
    return why;
  ArrayRef<int64_t> q = qType.getShape();
  ArrayRef<int64_t> kv = op.getKey().getType().getShape();
  // The kernel's tiling follows from the head dim: 128-row key blocks, two
  // stages, query blocks of 128 rows at D = 64 and of 80 at D = 128, whose
  // dK and dV accumulators leave no registers for 128-row scores (dQ
  // computed transposed: 12-16% faster than 64-row blocks, causal or not;
  // hopper.md version 10l). The sm90 tiling options are the forward's.
  sm90::AttentionGradKernelConfig config{};
  config.headDim = q[3];
  config.blockM = config.headDim == 64 ? 128 : 80;
  if (Refusal why = checkHeadDim(config.headDim))
    return why;
  // Any sequence lengths: a ragged one is read through 3-D tensor maps,
  // its query side's f32 arrays padded to whole query blocks, whose rows
  // the kernel's 32-bit offsets must address too.
  config.seqQ = q[2];
  SmallVector<int64_t> paddedQ(q);
  paddedQ[2] = config.paddedSeqQ();
  if (Refusal why =
          checkWgmmaAttentionKernel(paddedQ, kv, config, sharedMemory))
    return why;
  strategy = make(KernelPath::wgmma, config.blockM, config.blockN,
                  config.stages, config.threads() / 32);
  return std::nullopt;
}

Refusal Selector::attentionGradMmaSync(AttentionGradOp op,
                                       StrategyAttr &strategy) {
  RankedTensorType qType = op.getQuery().getType();
  if (Refusal why = checkTensorCoreElement(qType.getElementType(), "mma.sync"))
    return why;
  ArrayRef<int64_t> q = qType.getShape();
  ArrayRef<int64_t> kv = op.getKey().getType().getShape();
  if (Refusal why = checkHeadDim(q[3]))
    return why;
  // The kernel's tiling: 128-row key blocks (8 warps), 64-row query
  // blocks, two stages; where the chip's shared memory does not hold that
  // (D 128 on sm_86 / sm_89's 99 KiB), 64-row key blocks (4 warps) and
  // 32-row query blocks (a warp's dK and dV accumulators are [16, D] f32
  // either way). Any sequence lengths: a ragged one's last blocks are
  // zero-filled by the copies, its query side's f32 arrays padded to whole
  // query blocks (whose rows 32-bit row indices must address).
  sm80::AttentionGradKernelConfig config{};
  config.headDim = q[3];
  if (q[0] * q[1] * (q[2] + 63) >= (int64_t(1) << 31) ||
      kv[0] * kv[1] * (kv[2] + 127) >= (int64_t(1) << 31))
    return std::string("more rows than 32-bit row indices address");
  if (options.sm80GradQBlock || options.sm80GradKvBlock ||
      options.sm80GradStages) {
    // Pinned (a flag, --tune or a recorded strategy): as asked, or the
    // portable path with the reason.
    if (options.sm80GradQBlock)
      config.blockM = options.sm80GradQBlock;
    if (options.sm80GradKvBlock)
      config.blockN = options.sm80GradKvBlock;
    if (options.sm80GradStages)
      config.stages = options.sm80GradStages;
    if (std::optional<std::string> why = config.tilingError())
      return why;
    if (config.sharedMemoryBytes() > sharedMemory)
      return llvm::formatv("the pinned {0} x {1} x {2} tiling needs {3} bytes "
                           "of shared memory, {4} available",
                           config.blockM, config.blockN, config.stages,
                           config.sharedMemoryBytes(), sharedMemory)
          .str();
  } else if (config.sharedMemoryBytes() > sharedMemory) {
    sm80::AttentionGradKernelConfig narrow = config;
    narrow.blockM = 32;
    narrow.blockN = 64;
    if (narrow.sharedMemoryBytes() > sharedMemory)
      return llvm::formatv("needs {0} bytes of shared memory ({1} with "
                           "64-row key blocks), {2} available",
                           config.sharedMemoryBytes(),
                           narrow.sharedMemoryBytes(), sharedMemory)
          .str();
    config = narrow;
  }
  strategy = make(KernelPath::mma_sync, config.blockM, config.blockN,
                  config.stages, config.warps());
  return std::nullopt;
}

FailureOr<StrategyAttr> Selector::selectAttentionGrad(AttentionGradOp op) {
  // The tensor-core lowerings read the blockwise nests back, and a nest
  // loses the products of a gradient nobody reads (canonicalization drops
  // the unused result and what computes it): the portable path, which
  // lowers the nests as they are, takes such an op.
  if (llvm::any_of(op->getResults(), [](Value r) { return r.use_empty(); })) {
    constexpr llvm::StringLiteral why =
        "one of its gradients (dq, dk, dv) is unused";
    if (wgmma())
      refuse("attention_grad", "wgmma", why.str());
    if (mmaSync())
      refuse("attention_grad", "mma.sync", why.str());
    return portable(options.qBlock, options.kvBlock);
  }
  StrategyAttr strategy;
  if (wgmma()) {
    if (Refusal why = attentionGradWgmma(op, strategy))
      refuse("attention_grad", "wgmma", *why);
    else
      return strategy;
  }
  if (mmaSync()) {
    if (Refusal why = attentionGradMmaSync(op, strategy))
      refuse("attention_grad", "mma.sync", *why);
    else
      return strategy;
  }
  return portable(options.qBlock, options.kvBlock);
}

//===----------------------------------------------------------------------===//
// FFN and projections
//===----------------------------------------------------------------------===//

FailureOr<StrategyAttr> Selector::selectFFN(FFNOp op) {
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  Type element = xType.getElementType();
  int64_t hidden = xType.getShape().back();
  int64_t rows = xType.getNumElements() / hidden;
  int64_t ffn = op.getWIn().getType().getDimSize(1);
  bool gated = op.getWGate() != nullptr;
  // f32 on tensor cores is TF32, only when asked for; the wgmma GEMM would
  // need the weights K-major for it (wgmma transposes 16-bit operands
  // only), so TF32 takes the mma.sync GEMM, which loads B word by word.
  const bool tf32 = element.isF32() && options.allowTF32;
  if (tf32 && wgmma())
    refuse("ffn", "wgmma",
           "TF32 takes the mma.sync path (wgmma's TF32 needs K-major "
           "weights)");
  // A path's element refusal, saying what f32 FFNs can take.
  auto elementRefusal = [&](StringRef path) {
    Refusal why = checkTensorCoreElement(element, path);
    if (why && element.isF32())
      *why += "; allow-tf32 takes f32 FFNs as TF32 on the mma.sync path";
    return why;
  };
  if (wgmma() && !tf32) {
    // Any row count: the GEMMs mask a ragged last row tile.
    Refusal why = elementRefusal("wgmma");
    if (!why && (!sm90::pickBlockN(hidden) || !sm90::pickBlockN(ffn)))
      why = llvm::formatv("hidden {0} and ffn {1} must be multiples of 128",
                          hidden, ffn)
                .str();
    if (!why && (rows >= (int64_t(1) << 31) || ffn >= (int64_t(1) << 31)))
      why = "more rows than a 32-bit TMA coordinate addresses";
    // Chunks pinned (an option or a recorded strategy) are evened out;
    // else the GEMMs' waves choose them, so their tilings come first (a
    // chunk's rows change only the kernels' names).
    const bool pinned = options.chunkRows || options.chunkRowsRecorded;
    int64_t chunk = rows;
    if (!why && pinned)
      why = chooseFFNChunk(rows, 128, chunk);
    if (!why) {
      sm90::GemmConfig up{
          rows, rows, ffn, hidden, element.isBF16(), op.getActivation()};
      up.gated = gated;
      sm90::GemmConfig down{rows,        rows, hidden, ffn, element.isBF16(),
                            std::nullopt};
      for (sm90::GemmConfig *config : {&up, &down}) {
        if (std::optional<std::string> error = sm90::chooseGemmTiling(
                *config, options.gemmBlockN, options.gemmStages, chip))
          return op.emitError() << "bpt-select-strategy: " << *error;
        // The chunk model prices the lone FFN's split tails.
        config->splitLimit = options.gemmSplit;
      }
      if (!pinned) {
        chunk = sm90::chooseFFNChunkRows(up, down, rows, chip);
        if (int64_t largest = sm90::largestFFNChunkRows(chip); chunk > largest)
          remarkChunkRaised(largest, chunk);
        why = checkGemmGridRows(chunk, 128);
      }
      // No `warps`: a chunk's GEMMs take the tiling of their launch's
      // rows (256-row tiles on whole 256-row launches, one 384-thread
      // block; else two 288-thread blocks), so the threads differ between
      // a chunk and a ragged tail.
      if (!why)
        return make(KernelPath::wgmma, 0, 0, 0, 0, chunk, options.gemmBlockN,
                    options.gemmStages, options.gemmSplit);
    }
    refuse("ffn", "wgmma", *why);
    // The wgmma GEMMs take every FFN the mma.sync ones would.
    return portableFFN(rows);
  }
  if (mmaSync()) {
    Refusal why = tf32 ? Refusal() : elementRefusal("mma.sync");
    if (!why && (hidden % 128 != 0 || ffn % 128 != 0))
      why = llvm::formatv("hidden {0} and ffn {1} must be multiples of 128",
                          hidden, ffn)
                .str();
    if (!why && rows >= (int64_t(1) << 31))
      why = "more rows than a 32-bit row offset addresses";
    int64_t chunk = 0;
    if (!why)
      why = chooseFFNChunk(rows, 64, chunk);
    if (!why) {
      sm80::GemmConfig up{rows, chunk, ffn, hidden, element.isBF16(),
                          op.getActivation()};
      up.gated = gated;
      sm80::GemmConfig down{chunk, rows, hidden, ffn, element.isBF16(),
                            std::nullopt};
      up.tf32 = down.tf32 = tf32;
      // A gated GEMM keeps its 128-wide tiles whatever block-n says.
      up.blockN = gated ? 0 : options.sm80GemmBlockN;
      down.blockN = options.sm80GemmBlockN;
      for (sm80::GemmConfig *config : {&up, &down})
        if (!why)
          why = config->check(sharedMemory);
    }
    if (!why)
      return make(KernelPath::mma_sync, 0, 0, 0, 0, chunk,
                  options.sm80GemmBlockN);
    refuse("ffn", "mma.sync", *why);
  }
  return portableFFN(rows);
}

/// A portable FFN of more rows than a chunk goes by chunks of rows
/// (bpt-convert-to-linalg unrolls them), so that its [rows, ffn] f32
/// intermediates (two for a gated one) exist one chunk at a time: the
/// option's chunk (or the default), raised to at most kMaxUnrolledChunks
/// chunks.
StrategyAttr Selector::portableFFN(int64_t rows) {
  int64_t chunk = options.chunkRowsOrDefault();
  if (rows <= chunk)
    return portable();
  if (int64_t least = (rows + kMaxUnrolledChunks - 1) / kMaxUnrolledChunks;
      chunk < least) {
    int64_t raised = (least + 127) / 128 * 128;
    remarkChunkRaised(chunk, raised);
    chunk = raised;
  }
  return make(KernelPath::portable, 0, 0, 0, 0, chunk);
}

/// What both paths' GEMM kernels need of a projection, whatever its rows
/// (a ragged last row tile is masked): no bias, rows that 32-bit offsets
/// and TMA coordinates address, row tiles within grid y.
Refusal checkLinearGemm(LinearOp op, int64_t rows) {
  if (op.getBias())
    return std::string("a bias (the GEMM kernel has no bias epilogue)");
  if (rows >= (int64_t(1) << 31))
    return std::string("more rows than a 32-bit row offset addresses");
  return checkGemmGridRows(rows, 128);
}

FailureOr<StrategyAttr> Selector::selectLinear(LinearOp op) {
  // Projections inside a wgmma block are the block's kernels'; these are
  // lone ones, or those of an expanded block.
  auto xType = cast<RankedTensorType>(op.getInput().getType());
  Type element = xType.getElementType();
  int64_t k = xType.getShape().back();
  int64_t rows = xType.getNumElements() / k;
  int64_t n = op.getWeight().getType().getDimSize(1);
  if (wgmma()) {
    Refusal why = checkTensorCoreElement(element, "wgmma");
    if (!why)
      why = checkLinearGemm(op, rows);
    if (!why && (!sm90::pickBlockN(n) || k % 64 != 0))
      why = llvm::formatv("N = {0} must be a multiple of 128 and K = {1} of 64",
                          n, k)
                .str();
    if (!why) {
      sm90::GemmConfig config{rows, rows, n, k, element.isBF16(),
                              std::nullopt};
      if (std::optional<std::string> error = sm90::chooseGemmTiling(
              config, options.gemmBlockN, options.gemmStages, chip))
        return op.emitError() << "bpt-select-strategy: " << *error;
      return make(KernelPath::wgmma, 0, 0, 0, config.threads() / 32, 0,
                  options.gemmBlockN, options.gemmStages);
    }
    refuse("linear", "wgmma", *why);
    // The wgmma GEMM takes every projection the mma.sync one would.
    return portable();
  }
  if (!mmaSync())
    return portable();
  Refusal why = checkTensorCoreElement(element, "mma.sync");
  if (!why)
    why = checkLinearGemm(op, rows);
  if (!why) {
    sm80::GemmConfig config{rows, rows, n, k, element.isBF16(), std::nullopt};
    config.blockN = options.sm80GemmBlockN;
    why = config.check(sharedMemory);
  }
  if (!why)
    return make(KernelPath::mma_sync, 0, 0, 0, 0, 0, options.sm80GemmBlockN);
  refuse("linear", "mma.sync", *why);
  return portable();
}

/// What the wgmma GEMM needs of the rows its operands span: TMA coordinates
/// that address them.
Refusal checkTmaRows(int64_t rows) {
  if (rows >= (int64_t(1) << 31))
    return std::string("more rows than a 32-bit TMA coordinate addresses");
  return std::nullopt;
}

/// The GEMM-shaped gradient ops (linear_grad, ffn_grad) on sm_90a:
/// bpt-expand-gradients writes them as bpt.matmul GEMMs (each then chosen
/// on its own), the FFN's over chunks of `chunk_rows` rows (the last may be
/// shorter), at most kMaxUnrolledChunks of them; all of their GEMMs or
/// none: every GEMM's N is one of the weight's `widths` (so whole
/// 128-column tiles), and the FFN's chunks of rows are whole 64-row K
/// steps but the last (the GEMMs read a chunk in place, and a K step past
/// its end reads the next one). mma.sync has no matmul kernel with
/// transposed operands yet: the portable loops.
StrategyAttr Selector::selectGradientGemm(StringRef name, Type element,
                                          int64_t rows,
                                          ArrayRef<int64_t> widths,
                                          bool chunked) {
  // The FFN's chunk rows, whichever GEMMs take it where the tensor cores
  // are on, and where there are more rows than a chunk in all-portable
  // compilations (fewer keep the whole op): the option's (or the default),
  // raised to whole 64-row K steps and to at most kMaxUnrolledChunks
  // chunks.
  int64_t chunk = 0;
  if (chunked &&
      (wgmma() || mmaSync() || rows > options.chunkRowsOrDefault())) {
    chunk = options.chunkRowsOrDefault();
    int64_t least = (rows + kMaxUnrolledChunks - 1) / kMaxUnrolledChunks;
    if (chunk < least || chunk % 64 != 0) {
      int64_t wanted = chunk;
      chunk = (std::max(chunk, least) + 127) / 128 * 128;
      if (remarks)
        op->emitRemark() << "chunk rows raised from " << wanted << " to "
                         << chunk
                         << ": chunks are whole 64-row K steps, at most "
                         << kMaxUnrolledChunks << " of them unrolled";
    }
  }
  if (wgmma()) {
    Refusal why = checkTensorCoreElement(element, "wgmma");
    for (int64_t width : widths)
      if (!why && width % 128 != 0)
        why = llvm::formatv("the weight's widths {0} x {1} are not "
                            "multiples of 128 (its GEMMs' N)",
                            widths[0], widths[1])
                  .str();
    if (!why)
      why = checkTmaRows(rows);
    if (!why)
      why = checkGemmGridRows(chunked ? std::min(chunk, rows) : rows, 128);
    if (!why)
      return make(KernelPath::wgmma, 0, 0, 0, 0, chunk);
    refuse(name, "wgmma", *why);
  } else if (mmaSync()) {
    refuse(name, "mma.sync",
           "there is no mma.sync GEMM with transposed operands yet");
  }
  // Refused by the tensor cores, the FFN's gradient still goes by chunks of
  // rows on the portable GEMMs (bpt-expand-gradients), so that its [rows,
  // ffn] intermediates exist one chunk at a time: whole, they are four f32
  // [rows, ffn] buffers.
  if (chunk > 0 && rows > 0)
    return make(KernelPath::portable, 0, 0, 0, 0, chunk);
  return portable();
}

/// bpt.matmul on the wgmma GEMM: 16-bit operands, N in whole 128-column
/// tiles, rows of both operands that TMA addresses (16-byte strides),
/// M tiles within grid y. Any M and K: TMA fills what lies past the
/// operands with zeros and the last row tile is masked.
FailureOr<StrategyAttr> Selector::selectMatmul(MatmulOp op) {
  Type element = op.getLhs().getType().getElementType();
  int64_t m = op.getM(), n = op.getN();
  int64_t lhsRow = op.getLhs().getType().getDimSize(1);
  int64_t rhsRow = op.getRhs().getType().getDimSize(1);
  if (wgmma()) {
    Refusal why = checkTensorCoreElement(element, "wgmma");
    if (!why && !sm90::pickBlockN(n))
      why = llvm::formatv("N = {0} is not a multiple of 128", n).str();
    if (!why && (lhsRow % 8 != 0 || rhsRow % 8 != 0))
      why = llvm::formatv("rows of {0} and {1} elements are not multiples "
                          "of 16 bytes (TMA)",
                          lhsRow, rhsRow)
                .str();
    if (!why)
      why = checkTmaRows(std::max(m, op.getK()));
    if (!why)
      why = checkGemmGridRows(m, 128);
    if (!why) {
      sm90::GemmConfig config{m, m, n, op.getK(), element.isBF16(),
                              std::nullopt};
      if (std::optional<std::string> error = sm90::chooseGemmTiling(
              config, options.gemmBlockN, options.gemmStages, chip))
        return op.emitError() << "bpt-select-strategy: " << *error;
      return make(KernelPath::wgmma, 0, 0, 0, config.threads() / 32, 0,
                  options.gemmBlockN, options.gemmStages);
    }
    refuse("matmul", "wgmma", *why);
    return portable();
  }
  if (mmaSync())
    refuse("matmul", "mma.sync",
           "there is no mma.sync GEMM with transposed operands yet");
  return portable();
}

//===----------------------------------------------------------------------===//
// Norms
//===----------------------------------------------------------------------===//

/// The row kernel (NormKernel.h) where the chip's own kernels are allowed
/// (`tensor-cores`, which also asks for the portable loops everywhere when
/// off): one warp a row of 16-bit elements, any row count.
StrategyAttr Selector::selectNorm(Operation *norm) {
  if (!options.tensorCores)
    return portable();
  auto type = cast<RankedTensorType>(norm->getOperand(0).getType());
  int64_t hidden = type.getShape().back();
  Refusal why = codegen::NormConfig::check(type.getNumElements() / hidden,
                                           hidden, type.getElementType());
  if (!why)
    return make(KernelPath::rowwise);
  refuse(norm->getName().stripDialect(), "rowwise", *why);
  return portable();
}

//===----------------------------------------------------------------------===//
// Block
//===----------------------------------------------------------------------===//

FailureOr<StrategyAttr> Selector::selectBlock(TransformerBlockOp op) {
  RankedTensorType xType = op.getInput().getType();
  Type element = xType.getElementType();
  int64_t batch = xType.getDimSize(0), seq = xType.getDimSize(1);
  int64_t hidden = xType.getDimSize(2), headDim = op.getHeadDim();
  int64_t heads = op.getHeads(), kvHeads = op.getKvHeads();
  int64_t qWidth = heads * headDim, kvWidth = kvHeads * headDim;
  int64_t ffn = op.getWIn().getType().getDimSize(1);
  bool wgmmaRefused = false;
  int64_t chunk = 0;
  AttentionTiling tiling{};
  if (wgmma()) {
    Refusal why = checkTensorCoreElement(element, "wgmma");
    if (!why)
      why = checkHeadDim(headDim);
    if (!why && seq % 128 != 0)
      why = llvm::formatv("sequence length {0} is not a multiple of 128 (the "
                          "block's token-major attention kernel takes whole "
                          "128-row blocks only)",
                          seq)
                .str();
    if (!why && hidden % 256 != 0)
      why = llvm::formatv("hidden size {0} is not a multiple of 256", hidden)
                .str();
    if (!why && hidden > codegen::NormConfig::kMaxHidden)
      why = llvm::formatv("hidden size {0} is above the norm kernel's {1} (a "
                          "warp holds a row in registers)",
                          hidden, codegen::NormConfig::kMaxHidden)
                .str();
    if (!why && (!sm90::pickBlockN(qWidth) || !sm90::pickBlockN(kvWidth) ||
                 !sm90::pickBlockN(ffn)))
      why = llvm::formatv("projection widths {0}, {1} and ffn {2} must be "
                          "multiples of 128",
                          qWidth, kvWidth, ffn)
                .str();
    if (!why && batch * seq >= (int64_t(1) << 31))
      why = "more rows than a 32-bit TMA coordinate addresses";
    if (!why && heads > kMaxGridYZ)
      why = llvm::formatv("{0} heads: a grid's y takes at most {1} blocks",
                          heads, kMaxGridYZ)
                .str();
    if (!why)
      why = chooseBlockChunk(batch * seq, seq, 64, chunk);
    if (!why) {
      tiling = wgmmaAttentionTiling(
          AttentionProblem{batch, heads, seq, seq, headDim, op.getCausal()});
      // A pinned key block (80, 96, 112) need not divide the sequence.
      if (seq % tiling.blockN != 0)
        why = llvm::formatv("sequence length {0} is not a multiple of the "
                            "{1}-row key block (the block's token-major "
                            "attention kernel takes whole blocks only)",
                            seq, tiling.blockN)
                  .str();
    }
    if (why) {
      // Falls through to the expansion below: its attention, projections
      // and FFN are then chosen one by one (a ragged sequence's attention
      // on the mma.sync kernel, the GEMMs on wgmma at any row count).
      refuse("transformer_block", "wgmma", *why);
      wgmmaRefused = true;
    }
  }
  if (wgmma() && !wgmmaRefused) {
    sm90::AttentionKernelConfig attention{};
    attention.headDim = headDim;
    attention.blockN = tiling.blockN;
    attention.stages = tiling.stages;
    if (attention.sharedMemoryBytes() > sharedMemory)
      return op.emitError()
             << "bpt-select-strategy: the attention kernel's "
             << attention.stages << " stages of " << attention.blockN
             << " rows need " << attention.sharedMemoryBytes()
             << " bytes of shared memory, " << sharedMemory << " available";
    // Every GEMM of the block must take the pinned tiling.
    bool bf16 = element.isBF16();
    int64_t rows = batch * seq;
    struct Shape {
      int64_t aRows, cRows, n, k;
      bool gated;
    } gemms[] = {{chunk, rows, kvWidth, hidden, false},
                 {chunk, chunk, qWidth, hidden, false},
                 {chunk, chunk, hidden, qWidth, false},
                 {chunk, chunk, ffn, hidden, op.getWGate() != nullptr},
                 {chunk, rows, hidden, ffn, false}};
    for (const Shape &s : gemms) {
      sm90::GemmConfig config{s.aRows, s.cRows, s.n, s.k, bf16, std::nullopt};
      config.gated = s.gated;
      if (std::optional<std::string> error = sm90::chooseGemmTiling(
              config, options.gemmBlockN, options.gemmStages, chip))
        return op.emitError() << "bpt-select-strategy: " << *error;
    }
    return make(KernelPath::wgmma, attention.blockM, attention.blockN,
                attention.stages, attention.threads() / 32, chunk,
                options.gemmBlockN, options.gemmStages);
  }
  if (mmaSync()) {
    // Expanded into its pieces, each with a strategy of its own.
    Refusal why = checkTensorCoreElement(element, "mma.sync");
    if (!why)
      why = checkHeadDim(headDim);
    // Any row count: the pieces' kernels (attention, GEMMs) take ragged
    // rows.
    if (!why && (hidden % 128 != 0 || kvWidth % 128 != 0 || ffn % 128 != 0))
      why = llvm::formatv("hidden {0}, key/value width {1} and ffn {2} must "
                          "be multiples of 128",
                          hidden, kvWidth, ffn)
                .str();
    if (!why) {
      if (remarks && wgmmaRefused)
        op->emitRemark() << "transformer_block takes the mma.sync path "
                            "instead: expanded, its attention, projections "
                            "and FFN take strategies of their own";
      return make(KernelPath::mma_sync);
    }
    refuse("transformer_block", "mma.sync", *why);
  }
  return portable(options.qBlock, options.kvBlock);
}

} // namespace

FailureOr<StrategyAttr> bpt::selectStrategy(Operation *op,
                                            const StrategyOptions &options,
                                            bool remarks) {
  FailureOr<StrategyAttr> strategy = Selector(op, options, remarks).select();
  // The portable block sizes tile only the portable attention loops; a
  // tensor-core kernel picks its own (the --sm90-* / --sm80-* options or
  // the cost model).
  if (remarks && options.reportBlockSizes && succeeded(strategy) &&
      *strategy && strategy->getPath() != KernelPath::portable &&
      (isa<AttentionOp, AttentionGradOp>(op) ||
       // A block decomposed for mma.sync remarks through its attention.
       (isa<TransformerBlockOp>(op) &&
        strategy->getPath() == KernelPath::wgmma))) {
    InFlightDiagnostic remark = op->emitRemark();
    remark << "q-block=" << options.qBlock << " / kv-block="
           << options.kvBlock << " ignored: " << op->getName().stripDialect()
           << " takes the " << stringifyKernelPath(strategy->getPath())
           << " kernel, which picks its own tiling";
    if (strategy->getQBlock() || strategy->getKvBlock())
      remark << " (q_block " << strategy->getQBlock() << ", kv_block "
             << strategy->getKvBlock() << ")";
  }
  return strategy;
}
