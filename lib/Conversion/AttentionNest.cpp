//===- AttentionNest.cpp - blockwise attention nests as kernels -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "AttentionNest.h"
#include "NVVMEmitter.h"

#include "bpt/Dialect/BPTDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace bpt;

Value bpt::traceToOperand(Value tile, Operation *nest) {
  while (tile) {
    Operation *owner = tile.getDefiningOp();
    if (!owner)
      owner = tile.getParentBlock()->getParentOp();
    if (!nest->isAncestor(owner))
      return tile;
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(owner))
      tile = slice.getSource();
    else if (auto insert = dyn_cast<tensor::InsertSliceOp>(owner))
      tile = insert.getSource();
    else if (auto copy = dyn_cast<linalg::CopyOp>(owner))
      tile = copy.getInputs()[0];
    else if (auto expand = dyn_cast<tensor::ExpandShapeOp>(owner))
      tile = expand.getSrc();
    else if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(owner))
      tile = collapse.getSrc();
    else
      return Value();
  }
  return Value();
}

/// The tag of an attention nest or of a split partial nest, as causal and
/// scale; null where `loop` is neither.
static std::optional<std::pair<bool, double>> attentionTag(scf::ForallOp loop,
                                                           bool &split) {
  Attribute tag = loop->getAttr(AttentionNestAttr::kAttrName);
  split = false;
  if (auto nest = dyn_cast_or_null<AttentionNestAttr>(tag))
    return std::make_pair(nest.getCausal(), nest.getScale().convertToDouble());
  if (auto nest = dyn_cast_or_null<SplitKVNestAttr>(tag);
      nest && nest.getPart() == SplitKVPart::partial) {
    split = true;
    return std::make_pair(nest.getCausal(), nest.getScale().convertToDouble());
  }
  return std::nullopt;
}

FailureOr<AttentionNest> AttentionNest::match(scf::ForallOp loop) {
  bool split;
  std::optional<std::pair<bool, double>> tag = attentionTag(loop, split);
  if (!tag)
    return loop.emitError() << "not an attention nest (no bpt.nest)";
  auto fail = [&](const Twine &why) {
    return loop.emitError() << "malformed attention nest: " << why;
  };
  // Canonicalization drops the unit dimensions of the loop (batch 1, one
  // head, one query block); the kernel's grid comes from the operands.
  if (loop.getNumResults() != 1 && loop.getNumResults() != 2)
    return fail("expected an scf.forall with one or two results");
  // The first key/value step: the first two products inside the nest.
  SmallVector<linalg::MatmulOp> products;
  loop.getBody()->walk([&](linalg::MatmulOp op) {
    if (products.size() < 2)
      products.push_back(op);
  });
  if (products.size() < 2 ||
      products[0]->getParentOp() != products[1]->getParentOp())
    return fail("expected Q·Kᵀ and P·V in one key/value loop");
  Value q = traceToOperand(products[0].getInputs()[0], loop);
  Value k = traceToOperand(products[0].getInputs()[1], loop);
  Value v = traceToOperand(products[1].getInputs()[1], loop);
  auto rank4 = [](Value x) {
    auto type = x ? dyn_cast<RankedTensorType>(x.getType()) : nullptr;
    return type && type.getRank() == 4;
  };
  if (!rank4(q) || !rank4(k) || !rank4(v))
    return fail("its tiles are not read from 4-D tensors");
  AttentionNest result;
  result.loop = loop;
  result.query = cast<TypedValue<RankedTensorType>>(q);
  result.key = cast<TypedValue<RankedTensorType>>(k);
  result.value = cast<TypedValue<RankedTensorType>>(v);
  result.causal = tag->first;
  result.scale = tag->second;
  result.strategy = StrategyAttr::get(loop);
  if (!result.strategy || result.strategy.getQBlock() < 1 ||
      result.strategy.getKvBlock() < 1 || result.strategy.getStages() < 1)
    return fail("its strategy records no kernel tiling");
  if (split != (result.strategy.getKvSplits() > 0))
    return fail("its tag and its strategy's kv_splits disagree");
  if (split) {
    ArrayRef<int64_t> q = result.query.getType().getShape();
    ArrayRef<int64_t> kv = result.key.getType().getShape();
    int64_t splits = result.strategy.getKvSplits();
    Type f32 = Float32Type::get(loop.getContext());
    SmallVector<int64_t> rows = {q[0], kv[1], splits, q[1] / kv[1] * q[2]};
    auto lseType = RankedTensorType::get(rows, f32);
    rows.push_back(q[3]);
    auto partialType = RankedTensorType::get(rows, f32);
    if (loop.getNumResults() != 2 ||
        loop.getResult(0).getType() != partialType ||
        loop.getResult(1).getType() != lseType)
      return loop.emitError()
             << "malformed split-K/V nest: expected results " << partialType
             << " and " << lseType;
    result.kvSplits = splits;
    return result;
  }
  if (loop.getResult(0).getType() != result.query.getType())
    return fail("its result type differs from the query's");
  result.withLSE = loop.getNumResults() == 2;
  if (result.withLSE) {
    ArrayRef<int64_t> q = result.query.getType().getShape();
    auto lseType = RankedTensorType::get(q.drop_back(),
                                         Float32Type::get(loop.getContext()));
    if (loop.getResult(1).getType() != lseType)
      return loop.emitError() << "malformed attention nest: its second "
                                 "result is not a log-sum-exp "
                              << lseType;
  }
  return result;
}

