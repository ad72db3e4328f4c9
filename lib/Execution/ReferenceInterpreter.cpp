//===- ReferenceInterpreter.cpp - run model-level IR in float64 -*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Execution/ReferenceInterpreter.h"

#include "bpt/Dialect/BPTOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <optional>

using namespace mlir;
using namespace bpt;

static ref::Activation toReference(Activation act) {
  switch (act) {
  case Activation::gelu:
    return ref::Activation::Gelu;
  case Activation::gelu_tanh:
    return ref::Activation::GeluTanh;
  case Activation::relu:
    return ref::Activation::Relu;
  case Activation::silu:
    return ref::Activation::Silu;
  case Activation::swiglu:
    return ref::Activation::SwiGLU;
  case Activation::geglu:
    return ref::Activation::GeGLU;
  }
  llvm_unreachable("unknown activation");
}

static std::vector<int64_t> shapeOf(Type type) {
  ArrayRef<int64_t> shape = cast<RankedTensorType>(type).getShape();
  return {shape.begin(), shape.end()};
}

/// `acc + op(lhs) · op(rhs)` of 2-D tensors, op transposing where asked.
static ref::Tensor matmul(const ref::Tensor &lhs, const ref::Tensor &rhs,
                          const ref::Tensor *acc, bool transposeLhs,
                          bool transposeRhs) {
  int64_t m = lhs.shape[transposeLhs ? 1 : 0], k = lhs.shape[transposeLhs ? 0 : 1];
  int64_t n = rhs.shape[transposeRhs ? 0 : 1];
  auto lhsAt = [&](int64_t i, int64_t p) {
    return lhs.data[transposeLhs ? p * m + i : i * k + p];
  };
  auto rhsAt = [&](int64_t p, int64_t j) {
    return rhs.data[transposeRhs ? j * k + p : p * n + j];
  };
  ref::Tensor out = acc ? *acc : ref::Tensor({m, n});
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += lhsAt(i, p) * rhsAt(p, j);
      out.data[i * n + j] += sum;
    }
  return out;
}

/// Row-major strides of `shape`.
static std::vector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  return strides;
}

/// `input` with its dimensions permuted: result dimension i is input
/// dimension perm[i].
static ref::Tensor transpose(const ref::Tensor &input,
                             ArrayRef<int64_t> perm) {
  size_t rank = perm.size();
  std::vector<int64_t> shape(rank), inputStrides = stridesOf(input.shape);
  for (size_t i = 0; i < rank; ++i)
    shape[i] = input.shape[perm[i]];
  ref::Tensor out(shape);
  std::vector<int64_t> index(rank, 0);
  for (double &value : out.data) {
    int64_t offset = 0;
    for (size_t i = 0; i < rank; ++i)
      offset += index[i] * inputStrides[perm[i]];
    value = input.data[offset];
    for (size_t i = rank; i-- > 0;) // next index, last dimension fastest
      if (++index[i] < shape[i] || i == 0)
        break;
      else
        index[i] = 0;
  }
  return out;
}

/// Calls `f(sliceIndex, wholeIndex)` for each element of the box of
/// `sizes` at `offsets` (unit strides) in a tensor of `shape`: the
/// element's row-major position in the box and in the tensor.
static void forEachInBox(ArrayRef<int64_t> shape, ArrayRef<int64_t> offsets,
                         ArrayRef<int64_t> sizes,
                         llvm::function_ref<void(int64_t, int64_t)> f) {
  std::vector<int64_t> strides = stridesOf(shape);
  int64_t count = 1;
  for (int64_t size : sizes)
    count *= size;
  std::vector<int64_t> index(sizes.size(), 0);
  for (int64_t n = 0; n < count; ++n) {
    int64_t whole = 0;
    for (size_t i = 0; i < sizes.size(); ++i)
      whole += (offsets[i] + index[i]) * strides[i];
    f(n, whole);
    for (size_t i = sizes.size(); i-- > 0;)
      if (++index[i] < sizes[i])
        break;
      else
        index[i] = 0;
  }
}

