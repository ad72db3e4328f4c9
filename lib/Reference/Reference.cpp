//===- Reference.cpp - float64 reference of the model-level ops -----------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Plain loops in double precision: this is the oracle, so every function is
// written to be checked by reading. Memory beyond the operands and the result
// is at most one row a thread (of attention scores, or of FFN hidden units),
// except in the block, whose forward and backward keep its [B, S, ·]
// intermediates, and the FFN backward, which keeps its [rows, ffn]
// activation gradients for the weight gradients.
// The backward functions recompute the forward rather than take saved
// state, so each is a function of the forward's operands and dOut alone.
//
// Speed matters too: bpt-run checks GPU results against it on the device's
// host, whose minutes are scarce. Loops run along contiguous rows, and
// independent outputs (rows of a result, heads of an attention) are split
// across the cores by parallelFor; each output element is written by one
// thread in a fixed order, so results do not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "bpt/Reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace bpt::ref;

//===----------------------------------------------------------------------===//
// Checking helpers
//===----------------------------------------------------------------------===//

namespace {

/// Reports a programmer error in the reference function `fn` and aborts.
[[noreturn]] void fail(const char *fn, const std::string &message) {
  std::fprintf(stderr, "bpt::ref::%s: %s\n", fn, message.c_str());
  std::fflush(stderr);
  std::abort();
}

/// Prints a shape as "[2, 3, 4]".
std::string shapeToString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// Aborts unless `t` (the operand `name` of `fn`) has rank `rank`; `layout`
/// names the dimensions for the message, e.g. "[B, H, S, D]".
void expectRank(const char *fn, const char *name, const Tensor &t, size_t rank,
                const char *layout) {
  if (t.shape.size() != rank)
    fail(fn, std::string(name) + " must have rank " + std::to_string(rank) +
                 " " + layout + ", got shape " + shapeToString(t.shape));
}

/// Aborts unless `t` (the operand `name` of `fn`) has rank >= 1.
void expectRankAtLeastOne(const char *fn, const char *name, const Tensor &t,
                          const char *layout) {
  if (t.shape.empty())
    fail(fn, std::string(name) + " must have rank >= 1 " + layout +
                 ", got an empty (rank-0) tensor");
}

/// Aborts unless `t` (the operand `name` of `fn`) has exactly the shape
/// `expected`; `layout` names the dimensions for the message.
void expectShape(const char *fn, const char *name, const Tensor &t,
                 const std::vector<int64_t> &expected, const char *layout) {
  if (t.shape != expected)
    fail(fn, std::string(name) + " must have shape " + shapeToString(expected) +
                 " " + layout + ", got " + shapeToString(t.shape));
}

/// Aborts unless `eps` is finite and non-negative.
void expectEpsilon(const char *fn, double eps) {
  if (!std::isfinite(eps) || eps < 0)
    fail(fn, "eps must be finite and >= 0, got " + std::to_string(eps));
}

/// The product of all dimensions but the last: the number of rows that an op
/// over the last dimension processes.
int64_t numRows(const Tensor &t) {
  int64_t rows = 1;
  for (size_t i = 0; i + 1 < t.shape.size(); ++i)
    rows *= t.shape[i];
  return rows;
}

/// Calls body(begin, end) on consecutive ranges covering [0, n), one range
/// a thread, on as many threads as the machine has cores, but at most one a
/// million multiply-adds (`work` is an index's): small calls, such as the
/// unit tests' finite differences, stay on the calling thread. The body
/// must write only outputs owned by its indices.
template <typename Body> void parallelFor(int64_t n, int64_t work, Body body) {
  constexpr int64_t kWorkPerThread = int64_t(1) << 20;
  int64_t threads = std::min<int64_t>(
      {n, std::max<int64_t>(1, n * work / kWorkPerThread),
       std::max<unsigned>(1, std::thread::hardware_concurrency())});
  if (threads <= 1) {
    if (n > 0)
      body(int64_t(0), n);
    return;
  }
  int64_t each = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int64_t begin = 0; begin < n; begin += each)
    pool.emplace_back(body, begin, std::min(n, begin + each));
  for (std::thread &t : pool)
    t.join();
}

/// out[r, :] (n columns) = Σ_i a[r, i] · b[i, :] for rows [begin, end) of
/// a [rows, k] and b [k, n], all row-major; out's rows are set, not added.
void matmulRows(const double *a, const double *b, double *out, int64_t k,
                int64_t n, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    double *outRow = out + r * n;
    std::fill(outRow, outRow + n, 0.0);
    for (int64_t i = 0; i < k; ++i) {
      double ai = a[r * k + i];
      const double *bRow = b + i * n;
      for (int64_t c = 0; c < n; ++c)
        outRow[c] += ai * bRow[c];
    }
  }
}

/// out[i, :] += Σ_r a[r, i] · b[r, :] for rows i in [begin, end) of out
/// ([k, n]; a [rows, k], b [rows, n]): a weight gradient aᵀ·b, split by its
/// own rows so that each element has one writer.
void addTransposedMatmulRows(const double *a, const double *b, double *out,
                             int64_t rows, int64_t k, int64_t n, int64_t begin,
                             int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    double *outRow = out + i * n;
    for (int64_t r = 0; r < rows; ++r) {
      double ari = a[r * k + i];
      const double *bRow = b + r * n;
      for (int64_t c = 0; c < n; ++c)
        outRow[c] += ari * bRow[c];
    }
  }
}

/// out[r, :] += Σ_c a[r, c] · b[:, c] for rows [begin, end): a·bᵀ with a
/// [rows, n] and b [k, n], out [rows, k].
void addMatmulTransposedRows(const double *a, const double *b, double *out,
                             int64_t k, int64_t n, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const double *aRow = a + r * n;
    for (int64_t i = 0; i < k; ++i) {
      const double *bRow = b + i * n;
      double acc = 0;
      for (int64_t c = 0; c < n; ++c)
        acc += aRow[c] * bRow[c];
      out[r * k + i] += acc;
    }
  }
}

