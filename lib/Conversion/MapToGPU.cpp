//===- MapToGPU.cpp - bufferized blockwise IR onto GPU launches -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// The portable GPU mapping: one thread block per iteration of a blockwise
// loop, the block's threads sharing every tile operation, tiles in shared
// memory. It favours being right on every shape over being fast; the tensor
// core path replaces it for the hot kernels.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTDialect.h"
#include "bpt/Utils/Layouts.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace bpt {
#define GEN_PASS_DEF_BPTMAPTOGPU
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

#include <algorithm>
#include <map>

using namespace mlir;

namespace {

constexpr int64_t kTileAlignment = 16;

int64_t alignTo(int64_t value, int64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

Value indexConst(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

/// Index values of `map`'s results at the loop point `ivs`.
SmallVector<Value> applyMap(OpBuilder &b, Location loc, AffineMap map,
                            ArrayRef<Value> ivs) {
  SmallVector<Value> indices;
  for (unsigned i = 0; i < map.getNumResults(); ++i) {
    AffineExpr expr = map.getResult(i);
    if (auto dim = dyn_cast<AffineDimExpr>(expr))
      indices.push_back(ivs[dim.getPosition()]);
    else if (auto cst = dyn_cast<AffineConstantExpr>(expr))
      indices.push_back(indexConst(b, loc, cst.getValue()));
    else
      indices.push_back(
          affine::AffineApplyOp::create(b, loc, map.getSubMap({i}), ivs));
  }
  return indices;
}

/// Splits `linear` into the indices of a row-major space of `extents`.
SmallVector<Value> delinearize(OpBuilder &b, Location loc, Value linear,
                               ArrayRef<Value> extents) {
  SmallVector<Value> indices(extents.size());
  Value rest = linear;
  for (int64_t i = static_cast<int64_t>(extents.size()) - 1; i >= 0; --i) {
    indices[i] = i == 0 ? rest : arith::RemUIOp::create(b, loc, rest, extents[i]);
    if (i > 0)
      rest = arith::DivUIOp::create(b, loc, rest, extents[i]);
  }
  return indices;
}

Value product(OpBuilder &b, Location loc, ArrayRef<Value> values) {
  Value result = indexConst(b, loc, 1);
  for (Value v : values)
    result = arith::MulIOp::create(b, loc, result, v);
  return result;
}

/// Runs the body of `generic` at the point `ivs` with block arguments
/// `args`, returning the yielded values.
SmallVector<Value> cloneBody(OpBuilder &b, linalg::GenericOp generic,
                             ValueRange args, ArrayRef<Value> ivs) {
  Block &body = generic.getRegion().front();
  IRMapping mapping;
  mapping.map(body.getArguments(), args);
  for (Operation &op : body.without_terminator()) {
    if (auto index = dyn_cast<linalg::IndexOp>(op)) {
      mapping.map(index.getResult(), ivs[index.getDim()]);
      continue;
    }
    b.clone(op, mapping);
  }
  return llvm::map_to_vector(body.getTerminator()->getOperands(),
                             [&](Value v) { return mapping.lookupOrDefault(v); });
}

/// The value of `operand` of `generic` at the loop point `ivs`: a load of
/// its buffer, or the operand itself where it is a scalar.
Value loadOperandAt(OpBuilder &b, Location loc, linalg::GenericOp generic,
                    OpOperand &operand, ArrayRef<Value> ivs) {
  Value value = operand.get();
  if (!isa<MemRefType>(value.getType()))
    return value;
  return memref::LoadOp::create(
      b, loc, value,
      applyMap(b, loc, generic.getMatchingIndexingMap(&operand), ivs));
}

/// A loop in which worker `worker` of `numWorkers` takes points worker,
/// worker + numWorkers, ... of the row-major space of `extents`, whose
/// dimensions are the loop dimensions `dims` of a `numLoops`-deep op.
/// `body` builds a point from `ivs`, which holds the point's index of each
/// of `dims` (the other entries null); the loop's yield follows it.
void buildWorkerLoop(
    OpBuilder &builder, Location loc, Value worker, Value numWorkers,
    ArrayRef<unsigned> dims, ArrayRef<Value> extents, unsigned numLoops,
    function_ref<void(OpBuilder &, Location, SmallVector<Value> &)> body) {
  scf::ForOp::create(builder, loc, worker, product(builder, loc, extents),
                     numWorkers, {},
                     [&](OpBuilder &b, Location l, Value linear, ValueRange) {
                       SmallVector<Value> ivs(numLoops);
                       for (auto [dim, index] :
                            llvm::zip(dims, delinearize(b, l, linear, extents)))
                         ivs[dim] = index;
                       body(b, l, ivs);
                       scf::YieldOp::create(b, l);
                     });
}

/// The loops over the reduction dimensions `dims` (outermost first, each
/// from 0 to its entry of `extents`), run one after another inside a point
/// and carrying `current`; each stores its induction variable into `ivs`.
/// `innermost` builds the innermost body from the carried values and
/// returns their next values. Returns the outermost loop's results
/// (`innermost`'s own where `dims` is empty).
SmallVector<Value> buildReductionLoops(
    OpBuilder &b, Location loc, ArrayRef<unsigned> dims,
    ArrayRef<Value> extents, SmallVectorImpl<Value> &ivs, ValueRange current,
    function_ref<SmallVector<Value>(OpBuilder &, ValueRange)> innermost) {
  if (dims.empty())
    return innermost(b, current);
  unsigned dim = dims.front();
  auto loop = scf::ForOp::create(
      b, loc, indexConst(b, loc, 0), extents[dim], indexConst(b, loc, 1),
      current, [&](OpBuilder &lb, Location, Value iv, ValueRange iterArgs) {
        ivs[dim] = iv;
        scf::YieldOp::create(lb, loc,
                             buildReductionLoops(lb, loc, dims.drop_front(),
                                                 extents, ivs, iterArgs,
                                                 innermost));
      });
  return SmallVector<Value>(loop.getResults());
}

/// shareAmongThreads for a generic with a thread tile (bpt.thread_tile =
/// [rm, rn]): each point is rm x rn output elements, kept in registers
/// across the reductions, along the output's second-to-last (m) and last
/// (n) dimensions; consecutive workers take consecutive n, and a worker's
/// elements lie extent(m)/rm rows and extent(n)/rn columns apart. An
/// operand that does not depend on m (n) is loaded once for all of a
/// worker's rows (columns).
LogicalResult shareThreadTiles(RewriterBase &rw, linalg::GenericOp generic,
                               ArrayRef<int64_t> threadTile, Value worker,
                               Value numWorkers) {
  Location loc = generic.getLoc();
  auto fail = [&](const Twine &why) {
    return generic.emitError()
           << "bpt-map-to-gpu: " << bpt::kThreadTileAttrName << " " << why;
  };
  if (threadTile.size() != 2 || threadTile[0] < 1 || threadTile[1] < 1)
    return fail("must be two positive sizes");
  if (generic.getNumDpsInits() != 1)
    return fail("needs an op with one output");
  AffineMap out = generic.getMatchingIndexingMap(generic.getDpsInitOperand(0));
  if (out.getNumResults() < 2 || !out.isProjectedPermutation())
    return fail("needs an output of rank 2 or more indexed by loop "
                "dimensions");
  SmallVector<int64_t> extents = generic.getStaticLoopRanges();
  unsigned m =
      cast<AffineDimExpr>(out.getResults().drop_back().back()).getPosition();
  unsigned n = cast<AffineDimExpr>(out.getResults().back()).getPosition();
  int64_t rm = threadTile[0], rn = threadTile[1];
  if (ShapedType::isDynamic(extents[m]) || ShapedType::isDynamic(extents[n]) ||
      extents[m] % rm != 0 || extents[n] % rn != 0)
    return fail(llvm::formatv("{0} x {1} does not divide the output's {2} x "
                              "{3} elements",
                              rm, rn, extents[m], extents[n])
                    .str());
  if (rm * rn > 256)
    return fail("keeps more than 256 accumulators a thread");

  // The points: the other parallel dimensions in loop order, then m, n.
  SmallVector<unsigned> pointDims, reductionDims;
  for (auto [dim, kind] : llvm::enumerate(generic.getIteratorTypesArray()))
    if (kind == utils::IteratorType::reduction)
      reductionDims.push_back(dim);
    else if (dim != m && dim != n)
      pointDims.push_back(dim);
  pointDims.append({m, n});
  SmallVector<Value> loopExtents;
  for (Range range :
       cast<linalg::LinalgOp>(generic.getOperation()).createLoopRanges(rw, loc))
    loopExtents.push_back(getValueOrCreateConstantIndexOp(rw, loc, range.size));
  int64_t rowStride = extents[m] / rm, colStride = extents[n] / rn;
  SmallVector<Value> pointExtents;
  for (unsigned dim : pointDims)
    pointExtents.push_back(dim == m   ? indexConst(rw, loc, rowStride)
                           : dim == n ? indexConst(rw, loc, colStride)
                                      : loopExtents[dim]);

  OpOperand &init = *generic.getDpsInitOperand(0);
  buildWorkerLoop(
      rw, loc, worker, numWorkers, pointDims, pointExtents, extents.size(),
      [&](OpBuilder &b, Location l, SmallVector<Value> &ivs) {
        Value row0 = ivs[m], col0 = ivs[n];
        SmallVector<Value> rows, cols;
        for (int64_t a = 0; a < rm; ++a)
          rows.push_back(
              a == 0 ? row0
                     : arith::AddIOp::create(b, l, row0,
                                             indexConst(b, l, a * rowStride)));
        for (int64_t c = 0; c < rn; ++c)
          cols.push_back(
              c == 0 ? col0
                     : arith::AddIOp::create(b, l, col0,
                                             indexConst(b, l, c * colStride)));
        auto ivsAt = [&](int64_t a, int64_t c) {
          SmallVector<Value> at(ivs);
          at[m] = rows[a];
          at[n] = cols[c];
          return at;
        };
        SmallVector<Value> accs;
        for (int64_t a = 0; a < rm; ++a)
          for (int64_t c = 0; c < rn; ++c)
            accs.push_back(loadOperandAt(b, l, generic, init, ivsAt(a, c)));

        SmallVector<Value> results = buildReductionLoops(
            b, l, reductionDims, loopExtents, ivs, accs,
            [&](OpBuilder &rb, ValueRange current) {
              // Each input element once per thread: keyed by the row and
              // column it depends on.
              std::map<std::tuple<unsigned, int64_t, int64_t>, Value> loaded;
              SmallVector<Value> next;
              for (int64_t a = 0; a < rm; ++a)
                for (int64_t c = 0; c < rn; ++c) {
                  SmallVector<Value> args;
                  for (OpOperand *input : generic.getDpsInputOperands()) {
                    AffineMap map = generic.getMatchingIndexingMap(input);
                    auto key = std::make_tuple(input->getOperandNumber(),
                                               map.isFunctionOfDim(m) ? a : 0,
                                               map.isFunctionOfDim(n) ? c : 0);
                    auto [it, inserted] = loaded.try_emplace(key);
                    if (inserted)
                      it->second =
                          loadOperandAt(rb, l, generic, *input, ivsAt(a, c));
                    args.push_back(it->second);
                  }
                  args.push_back(current[a * rn + c]);
                  next.push_back(cloneBody(rb, generic, args, ivsAt(a, c))[0]);
                }
              return next;
            });
        for (int64_t a = 0; a < rm; ++a)
          for (int64_t c = 0; c < rn; ++c)
            memref::StoreOp::create(
                b, l, results[a * rn + c], init.get(),
                applyMap(b, l, generic.getMatchingIndexingMap(&init),
                         ivsAt(a, c)));
      });
  rw.eraseOp(generic);
  return success();
}

/// Replaces `op` (a linalg op or memref.copy on buffers) by a loop over its
/// parallel iteration points in which worker `worker` of `numWorkers` takes
/// points worker, worker + numWorkers, ...; reduction dimensions run
/// sequentially inside each point.
LogicalResult shareAmongThreads(RewriterBase &rw, Operation *op, Value worker,
                                Value numWorkers) {
  Location loc = op->getLoc();
  rw.setInsertionPoint(op);

  if (auto copy = dyn_cast<memref::CopyOp>(op)) {
    auto type = cast<MemRefType>(copy.getSource().getType());
    SmallVector<Value> extents;
    for (int64_t d = 0; d < type.getRank(); ++d)
      extents.push_back(
          memref::DimOp::create(rw, loc, copy.getSource(), d).getResult());
    scf::ForOp::create(
        rw, loc, worker, product(rw, loc, extents), numWorkers, {},
        [&](OpBuilder &b, Location l, Value linear, ValueRange) {
          SmallVector<Value> idx = delinearize(b, l, linear, extents);
          Value v = memref::LoadOp::create(b, l, copy.getSource(), idx);
          memref::StoreOp::create(b, l, v, copy.getTarget(), idx);
          scf::YieldOp::create(b, l);
        });
    rw.eraseOp(copy);
    return success();
  }

  auto linalgOp = dyn_cast<linalg::LinalgOp>(op);
  if (!linalgOp || !linalgOp.hasPureBufferSemantics())
    return op->emitError() << "bpt-map-to-gpu: expected a linalg op on "
                              "buffers or memref.copy";
  auto threadTile =
      op->getAttrOfType<DenseI64ArrayAttr>(bpt::kThreadTileAttrName);
  linalg::GenericOp generic = dyn_cast<linalg::GenericOp>(op);
  if (!generic) {
    FailureOr<linalg::GenericOp> generalized =
        linalg::generalizeNamedOp(rw, linalgOp);
    if (failed(generalized))
      return op->emitError() << "bpt-map-to-gpu: cannot generalize op";
    generic = *generalized;
    rw.setInsertionPoint(generic);
  }

  if (threadTile)
    return shareThreadTiles(rw, generic, threadTile.asArrayRef(), worker,
                            numWorkers);

  SmallVector<Value> extents;
  for (Range range : cast<linalg::LinalgOp>(generic.getOperation())
                         .createLoopRanges(rw, loc))
    extents.push_back(getValueOrCreateConstantIndexOp(rw, loc, range.size));
  SmallVector<unsigned> parallelDims, reductionDims;
  for (auto [dim, kind] : llvm::enumerate(generic.getIteratorTypesArray()))
    (kind == utils::IteratorType::parallel ? parallelDims : reductionDims)
        .push_back(dim);
  for (OpOperand &init : generic.getDpsInitsMutable())
    for (unsigned dim : reductionDims)
      if (generic.getMatchingIndexingMap(&init).isFunctionOfDim(dim))
        return op->emitError()
               << "bpt-map-to-gpu: an output indexed by a reduction dimension";

  SmallVector<Value> parallelExtents = llvm::map_to_vector(
      parallelDims, [&](unsigned d) { return extents[d]; });
  buildWorkerLoop(
      rw, loc, worker, numWorkers, parallelDims, parallelExtents,
      extents.size(), [&](OpBuilder &b, Location l, SmallVector<Value> &ivs) {
        SmallVector<Value> accs;
        for (OpOperand &init : generic.getDpsInitsMutable())
          accs.push_back(loadOperandAt(b, l, generic, init, ivs));
        SmallVector<Value> results = buildReductionLoops(
            b, l, reductionDims, extents, ivs, accs,
            [&](OpBuilder &rb, ValueRange current) {
              SmallVector<Value> args;
              for (OpOperand *input : generic.getDpsInputOperands())
                args.push_back(loadOperandAt(rb, l, generic, *input, ivs));
              args.append(current.begin(), current.end());
              return cloneBody(rb, generic, args, ivs);
            });
        for (auto [value, init] :
             llvm::zip(results, generic.getDpsInitsMutable()))
          memref::StoreOp::create(
              b, l, value, init.get(),
              applyMap(b, l, generic.getMatchingIndexingMap(&init), ivs));
      });
  rw.eraseOp(generic);
  return success();
}

/// CUDA's limit on a grid's blocks along x.
constexpr int64_t kMaxGridX = (int64_t(1) << 31) - 1;

bool isSharedWork(Operation *op) {
  return isa<linalg::LinalgOp, memref::CopyOp>(op);
}

/// Where a loop body's buffers go: each in shared memory or in the block's
/// slice of the global workspace, at an offset.
struct BufferPlacement {
  SmallVector<memref::AllocOp> allocs;
  SmallVector<std::pair<bool, int64_t>> placement; // (in shared, offset)
  int64_t sharedBytes = 0, workspaceBytes = 0;
};

/// The launch that replaces a loop, and what its body addresses buffers and
/// threads with.
struct LoopLaunch {
  gpu::LaunchOp launch;
  Value workspace, sharedBase, workspaceBase, numThreads;
};

/// The grid is sized at compile time: the loop must have static bounds.
LogicalResult checkStaticLoop(scf::ForallOp loop) {
  if (loop.getNumResults() != 0)
    return loop.emitError() << "bpt-map-to-gpu: expects bufferized IR (the "
                               "loop still has tensor results)";
  ArrayRef<int64_t> lbs = loop.getStaticLowerBound();
  ArrayRef<int64_t> ubs = loop.getStaticUpperBound();
  ArrayRef<int64_t> steps = loop.getStaticStep();
  if (ShapedType::isDynamicShape(ubs) ||
      llvm::any_of(lbs, [](int64_t v) { return v != 0; }) ||
      llvm::any_of(steps, [](int64_t v) { return v != 1; }))
    return loop.emitError() << "bpt-map-to-gpu: expects a loop with static "
                               "bounds from 0 with step 1";
  return success();
}

/// Runs the loop's body, now inside `launch`, in a loop over the items
/// blockIdx.x, blockIdx.x + numBlocks, ..., with the item's indices in
/// place of the loop's induction variables.
void moveBodyIntoItemLoop(IRRewriter &rw, scf::ForallOp loop,
                          gpu::LaunchOp launch, int64_t numItems,
                          int64_t numBlocks) {
  Location loc = loop.getLoc();
  SmallVector<Value> extents =
      llvm::map_to_vector(loop.getStaticUpperBound(),
                          [&](int64_t ub) { return indexConst(rw, loc, ub); });
  auto items = scf::ForOp::create(rw, loc, launch.getBlockIds().x,
                                  indexConst(rw, loc, numItems),
                                  indexConst(rw, loc, numBlocks));
  gpu::TerminatorOp::create(rw, loc);
  rw.setInsertionPointToStart(items.getBody());
  SmallVector<Value> ivs =
      delinearize(rw, loc, items.getInductionVar(), extents);
  for (auto [iv, id] : llvm::zip(loop.getInductionVars(), ivs))
    rw.replaceAllUsesWith(iv, id);
  Operation *itemsEnd = items.getBody()->getTerminator();
  for (Operation &op :
       llvm::make_early_inc_range(loop.getBody()->without_terminator()))
    op.moveBefore(itemsEnd);
}

/// Replaces each allocation by a view of shared memory or of the block's
/// workspace slice; its deallocations go.
void replaceAllocsWithViews(IRRewriter &rw, BufferPlacement &buffers,
                            LoopLaunch launch) {
  for (auto [alloc, place] : llvm::zip(buffers.allocs, buffers.placement)) {
    rw.setInsertionPoint(alloc);
    MemRefType type = alloc.getType();
    Value view;
    if (place.first) {
      MemRefType sharedType = MemRefType::get(
          type.getShape(), type.getElementType(), MemRefLayoutAttrInterface(),
          cast<MemRefType>(launch.sharedBase.getType()).getMemorySpace());
      Value shared = memref::ViewOp::create(
          rw, alloc.getLoc(), sharedType, launch.sharedBase,
          indexConst(rw, alloc.getLoc(), place.second), ValueRange());
      view = memref::MemorySpaceCastOp::create(rw, alloc.getLoc(), type, shared);
    } else {
      Value offset =
          arith::AddIOp::create(rw, alloc.getLoc(), launch.workspaceBase,
                                indexConst(rw, alloc.getLoc(), place.second));
      view = memref::ViewOp::create(rw, alloc.getLoc(), type, launch.workspace,
                                    offset, ValueRange());
    }
    for (Operation *user : llvm::to_vector(alloc->getUsers()))
      if (isa<memref::DeallocOp>(user))
        rw.eraseOp(user);
    rw.replaceOp(alloc, view);
  }
}

/// Every tile operation is shared by the block's threads, then a barrier.
LogicalResult shareTileWorkAmongThreads(IRRewriter &rw, LoopLaunch launch) {
  gpu::KernelDim3 threadIds = launch.launch.getThreadIds();
  SmallVector<Operation *> work;
  launch.launch.getBody().front().walk([&](Operation *op) {
    if (isSharedWork(op))
      work.push_back(op);
  });
  for (Operation *op : work) {
    rw.setInsertionPointAfter(op);
    gpu::BarrierOp::create(rw, op->getLoc());
    if (failed(shareAmongThreads(rw, op, threadIds.x, launch.numThreads)))
      return failure();
  }
  return success();
}

struct BPTMapToGPUPass final
    : bpt::impl::BPTMapToGPUBase<BPTMapToGPUPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  LogicalResult mapLoop(IRRewriter &rw, scf::ForallOp loop);
  FailureOr<BufferPlacement> placeBuffers(scf::ForallOp loop);
  LoopLaunch createLaunch(IRRewriter &rw, scf::ForallOp loop,
                          const BufferPlacement &buffers, int64_t numBlocks);
  LogicalResult mapSingleOp(IRRewriter &rw, Operation *op);
};

LogicalResult BPTMapToGPUPass::mapLoop(IRRewriter &rw, scf::ForallOp loop) {
  if (failed(checkStaticLoop(loop)))
    return failure();
  FailureOr<BufferPlacement> buffers = placeBuffers(loop);
  if (failed(buffers))
    return failure();

  // A persistent grid: each block takes loop iterations blockIdx.x,
  // blockIdx.x + gridDim.x, ... so that a workspace slice per block, not per
  // iteration, suffices; the grid is capped accordingly.
  int64_t numItems = 1;
  for (int64_t ub : loop.getStaticUpperBound())
    numItems *= ub;
  int64_t numBlocks = std::min<int64_t>(
      numItems, buffers->workspaceBytes > 0 ? maxWorkspaceBlocks : maxBlocks);

  LoopLaunch launch = createLaunch(rw, loop, *buffers, numBlocks);
  moveBodyIntoItemLoop(rw, loop, launch.launch, numItems, numBlocks);
  replaceAllocsWithViews(rw, *buffers, launch);
  if (failed(shareTileWorkAmongThreads(rw, launch)))
    return failure();
  rw.eraseOp(loop);
  return success();
}

/// Places the loop body's buffers: shared memory first, smallest first, the
/// rest in this block's slice of a global workspace.
FailureOr<BufferPlacement> BPTMapToGPUPass::placeBuffers(scf::ForallOp loop) {
  BufferPlacement buffers;
  WalkResult walk = loop.getBody()->walk([&](memref::AllocOp alloc) {
    MemRefType type = alloc.getType();
    if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
        type.getMemorySpace()) {
      alloc.emitError() << "bpt-map-to-gpu: expects a statically shaped, "
                           "contiguous allocation, got "
                        << type;
      return WalkResult::interrupt();
    }
    buffers.allocs.push_back(alloc);
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  auto bytesOf = [](memref::AllocOp alloc) {
    MemRefType type = alloc.getType();
    return type.getNumElements() * ((type.getElementTypeBitWidth() + 7) / 8);
  };
  llvm::stable_sort(buffers.allocs, [&](memref::AllocOp a, memref::AllocOp b) {
    return bytesOf(a) < bytesOf(b);
  });
  for (memref::AllocOp alloc : buffers.allocs) {
    int64_t bytes = alignTo(bytesOf(alloc), kTileAlignment);
    if (buffers.sharedBytes + bytes <= sharedMemory) {
      buffers.placement.push_back({true, buffers.sharedBytes});
      buffers.sharedBytes += bytes;
    } else {
      buffers.placement.push_back({false, buffers.workspaceBytes});
      buffers.workspaceBytes += bytes;
    }
  }
  return buffers;
}

/// The launch of `numBlocks` blocks that replaces `loop`, with the
/// workspace it needs allocated before it; leaves the rewriter at the end
/// of the launch's body, after the buffers' bases.
LoopLaunch BPTMapToGPUPass::createLaunch(IRRewriter &rw, scf::ForallOp loop,
                                         const BufferPlacement &buffers,
                                         int64_t numBlocks) {
  Location loc = loop.getLoc();
  LoopLaunch result;
  rw.setInsertionPoint(loop);
  if (buffers.workspaceBytes > 0) {
    auto scratch = memref::AllocOp::create(
        rw, loc,
        MemRefType::get({numBlocks * buffers.workspaceBytes}, rw.getI8Type()));
    bpt::setBufferName(scratch, "block_scratch");
    result.workspace = scratch;
  }
  Value dynamicShared;
  if (buffers.sharedBytes > 0)
    dynamicShared = arith::ConstantIntOp::create(rw, loc, rw.getI32Type(),
                                                 buffers.sharedBytes);
  Value one = indexConst(rw, loc, 1);
  result.launch = gpu::LaunchOp::create(rw, loc, indexConst(rw, loc, numBlocks),
                                        one, one, indexConst(rw, loc, threads),
                                        one, one, dynamicShared);
  result.launch->setDiscardableAttrs(loop->getDiscardableAttrDictionary());
  rw.setInsertionPointToEnd(&result.launch.getBody().front());
  if (buffers.sharedBytes > 0) {
    auto workgroup = gpu::AddressSpaceAttr::get(
        rw.getContext(), gpu::GPUDialect::getWorkgroupAddressSpace());
    result.sharedBase = gpu::DynamicSharedMemoryOp::create(
        rw, loc,
        MemRefType::get({ShapedType::kDynamic}, rw.getI8Type(),
                        MemRefLayoutAttrInterface(), workgroup));
  }
  if (result.workspace)
    result.workspaceBase =
        arith::MulIOp::create(rw, loc, result.launch.getBlockIds().x,
                              indexConst(rw, loc, buffers.workspaceBytes));
  result.numThreads = indexConst(rw, loc, threads);
  return result;
}

/// Bytes one thread moves per operand and access in a top-level
/// elementwise launch: the widest global access (ld/st.global.v4.b32).
constexpr int64_t kVectorBytes = 16;

/// Elements of the innermost loop one thread takes at once in a top-level
/// launch of `generic`, so that its loads and stores are 16-byte vectors
/// (scalar 2-byte accesses leave a bandwidth-bound launch at a third of the
/// memory's speed): 1 where that is not possible. Every buffer indexed by
/// the innermost loop must have it as its contiguous last dimension (an
/// identity layout, a static shape: its rows are then multiples of the
/// width apart, and every buffer of a kernel set starts 16-byte aligned);
/// buffers that it does not index are read once per vector.
int64_t vectorWidth(linalg::GenericOp generic) {
  if (generic.getNumLoops() == 0 ||
      generic.getNumParallelLoops() != generic.getNumLoops())
    return 1;
  unsigned innermost = generic.getNumLoops() - 1;
  int64_t extent = generic.getStaticLoopRanges()[innermost];
  if (ShapedType::isDynamic(extent))
    return 1;
  int64_t widest = 0;
  for (OpOperand &operand : generic->getOpOperands()) {
    auto type = dyn_cast<MemRefType>(operand.get().getType());
    if (!type)
      continue;
    AffineMap map = generic.getMatchingIndexingMap(&operand);
    if (!map.isFunctionOfDim(innermost)) {
      // Only inputs may be read once per vector; results are stored as
      // vectors.
      if (generic.isDpsInit(&operand))
        return 1;
      continue;
    }
    if (map.getNumResults() == 0)
      return 1;
    auto last = dyn_cast<AffineDimExpr>(map.getResults().back());
    if (!last || last.getPosition() != innermost ||
        !type.getLayout().isIdentity() || !type.hasStaticShape() ||
        llvm::any_of(map.getResults().drop_back(), [&](AffineExpr e) {
          return e.isFunctionOfDim(innermost);
        }))
      return 1;
    // Index (no fixed width), vector and complex elements stay scalar.
    if (!type.getElementType().isIntOrFloat())
      return 1;
    unsigned bits = type.getElementTypeBitWidth();
    if (bits == 0 || bits % 8 != 0 || bits / 8 > kVectorBytes)
      return 1;
    widest = std::max<int64_t>(widest, bits / 8);
  }
  if (widest == 0)
    return 1;
  int64_t width = kVectorBytes / widest;
  while (width > 1 && extent % width != 0)
    width /= 2;
  return width;
}

/// shareAmongThreads for an all-parallel generic whose vectorWidth is
/// `width`: each point is `width` consecutive elements of the innermost
/// loop, loaded and stored as vectors, the body run once per element.
void shareVectorized(RewriterBase &rw, linalg::GenericOp generic,
                     int64_t width, Value worker, Value numWorkers) {
  Location loc = generic.getLoc();
  rw.setInsertionPoint(generic);
  unsigned innermost = generic.getNumLoops() - 1;
  SmallVector<int64_t> ranges = generic.getStaticLoopRanges();
  SmallVector<Value> extents;
  for (auto [d, range] : llvm::enumerate(ranges))
    extents.push_back(indexConst(
        rw, loc, d == innermost ? range / width : range));
  // An operand read or written as a vector (indexed by the innermost loop).
  auto isVector = [&](OpOperand &operand) {
    return isa<MemRefType>(operand.get().getType()) &&
           generic.getMatchingIndexingMap(&operand).isFunctionOfDim(innermost);
  };
  auto alignment = [&](Value memref) {
    auto type = cast<MemRefType>(memref.getType());
    return width * type.getElementTypeBitWidth() / 8;
  };

  scf::ForOp::create(
      rw, loc, worker, product(rw, loc, extents), numWorkers, {},
      [&](OpBuilder &b, Location l, Value linear, ValueRange) {
        SmallVector<Value> ivs = delinearize(b, l, linear, extents);
        ivs[innermost] = arith::MulIOp::create(b, l, ivs[innermost],
                                               indexConst(b, l, width));
        // Each operand's value per element of the vector.
        SmallVector<SmallVector<Value>> lanes;
        for (OpOperand &operand : generic->getOpOperands()) {
          Value value = operand.get();
          SmallVector<Value> perLane;
          if (!isa<MemRefType>(value.getType())) {
            perLane.assign(width, value);
          } else if (generic.isDpsInit(&operand) &&
                     !generic.payloadUsesValueFromOperand(&operand)) {
            // Never read by the body: any value of its type stands in.
            perLane.assign(width, arith::ConstantOp::create(
                                      b, l, b.getZeroAttr(getElementTypeOrSelf(
                                                value.getType()))));
          } else {
            SmallVector<Value> at = applyMap(
                b, l, generic.getMatchingIndexingMap(&operand), ivs);
            if (isVector(operand)) {
              auto type = VectorType::get(
                  {width}, cast<MemRefType>(value.getType()).getElementType());
              Value vector = vector::LoadOp::create(
                  b, l, type, value, at, /*nontemporal=*/false,
                  llvm::MaybeAlign(alignment(value)));
              for (int64_t i = 0; i < width; ++i)
                perLane.push_back(vector::ExtractOp::create(b, l, vector, i));
            } else {
              perLane.assign(width, memref::LoadOp::create(b, l, value, at));
            }
          }
          lanes.push_back(std::move(perLane));
        }
        // The body once per element.
        SmallVector<SmallVector<Value>> results(generic.getNumDpsInits());
        for (int64_t i = 0; i < width; ++i) {
          SmallVector<Value> laneIvs(ivs);
          laneIvs[innermost] = arith::AddIOp::create(b, l, ivs[innermost],
                                                     indexConst(b, l, i));
          SmallVector<Value> args = llvm::map_to_vector(
              lanes, [&](ArrayRef<Value> perLane) { return perLane[i]; });
          for (auto [r, value] :
               llvm::enumerate(cloneBody(b, generic, args, laneIvs)))
            results[r].push_back(value);
        }
        for (auto [values, init] :
             llvm::zip(results, generic.getDpsInitsMutable())) {
          Value vector = vector::FromElementsOp::create(
              b, l,
              VectorType::get({width},
                              getElementTypeOrSelf(init.get().getType())),
              values);
          vector::StoreOp::create(
              b, l, vector, init.get(),
              applyMap(b, l, generic.getMatchingIndexingMap(&init), ivs),
              /*nontemporal=*/false, llvm::MaybeAlign(alignment(init.get())));
        }
        scf::YieldOp::create(b, l);
      });
  rw.eraseOp(generic);
}

LogicalResult BPTMapToGPUPass::mapSingleOp(IRRewriter &rw, Operation *op) {
  Location loc = op->getLoc();
  int64_t points = 1;
  if (auto copy = dyn_cast<memref::CopyOp>(op)) {
    auto type = cast<MemRefType>(copy.getSource().getType());
    if (!type.hasStaticShape())
      return op->emitError() << "bpt-map-to-gpu: dynamic copy on the host";
    points = type.getNumElements();
  }
  int64_t width = 1;
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op)) {
    if (!linalgOp.hasPureBufferSemantics())
      return op->emitError() << "bpt-map-to-gpu: expected a linalg op on "
                                "buffers or memref.copy";
    for (auto [size, kind] : llvm::zip(linalgOp.getStaticLoopRanges(),
                                       linalgOp.getIteratorTypesArray())) {
      if (ShapedType::isDynamic(size))
        return op->emitError() << "bpt-map-to-gpu: dynamic loop bound";
      if (kind == utils::IteratorType::parallel)
        points *= size;
    }
    auto generic = dyn_cast<linalg::GenericOp>(op);
    if (!generic) {
      rw.setInsertionPoint(op);
      FailureOr<linalg::GenericOp> generalized =
          linalg::generalizeNamedOp(rw, linalgOp);
      if (failed(generalized))
        return op->emitError() << "bpt-map-to-gpu: cannot generalize op";
      generic = *generalized;
      op = generic;
    }
    width = vectorWidth(generic);
    points /= width;
  }
  // Workers stride over the points, so the grid may be smaller than the
  // work: it is capped at CUDA's limit.
  int64_t blocks = std::clamp<int64_t>((points + threads - 1) / threads, 1,
                                       kMaxGridX);
  rw.setInsertionPoint(op);
  Value one = indexConst(rw, loc, 1);
  auto launch = gpu::LaunchOp::create(rw, loc, indexConst(rw, loc, blocks),
                                      one, one, indexConst(rw, loc, threads),
                                      one, one);
  Block &body = launch.getBody().front();
  rw.setInsertionPointToEnd(&body);
  auto terminator = gpu::TerminatorOp::create(rw, loc);
  op->moveBefore(terminator);
  rw.setInsertionPoint(op);
  Value worker = arith::AddIOp::create(
      rw, loc, launch.getThreadIds().x,
      arith::MulIOp::create(rw, loc, launch.getBlockIds().x,
                            indexConst(rw, loc, threads)));
  Value numWorkers = indexConst(rw, loc, blocks * threads);
  if (width > 1) {
    shareVectorized(rw, cast<linalg::GenericOp>(op), width, worker,
                    numWorkers);
    return success();
  }
  return shareAmongThreads(rw, op, worker, numWorkers);
}

/// The views (subviews, reshapes) from `v` down to the buffer it views,
/// `v`'s own first; empty unless one of them is a subview (a slice).
SmallVector<Operation *> sliceViews(Value v) {
  SmallVector<Operation *> chain;
  bool slices = false;
  for (Operation *def = v.getDefiningOp();
       isa_and_nonnull<memref::SubViewOp, memref::ExpandShapeOp,
                       memref::CollapseShapeOp>(def);
       def = def->getOperand(0).getDefiningOp()) {
    chain.push_back(def);
    slices |= isa<memref::SubViewOp>(def);
  }
  if (!slices)
    chain.clear();
  return chain;
}

/// Slices of host buffers (a query-chunked backward reads and writes rows
/// of whole-sequence buffers) go into the launches that use them: the
/// runtime passes a kernel whole buffers by their base pointers, so a
/// kernel takes the buffer and makes the slice itself. On the host side
/// (e.g. under a tensor map) only leading rows may stay, whose address is
/// the buffer's; any other slice there is an error, never an argument with
/// its offset dropped.
LogicalResult sinkSlicesIntoLaunches(func::FuncOp func) {
  for (auto launch : llvm::to_vector(func.getOps<gpu::LaunchOp>())) {
    Region &body = launch.getBody();
    llvm::SetVector<Value> captured;
    getUsedValuesDefinedAbove(body, captured);
    OpBuilder b = OpBuilder::atBlockBegin(&body.front());
    for (Value slice : captured) {
      // The views from the buffer to the slice, cloned in order; their
      // constant operands are the launch's to capture.
      SmallVector<Operation *> chain = sliceViews(slice);
      if (chain.empty())
        continue;
      IRMapping map;
      for (Operation *view : llvm::reverse(chain))
        b.clone(*view, map);
      replaceAllUsesInRegionWith(slice, map.lookup(slice), body);
    }
  }
  // Host-side views nothing uses any more go, users first.
  SmallVector<Operation *> views;
  func.walk([&](Operation *op) {
    if (isa<memref::SubViewOp, memref::ExpandShapeOp, memref::CollapseShapeOp>(
            op) &&
        isa<func::FuncOp>(op->getParentOp()) &&
        !sliceViews(op->getResult(0)).empty())
      views.push_back(op);
  });
  for (Operation *view : llvm::reverse(views)) {
    if (view->use_empty()) {
      view->erase();
      continue;
    }
    // Leading rows of a buffer: its base pointer is theirs.
    if (bpt::isContiguousAtBase(cast<MemRefType>(view->getResult(0).getType())))
      continue;
    Operation *user = *view->getUsers().begin();
    InFlightDiagnostic diag =
        view->emitError()
        << "bpt-map-to-gpu: a slice of a buffer is used on the host side of "
           "a kernel set, by '"
        << user->getName() << "'; only portable launches take slices";
    diag.attachNote(user->getLoc()) << "the use";
    return diag;
  }
  return success();
}

void BPTMapToGPUPass::runOnOperation() {
  func::FuncOp func = getOperation();
  if (threads < 1 || threads > 1024) {
    func.emitError() << "bpt-map-to-gpu: option threads must be in [1, 1024], "
                        "got "
                     << static_cast<int64_t>(threads);
    return signalPassFailure();
  }
  if (maxBlocks < 1 || maxWorkspaceBlocks < 1 || maxBlocks > kMaxGridX ||
      maxWorkspaceBlocks > kMaxGridX) {
    func.emitError() << "bpt-map-to-gpu: options max-blocks and "
                        "max-workspace-blocks must be in [1, 2^31 - 1] (a "
                        "grid's blocks along x)";
    return signalPassFailure();
  }
  IRRewriter rw(&getContext());
  for (Operation &op : llvm::make_early_inc_range(func.getBody().getOps())) {
    LogicalResult status = success();
    if (auto loop = dyn_cast<scf::ForallOp>(op))
      status = mapLoop(rw, loop);
    else if (isSharedWork(&op))
      status = mapSingleOp(rw, &op);
    else if (!isa<memref::AllocOp, memref::DeallocOp, arith::ConstantOp,
                  memref::ExpandShapeOp, memref::CollapseShapeOp,
                  memref::SubViewOp, memref::CastOp, func::ReturnOp,
                  // Launches already made (bpt-attention-to-sm90) and their
                  // TMA descriptors stay as they are.
                  gpu::LaunchFuncOp, nvgpu::TmaCreateDescriptorOp>(op))
      status = op.emitError()
               << "bpt-map-to-gpu: '" << op.getName()
               << "' cannot stay on the host side of a kernel set";
    if (failed(status))
      return signalPassFailure();
  }
  if (failed(sinkSlicesIntoLaunches(func)))
    return signalPassFailure();
  // The kernel set manages no memory lifetimes: host allocations become
  // workspace buffers that live for the whole set.
  for (auto dealloc : llvm::to_vector(func.getOps<memref::DeallocOp>()))
    rw.eraseOp(dealloc);
}

} // namespace
