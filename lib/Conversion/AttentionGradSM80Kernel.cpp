//===- AttentionGradSM80Kernel.cpp - attention backward, sm_80 --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The kernel of bpt-attention-grad-to-sm80: the key/value nest of the
// blockwise backward (bpt-tile-attention) with its tiles in registers and
// shared memory, for the warp-level tensor cores (mma.sync m16n8k16) of
// sm_80 and later, and the query nest's dQ folded in.
//
//   - A thread block owns `blockN` key/value rows of one kv head, 16 a
//     warp. All its threads copy K and V once, then, step by step (query
//     head of the group × query block that sees the key block), Q, dO and
//     their lse and D rows with cp.async into a ring of stages, so that the
//     copy of step j + 1 overlaps the math of step j.
//   - Each warp computes its rows of the scores transposed, Sᵀ = K·Qᵀ and
//     dPᵀ = V·dOᵀ, so that the accumulator rows are key rows: then
//     Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e) and dSᵀ = Pᵀ ∘ (dPᵀ − D),
//     packed, are the A fragments of dV += Pᵀ·dO and dK += dSᵀ·Q (as P is
//     of P·V in the forward kernel), with dO and Q read by ldmatrix.trans.
//   - dQ = dS·K needs all key rows: the warps store their dSᵀ rows into a
//     shared tile (two, by step parity), and after the next step's barrier
//     each computes a [16, D·(blockM / 16) / warps] piece of it (dS by
//     ldmatrix.trans of the dSᵀ tile, K by ldmatrix.trans) and adds it
//     into an f32 accumulator in global memory (red.global.add.f32, a
//     lane exchange making each instruction whole 32-byte sectors): one
//     barrier a step, and one warp's reductions overlap other warps' math.
//     The sum over key blocks has no fixed order: dQ is not bitwise
//     reproducible on this path (dK and dV are).
//   - With 64-row query blocks the warps work in pairs (`querySplit`): a
//     pair owns 32 key rows, each warp the scores of half the step's
//     query columns, so that a warp reads half of Q and dO for Sᵀ and dPᵀ.
//     At D 64 each warp keeps dK and dV over its half and the pair sums
//     them after the last step (`_qs2`); odd pairs take the previous
//     step's dQ piece after the exponentials, so that not all warps load
//     from shared memory at once after the barrier. At D 128 (`_ps`,
//     `sharedScores`) Pᵀ and dSᵀ go into shared tiles and after a second
//     barrier each warp computes dK and dV for its half of the head
//     columns over all the step's queries, and the step's dQ piece (one
//     dSᵀ tile; the other is Pᵀ's), odd pairs before dK and dV, even ones
//     after; not causal, key block n walks the query blocks from n on
//     (`rotatesQueryBlocks`).
//
//===----------------------------------------------------------------------===//

#include "SM80Kernels.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

#include <cmath>
#include <functional>
#include <tuple>

using namespace mlir;
using namespace bpt;
using namespace bpt::codegen;
using namespace bpt::sm80;

namespace {

using KernelConfig = AttentionGradKernelConfig;

class GradKernelEmitter : public SM80Emitter {
public:
  GradKernelEmitter(OpBuilder &b, Location loc, const KernelConfig &config)
      : SM80Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func);

private:
  /// The query head and query block of step j.
  struct Step {
    Value head, queryBlock;
  };
  Step stepAt(Value j) {
    Value perHead = sub(c32(config.queryBlocks()), firstBlock);
    Value head = add(mul(kvHead, c32(config.heads / config.kvHeads)),
                     div(j, perHead));
    Value block = rem(j, perHead);
    if (config.rotatesQueryBlocks())
      block = rem(add(block, rotation), perHead);
    return {head, add(firstBlock, block)};
  }
  /// Whether this warp's pair (warps 2p and 2p + 1) has an odd p (or an
  /// even one).
  Value inPairOfParity(bool odd) {
    return cmp(odd ? arith::CmpIPredicate::ne : arith::CmpIPredicate::eq,
               rem(div(warp, c32(2)), c32(2)), c32(0));
  }
  /// The first row of a step's query block (i64) in the [B·Hq·S, ·]
  /// views with S rows a head: Q and dO's Sq, or (`padded`) the query side
  /// f32 arrays' Sq rounded up to whole blocks.
  Value queryRow(const Step &s, bool padded = true) {
    Value row = add(mul(add(mul(batch, c32(config.heads)), s.head),
                        c32(padded ? config.paddedSeqQ() : config.seqQ)),
                    mul(s.queryBlock, c32(config.blockM)));
    return wide(row);
  }
  Value wide(Value v) { return arith::ExtUIOp::create(b, loc, i64, v); }
  /// Global address of row `row` (i64) of a [rows, D] matrix at `base`.
  Value rowAddress(Value matrix, Value row) {
    Value offset = arith::MulIOp::create(b, loc, row, c64(config.rowBytes()));
    return LLVM::GEPOp::create(b, loc, globalPtr, b.getI8Type(), matrix,
                               ValueRange{offset});
  }
  /// Shared address of `offset(0)` in `stage`.
  Value stageAddress(int64_t offset0, int64_t offset1, Value stage) {
    return add(base, add(c32(offset0), mul(stage, c32(offset1 - offset0))));
  }
  Value qTileAt(Value stage) {
    return stageAddress(config.qOffset(0), config.qOffset(1), stage);
  }
  Value dOTileAt(Value stage) {
    return stageAddress(config.dOOffset(0), config.dOOffset(1), stage);
  }
  Value rowsAt(Value stage) {
    return stageAddress(config.rowsOffset(0), config.rowsOffset(1), stage);
  }

