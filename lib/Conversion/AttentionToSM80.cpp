//===- AttentionToSM80.cpp - bpt.attention on mma.sync tensor cores -------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces an eligible bpt.attention by a launch of a kernel for the
// tensor cores every chip since sm_80 has (warp-level `mma.sync`): the
// fallback of the Hopper path, for chips without wgmma and TMA. The
// algorithm is bpt-tile-attention's (query blocks, an online softmax over
// key/value blocks) with its tiles in registers and shared memory:
//
//   - a thread block of `blockM / 16` warps owns blockM query rows of one
//     head, 16 rows a warp; all its threads copy Q once and a ring of K/V
//     blocks with `cp.async` (16 bytes a thread), one commit group a block,
//     so that the copy of block j + stages - 1 overlaps the math of block j;
//   - each warp keeps its Q rows as mma A fragments (ldmatrix) for the
//     whole loop, computes S = Q·Kᵀ with m16n8k16 `mma.sync` (K fragments
//     by ldmatrix), the exp2 online softmax on the accumulators, and
//     O += P·V with P taken straight from the S accumulators (their layout
//     is the A fragment's) and V fragments by ldmatrix.trans;
//   - causal attention skips key blocks through the loop bound and masks
//     only the blocks that straddle the diagonal;
//   - the epilogue stages O through the (by then unused) Q tile so that the
//     global stores are 16 bytes a thread and coalesced.
//
// Split over the keys (decode and short queries, the partial nest of
// #bpt.split_kv_nest): the same kernel computes, per thread block, one
// split of the key blocks for all query rows of one key/value group. Those
// rows are contiguous in Q ([B, Hq, Sq, D]: the group's heads are
// neighbours), so the Q tile is one copy of heads × Sq rows (zero-filled
// up to the warps' 16-row tiles) and K and V are read once per group, not
// once per query head. A row's causal position is its index modulo Sq. The
// epilogue writes the rows normalised in f32 and their log-sum-exp into
// the partial buffers; the combine nest (portable) merges the splits.
//
// Tiles are [rows, D] rows of 16-byte chunks, chunk c of row r stored at
// chunk c ^ (r % 8): the eight rows one ldmatrix phase reads fall in eight
// different bank groups.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "AttentionMath.h"
#include "AttentionNest.h"
#include "SM80Kernels.h"
#include "StrategyOps.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

namespace bpt {
#define GEN_PASS_DEF_BPTATTENTIONTOSM80
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::codegen;
using namespace bpt::sm80;

namespace {

using KernelConfig = AttentionKernelConfig;

class KernelEmitter : public SM80Emitter {
public:
  KernelEmitter(OpBuilder &b, Location loc, const KernelConfig &config)
      : SM80Emitter(b, loc, config.bf16), config(config),
        math(b, loc, config.bf16) {}

  void emit(gpu::GPUFuncOp func);

private:
  /// Global address of row `row` (i64) of a [rows, D] matrix at `base`.
  Value rowAddress(Value base, Value row) {
    Value offset = arith::MulIOp::create(b, loc, row, c64(config.rowBytes()));
    return LLVM::GEPOp::create(b, loc, globalPtr, b.getI8Type(), base,
                               ValueRange{offset});
  }
  Value wide(Value v) { return arith::ExtUIOp::create(b, loc, i64, v); }
  /// Issues the copies of key/value block `j` into ring stage `j % stages`.
  void copyKeyValueBlock(Value j) {
    Value stage = rem(j, c32(config.stages));
    Value row = add(kvRow, arith::ExtUIOp::create(
                               b, loc, i64, mul(j, c32(config.blockN))));
    Value offset = mul(stage, c32(config.kvTileBytes()));
    // The last block of a ragged sequence: rows past its end read nothing.
    Value valid = config.raggedKV()
                      ? sub(c32(config.seqKV), mul(j, c32(config.blockN)))
                      : Value();
    copyTileAsync(add(base, add(c32(config.kOffset()), offset)),
                  rowAddress(keys, row), config.blockN, config.rowBytes(),
                  config.rowBytes(), tid, config.threads(), valid);
    copyTileAsync(add(base, add(c32(config.vOffset()), offset)),
                  rowAddress(values, row), config.blockN, config.rowBytes(),
                  config.rowBytes(), tid, config.threads(), valid);
  }
  /// Copies block `j` when it exists; commits a group either way, so that
  /// every iteration waits with the same count.
  void prefetch(Value j) {
    emitIf(cmp(arith::CmpIPredicate::slt, j, numBlocks),
           [&] { copyKeyValueBlock(j); });
    NVVM::CpAsyncCommitGroupOp::create(b, loc);
  }