//===----------------------------------------------------------------------===//
// Activations
//===----------------------------------------------------------------------===//

/// GELU, erf form: 0.5x(1+erf(x/sqrt2)).
double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

/// GELU, tanh approximation: 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))).
double geluTanh(double x) {
  const double pi = 3.14159265358979323846;
  return 0.5 * x *
         (1.0 + std::tanh(std::sqrt(2.0 / pi) * (x + 0.044715 * x * x * x)));
}

/// SiLU: x/(1+exp(-x)).
double silu(double x) { return x / (1.0 + std::exp(-x)); }

/// ReLU: max(x, 0).
double relu(double x) { return x > 0 ? x : 0.0; }

//===----------------------------------------------------------------------===//
// Head split and merge
//===----------------------------------------------------------------------===//

/// [B, S, heads*D] -> [B, heads, S, D].
Tensor splitHeads(const Tensor &t, int64_t heads) {
  int64_t b = t.dim(0), s = t.dim(1), d = t.dim(2) / heads;
  Tensor out({b, heads, s, d});
  for (int64_t ib = 0; ib < b; ++ib)
    for (int64_t is = 0; is < s; ++is)
      for (int64_t ih = 0; ih < heads; ++ih)
        for (int64_t id = 0; id < d; ++id)
          out.data[((ib * heads + ih) * s + is) * d + id] =
              t.data[(ib * s + is) * (heads * d) + ih * d + id];
  return out;
}

/// [B, heads, S, D] -> [B, S, heads*D].
Tensor mergeHeads(const Tensor &t) {
  int64_t b = t.dim(0), heads = t.dim(1), s = t.dim(2), d = t.dim(3);
  Tensor out({b, s, heads * d});
  for (int64_t ib = 0; ib < b; ++ib)
    for (int64_t is = 0; is < s; ++is)
      for (int64_t ih = 0; ih < heads; ++ih)
        for (int64_t id = 0; id < d; ++id)
          out.data[(ib * s + is) * (heads * d) + ih * d + id] =
              t.data[((ib * heads + ih) * s + is) * d + id];
  return out;
}

} // namespace

/// The nonlinearity of `a`; for the gated activations, the one applied to
/// the gate (silu for SwiGLU, erf-gelu for GeGLU).
double bpt::ref::activate(Activation a, double x) {
  switch (a) {
  case Activation::Gelu:
  case Activation::GeGLU:
    return gelu(x);
  case Activation::GeluTanh:
    return geluTanh(x);
  case Activation::Relu:
    return relu(x);
  case Activation::Silu:
  case Activation::SwiGLU:
    return silu(x);
  }
  fail("ffn", "unknown activation " + std::to_string(static_cast<int>(a)));
}

/// d/dx of `activate(a, x)`: gelu' = Φ(x) + x·φ(x); gelu_tanh' =
/// 0.5(1+t) + 0.5x(1−t²)·sqrt(2/pi)(1+3·0.044715x²) with t the tanh;
/// silu' = σ(x)(1 + x(1−σ(x))); relu' = [x > 0].
double bpt::ref::activateDerivative(Activation a, double x) {
  const double pi = 3.14159265358979323846;
  switch (a) {
  case Activation::Gelu:
  case Activation::GeGLU:
    return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) +
           x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * pi);
  case Activation::GeluTanh: {
    double c = std::sqrt(2.0 / pi);
    double t = std::tanh(c * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) +
           0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
  }
  case Activation::Relu:
    return x > 0 ? 1.0 : 0.0;
  case Activation::Silu:
  case Activation::SwiGLU: {
    double sigmoid = 1.0 / (1.0 + std::exp(-x));
    return sigmoid * (1.0 + x * (1.0 - sigmoid));
  }
  }
  fail("ffnBackward",
       "unknown activation " + std::to_string(static_cast<int>(a)));
}

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

Tensor::Tensor(std::vector<int64_t> shapeIn) : shape(std::move(shapeIn)) {
  for (int64_t d : shape)
    if (d < 0)
      fail("Tensor", "negative dimension in shape " + shapeToString(shape));
  data.assign(static_cast<size_t>(numElements()), 0.0);
}

