//===- ChunkLoops.cpp - row-wise work as loops over chunks ------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/ChunkLoops.h"

#include "BlockPieces.h"
#include "BlockwiseAttention.h"

#include "bpt/Utils/Builders.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace bpt;
using namespace bpt::detail;

namespace {

/// A forall over the `rows / chunk_rows` chunks, tagged `kind` and with
/// `strategy`, writing into `inits`; `body` gets the chunk's first row and
/// returns one [chunk, N] tile per init, stored at the chunk's rows.
scf::ForallOp
createChunkLoop(OpBuilder &b, Location loc, ChunkLoopKind kind,
                StrategyAttr strategy, int64_t rows, ValueRange inits,
                function_ref<SmallVector<Value>(Value)> body) {
  int64_t chunk = strategy.getChunkRows();
  auto loop = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{b.getIndexAttr(rows / chunk)}, inits,
      std::nullopt);
  loop->setAttr(AttentionNestAttr::kAttrName,
                ChunkLoopAttr::get(b.getContext(), kind));
  loop->setAttr(StrategyAttr::kAttrName, strategy);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(loop.getTerminator());
  Value r0 = arith::MulIOp::create(b, loc, loop.getInductionVars()[0],
                                   indexConstant(b, loc, chunk));
  SmallVector<Value> tiles = body(r0);
  b.setInsertionPointToEnd(loop.getTerminator().getBody());
  for (auto [tile, out] : llvm::zip_equal(tiles, loop.getRegionIterArgs())) {
    int64_t width = cast<RankedTensorType>(tile.getType()).getDimSize(1);
    tensor::ParallelInsertSliceOp::create(
        b, loc, tile, out, {r0, b.getIndexAttr(0)},
        {b.getIndexAttr(chunk), b.getIndexAttr(width)},
        {b.getIndexAttr(1), b.getIndexAttr(1)});
  }
  return loop;
}

/// Rows [r0, r0 + count) of the [rows, N] `source`.
Value rowsOf(OpBuilder &b, Location loc, Value source, OpFoldResult r0,
             int64_t count) {
  auto type = cast<RankedTensorType>(source.getType());
  int64_t width = type.getDimSize(1);
  return tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({count, width}, type.getElementType()),
      source, {r0, b.getIndexAttr(0)},
      {b.getIndexAttr(count), b.getIndexAttr(width)},
      {b.getIndexAttr(1), b.getIndexAttr(1)});
}

/// [[0, ..., rank - 2], [rank - 1]]: [..., N] as [rows, N].
SmallVector<ReassociationIndices> rowsReassociation(int64_t rank) {
  SmallVector<ReassociationIndices> toRows(1);
  for (int64_t d = 0; d + 1 < rank; ++d)
    toRows[0].push_back(d);
  toRows.push_back({rank - 1});
  return toRows;
}

/// `x` ([..., N]) viewed as [rows, N].
Value asRows(OpBuilder &b, Location loc, Value x) {
  int64_t rank = cast<RankedTensorType>(x.getType()).getRank();
  if (rank == 2)
    return x;
  return tensor::CollapseShapeOp::create(b, loc, x, rowsReassociation(rank));
}

/// `rows` ([rows, N]) back in the shape of `like`.
Value restoreShape(OpBuilder &b, Location loc, Value rows,
                   RankedTensorType like) {
  if (like.getRank() == 2)
    return rows;
  return tensor::ExpandShapeOp::create(b, loc, like, rows,
                                       rowsReassociation(like.getRank()));
}

/// Builds the two chunk loops of one block.
class ChunkLoopBuilder {
public:
  ChunkLoopBuilder(RewriterBase &b, TransformerBlockOp op,
                   StrategyAttr strategy)
      : b(b), op(op), strategy(strategy), loc(op.getLoc()) {
    auto xType = op.getInput().getType();
    element = xType.getElementType();
    seq = xType.getDimSize(1);
    hidden = xType.getDimSize(2);
    rows = xType.getDimSize(0) * seq;
    chunk = strategy.getChunkRows();
    headDim = op.getHeadDim();
    heads = op.getHeads();
    kvHeads = op.getKvHeads();
  }

