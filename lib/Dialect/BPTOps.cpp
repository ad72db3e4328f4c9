//===- BPTOps.cpp - bpt dialect operations ----------------------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Dialect/BPTOps.h"

#include "SoftmaxScale.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

#include <array>
#include <cmath>
#include <optional>
#include <tuple>

using namespace mlir;
using namespace bpt;

//===----------------------------------------------------------------------===//
// Verification helpers
//===----------------------------------------------------------------------===//

namespace {

/// Checks the operands and result of one op against the dialect's tensor
/// rules, naming each operand in its diagnostics: statically shaped tensors
/// with non-zero dimensions, of f32, f16 or bf16, all of one element type.
class TensorChecker {
public:
  explicit TensorChecker(Operation *op) : op(op) {}

  /// Checks the tensor `name` of type `type`. `rank` is its exact rank, or
  /// std::nullopt for "[..., X]" layouts that need rank >= 1. `layout` names
  /// the dimensions for the diagnostic. Returns the shape on success.
  FailureOr<ArrayRef<int64_t>> check(StringRef name, Type type,
                                     std::optional<int64_t> rank,
                                     StringRef layout) {
    auto tensorType = dyn_cast<RankedTensorType>(type);
    Type elt = tensorType ? tensorType.getElementType() : Type();
    if (!tensorType || !tensorType.hasStaticShape() ||
        !isa_and_nonnull<Float32Type, Float16Type, BFloat16Type>(elt))
      return op->emitOpError()
             << name
             << " must be a statically shaped tensor of f32, f16 or bf16, got "
             << type;
    int64_t actualRank = tensorType.getRank();
    if ((rank && actualRank != *rank) || (!rank && actualRank < 1))
      return op->emitOpError()
             << name << " must have " << (rank ? "rank " : "rank >= ")
             << (rank ? *rank : 1) << " (" << layout << "), got " << type;
    if (llvm::is_contained(tensorType.getShape(), 0))
      return op->emitOpError()
             << name << " must have no zero-sized dimension, got " << type;
    if (!fitsByteLimit(tensorType))
      return op->emitOpError()
             << name << " must hold at most 2^62 bytes (element offsets and "
                        "byte sizes are 64-bit), got "
             << type;
    if (!elementType) {
      elementType = elt;
      elementTypeOwner = name;
    } else if (elt != elementType) {
      return op->emitOpError()
             << name << " element type " << elt << " does not match "
             << elementTypeOwner << "'s " << elementType;
    }
    return tensorType.getShape();
  }

  /// Checks that dimension `index` (called `dimName`) of the tensor `name`
  /// equals `expected`, which comes from `source`.
  LogicalResult checkDim(StringRef name, ArrayRef<int64_t> shape,
                         int64_t index, StringRef dimName, int64_t expected,
                         StringRef source) {
    if (index < 0)
      index += shape.size();
    if (shape[index] == expected)
      return success();
    return op->emitOpError() << name << " dim " << index << " (" << dimName
                             << ") must be " << expected << " to match "
                             << source << ", got " << shape[index];
  }

  /// Checks that the result has exactly the type `shape` x element type.
  LogicalResult checkResult(Type resultType, ArrayRef<int64_t> shape,
                            StringRef why) {
    auto expected = RankedTensorType::get(shape, elementType);
    if (resultType == expected)
      return success();
    return op->emitOpError() << "result must be " << expected << " (" << why
                             << "), got " << resultType;
  }

private:
  /// Whether the tensor's size in bytes is at most 2^62: a byte offset, or
  /// a sum of two sizes, then never overflows int64 in any lowering.
  static bool fitsByteLimit(RankedTensorType type) {
    constexpr uint64_t kMaxBytes = uint64_t(1) << 62;
    uint64_t bytes = (type.getElementTypeBitWidth() + 7) / 8;
    for (int64_t dim : type.getShape()) {
      if (bytes > kMaxBytes / uint64_t(dim))
        return false;
      bytes *= uint64_t(dim);
    }
    return true;
  }

