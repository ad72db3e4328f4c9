//===- ExpandGradients.cpp - gradient ops as tensor-core GEMMs --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// A tensor-core bpt.linear_grad or bpt.ffn_grad (and a portable ffn_grad
// whose strategy gives chunk rows) becomes bpt.matmul ops with
// transposed operands (dx = dy·wᵀ, dw = xᵀ·dy), which the GEMM kernels read
// in place, plus elementwise linalg. The FFN's gradient runs over chunks of
// rows so that its [rows, ffn] intermediates exist one chunk at a time, the
// weight gradients summed across chunks in f32 accumulators. On the wgmma
// path a two-matrix FFN's du and hidden activation come from the dh GEMM's
// activation-gradient epilogue (bpt.matmul act_grad), so neither the f32
// dh nor an elementwise pass over it is written. The chunks are unrolled:
// the manifest is a straight list of launches, as for the forward FFN's
// chunk loop.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "bpt/Dialect/BPTOps.h"
#include "bpt/Utils/Builders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace bpt {
#define GEN_PASS_DEF_BPTEXPANDGRADIENTS
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;

namespace {

/// The gradient ops expanded here: those bound for tensor cores, and an FFN
/// gradient the tensor cores refused (mma.sync has no GEMM with transposed
/// operands yet; wgmma takes 16-bit operands and whole 128-column tiles)
/// whose portable strategy still gives chunk rows: its [rows, ffn]
/// intermediates then exist one chunk at a time.
bool isExpanded(Operation *op) {
  StrategyAttr strategy = StrategyAttr::get(op);
  if (!strategy || StrategyAttr::getEnclosing(op))
    return false;
  KernelPath path = strategy.getPath();
  if (path == KernelPath::wgmma || path == KernelPath::mma_sync)
    return true;
  return isa<FFNGradOp>(op) && path == KernelPath::portable &&
         strategy.getChunkRows() > 0;
}

/// `op(lhs) · op(rhs)` (+ `acc`), of `resultElement` ([M, N]).
Value matmul(OpBuilder &b, Location loc, Value lhs, Value rhs, Value acc,
             bool transposeLhs, bool transposeRhs, Type resultElement) {
  int64_t m = dimOf(lhs, transposeLhs ? 1 : 0);
  int64_t n = dimOf(rhs, transposeRhs ? 0 : 1);
  auto type = RankedTensorType::get({m, n}, resultElement);
  auto op = MatmulOp::create(b, loc, type, lhs, rhs, acc);
  if (transposeLhs)
    op.setTransposeLhs(true);
  if (transposeRhs)
    op.setTransposeRhs(true);
  return op.getResult();
}

/// `op(lhs) · op(rhs)` ⊙ act'(`pre`) and act(`pre`), both of
/// `resultElement`: bpt.matmul's activation-gradient epilogue.
std::pair<Value, Value> matmulActivationGradient(OpBuilder &b, Location loc,
                                                 Value lhs, Value rhs,
                                                 bool transposeRhs,
                                                 Activation act, Value pre,
                                                 Type resultElement) {
  auto type =
      RankedTensorType::get({dimOf(pre, 0), dimOf(pre, 1)}, resultElement);
  auto op = MatmulOp::create(b, loc, type, type, lhs, rhs, Value(), pre,
                             /*transpose_lhs=*/false, transposeRhs,
                             ActivationAttr::get(b.getContext(), act));
  return {op.getResult(), op.getAct()};
}

/// `v` in `like`'s shape (a [rows, N] matrix of its element type).
Value reshapedLike(OpBuilder &b, Location loc, Value v, Value like) {
  auto type = cast<RankedTensorType>(like.getType());
  return type.getRank() == 2 ? v : fromMatrix(b, loc, v, type);
}

/// Where a weight gradient is summed in f32 after the op (bpt-build-backward
/// with query-chunk writes `s + extf(dw)` per chunk), the GEMM makes the f32
/// sum itself, preloading `s`: no rounded per-chunk gradient, no
/// elementwise pass. `add` and `acc` are null where there is no earlier sum
/// to preload; all are null where the gradient is not summed in f32.
struct F32Sum {
  arith::ExtFOp ext;
  arith::AddFOp add;
  Value acc;
};

F32Sum findF32Sum(Value dw, Operation *op) {
  if (!dw || !dw.hasOneUse())
    return {};
  auto ext = dyn_cast<arith::ExtFOp>(*dw.getUsers().begin());
  if (!ext || !getElementTypeOrSelf(ext.getType()).isF32())
    return {};
  F32Sum sum{ext, {}, {}};
  if (!ext->hasOneUse())
    return sum;
  auto add = dyn_cast<arith::AddFOp>(*ext->getUsers().begin());
  if (!add || add.getLhs() == add.getRhs())
    return sum;
  Value other = add.getLhs() == ext.getResult() ? add.getRhs() : add.getLhs();
  // The sum so far must exist before the op that preloads it.
  Operation *def = other.getDefiningOp();
  bool before =
      def ? def->getBlock() == op->getBlock() && def->isBeforeInBlock(op)
          : other.getParentBlock() == op->getBlock();
  if (!before)
    return sum;
  return {ext, add, other};
}

/// Replaces the f32 sum (the addf, else the extf) or, without one, `dw`
/// with the GEMM's `result`.
void replaceWeightGradient(Value dw, F32Sum sum, Value result) {
  if (!sum.ext) {
    dw.replaceAllUsesWith(result);
    return;
  }
  if (sum.add) {
    sum.add.getResult().replaceAllUsesWith(result);
    sum.add.erase();
  } else {
    sum.ext.getResult().replaceAllUsesWith(result);
  }
  sum.ext.erase();
}

void expand(LinearGradOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  Type element = op.getInput().getType().getElementType();
  Value x = asMatrix(b, loc, op.getInput());
  Value dy = asMatrix(b, loc, op.getResultGrad());
  Value dx = matmul(b, loc, dy, op.getWeight(), Value(), false, true, element);
  F32Sum sum = findF32Sum(op.getWeightGrad(), op);
  Value dw = matmul(b, loc, x, dy, sum.acc, true, false,
                    sum.ext ? b.getF32Type() : element);
  op.getInputGrad().replaceAllUsesWith(reshapedLike(b, loc, dx, op.getInput()));
  replaceWeightGradient(op.getWeightGrad(), sum, dw);
  if (Value db = op.getBiasGrad())
    db.replaceAllUsesWith(roundTo(b, loc, columnSums(b, loc, dy), element));
  op.erase();
}

/// The hidden activation h and du (and dg for a gated FFN) of one chunk,
/// in `element`, from u, dh (and g) in f32: the formulas of bpt.ffn_grad.
SmallVector<Value> hiddenGradients(OpBuilder &b, Location loc, Activation act,
                                   Value up, Value dHidden, Value gate,
                                   Type element) {
  int64_t rows = dimOf(up, 0), width = dimOf(up, 1);
  AffineMap id = AffineMap::getMultiDimIdentityMap(2, b.getContext());
  SmallVector<Value> inputs = {up, dHidden};
  if (gate)
    inputs.push_back(gate);
  SmallVector<Value> inits;
  for (int i = 0, e = gate ? 3 : 2; i < e; ++i)
    inits.push_back(tensor::EmptyOp::create(b, loc, {rows, width}, element));
  SmallVector<AffineMap> maps(inputs.size() + inits.size(), id);
  return buildGeneric(
      b, loc, inputs, inits, maps, 2, {},
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Value u = args[0], dh = args[1];
        SmallVector<Value> out;
        if (!gate) {
          auto [du, h] = buildActivationGradient(nb, nl, act, dh, u);
          out = {h, du};
        } else {
          Value g = args[2];
          Value actG = buildActivation(nb, nl, act, g);
          Value dhU = arith::MulFOp::create(nb, nl, dh, u);
          out = {arith::MulFOp::create(nb, nl, actG, u),
                 arith::MulFOp::create(nb, nl, dh, actG),
                 arith::MulFOp::create(
                     nb, nl, dhU, buildActivationDerivative(nb, nl, act, g))};
        }
        for (Value &v : out)
          v = convertFloat(nb, nl, v, element);
        return out;
      });
}