  // The kernel's steps, in the order emit() calls them.
  void locateBlock(gpu::GPUFuncOp func);
  void copyQueryAndFirstKeyValueBlocks();
  void loadQueryFragments();
  scf::ForOp emitKeyValueLoop();
  void emitKeyValueIteration(scf::ForOp loop);
  SmallVector<Value> computeScores(Value kTile);
  SmallVector<Value> maskScores(Value j, ArrayRef<Value> s);
  void accumulateValues(ArrayRef<Value> p, Value vTile,
                        MutableArrayRef<Value> o);
  void stageOutputInQueryTile(ValueRange results);
  void storeLogSumExp(const Value (&max)[2], const Value (&total)[2]);
  void storeOutputTile();
  void storePartialRows(ValueRange results);

  const KernelConfig &config;
  AttentionMath math;
  Value tid, base, keys, values, kvRow, numBlocks;
  // A split: its first key block (else 0), and the first row of its
  // partials ([B, Hkv, splits, rows] rows).
  Value firstBlock, partialRow;
  // Set by one step and read by later ones.
  Value queries, out, warp, lane, q0, qRow, qTile, validQueries;
  void locateSplit(Value split, Value kvHead, Value batch);
  // The log-sum-exp argument ([B, H, S] f32), or null.
  Value lse;
  // The lane's place in mma fragments: group g (row) and t in the quad.
  Value g, t, lane8, warpRow;
  SmallVector<SmallVector<Value>> qFragments;
  /// Above 128 columns Q's fragments are reloaded from shared memory at
  /// every key block (registers are the output accumulators'): the row and
  /// column half this lane's ldmatrix addresses.
  Value qFragmentRow, qFragmentHalf;
  bool reloadQuery() const { return config.headDim > 128; }
  SmallVector<Value> queryFragment(int64_t k) {
    if (!reloadQuery())
      return qFragments[k];
    return loadMatrices(chunkAddress(qTile, qFragmentRow,
                                     add(c32(2 * k), qFragmentHalf),
                                     config.rowBytes()),
                        /*transpose=*/false);
  }
  Value minusInf, zero, scaleLog2;
};

void KernelEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  locateBlock(func);
  copyQueryAndFirstKeyValueBlocks();
  loadQueryFragments();
  scf::ForOp loop = emitKeyValueLoop();
  if (config.split()) {
    storePartialRows(loop.getResults());
  } else {
    stageOutputInQueryTile(loop.getResults());
    storeOutputTile();
  }
  gpu::ReturnOp::create(b, loc);
}

/// The arguments as global pointers, this thread's warp and lane, the first
/// rows of the block's Q tile and of its head's K/V, and its key blocks.
void KernelEmitter::locateBlock(gpu::GPUFuncOp func) {
  queries = globalPointerOf(func.getArgument(0));
  keys = globalPointerOf(func.getArgument(1));
  values = globalPointerOf(func.getArgument(2));
  out = globalPointerOf(func.getArgument(3));
  // A split's partials: the rows (in place of the output), then their
  // log-sum-exp.
  if (config.lse || config.split())
    lse = globalPointerOf(func.getArgument(4));

  tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  Value bx = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  Value head = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::y));
  Value batch = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::z));
  warp = div(tid, c32(kWarp));
  lane = rem(tid, c32(kWarp));
  if (config.split()) {
    locateSplit(bx, head, batch);
    return;
  }
  int64_t numQBlocks = config.queryBlocks();
  // Causal: the last query blocks have the most key blocks; start them first.
  Value qBlock = config.causal ? sub(c32(numQBlocks - 1), bx) : bx;
  q0 = mul(qBlock, c32(config.blockM));
  Value kvHead = div(head, c32(config.heads / config.kvHeads));
  // First rows of this block's Q tile and of its head's K/V, as rows of the
  // [B * H * S, D] matrices.
  qRow = add(wide(q0), mul(wide(add(mul(batch, c32(config.heads)), head)),
                           c64(config.seqQ)));
  kvRow = mul(wide(add(mul(batch, c32(config.kvHeads)), kvHead)),
              c64(config.seqKV));
  numBlocks = c32(config.keyBlocks());
  if (config.causal)
    numBlocks = math.causalKeyBlocks(q0, config.blockM, config.blockN,
                                     config.seqKV - config.seqQ, numBlocks);

  base = alignedSharedBase(kSharedMemorySymbol, kTileAlignment);
  qTile = base;
}