  Operation *op;
  Type elementType;
  StringRef elementTypeOwner;
};

/// Rejects unprefixed attributes that are not the op's own: a misspelt
/// `{casual}` must not silently give a non-causal attention. Discardable
/// attributes of other dialects (`dialect.name`) stay allowed.
LogicalResult checkNoUnknownAttributes(Operation *op) {
  for (NamedAttribute attr : op->getDiscardableAttrs()) {
    if (attr.getName().getValue().contains('.'))
      continue;
    InFlightDiagnostic diag = op->emitOpError()
                              << "has unknown attribute '" << attr.getName().getValue()
                              << "'";
    ArrayRef<StringAttr> known = op->getRegisteredInfo()->getAttributeNames();
    if (!known.empty()) {
      diag << "; known attributes: ";
      llvm::interleaveComma(known, diag,
                            [&](StringAttr name) { diag << name.getValue(); });
    }
    return diag;
  }
  return success();
}

/// A norm's epsilon is a stabiliser added to the variance in f32: it must be
/// in [0, 1]. Above f32's range it became inf and every output 0 (relative
/// error 1); well before that it would swamp the variance and push the
/// outputs of unit-scale inputs below f16's normal range.
LogicalResult checkEpsilon(Operation *op, double epsilon) {
  if (std::isfinite(epsilon) && epsilon >= 0 && epsilon <= 1)
    return success();
  return op->emitOpError() << "epsilon must be finite and in [0, 1], got "
                           << epsilon;
}

/// See SoftmaxScale.h for the bound.
LogicalResult checkScale(Operation *op, double scale) {
  if (isSoftmaxScaleInRange(scale))
    return success();
  return op->emitOpError() << "scale must be " << kSoftmaxScaleRange
                           << ", got " << scale;
}

/// Checks that the upstream gradient `result_grad` has the forward result's
/// type `expected` (described by `why`).
LogicalResult checkResultGrad(Operation *op, Type resultGrad, Type expected,
                              StringRef why) {
  if (resultGrad == expected)
    return success();
  return op->emitOpError() << "result_grad must have the forward result's "
                              "type "
                           << expected << " (" << why << "), got "
                           << resultGrad;
}

/// Checks that each gradient result has exactly the type of the operand it
/// is the gradient of.
LogicalResult
checkGradientTypes(Operation *op,
                   ArrayRef<std::tuple<StringRef, Value, Type>> gradients) {
  for (auto [name, result, operandType] : gradients)
    if (result.getType() != operandType)
      return op->emitOpError() << name << " must have the type " << operandType
                               << " of its operand, got " << result.getType();
  return success();
}

} // namespace

/// Checks per-channel vectors (`[hidden]`), e.g. a norm's weight and bias.
static LogicalResult
checkChannelVectors(TensorChecker &checker,
                    ArrayRef<std::pair<StringRef, Value>> vectors,
                    int64_t hidden, StringRef source) {
  for (auto [name, vector] : vectors) {
    auto shape = checker.check(name, vector.getType(), 1, "[hidden]");
    if (failed(shape) ||
        failed(checker.checkDim(name, *shape, 0, "hidden", hidden, source)))
      return failure();
  }
  return success();
}