SmallVector<Value>
bpt::replaceLoopWithLaunch(OpBuilder &b, scf::ForallOp loop,
                           gpu::GPUFuncOp kernel, ArrayRef<int64_t> grid,
                           int64_t threads, int64_t sharedBytes,
                           ValueRange inputs, ArrayRef<StringRef> resultNames) {
  Location loc = loop.getLoc();
  b.setInsertionPoint(loop);
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  // One fresh buffer per result, typed as the kernel's trailing arguments.
  ArrayRef<Type> outTypes =
      kernel.getArgumentTypes().take_back(loop.getNumResults());
  SmallVector<Value> args(inputs), outs;
  for (auto [i, type] : llvm::enumerate(outTypes)) {
    auto buffer = memref::AllocOp::create(b, loc, cast<MemRefType>(type));
    if (i < resultNames.size())
      setBufferName(buffer, resultNames[i]);
    outs.push_back(buffer);
  }
  args.append(outs);
  gpu::LaunchFuncOp::create(
      b, loc, kernel,
      gpu::KernelDim3{index(grid[0]), index(grid[1]), index(grid[2])},
      gpu::KernelDim3{index(threads), index(1), index(1)},
      arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(sharedBytes)),
      args);
  for (auto [result, out] : llvm::zip_equal(loop.getResults(), outs))
    result.replaceAllUsesWith(bufferization::ToTensorOp::create(
        b, loc, result.getType(), out, /*restrict=*/true, /*writable=*/true));
  loop.erase();
  return outs;
}

SmallVector<Value>
AttentionNest::replaceWithLaunch(OpBuilder &b, gpu::GPUFuncOp kernel,
                                 ArrayRef<int64_t> grid, int64_t threads,
                                 int64_t sharedBytes, ValueRange inputs,
                                 ArrayRef<StringRef> resultNames) {
  return replaceLoopWithLaunch(b, loop, kernel, grid, threads, sharedBytes,
                               inputs, resultNames);
}

SmallVector<scf::ForallOp> bpt::collectAttentionNests(ModuleOp module,
                                                      KernelPath path) {
  SmallVector<scf::ForallOp> nests;
  module.walk([&](scf::ForallOp loop) {
    StrategyAttr strategy = StrategyAttr::get(loop);
    bool split;
    if (strategy && strategy.getPath() == path && attentionTag(loop, split))
      nests.push_back(loop);
  });
  return nests;
}

//===----------------------------------------------------------------------===//
// The backward's two nests
//===----------------------------------------------------------------------===//

namespace {

using Tensor = TypedValue<RankedTensorType>;

/// The products of a backward nest's first step, in order: Q·Kᵀ, dO·Vᵀ,
/// then the gradients' products.
SmallVector<linalg::MatmulOp> productsOf(scf::ForallOp loop) {
  SmallVector<linalg::MatmulOp> products;
  loop.getBody()->walk([&](linalg::MatmulOp op) { products.push_back(op); });
  return products;
}

/// The tensor `value` traces to, if it has `rank` dimensions.
Tensor traced(Value value, Operation *nest, int64_t rank) {
  Value operand = value ? traceToOperand(value, nest) : Value();
  auto type = operand ? dyn_cast<RankedTensorType>(operand.getType()) : nullptr;
  if (!type || type.getRank() != rank)
    return nullptr;
  return cast<Tensor>(operand);
}

/// The elementwise op that takes `product`'s result (as an input or an
/// init), which reads `input` as its input number `index`.
Value elementwiseInput(linalg::MatmulOp product, unsigned index) {
  for (Operation *user : product->getResult(0).getUsers())
    if (auto generic = dyn_cast<linalg::GenericOp>(user))
      if (generic.getNumDpsInputs() > index)
        return generic.getDpsInputs()[index];
  return Value();
}

} // namespace

