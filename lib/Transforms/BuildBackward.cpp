//===- BuildBackward.cpp - bpt-build-backward -------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// Reverse-mode differentiation of a model-level function over the bpt ops:
// the training forward (`@f_train`, the forward plus each attention's
// log-sum-exp) and the backward (`@f_grad`, which recomputes the forward and
// then emits each op's grad op in reverse order). Why this shape (per-op grad
// ops and a pass, not a transformer_block_grad): docs/design.md, "Training:
// the block's backward — IR".
//
//===----------------------------------------------------------------------===//

#include "bpt/Transforms/Passes.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Transforms/ChunkLoops.h"
#include "bpt/Utils/Builders.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"

namespace bpt {
#define GEN_PASS_DEF_BPTBUILDBACKWARD
#include "bpt/Transforms/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

constexpr StringLiteral kPassName = "bpt-build-backward";

/// Query chunks are unrolled (each chunk's ops have static shapes): a
/// bound on how many, so that a tiny chunk cannot blow up the IR.
constexpr int64_t kMaxQueryChunks = 128;

bool isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

/// Ops whose gradient the pass knows (given that one of their operands
/// depends on an argument).
bool hasGradientRule(Operation *op) {
  return isa<AttentionOp, LinearOp, FFNOp, LayerNormOp, RMSNormOp,
             arith::AddFOp, tensor::ExpandShapeOp, tensor::CollapseShapeOp,
             linalg::TransposeOp, tensor::ExtractSliceOp, tensor::ConcatOp>(op);
}

/// A detached copy of `func` named `name`, with its transformer blocks
/// expanded into their pieces: the forward both new functions start from.
func::FuncOp decomposedCopy(func::FuncOp func, StringRef name) {
  auto copy = cast<func::FuncOp>(func->clone());
  copy.setSymName(name);
  copy.setPublic();
  IRRewriter rewriter(func.getContext());
  for (auto block : llvm::to_vector(copy.getOps<TransformerBlockOp>()))
    decomposeTransformerBlock(rewriter, block);
  return copy;
}

/// The values of `func`'s body that depend on one of its float tensor
/// arguments: the only ones with gradients. Fails, naming the op, on an op
/// that depends on an argument and has no gradient rule. `name` is the
/// user's function `func` was built from.
FailureOr<llvm::DenseSet<Value>> findActiveValues(func::FuncOp func,
                                                  StringRef name) {
  if (!func.getBody().hasOneBlock())
    return func.emitError() << kPassName << ": '" << name
                            << "' has more than one block; only straight-line "
                               "functions can be differentiated";
  llvm::DenseSet<Value> active;
  for (BlockArgument arg : func.getArguments()) {
    if (!isFloatTensor(arg.getType()))
      return func.emitError()
             << kPassName << ": argument #" << arg.getArgNumber() << " of '"
             << name << "' has type " << arg.getType()
             << ", which has no gradient (expected a ranked tensor of floats)";
    active.insert(arg);
  }
  for (Operation &op : func.getBody().front().without_terminator()) {
    if (llvm::none_of(op.getOperands(),
                      [&](Value v) { return active.contains(v); }))
      continue;
    if (!hasGradientRule(&op))
      return op.emitError() << kPassName << ": no gradient for '"
                            << op.getName() << "'";
    active.insert(op.getResults().begin(), op.getResults().end());
  }
  return active;
}

/// The inverse of a permutation: inverse[perm[i]] = i.
SmallVector<int64_t> invertPermutation(ArrayRef<int64_t> perm) {
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  return inverse;
}

/// Whether `type` is a tensor of a float narrower than f32, whose partial
/// sums would be rounded at every addition.
bool isNarrowFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  auto element =
      tensor ? dyn_cast<FloatType>(tensor.getElementType()) : FloatType();
  return element && element.getWidth() < 32;
}