/// Checks the FFN matrices against `hidden` (from `source`) and against the
/// activation: gated activations take `w_gate`, the others do not.
static LogicalResult verifyFFNWeights(Operation *op, TensorChecker &checker,
                                      int64_t hidden, StringRef source,
                                      Value wIn, Value wOut, Value wGate,
                                      Activation activation) {
  auto in = checker.check("w_in", wIn.getType(), 2, "[hidden, ffn]");
  if (failed(in) ||
      failed(checker.checkDim("w_in", *in, 0, "hidden", hidden, source)))
    return failure();
  int64_t ffnWidth = (*in)[1];
  auto out = checker.check("w_out", wOut.getType(), 2, "[ffn, hidden]");
  if (failed(out) ||
      failed(checker.checkDim("w_out", *out, 0, "ffn", ffnWidth, "w_in")) ||
      failed(checker.checkDim("w_out", *out, 1, "hidden", hidden, source)))
    return failure();
  bool gated = isGatedActivation(activation);
  if (gated && !wGate)
    return op->emitOpError() << "activation '" << stringifyActivation(activation)
                             << "' is gated and needs a gate matrix (w_gate)";
  if (!gated && wGate)
    return op->emitOpError() << "activation '" << stringifyActivation(activation)
                             << "' takes no gate matrix; w_gate is only for "
                                "swiglu and geglu";
  if (!wGate)
    return success();
  auto gate = checker.check("w_gate", wGate.getType(), 2, "[hidden, ffn]");
  if (failed(gate) ||
      failed(checker.checkDim("w_gate", *gate, 0, "hidden", hidden, source)) ||
      failed(checker.checkDim("w_gate", *gate, 1, "ffn", ffnWidth, "w_in")))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Enum keywords
//===----------------------------------------------------------------------===//

/// Parses a bare enum keyword (`swiglu`, `rms_norm`) into `attr`, listing the
/// valid keywords when it is not one of them.
template <typename AttrT, typename EnumT, size_t NumCases>
static ParseResult
parseEnumKeyword(OpAsmParser &parser, AttrT &attr, StringRef what,
                 std::optional<EnumT> (*symbolize)(StringRef),
                 const std::array<EnumT, NumCases> &cases,
                 StringRef (*stringify)(EnumT)) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (failed(parser.parseOptionalKeyword(&keyword)) || !symbolize(keyword)) {
    InFlightDiagnostic diag = parser.emitError(loc)
                              << "expected " << what << ", one of: ";
    llvm::interleaveComma(cases, diag,
                          [&](EnumT value) { diag << stringify(value); });
    return diag;
  }
  attr = AttrT::get(parser.getContext(), *symbolize(keyword));
  return success();
}

static ParseResult parseActivation(OpAsmParser &parser, ActivationAttr &attr) {
  return parseEnumKeyword(parser, attr, "an activation", symbolizeActivation,
                          std::array{Activation::gelu, Activation::gelu_tanh,
                                     Activation::relu, Activation::silu,
                                     Activation::swiglu, Activation::geglu},
                          stringifyActivation);
}

static void printActivation(OpAsmPrinter &printer, Operation *,
                            ActivationAttr attr) {
  printer << stringifyActivation(attr.getValue());
}

/// The clauses after bpt.matmul's operands: `, acc %s` and
/// `, act_grad <activation> %pre`, each at most once.
static ParseResult
parseMatmulClauses(OpAsmParser &parser,
                   std::optional<OpAsmParser::UnresolvedOperand> &accumulator,
                   ActivationAttr &activation,
                   std::optional<OpAsmParser::UnresolvedOperand> &pre) {
  while (succeeded(parser.parseOptionalComma())) {
    SMLoc loc = parser.getCurrentLocation();
    if (!accumulator && succeeded(parser.parseOptionalKeyword("acc"))) {
      accumulator.emplace();
      if (failed(parser.parseOperand(*accumulator)))
        return failure();
      continue;
    }
    if (!pre && succeeded(parser.parseOptionalKeyword("act_grad"))) {
      pre.emplace();
      if (failed(parseActivation(parser, activation)) ||
          failed(parser.parseOperand(*pre)))
        return failure();
      continue;
    }
    return parser.emitError(loc, "expected 'acc' or 'act_grad' (each once)");
  }
  return success();
}

static void printMatmulClauses(OpAsmPrinter &printer, Operation *,
                               Value accumulator, ActivationAttr activation,
                               Value pre) {
  if (accumulator)
    printer << ", acc " << accumulator;
  // A malformed op (one without the other) prints in the generic form.
  if (activation && pre)
    printer << ", act_grad " << stringifyActivation(activation.getValue())
            << " " << pre;
}