  void build();

private:
  RankedTensorType matrix(int64_t r, int64_t c) {
    return RankedTensorType::get({r, c}, element);
  }
  Value index(int64_t v) { return indexConstant(b, loc, v); }
  /// A forall over the chunks, tagged `kind`, writing into `inits`; `body`
  /// gets the chunk's first row and returns one [chunk, N] tile per init.
  scf::ForallOp chunkLoop(ChunkLoopKind kind, ValueRange inits,
                          function_ref<SmallVector<Value>(Value)> body);
  /// Rows [r0, r0 + chunk) of `source`, as a [chunk, N] tensor.
  Value chunkOf(Value source, Value r0, int64_t count);
  /// [n, h * D] -> [1, h, n, D], and back.
  Value headsMajor(Value tokens, int64_t h);
  Value tokenMajor(Value perHead, int64_t h);
  Value linear(Value x, Value weight);
  Value norm(Value x, Value weight, Value bias) {
    return buildBlockNorm(b, loc, op, x, weight, bias)->getResult(0);
  }
  /// Attention of the chunk's queries (rows [r0, r0 + chunk)) against the
  /// keys and values of their sequence.
  Value attention(Value q, Value keys, Value values, Value r0);

  RewriterBase &b;
  TransformerBlockOp op;
  StrategyAttr strategy;
  Location loc;
  Type element;
  int64_t seq, hidden, rows, chunk, headDim, heads, kvHeads;
};

} // namespace

scf::ForallOp
ChunkLoopBuilder::chunkLoop(ChunkLoopKind kind, ValueRange inits,
                            function_ref<SmallVector<Value>(Value)> body) {
  return createChunkLoop(b, loc, kind, strategy, rows, inits, body);
}

Value ChunkLoopBuilder::chunkOf(Value source, Value r0, int64_t count) {
  return rowsOf(b, loc, source, r0, count);
}

Value ChunkLoopBuilder::headsMajor(Value tokens, int64_t h) {
  int64_t n = cast<RankedTensorType>(tokens.getType()).getDimSize(0);
  Value split = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({1, n, h, headDim}, element), tokens,
      ArrayRef<ReassociationIndices>{{0, 1}, {2, 3}});
  Value init = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{1, h, n, headDim}, element);
  return linalg::TransposeOp::create(b, loc, split, init, kSwapSeqAndHeads)
      .getResult()
      .front();
}

Value ChunkLoopBuilder::tokenMajor(Value perHead, int64_t h) {
  int64_t n = cast<RankedTensorType>(perHead.getType()).getDimSize(2);
  Value init = tensor::EmptyOp::create(
      b, loc, ArrayRef<int64_t>{1, n, h, headDim}, element);
  Value transposed =
      linalg::TransposeOp::create(b, loc, perHead, init, kSwapSeqAndHeads)
          .getResult()
          .front();
  return tensor::CollapseShapeOp::create(
      b, loc, transposed, ArrayRef<ReassociationIndices>{{0, 1}, {2, 3}});
}

Value ChunkLoopBuilder::linear(Value x, Value weight) {
  int64_t n = cast<RankedTensorType>(weight.getType()).getDimSize(1);
  return LinearOp::create(b, loc, matrix(chunk, n), x, weight,
                          /*bias=*/Value());
}

Value ChunkLoopBuilder::attention(Value q, Value keys, Value values, Value r0) {
  // The chunk's sequence starts at row r0 - r0 % seq; its queries sit at
  // positions r0 % seq.. of it.
  Value position = arith::RemUIOp::create(b, loc, r0, index(seq));
  Value first = arith::SubIOp::create(b, loc, r0, position);
  AttentionTiling tiling;
  tiling.batch = 1;
  tiling.qHeads = heads;
  tiling.kvHeads = kvHeads;
  tiling.qSeq = chunk;
  tiling.kvSeq = seq;
  tiling.headDim = headDim;
  tiling.qBlock = std::min(strategy.getQBlock(), chunk);
  tiling.kvBlock = std::min(strategy.getKvBlock(), seq);
  tiling.causal = op.getCausal();
  tiling.scale = 1.0 / std::sqrt(static_cast<double>(headDim));
  tiling.elementType = element;
  tiling.queryOffset = position;
  // One statement each: the IR's order does not depend on the compiler's
  // order of evaluating arguments.
  Value q4 = headsMajor(q, heads);
  Value k4 = headsMajor(chunkOf(keys, first, seq), kvHeads);
  Value v4 = headsMajor(chunkOf(values, first, seq), kvHeads);
  scf::ForallOp nest = buildAttentionNest(b, loc, tiling, q4, k4, v4);
  return tokenMajor(nest.getResult(0), heads);
}