/// `v` converted to `element` (nothing if it already is), as arith.extf /
/// truncf on the tensor rather than roundTo's linalg.generic: the float64
/// interpreter evaluates @f_grad, and bpt-expand-gradients folds such an
/// extf into a weight-gradient GEMM.
Value convertTensor(OpBuilder &b, Location loc, Value v, Type element) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getElementType() == element)
    return v;
  auto to = type.clone(element);
  if (element.getIntOrFloatBitWidth() > type.getElementTypeBitWidth())
    return arith::ExtFOp::create(b, loc, to, v);
  return arith::TruncFOp::create(b, loc, to, v);
}

/// The static box [offset, offset + size) per dimension of a unit-stride
/// slice, or nothing.
std::optional<SmallVector<std::pair<int64_t, int64_t>>>
staticBox(tensor::ExtractSliceOp slice) {
  std::optional<SmallVector<int64_t>> offsets =
      getConstantIntValues(slice.getMixedOffsets());
  std::optional<SmallVector<int64_t>> sizes =
      getConstantIntValues(slice.getMixedSizes());
  if (!offsets || !sizes || !slice.hasUnitStride())
    return std::nullopt;
  SmallVector<std::pair<int64_t, int64_t>> box;
  for (auto [offset, size] : llvm::zip_equal(*offsets, *sizes))
    box.push_back({offset, offset + size});
  return box;
}

/// How the gradients of the slices taken of one value are gathered.
enum class SliceLayout {
  /// The slices are pairwise disjoint and together cover the value: each
  /// gradient is written in place into an uninitialised tensor.
  Partition,
  /// Pairwise disjoint, not covering: written into zeros.
  Disjoint,
  /// Some overlap: added up, in f32 for a 16-bit value.
  Overlapping,
};

SliceLayout sliceLayout(Value source) {
  SmallVector<SmallVector<std::pair<int64_t, int64_t>>> boxes;
  for (Operation *user : source.getUsers()) {
    auto slice = dyn_cast<tensor::ExtractSliceOp>(user);
    if (!slice || slice.getSource() != source)
      continue;
    auto box = staticBox(slice);
    if (!box)
      return SliceLayout::Overlapping;
    boxes.push_back(std::move(*box));
  }
  int64_t covered = 0;
  for (auto [i, a] : llvm::enumerate(boxes)) {
    int64_t volume = 1;
    for (auto [lo, hi] : a)
      volume *= hi - lo;
    covered += volume;
    for (const auto &other : ArrayRef(boxes).drop_front(i + 1)) {
      bool apart = false;
      for (auto [x, y] : llvm::zip_equal(a, other))
        apart |= x.second <= y.first || y.second <= x.first;
      if (!apart)
        return SliceLayout::Overlapping;
    }
  }
  return covered == cast<RankedTensorType>(source.getType()).getNumElements()
             ? SliceLayout::Partition
             : SliceLayout::Disjoint;
}

/// The reverse sweep over a recomputed forward: gradients ("adjoints") of
/// the values, summed over their uses.
class ReverseSweep {
public:
  /// With `sumInF32`, a 16-bit value's gradient that has several parts is
  /// summed in f32 and rounded once, when it is read.
  ReverseSweep(OpBuilder &builder, const llvm::DenseSet<Value> &active,
               bool sumInF32)
      : b(builder), active(active), sumInF32(sumInF32) {}

  /// Adds `grad` to the gradient of `value` (nothing if `value` does not
  /// depend on an argument).
  void accumulate(Value value, Value grad) {
    if (!active.contains(value))
      return;
    assert(!complete.contains(value) && "a gradient read is complete");
    auto [it, inserted] = adjoints.try_emplace(value, grad);
    if (inserted)
      return;
    Value sum = it->second;
    if (sumInF32 && isNarrowFloatTensor(value.getType())) {
      sum = convertTensor(b, grad.getLoc(), sum, b.getF32Type());
      grad = convertTensor(b, grad.getLoc(), grad, b.getF32Type());
    }
    it->second = arith::AddFOp::create(b, grad.getLoc(), sum, grad).getResult();
  }

  /// Adds the gradient of the slice `slice` to its source's.
  void accumulateSlice(tensor::ExtractSliceOp slice, Value grad);