  // The kernel's steps, in the order emit() calls them.
  void locateBlock(gpu::GPUFuncOp func);
  void copyStep(Value j);
  void prefetch(Value j);
  scf::ForOp emitStepLoop();
  void emitStep(scf::ForOp loop);
  struct StepScores {
    Step step;
    Value qTile, dOTile;
    SmallVector<Value> p, dS;
  };
  StepScores scoresOf(Value j);
  void emitRegisterScoresStep(Value j, MutableArrayRef<Value> dKAcc,
                              MutableArrayRef<Value> dVAcc);
  void emitSharedScoresStep(Value j, MutableArrayRef<Value> dKAcc,
                            MutableArrayRef<Value> dVAcc);
  SmallVector<Value> transposedScores(Value rows, Value columns);
  /// A fragments of this warp's key rows of a [blockN, ·] tile `tile`
  /// (rows of `rowBytes`): (m, k) gives key tile m's k16 step k, matrices
  /// (rows 0-7 | 8-15) × (columns 0-7 | 8-15), by ldmatrix.
  std::function<SmallVector<Value>(int64_t, int64_t)>
  keyRowFragments(Value tile, int64_t rowBytes);
  /// acc[m][2·pair + h] += a[m]·(f[2h], f[2h + 1]) for each A tile m and
  /// h = 0, 1 (acc: [a.size()][tiles][4]): one ldmatrix.x4 of B feeds two
  /// 8-column tiles of every A tile.
  void mmaTilePair(ArrayRef<SmallVector<Value>> a, ArrayRef<Value> f,
                   int64_t pair, MutableArrayRef<Value> acc) {
    const int64_t tiles = acc.size() / 4 / a.size();
    for (int64_t m = 0; m < int64_t(a.size()); ++m) {
      for (int64_t h = 0; h < 2; ++h) {
        int64_t n = 4 * (m * tiles + 2 * pair + h);
        SmallVector<Value> part(acc.begin() + n, acc.begin() + n + 4);
        part = mma(a[m], f[2 * h], f[2 * h + 1], part);
        std::copy(part.begin(), part.end(), acc.begin() + n);
      }
    }
  }
  void scoresGrad(ArrayRef<Value> s, ArrayRef<Value> dp, Value stage,
                  Value queryPos, SmallVectorImpl<Value> &p,
                  SmallVectorImpl<Value> &dS);
  void accumulate(llvm::function_ref<SmallVector<Value>(int64_t, int64_t)> aAt,
                  int64_t aTiles, int64_t kSteps, Value bTile,
                  int64_t bRowBytes, Value firstChunk,
                  MutableArrayRef<Value> acc);
  Value dSTileAt(Value parity) {
    return add(base, add(c32(config.dSOffset(0)),
                         mul(parity, c32(config.dSTileBytes()))));
  }
  void storeScoresGrad(ArrayRef<Value> dSFragments, Value tile);
  void addQueryGrad(const Step &step, Value dSTile);
  void storeGrad(ArrayRef<Value> acc, Value scale, Value out);
  void exchangePartials(ArrayRef<Value> dK, ArrayRef<Value> dV, Value second,
                        SmallVectorImpl<Value> &sum);

  const KernelConfig &config;
  /// A warp's key rows are `keyTiles` 16-row tiles; its query columns
  /// `queryTiles` 8-column ones.
  const int64_t keyTiles = config.querySplit(),
                queryTiles = config.warpQueryColumns() / 8;
  /// A warp's dK (and dV) accumulators: keyTiles × [16, its head
  /// columns] f32.
  const int64_t accCount = keyTiles * config.warpGradColumns() / 2;
  Value tid, warp, lane, g, t, lane8, warpRow, queryColumn0, gradColumn0;
  /// The thread's warp and lane, and what the fragments' addresses derive
  /// from them (g, t, lane8, the warp's first key row and query column),
  /// built from `warpIndex`, `laneIndex`.
  void setLane(Value warpIndex, Value laneIndex) {
    warp = warpIndex;
    lane = laneIndex;
    g = div(lane, c32(4));
    t = rem(lane, c32(4));
    lane8 = rem(lane, c32(8));
    gradColumn0 = c32(0);
    if (keyTiles == 1) {
      warpRow = mul(warp, c32(kWarpRows));
      queryColumn0 = c32(0);
      return;
    }
    Value half = rem(warp, c32(keyTiles));
    warpRow = mul(div(warp, c32(keyTiles)), c32(config.warpKeyRows()));
    queryColumn0 = mul(half, c32(config.warpQueryColumns()));
    if (config.sharedScores())
      gradColumn0 = mul(half, c32(config.warpGradColumns()));
  }
  Value base, queries, keys, values, outputGrads, lse, rowDots, queryGradSum,
      keyGrads, valueGrads;
  Value batch, kvHead, kv0, kvRow, firstBlock, rotation, steps;
  Value zero;
};

void GradKernelEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  locateBlock(func);
  // K and V once, in the first group with step 0's tiles (rows past a
  // ragged Skv zero-filled).
  Value validKeys = config.raggedKV() ? sub(c32(config.seqKV), kv0) : Value();
  copyTileAsync(add(base, c32(config.kOffset())), rowAddress(keys, kvRow),
                config.blockN, config.rowBytes(), config.rowBytes(), tid,
                config.threads(), validKeys);
  copyTileAsync(add(base, c32(config.vOffset())), rowAddress(values, kvRow),
                config.blockN, config.rowBytes(), config.rowBytes(), tid,
                config.threads(), validKeys);
  for (int64_t s = 0; s + 1 < config.stages; ++s)
    prefetch(c32(s));
  scf::ForOp loop = emitStepLoop();
  if (!config.sharedScores()) {
    // The last step's dQ, once every warp has stored its dSᵀ rows.
    NVVM::Barrier0Op::create(b, loc);
    Value last = sub(steps, c32(1));
    emitIf(cmp(arith::CmpIPredicate::sgt, steps, c32(0)),
           [&] { addQueryGrad(stepAt(last), dSTileAt(rem(last, c32(2)))); });
  }
  // The last (empty) groups: nothing may be in flight when the block ends.
  NVVM::CpAsyncWaitGroupOp::create(b, loc, 0);
  auto results = loop.getResults();
  SmallVector<Value> dK(results.begin(), results.begin() + accCount);
  SmallVector<Value> dV(results.begin() + accCount, results.end());
  // dK carries the scores' scale; dV has none.
  if (!config.sumsPartials()) {
    storeGrad(dK, cf(config.scale), keyGrads);
    storeGrad(dV, cf(1.0), valueGrads);
  } else {
    // Each warp of a pair stores one of the pair's sums: the first dK, the
    // second dV.
    Value second = cmp(arith::CmpIPredicate::ne, queryColumn0, c32(0));
    SmallVector<Value> sum;
    exchangePartials(dK, dV, second, sum);
    storeGrad(sum, select(second, cf(1.0), cf(config.scale)),
              LLVM::SelectOp::create(b, loc, second, valueGrads, keyGrads));
  }
  gpu::ReturnOp::create(b, loc);
}

/// The arguments as global pointers, this thread's warp and lane, the key
/// block's first row and the steps that see it.
void GradKernelEmitter::locateBlock(gpu::GPUFuncOp func) {
  queries = globalPointerOf(func.getArgument(0));
  keys = globalPointerOf(func.getArgument(1));
  values = globalPointerOf(func.getArgument(2));
  outputGrads = globalPointerOf(func.getArgument(3));
  lse = globalPointerOf(func.getArgument(4));
  rowDots = globalPointerOf(func.getArgument(5));
  queryGradSum = pointerOf(func.getArgument(6));
  keyGrads = pointerOf(func.getArgument(7));
  valueGrads = pointerOf(func.getArgument(8));

  tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  Value keyBlock = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  kvHead = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::y));
  batch = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::z));
  setLane(div(tid, c32(kWarp)), rem(tid, c32(kWarp)));
  kv0 = mul(keyBlock, c32(config.blockN));
  kvRow = wide(add(mul(add(mul(batch, c32(config.kvHeads)), kvHead),
                       c32(config.seqKV)),
                   kv0));
  if (config.rotatesQueryBlocks())
    rotation = rem(keyBlock, c32(config.queryBlocks()));
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
  base = alignedSharedBase(kSharedMemorySymbol, kTileAlignment);
  zero = cf(0.0);
}

