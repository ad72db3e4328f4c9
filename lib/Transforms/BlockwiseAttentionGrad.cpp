//===- BlockwiseAttentionGrad.cpp - blockwise attention backward -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The blockwise form of bpt.attention_grad, in three parts:
//
//   D = rowsum(dO ∘ O)                               a small pre-pass
//   per (batch, kv head, key block):                 dK, dV
//     for each query head of the group, for each query block that sees the
//     key block (causal skipping): recompute P = exp(scale·q·kᵀ − lse),
//     dV += Pᵀ·dO, dS = P ∘ (dO·Vᵀ − D), dK += dSᵀ·q
//   per (batch, query head, query block):            dQ
//     for each key block the query block sees: dQ += dS·k
//
// dQ is a second pass that recomputes P rather than a sum across key blocks
// by atomics: every gradient is written by exactly one loop iteration, in a
// fixed order, so the result is deterministic. GQA's sums over a group run
// inside the dK/dV iteration, also in a fixed order. No tensor larger than
// q-block × kv-block scores exists.
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

using namespace mlir;
using namespace bpt;
using namespace bpt::detail;

namespace {

/// Builds the pieces of one attention's backward.
class GradEmitter {
public:
  GradEmitter(OpBuilder &b, Location loc, const AttentionTiling &t,
              AttentionGradOp op)
      : b(b), loc(loc), t(t), op(op), f32(b.getF32Type()) {
    MLIRContext *ctx = b.getContext();
    identity1 = AffineMap::getMultiDimIdentityMap(1, ctx);
    identity2 = AffineMap::getMultiDimIdentityMap(2, ctx);
    rowMap = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
  }

  AttentionGradResults build();

private:
  Value index(int64_t v) { return indexConstant(b, loc, v); }
  Value zeros(ArrayRef<int64_t> shape) {
    return filledTensor(b, loc, shape, f32, 0.0);
  }

  /// D = rowsum(dO ∘ O), [B, Hq, Sq] in f32.
  Value rowDots();
  /// Rows [row0, row0 + qBlock) of `rows` ([B, Hq, Sq] f32) at (batch,
  /// head), zero past Sq.
  Value rowSlice(Value rows, Value batch, Value head, Value row0);
  /// The tiles of one (query block, key block) pair: P (masked, 0 outside)
  /// and dS = P ∘ (dO·Vᵀ − D), both [qBlock, kvBlock] f32.
  std::pair<Value, Value> scoresGrad(Value qTile, Value kTile, Value vTile,
                                     Value dOTile, Value lseTile, Value dTile,
                                     Value q0, Value kv0);
  /// The query block index from which query blocks see key block `kv0`.
  Value firstQueryBlock(Value kv0);
  /// The end of the key blocks the query block at `q0` sees.
  Value endKeyBlock(Value q0);
  /// `acc` · `scale` in the element type, its rows below `seq` inserted
  /// at (batch, head, row0) of the forall's shared output `out`.
  void store(scf::ForallOp loop, unsigned out, Value acc, double scale,
             Value batch, Value head, Value row0, int64_t block, int64_t seq);

  scf::ForallOp buildKeyValueNest(Value d);
  scf::ForallOp buildQueryNest(Value d);
  /// Marks `loop` as `part` of this backward, with the op's strategy.
  void tag(scf::ForallOp loop, AttentionGradPart part);

  OpBuilder &b;
  Location loc;
  const AttentionTiling &t;
  AttentionGradOp op;
  Type f32;
  AffineMap identity1, identity2, rowMap;
};

} // namespace

Value GradEmitter::rowDots() {
  MLIRContext *ctx = b.getContext();
  AffineMap all = AffineMap::getMultiDimIdentityMap(4, ctx);
  AffineMap rows = AffineMap::get(
      4, 0,
      {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx),
       getAffineDimExpr(2, ctx)},
      ctx);
  return buildGeneric(b, loc, {op.getOutputGrad(), op.getOutput()},
                      zeros({t.batch, t.qHeads, t.qSeq}), {all, all, rows}, 4,
                      {3},
                      [&](OpBuilder &nb, Location nl, ValueRange args) {
                        Value x = convertFloat(nb, nl, args[0], f32);
                        Value y = convertFloat(nb, nl, args[1], f32);
                        return SmallVector<Value>{math::FmaOp::create(
                            nb, nl, x, y, args[2])};
                      })
      .front();
}

