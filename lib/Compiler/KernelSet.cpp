//===- KernelSet.cpp - from a model-level function to PTX + manifest -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Compiler/KernelSet.h"

#include "bpt/Conversion/Passes.h"
#include "bpt/Dialect/BPTOps.h"
#include "bpt/Dialect/Builders.h"
#include "bpt/Pipelines/Pipelines.h"
#include "bpt/Target/Chip.h"
#include "bpt/Transforms/Passes.h"
#include "bpt/Utils/Layouts.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <cstdio>
#include <limits>

using namespace mlir;
using namespace bpt;

//===----------------------------------------------------------------------===//
// Model IR from shapes
//===----------------------------------------------------------------------===//

static llvm::Error specError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static bool isAttentionOp(StringRef op) {
  return op == "attention" || op == "attention_grad";
}

/// The flags that select a variant of an op: each applies to some ops only,
/// and --lse and --backward are two different kernel sets.
static llvm::Error checkVariantFlags(const ModelSpec &spec) {
  if (spec.backward && spec.op != "attention" && spec.op != "block")
    return specError("--backward applies to --op=attention and --op=block "
                     "only");
  if (spec.queryChunk != 0 && !(spec.backward && spec.op == "block"))
    return specError("--query-chunk chunks a block's backward: it applies "
                     "to --op=block --backward only");
  if (spec.queryChunk < 0)
    return specError(llvm::Twine("--query-chunk must be 0 (the whole "
                                 "sequence) or a number of rows, got ") +
                     llvm::Twine(spec.queryChunk));
  if (spec.lse && spec.op != "attention")
    return specError("--lse applies to --op=attention only");
  if (spec.lse && spec.backward)
    return specError("--lse and --backward are different kernel sets (the "
                     "--backward set returns the lse already): give one");
  if (spec.scale != 0 && !isAttentionOp(spec.op))
    return specError("--scale applies to --op=attention and "
                     "--op=attention_grad only");
  if (spec.scale < 0 || !std::isfinite(spec.scale)) {
    char value[32];
    std::snprintf(value, sizeof(value), "%g", spec.scale);
    return specError(llvm::Twine("--scale must be positive (0: "
                                 "1/sqrt(head-dim)), got ") +
                     value);
  }
  return llvm::Error::success();
}

/// Limits of the shape flags. A dimension fits in 32 bits, and so do the
/// rows of a tensor (batch x heads x sequence, batch x sequence): the
/// tensor-core kernels address rows with 32-bit TMA coordinates and chunk
/// offsets. A buffer is at most 2^40 bytes (1 TiB, beyond any GPU's
/// memory), which also keeps every size product in int64_t. A sequence of
/// a million tokens and more stays well inside these.
constexpr int64_t kMaxDimension = INT32_MAX;
constexpr int64_t kMaxRows = INT32_MAX;
constexpr int64_t kMaxBufferBytes = int64_t(1) << 40;

/// The product of positive `factors`, or nullopt once it passes `limit`
/// (checked: it never overflows).
static std::optional<int64_t> checkedProduct(ArrayRef<int64_t> factors,
                                             int64_t limit) {
  int64_t product = 1;
  for (int64_t factor : factors) {
    if (factor <= 0 || product > limit / factor)
      return std::nullopt;
    product *= factor;
  }
  return product;
}

/// The shape flags against kMaxDimension, before any default is computed
/// from them (4 x --hidden must not overflow).
static llvm::Error checkDimensionLimits(const ModelSpec &spec) {
  struct {
    const char *flag;
    int64_t value;
  } sizes[] = {{"--batch", spec.batch},      {"--heads", spec.heads},
               {"--kv-heads", spec.kvHeads}, {"--seq", spec.seq},
               {"--kv-seq", spec.kvSeq},     {"--head-dim", spec.headDim},
               {"--hidden", spec.hidden},    {"--ffn", spec.ffn}};
  for (auto size : sizes)
    if (size.value > kMaxDimension)
      return specError(llvm::formatv("{0} must be at most {1} (32-bit "
                                     "dimensions), got {2}",
                                     size.flag, kMaxDimension, size.value));
  return llvm::Error::success();
}

/// Rows and buffer sizes of the op's tensors (after the defaults), so that
/// no size the manifest states can overflow or exceed what a GPU holds.
static llvm::Error checkTensorSizes(const ModelSpec &spec) {
  int64_t element = spec.dtype == "f32" ? 4 : 2;
  struct Tensor {
    const char *name, *flags;
    SmallVector<int64_t> dims;
    int64_t elementBytes;
  };
  SmallVector<Tensor> tensors;
  SmallVector<std::pair<const char *, SmallVector<int64_t>>> rows;
  if (isAttentionOp(spec.op)) {
    tensors = {{"query",
                "--batch x --heads x --seq x --head-dim",
                {spec.batch, spec.heads, spec.seq, spec.headDim},
                element},
               {"key",
                "--batch x --kv-heads x --kv-seq x --head-dim",
                {spec.batch, spec.kvHeads, spec.kvSeq, spec.headDim},
                element},
               {"lse",
                "--batch x --heads x --seq",
                {spec.batch, spec.heads, spec.seq},
                4}};
    rows = {{"--batch x --heads x --seq", {spec.batch, spec.heads, spec.seq}},
            {"--batch x --kv-heads x --kv-seq",
             {spec.batch, spec.kvHeads, spec.kvSeq}}};
  } else {
    tensors = {{"input",
                "--batch x --seq x --hidden",
                {spec.batch, spec.seq, spec.hidden},
                element},
               {"w_in", "--hidden x --ffn", {spec.hidden, spec.ffn}, element}};
    rows = {{"--batch x --seq", {spec.batch, spec.seq}}};
    if (spec.op == "block") {
      tensors.push_back({"w_q",
                         "--hidden x --heads x --head-dim",
                         {spec.hidden, spec.heads, spec.headDim},
                         element});
      rows.push_back(
          {"--batch x --heads x --seq", {spec.batch, spec.heads, spec.seq}});
    }
  }
  for (const auto &[flags, dims] : rows)
    if (!checkedProduct(dims, kMaxRows))
      return specError(llvm::formatv(
          "{0} must be at most {1} rows (the kernels address rows with "
          "32-bit integers)",
          flags, kMaxRows));
  for (const Tensor &t : tensors) {
    SmallVector<int64_t> factors = t.dims;
    factors.push_back(t.elementBytes);
    if (!checkedProduct(factors, kMaxBufferBytes))
      return specError(llvm::formatv(
          "buffer '{0}' ({1} x {2} bytes) would be more than 2^40 bytes "
          "(1 TiB)",
          t.name, t.flags, t.elementBytes));
  }
  return llvm::Error::success();
}

/// Checks `spec` and fills its defaults.
static llvm::Error checkSpec(ModelSpec &spec) {
  if (!isAttentionOp(spec.op) && spec.op != "ffn" && spec.op != "block")
    return specError("--op must be attention, attention_grad, ffn or block, "
                     "got '" +
                     spec.op + "'");
  if (llvm::Error error = checkVariantFlags(spec))
    return error;
  if (spec.dtype != "f32" && spec.dtype != "f16" && spec.dtype != "bf16")
    return specError("--dtype must be f32, f16 or bf16, got '" + spec.dtype +
                     "'");
  if (!symbolizeActivation(spec.activation))
    return specError("--activation must be gelu, gelu_tanh, relu, silu, "
                     "swiglu or geglu, got '" +
                     spec.activation + "'");
  if (!symbolizeNormKind(spec.norm))
    return specError("--norm must be layer_norm or rms_norm, got '" +
                     spec.norm + "'");
  if (llvm::Error error = checkDimensionLimits(spec))
    return error;
  if (spec.kvHeads == 0)
    spec.kvHeads = spec.heads;
  if (spec.kvSeq == 0)
    spec.kvSeq = spec.seq;
  if (spec.op == "block") {
    if (spec.hidden == 0)
      spec.hidden = spec.heads * spec.headDim;
    else if (spec.heads > 0 && spec.hidden % spec.heads == 0)
      spec.headDim = spec.hidden / spec.heads;
  }
  bool attention = isAttentionOp(spec.op);
  if (!attention && spec.hidden == 0)
    return specError("--hidden is required for --op=" + spec.op);
  if (spec.ffn == 0)
    spec.ffn = 4 * spec.hidden;
  struct {
    const char *flag;
    int64_t value;
  } sizes[] = {{"--batch", spec.batch},     {"--heads", spec.heads},
               {"--kv-heads", spec.kvHeads}, {"--seq", spec.seq},
               {"--kv-seq", spec.kvSeq},     {"--head-dim", spec.headDim},
               {"--ffn", spec.ffn}};
  for (auto size : sizes)
    if (size.value < 1 && (!attention || StringRef(size.flag) != "--ffn"))
      return specError(llvm::formatv("{0} must be positive, got {1}",
                                     size.flag, size.value));
  if (!attention && spec.hidden < 1)
    return specError("--hidden must be positive");
  if (spec.heads % spec.kvHeads != 0)
    return specError(llvm::formatv("--heads ({0}) must be a multiple of "
                                   "--kv-heads ({1})",
                                   spec.heads, spec.kvHeads));
  if (spec.op == "block" && spec.hidden % spec.heads != 0)
    return specError(llvm::formatv("--hidden ({0}) must be a multiple of "
                                   "--heads ({1})",
                                   spec.hidden, spec.heads));
  if (spec.op == "block" && spec.kvSeq != spec.seq)
    return specError("--kv-seq applies to --op=attention only");
  // Defaults computed from the flags (4 x --hidden, --heads x --head-dim)
  // are held to the flags' limit too.
  if (llvm::Error error = checkDimensionLimits(spec))
    return error;
  return checkTensorSizes(spec);
}