/// Issues the copies of step j's Q and dO tiles and lse and D rows into
/// stage j % stages.
void GradKernelEmitter::copyStep(Value j) {
  Value stage = rem(j, c32(config.stages));
  Step step = stepAt(j);
  // Q and dO at their rows (past a ragged Sq zero-filled); lse and D from
  // the padded arrays.
  Value tileRow = queryRow(step, /*padded=*/false);
  Value validQueries =
      config.raggedQ()
          ? sub(c32(config.seqQ), mul(step.queryBlock, c32(config.blockM)))
          : Value();
  copyTileAsync(qTileAt(stage), rowAddress(queries, tileRow), config.blockM,
                config.rowBytes(), config.rowBytes(), tid, config.threads(),
                validQueries);
  copyTileAsync(dOTileAt(stage), rowAddress(outputGrads, tileRow),
                config.blockM, config.rowBytes(), config.rowBytes(), tid,
                config.threads(), validQueries);
  Value row = queryRow(step);
  // lse, then D: blockM · 4 bytes each, 16 bytes a thread.
  const int64_t chunks = config.blockM * 4 / kChunkBytes;
  auto copier = scf::IfOp::create(
      b, loc, cmp(arith::CmpIPredicate::ult, tid, c32(2 * chunks)),
      /*withElse=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(copier.thenBlock());
  Value isD = cmp(arith::CmpIPredicate::uge, tid, c32(chunks));
  Value chunk = rem(tid, c32(chunks));
  Value source = LLVM::SelectOp::create(b, loc, isD, rowDots, lse);
  Value offset = add(mul(row, c64(4)), wide(mul(chunk, c32(kChunkBytes))));
  Value src = LLVM::GEPOp::create(b, loc, globalPtr, b.getI8Type(), source,
                                  ValueRange{offset});
  Value target = add(rowsAt(stage), mul(tid, c32(kChunkBytes)));
  NVVM::CpAsyncOp::create(b, loc, sharedPointer(target), src, kChunkBytes,
                          NVVM::LoadCacheModifierKind::CG, Value());
}

/// Copies step j when it exists; commits a group either way, so that every
/// step waits with the same count.
void GradKernelEmitter::prefetch(Value j) {
  emitIf(cmp(arith::CmpIPredicate::slt, j, steps), [&] { copyStep(j); });
  NVVM::CpAsyncCommitGroupOp::create(b, loc);
}

/// The loop over steps; it carries the dK, then the dV accumulators.
scf::ForOp GradKernelEmitter::emitStepLoop() {
  SmallVector<Value> init(2 * accCount, zero);
  auto loop = scf::ForOp::create(b, loc, c32(0), steps, c32(1), init);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  emitStep(loop);
  return loop;
}

void GradKernelEmitter::emitStep(scf::ForOp loop) {
  Value j = loop.getInductionVar();
  // The warp and lane taken anew each step: as loop invariants, LLVM
  // hoisted every swizzled shared address derived from them out of the
  // loop (255 registers at D 64; at D 128 ptxas spilled 104–244 bytes).
  // Recomputed, the addresses cost about 3% more instructions a step.
  auto outer = std::make_tuple(warp, lane, g, t, lane8, warpRow, queryColumn0,
                               gradColumn0);
  setLane(opaqueCopy(warp), opaqueCopy(lane));
  auto args = loop.getRegionIterArgs();
  SmallVector<Value> dKAcc(args.begin(), args.begin() + accCount);
  SmallVector<Value> dVAcc(args.begin() + accCount, args.end());

  // Step j has landed for every thread; every warp is past step j − 1's
  // math (its stage, which the copy of step j + stages − 1 overwrites; its
  // dSᵀ tile, complete now) and past step j − 2's dQ (the dSᵀ tile this
  // step overwrites).
  NVVM::CpAsyncWaitGroupOp::create(b, loc, config.stages - 2);
  NVVM::Barrier0Op::create(b, loc);
  prefetch(add(j, c32(config.stages - 1)));
  if (config.sharedScores()) {
    emitSharedScoresStep(j, dKAcc, dVAcc);
  } else {
    emitRegisterScoresStep(j, dKAcc, dVAcc);
  }

  SmallVector<Value> next(dKAcc);
  llvm::append_range(next, dVAcc);
  scf::YieldOp::create(b, loc, next);
  // The code after the loop (the dK and dV stores) uses the outer ones.
  std::tie(warp, lane, g, t, lane8, warpRow, queryColumn0, gradColumn0) = outer;
}

/// A step with Pᵀ and dSᵀ in registers: step j − 1's dQ (from its dSᵀ
/// tile, whose reductions overlap this step's math), Sᵀ, dPᵀ, dV and dK,
/// and this step's dSᵀ into the tile of its parity.
void GradKernelEmitter::emitRegisterScoresStep(Value j,
                                               MutableArrayRef<Value> dKAcc,
                                               MutableArrayRef<Value> dVAcc) {
  // Split warps: odd pairs take step j − 1's dQ after the scores' math,
  // so that half of the warps load K and dSᵀ while the other half computes
  // exponentials, not all of them at once after the barrier.
  Value started = cmp(arith::CmpIPredicate::sgt, j, c32(0));
  Value early = started, late;
  if (config.querySplit() > 1) {
    early = arith::AndIOp::create(b, loc, started, inPairOfParity(false));
    late = arith::AndIOp::create(b, loc, started, inPairOfParity(true));
  }
  auto previousQueryGrad = [&](Value when) {
    emitIf(when, [&] {
      Value p = sub(j, c32(1));
      addQueryGrad(stepAt(p), dSTileAt(rem(p, c32(2))));
    });
  };
  previousQueryGrad(early);
  StepScores step = scoresOf(j);
  if (late)
    previousQueryGrad(late);
  // The accumulators of 8-column tiles 2k and 2k + 1 of key tile m are
  // the A fragment of its k16 step k.
  auto fromAccumulators = [this](ArrayRef<Value> packed) {
    return [packed, this](int64_t m, int64_t k) {
      return SmallVector<Value>(packed.slice(2 * queryTiles * m + 4 * k, 4));
    };
  };
  // dO's and Q's rows of the warp's query columns.
  Value columnRows = mul(queryColumn0, c32(config.rowBytes()));
  const int64_t kSteps = config.warpQueryColumns() / 16;
  accumulate(fromAccumulators(step.p), keyTiles, kSteps,
             add(step.dOTile, columnRows), config.rowBytes(), c32(0), dVAcc);
  accumulate(fromAccumulators(step.dS), keyTiles, kSteps,
             add(step.qTile, columnRows), config.rowBytes(), c32(0), dKAcc);
  storeScoresGrad(step.dS, dSTileAt(rem(j, c32(2))));
}

/// A step with Pᵀ and dSᵀ through shared memory (sharedScores): Sᵀ and dPᵀ
/// of the warp's half of the query columns, Pᵀ and dSᵀ into their tiles, a
/// barrier; then dV and dK of the warp's half of the head columns over all
/// the step's queries (A from the tiles by ldmatrix, as K's rows are for
/// Sᵀ) and the step's dQ piece. The next step's barrier frees the tiles.
void GradKernelEmitter::emitSharedScoresStep(Value j,
                                             MutableArrayRef<Value> dKAcc,
                                             MutableArrayRef<Value> dVAcc) {
  Value dSTile = dSTileAt(c32(0)), pTile = dSTileAt(c32(1));
  StepScores step = scoresOf(j);
  storeScoresGrad(step.p, pTile);
  storeScoresGrad(step.dS, dSTile);
  NVVM::Barrier0Op::create(b, loc);
  Value firstChunk = div(gradColumn0, c32(8));
  // Odd warp pairs take the dQ piece first, even ones last, so that the
  // block's reductions are spread over the phase, not all at its end.
  auto queryGrad = [&] { addQueryGrad(step.step, dSTile); };
  emitIf(inPairOfParity(true), queryGrad);
  accumulate(keyRowFragments(pTile, config.dSRowBytes()), keyTiles,
             config.blockM / 16, step.dOTile, config.rowBytes(), firstChunk,
             dVAcc);
  accumulate(keyRowFragments(dSTile, config.dSRowBytes()), keyTiles,
             config.blockM / 16, step.qTile, config.rowBytes(), firstChunk,
             dKAcc);
  emitIf(inPairOfParity(false), queryGrad);
}

/// Step j's stage tiles and its Pᵀ and dSᵀ, packed in 16-bit pairs.
GradKernelEmitter::StepScores GradKernelEmitter::scoresOf(Value j) {
  StepScores out;
  Value stage = rem(j, c32(config.stages));
  out.step = stepAt(j);
  out.qTile = qTileAt(stage);
  out.dOTile = dOTileAt(stage);
  Value queryPos = mul(out.step.queryBlock, c32(config.blockM));
  SmallVector<Value> s =
      transposedScores(add(base, c32(config.kOffset())), out.qTile);
  SmallVector<Value> dp =
      transposedScores(add(base, c32(config.vOffset())), out.dOTile);
  SmallVector<Value> p, dS;
  scoresGrad(s, dp, stage, queryPos, p, dS);
  for (int64_t r = 0; r < int64_t(p.size()) / 2; ++r) {
    out.p.push_back(packHalf2(p[2 * r], p[2 * r + 1]));
    out.dS.push_back(packHalf2(dS[2 * r], dS[2 * r + 1]));
  }
  return out;
}

std::function<SmallVector<Value>(int64_t, int64_t)>
GradKernelEmitter::keyRowFragments(Value tile, int64_t rowBytes) {
  Value row =
      add(warpRow, add(lane8, mul(rem(div(lane, c32(8)), c32(2)), c32(8))));
  Value half = div(lane, c32(16));
  return [=, this](int64_t m, int64_t k) {
    return loadMatrices(chunkAddress(tile, add(row, c32(16 * m)),
                                     add(c32(2 * k), half), rowBytes),
                        /*transpose=*/false);
  };
}