void ChunkLoopBuilder::build() {
  Value x = asRows(b, loc, op.getInput());
  int64_t kvWidth = kvHeads * headDim;
  auto empty = [&](int64_t r, int64_t c) -> Value {
    return tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{r, c}, element);
  };
  scf::ForallOp kvLoop = chunkLoop(
      ChunkLoopKind::kv_projection,
      {empty(rows, kvWidth), empty(rows, kvWidth)}, [&](Value r0) {
        Value h = norm(chunkOf(x, r0, chunk), op.getNorm1Weight(),
                       op.getNorm1Bias());
        return SmallVector<Value>{linear(h, op.getWK()),
                                  linear(h, op.getWV())};
      });
  scf::ForallOp blockLoop = chunkLoop(
      ChunkLoopKind::block, {empty(rows, hidden)}, [&](Value r0) {
        Value xChunk = chunkOf(x, r0, chunk);
        Value h = norm(xChunk, op.getNorm1Weight(), op.getNorm1Bias());
        Value a = attention(linear(h, op.getWQ()), kvLoop.getResult(0),
                            kvLoop.getResult(1), r0);
        Value y1 = arith::AddFOp::create(b, loc, xChunk, linear(a, op.getWO()));
        Value h2 = norm(y1, op.getNorm2Weight(), op.getNorm2Bias());
        Value f = FFNOp::create(b, loc, y1.getType(), h2, op.getWIn(),
                                op.getWOut(), op.getWGate(),
                                op.getActivationAttr());
        return SmallVector<Value>{arith::AddFOp::create(b, loc, y1, f)};
      });
  b.replaceOp(op, restoreShape(b, loc, blockLoop.getResult(0), op.getType()));
}

void bpt::buildBlockChunkLoops(RewriterBase &rewriter, TransformerBlockOp op,
                               StrategyAttr strategy) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  ChunkLoopBuilder(rewriter, op, strategy).build();
}

//===----------------------------------------------------------------------===//
// Reading the loops back
//===----------------------------------------------------------------------===//

namespace {

/// Ops of a chunk loop's body that only index, view or move data: the
/// reader skips them and checks the data flow between the others.
bool isDataMovement(Operation *op) {
  if (isa<tensor::ExtractSliceOp, tensor::ExpandShapeOp,
          tensor::CollapseShapeOp, tensor::EmptyOp, linalg::TransposeOp,
          scf::InParallelOp>(op))
    return true;
  return isa<arith::ConstantIndexOp, arith::MulIOp, arith::AddIOp,
             arith::SubIOp, arith::RemUIOp, arith::RemSIOp, arith::DivUIOp,
             arith::DivSIOp>(op) &&
         op->getResult(0).getType().isIndex();
}

/// `v` traced back through views and transposes.
Value throughViews(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (auto expand = dyn_cast<tensor::ExpandShapeOp>(def))
      v = expand.getSrc();
    else if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(def))
      v = collapse.getSrc();
    else if (auto transpose = dyn_cast<linalg::TransposeOp>(def))
      v = transpose.getInput();
    else
      break;
  }
  return v;
}

/// The ops of `loop`'s body that compute, in order; fails on an op the
/// reader does not know.
FailureOr<SmallVector<Operation *>> computeOps(scf::ForallOp loop) {
  SmallVector<Operation *> ops;
  for (Operation &op : loop.getBody()->getOperations()) {
    if (isDataMovement(&op))
      continue;
    bool known = isa<LayerNormOp, RMSNormOp, LinearOp, FFNOp, arith::AddFOp>(
                     op) ||
                 (isa<scf::ForallOp>(op) &&
                  op.hasAttr(AttentionNestAttr::kAttrName));
    if (!known)
      return loop.emitError()
             << "chunk loop: unexpected " << op.getName()
             << " in its body: it holds only ops the kernels compute";
    ops.push_back(&op);
  }
  return ops;
}

