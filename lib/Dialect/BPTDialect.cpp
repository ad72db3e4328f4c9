//===- BPTDialect.cpp - bpt dialect -----------------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Dialect/BPTDialect.h"
#include "bpt/Dialect/BPTOps.h"

#include "SoftmaxScale.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

#include <optional>

using namespace mlir;
using namespace bpt;

#include "bpt/Dialect/BPTOpsDialect.cpp.inc"
#include "bpt/Dialect/BPTOpsEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "bpt/Dialect/BPTOpsAttrs.cpp.inc"

void BPTDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "bpt/Dialect/BPTOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "bpt/Dialect/BPTOpsAttrs.cpp.inc"
      >();
}

bool bpt::isGatedActivation(Activation activation) {
  return activation == Activation::swiglu || activation == Activation::geglu;
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

StrategyAttr StrategyAttr::get(Operation *op) {
  return op->getAttrOfType<StrategyAttr>(kAttrName);
}

StrategyAttr StrategyAttr::getEnclosing(Operation *op) {
  for (Operation *parent = op->getParentOp(); parent;
       parent = parent->getParentOp())
    if (StrategyAttr strategy = get(parent))
      return strategy;
  return {};
}

LogicalResult
StrategyAttr::verify(llvm::function_ref<InFlightDiagnostic()> emitError,
                     KernelPath path, StringRef chip, int64_t qBlock,
                     int64_t kvBlock, int64_t stages, int64_t warps,
                     int64_t chunkRows, int64_t gemmBlockN, int64_t gemmStages,
                     int64_t gemmSplit, int64_t kvSplits) {
  if (chip.empty())
    return emitError() << "strategy needs a chip";
  for (auto [name, value] : {std::pair<StringRef, int64_t>{"q_block", qBlock},
                             {"kv_block", kvBlock},
                             {"stages", stages},
                             {"warps", warps},
                             {"chunk_rows", chunkRows},
                             {"gemm_block_n", gemmBlockN},
                             {"gemm_stages", gemmStages},
                             {"gemm_split", gemmSplit},
                             {"kv_splits", kvSplits}})
    if (value < 0)
      return emitError() << "strategy field " << name
                         << " must not be negative, got " << value;
  if (kvSplits > kMaxKVSplits)
    return emitError() << "strategy field kv_splits must be at most "
                       << kMaxKVSplits << ", got " << kvSplits;
  if (path == KernelPath::portable)
    return success();
  for (auto [name, value, limit] :
       {std::tuple<StringRef, int64_t, int64_t>{"q_block", qBlock,
                                                kMaxStrategyTile},
        {"kv_block", kvBlock, kMaxStrategyTile},
        {"gemm_block_n", gemmBlockN, kMaxStrategyTile},
        {"stages", stages, kMaxStrategyStages},
        {"gemm_stages", gemmStages, kMaxStrategyStages},
        {"gemm_split", gemmSplit, kMaxStrategyGemmSplit},
        {"warps", warps, kMaxStrategyWarps}})
    if (value > limit)
      return emitError() << "strategy field " << name << " of a "
                         << stringifyKernelPath(path)
                         << " kernel must be at most " << limit << ", got "
                         << value;
  return success();
}

LogicalResult BPTDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attribute) {
  StringRef name = attribute.getName().getValue();
  if (name == StrategyAttr::kAttrName && !isa<StrategyAttr>(attribute.getValue()))
    return op->emitOpError() << "attribute '" << name
                             << "' must be a #bpt.strategy";
  if (name == AttentionNestAttr::kAttrName &&
      !isa<AttentionNestAttr, AttentionGradNestAttr, SplitKVNestAttr,
           ChunkLoopAttr>(
          attribute.getValue()))
    return op->emitOpError() << "attribute '" << name
                             << "' must be a #bpt.attention_nest, a "
                                "#bpt.attention_grad_nest, a "
                                "#bpt.split_kv_nest or a #bpt.chunk_loop";
  if (name == kRecomputedAttrName && !isa<UnitAttr>(attribute.getValue()))
    return op->emitOpError() << "attribute '" << name << "' must be a unit "
                             << "attribute";
  if (name == kBufferNameAttrName) {
    auto text = dyn_cast<StringAttr>(attribute.getValue());
    if (!text || text.getValue().empty() ||
        !llvm::all_of(text.getValue(), [](char c) {
          return llvm::isAlnum(c) || c == '_';
        }))
      return op->emitOpError()
             << "attribute '" << name
             << "' must be a non-empty string of letters, digits and '_'";
  }
  if (name == kWritesOverAttrName) {
    // The operand indices are checked against the launch where they are
    // used (the manifest builder): this library does not link the GPU
    // dialect.
    auto pairs = dyn_cast<DenseI64ArrayAttr>(attribute.getValue());
    if (op->getName().getStringRef() != "gpu.launch_func" || !pairs ||
        pairs.empty() || pairs.size() % 2 != 0)
      return op->emitOpError()
             << "attribute '" << name
             << "' must be a non-empty array<i64> of (written, read) kernel "
                "operand pairs on a gpu.launch_func";
    llvm::SmallDenseSet<int64_t> written;
    for (int64_t i = 0; i < pairs.size(); i += 2) {
      int64_t w = pairs[i], r = pairs[i + 1];
      if (w < 0 || r < 0 || w == r || !written.insert(w).second)
        return op->emitOpError()
               << "attribute '" << name << "' pair (" << w << ", " << r
               << ") must name two different kernel operands, each written "
                  "operand once";
    }
  }
  // The kernels take the nest's scale as it is.
  std::optional<double> scale;
  if (auto nest = dyn_cast<AttentionNestAttr>(attribute.getValue()))
    scale = nest.getScale().convertToDouble();
  if (auto nest = dyn_cast<AttentionGradNestAttr>(attribute.getValue()))
    scale = nest.getScale().convertToDouble();
  if (auto nest = dyn_cast<SplitKVNestAttr>(attribute.getValue()))
    scale = nest.getScale().convertToDouble();
  if (scale && !isSoftmaxScaleInRange(*scale))
    return op->emitOpError() << "attribute '" << name << "' has scale "
                             << *scale << "; it must be "
                             << kSoftmaxScaleRange;
  return success();
}