/// A split's block: `split`, key/value head `kvHead`, `batch`. Its Q tile
/// is the group's rows from query position 0; its key blocks are
/// [split · per, min((split + 1) · per, blocks the rows see)).
void KernelEmitter::locateSplit(Value split, Value kvHead, Value batch) {
  q0 = c32(0);
  Value firstHead = mul(kvHead, c32(config.packedHeads));
  qRow = mul(wide(add(mul(batch, c32(config.heads)), firstHead)),
             c64(config.seqQ));
  Value group = add(mul(batch, c32(config.kvHeads)), kvHead);
  kvRow = mul(wide(group), c64(config.seqKV));
  partialRow = mul(wide(add(mul(group, c32(config.kvSplits)), split)),
                   c64(config.packedRows()));
  Value blocks = c32(config.keyBlocks());
  // The last query row sees the most keys.
  if (config.causal)
    blocks = math.causalKeyBlocks(q0, config.seqQ, config.blockN,
                                  config.seqKV - config.seqQ, blocks);
  firstBlock = mul(split, c32(config.keyBlocksPerSplit()));
  numBlocks = arith::MinSIOp::create(
      b, loc, blocks, add(firstBlock, c32(config.keyBlocksPerSplit())));

  base = alignedSharedBase(kSharedMemorySymbol, kTileAlignment);
  qTile = base;
}

/// Prologue: Q, then the first stages - 1 key/value blocks, a group each.
void KernelEmitter::copyQueryAndFirstKeyValueBlocks() {
  const int64_t rowBytes = config.rowBytes();
  if (config.split())
    validQueries = config.packedRows() < config.blockM
                       ? c32(config.packedRows())
                       : Value();
  else
    validQueries = config.raggedQ() ? sub(c32(config.seqQ), q0) : Value();
  copyTileAsync(qTile, rowAddress(queries, qRow), config.blockM, rowBytes,
                rowBytes, tid, config.threads(), validQueries);
  NVVM::CpAsyncCommitGroupOp::create(b, loc);
  for (int64_t s = 0; s + 1 < config.stages; ++s)
    prefetch(config.split() ? add(firstBlock, c32(s)) : c32(s));
  NVVM::CpAsyncWaitGroupOp::create(b, loc, config.stages - 1);
  NVVM::Barrier0Op::create(b, loc);
}

/// This warp's 16 query rows as A fragments, k16 step by step: matrices
/// (rows 0-7 | 8-15) x (columns 0-7 | 8-15) of the step.
void KernelEmitter::loadQueryFragments() {
  g = div(lane, c32(4));
  t = rem(lane, c32(4));
  lane8 = rem(lane, c32(8));
  warpRow = mul(warp, c32(kWarpRows));
  Value row =
      add(warpRow, add(lane8, mul(rem(div(lane, c32(8)), c32(2)), c32(8))));
  Value half = div(lane, c32(16));
  qFragmentRow = row;
  qFragmentHalf = half;
  if (reloadQuery())
    return;
  for (int64_t k = 0; k < config.headDim / 16; ++k)
    qFragments.push_back(loadMatrices(
        chunkAddress(qTile, row, add(c32(2 * k), half), config.rowBytes()),
        /*transpose=*/false));
}

/// The loop over key/value blocks; it carries the output accumulators and
/// the two rows' running max and sum.
scf::ForOp KernelEmitter::emitKeyValueLoop() {
  const int64_t oTiles = config.headDim / 8;
  minusInf = cf(-INFINITY);
  zero = cf(0.0);
  scaleLog2 = cf(config.scale * M_LOG2E);
  SmallVector<Value> init(4 * oTiles, zero);
  init.append({minusInf, minusInf, zero, zero}); // m0, m1, l0, l1
  auto loop = scf::ForOp::create(b, loc, config.split() ? firstBlock : c32(0),
                                 numBlocks, c32(1), init);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  emitKeyValueIteration(loop);
  return loop;
}