int64_t Tensor::numElements() const {
  if (shape.empty())
    return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

int64_t Tensor::dim(int64_t i) const {
  int64_t rank = static_cast<int64_t>(shape.size());
  int64_t index = i < 0 ? i + rank : i;
  if (index < 0 || index >= rank)
    fail("Tensor::dim", "dimension " + std::to_string(i) +
                            " out of range for shape " + shapeToString(shape));
  return shape[static_cast<size_t>(index)];
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

bool bpt::ref::isGated(Activation a) {
  return a == Activation::SwiGLU || a == Activation::GeGLU;
}

int64_t bpt::ref::visibleKeys(int64_t i, int64_t seqQ, int64_t seqKV,
                              bool causal) {
  return causal ? std::max<int64_t>(0, std::min(seqKV, i + (seqKV - seqQ) + 1))
                : seqKV;
}

namespace {

/// The shapes of one attention, checked.
struct AttentionShape {
  int64_t b, hq, sq, d, hkv, skv, group;

  AttentionShape(const char *fn, const Tensor &q, const Tensor &k,
                 const Tensor &v) {
    expectRank(fn, "q", q, 4, "[B, Hq, Sq, D]");
    expectRank(fn, "k", k, 4, "[B, Hkv, Skv, D]");
    b = q.dim(0), hq = q.dim(1), sq = q.dim(2), d = q.dim(3);
    hkv = k.dim(1), skv = k.dim(2);
    expectShape(fn, "k", k, {b, hkv, skv, d}, "[B, Hkv, Skv, D] (B, D of q)");
    expectShape(fn, "v", v, k.shape, "[B, Hkv, Skv, D] (the shape of k)");
    if (hkv == 0 || hq % hkv != 0)
      fail(fn, "query heads (" + std::to_string(hq) +
                   ") must be a multiple of key/value heads (" +
                   std::to_string(hkv) + ")");
    group = hq / hkv;
  }

  /// Keys 0 .. visible(i) - 1 are visible to query i.
  int64_t visible(int64_t i, bool causal) const {
    return visibleKeys(i, sq, skv, causal);
  }
  /// Offsets of the [S, D] matrices of query head h and its key/value head.
  int64_t queryHead(int64_t ib, int64_t h) const {
    return (ib * hq + h) * sq * d;
  }
  int64_t kvHead(int64_t ib, int64_t h) const {
    return (ib * hkv + h / group) * skv * d;
  }
};

/// The probabilities of row i (keys 0 .. p.size() - 1) and its
/// log-sum-exp; the softmax subtracts the row maximum.
double rowSoftmax(const double *qRow, const double *kHead, int64_t d,
                  double scale, std::vector<double> &p) {
  double maxScore = -std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < p.size(); ++j) {
    double dot = 0;
    for (int64_t id = 0; id < d; ++id)
      dot += qRow[id] * kHead[j * d + id];
    p[j] = scale * dot;
    maxScore = std::max(maxScore, p[j]);
  }
  double sum = 0;
  for (double &x : p) {
    x = std::exp(x - maxScore);
    sum += x;
  }
  for (double &x : p)
    x /= sum;
  return maxScore + std::log(sum);
}

} // namespace

AttentionWithLSE bpt::ref::attentionWithLSE(const Tensor &q, const Tensor &k,
                                            const Tensor &v, bool causal,
                                            double scale) {
  AttentionShape s("attention", q, k, v);
  AttentionWithLSE result{Tensor(q.shape), Tensor({s.b, s.hq, s.sq})};
  // A thread a range of (batch, query head) pairs.
  parallelFor(
      s.b * s.hq, 2 * s.sq * s.skv * s.d, [&](int64_t begin, int64_t end) {
        std::vector<double> p;
        for (int64_t bh = begin; bh < end; ++bh) {
          int64_t ib = bh / s.hq, h = bh % s.hq;
          const double *kHead = k.data.data() + s.kvHead(ib, h);
          const double *vHead = v.data.data() + s.kvHead(ib, h);
          for (int64_t i = 0; i < s.sq; ++i) {
            double &lse = result.lse.data[(ib * s.hq + h) * s.sq + i];
            p.assign(static_cast<size_t>(s.visible(i, causal)), 0.0);
            if (p.empty()) {
              // Fully masked row: output 0, log of an empty sum.
              lse = -std::numeric_limits<double>::infinity();
              continue;
            }
            lse = rowSoftmax(q.data.data() + s.queryHead(ib, h) + i * s.d,
                             kHead, s.d, scale, p);
            double *oRow =
                result.out.data.data() + s.queryHead(ib, h) + i * s.d;
            for (size_t j = 0; j < p.size(); ++j)
              for (int64_t id = 0; id < s.d; ++id)
                oRow[id] += p[j] * vHead[j * s.d + id];
          }
        }
      });
  return result;
}

Tensor bpt::ref::attention(const Tensor &q, const Tensor &k, const Tensor &v,
                           bool causal, double scale) {
  return attentionWithLSE(q, k, v, causal, scale).out;
}

namespace {

/// Adds query head h of batch ib's gradients into `g`: its dq rows, and its
/// key/value head's dk and dv (summed over the query heads of a group).
/// `p` and `dS` are a row's scratch.
void attentionHeadBackward(const AttentionShape &s, const Tensor &q,
                           const Tensor &k, const Tensor &v, const Tensor &dOut,
                           bool causal, double scale, int64_t ib, int64_t h,
                           AttentionGradients &g, std::vector<double> &p,
                           std::vector<double> &dS) {
  const double *kHead = k.data.data() + s.kvHead(ib, h);
  const double *vHead = v.data.data() + s.kvHead(ib, h);
  double *dkHead = g.dk.data.data() + s.kvHead(ib, h);
  double *dvHead = g.dv.data.data() + s.kvHead(ib, h);
  for (int64_t i = 0; i < s.sq; ++i) {
    p.assign(static_cast<size_t>(s.visible(i, causal)), 0.0);
    if (p.empty())
      continue;
    int64_t row = s.queryHead(ib, h) + i * s.d;
    const double *qRow = q.data.data() + row;
    const double *dORow = dOut.data.data() + row;
    rowSoftmax(qRow, kHead, s.d, scale, p);
    // dP_ij = dO_i · v_j, and D_i = rowsum(dO ∘ O) = Σ_j P_ij dP_ij: the
    // output itself is not needed.
    dS.assign(p.size(), 0.0);
    double rowDot = 0;
    for (size_t j = 0; j < p.size(); ++j) {
      for (int64_t id = 0; id < s.d; ++id) {
        dS[j] += dORow[id] * vHead[j * s.d + id];
        dvHead[j * s.d + id] += p[j] * dORow[id];
      }
      rowDot += p[j] * dS[j];
    }
    for (size_t j = 0; j < p.size(); ++j)
      dS[j] = p[j] * (dS[j] - rowDot);
    double *dqRow = g.dq.data.data() + row;
    for (size_t j = 0; j < p.size(); ++j)
      for (int64_t id = 0; id < s.d; ++id) {
        dqRow[id] += scale * dS[j] * kHead[j * s.d + id];
        dkHead[j * s.d + id] += scale * dS[j] * qRow[id];
      }
  }
}

} // namespace

AttentionGradients bpt::ref::attentionBackward(const Tensor &q,
                                               const Tensor &k,
                                               const Tensor &v,
                                               const Tensor &dOut, bool causal,
                                               double scale) {
  const char *fn = "attentionBackward";
  AttentionShape s(fn, q, k, v);
  expectShape(fn, "dOut", dOut, q.shape, "[B, Hq, Sq, D] (the shape of q)");
  AttentionGradients g{Tensor(q.shape), Tensor(k.shape), Tensor(v.shape)};
  // A thread a range of (batch, key/value head) pairs: dk and dv of a
  // key/value head sum over the query heads of its group, which the same
  // thread then runs in order.
  parallelFor(s.b * s.hkv, 4 * s.group * s.sq * s.skv * s.d,
              [&](int64_t begin, int64_t end) {
                std::vector<double> p, dS;
                for (int64_t bg = begin; bg < end; ++bg)
                  for (int64_t h = bg % s.hkv * s.group;
                       h < (bg % s.hkv + 1) * s.group; ++h)
                    attentionHeadBackward(s, q, k, v, dOut, causal, scale,
                                          bg / s.hkv, h, g, p, dS);
              });
  return g;
}

namespace {

/// Checks the operands of `linear` (for `fn`) and returns the result's shape.
std::vector<int64_t> checkLinearOperands(const char *fn, const Tensor &x,
                                         const Tensor &w, const Tensor *bias) {
  expectRankAtLeastOne(fn, "x", x, "[..., K]");
  expectRank(fn, "w", w, 2, "[K, N]");
  int64_t kDim = x.dim(-1), n = w.dim(1);
  expectShape(fn, "w", w, {kDim, n}, "[K, N] (K = x's last dim)");
  if (bias)
    expectShape(fn, "bias", *bias, {n}, "[N] (N = w's dim 1)");
  std::vector<int64_t> outShape = x.shape;
  outShape.back() = n;
  return outShape;
}

/// Checks the operands of `ffn` (for `fn`) and returns the width F.
int64_t checkFFNOperands(const char *fn, const Tensor &x, const Tensor &wIn,
                         const Tensor &wOut, const Tensor *wGate,
                         Activation act) {
  expectRankAtLeastOne(fn, "x", x, "[..., H]");
  expectRank(fn, "wIn", wIn, 2, "[H, F]");
  int64_t h = x.dim(-1), f = wIn.dim(1);
  expectShape(fn, "wIn", wIn, {h, f}, "[H, F] (H = x's last dim)");
  expectShape(fn, "wOut", wOut, {f, h}, "[F, H]");
  bool gated = isGated(act);
  if (gated && !wGate)
    fail(fn, "a gated activation (SwiGLU, GeGLU) needs wGate");
  if (!gated && wGate)
    fail(fn, "wGate must be nullptr for a non-gated activation");
  if (wGate)
    expectShape(fn, "wGate", *wGate, {h, f}, "[H, F] (the shape of wIn)");
  return f;
}

/// Checks the operands of a norm over x's last dim (for `fn`); `b` is
/// nullptr for RMSNorm.
void checkNormOperands(const char *fn, const Tensor &x, const Tensor &w,
                       const Tensor *b, double eps) {
  expectRankAtLeastOne(fn, "x", x, "[..., H]");
  int64_t h = x.dim(-1);
  expectShape(fn, "w", w, {h}, "[H] (H = x's last dim)");
  if (b)
    expectShape(fn, "b", *b, {h}, "[H] (H = x's last dim)");
  expectEpsilon(fn, eps);
}

/// Aborts unless the upstream gradient `dOut` of `fn` has the forward
/// result's shape.
void expectGradient(const char *fn, const Tensor &dOut,
                    const std::vector<int64_t> &resultShape) {
  expectShape(fn, "dOut", dOut, resultShape, "(the shape of the result)");
}

} // namespace

Tensor bpt::ref::linear(const Tensor &x, const Tensor &w, const Tensor *bias) {
  Tensor out(checkLinearOperands("linear", x, w, bias));
  int64_t kDim = x.dim(-1), n = w.dim(1);
  int64_t rows = numRows(x);
  parallelFor(rows, kDim * n, [&](int64_t begin, int64_t end) {
    matmulRows(x.data.data(), w.data.data(), out.data.data(), kDim, n, begin,
               end);
    if (bias)
      for (int64_t r = begin; r < end; ++r)
        for (int64_t c = 0; c < n; ++c)
          out.data[r * n + c] += bias->data[c];
  });
  return out;
}

Tensor bpt::ref::ffn(const Tensor &x, const Tensor &wIn, const Tensor &wOut,
                     const Tensor *wGate, Activation act) {
  int64_t f = checkFFNOperands("ffn", x, wIn, wOut, wGate, act);
  int64_t h = x.dim(-1);
  bool gated = isGated(act);
  Tensor out(x.shape);
  int64_t rows = numRows(x);
  parallelFor(rows, (gated ? 3 : 2) * h * f, [&](int64_t begin, int64_t end) {
    // One row's pre-activations (u = x·wIn, gate = x·wGate) and hidden units.
    std::vector<double> up(static_cast<size_t>(f)), gate(up.size());
    for (int64_t r = begin; r < end; ++r) {
      matmulRows(x.data.data() + r * h, wIn.data.data(), up.data(), h, f, 0, 1);
      if (gated)
        matmulRows(x.data.data() + r * h, wGate->data.data(), gate.data(), h, f,
                   0, 1);
      for (int64_t j = 0; j < f; ++j)
        up[j] = gated ? activate(act, gate[j]) * up[j] : activate(act, up[j]);
      matmulRows(up.data(), wOut.data.data(), out.data.data() + r * h, f, h, 0,
                 1);
    }
  });
  return out;
}

Tensor bpt::ref::layerNorm(const Tensor &x, const Tensor &w, const Tensor &b,
                           double eps) {
  checkNormOperands("layerNorm", x, w, &b, eps);
  int64_t h = x.dim(-1);

  Tensor out(x.shape);
  int64_t rows = numRows(x);
  for (int64_t r = 0; r < rows; ++r) {
    const double *xRow = x.data.data() + r * h;
    double mean = 0;
    for (int64_t i = 0; i < h; ++i)
      mean += xRow[i];
    mean /= static_cast<double>(h);
    double var = 0;
    for (int64_t i = 0; i < h; ++i)
      var += (xRow[i] - mean) * (xRow[i] - mean);
    var /= static_cast<double>(h);
    double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < h; ++i)
      out.data[r * h + i] = (xRow[i] - mean) * inv * w.data[i] + b.data[i];
  }
  return out;
}