/// This warp's key rows of `rows` ([blockN, D]; keyTiles tiles of 16)
/// times its query columns of `columns` ([blockM, D]) transposed:
/// accumulators [keyTiles][queryTiles][4]. A by ldmatrix (matrices rows
/// 0-7 | 8-15 × columns 0-7 | 8-15 of the k16 step), B as K in the forward
/// (two 8-row tiles of `columns` a load, shared by the key tiles).
SmallVector<Value> GradKernelEmitter::transposedScores(Value rows,
                                                       Value columns) {
  const int64_t rowBytes = config.rowBytes();
  SmallVector<Value> s(4 * keyTiles * queryTiles, zero);
  auto aAt = keyRowFragments(rows, rowBytes);
  Value bRow = add(queryColumn0, add(lane8, mul(div(lane, c32(16)), c32(8))));
  Value bHalf = rem(div(lane, c32(8)), c32(2));
  for (int64_t k = 0; k < config.headDim / 16; ++k) {
    SmallVector<SmallVector<Value>> a;
    for (int64_t m = 0; m < keyTiles; ++m)
      a.push_back(aAt(m, k));
    for (int64_t pair = 0; pair < queryTiles / 2; ++pair) {
      SmallVector<Value> f = loadMatrices(
          chunkAddress(columns, add(bRow, c32(16 * pair)),
                       add(c32(2 * k), bHalf), rowBytes),
          /*transpose=*/false);
      mmaTilePair(a, f, pair, s);
    }
  }
  return s;
}

