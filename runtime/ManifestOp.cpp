//===- ManifestOp.cpp - what a manifest's op needs of its buffers ---------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The reader (Manifest.cpp) checks a manifest's syntax, types and limits;
// this checks that its buffers and options are what its op computes, so that
// bpt-run's float64 reference never meets a shape it cannot take (it aborts
// on one) and no output can be skipped by the check: an attention whose only
// output became a workspace, a query of another rank with the same byte
// count, `heads: 0` or an unknown option are errors that name the field.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/Manifest.h"

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

using namespace bpt::rt;

namespace {

/// "[2, 8, 1024, 64]".
std::string formatShape(const std::vector<int64_t> &shape) {
  std::string result = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    result += (i ? ", " : "") + std::to_string(shape[i]);
  return result + "]";
}

bool isAttentionFamily(ManifestOp op) {
  return op == ManifestOp::Attention || op == ManifestOp::AttentionLSE ||
         op == ManifestOp::AttentionGrad || op == ManifestOp::AttentionBackward;
}

bool isGatedActivation(const std::string &name) {
  return name == "swiglu" || name == "geglu";
}

/// One option a manifest may carry: its type, and which ops read it.
enum class OptionType { Bool, PositiveNumber, PositiveInteger, Count, String };

struct OptionRule {
  const char *key;
  OptionType type;
  /// Ops whose reference (or description) uses the option; none: every op.
  std::vector<ManifestOp> ops;
  /// The values a String option takes.
  std::vector<const char *> choices;
};

const std::vector<OptionRule> &optionRules() {
  using Op = ManifestOp;
  const std::vector<Op> attention = {Op::Attention, Op::AttentionLSE,
                                     Op::AttentionGrad, Op::AttentionBackward};
  static const std::vector<OptionRule> rules = {
      {"causal",
       OptionType::Bool,
       {Op::Attention, Op::AttentionLSE, Op::AttentionGrad,
        Op::AttentionBackward, Op::Block, Op::BlockBackward},
       {}},
      {"scale", OptionType::PositiveNumber, attention, {}},
      {"activation",
       OptionType::String,
       {Op::FFN, Op::Block, Op::BlockBackward},
       {"gelu", "gelu_tanh", "relu", "silu", "swiglu", "geglu"}},
      {"norm",
       OptionType::String,
       {Op::Block, Op::BlockBackward},
       {"layer_norm", "rms_norm"}},
      {"epsilon",
       OptionType::PositiveNumber,
       {Op::Block, Op::BlockBackward},
       {}},
      {"heads",
       OptionType::PositiveInteger,
       {Op::Block, Op::BlockBackward},
       {}},
      {"kv_heads",
       OptionType::PositiveInteger,
       {Op::Block, Op::BlockBackward},
       {}},
      // How the kernels were compiled: recorded, not read by the check.
      {"q_block", OptionType::PositiveInteger, {}, {}},
      {"kv_block", OptionType::PositiveInteger, {}, {}},
      {"threads", OptionType::PositiveInteger, {}, {}},
      {"fuse", OptionType::Bool, {}, {}},
      {"recompute_projections", OptionType::Bool, {}, {}},
      {"gemm_tiles", OptionType::Bool, {}, {}},
      {"tensor_cores", OptionType::Bool, {}, {}},
      {"tf32", OptionType::Bool, {}, {}},
      {"sm80_q_block", OptionType::Count, {}, {}},
      {"sm80_kv_block", OptionType::Count, {}, {}},
      {"sm80_stages", OptionType::Count, {}, {}},
      {"sm80_gemm_block_n", OptionType::Count, {}, {}},
      {"sm80_grad_q_block", OptionType::Count, {}, {}},
      {"sm80_grad_kv_block", OptionType::Count, {}, {}},
      {"sm80_grad_stages", OptionType::Count, {}, {}},
      {"sm90_chunk_rows", OptionType::Count, {}, {}},
      {"sm90_kv_block", OptionType::Count, {}, {}},
      {"sm90_stages", OptionType::Count, {}, {}},
      {"sm90_gemm_block_n", OptionType::Count, {}, {}},
      {"sm90_gemm_stages", OptionType::Count, {}, {}},
      {"sm90_gemm_split", OptionType::Count, {}, {}},
  };
  return rules;
}

/// Checks one manifest against its op, stopping at the first problem.
class OpChecker {
public:
  explicit OpChecker(const Manifest &manifest) : m_(manifest) {}

