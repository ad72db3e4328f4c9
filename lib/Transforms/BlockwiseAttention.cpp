//===- BlockwiseAttention.cpp - blockwise attention builder -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "BlockwiseAttention.h"

#include "bpt/Transforms/Blockwise.h"
#include "bpt/Utils/Builders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace bpt;
using namespace bpt::detail;

AttentionTiling AttentionTiling::get(RankedTensorType q, RankedTensorType k,
                                     bool causal, double scale, int64_t qBlock,
                                     int64_t kvBlock) {
  assert(qBlock > 0 && kvBlock > 0 && "block sizes must be positive");
  AttentionTiling t;
  t.batch = q.getDimSize(0);
  t.qHeads = q.getDimSize(1);
  t.qSeq = q.getDimSize(2);
  t.headDim = q.getDimSize(3);
  t.kvHeads = k.getDimSize(1);
  t.kvSeq = k.getDimSize(2);
  t.qBlock = std::min(qBlock, t.qSeq);
  t.kvBlock = std::min(kvBlock, t.kvSeq);
  t.causal = causal;
  t.scale = scale;
  t.elementType = q.getElementType();
  return t;
}

AttentionTiling AttentionTiling::get(AttentionOp op, int64_t qBlock,
                                     int64_t kvBlock) {
  AttentionTiling t =
      get(op.getQuery().getType(), op.getKey().getType(), op.getCausal(),
          op.getEffectiveScale(), qBlock, kvBlock);
  t.withLSE = op.getLse() != nullptr;
  return t;
}

AttentionTiling AttentionTiling::get(AttentionGradOp op, int64_t qBlock,
                                     int64_t kvBlock) {
  return get(op.getQuery().getType(), op.getKey().getType(), op.getCausal(),
             op.getEffectiveScale(), qBlock, kvBlock);
}

Value bpt::detail::validRows(OpBuilder &b, Location loc, Value row0,
                             int64_t rows, int64_t total) {
  Value remaining =
      arith::SubIOp::create(b, loc, indexConstant(b, loc, total), row0);
  return arith::MinSIOp::create(b, loc, indexConstant(b, loc, rows),
                                remaining);
}

Value bpt::detail::extractRowBlock(OpBuilder &b, Location loc, Value source,
                                   ValueRange lead, Value row0, int64_t rows,
                                   bool ragged) {
  auto sourceType = cast<RankedTensorType>(source.getType());
  int64_t rank = sourceType.getRank();
  assert(static_cast<int64_t>(lead.size()) == rank - 2 && "bad lead indices");
  int64_t width = sourceType.getDimSize(rank - 1);
  Type elementType = sourceType.getElementType();

  SmallVector<OpFoldResult> offsets(lead.begin(), lead.end());
  offsets.append({row0, b.getIndexAttr(0)});
  SmallVector<OpFoldResult> sizes(rank - 2, b.getIndexAttr(1));
  SmallVector<OpFoldResult> strides(rank, b.getIndexAttr(1));

  if (!ragged) {
    // The tile is copied out of the operand: a buffer of its own that a GPU
    // lowering places in shared memory.
    sizes.append({b.getIndexAttr(rows), b.getIndexAttr(width)});
    auto type = RankedTensorType::get({rows, width}, elementType);
    Value slice = tensor::ExtractSliceOp::create(b, loc, type, source, offsets,
                                                 sizes, strides);
    Value tile = tensor::EmptyOp::create(b, loc, type.getShape(), elementType);
    return linalg::CopyOp::create(b, loc, slice, tile).getResult(0);
  }
  // The last block may run past the end: copy the valid rows into a zeroed
  // tile so that every tile keeps its static shape.
  Value valid =
      validRows(b, loc, row0, rows, sourceType.getDimSize(rank - 2));
  sizes.append({valid, b.getIndexAttr(width)});
  auto sliceType =
      RankedTensorType::get({ShapedType::kDynamic, width}, elementType);
  Value slice = tensor::ExtractSliceOp::create(b, loc, sliceType, source,
                                               offsets, sizes, strides);
  Value zero = filledTensor(b, loc, {rows, width}, elementType, 0.0);
  SmallVector<OpFoldResult> tileOffsets(2, b.getIndexAttr(0));
  SmallVector<OpFoldResult> tileSizes = {valid, b.getIndexAttr(width)};
  SmallVector<OpFoldResult> tileStrides(2, b.getIndexAttr(1));
  return tensor::InsertSliceOp::create(b, loc, slice, zero, tileOffsets,
                                       tileSizes, tileStrides);
}

