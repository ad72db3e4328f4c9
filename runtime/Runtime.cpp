//===- Runtime.cpp - C++ wrapper of the CUDA driver runtime ---------------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/Runtime.h"

#include "bpt/Runtime/Manifest.h"

#include <cstdio>
#include <cstdlib>

using namespace bpt::rt;

//===----------------------------------------------------------------------===//
// DeviceInfo
//===----------------------------------------------------------------------===//

std::string DeviceInfo::chip() const {
  return "sm_" + std::to_string(computeCapabilityMajor) +
         std::to_string(computeCapabilityMinor);
}

Status bpt::rt::checkChipRunsOn(const std::string &chip,
                                const DeviceInfo &device) {
  // "sm_90a" -> 90 and architecture-specific; "sm_100f" (family) is treated
  // like "a": the safe reading.
  auto malformed = [&] {
    return Status::failure("unrecognised chip '" + chip +
                           "' (expected sm_<major><minor>, e.g. sm_90a)");
  };
  if (chip.size() < 5 || chip.compare(0, 3, "sm_") != 0)
    return malformed();
  size_t end = 3;
  while (end < chip.size() && chip[end] >= '0' && chip[end] <= '9')
    ++end;
  if (end - 3 < 2)
    return malformed();
  std::string suffix = chip.substr(end);
  if (!suffix.empty() && suffix != "a" && suffix != "f")
    return malformed();
  int number = std::atoi(chip.substr(3, end - 3).c_str());
  int major = number / 10, minor = number % 10;
  int deviceNumber =
      device.computeCapabilityMajor * 10 + device.computeCapabilityMinor;
  bool specific = !suffix.empty();
  if (specific ? deviceNumber == number : deviceNumber >= number)
    return Status::success();
  std::string why =
      specific ? "runs only on compute capability " + std::to_string(major) +
                     "." + std::to_string(minor) + " devices"
               : "needs compute capability " + std::to_string(major) + "." +
                     std::to_string(minor) + " or newer";
  return Status::failure("the kernels were generated for " + chip + ", which " +
                         why + ", but device " +
                         std::to_string(device.ordinal) + " (" + device.name +
                         ") is " + device.chip() +
                         "; regenerate them with --chip=" + device.chip());
}

//===----------------------------------------------------------------------===//
// DeviceBuffer
//===----------------------------------------------------------------------===//

