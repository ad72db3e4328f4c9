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

bool isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

/// Ops whose gradient the pass knows (given that one of their operands
/// depends on an argument).
bool hasGradientRule(Operation *op) {
  return isa<AttentionOp, LinearOp, FFNOp, LayerNormOp, RMSNormOp,
             arith::AddFOp, tensor::ExpandShapeOp, tensor::CollapseShapeOp,
             linalg::TransposeOp>(op);
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

/// The reverse sweep over a recomputed forward: gradients ("adjoints") of
/// the values, summed over their uses.
class ReverseSweep {
public:
  ReverseSweep(OpBuilder &builder, const llvm::DenseSet<Value> &active)
      : b(builder), active(active) {}

  /// Adds `grad` to the gradient of `value` (nothing if `value` does not
  /// depend on an argument).
  void accumulate(Value value, Value grad) {
    if (!active.contains(value))
      return;
    auto [it, inserted] = adjoints.try_emplace(value, grad);
    if (!inserted)
      it->second =
          arith::AddFOp::create(b, grad.getLoc(), it->second, grad).getResult();
  }

  Value adjoint(Value value) const { return adjoints.lookup(value); }

  /// Emits the grad op of one forward op whose results have adjoints;
  /// `savedLse` is the training forward's log-sum-exp of an attention.
  LogicalResult differentiate(Operation *op, Value savedLse);

private:
  OpBuilder &b;
  const llvm::DenseSet<Value> &active;
  llvm::DenseMap<Value, Value> adjoints;
};

LogicalResult ReverseSweep::differentiate(Operation *op, Value savedLse) {
  Location loc = op->getLoc();
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](AttentionOp a) -> LogicalResult {
        if (Value lse = a.getLse(); lse && adjoint(lse))
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
      .Default([&](Operation *other) {
        return other->emitError()
               << kPassName << ": no gradient for '" << other->getName() << "'";
      });
}

/// A zero tensor of `type`.
Value buildZeros(OpBuilder &b, Location loc, RankedTensorType type) {
  Value zero = arith::ConstantOp::create(
      b, loc, b.getFloatAttr(type.getElementType(), 0.0));
  Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                       type.getElementType());
  return linalg::FillOp::create(b, loc, zero, init).getResult(0);
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

/// `@f_grad(args..., lse..., result_grads...) -> (arg_grads...)`: recompute
/// the forward, then the reverse sweep.
FailureOr<func::FuncOp> buildGradFunction(func::FuncOp forward,
                                          StringRef userName, StringRef name) {
  FailureOr<llvm::DenseSet<Value>> forwardActive =
      findActiveValues(forward, userName);
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

  // Recompute the forward; the active values follow the clones.
  IRMapping map;
  for (unsigned i = 0; i < numArgs; ++i)
    map.map(forward.getArgument(i), body->getArgument(i));
  llvm::DenseSet<Value> active(body->args_begin(),
                               body->args_begin() + numArgs);
  SmallVector<Operation *> recomputed;
  llvm::DenseMap<Operation *, Value> savedLse;
  for (Operation &op : forward.getBody().front().without_terminator()) {
    Operation *clone = b.clone(op, map);
    recomputed.push_back(clone);
    for (auto [from, to] : llvm::zip(op.getResults(), clone->getResults()))
      if (forwardActive->contains(from))
        active.insert(to);
  }
  for (auto [i, a] : llvm::enumerate(attentions))
    savedLse[map.lookup(a.getResult()).getDefiningOp()] =
        body->getArgument(numArgs + i);

  // Seed the results' gradients, then sweep backwards.
  ReverseSweep sweep(b, active);
  auto ret = cast<func::ReturnOp>(forward.getBody().front().getTerminator());
  unsigned firstResultGrad = numArgs + attentions.size();
  for (auto [i, result] : llvm::enumerate(ret.getOperands()))
    sweep.accumulate(map.lookupOrDefault(result),
                     body->getArgument(firstResultGrad + i));
  for (Operation *op : llvm::reverse(recomputed)) {
    if (llvm::none_of(op->getResults(),
                      [&](Value v) { return sweep.adjoint(v); }) ||
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
  for (Operation *op : llvm::reverse(recomputed))
    if (op->use_empty() && isMemoryEffectFree(op))
      op->erase();

  SmallVector<Value> argGrads;
  for (unsigned i = 0; i < numArgs; ++i) {
    Value g = sweep.adjoint(body->getArgument(i));
    argGrads.push_back(
        g ? g
          : buildZeros(b, forward.getLoc(),
                       cast<RankedTensorType>(forward.getArgument(i).getType())));
  }
  func::ReturnOp::create(b, forward.getLoc(), argGrads);
  return grad;
}

struct BPTBuildBackwardPass final
    : bpt::impl::BPTBuildBackwardBase<BPTBuildBackwardPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
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
      FailureOr<func::FuncOp> grad = buildGradFunction(forward, func.getSymName(), gradName);
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