  bool hasAdjoint(Value value) const {
    return adjoints.contains(value) || sliceSums.contains(value);
  }

  /// The gradient of `value`, of its type; complete from then on (every
  /// use of `value` comes before this read in the sweep).
  Value adjoint(Value value);

  /// Emits the grad op of one forward op whose results have adjoints;
  /// `savedLse` is the training forward's log-sum-exp of an attention.
  LogicalResult differentiate(Operation *op, Value savedLse);

private:
  struct SliceSum {
    SliceLayout layout;
    Value sum;
  };

  OpBuilder &b;
  const llvm::DenseSet<Value> &active;
  bool sumInF32;
  llvm::DenseMap<Value, Value> adjoints;
  /// The gradients of the values that slices are taken of, gathered
  /// apart from their other uses' (disjoint slices need no additions).
  llvm::DenseMap<Value, SliceSum> sliceSums;
  llvm::DenseMap<Value, Value> complete;
};

void ReverseSweep::accumulateSlice(tensor::ExtractSliceOp slice, Value grad) {
  Value source = slice.getSource();
  if (!active.contains(source))
    return;
  assert(!complete.contains(source) && "a gradient read is complete");
  Location loc = slice.getLoc();
  auto sourceType = cast<RankedTensorType>(source.getType());
  auto it = sliceSums.find(source);
  if (it == sliceSums.end()) {
    SliceLayout layout = sliceLayout(source);
    Value init;
    if (layout == SliceLayout::Partition)
      init = tensor::EmptyOp::create(b, loc, sourceType.getShape(),
                                     sourceType.getElementType());
    else if (layout == SliceLayout::Disjoint ||
             !isNarrowFloatTensor(sourceType))
      init = filledTensor(b, loc, sourceType.getShape(),
                          sourceType.getElementType(), 0.0);
    else
      init = filledTensor(b, loc, sourceType.getShape(), b.getF32Type(), 0.0);
    it = sliceSums.try_emplace(source, SliceSum{layout, init}).first;
  }
  Value &sum = it->second.sum;
  Type sumElement = cast<RankedTensorType>(sum.getType()).getElementType();
  if (it->second.layout == SliceLayout::Overlapping) {
    auto pieceType = cast<RankedTensorType>(grad.getType()).clone(sumElement);
    Value piece = tensor::ExtractSliceOp::create(
        b, loc, pieceType, sum, slice.getMixedOffsets(), slice.getMixedSizes(),
        slice.getMixedStrides());
    grad = arith::AddFOp::create(b, loc, piece,
                                 convertTensor(b, loc, grad, sumElement));
  }
  sum = tensor::InsertSliceOp::create(
      b, loc, grad, sum, slice.getMixedOffsets(), slice.getMixedSizes(),
      slice.getMixedStrides());
}

Value ReverseSweep::adjoint(Value value) {
  if (Value done = complete.lookup(value))
    return done;
  Value grad = adjoints.lookup(value);
  if (auto it = sliceSums.find(value); it != sliceSums.end()) {
    Value sliced = it->second.sum;
    if (!grad) {
      grad = sliced;
    } else {
      // Added in the wider of the two types.
      Type element = getElementTypeOrSelf(sliced);
      if (getElementTypeOrSelf(grad).getIntOrFloatBitWidth() >
          element.getIntOrFloatBitWidth())
        element = getElementTypeOrSelf(grad);
      grad = arith::AddFOp::create(
          b, value.getLoc(), convertTensor(b, value.getLoc(), sliced, element),
          convertTensor(b, value.getLoc(), grad, element));
    }
  }
  if (grad)
    grad = convertTensor(b, value.getLoc(), grad, getElementTypeOrSelf(value));
  complete[value] = grad;
  return grad;
}

