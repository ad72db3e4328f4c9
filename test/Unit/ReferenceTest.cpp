//===- ReferenceTest.cpp - unit tests of the float64 reference ------------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Hand-computable checks of bpt::ref, on GoogleTest (Debian's libgtest-dev):
// one test per function of the reference. The lit test reference.test runs
// the binary and fails on any failure.
//
//===----------------------------------------------------------------------===//

#include "bpt/Reference/HostTensor.h"
#include "bpt/Reference/Reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace bpt::ref;
using bpt::DType;
using bpt::outputError;

//===----------------------------------------------------------------------===//
// Assertions
//===----------------------------------------------------------------------===//

namespace {

/// |actual - expected| <= tol, with exact equality first so that infinities
/// compare equal; NaN never passes. (gtest's EXPECT_NEAR fails on equal
/// infinities.)
::testing::AssertionResult isNear(const char *actualExpr, const char *,
                                  const char *, double actual, double expected,
                                  double tol) {
  if (actual == expected || std::fabs(actual - expected) <= tol)
    return ::testing::AssertionSuccess();
  char text[128];
  std::snprintf(text, sizeof(text), " = %.17g, expected %.17g (tol %g)", actual,
                expected, tol);
  return ::testing::AssertionFailure() << actualExpr << text;
}

::testing::AssertionResult isNaN(const char *actualExpr, double actual) {
  if (std::isnan(actual))
    return ::testing::AssertionSuccess();
  char text[64];
  std::snprintf(text, sizeof(text), " = %.17g, expected NaN", actual);
  return ::testing::AssertionFailure() << actualExpr << text;
}

/// Equal 16-bit patterns, shown in hex.
::testing::AssertionResult hasBits(const char *actualExpr, const char *,
                                   uint16_t actual, uint16_t expected) {
  if (actual == expected)
    return ::testing::AssertionSuccess();
  char text[64];
  std::snprintf(text, sizeof(text), " = 0x%04x, expected 0x%04x",
                unsigned(actual), unsigned(expected));
  return ::testing::AssertionFailure() << actualExpr << text;
}

/// The shape and every element of `t`; a failure lists each wrong element.
::testing::AssertionResult isTensor(const char *tensorExpr, const char *,
                                    const char *, const char *, const Tensor &t,
                                    const std::vector<int64_t> &shape,
                                    const std::vector<double> &values,
                                    double tol) {
  char text[160];
  if (t.shape != shape || t.data.size() != values.size()) {
    std::snprintf(text, sizeof(text),
                  " has the wrong shape (rank %zu, %zu elements; expected "
                  "rank %zu, %zu elements)",
                  t.shape.size(), t.data.size(), shape.size(), values.size());
    return ::testing::AssertionFailure() << tensorExpr << text;
  }
  ::testing::AssertionResult result = ::testing::AssertionSuccess();
  bool ok = true;
  for (size_t i = 0; i < values.size(); ++i) {
    double a = t.data[i], e = values[i];
    if (a == e || std::fabs(a - e) <= tol)
      continue;
    if (ok)
      result = ::testing::AssertionFailure();
    ok = false;
    std::snprintf(text, sizeof(text),
                  "[%zu] = %.17g, expected %.17g (tol %g)\n", i, a, e, tol);
    result << tensorExpr << text;
  }
  return result;
}

} // namespace

#define EXPECT_CLOSE(actual, expected, tol)                                    \
  EXPECT_PRED_FORMAT3(isNear, actual, expected, tol)
#define EXPECT_IS_NAN(actual) EXPECT_PRED_FORMAT1(isNaN, actual)
#define EXPECT_BITS(actual, expected)                                          \
  EXPECT_PRED_FORMAT2(hasBits, actual, expected)
#define EXPECT_TENSOR(t, shape, values, tol)                                   \
  EXPECT_PRED_FORMAT4(isTensor, t, shape, values, tol)

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

using Shape = std::vector<int64_t>;
using Values = std::vector<double>;

const double kTol = 1e-12;

/// A tensor of the given shape and row-major values.
Tensor makeTensor(Shape shape, Values values) {
  Tensor t(std::move(shape));
  if (values.size() != t.data.size()) {
    std::printf("test bug: %zu values for %zu elements\n", values.size(),
                t.data.size());
    std::abort();
  }
  t.data = std::move(values);
  return t;
}

/// A tensor filled with deterministic pseudo-random values in [-1, 1).
Tensor randomTensor(Shape shape, uint32_t &state) {
  Tensor t(std::move(shape));
  for (double &x : t.data) {
    state = state * 1664525u + 1013904223u;
    x = double(state >> 8) / double(1u << 23) - 1.0;
  }
  return t;
}

/// A 1x1 matrix.
Tensor scalarMatrix(double v) { return makeTensor({1, 1}, {v}); }

/// ffn on a single input value with H = F = 1 and unit matrices: act(x), or
/// act(gate * x) * (up * x) for the gated activations.
double ffnAt(Activation act, double x, double up = 1.0, double gate = 1.0) {
  Tensor in = makeTensor({1, 1}, {x});
  Tensor wGate = scalarMatrix(gate);
  Tensor out = ffn(in, scalarMatrix(up), scalarMatrix(1.0),
                   isGated(act) ? &wGate : nullptr, act);
  return out.data[0];
}

/// Test-local head split [B,S,heads*D] -> [B,heads,S,D], written
/// independently of the library's.
Tensor testSplit(const Tensor &t, int64_t heads) {
  int64_t b = t.shape[0], s = t.shape[1], d = t.shape[2] / heads;
  Tensor out({b, heads, s, d});
  size_t src = 0; // Walk the source in its own order.
  for (int64_t ib = 0; ib < b; ++ib)
    for (int64_t is = 0; is < s; ++is)
      for (int64_t ih = 0; ih < heads; ++ih)
        for (int64_t id = 0; id < d; ++id)
          out.data[size_t(((ib * heads + ih) * s + is) * d + id)] =
              t.data[src++];
  return out;
}

/// Test-local head merge [B,heads,S,D] -> [B,S,heads*D].
Tensor testMerge(const Tensor &t) {
  int64_t b = t.shape[0], heads = t.shape[1], s = t.shape[2], d = t.shape[3];
  Tensor out({b, s, heads * d});
  size_t src = 0;
  for (int64_t ib = 0; ib < b; ++ib)
    for (int64_t ih = 0; ih < heads; ++ih)
      for (int64_t is = 0; is < s; ++is)
        for (int64_t id = 0; id < d; ++id)
          out.data[size_t((ib * s + is) * heads * d + ih * d + id)] =
              t.data[src++];
  return out;
}

/// Random weights for a block with hidden size h, `heads`/`kvHeads` heads of
/// size d and FFN width f.
BlockWeights randomBlockWeights(int64_t h, int64_t heads, int64_t kvHeads,
                                int64_t d, int64_t f, Activation act,
                                NormKind norm, uint32_t &state) {
  BlockWeights w;
  w.norm1Weight = randomTensor({h}, state);
  w.norm2Weight = randomTensor({h}, state);
  if (norm == NormKind::LayerNorm) {
    w.norm1Bias = randomTensor({h}, state);
    w.norm2Bias = randomTensor({h}, state);
  }
  w.wQ = randomTensor({h, heads * d}, state);
  w.wK = randomTensor({h, kvHeads * d}, state);
  w.wV = randomTensor({h, kvHeads * d}, state);
  w.wO = randomTensor({heads * d, h}, state);
  w.wIn = randomTensor({h, f}, state);
  w.wOut = randomTensor({f, h}, state);
  if (isGated(act))
    w.wGate = randomTensor({h, f}, state);
  return w;
}