llvm::Error bpt::checkShapeFlagsApply(const ModelSpec &spec,
                                      ArrayRef<std::string> given,
                                      bool fromFile) {
  // Each shape flag and the ops whose model it shapes.
  static const struct {
    const char *flag;
    std::initializer_list<const char *> ops;
  } kFlags[] = {
      {"--batch", {"attention", "attention_grad", "ffn", "block"}},
      {"--seq", {"attention", "attention_grad", "ffn", "block"}},
      {"--dtype", {"attention", "attention_grad", "ffn", "block"}},
      {"--heads", {"attention", "attention_grad", "block"}},
      {"--kv-heads", {"attention", "attention_grad", "block"}},
      {"--causal", {"attention", "attention_grad", "block"}},
      {"--head-dim", {"attention", "attention_grad", "block"}},
      {"--kv-seq", {"attention", "attention_grad"}},
      // --scale, --lse and --backward: checkVariantFlags says where they
      // apply.
      {"--hidden", {"ffn", "block"}},
      {"--ffn", {"ffn", "block"}},
      {"--activation", {"ffn", "block"}},
      {"--norm", {"block"}},
  };
  // An unknown --op is checkSpec's error to report.
  if (!fromFile && !isAttentionOp(spec.op) && spec.op != "ffn" &&
      spec.op != "block")
    return llvm::Error::success();
  for (const std::string &flag : given) {
    const auto *known =
        llvm::find_if(kFlags, [&](const auto &f) { return flag == f.flag; });
    if (fromFile && (known != std::end(kFlags) || flag == "--op"))
      return specError(flag + " has no effect on a model read from a .mlir "
                              "file (its shapes are the file's)");
    if (known == std::end(kFlags))
      continue;
    if (!llvm::is_contained(known->ops, StringRef(spec.op)))
      return specError(
          flag + " has no effect on --op=" + spec.op +
          " (it applies to --op=" + llvm::join(known->ops, ", --op=") + ")");
  }
  // A block's head dimension is --hidden / --heads when --hidden is given.
  if (spec.op == "block" && llvm::is_contained(given, "--hidden") &&
      llvm::is_contained(given, "--head-dim") && spec.heads > 0 &&
      spec.hidden != spec.heads * spec.headDim)
    return specError(llvm::formatv(
        "--head-dim ({0}) contradicts --hidden / --heads ({1} / {2}); for "
        "--op=block give one of --hidden and --head-dim",
        spec.headDim, spec.hidden, spec.heads));
  return llvm::Error::success();
}

/// The attention kernel sets' functions, their arguments in the manifest's
/// input order: `attention(q, k, v) -> o` (with --lse `-> (o, lse)`),
/// `attention_grad(q, k, v, o, dO, lse) -> (dq, dk, dv)`, or (--backward)
/// `attention_backward(q, k, v, dO) -> (o, lse, dq, dk, dv)`.
static void buildAttentionModel(const ModelSpec &spec, OpBuilder &b,
                                Location loc, Type element) {
  Type q = RankedTensorType::get(
      {spec.batch, spec.heads, spec.seq, spec.headDim}, element);
  Type kv = RankedTensorType::get(
      {spec.batch, spec.kvHeads, spec.kvSeq, spec.headDim}, element);
  Type lse = RankedTensorType::get({spec.batch, spec.heads, spec.seq},
                                   b.getF32Type());
  UnitAttr causal = spec.causal ? b.getUnitAttr() : UnitAttr();
  FloatAttr scale = spec.scale != 0 ? b.getF64FloatAttr(spec.scale)
                                    : FloatAttr();
  auto makeFunc = [&](StringRef name, ArrayRef<Type> inputs,
                      ArrayRef<Type> results) -> ValueRange {
    auto func = func::FuncOp::create(b, loc, name,
                                     b.getFunctionType(inputs, results));
    Block *entry = func.addEntryBlock();
    b.setInsertionPointToStart(entry);
    return entry->getArguments();
  };
  if (spec.op == "attention_grad") {
    ValueRange args = makeFunc("attention_grad", {q, kv, kv, q, q, lse},
                               {q, kv, kv});
    auto grad = AttentionGradOp::create(b, loc, TypeRange{q, kv, kv}, args[0],
                                        args[1], args[2], args[3], args[4],
                                        args[5], causal, scale);
    func::ReturnOp::create(b, loc, grad.getResults());
    return;
  }
  if (spec.backward) {
    ValueRange args = makeFunc("attention_backward", {q, kv, kv, q},
                               {q, lse, q, kv, kv});
    auto forward = AttentionOp::create(b, loc, q, lse, args[0], args[1],
                                       args[2], causal, scale);
    auto grad = AttentionGradOp::create(
        b, loc, TypeRange{q, kv, kv}, args[0], args[1], args[2],
        forward.getResult(), args[3], forward.getLse(), causal, scale);
    func::ReturnOp::create(b, loc,
                           ValueRange{forward.getResult(), forward.getLse(),
                                      grad.getQueryGrad(), grad.getKeyGrad(),
                                      grad.getValueGrad()});
    return;
  }
  if (spec.lse) {
    ValueRange args = makeFunc("attention", {q, kv, kv}, {q, lse});
    auto forward = AttentionOp::create(b, loc, q, lse, args[0], args[1],
                                       args[2], causal, scale);
    func::ReturnOp::create(b, loc, forward->getResults());
    return;
  }
  ValueRange args = makeFunc("attention", {q, kv, kv}, {q});
  auto forward = buildAttention(
      b, loc, args[0], args[1], args[2], spec.causal,
      spec.scale != 0 ? std::optional<double>(spec.scale) : std::nullopt);
  func::ReturnOp::create(b, loc, forward.getResult());
}

/// The attributes of `block` the float64 reference needs, kept on the
/// combined function (the block itself is decomposed by bpt-build-backward):
/// describe() reads them back.
static constexpr StringLiteral kBlockBackwardAttrName = "bpt.block_backward";