Tensor bpt::ref::rmsNorm(const Tensor &x, const Tensor &w, double eps) {
  checkNormOperands("rmsNorm", x, w, nullptr, eps);
  int64_t h = x.dim(-1);

  Tensor out(x.shape);
  int64_t rows = numRows(x);
  for (int64_t r = 0; r < rows; ++r) {
    const double *xRow = x.data.data() + r * h;
    double meanSquare = 0;
    for (int64_t i = 0; i < h; ++i)
      meanSquare += xRow[i] * xRow[i];
    meanSquare /= static_cast<double>(h);
    double inv = 1.0 / std::sqrt(meanSquare + eps);
    for (int64_t i = 0; i < h; ++i)
      out.data[r * h + i] = xRow[i] * inv * w.data[i];
  }
  return out;
}

Tensor bpt::ref::add(const Tensor &a, const Tensor &b) {
  expectShape("add", "b", b, a.shape, "(the shape of a)");
  Tensor out(a.shape);
  for (size_t i = 0; i < out.data.size(); ++i)
    out.data[i] = a.data[i] + b.data[i];
  return out;
}

namespace {

/// Checks the operands of a block (for `fn`) and returns the head
/// dimension D.
int64_t checkBlockOperands(const char *fn, const Tensor &x,
                           const BlockWeights &w, int64_t heads,
                           int64_t kvHeads, Activation act, NormKind norm) {
  expectRank(fn, "x", x, 3, "[B, S, H]");
  if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
    fail(fn, "heads (" + std::to_string(heads) +
                 ") must be a positive multiple of kvHeads (" +
                 std::to_string(kvHeads) + ")");
  int64_t h = x.dim(2);
  expectRank(fn, "wQ", w.wQ, 2, "[H, heads*D]");
  if (w.wQ.dim(1) % heads != 0)
    fail(fn, "wQ's width (" + std::to_string(w.wQ.dim(1)) +
                 ") must be a multiple of heads (" + std::to_string(heads) +
                 ")");
  int64_t d = w.wQ.dim(1) / heads;
  expectShape(fn, "wQ", w.wQ, {h, heads * d}, "[H, heads*D]");
  expectShape(fn, "wK", w.wK, {h, kvHeads * d}, "[H, kvHeads*D]");
  expectShape(fn, "wV", w.wV, {h, kvHeads * d}, "[H, kvHeads*D]");
  expectShape(fn, "wO", w.wO, {heads * d, h}, "[heads*D, H]");
  expectShape(fn, "norm1Weight", w.norm1Weight, {h}, "[H]");
  expectShape(fn, "norm2Weight", w.norm2Weight, {h}, "[H]");
  if (norm == NormKind::LayerNorm) {
    expectShape(fn, "norm1Bias", w.norm1Bias, {h}, "[H] (LayerNorm)");
    expectShape(fn, "norm2Bias", w.norm2Bias, {h}, "[H] (LayerNorm)");
  } else if (w.norm1Bias.numElements() != 0 || w.norm2Bias.numElements() != 0) {
    fail(fn, "norm1Bias and norm2Bias must be empty for RMSNorm");
  }
  expectRank(fn, "wIn", w.wIn, 2, "[H, F]");
  int64_t f = w.wIn.dim(1);
  expectShape(fn, "wIn", w.wIn, {h, f}, "[H, F]");
  expectShape(fn, "wOut", w.wOut, {f, h}, "[F, H]");
  if (isGated(act))
    expectShape(fn, "wGate", w.wGate, {h, f}, "[H, F] (gated activation)");
  else if (w.wGate.numElements() != 0)
    fail(fn, "wGate must be empty for a non-gated activation");
  return d;
}

/// The block's norm of kind `norm` on t with weight and bias (the bias is
/// ignored for RMSNorm).
Tensor blockNorm(NormKind norm, const Tensor &t, const Tensor &weight,
                 const Tensor &bias, double eps) {
  return norm == NormKind::LayerNorm ? layerNorm(t, weight, bias, eps)
                                     : rmsNorm(t, weight, eps);
}

/// The block's forward, keeping what its backward reads; names as in the
/// doc comment of transformerBlock.
struct BlockForward {
  /// norm1(x), [B, S, H].
  Tensor h1;
  /// The heads, [B, heads, S, D] and [B, kvHeads, S, D].
  Tensor q, k, v;
  /// The attention's heads merged, [B, S, heads*D] (the input of wO).
  Tensor merged;
  /// x + merged·wO, and norm2 of it, [B, S, H].
  Tensor r, h2;
  /// The block's result, [B, S, H].
  Tensor y;
};

BlockForward runBlock(const Tensor &x, const BlockWeights &w, int64_t heads,
                      int64_t kvHeads, bool causal, Activation act,
                      NormKind norm, double eps, int64_t d) {
  BlockForward f;
  f.h1 = blockNorm(norm, x, w.norm1Weight, w.norm1Bias, eps);
  f.q = splitHeads(linear(f.h1, w.wQ, nullptr), heads);
  f.k = splitHeads(linear(f.h1, w.wK, nullptr), kvHeads);
  f.v = splitHeads(linear(f.h1, w.wV, nullptr), kvHeads);
  f.merged =
      mergeHeads(attention(f.q, f.k, f.v, causal, 1.0 / std::sqrt(double(d))));
  f.r = add(x, linear(f.merged, w.wO, nullptr));
  f.h2 = blockNorm(norm, f.r, w.norm2Weight, w.norm2Bias, eps);
  f.y = add(f.r,
            ffn(f.h2, w.wIn, w.wOut, isGated(act) ? &w.wGate : nullptr, act));
  return f;
}

} // namespace