/// Rows a loop body reads of a [rows, N] tensor defined above it.
struct RowsRead {
  Value rows;
  int64_t count;
  /// The first row read (0 for the whole tensor).
  OpFoldResult offset;
};

/// What `v` is of such a tensor: a slice of whole rows, or the whole
/// tensor (a slice of all rows folds away).
std::optional<RowsRead> readRows(Value v, scf::ForallOp loop) {
  Builder b(loop.getContext());
  if (auto slice = v.getDefiningOp<tensor::ExtractSliceOp>()) {
    auto sourceType = cast<RankedTensorType>(slice.getSourceType());
    if (!slice.getSource().getParentRegion()->isProperAncestor(
            &loop.getRegion()) ||
        slice.getType().getRank() != 2 || sourceType.getRank() != 2 ||
        !slice.hasUnitStride() ||
        slice.getStaticSizes()[1] != sourceType.getDimSize(1) ||
        !isConstantIntValue(slice.getMixedOffsets()[1], 0))
      return std::nullopt;
    return RowsRead{slice.getSource(), slice.getStaticSizes()[0],
                    slice.getMixedOffsets()[0]};
  }
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type || type.getRank() != 2 ||
      !v.getParentRegion()->isProperAncestor(&loop.getRegion()))
    return std::nullopt;
  return RowsRead{v, type.getDimSize(0), b.getIndexAttr(0)};
}

/// Whether `loop` (normalised, one dimension) runs over the chunks of
/// `chunk` rows of `rows` rows, and `offset` is its chunk's first row:
/// induction variable × chunk.
bool isChunkStart(OpFoldResult offset, scf::ForallOp loop, int64_t chunk,
                  int64_t rows) {
  if (!loop.isNormalized() || loop.getRank() != 1 || chunk <= 0 ||
      loop.getStaticUpperBound()[0] * chunk != rows)
    return false;
  if (rows == chunk && isConstantIntValue(offset, 0))
    return true;
  auto mul = dyn_cast_if_present<Value>(offset)
                 ? cast<Value>(offset).getDefiningOp<arith::MulIOp>()
                 : nullptr;
  if (!mul)
    return false;
  Value iv = loop.getInductionVars()[0];
  return (mul.getLhs() == iv &&
          isConstantIntValue(mul.getRhs(), chunk)) ||
         (mul.getRhs() == iv && isConstantIntValue(mul.getLhs(), chunk));
}

/// Whether `offset` is the first row of the sequence (of `seq` rows) that
/// `loop`'s chunk lies in: r0 - r0 mod seq.
bool isSequenceStart(OpFoldResult offset, scf::ForallOp loop, int64_t chunk,
                     int64_t rows, int64_t seq) {
  if (seq == rows && isConstantIntValue(offset, 0))
    return true;
  auto sub = dyn_cast_if_present<Value>(offset)
                 ? cast<Value>(offset).getDefiningOp<arith::SubIOp>()
                 : nullptr;
  auto rem = sub ? sub.getRhs().getDefiningOp<arith::RemUIOp>() : nullptr;
  return rem && rem.getLhs() == sub.getLhs() &&
         isConstantIntValue(rem.getRhs(), seq) &&
         isChunkStart(sub.getLhs(), loop, chunk, rows);
}

/// Whether every store of `loop` writes a whole [chunk, N] tile at the
/// chunk's first row.
bool storesChunks(scf::ForallOp loop, int64_t chunk, int64_t rows) {
  for (Operation &op : loop.getTerminator().getYieldingOps()) {
    auto store = dyn_cast<tensor::ParallelInsertSliceOp>(&op);
    if (!store || store.getSourceType().getRank() != 2 ||
        store.getSourceType().getDimSize(0) != chunk ||
        store.getDestType().getDimSize(1) !=
            store.getSourceType().getDimSize(1) ||
        !isChunkStart(store.getMixedOffsets()[0], loop, chunk, rows) ||
        !isConstantIntValue(store.getMixedOffsets()[1], 0))
      return false;
  }
  return true;
}

bool isNorm(Operation *op) { return isa<LayerNormOp, RMSNormOp>(op); }

/// The chunk-loop kind of `loop`, if it has one.
std::optional<ChunkLoopKind> chunkLoopKind(Operation *loop) {
  if (auto attr = loop ? loop->getAttrOfType<ChunkLoopAttr>(
                             AttentionNestAttr::kAttrName)
                       : nullptr)
    return attr.getKind();
  return std::nullopt;
}

} // namespace

