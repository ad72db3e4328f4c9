//===- AttentionToSM90.cpp - bpt.attention on Hopper tensor cores -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces an eligible bpt.attention by a launch of a kernel written for
// sm_90a: the blockwise algorithm of bpt-tile-attention (query blocks, an
// online softmax over key/value blocks) with its tiles in registers and
// shared memory rather than tensors:
//
//   - a thread block of three warpgroups owns 128 query rows of one head; a
//     producer warpgroup brings Q once and K/V blocks of 128 rows into a
//     ring of shared-memory stages with the bulk tensor copy engine (TMA),
//     each stage guarded by "full" and "empty" mbarriers;
//   - two consumer warpgroups (64 query rows each, setmaxnreg 240) compute
//     S = Q·Kᵀ with wgmma (both operands in shared memory), the exp2 online
//     softmax on the accumulator registers, then O += P·V with wgmma taking
//     P from registers (inline PTX: MLIR 22 has no register-A wgmma op);
//   - causal attention skips key blocks through the loop bound and masks
//     only the blocks that straddle the diagonal.
//
// The tiles use the 128-byte swizzle: a [rows, D] tile is stored as D/64
// column blocks of [rows, 64] elements, which is what one TMA box with
// SWIZZLE_128B writes and what a wgmma descriptor with the 128-byte swizzle
// mode reads.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "AttentionMath.h"
#include "AttentionNest.h"
#include "SM90Emitter.h"
#include "SM90Kernels.h"
#include "StrategyOps.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

namespace bpt {
#define GEN_PASS_DEF_BPTATTENTIONTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {


using KernelConfig = AttentionKernelConfig;

/// Builds the kernel's body: small helpers over an OpBuilder so that the
/// kernel below reads like the algorithm.
class KernelEmitter : public SM90Emitter {
public:
  KernelEmitter(OpBuilder &b, Location loc, const KernelConfig &config)
      : SM90Emitter(b, loc, config.bf16), config(config),
        math(b, loc, config.bf16) {}

  void emit(gpu::GPUFuncOp func);

private:
  Value barrier(Value base, int64_t index) {
    return sharedPointer(add(base, c32(config.barrierOffset(index))));
  }
  Value barrierAt(Value base, int64_t first, Value stage) {
    Value offset = add(c32(config.barrierOffset(first)), mul(stage, c32(8)));
    return sharedPointer(add(base, offset));
  }
  /// Copies a [rows, D] tile of `map` at (column, row), of head `outer`
  /// when given (a 3-D map).
  void copyRows(Value dst, Value map, int64_t rows, Value row, Value column,
                Value barrier, Value outer) {
    SM90Emitter::copyRows(dst, map, rows, config.headDim, row, column, barrier,
                          outer);
  }

  /// A consumer thread: its warpgroup, lane and warp; its two rows (row0
  /// and row0 + 8 of the consumer's 64) and first column in the accumulator
  /// fragments; the f32 constants its code shares.
  struct ConsumerThread {
    Value consumer, lane, warp, row0, column0, zero, minusInf;
  };

  void emitProducer(Value base, Value mapQ, Value mapK, Value mapV,
                    Value qRow, Value kvRow, Value numBlocks);
  void emitConsumer(Value base, Value consumer, Value lane, Value warp,
                    Value qPos, Value outRow, Value numBlocks, Value out);
  /// Key block `j`'s scores `s` with -inf for keys past the causal
  /// diagonal and past the end of a ragged key sequence, in the blocks
  /// that have such keys (an scf.if: the others pay one compare).
  SmallVector<Value> maskScores(Value j, ArrayRef<Value> s, Value groupRow,
                                Value row0, Value column0, Value minusInf);
  /// Whether row `row` (i32, of the consumer's 64) of this query block is
  /// inside the query sequence: null (all are) unless Sq is ragged.
  Value isStoredRow(Value consumer, Value row);
  /// After the key/value loop: normalises the output accumulators and
  /// stores them (rows from `outRow`) with the row state `results` of the
  /// loop (O, then m0, m1, l0, l1); writes the rows' log-sum-exp too when
  /// the kernel has it.
  void emitEpilogue(Value base, const ConsumerThread &t, Value outRow,
                    ValueRange results, Value out);
  /// lse[outRow + consumer * 64 + row] for the thread's two rows, from
  /// their maxima and whole sums; one thread of each quad stores.
  void storeLogSumExp(const ConsumerThread &t, Value outRow,
                      const Value (&max)[2], const Value (&total)[2]);