Tensor bpt::ref::transformerBlock(const Tensor &x, const BlockWeights &w,
                                  int64_t heads, int64_t kvHeads, bool causal,
                                  Activation act, NormKind norm, double eps) {
  int64_t d =
      checkBlockOperands("transformerBlock", x, w, heads, kvHeads, act, norm);
  return runBlock(x, w, heads, kvHeads, causal, act, norm, eps, d).y;
}

//===----------------------------------------------------------------------===//
// Backward (training)
//===----------------------------------------------------------------------===//

LinearGradients bpt::ref::linearBackward(const Tensor &x, const Tensor &w,
                                         const Tensor *bias,
                                         const Tensor &dOut) {
  const char *fn = "linearBackward";
  expectGradient(fn, dOut, checkLinearOperands(fn, x, w, bias));
  LinearGradients g{Tensor(x.shape), Tensor(w.shape),
                    bias ? Tensor(bias->shape) : Tensor()};
  int64_t kDim = x.dim(-1), n = w.dim(1);
  int64_t rows = numRows(x);
  // dx = dOut·wᵀ by rows of dx, dw = xᵀ·dOut by rows of dw.
  parallelFor(rows, kDim * n, [&](int64_t begin, int64_t end) {
    addMatmulTransposedRows(dOut.data.data(), w.data.data(), g.dx.data.data(),
                            kDim, n, begin, end);
  });
  parallelFor(kDim, rows * n, [&](int64_t begin, int64_t end) {
    addTransposedMatmulRows(x.data.data(), dOut.data.data(), g.dw.data.data(),
                            rows, kDim, n, begin, end);
  });
  if (bias)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < n; ++c)
        g.db.data[c] += dOut.data[r * n + c];
  return g;
}

