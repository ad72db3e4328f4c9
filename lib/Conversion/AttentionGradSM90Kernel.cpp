//===- AttentionGradSM90Kernel.cpp - attention backward, sm_90a -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The kernel of bpt-attention-grad-to-sm90: the key/value nest of the
// blockwise backward (bpt-tile-attention) with its tiles in registers and
// shared memory, and the query nest's dQ folded in.
//
//   - A thread block owns 128 key/value rows of one head: a producer
//     warpgroup loads K and V once, then Q, dO and their lse and D rows per
//     step (query head of the group × query block that sees the key block:
//     128 rows at D = 64, 80 at D = 128) into a ring of stages, by TMA, each
//     stage guarded by full and empty mbarriers.
//   - Two consumer warpgroups own 64 key rows each and compute the scores
//     transposed, Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ, so that the rows of their
//     accumulators are key rows: Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e)
//     and dSᵀ = Pᵀ ∘ (dPᵀ − D) are then, packed, the register A operands of
//     dV += Pᵀ·dO and dK += dSᵀ·Q (as P·V in the forward kernel).
//   - Per step a consumer issues, each as its own wgmma group: Sᵀ, dPᵀ
//     (Pᵀ's exponentials run while dPᵀ is in the tensor cores), dV, its
//     dQ piece, then dK, so that the piece is staged and reduced while dK
//     still runs (hopper.md version 10h: 5-9% at D = 64, 2-3% causal at
//     D = 128).
//   - dQ: both consumers store their dS rows into one shared-memory tile
//     (two, alternating by step, so that the next step's stores do not
//     overwrite what the other consumer still reads), meet at a named
//     barrier, and share the step's dQ out, one piece each, staged in
//     shared memory:
//       D = 64: dSᵀ tiles; consumer c computes query rows 64·c.. of
//       dQ = dS·K (dS read M-major times the K tile), [64, 64] f32.
//       D = 128 (80-row query blocks, FlashAttention-3's tiling; wgmma's M
//       of 64 does not tile an 80-row dQ): query-major dS tiles (stmatrix
//       .trans); consumer c computes dQᵀ = Kᵀ·dSᵀ for head columns 64·c..
//       (M = 64, N = 80: K's column block c as an M-major A, dS as a
//       K-major B) and stages it as [80, 64] f32 in two 128-byte-swizzled
//       boxes.
//     A writer warp per consumer (warps 1 and 2 of the producer warpgroup,
//     as FlashAttention-3's dQ writer) adds the staged piece to an f32
//     accumulator in global memory (D = 64: bulk reductions of its rows,
//     cp.reduce.async.bulk .add.f32; D = 128: two TMA reductions of the
//     boxes from one thread), each element once a step, and frees the tile
//     (staging full and empty mbarriers), so that a consumer neither issues
//     the reductions nor waits for their reads. The sum over key blocks has
//     no fixed order: dQ is not bitwise reproducible on this path (dK and
//     dV are).
//
//===----------------------------------------------------------------------===//

#include "SM90Kernels.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

#include <array>
#include <cmath>

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

using KernelConfig = AttentionGradKernelConfig;

/// Named barriers: 0 is the block's; both consumers meet at 1 once their
/// dS rows are in shared memory.
constexpr int64_t kBothConsumersBarrier = 1;

class GradKernelEmitter : public SM90Emitter {
public:
  GradKernelEmitter(OpBuilder &b, Location loc, const KernelConfig &config)
      : SM90Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func);