LogicalResult ReverseSweep::differentiate(Operation *op, Value savedLse) {
  Location loc = op->getLoc();
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](AttentionOp a) -> LogicalResult {
        if (Value lse = a.getLse(); lse && hasAdjoint(lse))
          return a.emitError()
                 << kPassName
                 << ": no gradient through the log-sum-exp result of "
                    "'bpt.attention'";
        auto grad = AttentionGradOp::create(
            b, loc, a.getQuery().getType(), a.getKey().getType(),
            a.getValue().getType(), a.getQuery(), a.getKey(), a.getValue(),
            a.getResult(), adjoint(a.getResult()), savedLse,
            a.getCausalAttr(), a.getScaleAttr());
        accumulate(a.getQuery(), grad.getQueryGrad());
        accumulate(a.getKey(), grad.getKeyGrad());
        accumulate(a.getValue(), grad.getValueGrad());
        return success();
      })
      .Case([&](LinearOp l) {
        Value bias = l.getBias();
        auto grad = LinearGradOp::create(
            b, loc, l.getInput().getType(), l.getWeight().getType(),
            bias ? bias.getType() : Type(), l.getInput(), l.getWeight(),
            adjoint(l.getResult()));
        accumulate(l.getInput(), grad.getInputGrad());
        accumulate(l.getWeight(), grad.getWeightGrad());
        if (bias)
          accumulate(bias, grad.getBiasGrad());
        return success();
      })
      .Case([&](FFNOp f) {
        Value gate = f.getWGate();
        auto grad = FFNGradOp::create(
            b, loc, f.getInput().getType(), f.getWIn().getType(),
            f.getWOut().getType(), gate ? gate.getType() : Type(),
            f.getInput(), f.getWIn(), f.getWOut(), gate,
            adjoint(f.getResult()), f.getActivationAttr());
        accumulate(f.getInput(), grad.getInputGrad());
        accumulate(f.getWIn(), grad.getWInGrad());
        accumulate(f.getWOut(), grad.getWOutGrad());
        if (gate)
          accumulate(gate, grad.getWGateGrad());
        return success();
      })
      .Case([&](LayerNormOp n) {
        auto grad = LayerNormGradOp::create(
            b, loc, n.getInput().getType(), n.getWeight().getType(),
            n.getBias().getType(), n.getInput(), n.getWeight(),
            adjoint(n.getResult()), n.getEpsilonAttr());
        accumulate(n.getInput(), grad.getInputGrad());
        accumulate(n.getWeight(), grad.getWeightGrad());
        accumulate(n.getBias(), grad.getBiasGrad());
        return success();
      })
      .Case([&](RMSNormOp n) {
        auto grad = RMSNormGradOp::create(
            b, loc, n.getInput().getType(), n.getWeight().getType(),
            n.getInput(), n.getWeight(), adjoint(n.getResult()),
            n.getEpsilonAttr());
        accumulate(n.getInput(), grad.getInputGrad());
        accumulate(n.getWeight(), grad.getWeightGrad());
        return success();
      })
      .Case([&](arith::AddFOp add) {
        Value grad = adjoint(add.getResult());
        accumulate(add.getLhs(), grad);
        accumulate(add.getRhs(), grad);
        return success();
      })
      .Case([&](tensor::ExpandShapeOp expand) {
        accumulate(expand.getSrc(),
                   tensor::CollapseShapeOp::create(
                       b, loc, expand.getSrcType(), adjoint(expand.getResult()),
                       expand.getReassociationIndices()));
        return success();
      })
      .Case([&](tensor::CollapseShapeOp collapse) {
        accumulate(collapse.getSrc(),
                   tensor::ExpandShapeOp::create(
                       b, loc, collapse.getSrcType(),
                       adjoint(collapse.getResult()),
                       collapse.getReassociationIndices()));
        return success();
      })
      .Case([&](linalg::TransposeOp transpose) {
        // The init is overwritten: only the input has a gradient.
        Value input = transpose.getInput();
        auto inputType = cast<RankedTensorType>(input.getType());
        Value init = tensor::EmptyOp::create(b, loc, inputType.getShape(),
                                             inputType.getElementType());
        Value grad =
            linalg::TransposeOp::create(
                b, loc, adjoint(transpose.getResult().front()), init,
                invertPermutation(transpose.getPermutation()))
                .getResult()
                .front();
        accumulate(input, grad);
        return success();
      })
      .Case([&](tensor::ExtractSliceOp slice) {
        accumulateSlice(slice, adjoint(slice.getResult()));
        return success();
      })
      .Case([&](tensor::ConcatOp concat) {
        // Each input's gradient is its part of the result's.
        Value grad = adjoint(concat.getResult());
        int64_t dim = concat.getDim(), offset = 0;
        for (Value input : concat.getInputs()) {
          int64_t size = dimOf(input, dim);
          accumulate(input, sliceAlong(b, loc, grad, dim, offset, size));
          offset += size;
        }
        return success();
      })
      .Default([&](Operation *other) {
        return other->emitError()
               << kPassName << ": no gradient for '" << other->getName() << "'";
      });
}