namespace {

InFlightDiagnostic chunkLoopError(Operation *loop, const Twine &why) {
  return loop->emitError() << "chunk loop: " << why;
}

bool reads(Operation *op, unsigned i, Value v) {
  return op->getOperand(i) == v;
}

/// Whether `add` adds `a` and `b`, in either order.
bool adds(arith::AddFOp add, Value a, Value b) {
  return (reads(add, 0, a) && reads(add, 1, b)) ||
         (reads(add, 1, a) && reads(add, 0, b));
}

/// The block loop's pieces, in order, each reading the one before; sets
/// everything but the keys and values and the shapes.
LogicalResult readBlockBody(BlockChunkLoops &m) {
  scf::ForallOp loop = m.blockLoop;
  FailureOr<SmallVector<Operation *>> ops = computeOps(loop);
  if (failed(ops))
    return failure();
  // norm1, Q projection, attention, O projection, residual, norm2, FFN,
  // residual.
  SmallVector<Operation *> &p = *ops;
  if (p.size() != 8 || !isNorm(p[0]) || !isa<LinearOp>(p[1]) ||
      !isa<scf::ForallOp>(p[2]) || !isa<LinearOp>(p[3]) ||
      !isa<arith::AddFOp>(p[4]) || !isNorm(p[5]) || !isa<FFNOp>(p[6]) ||
      !isa<arith::AddFOp>(p[7]))
    return chunkLoopError(loop, "expected norm, linear, attention nest, "
                                "linear, addf, norm, ffn, addf in its body");
  m.norm1 = p[0];
  m.queryProjection = cast<LinearOp>(p[1]);
  m.attention = cast<scf::ForallOp>(p[2]);
  m.outputProjection = cast<LinearOp>(p[3]);
  m.norm2 = p[5];
  m.ffn = cast<FFNOp>(p[6]);
  auto residual1 = cast<arith::AddFOp>(p[4]);
  auto residual2 = cast<arith::AddFOp>(p[7]);

  Value xChunk = m.norm1->getOperand(0);
  std::optional<RowsRead> xRead = readRows(xChunk, loop);
  if (!xRead)
    return chunkLoopError(loop, "norm1 does not read a chunk of the input "
                                "rows");
  m.inputRows = xRead->rows;
  m.chunkRows = xRead->count;
  int64_t rows = cast<RankedTensorType>(m.inputRows.getType()).getDimSize(0);
  if (!isChunkStart(xRead->offset, loop, m.chunkRows, rows) ||
      !storesChunks(loop, m.chunkRows, rows))
    return chunkLoopError(loop, "it does not read and write its chunk's rows");
  if (!reads(m.queryProjection, 0, m.norm1->getResult(0)) ||
      throughViews(m.outputProjection.getInput()) !=
          m.attention.getResult(0) ||
      !adds(residual1, xChunk, m.outputProjection) ||
      !reads(m.norm2, 0, residual1) ||
      !reads(m.ffn, 0, m.norm2->getResult(0)) ||
      !adds(residual2, residual1, m.ffn))
    return chunkLoopError(loop, "its pieces do not read one another as a "
                                "block's do");
  auto stores = loop.getTerminator().getYieldingOps();
  if (llvm::range_size(stores) != 1 ||
      cast<tensor::ParallelInsertSliceOp>(&*stores.begin()).getSource() !=
          residual2.getResult())
    return chunkLoopError(loop, "it does not store the second residual");
  return success();
}

/// The kv_projection loop whose results the block loop reads, one
/// sequence's rows at a time; sets `kvLoop` and `seq`.
LogicalResult findKeysAndValues(BlockChunkLoops &m, int64_t rows) {
  m.seq = 0;
  for (Operation &op : m.blockLoop.getBody()->getOperations())
    for (Value operand : op.getOperands()) {
      auto producer = operand.getDefiningOp<scf::ForallOp>();
      if (chunkLoopKind(producer) != ChunkLoopKind::kv_projection)
        continue;
      std::optional<RowsRead> read = readRows(
          isa<tensor::ExtractSliceOp>(op) ? op.getResult(0) : operand,
          m.blockLoop);
      if ((m.kvLoop && m.kvLoop != producer) || !read ||
          (m.seq && m.seq != read->count) ||
          !isSequenceStart(read->offset, m.blockLoop, m.chunkRows, rows,
                           read->count))
        return chunkLoopError(m.blockLoop,
                              "it does not read one sequence's keys and "
                              "values of one kv_projection loop");
      m.kvLoop = producer;
      m.seq = read->count;
    }
  if (!m.kvLoop)
    return chunkLoopError(m.blockLoop,
                          "it reads no #bpt.chunk_loop<kv_projection>");
  return success();
}

/// The kv_projection loop: the block's norm1 of the same chunk, then the
/// key and value projections (one op when CSE merged two equal ones).
LogicalResult readKVLoop(BlockChunkLoops &m, int64_t rows) {
  scf::ForallOp loop = m.kvLoop;
  FailureOr<SmallVector<Operation *>> ops = computeOps(loop);
  if (failed(ops))
    return failure();
  SmallVector<Operation *> &kv = *ops;
  if (kv.size() < 2 || kv.size() > 3 || !isNorm(kv[0]) ||
      !llvm::all_of(ArrayRef(kv).drop_front(), llvm::IsaPred<LinearOp>))
    return chunkLoopError(loop, "expected norm, linear, linear in its body");
  SmallVector<LinearOp> stored;
  for (Operation &store : loop.getTerminator().getYieldingOps())
    stored.push_back(cast<tensor::ParallelInsertSliceOp>(&store)
                         .getSource()
                         .getDefiningOp<LinearOp>());
  if (stored.size() != 2 || !stored[0] || !stored[1] ||
      stored[0]->getParentOp() != loop || stored[1]->getParentOp() != loop)
    return chunkLoopError(loop, "it does not store two projections of its "
                                "body");
  m.keyProjection = stored[0];
  m.valueProjection = stored[1];
  Operation *norm = kv[0];
  std::optional<RowsRead> read = readRows(norm->getOperand(0), loop);
  if (!read || read->rows != m.inputRows || read->count != m.chunkRows ||
      !isChunkStart(read->offset, loop, m.chunkRows, rows) ||
      !storesChunks(loop, m.chunkRows, rows) ||
      norm->getName() != m.norm1->getName() ||
      norm->getAttrDictionary() != m.norm1->getAttrDictionary() ||
      !llvm::equal(norm->getOperands().drop_front(),
                   m.norm1->getOperands().drop_front()) ||
      !reads(m.keyProjection, 0, norm->getResult(0)) ||
      !reads(m.valueProjection, 0, norm->getResult(0)))
    return chunkLoopError(loop, "its norm and projections are not the "
                                "block's");
  return success();
}

/// Heads and widths; sets `heads`, `kvHeads` and `headDim`.
LogicalResult readShapes(BlockChunkLoops &m, int64_t rows) {
  for (LinearOp projection : {m.queryProjection, m.keyProjection,
                              m.valueProjection, m.outputProjection})
    if (projection.getBias())
      return chunkLoopError(projection, "a block's projections have no bias");
  auto widthOf = [](LinearOp op) {
    return cast<RankedTensorType>(op.getType()).getDimSize(1);
  };
  auto nestType = cast<RankedTensorType>(m.attention.getResult(0).getType());
  m.heads = nestType.getDimSize(1);
  m.headDim = nestType.getDimSize(3);
  m.kvHeads = widthOf(m.keyProjection) / m.headDim;
  if (m.seq <= 0 || rows % m.seq != 0 || m.seq % m.chunkRows != 0 ||
      widthOf(m.queryProjection) != m.heads * m.headDim)
    return chunkLoopError(m.blockLoop, "its chunks, sequences and heads do "
                                       "not tile the rows");
  return success();
}

} // namespace