private:
  /// The step sequence both roles walk: query heads of the group, then the
  /// query blocks from `firstBlock` on.
  struct Step {
    Value head, queryBlock;
  };
  Step stepAt(Value j) {
    Value perHead = sub(c32(config.queryBlocks()), firstBlock);
    Value head = add(mul(kvHead, c32(config.heads / config.kvHeads)),
                     div(j, perHead));
    return {head, add(firstBlock, rem(j, perHead))};
  }
  /// The query head of step `s` among all B·Hq.
  Value queryHead(const Step &s) {
    return add(mul(batch, c32(config.heads)), s.head);
  }
  /// The first row of step `s`'s query block in the [B·Hq·Sq, ·] views of
  /// the query side's f32 arrays (padded to whole blocks: Sq rounded up).
  Value queryRow(const Step &s) {
    return add(mul(queryHead(s), c32(config.paddedSeqQ())),
               mul(s.queryBlock, c32(config.blockM)));
  }
  Value barrier(int64_t index) {
    return sharedPointer(add(base, c32(config.barrierOffset(index))));
  }
  /// The staging tile's full and empty barriers of `consumer`.
  Value stagingFull(Value consumer) {
    return barrierAt(config.stagingFullBarrier(0), consumer);
  }
  Value stagingEmpty(Value consumer) {
    return barrierAt(config.stagingEmptyBarrier(0), consumer);
  }
  Value barrierAt(int64_t first, Value stage) {
    return sharedPointer(add(base, add(c32(config.barrierOffset(first)),
                                       mul(stage, c32(8)))));
  }
  /// Shared address of `offset(0)` in `stage`, for per-stage regions whose
  /// stages are `stride` bytes apart.
  Value stageAddress(int64_t offset, int64_t stride, Value stage) {
    return add(base, add(c32(offset), mul(stage, c32(stride))));
  }
  /// Copies a [rows, D] tile of `map` from `row` (of matrix `outer` of a
  /// 3-D map).
  void copyRows(Value dst, Value map, int64_t rows, Value row, Value bar,
                Value outer = Value()) {
    SM90Emitter::copyRows(dst, map, rows, config.headDim, row, Value(), bar,
                          outer);
  }
  /// Copies `bytes` from global `src` to shared `dst`, completing on `bar`.
  void copyBytes(Value dst, Value src, int64_t bytes, Value bar) {
    Value cluster = LLVM::AddrSpaceCastOp::create(b, loc, clusterPtr,
                                                  sharedPointer(dst));
    NVVM::CpAsyncBulkGlobalToSharedClusterOp::create(
        b, loc, cluster, src, bar, c32(bytes), Value(), Value());
  }
  /// `pointer` (global) moved on by `elements` × `elementBytes`.
  Value offsetPointer(Value pointer, Value elements, int64_t elementBytes) {
    Value bytes = mul(arith::ExtUIOp::create(b, loc, i64, elements),
                      c64(elementBytes));
    return LLVM::GEPOp::create(b, loc, pointer.getType(), b.getI8Type(),
                               pointer, ValueRange{bytes});
  }

  void initBarriers(Value tid);
  void emitProducer(Value mapK, Value mapV, Value mapQ, Value mapDO, Value lse,
                    Value rowDots);
  void emitConsumer(Value consumer, Value lane, Value warp, Value dK,
                    Value dV);
  /// Pᵀ of one step from the accumulator `s`.
  SmallVector<Value> probabilities(ArrayRef<Value> s, Value stage,
                                   Value keyRow, Value queryPos);
  /// dSᵀ = Pᵀ ∘ (dPᵀ − D) of one step.
  SmallVector<Value> scoresGrad(ArrayRef<Value> p, ArrayRef<Value> dp,
                                Value stage);
  /// The f32 values at query columns `column` and `column + 1` of a
  /// stage's per-query-row array (lse or D) at shared address `rows`.
  std::array<Value, 2> rowPair(Value rows, Value column) {
    Value pair = LLVM::LoadOp::create(
        b, loc, VectorType::get({2}, f32),
        sharedPointer(add(rows, mul(column, c32(4)))), 8);
    return {LLVM::ExtractElementOp::create(b, loc, pair, c64(0)),
            LLVM::ExtractElementOp::create(b, loc, pair, c64(1))};
  }
  /// This consumer's dQ staging tile in shared memory.
  Value stagingTile(Value consumer);
  /// Stores this thread's fragment of a [64, 64] piece of dQ into the
  /// consumer's staging tile.
  void stageQueryGrad(ArrayRef<Value> dq, Value consumer);
  /// Stores this thread's fragment of a [64, blockM] piece of dQᵀ into the
  /// consumer's staging tile, transposed: [blockM, 64] in two swizzled
  /// [blockM, 32] boxes.
  void stageTransposedQueryGrad(ArrayRef<Value> dqT, Value consumer);
  /// A dQ writer warp of the producer warpgroup (warp `1 + consumer`):
  /// every step, once the consumer's piece is staged, adds it to the
  /// accumulator with one bulk reduction a row (transposed dQ: its first
  /// lane alone, two TMA reductions of the [blockM, 32] boxes), and frees
  /// the staging tile once the reductions have read it.
  void emitQueryGradWriter(Value consumer, Value lane);
  /// Issues Sᵀ = K·Qᵀ, then dPᵀ = V·dOᵀ, of this consumer's key rows
  /// (m64n{bm}k16 steps over D, all K-major) as two wgmma groups, so that
  /// Pᵀ's exponentials can run while dPᵀ is still in the tensor cores.
  /// Returns both accumulators in flight: Sᵀ's, then dPᵀ's.
  std::pair<Value, Value> issueScores(Value kDesc, Value vDesc, Value qTile,
                                      Value dOTile);
  /// Issues dV += Pᵀ·dO as one wgmma group (A from the packed registers).
  void issueValueGrad(SmallVectorImpl<Value> &dVAcc, ArrayRef<Value> pFragments,
                      Value dOTile);
  /// Issues dK += dSᵀ·Q as one wgmma group, behind a fence already made.
  void issueKeyGrad(SmallVectorImpl<Value> &dKAcc, ArrayRef<Value> dSFragments,
                    Value qTile);
  /// Stores this thread's dS (dSᵀ, or query-major for transposed dQ) into
  /// step `j`'s tile, visible to the async proxy, and meets the other
  /// consumer; returns the tile.
  Value storeScoresGrad(ArrayRef<Value> dSFragments, Value dSTiles,
                        Value consumer, Value j);
  /// Tells the producer that this thread is done with `stage`.
  void releaseStage(Value stage);
  /// Issues query rows 64·`rowBlock`.. of this step's dQ = dS·K (D = 64)
  /// as one wgmma group; returns its accumulator in flight.
  Value issueQueryGrad(Value dSTile, Value kMNDesc, Value rowBlock);
  /// Issues this consumer's [64, blockM] piece of dQᵀ = Kᵀ·dSᵀ (head
  /// columns 64·consumer..; `kColumnsDesc`: that column block of K, M-major)
  /// as one wgmma group; returns its accumulator in flight.
  Value issueTransposedQueryGrad(Value dSTile, Value kColumnsDesc);
  /// Stores a [64, D] accumulator tile (times `scale`) to `out` rows from
  /// `firstRow`; where `stored` is given, only this thread's rows i (0:
  /// row0, 1: row0 + 8) with stored[i] true.
  void storeTile(ArrayRef<Value> acc, double scale, Value out, Value firstRow,
                 ArrayRef<Value> stored = {});

  const KernelConfig &config;
  Value base, batch, kvHead, kv0, firstBlock, steps;
  // The f32 dQ accumulator: its address, or (transposed dQ) its tensor map.
  Value queryGradSum;
  Value row0, column0; // this thread's accumulator row and column
  // The row and column (offset) this lane addresses in a stmatrix .x4 of
  // accumulator fragments, and in a stmatrix .x4 .trans (query-major dS:
  // row offset, column).
  Value matrixRow, matrixColumn, transposedRow, transposedColumn;
};

void GradKernelEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  Value mapK = tensorMapPointer(func.getArgument(0));
  Value mapV = tensorMapPointer(func.getArgument(1));
  Value mapQ = tensorMapPointer(func.getArgument(2));
  Value mapDO = tensorMapPointer(func.getArgument(3));
  Value lse = globalPointerOf(func.getArgument(4));
  Value rowDots = globalPointerOf(func.getArgument(5));
  queryGradSum = config.transposedQueryGrad()
                     ? tensorMapPointer(func.getArgument(6))
                     : pointerOf(func.getArgument(6));
  Value dK = pointerOf(func.getArgument(7));
  Value dV = pointerOf(func.getArgument(8));

  Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  // The block's key block, K/V head and sequence (config.grid()'s order).
  Value gx = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  Value keyBlock;
  if (config.groupsHeads()) {
    Value pair;
    std::tie(keyBlock, pair) =
        decodeGroupedBlock(gx, config.causalGroup(), config.keyBlocks());
    kvHead = rem(pair, c32(config.kvHeads));
    batch = div(pair, c32(config.kvHeads));
  } else {
    keyBlock = gx;
    kvHead = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::y));
    batch = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::z));
  }
  kv0 = mul(keyBlock, c32(config.blockN));
  // Causal: query i sees key j iff j <= i + (Skv − Sq); the blocks before
  // the one holding row kv0 − (Skv − Sq) see none of this key block.
  firstBlock = c32(0);
  if (config.causal) {
    Value first = sub(kv0, c32(config.seqKV - config.seqQ));
    first = arith::MaxSIOp::create(b, loc, first, c32(0));
    firstBlock = arith::MinSIOp::create(b, loc, div(first, c32(config.blockM)),
                                        c32(config.queryBlocks()));
  }
  steps = mul(sub(c32(config.queryBlocks()), firstBlock),
              c32(config.heads / config.kvHeads));
  base = alignedSharedBase(kSharedMemorySymbol);

  initBarriers(tid);
  Value leader = cmp(arith::CmpIPredicate::eq, tid, c32(0));
  emitRoles(
      tid, leader, [&] { emitProducer(mapK, mapV, mapQ, mapDO, lse, rowDots); },
      [&](Value consumer, Value lane, Value warp) {
        emitConsumer(consumer, lane, warp, dK, dV);
      },
      [&](Value warp, Value lane) {
        auto writer = scf::IfOp::create(
            b, loc,
            cmp(arith::CmpIPredicate::ule, warp, c32(config.consumerGroups)),
            /*withElse=*/false);
        b.setInsertionPointToStart(writer.thenBlock());
        if (config.transposedQueryGrad()) {
          auto first = scf::IfOp::create(
              b, loc, cmp(arith::CmpIPredicate::eq, lane, c32(0)),
              /*withElse=*/false);
          b.setInsertionPointToStart(first.thenBlock());
        }
        emitQueryGradWriter(sub(warp, c32(1)), lane);
      });
  gpu::ReturnOp::create(b, loc);
}

void GradKernelEmitter::initBarriers(Value tid) {
  emitIf(cmp(arith::CmpIPredicate::eq, tid, c32(0)), [&] {
    NVVM::MBarrierInitOp::create(b, loc, barrier(0), c32(1), Value());
    for (int64_t s = 0; s < config.stages; ++s) {
      NVVM::MBarrierInitOp::create(b, loc, barrier(1 + s), c32(1), Value());
      NVVM::MBarrierInitOp::create(
          b, loc, barrier(1 + config.stages + s),
          c32(config.consumerGroups * kWarpgroup), Value());
    }
    for (int64_t c = 0; c < config.consumerGroups; ++c) {
      NVVM::MBarrierInitOp::create(b, loc,
                                   barrier(config.stagingFullBarrier(c)),
                                   c32(kWarpgroup), Value());
      // Freed by the writer warp's lanes (transposed dQ: its first lane).
      NVVM::MBarrierInitOp::create(
          b, loc, barrier(config.stagingEmptyBarrier(c)),
          c32(config.transposedQueryGrad() ? 1 : 32), Value());
    }
    NVVM::FenceMbarrierInitOp::create(b, loc);
  });
  NVVM::Barrier0Op::create(b, loc);
}