/// The static offsets and sizes of a unit-stride slice op, or nothing.
template <typename SliceOp>
static std::optional<std::pair<SmallVector<int64_t>, SmallVector<int64_t>>>
staticSlice(SliceOp op) {
  std::optional<SmallVector<int64_t>> offsets =
      getConstantIntValues(op.getMixedOffsets());
  std::optional<SmallVector<int64_t>> sizes =
      getConstantIntValues(op.getMixedSizes());
  if (!op.hasUnitStride() || !offsets || !sizes)
    return std::nullopt;
  return std::make_pair(std::move(*offsets), std::move(*sizes));
}

FailureOr<std::vector<ref::Tensor>>
bpt::evaluateReference(func::FuncOp func, ArrayRef<ref::Tensor> args) {
  llvm::DenseMap<Value, ref::Tensor> values;
  for (auto [arg, tensor] : llvm::zip(func.getArguments(), args))
    values[arg] = tensor;
  auto get = [&](Value v) -> const ref::Tensor & { return values[v]; };
  auto getOptional = [&](Value v) -> const ref::Tensor * {
    return v ? &values[v] : nullptr;
  };
  auto getOrEmpty = [&](Value v) { return v ? values[v] : ref::Tensor(); };

  std::vector<ref::Tensor> results;
  for (Operation &op : func.getBody().front()) {
    LogicalResult status =
        llvm::TypeSwitch<Operation *, LogicalResult>(&op)
            .Case([&](AttentionOp a) {
              ref::AttentionWithLSE r = ref::attentionWithLSE(
                  get(a.getQuery()), get(a.getKey()), get(a.getValue()),
                  a.getCausal(), a.getEffectiveScale());
              values[a.getResult()] = std::move(r.out);
              if (Value lse = a.getLse())
                values[lse] = std::move(r.lse);
              return success();
            })
            .Case([&](AttentionGradOp g) {
              // From first principles: the output and log-sum-exp operands
              // are functions of q, k and v.
              ref::AttentionGradients r = ref::attentionBackward(
                  get(g.getQuery()), get(g.getKey()), get(g.getValue()),
                  get(g.getOutputGrad()), g.getCausal(),
                  g.getEffectiveScale());
              values[g.getQueryGrad()] = std::move(r.dq);
              values[g.getKeyGrad()] = std::move(r.dk);
              values[g.getValueGrad()] = std::move(r.dv);
              return success();
            })
            .Case([&](LinearOp l) {
              values[l.getResult()] = ref::linear(
                  get(l.getInput()), get(l.getWeight()), getOptional(l.getBias()));
              return success();
            })
            .Case([&](LinearGradOp l) {
              // The bias does not enter the gradients; a zero one of its
              // shape asks for db.
              std::optional<ref::Tensor> bias;
              if (l.getBiasGrad())
                bias = ref::Tensor({l.getWeight().getType().getDimSize(1)});
              ref::LinearGradients r = ref::linearBackward(
                  get(l.getInput()), get(l.getWeight()),
                  bias ? &*bias : nullptr, get(l.getResultGrad()));
              values[l.getInputGrad()] = std::move(r.dx);
              values[l.getWeightGrad()] = std::move(r.dw);
              if (Value db = l.getBiasGrad())
                values[db] = std::move(r.db);
              return success();
            })
            .Case([&](MatmulOp m) {
              ref::Tensor product =
                  matmul(get(m.getLhs()), get(m.getRhs()),
                         getOptional(m.getAccumulator()), m.getTransposeLhs(),
                         m.getTransposeRhs());
              if (std::optional<Activation> act = m.getActivation()) {
                // The activation-gradient epilogue: product ⊙ act'(pre)
                // and act(pre).
                const ref::Tensor &pre = get(m.getPre());
                ref::Tensor activated(pre.shape);
                for (size_t i = 0; i < pre.data.size(); ++i) {
                  product.data[i] *=
                      ref::activateDerivative(toReference(*act), pre.data[i]);
                  activated.data[i] =
                      ref::activate(toReference(*act), pre.data[i]);
                }
                values[m.getAct()] = std::move(activated);
              }
              values[m.getResult()] = std::move(product);
              return success();
            })
            .Case([&](FFNGradOp f) {
              ref::FFNGradients r = ref::ffnBackward(
                  get(f.getInput()), get(f.getWIn()), get(f.getWOut()),
                  getOptional(f.getWGate()), toReference(f.getActivation()),
                  get(f.getResultGrad()));
              values[f.getInputGrad()] = std::move(r.dx);
              values[f.getWInGrad()] = std::move(r.dwIn);
              values[f.getWOutGrad()] = std::move(r.dwOut);
              if (Value dGate = f.getWGateGrad())
                values[dGate] = std::move(r.dwGate);
              return success();
            })
            .Case([&](LayerNormGradOp n) {
              // As for linear_grad: the bias does not enter the gradients.
              ref::Tensor bias(get(n.getWeight()).shape);
              ref::LayerNormGradients r = ref::layerNormBackward(
                  get(n.getInput()), get(n.getWeight()), bias,
                  n.getEpsilon().convertToDouble(), get(n.getResultGrad()));
              values[n.getInputGrad()] = std::move(r.dx);
              values[n.getWeightGrad()] = std::move(r.dw);
              values[n.getBiasGrad()] = std::move(r.db);
              return success();
            })
            .Case([&](RMSNormGradOp n) {
              ref::RMSNormGradients r = ref::rmsNormBackward(
                  get(n.getInput()), get(n.getWeight()),
                  n.getEpsilon().convertToDouble(), get(n.getResultGrad()));
              values[n.getInputGrad()] = std::move(r.dx);
              values[n.getWeightGrad()] = std::move(r.dw);
              return success();
            })
            .Case([&](FFNOp f) {
              values[f.getResult()] = ref::ffn(
                  get(f.getInput()), get(f.getWIn()), get(f.getWOut()),
                  getOptional(f.getWGate()), toReference(f.getActivation()));
              return success();
            })
            .Case([&](LayerNormOp n) {
              values[n.getResult()] =
                  ref::layerNorm(get(n.getInput()), get(n.getWeight()),
                                 get(n.getBias()),
                                 n.getEpsilon().convertToDouble());
              return success();
            })
            .Case([&](RMSNormOp n) {
              values[n.getResult()] =
                  ref::rmsNorm(get(n.getInput()), get(n.getWeight()),
                               n.getEpsilon().convertToDouble());
              return success();
            })
            .Case([&](TransformerBlockOp b) {
              ref::BlockWeights w{getOrEmpty(b.getNorm1Weight()),
                                  getOrEmpty(b.getNorm1Bias()),
                                  get(b.getWQ()),
                                  get(b.getWK()),
                                  get(b.getWV()),
                                  get(b.getWO()),
                                  getOrEmpty(b.getNorm2Weight()),
                                  getOrEmpty(b.getNorm2Bias()),
                                  get(b.getWIn()),
                                  get(b.getWOut()),
                                  getOrEmpty(b.getWGate())};
              values[b.getResult()] = ref::transformerBlock(
                  get(b.getInput()), w, b.getHeads(), b.getKvHeads(),
                  b.getCausal(), toReference(b.getActivation()),
                  b.getNorm() == NormKind::layer_norm
                      ? ref::NormKind::LayerNorm
                      : ref::NormKind::RMSNorm,
                  b.getEpsilon().convertToDouble());
              return success();
            })
            .Case([&](arith::AddFOp add) -> LogicalResult {
              if (!isa<RankedTensorType>(add.getType()))
                return add.emitError()
                       << "reference: only tensor additions are supported";
              values[add.getResult()] =
                  ref::add(get(add.getLhs()), get(add.getRhs()));
              return success();
            })
            // The glue of a decomposed block and of the backward functions
            // bpt-build-backward builds: reshapes keep the row-major data.
            .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
                [&](Operation *reshape) {
                  ref::Tensor out = get(reshape->getOperand(0));
                  out.shape = shapeOf(reshape->getResult(0).getType());
                  values[reshape->getResult(0)] = std::move(out);
                  return success();
                })
            .Case([&](linalg::TransposeOp t) {
              values[t.getResult().front()] =
                  transpose(get(t.getInput()), t.getPermutation());
              return success();
            })
            // Slices (static, unit strides) and concatenations: a query-
            // chunked backward's glue. A rank-reducing slice keeps the
            // row-major data of its box.
            .Case([&](tensor::ExtractSliceOp slice) -> LogicalResult {
              auto box = staticSlice(slice);
              if (!box)
                return slice.emitError()
                       << "reference: only static unit-stride slices";
              const ref::Tensor &source = get(slice.getSource());
              ref::Tensor out(shapeOf(slice.getType()));
              forEachInBox(source.shape, box->first, box->second,
                           [&](int64_t n, int64_t whole) {
                             out.data[n] = source.data[whole];
                           });
              values[slice.getResult()] = std::move(out);
              return success();
            })
            .Case([&](tensor::InsertSliceOp insert) -> LogicalResult {
              auto box = staticSlice(insert);
              if (!box)
                return insert.emitError()
                       << "reference: only static unit-stride slices";
              const ref::Tensor &piece = get(insert.getSource());
              ref::Tensor out = get(insert.getDest());
              forEachInBox(out.shape, box->first, box->second,
                           [&](int64_t n, int64_t whole) {
                             out.data[whole] = piece.data[n];
                           });
              values[insert.getResult()] = std::move(out);
              return success();
            })
            .Case([&](tensor::ConcatOp concat) {
              ref::Tensor out(shapeOf(concat.getType()));
              std::vector<int64_t> offsets(out.shape.size(), 0);
              for (Value input : concat.getInputs()) {
                const ref::Tensor &piece = get(input);
                forEachInBox(out.shape, offsets, piece.shape,
                             [&](int64_t n, int64_t whole) {
                               out.data[whole] = piece.data[n];
                             });
                offsets[concat.getDim()] += piece.shape[concat.getDim()];
              }
              values[concat.getResult()] = std::move(out);
              return success();
            })
            // Precision changes are the identity in float64.
            .Case<arith::ExtFOp, arith::TruncFOp>(
                [&](Operation *convert) -> LogicalResult {
                  if (!isa<RankedTensorType>(convert->getResult(0).getType()))
                    return convert->emitError()
                           << "reference: only tensor conversions";
                  values[convert->getResult(0)] = get(convert->getOperand(0));
                  return success();
                })
            .Case([&](tensor::EmptyOp e) -> LogicalResult {
              if (!e.getType().hasStaticShape())
                return e.emitError()
                       << "reference: only statically shaped tensor.empty";
              values[e.getResult()] = ref::Tensor(shapeOf(e.getType()));
              return success();
            })
            .Case([&](arith::ConstantOp c) -> LogicalResult {
              // A float scalar, read by linalg.fill below; nothing to hold.
              if (isa<FloatAttr>(c.getValue()))
                return success();
              return c.emitError()
                     << "reference: only float scalar constants";
            })
            .Case([&](linalg::FillOp fill) -> LogicalResult {
              auto constant =
                  fill.value().getDefiningOp<arith::ConstantOp>();
              auto value =
                  constant ? dyn_cast<FloatAttr>(constant.getValue()) : nullptr;
              if (!value || !fill.hasPureTensorSemantics())
                return fill.emitError() << "reference: only linalg.fill of a "
                                           "float constant into a tensor";
              ref::Tensor out = get(fill.output());
              std::fill(out.data.begin(), out.data.end(),
                        value.getValueAsDouble());
              values[fill.getResult(0)] = std::move(out);
              return success();
            })
            .Case([&](func::ReturnOp ret) {
              for (Value v : ret.getOperands())
                results.push_back(get(v));
              return success();
            })
            .Default([](Operation *other) {
              return other->emitError()
                     << "reference: no float64 reference for '"
                     << other->getName() << "'";
            });
    if (failed(status))
      return failure();
  }
  return results;
}