FailureOr<BlockChunkLoops> BlockChunkLoops::match(scf::ForallOp blockLoop) {
  if (chunkLoopKind(blockLoop) != ChunkLoopKind::block ||
      blockLoop.getNumResults() != 1 || blockLoop.getRank() != 1)
    return chunkLoopError(blockLoop, "expected a one-dimensional "
                                     "#bpt.chunk_loop<block> with one result");
  BlockChunkLoops m;
  m.blockLoop = blockLoop;
  if (failed(readBlockBody(m)))
    return failure();
  int64_t rows = cast<RankedTensorType>(m.inputRows.getType()).getDimSize(0);
  if (failed(findKeysAndValues(m, rows)) || failed(readKVLoop(m, rows)) ||
      failed(readShapes(m, rows)))
    return failure();
  if (blockLoop->hasOneUse())
    m.output = dyn_cast<tensor::ExpandShapeOp>(*blockLoop->user_begin());
  return m;
}

//===----------------------------------------------------------------------===//
// FFN
//===----------------------------------------------------------------------===//

void bpt::buildFFNChunkLoop(RewriterBase &rewriter, FFNOp op,
                            StrategyAttr strategy) {
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  Location loc = op.getLoc();
  auto type = cast<RankedTensorType>(op.getType());
  Value x = asRows(rewriter, loc, op.getInput());
  auto rowsType = cast<RankedTensorType>(x.getType());
  int64_t rows = rowsType.getDimSize(0);
  int64_t chunk = strategy.getChunkRows();
  int64_t covered = rows / chunk * chunk;
  auto ffnOf = [&](Value rowsOfX) {
    return FFNOp::create(rewriter, loc, rowsOfX.getType(), rowsOfX, op.getWIn(),
                         op.getWOut(), op.getWGate(), op.getActivationAttr());
  };
  Value init = tensor::EmptyOp::create(rewriter, loc, rowsType.getShape(),
                                       rowsType.getElementType());
  scf::ForallOp loop = createChunkLoop(
      rewriter, loc, ChunkLoopKind::ffn, strategy, covered, init,
      [&](Value r0) {
        return SmallVector<Value>{ffnOf(rowsOf(rewriter, loc, x, r0, chunk))};
      });
  Value result = loop.getResult(0);
  if (covered != rows) {
    // The tail: one FFN of the rows left, a chunk of its own.
    int64_t tail = rows - covered;
    FFNOp last =
        ffnOf(rowsOf(rewriter, loc, x, rewriter.getIndexAttr(covered), tail));
    last->setAttr(
        StrategyAttr::kAttrName,
        StrategyAttr::get(rewriter.getContext(), strategy.getPath(),
                          strategy.getChip(), strategy.getQBlock(),
                          strategy.getKvBlock(), strategy.getStages(),
                          strategy.getWarps(), tail, strategy.getGemmBlockN(),
                          strategy.getGemmStages(), strategy.getGemmSplit(),
                          strategy.getKvSplits()));
    result = insertRows(rewriter, loc, last.getResult(), result, covered);
  }
  rewriter.replaceOp(op, restoreShape(rewriter, loc, result, type));
}