Value bpt::detail::causalLimit(OpBuilder &b, Location loc,
                               const AttentionTiling &t, Value row,
                               int64_t extra) {
  if (!t.queryOffset)
    return arith::AddIOp::create(
        b, loc, row, indexConstant(b, loc, t.kvSeq - t.qSeq + extra));
  Value last = arith::AddIOp::create(b, loc, row, t.queryOffset);
  if (extra == 0)
    return last;
  return arith::AddIOp::create(b, loc, last, indexConstant(b, loc, extra));
}

Value bpt::detail::visibleInTile(OpBuilder &b, Location loc,
                                 const AttentionTiling &t, Value q0, Value kv0,
                                 bool maskRows) {
  auto both = [&](Value keep, Value condition) -> Value {
    return keep ? arith::AndIOp::create(b, loc, keep, condition).getResult()
                : condition;
  };
  Value col =
      arith::AddIOp::create(b, loc, kv0, linalg::IndexOp::create(b, loc, 1));
  Value keep, row;
  if (t.raggedKV())
    keep = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, col,
                                 indexConstant(b, loc, t.kvSeq));
  auto rowIndex = [&]() {
    if (row)
      return row;
    Value index = linalg::IndexOp::create(b, loc, 0);
    // Packed heads: the tile's rows repeat the query positions per head.
    if (t.packedHeads > 1)
      index = arith::RemUIOp::create(b, loc, index,
                                     indexConstant(b, loc, t.qBlock));
    row = arith::AddIOp::create(b, loc, q0, index);
    return row;
  };
  if (t.causal) {
    // Key j is visible to query i iff j <= i + offset (bottom-right aligned
    // by default: Skv - Sq).
    Value limit = causalLimit(b, loc, t, rowIndex(), 0);
    keep = both(keep, arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle,
                                            col, limit));
  }
  if (maskRows && t.raggedQuery())
    keep = both(keep, arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                            rowIndex(),
                                            indexConstant(b, loc, t.qSeq)));
  return keep;
}

/// max(min(count, Skv), 0).
static Value clampKeys(OpBuilder &b, Location loc, const AttentionTiling &t,
                       Value count) {
  Value upper = arith::MinSIOp::create(b, loc, count,
                                       indexConstant(b, loc, t.kvSeq));
  return arith::MaxSIOp::create(b, loc, upper, indexConstant(b, loc, 0));
}

Value bpt::detail::causalFullKeyBlocks(OpBuilder &b, Location loc,
                                       const AttentionTiling &t, Value q0) {
  // Keys visible to the block's first row are visible to all its rows.
  Value firstVisible = clampKeys(b, loc, t, causalLimit(b, loc, t, q0, 1));
  return arith::DivSIOp::create(b, loc, firstVisible,
                                indexConstant(b, loc, t.kvBlock));
}

Value bpt::detail::causalKeyBlockEnd(OpBuilder &b, Location loc,
                                     const AttentionTiling &t, Value q0) {
  // Keys visible to the block's last valid row.
  Value rowsEnd = arith::MinSIOp::create(
      b, loc, arith::AddIOp::create(b, loc, q0, indexConstant(b, loc, t.qBlock)),
      indexConstant(b, loc, t.qSeq));
  Value lastVisible = clampKeys(b, loc, t, causalLimit(b, loc, t, rowsEnd, 0));
  return arith::CeilDivSIOp::create(b, loc, lastVisible,
                                    indexConstant(b, loc, t.kvBlock));
}

namespace {

/// State carried across key/value blocks: running row max `m` (log2 domain),
/// running row sum `l`, unnormalised accumulator `acc`, all f32.
struct OnlineSoftmaxState {
  Value m, l, acc;
};

/// Emits the per-query-block computation; one instance per query block.
class QueryBlockEmitter {
public:
  QueryBlockEmitter(OpBuilder &b, Location loc, const AttentionTiling &t,
                    Value key, Value value, Value batch, Value kvHead,
                    Value q0, Value qTile)
      : b(b), loc(loc), t(t), key(key), value(value), batch(batch),
        kvHead(kvHead), q0(q0), qTile(qTile), f32(b.getF32Type()) {
    MLIRContext *ctx = b.getContext();
    identity2 = AffineMap::getMultiDimIdentityMap(2, ctx);
    rowMap = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
  }