FFNGradients bpt::ref::ffnBackward(const Tensor &x, const Tensor &wIn,
                                   const Tensor &wOut, const Tensor *wGate,
                                   Activation act, const Tensor &dOut) {
  const char *fn = "ffnBackward";
  int64_t f = checkFFNOperands(fn, x, wIn, wOut, wGate, act);
  expectGradient(fn, dOut, x.shape);
  int64_t h = x.dim(-1);
  bool gated = isGated(act);
  FFNGradients g{Tensor(x.shape), Tensor(wIn.shape), Tensor(wOut.shape),
                 gated ? Tensor(wGate->shape) : Tensor()};
  // By rows: the pre-activations (u = x·wIn, gate = x·wGate), the hidden
  // units, dHidden = dOut·wOutᵀ and the gradients with respect to u and
  // gate, kept [rows, f] for the weight gradients; dx = dUp·wInᵀ
  // (+ dGate·wGateᵀ).
  int64_t rows = numRows(x);
  std::vector<double> hidden(static_cast<size_t>(rows * f)), dUp(hidden.size()),
      dGate(gated ? hidden.size() : 0);
  parallelFor(rows, (gated ? 5 : 3) * h * f, [&](int64_t begin, int64_t end) {
    std::vector<double> up(static_cast<size_t>(f)), gate(up.size()),
        dHidden(up.size());
    for (int64_t r = begin; r < end; ++r) {
      const double *xRow = x.data.data() + r * h;
      matmulRows(xRow, wIn.data.data(), up.data(), h, f, 0, 1);
      if (gated)
        matmulRows(xRow, wGate->data.data(), gate.data(), h, f, 0, 1);
      std::fill(dHidden.begin(), dHidden.end(), 0.0);
      addMatmulTransposedRows(dOut.data.data() + r * h, wOut.data.data(),
                              dHidden.data(), f, h, 0, 1);
      for (int64_t j = 0; j < f; ++j) {
        int64_t e = r * f + j;
        if (gated) {
          hidden[e] = activate(act, gate[j]) * up[j];
          dUp[e] = dHidden[j] * activate(act, gate[j]);
          dGate[e] = dHidden[j] * up[j] * activateDerivative(act, gate[j]);
        } else {
          hidden[e] = activate(act, up[j]);
          dUp[e] = dHidden[j] * activateDerivative(act, up[j]);
        }
      }
    }
    addMatmulTransposedRows(dUp.data(), wIn.data.data(), g.dx.data.data(), h, f,
                            begin, end);
    if (gated)
      addMatmulTransposedRows(dGate.data(), wGate->data.data(),
                              g.dx.data.data(), h, f, begin, end);
  });
  // dwOut = hiddenᵀ·dOut by rows of dwOut; dwIn = xᵀ·dUp and dwGate =
  // xᵀ·dGate by rows of theirs.
  parallelFor(f, rows * h, [&](int64_t begin, int64_t end) {
    addTransposedMatmulRows(hidden.data(), dOut.data.data(),
                            g.dwOut.data.data(), rows, f, h, begin, end);
  });
  parallelFor(h, (gated ? 2 : 1) * rows * f, [&](int64_t begin, int64_t end) {
    addTransposedMatmulRows(x.data.data(), dUp.data(), g.dwIn.data.data(), rows,
                            h, f, begin, end);
    if (gated)
      addTransposedMatmulRows(x.data.data(), dGate.data(), g.dwGate.data.data(),
                              rows, h, f, begin, end);
  });
  return g;
}