static ParseResult parseNormKind(OpAsmParser &parser, NormKindAttr &attr) {
  return parseEnumKeyword(parser, attr, "a norm kind", symbolizeNormKind,
                          std::array{NormKind::layer_norm, NormKind::rms_norm},
                          stringifyNormKind);
}

static void printNormKind(OpAsmPrinter &printer, Operation *,
                          NormKindAttr attr) {
  printer << stringifyNormKind(attr.getValue());
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

namespace {

/// The query and key shapes of an attention (or its gradient), checked.
struct AttentionShapes {
  ArrayRef<int64_t> query, key;
};

/// Checks the query, key, value and scale that bpt.attention and
/// bpt.attention_grad share.
FailureOr<AttentionShapes> verifyAttentionOperands(Operation *op,
                                                   TensorChecker &checker,
                                                   Value query, Value key,
                                                   Value value,
                                                   std::optional<APFloat> scale) {
  auto q = checker.check("query", query.getType(), 4,
                         "[batch, heads, seq, head_dim]");
  if (failed(q))
    return failure();
  auto k = checker.check("key", key.getType(), 4,
                         "[batch, kv_heads, kv_seq, head_dim]");
  if (failed(k))
    return failure();
  auto v = checker.check("value", value.getType(), 4,
                         "[batch, kv_heads, kv_seq, head_dim]");
  if (failed(v))
    return failure();

  if (failed(checker.checkDim("key", *k, 0, "batch", (*q)[0], "query")) ||
      failed(checker.checkDim("key", *k, 3, "head_dim", (*q)[3], "query")))
    return failure();
  static constexpr StringLiteral kvDims[] = {"batch", "kv_heads", "kv_seq",
                                             "head_dim"};
  for (auto [index, dimName] : llvm::enumerate(kvDims))
    if (failed(checker.checkDim("value", *v, index, dimName, (*k)[index],
                                "key")))
      return failure();
  if ((*q)[1] % (*k)[1] != 0)
    return op->emitOpError() << "query heads (" << (*q)[1]
                             << ") must be a multiple of key/value heads ("
                             << (*k)[1] << ")";
  if (scale && failed(checkScale(op, scale->convertToDouble())))
    return failure();
  return AttentionShapes{*q, *k};
}

/// Checks that `lse` (named `name`) is [batch, heads, seq] in f32.
LogicalResult verifyLSE(Operation *op, StringRef name, Type lse,
                        ArrayRef<int64_t> query) {
  auto expected = RankedTensorType::get(query.take_front(3),
                                        Float32Type::get(op->getContext()));
  if (lse == expected)
    return success();
  return op->emitOpError() << name << " must be " << expected
                           << " ([batch, heads, seq] in f32), got " << lse;
}

double effectiveScale(std::optional<APFloat> scale, Value query) {
  if (scale)
    return scale->convertToDouble();
  int64_t headDim = cast<RankedTensorType>(query.getType()).getShape().back();
  return 1.0 / std::sqrt(static_cast<double>(headDim));
}

} // namespace

LogicalResult AttentionOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  FailureOr<AttentionShapes> shapes = verifyAttentionOperands(
      *this, checker, getQuery(), getKey(), getValue(), getScale());
  if (failed(shapes) ||
      failed(checker.checkResult(getResult().getType(), shapes->query,
                                 "the query's shape")))
    return failure();
  if (Value lse = getLse())
    return verifyLSE(*this, "lse result", lse.getType(), shapes->query);
  return success();
}

LogicalResult AttentionGradOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  FailureOr<AttentionShapes> shapes = verifyAttentionOperands(
      *this, checker, getQuery(), getKey(), getValue(), getScale());
  if (failed(shapes))
    return failure();
  Type query = getQuery().getType();
  for (auto [name, type] : {std::make_pair("output", getOutput().getType()),
                            std::make_pair("output_grad",
                                           getOutputGrad().getType())})
    if (type != query)
      return emitOpError() << name << " must have the query's type " << query
                           << ", got " << type;
  if (failed(verifyLSE(*this, "lse", getLse().getType(), shapes->query)))
    return failure();
  for (auto [name, result, operand] :
       {std::make_tuple("query_grad", getQueryGrad(), getQuery()),
        std::make_tuple("key_grad", getKeyGrad(), getKey()),
        std::make_tuple("value_grad", getValueGrad(), getValue())})
    if (result.getType() != operand.getType())
      return emitOpError() << name << " must have the type "
                           << operand.getType() << " of its operand, got "
                           << result.getType();
  return success();
}