/// `@f_train`: the forward with every attention's log-sum-exp returned after
/// the results, in program order.
func::FuncOp buildTrainFunction(func::FuncOp forward, StringRef name) {
  auto train = cast<func::FuncOp>(forward->clone());
  train.setSymName(name);
  SmallVector<Value> lses;
  for (auto attention : llvm::to_vector(train.getOps<AttentionOp>())) {
    if (!attention.getLse()) {
      OpBuilder b(attention);
      auto withLse = AttentionOp::create(
          b, attention.getLoc(), attention.getResult().getType(),
          RankedTensorType::get(
              attention.getQuery().getType().getShape().drop_back(),
              b.getF32Type()),
          attention.getQuery(), attention.getKey(), attention.getValue(),
          attention.getCausalAttr(), attention.getScaleAttr());
      withLse->setDiscardableAttrs(attention->getDiscardableAttrDictionary());
      attention.getResult().replaceAllUsesWith(withLse.getResult());
      attention.erase();
      attention = withLse;
    }
    lses.push_back(attention.getLse());
  }
  auto ret = cast<func::ReturnOp>(train.getBody().front().getTerminator());
  ret.getOperandsMutable().append(lses);
  train.setFunctionType(FunctionType::get(train.getContext(),
                                          train.getArgumentTypes(),
                                          ret.getOperandTypes()));
  return train;
}

/// Moves each of `ops` (in program order) to just before its first user,
/// last op first, so that values are made where they are needed: a query
/// chunk's recomputed forward then sits before that chunk's gradients, not
/// all chunks' before any (which would keep them all alive at once). The
/// gradients stay in the sweep's order, chunk by chunk.
void sinkToFirstUse(ArrayRef<Operation *> ops) {
  for (Operation *op : llvm::reverse(ops)) {
    if (!isMemoryEffectFree(op))
      continue;
    Block *block = op->getBlock();
    Operation *first = nullptr;
    for (Operation *user : op->getUsers()) {
      Operation *inBlock = block->findAncestorOpInBlock(*user);
      if (inBlock && (!first || inBlock->isBeforeInBlock(first)))
        first = inBlock;
    }
    if (first && first != op->getNextNode())
      op->moveBefore(first);
  }
}