/// Pᵀ and dSᵀ from the step's Sᵀ and dPᵀ. Element e of 8-column tile n of
/// key tile m: key row warpRow + 16m + g + 8·((e/2)%2), query column
/// queryColumn0 + 8n + 2t + e%2; lse and D by query column, from the
/// stage's rows.
void GradKernelEmitter::scoresGrad(ArrayRef<Value> s, ArrayRef<Value> dp,
                                   Value stage, Value queryPos,
                                   SmallVectorImpl<Value> &p,
                                   SmallVectorImpl<Value> &dS) {
  const double scaleLog2 = config.scale * M_LOG2E;
  Value lseRows = rowsAt(stage);
  Value dRows = add(lseRows, c32(config.blockM * 4));
  Type v2f32 = VectorType::get({2}, f32);
  Value column0 = add(queryColumn0, mul(t, c32(2)));
  Value keyRow = add(kv0, add(warpRow, g));
  p.assign(s.size(), Value());
  dS.assign(s.size(), Value());
  for (int64_t n = 0; n < queryTiles; ++n) {
    Value column = add(column0, c32(8 * n));
    Value lsePair = LLVM::LoadOp::create(
        b, loc, v2f32, sharedPointer(add(lseRows, mul(column, c32(4)))), 8);
    Value dPair = LLVM::LoadOp::create(
        b, loc, v2f32, sharedPointer(add(dRows, mul(column, c32(4)))), 8);
    Value lse2[2], dRow[2];
    for (int64_t h = 0; h < 2; ++h) {
      lse2[h] = fmul(LLVM::ExtractElementOp::create(b, loc, lsePair, c64(h)),
                     cf(M_LOG2E));
      dRow[h] = LLVM::ExtractElementOp::create(b, loc, dPair, c64(h));
    }
    for (int64_t m = 0; m < keyTiles; ++m) {
      for (int64_t e = 0; e < 4; ++e) {
        int64_t i = 4 * (m * queryTiles + n) + e;
        // P = exp(scale·s − lse), in exp2.
        Value pe = exp2(fma(s[i], cf(scaleLog2),
                            arith::NegFOp::create(b, loc, lse2[e % 2])));
        Value key = add(keyRow, c32(16 * m + 8 * ((e / 2) % 2)));
        if (config.causal) {
          // Hidden when the key is past the query's diagonal (rows with no
          // visible key have lse = −inf: their P is selected away here).
          Value query = add(queryPos, add(column, c32(e % 2)));
          Value hidden = cmp(arith::CmpIPredicate::sgt, key,
                             add(query, c32(config.seqKV - config.seqQ)));
          pe = select(hidden, zero, pe);
        }
        // Keys past a ragged Skv: K and V read zeros there, but P =
        // exp(−lse) may overflow, and 0 · inf would reach dQ.
        if (config.raggedKV())
          pe = select(cmp(arith::CmpIPredicate::sge, key, c32(config.seqKV)),
                      zero, pe);
        p[i] = pe;
        dS[i] = fmul(pe, arith::SubFOp::create(b, loc, dp[i], dRow[e % 2]));
      }
    }
  }
}

/// acc ([aTiles][tiles][4], each [16, 8·tiles]) += A·B over `kSteps` k16
/// steps: `aAt(m, k)` gives A tile m's fragment of step k; B is `bTile`
/// ([k, n] rows of `bRowBytes`, from 16-byte chunk `firstChunk`, i32) by
/// ldmatrix.trans, as V in the forward: matrices (k 0-7 | 8-15) × (columns
/// 0-7 | 8-15 of a pair of 8-column tiles), shared by the A tiles.
void GradKernelEmitter::accumulate(
    llvm::function_ref<SmallVector<Value>(int64_t, int64_t)> aAt,
    int64_t aTiles, int64_t kSteps, Value bTile, int64_t bRowBytes,
    Value firstChunk, MutableArrayRef<Value> acc) {
  const int64_t tiles = acc.size() / 4 / aTiles;
  Value kRow = add(lane8, mul(rem(div(lane, c32(8)), c32(2)), c32(8)));
  Value half = div(lane, c32(16));
  for (int64_t k = 0; k < kSteps; ++k) {
    SmallVector<SmallVector<Value>> a;
    for (int64_t m = 0; m < aTiles; ++m)
      a.push_back(aAt(m, k));
    Value row = add(kRow, c32(16 * k));
    for (int64_t pair = 0; pair < tiles / 2; ++pair) {
      SmallVector<Value> f = loadMatrices(
          chunkAddress(bTile, row, add(firstChunk, add(c32(2 * pair), half)),
                       bRowBytes),
          /*transpose=*/true);
      mmaTilePair(a, f, pair, acc);
    }
  }
}

