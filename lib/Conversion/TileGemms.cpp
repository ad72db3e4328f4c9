//===- TileGemms.cpp - bpt-tile-gemms ---------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// A GEMM left to the portable path runs one thread per output element, each
// reading a row and a column from global memory. Written as a blockwise loop
// over output tiles whose operands are staged through buffers,
// bpt-map-to-gpu gives it what it gives attention's tiles: shared memory,
// and here a register tile per thread.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTDialect.h"

#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/PatternMatch.h"

namespace bpt {
#define GEN_PASS_DEF_BPTTILEGEMMS
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

constexpr int64_t kWarp = 32;
/// The least m and n worth a tile, and the least k step.
constexpr int64_t kMinExtent = 32, kMinStepK = 8;
/// The most accumulators one thread keeps (rm * rn).
constexpr int64_t kMaxThreadTile = 64;

/// How one GEMM is tiled. Per loop dimension: its extent and its tile's
/// (1 for the output's other dimensions and the outer reductions).
struct GemmTiling {
  unsigned m = 0, n = 0, k = 0;
  SmallVector<int64_t> extents, tile;
  /// The thread tile; 0 where the threads do not divide the tile.
  int64_t rm = 0, rn = 0;
};

unsigned dimOf(AffineMap map, unsigned result) {
  return cast<AffineDimExpr>(map.getResult(result)).getPosition();
}

int64_t roundUp(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// m, n, k and the extents of `op` if it is a GEMM this pass tiles (see the
/// pass description), else nullopt.
std::optional<GemmTiling> matchGemm(linalg::LinalgOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != 2 ||
      op.getNumDpsInits() != 1 || op.hasIndexSemantics() ||
      op.getNumReductionLoops() == 0)
    return std::nullopt;
  for (OpOperand &operand : op->getOpOperands()) {
    // Buffers of integers or floats (the buffers' sizes need a bit width).
    auto type = dyn_cast<MemRefType>(operand.get().getType());
    if (!type || !type.hasStaticShape() ||
        !type.getElementType().isIntOrFloat() ||
        !op.getMatchingIndexingMap(&operand).isProjectedPermutation())
      return std::nullopt;
  }
  GemmTiling t;
  t.extents = op.getStaticLoopRanges();
  SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
  AffineMap out = op.getMatchingIndexingMap(op.getDpsInitOperand(0));
  unsigned rank = out.getNumResults();
  if (rank < 2 || rank != op.getNumParallelLoops())
    return std::nullopt;
  for (unsigned i = 0; i < rank; ++i)
    if (!linalg::isParallelIterator(iterators[dimOf(out, i)]))
      return std::nullopt;
  t.m = dimOf(out, rank - 2);
  t.n = dimOf(out, rank - 1);
  SmallVector<unsigned> reductions;
  op.getReductionDims(reductions);
  t.k = reductions.back();
  AffineMap a = op.getMatchingIndexingMap(op.getDpsInputOperand(0));
  AffineMap b = op.getMatchingIndexingMap(op.getDpsInputOperand(1));
  auto rowsAndCols = [&](AffineMap rows, AffineMap cols) {
    return rows.isFunctionOfDim(t.m) && !rows.isFunctionOfDim(t.n) &&
           cols.isFunctionOfDim(t.n) && !cols.isFunctionOfDim(t.m);
  };
  if (!(rowsAndCols(a, b) || rowsAndCols(b, a)) || !a.isFunctionOfDim(t.k) ||
      !b.isFunctionOfDim(t.k))
    return std::nullopt;
  if (t.extents[t.m] < kMinExtent || t.extents[t.n] < kMinExtent ||
      t.extents[t.k] % kMinStepK != 0)
    return std::nullopt;
  return t;
}

/// The tile of `operand` (its map's results' tile extents), and the shape
/// of its buffer: an input's is one 32-bit word wider in its last dimension
/// (see the pass description).
SmallVector<int64_t> tileShape(linalg::LinalgOp op, OpOperand &operand,
                               ArrayRef<int64_t> tile) {
  AffineMap map = op.getMatchingIndexingMap(&operand);
  SmallVector<int64_t> shape;
  for (unsigned i = 0; i < map.getNumResults(); ++i)
    shape.push_back(tile[dimOf(map, i)]);
  return shape;
}

SmallVector<int64_t> bufferShape(linalg::LinalgOp op, OpOperand &operand,
                                 ArrayRef<int64_t> tile) {
  SmallVector<int64_t> shape = tileShape(op, operand, tile);
  Type element = getElementTypeOrSelf(operand.get().getType());
  if (op.isDpsInput(&operand) && !shape.empty() && shape.back() > 1)
    shape.back() += std::max<int64_t>(
        1, 4 / std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8));
  return shape;
}

