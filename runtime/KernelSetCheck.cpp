//===- KernelSetCheck.cpp - run a kernel set against the reference -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/KernelSetCheck.h"

#include "bpt/Reference/HostTensor.h"
#include "bpt/Reference/Reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <stdexcept>

using namespace bpt;
using namespace bpt::rt;

bool CheckResult::passed() const {
  return memory.withinTolerance() &&
         std::all_of(outputs.begin(), outputs.end(),
                     [](const Output &o) { return o.passed; });
}

uint64_t bpt::rt::predictedDeviceBytes(const Manifest &manifest) {
  uint64_t bytes = 128 * manifest.tensorMaps.size();
  for (const ManifestBuffer &b : manifest.buffers)
    bytes += uint64_t(b.bytes);
  return bytes;
}

static DType toDType(ElementType type) {
  switch (type) {
  case ElementType::F16:
    return DType::F16;
  case ElementType::BF16:
    return DType::BF16;
  default:
    return DType::F32;
  }
}

static std::optional<ref::Activation> parseActivation(const std::string &s) {
  static const std::map<std::string, ref::Activation> kinds = {
      {"gelu", ref::Activation::Gelu},     {"gelu_tanh", ref::Activation::GeluTanh},
      {"relu", ref::Activation::Relu},     {"silu", ref::Activation::Silu},
      {"swiglu", ref::Activation::SwiGLU}, {"geglu", ref::Activation::GeGLU}};
  auto it = kinds.find(s);
  if (it == kinds.end())
    return std::nullopt;
  return it->second;
}

static bool isAttentionOp(ManifestOp op) {
  return op == ManifestOp::Attention || op == ManifestOp::AttentionLSE ||
         op == ManifestOp::AttentionGrad ||
         op == ManifestOp::AttentionBackward;
}

/// The attention's softmax scale: the manifest's, else 1/sqrt(head dim).
static double attentionScale(const Manifest &m, const ref::Tensor &query) {
  std::optional<double> scale = m.getNumberOption("scale");
  return scale ? *scale : 1.0 / std::sqrt(double(query.shape.back()));
}

double bpt::rt::countFlops(const Manifest &m) {
  auto shapeOf = [&](const char *name) -> std::vector<int64_t> {
    const ManifestBuffer *b = m.findBuffer(name);
    return b ? b->shape : std::vector<int64_t>{};
  };
  bool causal = m.getBoolOption("causal").value_or(false);
  if (isAttentionOp(m.op)) {
    auto q = shapeOf("query"), k = shapeOf("key");
    if (q.size() != 4 || k.size() != 4)
      return 0;
    double f = 4.0 * q[0] * q[1] * q[2] * k[2] * q[3];
    // The backward is 2.5 forwards, as FlashAttention counts; the
    // attention_backward set runs the forward too.
    if (m.op == ManifestOp::AttentionGrad)
      f *= 2.5;
    if (m.op == ManifestOp::AttentionBackward)
      f *= 3.5;
    return causal ? f / 2 : f;
  }
  auto x = shapeOf("input"), wIn = shapeOf("w_in");
  if (x.size() != 3 || wIn.size() != 2)
    return 0;
  double rows = double(x[0]) * x[1];
  bool gated = m.findBuffer("w_gate") != nullptr;
  double ffn = 2.0 * rows * wIn[0] * wIn[1] * (gated ? 3 : 2);
  if (m.op == ManifestOp::FFN)
    return ffn;
  if (m.op != ManifestOp::Block && m.op != ManifestOp::BlockBackward)
    return 0;
  auto wq = shapeOf("w_q"), wk = shapeOf("w_k");
  int64_t heads = m.getIntOption("heads").value_or(1);
  if (wq.size() != 2 || wk.size() != 2)
    return 0;
  double projections = 2.0 * rows * x[2] * (2.0 * wq[1] + 2.0 * wk[1]);
  double headDim = double(wq[1]) / heads;
  double attention = 4.0 * x[0] * heads * x[1] * x[1] * headDim;
  if (causal)
    attention /= 2;
  if (m.op == ManifestOp::BlockBackward)
    // The forward, then the backward: each GEMM twice more (dx and dw),
    // the attention 2.5 forwards (FlashAttention's count), and the
    // recomputed forward of everything but the attention.
    return 3.0 * (projections + ffn) + 3.5 * attention +
           (projections + ffn);
  return projections + attention + ffn;
}