/// The block composed by hand from the primitives, as the spec states it.
Tensor manualBlock(const Tensor &x, const BlockWeights &w, int64_t heads,
                   int64_t kvHeads, bool causal, Activation act, NormKind norm,
                   double eps) {
  auto normalize = [&](const Tensor &t, const Tensor &g, const Tensor &b) {
    return norm == NormKind::LayerNorm ? layerNorm(t, g, b, eps)
                                       : rmsNorm(t, g, eps);
  };
  int64_t d = w.wQ.shape[1] / heads;
  Tensor h1 = normalize(x, w.norm1Weight, w.norm1Bias);
  Tensor q = testSplit(linear(h1, w.wQ, nullptr), heads);
  Tensor k = testSplit(linear(h1, w.wK, nullptr), kvHeads);
  Tensor v = testSplit(linear(h1, w.wV, nullptr), kvHeads);
  Tensor a = attention(q, k, v, causal, 1.0 / std::sqrt(double(d)));
  Tensor r = add(x, linear(testMerge(a), w.wO, nullptr));
  Tensor h2 = normalize(r, w.norm2Weight, w.norm2Bias);
  return add(r, ffn(h2, w.wIn, w.wOut, isGated(act) ? &w.wGate : nullptr, act));
}

/// Bits of a float, for building exact test values.
float floatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

} // namespace

//===----------------------------------------------------------------------===//
// Tests
//===----------------------------------------------------------------------===//

TEST(Reference, Tensor) {
  Tensor t({2, 3, 4});
  EXPECT_TRUE(t.numElements() == 24);
  EXPECT_TRUE(t.data.size() == 24);
  EXPECT_TRUE(t.dim(0) == 2);
  EXPECT_TRUE(t.dim(-1) == 4);
  EXPECT_TRUE(t.dim(-3) == 2);
  bool allZero = true;
  for (double x : t.data)
    allZero = allZero && x == 0.0;
  EXPECT_TRUE(allZero);
  Tensor empty;
  EXPECT_TRUE(empty.numElements() == 0);
  EXPECT_TRUE(isGated(Activation::SwiGLU) && isGated(Activation::GeGLU));
  EXPECT_TRUE(!isGated(Activation::Gelu) && !isGated(Activation::GeluTanh) &&
              !isGated(Activation::Relu) && !isGated(Activation::Silu));
}

TEST(Reference, AttentionOneKey) {
  // One key: softmax is 1 whatever the score, so the output is V.
  Tensor q = makeTensor({1, 1, 2, 3}, {5, -7, 1, 0.5, 2, -3});
  Tensor k = makeTensor({1, 1, 1, 3}, {0.3, 9, -2});
  Tensor v = makeTensor({1, 1, 1, 3}, {1.5, -2.5, 4});
  EXPECT_TENSOR(attention(q, k, v, false, 0.7), Shape({1, 1, 2, 3}),
                Values({1.5, -2.5, 4, 1.5, -2.5, 4}), kTol);
  // Causal with Sq = 2 > Skv = 1: row 0 sees no key (0), row 1 sees it.
  EXPECT_TENSOR(attention(q, k, v, true, 0.7), Shape({1, 1, 2, 3}),
                Values({0, 0, 0, 1.5, -2.5, 4}), kTol);
}

TEST(Reference, AttentionTwoKeys) {
  // q·k0 = 0, q·k1 = 2 ln 3; with scale 1/2 the scores are 0 and ln 3, so the
  // weights are 1/4 and 3/4.
  double ln3 = std::log(3.0);
  Tensor q = makeTensor({1, 1, 1, 2}, {1, 0});
  Tensor k = makeTensor({1, 1, 2, 2}, {0, 5, 2 * ln3, -1});
  Tensor v = makeTensor({1, 1, 2, 2}, {4, 0, 0, 8});
  EXPECT_TENSOR(attention(q, k, v, false, 0.5), Shape({1, 1, 1, 2}),
                Values({1, 6}), kTol);

  // The same mix with huge scores (1000 and 1000 + ln 3): a softmax that
  // does not subtract the row max would overflow exp() to inf/NaN.
  Tensor kBig = makeTensor({1, 1, 2, 2}, {1000, 0, 1000 + ln3, 0});
  EXPECT_TENSOR(attention(q, kBig, v, false, 1.0), Shape({1, 1, 1, 2}),
                Values({1, 6}), 1e-9);
}

TEST(Reference, AttentionCausal) {
  // With q = 0 all scores are equal, so each row is the mean of the values
  // it may see. D = 1.
  // Sq = Skv = 3: the usual lower triangle.
  {
    Tensor q({1, 1, 3, 1});
    Tensor k({1, 1, 3, 1});
    Tensor v = makeTensor({1, 1, 3, 1}, {1, 2, 3});
    EXPECT_TENSOR(attention(q, k, v, true, 1.0), Shape({1, 1, 3, 1}),
                  Values({1, 1.5, 2}), kTol);
    EXPECT_TENSOR(attention(q, k, v, false, 1.0), Shape({1, 1, 3, 1}),
                  Values({2, 2, 2}), kTol);
  }
  // Sq = 2 < Skv = 4: bottom-right alignment, offset 2; row 0 sees keys
  // 0..2, row 1 sees all four. (Top-left alignment would give 1 and 1.5.)
  {
    Tensor q({1, 1, 2, 1});
    Tensor k({1, 1, 4, 1});
    Tensor v = makeTensor({1, 1, 4, 1}, {1, 2, 3, 4});
    EXPECT_TENSOR(attention(q, k, v, true, 1.0), Shape({1, 1, 2, 1}),
                  Values({2, 2.5}), kTol);
  }
  // Sq = 4 > Skv = 2: offset -2; rows 0 and 1 see no key and give 0, row 2
  // sees key 0, row 3 both.
  {
    Tensor q({1, 1, 4, 1});
    Tensor k({1, 1, 2, 1});
    Tensor v = makeTensor({1, 1, 2, 1}, {10, 20});
    EXPECT_TENSOR(attention(q, k, v, true, 1.0), Shape({1, 1, 4, 1}),
                  Values({0, 0, 10, 15}), kTol);
    EXPECT_TENSOR(attention(q, k, v, false, 1.0), Shape({1, 1, 4, 1}),
                  Values({15, 15, 15, 15}), kTol);
  }
  // Causal with non-zero scores: Sq = 1 < Skv = 2 sees both keys (the
  // two-key mix), as the last row always does.
  {
    double ln3 = std::log(3.0);
    Tensor q = makeTensor({1, 1, 1, 1}, {1});
    Tensor k = makeTensor({1, 1, 2, 1}, {0, ln3});
    Tensor v = makeTensor({1, 1, 2, 1}, {4, 8});
    EXPECT_TENSOR(attention(q, k, v, true, 1.0), Shape({1, 1, 1, 1}),
                  Values({7}), kTol);
  }
}