/// Shared memory the buffers take, each placed at a 16-byte boundary as
/// bpt-map-to-gpu places them.
int64_t bufferBytes(linalg::LinalgOp op, ArrayRef<int64_t> tile) {
  int64_t bytes = 0;
  for (OpOperand &operand : op->getOpOperands()) {
    int64_t elements = 1;
    for (int64_t extent : bufferShape(op, operand, tile))
      elements *= extent;
    Type element = getElementTypeOrSelf(operand.get().getType());
    bytes += roundUp(elements * ((element.getIntOrFloatBitWidth() + 7) / 8),
                     16);
  }
  return bytes;
}

struct BPTTileGemmsPass final : bpt::impl::BPTTileGemmsBase<BPTTileGemmsPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  /// Chooses the tiles of `t` for `op`; false where none fits.
  bool chooseTiles(linalg::LinalgOp op, GemmTiling &t) const;
};

bool BPTTileGemmsPass::chooseTiles(linalg::LinalgOp op, GemmTiling &t) const {
  t.tile.assign(t.extents.size(), 1);
  int64_t stepK = 1;
  while (stepK * 2 <= tileK && t.extents[t.k] % (stepK * 2) == 0)
    stepK *= 2;
  if (stepK < kMinStepK)
    return false;
  t.tile[t.k] = stepK;
  // The largest tiles that fit and still give every multiprocessor two
  // blocks; where none does, the smallest that fit.
  static constexpr std::pair<int64_t, int64_t> kCandidates[] = {
      {128, 128}, {128, 64}, {64, 64}, {64, 32}, {32, 32}};
  bool found = false;
  for (auto [m, n] : kCandidates) {
    int64_t tm = std::min<int64_t>({m, tileM, roundUp(t.extents[t.m], kWarp)});
    int64_t tn = std::min<int64_t>({n, tileN, roundUp(t.extents[t.n], kWarp)});
    SmallVector<int64_t> tile(t.tile);
    tile[t.m] = tm;
    tile[t.n] = tn;
    if (bufferBytes(op, tile) > sharedMemory)
      continue;
    t.tile = tile;
    found = true;
    int64_t tiles = 1;
    for (auto [d, kind] : llvm::enumerate(op.getIteratorTypesArray()))
      if (linalg::isParallelIterator(kind))
        tiles *= ceilDiv(t.extents[d], t.tile[d]);
    if (tiles >= 2 * multiprocessors)
      break;
  }
  if (!found)
    return false;
  // A warp's threads along a row of the tile, the block's warps down it.
  int64_t tm = t.tile[t.m], tn = t.tile[t.n];
  t.rm = t.rn = 0;
  if (threads % kWarp == 0 && tm % (threads / kWarp) == 0 && tn % kWarp == 0 &&
      (tm / (threads / kWarp)) * (tn / kWarp) <= kMaxThreadTile) {
    t.rm = tm / (threads / kWarp);
    t.rn = tn / kWarp;
  }
  return true;
}

