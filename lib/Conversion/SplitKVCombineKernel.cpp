//===- SplitKVCombineKernel.cpp - combine of a split attention ------------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The second kernel of an attention split over its keys (decode and short
// queries): the combine nest of #bpt.split_kv_nest. Each split wrote its
// rows normalised in f32 with their log-sum-exp; output row ρ is
//
//   out = Σ_s exp(lse_s − M) · O_s / Σ_s exp(lse_s − M),  M = max_s lse_s
//
// (0 where no split saw a key). One thread block per output row; its warps
// share the splits (warp w takes groups of kUnroll splits w, w + warps,
// ...), each keeping an online max, sum and accumulator over its splits so
// that no second pass over the log-sum-exps is needed; a lane takes column
// pairs 2·(lane + 32k). The group's loads are issued before its
// arithmetic, so a warp has kUnroll splits of loads in flight. The warps'
// states meet in shared memory, rescaled to the largest max.
//
// Memory-bound and small: the partials are splits × rows × D floats, read
// once, just written by the split kernel (in L2).
//
//===----------------------------------------------------------------------===//

#include "SM80Kernels.h"

#include <cmath>

using namespace mlir;
using namespace bpt;
using namespace bpt::sm80;

namespace {

/// Splits a warp loads before combining them.
constexpr int64_t kUnroll = 4;

class CombineEmitter : public SM80Emitter {
public:
  CombineEmitter(OpBuilder &b, Location loc, const SplitKVCombineConfig &config)
      : SM80Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func);

private:
  /// A warp's running state over its splits: the max and sum (the same in
  /// every lane) and this lane's accumulators, two per column pair.
  struct State {
    Value max, sum;
    SmallVector<Value> acc;
  };
  /// Split `s` (i32) loaded: its log-sum-exp (-inf past the last split)
  /// and this lane's columns of its row.
  struct Loaded {
    Value lse;
    SmallVector<Value> row;
  };

  void locateRow(gpu::GPUFuncOp func);
  State accumulateSplits();
  Loaded loadSplit(Value s);
  State combine(State state, const Loaded &split);
  void mergeWarpsAndStore(const State &state);

  Value wide(Value v) { return arith::ExtUIOp::create(b, loc, i64, v); }
  /// Whether column pair `k` of this lane exists (only when D / 2 is not a
  /// multiple of 32).
  Value pairExists(Value pair) {
    return cmp(arith::CmpIPredicate::slt, pair, c32(config.headDim / 2));
  }
  bool raggedPairs() const { return (config.headDim / 2) % kWarp != 0; }
  /// max → a finite shift: 0 where no split has been seen.
  Value finite(Value max) {
    Value empty = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ,
                                        max, minusInf);
    return select(empty, cf(0.0), max);
  }
  /// exp(x − shift) as exp2((x − shift) · log2 e).
  Value expFrom(Value x, Value shift) {
    return exp2(fmul(arith::SubFOp::create(b, loc, x, shift), cf(M_LOG2E)));
  }

  const SplitKVCombineConfig &config;
  Value partials, lses, out, tid, warp, lane;
  /// Element index of split 0's log-sum-exp of this row (i64), and of the
  /// output row's first element.
  Value lseBase, outBase;
  Value minusInf, base;
};

void CombineEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  minusInf = cf(-INFINITY);
  locateRow(func);
  State state = accumulateSplits();
  mergeWarpsAndStore(state);
  gpu::ReturnOp::create(b, loc);
}

/// Block ρ is output row (batch, head, query) = ρ as [B, Hq, Sq]; it reads
/// row (head % group) · Sq + query of key/value head head / group.
void CombineEmitter::locateRow(gpu::GPUFuncOp func) {
  partials = globalPointerOf(func.getArgument(0));
  lses = globalPointerOf(func.getArgument(1));
  out = globalPointerOf(func.getArgument(2));
  tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  warp = div(tid, c32(kWarp));
  lane = rem(tid, c32(kWarp));
  Value rowIndex = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  Value query = rem(rowIndex, c32(config.seqQ));
  Value headRow = div(rowIndex, c32(config.seqQ));
  Value head = rem(headRow, c32(config.heads));
  Value batch = div(headRow, c32(config.heads));
  Value group =
      add(mul(batch, c32(config.kvHeads)), div(head, c32(config.packedHeads())));
  Value row =
      add(mul(rem(head, c32(config.packedHeads())), c32(config.seqQ)), query);
  lseBase = add(mul(wide(group), c64(config.splits * config.packedRows())),
                wide(row));
  outBase = mul(wide(rowIndex), c64(config.headDim));
  base = alignedSharedBase(kSharedMemorySymbol, kTileAlignment);
}