  QueryBlockTiles emit();
  /// The split-K/V partial: only key blocks [lo, hi) are visited, and the
  /// tile is normalised in f32, with its rows' log-sum-exp.
  QueryBlockTiles emitPartial(Value lo, Value hi);

private:
  /// The online softmax over the key blocks the rows see, within [lo, hi)
  /// where given.
  OnlineSoftmaxState run(Value lo, Value hi);

  Value constant(double v) { return floatConstant(b, loc, f32, v); }
  Value index(int64_t v) { return indexConstant(b, loc, v); }

  /// max(m, -inf) guard: a row that has seen no key yet keeps m = -inf; the
  /// exponentials then use 0 instead, so they give 0, never NaN.
  Value finiteMax(OpBuilder &nb, Location nl, Value m);

  /// One step of the online softmax over the key/value block at `kv0`.
  OnlineSoftmaxState step(OnlineSoftmaxState state, Value kv0, bool masked);

  /// A loop over key/value blocks [lb, ub) carrying the state.
  OnlineSoftmaxState loop(OnlineSoftmaxState state, Value lb, Value ub,
                          bool masked);

  /// acc / l per row (0 where l == 0), in `type`.
  Value normalize(OnlineSoftmaxState state, Type type);
  /// ln Σ exp = (m + log2 l) · ln 2 per row (-inf where l == 0).
  Value logSumExp(OnlineSoftmaxState state);

  OpBuilder &b;
  Location loc;
  const AttentionTiling &t;
  Value key, value, batch, kvHead, q0, qTile;
  Type f32;
  AffineMap identity2, rowMap;
};

} // namespace

Value QueryBlockEmitter::finiteMax(OpBuilder &nb, Location nl, Value m) {
  Value negInf =
      floatConstant(nb, nl, f32, -std::numeric_limits<double>::infinity());
  Value isNegInf =
      arith::CmpFOp::create(nb, nl, arith::CmpFPredicate::OEQ, m, negInf);
  return arith::SelectOp::create(nb, nl, isNegInf,
                                 floatConstant(nb, nl, f32, 0.0), m);
}