double AttentionOp::getEffectiveScale() {
  return effectiveScale(getScale(), getQuery());
}

double AttentionGradOp::getEffectiveScale() {
  return effectiveScale(getScale(), getQuery());
}

//===----------------------------------------------------------------------===//
// LinearOp
//===----------------------------------------------------------------------===//

/// Checks the input, weight and (optional) bias that bpt.linear and
/// bpt.linear_grad share; returns the forward result's shape.
static FailureOr<SmallVector<int64_t>>
verifyLinearOperands(TensorChecker &checker, Value input, Value weight,
                     Value bias) {
  auto x = checker.check("input", input.getType(), std::nullopt,
                         "[..., in_features]");
  if (failed(x))
    return failure();
  auto w = checker.check("weight", weight.getType(), 2,
                         "[in_features, out_features]");
  if (failed(w))
    return failure();
  if (failed(checker.checkDim("weight", *w, 0, "in_features", x->back(),
                              "input's last dimension")))
    return failure();
  int64_t outFeatures = (*w)[1];
  if (bias) {
    auto b = checker.check("bias", bias.getType(), 1, "[out_features]");
    if (failed(b) || failed(checker.checkDim("bias", *b, 0, "out_features",
                                             outFeatures, "weight")))
      return failure();
  }
  SmallVector<int64_t> resultShape(*x);
  resultShape.back() = outFeatures;
  return resultShape;
}

LogicalResult LinearOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto resultShape =
      verifyLinearOperands(checker, getInput(), getWeight(), getBias());
  if (failed(resultShape))
    return failure();
  return checker.checkResult(getResult().getType(), *resultShape,
                             "the input's shape with out_features last");
}

LogicalResult LinearGradOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto resultShape = verifyLinearOperands(checker, getInput(), getWeight(),
                                          /*bias=*/Value());
  if (failed(resultShape))
    return failure();
  RankedTensorType weight = getWeight().getType();
  auto forwardResult =
      RankedTensorType::get(*resultShape, weight.getElementType());
  if (failed(checkResultGrad(*this, getResultGrad().getType(), forwardResult,
                             "the input's shape with out_features last")))
    return failure();
  SmallVector<std::tuple<StringRef, Value, Type>, 3> gradients = {
      {"input_grad", getInputGrad(), getInput().getType()},
      {"weight_grad", getWeightGrad(), weight}};
  // The bias is not an operand: its gradient has the forward's bias type.
  if (Value biasGrad = getBiasGrad())
    gradients.push_back(
        {"bias_grad", biasGrad,
         RankedTensorType::get({weight.getDimSize(1)},
                               weight.getElementType())});
  return checkGradientTypes(*this, gradients);
}

//===----------------------------------------------------------------------===//
// MatmulOp
//===----------------------------------------------------------------------===//

int64_t MatmulOp::getM() {
  return getLhs().getType().getDimSize(getTransposeLhs() ? 1 : 0);
}
int64_t MatmulOp::getK() {
  return getLhs().getType().getDimSize(getTransposeLhs() ? 0 : 1);
}
int64_t MatmulOp::getN() {
  return getRhs().getType().getDimSize(getTransposeRhs() ? 0 : 1);
}