  const KernelConfig &config;
  codegen::AttentionMath math;
  // Where this block's head lives: column offsets of Q, of K/V and of the
  // output (0 when head-major), and the output's row stride in elements.
  Value qColumn, kvColumn, outColumn;
  // Ragged sequences: the head of Q's (K's and V's) 3-D tensor map, and
  // the query rows of this block inside Sq; null otherwise.
  Value qOuter, kvOuter, rowsLeft;
  int64_t outRowStride = 0;
  // The log-sum-exp argument ([B, H, S] f32), or null.
  Value lse;
};

void KernelEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  Value mapQ = tensorMapPointer(func.getArgument(0));
  Value mapK = tensorMapPointer(func.getArgument(1));
  Value mapV = tensorMapPointer(func.getArgument(2));
  Value out = pointerOf(func.getArgument(3));
  if (config.lse)
    lse = pointerOf(func.getArgument(4));

  Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  // The block's query block, head and sequence (config.grid()'s order).
  Value gx = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  Value qBlock, head, batch;
  if (config.groupsHeads()) {
    // Groups of `g` (head, sequence) pairs; in a group the last query
    // blocks, which have the most key blocks, start first.
    auto [position, pair] =
        decodeGroupedBlock(gx, config.causalGroup(), config.queryBlocks());
    qBlock = sub(c32(config.queryBlocks() - 1), position);
    head = rem(pair, c32(config.heads));
    batch = div(pair, c32(config.heads));
  } else {
    // Causal: the last query blocks have the most key blocks; start them
    // first.
    qBlock = config.causal ? sub(c32(config.queryBlocks() - 1), gx) : gx;
    head = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::y));
    batch = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::z));
  }
  Value q0 = mul(qBlock, c32(config.blockM));
  Value kvHead = div(head, c32(config.heads / config.kvHeads));
  // qRow: the Q tile's first row in its tensor map; qPos: its position in
  // the sequence (for the causal mask); kvRow: the first K/V row.
  // outRow: the block's first row in the output (as [rows, D]).
  Value qRow, qPos, kvRow, outRow;
  if (config.tokenMajor) {
    // Q's and K/V's rows of sequence `batch` start at the same row.
    kvRow = mul(batch, c32(config.seqKV));
    qRow = add(kvRow, q0);
    qPos = q0;
    qColumn = mul(head, c32(config.headDim));
    kvColumn = mul(kvHead, c32(config.headDim));
    outColumn = qColumn;
    outRowStride = config.heads * config.headDim;
    outRow = qRow;
  } else {
    Value qHead = add(mul(batch, c32(config.heads)), head);
    outRow = add(mul(qHead, c32(config.seqQ)), q0);
    qRow = outRow;
    if (config.raggedQ()) {
      qRow = q0;
      qOuter = qHead;
      rowsLeft = sub(c32(config.seqQ), q0);
    }
    qPos = q0;
    Value kvHeadIndex = add(mul(batch, c32(config.kvHeads)), kvHead);
    if (config.raggedKV()) {
      kvRow = c32(0);
      kvOuter = kvHeadIndex;
    } else {
      kvRow = mul(kvHeadIndex, c32(config.seqKV));
    }
    qColumn = kvColumn = outColumn = c32(0);
    outRowStride = config.headDim;
  }
  int64_t maxBlocks = config.keyBlocks();
  Value numBlocks = c32(maxBlocks);
  if (config.causal)
    numBlocks = math.causalKeyBlocks(qPos, config.blockM, config.blockN,
                                     config.seqKV - config.seqQ, numBlocks);

  Value base = alignedSharedBase(kSharedMemorySymbol);

  // One thread initialises the barriers; everyone waits for that.
  Value first = cmp(arith::CmpIPredicate::eq, tid, c32(0));
  emitIf(first, [&] {
    NVVM::MBarrierInitOp::create(b, loc, barrier(base, 0), c32(1), Value());
    for (int64_t s = 0; s < config.stages; ++s) {
      NVVM::MBarrierInitOp::create(b, loc, barrier(base, 1 + s), c32(1),
                                   Value());
      NVVM::MBarrierInitOp::create(b, loc, barrier(base, 1 + config.stages + s),
                                   c32(1), Value());
      NVVM::MBarrierInitOp::create(
          b, loc, barrier(base, 1 + 2 * config.stages + s),
          c32(config.consumerGroups * kWarpgroup), Value());
    }
    NVVM::FenceMbarrierInitOp::create(b, loc);
  });
  NVVM::Barrier0Op::create(b, loc);

  emitRoles(
      tid, first,
      [&] { emitProducer(base, mapQ, mapK, mapV, qRow, kvRow, numBlocks); },
      [&](Value consumer, Value lane, Value warp) {
        emitConsumer(base, consumer, lane, warp, qPos, outRow, numBlocks, out);
      });
  gpu::ReturnOp::create(b, loc);
}