void GradKernelEmitter::emitProducer(Value mapK, Value mapV, Value mapQ,
                                     Value mapDO, Value lse, Value rowDots) {
  Value kvFull = barrier(0);
  NVVM::MBarrierArriveExpectTxOp::create(
      b, loc, Type(), kvFull, c32(2 * config.kvTileBytes()),
      NVVM::MemScopeKind::CTA, /*relaxed=*/false, Value());
  Value kvHeadIndex = add(mul(batch, c32(config.kvHeads)), kvHead);
  // Ragged: row kv0 of the head's matrix in the 3-D maps (rows past Skv
  // read zeros).
  Value kvRow = kv0, kvOuter = kvHeadIndex;
  if (!config.raggedKV()) {
    kvRow = add(mul(kvHeadIndex, c32(config.seqKV)), kv0);
    kvOuter = Value();
  }
  copyRows(add(base, c32(config.kOffset())), mapK, config.blockN, kvRow, kvFull,
           kvOuter);
  copyRows(add(base, c32(config.vOffset())), mapV, config.blockN, kvRow, kvFull,
           kvOuter);

  Value stages = c32(config.stages);
  auto loop = scf::ForOp::create(b, loc, c32(0), steps, c32(1));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value j = loop.getInductionVar();
  Value stage = rem(j, stages);
  // Reuse of a stage waits until both consumers released its last round.
  emitIf(cmp(arith::CmpIPredicate::uge, j, stages), [&] {
    Value parity =
        arith::AndIOp::create(b, loc, sub(div(j, stages), c32(1)), c32(1));
    waitBarrier(barrierAt(1 + config.stages, stage), parity);
  });
  Step step = stepAt(j);
  Value row = queryRow(step);
  // Ragged: Q and dO by row of the query head's matrix (rows past Sq read
  // zeros); lse and D from the padded arrays.
  Value tileRow = row, tileOuter;
  if (config.raggedQ()) {
    tileRow = mul(step.queryBlock, c32(config.blockM));
    tileOuter = queryHead(step);
  }
  Value full = barrierAt(1, stage);
  NVVM::MBarrierArriveExpectTxOp::create(b, loc, Type(), full,
                                         c32(config.stageBytes()),
                                         NVVM::MemScopeKind::CTA, false,
                                         Value());
  int64_t stride = 2 * config.qTileBytes();
  copyRows(stageAddress(config.qOffset(0), stride, stage), mapQ, config.blockM,
           tileRow, full, tileOuter);
  copyRows(stageAddress(config.dOOffset(0), stride, stage), mapDO,
           config.blockM, tileRow, full, tileOuter);
  int64_t rowStride = 2 * config.rowBytes();
  copyBytes(stageAddress(config.lseOffset(0), rowStride, stage),
            offsetPointer(lse, row, 4), config.rowBytes(), full);
  copyBytes(stageAddress(config.dOffset(0), rowStride, stage),
            offsetPointer(rowDots, row, 4), config.rowBytes(), full);
}

SmallVector<Value> GradKernelEmitter::probabilities(ArrayRef<Value> s,
                                                    Value stage, Value keyRow,
                                                    Value queryPos) {
  const double scaleLog2 = config.scale * M_LOG2E;
  Value lseRows = stageAddress(config.lseOffset(0), 2 * config.rowBytes(),
                               stage);
  // Element e of a [64, blockM] accumulator: key row keyRow + 8·((e/2)%2),
  // query column column0 + 8·(e/4) + e%2; lse by query column.
  // (query − key) + (Skv − Sq) at this thread's first element.
  Value diagonal = config.causal
                       ? add(sub(add(queryPos, column0), keyRow),
                             c32(config.seqKV - config.seqQ))
                       : Value();
  // Keys past a ragged Skv (this thread's two key rows), compared in each
  // step: held across the loop, the predicates cost spills.
  std::array<Value, 2> keyPast;
  if (config.raggedKV())
    for (int64_t i = 0; i < 2; ++i)
      keyPast[i] = cmp(arith::CmpIPredicate::sge, add(keyRow, c32(8 * i)),
                       c32(config.seqKV));
  SmallVector<Value> p;
  for (int64_t t = 0; t < config.blockM / 8; ++t) {
    std::array<Value, 2> lse2 = rowPair(lseRows, add(column0, c32(8 * t)));
    for (Value &v : lse2)
      v = fmul(v, cf(M_LOG2E));
    for (int64_t e = 4 * t; e < 4 * t + 4; ++e) {
      // P = exp(scale·s − lse), in exp2.
      Value pe = exp2(fma(s[e], cf(scaleLog2),
                          arith::NegFOp::create(b, loc, lse2[e % 2])));
      if (config.causal) {
        // Hidden when the key is past the query's diagonal (rows with no
        // visible key have lse = −inf: their P is selected away here):
        // key − query > Skv − Sq, tested as the element's constant offset
        // against one difference per step, so a compare with an immediate
        // and a select an element (6% faster at causal bench shapes than
        // the element's key and query built for each; a branch around the
        // mask for steps off the diagonal spilled at D = 64 and was 25%
        // slower there).
        int64_t offset = 8 * ((e / 2) % 2) - 8 * t - e % 2;
        Value hidden = cmp(arith::CmpIPredicate::sgt, c32(offset), diagonal);
        pe = select(hidden, cf(0.0), pe);
      }
      // Keys past a ragged Skv: K and V read zeros there, but P = exp(−lse)
      // may overflow, and 0 · inf would reach dQ.
      if (config.raggedKV())
        pe = select(keyPast[(e / 2) % 2], cf(0.0), pe);
      p.push_back(pe);
    }
  }
  return p;
}

SmallVector<Value> GradKernelEmitter::scoresGrad(ArrayRef<Value> p,
                                                 ArrayRef<Value> dp,
                                                 Value stage) {
  Value dRows = add(stageAddress(config.lseOffset(0), 2 * config.rowBytes(),
                                 stage),
                    c32(config.rowBytes()));
  SmallVector<Value> dS;
  for (int64_t t = 0; t < config.blockM / 8; ++t) {
    std::array<Value, 2> dRow = rowPair(dRows, add(column0, c32(8 * t)));
    for (int64_t e = 4 * t; e < 4 * t + 4; ++e)
      dS.push_back(fmul(p[e], arith::SubFOp::create(b, loc, dp[e], dRow[e % 2])));
  }
  return dS;
}

