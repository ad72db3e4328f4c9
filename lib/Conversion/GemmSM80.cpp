//===- GemmSM80.cpp - the mma.sync GEMM kernel ------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// C[cRow0 + i, :] = epilogue(A[aRow0 + i, :] · B) on warp-level tensor cores,
// for the FFN of chips without wgmma (bpt-ffn-to-sm80). A thread block of 8
// warps owns a 128 x 128 tile of C; its threads copy 64-deep slices of A
// ([128, 64]) and B ([64, 128], B row-major as the weights are stored) with
// cp.async into a ring of swizzled shared-memory stages, one commit group a
// slice; each warp computes a 64 x 32 sub-tile with mma.sync m16n8k16 on A
// fragments from ldmatrix and B fragments from ldmatrix.trans. The
// epilogue applies the activation (for gated ones, act(A·G) ⊙ (A·B) with a
// second B operand and accumulator) in f32 and rounds once. A launch may
// cover any number of rows: the last tile's rows past them are zero-filled
// by cp.async and not stored.
//
//===----------------------------------------------------------------------===//

#include "SM80Kernels.h"

#include "bpt/Conversion/Passes.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace bpt;
using namespace bpt::sm80;

namespace {

// The block's warps: 2 along M (64 rows each) x warpsN along N.
constexpr int64_t kWarpTileM = 64;

class GemmEmitter : public SM80Emitter {
public:
  GemmEmitter(OpBuilder &b, Location loc, const GemmConfig &config)
      : SM80Emitter(b, loc, config.bf16), config(config) {}

  void emit(gpu::GPUFuncOp func);

private:
  Value wide(Value v) { return arith::ExtUIOp::create(b, loc, i64, v); }
  /// Global address of (row, column) of a row-major matrix of `columns`
  /// elements a row.
  Value elementAddress(Value base, Value row, Value column, int64_t columns) {
    const int64_t bytes = config.elementBytes();
    Value offset = add(mul(wide(row), c64(columns * bytes)),
                       mul(wide(column), c64(bytes)));
    return LLVM::GEPOp::create(b, loc, globalPtr, b.getI8Type(), base,
                               ValueRange{offset});
  }
  /// Issues the copies of K slice `kb` into ring stage `kb % stages`; commits
  /// a group either way.
  void prefetch(Value kb) {
    emitIf(cmp(arith::CmpIPredicate::slt, kb, c32(numSlices)), [&] {
      Value stage = stageAddress(rem(kb, c32(config.stages)));
      Value k0 = mul(kb, c32(config.blockK));
      const int64_t bytes = config.elementBytes();
      copyTileAsync(stage, elementAddress(a, add(aRow, m0), k0, config.k),
                    config.blockM, config.blockK * bytes, config.k * bytes, tid,
                    config.threads(), rowsLeft);
      for (int64_t operand = 0; operand < (config.gated ? 2 : 1); ++operand)
        copyTileAsync(
            add(stage,
                c32(config.aTileBytes() + operand * config.bTileBytes())),
            elementAddress(operand ? gate : bMatrix, k0, n0, config.n),
            config.blockK, config.blockN * bytes, config.n * bytes, tid,
            config.threads());
    });
    NVVM::CpAsyncCommitGroupOp::create(b, loc);
  }
  Value stageAddress(Value stage) {
    return add(base, mul(stage, c32(config.stageBytes())));
  }