CombineEmitter::Loaded CombineEmitter::loadSplit(Value s) {
  Loaded loaded;
  // Past the last split: a valid address, and a weight of 0.
  Value exists;
  if (config.splits % kUnroll != 0) {
    exists = cmp(arith::CmpIPredicate::slt, s, c32(config.splits));
    s = arith::MinSIOp::create(b, loc, s, c32(config.splits - 1));
  }
  Value index = add(lseBase, mul(wide(s), c64(config.packedRows())));
  Value lse = LLVM::LoadOp::create(
      b, loc, f32, LLVM::GEPOp::create(b, loc, globalPtr, f32, lses, index), 4);
  loaded.lse = exists ? select(exists, lse, minusInf) : lse;
  Value first = LLVM::GEPOp::create(b, loc, globalPtr, f32, partials,
                                    mul(index, c64(config.headDim)));
  Type v2f32 = VectorType::get({2}, f32);
  for (int64_t k = 0; k < config.pairsPerLane(); ++k) {
    Value pair = add(lane, c32(kWarp * k));
    // A lane past the row's pairs reads pair 0 (and stores nothing).
    if (raggedPairs())
      pair = select(pairExists(pair), pair, c32(0));
    Value address = LLVM::GEPOp::create(b, loc, globalPtr, f32, first,
                                        ValueRange{mul(pair, c32(2))});
    Value both = LLVM::LoadOp::create(b, loc, v2f32, address, 8);
    for (int64_t e = 0; e < 2; ++e)
      loaded.row.push_back(
          LLVM::ExtractElementOp::create(b, loc, both, c32(e)));
  }
  return loaded;
}

/// One split into the online state: the old state and the split are
/// weighed by exp(max_old − max_new) and exp(lse − max_new).
CombineEmitter::State CombineEmitter::combine(State state,
                                              const Loaded &split) {
  Value maxNew = fmax(state.max, split.lse);
  Value shift = finite(maxNew);
  Value alpha = expFrom(state.max, shift);
  Value weight = expFrom(split.lse, shift);
  State next;
  next.max = maxNew;
  next.sum = fma(state.sum, alpha, weight);
  for (auto [acc, value] : llvm::zip_equal(state.acc, split.row))
    next.acc.push_back(fma(weight, value, fmul(acc, alpha)));
  return next;
}

/// The warp's splits, kUnroll at a time: groups start at (warp + warps·j) ·
/// kUnroll.
CombineEmitter::State CombineEmitter::accumulateSplits() {
  int64_t accs = 2 * config.pairsPerLane();
  SmallVector<Value> init = {minusInf, cf(0.0)};
  init.append(accs, cf(0.0));
  auto loop = scf::ForOp::create(b, loc, mul(warp, c32(kUnroll)),
                                 c32(config.splits),
                                 c32(kUnroll * config.warps()), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    auto args = loop.getRegionIterArgs();
    State state{args[0], args[1], SmallVector<Value>(args.drop_front(2))};
    SmallVector<Loaded> group;
    for (int64_t u = 0; u < kUnroll; ++u)
      group.push_back(loadSplit(add(loop.getInductionVar(), c32(u))));
    for (const Loaded &split : group)
      state = combine(state, split);
    SmallVector<Value> next = {state.max, state.sum};
    next.append(state.acc);
    scf::YieldOp::create(b, loc, next);
  }
  auto results = loop.getResults();
  return {results[0], results[1], SmallVector<Value>(results.drop_front(2))};
}