OnlineSoftmaxState QueryBlockEmitter::step(OnlineSoftmaxState state, Value kv0,
                                           bool masked) {
  int64_t qb = t.tileRows(), kvb = t.kvBlock;
  // Only a masked block can be the ragged tail.
  bool ragged = masked && t.raggedKV();
  Value kTile = extractRowBlock(b, loc, key, {batch, kvHead}, kv0, kvb, ragged);
  Value vTile =
      extractRowBlock(b, loc, value, {batch, kvHead}, kv0, kvb, ragged);

  // Scores in the log2 domain: s = (q·kᵀ) · scale · log2(e), masked to -inf
  // outside the causal diagonal and past the last key.
  Value scores = buildMatmul(b, loc, qTile,
                             kTile, filledTensor(b, loc, {qb, kvb}, f32, 0.0),
                             /*transposeB=*/true);
  double scaleLog2 = t.scale * M_LOG2E;
  scores = buildGeneric(
               b, loc, {}, scores, {identity2}, 2, {},
               [&](OpBuilder &nb, Location nl, ValueRange args) {
                 Value s = arith::MulFOp::create(
                     nb, nl, args[0], floatConstant(nb, nl, f32, scaleLog2));
                 if (!masked)
                   return SmallVector<Value>{s};
                 Value keep =
                     visibleInTile(nb, nl, t, q0, kv0, /*maskRows=*/false);
                 Value negInf = floatConstant(
                     nb, nl, f32, -std::numeric_limits<double>::infinity());
                 return SmallVector<Value>{
                     arith::SelectOp::create(nb, nl, keep, s, negInf)};
               })
               .front();

  // Each carried value is overwritten by its own last use, so that
  // bufferization keeps m, l and acc in place across iterations.
  // rowmax(s), then m_new = max(m_old, rowmax(s)).
  Value rowMax =
      buildGeneric(b, loc, scores,
                   filledTensor(b, loc, {qb}, f32,
                                -std::numeric_limits<double>::infinity()),
                   {identity2, rowMap}, 2, {1},
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     return SmallVector<Value>{
                         arith::MaximumFOp::create(nb, nl, args[0], args[1])};
                   })
          .front();
  auto newMax = [&](OpBuilder &nb, Location nl, Value mOld, Value rowMaxV) {
    return finiteMax(
        nb, nl, arith::MaximumFOp::create(nb, nl, mOld, rowMaxV).getResult());
  };
  // alpha = exp2(m_old - m_new): how much the old state shrinks.
  AffineMap identity1 = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  Value alpha =
      buildGeneric(b, loc, {state.m, rowMax},
                   tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{qb}, f32)
                       .getResult(),
                   {identity1, identity1, identity1}, 1, {},
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     Value diff = arith::SubFOp::create(
                         nb, nl, args[0], newMax(nb, nl, args[0], args[1]));
                     return SmallVector<Value>{
                         math::Exp2Op::create(nb, nl, diff)};
                   })
          .front();
  // p = exp2(s - m_new), in place of the scores.
  Value p = buildGeneric(b, loc, {state.m, rowMax}, scores,
                         {rowMap, rowMap, identity2}, 2, {},
                         [&](OpBuilder &nb, Location nl, ValueRange args) {
                           Value diff = arith::SubFOp::create(
                               nb, nl, args[2],
                               newMax(nb, nl, args[0], args[1]));
                           return SmallVector<Value>{
                               math::Exp2Op::create(nb, nl, diff)};
                         })
                .front();
  Value mNew =
      buildGeneric(b, loc, rowMax, state.m, {identity1, identity1}, 1, {},
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     return SmallVector<Value>{
                         arith::MaximumFOp::create(nb, nl, args[1], args[0])};
                   })
          .front();
  // l_new = alpha · l_old + rowsum(p).
  Value lScaled =
      buildGeneric(b, loc, alpha, state.l, {identity1, identity1}, 1, {},
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     return SmallVector<Value>{
                         arith::MulFOp::create(nb, nl, args[0], args[1])};
                   })
          .front();
  Value lNew = buildGeneric(b, loc, p, lScaled, {identity2, rowMap}, 2, {1},
                            [&](OpBuilder &nb, Location nl, ValueRange args) {
                              return SmallVector<Value>{arith::AddFOp::create(
                                  nb, nl, args[0], args[1])};
                            })
                   .front();
  // acc_new = alpha · acc_old + p · v.
  Value accScaled =
      buildGeneric(b, loc, alpha, state.acc, {rowMap, identity2}, 2, {},
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     return SmallVector<Value>{
                         arith::MulFOp::create(nb, nl, args[0], args[1])};
                   })
          .front();
  Value accNew = buildMatmul(b, loc, p, vTile, accScaled);
  return {mNew, lNew, accNew};
}

OnlineSoftmaxState QueryBlockEmitter::loop(OnlineSoftmaxState state, Value lb,
                                           Value ub, bool masked) {
  auto forOp = scf::ForOp::create(
      b, loc, lb, ub, index(1), ValueRange{state.m, state.l, state.acc},
      [&](OpBuilder &nb, Location nl, Value j, ValueRange iterArgs) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(nb.getInsertionBlock());
        Value kv0 = arith::MulIOp::create(b, nl, j, index(t.kvBlock));
        OnlineSoftmaxState next =
            step({iterArgs[0], iterArgs[1], iterArgs[2]}, kv0, masked);
        scf::YieldOp::create(b, nl, ValueRange{next.m, next.l, next.acc});
      });
  return {forOp.getResult(0), forOp.getResult(1), forOp.getResult(2)};
}

Value QueryBlockEmitter::normalize(OnlineSoftmaxState state, Type type) {
  Value init = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{t.tileRows(), t.headDim}, type);
  return buildGeneric(b, loc, {state.acc, state.l}, init,
                      {identity2, rowMap, identity2}, 2, {},
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value zero = floatConstant(nb, nl, f32, 0.0);
                        Value seen = arith::CmpFOp::create(
                            nb, nl, arith::CmpFPredicate::OGT, args[1], zero);
                        Value quotient =
                            arith::DivFOp::create(nb, nl, args[0], args[1]);
                        Value out =
                            arith::SelectOp::create(nb, nl, seen, quotient, zero);
                        return SmallVector<Value>{
                            convertFloat(nb, nl, out, type)};
                      })
      .front();
}