Value GradKernelEmitter::stagingTile(Value consumer) {
  return add(base, add(c32(config.stagingOffset(0)),
                       mul(consumer, c32(config.stagingBytes()))));
}

void GradKernelEmitter::stageQueryGrad(ArrayRef<Value> dq, Value consumer) {
  const int64_t rowBytes = config.stagingRowBytes();
  Value staging = stagingTile(consumer);
  Type v2f32 = VectorType::get({2}, f32);
  for (int64_t t = 0; t < int64_t(dq.size()) / 4; ++t) {
    for (int64_t i = 0; i < 2; ++i) {
      Value column = add(column0, c32(8 * t));
      Value address =
          add(staging, add(mul(add(row0, c32(8 * i)), c32(rowBytes)),
                           mul(column, c32(4))));
      Value pair = LLVM::UndefOp::create(b, loc, v2f32);
      for (int64_t h = 0; h < 2; ++h)
        pair = LLVM::InsertElementOp::create(b, loc, pair,
                                             dq[4 * t + 2 * i + h], c64(h));
      LLVM::StoreOp::create(b, loc, pair, sharedPointer(address), 8);
    }
  }
}

void GradKernelEmitter::stageTransposedQueryGrad(ArrayRef<Value> dqT,
                                                 Value consumer) {
  // Element e of the [64, blockM] accumulator: head column d = row0 +
  // 8·((e/2)%2), query row q = column0 + 8·(e/4) + e%2; it goes to row q,
  // column d % 32 of box d / 32, whose 16-byte chunks (4 columns) are
  // swizzled by q % 8. A store's 32 lanes then cover 4 rows × 8 columns
  // in 32 distinct banks. q % 8 does not depend on e / 4, so the elements
  // of one (d, e % 2) are 8 rows (1 KiB) apart from the first: four
  // addresses a thread and immediate offsets (40 addresses held across
  // the loop spilled).
  Value staging = stagingTile(consumer);
  std::array<Value, 4> first;
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t h = 0; h < 2; ++h) {
      Value d = add(row0, c32(8 * i));
      Value q = add(column0, c32(h));
      Value inBox = rem(d, c32(32));
      Value chunk =
          arith::XOrIOp::create(b, loc, div(inBox, c32(4)), rem(q, c32(8)));
      first[2 * i + h] =
          add(add(staging, mul(div(d, c32(32)), c32(config.stagingBoxBytes()))),
              add(mul(q, c32(kSwizzleBytes)),
                  add(mul(chunk, c32(16)), mul(rem(inBox, c32(4)), c32(4)))));
    }
  }
  for (int64_t e = 0; e < int64_t(dqT.size()); ++e) {
    Value address =
        add(first[2 * ((e / 2) % 2) + e % 2], c32(8 * kSwizzleBytes * (e / 4)));
    LLVM::StoreOp::create(b, loc, dqT[e], sharedPointer(address), 4);
  }
}

void GradKernelEmitter::emitQueryGradWriter(Value consumer, Value lane) {
  const int64_t d = config.headDim, rowBytes = config.stagingRowBytes();
  Value staging = stagingTile(consumer);
  Value full = stagingFull(consumer);
  Value empty = stagingEmpty(consumer);
  auto loop = scf::ForOp::create(b, loc, c32(0), steps, c32(1));
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value j = loop.getInductionVar();
    waitBarrier(full, arith::AndIOp::create(b, loc, j, c32(1)));
    Value firstRow = queryRow(stepAt(j));
    if (config.transposedQueryGrad()) {
      // The piece's two [blockM, 32] boxes at head columns 64·consumer..
      for (int64_t box = 0; box < 2; ++box)
        NVVM::CpAsyncBulkTensorReduceOp::create(
            b, loc, queryGradSum,
            sharedPointer(add(staging, c32(box * config.stagingBoxBytes()))),
            NVVM::TMAReduxKind::ADD, NVVM::TMAStoreMode::TILE,
            ValueRange{add(mul(consumer, c32(64)), c32(32 * box)), firstRow},
            /*l2CacheHint=*/Value());
    } else {
      // Rows `lane` and `lane + 32` of the piece (query rows 64·consumer..);
      // the bulk engine adds in L2.
      firstRow = add(firstRow, mul(consumer, c32(64)));
      for (int64_t half = 0; half < 2; ++half) {
        Value row = add(lane, c32(32 * half));
        Value element = mul(
            arith::ExtUIOp::create(b, loc, i64, add(firstRow, row)), c64(d));
        Value target =
            LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), queryGradSum,
                                ValueRange{mul(element, c64(4))});
        asmOp(Type(),
              {target, add(staging, mul(row, c32(rowBytes))), c32(d * 4)},
              "cp.reduce.async.bulk.global.shared::cta.bulk_group.add.f32 "
              "[$0], [$1], $2;",
              "l,r,r", /*sideEffects=*/true);
      }
    }
    asmOp(Type(), {},
          "cp.async.bulk.commit_group;\n\tcp.async.bulk.wait_group.read 0;", "",
          /*sideEffects=*/true);
    arriveBarrier(empty);
  }
  // The last reductions done before the block may end.
  asmOp(Type(), {}, "cp.async.bulk.wait_group 0;", "", /*sideEffects=*/true);
}

