//===- Reference.h - float64 reference of the model-level ops ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// A plain C++17 implementation, in double precision, of the model-level bpt
// ops (attention, linear, ffn, layer_norm, rms_norm, transformer_block), with
// the semantics of dialect/BPTOps.td and docs/design.md, and of their
// gradients (the *Backward functions, for training). It is the oracle that
// compiled kernels are judged against, so it favours clarity over speed. It
// uses no LLVM or MLIR, so that GPU-side tools can link it alone.
//
// Shape mismatches are programmer errors: every function checks its operands
// and, on a mismatch, prints a message naming the function and the operand to
// stderr and calls std::abort().
//
//===----------------------------------------------------------------------===//

#ifndef BPT_REFERENCE_REFERENCE_H
#define BPT_REFERENCE_REFERENCE_H

#include <cstdint>
#include <vector>

namespace bpt::ref {

/// A dense, row-major tensor of doubles. `data.size()` is always
/// `numElements()`. There are no scalars: a rank-0 tensor (such as a
/// default-constructed one) is empty.
struct Tensor {
  /// The dimensions, outermost first; each is >= 0.
  std::vector<int64_t> shape;
  /// The elements in row-major order.
  std::vector<double> data;

  /// An empty tensor: no dimensions and no elements.
  Tensor() = default;
  /// A zero-filled tensor of the given shape. Aborts on a negative dimension.
  explicit Tensor(std::vector<int64_t> shape);