TEST(Reference, AttentionGQA) {
  // B = 2, Hq = 4, Hkv = 2, one key: each q head returns the V of the kv
  // head it reads (h / 2), so v[b][kvh] = 100 (kvh + 1) + b shows which.
  {
    Tensor q({2, 4, 1, 1});
    Tensor k({2, 2, 1, 1});
    Tensor v = makeTensor({2, 2, 1, 1}, {100, 200, 101, 201});
    EXPECT_TENSOR(attention(q, k, v, false, 1.0), Shape({2, 4, 1, 1}),
                  Values({100, 100, 200, 200, 101, 101, 201, 201}), kTol);
    // Multi-query: every head reads kv head 0.
    Tensor v1 = makeTensor({2, 1, 1, 1}, {7, 9});
    Tensor k1({2, 1, 1, 1});
    EXPECT_TENSOR(attention(q, k1, v1, false, 1.0), Shape({2, 4, 1, 1}),
                  Values({7, 7, 7, 7, 9, 9, 9, 9}), kTol);
  }
  // The keys must come from the same kv head: Hq = 2, Hkv = 2 would be MHA;
  // use Hq = 4, Hkv = 2 with kv head 0 favouring key 0 and kv head 1 key 1
  // (scores 0 and ±ln 3), and the same V in both heads.
  {
    double ln3 = std::log(3.0);
    Tensor q = makeTensor({1, 4, 1, 1}, {1, 1, 1, 1});
    Tensor k = makeTensor({1, 2, 2, 1}, {ln3, 0, 0, ln3});
    Tensor v = makeTensor({1, 2, 2, 1}, {4, 8, 4, 8});
    // kv head 0: weights 3/4, 1/4 -> 5; kv head 1: 1/4, 3/4 -> 7.
    EXPECT_TENSOR(attention(q, k, v, false, 1.0), Shape({1, 4, 1, 1}),
                  Values({5, 5, 7, 7}), kTol);
  }
}

TEST(Reference, AttentionLSE) {
  // Scores 0 and ln 3 (as in AttentionTwoKeys): lse = log(1 + 3).
  double ln3 = std::log(3.0);
  Tensor q = makeTensor({1, 1, 1, 2}, {1, 0});
  Tensor k = makeTensor({1, 1, 2, 2}, {0, 5, 2 * ln3, -1});
  Tensor v = makeTensor({1, 1, 2, 2}, {4, 0, 0, 8});
  AttentionWithLSE r = attentionWithLSE(q, k, v, false, 0.5);
  EXPECT_TENSOR(r.out, Shape({1, 1, 1, 2}), Values({1, 6}), kTol);
  EXPECT_TENSOR(r.lse, Shape({1, 1, 1}), Values({std::log(4.0)}), kTol);
  // Huge scores: lse = 1000 + log 4, without overflow.
  Tensor kBig = makeTensor({1, 1, 2, 2}, {1000, 0, 1000 + ln3, 0});
  EXPECT_TENSOR(attentionWithLSE(q, kBig, v, false, 1.0).lse, Shape({1, 1, 1}),
                Values({1000 + std::log(4.0)}), 1e-9);
  // Causal, Sq = 2 > Skv = 1: row 0 sees no key, its lse is -inf.
  Tensor q2({1, 1, 2, 2}), k1({1, 1, 1, 2}), v1({1, 1, 1, 2});
  double inf = std::numeric_limits<double>::infinity();
  EXPECT_TENSOR(attentionWithLSE(q2, k1, v1, true, 1.0).lse, Shape({1, 1, 2}),
                Values({-inf, 0}), kTol);
}

namespace {

/// Deterministic values in [-1, 1).
Tensor randomTensor(std::vector<int64_t> shape, uint64_t &state) {
  Tensor t(std::move(shape));
  for (double &x : t.data) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<double>(state >> 11) / static_cast<double>(1ull << 53) * 2 -
        1;
  }
  return t;
}

/// Checks attentionBackward against central finite differences of
/// L = Σ dO ∘ attention(q, k, v) at every element of q, k and v.
void checkGradientsByFiniteDifferences(std::vector<int64_t> qShape,
                                       std::vector<int64_t> kvShape,
                                       bool causal, double scale) {
  uint64_t state = 7;
  Tensor q = randomTensor(qShape, state), k = randomTensor(kvShape, state),
         v = randomTensor(kvShape, state), dO = randomTensor(qShape, state);
  AttentionGradients g = attentionBackward(q, k, v, dO, causal, scale);
  auto loss = [&]() {
    Tensor o = attention(q, k, v, causal, scale);
    double l = 0;
    for (size_t i = 0; i < o.data.size(); ++i)
      l += o.data[i] * dO.data[i];
    return l;
  };
  const double h = 1e-5;
  for (auto [input, grad, name] :
       {std::make_tuple(&q, &g.dq, "dq"), std::make_tuple(&k, &g.dk, "dk"),
        std::make_tuple(&v, &g.dv, "dv")}) {
    ASSERT_EQ(grad->shape, input->shape) << name;
    for (size_t i = 0; i < input->data.size(); ++i) {
      double saved = input->data[i];
      input->data[i] = saved + h;
      double up = loss();
      input->data[i] = saved - h;
      double down = loss();
      input->data[i] = saved;
      EXPECT_NEAR(grad->data[i], (up - down) / (2 * h), 1e-7)
          << name << "[" << i << "]";
    }
  }
}

} // namespace

TEST(Reference, AttentionBackwardMHA) {
  checkGradientsByFiniteDifferences({2, 2, 5, 3}, {2, 2, 5, 3}, false, 0.6);
}

TEST(Reference, AttentionBackwardCausalGQA) {
  // GQA 4:2 (dk, dv sum over the group), causal with Sq = 3 < Skv = 6.
  checkGradientsByFiniteDifferences({1, 4, 3, 4}, {1, 2, 6, 4}, true, 0.5);
}

TEST(Reference, AttentionBackwardRowsWithoutKeys) {
  // Causal, Sq = 6 > Skv = 2: rows 0..3 see no key; their dq is 0, and they
  // add nothing to dk and dv. MQA.
  checkGradientsByFiniteDifferences({1, 3, 6, 2}, {1, 1, 2, 2}, true, 1.0);
  uint64_t state = 3;
  Tensor q = randomTensor({1, 1, 6, 2}, state), k = randomTensor({1, 1, 2, 2}, state),
         v = randomTensor({1, 1, 2, 2}, state), dO = randomTensor({1, 1, 6, 2}, state);
  AttentionGradients g = attentionBackward(q, k, v, dO, true, 1.0);
  for (int64_t i = 0; i < 4 * 2; ++i)
    EXPECT_EQ(g.dq.data[i], 0.0) << i;
  for (double x : g.dq.data)
    EXPECT_FALSE(std::isnan(x));
}

TEST(Reference, Linear) {
  // x [2, 1, 3] (leading dims kept), w [3, 2], bias [2].
  Tensor x = makeTensor({2, 1, 3}, {1, 2, 3, -1, 0, 2});
  Tensor w = makeTensor({3, 2}, {1, 4, 2, 5, 3, 6});
  Tensor b = makeTensor({2}, {0.5, -1});
  // Row 0: [1+4+9, 4+10+18] = [14, 32]; row 1: [-1+6, -4+12] = [5, 8].
  EXPECT_TENSOR(linear(x, w, &b), Shape({2, 1, 2}), Values({14.5, 31, 5.5, 7}),
                kTol);
  EXPECT_TENSOR(linear(x, w, nullptr), Shape({2, 1, 2}), Values({14, 32, 5, 8}),
                kTol);
}