/// This warp's dSᵀ rows into a dSᵀ tile `tile` ([blockN, blockM] 16-bit):
/// fragment 2(m·queryTiles + n) + i holds row 16m + g + 8i, columns
/// queryColumn0 + 8n + 2t, + 1.
void GradKernelEmitter::storeScoresGrad(ArrayRef<Value> dSFragments,
                                        Value tile) {
  Value firstChunk = div(queryColumn0, c32(8));
  for (int64_t m = 0; m < keyTiles; ++m) {
    for (int64_t n = 0; n < queryTiles; ++n) {
      for (int64_t i = 0; i < 2; ++i) {
        Value row = add(warpRow, add(g, c32(16 * m + 8 * i)));
        Value address = add(chunkAddress(tile, row, add(firstChunk, c32(n)),
                                         config.dSRowBytes()),
                            mul(t, c32(4)));
        LLVM::StoreOp::create(b, loc, dSFragments[2 * (m * queryTiles + n) + i],
                              sharedPointer(address), 4);
      }
    }
  }
}

/// This warp's piece of a step's dQ = dS·K from its dSᵀ tile (query rows
/// 16·r·m.. of the block, r = dQRowTiles(), columns c·dQColumns()..,
/// m = warp % pieces, c = warp / pieces, pieces = blockM / (16·r)) over
/// the block's key rows, added into the accumulator.
/// dS's A fragments come from the dSᵀ tile ([k, m]) by ldmatrix.trans:
/// lane i gives row 8·(i/16) + i%8 of the k16 step and m chunk
/// 2·m + (i/8)%2, so that matrices are (m 0-7 | 8-15) × (k 0-7 | 8-15).
void GradKernelEmitter::addQueryGrad(const Step &step, Value dSTile) {
  const int64_t rowTiles = config.dQRowTiles();
  const int64_t pieces = config.blockM / (kWarpRows * rowTiles);
  const int64_t columns = config.dQColumns(), tiles = columns / 8;
  Value kTile = add(base, c32(config.kOffset()));
  Value piece = rem(warp, c32(pieces));
  Value columnBlock = div(warp, c32(pieces));
  Value firstTile = mul(piece, c32(rowTiles));
  Value aRow = add(lane8, mul(div(lane, c32(16)), c32(8)));
  Value aHalf = rem(div(lane, c32(8)), c32(2));
  auto fromScoresGrad = [&](int64_t r, int64_t k) {
    Value aChunk = add(mul(add(firstTile, c32(r)), c32(2)), aHalf);
    return loadMatrices(chunkAddress(dSTile, add(aRow, c32(16 * k)), aChunk,
                                     config.dSRowBytes()),
                        /*transpose=*/true);
  };
  SmallVector<Value> dq(rowTiles * columns / 2, zero);
  accumulate(fromScoresGrad, rowTiles, config.blockN / 16, kTile,
             config.rowBytes(), mul(columnBlock, c32(tiles)), dq);

  // Lane (g, t) holds rows g, g + 8 × columns 2t, 2t + 1 of each 8-column
  // tile. One exchange with the lane of row g ^ 1 makes each red cover
  // whole 32-byte sectors (8 columns of 4 rows) instead of half-filled
  // ones (4 columns of 8 rows): the even rows with the even lanes' first
  // and the odd lanes' second column, then the odd rows.
  Value odd = cmp(arith::CmpIPredicate::ne,
                  arith::AndIOp::create(b, loc, g, c32(1)), c32(0));
  Value evenRow = arith::AndIOp::create(b, loc, g, c32(~1));
  Value column0 = add(mul(columnBlock, c32(columns)),
                      add(mul(t, c32(2)), arith::ExtUIOp::create(b, loc, i32, odd)));
  // One address a lane and step: its reductions' elements differ by
  // constants (rows 16r + 8i + h, columns 8n), which go into the
  // instruction's offset; each address computed in 64 bits cost about
  // five integer instructions a reduction.
  Value laneRow =
      add(queryRow(step), wide(add(mul(firstTile, c32(16)), evenRow)));
  Value laneElement = add(mul(laneRow, c64(config.headDim)), wide(column0));
  Value laneAddress =
      LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), queryGradSum,
                          ValueRange{mul(laneElement, c64(4))});
  for (int64_t r = 0; r < rowTiles; ++r) {
    for (int64_t n = 0; n < tiles; ++n) {
      for (int64_t i = 0; i < 2; ++i) {
        int64_t a = 4 * (r * tiles + n) + 2 * i;
        Value first = dq[a], second = dq[a + 1];
        Value received = shuffleXor(select(odd, first, second), 4);
        Value values[2] = {select(odd, received, first),
                           select(odd, second, received)};
        for (int64_t h = 0; h < 2; ++h) {
          int64_t offset = ((16 * r + 8 * i + h) * config.headDim + 8 * n) * 4;
          asmOp(Type(), {laneAddress, values[h]},
                ("red.global.add.f32 [$0+" + Twine(offset) + "], $1;").str(),
                "l,f", /*sideEffects=*/true);
        }
      }
    }
  }
}

