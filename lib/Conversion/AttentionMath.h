//===- AttentionMath.h - chip-independent pieces of attention ---*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// What bpt's blockwise attention kernels compute the same way on either
// kind of tensor core: the causal bound of the key-block loop, the mask of
// a block of scores, the exp2 online softmax, the final normalisation and
// the rows' log-sum-exp.
// The mma.sync (m16n8k16) and wgmma (m64nNk16) accumulators lay out a
// thread's fragment alike: element e is in the thread's row (e / 2) % 2
// (rows r and r + 8), at column 8 * (e / 4) + e % 2 past the thread's
// first column, and the four threads of a quad share a row.
//
// A kernel emitter holds an AttentionMath over its builder and calls it;
// the values it builds are those the kernels built inline before.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_LIB_CONVERSION_ATTENTIONMATH_H
#define BPT_LIB_CONVERSION_ATTENTIONMATH_H

#include "NVVMEmitter.h"

#include <cmath>

namespace bpt::codegen {

class AttentionMath : public NVVMEmitter {
public:
  using NVVMEmitter::NVVMEmitter;
  /// 1 / a row's whole sum, or 0 for a row that saw no key (the kernels'
  /// epilogues call it on their AttentionMath).
  using NVVMEmitter::inverseOf;

  /// The number of key blocks of `blockN` keys that a block of `blockM`
  /// queries from position `firstQuery` (i32) needs, at most `numBlocks`,
  /// when key j is visible to query i for j <= i + `offset` (causal; the
  /// offset is Skv - Sq).
  Value causalKeyBlocks(Value firstQuery, int64_t blockM, int64_t blockN,
                        int64_t offset, Value numBlocks) {
    Value last = add(firstQuery, c32(blockM + offset + blockN - 1));
    Value blocks = arith::DivSIOp::create(b, loc, last, c32(blockN));
    blocks = select(cmp(arith::CmpIPredicate::sgt, last, c32(0)), blocks,
                    c32(0));
    return arith::MinSIOp::create(b, loc, blocks, numBlocks);
  }

  /// `scores` with -inf where an element's column (past the thread's first)
  /// is greater than its row's `limit` (i32).
  SmallVector<Value> mask(ArrayRef<Value> scores, const Value (&limit)[2],
                          Value minusInf) {
    SmallVector<Value> result;
    for (int64_t e = 0; e < int64_t(scores.size()); ++e) {
      int64_t column = 8 * (e / 4) + e % 2;
      Value hidden =
          cmp(arith::CmpIPredicate::sgt, c32(column), limit[(e / 2) % 2]);
      result.push_back(select(hidden, minusInf, scores[e]));
    }
    return result;
  }

  /// The running maximum (in scaled-score units) and sum of a thread's two
  /// rows.
  struct RowState {
    Value max[2], sum[2];
  };

  /// One key block of the exp2 online softmax: with the block's scores
  /// `s` and `scaleLog2` = scale · log2(e), updates `rows`, rescales the
  /// output accumulators `o` (the same fragment layout) and returns the
  /// probabilities of the block. A row with no visible key so far keeps a
  /// maximum of -inf and contributes nothing.
  SmallVector<Value> softmaxUpdate(ArrayRef<Value> s, RowState &rows,
                                   MutableArrayRef<Value> o, Value scaleLog2,
                                   Value minusInf, Value zero) {
    // Per row: the max over the quad of threads that share the row, then
    // the factor that rescales what came before.
    Value alpha[2], bias[2], maxNew[2];
    for (int64_t i = 0; i < 2; ++i) {
      Value mx = minusInf;
      for (int64_t e = 0; e < int64_t(s.size()); ++e)
        if ((e / 2) % 2 == i)
          mx = fmax(mx, s[e]);
      mx = fmax(mx, shuffleXor(mx, 1));
      mx = fmax(mx, shuffleXor(mx, 2));
      maxNew[i] = fmax(rows.max[i], mx);
      Value isEmpty = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ,
                                            maxNew[i], minusInf);
      Value safe = select(isEmpty, zero, maxNew[i]);
      alpha[i] = exp2(fmul(arith::SubFOp::create(b, loc, rows.max[i], safe),
                           scaleLog2));
      bias[i] = arith::NegFOp::create(b, loc, fmul(safe, scaleLog2));
    }
    SmallVector<Value> p(s.size());
    Value rowSum[2] = {zero, zero};
    for (int64_t e = 0; e < int64_t(s.size()); ++e) {
      int64_t i = (e / 2) % 2;
      p[e] = exp2(fma(s[e], scaleLog2, bias[i]));
      rowSum[i] = fadd(rowSum[i], p[e]);
    }
    for (int64_t i = 0; i < 2; ++i)
      rows.sum[i] = fadd(fmul(rows.sum[i], alpha[i]), rowSum[i]);
    for (int64_t e = 0; e < int64_t(o.size()); ++e)
      o[e] = fmul(o[e], alpha[(e / 2) % 2]);
    for (int64_t i = 0; i < 2; ++i)
      rows.max[i] = maxNew[i];
    return p;
  }

  /// The sum of a row over its quad of threads (`sum` is this thread's
  /// part).
  Value quadRowSum(Value sum) {
    sum = fadd(sum, shuffleXor(sum, 1));
    return fadd(sum, shuffleXor(sum, 2));
  }

  /// 1 / the sum of a row over its quad of threads (`sum` is this thread's
  /// part), or 0 for a row that saw no key.
  Value inverseRowSum(Value sum, Value zero) {
    return inverseOf(quadRowSum(sum), zero);
  }

  /// The row's log-sum-exp, ln Σ exp(scale · s), from its running maximum
  /// `max` (raw score units, as RowState keeps it) and its whole sum `total`
  /// of exp2((s - max) · scale · log2(e)) = exp(scale · (s - max)): that is
  /// scale · max + ln(total). A row that saw no key gets -inf.
  Value logSumExp(Value max, Value total, double scale, Value zero,
                  Value minusInf) {
    Value ln = fmul(log2(total), cf(M_LN2));
    Value lse = fma(max, cf(scale), ln);
    Value seen =
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, total, zero);
    return select(seen, lse, minusInf);
  }
};

} // namespace bpt::codegen

#endif // BPT_LIB_CONVERSION_ATTENTIONMATH_H