/// `@f_grad(args..., lse..., result_grads...) -> (arg_grads...)`: recompute
/// the forward, then the reverse sweep. `func` is the user's function,
/// `forward` its decomposed copy; with `queryChunk` > 0 the recomputation
/// expands each block longer than that by query chunks instead.
FailureOr<func::FuncOp> buildGradFunction(func::FuncOp func,
                                          func::FuncOp forward, StringRef name,
                                          int64_t queryChunk) {
  FailureOr<llvm::DenseSet<Value>> forwardActive =
      findActiveValues(forward, func.getSymName());
  if (failed(forwardActive))
    return failure();

  MLIRContext *ctx = forward.getContext();
  SmallVector<AttentionOp> attentions =
      llvm::to_vector(forward.getOps<AttentionOp>());
  SmallVector<Type> inputs(forward.getArgumentTypes());
  for (AttentionOp a : attentions)
    inputs.push_back(RankedTensorType::get(
        a.getQuery().getType().getShape().drop_back(), Float32Type::get(ctx)));
  llvm::append_range(inputs, forward.getResultTypes());
  auto grad = func::FuncOp::create(
      forward.getLoc(), name,
      FunctionType::get(ctx, inputs, forward.getArgumentTypes()));
  Block *body = grad.addEntryBlock();
  OpBuilder b = OpBuilder::atBlockEnd(body);
  unsigned numArgs = forward.getNumArguments();
  auto savedLseArg = [&](unsigned i) { return body->getArgument(numArgs + i); };

  // Recompute the forward; the active values follow the clones.
  IRMapping map;
  for (unsigned i = 0; i < numArgs; ++i)
    map.map(forward.getArgument(i), body->getArgument(i));
  llvm::DenseSet<Value> active(body->args_begin(),
                               body->args_begin() + numArgs);
  SmallVector<Operation *> recomputed;
  llvm::DenseMap<Operation *, Value> savedLse;
  bool chunked = queryChunk > 0;
  if (!chunked) {
    for (Operation &op : forward.getBody().front().without_terminator()) {
      Operation *clone = b.clone(op, map);
      recomputed.push_back(clone);
      for (auto [from, to] : llvm::zip(op.getResults(), clone->getResults()))
        if (forwardActive->contains(from))
          active.insert(to);
    }
    for (auto [i, a] : llvm::enumerate(attentions))
      savedLse[map.lookup(a.getResult()).getDefiningOp()] = savedLseArg(i);
  } else {
    // The user's ops, each block expanded in place by query chunks; the
    // attentions come in the training forward's order, a block's chunks
    // sharing its log-sum-exp by rows.
    IRMapping userMap;
    for (unsigned i = 0; i < numArgs; ++i)
      userMap.map(func.getArgument(i), body->getArgument(i));
    // The user's return is cloned too, so that it follows the blocks'
    // replacements; it goes once the results are known.
    for (Operation &op : func.getBody().front())
      b.clone(op, userMap);
    IRRewriter rewriter(ctx);
    unsigned next = 0;
    for (Operation &op : llvm::make_early_inc_range(*body)) {
      if (auto a = dyn_cast<AttentionOp>(&op)) {
        savedLse[a] = savedLseArg(next++);
        continue;
      }
      auto block = dyn_cast<TransformerBlockOp>(&op);
      if (!block)
        continue;
      Value lse = savedLseArg(next++);
      int64_t seq = block.getInput().getType().getDimSize(1);
      int64_t chunks = llvm::divideCeil(seq, queryChunk);
      if (chunks > kMaxQueryChunks) {
        block.emitError() << kPassName << ": query-chunk=" << queryChunk
                          << " cuts a block's " << seq << " rows into "
                          << chunks << " chunks; at most " << kMaxQueryChunks
                          << " are unrolled (use at least "
                          << llvm::divideCeil(seq, kMaxQueryChunks) << " rows)";
        grad.erase();
        return failure();
      }
      for (auto [a, first] : decomposeTransformerBlockInQueryChunks(
               rewriter, block, std::min(queryChunk, seq))) {
        int64_t count = a.getQuery().getType().getDimSize(2);
        Value rows = lse;
        if (count != seq) {
          b.setInsertionPoint(a);
          rows = sliceAlong(b, a.getLoc(), lse, 2, first, count);
        }
        savedLse[a] = rows;
      }
    }
    b.setInsertionPointToEnd(body);
    assert(next == attentions.size() && "one log-sum-exp per attention");
    auto clonedRet = cast<func::ReturnOp>(body->getTerminator());
    auto forwardRet =
        cast<func::ReturnOp>(forward.getBody().front().getTerminator());
    for (auto [decomposed, result] :
         llvm::zip_equal(forwardRet.getOperands(), clonedRet.getOperands()))
      map.map(decomposed, result);
    clonedRet.erase();
    for (Operation &op : *body) {
      recomputed.push_back(&op);
      if (llvm::any_of(op.getOperands(),
                       [&](Value v) { return active.contains(v); }))
        active.insert(op.getResults().begin(), op.getResults().end());
    }
  }

  // Seed the results' gradients, then sweep backwards.
  ReverseSweep sweep(b, active, /*sumInF32=*/chunked);
  auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
  unsigned firstResultGrad = numArgs + attentions.size();
  for (auto [i, result] : llvm::enumerate(ret.getOperands()))
    sweep.accumulate(map.lookupOrDefault(result),
                     body->getArgument(firstResultGrad + i));
  for (Operation *op : llvm::reverse(recomputed)) {
    if (llvm::none_of(op->getResults(),
                      [&](Value v) { return sweep.hasAdjoint(v); }) ||
        llvm::none_of(op->getOperands(),
                      [&](Value v) { return active.contains(v); }))
      continue;
    if (failed(sweep.differentiate(op, savedLse.lookup(op)))) {
      grad.erase();
      return failure();
    }
  }

  // The recomputation that no gradient reads (e.g. the last residual, the
  // FFN's output: ffn_grad recomputes what it needs) goes.
  SmallVector<Operation *> kept;
  for (Operation *op : llvm::reverse(recomputed)) {
    if (op->use_empty() && isMemoryEffectFree(op))
      op->erase();
    else
      kept.push_back(op);
  }
  if (chunked)
    sinkToFirstUse(llvm::to_vector(llvm::reverse(kept)));

  SmallVector<Value> argGrads;
  for (unsigned i = 0; i < numArgs; ++i) {
    Value g = sweep.adjoint(body->getArgument(i));
    auto type = cast<RankedTensorType>(forward.getArgument(i).getType());
    argGrads.push_back(g ? g
                         : filledTensor(b, forward.getLoc(), type.getShape(),
                                        type.getElementType(), 0.0));
  }
  func::ReturnOp::create(b, forward.getLoc(), argGrads);
  return grad;
}