  Status check() {
    if (!checkOptions())
      return failure();
    // A custom set has no reference: any buffers do (bpt-run refuses to
    // check it and only times it).
    if (m_.op == ManifestOp::Custom)
      return Status::success();
    bool ok = true;
    if (isAttentionFamily(m_.op))
      ok = checkAttention();
    else if (m_.op == ManifestOp::FFN)
      ok = checkFFN();
    else
      ok = checkBlock();
    if (!ok || !checkNoOtherInputs() || !checkOutputs())
      return failure();
    return Status::success();
  }

private:
  Status failure() const { return Status::failure(error_); }

  bool fail(const std::string &path, const std::string &message) {
    error_ = path + ": " + message;
    return false;
  }

  std::string opName() const { return manifestOpName(m_.op); }

  std::string describe(size_t i) const {
    return "buffers[" + std::to_string(i) + "] (\"" + m_.buffers[i].name +
           "\")";
  }

  //===--------------------------------------------------------------------===//
  // Options
  //===--------------------------------------------------------------------===//

  bool checkOptions() {
    for (const auto &[key, value] : m_.options.items()) {
      std::string path = "options." + key;
      const OptionRule *rule = nullptr;
      for (const OptionRule &r : optionRules())
        if (key == r.key)
          rule = &r;
      if (!rule) {
        std::string known;
        for (const OptionRule &r : optionRules())
          known += std::string(known.empty() ? "" : ", ") + r.key;
        return fail(path, "unknown option (expected one of " + known + ")");
      }
      if (!rule->ops.empty()) {
        bool applies = false;
        for (ManifestOp op : rule->ops)
          applies = applies || op == m_.op;
        if (!applies)
          return fail(path, "does not apply to op " + opName());
      }
      if (!checkOptionValue(*rule, value, path))
        return false;
    }
    if (m_.op == ManifestOp::Block || m_.op == ManifestOp::BlockBackward) {
      for (const char *key : {"heads", "kv_heads"})
        if (!m_.hasOption(key))
          return fail(std::string("options.") + key,
                      "missing (op " + opName() +
                          " needs heads and kv_heads)");
      int64_t heads = *m_.getIntOption("heads");
      int64_t kvHeads = *m_.getIntOption("kv_heads");
      if (heads % kvHeads != 0)
        return fail("options.heads", std::to_string(heads) +
                                         " is not a multiple of kv_heads (" +
                                         std::to_string(kvHeads) + ")");
    }
    return true;
  }

  bool checkOptionValue(const OptionRule &rule, const Json &value,
                        const std::string &path) {
    std::string shown = jsonText(value);
    switch (rule.type) {
    case OptionType::Bool:
      if (!value.is_boolean())
        return fail(path, "expected true or false, got " + shown);
      return true;
    case OptionType::PositiveNumber: {
      if (!value.is_number())
        return fail(path, "expected a positive number, got " + shown);
      double number = value.get<double>();
      if (!std::isfinite(number) || number <= 0)
        return fail(path, "expected a positive number, got " + shown);
      return true;
    }
    case OptionType::PositiveInteger:
    case OptionType::Count: {
      std::optional<int64_t> integer = jsonInteger(value);
      int64_t minimum = rule.type == OptionType::Count ? 0 : 1;
      // Tilings and head counts are small; 2^31 keeps products in range.
      if (!integer || *integer < minimum || *integer > INT32_MAX)
        return fail(path, std::string("expected ") +
                              (minimum ? "a positive" : "a non-negative") +
                              " 32-bit integer, got " + shown);
      return true;
    }
    case OptionType::String: {
      if (value.is_string())
        for (const char *choice : rule.choices)
          if (value.get_ref<const std::string &>() == choice)
            return true;
      std::string choices;
      for (const char *choice : rule.choices)
        choices += std::string(choices.empty() ? "" : ", ") + choice;
      return fail(path, "expected one of " + choices + ", got " + shown);
    }
    }
    return true;
  }

  //===--------------------------------------------------------------------===//
  // Buffers
  //===--------------------------------------------------------------------===//

  /// The index of the input named `name`; an error if it is missing or has
  /// another role.
  std::optional<size_t> input(const char *name) {
    for (size_t i = 0; i < m_.buffers.size(); ++i) {
      if (m_.buffers[i].name != name)
        continue;
      if (m_.buffers[i].role != BufferRole::Input) {
        fail(describe(i) + ".role", std::string("is ") +
                                        bufferRoleName(m_.buffers[i].role) +
                                        ", but op " + opName() + " reads \"" +
                                        name + "\" as an input");
        return std::nullopt;
      }
      used_.push_back(i);
      return i;
    }
    fail("buffers",
         "op " + opName() + " needs an input buffer named \"" + name + "\"");
    return std::nullopt;
  }