DeviceBuffer::DeviceBuffer(DeviceBuffer &&other) noexcept
    : runtime_(other.runtime_), pointer_(other.pointer_), size_(other.size_) {
  other.pointer_ = 0;
  other.size_ = 0;
}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&other) noexcept {
  if (this != &other) {
    (void)release();
    runtime_ = other.runtime_;
    pointer_ = other.pointer_;
    size_ = other.size_;
    other.pointer_ = 0;
    other.size_ = 0;
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { (void)release(); }

Status DeviceBuffer::release() {
  if (!pointer_)
    return Status::success();
  uint64_t pointer = pointer_;
  pointer_ = 0;
  size_ = 0;
  return Status::fromCode(bptRuntimeFree(runtime_, pointer));
}

Status DeviceBuffer::copyFromHost(const void *source, size_t bytes) {
  if (bytes > size_)
    return Status::failure("cannot copy " + std::to_string(bytes) +
                           " bytes into a device buffer of " +
                           std::to_string(size_) + " bytes");
  return Status::fromCode(
      bptRuntimeCopyHostToDevice(runtime_, pointer_, source, bytes));
}

Status DeviceBuffer::copyToHost(void *destination, size_t bytes) const {
  if (bytes > size_)
    return Status::failure("cannot copy " + std::to_string(bytes) +
                           " bytes out of a device buffer of " +
                           std::to_string(size_) + " bytes");
  return Status::fromCode(
      bptRuntimeCopyDeviceToHost(runtime_, destination, pointer_, bytes));
}

Status DeviceBuffer::fill(uint8_t value) {
  return Status::fromCode(bptRuntimeMemset(runtime_, pointer_, value, size_));
}

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

Module::Module(Module &&other) noexcept : module_(other.module_) {
  other.module_.ptr = nullptr;
}

Module &Module::operator=(Module &&other) noexcept {
  if (this != &other) {
    (void)bptModuleDestroy(module_);
    module_ = other.module_;
    other.module_.ptr = nullptr;
  }
  return *this;
}

Module::~Module() { (void)bptModuleDestroy(module_); }

Status Module::launch(const std::string &kernel, Dim3 grid, Dim3 block,
                      uint32_t dynamicSharedMemoryBytes,
                      const std::vector<uint64_t> &args, uint64_t stream,
                      uint32_t flags) {
  const uint32_t gridDims[3] = {grid.x, grid.y, grid.z};
  const uint32_t blockDims[3] = {block.x, block.y, block.z};
  return Status::fromCode(bptModuleLaunchWithFlags(
      module_, kernel.c_str(), gridDims, blockDims, dynamicSharedMemoryBytes,
      args.data(), args.size(), stream, flags));
}

Graph::Graph(Graph &&other) noexcept : graph_(other.graph_) {
  other.graph_.ptr = nullptr;
}

Graph &Graph::operator=(Graph &&other) noexcept {
  if (this != &other) {
    (void)bptGraphDestroy(graph_);
    graph_ = other.graph_;
    other.graph_.ptr = nullptr;
  }
  return *this;
}

Graph::~Graph() { (void)bptGraphDestroy(graph_); }

Status Graph::launch(uint64_t stream) {
  return Status::fromCode(bptGraphLaunch(graph_, stream));
}

Status bpt::rt::checkBufferPointers(
    const Manifest &manifest, const std::vector<uint64_t> &bufferPointers) {
  if (bufferPointers.size() != manifest.buffers.size())
    return Status::failure(
        "the manifest has " + std::to_string(manifest.buffers.size()) +
        " buffers, but " + std::to_string(bufferPointers.size()) +
        " device pointers were given");
  for (size_t i = 0; i < bufferPointers.size(); ++i)
    if (bufferPointers[i] == 0 || bufferPointers[i] % 16 != 0) {
      char address[32];
      std::snprintf(address, sizeof(address), "0x%llx",
                    (unsigned long long)bufferPointers[i]);
      return Status::failure("buffers[" + std::to_string(i) + "] ('" +
                             manifest.buffers[i].name + "') is at " + address +
                             ", which is not a 16-byte aligned device "
                             "address (kernel sets access their buffers "
                             "16 bytes at a time)");
    }
  return Status::success();
}

Status Module::launchAll(const Manifest &manifest,
                         const std::vector<uint64_t> &bufferPointers,
                         const std::vector<uint64_t> &tensorMapPointers,
                         uint64_t stream) {
  if (Status status = checkBufferPointers(manifest, bufferPointers); !status)
    return status;
  if (tensorMapPointers.size() != manifest.tensorMaps.size())
    return Status::failure(
        "the manifest has " + std::to_string(manifest.tensorMaps.size()) +
        " tensor maps, but " + std::to_string(tensorMapPointers.size()) +
        " were given (build them with Runtime::createTensorMaps)");
  std::vector<uint64_t> args;
  for (size_t i = 0; i < manifest.launches.size(); ++i) {
    const ManifestLaunch &launch = manifest.launches[i];
    args.clear();
    for (const ManifestArg &arg : launch.args) {
      switch (arg.kind) {
      case ManifestArg::Kind::Buffer:
        args.push_back(bufferPointers[arg.index] + uint64_t(arg.byteOffset));
        break;
      case ManifestArg::Kind::TensorMap:
        args.push_back(tensorMapPointers[arg.index]);
        break;
      case ManifestArg::Kind::I32:
        // The driver copies a parameter's own size from its slot: the low
        // 4 bytes of the 64-bit slot hold the value.
        args.push_back(uint64_t(uint32_t(arg.value)));
        break;
      }
    }
    if (Status status =
            this->launch(launch.kernel, launch.grid, launch.block,
                         launch.dynamicSharedMemory, args, stream,
                         launch.dependent ? BPT_LAUNCH_DEPENDENT : 0u);
        !status)
      return Status::failure("launches[" + std::to_string(i) +
                             "]: " + status.message());
  }
  return Status::success();
}

Status Module::launchAll(const Manifest &manifest,
                         const std::vector<DeviceBuffer> &buffers,
                         const std::vector<DeviceBuffer> &tensorMaps,
                         uint64_t stream) {
  if (buffers.size() != manifest.buffers.size())
    return Status::failure("the manifest has " +
                           std::to_string(manifest.buffers.size()) +
                           " buffers, but " + std::to_string(buffers.size()) +
                           " device buffers were given");
  std::vector<uint64_t> pointers;
  for (size_t i = 0; i < buffers.size(); ++i) {
    const ManifestBuffer &expected = manifest.buffers[i];
    if (buffers[i].size() < size_t(expected.bytes))
      return Status::failure("buffers[" + std::to_string(i) + "] ('" +
                             expected.name + "') is " +
                             std::to_string(buffers[i].size()) +
                             " bytes on the device, but the manifest needs " +
                             std::to_string(expected.bytes));
    pointers.push_back(buffers[i].pointer());
  }
  std::vector<uint64_t> mapPointers;
  for (const DeviceBuffer &map : tensorMaps)
    mapPointers.push_back(map.pointer());
  return launchAll(manifest, pointers, mapPointers, stream);
}

//===----------------------------------------------------------------------===//
// Runtime
//===----------------------------------------------------------------------===//

bool Runtime::isAvailable(std::string *message) {
  char text[1024] = {0};
  bool available = bptRuntimeIsAvailable(text, sizeof(text)) != 0;
  if (message)
    *message = text;
  return available;
}

Expected<Runtime> Runtime::create(int device) {
  bptRuntime runtime = {nullptr};
  if (int code = bptRuntimeCreate(device, &runtime))
    return Status::fromCode(code);
  return Runtime(runtime);
}

Runtime::Runtime(Runtime &&other) noexcept : runtime_(other.runtime_) {
  other.runtime_.ptr = nullptr;
}

Runtime &Runtime::operator=(Runtime &&other) noexcept {
  if (this != &other) {
    (void)bptRuntimeDestroy(runtime_);
    runtime_ = other.runtime_;
    other.runtime_.ptr = nullptr;
  }
  return *this;
}

Runtime::~Runtime() { (void)bptRuntimeDestroy(runtime_); }

Expected<DeviceInfo> Runtime::deviceInfo() const {
  bptDeviceInfo info;
  if (int code = bptRuntimeGetDeviceInfo(runtime_, &info))
    return Status::fromCode(code);
  DeviceInfo result;
  result.name = info.name;
  result.ordinal = info.ordinal;
  result.computeCapabilityMajor = info.computeCapabilityMajor;
  result.computeCapabilityMinor = info.computeCapabilityMinor;
  result.multiprocessorCount = info.multiprocessorCount;
  result.maxSharedMemoryPerBlockOptin = info.maxSharedMemoryPerBlockOptin;
  result.driverVersion = info.driverVersion;
  result.totalMemoryBytes = info.totalMemoryBytes;
  result.freeMemoryBytes = info.freeMemoryBytes;
  return result;
}

Expected<DeviceBuffer> Runtime::allocate(size_t bytes) {
  uint64_t pointer = 0;
  if (int code = bptRuntimeMalloc(runtime_, bytes, &pointer))
    return Status::fromCode(code);
  return DeviceBuffer(runtime_, pointer, bytes);
}

Expected<DeviceBuffer>
Runtime::createTensorMap(uint64_t globalAddress, const std::string &dtype,
                         const std::vector<int64_t> &shape,
                         const std::vector<int64_t> &box, int swizzleBytes,
                         int l2PromotionBytes, bool oobNaN) {
  if (shape.size() != box.size())
    return Status::failure(
        "createTensorMap: shape has " + std::to_string(shape.size()) +
        " dimensions but box has " + std::to_string(box.size()));
  uint64_t pointer = 0;
  if (int code = bptRuntimeCreateTensorMap(
          runtime_, globalAddress, dtype.c_str(), int(shape.size()),
          shape.data(), box.data(), swizzleBytes, l2PromotionBytes,
          oobNaN ? 1 : 0, &pointer))
    return Status::fromCode(code);
  // The C API allocates exactly one CUtensorMap.
  return DeviceBuffer(runtime_, pointer, 128);
}

Expected<DeviceBuffer> Runtime::createTensorMap(const ManifestTensorMap &map,
                                                uint64_t bufferPointer) {
  return createTensorMap(bufferPointer + uint64_t(map.byteOffset),
                         elementTypeName(map.dtype), map.shape, map.box,
                         map.swizzleBytes, map.l2PromotionBytes, map.oobNaN);
}

Expected<std::vector<DeviceBuffer>>
Runtime::createTensorMaps(const Manifest &manifest,
                          const std::vector<uint64_t> &bufferPointers) {
  if (bufferPointers.size() != manifest.buffers.size())
    return Status::failure(
        "the manifest has " + std::to_string(manifest.buffers.size()) +
        " buffers, but " + std::to_string(bufferPointers.size()) +
        " device pointers were given");
  std::vector<DeviceBuffer> maps;
  for (size_t i = 0; i < manifest.tensorMaps.size(); ++i) {
    const ManifestTensorMap &map = manifest.tensorMaps[i];
    Expected<DeviceBuffer> created =
        createTensorMap(map, bufferPointers[map.buffer]);
    if (!created)
      return Status::failure("tensor_maps[" + std::to_string(i) +
                             "]: " + created.error());
    maps.push_back(created.take());
  }
  return maps;
}

Expected<std::vector<DeviceBuffer>>
Runtime::createTensorMaps(const Manifest &manifest,
                          const std::vector<DeviceBuffer> &buffers) {
  std::vector<uint64_t> pointers;
  for (const DeviceBuffer &buffer : buffers)
    pointers.push_back(buffer.pointer());
  return createTensorMaps(manifest, pointers);
}

Expected<Module> Runtime::loadPTX(const std::string &ptx) {
  bptModule module = {nullptr};
  if (int code = bptModuleLoadPTX(runtime_, ptx.c_str(), &module))
    return Status::fromCode(code);
  return Module(module);
}

Expected<Module> Runtime::loadPTXFile(const std::string &path) {
  bptModule module = {nullptr};
  if (int code = bptModuleLoadPTXFile(runtime_, path.c_str(), &module))
    return Status::fromCode(code);
  return Module(module);
}

Status Runtime::synchronize() {
  return Status::fromCode(bptRuntimeSynchronize(runtime_));
}

namespace {
/// Carries a std::function body and its failure through the C callback.
struct TimedBody {
  const std::function<Status(int)> *body;
  std::string failure;
};

int callTimedBody(void *userData, int iteration) {
  auto *timed = static_cast<TimedBody *>(userData);
  Status status = (*timed->body)(iteration);
  if (status)
    return 0;
  timed->failure = "timing stopped at iteration " + std::to_string(iteration) +
                   ": " + status.message();
  return 1;
}
} // namespace

Expected<Graph>
Runtime::recordGraph(const std::function<Status(uint64_t)> &body) {
  uint64_t stream = 0;
  if (int code = bptGraphBeginRecording(runtime_, &stream))
    return Status::fromCode(code);
  Status recorded = body(stream);
  bptGraph graph = {nullptr};
  int ended = bptGraphEndRecording(runtime_, stream, &graph);
  Graph owner(graph);
  if (!recorded)
    return recorded;
  if (ended)
    return Status::fromCode(ended);
  return std::move(owner);
}

Expected<float> Runtime::timeLaunches(int iterations,
                                      const std::function<Status(int)> &body) {
  TimedBody timed{&body, {}};
  float milliseconds = 0;
  int code = bptRuntimeTimeLaunches(runtime_, iterations, callTimedBody, &timed,
                                    &milliseconds);
  if (code == bptRuntimeErrorCallback && !timed.failure.empty())
    return Status::failure(timed.failure);
  if (code)
    return Status::fromCode(code);
  return milliseconds;
}