/// --op=block --backward: `block_backward(x, <weights>, dy) -> (y, dx,
/// <one gradient per weight>)`. bpt-build-backward differentiates @block
/// into @block_train (y, lse) and @block_grad (x, weights, lse, dy -> dx,
/// dweights); their bodies are cloned, in that order, into one function
/// with the lse passed between them, so that the kernel-set machinery
/// (one function, inputs then outputs) applies as it is and the lse becomes
/// an intermediate buffer (a named workspace); the three others are erased.
static LogicalResult buildBlockBackward(ModuleOp module,
                                        TransformerBlockOp block,
                                        int64_t queryChunk) {
  MLIRContext *context = module.getContext();
  NamedAttrList info;
  info.append("heads", block.getHeadsAttr());
  info.append("kv_heads", block.getKvHeadsAttr());
  info.append("causal", BoolAttr::get(context, block.getCausal()));
  info.append("activation", StringAttr::get(context, stringifyActivation(
                                                         block.getActivation())));
  info.append("norm",
              StringAttr::get(context, stringifyNormKind(block.getNorm())));
  info.append("epsilon", block.getEpsilonAttr());
  DictionaryAttr infoAttr = info.getDictionary(context);

  PassManager pm(context);
  BPTBuildBackwardOptions options;
  options.queryChunk = queryChunk;
  pm.addPass(createBPTBuildBackward(options));
  if (failed(pm.run(module)))
    return failure();
  auto forward = module.lookupSymbol<func::FuncOp>("block");
  auto train = module.lookupSymbol<func::FuncOp>("block_train");
  auto grad = module.lookupSymbol<func::FuncOp>("block_grad");
  if (!forward || !train || !grad)
    return module.emitError("bpt-build-backward made no block_train / "
                            "block_grad");
  unsigned numArgs = forward.getNumArguments();
  unsigned numLse = train.getNumResults() - forward.getNumResults();
  SmallVector<Type> inputs = llvm::to_vector(forward.getArgumentTypes());
  llvm::append_range(inputs, forward.getResultTypes()); // dy
  SmallVector<Type> results = llvm::to_vector(forward.getResultTypes());
  llvm::append_range(results, grad.getResultTypes());
  OpBuilder b(context);
  b.setInsertionPointToEnd(module.getBody());
  auto combined = func::FuncOp::create(b, forward.getLoc(), "block_backward",
                                       b.getFunctionType(inputs, results));
  combined->setAttr(kBlockBackwardAttrName, infoAttr);
  Block *entry = combined.addEntryBlock();
  b.setInsertionPointToStart(entry);
  auto inlineBody = [&](func::FuncOp callee,
                        ValueRange args) -> SmallVector<Value> {
    IRMapping map;
    map.map(callee.getArguments(), args);
    for (Operation &op : callee.getBody().front().without_terminator())
      b.clone(op, map);
    return llvm::map_to_vector(
        callee.getBody().front().getTerminator()->getOperands(),
        [&](Value v) { return map.lookupOrDefault(v); });
  };
  ValueRange args = entry->getArguments();
  SmallVector<Value> trained = inlineBody(train, args.take_front(numArgs));
  SmallVector<Value> gradArgs = llvm::to_vector(args.take_front(numArgs));
  llvm::append_range(gradArgs,
                     ArrayRef<Value>(trained).drop_front(
                         forward.getNumResults())); // the lse
  llvm::append_range(gradArgs, args.drop_front(numArgs)); // dy
  SmallVector<Value> grads = inlineBody(grad, gradArgs);
  SmallVector<Value> returned = llvm::to_vector(
      ArrayRef<Value>(trained).take_front(forward.getNumResults()));
  llvm::append_range(returned, grads);
  func::ReturnOp::create(b, forward.getLoc(), returned);
  if (numLse != 1)
    return combined.emitError("expected one attention (one lse) in the "
                              "block's training forward, found ")
           << numLse;
  forward.erase();
  train.erase();
  grad.erase();
  auto runCSE = [&] {
    PassManager cse(context);
    cse.addPass(createCSEPass());
    return cse.run(module);
  };
  // @block_grad recomputes the forward, its attention without the lse. In
  // one function, once CSE has merged the two copies of the norm and the
  // projections, that attention has the training forward's operands (and
  // attributes): its output is taken from there, and CSE then merges what
  // follows it (the output projection, the residual, norm2).
  if (failed(runCSE()))
    return failure();
  SmallVector<AttentionOp> withLse, withoutLse;
  combined.walk([&](AttentionOp op) {
    (op.getLse() ? withLse : withoutLse).push_back(op);
  });
  for (AttentionOp recomputed : withoutLse)
    for (AttentionOp saved : withLse)
      if (llvm::equal(recomputed->getOperands(), saved->getOperands()) &&
          recomputed.getCausal() == saved.getCausal() &&
          recomputed.getEffectiveScale() == saved.getEffectiveScale()) {
        recomputed.getResult().replaceAllUsesWith(saved.getResult());
        recomputed.erase();
        break;
      }
  return runCSE();
}

llvm::Expected<OwningOpRef<ModuleOp>> bpt::buildModel(ModelSpec &spec,
                                                      MLIRContext &context) {
  if (llvm::Error error = checkSpec(spec))
    return std::move(error);
  context.loadDialect<func::FuncDialect, BPTDialect>();
  Activation activation = *symbolizeActivation(spec.activation);
  bool gated = isGatedActivation(activation);
  OpBuilder b(&context);
  Location loc = FileLineColLoc::get(&context, "<bpt-compile model>", 1, 1);
  Type element = llvm::StringSwitch<Type>(spec.dtype)
                     .Case("f16", b.getF16Type())
                     .Case("bf16", b.getBF16Type())
                     .Default(b.getF32Type());
  auto tensor = [&](ArrayRef<int64_t> shape) -> Type {
    return RankedTensorType::get(shape, element);
  };
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  if (isAttentionOp(spec.op)) {
    buildAttentionModel(spec, b, loc, element);
    return module;
  }
  // One public function named after the op; its arguments in the order of
  // the manifest's inputs.
  auto makeFunc = [&](StringRef name, ArrayRef<Type> inputs,
                      Type result) -> Block * {
    auto func = func::FuncOp::create(b, loc, name,
                                     b.getFunctionType(inputs, {result}));
    Block *entry = func.addEntryBlock();
    b.setInsertionPointToStart(entry);
    return entry;
  };
  int64_t batch = spec.batch, seq = spec.seq, hidden = spec.hidden,
          ffn = spec.ffn;

  Type x = tensor({batch, seq, hidden});
  Type vecH = tensor({hidden});
  Type wIn = tensor({hidden, ffn}), wOut = tensor({ffn, hidden});
  if (spec.op == "ffn") {
    SmallVector<Type> inputs = {x, wIn, wOut};
    if (gated)
      inputs.push_back(wIn);
    Block *entry = makeFunc("ffn", inputs, x);
    Value out = buildFFN(b, loc, activation, entry->getArgument(0),
                         entry->getArgument(1), entry->getArgument(2),
                         gated ? entry->getArgument(3) : Value());
    func::ReturnOp::create(b, loc, out);
    return module;
  }

  bool layerNorm = spec.norm == "layer_norm";
  Type wq = tensor({hidden, spec.heads * spec.headDim});
  Type wkv = tensor({hidden, spec.kvHeads * spec.headDim});
  Type wo = tensor({spec.heads * spec.headDim, hidden});
  // input, norm1 (weight, [bias]), w_q, w_k, w_v, w_o, norm2 (weight,
  // [bias]), w_in, w_out, [w_gate].
  SmallVector<Type> inputs = {x, vecH};
  if (layerNorm)
    inputs.push_back(vecH);
  inputs.append({wq, wkv, wkv, wo, vecH});
  if (layerNorm)
    inputs.push_back(vecH);
  inputs.append({wIn, wOut});
  if (gated)
    inputs.push_back(wIn);
  Block *entry = makeFunc("block", inputs, x);
  unsigned next = 0;
  auto arg = [&]() -> Value { return entry->getArgument(next++); };
  Value input = arg(), norm1Weight = arg();
  Value norm1Bias = layerNorm ? arg() : Value();
  Value wQ = arg(), wK = arg(), wV = arg(), wO = arg(), norm2Weight = arg();
  Value norm2Bias = layerNorm ? arg() : Value();
  Value wInV = arg(), wOutV = arg();
  Value wGate = gated ? arg() : Value();
  auto block = TransformerBlockOp::create(
      b, loc, x, input, norm1Weight, norm1Bias, wQ, wK, wV, wO, norm2Weight,
      norm2Bias, wInV, wOutV, wGate, b.getI64IntegerAttr(spec.heads),
      b.getI64IntegerAttr(spec.kvHeads),
      spec.causal ? b.getUnitAttr() : UnitAttr(),
      ActivationAttr::get(&context, activation),
      NormKindAttr::get(&context, *symbolizeNormKind(spec.norm)),
      b.getF64FloatAttr(1e-5));
  func::ReturnOp::create(b, loc, block.getResult());
  if (spec.backward &&
      failed(buildBlockBackward(*module, block, spec.queryChunk)))
    return specError("bpt-build-backward failed on the block (see the "
                     "diagnostics above)");
  return module;
}

//===----------------------------------------------------------------------===//
// Stages
//===----------------------------------------------------------------------===//

void bpt::fillPipelineOptions(const CompileOptions &options,
                              NVVMOptions &nvvm) {
  nvvm.setStrategy(options.strategy);
  nvvm.fuse = options.fuse;
  nvvm.recomputeProjections = options.recomputeProjections;
  nvvm.features = options.features;
  nvvm.threads = options.threads;
  nvvm.sharedMemory = options.sharedMemory;
  nvvm.tileGemms = options.tileGemms;
}