  /// Input `name` if present (checked as input()), else nullopt without an
  /// error; `present` says which.
  std::optional<size_t> optionalInput(const char *name, bool &present) {
    present = m_.findBuffer(name) != nullptr;
    return present ? input(name) : std::nullopt;
  }

  bool expectAbsent(const char *name, const std::string &why) {
    for (size_t i = 0; i < m_.buffers.size(); ++i)
      if (m_.buffers[i].name == name)
        return fail(describe(i), "unexpected: " + why);
    return true;
  }

  bool expectShape(size_t i, const std::vector<int64_t> &shape,
                   const char *layout) {
    if (m_.buffers[i].shape == shape)
      return true;
    return fail(describe(i) + ".shape",
                formatShape(m_.buffers[i].shape) + " is not " + layout + " = " +
                    formatShape(shape) + " for op " + opName());
  }

  bool expectRank(size_t i, size_t rank, const char *layout) {
    if (m_.buffers[i].shape.size() == rank)
      return true;
    return fail(describe(i) + ".shape",
                formatShape(m_.buffers[i].shape) + " has rank " +
                    std::to_string(m_.buffers[i].shape.size()) + ", but op " +
                    opName() + " needs " + layout);
  }

  /// Every tensor of the op but the lse has the dtype of its first input.
  bool expectDType(size_t i, ElementType dtype) {
    if (m_.buffers[i].dtype == dtype)
      return true;
    return fail(describe(i) + ".dtype",
                std::string(elementTypeName(m_.buffers[i].dtype)) +
                    ", but op " + opName() + " needs " +
                    elementTypeName(dtype) + " here");
  }

  /// An expected output, in order; `name` (if given) is its buffer's name.
  void addOutput(std::vector<int64_t> shape, ElementType dtype,
                 const char *what, std::string name = "") {
    outputs_.push_back({std::move(shape), dtype, what, std::move(name)});
  }

  bool checkAttention() {
    bool grad = m_.op == ManifestOp::AttentionGrad;
    bool backward = m_.op == ManifestOp::AttentionBackward;
    std::optional<size_t> q = input("query"), k, v;
    if (!q || !(k = input("key")) || !(v = input("value")))
      return false;
    if (!expectRank(*q, 4, "[B, Hq, Sq, D]") ||
        !expectRank(*k, 4, "[B, Hkv, Skv, D]"))
      return false;
    const std::vector<int64_t> &qs = m_.buffers[*q].shape;
    const std::vector<int64_t> &ks = m_.buffers[*k].shape;
    ElementType dtype = m_.buffers[*q].dtype;
    if (!expectShape(*k, {qs[0], ks[1], ks[2], qs[3]},
                     "[B, Hkv, Skv, D] (B and D of query)") ||
        !expectShape(*v, ks, "the shape of key") || !expectDType(*k, dtype) ||
        !expectDType(*v, dtype))
      return false;
    if (qs[1] % ks[1] != 0)
      return fail(describe(*q) + ".shape",
                  "query heads (" + std::to_string(qs[1]) +
                      ") are not a multiple of key/value heads (" +
                      std::to_string(ks[1]) + ")");
    std::vector<int64_t> lseShape = {qs[0], qs[1], qs[2]};
    if (grad) {
      std::optional<size_t> o = input("output"), dO, lse;
      if (!o || !(dO = input("output_grad")) || !(lse = input("lse")))
        return false;
      if (!expectShape(*o, qs, "the shape of query") ||
          !expectShape(*dO, qs, "the shape of query") ||
          !expectShape(*lse, lseShape, "[B, Hq, Sq]") ||
          !expectDType(*o, dtype) || !expectDType(*dO, dtype) ||
          !expectDType(*lse, ElementType::F32))
        return false;
    }
    if (backward) {
      std::optional<size_t> dO = input("output_grad");
      if (!dO || !expectShape(*dO, qs, "the shape of query") ||
          !expectDType(*dO, dtype))
        return false;
    }
    if (!grad)
      addOutput(qs, dtype, "the attention's output, shaped as query");
    if (m_.op == ManifestOp::AttentionLSE || backward)
      addOutput(lseShape, ElementType::F32, "the log-sum-exp, [B, Hq, Sq]");
    if (grad || backward) {
      addOutput(qs, dtype, "the query gradient, shaped as query");
      addOutput(ks, dtype, "the key gradient, shaped as key");
      addOutput(ks, dtype, "the value gradient, shaped as value");
    }
    return true;
  }

