//===- Runtime.h - C++ wrapper of the CUDA driver runtime -------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// RAII classes over the C API of bpt-c/Runtime.h: Runtime (driver, device and
// primary context), Module (loaded PTX), DeviceBuffer (device memory, also
// holding TMA tensor maps). Plain
// C++17 without LLVM and without exceptions: fallible calls return Status or
// Expected<T>, which carry the runtime's error message.
//
// Lifetimes: a Runtime must outlive its modules and buffers. Moving a Runtime
// keeps them valid (the handle moves, the context stays).
//
//===----------------------------------------------------------------------===//

#ifndef BPT_RUNTIME_RUNTIME_H
#define BPT_RUNTIME_RUNTIME_H

#include "bpt-c/Runtime.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bpt::rt {

class Manifest;
struct ManifestTensorMap;

/// Success, or a failure with a message a person can act on.
class [[nodiscard]] Status {
public:
  /// A success.
  static Status success() { return Status(); }
  /// A failure with `message` (which should not be empty).
  static Status failure(std::string message) {
    Status status;
    status.failed_ = true;
    status.message_ = std::move(message);
    return status;
  }
  /// The failure bptRuntimeLastError() describes, if `code` is not 0.
  static Status fromCode(int code) {
    return code == bptRuntimeSuccess ? success()
                                     : failure(bptRuntimeLastError());
  }

  /// Whether this is a success.
  bool ok() const { return !failed_; }
  /// True on success, so `if (Status s = f(); !s)` reads as "if it failed".
  explicit operator bool() const { return ok(); }
  /// The failure's message; empty on success.
  const std::string &message() const { return message_; }

private:
  Status() = default;
  bool failed_ = false;
  std::string message_;
};

/// A value of type T, or the message of the failure that prevented it.
template <typename T> class [[nodiscard]] Expected {
public:
  /// A success holding `value`.
  Expected(T value) : value_(std::move(value)) {}
  /// A failure; `status` must not be a success.
  Expected(Status status) : message_(status.message()) {
    if (message_.empty())
      message_ = "unknown error (an Expected was built from a success)";
  }

  /// Whether a value is present.
  bool ok() const { return value_.has_value(); }
  /// Whether a value is present.
  explicit operator bool() const { return ok(); }
  /// The failure's message; empty on success.
  const std::string &error() const { return message_; }
  /// The failure as a Status (a success when a value is present).
  Status status() const {
    return ok() ? Status::success() : Status::failure(message_);
  }

  /// The value; only on success.
  T &operator*() { return *value_; }
  /// The value; only on success.
  const T &operator*() const { return *value_; }
  /// The value's members; only on success.
  T *operator->() { return &*value_; }
  /// The value's members; only on success.
  const T *operator->() const { return &*value_; }
  /// Moves the value out; only on success.
  T take() { return std::move(*value_); }

private:
  std::optional<T> value_;
  std::string message_;
};

/// Grid or block dimensions of a launch.
struct Dim3 {
  uint32_t x = 1;
  uint32_t y = 1;
  uint32_t z = 1;
  /// x·y·z.
  uint64_t count() const { return uint64_t(x) * y * z; }
};

/// The runtime's device, as bptDeviceInfo, with a std::string name.
struct DeviceInfo {
  /// e.g. "NVIDIA H100 80GB HBM3".
  std::string name;
  /// The device index.
  int ordinal = 0;
  /// Compute capability major and minor (9 and 0 for sm_90).
  int computeCapabilityMajor = 0;
  /// See computeCapabilityMajor.
  int computeCapabilityMinor = 0;
  /// Streaming multiprocessors.
  int multiprocessorCount = 0;
  /// The most shared memory a block may use once a kernel opts in, in bytes.
  int maxSharedMemoryPerBlockOptin = 0;
  /// The driver's CUDA version, e.g. 13000.
  int driverVersion = 0;
  /// Device memory in bytes.
  uint64_t totalMemoryBytes = 0;
  /// Device memory free when the info was read, in bytes.
  uint64_t freeMemoryBytes = 0;

