//===- GemmSM90.cpp - the sm_90a GEMM kernel --------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// C = epilogue(A · B) on Hopper, for bpt-ffn-to-sm90 and bpt-block-to-sm90:
// a thread block computes a BM × BN tile (BM 128, or 256 for plain
// epilogues on whole 256-row launches; A [M, K] and B [K, N] row-major,
// bf16/f16, f32 accumulation). A producer warpgroup copies BM × 64 tiles
// of A and 64 × BN tiles of B (and of a gate weight G) with TMA (128-byte
// swizzle) into a ring of stages under full/empty mbarriers; two consumer
// warpgroups (BM / 2 rows each: one or two m64 wgmmas a k16 step) run
// wgmma m64nBNk16 on them (B MN-major:
// transposed descriptor) and apply the epilogue (activation, gate,
// residual) on the f32 accumulators before one rounding and the store. Row
// offsets of A, C and the residual are kernel arguments, so one kernel
// serves every chunk. A launch may cover any number of rows: TMA fills A's
// rows past the tensor map's with zeros, and the last tile's rows past the
// launch's are not stored.
//
// bpt.matmul's layouts use the same tiles from the other side: A stored
// [K, M] arrives as B does ([64 K-rows, 64 M-columns] boxes, an M-major
// descriptor, wgmma's transposed A), B stored [N, K] as A does ([BN rows,
// 64 K-columns], K-major, wgmma's untransposed B). K need not be a
// multiple of 64: TMA's zero fill pads the last step of both operands. An
// f32 sum to add (the weight gradients' accumulators), an f32 C and the
// activation gradient (C = A·B ⊙ act'(P) and act(P) from an f32 P: an
// FFN's du and hidden activation) are epilogue options.
//
// Tall tiles run persistent (GemmConfig::persistent): a block a
// multiprocessor loops over tiles through one ring, and its consumers
// stage C in an area of their own and store it by TMA (storeStagedBoxes),
// so the next tile's loads and main loop overlap the stores; a ragged
// launch's rows past its end are computed and dropped by the TMA store
// (GemmConfig::clipsRaggedRows).
//
// A launch whose last wave would leave most multiprocessors idle can split
// that wave's tiles along K (planTailSplit): their parts run as extra
// blocks and store f32 partial sums; a second launch of the kernel sums
// each tile's parts in a fixed order and runs the epilogue.
//
//===----------------------------------------------------------------------===//

#include "SM90Emitter.h"
#include "SM90Kernels.h"
#include "StrategyOps.h"

#include "bpt/Conversion/Passes.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

#include <array>
#include <tuple>

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

/// The kernel's arguments, as values.
struct GemmOperands {
  Value mapA, mapB, mapGate, c;
  /// C's tensor map (GemmConfig::tmaStore), in place of `c`.
  Value mapC;
  /// The residual (16-bit), the f32 sum to add or the f32 pre-activation:
  /// C's shape (the launch's rows), one slot.
  Value residual;
  Value actOut;
  Value aRow0, cRow0, rRow0, bRow0;
  /// A split tail's f32 partial sums (GemmConfig::splitsTail).
  Value partials;
};

/// What a thread block computes: the tile at (`m0`, `n0`) (`rowsLeft`: see
/// rowsLeftFrom) over K steps [kBegin, kBegin + kCount) (null: all), and
/// with a split tail, whether the block is a part of a split tile
/// (`isPart`, i1) and which (`part`, the index of its partial sums), or in
/// the reduce kernel which split tile (`part`: its parts follow from
/// part · kSplits).
struct TileWork {
  Value m0, n0, rowsLeft;
  Value kBegin, kCount;
  Value isPart, part;
  /// The reduce kernel's column slice of its split tile (reduceSlices).
  Value slice;
  /// A persistent block's ring steps before this tile (null: none).
  Value step0;
};

/// Where a consumer thread's accumulator fragment lies: element e is row
/// row0 + 8 · ((e / 2) % 2) of C (tileRow0 + ... within the tile), column
/// column0 + 8 · (e / 4) + e % 2.
struct FragmentPlace {
  Value tileRow0, row0, column0;
};

class GemmEmitter : public SM90Emitter {
public:
  GemmEmitter(OpBuilder &b, Location loc, const GemmConfig &config)
      : SM90Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func);

