//===- LinearToSM90.cpp - bpt.linear on Hopper tensor cores -----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Replaces a bpt.linear whose strategy takes the wgmma path by one launch of
// the sm_90a GEMM kernel (GemmSM90.cpp) over its input viewed as [rows, K]:
// a lone projection, or one of a block that bpt-decompose-block expanded
// (a block the wgmma block kernels do not take, such as a ragged sequence).
// A bpt.matmul (the gradients' GEMMs, bpt-expand-gradients) is one launch
// of the same kernel with its operands' layouts. The chunks of rows that
// bpt-expand-gradients cuts (tensor.extract_slice of whole rows) and puts
// together (tensor.insert_slice chains from a tensor.empty) become the
// kernel's row offsets into the whole matrices, so no chunk is copied: a
// kernel set's launches take whole buffers only.
//
//===----------------------------------------------------------------------===//

#include "bpt/Conversion/Passes.h"

#include "SM90Kernels.h"
#include "LinearLaunch.h"
#include "StrategyOps.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace bpt {
#define GEN_PASS_DEF_BPTLINEARTOSM90
#include "bpt/Conversion/Passes.h.inc"
} // namespace bpt

using namespace mlir;
using namespace bpt;
using namespace bpt::sm90;

namespace {

/// C's launch argument from its rows, as `config`'s kernel takes it
/// (gemmOutputOperand); `config` must outlive the launch's emission.
std::function<Value(OpBuilder &, Value)>
outputOperandOf(const GemmConfig &config, Location loc) {
  return [&config, loc](OpBuilder &b, Value rows) {
    return gemmOutputOperand(b, loc, config, rows);
  };
}

/// Rows [first, first + rows) of `source`, a matrix.
struct RowSlice {
  Value source;
  int64_t first, rows;
};

/// `v` as whole rows of a larger matrix, when a tensor.extract_slice cuts
/// it so.
std::optional<RowSlice> rowSliceOf(Value v) {
  auto slice = v.getDefiningOp<tensor::ExtractSliceOp>();
  if (!slice || slice.getSourceType().getRank() != 2 ||
      slice.getType().getRank() != 2 || !slice.hasUnitStride())
    return std::nullopt;
  ArrayRef<int64_t> offsets = slice.getStaticOffsets();
  ArrayRef<int64_t> sizes = slice.getStaticSizes();
  if (ShapedType::isDynamic(offsets[0]) || offsets[1] != 0 ||
      sizes[1] != slice.getSourceType().getDimSize(1))
    return std::nullopt;
  return RowSlice{slice.getSource(), offsets[0], sizes[0]};
}

/// The tensor.insert_slice that is `v`'s only use, writing it as whole rows
/// of a matrix put together from a tensor.empty by a chain of such inserts.
struct RowInsert {
  tensor::InsertSliceOp insert;
  tensor::EmptyOp root;
  int64_t first;
};

std::optional<RowInsert> rowInsertOf(Value v) {
  if (!v.hasOneUse())
    return std::nullopt;
  auto insert = dyn_cast<tensor::InsertSliceOp>(*v.getUsers().begin());
  if (!insert || insert.getSource() != v || insert.getType().getRank() != 2 ||
      insert.getSourceType().getRank() != 2 || !insert.hasUnitStride())
    return std::nullopt;
  ArrayRef<int64_t> offsets = insert.getStaticOffsets();
  ArrayRef<int64_t> sizes = insert.getStaticSizes();
  if (ShapedType::isDynamic(offsets[0]) || offsets[1] != 0 ||
      sizes[1] != insert.getType().getDimSize(1))
    return std::nullopt;
  Value dest = insert.getDest();
  while (auto previous = dest.getDefiningOp<tensor::InsertSliceOp>()) {
    if (!dest.hasOneUse())
      return std::nullopt;
    dest = previous.getDest();
  }
  auto root = dest.getDefiningOp<tensor::EmptyOp>();
  if (!root || !root.getType().hasStaticShape())
    return std::nullopt;
  return RowInsert{insert, root, offsets[0]};
}

struct BPTLinearToSM90Pass final
    : bpt::impl::BPTLinearToSM90Base<BPTLinearToSM90Pass> {
  using Base::Base;

  void runOnOperation() override {
    for (LinearOp op : opsTaking<LinearOp>(getOperation(), KernelPath::wgmma)) {
      StrategyAttr strategy = StrategyAttr::get(op);
      auto xType = cast<RankedTensorType>(op.getInput().getType());
      int64_t k = xType.getShape().back();
      int64_t rows = xType.getNumElements() / k;
      int64_t n = op.getWeight().getType().getDimSize(1);
      GemmConfig config{/*aRows=*/rows, /*cRows=*/rows, n, k,
                        xType.getElementType().isBF16(), std::nullopt};
      if (std::optional<std::string> why = chooseGemmTiling(
              config, strategy.getGemmBlockN(), strategy.getGemmStages(),
              getChipInfo(strategy.getChip()))) {
        op.emitError() << "bpt-linear-to-sm90: " << *why;
        return signalPassFailure();
      }
      rewrite(op, config);
    }
    DenseMap<Operation *, Value> chainBuffers;
    for (MatmulOp op : opsTaking<MatmulOp>(getOperation(), KernelPath::wgmma))
      if (failed(rewrite(op, chainBuffers)))
        return signalPassFailure();
    if (failed(finishChains(chainBuffers)))
      return signalPassFailure();
    // Slices whose rows the launches now address by offset.
    SmallVector<tensor::ExtractSliceOp> slices;
    getOperation().walk(
        [&](tensor::ExtractSliceOp slice) { slices.push_back(slice); });
    for (tensor::ExtractSliceOp slice : llvm::reverse(slices))
      if (slice->use_empty())
        slice->erase();
  }

  /// bpt.matmul: the GEMM with its operands' layouts, its f32 sum and C. An
  /// operand cut from a larger matrix's rows is read in place from its row,
  /// and a result put into one's rows is written there (`chainBuffers`:
  /// the buffer of each chain's tensor.empty).
  LogicalResult rewrite(MatmulOp op,
                        DenseMap<Operation *, Value> &chainBuffers) {
    StrategyAttr strategy = StrategyAttr::get(op);
    Type element = op.getLhs().getType().getElementType();
    GemmConfig config{op.getM(), op.getM(), op.getN(), op.getK(),
                      element.isBF16(), std::nullopt};
    config.transposeA = op.getTransposeLhs();
    config.transposeB = op.getTransposeRhs();
    config.accumulate = static_cast<bool>(op.getAccumulator());
    config.activationGrad = op.getActivation();
    config.f32Output = op.getResult().getType().getElementType().isF32();
    codegen::GemmLaunchPlace place;
    Value a = op.getLhs(), b = op.getRhs();
    // A chunk of K rows ends at a multiple of blockK or at its matrix's
    // end (TMA's zero fill): else the last step would read the next
    // chunk's rows against the other operand's.
    auto kRowsFit = [&](const RowSlice &slice) {
      return slice.rows % config.blockK == 0 ||
             slice.first + slice.rows ==
                 cast<RankedTensorType>(slice.source.getType()).getDimSize(0);
    };
    auto unfit = [&](StringRef operand, const RowSlice &slice) {
      return op.emitError()
             << "bpt-linear-to-sm90: " << operand << "'s chunk of "
             << slice.rows << " K rows at row " << slice.first
             << " neither is a multiple of " << config.blockK
             << " rows nor ends its matrix";
    };
    std::optional<RowSlice> aSlice = rowSliceOf(a);
    if (aSlice) {
      if (config.transposeA && !kRowsFit(*aSlice))
        return unfit("lhs", *aSlice);
      a = aSlice->source;
      place.aRow = aSlice->first;
      if (!config.transposeA)
        config.aRows = cast<RankedTensorType>(a.getType()).getDimSize(0);
    }
    if (std::optional<RowSlice> bSlice = rowSliceOf(b)) {
      if (!config.transposeB && !kRowsFit(*bSlice))
        return unfit("rhs", *bSlice);
      b = bSlice->source;
      place.bRow = bSlice->first;
      config.bRowOffset = true;
    }
    std::optional<RowInsert> insert = rowInsertOf(op.getResult());
    if (insert) {
      if (aSlice && !config.transposeA)
        return op.emitError() << "bpt-linear-to-sm90: a GEMM whose lhs "
                                 "and result are both chunks of rows";
      config.cRows = insert->root.getType().getDimSize(0);
      place.cRow = insert->first;
    }
    if (std::optional<std::string> why = chooseGemmTiling(
            config, strategy.getGemmBlockN(), strategy.getGemmStages(),
            getChipInfo(strategy.getChip())))
      return op.emitError() << "bpt-linear-to-sm90: " << *why;
    Location loc = op.getLoc();
    gpu::GPUFuncOp kernel =
        getOrBuildGemmKernel(getOperation(), config, element, loc);
    OpBuilder builder(op);
    if (insert) {
      Value &buffer = chainBuffers[insert->root];
      if (!buffer) {
        OpBuilder atRoot(insert->root);
        RankedTensorType type = insert->root.getType();
        buffer = memref::AllocOp::create(
            atRoot, insert->root.getLoc(),
            MemRefType::get(type.getShape(), type.getElementType()));
      }
      place.out = buffer;
      // The insert is now the launch's write: its result is its dest.
      insert->insert.getResult().replaceAllUsesWith(insert->insert.getDest());
      insert->insert.erase();
    }
    Value aMap = createTensorMap(builder, loc, readOnlyBuffer(builder, loc, a),
                                 config.aBoxRows());
    Value bMap = createTensorMap(builder, loc, readOnlyBuffer(builder, loc, b),
                                 config.bBoxRows());
    // The f32 sum to add, or the pre-activation: one argument slot.
    Value f32Operand = op.getAccumulator() ? op.getAccumulator() : op.getPre();
    Value sum = f32Operand ? readOnlyBuffer(builder, loc, f32Operand) : Value();
    place.outputOperand = outputOperandOf(config, loc);
    codegen::replaceWithGemmLaunch(builder, op, kernel, config, aMap, bMap,
                                   sum, place);
    return success();
  }

  /// Each chain's tensor.empty, its inserts all launches now, becomes the
  /// buffer they wrote, read where the chain's result was first used.
  LogicalResult finishChains(DenseMap<Operation *, Value> &chainBuffers) {
    for (auto [op, buffer] : chainBuffers) {
      auto root = cast<tensor::EmptyOp>(op);
      Operation *first = nullptr;
      for (Operation *user : root->getUsers()) {
        if (isa<tensor::InsertSliceOp>(user))
          return user->emitError()
                 << "bpt-linear-to-sm90: rows written into a matrix that "
                    "wgmma GEMMs write in place, by an op other than one";
        Operation *here = root->getBlock()->findAncestorOpInBlock(*user);
        if (!first || here->isBeforeInBlock(first))
          first = here;
      }
      if (first) {
        OpBuilder b(first);
        Value whole = bufferization::ToTensorOp::create(
            b, root.getLoc(), root.getType(), buffer, /*restrict=*/true,
            /*writable=*/true);
        root.getResult().replaceAllUsesWith(whole);
      }
      root.erase();
    }
    return success();
  }

  void rewrite(LinearOp op, const GemmConfig &config) {
    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getType());
    Type element = resultType.getElementType();
    gpu::GPUFuncOp kernel =
        getOrBuildGemmKernel(getOperation(), config, element, loc);

    OpBuilder b(op);
    Value x = asRows(b, loc, readOnlyBuffer(b, loc, op.getInput()));
    Value xMap = createTensorMap(b, loc, x, config.blockM);
    Value wMap = createTensorMap(b, loc, readOnlyBuffer(b, loc, op.getWeight()),
                                 config.blockK);
    codegen::GemmLaunchPlace place;
    place.outputOperand = outputOperandOf(config, loc);
    codegen::replaceWithGemmLaunch(b, op, kernel, config, xMap, wMap,
                                   /*sum=*/Value(), place);
  }
};

} // namespace