TEST(Reference, Activations) {
  const double tol = 1e-15;
  EXPECT_CLOSE(ffnAt(Activation::Gelu, 1.0), 0.8413447460685429, tol);
  EXPECT_CLOSE(ffnAt(Activation::Gelu, -1.0), -0.15865525393145707, tol);
  EXPECT_CLOSE(ffnAt(Activation::Gelu, 2.0), 1.9544997361036416, tol);
  EXPECT_CLOSE(ffnAt(Activation::Gelu, 0.0), 0.0, tol);
  EXPECT_CLOSE(ffnAt(Activation::GeluTanh, 1.0), 0.8411919906082768, tol);
  EXPECT_CLOSE(ffnAt(Activation::GeluTanh, -1.0), -0.15880800939172324, tol);
  EXPECT_CLOSE(ffnAt(Activation::GeluTanh, 2.0), 1.954597694087775, tol);
  EXPECT_CLOSE(ffnAt(Activation::Silu, 1.0), 0.7310585786300049, tol);
  EXPECT_CLOSE(ffnAt(Activation::Silu, -1.0), -0.2689414213699951, tol);
  EXPECT_CLOSE(ffnAt(Activation::Silu, 2.0), 1.7615941559557646, tol);
  EXPECT_CLOSE(ffnAt(Activation::Relu, -2.0), 0.0, tol);
  EXPECT_CLOSE(ffnAt(Activation::Relu, 3.0), 3.0, tol);
  // Gated: act(x·wGate) ⊙ (x·wIn) with wGate = 2, wIn = 3, x = 1, so
  // silu(2)·3 and gelu(2)·3 (swapping the matrices would give act(3)·2).
  EXPECT_CLOSE(ffnAt(Activation::SwiGLU, 1.0, 3.0, 2.0), 5.284782467867294,
               1e-14);
  EXPECT_CLOSE(ffnAt(Activation::GeGLU, 1.0, 3.0, 2.0), 5.863499208310925,
               1e-14);
}

TEST(Reference, FFNShapes) {
  // H = 2, F = 3, relu: x·wIn = [1, -1, 2] -> relu [1, 0, 2] -> ·wOut.
  Tensor x = makeTensor({1, 2}, {1, 1});
  Tensor wIn = makeTensor({2, 3}, {1, -3, 0, 0, 2, 2});
  Tensor wOut = makeTensor({3, 2}, {1, 2, 100, 100, 3, -1});
  EXPECT_TENSOR(ffn(x, wIn, wOut, nullptr, Activation::Relu), Shape({1, 2}),
                Values({7, 0}), kTol);
  // SwiGLU with H = 2, F = 2: gate = x·wGate = [0, 1], up = x·wIn = [5, 4];
  // hidden = [silu(0)·5, silu(1)·4] = [0, 4 silu(1)].
  Tensor x2 = makeTensor({1, 1, 2}, {1, 2});
  Tensor wIn2 = makeTensor({2, 2}, {1, 0, 2, 2});
  Tensor wGate2 = makeTensor({2, 2}, {2, 1, -1, 0});
  Tensor wOut2 = makeTensor({2, 2}, {9, 9, 1, -2});
  double s1 = 0.7310585786300049;
  EXPECT_TENSOR(ffn(x2, wIn2, wOut2, &wGate2, Activation::SwiGLU),
                Shape({1, 1, 2}), Values({4 * s1, -8 * s1}), 1e-14);
}

TEST(Reference, Norms) {
  // [1, 2, 3, 4]: mean 2.5, biased variance 1.25; with eps = 0.75 the
  // denominator is sqrt(2).
  Tensor x = makeTensor({2, 4}, {1, 2, 3, 4, 5, 5, 5, 5});
  Tensor w = makeTensor({4}, {1, 2, 1, 1});
  Tensor b = makeTensor({4}, {0, 0, 1, 0});
  double a = 1.0606601717798212, c = 0.35355339059327373;
  // The second row is constant: (x - mean) = 0, so the result is b.
  EXPECT_TENSOR(layerNorm(x, w, b, 0.75), Shape({2, 4}),
                Values({-a, -2 * c, c + 1, a, 0, 0, 1, 0}), kTol);
  // eps = 0: divide by sqrt(1.25).
  Tensor x1 = makeTensor({4}, {1, 2, 3, 4});
  Tensor ones = makeTensor({4}, {1, 1, 1, 1});
  Tensor zeros({4});
  double s = std::sqrt(1.25);
  EXPECT_TENSOR(layerNorm(x1, ones, zeros, 0.0), Shape({4}),
                Values({-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s}), kTol);

  // RMS of [1, 7] is 5 (mean square 25); of [2, 2] with eps 5 is 3.
  Tensor xr = makeTensor({2, 2}, {1, 7, 2, 2});
  Tensor wr = makeTensor({2}, {2, 1});
  EXPECT_TENSOR(rmsNorm(makeTensor({1, 2}, {1, 7}), wr, 0.0), Shape({1, 2}),
                Values({0.4, 1.4}), kTol);
  EXPECT_TENSOR(rmsNorm(makeTensor({1, 2}, {2, 2}), wr, 5.0), Shape({1, 2}),
                Values({4.0 / 3, 2.0 / 3}), kTol);
  // Both rows at once, eps 0: the second row is [2, 2] / 2 · w.
  EXPECT_TENSOR(rmsNorm(xr, wr, 0.0), Shape({2, 2}), Values({0.4, 1.4, 2, 1}),
                kTol);
}

TEST(Reference, Add) {
  Tensor a = makeTensor({2, 2}, {1, 2, 3, 4});
  Tensor b = makeTensor({2, 2}, {0.5, -2, 10, 0});
  EXPECT_TENSOR(add(a, b), Shape({2, 2}), Values({1.5, 0, 13, 4}), kTol);
}

TEST(Reference, TransformerBlock) {
  const int64_t batch = 2, seq = 3, hidden = 4, d = 2, f = 3;
  struct Config {
    int64_t heads, kvHeads;
    Activation act;
    NormKind norm;
  };
  const Config configs[] = {
      {2, 2, Activation::Gelu, NormKind::LayerNorm},
      {2, 1, Activation::SwiGLU, NormKind::RMSNorm},
      {4, 2, Activation::GeGLU, NormKind::LayerNorm},
      {2, 1, Activation::GeluTanh, NormKind::RMSNorm},
  };
  uint32_t state = 12345;
  for (const Config &c : configs) {
    Tensor x = randomTensor({batch, seq, hidden}, state);
    BlockWeights w = randomBlockWeights(hidden, c.heads, c.kvHeads, d, f, c.act,
                                        c.norm, state);
    for (bool causal : {false, true}) {
      Tensor y = transformerBlock(x, w, c.heads, c.kvHeads, causal, c.act,
                                  c.norm, 1e-5);
      Tensor expected =
          manualBlock(x, w, c.heads, c.kvHeads, causal, c.act, c.norm, 1e-5);
      EXPECT_TRUE(y.shape == Shape({batch, seq, hidden}));
      EXPECT_CLOSE(relativeError(y, expected), 0.0, 1e-14);
    }
    // Causal differs from non-causal on the first positions, but the last
    // position sees every key either way.
    Tensor yc =
        transformerBlock(x, w, c.heads, c.kvHeads, true, c.act, c.norm, 1e-5);
    Tensor yn =
        transformerBlock(x, w, c.heads, c.kvHeads, false, c.act, c.norm, 1e-5);
    double firstDiff = 0, lastDiff = 0;
    for (int64_t i = 0; i < hidden; ++i) {
      firstDiff += std::fabs(yc.data[size_t(i)] - yn.data[size_t(i)]);
      size_t last = size_t((seq - 1) * hidden + i);
      lastDiff += std::fabs(yc.data[last] - yn.data[last]);
    }
    EXPECT_TRUE(firstDiff > 1e-6);
    EXPECT_CLOSE(lastDiff, 0.0, 1e-14);
  }

  // Zero wO and wOut: both branches add 0, so y = x.
  {
    Tensor x = randomTensor({batch, seq, hidden}, state);
    BlockWeights w = randomBlockWeights(hidden, 2, 1, d, f, Activation::Relu,
                                        NormKind::LayerNorm, state);
    w.wO = Tensor({2 * d, hidden});
    w.wOut = Tensor({f, hidden});
    Tensor y = transformerBlock(x, w, 2, 1, true, Activation::Relu,
                                NormKind::LayerNorm, 1e-5);
    EXPECT_CLOSE(relativeError(y, x), 0.0, 0.0);
  }

  // S = 1 with GQA (heads 2, kvHeads 1) and a zero FFN: attention returns
  // V, both q heads read kv head 0, so y = x + [v, v]·wO with
  // v = rmsNorm(x)·wV, computed without any head split.
  {
    Tensor x = randomTensor({1, 1, hidden}, state);
    BlockWeights w = randomBlockWeights(hidden, 2, 1, d, f, Activation::Silu,
                                        NormKind::RMSNorm, state);
    w.wOut = Tensor({f, hidden});
    Tensor v = linear(rmsNorm(x, w.norm1Weight, 1e-5), w.wV, nullptr);
    Tensor merged =
        makeTensor({1, 1, 2 * d}, {v.data[0], v.data[1], v.data[0], v.data[1]});
    Tensor expected = add(x, linear(merged, w.wO, nullptr));
    Tensor y = transformerBlock(x, w, 2, 1, false, Activation::Silu,
                                NormKind::RMSNorm, 1e-5);
    EXPECT_CLOSE(relativeError(y, expected), 0.0, 1e-14);
  }
}

