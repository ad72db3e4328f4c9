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
// (0 where no split saw a key). The work is split into 16-column slices of
// the output rows. A lane is (split lane σ of 8, column group c of 4): it
// takes splits σ + 8·(warp + warps·i) and columns 4c .. 4c + 3 of its
// slice, one 16-byte load a split, and keeps an online max, sum and
// accumulator over them, with the loads of kUnroll splits issued before
// their arithmetic. The eight split lanes of a column group meet by
// butterfly shuffles. With more than 32 splits, the warps of a thread
// block share one slice's splits (enough warps for one round of loads) and
// meet in shared memory, each rescaled to the larger max; with at most 32,
// one warp takes a slice, four slices a block, and stores from its lanes.
//
// Memory-bound and small: the partials are splits × rows × D floats, read
// once, just written by the split kernel (in L2). What bounds it is the
// chain of dependent loads a thread issues and the blocks' fixed cost.
// Before slices (one block per row, warps over whole rows), 456 splits
// were 15 rounds of loads a warp on 16 multiprocessors: 10.9 µs under ncu
// on an H100, beside 28 µs for the split kernel reading 64 MiB of K and V;
// now 4.8 µs (docs/benchmarks.md, session 33).
//
//===----------------------------------------------------------------------===//

#include "SM80Kernels.h"

#include <cmath>

using namespace mlir;
using namespace bpt;
using namespace bpt::sm80;

namespace {

using Config = SplitKVCombineConfig;

class CombineEmitter : public SM80Emitter {
public:
  CombineEmitter(OpBuilder &b, Location loc, const Config &config)
      : SM80Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func);

private:
  /// A lane's running state over its splits: the max and sum and its four
  /// columns' accumulators.
  struct State {
    Value max, sum;
    SmallVector<Value> acc;
  };
  /// Split `s` (i32) loaded: its log-sum-exp (-inf past the last split)
  /// and this lane's four columns of its row.
  struct Loaded {
    Value lse;
    SmallVector<Value> row;
  };

  void locateSlice(gpu::GPUFuncOp func);
  State accumulateSplits();
  Loaded loadSplit(Value s);
  State merge(const State &state, Value otherMax, Value otherSum,
              ArrayRef<Value> otherAcc);
  State mergeSplitLanes(State state);
  void storeFromLanes(const State &state);
  void mergeWarpsAndStore(const State &state);

  Value wide(Value v) { return arith::ExtUIOp::create(b, loc, i64, v); }
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

  const Config &config;
  /// `warp` is the warp's place among the split warps (0 with one);
  /// `item` the (output row, slice) pair its block or warp takes.
  Value partials, lses, out, tid, warp, lane, splitLane, columnLane, item;
  /// Element index of split 0's log-sum-exp of this row (i64), of the
  /// slice's first output element, and the slice's first column (i32).
  Value lseBase, outBase, sliceColumn;
  Value minusInf, base;
};

void CombineEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  minusInf = cf(-INFINITY);
  locateSlice(func);
  {
    OpBuilder::InsertionGuard guard(b);
    if (config.items() % config.sliceWarps() != 0)
      onlyRowsBelow(item, c32(config.items()));
    State state = mergeSplitLanes(accumulateSplits());
    if (config.splitWarps() == 1)
      storeFromLanes(state);
    else
      mergeWarpsAndStore(state);
  }
  gpu::ReturnOp::create(b, loc);
}

/// Item ι (block β, or warp w of block β when warps take slices: ι = β ·
/// sliceWarps + w) is slice ι % slices of output row ρ = ι / slices,
/// (batch, head, query) as [B, Hq, Sq]; the row is row (head % group) · Sq
/// + query of key/value head head / group in the partials.
void CombineEmitter::locateSlice(gpu::GPUFuncOp func) {
  partials = globalPointerOf(func.getArgument(0));
  lses = globalPointerOf(func.getArgument(1));
  out = globalPointerOf(func.getArgument(2));
  tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  warp = div(tid, c32(kWarp));
  lane = rem(tid, c32(kWarp));
  splitLane = div(lane, c32(Config::kColumnLanes));
  columnLane = rem(lane, c32(Config::kColumnLanes));
  item = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  if (config.sliceWarps() > 1) {
    item = add(mul(item, c32(config.sliceWarps())), warp);
    warp = c32(0);
  }
  Value rowIndex = div(item, c32(config.slices()));
  sliceColumn =
      mul(rem(item, c32(config.slices())), c32(Config::kSliceColumns));
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
  outBase = add(mul(wide(rowIndex), c64(config.headDim)), wide(sliceColumn));
  base = alignedSharedBase(kSharedMemorySymbol, kTileAlignment);
}