void GradKernelEmitter::storeTile(ArrayRef<Value> acc, double scale, Value out,
                                  Value firstRow, ArrayRef<Value> stored) {
  const int64_t d = config.headDim;
  for (int64_t t = 0; t < d / 8; ++t) {
    for (int64_t i = 0; i < 2; ++i) {
      OpBuilder::InsertionGuard guard(b);
      if (!stored.empty()) {
        auto inside = scf::IfOp::create(b, loc, stored[i], /*withElse=*/false);
        b.setInsertionPointToStart(inside.thenBlock());
      }
      Value row = add(firstRow, add(row0, c32(8 * i)));
      Value element = add(mul(arith::ExtUIOp::create(b, loc, i64, row), c64(d)),
                          arith::ExtUIOp::create(
                              b, loc, i64, add(column0, c32(8 * t))));
      Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), out,
                                          ValueRange{mul(element, c64(2))});
      Value lo = fmul(acc[4 * t + 2 * i], cf(scale));
      Value hi = fmul(acc[4 * t + 2 * i + 1], cf(scale));
      LLVM::StoreOp::create(b, loc, packHalf2(lo, hi), address, 4);
    }
  }
}

void GradKernelEmitter::releaseStage(Value stage) {
  arriveBarrier(barrierAt(1 + config.stages, stage));
}

Value GradKernelEmitter::issueQueryGrad(Value dSTile, Value kMNDesc,
                                        Value rowBlock) {
  const int64_t bn = config.blockN;
  NVVM::WGMMATypes elementType = wgmmaElementType();
  // dSᵀ's 64-row query blocks are [bn, 64] tiles, bn · 128 bytes apart; K
  // (D = 64) is one such tile.
  Value dSDesc =
      add(descriptor(dSTile, WgmmaDescriptor::mnMajor(bn * kSwizzleBytes)),
          arith::ExtUIOp::create(b, loc, i64,
                                 mul(rowBlock, c32(WgmmaDescriptor::addressStep(
                                                   bn * kSwizzleBytes)))));
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  Value dqAcc = LLVM::ZeroOp::create(b, loc, accumulatorType(64));
  for (int64_t t = 0; t < bn / 16; ++t)
    dqAcc = emitWgmma(WgmmaSharedA{
        64, elementType, dqAcc, advance(dSDesc, t * 16 * kSwizzleBytes),
        advance(kMNDesc, t * 16 * kSwizzleBytes),
        t == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one,
        NVVM::MMALayout::row, NVVM::MMALayout::col});
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
  return dqAcc;
}

Value GradKernelEmitter::issueTransposedQueryGrad(Value dSTile,
                                                  Value kColumnsDesc) {
  const int64_t bm = config.blockM, bn = config.blockN;
  // A: K's column block, [bn keys, 64 head columns], read M-major; B: dS,
  // [bm, bn] K-major in two 64-key column blocks of [bm, 64].
  Value dSDesc = descriptor(dSTile, WgmmaDescriptor::kMajor());
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  Value acc = LLVM::ZeroOp::create(b, loc, accumulatorType(bm));
  for (int64_t k = 0; k < bn / 16; ++k)
    acc = emitWgmma(WgmmaSharedA{
        bm, wgmmaElementType(), acc,
        advance(kColumnsDesc, k * 16 * kSwizzleBytes),
        advance(dSDesc, (k / 4) * bm * kSwizzleBytes + (k % 4) * 32),
        k == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one,
        NVVM::MMALayout::col, NVVM::MMALayout::col});
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
  return acc;
}

std::pair<Value, Value> GradKernelEmitter::issueScores(Value kDesc,
                                                       Value vDesc,
                                                       Value qTile,
                                                       Value dOTile) {
  const int64_t d = config.headDim, bm = config.blockM, bn = config.blockN;
  NVVM::WGMMATypes elementType = wgmmaElementType();
  Value qDesc = descriptor(qTile, WgmmaDescriptor::kMajor());
  Value dODesc = descriptor(dOTile, WgmmaDescriptor::kMajor());
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  auto scores = [&](Value a, Value bDesc) {
    Value acc = LLVM::ZeroOp::create(b, loc, accumulatorType(bm));
    for (int64_t k = 0; k < d / 16; ++k) {
      int64_t aOffset = (k / 4) * bn * kSwizzleBytes + (k % 4) * 32;
      int64_t bOffset = (k / 4) * bm * kSwizzleBytes + (k % 4) * 32;
      acc = emitWgmma(WgmmaSharedA{
          bm, elementType, acc, advance(a, aOffset), advance(bDesc, bOffset),
          k == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one});
    }
    NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
    return acc;
  };
  Value s = scores(kDesc, qDesc);
  return {s, scores(vDesc, dODesc)};
}