FailureOr<KernelPathsUsed> bpt::kernelPathsUsed(ModuleOp module,
                                                const CompileOptions &options) {
  OwningOpRef<ModuleOp> copy = module.clone();
  if (failed(lowerToStage(*copy, Stage::Blockwise, options)))
    return failure();
  KernelPathsUsed used;
  copy->walk([&](Operation *op) {
    StrategyAttr strategy = StrategyAttr::get(op);
    if (!strategy)
      return;
    used.portable |= strategy.getPath() == KernelPath::portable;
    // What the strategy's kernels are: an attention nest (forward or
    // split), the backward's nests, a block's chunk loop (its attention
    // and GEMMs), else GEMMs (FFN chunk loops, projections, matmuls).
    Attribute nest = op->getAttr(AttentionNestAttr::kAttrName);
    bool grad = isa_and_nonnull<AttentionGradNestAttr>(nest);
    auto loop = dyn_cast_or_null<ChunkLoopAttr>(nest);
    bool block = loop && loop.getKind() == ChunkLoopKind::block;
    bool attention =
        isa_and_nonnull<AttentionNestAttr, SplitKVNestAttr>(nest) || block;
    bool gemm = (!grad && !attention) || block;
    bool mmaSync = strategy.getPath() == KernelPath::mma_sync;
    bool wgmma = strategy.getPath() == KernelPath::wgmma;
    used.mmaSyncAttention |= mmaSync && attention;
    used.mmaSyncGemm |= mmaSync && gemm;
    used.mmaSyncAttentionGrad |= mmaSync && grad;
    used.wgmmaAttention |= wgmma && attention;
    used.wgmmaGemm |= wgmma && gemm;
    used.wgmmaFFN |= wgmma && loop && loop.getKind() == ChunkLoopKind::ffn;
    used.chunked |= strategy.getChunkRows() != 0;
    auto q = op->getAttrOfType<IntegerAttr>("bpt.q_block");
    auto kv = op->getAttrOfType<IntegerAttr>("bpt.kv_block");
    if (isa<scf::ForallOp>(op) && q && kv &&
        strategy.getPath() == KernelPath::portable)
      used.portableBlocks.push_back({q.getInt(), kv.getInt()});
  });
  return used;
}

LogicalResult bpt::lowerToStage(ModuleOp module, Stage stage,
                                const CompileOptions &options) {
  PassManager pm(module.getContext());
  NVVMOptions nvvm;
  fillPipelineOptions(options, nvvm);
  buildBPTToNVVMPipeline(pm, nvvm, stage);
  return pm.run(module);
}

//===----------------------------------------------------------------------===//
// Kernel set
//===----------------------------------------------------------------------===//

namespace {

/// The op a model-level function computes, with the options the float64
/// reference needs, and the names of its inputs.
struct ModelDescription {
  std::string op = "custom";
  llvm::json::Object options;
  SmallVector<std::string> inputNames;
  /// Empty: "result" for one output, else "output0", "output1", ...
  SmallVector<std::string> outputNames;
  /// block_backward: the type of the saved lse ([B, Hq, S] f32), whose
  /// allocation the manifest names "lse" (see readHostProgram).
  RankedTensorType lseType;
};

/// `attention_backward(q, k, v, dO) -> (o, lse, dq, dk, dv)`: an attention
/// with its log-sum-exp, then its gradients, of the function's arguments.
std::optional<ModelDescription> describeBackward(func::FuncOp func,
                                                 ArrayRef<Operation *> ops) {
  if (ops.size() != 2 || func.getNumArguments() != 4)
    return std::nullopt;
  auto forward = dyn_cast<AttentionOp>(ops[0]);
  auto grad = dyn_cast<AttentionGradOp>(ops[1]);
  if (!forward || !grad || !forward.getLse())
    return std::nullopt;
  ValueRange args = func.getArguments();
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  if (!llvm::equal(forward->getOperands(), args.take_front(3)) ||
      !llvm::equal(grad->getOperands(),
                   ValueRange{args[0], args[1], args[2], forward.getResult(),
                              args[3], forward.getLse()}) ||
      !llvm::equal(ret.getOperands(),
                   ValueRange{forward.getResult(), forward.getLse(),
                              grad.getQueryGrad(), grad.getKeyGrad(),
                              grad.getValueGrad()}) ||
      forward.getCausal() != grad.getCausal() ||
      forward.getEffectiveScale() != grad.getEffectiveScale())
    return std::nullopt;
  ModelDescription d;
  d.op = "attention_backward";
  d.options["causal"] = forward.getCausal();
  d.options["scale"] = forward.getEffectiveScale();
  d.inputNames = {"query", "key", "value", "output_grad"};
  d.outputNames = {"output", "lse", "query_grad", "key_grad", "value_grad"};
  return d;
}

/// The block's weights, in the forward's argument order.
SmallVector<std::string> blockWeightNames(bool layerNorm, bool gated) {
  SmallVector<std::string> names = {"norm1_weight"};
  if (layerNorm)
    names.push_back("norm1_bias");
  names.append({"w_q", "w_k", "w_v", "w_o", "norm2_weight"});
  if (layerNorm)
    names.push_back("norm2_bias");
  names.append({"w_in", "w_out"});
  if (gated)
    names.push_back("w_gate");
  return names;
}

/// `block_backward(x, <weights>, dy) -> (y, dx, <weight gradients>)`
/// (buildBlockBackward): the block's options are the function's
/// bpt.block_backward dictionary; the names follow the forward's.
std::optional<ModelDescription> describeBlockBackward(func::FuncOp func) {
  auto info = func->getAttrOfType<DictionaryAttr>(kBlockBackwardAttrName);
  if (!info)
    return std::nullopt;
  auto heads = info.getAs<IntegerAttr>("heads");
  auto kvHeads = info.getAs<IntegerAttr>("kv_heads");
  auto causal = info.getAs<BoolAttr>("causal");
  auto activation = info.getAs<StringAttr>("activation");
  auto norm = info.getAs<StringAttr>("norm");
  auto epsilon = info.getAs<FloatAttr>("epsilon");
  if (!heads || !kvHeads || !causal || !activation || !norm || !epsilon)
    return std::nullopt;
  std::optional<Activation> act = symbolizeActivation(activation.getValue());
  if (!act)
    return std::nullopt;
  SmallVector<std::string> weights =
      blockWeightNames(norm.getValue() == "layer_norm", isGatedActivation(*act));
  // x, weights, dy -> y, dx, one gradient per weight.
  if (func.getNumArguments() != weights.size() + 2 ||
      func.getNumResults() != weights.size() + 2)
    return std::nullopt;
  ModelDescription d;
  d.op = "block_backward";
  d.options["heads"] = heads.getInt();
  d.options["kv_heads"] = kvHeads.getInt();
  d.options["causal"] = causal.getValue();
  d.options["activation"] = activation.getValue().str();
  d.options["norm"] = norm.getValue().str();
  d.options["epsilon"] = epsilon.getValueAsDouble();
  d.inputNames = {"input"};
  llvm::append_range(d.inputNames, weights);
  d.inputNames.push_back("output_grad");
  d.outputNames = {"output", "input_grad"};
  for (const std::string &w : weights)
    d.outputNames.push_back(w + "_grad");
  d.lseType = RankedTensorType::get(
      {cast<ShapedType>(func.getArgumentTypes()[0]).getDimSize(0),
       heads.getInt(),
       cast<ShapedType>(func.getArgumentTypes()[0]).getDimSize(1)},
      Float32Type::get(func.getContext()));
  return d;
}

ModelDescription describe(func::FuncOp func) {
  if (std::optional<ModelDescription> d = describeBlockBackward(func))
    return *d;
  ModelDescription d;
  for (BlockArgument arg : func.getArguments())
    d.inputNames.push_back(llvm::formatv("input{0}", arg.getArgNumber()));
  SmallVector<Operation *> ops;
  for (Operation &op : func.getBody().front().without_terminator())
    ops.push_back(&op);
  if (std::optional<ModelDescription> backward = describeBackward(func, ops))
    return *backward;
  if (ops.size() != 1 ||
      !llvm::equal(ops.front()->getOperands(), func.getArguments()))
    return d;
  Operation *op = ops.front();
  // The function returns the op's results in order (with the lse: an
  // attention_lse set; attention_grad has three).
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  bool returnsResults = llvm::equal(ret.getOperands(), op->getResults());
  if (auto attention = dyn_cast<AttentionOp>(op)) {
    if (attention.getLse() && !returnsResults)
      return d;
    d.op = attention.getLse() ? "attention_lse" : "attention";
    d.options["causal"] = attention.getCausal();
    d.options["scale"] = attention.getEffectiveScale();
    d.inputNames = {"query", "key", "value"};
    if (attention.getLse())
      d.outputNames = {"output", "lse"};
  } else if (auto grad = dyn_cast<AttentionGradOp>(op)) {
    if (!returnsResults)
      return d;
    d.op = "attention_grad";
    d.options["causal"] = grad.getCausal();
    d.options["scale"] = grad.getEffectiveScale();
    d.inputNames = {"query", "key", "value", "output", "output_grad", "lse"};
    d.outputNames = {"query_grad", "key_grad", "value_grad"};
  } else if (auto ffn = dyn_cast<FFNOp>(op)) {
    d.op = "ffn";
    d.options["activation"] = stringifyActivation(ffn.getActivation()).str();
    d.inputNames = {"input", "w_in", "w_out"};
    if (ffn.getWGate())
      d.inputNames.push_back("w_gate");
  } else if (auto block = dyn_cast<TransformerBlockOp>(op)) {
    d.op = "block";
    d.options["heads"] = block.getHeads();
    d.options["kv_heads"] = block.getKvHeads();
    d.options["causal"] = block.getCausal();
    d.options["activation"] =
        stringifyActivation(block.getActivation()).str();
    d.options["norm"] = stringifyNormKind(block.getNorm()).str();
    d.options["epsilon"] = block.getEpsilon().convertToDouble();
    bool layerNorm = block.getNorm() == NormKind::layer_norm;
    d.inputNames = {"input", "norm1_weight"};
    if (layerNorm)
      d.inputNames.push_back("norm1_bias");
    d.inputNames.append({"w_q", "w_k", "w_v", "w_o", "norm2_weight"});
    if (layerNorm)
      d.inputNames.push_back("norm2_bias");
    d.inputNames.append({"w_in", "w_out"});
    if (block.getWGate())
      d.inputNames.push_back("w_gate");
  }
  return d;
}

std::optional<std::string> dtypeOf(Type type) {
  if (type.isF32())
    return "f32";
  if (type.isF16())
    return "f16";
  if (type.isBF16())
    return "bf16";
  if (type.isInteger(8))
    return "i8";
  return std::nullopt;
}

std::optional<int64_t> constantOf(Value v) {
  return getConstantIntValue(getAsOpFoldResult(v));
}

} // namespace