  const GemmConfig &config;
  int64_t numSlices = 0;
  Value tid, base, a, bMatrix, gate, aRow, m0, n0;
  /// The launch's rows from the tile's first on, for a ragged launch (only
  /// its last tile has fewer than blockM): A's rows past them are
  /// zero-filled, not read (they may lie past A's end), and C's are not
  /// stored.
  Value rowsLeft;
};

void GemmEmitter::emit(gpu::GPUFuncOp func) {
  b.setInsertionPointToStart(&func.getBody().front());
  unsigned arg = 0;
  a = globalPointerOf(func.getArgument(arg++));
  bMatrix = globalPointerOf(func.getArgument(arg++));
  if (config.gated)
    gate = globalPointerOf(func.getArgument(arg++));
  Value c = globalPointerOf(func.getArgument(arg++));
  aRow = func.getArgument(arg++);
  Value cRow = func.getArgument(arg++);

  tid = index32(gpu::ThreadIdOp::create(b, loc, gpu::Dimension::x));
  n0 = mul(index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::x)),
           c32(config.blockN));
  m0 = mul(index32(gpu::BlockIdOp::create(b, loc, gpu::Dimension::y)),
           c32(config.blockM));
  Value warp = div(tid, c32(kWarp)), lane = rem(tid, c32(kWarp));
  Value warpRow = mul(div(warp, c32(config.warpsN)), c32(kWarpTileM));
  const int64_t warpTileN = config.warpTileN();
  Value warpColumn = mul(rem(warp, c32(config.warpsN)), c32(warpTileN));
  base = alignedSharedBase(kSharedMemorySymbol, kTileAlignment);
  numSlices = config.k / config.blockK;
  if (config.raggedRows())
    rowsLeft = sub(c32(config.launchRows()), m0);

  for (int64_t s = 0; s + 1 < config.stages; ++s)
    prefetch(c32(s));

  const int64_t mTiles = kWarpTileM / 16, nTiles = warpTileN / 8;
  const int64_t operands = config.gated ? 2 : 1;
  const int64_t count = mTiles * nTiles * 4; // floats per accumulator
  SmallVector<Value> init(operands * count, cf(0.0));
  // A lane's group and its index in it: the rows and columns of its
  // fragment elements (TF32's B words, the accumulators in the epilogue).
  Value g = div(lane, c32(4)), t = rem(lane, c32(4));
  auto loop = scf::ForOp::create(b, loc, c32(0), c32(numSlices), c32(1), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kb = loop.getInductionVar();
    SmallVector<Value> acc(loop.getRegionIterArgs());
    // Slice kb has landed for every thread; all warps are past slice
    // kb - 1, whose stage the next prefetch overwrites.
    NVVM::CpAsyncWaitGroupOp::create(b, loc, config.stages - 2);
    NVVM::Barrier0Op::create(b, loc);
    prefetch(add(kb, c32(config.stages - 1)));
    Value stage = stageAddress(rem(kb, c32(config.stages)));

    Value lane8 = rem(lane, c32(8));
    // A fragments: matrices (rows 0-7 | 8-15) x (columns 0-7 | 8-15).
    Value aRowInTile =
        add(warpRow, add(lane8, mul(rem(div(lane, c32(8)), c32(2)), c32(8))));
    Value aHalf = div(lane, c32(16));
    // B fragments (ldmatrix.trans of [k, n]): matrices (k 0-7 | 8-15) x
    // (columns of an 8-column tile pair).
    Value bRowInTile = add(lane8, mul(rem(div(lane, c32(8)), c32(2)), c32(8)));
    Value bChunk = add(div(warpColumn, c32(8)), div(lane, c32(16)));
    // A k step is 32 bytes of a slice row: 16 elements (m16n8k16) or 8
    // f32 (m16n8k8, TF32).
    const int64_t kStep = config.tf32 ? 8 : 16;
    const int64_t aRowBytes = config.blockK * config.elementBytes();
    const int64_t bRowBytes = config.blockN * config.elementBytes();
    for (int64_t k = 0; k < config.blockK / kStep; ++k) {
      // ldmatrix's four 8 x 16-byte matrices are the A fragment either way:
      // for TF32, lane i's 32-bit word is (row i / 4, column i % 4) of
      // each, which is a0 to a3 of m16n8k8.
      SmallVector<SmallVector<Value>> aFragments;
      for (int64_t mt = 0; mt < mTiles; ++mt) {
        aFragments.push_back(
            loadMatrices(chunkAddress(stage, add(aRowInTile, c32(16 * mt)),
                                      add(c32(2 * k), aHalf), aRowBytes),
                         /*transpose=*/false));
        if (config.tf32)
          for (Value &word : aFragments.back())
            word = roundToTF32(word);
      }
      for (int64_t operand = 0; operand < operands; ++operand) {
        Value bTile = add(stage, c32(config.aTileBytes() +
                                     operand * config.bTileBytes()));
        if (config.tf32) {
          // B [k, n] is n-contiguous and ldmatrix.trans transposes 16-bit
          // elements only: b0 = (k t, n g) and b1 = (k t + 4, n g) as
          // single words (two rows of four share banks: 2-way conflicts).
          auto word = [&](Value row, Value column) {
            Value address =
                add(chunkAddress(bTile, row, div(column, c32(4)), bRowBytes),
                    mul(rem(column, c32(4)), c32(4)));
            return roundToTF32(
                LLVM::LoadOp::create(b, loc, i32, sharedPointer(address), 4));
          };
          for (int64_t nt = 0; nt < nTiles; ++nt) {
            Value column = add(warpColumn, add(g, c32(8 * nt)));
            Value b0 = word(add(t, c32(8 * k)), column);
            Value b1 = word(add(t, c32(8 * k + 4)), column);
            for (int64_t mt = 0; mt < mTiles; ++mt) {
              int64_t at = operand * count + 4 * (mt * nTiles + nt);
              SmallVector<Value> tile(acc.begin() + at, acc.begin() + at + 4);
              tile = mmaTF32(aFragments[mt], b0, b1, tile);
              std::copy(tile.begin(), tile.end(), acc.begin() + at);
            }
          }
          continue;
        }
        for (int64_t pair = 0; pair < nTiles / 2; ++pair) {
          SmallVector<Value> f =
              loadMatrices(chunkAddress(bTile, add(bRowInTile, c32(16 * k)),
                                        add(bChunk, c32(2 * pair)), bRowBytes),
                           /*transpose=*/true);
          for (int64_t h = 0; h < 2; ++h) {
            int64_t nt = 2 * pair + h;
            for (int64_t mt = 0; mt < mTiles; ++mt) {
              int64_t at = operand * count + 4 * (mt * nTiles + nt);
              SmallVector<Value> tile(acc.begin() + at, acc.begin() + at + 4);
              tile = mma(aFragments[mt], f[2 * h], f[2 * h + 1], tile);
              std::copy(tile.begin(), tile.end(), acc.begin() + at);
            }
          }
        }
      }
    }
    scf::YieldOp::create(b, loc, acc);
  }

  // Epilogue: accumulator tile (mt, nt) holds (row g | g + 8) x columns
  // 2t, 2t + 1 of its 16 x 8 block.
  SmallVector<Value> acc(loop.getResults());
  for (int64_t mt = 0; mt < mTiles; ++mt) {
    for (int64_t i = 0; i < 2; ++i) {
      OpBuilder::InsertionGuard rowGuard(b);
      if (rowsLeft)
        onlyRowsBelow(add(warpRow, add(g, c32(16 * mt + 8 * i))), rowsLeft);
      Value row = add(cRow, add(m0, add(warpRow, add(g, c32(16 * mt + 8 * i)))));
      for (int64_t nt = 0; nt < nTiles; ++nt) {
        Value column =
            add(n0, add(warpColumn, add(mul(t, c32(2)), c32(8 * nt))));
        int64_t at = 4 * (mt * nTiles + nt) + 2 * i;
        Value pair[2] = {acc[at], acc[at + 1]};
        for (int64_t h = 0; h < 2; ++h)
          pair[h] = config.activate(
              b, loc, pair[h], config.gated ? acc[count + at + h] : Value());
        storePair(elementAddress(c, row, column, config.n), pair[0], pair[1],
                  /*asF32=*/config.tf32);
      }
    }
  }
  gpu::ReturnOp::create(b, loc);
}

} // namespace