/// Split warps (sumsPartials): each warp of a pair holds partial dK and dV
/// sums over its half of the query columns. Through shared memory (the
/// tiles are free after the last step), the second warp of the pair
/// (`second`) gives the first its dK and the first the second its dV;
/// `sum` is then the first's whole dK, the second's whole dV. A region of a
/// warp's partials is [accCount, 32 lanes] f32, so that a lane's stores hit
/// distinct banks.
void GradKernelEmitter::exchangePartials(ArrayRef<Value> dK, ArrayRef<Value> dV,
                                         Value second,
                                         SmallVectorImpl<Value> &sum) {
  const int64_t regionBytes = accCount * kWarp * 4;
  Value pairRegion = mul(div(warp, c32(2)), c32(2));
  auto elementAt = [&](Value region, int64_t i) {
    return sharedPointer(add(add(base, mul(region, c32(regionBytes))),
                             mul(add(c32(i * kWarp), lane), c32(4))));
  };
  // Every warp's last dQ piece has read K and the dSᵀ tiles.
  NVVM::Barrier0Op::create(b, loc);
  Value give = add(pairRegion, select(second, c32(0), c32(1)));
  for (int64_t i = 0; i < accCount; ++i)
    LLVM::StoreOp::create(b, loc, select(second, dK[i], dV[i]),
                          elementAt(give, i), 4);
  NVVM::Barrier0Op::create(b, loc);
  Value take = add(pairRegion, select(second, c32(1), c32(0)));
  for (int64_t i = 0; i < accCount; ++i) {
    Value other = LLVM::LoadOp::create(b, loc, f32, elementAt(take, i), 4);
    sum.push_back(fadd(select(second, dV[i], dK[i]), other));
  }
}

/// This warp's key rows of dK or dV (times `scale`) into `out` ([B, Hkv,
/// Skv, D]), a register pair a store.
void GradKernelEmitter::storeGrad(ArrayRef<Value> acc, Value scale, Value out) {
  const int64_t d = config.headDim, tiles = config.warpGradColumns() / 8;
  Value column0 = add(gradColumn0, mul(t, c32(2)));
  for (int64_t m = 0; m < keyTiles; ++m) {
    Value firstRow = add(kvRow, wide(add(warpRow, add(g, c32(16 * m)))));
    for (int64_t n = 0; n < tiles; ++n) {
      for (int64_t i = 0; i < 2; ++i) {
        // Rows past a ragged Skv are the next head's: not stored.
        OpBuilder::InsertionGuard guard(b);
        if (config.raggedKV()) {
          Value key = add(kv0, add(warpRow, add(g, c32(16 * m + 8 * i))));
          auto inside = scf::IfOp::create(
              b, loc, cmp(arith::CmpIPredicate::slt, key, c32(config.seqKV)),
              /*withElse=*/false);
          b.setInsertionPointToStart(inside.thenBlock());
        }
        Value row = add(firstRow, c64(8 * i));
        Value element = add(mul(row, c64(d)), wide(add(column0, c32(8 * n))));
        Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), out,
                                            ValueRange{mul(element, c64(2))});
        int64_t a = 4 * (m * tiles + n) + 2 * i;
        Value lo = fmul(acc[a], scale), hi = fmul(acc[a + 1], scale);
        LLVM::StoreOp::create(b, loc, packHalf2(lo, hi), address, 4);
      }
    }
  }
}

} // namespace

gpu::GPUFuncOp bpt::sm80::getOrBuildAttentionGradKernel(
    ModuleOp module, const AttentionGradKernelConfig &config, Type element,
    Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM80KernelModule(module);
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  auto q = MemRefType::get(
      {config.batch, config.heads, config.seqQ, config.headDim}, element);
  auto kv = MemRefType::get(
      {config.batch, config.kvHeads, config.seqKV, config.headDim}, element);
  int64_t queryRows = config.paddedSeqQ();
  auto rows = MemRefType::get({config.batch, config.heads, queryRows}, f32);
  SmallVector<Type> inputs = {
      q,
      kv,
      kv,
      q,
      rows,
      rows,
      MemRefType::get({config.batch, config.heads, queryRows, config.headDim},
                      f32),
      kv,
      kv};
  gpu::GPUFuncOp func = createKernel(kernels, config.kernelName(), inputs,
                                     config.threads(), loc);
  OpBuilder b(ctx);
  GradKernelEmitter(b, loc, config).emit(func);
  return func;
}