Value GradEmitter::rowSlice(Value rows, Value batch, Value head, Value row0) {
  // As a [B, Hq, Sq, 1] tensor, its rows are a tile like any other.
  Value column = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({t.batch, t.qHeads, t.qSeq, 1}, f32), rows,
      ArrayRef<ReassociationIndices>{{0}, {1}, {2, 3}});
  Value tile = extractRowBlock(b, loc, column, {batch, head}, row0, t.qBlock,
                               t.raggedQuery());
  return tensor::CollapseShapeOp::create(
      b, loc, tile, ArrayRef<ReassociationIndices>{{0, 1}});
}

std::pair<Value, Value>
GradEmitter::scoresGrad(Value qTile, Value kTile, Value vTile, Value dOTile,
                        Value lseTile, Value dTile, Value q0, Value kv0) {
  int64_t qb = t.qBlock, kvb = t.kvBlock;
  Value scores = buildMatmul(b, loc, qTile, kTile, zeros({qb, kvb}),
                             /*transposeB=*/true);
  // P = exp(scale · s − lse) where key and query are real and visible.
  Value p =
      buildGeneric(
          b, loc, lseTile, scores, {rowMap, identity2}, 2, {},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value scaled = arith::MulFOp::create(
                nb, nl, args[1], floatConstant(nb, nl, f32, t.scale));
            Value e = math::ExpOp::create(
                nb, nl, arith::SubFOp::create(nb, nl, scaled, args[0]));
            Value keep = visibleInTile(nb, nl, t, q0, kv0, /*maskRows=*/true);
            if (!keep)
              return SmallVector<Value>{e};
            return SmallVector<Value>{arith::SelectOp::create(
                nb, nl, keep, e, floatConstant(nb, nl, f32, 0.0))};
          })
          .front();
  // dS = P ∘ (dO·Vᵀ − D).
  Value dP = buildMatmul(b, loc, dOTile, vTile, zeros({qb, kvb}),
                         /*transposeB=*/true);
  Value dS = buildGeneric(b, loc, {p, dTile}, dP,
                          {identity2, rowMap, identity2}, 2, {},
                          [&](OpBuilder &nb, Location nl, ValueRange args) {
                            Value diff =
                                arith::SubFOp::create(nb, nl, args[2], args[1]);
                            return SmallVector<Value>{
                                arith::MulFOp::create(nb, nl, args[0], diff)};
                          })
                 .front();
  return {p, dS};
}

Value GradEmitter::firstQueryBlock(Value kv0) {
  if (!t.causal)
    return index(0);
  // Query row r sees key kv0 iff r >= kv0 - (Skv - Sq).
  Value first = arith::SubIOp::create(b, loc, kv0, index(t.kvSeq - t.qSeq));
  first = arith::MaxSIOp::create(b, loc, first, index(0));
  return arith::DivSIOp::create(b, loc, first, index(t.qBlock));
}

Value GradEmitter::endKeyBlock(Value q0) {
  if (!t.causal)
    return index((t.kvSeq + t.kvBlock - 1) / t.kvBlock);
  return causalKeyBlockEnd(b, loc, t, q0);
}

