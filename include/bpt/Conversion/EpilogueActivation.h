//===- EpilogueActivation.h - the GEMM epilogues' activations --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The constants and a scalar model of the activations the tensor-core GEMM
// epilogues evaluate (buildEpilogueActivation): GELU with one MUFU
// operation a value where the shared builder (buildActivation) takes two,
// SiLU and GELU-tanh without an IEEE division; accurate to a few f32 ulps,
// far below the 16-bit outputs' rounding. Their exp2 allows an approximate
// function (fast-math afn): ex2's flush-to-zero form, whose results below
// 2^-126 are 0, without the non-ftz form's range fix-up. Plain C++, so that the
// unit tests check the same constants, in the IR's order of operations, against
// float64 without MLIR (test/Unit/EpilogueActivationTest.cpp).
//
// GELU. For u = |x|, Φ(−u) = erfc(u/√2)/2 = 2^L(u) with
// L(u) = −u²·log2(e)/2 + R(u), R smooth and slowly varying (about
// −log2(u·√(2π)) for large u). R is a degree-7 polynomial in
// s = 2u/U − 1 on [0, U], U = 5 (a Chebyshev interpolant, in monomials of
// s), held at R(U) beyond; then
//   gelu(x) = x·Φ(x) = max(x, 0) − min(u, U)·2^L(u)
// (x ≥ 0: x − x·Φ(−x); x < 0: x·Φ(−u)). Past U the clamps change the
// result by less than u·Φ(−u) < 1.5e-6, and keep an infinite x finite in
// the product (inf·0). Error against float64 GELU on f32 inputs, with
// exact exp2: at most 5.7e-7 absolute and 3.8e-6 relative where |gelu| >
// 1e-3 (erf-based before: about 5e-7 in erf, i.e. up to 1.3e-6 in gelu at
// x = 5). Operations a value: one ex2, about nine fused multiply-adds, two
// min/max. The erf form (Abramowitz and Stegun 7.1.26) takes an
// approximate reciprocal and an ex2.
//
// SiLU. x / (1 + 2^(−x·log2 e)) with an approximate division (a
// reciprocal and a product, 2 ulp) in place of an IEEE one, whose Newton
// steps and special-case branch were most of a SiLU epilogue.
//
// GELU-tanh. 0.5·x·(1 + tanh(y)) = x·σ(2y), y = √(2/π)·(x + 0.044715·x³):
// x / (1 + 2^(−2y·log2 e)), as SiLU, in place of tanh's rational
// approximation and its IEEE division.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_CONVERSION_EPILOGUEACTIVATION_H
#define BPT_CONVERSION_EPILOGUEACTIVATION_H

#include <algorithm>
#include <array>
#include <cmath>

namespace bpt::epilogue {

/// Where the GELU's polynomial stops: R(u) is held at R(U) beyond.
inline constexpr float kGeluClamp = 5.0f;
/// s = u · kGeluScale − 1 maps [0, U] to [−1, 1].
inline constexpr float kGeluScale = 2.0f / kGeluClamp;
/// −log2(e)/2, the Gaussian's exponent per u².
inline constexpr float kGeluGaussian = -0.7213475108146667f;
/// R's coefficients in powers of s, constant term first.
inline constexpr std::array<float, 8> kGeluR = {
    -2.8228442668914795f,   -1.1640703678131104f,  0.4010574221611023f,
    -0.16090808808803558f,  0.0642700269818306f,   -0.024189963936805725f,
    0.0072650001384317875f, -0.001088630990125239f};

/// The scalar model of the GELU epilogue (f32 throughout, exp2 in place
/// of the GPU's ex2.approx).
inline float geluModel(float x) {
  float u = std::fabs(x);
  float uc = std::min(u, kGeluClamp);
  float s = std::fma(uc, kGeluScale, -1.0f);
  float r = kGeluR.back();
  for (int i = int(kGeluR.size()) - 2; i >= 0; --i)
    r = std::fma(r, s, kGeluR[i]);
  float g = std::exp2(std::fma(u * u, kGeluGaussian, r));
  return std::fma(-uc, g, std::max(x, 0.0f));
}

/// log2(e), for x·σ(v) = x / (1 + 2^(−v·log2 e)).
inline constexpr double kLog2E = 1.4426950408889634;
/// GELU-tanh's σ argument 2y = kGeluTanhScale·(x + kGeluTanhCubic·x³).
inline constexpr double kGeluTanhCubic = 0.044715;
inline constexpr double kGeluTanhScale = 1.5957691216057308; // 2·√(2/π)

/// x·σ(v) as the epilogue computes it.
inline float sigmoidProductModel(float x, float v) {
  return x / (1.0f + std::exp2(v * float(-kLog2E)));
}

/// The scalar model of the SiLU epilogue.
inline float siluModel(float x) { return sigmoidProductModel(x, x); }

/// The scalar model of the GELU-tanh epilogue.
inline float geluTanhModel(float x) {
  float inner = std::fma(float(kGeluTanhCubic) * x, x * x, x);
  return sigmoidProductModel(x, float(kGeluTanhScale) * inner);
}

} // namespace bpt::epilogue

#endif // BPT_CONVERSION_EPILOGUEACTIVATION_H
