//===- EpilogueActivationTest.cpp - the GEMM epilogues' activations ------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The constants of bpt/Conversion/EpilogueActivation.h against float64: the
// header's scalar models evaluate them as the epilogue's IR does (f32, fused
// multiply-adds), so an error here is an error of every GELU / SiLU GEMM.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/EpilogueActivation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

using namespace bpt::epilogue;

namespace {

double gelu64(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double silu64(double x) { return x / (1.0 + std::exp(-x)); }
double geluTanh64(double x) {
  double y = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(y));
}

/// Every f32 step of 1/4096 in [-16, 16], and values far out.
std::vector<float> inputs() {
  std::vector<float> xs;
  for (int i = -16 * 4096; i <= 16 * 4096; ++i)
    xs.push_back(float(i) / 4096.0f);
  for (float x : {30.0f, 100.0f, 1e4f, 1e30f, 3e38f})
    xs.insert(xs.end(), {x, -x});
  return xs;
}

struct Errors {
  double absolute = 0, relative = 0;
};

/// Largest absolute error, and relative error where |f| > 1e-3.
template <typename Model, typename Exact>
Errors measure(Model model, Exact exact) {
  Errors e;
  for (float x : inputs()) {
    double want = exact(double(x)), got = model(x);
    EXPECT_TRUE(std::isfinite(got)) << "x = " << x;
    double err = std::fabs(got - want);
    e.absolute = std::max(e.absolute, err);
    if (std::fabs(want) > 1e-3)
      e.relative = std::max(e.relative, err / std::fabs(want));
  }
  return e;
}

TEST(EpilogueActivation, GeluMatchesFloat64) {
  Errors e = measure(geluModel, gelu64);
  // Measured 5.7e-7 and 3.8e-6 when the constants were fitted; bf16 and
  // f16 outputs round at 3.9e-3 and 4.9e-4.
  EXPECT_LT(e.absolute, 1e-6);
  EXPECT_LT(e.relative, 1e-5);
}

TEST(EpilogueActivation, GeluLimits) {
  float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(geluModel(inf), inf);
  EXPECT_EQ(geluModel(-inf), 0.0f);
  EXPECT_TRUE(std::isnan(geluModel(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(geluModel(0.0f), 0.0f);
}

TEST(EpilogueActivation, SiluMatchesFloat64) {
  // Exact exp2 and division here; on the GPU ex2.approx (2 ulp) and the
  // approximate division (2 ulp) add a few f32 ulps.
  Errors e = measure(siluModel, silu64);
  EXPECT_LT(e.relative, 1e-6);
}

TEST(EpilogueActivation, GeluTanhMatchesFloat64) {
  // The cubic's f32 rounding moves the exponent by about |2y|·2^-24:
  // measured 1.03e-6 at most.
  Errors e = measure(geluTanhModel, geluTanh64);
  EXPECT_LT(e.relative, 2e-6);
}

} // namespace