/// One key/value block: its scores, the online softmax over them and the
/// output accumulated, while a later block is being copied.
void KernelEmitter::emitKeyValueIteration(scf::ForOp loop) {
  const int64_t oTiles = config.headDim / 8;
  Value j = loop.getInductionVar();
  auto args = loop.getRegionIterArgs();
  SmallVector<Value> o(args.begin(), args.begin() + 4 * oTiles);
  Value m[2] = {args[4 * oTiles], args[4 * oTiles + 1]};
  Value l[2] = {args[4 * oTiles + 2], args[4 * oTiles + 3]};

  // Block j has landed for every thread; all warps are past block j - 1,
  // whose stage the copy of block j + stages - 1 overwrites.
  NVVM::CpAsyncWaitGroupOp::create(b, loc, config.stages - 2);
  NVVM::Barrier0Op::create(b, loc);
  prefetch(add(j, c32(config.stages - 1)));
  Value offset = mul(rem(j, c32(config.stages)), c32(config.kvTileBytes()));
  Value kTile = add(base, add(c32(config.kOffset()), offset));
  Value vTile = add(base, add(c32(config.vOffset()), offset));

  SmallVector<Value> s = computeScores(kTile);
  if (config.causal || config.raggedKV())
    s = maskScores(j, s);

  // Online softmax in exp2; the output so far is rescaled.
  AttentionMath::RowState rows{{m[0], m[1]}, {l[0], l[1]}};
  SmallVector<Value> p =
      math.softmaxUpdate(s, rows, o, scaleLog2, minusInf, zero);

  accumulateValues(p, vTile, o);

  SmallVector<Value> next(o);
  next.append({rows.max[0], rows.max[1], rows.sum[0], rows.sum[1]});
  scf::YieldOp::create(b, loc, next);
}

/// S = Q·Kᵀ. K's rows are B's columns: one ldmatrix.x4 gives the fragments
/// of two 8-key tiles for one k16 step, matrices (keys 0-7 | 8-15 of the
/// pair) x (columns 0-7 | 8-15 of the step).
SmallVector<Value> KernelEmitter::computeScores(Value kTile) {
  const int64_t sTiles = config.blockN / 8;
  SmallVector<Value> s(4 * sTiles, zero);
  Value keyRow = add(lane8, mul(div(lane, c32(16)), c32(8)));
  Value half = rem(div(lane, c32(8)), c32(2));
  auto step = [&](int64_t pair, int64_t k, ArrayRef<Value> qf) {
    Value row = add(keyRow, c32(16 * pair));
    SmallVector<Value> f = loadMatrices(
        chunkAddress(kTile, row, add(c32(2 * k), half), config.rowBytes()),
        /*transpose=*/false);
    for (int64_t h = 0; h < 2; ++h) {
      int64_t n = 2 * pair + h;
      SmallVector<Value> acc(s.begin() + 4 * n, s.begin() + 4 * n + 4);
      acc = mma(qf, f[2 * h], f[2 * h + 1], acc);
      std::copy(acc.begin(), acc.end(), s.begin() + 4 * n);
    }
  };
  // Each score tile sums its k steps in the same order either way; with
  // reloaded Q fragments, each is loaded once per key block (k outermost).
  const int64_t kSteps = config.headDim / 16;
  if (reloadQuery()) {
    for (int64_t k = 0; k < kSteps; ++k) {
      SmallVector<Value> qf = queryFragment(k);
      for (int64_t pair = 0; pair < sTiles / 2; ++pair)
        step(pair, k, qf);
    }
    return s;
  }
  for (int64_t pair = 0; pair < sTiles / 2; ++pair)
    for (int64_t k = 0; k < kSteps; ++k)
      step(pair, k, qFragments[k]);
  return s;
}