namespace {

/// The insertion of a chunk loop's tail into `loop`'s result: the loop's
/// one user, a tensor.insert_slice of a bpt.ffn into it.
tensor::InsertSliceOp tailInsertOf(scf::ForallOp loop) {
  if (!loop->hasOneUse())
    return nullptr;
  auto insert = dyn_cast<tensor::InsertSliceOp>(*loop->user_begin());
  if (!insert || insert.getDest() != loop.getResult(0) ||
      !insert.getSource().getDefiningOp<FFNOp>())
    return nullptr;
  return insert;
}

/// Whether `tail` computes the rows [first, rows) of the rows `m.ffn`'s
/// chunks read, with its weights and activation, and `insert` stores them
/// there.
bool isTailOf(FFNChunkLoop &m, FFNOp tail, tensor::InsertSliceOp insert,
              int64_t first, int64_t rows) {
  auto slice = tail.getInput().getDefiningOp<tensor::ExtractSliceOp>();
  auto type = cast<RankedTensorType>(tail.getType());
  int64_t count = rows - first;
  auto isRowsFrom = [&](OffsetSizeAndStrideOpInterface op) {
    return op.hasUnitStride() &&
           isConstantIntValue(op.getMixedOffsets()[0], first) &&
           isConstantIntValue(op.getMixedOffsets()[1], 0) &&
           isConstantIntValue(op.getMixedSizes()[0], count) &&
           isConstantIntValue(op.getMixedSizes()[1], type.getDimSize(1));
  };
  return slice && slice.getSource() == m.inputRows && type.getRank() == 2 &&
         isRowsFrom(slice) && isRowsFrom(insert) && tail->hasOneUse() &&
         tail.getWIn() == m.ffn.getWIn() && tail.getWOut() == m.ffn.getWOut() &&
         tail.getWGate() == m.ffn.getWGate() &&
         tail.getActivation() == m.ffn.getActivation();
}

} // namespace