FailureOr<AttentionGradNests>
AttentionGradNests::match(scf::ForallOp keyValue) {
  auto fail = [&](const Twine &why) {
    return keyValue.emitError() << "malformed attention backward nest: " << why;
  };
  auto tag = keyValue->getAttrOfType<AttentionGradNestAttr>(
      AttentionNestAttr::kAttrName);
  if (!tag || tag.getPart() != AttentionGradPart::key_value)
    return fail("expected the key/value nest");
  SmallVector<linalg::MatmulOp> products = productsOf(keyValue);
  if (products.size() != 4 || keyValue.getNumResults() != 2)
    return fail("expected Q·Kᵀ, dO·Vᵀ, Pᵀ·dO and dSᵀ·Q, and results dK, dV");
  AttentionGradNests n;
  n.keyValue = keyValue;
  n.causal = tag.getCausal();
  n.scale = tag.getScale().convertToDouble();
  n.q = traced(products[0].getInputs()[0], keyValue, 4);
  n.k = traced(products[0].getInputs()[1], keyValue, 4);
  n.outputGrad = traced(products[1].getInputs()[0], keyValue, 4);
  n.v = traced(products[1].getInputs()[1], keyValue, 4);
  // P = exp(scale·s − lse) reads lse first; dS = P ∘ (dP − D) reads D second.
  n.lse = traced(elementwiseInput(products[0], 0), keyValue, 3);
  n.rowDots = traced(elementwiseInput(products[1], 1), keyValue, 3);
  if (!n.q || !n.k || !n.v || !n.outputGrad || !n.lse || !n.rowDots)
    return fail("its tiles are not read from the backward's operands");
  auto rowDotsOp = n.rowDots.getDefiningOp<linalg::GenericOp>();
  if (!rowDotsOp || rowDotsOp.getNumDpsInputs() != 2 ||
      rowDotsOp.getDpsInputs()[0] != n.outputGrad ||
      rowDotsOp.getDpsInputs()[1].getType() != n.q.getType())
    return fail("its row sums D are not a pre-pass over dO and O");
  n.rowDotsOp = rowDotsOp;
  n.output = cast<Tensor>(rowDotsOp.getDpsInputs()[1]);
  n.strategy = StrategyAttr::get(keyValue);
  if (!n.strategy || n.strategy.getQBlock() < 1 ||
      n.strategy.getKvBlock() < 1 || n.strategy.getStages() < 1)
    return fail("its strategy records no kernel tiling");

  // The query nest: the sibling that reads the same Q, K, dO and V.
  for (Operation &op : *keyValue->getBlock()) {
    auto loop = dyn_cast<scf::ForallOp>(&op);
    auto other = loop ? loop->getAttrOfType<AttentionGradNestAttr>(
                            AttentionNestAttr::kAttrName)
                      : nullptr;
    if (!other || other.getPart() != AttentionGradPart::query)
      continue;
    SmallVector<linalg::MatmulOp> qProducts = productsOf(loop);
    if (qProducts.size() == 3 && loop.getNumResults() == 1 &&
        traced(qProducts[0].getInputs()[0], loop, 4) == n.q &&
        traced(qProducts[0].getInputs()[1], loop, 4) == n.k &&
        traced(qProducts[1].getInputs()[0], loop, 4) == n.outputGrad &&
        traced(qProducts[1].getInputs()[1], loop, 4) == n.v) {
      n.query = loop;
      break;
    }
  }
  if (!n.query)
    return fail("found no query nest of the same backward");
  if (!keyValue->isBeforeInBlock(n.query))
    return fail("its query nest comes before it");
  return n;
}

/// Where the pre-pass may run: just after dO, O and lse exist in the
/// nest's block (its start for values from outside), when model-level work
/// (a bpt op, a launch, another nest) lies between there and the nest;
/// else none. Glue (transposes, reshapes) does not count: the training
/// pair's own head transposes would otherwise cost every backward a
/// launch.
static std::optional<OpBuilder::InsertPoint>
earlyPreparePoint(scf::ForallOp keyValue, ArrayRef<Value> operands) {
  Block *block = keyValue->getBlock();
  Operation *last = nullptr;
  for (Value value : operands) {
    Operation *def = value.getDefiningOp();
    if (def && def->getBlock() == block &&
        (!last || last->isBeforeInBlock(def)))
      last = def;
  }
  Block::iterator from = last ? std::next(last->getIterator()) : block->begin();
  for (Operation &op : llvm::make_range(from, keyValue->getIterator()))
    if (isa<gpu::LaunchFuncOp, scf::ForallOp>(op) ||
        isa<BPTDialect>(op.getDialect()))
      return OpBuilder::InsertPoint(block, from);
  return std::nullopt;
}