private:
  Value barrierAt(Value base, int64_t first, Value stage) {
    Value offset = add(c32(config.barrierOffset(first)), mul(stage, c32(8)));
    return sharedPointer(add(base, offset));
  }
  Value stageAddress(Value base, Value stage) {
    return add(base, mul(stage, c32(config.stageBytes())));
  }
  /// The launch's rows from the tile at row `m0` on; only a ragged
  /// launch's last tile has fewer than blockM (null otherwise).
  Value rowsLeftFrom(Value m0) {
    return config.raggedRows() ? sub(c32(config.launchRows()), m0) : Value();
  }
  /// What consumers add to C's row to reach the residual's, the sum's or
  /// P's row.
  Value residualShift(const GemmOperands &in) {
    if (config.residual)
      return sub(in.rRow0, in.cRow0);
    if (config.accumulate || config.activationGrad)
      return sub(c32(0), in.cRow0);
    return Value();
  }

  /// The block's tile and K steps from its place in the grid.
  TileWork tileWork();
  /// The producer and consumer roles on `work`.
  void emitOneTile(Value tid, Value first, Value base, const GemmOperands &in,
                   const TileWork &work);
  /// Runs `body` on each of a persistent block's tiles.
  void forEachTile(function_ref<void(const TileWork &)> body);
  /// The ring step of the tile's K step `kb`, counted over the block's
  /// tiles (the stage and parity follow from it).
  Value ringStep(const TileWork &work, Value kb) {
    return work.step0 ? add(work.step0, kb) : kb;
  }

  /// Loads K step `kb` of the tile at (`m0`, `n0`) into `stage` and
  /// arms its full barrier (the caller has waited for the stage to be
  /// free); `aRow` is the tile's first row of A as stored (aRowOf).
  void loadStage(Value base, const GemmOperands &in, Value kb, Value stage,
                 Value aRow, Value m0, Value n0);
  /// A's first row as stored for the tile at row `m0`: of M, or of K when
  /// transposed.
  Value aRowOf(const GemmOperands &in, Value m0) {
    return config.transposeA ? in.aRow0 : add(in.aRow0, m0);
  }
  void emitProducer(Value base, const GemmOperands &in, const TileWork &work);
  /// One K step's group of wgmmas (blockK / 16 per accumulator) on
  /// `stage`'s tiles onto the accumulators `flat` (their f32 values, the
  /// B operand's first), from the fence to the commit. Returns the new
  /// accumulators, not to be read before a wait.
  SmallVector<Value> issueKStep(Value base, Value stage, Value consumer,
                                ArrayRef<Value> flat);
  void emitConsumer(Value base, Value consumer, Value lane, Value warp,
                    Value cRow, const TileWork &work, const GemmOperands &in,
                    Value shift);
  /// The byte offset of 16-byte chunk `chunk` (plus `slice`'s first) of
  /// this consumer thread's accumulators in part `part`'s partial sums: a
  /// part's sums are [chunks][consumer threads][4], so that a warp's chunk
  /// stores are 512 contiguous bytes. A thread's fragment of a tile's
  /// first blockN columns is the first blockN / 8 chunks of its fragment of
  /// the partsWidth-wide tile, so a reduce slice's chunks follow its
  /// index.
  Value partialOffset(Value part, Value thread, int64_t chunk,
                      Value slice = Value()) {
    const int64_t threads = kWarpgroup * config.consumerGroups;
    const int64_t chunks = config.partialFloats() / (threads * 4);
    Value first = add(mul(part, c32(chunks)), c32(chunk));
    if (slice)
      first = add(first, mul(slice, c32(config.blockN / 8)));
    Value index = add(mul(first, c32(threads)), thread);
    return mul(arith::ExtUIOp::create(b, loc, i64, index), c64(16));
  }
  /// Stores the accumulators `acc` as part `part`'s partial sums in
  /// `partials`.
  void storePartials(Value partials, ArrayRef<Value> acc, Value part,
                     Value thread);
  /// The sums of split tile `tile`'s parts (of its column slice `slice`)
  /// in `partials`, in split order, laid out as the accumulators.
  SmallVector<Value> sumPartials(Value partials, Value tile, Value slice,
                                 Value thread);
  /// C's tile from the f32 accumulators `acc` (`pre`: P's fragment where
  /// preloaded): the activation, the gate, the residual, one rounding, and
  /// the stores (through the staging area where config.stagedEpilogue).
  void emitEpilogue(ArrayRef<Value> acc, ArrayRef<Value> pre, Value base,
                    Value consumer, Value lane, Value warp, Value cRow,
                    Value n0, const FragmentPlace &place,
                    const GemmOperands &in, Value shift, Value rowsLeft);
  /// This thread's fragment of an f32 [launch rows, N] matrix (rows
  /// shifted by `shift` from C's) into `acc`, laid out as the
  /// accumulator's. `accumulate` reads the sum S before the main loop, so
  /// that the wgmmas add onto it: the loads' latency hides behind the
  /// first TMA loads instead of stalling the epilogue (which was 40% of
  /// the weight gradients' time with 2048-row chunks); `activationGrad`
  /// reads P so too where registers allow (`preloadsPre`). A ragged
  /// launch's rows past its end read its last row (never stored).
  void loadSumFragment(SmallVectorImpl<Value> &acc, Value cRow,
                       Value tileRow0, Value column0, Value sum, Value shift,
                       Value rowsLeft);
  /// Where this thread's accumulator fragment lies in C's tile at
  /// (cRow, n0).
  FragmentPlace fragmentPlace(Value consumer, Value lane, Value warp,
                              Value cRow, Value n0, int64_t half = 0) {
    Value tileRow0 =
        add(mul(consumer, c32(config.consumerRows())),
            add(c32(64 * half), add(mul(warp, c32(16)), div(lane, c32(4)))));
    Value row0 = add(cRow, tileRow0);
    return {tileRow0, row0, add(n0, mul(rem(lane, c32(4)), c32(2)))};
  }
  /// The element index of (`row` + `shift`, `column`) in an [*, N] matrix:
  /// a [launch rows, N] argument's rows are C's shifted by `shift`.
  Value shiftedElement(Value row, Value shift, Value column) {
    return add(mul(arith::ExtUIOp::create(b, loc, i64, add(row, shift)),
                   c64(config.n)),
               arith::ExtUIOp::create(b, loc, i64, column));
  }
  /// Two adjacent f32 at `byteOffset` bytes into `base` (global).
  std::array<Value, 2> loadF32Pair(Value base, Value byteOffset) {
    Value address = LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), base,
                                        ValueRange{byteOffset});
    Value pair =
        LLVM::LoadOp::create(b, loc, VectorType::get({2}, f32), address, 8);
    return {LLVM::ExtractElementOp::create(b, loc, pair, c32(0)),
            LLVM::ExtractElementOp::create(b, loc, pair, c32(1))};
  }
  /// Stores two adjacent elements of C (or of act(P)) at `offset` bytes
  /// into `out`: a pair of f32, or of 16-bit values.
  void storePair(Value out, Value offset, Value pair[2]);
  /// Shared address of the 4-byte pair at (`row`, `column`) of this
  /// consumer's 64 rows of C's tile, staged (config.stagedEpilogue);
  /// `column` a multiple of 8.
  Value stagedAddress(Value base, Value consumer, Value row, Value column);
  /// Waits for the 128 threads of this consumer warpgroup at its named
  /// barrier.
  void syncConsumer(Value consumer);
  /// Stores this consumer's staged rows of C's tile (its rows below
  /// `rowsLeft` on a ragged launch) with 16-byte stores.
  void storeStagedTile(Value base, Value consumer, Value warp, Value lane,
                       Value cRow, Value n0, Value c, Value rowsLeft);
  /// Stores the persistent kernel's staging area (GemmConfig::tmaStore),
  /// this consumer's 64 rows from its row `firstRow` on, by TMA: each thread's
  /// shared stores made visible to the async proxy, the warpgroup barrier, then
  /// the consumer's first thread issues a [64, 64] box store a column block and
  /// commits them as one bulk group; nobody waits for them here.
  void storeStagedBoxes(Value base, Value consumer, Value warp, Value lane,
                        Value cRow, Value n0, Value mapC, int64_t firstRow);
  /// Runs `body` on this consumer warpgroup's first thread (the one that
  /// issues and waits for its bulk stores).
  void onConsumerLeader(Value warp, Value lane, function_ref<void()> body);
  /// Waits until the bulk stores this thread issued are complete.
  void waitBulkStores() {
    NVVM::CpAsyncBulkWaitGroupOp::create(b, loc, b.getI32IntegerAttr(0),
                                         UnitAttr());
  }
  /// Waits until they have read their shared memory, not before `values`
  /// (32-bit) are computed: as operands of the wait they keep LLVM from
  /// sinking their arithmetic below it, which would put the wait's
  /// latency on the issuing thread's path to the next barrier.
  void waitBulkStoresRead(ValueRange values) {
    SmallVector<std::string> constraints(values.size(), "r");
    asmOp(Type(), values, "cp.async.bulk.wait_group.read 0;",
          llvm::join(constraints, ","), /*sideEffects=*/true);
  }

  const GemmConfig &config;
};

void GemmEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  GemmOperands in;
  in.mapA = tensorMapPointer(func.getArgument(0));
  in.mapB = tensorMapPointer(func.getArgument(1));
  unsigned next = 2;
  if (config.gated)
    in.mapGate = tensorMapPointer(func.getArgument(next++));
  if (config.tmaStore())
    in.mapC = tensorMapPointer(func.getArgument(next++));
  else
    in.c = pointerOf(func.getArgument(next++));
  if (config.residual || config.accumulate || config.activationGrad)
    in.residual = pointerOf(func.getArgument(next++));
  if (config.activationGrad)
    in.actOut = pointerOf(func.getArgument(next++));
  in.aRow0 = func.getArgument(next++);
  in.cRow0 = func.getArgument(next++);
  if (config.residual)
    in.rRow0 = func.getArgument(next++);
  if (config.bRowOffset)
    in.bRow0 = func.getArgument(next++);
  if (config.splitsTail())
    in.partials = pointerOf(func.getArgument(next++));

  Value tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  TileWork work = tileWork();
  Value base = alignedSharedBase(kSharedMemorySymbol);
  Value first = cmp(arith::CmpIPredicate::eq, tid, c32(0));
  emitIf(first, [&] {
    for (int64_t s = 0; s < config.stages; ++s) {
      NVVM::MBarrierInitOp::create(
          b, loc, sharedPointer(add(base, c32(config.barrierOffset(s)))),
          c32(1), Value());
      NVVM::MBarrierInitOp::create(
          b, loc,
          sharedPointer(add(base, c32(config.barrierOffset(config.stages + s)))),
          c32(config.consumerGroups * kWarpgroup), Value());
    }
    NVVM::FenceMbarrierInitOp::create(b, loc);
  });
  NVVM::Barrier0Op::create(b, loc);
  emitOneTile(tid, first, base, in, work);
  gpu::ReturnOp::create(b, loc);
}