namespace {

/// Reads a lowered kernel-set function (the host side: allocations, tensor
/// map descriptors, launches) into the manifest's buffers, workspace slots,
/// tensor maps and launches, one named step at a time.
class ManifestBuilder {
public:
  ManifestBuilder(func::FuncOp func, const ModelDescription &model,
                  int64_t numInputs, int64_t numOutputs)
      : func(func), model(model), numInputs(numInputs),
        numOutputs(numOutputs) {}

  /// The function's arguments: inputs, then outputs as out-parameters.
  LogicalResult addArgumentBuffers();
  /// Allocations, views, tensor maps and launches, in program order.
  LogicalResult readHostProgram();
  /// Workspace slots for the intermediates, appended to the buffers.
  void assignWorkspaceSlots();
  /// The launches as manifest entries; errors on sizes CUDA or `chip`
  /// cannot launch.
  FailureOr<llvm::json::Array> launchesJson(const ChipInfo &chip);
  /// The tensor maps as manifest entries (after the slots are known).
  llvm::json::Array tensorMapsJson();
  /// Whether a launch argument is written as an object (an i32, or an
  /// arena buffer at a byte offset): manifest version 2.
  bool hasArgumentObjects() const;
  /// block_backward: names "lse" the allocation that holds the saved lse.
  LogicalResult nameLse();
  llvm::json::Array takeBuffers() { return std::move(buffers); }

private:
  /// Host allocations are intermediates; each lives from the first launch
  /// that uses it to the last.
  struct Intermediate {
    int64_t bytes, firstUse = -1, lastUse = -1;
    /// What it holds (the allocation's bpt.buffer_name), or "".
    std::string name;
  };
  /// TMA descriptors (bpt-attention-to-sm90, bpt-ffn-to-sm90): a tensor map
  /// of a whole buffer (an argument or an intermediate), viewed with the
  /// static shape of the ranked memref it was made from. The runtime encodes
  /// it (cuTensorMapEncodeTiled) and passes the map's device address; a map
  /// of an intermediate is a use of it wherever the map is passed.
  struct TensorMap {
    bool intermediate;
    int64_t index; // argument buffer or intermediate
    llvm::json::Object fields;
  };
  enum class ArgKind { Buffer, Intermediate, TensorMap, I32 };
  struct Launch {
    gpu::LaunchFuncOp op;
    SmallVector<std::pair<ArgKind, int64_t>> args;
  };

  LogicalResult addBuffer(Value value, std::string name, StringRef role,
                          Location loc);
  LogicalResult addTensorMap(nvgpu::TmaCreateDescriptorOp op);
  LogicalResult addLaunch(gpu::LaunchFuncOp launch);
  void use(int64_t intermediate, int64_t launch) {
    Intermediate &i = intermediates[intermediate];
    if (i.firstUse < 0)
      i.firstUse = launch;
    i.lastUse = launch;
  }