/// Replaces `op` by its tiled loop (see the pass description).
void tileGemm(IRRewriter &rw, linalg::GenericOp op, const GemmTiling &t) {
  Location loc = op.getLoc();
  MLIRContext *ctx = op.getContext();
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(rw, loc, v);
  };
  OpOperand *init = op.getDpsInitOperand(0);
  AffineMap out = op.getMatchingIndexingMap(init);

  rw.setInsertionPoint(op);
  SmallVector<OpFoldResult> counts;
  for (unsigned i = 0; i < out.getNumResults(); ++i) {
    unsigned d = dimOf(out, i);
    counts.push_back(rw.getIndexAttr(ceilDiv(t.extents[d], t.tile[d])));
  }
  auto loop =
      scf::ForallOp::create(rw, loc, counts, ValueRange(), std::nullopt);
  rw.setInsertionPointToStart(loop.getBody());

  // Per loop dimension: where the tile starts and how much of it exists.
  unsigned numLoops = t.extents.size();
  SmallVector<OpFoldResult> offsets(numLoops, rw.getIndexAttr(0));
  SmallVector<OpFoldResult> sizes(numLoops);
  for (unsigned d = 0; d < numLoops; ++d)
    sizes[d] = rw.getIndexAttr(t.tile[d]);
  for (auto [i, iv] : llvm::enumerate(loop.getInductionVars())) {
    unsigned d = dimOf(out, i);
    Value start =
        t.tile[d] == 1
            ? iv
            : arith::MulIOp::create(rw, loc, iv, index(t.tile[d])).getResult();
    offsets[d] = start;
    if (t.extents[d] % t.tile[d] != 0)
      sizes[d] = arith::MinSIOp::create(
                     rw, loc, index(t.tile[d]),
                     arith::SubIOp::create(rw, loc, index(t.extents[d]), start))
                     .getResult();
  }

  // The buffers, and the views of them the tiled op works on.
  SmallVector<Value> views;
  for (OpOperand &operand : op->getOpOperands()) {
    Type element = getElementTypeOrSelf(operand.get().getType());
    SmallVector<int64_t> shape = tileShape(op, operand, t.tile);
    SmallVector<int64_t> padded = bufferShape(op, operand, t.tile);
    Value buffer =
        memref::AllocOp::create(rw, loc, MemRefType::get(padded, element));
    if (shape != padded)
      buffer = memref::SubViewOp::create(
          rw, loc, buffer,
          SmallVector<OpFoldResult>(shape.size(), rw.getIndexAttr(0)),
          getAsIndexOpFoldResult(ctx, shape),
          SmallVector<OpFoldResult>(shape.size(), rw.getIndexAttr(1)));
    views.push_back(buffer);
  }
  // Copies between `operand`'s slice at the current offsets and its view.
  auto copy = [&](OpOperand &operand, bool toBuffer) {
    AffineMap map = op.getMatchingIndexingMap(&operand);
    SmallVector<OpFoldResult> at, extent;
    for (unsigned i = 0; i < map.getNumResults(); ++i) {
      at.push_back(offsets[dimOf(map, i)]);
      extent.push_back(sizes[dimOf(map, i)]);
    }
    SmallVector<OpFoldResult> zeros(at.size(), rw.getIndexAttr(0));
    SmallVector<OpFoldResult> ones(at.size(), rw.getIndexAttr(1));
    Value slice =
        memref::SubViewOp::create(rw, loc, operand.get(), at, extent, ones);
    Value part = memref::SubViewOp::create(
        rw, loc, views[operand.getOperandNumber()], zeros, extent, ones);
    if (toBuffer)
      memref::CopyOp::create(rw, loc, slice, part);
    else
      memref::CopyOp::create(rw, loc, part, slice);
  };
  copy(*init, /*toBuffer=*/true);

  // The reductions, outermost first, the innermost one by steps.
  SmallVector<unsigned> reductions;
  op.getReductionDims(reductions);
  OpBuilder::InsertionGuard guard(rw);
  for (unsigned d : reductions) {
    auto step = scf::ForOp::create(rw, loc, index(0), index(t.extents[d]),
                                   index(t.tile[d]));
    offsets[d] = step.getInductionVar();
    rw.setInsertionPointToStart(step.getBody());
  }
  for (OpOperand *input : op.getDpsInputOperands())
    copy(*input, /*toBuffer=*/true);
  auto tiled = linalg::GenericOp::create(
      rw, loc, TypeRange(), ValueRange(views).drop_back(), views.back(),
      op.getIndexingMapsArray(), op.getIteratorTypesArray());
  rw.cloneRegionBefore(op.getRegion(), tiled.getRegion(),
                       tiled.getRegion().end());
  if (t.rm > 0)
    tiled->setAttr(bpt::kThreadTileAttrName,
                   rw.getDenseI64ArrayAttr({t.rm, t.rn}));

  rw.setInsertionPoint(loop.getBody()->getTerminator());
  copy(*init, /*toBuffer=*/false);
  rw.eraseOp(op);
}

void BPTTileGemmsPass::runOnOperation() {
  func::FuncOp func = getOperation();
  if (tileM < kMinExtent || tileM > 256 || tileM % 8 != 0 ||
      tileN < kMinExtent || tileN > 256 || tileN % kWarp != 0 ||
      tileK < kMinStepK || tileK > 256) {
    func.emitError() << "bpt-tile-gemms: tile-m must be a multiple of 8 and "
                        "tile-n one of 32, both in [32, 256], tile-k in [8, "
                        "256]; got "
                     << static_cast<int64_t>(tileM) << ", "
                     << static_cast<int64_t>(tileN) << ", "
                     << static_cast<int64_t>(tileK);
    return signalPassFailure();
  }
  if (threads < 1 || threads > 1024 || sharedMemory < 0 ||
      multiprocessors < 1) {
    func.emitError() << "bpt-tile-gemms: threads must be in [1, 1024], "
                        "shared-memory not negative and multiprocessors "
                        "positive";
    return signalPassFailure();
  }
  IRRewriter rw(&getContext());
  // Loop bodies are kernels already: only the function's own ops.
  for (auto op :
       llvm::to_vector(func.getBody().front().getOps<linalg::LinalgOp>())) {
    std::optional<GemmTiling> tiling = matchGemm(op);
    if (!tiling || !chooseTiles(op, *tiling))
      continue;
    auto generic = dyn_cast<linalg::GenericOp>(op.getOperation());
    if (!generic) {
      rw.setInsertionPoint(op);
      FailureOr<linalg::GenericOp> generalized =
          linalg::generalizeNamedOp(rw, op);
      if (failed(generalized))
        continue;
      generic = *generalized;
    }
    tileGemm(rw, generic, *tiling);
  }
}

} // namespace