/// Element e of 8-key tile n: row g + 8 * (e / 2), key 8n + 2t + e % 2.
/// Masked: keys past the diagonal (causal) and past the end of a ragged
/// sequence; only blocks that have such keys pay for it.
SmallVector<Value> KernelEmitter::maskScores(Value j, ArrayRef<Value> s) {
  const int64_t bn = config.blockN;
  int64_t offset = config.seqKV - config.seqQ;
  Value blockStart = mul(j, c32(bn));
  Value blockEnd = add(blockStart, c32(bn - 1));
  Value needMask = arith::ConstantOp::create(b, loc, b.getBoolAttr(false));
  // Causal: the block's last key is past the block's first query's limit
  // (the same for all threads).
  if (config.causal)
    needMask = cmp(arith::CmpIPredicate::sgt, blockEnd, add(q0, c32(offset)));
  if (config.raggedKV())
    needMask = arith::OrIOp::create(
        b, loc, needMask,
        cmp(arith::CmpIPredicate::sge, blockEnd, c32(config.seqKV)));
  SmallVector<Type> types(s.size(), f32);
  auto masked = scf::IfOp::create(b, loc, types, needMask, true);
  {
    OpBuilder::InsertionGuard inner(b);
    b.setInsertionPointToStart(masked.thenBlock());
    // Key column k (within the block) is visible when k <= limit - 2t.
    Value keysLeft = sub(c32(config.seqKV - 1), blockStart);
    Value limit[2];
    for (int64_t i = 0; i < 2; ++i) {
      Value bound = keysLeft;
      if (config.causal) {
        Value row = add(q0, add(warpRow, add(g, c32(8 * i))));
        // Packed heads: the tile's rows repeat the query positions.
        if (config.split())
          row = rem(row, c32(config.seqQ));
        bound = arith::MinSIOp::create(b, loc, bound,
                                       sub(add(row, c32(offset)), blockStart));
      }
      limit[i] = sub(bound, mul(t, c32(2)));
    }
    scf::YieldOp::create(b, loc, math.mask(s, limit, minusInf));
    b.setInsertionPointToStart(masked.elseBlock());
    scf::YieldOp::create(b, loc, s);
  }
  return SmallVector<Value>(masked.getResults());
}

/// O += P·V. The accumulators of key tiles 2k and 2k + 1 are the A
/// fragment of k16 step k: (row g, keys 2t..) (row g + 8, keys 2t..) of
/// tile 2k, then the same of tile 2k + 1. V is [keys, D], B is its
/// transpose in fragments: ldmatrix.trans of matrices (keys 0-7 | 8-15 of
/// the step) x (columns 0-7 | 8-15 of a pair of 8-column tiles).
void KernelEmitter::accumulateValues(ArrayRef<Value> p, Value vTile,
                                     MutableArrayRef<Value> o) {
  const int64_t oTiles = config.headDim / 8;
  Value keyRow = add(lane8, mul(rem(div(lane, c32(8)), c32(2)), c32(8)));
  Value half = div(lane, c32(16));
  for (int64_t k = 0; k < config.blockN / 16; ++k) {
    SmallVector<Value> a = {packHalf2(p[8 * k], p[8 * k + 1]),
                            packHalf2(p[8 * k + 2], p[8 * k + 3]),
                            packHalf2(p[8 * k + 4], p[8 * k + 5]),
                            packHalf2(p[8 * k + 6], p[8 * k + 7])};
    Value row = add(keyRow, c32(16 * k));
    for (int64_t pair = 0; pair < oTiles / 2; ++pair) {
      SmallVector<Value> f = loadMatrices(
          chunkAddress(vTile, row, add(c32(2 * pair), half), config.rowBytes()),
          /*transpose=*/true);
      for (int64_t h = 0; h < 2; ++h) {
        int64_t n = 2 * pair + h;
        SmallVector<Value> acc(o.begin() + 4 * n, o.begin() + 4 * n + 4);
        acc = mma(a, f[2 * h], f[2 * h + 1], acc);
        std::copy(acc.begin(), acc.end(), o.begin() + 4 * n);
      }
    }
  }
}