TileWork GemmEmitter::tileWork() {
  TileWork work;
  if (!config.splitsTail()) {
    // A block a tile: the tile's origin from the block's place in the grid.
    Value nTile = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
    Value mTile = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::y));
    work.n0 = mul(nTile, c32(config.blockN));
    work.m0 = mul(mTile, c32(config.blockM));
    work.rowsLeft = rowsLeftFrom(work.m0);
    return work;
  }
  // Tiles in row-major order, a block each, then the split tiles' parts,
  // kSplits consecutive blocks a tile; the reduce kernel's blocks are the
  // split tiles.
  Value block = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  Value whole = c32(config.wholeTiles());
  Value tile;
  if (config.reduceTail) {
    work.part = div(block, c32(config.reduceSlices()));
    work.slice = rem(block, c32(config.reduceSlices()));
    tile = add(whole, work.part);
  } else {
    work.isPart = cmp(arith::CmpIPredicate::uge, block, whole);
    // Parts' indices count from the first split tile's first part.
    Value part = select(work.isPart, sub(block, whole), c32(0));
    work.part = part;
    Value split = rem(part, c32(config.kSplits));
    tile =
        select(work.isPart, add(whole, div(part, c32(config.kSplits))), block);
    const int64_t per = config.kStepsPerSplit();
    Value begin = mul(split, c32(per));
    Value end = arith::MinUIOp::create(b, loc, add(begin, c32(per)),
                                       c32(config.kSteps()));
    work.kBegin = select(work.isPart, begin, c32(0));
    work.kCount = select(work.isPart, sub(end, begin), c32(config.kSteps()));
  }
  const int64_t columns = config.n / config.partsWidth();
  work.n0 = mul(rem(tile, c32(columns)), c32(config.partsWidth()));
  if (work.slice)
    work.n0 = add(work.n0, mul(work.slice, c32(config.blockN)));
  work.m0 = mul(div(tile, c32(columns)), c32(config.blockM));
  work.rowsLeft = rowsLeftFrom(work.m0);
  return work;
}

void GemmEmitter::emitOneTile(Value tid, Value first, Value base,
                              const GemmOperands &in, const TileWork &work) {
  // The reduce kernel loads nothing: its consumers sum the parts.
  auto producer = [&] {
    if (config.persistent())
      forEachTile([&](const TileWork &tile) { emitProducer(base, in, tile); });
    else if (!config.reduceTail)
      emitProducer(base, in, work);
  };
  auto consumer = [&](Value consumer, Value lane, Value warp) {
    Value shift = residualShift(in);
    auto one = [&](const TileWork &tile) {
      emitConsumer(base, consumer, lane, warp, add(in.cRow0, tile.m0), tile, in,
                   shift);
    };
    if (!config.persistent()) {
      one(work);
      return;
    }
    forEachTile(one);
    // The last tile's stores complete before the block ends (its shared
    // memory must outlive their reads, and a dependent launch's wait counts
    // only the writes done by then).
    if (config.tmaStore())
      onConsumerLeader(warp, lane, [&] { waitBulkStores(); });
  };
  if (config.blocksPerMultiprocessor == 1) {
    emitRoles(tid, first, producer, consumer);
    return;
  }
  // The consumer warpgroups first (a wgmma warpgroup starts at a warp
  // index divisible by 4), then the producer warp, whose first thread
  // issues the copies; no setmaxnreg.
  const int64_t consumerThreads = kWarpgroup * config.consumerGroups;
  auto roles = scf::IfOp::create(
      b, loc, cmp(arith::CmpIPredicate::ult, tid, c32(consumerThreads)),
      /*withElse=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(roles.thenBlock());
    Value local = rem(tid, c32(kWarpgroup));
    consumer(div(tid, c32(kWarpgroup)), rem(local, c32(32)),
             div(local, c32(32)));
  }
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(roles.elseBlock());
    auto leader = scf::IfOp::create(
        b, loc, cmp(arith::CmpIPredicate::eq, tid, c32(consumerThreads)),
        /*withElse=*/false);
    b.setInsertionPointToStart(leader.thenBlock());
    producer();
  }
}

void GemmEmitter::forEachTile(function_ref<void(const TileWork &)> body) {
  Value block = index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x));
  auto loop =
      scf::ForOp::create(b, loc, block, c32(config.tiles()),
                         c32(config.launchGrid()[0]), ValueRange{c32(0)});
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value tile = loop.getInductionVar();
  const int64_t columns = config.n / config.blockN;
  TileWork work;
  work.m0 = mul(div(tile, c32(columns)), c32(config.blockM));
  work.n0 = mul(rem(tile, c32(columns)), c32(config.blockN));
  work.step0 = loop.getRegionIterArgs()[0];
  body(work);
  scf::YieldOp::create(b, loc,
                       ValueRange{add(work.step0, c32(config.kSteps()))});
}

void GemmEmitter::loadStage(Value base, const GemmOperands &in, Value kb,
                            Value stage, Value aRow, Value m0, Value n0) {
  Value full = barrierAt(base, 0, stage);
  NVVM::MBarrierArriveExpectTxOp::create(
      b, loc, Type(), full, c32(config.stageBytes()), NVVM::MemScopeKind::CTA,
      /*relaxed=*/false, Value());
  Value tile = stageAddress(base, stage);
  Value k0 = mul(kb, c32(config.blockK));
  // aRow0 and bRow0 are the first rows of A and B as stored: of M or K for
  // A, of K or N for B.
  // A: one [128 rows, 64 of K] box, or stored [K, M] BM / 64 boxes of
  // [64 of K, 64 columns of M], 8 KiB apart.
  if (config.transposeA) {
    for (int64_t col = 0; col < config.blockM / kSwizzleElements; ++col)
      copyTile(add(tile, c32(col * config.blockK * kSwizzleBytes)), in.mapA,
               add(m0, c32(col * kSwizzleElements)), add(aRow, k0), full);
  } else {
    copyTile(tile, in.mapA, k0, aRow, full);
  }
  // B: BN / 64 boxes of [64 rows of K, 64 columns], 8 KiB apart, or stored
  // [N, K] one box of [BN rows, 64 of K].
  Value bTile = add(tile, c32(config.aTileBytes()));
  if (config.transposeB) {
    copyTile(bTile, in.mapB, k0, in.bRow0 ? add(in.bRow0, n0) : n0, full);
  } else {
    Value kRow = in.bRow0 ? add(in.bRow0, k0) : k0;
    for (int64_t col = 0; col < config.blockN / kSwizzleElements; ++col)
      copyTile(add(bTile, c32(col * config.blockK * kSwizzleBytes)), in.mapB,
               add(n0, c32(col * kSwizzleElements)), kRow, full);
  }
  // The gate weight's tile follows B's.
  if (in.mapGate)
    for (int64_t col = 0; col < config.blockN / kSwizzleElements; ++col)
      copyTile(add(tile, c32(config.aTileBytes() + config.bTileBytes() +
                             col * config.blockK * kSwizzleBytes)),
               in.mapGate, add(n0, c32(col * kSwizzleElements)), k0, full);
}