/// The activation-gradient epilogue of `op`: all of its parts or none, a
/// non-gated activation, no accumulator, `pre` of `mByN` (f32 [M, N]) and
/// `act` of the result's type.
static LogicalResult verifyActivationGradient(MatmulOp op,
                                              RankedTensorType mByN) {
  std::optional<Activation> activation = op.getActivation();
  Value pre = op.getPre(), act = op.getAct();
  if (!activation && !pre && !act)
    return success();
  if (!activation || !pre || !act) {
    SmallVector<StringRef> missing;
    if (!activation)
      missing.push_back("the activation");
    if (!pre)
      missing.push_back("'pre'");
    if (!act)
      missing.push_back("'act'");
    InFlightDiagnostic diag =
        op.emitOpError() << "an activation-gradient epilogue needs the "
                            "activation, the pre-activation operand 'pre' "
                            "and the second result 'act' together; missing ";
    llvm::interleaveComma(missing, diag);
    return diag;
  }
  if (isGatedActivation(*activation))
    return op.emitOpError()
           << "activation '" << stringifyActivation(*activation)
           << "' is gated: its derivative needs both halves of "
              "the hidden layer, which one pre-activation is "
              "not; act_grad takes gelu, gelu_tanh, relu or silu";
  if (op.getAccumulator())
    return op.emitOpError() << "an accumulator and an activation-gradient "
                               "epilogue do not combine: the derivative scales "
                               "the product alone";
  if (pre.getType() != mByN)
    return op.emitOpError() << "pre must be " << mByN
                            << " ([M, N] in f32), got " << pre.getType();
  if (act.getType() != op.getResult().getType())
    return op.emitOpError()
           << "act must have the result's type " << op.getResult().getType()
           << ", got " << act.getType();
  return success();
}

LogicalResult MatmulOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  StringRef lhsLayout = getTransposeLhs() ? "[K, M]" : "[M, K]";
  StringRef rhsLayout = getTransposeRhs() ? "[N, K]" : "[K, N]";
  if (failed(checker.check("lhs", getLhs().getType(), 2, lhsLayout)) ||
      failed(checker.check("rhs", getRhs().getType(), 2, rhsLayout)))
    return failure();
  Type element = getLhs().getType().getElementType();
  if (getRhs().getType().getElementType() != element)
    return emitOpError() << "rhs must have the lhs's element type " << element
                         << ", got " << getRhs().getType();
  int64_t rhsK = getRhs().getType().getDimSize(getTransposeRhs() ? 1 : 0);
  if (rhsK != getK())
    return emitOpError() << "contracted dimensions differ: K = " << getK()
                         << " in lhs " << lhsLayout << " " << getLhs().getType()
                         << ", " << rhsK << " in rhs " << rhsLayout << " "
                         << getRhs().getType();
  Builder b(getContext());
  RankedTensorType result = getResult().getType();
  Type resultElement = result.getElementType();
  if (resultElement != element && !resultElement.isF32())
    return emitOpError() << "result element type must be " << element
                         << " or f32, got " << result;
  if (result.getShape() != ArrayRef<int64_t>{getM(), getN()})
    return emitOpError() << "result must be [M, N] = [" << getM() << ", "
                         << getN() << "], got " << result;
  auto mByN = RankedTensorType::get({getM(), getN()}, b.getF32Type());
  if (Value acc = getAccumulator())
    if (acc.getType() != mByN)
      return emitOpError() << "accumulator must be " << mByN << ", got "
                           << acc.getType();
  return verifyActivationGradient(*this, mByN);
}

void MatmulOp::build(OpBuilder &builder, OperationState &state, Type result,
                     Value lhs, Value rhs, Value accumulator) {
  build(builder, state, result, /*act=*/Type(), lhs, rhs, accumulator,
        /*pre=*/Value(), /*transpose_lhs=*/false, /*transpose_rhs=*/false,
        /*activation=*/ActivationAttr());
}

//===----------------------------------------------------------------------===//
// FFNOp
//===----------------------------------------------------------------------===//

LogicalResult FFNOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto x =
      checker.check("input", getInput().getType(), std::nullopt, "[..., hidden]");
  if (failed(x) ||
      failed(verifyFFNWeights(*this, checker, x->back(),
                              "input's last dimension", getWIn(), getWOut(),
                              getWGate(), getActivation())))
    return failure();
  return checker.checkResult(getResult().getType(), *x, "the input's shape");
}