/// Each warp's max and sum (lane 0) and accumulators into shared memory;
/// then thread t stores column pairs t, t + threads, ... of the row,
/// rescaling each warp's part to the largest max.
void CombineEmitter::mergeWarpsAndStore(const State &state) {
  auto sharedF32 = [&](Value address) { return sharedPointer(address); };
  Value stateAddress = add(base, mul(warp, c32(8)));
  {
    OpBuilder::InsertionGuard guard(b);
    auto first = scf::IfOp::create(
        b, loc, cmp(arith::CmpIPredicate::eq, lane, c32(0)), false);
    b.setInsertionPointToStart(first.thenBlock());
    LLVM::StoreOp::create(b, loc, state.max, sharedF32(stateAddress), 4);
    LLVM::StoreOp::create(b, loc, state.sum,
                          sharedF32(add(stateAddress, c32(4))), 4);
  }
  Value accRow = add(base, add(c32(config.accOffset()),
                               mul(warp, c32(4 * config.headDim))));
  for (int64_t k = 0; k < config.pairsPerLane(); ++k) {
    OpBuilder::InsertionGuard guard(b);
    Value pair = add(lane, c32(kWarp * k));
    if (raggedPairs())
      onlyRowsBelow(pair, c32(config.headDim / 2));
    Value address = add(accRow, mul(pair, c32(8)));
    for (int64_t e = 0; e < 2; ++e)
      LLVM::StoreOp::create(b, loc, state.acc[2 * k + e],
                            sharedF32(add(address, c32(4 * e))), 4);
  }
  NVVM::Barrier0Op::create(b, loc);

  // Every thread reads the warps' states (a broadcast).
  SmallVector<Value> maxes, sums;
  Value max = minusInf;
  for (int64_t w = 0; w < config.warps(); ++w) {
    maxes.push_back(LLVM::LoadOp::create(b, loc, f32,
                                         sharedF32(add(base, c32(8 * w))), 4));
    sums.push_back(LLVM::LoadOp::create(
        b, loc, f32, sharedF32(add(base, c32(8 * w + 4))), 4));
    max = fmax(max, maxes.back());
  }
  Value shift = finite(max);
  SmallVector<Value> factors;
  Value total = cf(0.0);
  for (int64_t w = 0; w < config.warps(); ++w) {
    factors.push_back(expFrom(maxes[w], shift));
    total = fma(sums[w], factors.back(), total);
  }
  Value positive = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                         total, cf(0.0));
  Value inverse =
      select(positive, arith::DivFOp::create(b, loc, cf(1.0), total), cf(0.0));
  int64_t pairs = config.headDim / 2;
  for (int64_t k = 0; k * config.threads() < pairs; ++k) {
    OpBuilder::InsertionGuard guard(b);
    Value pair = add(tid, c32(k * config.threads()));
    if ((k + 1) * config.threads() > pairs)
      onlyRowsBelow(pair, c32(pairs));
    Value sum[2] = {cf(0.0), cf(0.0)};
    for (int64_t w = 0; w < config.warps(); ++w)
      for (int64_t e = 0; e < 2; ++e) {
        Value address = add(base, add(c32(config.accOffset() +
                                          4 * (w * config.headDim + e)),
                                      mul(pair, c32(8))));
        Value part = LLVM::LoadOp::create(b, loc, f32, sharedF32(address), 4);
        sum[e] = fma(part, factors[w], sum[e]);
      }
    Value packed = packHalf2(fmul(sum[0], inverse), fmul(sum[1], inverse));
    Value address = LLVM::GEPOp::create(
        b, loc, globalPtr, b.getI16Type(), out,
        ValueRange{add(outBase, wide(mul(pair, c32(2))))});
    LLVM::StoreOp::create(b, loc, packed, address, 4);
  }
}

} // namespace

gpu::GPUFuncOp bpt::sm80::buildSplitKVCombineKernel(
    ModuleOp module, const SplitKVCombineConfig &config, Type element,
    Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM80KernelModule(module);
  MLIRContext *ctx = module.getContext();
  Type f32 = Float32Type::get(ctx);
  SmallVector<int64_t> rows = {config.batch, config.kvHeads, config.splits,
                               config.packedRows()};
  auto lseType = MemRefType::get(rows, f32);
  rows.push_back(config.headDim);
  SmallVector<Type> inputs = {
      MemRefType::get(rows, f32), lseType,
      MemRefType::get(
          {config.batch, config.heads, config.seqQ, config.headDim}, element)};
  gpu::GPUFuncOp func = createKernel(kernels, config.kernelName(), inputs,
                                     config.threads(), loc);
  OpBuilder b(ctx);
  CombineEmitter(b, loc, config).emit(func);
  return func;
}