void KernelEmitter::emitProducer(Value base, Value mapQ, Value mapK,
                                 Value mapV, Value qRow, Value kvRow,
                                 Value numBlocks) {
  Value qFull = barrier(base, 0);
  NVVM::MBarrierArriveExpectTxOp::create(
      b, loc, Type(), qFull, c32(config.qTileBytes()), NVVM::MemScopeKind::CTA,
      /*relaxed=*/false, Value());
  copyRows(base, mapQ, config.blockM, qRow, qColumn, qFull, qOuter);

  Value stages = c32(config.stages);
  auto loop = scf::ForOp::create(b, loc, c32(0), numBlocks, c32(1));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value j = loop.getInductionVar();
  Value stage = rem(j, stages);
  Value round = div(j, stages);
  // Reuse of a stage waits until both consumers released its last round.
  emitIf(cmp(arith::CmpIPredicate::uge, j, stages), [&] {
    Value parity = arith::AndIOp::create(b, loc, sub(round, c32(1)), c32(1));
    waitBarrier(barrierAt(base, 1 + 2 * config.stages, stage), parity);
  });
  Value row = add(kvRow, mul(j, c32(config.blockN)));
  Value tileBytes = c32(config.kvTileBytes());
  Value kFull = barrierAt(base, 1, stage);
  NVVM::MBarrierArriveExpectTxOp::create(b, loc, Type(), kFull, tileBytes,
                                         NVVM::MemScopeKind::CTA, false,
                                         Value());
  copyRows(add(base, add(c32(config.kOffset(0)), mul(stage, tileBytes))), mapK,
           config.blockN, row, kvColumn, kFull, kvOuter);
  Value vFull = barrierAt(base, 1 + config.stages, stage);
  NVVM::MBarrierArriveExpectTxOp::create(b, loc, Type(), vFull, tileBytes,
                                         NVVM::MemScopeKind::CTA, false,
                                         Value());
  copyRows(add(base, add(c32(config.vOffset(0)), mul(stage, tileBytes))), mapV,
           config.blockN, row, kvColumn, vFull, kvOuter);
}