/// The float64 reference of the manifest's op on `inputs` (by name).
static Expected<std::vector<ref::Tensor>>
reference(const Manifest &m, const std::map<std::string, ref::Tensor> &in) {
  auto get = [&](const char *name) -> const ref::Tensor * {
    auto it = in.find(name);
    return it == in.end() ? nullptr : &it->second;
  };
  auto need = [&](const char *name) -> const ref::Tensor & {
    static const ref::Tensor empty;
    const ref::Tensor *t = get(name);
    return t ? *t : empty;
  };
  auto missing = [&](std::initializer_list<const char *> names)
      -> std::optional<std::string> {
    for (const char *n : names)
      if (!get(n))
        return std::string("the manifest has no input buffer '") + n + "'";
    return std::nullopt;
  };
  bool causal = m.getBoolOption("causal").value_or(false);
  std::string act = m.getStringOption("activation").value_or("gelu");
  switch (m.op) {
  case ManifestOp::Attention: {
    if (auto e = missing({"query", "key", "value"}))
      return Status::failure(*e);
    double s = attentionScale(m, need("query"));
    return std::vector<ref::Tensor>{
        ref::attention(need("query"), need("key"), need("value"), causal, s)};
  }
  case ManifestOp::AttentionLSE: {
    if (auto e = missing({"query", "key", "value"}))
      return Status::failure(*e);
    double s = attentionScale(m, need("query"));
    ref::AttentionWithLSE forward = ref::attentionWithLSE(
        need("query"), need("key"), need("value"), causal, s);
    return std::vector<ref::Tensor>{forward.out, forward.lse};
  }
  case ManifestOp::AttentionGrad: {
    // The output and lse inputs are the forward's (consistentAttentionState),
    // so the gradients of q, k, v and dO are what the kernels must give.
    if (auto e = missing(
            {"query", "key", "value", "output", "output_grad", "lse"}))
      return Status::failure(*e);
    double s = attentionScale(m, need("query"));
    ref::AttentionGradients grads =
        ref::attentionBackward(need("query"), need("key"), need("value"),
                               need("output_grad"), causal, s);
    return std::vector<ref::Tensor>{grads.dq, grads.dk, grads.dv};
  }
  case ManifestOp::AttentionBackward: {
    if (auto e = missing({"query", "key", "value", "output_grad"}))
      return Status::failure(*e);
    double s = attentionScale(m, need("query"));
    ref::AttentionWithLSE forward = ref::attentionWithLSE(
        need("query"), need("key"), need("value"), causal, s);
    ref::AttentionGradients grads =
        ref::attentionBackward(need("query"), need("key"), need("value"),
                               need("output_grad"), causal, s);
    return std::vector<ref::Tensor>{forward.out, forward.lse, grads.dq,
                                    grads.dk, grads.dv};
  }
  case ManifestOp::FFN: {
    if (auto e = missing({"input", "w_in", "w_out"}))
      return Status::failure(*e);
    std::optional<ref::Activation> a = parseActivation(act);
    if (!a)
      return Status::failure("unknown activation '" + act + "'");
    return std::vector<ref::Tensor>{ref::ffn(need("input"), need("w_in"),
                                             need("w_out"), get("w_gate"), *a)};
  }
  case ManifestOp::Block:
  case ManifestOp::BlockBackward: {
    if (auto e = missing({"input", "norm1_weight", "w_q", "w_k", "w_v", "w_o",
                          "norm2_weight", "w_in", "w_out"}))
      return Status::failure(*e);
    if (m.op == ManifestOp::BlockBackward)
      if (auto e = missing({"output_grad"}))
        return Status::failure(*e);
    std::optional<ref::Activation> a = parseActivation(act);
    if (!a)
      return Status::failure("unknown activation '" + act + "'");
    auto orEmpty = [&](const char *n) { return get(n) ? *get(n) : ref::Tensor(); };
    ref::BlockWeights w{need("norm1_weight"), orEmpty("norm1_bias"),
                        need("w_q"),          need("w_k"),
                        need("w_v"),          need("w_o"),
                        need("norm2_weight"), orEmpty("norm2_bias"),
                        need("w_in"),         need("w_out"),
                        orEmpty("w_gate")};
    std::string norm = m.getStringOption("norm").value_or("rms_norm");
    int64_t heads = m.getIntOption("heads").value_or(1);
    int64_t kvHeads = m.getIntOption("kv_heads").value_or(1);
    ref::NormKind normKind = norm == "layer_norm" ? ref::NormKind::LayerNorm
                                                  : ref::NormKind::RMSNorm;
    double eps = m.getNumberOption("epsilon").value_or(1e-5);
    std::vector<ref::Tensor> outputs = {ref::transformerBlock(
        need("input"), w, heads, kvHeads, causal, *a, normKind, eps)};
    if (m.op == ManifestOp::Block)
      return outputs;
    // y, dx, then each weight's gradient in the inputs' order (the
    // manifest's outputs, ManifestOp.cpp); absent weights have none.
    ref::BlockGradients grads = ref::transformerBlockBackward(
        need("input"), w, heads, kvHeads, causal, *a, normKind, eps,
        need("output_grad"));
    outputs.push_back(grads.dx);
    for (const ref::Tensor *g :
         {&grads.dw.norm1Weight, &grads.dw.norm1Bias, &grads.dw.wQ,
          &grads.dw.wK, &grads.dw.wV, &grads.dw.wO, &grads.dw.norm2Weight,
          &grads.dw.norm2Bias, &grads.dw.wIn, &grads.dw.wOut,
          &grads.dw.wGate})
      if (!g->data.empty())
        outputs.push_back(*g);
    return outputs;
  }
  case ManifestOp::Custom:
    break;
  }
  return Status::failure("no float64 reference for op 'custom'; run with "
                         "--no-check to time it only");
}