  func::FuncOp func;
  const ModelDescription &model;
  int64_t numInputs, numOutputs;
  llvm::json::Array buffers;
  llvm::DenseMap<Value, int64_t> bufferOf;
  SmallVector<Intermediate> intermediates;
  llvm::DenseMap<Value, int64_t> intermediateOf; // value -> intermediate
  SmallVector<TensorMap> tensorMapList;
  llvm::DenseMap<Value, int64_t> tensorMapOf;
  SmallVector<Launch> hostLaunches;
  /// (launch, written, read) intermediates of kWritesOverAttrName pairs,
  /// in launch order.
  SmallVector<std::array<int64_t, 3>> writesOver;
  SmallVector<int64_t> slotOf, offsetOf;
  int64_t firstSlot = 0;
  /// Unnamed allocations of the model's lseType.
  SmallVector<int64_t> lseCandidates;
};

/// The bytes of a static memref, or nullopt when that is zero or more than
/// kMaxBufferBytes (checked: MemRefType::getNumElements() can overflow).
std::optional<int64_t> byteSize(MemRefType type) {
  SmallVector<int64_t> factors = llvm::to_vector(type.getShape());
  factors.push_back((type.getElementTypeBitWidth() + 7) / 8);
  return checkedProduct(factors, kMaxBufferBytes);
}

InFlightDiagnostic badSize(Location loc, MemRefType type) {
  return emitError(loc) << "bpt-compile: buffer " << type
                        << " is empty or more than 2^40 bytes (1 TiB)";
}

LogicalResult ManifestBuilder::addBuffer(Value value, std::string name,
                                         StringRef role, Location loc) {
  auto type = cast<MemRefType>(value.getType());
  std::optional<std::string> dtype = dtypeOf(type.getElementType());
  if (!dtype || !type.hasStaticShape())
    return emitError(loc) << "bpt-compile: unsupported buffer " << type;
  std::optional<int64_t> bytes = byteSize(type);
  if (!bytes)
    return badSize(loc, type);
  llvm::json::Array shape;
  for (int64_t d : type.getShape())
    shape.push_back(d);
  bufferOf[value] = buffers.size();
  buffers.push_back(llvm::json::Object{{"name", std::move(name)},
                                       {"role", role},
                                       {"dtype", *dtype},
                                       {"shape", std::move(shape)},
                                       {"bytes", *bytes}});
  return success();
}

LogicalResult ManifestBuilder::addArgumentBuffers() {
  for (BlockArgument arg : func.getArguments()) {
    int64_t i = arg.getArgNumber();
    bool isInput = i < numInputs;
    std::string name = isInput ? model.inputNames[i]
                               : llvm::formatv("output{0}", i - numInputs).str();
    if (numOutputs == 1 && !isInput)
      name = "result";
    if (!isInput && i - numInputs < int64_t(model.outputNames.size()))
      name = model.outputNames[i - numInputs];
    if (failed(addBuffer(arg, name, isInput ? "input" : "output",
                         func.getLoc())))
      return failure();
  }
  return success();
}

LogicalResult ManifestBuilder::addTensorMap(nvgpu::TmaCreateDescriptorOp op) {
  auto ranked = op.getTensor().getDefiningOp<memref::CastOp>();
  auto buffer = bufferOf.find(op.getTensor());
  auto intermediate = intermediateOf.find(op.getTensor());
  if (!ranked ||
      (buffer == bufferOf.end() && intermediate == intermediateOf.end()))
    return op.emitError() << "bpt-compile: tensor map of something other "
                             "than a whole buffer";
  auto view = cast<MemRefType>(ranked.getSource().getType());
  llvm::json::Array shape, box;
  for (int64_t d : view.getShape())
    shape.push_back(d);
  for (Value size : op.getBoxDimensions()) {
    std::optional<int64_t> c = constantOf(size);
    if (!c)
      return op.emitError() << "bpt-compile: non-constant tensor map box";
    box.push_back(*c);
  }
  nvgpu::TensorMapDescriptorType type = op.getTensorMap().getType();
  auto bytes = [](StringRef kind) {
    // "swizzle_128b" / "l2promo_128b" -> "128b"; "none" stays.
    return kind.rsplit('_').second.empty() ? kind.str()
                                           : kind.rsplit('_').second.str();
  };
  tensorMapOf[op] = tensorMapList.size();
  bool isIntermediate = buffer == bufferOf.end();
  tensorMapList.push_back(
      {isIntermediate, isIntermediate ? intermediate->second : buffer->second,
       llvm::json::Object{
           {"dtype", *dtypeOf(view.getElementType())},
           {"shape", std::move(shape)},
           {"box", std::move(box)},
           {"swizzle",
            bytes(nvgpu::stringifyTensorMapSwizzleKind(type.getSwizzle())
                      .lower())},
           {"l2_promotion",
            bytes(nvgpu::stringifyTensorMapL2PromoKind(type.getL2promo())
                      .lower())},
           {"oob_fill",
            std::string(type.getOob() == nvgpu::TensorMapOOBKind::OOB_NAN
                            ? "nan"
                            : "zero")}}});
  return success();
}

LogicalResult ManifestBuilder::addLaunch(gpu::LaunchFuncOp launch) {
  Launch record{launch, {}};
  int64_t index = hostLaunches.size();
  for (Value arg : launch.getKernelOperands()) {
    if (auto it = bufferOf.find(arg); it != bufferOf.end()) {
      record.args.push_back({ArgKind::Buffer, it->second});
    } else if (auto it = tensorMapOf.find(arg); it != tensorMapOf.end()) {
      const TensorMap &map = tensorMapList[it->second];
      if (map.intermediate)
        use(map.index, index);
      record.args.push_back({ArgKind::TensorMap, it->second});
    } else if (std::optional<int64_t> scalar = constantOf(arg);
               scalar && arg.getType().isInteger(32)) {
      record.args.push_back({ArgKind::I32, *scalar});
    } else if (auto it = intermediateOf.find(arg);
               it != intermediateOf.end()) {
      use(it->second, index);
      record.args.push_back({ArgKind::Intermediate, it->second});
    } else {
      return launch.emitError()
             << "bpt-compile: kernel argument is not a whole buffer";
    }
  }
  if (auto pairs =
          launch->getAttrOfType<DenseI64ArrayAttr>(kWritesOverAttrName)) {
    int64_t operands = record.args.size();
    // The intermediate an argument is, directly or under a tensor map.
    auto intermediateAt = [&](int64_t i) -> int64_t {
      auto [kind, at] = record.args[i];
      if (kind == ArgKind::Intermediate)
        return at;
      if (kind == ArgKind::TensorMap && tensorMapList[at].intermediate)
        return tensorMapList[at].index;
      return -1;
    };
    for (int64_t i = 0; i + 1 < pairs.size(); i += 2) {
      if (pairs[i] >= operands || pairs[i + 1] >= operands)
        return launch.emitError()
               << "bpt-compile: '" << kWritesOverAttrName << "' names operand "
               << std::max(pairs[i], pairs[i + 1]) << " of a launch with "
               << operands;
      int64_t written = intermediateAt(pairs[i]);
      int64_t read = intermediateAt(pairs[i + 1]);
      if (written >= 0 && read >= 0)
        writesOver.push_back({index, written, read});
    }
  }
  hostLaunches.push_back(std::move(record));
  return success();
}

LogicalResult ManifestBuilder::readHostProgram() {
  for (Operation &op : func.getBody().front()) {
    if (auto alloc = dyn_cast<memref::AllocOp>(op)) {
      MemRefType type = alloc.getType();
      if (!type.hasStaticShape())
        return alloc.emitError() << "bpt-compile: dynamic allocation " << type;
      std::optional<int64_t> bytes = byteSize(type);
      if (!bytes)
        return badSize(alloc.getLoc(), type);
      intermediateOf[alloc] = intermediates.size();
      auto name = alloc->getAttrOfType<StringAttr>(kBufferNameAttrName);
      if (!name && model.lseType &&
          type.getShape() == model.lseType.getShape() &&
          type.getElementType() == model.lseType.getElementType())
        lseCandidates.push_back(intermediates.size());
      intermediates.push_back(
          {*bytes, -1, -1, name ? name.str() : "intermediate"});
    } else if (isa<memref::ExpandShapeOp, memref::CollapseShapeOp,
                   memref::CastOp>(op) ||
               (isa<memref::SubViewOp>(op) &&
                isContiguousAtBase(cast<MemRefType>(op.getResultTypes()[0])))) {
      // Views of the same bytes, or the leading rows of a buffer (bpt-map-
      // to-gpu moves every other slice into the launches that use it).
      Value source = op.getOperand(0);
      if (bufferOf.count(source))
        bufferOf[op.getResult(0)] = bufferOf.lookup(source);
      else if (intermediateOf.count(source))
        intermediateOf[op.getResult(0)] = intermediateOf.lookup(source);
    } else if (auto descriptor = dyn_cast<nvgpu::TmaCreateDescriptorOp>(op)) {
      if (failed(addTensorMap(descriptor)))
        return failure();
    } else if (auto launch = dyn_cast<gpu::LaunchFuncOp>(op)) {
      if (failed(addLaunch(launch)))
        return failure();
    } else if (!isa<arith::ConstantOp, func::ReturnOp>(op)) {
      return op.emitError() << "bpt-compile: '" << op.getName()
                            << "' on the host side of a kernel set";
    }
  }
  return success();
}

LogicalResult ManifestBuilder::nameLse() {
  // block_backward's lse is an intermediate of the host program, which
  // keeps no tensor-level name. The training forward comes first in the
  // function, and its attention is the only op there with a [B, Hq, S] f32
  // result: the lse is the allocation of that type that a kernel uses
  // first. Others of its type come after it (the portable backward's
  // unnamed row sums D = rowsum(dO ∘ O); the tensor-core backward names its
  // own "delta").
  int64_t first = -1;
  int64_t firstUse = std::numeric_limits<int64_t>::max();
  bool tied = false;
  for (int64_t i : lseCandidates) {
    int64_t use = intermediates[i].firstUse;
    if (use < 0)
      continue;
    if (use < firstUse) {
      first = i;
      firstUse = use;
      tied = false;
    } else if (use == firstUse) {
      tied = true;
    }
  }
  if (first < 0 || tied)
    return emitError(func.getLoc())
           << "bpt-compile: cannot tell which allocation of type "
           << model.lseType << " holds the saved lse ("
           << lseCandidates.size() << " candidates)";
  intermediates[first].name = "lse";
  return success();
}

/// Workspace slots for buffers live over launch intervals [first, last]
/// (first < 0: never used): `slotOf` per buffer (-1 if unused), `bytes`
/// per slot. Buffers in one slot have disjoint lifetimes.
struct SlotPlan {
  SmallVector<int64_t> bytes, slotOf;
  /// Per buffer, its byte offset in its slot (0 but in an arena).
  SmallVector<int64_t> offsetOf;
  int64_t total() const {
    int64_t sum = 0;
    for (int64_t b : bytes)
      sum += b;
    return sum;
  }
};

/// First fit by lifetime: in order of first use, reuse the smallest free
/// slot that is large enough, else grow the largest free one, else open a
/// new one.
SlotPlan firstFitByLifetime(ArrayRef<std::array<int64_t, 3>> live) {
  SlotPlan plan;
  plan.slotOf.assign(live.size(), -1);
  plan.offsetOf.assign(live.size(), 0);
  SmallVector<int64_t> freeAfter;
  SmallVector<int64_t> order =
      llvm::to_vector(llvm::seq<int64_t>(0, static_cast<int64_t>(live.size())));
  llvm::stable_sort(
      order, [&](int64_t a, int64_t b) { return live[a][1] < live[b][1]; });
  for (int64_t i : order) {
    auto [bytes, first, last] = live[i];
    if (first < 0)
      continue;
    int64_t best = -1;
    for (auto [s, slotBytes] : llvm::enumerate(plan.bytes)) {
      if (freeAfter[s] >= first)
        continue;
      bool fits = slotBytes >= bytes;
      if (best < 0)
        best = s;
      else if (fits &&
               (plan.bytes[best] < bytes || slotBytes < plan.bytes[best]))
        best = s;
      else if (!fits && plan.bytes[best] < bytes &&
               slotBytes > plan.bytes[best])
        best = s;
    }
    if (best < 0) {
      best = plan.bytes.size();
      plan.bytes.push_back(0);
      freeAfter.push_back(-1);
    }
    plan.bytes[best] = std::max(plan.bytes[best], bytes);
    freeAfter[best] = last;
    plan.slotOf[i] = best;
  }
  return plan;
}

/// Greedy by size: largest buffer first, each into the smallest slot none
/// of whose buffers it overlaps in time, else a new slot of its size. Slots
/// never grow, so many short-lived buffers of different sizes (a
/// query-chunked backward's) do not inflate the large slots.
SlotPlan greedyBySize(ArrayRef<std::array<int64_t, 3>> live) {
  SlotPlan plan;
  plan.slotOf.assign(live.size(), -1);
  plan.offsetOf.assign(live.size(), 0);
  SmallVector<SmallVector<std::pair<int64_t, int64_t>>> held;
  SmallVector<int64_t> order =
      llvm::to_vector(llvm::seq<int64_t>(0, static_cast<int64_t>(live.size())));
  llvm::stable_sort(order, [&](int64_t a, int64_t b) {
    return live[a][0] > live[b][0] ||
           (live[a][0] == live[b][0] && live[a][1] < live[b][1]);
  });
  for (int64_t i : order) {
    auto [bytes, first, last] = live[i];
    if (first < 0)
      continue;
    int64_t best = -1;
    for (auto [s, intervals] : llvm::enumerate(held)) {
      bool overlaps = llvm::any_of(intervals, [&](auto interval) {
        return interval.first <= last && first <= interval.second;
      });
      if (!overlaps && (best < 0 || plan.bytes[s] < plan.bytes[best]))
        best = s;
    }
    if (best < 0) {
      best = plan.bytes.size();
      plan.bytes.push_back(bytes);
      held.emplace_back();
    }
    held[best].push_back({first, last});
    plan.slotOf[i] = best;
  }
  return plan;
}

/// Byte offsets of arena buffers are multiples of this (the runtime needs
/// 16 for TMA and vector accesses; 256 keeps every buffer on its own
/// L2 sector group, as separate allocations were).
constexpr int64_t kArenaAlignment = 256;

/// One arena: buffers taken in `order`, each at the lowest aligned offset
/// where it overlaps no placed buffer that is live at the same time. Its
/// size approaches the peak of live bytes, where slots pay for each slot's
/// largest buffer.
SlotPlan arenaInOrder(ArrayRef<std::array<int64_t, 3>> live,
                      ArrayRef<int64_t> order) {
  SlotPlan plan;
  plan.slotOf.assign(live.size(), -1);
  plan.offsetOf.assign(live.size(), 0);
  SmallVector<int64_t> placed;
  int64_t size = 0;
  for (int64_t i : order) {
    auto [bytes, first, last] = live[i];
    if (first < 0)
      continue;
    // The placed buffers live at the same time, by offset.
    SmallVector<std::pair<int64_t, int64_t>> taken;
    for (int64_t j : placed)
      if (live[j][1] <= last && first <= live[j][2])
        taken.push_back({plan.offsetOf[j], plan.offsetOf[j] + live[j][0]});
    llvm::sort(taken);
    int64_t offset = 0;
    for (auto [begin, end] : taken) {
      if (offset + bytes <= begin)
        break;
      offset = std::max<int64_t>(offset, llvm::alignTo(end, kArenaAlignment));
    }
    plan.slotOf[i] = 0;
    plan.offsetOf[i] = offset;
    size = std::max(size, offset + bytes);
    placed.push_back(i);
  }
  if (!placed.empty())
    plan.bytes.push_back(size);
  return plan;
}

/// The smallest arena of a few greedy orders (no order is best for every
/// set): largest buffer first; longest-lived first (what stays across the
/// step takes the low offsets, the short-lived ones pack above it); largest
/// bytes x lifetime first.
SlotPlan arenaBest(ArrayRef<std::array<int64_t, 3>> live) {
  auto ordered = [&](auto before) {
    SmallVector<int64_t> order = llvm::to_vector(
        llvm::seq<int64_t>(0, static_cast<int64_t>(live.size())));
    llvm::stable_sort(order, before);
    return order;
  };
  auto span = [&](int64_t i) { return live[i][2] - live[i][1] + 1; };
  SmallVector<int64_t> orders[] = {
      ordered([&](int64_t a, int64_t b) {
        return live[a][0] > live[b][0] ||
               (live[a][0] == live[b][0] && live[a][1] < live[b][1]);
      }),
      ordered([&](int64_t a, int64_t b) {
        return span(a) > span(b) ||
               (span(a) == span(b) && live[a][0] > live[b][0]);
      }),
      ordered([&](int64_t a, int64_t b) {
        return live[a][0] * span(a) > live[b][0] * span(b);
      })};
  SlotPlan best;
  for (ArrayRef<int64_t> order : orders) {
    SlotPlan plan = arenaInOrder(live, order);
    if (best.bytes.empty() || plan.total() < best.total())
      best = std::move(plan);
  }
  return best;
}

void ManifestBuilder::assignWorkspaceSlots() {
  // Buffers whose lifetimes do not overlap share a workspace slot, so the
  // set's device memory is near its peak of live intermediates, not their
  // sum. Three packings; the smallest is kept (in this order on a tie):
  // slots by first fit, slots by size, one arena with byte offsets.
  SmallVector<std::array<int64_t, 3>> live;
  for (const Intermediate &im : intermediates)
    live.push_back({im.bytes, im.firstUse, im.lastUse});
  // A buffer that a launch writes over one it reads for the last time
  // (kWritesOverAttrName) takes that buffer's bytes: the two are packed as
  // one, live from the first's first use to the second's last.
  SmallVector<int64_t> takesBytesOf(intermediates.size(), -1);
  auto owner = [&](int64_t i) {
    while (takesBytesOf[i] >= 0)
      i = takesBytesOf[i];
    return i;
  };
  // A buffer gives its bytes to one written buffer a launch: where K and V
  // are one buffer, dK and dV must not both take it.
  llvm::DenseSet<std::pair<int64_t, int64_t>> given; // (launch, owner)
  for (auto [launch, written, read] : writesOver) {
    int64_t root = owner(read);
    if (takesBytesOf[written] >= 0 || written == root ||
        live[root][2] != launch || live[written][1] != launch ||
        live[written][0] != live[root][0] ||
        !given.insert({launch, root}).second)
      continue;
    takesBytesOf[written] = root;
    live[root][2] = live[written][2];
    live[written][1] = live[written][2] = -1; // placed with its owner
  }
  SlotPlan plan = firstFitByLifetime(live);
  for (SlotPlan other : {greedyBySize(live), arenaBest(live)})
    if (other.total() < plan.total())
      plan = std::move(other);
  slotOf = plan.slotOf;
  offsetOf = plan.offsetOf;
  for (int64_t i : llvm::seq<int64_t>(0, intermediates.size())) {
    if (takesBytesOf[i] < 0)
      continue;
    slotOf[i] = slotOf[owner(i)];
    offsetOf[i] = offsetOf[owner(i)];
  }
  SmallVector<int64_t> order = llvm::to_vector(
      llvm::seq<int64_t>(0, static_cast<int64_t>(intermediates.size())));
  llvm::stable_sort(order, [&](int64_t a, int64_t b) {
    return intermediates[a].firstUse < intermediates[b].firstUse;
  });
  // Each slot lists what it holds, in order of first use, so that a reader
  // of the manifest sees which buffer is which (e.g. the backward's "delta"
  // and "dq_accumulator").
  SmallVector<llvm::json::Array> holds(plan.bytes.size());
  for (int64_t i : order) {
    if (slotOf[i] < 0)
      continue;
    llvm::json::Object hold{{"name", intermediates[i].name},
                            {"bytes", intermediates[i].bytes}};
    if (offsetOf[i] != 0)
      hold["byte_offset"] = offsetOf[i];
    holds[slotOf[i]].push_back(std::move(hold));
  }
  firstSlot = buffers.size();
  for (auto [s, bytes] : llvm::enumerate(plan.bytes))
    buffers.push_back(
        llvm::json::Object{{"name", llvm::formatv("workspace{0}", s).str()},
                           {"role", "workspace"},
                           {"dtype", "i8"},
                           {"shape", llvm::json::Array{bytes}},
                           {"bytes", bytes},
                           {"holds", std::move(holds[s])}});
}

/// CUDA's limits on grid and block dimensions (x, y, z), and on threads.
constexpr int64_t kMaxGrid[3] = {INT32_MAX, 65535, 65535};
constexpr int64_t kMaxBlock[3] = {1024, 1024, 64};
constexpr int64_t kMaxThreads = 1024;

FailureOr<llvm::json::Array>
ManifestBuilder::launchesJson(const ChipInfo &chip) {
  llvm::json::Array launches;
  for (Launch &record : hostLaunches) {
    gpu::LaunchFuncOp launch = record.op;
    gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
    gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
    llvm::json::Array gridDims, blockDims, args;
    int64_t threads = 1;
    for (Value v : {grid.x, grid.y, grid.z, block.x, block.y, block.z}) {
      std::optional<int64_t> c = constantOf(v);
      if (!c)
        return launch.emitError() << "bpt-compile: non-constant launch size";
      bool isGrid = gridDims.size() < 3;
      size_t axis = isGrid ? gridDims.size() : blockDims.size();
      int64_t limit = isGrid ? kMaxGrid[axis] : kMaxBlock[axis];
      // What CUDA cannot launch is an error here, not in the manifest.
      if (*c < 1 || *c > limit)
        return launch.emitError()
               << "bpt-compile: " << (isGrid ? "grid" : "block")
               << " dimension "
               << "xyz"[axis] << " of kernel '"
               << launch.getKernelName().getValue() << "' is " << *c
               << ", outside CUDA's [1, " << limit << "]";
      if (!isGrid)
        threads *= *c;
      (isGrid ? gridDims : blockDims).push_back(*c);
    }
    if (threads > kMaxThreads)
      return launch.emitError()
             << "bpt-compile: kernel '" << launch.getKernelName().getValue()
             << "' has " << threads << " threads per block, more than "
             << kMaxThreads;
    int64_t shared = 0;
    if (Value size = launch.getDynamicSharedMemorySize())
      shared = constantOf(size).value_or(-1);
    if (shared < 0 || shared > chip.sharedMemoryPerBlock)
      return launch.emitError()
             << "bpt-compile: kernel '" << launch.getKernelName().getValue()
             << "' needs " << shared << " bytes of dynamic shared memory; "
             << chip.name << " allows [0, " << chip.sharedMemoryPerBlock
             << "] per block";
    for (auto [kind, index] : record.args) {
      if (kind == ArgKind::TensorMap)
        args.push_back(llvm::json::Object{{"tensor_map", index}});
      else if (kind == ArgKind::I32)
        args.push_back(llvm::json::Object{{"i32", index}});
      else if (kind != ArgKind::Intermediate)
        args.push_back(index);
      else if (offsetOf[index] == 0)
        args.push_back(firstSlot + slotOf[index]);
      else
        args.push_back(llvm::json::Object{{"buffer", firstSlot + slotOf[index]},
                                          {"byte_offset", offsetOf[index]}});
    }
    llvm::json::Object entry{{"kernel", launch.getKernelName().getValue()},
                             {"grid", std::move(gridDims)},
                             {"block", std::move(blockDims)},
                             {"dynamic_shared_memory", shared},
                             {"args", std::move(args)}};
    // bpt-dependent-launch began the kernel with griddepcontrol.wait.
    if (launch->hasAttr(kDependentLaunchAttrName))
      entry["dependent"] = true;
    launches.push_back(std::move(entry));
  }
  return launches;
}

llvm::json::Array ManifestBuilder::tensorMapsJson() {
  llvm::json::Array tensorMaps;
  for (TensorMap &map : tensorMapList) {
    map.fields["buffer"] =
        map.intermediate ? firstSlot + slotOf[map.index] : map.index;
    if (map.intermediate && offsetOf[map.index] != 0)
      map.fields["byte_offset"] = offsetOf[map.index];
    tensorMaps.push_back(std::move(map.fields));
  }
  return tensorMaps;
}

bool ManifestBuilder::hasArgumentObjects() const {
  return llvm::any_of(hostLaunches, [&](const Launch &launch) {
    return llvm::any_of(launch.args, [&](auto &arg) {
      return arg.first == ArgKind::I32 ||
             (arg.first == ArgKind::Intermediate && offsetOf[arg.second] != 0);
    });
  });
}

/// The manifest's options: the reference's (from the model), the portable
/// path's tiling, and the tensor-core tilings of the kernels in the PTX.
llvm::json::Object optionsJson(ModelDescription &model,
                               const CompileOptions &options, StringRef ptx) {
  llvm::json::Object opts = std::move(model.options);
  opts["q_block"] = options.strategy.qBlock;
  opts["kv_block"] = options.strategy.kvBlock;
  opts["fuse"] = options.fuse;
  if (options.recomputeProjections)
    opts["recompute_projections"] = true;
  opts["threads"] = options.threads;
  opts["gemm_tiles"] = options.tileGemms;
  // Which tensor-core kernels the set has, from the instructions in its PTX.
  bool wgmma = ptx.contains("wgmma.mma_async");
  bool mmaSync = ptx.contains("mma.sync.aligned");
  opts["tensor_cores"] = wgmma || mmaSync;
  // f32 multiplied as TF32: bpt-run checks such a set's outputs against
  // TF32's tolerance, not f32's.
  if (ptx.contains(".tf32.tf32"))
    opts["tf32"] = true;
  if (mmaSync) {
    opts["sm80_q_block"] = options.strategy.sm80QBlock;
    opts["sm80_kv_block"] = options.strategy.sm80KvBlock;
    opts["sm80_stages"] = options.strategy.sm80Stages;
    opts["sm80_gemm_block_n"] = options.strategy.sm80GemmBlockN;
    opts["sm80_grad_q_block"] = options.strategy.sm80GradQBlock;
    opts["sm80_grad_kv_block"] = options.strategy.sm80GradKvBlock;
    opts["sm80_grad_stages"] = options.strategy.sm80GradStages;
  }
  if (wgmma) {
    // The sm_90a tiling (options are flat: numbers, strings, booleans).
    opts["sm90_chunk_rows"] = options.strategy.chunkRows;
    opts["sm90_kv_block"] = options.strategy.sm90KvBlock;
    opts["sm90_stages"] = options.strategy.sm90Stages;
    opts["sm90_gemm_block_n"] = options.strategy.gemmBlockN;
    opts["sm90_gemm_stages"] = options.strategy.gemmStages;
    opts["sm90_gemm_split"] = options.strategy.gemmSplit;
  }
  return opts;
}

} // namespace