  /// "sm_90" (without an architecture-specific suffix).
  std::string chip() const;
};

/// Whether PTX generated for `chip` ("sm_90a", "sm_80", ...) can run on
/// `device`: an "a" chip only on its exact compute capability, a plain one on
/// that capability or a newer one. The failure says why not.
Status checkChipRunsOn(const std::string &chip, const DeviceInfo &device);

class Runtime;

/// Device memory, freed when the buffer is destroyed. Move-only.
class DeviceBuffer {
public:
  /// An empty buffer (no memory).
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer &&other) noexcept;
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  ~DeviceBuffer();

  /// The device address (0 for an empty buffer).
  uint64_t pointer() const { return pointer_; }
  /// The size in bytes.
  size_t size() const { return size_; }

  /// Copies `bytes` (at most size()) from host memory `source`.
  Status copyFromHost(const void *source, size_t bytes);
  /// Copies `bytes` (at most size()) into host memory `destination`.
  Status copyToHost(void *destination, size_t bytes) const;
  /// Sets every byte to `value`.
  Status fill(uint8_t value);
  /// Frees the memory now, reporting a failure (the destructor cannot).
  Status release();

private:
  friend class Runtime;
  DeviceBuffer(bptRuntime runtime, uint64_t pointer, size_t size)
      : runtime_(runtime), pointer_(pointer), size_(size) {}

  bptRuntime runtime_ = {nullptr};
  uint64_t pointer_ = 0;
  size_t size_ = 0;
};

/// Kernel sets read and write their buffers with 16-byte accesses (TMA, and
/// the portable launches' vectors): fails unless there is one pointer per
/// buffer of `manifest` and each is a non-null multiple of 16 (a view into
/// the middle of a tensor may not be).
Status checkBufferPointers(const Manifest &manifest,
                           const std::vector<uint64_t> &bufferPointers);

/// Loaded PTX. Move-only; unloaded when destroyed.
class Module {
public:
  Module(Module &&other) noexcept;
  Module &operator=(Module &&other) noexcept;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;
  ~Module();

  /// The C handle.
  bptModule handle() const { return module_; }
  /// The JIT compiler's information log (may be empty).
  std::string infoLog() const { return bptModuleGetInfoLog(module_); }

  /// Queues `kernel` with the given configuration on `stream` (a CUstream
  /// of the primary context as an integer; 0: the default stream); each
  /// argument is one device pointer. See bptModuleLaunchOnStream().
  /// `flags`: BPT_LAUNCH_* (bptModuleLaunchWithFlags()).
  Status launch(const std::string &kernel, Dim3 grid, Dim3 block,
                uint32_t dynamicSharedMemoryBytes,
                const std::vector<uint64_t> &args, uint64_t stream = 0,
                uint32_t flags = 0);

  /// Queues every launch of `manifest`, in order; `bufferPointers[i]` is the
  /// device address of the manifest's buffers[i] (an argument's byte offset
  /// is added to it), `tensorMapPointers[i]` that of its tensorMaps[i] (see
  /// Runtime::createTensorMaps()). Fails, launching nothing, where
  /// checkBufferPointers() does. On `stream` as launch() says; launches
  /// the manifest marks `dependent` take BPT_LAUNCH_DEPENDENT.
  Status launchAll(const Manifest &manifest,
                   const std::vector<uint64_t> &bufferPointers,
                   const std::vector<uint64_t> &tensorMapPointers = {},
                   uint64_t stream = 0);

  /// As above, after checking that each of `buffers` is at least as large as
  /// the manifest's buffer of the same index.
  Status launchAll(const Manifest &manifest,
                   const std::vector<DeviceBuffer> &buffers,
                   const std::vector<DeviceBuffer> &tensorMaps = {},
                   uint64_t stream = 0);

private:
  friend class Runtime;
  explicit Module(bptModule module) : module_(module) {}