void GradEmitter::store(scf::ForallOp loop, unsigned out, Value acc,
                        double scale, Value batch, Value head, Value row0,
                        int64_t block, int64_t seq) {
  Value init =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{block, t.headDim},
                              t.elementType);
  Value tile =
      buildGeneric(b, loc, acc, init, {identity2, identity2}, 2, {},
                   [&](OpBuilder &nb, Location nl, ValueRange args) {
                     Value scaled = arith::MulFOp::create(
                         nb, nl, args[0], floatConstant(nb, nl, f32, scale));
                     return SmallVector<Value>{
                         convertFloat(nb, nl, scaled, t.elementType)};
                   })
          .front();
  OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
  OpFoldResult rows = b.getIndexAttr(block);
  if (seq % block != 0) {
    rows = validRows(b, loc, row0, block, seq);
    tile = tensor::ExtractSliceOp::create(
        b, loc, tile, {zero, zero}, {rows, b.getIndexAttr(t.headDim)},
        {one, one});
  }
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(loop.getTerminator().getBody());
  tensor::ParallelInsertSliceOp::create(
      b, loc, tile, loop.getRegionIterArgs()[out], {batch, head, row0, zero},
      {one, one, rows, b.getIndexAttr(t.headDim)}, {one, one, one, one});
}

scf::ForallOp GradEmitter::buildKeyValueNest(Value d) {
  auto kvType = cast<RankedTensorType>(op.getKey().getType());
  int64_t numKV = (t.kvSeq + t.kvBlock - 1) / t.kvBlock;
  int64_t numQ = t.numQueryBlocks(), group = t.qHeads / t.kvHeads;
  SmallVector<Value> inits(2, tensor::EmptyOp::create(
                                  b, loc, kvType.getShape(), t.elementType));
  auto loop = scf::ForallOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{b.getIndexAttr(t.batch), b.getIndexAttr(t.kvHeads),
                             b.getIndexAttr(numKV)},
      inits, std::nullopt);
  setBlockSizeAttrs(loop, t.qBlock, t.kvBlock);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getTerminator());
  SmallVector<Value> ivs = loop.getInductionVars();
  Value batch = ivs[0], kvHead = ivs[1];
  Value kv0 = arith::MulIOp::create(b, loc, ivs[2], index(t.kvBlock));
  Value kTile = extractRowBlock(b, loc, op.getKey(), {batch, kvHead}, kv0,
                                t.kvBlock, t.raggedKV());
  Value vTile = extractRowBlock(b, loc, op.getValue(), {batch, kvHead}, kv0,
                                t.kvBlock, t.raggedKV());
  Value dK = zeros({t.kvBlock, t.headDim}), dV = zeros({t.kvBlock, t.headDim});
  // The query heads of the group, then their query blocks that see the key
  // block: a fixed order, so the sums are deterministic.
  auto heads = scf::ForOp::create(
      b, loc, index(0), index(group), index(1), ValueRange{dK, dV},
      [&](OpBuilder &nb, Location, Value g, ValueRange acc) {
        OpBuilder::InsertionGuard inner(b);
        b.setInsertionPointToStart(nb.getInsertionBlock());
        Value head = arith::AddIOp::create(
            b, loc, arith::MulIOp::create(b, loc, kvHead, index(group)), g);
        auto blocks = scf::ForOp::create(
            b, loc, firstQueryBlock(kv0), index(numQ), index(1), acc,
            [&](OpBuilder &nb2, Location, Value i, ValueRange sums) {
              OpBuilder::InsertionGuard innermost(b);
              b.setInsertionPointToStart(nb2.getInsertionBlock());
              Value q0 = arith::MulIOp::create(b, loc, i, index(t.qBlock));
              Value qTile = extractRowBlock(b, loc, op.getQuery(),
                                            {batch, head}, q0, t.qBlock,
                                            t.raggedQuery());
              Value dOTile = extractRowBlock(b, loc, op.getOutputGrad(),
                                             {batch, head}, q0, t.qBlock,
                                             t.raggedQuery());
              auto [p, dS] = scoresGrad(
                  qTile, kTile, vTile, dOTile,
                  rowSlice(op.getLse(), batch, head, q0),
                  rowSlice(d, batch, head, q0), q0, kv0);
              Value dVNext = buildMatmulTransposedA(b, loc, p, dOTile, sums[1]);
              Value dKNext = buildMatmulTransposedA(b, loc, dS, qTile, sums[0]);
              scf::YieldOp::create(b, loc, ValueRange{dKNext, dVNext});
            });
        scf::YieldOp::create(b, loc, blocks.getResults());
      });
  // dK carries the scale of the scores; dV = Pᵀ·dO has none.
  store(loop, 0, heads.getResult(0), t.scale, batch, kvHead, kv0, t.kvBlock,
        t.kvSeq);
  store(loop, 1, heads.getResult(1), 1.0, batch, kvHead, kv0, t.kvBlock,
        t.kvSeq);
  return loop;
}