struct BPTBuildBackwardPass final
    : bpt::impl::BPTBuildBackwardBase<BPTBuildBackwardPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (queryChunk < 0) {
      module.emitError() << kPassName
                         << ": query-chunk must be 0 (whole sequences) or a "
                            "number of rows, got "
                         << static_cast<int64_t>(queryChunk);
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> chosen;
    if (functions.empty()) {
      for (auto func : module.getOps<func::FuncOp>())
        if (func.isPublic() && !func.isExternal())
          chosen.push_back(func);
    } else {
      for (const std::string &name : functions) {
        auto func = module.lookupSymbol<func::FuncOp>(name);
        if (!func || func.isExternal()) {
          module.emitError() << kPassName << ": no function named '" << name
                             << "' with a body";
          return signalPassFailure();
        }
        chosen.push_back(func);
      }
    }

    // Build everything detached; the module changes only if all succeed.
    SmallVector<std::pair<func::FuncOp, func::FuncOp>> built; // (after, new)
    auto discard = [&] {
      for (auto &[after, created] : built)
        created.erase();
    };
    for (func::FuncOp func : chosen) {
      std::string trainName = (func.getSymName() + "_train").str();
      std::string gradName = (func.getSymName() + "_grad").str();
      for (StringRef name : {StringRef(trainName), StringRef(gradName)})
        if (module.lookupSymbol(name)) {
          func.emitError() << kPassName << ": cannot add '" << name
                           << "': the module already has a symbol of that "
                              "name";
          discard();
          return signalPassFailure();
        }
      func::FuncOp forward = decomposedCopy(func, trainName);
      FailureOr<func::FuncOp> grad =
          buildGradFunction(func, forward, gradName, queryChunk);
      if (failed(grad)) {
        forward.erase();
        discard();
        return signalPassFailure();
      }
      built.push_back({func, buildTrainFunction(forward, trainName)});
      built.push_back({func, *grad});
      forward.erase();
    }
    for (auto &[after, created] : llvm::reverse(built))
      module.getBody()->getOperations().insertAfter(after->getIterator(),
                                                    created);
  }
};

} // namespace