std::optional<std::string> bpt::sm80::GemmConfig::check(int64_t sharedMemory) {
  if (gated && !activation)
    return std::string("a gated GEMM needs an activation");
  // A slice row is 128 bytes: 64 16-bit elements or 32 f32.
  blockK = tf32 ? 32 : 64;
  // Tiles: 0 (the default) picks 256 columns for 8 warps of 64 x 64 where
  // N allows; a gated GEMM's two accumulators keep 8 warps of 64 x 32 on
  // 128 columns. 128 columns not gated: 4 warps of 64 x 64, two blocks a
  // multiprocessor.
  if (gated) {
    if (blockN == 256)
      return std::string("a gated GEMM takes 128-wide tiles");
    blockN = 128;
  } else if (blockN == 0) {
    blockN = n % 256 == 0 ? 256 : 128;
  }
  warpsN = gated || blockN == 256 ? 4 : 2;
  if (n % blockN != 0 || k % blockK != 0)
    return llvm::formatv("N = {0} must be a multiple of {1} and K = {2} of {3}",
                         n, blockN, k, blockK)
        .str();
  // As many stages as fit, up to 4.
  // 4-warp tiles are meant to run two blocks a multiprocessor: at most 3
  // stages (96 KiB).
  stages = std::min<int64_t>(warpsN == 2 ? 3 : 4,
                             (sharedMemory - kTileAlignment) / stageBytes());
  if (stages < 2)
    return llvm::formatv("two stages of {0} bytes do not fit {1} bytes of "
                         "shared memory",
                         stageBytes(), sharedMemory)
        .str();
  return std::nullopt;
}

gpu::GPUFuncOp bpt::sm80::getOrBuildGemmKernel(ModuleOp module,
                                               const GemmConfig &config,
                                               Type element, Location loc) {
  gpu::GPUModuleOp kernels = getOrCreateSM80KernelModule(module);
  std::string name = config.kernelName();
  if (auto existing = kernels.lookupSymbol<gpu::GPUFuncOp>(name))
    return existing;
  MLIRContext *ctx = module.getContext();
  auto i32 = IntegerType::get(ctx, 32);
  SmallVector<Type> inputs = {
      MemRefType::get({config.aRows, config.k}, element),
      MemRefType::get({config.k, config.n}, element)};
  if (config.gated)
    inputs.push_back(MemRefType::get({config.k, config.n}, element));
  inputs.append({MemRefType::get({config.cRows, config.n}, element), i32, i32});
  gpu::GPUFuncOp func = createKernel(kernels, name, inputs, config.threads(),
                                     loc);
  OpBuilder b(ctx);
  GemmEmitter(b, loc, config).emit(func);
  return func;
}