void GemmEmitter::emitProducer(Value base, const GemmOperands &in,
                               const TileWork &work) {
  Value m0 = work.m0, n0 = work.n0;
  Value aRow = aRowOf(in, m0);
  Value stages = c32(config.stages);
  auto loop = scf::ForOp::create(
      b, loc, c32(0), work.kCount ? work.kCount : c32(config.kSteps()), c32(1));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  // kb counts this block's steps (the ring's stage and phase); the step
  // loaded is kBegin + kb.
  Value kb = loop.getInductionVar();
  Value step = ringStep(work, kb);
  Value stage = rem(step, stages);
  emitIf(cmp(arith::CmpIPredicate::uge, step, stages), [&] {
    Value parity =
        arith::AndIOp::create(b, loc, sub(div(step, stages), c32(1)), c32(1));
    waitBarrier(barrierAt(base, config.stages, stage), parity);
  });
  loadStage(base, in, work.kBegin ? add(work.kBegin, kb) : kb, stage, aRow, m0,
            n0);
}

void GemmEmitter::loadSumFragment(SmallVectorImpl<Value> &acc, Value cRow,
                                  Value tileRow0, Value column0, Value sum,
                                  Value shift, Value rowsLeft) {
  for (int64_t i = 0; i < 2; ++i) {
    Value tileRow = add(tileRow0, c32(8 * i));
    // Rows past a ragged launch's end read its last row (their results are
    // not stored).
    if (rowsLeft)
      tileRow = select(cmp(arith::CmpIPredicate::sge, tileRow, rowsLeft),
                       sub(rowsLeft, c32(1)), tileRow);
    Value row = add(cRow, tileRow);
    // S is [launch rows, N]: its row is C's shifted by -cRow0.
    Value rowBytes = mul(shiftedElement(row, shift, column0), c64(4));
    for (int64_t j = 0; j < config.blockN / 8; ++j) {
      std::array<Value, 2> pair = loadF32Pair(sum, add(rowBytes, c64(32 * j)));
      for (int64_t h = 0; h < 2; ++h)
        acc[4 * j + 2 * i + h] = pair[h];
    }
  }
}

void GemmEmitter::storePair(Value out, Value offset, Value pair[2]) {
  Value address =
      LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), out, ValueRange{offset});
  SM90Emitter::storePair(address, pair[0], pair[1], config.f32Output);
}

SmallVector<Value> GemmEmitter::issueKStep(Value base, Value stage,
                                           Value consumer,
                                           ArrayRef<Value> flat) {
  const int64_t count = config.blockN / 2;
  Value tile = stageAddress(base, stage);
  // A: this consumer's 64 rows, K-major (or its 64-column box of the
  // M-major [K, M] tile). B: [64 K-rows, BN] with N contiguous, MN-major,
  // 64-column blocks 64 x 128 bytes apart (or [BN, 64 of K], K-major). A
  // k16 step is 32 bytes along a K-major row, 16 rows of an MN-major tile.
  const int64_t blockBytes = config.blockK * kSwizzleBytes;
  Value aDesc =
      config.transposeA
          ? descriptor(add(tile, mul(consumer, c32(blockBytes))),
                       WgmmaDescriptor::mnMajor(blockBytes))
          : descriptor(add(tile, mul(consumer, c32(config.consumerRows() *
                                                   kSwizzleBytes))),
                       WgmmaDescriptor::kMajor());
  Value bDesc =
      descriptor(add(tile, c32(config.aTileBytes())),
                 config.transposeB ? WgmmaDescriptor::kMajor()
                                   : WgmmaDescriptor::mnMajor(blockBytes));
  const int64_t aStepBytes = config.transposeA ? 16 * kSwizzleBytes : 32;
  const int64_t bStepBytes = config.transposeB ? 32 : 16 * kSwizzleBytes;
  Type accType = accumulatorType(config.blockN);
  // Accumulators by M half (64 rows of A 8 KiB apart), then B operand.
  SmallVector<Value> accs;
  for (int64_t a = 0; a < config.mHalves() * config.bOperands(); ++a)
    accs.push_back(packStruct(accType, flat.slice(a * count, count)));
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  NVVM::WGMMATypes type = wgmmaElementType();
  for (int64_t t = 0; t < config.blockK / 16; ++t) {
    for (auto [index, acc] : llvm::enumerate(accs)) {
      const int64_t half = index / config.bOperands(),
                    a = index % config.bOperands();
      Value bStep = advance(bDesc, a * config.bTileBytes() + t * bStepBytes);
      Value aStep = advance(aDesc, half * 64 * kSwizzleBytes + t * aStepBytes);
      acc = emitWgmma(WgmmaSharedA{
          config.blockN, type, acc, aStep, bStep, NVVM::WGMMAScaleOut::one,
          config.transposeB ? NVVM::MMALayout::col : NVVM::MMALayout::row,
          config.transposeA ? NVVM::MMALayout::col : NVVM::MMALayout::row});
    }
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
  SmallVector<Value> results;
  for (Value acc : accs)
    llvm::append_range(results, unpack(acc, count));
  return results;
}

void GemmEmitter::emitConsumer(Value base, Value consumer, Value lane,
                               Value warp, Value cRow, const TileWork &work,
                               const GemmOperands &in, Value shift) {
  const int64_t count = config.blockN / 2;
  const int64_t accumulators = config.bOperands();
  Value n0 = work.n0, rowsLeft = work.rowsLeft;
  Value stages = c32(config.stages);
  FragmentPlace place = fragmentPlace(consumer, lane, warp, cRow, n0);
  Value tileRow0 = place.tileRow0, column0 = place.column0;
  Value thread =
      add(mul(consumer, c32(kWarpgroup)), add(mul(warp, c32(32)), lane));
  auto epilogue = [&](ArrayRef<Value> acc, ArrayRef<Value> pre) {
    emitEpilogue(acc, pre, base, consumer, lane, warp, cRow, n0, place, in,
                 shift, rowsLeft);
  };
  if (config.reduceTail) {
    // planTailSplit leaves the accumulate and activationGrad GEMMs whole:
    // no sum S and no P here.
    epilogue(sumPartials(in.partials, work.part, work.slice, thread), {});
    return;
  }
  SmallVector<Value> init(config.mHalves() * accumulators * count, cf(0.0));
  if (config.accumulate)
    loadSumFragment(init, cRow, tileRow0, column0, in.residual, shift,
                    rowsLeft);
  // The pre-activation P, as the sum is, unless 256-wide tiles leave no
  // registers for it: then each pair is read where the epilogue needs it.
  SmallVector<Value> pre(config.activationGrad ? count : 0);
  if (config.activationGrad && config.preloadsPre())
    loadSumFragment(pre, cRow, tileRow0, column0, in.residual, shift, rowsLeft);
  auto loop = scf::ForOp::create(
      b, loc, c32(0), work.kCount ? work.kCount : c32(config.kSteps()), c32(1),
      init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value step = ringStep(work, loop.getInductionVar());
    Value stage = rem(step, stages);
    Value phase = arith::AndIOp::create(b, loc, div(step, stages), c32(1));
    waitBarrier(barrierAt(base, 0, stage), phase);
    SmallVector<Value> values = emitWgmmaWait(issueKStep(
        base, stage, consumer, SmallVector<Value>(loop.getRegionIterArgs())));
    arriveBarrier(barrierAt(base, config.stages, stage));
    scf::YieldOp::create(b, loc, values);
  }
  SmallVector<Value> acc(loop.getResults());
  if (!work.isPart) {
    epilogue(acc, pre);
    return;
  }
  // A part of a split tile leaves its sums to the reduce kernel.
  auto split = scf::IfOp::create(b, loc, work.isPart, /*withElse=*/true);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(split.thenBlock());
    storePartials(in.partials, acc, work.part, thread);
  }
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(split.elseBlock());
  epilogue(acc, pre);
}

