//===- KernelSetCheck.h - run a kernel set against the reference -*- C++ -*-//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// What bpt-run does, as a library (plain C++, no LLVM): load a kernel set
// (manifest + PTX), run it on seeded random inputs with poisoned outputs,
// compare every output with the float64 reference, and time it.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_RUNTIME_KERNELSETCHECK_H
#define BPT_RUNTIME_KERNELSETCHECK_H

#include "bpt/Reference/HostTensor.h"
#include "bpt/Runtime/Manifest.h"
#include "bpt/Runtime/Runtime.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace bpt::rt {

struct CheckOptions {
  std::string manifestPath;
  int device = 0;
  uint64_t seed = 1;
  /// Compare with the float64 reference.
  bool check = true;
  /// Timed runs of the whole launch sequence (0: no timing), after warm-up.
  int iterations = 20;
  int warmup = 3;
  /// Every run (the checked one too) replays one CUDA graph of the launch
  /// sequence, recorded once, instead of launching the kernels one by one.
  bool graph = false;
};

/// A kernel set's device memory, predicted from its manifest and measured.
struct DeviceMemory {
  uint64_t predictedBytes = 0, measuredBytes = 0;
  /// The prediction is checked from this size on: below it, the driver's
  /// 2 MiB allocation granularity and its per-launch reservations are a
  /// large part of a small set's memory.
  static constexpr uint64_t kCheckedFrom = uint64_t(256) << 20;
  static constexpr double kTolerance = 0.10;
  bool checked() const { return predictedBytes >= kCheckedFrom; }
  /// measured / predicted − 1.
  double deviation() const {
    return predictedBytes ? double(measuredBytes) / double(predictedBytes) - 1
                          : 0.0;
  }
  bool withinTolerance() const {
    return !checked() || std::abs(deviation()) <= kTolerance;
  }
};

/// What `manifest`'s set allocates on the device: its buffers' bytes and a
/// 128-byte descriptor per tensor map.
uint64_t predictedDeviceBytes(const Manifest &manifest);

struct CheckResult {
  std::string device;
  struct Output {
    std::string name, type;
    double relativeError, tolerance;
    bool passed;
  };
  std::vector<Output> outputs;
  /// Median and minimum milliseconds of one run of every launch.
  double medianMs = 0, minMs = 0;
  /// Floating-point operations of one run (0 if unknown).
  double flops = 0;
  /// Device memory: what the manifest says the set needs (every buffer,
  /// inputs included, and the tensor maps), and the drop of the driver's
  /// free memory from before the buffers were allocated to after the first
  /// run finished (the set's allocations and what its launches reserve).
  DeviceMemory memory;
  /// Whether the outputs passed and, where it is checked, the memory
  /// prediction held.
  bool passed() const;
};

/// Runs the check; fails with a message a person can act on (no GPU, bad
/// manifest, JIT error, a kernel that faulted, no reference for the op).
Expected<CheckResult> checkKernelSet(const CheckOptions &options);

/// Floating-point operations of one run of `manifest`'s op (the attention
/// backward counts as 2.5 forwards).
double countFlops(const Manifest &manifest);

/// bpt-run's inputs: uniform in [-1, 1), matrices (rank 2) scaled by
/// 1/sqrt(rows), rounded to each buffer's type; by buffer name.
std::map<std::string, HostTensor> randomInputs(const Manifest &manifest,
                                               std::mt19937_64 &rng);

/// For an attention_grad set, replaces the random `output` and `lse` inputs
/// with the float64 forward of the random query, key and value (rounded to
/// the buffers' types): the gradients are only defined for a consistent
/// forward state. Other ops are left as they are.
Status consistentAttentionState(const Manifest &manifest,
                                std::map<std::string, HostTensor> &inputs);

/// For an attention_grad set that is timed, not checked: the float64
/// forward costs minutes at long sequences (B·H·Sq·Skv·D multiply-adds on
/// the host), so lse becomes each row's log of its visible keys' count
/// (the log-sum-exp of scores near 0, as random inputs give: P then sums
/// to about 1 a row, as in training; -inf for a causal row that sees no
/// key) and the output keeps its random values. Other ops are left as
/// they are.
Status plausibleAttentionState(const Manifest &manifest,
                               std::map<std::string, HostTensor> &inputs);

} // namespace bpt::rt

#endif // BPT_RUNTIME_KERNELSETCHECK_H