scf::ForallOp GradEmitter::buildQueryNest(Value d) {
  Value init = tensor::EmptyOp::create(
      b, loc, cast<RankedTensorType>(op.getQuery().getType()).getShape(),
      t.elementType);
  auto loop = scf::ForallOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{b.getIndexAttr(t.batch), b.getIndexAttr(t.qHeads),
                             b.getIndexAttr(t.numQueryBlocks())},
      ValueRange{init}, std::nullopt);
  setBlockSizeAttrs(loop, t.qBlock, t.kvBlock);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getTerminator());
  SmallVector<Value> ivs = loop.getInductionVars();
  Value batch = ivs[0], head = ivs[1];
  Value q0 = arith::MulIOp::create(b, loc, ivs[2], index(t.qBlock));
  Value kvHead = head;
  if (t.qHeads != t.kvHeads)
    kvHead = arith::DivUIOp::create(b, loc, head,
                                    index(t.qHeads / t.kvHeads));
  Value qTile = extractRowBlock(b, loc, op.getQuery(), {batch, head}, q0,
                                t.qBlock, t.raggedQuery());
  Value dOTile = extractRowBlock(b, loc, op.getOutputGrad(), {batch, head},
                                 q0, t.qBlock, t.raggedQuery());
  Value lseTile = rowSlice(op.getLse(), batch, head, q0);
  Value dTile = rowSlice(d, batch, head, q0);
  auto blocks = scf::ForOp::create(
      b, loc, index(0), endKeyBlock(q0), index(1),
      ValueRange{zeros({t.qBlock, t.headDim})},
      [&](OpBuilder &nb, Location, Value j, ValueRange acc) {
        OpBuilder::InsertionGuard inner(b);
        b.setInsertionPointToStart(nb.getInsertionBlock());
        Value kv0 = arith::MulIOp::create(b, loc, j, index(t.kvBlock));
        Value kTile = extractRowBlock(b, loc, op.getKey(), {batch, kvHead},
                                      kv0, t.kvBlock, t.raggedKV());
        Value vTile = extractRowBlock(b, loc, op.getValue(), {batch, kvHead},
                                      kv0, t.kvBlock, t.raggedKV());
        Value dS = scoresGrad(qTile, kTile, vTile, dOTile, lseTile, dTile, q0,
                              kv0)
                       .second;
        scf::YieldOp::create(b, loc, buildMatmul(b, loc, dS, kTile, acc[0]));
      });
  store(loop, 0, blocks.getResult(0), t.scale, batch, head, q0, t.qBlock,
        t.qSeq);
  return loop;
}

void GradEmitter::tag(scf::ForallOp loop, AttentionGradPart part) {
  loop->setAttr(AttentionNestAttr::kAttrName,
                AttentionGradNestAttr::get(b.getContext(), part, t.causal,
                                           APFloat(t.scale)));
  if (StrategyAttr strategy = StrategyAttr::get(op))
    loop->setAttr(StrategyAttr::kAttrName, strategy);
}

AttentionGradResults GradEmitter::build() {
  Value d = rowDots();
  scf::ForallOp keyValue = buildKeyValueNest(d);
  scf::ForallOp query = buildQueryNest(d);
  tag(keyValue, AttentionGradPart::key_value);
  tag(query, AttentionGradPart::query);
  return {query.getResult(0), keyValue.getResult(0), keyValue.getResult(1)};
}

AttentionGradResults bpt::tileAttentionGrad(OpBuilder &b, AttentionGradOp op,
                                            int64_t qBlock, int64_t kvBlock) {
  AttentionTiling t = AttentionTiling::get(op, qBlock, kvBlock);
  return GradEmitter(b, op.getLoc(), t, op).build();
}