  /// The product of the dimensions, or 0 for a rank-0 (empty) tensor.
  int64_t numElements() const;
  /// The size of dimension `i`; a negative `i` counts from the back (-1 is
  /// the last dimension). Aborts if `i` is out of range.
  int64_t dim(int64_t i) const;
};

/// The FFN activations of `bpt.ffn` (`gelu` is the erf form, `gelu_tanh` the
/// tanh approximation; `swiglu` and `geglu` are gated).
enum class Activation { Gelu, GeluTanh, Relu, Silu, SwiGLU, GeGLU };

/// The normalisations of `bpt.transformer_block`.
enum class NormKind { LayerNorm, RMSNorm };

/// True for the gated activations (SwiGLU, GeGLU), which take a third
/// matrix, `wGate`.
bool isGated(Activation a);

/// The nonlinearity of `a`; for the gated activations, the one applied to
/// the gate (silu for SwiGLU, erf-gelu for GeGLU).
double activate(Activation a, double x);
/// d/dx of `activate(a, x)` (relu'(0) = 0).
double activateDerivative(Activation a, double x);

/// The keys 0 .. visibleKeys(i, ...) - 1 that query row i of an attention
/// of `seqQ` query and `seqKV` key rows sees: all of them, or, causal
/// (bottom-right aligned), keys j <= i + (seqKV - seqQ); 0 for a row that
/// sees none.
int64_t visibleKeys(int64_t i, int64_t seqQ, int64_t seqKV, bool causal);

/// Scaled dot-product attention, `softmax(scale · Q·Kᵀ + mask) · V`.
/// q [B,Hq,Sq,D], k/v [B,Hkv,Skv,D] (k and v of one shape, Hq a multiple of
/// Hkv); query head h reads kv head h / (Hq/Hkv). The result is [B,Hq,Sq,D].
/// causal: query i sees key j iff j <= i + (Skv - Sq) (bottom-right aligned).
/// A row that sees no key produces 0. The softmax subtracts the row maximum.
Tensor attention(const Tensor &q, const Tensor &k, const Tensor &v, bool causal,
                 double scale);

/// `attention` and its per-row log-sum-exp, the statistic the backward
/// pass reads instead of the probabilities.
struct AttentionWithLSE {
  /// [B, Hq, Sq, D].
  Tensor out;
  /// [B, Hq, Sq]: log Σ_j exp(scale · q_i·k_j) over the keys row i sees
  /// (natural log); -inf for a row that sees no key.
  Tensor lse;
};
AttentionWithLSE attentionWithLSE(const Tensor &q, const Tensor &k,
                                  const Tensor &v, bool causal, double scale);

/// The gradients of `attention` with respect to q, k and v, for the
/// gradient `dOut` ([B, Hq, Sq, D]) of a loss with respect to its output:
/// with P the probabilities, dV = Pᵀ·dO, dS = P ∘ (dO·Vᵀ − rowsum(dO ∘ O)),
/// dQ = scale · dS·K, dK = scale · dSᵀ·Q. GQA/MQA: dK and dV sum over the
/// query heads of a group. A row that sees no key contributes nothing.
struct AttentionGradients {
  Tensor dq, dk, dv;
};
AttentionGradients attentionBackward(const Tensor &q, const Tensor &k,
                                     const Tensor &v, const Tensor &dOut,
                                     bool causal, double scale);

/// x [..., K] · w [K, N] (+ bias [N]) -> [..., N]. bias may be nullptr.
Tensor linear(const Tensor &x, const Tensor &w, const Tensor *bias);

/// The position-wise feed-forward network of `bpt.ffn` on x [..., H].
/// Two-matrix: act(x·wIn)·wOut; gated (SwiGLU/GeGLU):
/// (act(x·wGate) ⊙ (x·wIn))·wOut, act = silu for SwiGLU, erf-gelu for GeGLU.
/// wIn/wGate [H,F], wOut [F,H]. wGate must be nullptr unless `act` is gated,
/// and non-null if it is. The result is [..., H].
Tensor ffn(const Tensor &x, const Tensor &wIn, const Tensor &wOut,
           const Tensor *wGate, Activation act);

/// Layer normalisation over the last dim of x [..., H]:
/// (x-mean)/sqrt(var+eps)*w+b with the biased variance; w and b are [H].
/// eps must be finite and >= 0.
Tensor layerNorm(const Tensor &x, const Tensor &w, const Tensor &b, double eps);

/// RMS normalisation over the last dim of x [..., H]:
/// x/sqrt(mean(x^2)+eps)*w; w is [H]. eps must be finite and >= 0.
Tensor rmsNorm(const Tensor &x, const Tensor &w, double eps);

/// Elementwise a + b (same shape).
Tensor add(const Tensor &a, const Tensor &b);

/// Weights of a pre-norm block; norm*Bias are empty Tensors
/// (numElements()==0) for RMSNorm, wGate empty unless the activation is
/// gated. Layouts as in docs/design.md: wQ [H, heads*D], wK/wV
/// [H, kvHeads*D], wO [heads*D, H], wIn/wGate [H,F], wOut [F,H], norm
/// weights and biases [H].
struct BlockWeights {
  /// Weight of the first (pre-attention) norm, [H].
  Tensor norm1Weight;
  /// Bias of the first norm, [H] for LayerNorm, empty for RMSNorm.
  Tensor norm1Bias;
  /// Query projection, [H, heads*D].
  Tensor wQ;
  /// Key projection, [H, kvHeads*D].
  Tensor wK;
  /// Value projection, [H, kvHeads*D].
  Tensor wV;
  /// Output projection, [heads*D, H].
  Tensor wO;
  /// Weight of the second (pre-FFN) norm, [H].
  Tensor norm2Weight;
  /// Bias of the second norm, [H] for LayerNorm, empty for RMSNorm.
  Tensor norm2Bias;
  /// FFN input matrix, [H, F].
  Tensor wIn;
  /// FFN output matrix, [F, H].
  Tensor wOut;
  /// FFN gate matrix, [H, F] for SwiGLU/GeGLU, empty otherwise.
  Tensor wGate;
};

/// A whole pre-norm transformer block (`bpt.transformer_block`) on
/// x [B,S,H]: h = norm1(x); q,k,v = h·wQ, h·wK, h·wV split into heads
/// ([B,S,heads*D] -> [B,heads,S,D]); r = x + merge(attention(q,k,v, causal,
/// 1/sqrt(D)))·wO; y = r + ffn(norm2(r)). D is wQ's width over `heads`;
/// `heads` must be a positive multiple of the positive `kvHeads`.
Tensor transformerBlock(const Tensor &x, const BlockWeights &w, int64_t heads,
                        int64_t kvHeads, bool causal, Activation act,
                        NormKind norm, double eps);

//===----------------------------------------------------------------------===//
// Backward (training)
//===----------------------------------------------------------------------===//
//
// Each function takes the forward's operands and the gradient `dOut` of a
// scalar loss with respect to the forward's result (of the result's shape),
// and returns the gradients of that loss with respect to every operand, each
// of its operand's shape. Forward intermediates are recomputed, not passed.

/// The gradients of `linear`: dx = dOut·wᵀ, dw = Σ_rows xᵀ·dOut,
/// db = Σ_rows dOut (empty when the forward has no bias).
struct LinearGradients {
  Tensor dx, dw, db;
};
LinearGradients linearBackward(const Tensor &x, const Tensor &w,
                               const Tensor *bias, const Tensor &dOut);

/// The gradients of `ffn`, per row with u = x·wIn (and g = x·wGate):
/// two-matrix: dwOut = act(u)ᵀ·dOut, du = (dOut·wOutᵀ) ⊙ act'(u);
/// gated: dwOut = (act(g) ⊙ u)ᵀ·dOut, with dh = dOut·wOutᵀ,
/// du = dh ⊙ act(g), dg = dh ⊙ u ⊙ act'(g); then dwIn = xᵀ·du,
/// dwGate = xᵀ·dg, dx = du·wInᵀ (+ dg·wGateᵀ). dwGate is empty unless `act`
/// is gated. relu'(0) is taken as 0.
struct FFNGradients {
  Tensor dx, dwIn, dwOut, dwGate;
};
FFNGradients ffnBackward(const Tensor &x, const Tensor &wIn, const Tensor &wOut,
                         const Tensor *wGate, Activation act,
                         const Tensor &dOut);

/// The gradients of `layerNorm`, per row with x̂ = (x − mean)·inv,
/// inv = 1/sqrt(var + eps) and g = dOut ⊙ w:
/// dx = inv·(g − mean(g) − x̂·mean(g ⊙ x̂)), dw = Σ_rows dOut ⊙ x̂,
/// db = Σ_rows dOut.
struct LayerNormGradients {
  Tensor dx, dw, db;
};
LayerNormGradients layerNormBackward(const Tensor &x, const Tensor &w,
                                     const Tensor &b, double eps,
                                     const Tensor &dOut);

/// The gradients of `rmsNorm`, per row with x̂ = x·inv,
/// inv = 1/sqrt(mean(x²) + eps) and g = dOut ⊙ w:
/// dx = inv·(g − x̂·mean(g ⊙ x̂)), dw = Σ_rows dOut ⊙ x̂.
struct RMSNormGradients {
  Tensor dx, dw;
};
RMSNormGradients rmsNormBackward(const Tensor &x, const Tensor &w, double eps,
                                 const Tensor &dOut);

/// The gradients of `add`: both are dOut.
struct AddGradients {
  Tensor da, db;
};
AddGradients addBackward(const Tensor &a, const Tensor &b, const Tensor &dOut);

/// The gradients of `transformerBlock`: dx, and in `dw` the gradient of
/// every weight of `w`, in the same field and of the same shape (empty
/// where the weight is empty: the norm biases for RMSNorm, wGate for a
/// non-gated activation). The chain, from y = r + ffn(norm2(r)) back:
/// dr = dOut + norm2ᵀ(ffnᵀ(dOut)); dMerged = dr·wOᵀ; dq, dk, dv from
/// `attentionBackward` (scale 1/sqrt(D); GQA sums over a group);
/// dh1 = dq·wQᵀ + dk·wKᵀ + dv·wVᵀ (heads merged); dx = dr + norm1ᵀ(dh1).
struct BlockGradients {
  Tensor dx;
  BlockWeights dw;
};
BlockGradients transformerBlockBackward(const Tensor &x, const BlockWeights &w,
                                        int64_t heads, int64_t kvHeads,
                                        bool causal, Activation act,
                                        NormKind norm, double eps,
                                        const Tensor &dOut);

/// ||out - ref||_2 / ||ref||_2. Returns +inf if the shapes differ, NaN if any
/// element of out is NaN. If ||ref|| == 0 returns ||out - ref||. An
/// infinity (the log-sum-exp of a row that sees no key) must be matched
/// exactly, and then counts in neither norm; unmatched, the error is +inf.
double relativeError(const Tensor &out, const Tensor &ref);
/// The same, but an element whose output and reference are both below
/// `subnormalBelow` in magnitude adds no difference (see outputError in
/// HostTensor.h).
double relativeError(const Tensor &out, const Tensor &ref,
                     double subnormalBelow);

/// Rounds a float to the nearest bf16 (ties to even), returned as its bits.
/// Overflow gives inf; a NaN stays a NaN (quiet, sign and top payload bits
/// kept).
uint16_t floatToBF16Bits(float f);
/// The float whose value is the bf16 with bits `b` (exact).
float bf16BitsToFloat(uint16_t b);
/// Rounds a float to the nearest IEEE binary16 (ties to even), returned as its
/// bits, with gradual underflow to f16 subnormals (2^-24 is 0x0001).
/// Overflow gives inf; a NaN stays a NaN (quiet, sign and top payload bits
/// kept).
uint16_t floatToF16Bits(float f);
/// The float whose value is the f16 with bits `b` (exact, subnormals
/// included).
float f16BitsToFloat(uint16_t b);

} // namespace bpt::ref

#endif // BPT_REFERENCE_REFERENCE_H