/// Epilogue, first half: the row sums over the quad, normalise, then into
/// this warp's rows of the Q tile (no longer read); the rows' log-sum-exp
/// when the kernel writes it.
void KernelEmitter::stageOutputInQueryTile(ValueRange results) {
  const int64_t oTiles = config.headDim / 8;
  SmallVector<Value> o(results.begin(), results.begin() + 4 * oTiles);
  Value max[2], total[2], inverse[2];
  for (int64_t i = 0; i < 2; ++i) {
    max[i] = results[4 * oTiles + i];
    total[i] = math.quadRowSum(results[4 * oTiles + 2 + i]);
    inverse[i] = math.inverseOf(total[i], zero);
  }
  if (lse)
    storeLogSumExp(max, total);
  // The warp's lanes read these rows of the Q tile (ldmatrix) before the
  // loop; order those reads before other lanes overwrite them (with no key
  // block, nothing in between synchronises the warp).
  NVVM::SyncWarpOp::create(b, loc, c32(-1));
  for (int64_t n = 0; n < oTiles; ++n) {
    for (int64_t i = 0; i < 2; ++i) {
      Value lo = fmul(o[4 * n + 2 * i], inverse[i]);
      Value hi = fmul(o[4 * n + 2 * i + 1], inverse[i]);
      Value row = add(warpRow, add(g, c32(8 * i)));
      Value address = add(chunkAddress(qTile, row, c32(n), config.rowBytes()),
                          mul(t, c32(4)));
      LLVM::StoreOp::create(b, loc, packHalf2(lo, hi), sharedPointer(address),
                            4);
    }
  }
  NVVM::SyncWarpOp::create(b, loc, c32(-1));
}