Value QueryBlockEmitter::logSumExp(OnlineSoftmaxState state) {
  AffineMap identity1 = AffineMap::getMultiDimIdentityMap(1, b.getContext());
  Value init =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{t.tileRows()}, f32);
  return buildGeneric(
             b, loc, {state.m, state.l}, init,
             {identity1, identity1, identity1}, 1, {},
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value zero = floatConstant(nb, nl, f32, 0.0);
               Value seen = arith::CmpFOp::create(
                   nb, nl, arith::CmpFPredicate::OGT, args[1], zero);
               Value log2Sum = arith::AddFOp::create(
                   nb, nl, args[0], math::Log2Op::create(nb, nl, args[1]));
               Value lse = arith::MulFOp::create(
                   nb, nl, log2Sum, floatConstant(nb, nl, f32, M_LN2));
               Value negInf = floatConstant(
                   nb, nl, f32, -std::numeric_limits<double>::infinity());
               return SmallVector<Value>{
                   arith::SelectOp::create(nb, nl, seen, lse, negInf)};
             })
      .front();
}

OnlineSoftmaxState QueryBlockEmitter::run(Value lo, Value hi) {
  int64_t numKV = t.numKeyBlocks();
  int64_t numFullKV = t.kvSeq / t.kvBlock;

  // Key/value blocks [0, full) need no mask; [full, end) are the diagonal
  // blocks and the ragged tail; blocks past `end` are never visited.
  Value full, end;
  if (!t.causal) {
    full = index(numFullKV);
    end = index(numKV);
  } else {
    full = causalFullKeyBlocks(b, loc, t, q0);
    end = causalKeyBlockEnd(b, loc, t, q0);
  }

  OnlineSoftmaxState state{
      filledTensor(b, loc, {t.tileRows()}, f32,
                   -std::numeric_limits<double>::infinity()),
      filledTensor(b, loc, {t.tileRows()}, f32, 0.0),
      filledTensor(b, loc, {t.tileRows(), t.headDim}, f32, 0.0)};
  if (lo) {
    // A split: the unmasked blocks [lo, min(full, hi)), the masked ones
    // [max(lo, full), min(end, hi)); a loop whose bounds cross runs none.
    Value maskedStart = arith::MaxSIOp::create(b, loc, lo, full);
    full = arith::MinSIOp::create(b, loc, full, hi);
    end = arith::MinSIOp::create(b, loc, end, hi);
    if (t.causal || numFullKV > 0)
      state = loop(state, lo, full, /*masked=*/false);
    if (t.causal || numKV > numFullKV)
      state = loop(state, maskedStart, end, /*masked=*/true);
    return state;
  }
  if (t.causal || numFullKV > 0)
    state = loop(state, index(0), full, /*masked=*/false);
  if (t.causal || numKV > numFullKV)
    state = loop(state, full, end, /*masked=*/true);
  return state;
}

QueryBlockTiles QueryBlockEmitter::emit() {
  OnlineSoftmaxState state = run(Value(), Value());
  QueryBlockTiles tiles{normalize(state, t.elementType), Value()};
  if (t.withLSE)
    tiles.lse = logSumExp(state);
  return tiles;
}

QueryBlockTiles QueryBlockEmitter::emitPartial(Value lo, Value hi) {
  OnlineSoftmaxState state = run(lo, hi);
  return {normalize(state, f32), logSumExp(state)};
}

QueryBlockTiles bpt::detail::buildAttentionQueryBlock(OpBuilder &b,
                                                      Location loc,
                                            const AttentionTiling &t,
                                            Value query, Value key,
                                            Value value, Value batch,
                                            Value head, Value q0) {
  // GQA: query head h reads key/value head h / (Hq / Hkv), in place.
  Value kvHead = head;
  if (t.qHeads != t.kvHeads)
    kvHead = arith::DivUIOp::create(
        b, loc, head, indexConstant(b, loc, t.qHeads / t.kvHeads));
  Value qTile = extractRowBlock(b, loc, query, {batch, head}, q0, t.qBlock,
                                t.raggedQuery());
  return QueryBlockEmitter(b, loc, t, key, value, batch, kvHead, q0, qTile)
      .emit();
}