std::map<std::string, HostTensor>
bpt::rt::randomInputs(const Manifest &m, std::mt19937_64 &rng) {
  std::map<std::string, HostTensor> inputs;
  for (const ManifestBuffer &b : m.buffers) {
    if (b.role != BufferRole::Input)
      continue;
    HostTensor host(b.shape, toDType(b.dtype));
    host.fillUniform(rng, b.shape.size() == 2
                              ? 1.0 / std::sqrt(double(b.shape[0]))
                              : 1.0);
    inputs.emplace(b.name, std::move(host));
  }
  return inputs;
}

Status bpt::rt::consistentAttentionState(
    const Manifest &m, std::map<std::string, HostTensor> &inputs) {
  if (m.op != ManifestOp::AttentionGrad)
    return Status::success();
  for (const char *name : {"query", "key", "value", "output", "lse"})
    if (!inputs.count(name))
      return Status::failure(std::string("the manifest has no input buffer '") +
                             name + "'");
  const ref::Tensor query = inputs.at("query").toReference();
  ref::AttentionWithLSE forward = ref::attentionWithLSE(
      query, inputs.at("key").toReference(), inputs.at("value").toReference(),
      m.getBoolOption("causal").value_or(false), attentionScale(m, query));
  // Rounded to the buffers' types, as a forward kernel would store them.
  for (auto [name, tensor] : {std::pair<const char *, const ref::Tensor *>{
                                  "output", &forward.out},
                              {"lse", &forward.lse}}) {
    HostTensor &host = inputs.at(name);
    if (host.numElements() != int64_t(tensor->data.size()))
      return Status::failure(std::string("input buffer '") + name +
                             "' does not have the forward's shape");
    for (int64_t i = 0; i < host.numElements(); ++i)
      host.set(i, tensor->data[i]);
  }
  return Status::success();
}