  /// w_gate: present exactly when the activation is gated.
  bool checkGate(int64_t h, int64_t f, ElementType dtype) {
    std::string activation = m_.getStringOption("activation").value_or("gelu");
    bool present = false;
    std::optional<size_t> gate = optionalInput("w_gate", present);
    if (present && !gate)
      return false;
    if (isGatedActivation(activation) && !present)
      return fail("buffers", "activation " + activation + " is gated: op " +
                                 opName() +
                                 " needs an input buffer named \"w_gate\"");
    if (!isGatedActivation(activation) && present)
      return fail(describe(*gate), "unexpected: activation " + activation +
                                       " is not gated (only swiglu and geglu "
                                       "take w_gate)");
    return !gate || (expectShape(*gate, {h, f}, "[H, F] (the shape of w_in)") &&
                     expectDType(*gate, dtype));
  }

  bool checkFFN() {
    std::optional<size_t> x = input("input"), wIn, wOut;
    if (!x || !(wIn = input("w_in")) || !(wOut = input("w_out")))
      return false;
    if (!expectRank(*wIn, 2, "[H, F]"))
      return false;
    const std::vector<int64_t> &xs = m_.buffers[*x].shape;
    ElementType dtype = m_.buffers[*x].dtype;
    int64_t h = xs.back(), f = m_.buffers[*wIn].shape[1];
    if (!expectShape(*wIn, {h, f}, "[H, F] (H: input's last dimension)") ||
        !expectShape(*wOut, {f, h}, "[F, H]") || !expectDType(*wIn, dtype) ||
        !expectDType(*wOut, dtype) || !checkGate(h, f, dtype))
      return false;
    addOutput(xs, dtype, "the FFN's output, shaped as input");
    return true;
  }

  bool checkBlock() {
    std::optional<size_t> x = input("input");
    if (!x || !expectRank(*x, 3, "[B, S, H]"))
      return false;
    const std::vector<int64_t> &xs = m_.buffers[*x].shape;
    ElementType dtype = m_.buffers[*x].dtype;
    int64_t h = xs[2];
    int64_t heads = *m_.getIntOption("heads");
    int64_t kvHeads = *m_.getIntOption("kv_heads");
    std::optional<size_t> wQ = input("w_q");
    if (!wQ || !expectRank(*wQ, 2, "[H, heads * D]"))
      return false;
    int64_t width = m_.buffers[*wQ].shape[1];
    if (width % heads != 0)
      return fail(describe(*wQ) + ".shape",
                  "its width " + std::to_string(width) +
                      " is not a multiple of options.heads (" +
                      std::to_string(heads) + ")");
    int64_t d = width / heads;
    bool layerNorm =
        m_.getStringOption("norm").value_or("rms_norm") == "layer_norm";
    struct Weight {
      const char *name;
      std::vector<int64_t> shape;
      const char *layout;
    };
    std::vector<Weight> weights = {
        {"norm1_weight", {h}, "[H]"},
        {"w_q", {h, heads * d}, "[H, heads * D]"},
        {"w_k", {h, kvHeads * d}, "[H, kv_heads * D]"},
        {"w_v", {h, kvHeads * d}, "[H, kv_heads * D]"},
        {"w_o", {heads * d, h}, "[heads * D, H]"},
        {"norm2_weight", {h}, "[H]"}};
    if (layerNorm) {
      weights.push_back({"norm1_bias", {h}, "[H]"});
      weights.push_back({"norm2_bias", {h}, "[H]"});
    } else {
      for (const char *bias : {"norm1_bias", "norm2_bias"})
        if (!expectAbsent(bias, "norm rms_norm takes no bias"))
          return false;
    }
    for (const Weight &w : weights) {
      std::optional<size_t> i = input(w.name);
      if (!i || !expectShape(*i, w.shape, w.layout) || !expectDType(*i, dtype))
        return false;
    }
    std::optional<size_t> wIn = input("w_in"), wOut;
    if (!wIn || !(wOut = input("w_out")) || !expectRank(*wIn, 2, "[H, F]"))
      return false;
    int64_t f = m_.buffers[*wIn].shape[1];
    if (!expectShape(*wIn, {h, f}, "[H, F]") ||
        !expectShape(*wOut, {f, h}, "[F, H]") || !expectDType(*wIn, dtype) ||
        !expectDType(*wOut, dtype) || !checkGate(h, f, dtype))
      return false;
    addOutput(xs, dtype, "the block's output, shaped as input",
              m_.op == ManifestOp::BlockBackward ? "output" : "");
    if (m_.op == ManifestOp::BlockBackward)
      return checkBlockBackward(xs, dtype, heads);
    return true;
  }