LogicalResult FFNGradOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto x =
      checker.check("input", getInput().getType(), std::nullopt, "[..., hidden]");
  if (failed(x) ||
      failed(verifyFFNWeights(*this, checker, x->back(),
                              "input's last dimension", getWIn(), getWOut(),
                              getWGate(), getActivation())) ||
      failed(checkResultGrad(*this, getResultGrad().getType(),
                             getInput().getType(), "the input's type")))
    return failure();
  // A gate gradient exactly when there is a gate (checked against the
  // activation above).
  Value gate = getWGate(), gateGrad = getWGateGrad();
  if (gate && !gateGrad)
    return emitOpError() << "activation '"
                         << stringifyActivation(getActivation())
                         << "' is gated: the op must have a fourth result, "
                            "w_gate_grad";
  if (!gate && gateGrad)
    return emitOpError() << "activation '"
                         << stringifyActivation(getActivation())
                         << "' takes no gate matrix: the op has no "
                            "w_gate_grad result";
  SmallVector<std::tuple<StringRef, Value, Type>, 4> gradients = {
      {"input_grad", getInputGrad(), getInput().getType()},
      {"w_in_grad", getWInGrad(), getWIn().getType()},
      {"w_out_grad", getWOutGrad(), getWOut().getType()}};
  if (gate)
    gradients.push_back({"w_gate_grad", gateGrad, gate.getType()});
  return checkGradientTypes(*this, gradients);
}

//===----------------------------------------------------------------------===//
// Normalisations
//===----------------------------------------------------------------------===//

/// Checks a norm's input, its per-channel vectors and its epsilon; returns
/// the input shape.
static FailureOr<ArrayRef<int64_t>>
verifyNorm(Operation *op, TensorChecker &checker, Value input,
           ArrayRef<std::pair<StringRef, Value>> vectors, double epsilon) {
  auto x = checker.check("input", input.getType(), std::nullopt,
                         "[..., hidden]");
  if (failed(x))
    return failure();
  if (failed(checkChannelVectors(checker, vectors, x->back(),
                                 "input's last dimension")) ||
      failed(checkEpsilon(op, epsilon)))
    return failure();
  return x;
}

LogicalResult LayerNormOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto x = verifyNorm(*this, checker, getInput(),
                      {{"weight", getWeight()}, {"bias", getBias()}},
                      getEpsilon().convertToDouble());
  if (failed(x))
    return failure();
  return checker.checkResult(getResult().getType(), *x, "the input's shape");
}

LogicalResult RMSNormOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto x = verifyNorm(*this, checker, getInput(), {{"weight", getWeight()}},
                      getEpsilon().convertToDouble());
  if (failed(x))
    return failure();
  return checker.checkResult(getResult().getType(), *x, "the input's shape");
}

LogicalResult LayerNormGradOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  if (failed(verifyNorm(*this, checker, getInput(), {{"weight", getWeight()}},
                        getEpsilon().convertToDouble())) ||
      failed(checkResultGrad(*this, getResultGrad().getType(),
                             getInput().getType(), "the input's type")))
    return failure();
  // The bias is not an operand; it has the weight's type.
  Type weight = getWeight().getType();
  return checkGradientTypes(
      *this, {{"input_grad", getInputGrad(), getInput().getType()},
              {"weight_grad", getWeightGrad(), weight},
              {"bias_grad", getBiasGrad(), weight}});
}

LogicalResult RMSNormGradOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  if (failed(verifyNorm(*this, checker, getInput(), {{"weight", getWeight()}},
                        getEpsilon().convertToDouble())) ||
      failed(checkResultGrad(*this, getResultGrad().getType(),
                             getInput().getType(), "the input's type")))
    return failure();
  return checkGradientTypes(
      *this, {{"input_grad", getInputGrad(), getInput().getType()},
              {"weight_grad", getWeightGrad(), getWeight().getType()}});
}