void KernelEmitter::emitConsumer(Value base, Value consumer, Value lane,
                                 Value warp, Value qPos, Value outRow,
                                 Value numBlocks, Value out) {
  // dp: the padded head dim (whole 64-column blocks), the N of P·V.
  const int64_t d = config.headDim, dp = config.paddedHeadDim(),
                bn = config.blockN;
  const int64_t sCount = bn / 2, oCount = dp / 2; // accumulator floats/thread
  const double scaleLog2 = config.scale * M_LOG2E;
  Value minusInf = cf(-INFINITY), zero = cf(0.0), c = cf(scaleLog2);
  Value stages = c32(config.stages);

  // This thread's two rows (of the consumer's 64): r and r + 8.
  Value row0 = add(mul(warp, c32(16)), div(lane, c32(4)));
  Value column0 = mul(rem(lane, c32(4)), c32(2));
  Value groupRow = add(qPos, mul(consumer, c32(64)));

  waitBarrier(barrier(base, 0), c32(0));
  // A (Q) descriptor: this consumer's 64 rows of the Q tile, K-major.
  Value qDesc = descriptor(add(base, mul(consumer, c32(64 * kSwizzleBytes))),
                           WgmmaDescriptor::kMajor());

  SmallVector<Value> init(oCount, zero);
  init.append({minusInf, minusInf, zero, zero}); // m0, m1, l0, l1
  auto loop = scf::ForOp::create(b, loc, c32(0), numBlocks, c32(1), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value j = loop.getInductionVar();
    auto args = loop.getRegionIterArgs();
    SmallVector<Value> o(args.begin(), args.begin() + oCount);
    Value m[2] = {args[oCount], args[oCount + 1]};
    Value l[2] = {args[oCount + 2], args[oCount + 3]};
    Value stage = rem(j, stages);
    Value phase = arith::AndIOp::create(b, loc, div(j, stages), c32(1));
    Value tileBytes = c32(config.kvTileBytes());
    Value kTile = add(base, add(c32(config.kOffset(0)), mul(stage, tileBytes)));
    Value vTile = add(base, add(c32(config.vOffset(0)), mul(stage, tileBytes)));

    // S = Q·Kᵀ: m64n{bn}k16 steps over D (not the padding); K is K-major
    // too.
    waitBarrier(barrierAt(base, 1, stage), phase);
    Value kDesc = descriptor(kTile, WgmmaDescriptor::kMajor());
    NVVM::WgmmaFenceAlignedOp::create(b, loc);
    Type sType = accumulatorType(bn);
    Value sAcc = LLVM::ZeroOp::create(b, loc, sType);
    NVVM::WGMMATypes elementType = wgmmaElementType();
    for (int64_t k = 0; k < d / 16; ++k) {
      int64_t offset = (k / 4) * config.blockM * kSwizzleBytes + (k % 4) * 32;
      int64_t kOffset = (k / 4) * bn * kSwizzleBytes + (k % 4) * 32;
      Value kStep = advance(kDesc, kOffset);
      Value qStep = advance(qDesc, offset);
      sAcc = emitWgmma(WgmmaSharedA{
          bn, elementType, sAcc, qStep, kStep,
          k == 0 ? NVVM::WGMMAScaleOut::zero : NVVM::WGMMAScaleOut::one,
          NVVM::MMALayout::col});
    }
    NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
    SmallVector<Value> s = emitWgmmaWait(unpack(sAcc, sCount));

    if (config.causal || config.raggedKV())
      s = maskScores(j, s, groupRow, row0, column0, minusInf);

    // Online softmax in exp2; the output so far is rescaled.
    codegen::AttentionMath::RowState rows{{m[0], m[1]}, {l[0], l[1]}};
    SmallVector<Value> p = math.softmaxUpdate(s, rows, o, c, minusInf, zero);

    // O += P·V: P from registers (the S accumulator layout is the A
    // fragment layout: k16 step t takes s[8t .. 8t + 7]); V is MN-major.
    // All A fragments before the fence, so that ptxas need not fence again
    // between the wgmma instructions.
    SmallVector<Value> fragments;
    for (int64_t r = 0; r < sCount / 2; ++r)
      fragments.push_back(packHalf2(p[2 * r], p[2 * r + 1]));
    waitBarrier(barrierAt(base, 1 + config.stages, stage), phase);
    Value vDesc =
        descriptor(vTile, WgmmaDescriptor::mnMajor(bn * kSwizzleBytes));
    NVVM::WgmmaFenceAlignedOp::create(b, loc);
    for (int64_t t = 0; t < bn / 16; ++t)
      o = emitWgmma(WgmmaRegA{dp, elementType, o,
                              ArrayRef(fragments).slice(4 * t, 4),
                              advance(vDesc, t * 16 * kSwizzleBytes)});
    NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
    o = emitWgmmaWait(o);
    // This thread is done with the stage.
    arriveBarrier(barrierAt(base, 1 + 2 * config.stages, stage));

    SmallVector<Value> next(o);
    next.append({rows.max[0], rows.max[1], rows.sum[0], rows.sum[1]});
    scf::YieldOp::create(b, loc, next);
  }

  emitEpilogue(
      base, ConsumerThread{consumer, lane, warp, row0, column0, zero, minusInf},
      outRow, loop.getResults(), out);
}