scf::ForallOp bpt::detail::buildAttentionNest(OpBuilder &b, Location loc,
                                              const AttentionTiling &t,
                                              Value query, Value key,
                                              Value value) {
  SmallVector<Value> inits = {tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{t.batch, t.qHeads, t.qSeq, t.headDim},
      t.elementType)};
  if (t.withLSE)
    inits.push_back(tensor::EmptyOp::create(
        b, loc, ArrayRef<int64_t>{t.batch, t.qHeads, t.qSeq},
        b.getF32Type()));
  SmallVector<OpFoldResult> bounds = {b.getIndexAttr(t.batch),
                                      b.getIndexAttr(t.qHeads),
                                      b.getIndexAttr(t.numQueryBlocks())};
  auto forall = scf::ForallOp::create(b, loc, bounds, inits, std::nullopt);
  setBlockSizeAttrs(forall, t.qBlock, t.kvBlock);
  forall->setAttr(AttentionNestAttr::kAttrName,
                  AttentionNestAttr::get(b.getContext(), t.causal,
                                         llvm::APFloat(t.scale)));

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(forall.getTerminator());
  SmallVector<Value> ivs = forall.getInductionVars();
  Value batch = ivs[0], head = ivs[1];
  Value q0 = arith::MulIOp::create(b, loc, ivs[2],
                                   indexConstant(b, loc, t.qBlock));
  QueryBlockTiles tiles = buildAttentionQueryBlock(b, loc, t, query, key,
                                                   value, batch, head, q0);
  Value tile = tiles.out, lse = tiles.lse;
  OpFoldResult rows = b.getIndexAttr(t.qBlock);
  OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
  if (t.raggedQuery()) {
    rows = validRows(b, loc, q0, t.qBlock, t.qSeq);
    tile = tensor::ExtractSliceOp::create(b, loc, tile, {zero, zero},
                                          {rows, b.getIndexAttr(t.headDim)},
                                          {one, one});
    if (lse)
      lse = tensor::ExtractSliceOp::create(b, loc, lse, {zero}, {rows}, {one});
  }
  b.setInsertionPointToEnd(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, tile, forall.getRegionIterArgs()[0],
      {batch, head, q0, zero}, {one, one, rows, b.getIndexAttr(t.headDim)},
      {one, one, one, one});
  if (lse)
    tensor::ParallelInsertSliceOp::create(
        b, loc, lse, forall.getRegionIterArgs()[1], {batch, head, q0},
        {one, one, rows}, {one, one, one});
  return forall;
}

//===----------------------------------------------------------------------===//
// Split over the keys (decode and short queries)
//===----------------------------------------------------------------------===//