void GemmEmitter::storePartials(Value partials, ArrayRef<Value> acc, Value part,
                                Value thread) {
  Type v4f32 = VectorType::get({4}, f32);
  for (int64_t chunk = 0; chunk < int64_t(acc.size()) / 4; ++chunk) {
    Value vector = LLVM::UndefOp::create(b, loc, v4f32);
    for (int64_t e = 0; e < 4; ++e)
      vector = LLVM::InsertElementOp::create(b, loc, vector, acc[4 * chunk + e],
                                             c32(e));
    Value address =
        LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), partials,
                            ValueRange{partialOffset(part, thread, chunk)});
    LLVM::StoreOp::create(b, loc, vector, address, 16);
  }
}

SmallVector<Value> GemmEmitter::sumPartials(Value partials, Value tile,
                                            Value slice, Value thread) {
  const int64_t values = config.bOperands() * config.blockN / 2;
  Type v4f32 = VectorType::get({4}, f32);
  SmallVector<Value> zeros(values, cf(0.0));
  auto loop =
      scf::ForOp::create(b, loc, c32(0), c32(config.kSplits), c32(1), zeros);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  Value part = add(mul(tile, c32(config.kSplits)), loop.getInductionVar());
  SmallVector<Value> sums(loop.getRegionIterArgs());
  for (int64_t chunk = 0; chunk < values / 4; ++chunk) {
    Value address = LLVM::GEPOp::create(
        b, loc, ptr, b.getI8Type(), partials,
        ValueRange{partialOffset(part, thread, chunk, slice)});
    Value vector = LLVM::LoadOp::create(b, loc, v4f32, address, 16);
    for (int64_t e = 0; e < 4; ++e)
      sums[4 * chunk + e] =
          fadd(sums[4 * chunk + e],
               LLVM::ExtractElementOp::create(b, loc, vector, c32(e)));
  }
  scf::YieldOp::create(b, loc, sums);
  return SmallVector<Value>(loop.getResults());
}

void GemmEmitter::emitEpilogue(ArrayRef<Value> accIn, ArrayRef<Value> preIn,
                               Value base, Value consumer, Value lane,
                               Value warp, Value cRow, Value n0,
                               const FragmentPlace &place,
                               const GemmOperands &in, Value shift,
                               Value rowsLeft) {
  const int64_t bn = config.blockN, count = bn / 2;
  SmallVector<Value> pre(preIn);
  if (config.activationGrad && pre.empty())
    pre.resize(count);
  Value tileRow0 = place.tileRow0, row0 = place.row0, column0 = place.column0;
  Type half = config.bf16 ? Type(b.getBF16Type()) : Type(b.getF16Type());
  Value residualBytes;
  if (config.residual)
    residualBytes =
        mul(arith::ExtSIOp::create(b, loc, i64, shift), c64(config.n * 2));
  // The persistent kernel stages 64 rows at a time in an area of its own
  // and stores them by TMA (no row masks: the store drops rows past C).
  const bool byHalves = config.stagedEpilogue && config.persistent();
  assert((!byHalves || (config.tmaStore() && !rowsLeft)) &&
         "the persistent kernel stores whole tiles by TMA");
  for (int64_t mHalf = 0; mHalf < config.mHalves(); ++mHalf) {
    if (mHalf) {
      FragmentPlace next = fragmentPlace(consumer, lane, warp, cRow, n0, mHalf);
      tileRow0 = next.tileRow0;
      row0 = next.row0;
    }
    // This half's accumulators (mHalves is 1 where there are gates or P).
    ArrayRef<Value> acc = accIn.drop_front(mHalf * config.bOperands() * count);
    // By halves, the half's values are computed before the area is free
    // and written after: (shared address, packed pair).
    SmallVector<std::pair<Value, Value>> staged;
    for (int64_t i = 0; i < 2; ++i) {
      OpBuilder::InsertionGuard rowGuard(b);
      // Rows past a ragged launch's end are neither read (residual) nor
      // written.
      if (rowsLeft)
        onlyRowsBelow(add(tileRow0, c32(8 * i)), rowsLeft);
      Value row = add(row0, c32(8 * i));
      Value element =
          add(mul(arith::ExtUIOp::create(b, loc, i64, row), c64(config.n)),
              arith::ExtUIOp::create(b, loc, i64, column0));
      Value rowBytes = mul(element, c64(2));
      Value rowBytesF32 = config.f32Output ? mul(element, c64(4)) : Value();
      // P's and act(P)'s rows are C's shifted by -cRow0.
      Value preElement, actRowBytes;
      if (config.activationGrad) {
        preElement = shiftedElement(row, shift, column0);
        actRowBytes = mul(preElement, c64(config.cElementBytes()));
      }
      for (int64_t j = 0; j < bn / 8; ++j) {
        // Elements (row, column0 + 8j) and the next one.
        Value offset = add(rowBytes, c64(16 * j));
        Value offsetF32 = rowBytesF32 ? add(rowBytesF32, c64(32 * j)) : Value();
        Value pair[2] = {acc[4 * j + 2 * i], acc[4 * j + 2 * i + 1]};
        // The gate's accumulator follows B's.
        for (int64_t h = 0; h < 2; ++h)
          pair[h] = config.activate(
              b, loc, pair[h],
              config.gated ? acc[count + 4 * j + 2 * i + h] : Value());
        if (config.activationGrad) {
          if (!config.preloadsPre()) {
            // Rows here are inside the launch: no clamp.
            std::array<Value, 2> both = loadF32Pair(
                in.residual, add(mul(preElement, c64(4)), c64(32 * j)));
            for (int64_t h = 0; h < 2; ++h)
              pre[4 * j + 2 * i + h] = both[h];
          }
          Value activated[2];
          for (int64_t h = 0; h < 2; ++h)
            std::tie(pair[h], activated[h]) =
                buildActivationGradient(b, loc, *config.activationGrad, pair[h],
                                        pre[4 * j + 2 * i + h]);
          storePair(in.actOut,
                    add(actRowBytes, c64(8 * config.cElementBytes() * j)),
                    activated);
        }
        if (config.residual) {
          // The residual's row is C's row shifted by rRow0 - cRow0.
          Value address =
              LLVM::GEPOp::create(b, loc, ptr, b.getI8Type(), in.residual,
                                  ValueRange{add(offset, residualBytes)});
          Value bits = LLVM::LoadOp::create(b, loc, i32, address, 4);
          Value halves =
              LLVM::BitcastOp::create(b, loc, VectorType::get({2}, half), bits);
          Value wide =
              LLVM::FPExtOp::create(b, loc, VectorType::get({2}, f32), halves);
          for (int64_t h = 0; h < 2; ++h)
            pair[h] = fadd(
                pair[h], LLVM::ExtractElementOp::create(b, loc, wide, c32(h)));
        }
        if (config.stagedEpilogue) {
          // Rows of this consumer's (stagedAddress adds its offset).
          Value localRow = sub(add(tileRow0, c32(8 * i)),
                               mul(consumer, c32(config.consumerRows())));
          if (byHalves)
            localRow = sub(localRow, c32(64 * mHalf));
          Value address = stagedAddress(base, consumer, localRow, c32(8 * j));
          // column0's lane part: lane % 4 pairs.
          address = add(address, mul(rem(lane, c32(4)), c32(4)));
          Value packed = packHalf2(pair[0], pair[1]);
          if (byHalves)
            staged.push_back({address, packed});
          else
            LLVM::StoreOp::create(b, loc, packed, sharedPointer(address), 4);
          continue;
        }
        storePair(in.c, config.f32Output ? offsetF32 : offset, pair);
      }
    }
    if (byHalves) {
      // The area is free once the last half's box stores have read it.
      SmallVector<Value> values;
      for (auto [address, packed] : staged)
        values.push_back(packed);
      onConsumerLeader(warp, lane, [&] { waitBulkStoresRead(values); });
      syncConsumer(consumer);
      for (auto [address, packed] : staged)
        LLVM::StoreOp::create(b, loc, packed, sharedPointer(address), 4);
    }
    if (byHalves)
      storeStagedBoxes(base, consumer, warp, lane, cRow, n0, in.mapC,
                       64 * mHalf);
  }
  if (config.stagedEpilogue && !byHalves)
    storeStagedTile(base, consumer, warp, lane, cRow, n0, in.c, rowsLeft);
}