// Element e of s: row r + 8 * ((e / 2) % 2), column
// 8 * (e / 4) + column0 + e % 2 of this key block.
SmallVector<Value> KernelEmitter::maskScores(Value j, ArrayRef<Value> s,
                                             Value groupRow, Value row0,
                                             Value column0, Value minusInf) {
  const int64_t bn = config.blockN;
  int64_t offset = config.seqKV - config.seqQ;
  Value blockStart = mul(j, c32(bn));
  // Causal: masking is needed when the block's last key is past the first
  // row's limit; ragged: in the last key block. The same for the whole
  // warpgroup.
  Value needMask;
  if (config.causal)
    needMask = cmp(arith::CmpIPredicate::sgt, add(blockStart, c32(bn - 1)),
                   add(groupRow, c32(offset)));
  if (config.raggedKV()) {
    Value last = cmp(arith::CmpIPredicate::eq, j, c32(config.keyBlocks() - 1));
    needMask = needMask
                   ? arith::OrIOp::create(b, loc, needMask, last).getResult()
                   : last;
  }
  SmallVector<Type> types(s.size(), f32);
  auto masked = scf::IfOp::create(b, loc, types, needMask, true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(masked.thenBlock());
  // Key column c (within the block) is visible when c <= limit: causal
  // when c <= row + offset - blockStart - column0, ragged when
  // c <= Skv - 1 - blockStart - column0.
  Value keyLimit;
  if (config.raggedKV())
    keyLimit = sub(sub(c32(config.seqKV - 1), blockStart), column0);
  Value limit[2];
  for (int64_t i = 0; i < 2; ++i) {
    if (!config.causal) {
      limit[i] = keyLimit;
      continue;
    }
    Value row = add(groupRow, add(row0, c32(8 * i)));
    limit[i] = sub(add(row, c32(offset)), add(blockStart, column0));
    if (keyLimit)
      limit[i] = arith::MinSIOp::create(b, loc, limit[i], keyLimit);
  }
  scf::YieldOp::create(b, loc, math.mask(s, limit, minusInf));
  b.setInsertionPointToStart(masked.elseBlock());
  scf::YieldOp::create(b, loc, s);
  return SmallVector<Value>(masked.getResults());
}

Value KernelEmitter::isStoredRow(Value consumer, Value row) {
  if (!rowsLeft)
    return Value();
  return cmp(arith::CmpIPredicate::slt, add(mul(consumer, c32(64)), row),
             rowsLeft);
}

void KernelEmitter::emitEpilogue(Value base, const ConsumerThread &t,
                                 Value outRow, ValueRange results, Value out) {
  // The row sums over the quad, normalise, then through shared memory to
  // 16-byte stores. This consumer's 64 rows of the Q tile are free once its
  // last wgmma has completed: the O tile goes there, in the same
  // 128-byte-swizzled layout, so that neither the 4-byte writes nor the
  // 16-byte reads conflict on banks.
  // Padded columns (past D) are neither staged nor stored.
  const int64_t d = config.headDim, oCount = config.paddedHeadDim() / 2;
  Value consumer = t.consumer, lane = t.lane, warp = t.warp, row0 = t.row0,
        column0 = t.column0;
  SmallVector<Value> o(results.begin(), results.begin() + oCount);
  Value max[2], total[2], inverse[2];
  for (int64_t i = 0; i < 2; ++i) {
    max[i] = results[oCount + i];
    total[i] = math.quadRowSum(results[oCount + 2 + i]);
    inverse[i] = math.inverseOf(total[i], t.zero);
  }
  if (lse)
    storeLogSumExp(t, outRow, max, total);
  // Byte address of (row, column) of this consumer's rows in the tile.
  Value tileRows = add(base, mul(consumer, c32(64 * kSwizzleBytes)));
  auto tileAddress = [&](Value row, Value column) {
    return swizzledAddress(tileRows, config.blockM, row, column);
  };
  for (int64_t n = 0; n < d / 8; ++n) {
    for (int64_t i = 0; i < 2; ++i) {
      Value lo = fmul(o[4 * n + 2 * i], inverse[i]);
      Value hi = fmul(o[4 * n + 2 * i + 1], inverse[i]);
      Value address = tileAddress(add(row0, c32(8 * i)),
                                  add(column0, c32(8 * n)));
      LLVM::StoreOp::create(b, loc, packHalf2(lo, hi), sharedPointer(address),
                            4);
    }
  }
  // The warpgroup's named barrier (1 + consumer; 0 is the block's).
  NVVM::BarrierOp::create(b, loc, Type(), add(consumer, c32(1)),
                          c32(kWarpgroup), NVVM::BarrierReductionAttr(),
                          Value());
  // The consumer's 64 rows of D elements, 16 bytes a store.
  Type v4i32 = VectorType::get({4}, i32);
  forEachRowChunk(warp, lane, d, [&](Value row, Value column) {
    Value data = LLVM::LoadOp::create(
        b, loc, v4i32, sharedPointer(tileAddress(row, column)), 16);
    // Rows past a ragged Sq are the next head's: not stored.
    if (Value stored = isStoredRow(consumer, row)) {
      auto inside = scf::IfOp::create(b, loc, stored, /*withElse=*/false);
      b.setInsertionPointToStart(inside.thenBlock());
    }
    Value outRowIndex = add(outRow, add(mul(consumer, c32(64)), row));
    Value outColumnIndex = add(outColumn, column);
    storeRowChunk(out, outRowIndex, outRowStride, outColumnIndex, data);
  });
}

void KernelEmitter::storeLogSumExp(const ConsumerThread &t, Value outRow,
                                   const Value (&max)[2],
                                   const Value (&total)[2]) {
  // The four threads of a quad hold the same row state; the first stores.
  auto first = scf::IfOp::create(
      b, loc, cmp(arith::CmpIPredicate::eq, t.column0, c32(0)),
      /*withElse=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(first.thenBlock());
  Value groupRow = add(outRow, mul(t.consumer, c32(64)));
  for (int64_t i = 0; i < 2; ++i) {
    Value value =
        math.logSumExp(max[i], total[i], config.scale, t.zero, t.minusInf);
    OpBuilder::InsertionGuard inner(b);
    if (Value stored = isStoredRow(t.consumer, add(t.row0, c32(8 * i)))) {
      auto inside = scf::IfOp::create(b, loc, stored, /*withElse=*/false);
      b.setInsertionPointToStart(inside.thenBlock());
    }
    Value row = add(groupRow, add(t.row0, c32(8 * i)));
    Value address = LLVM::GEPOp::create(
        b, loc, ptr, f32, lse,
        ValueRange{arith::ExtUIOp::create(b, loc, i64, row)});
    LLVM::StoreOp::create(b, loc, value, address, 4);
  }
}

} // namespace