AttentionGradNests::Workspaces AttentionGradNests::emitPrepare(
    OpBuilder &b, int64_t paddedSeqQ,
    llvm::function_ref<gpu::GPUFuncOp(codegen::PrepareWork)> kernel) {
  Location loc = keyValue.getLoc();
  Type f32 = b.getF32Type();
  SmallVector<int64_t> rows(lse.getType().getShape());
  SmallVector<int64_t> tiles(q.getType().getShape());
  if (paddedSeqQ)
    rows[2] = tiles[2] = paddedSeqQ;
  // A thread block takes prepareRowsPerBlock of the [B, Hq, rows] rows.
  int64_t blocks =
      rows[0] * rows[1] * rows[2] / codegen::prepareRowsPerBlock(tiles[3]);
  auto launch = [&](OpBuilder &at, codegen::PrepareWork work, ValueRange args) {
    auto index = [&](int64_t v) -> Value {
      return arith::ConstantIndexOp::create(at, loc, v);
    };
    gpu::LaunchFuncOp::create(
        at, loc, kernel(work),
        gpu::KernelDim3{index(blocks), index(1), index(1)},
        gpu::KernelDim3{index(codegen::kPrepareThreads), index(1), index(1)},
        /*dynamicSharedMemorySize=*/Value(), args);
  };
  Workspaces w;
  auto accumulator = [&](OpBuilder &at) {
    auto acc = memref::AllocOp::create(at, loc, MemRefType::get(tiles, f32));
    setBufferName(acc, "dq_accumulator");
    w.accumulator = acc;
  };
  // The dots at `at`, with the accumulator's zero where `zero`.
  auto dots = [&](OpBuilder &at, bool zero) {
    w.lse = codegen::readOnlyBuffer(at, loc, lse);
    auto rowDots = memref::AllocOp::create(at, loc, MemRefType::get(rows, f32));
    setBufferName(rowDots, "delta");
    w.rowDots = rowDots;
    SmallVector<Value> args = {codegen::readOnlyBuffer(at, loc, outputGrad),
                               codegen::readOnlyBuffer(at, loc, output),
                               rowDots};
    if (zero) {
      accumulator(at);
      args.push_back(w.accumulator);
    }
    if (paddedSeqQ) {
      auto paddedLse = memref::AllocOp::create(at, loc, rowDots.getType());
      setBufferName(paddedLse, "lse_padded");
      args.append({w.lse, paddedLse});
      w.lse = paddedLse;
    }
    launch(at,
           zero ? codegen::PrepareWork::DotsAndZero
                : codegen::PrepareWork::Dots,
           args);
  };
  std::optional<OpBuilder::InsertPoint> early =
      earlyPreparePoint(keyValue, {outputGrad, output, lse});
  if (!early) {
    dots(b, /*zero=*/true);
    return w;
  }
  OpBuilder at(b.getContext());
  at.restoreInsertionPoint(*early);
  dots(at, /*zero=*/false);
  accumulator(b);
  launch(b, codegen::PrepareWork::Zero, {w.accumulator});
  return w;
}

void AttentionGradNests::replaceWith(OpBuilder &b, Value dQ, Value dK,
                                     Value dV) {
  Location loc = keyValue.getLoc();
  auto toTensor = [&](Value buffer) -> Value {
    auto type = cast<MemRefType>(buffer.getType());
    return bufferization::ToTensorOp::create(
        b, loc, RankedTensorType::get(type.getShape(), type.getElementType()),
        buffer, /*restrict=*/true, /*writable=*/true);
  };
  keyValue.getResult(0).replaceAllUsesWith(toTensor(dK));
  keyValue.getResult(1).replaceAllUsesWith(toTensor(dV));
  query.getResult(0).replaceAllUsesWith(toTensor(dQ));
  query.erase();
  keyValue.erase();
  if (rowDotsOp->use_empty())
    rowDotsOp->erase();
}

SmallVector<scf::ForallOp> bpt::collectAttentionGradNests(ModuleOp module,
                                                          KernelPath path) {
  SmallVector<scf::ForallOp> nests;
  module.walk([&](scf::ForallOp loop) {
    StrategyAttr strategy = StrategyAttr::get(loop);
    auto tag = loop->getAttrOfType<AttentionGradNestAttr>(
        AttentionNestAttr::kAttrName);
    if (strategy && strategy.getPath() == path && tag &&
        tag.getPart() == AttentionGradPart::key_value)
      nests.push_back(loop);
  });
  return nests;
}