namespace {

/// The backward of a norm over the last dim, shared by LayerNorm
/// (`b` non-null: centred, with a bias) and RMSNorm (`b` null). Per row, with
/// x̂ the normalised row, inv the reciprocal of its scale and g = dOut ⊙ w:
/// dx = inv·(g − [mean(g)] − x̂·mean(g ⊙ x̂)), the bracket for LayerNorm only.
/// Returns dx, dw and (LayerNorm) db, the last empty for RMSNorm.
LayerNormGradients normBackward(const char *fn, const Tensor &x,
                                const Tensor &w, const Tensor *b, double eps,
                                const Tensor &dOut) {
  checkNormOperands(fn, x, w, b, eps);
  expectGradient(fn, dOut, x.shape);
  bool centred = b != nullptr;
  LayerNormGradients g{Tensor(x.shape), Tensor(w.shape),
                       centred ? Tensor(b->shape) : Tensor()};
  int64_t h = x.dim(-1);
  double n = static_cast<double>(h);
  std::vector<double> xHat(static_cast<size_t>(h)), scaled(xHat.size());
  int64_t rows = numRows(x);
  for (int64_t r = 0; r < rows; ++r) {
    const double *xRow = x.data.data() + r * h;
    const double *dyRow = dOut.data.data() + r * h;
    double mean = 0;
    if (centred) {
      for (int64_t i = 0; i < h; ++i)
        mean += xRow[i];
      mean /= n;
    }
    double var = 0; // The biased variance, or the mean square for RMSNorm.
    for (int64_t i = 0; i < h; ++i)
      var += (xRow[i] - mean) * (xRow[i] - mean);
    var /= n;
    double inv = 1.0 / std::sqrt(var + eps);
    double meanScaled = 0, meanScaledXHat = 0;
    for (int64_t i = 0; i < h; ++i) {
      xHat[i] = (xRow[i] - mean) * inv;
      scaled[i] = dyRow[i] * w.data[i];
      meanScaled += scaled[i];
      meanScaledXHat += scaled[i] * xHat[i];
      g.dw.data[i] += dyRow[i] * xHat[i];
      if (centred)
        g.db.data[i] += dyRow[i];
    }
    meanScaled = centred ? meanScaled / n : 0.0;
    meanScaledXHat /= n;
    for (int64_t i = 0; i < h; ++i)
      g.dx.data[r * h + i] =
          inv * (scaled[i] - meanScaled - xHat[i] * meanScaledXHat);
  }
  return g;
}

} // namespace

LayerNormGradients bpt::ref::layerNormBackward(const Tensor &x, const Tensor &w,
                                               const Tensor &b, double eps,
                                               const Tensor &dOut) {
  return normBackward("layerNormBackward", x, w, &b, eps, dOut);
}

RMSNormGradients bpt::ref::rmsNormBackward(const Tensor &x, const Tensor &w,
                                           double eps, const Tensor &dOut) {
  LayerNormGradients g =
      normBackward("rmsNormBackward", x, w, nullptr, eps, dOut);
  return {std::move(g.dx), std::move(g.dw)};
}

AddGradients bpt::ref::addBackward(const Tensor &a, const Tensor &b,
                                   const Tensor &dOut) {
  const char *fn = "addBackward";
  expectShape(fn, "b", b, a.shape, "(the shape of a)");
  expectGradient(fn, dOut, a.shape);
  return {dOut, dOut};
}

namespace {

/// The backward of the block's norm of kind `norm`: dx, and the gradients
/// of its weight and (LayerNorm) bias, stored into `dWeight` and `dBias`.
Tensor blockNormBackward(NormKind norm, const Tensor &t, const Tensor &weight,
                         const Tensor &bias, double eps, const Tensor &dOut,
                         Tensor &dWeight, Tensor &dBias) {
  if (norm == NormKind::RMSNorm) {
    RMSNormGradients g = rmsNormBackward(t, weight, eps, dOut);
    dWeight = std::move(g.dw);
    return std::move(g.dx);
  }
  LayerNormGradients g = layerNormBackward(t, weight, bias, eps, dOut);
  dWeight = std::move(g.dw);
  dBias = std::move(g.db);
  return std::move(g.dx);
}

/// Adds `t` into `sum` elementwise (same shape).
void accumulate(Tensor &sum, const Tensor &t) {
  for (size_t i = 0; i < sum.data.size(); ++i)
    sum.data[i] += t.data[i];
}

} // namespace

BlockGradients
bpt::ref::transformerBlockBackward(const Tensor &x, const BlockWeights &w,
                                   int64_t heads, int64_t kvHeads, bool causal,
                                   Activation act, NormKind norm, double eps,
                                   const Tensor &dOut) {
  const char *fn = "transformerBlockBackward";
  int64_t d = checkBlockOperands(fn, x, w, heads, kvHeads, act, norm);
  expectGradient(fn, dOut, x.shape);
  BlockForward f = runBlock(x, w, heads, kvHeads, causal, act, norm, eps, d);
  BlockGradients g;
  BlockWeights &dw = g.dw;

  // y = r + ffn(h2), h2 = norm2(r): dr = dOut + norm2ᵀ(ffnᵀ(dOut)).
  FFNGradients dFFN = ffnBackward(f.h2, w.wIn, w.wOut,
                                  isGated(act) ? &w.wGate : nullptr, act, dOut);
  dw.wIn = std::move(dFFN.dwIn);
  dw.wOut = std::move(dFFN.dwOut);
  dw.wGate = std::move(dFFN.dwGate);
  Tensor dr = blockNormBackward(norm, f.r, w.norm2Weight, w.norm2Bias, eps,
                                dFFN.dx, dw.norm2Weight, dw.norm2Bias);
  accumulate(dr, dOut);

  // r = x + merged·wO: dx gets dr straight through the residual.
  LinearGradients dProj = linearBackward(f.merged, w.wO, nullptr, dr);
  dw.wO = std::move(dProj.dw);
  AttentionGradients dAttn =
      attentionBackward(f.q, f.k, f.v, splitHeads(dProj.dx, heads), causal,
                        1.0 / std::sqrt(double(d)));

  // q, k, v = h1·wQ, h1·wK, h1·wV (heads split): dh1 sums the three.
  LinearGradients dQ =
      linearBackward(f.h1, w.wQ, nullptr, mergeHeads(dAttn.dq));
  LinearGradients dK =
      linearBackward(f.h1, w.wK, nullptr, mergeHeads(dAttn.dk));
  LinearGradients dV =
      linearBackward(f.h1, w.wV, nullptr, mergeHeads(dAttn.dv));
  dw.wQ = std::move(dQ.dw);
  dw.wK = std::move(dK.dw);
  dw.wV = std::move(dV.dw);
  Tensor dh1 = std::move(dQ.dx);
  accumulate(dh1, dK.dx);
  accumulate(dh1, dV.dx);

  // h1 = norm1(x): dx = dr + norm1ᵀ(dh1).
  g.dx = blockNormBackward(norm, x, w.norm1Weight, w.norm1Bias, eps, dh1,
                           dw.norm1Weight, dw.norm1Bias);
  accumulate(g.dx, dr);
  return g;
}