namespace {

/// The partial nest: per (batch, key/value head, split), the group's query
/// rows against the split's key blocks.
scf::ForallOp buildSplitKVPartials(OpBuilder &b, Location loc,
                                   const AttentionTiling &t, int64_t splits,
                                   Value query, Value key, Value value) {
  Type f32 = b.getF32Type();
  int64_t rows = t.tileRows(), group = t.packedHeads;
  SmallVector<Value> inits = {
      tensor::EmptyOp::create(
          b, loc, ArrayRef<int64_t>{t.batch, t.kvHeads, splits, rows, t.headDim},
          f32),
      tensor::EmptyOp::create(
          b, loc, ArrayRef<int64_t>{t.batch, t.kvHeads, splits, rows}, f32)};
  SmallVector<OpFoldResult> bounds = {b.getIndexAttr(t.batch),
                                      b.getIndexAttr(t.kvHeads),
                                      b.getIndexAttr(splits)};
  auto forall = scf::ForallOp::create(b, loc, bounds, inits, std::nullopt);
  setBlockSizeAttrs(forall, t.qBlock, t.kvBlock);
  forall->setAttr(AttentionNestAttr::kAttrName,
                  SplitKVNestAttr::get(b.getContext(), SplitKVPart::partial,
                                       t.causal, llvm::APFloat(t.scale)));

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(forall.getTerminator());
  SmallVector<Value> ivs = forall.getInductionVars();
  Value batch = ivs[0], kvHead = ivs[1], split = ivs[2];
  OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
  // The group's query heads [h0, h0 + group) and all their rows, as one
  // [group × Sq, D] tile.
  Value h0 = arith::MulIOp::create(b, loc, kvHead, indexConstant(b, loc, group));
  auto groupType =
      RankedTensorType::get({group, t.qSeq, t.headDim}, t.elementType);
  Value slice = tensor::ExtractSliceOp::create(
      b, loc, groupType, query, {batch, h0, zero, zero},
      {one, b.getIndexAttr(group), b.getIndexAttr(t.qSeq),
       b.getIndexAttr(t.headDim)},
      {one, one, one, one});
  Value rowsView = tensor::CollapseShapeOp::create(
      b, loc, slice, SmallVector<ReassociationIndices>{{0, 1}, {2}});
  Value qEmpty = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{rows, t.headDim}, t.elementType);
  Value qTile = linalg::CopyOp::create(b, loc, rowsView, qEmpty).getResult(0);
  // This split's key blocks: [split · per, min((split + 1) · per, blocks)).
  int64_t perSplit = (t.numKeyBlocks() + splits - 1) / splits;
  Value lo = arith::MulIOp::create(b, loc, split,
                                   indexConstant(b, loc, perSplit));
  Value hi = arith::MinSIOp::create(
      b, loc,
      arith::AddIOp::create(b, loc, lo, indexConstant(b, loc, perSplit)),
      indexConstant(b, loc, t.numKeyBlocks()));
  QueryBlockTiles tiles =
      QueryBlockEmitter(b, loc, t, key, value, batch, kvHead,
                        indexConstant(b, loc, 0), qTile)
          .emitPartial(lo, hi);

  b.setInsertionPointToEnd(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, tiles.out, forall.getRegionIterArgs()[0],
      {batch, kvHead, split, zero, zero},
      {one, one, one, b.getIndexAttr(rows), b.getIndexAttr(t.headDim)},
      {one, one, one, one, one});
  tensor::ParallelInsertSliceOp::create(
      b, loc, tiles.lse, forall.getRegionIterArgs()[1],
      {batch, kvHead, split, zero}, {one, one, one, b.getIndexAttr(rows)},
      {one, one, one, one});
  return forall;
}