TEST(Reference, OutputErrorForgivesTheSubnormalRange) {
  // bf16 gradients of about 1e-39 (subnormal; a softmax scale near 2^-126
  // gives them) flushed to zero: both subnormal, no difference counted.
  Tensor tiny = makeTensor({4}, {1e-39, -2e-39, 3e-39, 5e-40});
  Tensor zeros = makeTensor({4}, {0, 0, 0, 0});
  EXPECT_GT(relativeError(zeros, tiny), 0.99);
  EXPECT_CLOSE(outputError(zeros, tiny, DType::BF16), 0.0, 0.0);
  // Normal values are measured as before, small ones too (f16's 1e-3 is
  // normal: a 6% error fails).
  EXPECT_CLOSE(outputError(makeTensor({2}, {3.3, 4.4}),
                           makeTensor({2}, {3, 4}), DType::BF16),
               0.1, 1e-15);
  EXPECT_CLOSE(outputError(makeTensor({1}, {1.06e-3}), makeTensor({1}, {1e-3}),
                           DType::F16),
               0.06, 1e-12);
  // One element of `type` read as zero against the reference `value`.
  auto lost = [](double value, DType type) {
    return outputError(makeTensor({1}, {0}), makeTensor({1}, {value}), type);
  };
  // A normal value lost still fails, and so does a subnormal output where
  // the reference is normal.
  EXPECT_CLOSE(lost(1e-37, DType::BF16), 1.0, 0.0);
  // f16's subnormal range ends at 2^-14 (6.1e-5); f32's at 2^-126.
  EXPECT_CLOSE(lost(3e-5, DType::F16), 0.0, 0.0);
  EXPECT_CLOSE(lost(1e-4, DType::F16), 1.0, 0.0);
  EXPECT_CLOSE(lost(1e-4, DType::F32), 1.0, 0.0);
}

TEST(Reference, RelativeError) {
  Tensor ref = makeTensor({2}, {3, 4});
  EXPECT_CLOSE(relativeError(makeTensor({2}, {3.3, 4.4}), ref), 0.1, 1e-15);
  EXPECT_CLOSE(relativeError(ref, ref), 0.0, 0.0);
  EXPECT_IS_NAN(relativeError(
      makeTensor({2}, {std::numeric_limits<double>::quiet_NaN(), 4}), ref));
  // A NaN out must give NaN even where the reference is NaN-free and the
  // other elements are huge.
  EXPECT_IS_NAN(relativeError(
      makeTensor({2}, {1e300, std::numeric_limits<double>::quiet_NaN()}), ref));
  // Zero reference: the absolute error.
  EXPECT_CLOSE(relativeError(makeTensor({2}, {3, 4}), Tensor({2})), 5.0, 1e-15);
  // Shape mismatch (same element count): +inf.
  double mismatch = relativeError(makeTensor({1, 2}, {3, 4}), ref);
  EXPECT_TRUE(std::isinf(mismatch) && mismatch > 0);
  // Infinities (a row's log-sum-exp without keys) must match exactly and
  // then count in neither norm.
  double inf = std::numeric_limits<double>::infinity();
  Tensor withInf = makeTensor({3}, {-inf, 3, 4});
  EXPECT_CLOSE(relativeError(makeTensor({3}, {-inf, 3.3, 4.4}), withInf), 0.1,
               1e-15);
  EXPECT_CLOSE(relativeError(makeTensor({3}, {-1e30, 3, 4}), withInf), inf,
               0.0);
  EXPECT_CLOSE(relativeError(makeTensor({3}, {inf, 3, 4}), withInf), inf, 0.0);
}