Value GemmEmitter::stagedAddress(Value base, Value consumer, Value row,
                                 Value column) {
  // Column block k (64 columns) in stage k's A tile, this consumer's 64
  // rows of 128 bytes (8 KiB at consumer · 8 KiB: its A rows, or its
  // M-major box), 16-byte chunks swizzled by the row as TMA wrote them, so
  // that neither the 4-byte writes nor the 16-byte reads conflict on banks.
  Value block = div(column, c32(kSwizzleElements));
  Value chunk = div(rem(column, c32(kSwizzleElements)), c32(8));
  Value swizzled = arith::XOrIOp::create(b, loc, chunk, rem(row, c32(8)));
  // (The consumer's offset first: the order the kernels were built in.)
  Value tile;
  if (config.persistent()) {
    // The staging area's own column blocks of 64 rows a consumer.
    Value area = add(base, c32(config.stagingOffset()));
    Value rows = mul(consumer, c32(64 * kSwizzleBytes));
    tile = add(
        add(area, mul(block, c32(config.consumerGroups * 64 * kSwizzleBytes))),
        rows);
  } else {
    Value rows = mul(consumer, c32(config.consumerRows() * kSwizzleBytes));
    tile = add(stageAddress(base, block), rows);
  }
  return add(tile, add(mul(row, c32(kSwizzleBytes)), mul(swizzled, c32(16))));
}

void GemmEmitter::syncConsumer(Value consumer) {
  // The warpgroup's named barrier (1 + consumer; 0 is the block's), its
  // number a constant (with a register one, ptxas reserves all 16; LLVM
  // merges two branches of bar.sync with constants into one with a
  // register, not two of inline assembly).
  auto second =
      scf::IfOp::create(b, loc, cmp(arith::CmpIPredicate::ne, consumer, c32(0)),
                        /*withElse=*/true);
  for (int64_t w = 0; w < 2; ++w) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(w ? second.thenBlock() : second.elseBlock());
    asmOp(Type(), {},
          llvm::formatv("bar.sync {0}, {1};", 1 + w, kWarpgroup).str(),
          "~{memory}", /*sideEffects=*/true);
  }
}

void GemmEmitter::storeStagedTile(Value base, Value consumer, Value warp,
                                  Value lane, Value cRow, Value n0, Value c,
                                  Value rowsLeft) {
  syncConsumer(consumer);
  // The consumer's rows of blockN elements, 16 bytes a store.
  Type v4i32 = VectorType::get({4}, i32);
  forEachRowChunk(
      warp, lane, config.blockN,
      [&](Value row, Value column) {
        Value tileRow = add(mul(consumer, c32(config.consumerRows())), row);
        // Rows past a ragged launch's end are not stored.
        if (rowsLeft)
          onlyRowsBelow(tileRow, rowsLeft);
        Value data = LLVM::LoadOp::create(
            b, loc, v4i32,
            sharedPointer(stagedAddress(base, consumer, row, column)), 16);
        Value cColumn = add(n0, column);
        storeRowChunk(c, add(cRow, tileRow), config.n, cColumn, data);
      },
      config.consumerRows());
}

void GemmEmitter::storeStagedBoxes(Value base, Value consumer, Value warp,
                                   Value lane, Value cRow, Value n0, Value mapC,
                                   int64_t firstRow) {
  fenceAsyncShared();
  syncConsumer(consumer);
  onConsumerLeader(warp, lane, [&] {
    // The area's column block k holds this consumer's 64 rows of C's
    // columns n0 + 64k .. + 63 in the box's swizzled layout.
    Value row = add(
        cRow, add(mul(consumer, c32(config.consumerRows())), c32(firstRow)));
    for (int64_t k = 0; k < config.blockN / kSwizzleElements; ++k) {
      Value column = c32(k * kSwizzleElements);
      NVVM::CpAsyncBulkTensorSharedCTAToGlobalOp::create(
          b, loc, mapC,
          sharedPointer(stagedAddress(base, consumer, c32(0), column)),
          ValueRange{add(n0, column), row}, /*l2CacheHint=*/Value(),
          NVVM::TMAStoreMode::TILE, /*predicate=*/Value());
    }
    NVVM::CpAsyncBulkCommitGroupOp::create(b, loc);
  });
}

void GemmEmitter::onConsumerLeader(Value warp, Value lane,
                                   function_ref<void()> body) {
  Value leader =
      arith::AndIOp::create(b, loc, cmp(arith::CmpIPredicate::eq, warp, c32(0)),
                            cmp(arith::CmpIPredicate::eq, lane, c32(0)));
  emitIf(leader, body);
}

/// The GEMM kernel for `config`, built once per module.
} // namespace

gpu::GPUFuncOp bpt::sm90::getOrBuildGemmKernel(ModuleOp module,
                                               const GemmConfig &config,
                                               Type element, Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM90KernelModule(module);
  std::string name = config.kernelName();
  if (auto existing = kernels.lookupSymbol<gpu::GPUFuncOp>(name))
    return existing;
  MLIRContext *ctx = module.getContext();
  assert(
      !(config.gated && (config.transposeA || config.transposeB)) &&
      !(config.residual && config.accumulate) &&
      !(config.splitsTail() && (config.accumulate || config.activationGrad)) &&
      !(config.activationGrad && (config.activation || config.gated ||
                                  config.residual || config.accumulate)) &&
      "exclusive GEMM options");
  Type f32 = Float32Type::get(ctx);
  auto cType = MemRefType::get({config.cRows, config.n},
                               config.f32Output ? f32 : element);
  SmallVector<Type> inputs = {tensorMapType(ctx, config.aBoxRows(), element),
                              tensorMapType(ctx, config.bBoxRows(), element)};
  if (config.gated)
    inputs.push_back(tensorMapType(ctx, config.blockK, element));
  inputs.push_back(config.tmaStore()
                       ? tensorMapType(ctx, kStoreBoxRows, element)
                       : Type(cType));
  auto i32 = IntegerType::get(ctx, 32);
  if (config.residual)
    inputs.push_back(MemRefType::get({config.rRows, config.n}, element));
  if (config.accumulate || config.activationGrad)
    inputs.push_back(MemRefType::get({config.launchRows(), config.n}, f32));
  if (config.activationGrad)
    inputs.push_back(MemRefType::get({config.launchRows(), config.n},
                                     config.f32Output ? f32 : element));
  inputs.append({i32, i32}); // A's and C's first rows
  if (config.residual)
    inputs.push_back(i32); // the residual's first row
  if (config.bRowOffset)
    inputs.push_back(i32); // B's first row
  if (config.splitsTail())
    inputs.push_back(MemRefType::get({config.workspaceFloats()}, f32));
  gpu::GPUFuncOp func = createKernel(kernels, name, inputs, config.threads(),
                                     loc, config.blocksPerMultiprocessor);
  OpBuilder b(ctx);
  GemmEmitter(b, loc, config).emit(func);
  return func;
}


int64_t bpt::sm90::pickBlockN(int64_t n) {
  for (int64_t bn : {256, 128})
    if (n % bn == 0)
      return bn;
  return 0;
}