/// lse[qRow + row] for this thread's two rows (g and g + 8 of the warp's),
/// from their maxima and whole sums; the first thread of each quad stores,
/// and rows past the end of a ragged sequence are not stored.
void KernelEmitter::storeLogSumExp(const Value (&max)[2],
                                   const Value (&total)[2]) {
  auto first =
      scf::IfOp::create(b, loc, cmp(arith::CmpIPredicate::eq, t, c32(0)),
                        /*withElse=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(first.thenBlock());
  for (int64_t i = 0; i < 2; ++i) {
    OpBuilder::InsertionGuard rowGuard(b);
    Value row = add(warpRow, add(g, c32(8 * i)));
    if (validQueries) {
      auto inRange = scf::IfOp::create(
          b, loc, cmp(arith::CmpIPredicate::slt, row, validQueries), false);
      b.setInsertionPointToStart(inRange.thenBlock());
    }
    Value value =
        math.logSumExp(max[i], total[i], config.scale, zero, minusInf);
    Value first = config.split() ? partialRow : qRow;
    Value address = LLVM::GEPOp::create(b, loc, globalPtr, f32, lse,
                                        ValueRange{add(first, wide(row))});
    LLVM::StoreOp::create(b, loc, value, address, 4);
  }
}

/// Epilogue, second half: the warp's staged rows to global memory, 16
/// bytes a thread.
void KernelEmitter::storeOutputTile() {
  const int64_t chunks = config.chunksPerRow();
  Type v4i32 = VectorType::get({4}, i32);
  for (int64_t k = 0; k < kWarpRows * chunks / kWarp; ++k) {
    Value index = add(lane, c32(k * kWarp));
    Value row = add(warpRow, div(index, c32(chunks)));
    Value chunk = rem(index, c32(chunks));
    Value data = LLVM::LoadOp::create(
        b, loc, v4i32,
        sharedPointer(chunkAddress(qTile, row, chunk, config.rowBytes())), 16);
    Value address = LLVM::GEPOp::create(
        b, loc, globalPtr, b.getI8Type(), rowAddress(out, add(qRow, wide(row))),
        ValueRange{mul(chunk, c32(kChunkBytes))});
    if (!config.raggedQ()) {
      LLVM::StoreOp::create(b, loc, data, address, 16);
      continue;
    }
    // Rows past the end of a ragged sequence belong to the next head.
    emitIf(cmp(arith::CmpIPredicate::slt, row, validQueries),
           [&] { LLVM::StoreOp::create(b, loc, data, address, 16); });
  }
}

/// A split's epilogue: this thread's two rows of each 8-column tile,
/// normalised, as f32 pairs into the partials (8 bytes a store; the
/// partials are small beside K and V), and the rows' log-sum-exp. Rows past
/// the group's (the zero-filled end of the last warp's tile) are not
/// stored.
void KernelEmitter::storePartialRows(ValueRange results) {
  const int64_t oTiles = config.headDim / 8;
  Value max[2], total[2], inverse[2];
  for (int64_t i = 0; i < 2; ++i) {
    max[i] = results[4 * oTiles + i];
    total[i] = math.quadRowSum(results[4 * oTiles + 2 + i]);
    inverse[i] = math.inverseOf(total[i], zero);
  }
  storeLogSumExp(max, total);
  Type v2f32 = VectorType::get({2}, f32);
  for (int64_t i = 0; i < 2; ++i) {
    OpBuilder::InsertionGuard guard(b);
    Value row = add(warpRow, add(g, c32(8 * i)));
    onlyRowsBelow(row, validQueries);
    Value first = LLVM::GEPOp::create(
        b, loc, globalPtr, f32, out,
        ValueRange{mul(add(partialRow, wide(row)), c64(config.headDim))});
    for (int64_t n = 0; n < oTiles; ++n) {
      Value pair = LLVM::UndefOp::create(b, loc, v2f32);
      for (int64_t e = 0; e < 2; ++e)
        pair = LLVM::InsertElementOp::create(
            b, loc, pair, fmul(results[4 * n + 2 * i + e], inverse[i]),
            c32(e));
      Value address = LLVM::GEPOp::create(
          b, loc, globalPtr, f32, first,
          ValueRange{add(c32(8 * n), mul(t, c32(2)))});
      LLVM::StoreOp::create(b, loc, pair, address, 8);
    }
  }
}

gpu::GPUFuncOp buildKernel(ModuleOp module, const KernelConfig &config,
                           Type element, Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM80KernelModule(module);
  MLIRContext *ctx = module.getContext();
  auto qType = MemRefType::get(
      {config.batch, config.heads, config.seqQ, config.headDim}, element);
  auto kvType = MemRefType::get(
      {config.batch, config.kvHeads, config.seqKV, config.headDim}, element);
  SmallVector<Type> inputs = {qType, kvType, kvType, qType};
  if (config.split()) {
    SmallVector<int64_t> rows = {config.batch, config.kvHeads,
                                 config.kvSplits, config.packedRows()};
    auto f32 = Float32Type::get(ctx);
    auto lseType = MemRefType::get(rows, f32);
    rows.push_back(config.headDim);
    inputs.back() = MemRefType::get(rows, f32);
    inputs.push_back(lseType);
  }
  if (config.lse)
    inputs.push_back(MemRefType::get({config.batch, config.heads, config.seqQ},
                                     Float32Type::get(ctx)));
  gpu::GPUFuncOp func =
      createKernel(kernels, config.kernelName(), inputs, config.threads(), loc);
  OpBuilder b(ctx);
  KernelEmitter(b, loc, config).emit(func);
  return func;
}

/// Why `config`'s key block is not one the kernel takes (bpt-select-
/// strategy's rule).
std::optional<std::string> keyBlockWhy(const KernelConfig &config) {
  if (llvm::is_contained({int64_t(32), int64_t(64), int64_t(128)},
                         config.blockN))
    return std::nullopt;
  return llvm::formatv("a {0}-row key block (kv_block: 32, 64 or 128)",
                       config.blockN)
      .str();
}

/// The combine nest that reads the results of the partial nest `partials`
/// (both, and only them), or null.
scf::ForallOp findCombineNest(scf::ForallOp partials) {
  scf::ForallOp combine;
  for (Value result : partials.getResults())
    for (Operation *user : result.getUsers()) {
      auto loop = user->getParentOfType<scf::ForallOp>();
      auto tag = loop ? loop->getAttrOfType<SplitKVNestAttr>(
                            AttentionNestAttr::kAttrName)
                      : nullptr;
      if (!tag || tag.getPart() != SplitKVPart::combine ||
          (combine && combine != loop))
        return nullptr;
      combine = loop;
    }
  return combine;
}

/// The combine nest: one launch of the combine kernel, a thread block per
/// 16-column slice of an output row, reading the partial buffers.
LogicalResult lowerCombine(ModuleOp module, scf::ForallOp combine,
                           const KernelConfig &config, Value partials,
                           Value lse) {
  auto resultType = cast<RankedTensorType>(combine.getResult(0).getType());
  if (combine.getNumResults() != 1 ||
      resultType.getShape() !=
          ArrayRef<int64_t>{config.batch, config.heads, config.seqQ,
                            config.headDim})
    return combine.emitError()
           << "bpt-attention-to-sm80: malformed split-K/V combine nest: "
              "expected one result, the attention's output";
  if (config.headDim % SplitKVCombineConfig::kSliceColumns != 0)
    return combine.emitError()
           << "bpt-attention-to-sm80: the split-K/V combine kernel takes head "
              "dimensions in multiples of "
           << SplitKVCombineConfig::kSliceColumns << ", not " << config.headDim;
  SplitKVCombineConfig combineConfig{
      config.batch,   config.heads,    config.kvHeads, config.seqQ,
      config.headDim, config.kvSplits, config.bf16};
  gpu::GPUFuncOp kernel = buildSplitKVCombineKernel(
      module, combineConfig, resultType.getElementType(), combine.getLoc());
  OpBuilder b(combine);
  replaceLoopWithLaunch(b, combine, kernel, {combineConfig.blocks(), 1, 1},
                        combineConfig.threads(),
                        combineConfig.sharedMemoryBytes(), {partials, lse});
  return success();
}

/// The partial nest of a split over the keys: one launch over (split,
/// key/value head, batch) writing the partials, named for the manifest;
/// then its combine nest.
LogicalResult lowerSplit(ModuleOp module, AttentionNest &nest,
                         KernelConfig &config) {
  config.kvSplits = nest.kvSplits;
  config.packedHeads = config.heads / config.kvHeads;
  Location loc = nest.loop.getLoc();
  if (config.blockM % kWarpRows != 0 || config.blockM > 128 ||
      config.blockM < config.packedRows())
    return nest.loop.emitError()
           << "bpt-attention-to-sm80: the split kernel's " << config.blockM
           << "-row tile (q_block) does not hold the "
           << config.packedRows()
           << " packed query rows of a key/value group in 16-row warp tiles "
              "(at most 128)";
  if (!nest.resultType().getElementType().isBF16() &&
      !nest.resultType().getElementType().isF16())
    return nest.loop.emitError()
           << "bpt-attention-to-sm80: the split kernel takes bf16 and f16";
  scf::ForallOp combine = findCombineNest(nest.loop);
  if (!combine)
    return nest.loop.emitError()
           << "bpt-attention-to-sm80: the split-K/V partial nest's results "
              "are not read by one combine nest (#bpt.split_kv_nest<combine>)";
  gpu::GPUFuncOp kernel = buildKernel(
      module, config, nest.resultType().getElementType(), loc);
  OpBuilder b(nest.loop);
  Value q = readOnlyBuffer(b, loc, nest.query);
  Value k = readOnlyBuffer(b, loc, nest.key);
  Value v = readOnlyBuffer(b, loc, nest.value);
  SmallVector<Value> buffers = nest.replaceWithLaunch(
      b, kernel, {config.kvSplits, config.kvHeads, config.batch},
      config.threads(), config.sharedMemoryBytes(), {q, k, v},
      {"split_kv_partials", "split_kv_lse"});
  return lowerCombine(module, combine, config, buffers[0], buffers[1]);
}

struct BPTAttentionToSM80Pass final
    : bpt::impl::BPTAttentionToSM80Base<BPTAttentionToSM80Pass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (scf::ForallOp loop :
         collectAttentionNests(module, KernelPath::mma_sync)) {
      FailureOr<AttentionNest> nest = AttentionNest::match(loop);
      if (failed(nest))
        return signalPassFailure();
      KernelConfig config{};
      nest->fillConfig(config);
      config.lse = nest->withLSE;
      Location loc = loop.getLoc();
      if (failed(checkRecordedTiling(loop, "bpt-attention-to-sm80",
                                     nest->strategy, config,
                                     keyBlockWhy(config))))
        return signalPassFailure();
      if (nest->kvSplits) {
        if (failed(lowerSplit(module, *nest, config)))
          return signalPassFailure();
        continue;
      }
      gpu::GPUFuncOp kernel = buildKernel(
          module, config, nest->resultType().getElementType(), loc);
      OpBuilder b(loop);
      Value q = readOnlyBuffer(b, loc, nest->query);
      Value k = readOnlyBuffer(b, loc, nest->key);
      Value v = readOnlyBuffer(b, loc, nest->value);
      nest->replaceWithLaunch(
          b, kernel, {config.queryBlocks(), config.heads, config.batch},
          config.threads(), config.sharedMemoryBytes(), {q, k, v});
    }
  }
};

} // namespace
