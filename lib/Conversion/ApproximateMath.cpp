//===- ApproximateMath.cpp - erf/tanh/exp without libdevice -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

namespace bpt {
#define GEN_PASS_DEF_BPTAPPROXIMATEMATH
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

/// f32 erf as Abramowitz and Stegun's 7.1.26 (Handbook of Mathematical
/// Functions, 1964): erf(|x|) = 1 − t·P(t)·exp(−x²), t = 1 / (1 + p·|x|),
/// P of degree 4, absolute error at most 1.5e-7 (5e-7 with f32 rounding;
/// far below the 16-bit outputs' rounding). About 15 instructions: one
/// approximate division (1 + p·|x| ≥ 1), one ex2, fused multiply-adds. The
/// rational approximation it replaces selected coefficients for three
/// intervals (21 selects) and divided with IEEE rounding: most of a GELU
/// GEMM epilogue's time.
struct ErfAbramowitzStegun final : OpRewritePattern<math::ErfOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::ErfOp op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!type.isF32())
      return rewriter.notifyMatchFailure(op, "f32 only");
    Location loc = op.getLoc();
    auto c = [&](double v) -> Value {
      return arith::ConstantOp::create(rewriter, loc,
                                       rewriter.getF32FloatAttr(v));
    };
    auto fma = [&](Value a, Value b, Value acc) -> Value {
      return math::FmaOp::create(rewriter, loc, a, b, acc);
    };
    Value x = op.getOperand();
    Value ax = math::AbsFOp::create(rewriter, loc, x);
    auto fast = arith::FastMathFlagsAttr::get(rewriter.getContext(),
                                              arith::FastMathFlags::afn);
    Value t = arith::DivFOp::create(rewriter, loc, c(1.0),
                                    fma(c(0.3275911), ax, c(1.0)), fast);
    Value poly = c(1.061405429);
    for (double a : {-1.453152027, 1.421413741, -0.284496736, 0.254829592})
      poly = fma(poly, t, c(a));
    poly = arith::MulFOp::create(rewriter, loc, poly, t);
    // exp(−x²) as 2^(−x²·log2 e): ex2 without exp's range reduction.
    Value gauss = math::Exp2Op::create(
        rewriter, loc,
        arith::MulFOp::create(rewriter, loc,
                              arith::MulFOp::create(rewriter, loc, ax, ax),
                              c(-M_LOG2E)));
    Value y = fma(arith::NegFOp::create(rewriter, loc, poly), gauss, c(1.0));
    rewriter.replaceOpWithNewOp<math::CopySignOp>(op, y, x);
    return success();
  }
};

/// f32 exp(x) as 2^(x·log2 e): ex2.approx (CUDA documents exp2f, which is
/// that instruction, at 2 ulp) of one rounded product, whose error
/// |x|·log2 e·2^-24 in the exponent is about 1.2·|x| ulp in the result: 2 +
/// 1.2·|x| ulp where libdevice's expf (a range reduction of about eight
/// instructions) has 2. Where |x| is large the result does not matter at
/// that precision: P = exp(scale·s − lse) in the portable attention
/// backward has x ≤ ~0, so a large |x| means P ≈ 0; silu's x/(1 + e^−x)
/// with x ≪ 0 is a tiny output whatever e^−x's last bits, with x ≫ 0 adds
/// a tiny e^−x to 1. Far below the GPU tests' tolerances (f32 1e-5, 16-bit
/// 1e-2, relative to the output's norm); the tensor-core kernels' softmax
/// is an ex2 of pre-scaled scores already.
struct ExpAsExp2 final : OpRewritePattern<math::ExpOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(math::ExpOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getType().isF32())
      return rewriter.notifyMatchFailure(op, "f32 only");
    Location loc = op.getLoc();
    Value log2e = arith::ConstantOp::create(rewriter, loc,
                                            rewriter.getF32FloatAttr(M_LOG2E));
    Value scaled =
        arith::MulFOp::create(rewriter, loc, op.getOperand(), log2e);
    rewriter.replaceOpWithNewOp<math::Exp2Op>(op, scaled);
    return success();
  }
};

struct BPTApproximateMathPass final
    : bpt::impl::BPTApproximateMathBase<BPTApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    // Ahead of the upstream pattern for f32; other widths take that.
    patterns.add<ErfAbramowitzStegun>(&getContext(), /*benefit=*/2);
    patterns.add<ExpAsExp2>(&getContext());
    populatePolynomialApproximateErfPattern(patterns);
    populatePolynomialApproximateTanhPattern(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