namespace {
/// predictGemmLaunch's units: a launch's start, its first loads and its
/// last epilogue (hopper.md version 13: T_0 of 5-7 µs), in K steps of
/// about 0.45 µs.
constexpr double kLaunchSteps = 12;

/// The K steps of a tile of `config`: on a multiprocessor shared by
/// blocksPerMultiprocessor blocks, or (`alone`) on one of its own, as the
/// tiles of a last wave no larger than the multiprocessors are.
double tileSteps(const GemmConfig &config, bool alone = false) {
  return double(config.kSteps()) * config.blockN / 128 * config.blockM / 128 *
         config.bOperands() * (alone ? 1 : config.blocksPerMultiprocessor);
}

struct TailSplit {
  int64_t tailTiles = 0, kSplits = 1;
  /// Predicted time of the split tail: the parts' wave, the reduce launch.
  double steps = 0;
};

/// A launch's tiles over `rows` rows, and the tiles a wave holds.
struct LaunchWaves {
  int64_t tiles, slots;
};
LaunchWaves launchWaves(const GemmConfig &config, int64_t rows,
                        const ChipInfo &chip) {
  return {(rows + config.blockM - 1) / config.blockM *
              (config.n / config.blockN),
          chip.multiprocessors * config.blocksPerMultiprocessor};
}

/// The time of a launch's last wave of `tail` whole tiles.
double tailSteps(const GemmConfig &config, int64_t tail, const ChipInfo &chip) {
  return tail ? tileSteps(config, tail <= chip.multiprocessors) : 0;
}

/// The tail split planTailSplit describes, for a launch over `rows` rows.
TailSplit chooseTailSplit(const GemmConfig &config, int64_t rows,
                          const ChipInfo &chip) {
  // Parts of at least 4 K steps (each part's pipeline fills and drains),
  // at most 8 a tile (a reduce block reads every part of its tile: 8 of
  // 128 KiB with 256-wide tiles is about 5 µs at an L2 read rate of ~200
  // GB/s a multiprocessor).
  constexpr int64_t kMinPartSteps = 4, kMaxSplits = 8;
  // A reduce block's read of one part, in K steps (200 GB/s, 0.45 µs).
  constexpr double kPartReadStepsPerByte = 1.0 / (200e3 * 0.45);
  // What the split costs beyond its parts' steps: the parts' pipeline
  // fills and partial stores and the reduce launch. Measured on an H100
  // (hopper.md version 21): splitting the down GEMM of a 600-row FFN (20
  // tiles of 32 K steps) made it about 20 µs slower, not faster.
  constexpr double kSplitSteps = 48;
  // Splits that save less than a fifth of the tail's time are not worth
  // the second launch's risk of a misprediction.
  constexpr double kMinGain = 0.8;
  // The partial sums' workspace: at most C's size, or 8 MiB where C is
  // smaller (a transient that shares its slot with other buffers, but
  // bpt's sets keep memory lean).
  const int64_t workspaceBytes =
      std::max<int64_t>(rows * config.n * config.cElementBytes(), 8 << 20);
  if (config.accumulate || config.activationGrad || config.blockM != 128)
    return {};
  auto [tiles, slots] = launchWaves(config, rows, chip);
  int64_t tail = tiles % slots;
  // A last wave more than half full gains too little.
  if (tail == 0 || 2 * tail > slots)
    return {};
  int64_t kSteps = config.kSteps();
  int64_t most = std::min({slots / tail,
                           config.splitLimit ? config.splitLimit : kMaxSplits,
                           kSteps / kMinPartSteps});
  TailSplit best;
  double unsplit = tailSteps(config, tail, chip);
  for (int64_t splits = 2; splits <= most; ++splits) {
    int64_t per = (kSteps + splits - 1) / splits;
    int64_t parts = (kSteps + per - 1) / per;
    // GemmConfig::kStepsPerSplit must give every part a step.
    if ((parts - 1) * ((kSteps + parts - 1) / parts) >= kSteps ||
        tail * parts * config.partialFloats() * 4 > workspaceBytes)
      continue;
    double steps =
        tileSteps(config, tail * parts <= chip.multiprocessors) * per / kSteps +
        kSplitSteps +
        parts * config.partialFloats() * 4 * kPartReadStepsPerByte;
    if (steps <= kMinGain * unsplit && (!best.tailTiles || steps < best.steps))
      best = {tail, parts, steps};
  }
  return best;
}
} // namespace

double bpt::sm90::predictGemmLaunch(const GemmConfig &config, int64_t rows,
                                    const ChipInfo &chip) {
  auto [tiles, slots] = launchWaves(config, rows, chip);
  TailSplit split = chooseTailSplit(config, rows, chip);
  double tail =
      split.tailTiles ? split.steps : tailSteps(config, tiles % slots, chip);
  return (tiles / slots) * tileSteps(config) + tail + kLaunchSteps;
}

void bpt::sm90::planTailSplit(GemmConfig &config, const ChipInfo &chip) {
  // A persistent grid has no last wave of its own to split.
  if (config.persistent())
    return;
  TailSplit split = chooseTailSplit(config, config.launchRows(), chip);
  config.tailTiles = split.tailTiles;
  config.kSplits = split.kSplits;
}

Value bpt::sm90::gemmOutputOperand(OpBuilder &b, Location loc,
                                   const GemmConfig &config, Value c) {
  return config.tmaStore() ? createTensorMap(b, loc, c, kStoreBoxRows) : c;
}

void bpt::sm90::emitGemmLaunches(OpBuilder &b, Location loc, ModuleOp module,
                                 const GemmConfig &config, Type element,
                                 ValueRange args) {
  auto index = [&](int64_t v) -> Value {
    return arith::ConstantIndexOp::create(b, loc, v);
  };
  auto launch = [&](const GemmConfig &kernelConfig, ValueRange operands) {
    gpu::GPUFuncOp kernel =
        getOrBuildGemmKernel(module, kernelConfig, element, loc);
    std::array<int64_t, 2> grid = kernelConfig.launchGrid();
    gpu::LaunchFuncOp::create(
        b, loc, kernel,
        gpu::KernelDim3{index(grid[0]), index(grid[1]), index(1)},
        gpu::KernelDim3{index(kernelConfig.threads()), index(1), index(1)},
        arith::ConstantOp::create(
            b, loc, b.getI32IntegerAttr(kernelConfig.sharedMemoryBytes())),
        operands);
  };
  if (!config.splitsTail()) {
    launch(config, args);
    return;
  }
  auto partials = memref::AllocOp::create(
      b, loc, MemRefType::get({config.workspaceFloats()}, b.getF32Type()));
  setBufferName(partials, "gemm_partials");
  SmallVector<Value> operands(args);
  operands.push_back(partials);
  launch(config, operands);
  GemmConfig reduce = config;
  reduce.reduceTail = true;
  // 256-wide tiles are summed in 128-wide slices: twice the blocks, and
  // half the accumulators a thread, so that all of a part's loads fit in
  // registers at once (measured: 4 blocks summing 8 parts of 128 KiB each
  // took 30 µs).
  if (config.blockN > 128) {
    reduce.partsBlockN = config.blockN;
    reduce.blockN = 128;
    reduce.stagedEpilogue = reduce.canStageEpilogue();
  }
  launch(reduce, operands);
}

int64_t bpt::sm90::largestFFNChunkRows(const ChipInfo &chip) {
  return std::max<int64_t>(2048, 32 * chip.multiprocessors);
}