/// The combine nest: per (batch, query head, query row), the splits'
/// normalised rows weighted by exp(lse_s − max lse), over their weights'
/// sum (0 for a row that sees no key in any split).
scf::ForallOp buildSplitKVCombine(OpBuilder &b, Location loc,
                                  const AttentionTiling &t, int64_t splits,
                                  Value partials, Value lse) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  int64_t d = t.headDim;
  Value init = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{t.batch, t.qHeads, t.qSeq, d}, t.elementType);
  SmallVector<OpFoldResult> bounds = {b.getIndexAttr(t.batch),
                                      b.getIndexAttr(t.qHeads),
                                      b.getIndexAttr(t.qSeq)};
  auto forall = scf::ForallOp::create(b, loc, bounds, {init}, std::nullopt);
  forall->setAttr(AttentionNestAttr::kAttrName,
                  SplitKVNestAttr::get(ctx, SplitKVPart::combine, t.causal,
                                       llvm::APFloat(t.scale)));

  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(forall.getTerminator());
  SmallVector<Value> ivs = forall.getInductionVars();
  Value batch = ivs[0], head = ivs[1], query = ivs[2];
  OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
  Value group = indexConstant(b, loc, t.packedHeads);
  Value kvHead = arith::DivUIOp::create(b, loc, head, group);
  Value row = arith::AddIOp::create(
      b, loc,
      arith::MulIOp::create(b, loc, arith::RemUIOp::create(b, loc, head, group),
                            indexConstant(b, loc, t.qSeq)),
      query);
  Value rowLSE = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({splits}, f32), lse,
      {batch, kvHead, zero, row}, {one, one, b.getIndexAttr(splits), one},
      {one, one, one, one});
  Value rowParts = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({splits, d}, f32), partials,
      {batch, kvHead, zero, row, zero},
      {one, one, b.getIndexAttr(splits), one, b.getIndexAttr(d)},
      {one, one, one, one, one});

  AffineExpr d0 = getAffineDimExpr(0, ctx), d1 = getAffineDimExpr(1, ctx);
  AffineExpr c0 = getAffineConstantExpr(0, ctx);
  AffineMap id1 = AffineMap::get(1, 0, {d0}, ctx);
  AffineMap toFirst1 = AffineMap::get(1, 0, {c0}, ctx);
  double negInf = -std::numeric_limits<double>::infinity();
  // M = max_s lse_s.
  Value max = buildGeneric(b, loc, rowLSE, filledTensor(b, loc, {1}, f32, negInf),
                           {id1, toFirst1}, 1, {0},
                           [&](OpBuilder &nb, Location nl, ValueRange args) {
                             return SmallVector<Value>{arith::MaximumFOp::create(
                                 nb, nl, args[0], args[1])};
                           })
                  .front();
  // w_s = exp(lse_s − M), with M taken as 0 where no split saw a key.
  Value weights =
      buildGeneric(
          b, loc, {rowLSE, max},
          tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{splits}, f32)
              .getResult(),
          {id1, toFirst1, id1}, 1, {},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value noKey = arith::CmpFOp::create(
                nb, nl, arith::CmpFPredicate::OEQ, args[1],
                floatConstant(nb, nl, f32, negInf));
            Value m = arith::SelectOp::create(
                nb, nl, noKey, floatConstant(nb, nl, f32, 0.0), args[1]);
            Value diff = arith::MulFOp::create(
                nb, nl, arith::SubFOp::create(nb, nl, args[0], m),
                floatConstant(nb, nl, f32, M_LOG2E));
            return SmallVector<Value>{math::Exp2Op::create(nb, nl, diff)};
          })
          .front();
  auto sum = [&](OpBuilder &nb, Location nl, ValueRange args) {
    return SmallVector<Value>{arith::AddFOp::create(nb, nl, args[0], args[1])};
  };
  Value total = buildGeneric(b, loc, weights, filledTensor(b, loc, {1}, f32, 0.0),
                             {id1, toFirst1}, 1, {0}, sum)
                    .front();
  // acc[c] = Σ_s w_s · O_s[c]: columns parallel, splits reduced.
  Value acc =
      buildGeneric(
          b, loc, {rowParts, weights}, filledTensor(b, loc, {d}, f32, 0.0),
          {AffineMap::get(2, 0, {d1, d0}, ctx), AffineMap::get(2, 0, {d1}, ctx),
           AffineMap::get(2, 0, {d0}, ctx)},
          2, {1},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value term = arith::MulFOp::create(nb, nl, args[0], args[1]);
            return SmallVector<Value>{
                arith::AddFOp::create(nb, nl, term, args[2])};
          })
          .front();
  Value out =
      buildGeneric(
          b, loc, {acc, total},
          tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{d}, t.elementType)
              .getResult(),
          {id1, toFirst1, id1}, 1, {},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value zeroF = floatConstant(nb, nl, f32, 0.0);
            Value seen = arith::CmpFOp::create(
                nb, nl, arith::CmpFPredicate::OGT, args[1], zeroF);
            Value quotient = arith::DivFOp::create(nb, nl, args[0], args[1]);
            Value value = arith::SelectOp::create(nb, nl, seen, quotient, zeroF);
            return SmallVector<Value>{convertFloat(nb, nl, value, t.elementType)};
          })
          .front();

  b.setInsertionPointToEnd(forall.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, out, forall.getRegionIterArgs()[0], {batch, head, query, zero},
      {one, one, one, b.getIndexAttr(d)}, {one, one, one, one});
  return forall;
}

} // namespace

SplitKVNests bpt::detail::buildSplitKVAttention(OpBuilder &b, Location loc,
                                                 const AttentionTiling &t,
                                                 int64_t kvSplits, Value query,
                                                 Value key, Value value) {
  assert(t.qBlock == t.qSeq && t.packedHeads == t.qHeads / t.kvHeads &&
         !t.withLSE && "a split nest packs all query rows of a group");
  scf::ForallOp partials =
      buildSplitKVPartials(b, loc, t, kvSplits, query, key, value);
  return {partials, buildSplitKVCombine(b, loc, t, kvSplits,
                                        partials.getResult(0),
                                        partials.getResult(1))};
}