  /// block_backward: output_grad shaped as input; the outputs after the
  /// block's output are input_grad, then one "<weight>_grad" per weight
  /// input in the forward's order, each of its weight's shape and dtype;
  /// the saved lse ([B, heads, S] f32) is held by a workspace.
  bool checkBlockBackward(const std::vector<int64_t> &xs, ElementType dtype,
                          int64_t heads) {
    std::optional<size_t> dy = input("output_grad");
    if (!dy || !expectShape(*dy, xs, "the shape of input") ||
        !expectDType(*dy, dtype))
      return false;
    addOutput(xs, dtype, "the input's gradient, shaped as input",
              "input_grad");
    for (const char *name :
         {"norm1_weight", "norm1_bias", "w_q", "w_k", "w_v", "w_o",
          "norm2_weight", "norm2_bias", "w_in", "w_out", "w_gate"}) {
      const ManifestBuffer *weight = m_.findBuffer(name);
      if (!weight)
        continue; // absent where the block has no such weight (checked)
      addOutput(weight->shape, weight->dtype,
                "a weight's gradient, shaped as the weight",
                std::string(name) + "_grad");
    }
    int64_t lseBytes = xs[0] * heads * xs[1] * 4;
    for (const ManifestBuffer &b : m_.buffers)
      if (b.role == BufferRole::Workspace)
        for (const auto &[name, bytes] : b.holds)
          if (name == "lse") {
            if (bytes != lseBytes)
              return fail("buffers", "the workspace \"" + b.name +
                                         "\" holds an lse of " +
                                         std::to_string(bytes) +
                                         " bytes, not [B, heads, S] f32 = " +
                                         std::to_string(lseBytes));
            return true;
          }
    return fail("buffers", "op " + opName() +
                               " saves the attention's lse in a workspace: "
                               "none holds \"lse\"");
  }

  /// Inputs the op does not read would get random data that nothing uses:
  /// most likely a misnamed buffer.
  bool checkNoOtherInputs() {
    for (size_t i = 0; i < m_.buffers.size(); ++i) {
      if (m_.buffers[i].role != BufferRole::Input)
        continue;
      bool known = false;
      for (size_t u : used_)
        known = known || u == i;
      if (!known)
        return fail(describe(i),
                    "op " + opName() + " reads no input of this name");
    }
    return true;
  }

  /// The outputs, in order, are the reference's: their number, shapes and
  /// dtypes. Without this an op whose output was relabelled a workspace
  /// would be checked against nothing and pass.
  bool checkOutputs() {
    std::vector<size_t> outputs;
    for (size_t i = 0; i < m_.buffers.size(); ++i)
      if (m_.buffers[i].role == BufferRole::Output)
        outputs.push_back(i);
    if (outputs.size() != outputs_.size()) {
      std::string expected;
      for (const ExpectedOutput &o : outputs_)
        expected += std::string(expected.empty() ? "" : "; ") + o.what;
      return fail("buffers", "op " + opName() + " has " +
                                 std::to_string(outputs_.size()) +
                                 " output(s) (" + expected + "), but " +
                                 std::to_string(outputs.size()) +
                                 " buffer(s) have role output");
    }
    for (size_t n = 0; n < outputs.size(); ++n) {
      const ExpectedOutput &o = outputs_[n];
      std::string layout = std::string("output ") + std::to_string(n) + " of " +
                           opName() + " (" + o.what + ")";
      if (!o.name.empty() && m_.buffers[outputs[n]].name != o.name)
        return fail(describe(outputs[n]) + ".name",
                    "output " + std::to_string(n) + " of " + opName() +
                        " must be named \"" + o.name + "\" (" + o.what + ")");
      if (!expectShape(outputs[n], o.shape, layout.c_str()) ||
          !expectDType(outputs[n], o.dtype))
        return false;
    }
    return true;
  }

  struct ExpectedOutput {
    std::vector<int64_t> shape;
    ElementType dtype;
    const char *what;
    /// Empty: any name (the older ops' outputs are checked by position).
    std::string name;
  };

  const Manifest &m_;
  std::vector<size_t> used_;
  std::vector<ExpectedOutput> outputs_;
  std::string error_;
};

} // namespace

Status bpt::rt::checkManifestOp(const Manifest &manifest) {
  return OpChecker(manifest).check();
}