double bpt::ref::relativeError(const Tensor &out, const Tensor &ref) {
  return relativeError(out, ref, 0.0);
}

double bpt::ref::relativeError(const Tensor &out, const Tensor &ref,
                               double subnormalBelow) {
  if (out.shape != ref.shape)
    return std::numeric_limits<double>::infinity();
  for (double o : out.data)
    if (std::isnan(o))
      return std::numeric_limits<double>::quiet_NaN();
  double diffSquares = 0, refSquares = 0;
  for (size_t i = 0; i < out.data.size(); ++i) {
    if (std::isinf(out.data[i]) || std::isinf(ref.data[i])) {
      if (out.data[i] != ref.data[i])
        return std::numeric_limits<double>::infinity();
      continue;
    }
    double diff = out.data[i] - ref.data[i];
    if (std::abs(out.data[i]) < subnormalBelow &&
        std::abs(ref.data[i]) < subnormalBelow)
      diff = 0;
    diffSquares += diff * diff;
    refSquares += ref.data[i] * ref.data[i];
  }
  double diffNorm = std::sqrt(diffSquares), refNorm = std::sqrt(refSquares);
  return refNorm == 0 ? diffNorm : diffNorm / refNorm;
}

//===----------------------------------------------------------------------===//
// bf16 and f16 conversions
//===----------------------------------------------------------------------===//

namespace {

uint32_t floatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  return bits;
}

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/// Shifts `value` right by `shift` (1..31) bits, rounding to nearest with
/// ties to even.
uint32_t shiftRightRoundEven(uint32_t value, unsigned shift) {
  uint32_t kept = value >> shift;
  uint32_t rest = value & ((uint32_t(1) << shift) - 1);
  uint32_t half = uint32_t(1) << (shift - 1);
  if (rest > half || (rest == half && (kept & 1)))
    ++kept;
  return kept;
}

} // namespace

uint16_t bpt::ref::floatToBF16Bits(float f) {
  uint32_t bits = floatBits(f);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) // NaN: truncate, force quiet.
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Rounding the magnitude may carry into the exponent, which is right: the
  // largest values round to the next binade or, past bf16's max, to inf.
  return static_cast<uint16_t>(shiftRightRoundEven(bits, 16));
}

float bpt::ref::bf16BitsToFloat(uint16_t b) {
  return bitsToFloat(uint32_t(b) << 16);
}

uint16_t bpt::ref::floatToF16Bits(float f) {
  uint32_t bits = floatBits(f);
  uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) // NaN: keep the top payload bits, force quiet.
    return sign | 0x7E00u | static_cast<uint16_t>((magnitude >> 13) & 0x3FFu);
  if (magnitude >= 0x47800000u) // >= 2^16 (or inf): beyond f16's range.
    return sign | 0x7C00u;

  int exponent = static_cast<int>(magnitude >> 23) - 127; // Unbiased.
  uint32_t mantissa = magnitude & 0x7FFFFFu;
  if (exponent >= -14) {
    // Normal in f16: rebias the exponent, round the mantissa from 23 to 10
    // bits. A carry out of the mantissa correctly bumps the exponent, up to
    // inf (0x7C00) for values >= 65520.
    uint32_t unrounded = (uint32_t(exponent + 15) << 23) | mantissa;
    return sign | static_cast<uint16_t>(shiftRightRoundEven(unrounded, 13));
  }
  if (exponent < -25) // Below half the smallest subnormal (2^-25): to zero.
    return sign;
  // Subnormal in f16: the value is m * 2^(exponent - 23) with the implicit
  // bit restored, and the f16 unit is 2^-24, so the f16 mantissa is
  // m >> -(exponent + 1), with shifts 14..24. Rounding up to 0x400 gives the
  // smallest normal, which is the right encoding.
  uint32_t m = mantissa | 0x800000u;
  return sign | static_cast<uint16_t>(shiftRightRoundEven(
                    m, static_cast<unsigned>(-(exponent + 1))));
}

float bpt::ref::f16BitsToFloat(uint16_t b) {
  uint32_t sign = uint32_t(b & 0x8000u) << 16;
  uint32_t exponent = (b >> 10) & 0x1Fu;
  uint32_t mantissa = b & 0x3FFu;
  if (exponent == 0) // Zero or subnormal: mantissa * 2^-24, exact in float.
    return bitsToFloat(
        sign | floatBits(std::ldexp(static_cast<float>(mantissa), -24)));
  if (exponent == 0x1F) // Inf or NaN.
    return bitsToFloat(sign | 0x7F800000u | (mantissa << 13));
  return bitsToFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}