Status
bpt::rt::plausibleAttentionState(const Manifest &m,
                                 std::map<std::string, HostTensor> &inputs) {
  if (m.op != ManifestOp::AttentionGrad)
    return Status::success();
  for (const char *name : {"key", "lse"})
    if (!inputs.count(name))
      return Status::failure(std::string("the manifest has no input buffer '") +
                             name + "'");
  HostTensor &lse = inputs.at("lse");
  const std::vector<int64_t> &rows = lse.shape(),
                             &keys = inputs.at("key").shape();
  if (rows.size() != 3 || keys.size() != 4)
    return Status::failure("lse is not [B, H, Sq] or key not [B, H, Skv, D]");
  const int64_t seqQ = rows[2], seqKV = keys[2];
  const bool causal = m.getBoolOption("causal").value_or(false);
  for (int64_t i = 0; i < lse.numElements(); ++i) {
    int64_t visible = ref::visibleKeys(i % seqQ, seqQ, seqKV, causal);
    lse.set(i, visible > 0 ? std::log(double(visible))
                           : -std::numeric_limits<double>::infinity());
  }
  return Status::success();
}

static Expected<CheckResult> checkKernelSetOrThrow(const CheckOptions &options);

Expected<CheckResult> bpt::rt::checkKernelSet(const CheckOptions &options) {
  // Host buffers (inputs, the float64 reference) may not fit: a clear
  // error, not std::terminate.
  try {
    return checkKernelSetOrThrow(options);
  } catch (const std::bad_alloc &) {
    return Status::failure("out of host memory for the inputs or the float64 "
                           "reference of '" +
                           options.manifestPath + "'");
  } catch (const std::length_error &) {
    return Status::failure("out of host memory for the inputs or the float64 "
                           "reference of '" +
                           options.manifestPath + "'");
  }
}