bool bpt::isFFNChunkTail(FFNOp op) {
  if (!op->hasOneUse())
    return false;
  auto insert = dyn_cast<tensor::InsertSliceOp>(*op->user_begin());
  auto loop = insert ? insert.getDest().getDefiningOp<scf::ForallOp>()
                     : scf::ForallOp();
  return loop && insert.getSource() == op.getResult() &&
         chunkLoopKind(loop) == ChunkLoopKind::ffn;
}

FailureOr<FFNChunkLoop> FFNChunkLoop::match(scf::ForallOp loop) {
  auto fail = [&](const Twine &why) {
    return loop.emitError() << "chunk loop: " << why;
  };
  if (chunkLoopKind(loop) != ChunkLoopKind::ffn || loop.getNumResults() != 1 ||
      loop.getRank() != 1)
    return fail("expected a one-dimensional #bpt.chunk_loop<ffn> with one "
                "result");
  FailureOr<SmallVector<Operation *>> ops = computeOps(loop);
  if (failed(ops))
    return failure();
  if (ops->size() != 1 || !isa<FFNOp>(ops->front()))
    return fail("expected one bpt.ffn in its body");
  FFNChunkLoop m;
  m.loop = loop;
  m.ffn = cast<FFNOp>(ops->front());
  std::optional<RowsRead> read = readRows(m.ffn.getInput(), loop);
  auto stores = loop.getTerminator().getYieldingOps();
  if (!read || llvm::range_size(stores) != 1 ||
      cast<tensor::ParallelInsertSliceOp>(&*stores.begin()).getSource() !=
          m.ffn.getResult())
    return fail("its bpt.ffn does not read and write a chunk of rows");
  m.inputRows = read->rows;
  m.chunkRows = read->count;
  int64_t rows = cast<RankedTensorType>(m.inputRows.getType()).getDimSize(0);
  // The chunks cover the rows, or all but a tail shorter than a chunk.
  int64_t chunks = loop.getStaticUpperBound()[0];
  if (ShapedType::isDynamic(chunks) || chunks > rows)
    return fail("it does not read and write its chunk's rows");
  int64_t covered = chunks * m.chunkRows;
  if (covered > rows || rows - covered >= m.chunkRows ||
      !isChunkStart(read->offset, loop, m.chunkRows, covered) ||
      !storesChunks(loop, m.chunkRows, covered) ||
      cast<RankedTensorType>(loop.getResult(0).getType()).getDimSize(0) != rows)
    return fail("it does not read and write its chunk's rows");
  Operation *result = loop;
  if (covered != rows) {
    m.tailInsert = tailInsertOf(loop);
    m.tail = m.tailInsert ? m.tailInsert.getSource().getDefiningOp<FFNOp>()
                          : FFNOp();
    if (!m.tail || !isTailOf(m, m.tail, m.tailInsert, covered, rows))
      return fail(llvm::formatv("its {0} chunks leave rows [{1}, {2}), which "
                                "only a bpt.ffn of those rows inserted into "
                                "its result computes",
                                chunks, covered, rows)
                      .str());
    result = m.tailInsert;
  }
  if (result->hasOneUse())
    m.output = dyn_cast<tensor::ExpandShapeOp>(*result->user_begin());
  return m;
}

void FFNChunkLoop::replaceWith(Value result) {
  Operation *last = output       ? output.getOperation()
                    : tailInsert ? tailInsert.getOperation()
                                 : loop.getOperation();
  last->getResult(0).replaceAllUsesWith(result);
  if (output)
    output.erase();
  if (tailInsert) {
    auto slice = tail.getInput().getDefiningOp<tensor::ExtractSliceOp>();
    tailInsert.erase();
    tail.erase();
    if (slice && slice->use_empty())
      slice.erase();
  }
  loop.erase();
}

Value bpt::unflattened(Value rows) {
  if (auto collapse = rows.getDefiningOp<tensor::CollapseShapeOp>())
    return collapse.getSrc();
  return rows;
}