void GradKernelEmitter::issueValueGrad(SmallVectorImpl<Value> &dVAcc,
                                       ArrayRef<Value> pFragments,
                                       Value dOTile) {
  const int64_t d = config.headDim, bm = config.blockM;
  // A from registers, B MN-major.
  Value dOB = descriptor(dOTile, WgmmaDescriptor::mnMajor(bm * kSwizzleBytes));
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  for (int64_t t = 0; t < bm / 16; ++t) {
    SmallVector<Value> next = emitWgmma(
        WgmmaRegA{d, wgmmaElementType(), dVAcc, pFragments.slice(4 * t, 4),
                  advance(dOB, t * 16 * kSwizzleBytes)});
    dVAcc.assign(next.begin(), next.end());
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
}

void GradKernelEmitter::issueKeyGrad(SmallVectorImpl<Value> &dKAcc,
                                     ArrayRef<Value> dSFragments,
                                     Value qTile) {
  const int64_t d = config.headDim, bm = config.blockM;
  Value qB = descriptor(qTile, WgmmaDescriptor::mnMajor(bm * kSwizzleBytes));
  for (int64_t t = 0; t < bm / 16; ++t) {
    SmallVector<Value> next = emitWgmma(
        WgmmaRegA{d, wgmmaElementType(), dKAcc, dSFragments.slice(4 * t, 4),
                  advance(qB, t * 16 * kSwizzleBytes)});
    dKAcc.assign(next.begin(), next.end());
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
}

Value GradKernelEmitter::storeScoresGrad(ArrayRef<Value> dSFragments,
                                         Value dSTiles, Value consumer,
                                         Value j) {
  const int64_t bm = config.blockM, bn = config.blockN;
  const bool transposed = config.transposedQueryGrad();
  // dS to shared memory while dV runs, into the tile of this step's parity
  // (the other consumer may still be reading the last step's), visible to
  // the async proxy. The fragments are 8x8 matrices in the layout stmatrix
  // takes: fragment 2t + i holds key rows 16·warp + 8i.., query columns
  // 8t..; one stmatrix stores four (t, t + 1 by i), lane l giving the
  // address of (stored) row l % 8 of matrix l / 8. D = 64: into this
  // consumer's 64 rows of a [bn, bm] dSᵀ tile; transposed dQ (stmatrix
  // .trans): query rows 8t.., key columns 16·warp + 8i.. of this consumer's
  // 64-key column block of a [bm, bn] dS tile.
  Value dSTile = add(dSTiles, mul(rem(j, c32(2)), c32(config.dSBytes())));
  Value part =
      add(dSTile, mul(consumer, c32((transposed ? bm : 64) * kSwizzleBytes)));
  for (int64_t t = 0; t < bm / 8; t += 2) {
    Value address =
        transposed ? swizzledAddress(part, bm, add(transposedRow, c32(8 * t)),
                                     transposedColumn)
                   : swizzledAddress(part, bn, matrixRow,
                                     add(matrixColumn, c32(8 * t)));
    NVVM::StMatrixOp::create(
        b, loc, sharedPointer(address), dSFragments.slice(2 * t, 4),
        transposed ? NVVM::MMALayout::col : NVVM::MMALayout::row,
        NVVM::LdStMatrixShapeAttr::get(ctx, 8, 8),
        NVVM::LdStMatrixEltType::B16);
  }
  fenceAsyncShared();
  // Both consumers' dS rows are in place after it.
  NVVM::BarrierOp::create(b, loc, Type(), c32(kBothConsumersBarrier),
                          c32(2 * kWarpgroup), NVVM::BarrierReductionAttr(),
                          Value());
  return dSTile;
}

void GradKernelEmitter::emitConsumer(Value consumer, Value lane, Value warp,
                                     Value dK, Value dV) {
  const int64_t d = config.headDim, bm = config.blockM, bn = config.blockN;
  const int64_t accCount = d / 2, sCount = bm / 2;
  const bool transposed = config.transposedQueryGrad();
  // Each step's dQ is two [64, 64] pieces (transposed: [64, bm] pieces of
  // dQᵀ), one a consumer.
  assert(!config.tilingError() && "a tiling the kernel takes");
  Value stages = c32(config.stages);
  row0 = add(mul(warp, c32(16)), div(lane, c32(4)));
  column0 = mul(rem(lane, c32(4)), c32(2));
  Value matrix = div(lane, c32(8));
  matrixRow = add(add(mul(warp, c32(16)), mul(rem(matrix, c32(2)), c32(8))),
                  rem(lane, c32(8)));
  matrixColumn = mul(div(matrix, c32(2)), c32(8));
  transposedRow = add(mul(div(matrix, c32(2)), c32(8)), rem(lane, c32(8)));
  transposedColumn = add(mul(warp, c32(16)), mul(rem(matrix, c32(2)), c32(8)));
  // This consumer's 64 key rows of the K and V tiles.
  Value rowsOffset = mul(consumer, c32(64 * kSwizzleBytes));
  Value kRows = add(base, add(c32(config.kOffset()), rowsOffset));
  Value vRows = add(base, add(c32(config.vOffset()), rowsOffset));
  Value dSTiles = add(base, c32(config.dSOffset()));
  Value keyRow = add(kv0, add(mul(consumer, c32(64)), row0));

  waitBarrier(barrier(0), c32(0));
  Value kTileDesc = descriptor(kRows, WgmmaDescriptor::kMajor());
  Value vTileDesc = descriptor(vRows, WgmmaDescriptor::kMajor());
  // dQ = dS·K reads the K tile as a K-by-D operand (MN-major) and dS
  // M-major from the dSᵀ tile; dQᵀ = Kᵀ·dSᵀ this consumer's column block
  // of K as an M-major A.
  Value kColumnBlock =
      transposed ? mul(consumer, c32(bn * kSwizzleBytes)) : c32(0);
  Value kMNTileDesc =
      descriptor(add(base, add(c32(config.kOffset()), kColumnBlock)),
                 WgmmaDescriptor::mnMajor(bn * kSwizzleBytes));

  Value zero = cf(0.0);
  SmallVector<Value> init(2 * accCount, zero); // dK, then dV
  auto loop = scf::ForOp::create(b, loc, c32(0), steps, c32(1), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value j = loop.getInductionVar();
    auto args = loop.getRegionIterArgs();
    // The descriptors each step advances (by immediates) through the K and
    // V tiles, taken anew in each step: as loop invariants LLVM hoisted
    // every advanced copy (about 35 64-bit values) out of the loop, and
    // ptxas spilled registers to keep them.
    Value kDesc = opaqueCopy(kTileDesc);
    Value vDesc = opaqueCopy(vTileDesc);
    Value kMNDesc = opaqueCopy(kMNTileDesc);
    SmallVector<Value> dKAcc(args.begin(), args.begin() + accCount);
    SmallVector<Value> dVAcc(args.begin() + accCount, args.end());
    Value stage = rem(j, stages);
    Value phase = arith::AndIOp::create(b, loc, div(j, stages), c32(1));
    Step step = stepAt(j);
    Value queryPos = mul(step.queryBlock, c32(bm));
    int64_t stride = 2 * config.qTileBytes();
    Value qTile = stageAddress(config.qOffset(0), stride, stage);
    Value dOTile = stageAddress(config.dOOffset(0), stride, stage);

    // Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: m64n{bm}k16 steps over D, all K-major.
    waitBarrier(barrierAt(1, stage), phase);
    auto [sAcc, dPAcc] = issueScores(kDesc, vDesc, qTile, dOTile);
    SmallVector<Value> p =
        probabilities(emitWgmmaWait(unpack(sAcc, sCount), /*pending=*/1),
                      stage, keyRow, queryPos);
    SmallVector<Value> dS =
        scoresGrad(p, emitWgmmaWait(unpack(dPAcc, sCount)), stage);
    SmallVector<Value> pFragments, dSFragments;
    for (int64_t r = 0; r < sCount / 2; ++r) {
      pFragments.push_back(packHalf2(p[2 * r], p[2 * r + 1]));
      dSFragments.push_back(packHalf2(dS[2 * r], dS[2 * r + 1]));
    }

    // dV first, then (once both consumers' dS rows are in shared memory)
    // this consumer's dQ piece, then dK: dQ can be staged and reduced while
    // dK is still in the tensor cores.
    issueValueGrad(dVAcc, pFragments, dOTile);
    // dQ = dS·K over all 128 key rows in [64, 64] pieces (transposed: dQᵀ
    // in [64, bm] pieces), each reduced by one consumer, so that the
    // reductions add each element once a step.
    Value dSTile = storeScoresGrad(dSFragments, dSTiles, consumer, j);
    Value dqAcc = transposed ? issueTransposedQueryGrad(dSTile, kMNDesc)
                             : issueQueryGrad(dSTile, kMNDesc, consumer);
    issueKeyGrad(dKAcc, dSFragments, qTile);
    SmallVector<Value> done(dVAcc);
    llvm::append_range(done, unpack(dqAcc, transposed ? sCount : 32));
    done = emitWgmmaWait(done, /*pending=*/1);
    // The piece goes to the staging tile once its writer warp has read the
    // last one out (parity of the previous use; the first passes), then to
    // the writer, which issues the reductions: no barrier of the
    // warpgroup, and the consumer goes on to its next step at once.
    waitBarrier(stagingEmpty(consumer),
                arith::XOrIOp::create(
                    b, loc, arith::AndIOp::create(b, loc, j, c32(1)), c32(1)));
    if (transposed)
      stageTransposedQueryGrad(ArrayRef(done).drop_front(accCount), consumer);
    else
      stageQueryGrad(ArrayRef(done).drop_front(accCount), consumer);
    fenceAsyncShared();
    arriveBarrier(stagingFull(consumer));
    SmallVector<Value> sums = emitWgmmaWait(dKAcc);
    releaseStage(stage);
    sums.append(done.begin(), done.begin() + accCount);
    scf::YieldOp::create(b, loc, sums);
  }

  // dK carries the scores' scale; dV has none.
  auto results = loop.getResults();
  Value firstRow =
      add(mul(add(mul(batch, c32(config.kvHeads)), kvHead), c32(config.seqKV)),
          add(kv0, mul(consumer, c32(64))));
  // Rows past a ragged Skv are the next head's: not stored.
  SmallVector<Value> stored;
  if (config.raggedKV())
    for (int64_t i = 0; i < 2; ++i)
      stored.push_back(cmp(arith::CmpIPredicate::slt, add(keyRow, c32(8 * i)),
                           c32(config.seqKV)));
  storeTile(SmallVector<Value>(results.begin(), results.begin() + accCount),
            config.scale, dK, firstRow, stored);
  storeTile(SmallVector<Value>(results.begin() + accCount, results.end()), 1.0,
            dV, firstRow, stored);
}

} // namespace

gpu::GPUFuncOp bpt::sm90::getOrBuildAttentionGradKernel(
    ModuleOp module, const AttentionGradKernelConfig &config, Type element,
    Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM90KernelModule(module);
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  int64_t queryRows = config.paddedSeqQ();
  auto rows = MemRefType::get({config.batch, config.heads, queryRows}, f32);
  SmallVector<Type> inputs = {
      tensorMapType(ctx, config.blockN, element, config.raggedKV()),
      tensorMapType(ctx, config.blockN, element, config.raggedKV()),
      tensorMapType(ctx, config.blockM, element, config.raggedQ()),
      tensorMapType(ctx, config.blockM, element, config.raggedQ()),
      rows,
      rows,
      config.transposedQueryGrad()
          ? tensorMapType(ctx, config.blockM, f32)
          : MemRefType::get(
                {config.batch, config.heads, queryRows, config.headDim}, f32)};
  auto kv = MemRefType::get(
      {config.batch, config.kvHeads, config.seqKV, config.headDim}, element);
  inputs.append({kv, kv});
  gpu::GPUFuncOp func = createKernel(kernels, config.kernelName(), inputs,
                                     config.threads(), loc);
  OpBuilder b(ctx);
  GradKernelEmitter(b, loc, config).emit(func);
  return func;
}