static Expected<CheckResult>
checkKernelSetOrThrow(const CheckOptions &options) {
  // The manifest and its PTX, checked before the driver is loaded.
  Expected<Manifest> manifest = loadKernelSet(options.manifestPath);
  if (!manifest)
    return manifest.status();
  std::string why;
  if (!Runtime::isAvailable(&why))
    return Status::failure("no GPU to run on: " + why);
  Expected<Runtime> runtime = Runtime::create(options.device);
  if (!runtime)
    return runtime.status();
  Expected<DeviceInfo> info = runtime->deviceInfo();
  if (!info)
    return info.status();
  if (Status s = checkChipRunsOn(manifest->chip, *info); !s)
    return s;
  const Json *tf32Option = jsonMember(manifest->options, "tf32");
  const bool tf32 =
      tf32Option && tf32Option->is_boolean() && tf32Option->get<bool>();
  Expected<Module> module = runtime->loadPTXFile(manifest->ptxPath());
  if (!module)
    return module.status();

  // Host data: inputs uniform in [-1, 1), matrices scaled by 1/sqrt(rows);
  // outputs and workspaces poisoned (0xFF bytes are NaN in every float type).
  CheckResult result;
  result.device = info->name + " (" + info->chip() + ", " +
                  std::to_string(info->multiprocessorCount) + " SMs)";
  std::mt19937_64 rng(options.seed);
  std::map<std::string, HostTensor> hostInputs = randomInputs(*manifest, rng);
  // Checked: the float64 forward's state; timed only: a cheap stand-in.
  if (Status s = options.check ? consistentAttentionState(*manifest, hostInputs)
                               : plausibleAttentionState(*manifest, hostInputs);
      !s)
    return s;
  // Free memory before the set's allocations (the module is loaded).
  Expected<DeviceInfo> before = runtime->deviceInfo();
  if (!before)
    return before.status();
  std::vector<DeviceBuffer> buffers;
  std::map<std::string, ref::Tensor> inputs;
  for (const ManifestBuffer &b : manifest->buffers) {
    Expected<DeviceBuffer> d = runtime->allocate(b.bytes);
    if (!d)
      return d.status();
    if (b.role == BufferRole::Input) {
      const HostTensor &host = hostInputs.at(b.name);
      if (Status s = d->copyFromHost(host.data(), host.numBytes()); !s)
        return s;
      inputs[b.name] = host.toReference();
    } else if (Status s = d->fill(0xFF); !s) {
      return s;
    }
    buffers.push_back(d.take());
  }

  // Tensor maps hold their buffers' addresses (plus their byte offsets), so
  // they come after the buffers and are freed before them. launchAll adds
  // each argument's byte offset to its buffer's pointer.
  Expected<std::vector<DeviceBuffer>> tensorMaps =
      runtime->createTensorMaps(*manifest, buffers);
  if (!tensorMaps)
    return tensorMaps.status();

  std::optional<Graph> graph;
  if (options.graph) {
    Expected<Graph> recorded = runtime->recordGraph([&](uint64_t stream) {
      return module->launchAll(*manifest, buffers, *tensorMaps, stream);
    });
    if (!recorded)
      return recorded.status();
    graph.emplace(recorded.take());
  }
  auto runAll = [&](int) {
    return graph ? graph->launch()
                 : module->launchAll(*manifest, buffers, *tensorMaps);
  };
  if (Status s = runAll(0); !s)
    return s;
  if (Status s = runtime->synchronize(); !s)
    return s;
  Expected<DeviceInfo> after = runtime->deviceInfo();
  if (!after)
    return after.status();
  result.memory.predictedBytes = predictedDeviceBytes(*manifest);
  result.memory.measuredBytes =
      before->freeMemoryBytes > after->freeMemoryBytes
          ? before->freeMemoryBytes - after->freeMemoryBytes
          : 0;

  if (options.check) {
    Expected<std::vector<ref::Tensor>> expected = reference(*manifest, inputs);
    if (!expected)
      return expected.status();
    size_t index = 0;
    for (size_t i = 0; i < manifest->buffers.size(); ++i) {
      const ManifestBuffer &b = manifest->buffers[i];
      if (b.role != BufferRole::Output)
        continue;
      if (index >= expected->size())
        return Status::failure("the reference has fewer outputs than the "
                               "manifest");
      if (!(b.shape == (*expected)[index].shape))
        return Status::failure("output '" + b.name +
                               "' does not have the shape of the "
                               "reference's output");
      // The whole buffer: an output written in row blocks by launches at
      // byte offsets must be covered by them, else the poison shows.
      HostTensor host(b.shape, toDType(b.dtype));
      if (Status s = buffers[i].copyToHost(host.data(), host.numBytes()); !s)
        return s;
      double tolerance = dtypeTolerance(host.dtype());
      if (tf32 && host.dtype() == DType::F32)
        tolerance = kTF32Tolerance;
      double error =
          outputError(host.toReference(), (*expected)[index], host.dtype());
      result.outputs.push_back({b.name, host.typeString(), error, tolerance,
                                error <= tolerance});
      ++index;
    }
    // Every output of the reference is compared (the manifest reader checks
    // this too): an output left unchecked must not read as a pass.
    if (index != expected->size())
      return Status::failure("the manifest has " + std::to_string(index) +
                             " outputs, the reference of op " +
                             manifestOpName(manifest->op) + " " +
                             std::to_string(expected->size()));
  }

  if (options.iterations > 0) {
    for (int i = 0; i < options.warmup; ++i)
      if (Status s = runAll(i); !s)
        return s;
    std::vector<double> times;
    for (int i = 0; i < options.iterations; ++i) {
      Expected<float> ms = runtime->timeLaunches(1, runAll);
      if (!ms)
        return ms.status();
      times.push_back(*ms);
    }
    std::sort(times.begin(), times.end());
    result.medianMs = times[times.size() / 2];
    result.minMs = times.front();
    result.flops = countFlops(*manifest);
  }
  return result;
}