TEST(Reference, BF16) {
  EXPECT_BITS(floatToBF16Bits(1.0f), 0x3F80);
  EXPECT_BITS(floatToBF16Bits(-1.0f), 0xBF80);
  EXPECT_BITS(floatToBF16Bits(0.0f), 0x0000);
  EXPECT_BITS(floatToBF16Bits(-0.0f), 0x8000);
  // 1 + 2^-8 is halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81).
  EXPECT_BITS(floatToBF16Bits(1.0f + 0x1p-8f), 0x3F80);
  // 1 + 3·2^-8 is halfway between 0x3F81 and 0x3F82 (even).
  EXPECT_BITS(floatToBF16Bits(1.0f + 3 * 0x1p-8f), 0x3F82);
  // Just above half rounds up.
  EXPECT_BITS(floatToBF16Bits(1.0f + 0x1p-8f + 0x1p-20f), 0x3F81);
  // Just below half rounds down.
  EXPECT_BITS(floatToBF16Bits(floatFromBits(0x3F807FFFu)), 0x3F80);
  // Overflow: FLT_MAX rounds past bf16's max (0x7F7F) to inf.
  EXPECT_BITS(floatToBF16Bits(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_BITS(floatToBF16Bits(-std::numeric_limits<float>::max()), 0xFF80);
  EXPECT_BITS(floatToBF16Bits(std::numeric_limits<float>::infinity()), 0x7F80);
  // NaN stays NaN, including one whose payload is only in the low bits
  // (plain truncation would turn it into inf).
  EXPECT_IS_NAN(bf16BitsToFloat(
      floatToBF16Bits(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_IS_NAN(bf16BitsToFloat(floatToBF16Bits(floatFromBits(0x7F800001u))));
  EXPECT_IS_NAN(bf16BitsToFloat(floatToBF16Bits(floatFromBits(0xFF800001u))));
  EXPECT_CLOSE(bf16BitsToFloat(0x3F81), 1.0078125, 0.0);
  EXPECT_CLOSE(bf16BitsToFloat(0xC040), -3.0, 0.0);
  // Every non-NaN bf16 round-trips through float exactly.
  int roundTripFailures = 0;
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    float f = bf16BitsToFloat(uint16_t(b));
    if (!std::isnan(f) && floatToBF16Bits(f) != b)
      ++roundTripFailures;
  }
  EXPECT_TRUE(roundTripFailures == 0);
}

TEST(Reference, F16) {
  EXPECT_BITS(floatToF16Bits(1.0f), 0x3C00);
  EXPECT_BITS(floatToF16Bits(-2.0f), 0xC000);
  EXPECT_BITS(floatToF16Bits(-0.0f), 0x8000);
  EXPECT_BITS(floatToF16Bits(65504.0f), 0x7BFF);
  // 1 + 2^-11 is halfway between 1 (0x3C00, even) and 1 + 2^-10 (0x3C01).
  EXPECT_BITS(floatToF16Bits(1.0f + 0x1p-11f), 0x3C00);
  // 1 + 3·2^-11 is halfway between 0x3C01 and 0x3C02 (even).
  EXPECT_BITS(floatToF16Bits(1.0f + 3 * 0x1p-11f), 0x3C02);
  EXPECT_BITS(floatToF16Bits(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
  // 1/3 rounds to 0x3555.
  EXPECT_BITS(floatToF16Bits(1.0f / 3.0f), 0x3555);
  // Overflow: 65519 rounds down to the max; 65520 is the tie between 65504
  // (odd mantissa) and 2^16, so it rounds to inf, as do larger values.
  EXPECT_BITS(floatToF16Bits(65519.0f), 0x7BFF);
  EXPECT_BITS(floatToF16Bits(65520.0f), 0x7C00);
  EXPECT_BITS(floatToF16Bits(1e6f), 0x7C00);
  EXPECT_BITS(floatToF16Bits(-1e6f), 0xFC00);
  EXPECT_BITS(floatToF16Bits(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_BITS(floatToF16Bits(-std::numeric_limits<float>::infinity()), 0xFC00);
  // NaN stays NaN, low-bit payloads included.
  EXPECT_IS_NAN(
      f16BitsToFloat(floatToF16Bits(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_IS_NAN(f16BitsToFloat(floatToF16Bits(floatFromBits(0x7F800001u))));
  EXPECT_IS_NAN(f16BitsToFloat(floatToF16Bits(floatFromBits(0xFF800001u))));
  EXPECT_IS_NAN(f16BitsToFloat(0x7E00));
  EXPECT_TRUE(std::isinf(f16BitsToFloat(0x7C00)));
  // Subnormals: 2^-24 is the smallest; 2^-25 is the tie with 0 (even);
  // 1.5·2^-25 rounds up to 2^-24; 3·2^-25 is the tie between 1 and 2 units
  // (even: 2); 2^-14 - 2^-25 is the tie between 0x03FF and the smallest
  // normal 0x0400 (even: 0x0400).
  EXPECT_BITS(floatToF16Bits(0x1p-24f), 0x0001);
  EXPECT_BITS(floatToF16Bits(-0x1p-24f), 0x8001);
  EXPECT_BITS(floatToF16Bits(0x1p-25f), 0x0000);
  EXPECT_BITS(floatToF16Bits(0x1.8p-25f), 0x0001);
  EXPECT_BITS(floatToF16Bits(3 * 0x1p-25f), 0x0002);
  EXPECT_BITS(floatToF16Bits(0x1p-14f - 0x1p-25f), 0x0400);
  EXPECT_BITS(floatToF16Bits(0x1p-14f), 0x0400);
  EXPECT_BITS(floatToF16Bits(0x1p-26f), 0x0000);
  EXPECT_BITS(floatToF16Bits(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_CLOSE(f16BitsToFloat(0x0001), 0x1p-24, 0.0);
  EXPECT_CLOSE(f16BitsToFloat(0x03FF), 1023 * 0x1p-24, 0.0);
  EXPECT_CLOSE(f16BitsToFloat(0x8001), -0x1p-24, 0.0);
  EXPECT_CLOSE(f16BitsToFloat(0x7BFF), 65504.0, 0.0);
  EXPECT_CLOSE(f16BitsToFloat(0x3555), 0.333251953125, 0.0);
  // Every non-NaN f16 round-trips through float exactly.
  int roundTripFailures = 0;
  for (uint32_t b = 0; b <= 0xFFFF; ++b) {
    float f = f16BitsToFloat(uint16_t(b));
    if (!std::isnan(f) && floatToF16Bits(f) != b)
      ++roundTripFailures;
  }
  EXPECT_TRUE(roundTripFailures == 0);
}

//===----------------------------------------------------------------------===//
// Backward of the block and its pieces, by finite differences
//===----------------------------------------------------------------------===//
//
// Each backward is checked against central differences of the loss
// L = Σ dOut ∘ forward(operands), with a random dOut, at every element of
// every operand: the step is 1e-5 · max(1, |element|), and the error of a
// gradient tensor is ‖analytic − numeric‖ / ‖numeric‖. (The step balances
// the differences' truncation error, O(step²), against the rounding of the
// loss, O(1e-16 / step): at 1e-6 the rounding alone reaches 1e-7 on the
// block's smallest gradients, at 1e-5 the largest error seen is 3e-8.)

namespace {

/// One operand whose gradient is checked: `input` is perturbed in place
/// (the loss reads it), `grad` is the analytic gradient.
struct GradientCheck {
  std::string name;
  Tensor *input;
  const Tensor *grad;
};

/// ‖c.grad − numeric‖ / ‖numeric‖ (the absolute error where the numeric
/// gradient is 0), with the numeric gradient from central differences of
/// `loss` at every element of c.input; +inf if the shapes differ.
double finiteDifferenceError(const std::function<double()> &loss,
                             const GradientCheck &c) {
  if (c.grad->shape != c.input->shape)
    return std::numeric_limits<double>::infinity();
  double diffSquares = 0, refSquares = 0;
  for (size_t i = 0; i < c.input->data.size(); ++i) {
    double saved = c.input->data[i];
    double h = 1e-5 * std::max(1.0, std::fabs(saved));
    c.input->data[i] = saved + h;
    double up = loss();
    c.input->data[i] = saved - h;
    double down = loss();
    c.input->data[i] = saved;
    double numeric = (up - down) / (2 * h);
    double diff = c.grad->data[i] - numeric;
    diffSquares += diff * diff;
    refSquares += numeric * numeric;
  }
  return refSquares == 0 ? std::sqrt(diffSquares)
                         : std::sqrt(diffSquares / refSquares);
}

/// Checks every gradient of `checks` by finiteDifferenceError, failing the
/// test where one exceeds `tol` (or is NaN). Returns the largest error.
double checkByFiniteDifferences(const std::function<double()> &loss,
                                const std::vector<GradientCheck> &checks,
                                double tol) {
  double worst = 0;
  for (const GradientCheck &c : checks) {
    double err = finiteDifferenceError(loss, c);
    EXPECT_LE(err, tol) << c.name;
    EXPECT_FALSE(std::isnan(err)) << c.name;
    worst = std::max(worst, err);
  }
  return worst;
}

/// Σ dOut ∘ out.
double dotLoss(const Tensor &out, const Tensor &dOut) {
  double l = 0;
  for (size_t i = 0; i < out.data.size(); ++i)
    l += out.data[i] * dOut.data[i];
  return l;
}

/// A random tensor with values in [-scale, scale).
Tensor randomScaled(Shape shape, double scale, uint64_t &state) {
  Tensor t = randomTensor(std::move(shape), state);
  for (double &x : t.data)
    x *= scale;
  return t;
}

/// The finite-difference tolerance of every backward test.
const double kGradTol = 1e-7;

/// Prints the largest error of a test, for the record of the lit log.
void reportWorst(const char *what, double worst) {
  std::printf("[ fd      ] %s: max relative error %.1e\n", what, worst);
}

const char *activationName(Activation a) {
  switch (a) {
  case Activation::Gelu:
    return "gelu";
  case Activation::GeluTanh:
    return "gelu_tanh";
  case Activation::Relu:
    return "relu";
  case Activation::Silu:
    return "silu";
  case Activation::SwiGLU:
    return "swiglu";
  case Activation::GeGLU:
    return "geglu";
  }
  return "?";
}

const Activation kAllActivations[] = {Activation::Gelu,   Activation::GeluTanh,
                                      Activation::Relu,   Activation::Silu,
                                      Activation::SwiGLU, Activation::GeGLU};

} // namespace

TEST(Reference, LinearBackward) {
  uint64_t state = 11;
  double worst = 0;
  for (bool withBias : {true, false}) {
    Tensor x = randomTensor({2, 3, 4}, state), w = randomTensor({4, 5}, state),
           b = randomTensor({5}, state), dO = randomTensor({2, 3, 5}, state);
    const Tensor *bias = withBias ? &b : nullptr;
    LinearGradients g = linearBackward(x, w, bias, dO);
    auto loss = [&] { return dotLoss(linear(x, w, bias), dO); };
    std::vector<GradientCheck> checks = {{"dx", &x, &g.dx}, {"dw", &w, &g.dw}};
    if (withBias)
      checks.push_back({"db", &b, &g.db});
    else
      EXPECT_EQ(g.db.numElements(), 0);
    worst = std::max(worst, checkByFiniteDifferences(loss, checks, kGradTol));
  }
  // Hand-computed: x [1, 2], w [2, 1] = [3, 4]ᵀ, dOut [2]: dx = 2·[3, 4],
  // dw = [1, 2]ᵀ·2, db = 2.
  Tensor x = makeTensor({1, 2}, {1, 2}), w = makeTensor({2, 1}, {3, 4}),
         b = makeTensor({1}, {0.5}), dO = makeTensor({1, 1}, {2});
  LinearGradients g = linearBackward(x, w, &b, dO);
  EXPECT_TENSOR(g.dx, Shape({1, 2}), Values({6, 8}), kTol);
  EXPECT_TENSOR(g.dw, Shape({2, 1}), Values({2, 4}), kTol);
  EXPECT_TENSOR(g.db, Shape({1}), Values({2}), kTol);
  reportWorst("linearBackward", worst);

  // The check resolves errors well below its tolerance's tenfold: one
  // element of dw off by 1e-6 of the tensor's norm fails it.
  Tensor x2 = randomTensor({3, 4}, state), w2 = randomTensor({4, 2}, state),
         dO2 = randomTensor({3, 2}, state);
  LinearGradients wrong = linearBackward(x2, w2, nullptr, dO2);
  double norm = 0;
  for (double v : wrong.dw.data)
    norm += v * v;
  wrong.dw.data[3] += 1e-6 * std::sqrt(norm);
  double err = finiteDifferenceError(
      [&] { return dotLoss(linear(x2, w2, nullptr), dO2); },
      {"dw", &w2, &wrong.dw});
  EXPECT_GT(err, 5e-7);
  EXPECT_LT(err, 2e-6);
}

TEST(Reference, FFNBackward) {
  // x in [-3, 3) so that the activations are exercised beyond their linear
  // part (gelu's dip, silu's minimum, relu's dead side).
  uint64_t state = 21;
  const int64_t h = 4, f = 6;
  double worst = 0;
  for (Activation act : kAllActivations) {
    SCOPED_TRACE(activationName(act));
    Tensor x = randomScaled({2, 3, h}, 3.0, state);
    Tensor wIn = randomScaled({h, f}, 0.5, state);
    Tensor wOut = randomScaled({f, h}, 0.5, state);
    Tensor wGate = randomScaled({h, f}, 0.5, state);
    Tensor dO = randomTensor({2, 3, h}, state);
    const Tensor *gate = isGated(act) ? &wGate : nullptr;
    FFNGradients g = ffnBackward(x, wIn, wOut, gate, act, dO);
    auto loss = [&] { return dotLoss(ffn(x, wIn, wOut, gate, act), dO); };
    std::vector<GradientCheck> checks = {
        {"dx", &x, &g.dx}, {"dwIn", &wIn, &g.dwIn}, {"dwOut", &wOut, &g.dwOut}};
    if (gate)
      checks.push_back({"dwGate", &wGate, &g.dwGate});
    else
      EXPECT_EQ(g.dwGate.numElements(), 0);
    double err = checkByFiniteDifferences(loss, checks, kGradTol);
    std::printf("[ fd      ] ffnBackward %s: %.1e\n", activationName(act), err);
    worst = std::max(worst, err);
  }
  reportWorst("ffnBackward", worst);
}

TEST(Reference, ActivationDerivatives) {
  // d/dx of ffn at H = F = 1 with unit matrices is act'(x) (gated: the
  // product rule on act(g·x)·(u·x)), compared with hand values:
  // gelu'(1) = Φ(1) + φ(1), silu'(1) = σ(1)(1 + 1 − σ(1)), relu' = [x > 0].
  auto dAt = [](Activation act, double x, double up = 1.0, double gate = 1.0) {
    Tensor in = makeTensor({1, 1}, {x}), dO = makeTensor({1, 1}, {1});
    Tensor wGate = scalarMatrix(gate);
    return ffnBackward(in, scalarMatrix(up), scalarMatrix(1.0),
                       isGated(act) ? &wGate : nullptr, act, dO)
        .dx.data[0];
  };
  double phi1 = std::exp(-0.5) / std::sqrt(2 * 3.14159265358979323846);
  EXPECT_CLOSE(dAt(Activation::Gelu, 1.0), 0.8413447460685429 + phi1, 1e-15);
  double s1 = 0.7310585786300049;
  EXPECT_CLOSE(dAt(Activation::Silu, 1.0), s1 * (2 - s1), 1e-15);
  EXPECT_CLOSE(dAt(Activation::Relu, 2.0), 1.0, 0.0);
  EXPECT_CLOSE(dAt(Activation::Relu, -2.0), 0.0, 0.0);
  EXPECT_CLOSE(dAt(Activation::Relu, 0.0), 0.0, 0.0);
  // gelu_tanh'(0) = 1/2 (the tanh form agrees with gelu to first order).
  EXPECT_CLOSE(dAt(Activation::GeluTanh, 0.0), 0.5, 1e-15);
  // SwiGLU at x = 1, wGate = 2, wIn = 3: d/dx [silu(2x)·3x] =
  // 2·silu'(2)·3 + silu(2)·3.
  double s2 = 1.0 / (1.0 + std::exp(-2.0));
  double silu2 = 2 * s2, dSilu2 = s2 * (1 + 2 * (1 - s2));
  EXPECT_CLOSE(dAt(Activation::SwiGLU, 1.0, 3.0, 2.0), 6 * dSilu2 + 3 * silu2,
               1e-14);
}

TEST(Reference, NormBackward) {
  uint64_t state = 31;
  double worstLayer = 0, worstRMS = 0;
  for (double eps : {1e-5, 0.0, 0.5}) {
    // Rows with an offset, so that the mean matters to LayerNorm.
    Tensor x = randomTensor({2, 3, 5}, state);
    for (size_t i = 0; i < x.data.size(); ++i)
      x.data[i] += double(i % 3) - 1;
    Tensor w = randomTensor({5}, state), b = randomTensor({5}, state),
           dO = randomTensor({2, 3, 5}, state);
    LayerNormGradients gl = layerNormBackward(x, w, b, eps, dO);
    worstLayer = std::max(
        worstLayer, checkByFiniteDifferences(
                        [&] { return dotLoss(layerNorm(x, w, b, eps), dO); },
                        {{"layerNorm dx", &x, &gl.dx},
                         {"layerNorm dw", &w, &gl.dw},
                         {"layerNorm db", &b, &gl.db}},
                        kGradTol));
    RMSNormGradients gr = rmsNormBackward(x, w, eps, dO);
    worstRMS = std::max(
        worstRMS, checkByFiniteDifferences(
                      [&] { return dotLoss(rmsNorm(x, w, eps), dO); },
                      {{"rmsNorm dx", &x, &gr.dx}, {"rmsNorm dw", &w, &gr.dw}},
                      kGradTol));
  }
  // LayerNorm's output does not change when a constant is added to a row,
  // so each row of dx sums to 0.
  Tensor x = randomTensor({3, 4}, state), w = randomTensor({4}, state),
         b = randomTensor({4}, state), dO = randomTensor({3, 4}, state);
  LayerNormGradients g = layerNormBackward(x, w, b, 1e-5, dO);
  for (int64_t r = 0; r < 3; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < 4; ++i)
      sum += g.dx.data[size_t(r * 4 + i)];
    EXPECT_CLOSE(sum, 0.0, 1e-14);
  }
  // RMSNorm with eps = 0 is scale-invariant: dx·x = 0 per row.
  RMSNormGradients gr = rmsNormBackward(x, w, 0.0, dO);
  for (int64_t r = 0; r < 3; ++r) {
    double dot = 0;
    for (int64_t i = 0; i < 4; ++i)
      dot += gr.dx.data[size_t(r * 4 + i)] * x.data[size_t(r * 4 + i)];
    EXPECT_CLOSE(dot, 0.0, 1e-14);
  }
  reportWorst("layerNormBackward", worstLayer);
  reportWorst("rmsNormBackward", worstRMS);
}

TEST(Reference, AddBackward) {
  Tensor a = makeTensor({2}, {1, 2}), b = makeTensor({2}, {3, 4}),
         dO = makeTensor({2}, {0.5, -1});
  AddGradients g = addBackward(a, b, dO);
  EXPECT_TENSOR(g.da, Shape({2}), Values({0.5, -1}), 0.0);
  EXPECT_TENSOR(g.db, Shape({2}), Values({0.5, -1}), 0.0);
}

namespace {

/// The sizes of a block under test.
struct BlockSizes {
  int64_t batch, seq, hidden, heads, kvHeads, d, f;
};

/// Checks transformerBlockBackward by finite differences at every element
/// of x and of every weight; returns the largest relative error. Matrices
/// are scaled by 1/sqrt(rows) so that the scores and FFN inputs stay of
/// order one (no saturated softmax).
double checkBlockBackward(const BlockSizes &sizes, bool causal, Activation act,
                          NormKind norm, uint64_t seed) {
  const int64_t batch = sizes.batch, seq = sizes.seq, hidden = sizes.hidden,
                heads = sizes.heads, kvHeads = sizes.kvHeads, d = sizes.d,
                f = sizes.f;
  const double eps = 1e-5;
  uint64_t state = seed;
  Tensor x = randomTensor({batch, seq, hidden}, state);
  auto matrix = [&](int64_t rows, int64_t cols) {
    return randomScaled({rows, cols}, 1.0 / std::sqrt(double(rows)), state);
  };
  BlockWeights w;
  w.norm1Weight = randomTensor({hidden}, state);
  w.norm2Weight = randomTensor({hidden}, state);
  if (norm == NormKind::LayerNorm) {
    w.norm1Bias = randomTensor({hidden}, state);
    w.norm2Bias = randomTensor({hidden}, state);
  }
  w.wQ = matrix(hidden, heads * d);
  w.wK = matrix(hidden, kvHeads * d);
  w.wV = matrix(hidden, kvHeads * d);
  w.wO = matrix(heads * d, hidden);
  w.wIn = matrix(hidden, f);
  w.wOut = matrix(f, hidden);
  if (isGated(act))
    w.wGate = matrix(hidden, f);
  Tensor dO = randomTensor({batch, seq, hidden}, state);

  BlockGradients g = transformerBlockBackward(x, w, heads, kvHeads, causal, act,
                                              norm, eps, dO);
  auto loss = [&] {
    return dotLoss(
        transformerBlock(x, w, heads, kvHeads, causal, act, norm, eps), dO);
  };
  std::vector<GradientCheck> checks = {
      {"dx", &x, &g.dx},
      {"dNorm1Weight", &w.norm1Weight, &g.dw.norm1Weight},
      {"dwQ", &w.wQ, &g.dw.wQ},
      {"dwK", &w.wK, &g.dw.wK},
      {"dwV", &w.wV, &g.dw.wV},
      {"dwO", &w.wO, &g.dw.wO},
      {"dNorm2Weight", &w.norm2Weight, &g.dw.norm2Weight},
      {"dwIn", &w.wIn, &g.dw.wIn},
      {"dwOut", &w.wOut, &g.dw.wOut}};
  if (norm == NormKind::LayerNorm) {
    checks.push_back({"dNorm1Bias", &w.norm1Bias, &g.dw.norm1Bias});
    checks.push_back({"dNorm2Bias", &w.norm2Bias, &g.dw.norm2Bias});
  } else {
    EXPECT_EQ(g.dw.norm1Bias.numElements(), 0);
    EXPECT_EQ(g.dw.norm2Bias.numElements(), 0);
  }
  if (isGated(act))
    checks.push_back({"dwGate", &w.wGate, &g.dw.wGate});
  else
    EXPECT_EQ(g.dw.wGate.numElements(), 0);
  return checkByFiniteDifferences(loss, checks, kGradTol);
}

} // namespace

TEST(Reference, TransformerBlockBackward) {
  // Every activation with both norms; MHA (4:4), GQA (4:2) and MQA (4:1)
  // in turn; causal and not. Sq = Skv (self-attention). No two sizes are
  // equal (hidden 6, heads·D 8, F 5), so a swapped index cannot hide.
  const int64_t kvHeadChoices[] = {4, 2, 1};
  double worst = 0;
  uint64_t seed = 41;
  int config = 0;
  for (Activation act : kAllActivations) {
    for (NormKind norm : {NormKind::LayerNorm, NormKind::RMSNorm}) {
      int64_t kvHeads = kvHeadChoices[config++ % 3];
      for (bool causal : {false, true}) {
        SCOPED_TRACE(
            std::string(activationName(act)) +
            (norm == NormKind::LayerNorm ? " layer_norm" : " rms_norm") +
            " heads 4:" + std::to_string(kvHeads) + (causal ? " causal" : ""));
        double err = checkBlockBackward({2, 3, 6, 4, kvHeads, 2, 5}, causal,
                                        act, norm, seed++);
        std::printf("[ fd      ] transformerBlockBackward %s %s 4:%lld%s: "
                    "%.1e\n",
                    activationName(act),
                    norm == NormKind::LayerNorm ? "layer_norm" : "rms_norm",
                    static_cast<long long>(kvHeads), causal ? " causal" : "",
                    err);
        worst = std::max(worst, err);
      }
    }
  }
  // Longer sequences and wider heads: S 7, 6:3 heads of D 3, hidden 10,
  // F 12; and one batch of a single position (every row sees one key).
  for (bool causal : {false, true}) {
    worst = std::max(worst, checkBlockBackward({1, 7, 10, 6, 3, 3, 12}, causal,
                                               Activation::SwiGLU,
                                               NormKind::RMSNorm, seed++));
    worst = std::max(worst, checkBlockBackward({3, 1, 5, 2, 1, 4, 3}, causal,
                                               Activation::Gelu,
                                               NormKind::LayerNorm, seed++));
  }
  reportWorst("transformerBlockBackward", worst);
}