std::vector<std::string> bpt::unresolvedLibdeviceFunctions(StringRef ptx) {
  // Declarations read `.extern .func (.param ...) __nv_name(` or
  // `.extern .func __nv_name(`, one a line.
  std::vector<std::string> names;
  while (!ptx.empty()) {
    auto [line, rest] = ptx.split('\n');
    ptx = rest;
    if (!line.ltrim().starts_with(".extern .func"))
      continue;
    size_t at = line.find("__nv_");
    if (at == StringRef::npos)
      continue;
    StringRef name = line.drop_front(at);
    names.push_back(name.take_while([](char c) {
                          return llvm::isAlnum(c) || c == '_';
                        })
                        .str());
  }
  return names;
}

FailureOr<KernelSet> bpt::compileKernelSet(ModuleOp module,
                                           const CompileOptions &options,
                                           StringRef ptxFileName) {
  SmallVector<func::FuncOp> funcs =
      llvm::to_vector(module.getOps<func::FuncOp>());
  if (funcs.size() != 1 || funcs.front().isExternal())
    return module.emitError()
           << "bpt-compile: expected one function with a body, found "
           << funcs.size();
  func::FuncOp func = funcs.front();
  ModelDescription model = describe(func);
  int64_t numInputs = func.getNumArguments();
  int64_t numOutputs = func.getNumResults();

  if (failed(lowerToStage(module, Stage::Binary, options)))
    return failure();

  KernelSet set;
  auto binaries = llvm::to_vector(module.getOps<gpu::BinaryOp>());
  if (binaries.size() != 1 || binaries.front().getObjects().size() != 1)
    return module.emitError() << "bpt-compile: expected one gpu.binary";
  set.ptx = cast<gpu::ObjectAttr>(binaries.front().getObjects()[0])
                .getObject()
                .getValue()
                .str();

  ManifestBuilder manifest(func, model, numInputs, numOutputs);
  if (failed(manifest.addArgumentBuffers()) ||
      failed(manifest.readHostProgram()))
    return failure();
  if (model.lseType && failed(manifest.nameLse()))
    return failure();
  manifest.assignWorkspaceSlots();
  FailureOr<llvm::json::Array> launches =
      manifest.launchesJson(getChipInfo(options.strategy.chip));
  if (failed(launches))
    return failure();
  llvm::json::Array tensorMaps = manifest.tensorMapsJson();
  bool hasTensorMaps = !tensorMaps.empty();
  set.manifest = llvm::json::Object{
      {"bpt_manifest_version",
       hasTensorMaps || manifest.hasArgumentObjects() ? 2 : 1},
      {"ptx", ptxFileName},
      {"chip", options.strategy.chip},
      {"features", options.features},
      {"op", model.op},
      {"options", optionsJson(model, options, set.ptx)},
      {"buffers", manifest.takeBuffers()},
      {"launches", std::move(*launches)}};
  if (hasTensorMaps)
    set.manifest["tensor_maps"] = std::move(tensorMaps);
  return set;
}