gpu::GPUFuncOp bpt::sm90::getOrBuildAttentionKernel(
    ModuleOp module, const AttentionKernelConfig &config, Type element,
    Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM90KernelModule(module);
  // Head-major kernels are named by head dim and causality only: each op
  // gets its own (uniqued); token-major names say everything.
  if (config.tokenMajor)
    if (auto existing =
            kernels.lookupSymbol<gpu::GPUFuncOp>(config.kernelName()))
      return existing;
  assert(!(config.tokenMajor && config.lse) &&
         "token-major kernels do not write the log-sum-exp");
  assert((!config.tokenMajor || (config.seqQ % config.blockM == 0 &&
                                 config.seqKV % config.blockN == 0)) &&
         "token-major kernels take whole blocks");
  assert((!config.tokenMajor || config.seqQ == config.seqKV) &&
         "token-major kernels share Q's and K/V's rows");
  MLIRContext *ctx = module.getContext();
  SmallVector<Type> inputs = {
      tensorMapType(ctx, config.blockM, element, config.raggedQ()),
      tensorMapType(ctx, config.blockN, element, config.raggedKV()),
      tensorMapType(ctx, config.blockN, element, config.raggedKV())};
  if (config.tokenMajor) {
    inputs.push_back(MemRefType::get(
        {config.batch * config.seqQ, config.heads * config.headDim}, element));
  } else {
    inputs.push_back(MemRefType::get(
        {config.batch, config.heads, config.seqQ, config.headDim}, element));
    if (config.lse)
      inputs.push_back(MemRefType::get(
          {config.batch, config.heads, config.seqQ}, Float32Type::get(ctx)));
  }
  // A register cap at entry (384 threads, one block per multiprocessor) is
  // what lets setmaxnreg move registers from the producer to the consumers.
  gpu::GPUFuncOp func = createKernel(kernels, config.kernelName(), inputs,
                                     config.threads(), loc);
  OpBuilder b(ctx);
  KernelEmitter(b, loc, config).emit(func);
  return func;
}