int64_t bpt::sm90::chooseFFNChunkRows(const GemmConfig &up,
                                      const GemmConfig &down, int64_t rows,
                                      const ChipInfo &chip) {
  constexpr int64_t kTile = 128;
  int64_t rowTiles = (rows + kTile - 1) / kTile;
  int64_t largest = largestFFNChunkRows(chip) / kTile;
  // Chunk counts from the fewest that the largest chunk allows; past four
  // times that, chunks only get smaller and their waves no fuller.
  int64_t fewest = (rowTiles + largest - 1) / largest;
  int64_t most = std::min(
      {rowTiles, 4 * fewest, static_cast<int64_t>(kMaxUnrolledChunks)});
  fewest = std::min(fewest, most);
  struct Candidate {
    int64_t chunkTiles;
    double time;
  };
  SmallVector<Candidate> candidates;
  for (int64_t count = fewest; count <= most; ++count) {
    int64_t chunkTiles = (rowTiles + count - 1) / count;
    if (!candidates.empty() && candidates.back().chunkTiles == chunkTiles)
      continue;
    double time = 0;
    for (int64_t first = 0; first < rows; first += chunkTiles * kTile) {
      int64_t chunk = std::min(chunkTiles * kTile, rows - first);
      time += predictGemmLaunch(up, chunk, chip) +
              predictGemmLaunch(down, chunk, chip);
    }
    candidates.push_back({chunkTiles, time});
  }
  double fastest = llvm::min_element(candidates, [](auto &a, auto &b) {
                     return a.time < b.time;
                   })->time;
  // Candidates run from the largest chunks to the smallest.
  int64_t chunkTiles = candidates.front().chunkTiles;
  for (const Candidate &c : candidates)
    if (c.time <= 1.03 * fastest)
      chunkTiles = c.chunkTiles;
  return std::min(chunkTiles * kTile, rows);
}

std::optional<std::string> bpt::sm90::checkGemmTilingOptions(int64_t blockN,
                                                             int64_t stages) {
  if (blockN != 0 && blockN != 128 && blockN != 256)
    return llvm::formatv("block-n must be 0, 128 or 256, got {0}", blockN)
        .str();
  if (stages != 0 && (stages < 2 || stages > 8))
    return llvm::formatv("gemm-stages must be 0 or in [2, 8], got {0}", stages)
        .str();
  return std::nullopt;
}

std::optional<std::string> bpt::sm90::chooseGemmTiling(GemmConfig &config,
                                                       int64_t blockN,
                                                       int64_t stages,
                                                       const ChipInfo &chip) {
  const int64_t sharedMemory = chip.sharedMemoryPerBlock;
  // Default: 128-wide tiles, but 256-wide for long-K GEMMs (K >= 4096,
  // ungated, N a multiple of 256: the FFN's down GEMM, long weight
  // gradients). Measured on an H100 (hopper.md version 19): 256-wide tiles
  // everywhere made the 16k GELU FFN 7-10% faster although its up GEMM (K
  // 2048) got 6% slower under ncu, so the gain is the down GEMM's (K 8192:
  // 128 tiles of 128 x 256 in one wave at one block a multiprocessor); on
  // an H200 the long-K rule alone took it from 1.71-1.80 to 1.65 ms
  // (version 20). Earlier (H200, before the staged epilogue and two blocks
  // a multiprocessor) 256 x 4 everywhere was slower. Stages:
  // GemmConfig::defaultStages.
  constexpr int64_t kLongK = 4096;
  if (blockN)
    config.blockN = blockN;
  else if (!config.gated && config.n % 256 == 0 && config.k >= kLongK)
    config.blockN = 256;
  else
    config.blockN = config.n % 128 == 0 ? 128 : 0;
  if (config.gated && config.blockN != 128)
    return llvm::formatv("a gated GEMM takes 128-wide tiles (two "
                         "accumulators), not {0}",
                         config.blockN)
        .str();
  if (!config.blockN || config.n % config.blockN != 0)
    return llvm::formatv("N = {0} is not a multiple of the {1}-column tile",
                         config.n, config.blockN)
        .str();
  // 256 × 128 tiles, one block a multiprocessor, where the epilogue
  // allows them and no stage count is asked for (which picks the 128-row
  // tilings): cuBLAS's tile on the FFN's shapes. Measured on an H100
  // (hopper.md version 25): the 16k FFN's up GEMM (K 2048, GELU) 125.7 →
  // 114.1 µs against 128 × 128 tiles at two blocks a multiprocessor, block
  // 4k and 16k −6% (session 28: 125.1 → 114.4 µs, block −5 to −6%,
  // training step −1 to −3%). Launches whose rows are not whole 256-row
  // tiles take them too where the TMA store drops the last tile's rows
  // past the launch (GemmConfig::clipsRaggedRows; session 30, hopper.md
  // version 28) and the rows they pad to are at most 1/8 more than 128-row
  // tiles pad to (tall, persistent tiles ran ~13% faster a row than
  // 128-row ones on the 16k FFN's up GEMM: 108.8 against 125.1 µs); others
  // keep 128-row tiles, row masks and the split tail. So do launches of at
  // most a tall tile a multiprocessor's half: there 128-row tiles keep
  // every block alone on its multiprocessor, on twice as many of them,
  // and their last wave may split along K (a 256 × 1408 × 5632 GEMM: 11
  // tall tiles on 11 multiprocessors, or 22 tiles split 5 ways on 110).
  const int64_t tallRows = llvm::alignTo(config.launchRows(), 256);
  const int64_t shortRows = llvm::alignTo(config.launchRows(), 128);
  const bool tallPadding =
      config.launchRows() % 256 == 0 ||
      (config.clipsRaggedRows() && 8 * tallRows <= 9 * shortRows);
  const int64_t tallTiles = tallRows / 256 * (config.n / 128);
  if (!stages && config.blockN == 128 && config.allowsTallTiles() &&
      tallPadding && 2 * tallTiles > chip.multiprocessors)
    config.blockM = 256;
  if (stages) {
    config.stages = stages;
  } else {
    // Where the epilogue allows two blocks a multiprocessor, three stages
    // each (one block's prologue and epilogue overlap the other's main
    // loop; measured with the staged epilogue, docs/notes/hopper.md 14b);
    // else as many stages as fit, up to the depth that measured best.
    config.stages = config.defaultStages();
    while (config.stages > 2 && config.sharedMemoryBytes() > sharedMemory)
      --config.stages;
  }
  if (config.sharedMemoryBytes() > sharedMemory)
    return llvm::formatv("{0} stages of {1} bytes need {2} bytes of shared "
                         "memory, {3} available",
                         config.stages, config.stageBytes(),
                         config.sharedMemoryBytes(), sharedMemory)
        .str();
  // Measured (docs/notes/hopper.md 14b): the staged epilogue is as fast or
  // faster wherever it applies.
  config.stagedEpilogue = config.canStageEpilogue();
  // Tall tiles run persistent: a block a multiprocessor takes tiles b,
  // b + grid, ... through one ring, so its producer loads the next tile
  // while the consumers run this one's epilogue (C staged in an area of
  // its own). Measured on an H100 (hopper.md version 27): the 16k FFN's up
  // GEMM 114.5 → 108.8 µs (0.84 → 0.89× cuBLAS, 0.89 → 0.94× its fused
  // GELU).
  if (config.canRunPersistent() && config.stagedEpilogue) {
    config.persistentBlocks = chip.multiprocessors;
    if (config.sharedMemoryBytes() > sharedMemory)
      config.persistentBlocks = 0;
  }
  config.blocksPerMultiprocessor =
      config.fitsTwoBlocks() && 2 * (config.sharedMemoryBytes() +
                                     chip.sharedMemoryReservedPerBlock) <=
                                    chip.sharedMemoryPerSM
          ? 2
          : 1;
  return std::nullopt;
}