CombineEmitter::Loaded CombineEmitter::loadSplit(Value s) {
  Loaded loaded;
  // Past the last split: a valid address, and a weight of 0.
  Value exists = cmp(arith::CmpIPredicate::slt, s, c32(config.splits));
  s = arith::MinSIOp::create(b, loc, s, c32(config.splits - 1));
  Value index = add(lseBase, mul(wide(s), c64(config.packedRows())));
  Value lse = LLVM::LoadOp::create(
      b, loc, f32, LLVM::GEPOp::create(b, loc, globalPtr, f32, lses, index), 4);
  loaded.lse = select(exists, lse, minusInf);
  Value column = add(sliceColumn, mul(columnLane, c32(4)));
  Value address =
      LLVM::GEPOp::create(b, loc, globalPtr, f32, partials,
                          add(mul(index, c64(config.headDim)), wide(column)));
  Value four =
      LLVM::LoadOp::create(b, loc, VectorType::get({4}, f32), address, 16);
  for (int64_t e = 0; e < 4; ++e)
    loaded.row.push_back(LLVM::ExtractElementOp::create(b, loc, four, c32(e)));
  return loaded;
}

/// `state` and another state (max `otherMax`, sum `otherSum`, accumulators
/// `otherAcc`; a split is max lse, sum 1 and its row) merged: both are sums
/// weighed by exp(lse − their max), each rescaled to the larger max.
CombineEmitter::State CombineEmitter::merge(const State &state, Value otherMax,
                                            Value otherSum,
                                            ArrayRef<Value> otherAcc) {
  Value maxNew = fmax(state.max, otherMax);
  Value shift = finite(maxNew);
  Value alpha = expFrom(state.max, shift);
  Value beta = expFrom(otherMax, shift);
  State next;
  next.max = maxNew;
  next.sum = fma(state.sum, alpha, otherSum ? fmul(otherSum, beta) : beta);
  for (auto [acc, other] : llvm::zip_equal(state.acc, otherAcc))
    next.acc.push_back(fma(beta, other, fmul(acc, alpha)));
  return next;
}

/// The lane's splits, kUnroll at a time: round r takes splits
/// splitLane + 8·(warp + warps·(kUnroll·r + u)), u < kUnroll.
CombineEmitter::State CombineEmitter::accumulateSplits() {
  const int64_t stride = Config::kSplitLanes * config.splitWarps();
  SmallVector<Value> init = {minusInf, cf(0.0)};
  init.append(4, cf(0.0));
  Value first = add(mul(warp, c32(Config::kSplitLanes)), splitLane);
  auto loop = scf::ForOp::create(b, loc, first, c32(config.splits),
                                 c32(stride * Config::kUnroll), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    auto args = loop.getRegionIterArgs();
    State state{args[0], args[1], SmallVector<Value>(args.drop_front(2))};
    SmallVector<Loaded> group;
    for (int64_t u = 0; u < Config::kUnroll; ++u)
      group.push_back(loadSplit(add(loop.getInductionVar(), c32(u * stride))));
    for (const Loaded &split : group)
      state = merge(state, split.lse, /*otherSum=*/nullptr, split.row);
    SmallVector<Value> next = {state.max, state.sum};
    next.append(state.acc);
    scf::YieldOp::create(b, loc, next);
  }
  auto results = loop.getResults();
  return {results[0], results[1], SmallVector<Value>(results.drop_front(2))};
}

/// The eight split lanes of a column group (lane bits 2-4) merged by
/// butterfly shuffles: every lane of the group ends with their state.
CombineEmitter::State CombineEmitter::mergeSplitLanes(State state) {
  for (int64_t offset = Config::kColumnLanes; offset < kWarp; offset *= 2) {
    Value otherMax = shuffleXor(state.max, offset);
    Value otherSum = shuffleXor(state.sum, offset);
    SmallVector<Value> otherAcc;
    for (Value acc : state.acc)
      otherAcc.push_back(shuffleXor(acc, offset));
    state = merge(state, otherMax, otherSum, otherAcc);
  }
  return state;
}