namespace {

/// Why `config`'s key block is not one the kernel takes (bpt-select-
/// strategy's rule: wgmma N in multiples of 16, 64 to 128).
std::optional<std::string> keyBlockWhy(const KernelConfig &config) {
  if (config.blockN >= 64 && config.blockN <= 128 && config.blockN % 16 == 0)
    return std::nullopt;
  return llvm::formatv("a {0}-row key block (kv_block: 64 to 128, a "
                       "multiple of 16)",
                       config.blockN)
      .str();
}

struct BPTAttentionToSM90Pass final
    : bpt::impl::BPTAttentionToSM90Base<BPTAttentionToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (scf::ForallOp loop : collectAttentionNests(module, KernelPath::wgmma)) {
      FailureOr<AttentionNest> nest = AttentionNest::match(loop);
      if (failed(nest))
        return signalPassFailure();
      KernelConfig config{};
      nest->fillConfig(config);
      config.lse = nest->withLSE;
      if (failed(checkRecordedTiling(loop, "bpt-attention-to-sm90",
                                     nest->strategy, config,
                                     keyBlockWhy(config))))
        return signalPassFailure();
      Type element = nest->resultType().getElementType();
      gpu::GPUFuncOp kernel =
          getOrBuildAttentionKernel(module, config, element, loop.getLoc());
      OpBuilder b(loop);
      // Q, K and V as [rows, D] matrices, or, for a ragged sequence, per
      // head.
      auto descriptorOf = [&](Value tensor, int64_t boxRows,
                              bool perHead) -> Value {
        return createHeadsTensorMap(b, loop.getLoc(),
                                    readOnlyBuffer(b, loop.getLoc(), tensor),
                                    boxRows, perHead);
      };
      Value q = descriptorOf(nest->query, config.blockM, config.raggedQ());
      Value k = descriptorOf(nest->key, config.blockN, config.raggedKV());
      Value v = descriptorOf(nest->value, config.blockN, config.raggedKV());
      nest->replaceWithLaunch(b, kernel, config.grid(), config.threads(),
                              config.sharedMemoryBytes(), {q, k, v});
    }
  }
};

} // namespace