//===----------------------------------------------------------------------===//
// TransformerBlockOp
//===----------------------------------------------------------------------===//

int64_t TransformerBlockOp::getHeadDim() {
  return getWQ().getType().getShape()[1] / getHeads();
}

LogicalResult TransformerBlockOp::verify() {
  if (failed(checkNoUnknownAttributes(*this)))
    return failure();
  TensorChecker checker(*this);
  auto x = checker.check("input", getInput().getType(), 3,
                         "[batch, seq, hidden]");
  if (failed(x))
    return failure();
  int64_t hidden = (*x)[2];

  int64_t heads = getHeads(), kvHeads = getKvHeads();
  if (heads < 1 || kvHeads < 1)
    return emitOpError() << "heads (" << heads << ") and kv_heads (" << kvHeads
                         << ") must be positive";
  if (heads % kvHeads != 0)
    return emitOpError() << "heads (" << heads
                         << ") must be a multiple of kv_heads (" << kvHeads
                         << ")";

  // Norms: layer_norm takes a weight and a bias, rms_norm a weight only.
  bool layerNorm = getNorm() == NormKind::layer_norm;
  for (auto [weightName, weight, biasName, bias] :
       {std::make_tuple(StringRef("norm1_weight"), getNorm1Weight(),
                        StringRef("norm1_bias"), getNorm1Bias()),
        std::make_tuple(StringRef("norm2_weight"), getNorm2Weight(),
                        StringRef("norm2_bias"), getNorm2Bias())}) {
    if (layerNorm && !bias)
      return emitOpError() << "norm 'layer_norm' needs " << biasName;
    if (!layerNorm && bias)
      return emitOpError() << "norm 'rms_norm' takes no bias, but "
                           << biasName << " is given";
    SmallVector<std::pair<StringRef, Value>, 2> vectors = {{weightName, weight}};
    if (bias)
      vectors.push_back({biasName, bias});
    if (failed(checkChannelVectors(checker, vectors, hidden, "input")))
      return failure();
  }
  if (failed(checkEpsilon(*this, getEpsilon().convertToDouble())))
    return failure();

  // Attention projections.
  auto wq = checker.check("w_q", getWQ().getType(), 2,
                          "[hidden, heads * head_dim]");
  if (failed(wq) ||
      failed(checker.checkDim("w_q", *wq, 0, "hidden", hidden, "input")))
    return failure();
  if ((*wq)[1] % heads != 0)
    return emitOpError() << "w_q dim 1 (" << (*wq)[1]
                         << ") must be a multiple of heads (" << heads << ")";
  int64_t headDim = (*wq)[1] / heads;
  for (auto [name, value] :
       {std::make_pair(StringRef("w_k"), getWK()),
        std::make_pair(StringRef("w_v"), getWV())}) {
    auto shape = checker.check(name, value.getType(), 2,
                               "[hidden, kv_heads * head_dim]");
    if (failed(shape) ||
        failed(checker.checkDim(name, *shape, 0, "hidden", hidden, "input")) ||
        failed(checker.checkDim(name, *shape, 1, "kv_heads * head_dim",
                                kvHeads * headDim,
                                "kv_heads and w_q's head_dim")))
      return failure();
  }
  auto wo = checker.check("w_o", getWO().getType(), 2,
                          "[heads * head_dim, hidden]");
  if (failed(wo) ||
      failed(checker.checkDim("w_o", *wo, 0, "heads * head_dim", (*wq)[1],
                              "w_q")) ||
      failed(checker.checkDim("w_o", *wo, 1, "hidden", hidden, "input")))
    return failure();

  if (failed(verifyFFNWeights(*this, checker, hidden, "input", getWIn(),
                              getWOut(), getWGate(), getActivation())))
    return failure();
  return checker.checkResult(getResult().getType(), *x, "the input's shape");
}

#define GET_OP_CLASSES
#include "bpt/Dialect/BPTOps.cpp.inc"