  bptModule module_ = {nullptr};
};

/// Launches recorded once and replayed as one CUDA graph (see
/// bptGraphBeginRecording()). Move-only; destroyed with its graph.
class Graph {
public:
  Graph(Graph &&other) noexcept;
  Graph &operator=(Graph &&other) noexcept;
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;
  ~Graph();

  /// Queues the recorded launches on `stream` (0: the default stream).
  Status launch(uint64_t stream = 0);

private:
  friend class Runtime;
  explicit Graph(bptGraph graph) : graph_(graph) {}

  bptGraph graph_ = {nullptr};
};

/// The driver, one device and its primary context. Move-only; releases the
/// context when destroyed.
class Runtime {
public:
  /// Whether a driver and a device can be found; `message`, if given,
  /// receives a description of the devices or the reason there are none.
  static bool isAvailable(std::string *message = nullptr);

  /// Opens device `device`.
  static Expected<Runtime> create(int device = 0);

  Runtime(Runtime &&other) noexcept;
  Runtime &operator=(Runtime &&other) noexcept;
  Runtime(const Runtime &) = delete;
  Runtime &operator=(const Runtime &) = delete;
  ~Runtime();

  /// The C handle.
  bptRuntime handle() const { return runtime_; }

  /// The device's properties (free memory read now).
  Expected<DeviceInfo> deviceInfo() const;

  /// Allocates `bytes` (> 0) of device memory.
  Expected<DeviceBuffer> allocate(size_t bytes);

  /// Encodes a TMA tensor map of the row-major tensor at `globalAddress`
  /// (dimensions outermost first) into device memory, whose pointer() is the
  /// kernel's parameter; see bptRuntimeCreateTensorMap().
  Expected<DeviceBuffer>
  createTensorMap(uint64_t globalAddress, const std::string &dtype,
                  const std::vector<int64_t> &shape,
                  const std::vector<int64_t> &box, int swizzleBytes = 0,
                  int l2PromotionBytes = 0, bool oobNaN = false);
  /// A manifest's tensor map over its buffer at `bufferPointer`: the tensor
  /// starts at `bufferPointer` plus the map's byte offset.
  Expected<DeviceBuffer> createTensorMap(const ManifestTensorMap &map,
                                         uint64_t bufferPointer);
  /// Every tensor map of `manifest`, in order; `bufferPointers[i]` is the
  /// device address of the manifest's buffers[i]. The maps hold those
  /// addresses: rebuild them when a buffer moves.
  Expected<std::vector<DeviceBuffer>>
  createTensorMaps(const Manifest &manifest,
                   const std::vector<uint64_t> &bufferPointers);
  /// As above, over `buffers`.
  Expected<std::vector<DeviceBuffer>>
  createTensorMaps(const Manifest &manifest,
                   const std::vector<DeviceBuffer> &buffers);

  /// Compiles PTX text for the device.
  Expected<Module> loadPTX(const std::string &ptx);
  /// Reads a PTX file and compiles it for the device.
  Expected<Module> loadPTXFile(const std::string &path);

  /// Waits for all queued work; reports kernels that failed while running.
  Status synchronize();

  /// Records what `body(stream)` queues on `stream` (launches only: nothing
  /// that waits for the device) as a graph. A failing body's message is
  /// returned, and nothing is recorded.
  Expected<Graph> recordGraph(const std::function<Status(uint64_t)> &body);

  /// Calls `body(i)` for i = 0 .. iterations-1 between two CUDA events and
  /// returns the GPU milliseconds between them (all iterations together).
  /// A failing body stops the timing and its message is returned.
  Expected<float> timeLaunches(int iterations,
                               const std::function<Status(int)> &body);

private:
  explicit Runtime(bptRuntime runtime) : runtime_(runtime) {}

  bptRuntime runtime_ = {nullptr};
};

} // namespace bpt::rt

#endif // BPT_RUNTIME_RUNTIME_H