/// One warp took every split of the slice: its split lane 0 holds the
/// result of its column group.
void CombineEmitter::storeFromLanes(const State &state) {
  OpBuilder::InsertionGuard guard(b);
  onlyRowsBelow(splitLane, c32(1));
  Value inverse = inverseOf(state.sum, cf(0.0));
  SmallVector<Value> columns;
  for (Value acc : state.acc)
    columns.push_back(fmul(acc, inverse));
  Value first = add(outBase, wide(mul(columnLane, c32(4))));
  Value packed = packHalves(columns);
  Value address = LLVM::GEPOp::create(b, loc, globalPtr, b.getI16Type(), out,
                                      ValueRange{first});
  LLVM::StoreOp::create(b, loc, packed, address, 8);
}

/// Each warp's max and sum (lane 0) and accumulators (split lane 0) into
/// shared memory; then thread t < 8 stores columns 2t, 2t + 1 of the
/// slice, rescaling each warp's part to the largest max.
void CombineEmitter::mergeWarpsAndStore(const State &state) {
  Value stateAddress = add(base, mul(warp, c32(8)));
  emitIf(cmp(arith::CmpIPredicate::eq, lane, c32(0)), [&] {
    LLVM::StoreOp::create(b, loc, state.max, sharedPointer(stateAddress), 4);
    LLVM::StoreOp::create(b, loc, state.sum,
                          sharedPointer(add(stateAddress, c32(4))), 4);
  });
  {
    OpBuilder::InsertionGuard guard(b);
    onlyRowsBelow(splitLane, c32(1));
    Value address = add(base, add(c32(config.accOffset()),
                                  add(mul(warp, c32(4 * Config::kSliceColumns)),
                                      mul(columnLane, c32(16)))));
    Value four = LLVM::UndefOp::create(b, loc, VectorType::get({4}, f32));
    for (int64_t e = 0; e < 4; ++e)
      four = LLVM::InsertElementOp::create(b, loc, four, state.acc[e], c32(e));
    LLVM::StoreOp::create(b, loc, four, sharedPointer(address), 16);
  }
  NVVM::Barrier0Op::create(b, loc);

  OpBuilder::InsertionGuard guard(b);
  onlyRowsBelow(tid, c32(Config::kSliceColumns / 2));
  // The warps' states (a broadcast).
  SmallVector<Value> maxes, sums;
  Value max = minusInf;
  for (int64_t w = 0; w < config.splitWarps(); ++w) {
    maxes.push_back(LLVM::LoadOp::create(
        b, loc, f32, sharedPointer(add(base, c32(8 * w))), 4));
    sums.push_back(LLVM::LoadOp::create(
        b, loc, f32, sharedPointer(add(base, c32(8 * w + 4))), 4));
    max = fmax(max, maxes.back());
  }
  Value shift = finite(max);
  SmallVector<Value> factors;
  Value total = cf(0.0);
  for (int64_t w = 0; w < config.splitWarps(); ++w) {
    factors.push_back(expFrom(maxes[w], shift));
    total = fma(sums[w], factors.back(), total);
  }
  Value inverse = inverseOf(total, cf(0.0));
  Value sum[2] = {cf(0.0), cf(0.0)};
  for (int64_t w = 0; w < config.splitWarps(); ++w)
    for (int64_t e = 0; e < 2; ++e) {
      Value address =
          add(base,
              add(c32(config.accOffset() + 4 * (w * Config::kSliceColumns + e)),
                  mul(tid, c32(8))));
      Value part = LLVM::LoadOp::create(b, loc, f32, sharedPointer(address), 4);
      sum[e] = fma(part, factors[w], sum[e]);
    }
  Value packed = packHalf2(fmul(sum[0], inverse), fmul(sum[1], inverse));
  Value address =
      LLVM::GEPOp::create(b, loc, globalPtr, b.getI16Type(), out,
                          ValueRange{add(outBase, wide(mul(tid, c32(2))))});
  LLVM::StoreOp::create(b, loc, packed, address, 4);
}

} // namespace

gpu::GPUFuncOp bpt::sm80::buildSplitKVCombineKernel(
    ModuleOp module, const SplitKVCombineConfig &config, Type element,
    Location loc) {
  assert(config.headDim % SplitKVCombineConfig::kSliceColumns == 0 &&
         "mma.sync head dimensions are multiples of 16");
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