/// Whether the hidden layer's gradient goes into the dh GEMM's epilogue
/// (`bpt.matmul ... act_grad`): only the wgmma GEMM has that epilogue, and
/// only one pre-activation per element (not gated).
bool activationGradientInEpilogue(FFNGradOp op) {
  return !op.getWGate() && StrategyAttr::get(op).getPath() == KernelPath::wgmma;
}

void expand(FFNGradOp op, int64_t chunkRows) {
  OpBuilder b(op);
  bool inEpilogue = activationGradientInEpilogue(op);
  Location loc = op.getLoc();
  Activation act = op.getActivation();
  Type element = op.getInput().getType().getElementType();
  Type f32 = b.getF32Type();
  Value x = asMatrix(b, loc, op.getInput());
  Value dy = asMatrix(b, loc, op.getResultGrad());
  Value wIn = op.getWIn(), wOut = op.getWOut(), wGate = op.getWGate();
  int64_t rows = dimOf(x, 0), hidden = dimOf(x, 1);

  Value dx = tensor::EmptyOp::create(b, loc, {rows, hidden}, element);
  // f32 sums of the weight gradients over the chunks so far (from an
  // earlier sum where one is preloaded); the last chunk's products round
  // them to the weights' type unless the sum goes on in f32.
  F32Sum inSum = findF32Sum(op.getWInGrad(), op);
  F32Sum outSum = findF32Sum(op.getWOutGrad(), op);
  F32Sum gateSum = findF32Sum(op.getWGateGrad(), op);
  Value dwIn = inSum.acc, dwOut = outSum.acc, dwGate = gateSum.acc;
  for (int64_t first = 0; first < rows; first += chunkRows) {
    int64_t count = std::min(chunkRows, rows - first);
    bool last = first + count == rows;
    auto sumType = [&](const F32Sum &sum) -> Type {
      return last && !sum.ext ? element : f32;
    };
    Value xc = sliceAlong(b, loc, x, 0, first, count);
    Value dyc = sliceAlong(b, loc, dy, 0, first, count);
    Value up = matmul(b, loc, xc, wIn, Value(), false, false, f32);
    Value gate = wGate ? matmul(b, loc, xc, wGate, Value(), false, false, f32)
                       : Value();
    // h[0] is the hidden activation, h[1] du (h[2] dg when gated).
    SmallVector<Value> h;
    if (inEpilogue) {
      auto [du, hidden] =
          matmulActivationGradient(b, loc, dyc, wOut, true, act, up, element);
      h = {hidden, du};
    } else {
      Value dHidden = matmul(b, loc, dyc, wOut, Value(), false, true, f32);
      h = hiddenGradients(b, loc, act, up, dHidden, gate, element);
    }
    dwOut = matmul(b, loc, h[0], dyc, dwOut, true, false, sumType(outSum));
    dwIn = matmul(b, loc, xc, h[1], dwIn, true, false, sumType(inSum));
    Value dxc;
    if (wGate) {
      dwGate = matmul(b, loc, xc, h[2], dwGate, true, false, sumType(gateSum));
      Value fromUp = matmul(b, loc, h[1], wIn, Value(), false, true, f32);
      dxc = matmul(b, loc, h[2], wGate, fromUp, false, true, element);
    } else {
      dxc = matmul(b, loc, h[1], wIn, Value(), false, true, element);
    }
    dx = insertRows(b, loc, dxc, dx, first);
  }
  op.getInputGrad().replaceAllUsesWith(reshapedLike(b, loc, dx, op.getInput()));
  replaceWeightGradient(op.getWInGrad(), inSum, dwIn);
  replaceWeightGradient(op.getWOutGrad(), outSum, dwOut);
  if (Value g = op.getWGateGrad())
    replaceWeightGradient(g, gateSum, dwGate);
  op.erase();
}

struct BPTExpandGradientsPass final
    : bpt::impl::BPTExpandGradientsBase<BPTExpandGradientsPass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<LinearGradOp, FFNGradOp>(op) && isExpanded(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      if (auto linear = dyn_cast<LinearGradOp>(op)) {
        expand(linear);
        continue;
      }
      auto ffn = cast<FFNGradOp>(op);
      int64_t chunk = StrategyAttr::get(op).getChunkRows();
      if (chunk <= 0) {
        op->emitError() << "bpt-expand-gradients: a tensor-core ffn_grad "
                           "needs the strategy's chunk_rows, got "
                        << chunk;
        return signalPassFailure();
      }
      expand(ffn, chunk);
    }
  }
};

} // namespace
