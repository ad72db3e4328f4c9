//===- MathToIntrinsics.cpp - f32 math as NVPTX's intrinsics ----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "mlir/Conversion/ArithCommon/AttrToLLVMConverter.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace bpt {
#define GEN_PASS_DEF_BPTMATHTOINTRINSICS
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;

namespace {

/// An f32 `OpTy` as a call of `intrinsic`, which NVPTX selects to one
/// instruction (or of `approximate`, where given, when the op allows an
/// approximate function: fast-math `afn`); the op's fast-math flags go to
/// the call.
template <typename OpTy>
struct MathToIntrinsic final : OpRewritePattern<OpTy> {
  MathToIntrinsic(MLIRContext *context, StringRef intrinsic,
                  StringRef approximate = "")
      : OpRewritePattern<OpTy>(context), intrinsic(intrinsic),
        approximate(approximate) {}

  LogicalResult matchAndRewrite(OpTy op,
                                PatternRewriter &rewriter) const override {
    Type type = op.getType();
    if (!type.isF32())
      return rewriter.notifyMatchFailure(op, "f32 only");
    bool afn =
        arith::bitEnumContainsAll(op.getFastmath(), arith::FastMathFlags::afn);
    auto call = LLVM::CallIntrinsicOp::create(
        rewriter, op.getLoc(), TypeRange{type},
        rewriter.getStringAttr(afn && !approximate.empty() ? approximate
                                                           : intrinsic),
        op->getOperands(),
        arith::convertArithFastMathAttrToLLVM(op.getFastmathAttr()));
    rewriter.replaceOp(op, call.getResults());
    return success();
  }

  StringRef intrinsic, approximate;
};

/// Each op as the intrinsic that its libdevice function calls without
/// flush-to-zero (libdevice.10.bc; MLIR links it with __CUDA_FTZ and
/// __CUDA_PREC_SQRT at 0), so the PTX is what linking libdevice gave:
/// - fma, fabs, copysign, maxnum, minnum are exact: the generic
///   intrinsics (LLVM's NVPTX instcombine turns libdevice's
///   llvm.nvvm.fma.rn.f, fmax.f, fmin.f into them; its llvm.nvvm.fabs.f32
///   and llvm.copysign.f32 give abs.f32 and copysign.f32 as these do);
/// - sqrt is sqrt.approx.f32, as __nv_sqrtf without __CUDA_PREC_SQRT (the
///   norms' 1/√(variance + ε) becomes one rsqrt.approx.f32, as before);
/// - exp2 is ex2.approx.f32, which __nv_exp2f is (2 ulp in CUDA's tables;
///   the tensor-core kernels' softmax uses its .ftz form); with `afn`,
///   ex2.approx.ftz.f32: a result below 2^-126 is 0, not subnormal, which
///   saves the non-ftz form's range fix-up around the MUFU operation (about
///   three instructions). The GEMM epilogues' activations ask for it: their
///   results round to 16 bits or to TF32's precision, where such a value
///   is far below the rounding;
/// - log2 is lg2.approx.f32 (error about 2^-22), where __nv_log2f is a
///   longer, accurate sequence: it only takes the log-sum-exp's log2 of
///   the softmax denominator (≥ 1), as the tensor-core kernels' lse does.
///   An absolute error of 2^-22 in lse is a relative one of 2^-22·ln 2 in
///   each P recomputed from it, far below the GPU tests' 1e-5 (f32).
void populateMathToIntrinsicsPatterns(RewritePatternSet &patterns) {
  MLIRContext *context = patterns.getContext();
  patterns.add<MathToIntrinsic<math::FmaOp>>(context, "llvm.fma.f32");
  patterns.add<MathToIntrinsic<math::AbsFOp>>(context, "llvm.fabs.f32");
  patterns.add<MathToIntrinsic<math::CopySignOp>>(context,
                                                   "llvm.copysign.f32");
  patterns.add<MathToIntrinsic<arith::MaxNumFOp>>(context, "llvm.maxnum.f32");
  patterns.add<MathToIntrinsic<arith::MinNumFOp>>(context, "llvm.minnum.f32");
  patterns.add<MathToIntrinsic<math::SqrtOp>>(context,
                                               "llvm.nvvm.sqrt.approx.f");
  patterns.add<MathToIntrinsic<math::Exp2Op>>(
      context, "llvm.nvvm.ex2.approx.f32", "llvm.nvvm.ex2.approx.ftz.f32");
  patterns.add<MathToIntrinsic<math::Log2Op>>(context,
                                               "llvm.nvvm.lg2.approx.f");
}

struct BPTMathToIntrinsicsPass final
    : bpt::impl::BPTMathToIntrinsicsBase<BPTMathToIntrinsicsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathToIntrinsicsPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
