//===- CudaDriver.cpp - the C API over the CUDA driver, loaded at run time ===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Implements bpt-c/Runtime.h. libcuda.so.1 is opened with dlopen and the few
// driver functions used are looked up with dlsym, so nothing here needs the
// CUDA toolkit to build and the library starts on a machine without a GPU.
// The driver types, enum values and function signatures below are those of
// the CUDA driver API (cuda.h); the `_v2` entry points are the ones cuda.h
// maps the plain names to.
//
// Every driver call is checked; a failure becomes a message that says what
// the runtime was doing, which call failed with which CUDA error, and, where
// the cause is known, what to do about it.
//
//===----------------------------------------------------------------------===//

#include "bpt-c/Runtime.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

//===----------------------------------------------------------------------===//
// CUDA driver API declarations (values from cuda.h)
//===----------------------------------------------------------------------===//

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;

// CUresult values this file refers to.
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_INVALID_VALUE = 1;
constexpr CUresult CUDA_ERROR_OUT_OF_MEMORY = 2;
constexpr CUresult CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
constexpr CUresult CUDA_ERROR_DEVICE_UNAVAILABLE = 46;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr CUresult CUDA_ERROR_INVALID_IMAGE = 200;
constexpr CUresult CUDA_ERROR_NO_BINARY_FOR_GPU = 209;
constexpr CUresult CUDA_ERROR_INVALID_PTX = 218;
constexpr CUresult CUDA_ERROR_JIT_COMPILER_NOT_FOUND = 221;
constexpr CUresult CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222;
constexpr CUresult CUDA_ERROR_NOT_FOUND = 500;
constexpr CUresult CUDA_ERROR_ILLEGAL_ADDRESS = 700;
constexpr CUresult CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701;
constexpr CUresult CUDA_ERROR_LAUNCH_TIMEOUT = 702;
constexpr CUresult CUDA_ERROR_ASSERT = 710;
constexpr CUresult CUDA_ERROR_HARDWARE_STACK_ERROR = 714;
constexpr CUresult CUDA_ERROR_ILLEGAL_INSTRUCTION = 715;
constexpr CUresult CUDA_ERROR_MISALIGNED_ADDRESS = 716;
constexpr CUresult CUDA_ERROR_INVALID_ADDRESS_SPACE = 717;
constexpr CUresult CUDA_ERROR_INVALID_PC = 718;
constexpr CUresult CUDA_ERROR_LAUNCH_FAILED = 719;
constexpr CUresult CUDA_ERROR_SYSTEM_DRIVER_MISMATCH = 803;

// CUdevice_attribute.
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;

// CUfunction_attribute.
constexpr int CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK = 0;
constexpr int CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES = 1;
constexpr int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;

// CUjit_option (an enum, passed as int).
using CUjit_option = int;
constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER = 3;
constexpr CUjit_option CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr CUjit_option CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;

// CUevent_flags.
constexpr unsigned CU_EVENT_DEFAULT = 0;

// CUstream_flags and CUstreamCaptureMode.
constexpr unsigned CU_STREAM_NON_BLOCKING = 1;
constexpr int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;

// Tensor maps (CUDA 12.0): CUtensorMapDataType, CUtensorMapInterleave,
// CUtensorMapSwizzle, CUtensorMapL2promotion and CUtensorMapFloatOOBfill are
// enums, passed as int.
// Launches with attributes (CUDA 12.0): cuLaunchKernelEx's configuration.
constexpr int CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
union CUlaunchAttributeValue {
  char pad[64];
  int programmaticStreamSerializationAllowed;
  void *alignment;
};
struct CUlaunchAttribute {
  int id;
  char pad[8 - sizeof(int)];
  CUlaunchAttributeValue value;
};
static_assert(sizeof(CUlaunchAttribute) == 72, "CUlaunchAttribute is 72 bytes");
struct CUlaunchConfig {
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  CUstream hStream;
  CUlaunchAttribute *attrs;
  unsigned numAttrs;
};

struct alignas(64) CUtensorMap {
  unsigned long long opaque[16];
};
static_assert(sizeof(CUtensorMap) == 128, "CUtensorMap is 128 bytes");
constexpr int CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6;
constexpr int CU_TENSOR_MAP_DATA_TYPE_FLOAT32 = 7;
constexpr int CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9;
constexpr int CU_TENSOR_MAP_INTERLEAVE_NONE = 0;
constexpr int CU_TENSOR_MAP_SWIZZLE_NONE = 0;
constexpr int CU_TENSOR_MAP_L2_PROMOTION_NONE = 0;
constexpr int CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0;
constexpr int CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA = 1;

/// The driver functions the runtime uses. Members are named after the
/// driver's functions without their version suffix; `kDriverSymbols` says
/// which exported symbol each one is loaded from. A plain struct of
/// pointers, so that offsetof applies.
struct Driver {
  void *library;

  CUresult (*cuInit)(unsigned flags);
  CUresult (*cuDriverGetVersion)(int *version);
  CUresult (*cuGetErrorName)(CUresult error, const char **name);
  CUresult (*cuGetErrorString)(CUresult error, const char **text);
  CUresult (*cuDeviceGetCount)(int *count);
  CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
  CUresult (*cuDeviceGetName)(char *name, int length, CUdevice device);
  CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
  CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice device);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);
  CUresult (*cuCtxSetCurrent)(CUcontext context);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuMemGetInfo)(size_t *freeBytes, size_t *totalBytes);
  CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);
  CUresult (*cuMemFree)(CUdeviceptr pointer);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr destination, const void *source,
                           size_t bytes);
  CUresult (*cuMemcpyDtoH)(void *destination, CUdeviceptr source, size_t bytes);
  CUresult (*cuMemsetD8)(CUdeviceptr destination, unsigned char value,
                         size_t count);
  CUresult (*cuModuleLoadDataEx)(CUmodule *module, const void *image,
                                 unsigned numOptions, CUjit_option *options,
                                 void **optionValues);
  CUresult (*cuModuleUnload)(CUmodule module);
  CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module,
                                  const char *name);
  CUresult (*cuFuncGetAttribute)(int *value, int attribute,
                                 CUfunction function);
  CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
  CUresult (*cuLaunchKernel)(CUfunction function, unsigned gridX,
                             unsigned gridY, unsigned gridZ, unsigned blockX,
                             unsigned blockY, unsigned blockZ,
                             unsigned sharedMemBytes, CUstream stream,
                             void **kernelParams, void **extra);
  /// Optional (CUDA 12.0 and later): null when the driver lacks it.
  CUresult (*cuLaunchKernelEx)(const CUlaunchConfig *config,
                               CUfunction function, void **kernelParams,
                               void **extra);
  CUresult (*cuEventCreate)(CUevent *event, unsigned flags);
  CUresult (*cuEventRecord)(CUevent event, CUstream stream);
  CUresult (*cuEventSynchronize)(CUevent event);
  CUresult (*cuEventElapsedTime)(float *milliseconds, CUevent start,
                                 CUevent end);
  CUresult (*cuEventDestroy)(CUevent event);
  /// Optional (CUDA 12.4 and later): null when the driver lacks it.
  CUresult (*cuFuncGetParamInfo)(CUfunction function, size_t index,
                                 size_t *offset, size_t *size);
  /// Optional (CUDA 13 and later): null when the driver lacks it.
  CUresult (*cuFuncGetParamCount)(CUfunction function, size_t *count);
  /// Optional (CUDA graphs, CUDA 11.4 and later): null when the driver
  /// lacks them.
  CUresult (*cuStreamCreate)(CUstream *stream, unsigned flags);
  CUresult (*cuStreamDestroy)(CUstream stream);
  CUresult (*cuStreamBeginCapture)(CUstream stream, int mode);
  CUresult (*cuStreamEndCapture)(CUstream stream, CUgraph *graph);
  CUresult (*cuGraphInstantiateWithFlags)(CUgraphExec *exec, CUgraph graph,
                                          unsigned long long flags);
  CUresult (*cuGraphLaunch)(CUgraphExec exec, CUstream stream);
  CUresult (*cuGraphExecDestroy)(CUgraphExec exec);
  CUresult (*cuGraphDestroy)(CUgraph graph);
  /// Optional (CUDA 12.0 and later): null when the driver lacks it.
  CUresult (*cuTensorMapEncodeTiled)(
      CUtensorMap *tensorMap, int dataType, uint32_t rank, void *globalAddress,
      const uint64_t *globalDim, const uint64_t *globalStrides,
      const uint32_t *boxDim, const uint32_t *elementStrides, int interleave,
      int swizzle, int l2Promotion, int oobFill);
};

/// Where each Driver member is loaded from: the preferred symbol, a fallback
/// for older drivers (or null), and whether the runtime can do without it.
struct DriverSymbol {
  const char *name;
  const char *fallback;
  bool optional;
  size_t offset;
};

#define BPT_DRIVER_SYMBOL(member, symbol, fallback, optional)                  \
  DriverSymbol { symbol, fallback, optional, offsetof(Driver, member) }

const DriverSymbol kDriverSymbols[] = {
    BPT_DRIVER_SYMBOL(cuInit, "cuInit", nullptr, false),
    BPT_DRIVER_SYMBOL(cuDriverGetVersion, "cuDriverGetVersion", nullptr, false),
    BPT_DRIVER_SYMBOL(cuGetErrorName, "cuGetErrorName", nullptr, false),
    BPT_DRIVER_SYMBOL(cuGetErrorString, "cuGetErrorString", nullptr, false),
    BPT_DRIVER_SYMBOL(cuDeviceGetCount, "cuDeviceGetCount", nullptr, false),
    BPT_DRIVER_SYMBOL(cuDeviceGet, "cuDeviceGet", nullptr, false),
    BPT_DRIVER_SYMBOL(cuDeviceGetName, "cuDeviceGetName", nullptr, false),
    BPT_DRIVER_SYMBOL(cuDeviceGetAttribute, "cuDeviceGetAttribute", nullptr,
                      false),
    BPT_DRIVER_SYMBOL(cuDeviceTotalMem, "cuDeviceTotalMem_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain",
                      nullptr, false),
    BPT_DRIVER_SYMBOL(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2",
                      "cuDevicePrimaryCtxRelease", false),
    BPT_DRIVER_SYMBOL(cuCtxSetCurrent, "cuCtxSetCurrent", nullptr, false),
    BPT_DRIVER_SYMBOL(cuCtxSynchronize, "cuCtxSynchronize", nullptr, false),
    BPT_DRIVER_SYMBOL(cuMemGetInfo, "cuMemGetInfo_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuMemAlloc, "cuMemAlloc_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuMemFree, "cuMemFree_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuMemcpyHtoD, "cuMemcpyHtoD_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuMemcpyDtoH, "cuMemcpyDtoH_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuMemsetD8, "cuMemsetD8_v2", nullptr, false),
    BPT_DRIVER_SYMBOL(cuModuleLoadDataEx, "cuModuleLoadDataEx", nullptr, false),
    BPT_DRIVER_SYMBOL(cuModuleUnload, "cuModuleUnload", nullptr, false),
    BPT_DRIVER_SYMBOL(cuModuleGetFunction, "cuModuleGetFunction", nullptr,
                      false),
    BPT_DRIVER_SYMBOL(cuFuncGetAttribute, "cuFuncGetAttribute", nullptr, false),
    BPT_DRIVER_SYMBOL(cuFuncSetAttribute, "cuFuncSetAttribute", nullptr, false),
    BPT_DRIVER_SYMBOL(cuLaunchKernel, "cuLaunchKernel", nullptr, false),
    BPT_DRIVER_SYMBOL(cuLaunchKernelEx, "cuLaunchKernelEx", nullptr, true),
    BPT_DRIVER_SYMBOL(cuEventCreate, "cuEventCreate", nullptr, false),
    BPT_DRIVER_SYMBOL(cuEventRecord, "cuEventRecord", nullptr, false),
    BPT_DRIVER_SYMBOL(cuEventSynchronize, "cuEventSynchronize", nullptr, false),
    BPT_DRIVER_SYMBOL(cuEventElapsedTime, "cuEventElapsedTime", nullptr, false),
    BPT_DRIVER_SYMBOL(cuEventDestroy, "cuEventDestroy_v2", "cuEventDestroy",
                      false),
    BPT_DRIVER_SYMBOL(cuFuncGetParamInfo, "cuFuncGetParamInfo", nullptr, true),
    BPT_DRIVER_SYMBOL(cuFuncGetParamCount, "cuFuncGetParamCount", nullptr,
                      true),
    BPT_DRIVER_SYMBOL(cuStreamCreate, "cuStreamCreate", nullptr, true),
    BPT_DRIVER_SYMBOL(cuStreamDestroy, "cuStreamDestroy_v2", "cuStreamDestroy",
                      true),
    BPT_DRIVER_SYMBOL(cuStreamBeginCapture, "cuStreamBeginCapture_v2", nullptr,
                      true),
    BPT_DRIVER_SYMBOL(cuStreamEndCapture, "cuStreamEndCapture", nullptr, true),
    BPT_DRIVER_SYMBOL(cuGraphInstantiateWithFlags,
                      "cuGraphInstantiateWithFlags", nullptr, true),
    BPT_DRIVER_SYMBOL(cuGraphLaunch, "cuGraphLaunch", nullptr, true),
    BPT_DRIVER_SYMBOL(cuGraphExecDestroy, "cuGraphExecDestroy", nullptr, true),
    BPT_DRIVER_SYMBOL(cuGraphDestroy, "cuGraphDestroy", nullptr, true),
    BPT_DRIVER_SYMBOL(cuTensorMapEncodeTiled, "cuTensorMapEncodeTiled", nullptr,
                      true),
};

#undef BPT_DRIVER_SYMBOL

//===----------------------------------------------------------------------===//
// Errors
//===----------------------------------------------------------------------===//

thread_local std::string lastError;

/// Stores `message` as this thread's last error and returns `status`.
int fail(int status, std::string message) {
  lastError = std::move(message);
  return status;
}

/// printf into a std::string.
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  int length = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string result(length > 0 ? size_t(length) : 0, '\0');
  if (length > 0)
    std::vsnprintf(result.data(), result.size() + 1, fmt, args);
  va_end(args);
  return result;
}

/// "1.5 GiB", "300.0 MiB", "512 bytes".
std::string formatBytes(uint64_t bytes) {
  if (bytes >= (1ull << 30))
    return format("%.1f GiB", double(bytes) / double(1ull << 30));
  if (bytes >= (1ull << 20))
    return format("%.1f MiB", double(bytes) / double(1ull << 20));
  return format("%llu bytes", (unsigned long long)bytes);
}

/// Whether `error` is one that a kernel raises while running; such errors
/// leave the context unusable.
bool isKernelExecutionError(CUresult error) {
  switch (error) {
  case CUDA_ERROR_ILLEGAL_ADDRESS:
  case CUDA_ERROR_LAUNCH_TIMEOUT:
  case CUDA_ERROR_ASSERT:
  case CUDA_ERROR_HARDWARE_STACK_ERROR:
  case CUDA_ERROR_ILLEGAL_INSTRUCTION:
  case CUDA_ERROR_MISALIGNED_ADDRESS:
  case CUDA_ERROR_INVALID_ADDRESS_SPACE:
  case CUDA_ERROR_INVALID_PC:
  case CUDA_ERROR_LAUNCH_FAILED:
    return true;
  default:
    return false;
  }
}

/// "CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
std::string describeError(const Driver &driver, CUresult error) {
  const char *name = nullptr;
  const char *text = nullptr;
  if (driver.cuGetErrorName(error, &name) != CUDA_SUCCESS || !name)
    return format("CUDA error %d (unknown to this driver)", error);
  std::string result = name;
  if (driver.cuGetErrorString(error, &text) == CUDA_SUCCESS && text)
    result += format(" (%s)", text);
  return result;
}

/// What to do about `error`, or "" when there is nothing general to say.
const char *hintFor(CUresult error) {
  switch (error) {
  case CUDA_ERROR_INSUFFICIENT_DRIVER:
  case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
    return "the NVIDIA kernel module and libcuda.so.1 do not match or are "
           "too old; check `nvidia-smi` and reinstall or update the driver";
  case CUDA_ERROR_DEVICE_UNAVAILABLE:
    return "the device is busy or unavailable (another process may hold it "
           "in exclusive-process mode: see `nvidia-smi`)";
  case CUDA_ERROR_INVALID_PTX:
    return "the driver's JIT compiler rejected the PTX; see the JIT log, and "
           "check that the chip the PTX was generated for matches the device";
  case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
    return "the PTX's .version is newer than this driver can compile; update "
           "the NVIDIA driver or generate the PTX with an older PTX feature "
           "(e.g. +ptx80)";
  case CUDA_ERROR_NO_BINARY_FOR_GPU:
  case CUDA_ERROR_INVALID_IMAGE:
    return "the PTX targets another chip than this device; regenerate it for "
           "the device's compute capability";
  case CUDA_ERROR_JIT_COMPILER_NOT_FOUND:
    return "the driver's PTX JIT compiler (libnvidia-ptxjitcompiler.so) is "
           "missing; reinstall the NVIDIA driver";
  case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
    return "the kernel needs more registers or shared memory than a block of "
           "this size can have; launch fewer threads per block";
  case CUDA_ERROR_OUT_OF_MEMORY:
    return "free device memory (other processes may hold it: see "
           "`nvidia-smi`) or use smaller shapes";
  default:
    if (isKernelExecutionError(error))
      return "a kernel failed while running, and the context is now unusable: "
             "every later CUDA call in this process fails. Check the kernel's "
             "arguments (their order, and buffer sizes against the manifest), "
             "or run the program under compute-sanitizer";
    return "";
  }
}

//===----------------------------------------------------------------------===//
// Loading the driver
//===----------------------------------------------------------------------===//

std::mutex driverMutex;
/// The loaded and initialised driver; never unloaded, since libcuda does not
/// support being unloaded while contexts exist.
Driver *loadedDriver = nullptr;

/// Loads and initialises the driver once per process, or returns the status
/// and sets the last error. A failed load is retried on the next call.
int getDriver(const Driver **result) {
  std::lock_guard<std::mutex> lock(driverMutex);
  if (loadedDriver) {
    *result = loadedDriver;
    return bptRuntimeSuccess;
  }

  const char *override = std::getenv("BPT_LIBCUDA");
  std::string libraryName = override && *override ? override : "libcuda.so.1";
  void *library = dlopen(libraryName.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char *reason = dlerror();
    return fail(bptRuntimeErrorNoDriver,
                format("no NVIDIA driver found (%s could not be loaded: %s)",
                       libraryName.c_str(),
                       reason ? reason : "unknown reason"));
  }

  auto driver = std::make_unique<Driver>();
  std::memset(driver.get(), 0, sizeof(Driver));
  driver->library = library;
  for (const DriverSymbol &symbol : kDriverSymbols) {
    void *address = dlsym(library, symbol.name);
    if (!address && symbol.fallback)
      address = dlsym(library, symbol.fallback);
    if (!address && !symbol.optional) {
      dlclose(library);
      return fail(bptRuntimeErrorNoDriver,
                  format("the NVIDIA driver is too old: %s lacks %s, which "
                         "this runtime needs; update the driver",
                         libraryName.c_str(), symbol.name));
    }
    // Each member is a function pointer at its recorded offset.
    std::memcpy(reinterpret_cast<char *>(driver.get()) + symbol.offset,
                &address, sizeof(address));
  }

  CUresult error = driver->cuInit(0);
  if (error == CUDA_ERROR_NO_DEVICE) {
    dlclose(library);
    return fail(bptRuntimeErrorNoDevice, "no CUDA device found");
  }
  if (error != CUDA_SUCCESS) {
    std::string message =
        format("the NVIDIA driver failed to initialise: cuInit failed: %s",
               describeError(*driver, error).c_str());
    if (const char *hint = hintFor(error); *hint)
      message += format("; %s", hint);
    dlclose(library);
    return fail(bptRuntimeErrorNoDriver, message);
  }

  loadedDriver = driver.release();
  *result = loadedDriver;
  return bptRuntimeSuccess;
}

//===----------------------------------------------------------------------===//
// Handles
//===----------------------------------------------------------------------===//

/// How many kernel names a runtime remembers between synchronizations.
constexpr size_t kMaxRememberedLaunches = 8;

struct RuntimeImpl {
  const Driver *driver = nullptr;
  int ordinal = 0;
  CUdevice device = 0;
  CUcontext context = nullptr;
  std::string deviceName;
  int computeCapabilityMajor = 0;
  int computeCapabilityMinor = 0;
  int maxSharedMemoryPerBlockOptin = 0;
  /// Whether launches flagged BPT_LAUNCH_DEPENDENT take programmatic stream
  /// serialization: an sm_90 or later device, a driver with
  /// cuLaunchKernelEx, and BPT_DEPENDENT_LAUNCH not set to 0.
  bool dependentLaunch = false;
  /// Kernels launched since the last synchronization: the count, and the
  /// names of the first few and of the last one.
  size_t numPendingLaunches = 0;
  std::vector<std::string> pendingLaunchNames;
  std::string lastLaunchName;

  /// "device 0 (NVIDIA H100 80GB HBM3, sm_90)".
  std::string describeDevice() const {
    return format("device %d (%s, sm_%d%d)", ordinal, deviceName.c_str(),
                  computeCapabilityMajor, computeCapabilityMinor);
  }

  void rememberLaunch(const char *kernel) {
    if (pendingLaunchNames.size() < kMaxRememberedLaunches)
      pendingLaunchNames.emplace_back(kernel);
    lastLaunchName = kernel;
    ++numPendingLaunches;
  }

  void forgetLaunches() {
    numPendingLaunches = 0;
    pendingLaunchNames.clear();
    lastLaunchName.clear();
  }

  /// "'a', 'b' and 'c'" for the kernels launched since the last
  /// synchronization.
  std::string describePendingLaunches() const {
    std::string names;
    for (size_t i = 0; i < pendingLaunchNames.size(); ++i) {
      if (i)
        names += i + 1 == pendingLaunchNames.size() ? " and " : ", ";
      names += "'" + pendingLaunchNames[i] + "'";
    }
    if (numPendingLaunches > pendingLaunchNames.size())
      names += format(", ... (%zu launches in all, the last of '%s')",
                      numPendingLaunches, lastLaunchName.c_str());
    return names;
  }

  /// Sets the last error for a failed driver call and returns
  /// bptRuntimeErrorCuda. `what` says what the runtime was doing.
  int cudaFailure(CUresult error, const char *call, const std::string &what) {
    std::string message = format("%s: %s failed: %s", what.c_str(), call,
                                 describeError(*driver, error).c_str());
    if (isKernelExecutionError(error) && numPendingLaunches > 0) {
      message += format("; kernels launched since the last synchronization: "
                        "%s",
                        describePendingLaunches().c_str());
      forgetLaunches();
    }
    if (const char *hint = hintFor(error); *hint)
      message += format("; %s", hint);
    return fail(bptRuntimeErrorCuda, message);
  }

  /// Makes the context current on the calling thread.
  int makeCurrent() {
    if (CUresult error = driver->cuCtxSetCurrent(context))
      return cudaFailure(error, "cuCtxSetCurrent",
                         "making the context of " + describeDevice() +
                             " current");
    return bptRuntimeSuccess;
  }
};

/// What a module knows about one of its kernels.
struct KernelInfo {
  CUfunction function = nullptr;
  int maxThreadsPerBlock = 0;
  int staticSharedBytes = 0;
  int numRegisters = 0;
  /// The current CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
  int maxDynamicSharedBytes = 0;
  /// The number of parameters, or -1 where the driver cannot tell.
  long numParams = -1;
  /// The size of each parameter, where known.
  std::vector<size_t> paramSizes;
};

struct ModuleImpl {
  RuntimeImpl *runtime = nullptr;
  CUmodule module = nullptr;
  std::string infoLog;
  /// The `.entry` names found in the PTX, for messages.
  std::vector<std::string> entryNames;
  std::map<std::string, KernelInfo, std::less<>> kernels;
};

struct TimerImpl {
  RuntimeImpl *runtime = nullptr;
  CUevent start = nullptr;
  CUevent stop = nullptr;
  bool started = false;
};

struct GraphImpl {
  RuntimeImpl *runtime = nullptr;
  CUgraph graph = nullptr;
  CUgraphExec exec = nullptr;
};

RuntimeImpl *unwrap(bptRuntime runtime) {
  return static_cast<RuntimeImpl *>(runtime.ptr);
}
ModuleImpl *unwrap(bptModule module) {
  return static_cast<ModuleImpl *>(module.ptr);
}
TimerImpl *unwrap(bptTimer timer) {
  return static_cast<TimerImpl *>(timer.ptr);
}
GraphImpl *unwrap(bptGraph graph) {
  return static_cast<GraphImpl *>(graph.ptr);
}

int nullHandle(const char *function, const char *what) {
  return fail(bptRuntimeErrorInvalidArgument,
              format("%s: the %s handle is null (was it created "
                     "successfully?)",
                     function, what));
}

int nullArgument(const char *function, const char *argument) {
  return fail(bptRuntimeErrorInvalidArgument,
              format("%s: `%s` must not be null", function, argument));
}

//===----------------------------------------------------------------------===//
// PTX inspection, for messages
//===----------------------------------------------------------------------===//

/// The directives of a PTX text that messages mention.
struct PTXSummary {
  std::string version; // ".version 8.0" -> "8.0"
  std::string target;  // ".target sm_90a" -> "sm_90a"
  std::vector<std::string> entries;
};

bool isIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '.';
}

/// A light textual scan (comments are not skipped); good enough for messages.
PTXSummary summarizePTX(const char *ptx) {
  PTXSummary summary;
  std::string_view text(ptx);
  auto wordAfter = [&](size_t pos) {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t'))
      ++pos;
    size_t end = pos;
    while (
        end < text.size() &&
        (isIdentifierChar(text[end]) || text[end] == ',' || text[end] == ' ') &&
        text[end] != '\n')
      ++end;
    std::string word(text.substr(pos, end - pos));
    while (!word.empty() && (word.back() == ' ' || word.back() == ','))
      word.pop_back();
    return word;
  };
  if (size_t pos = text.find(".version"); pos != std::string_view::npos)
    summary.version = wordAfter(pos + 8);
  if (size_t pos = text.find(".target"); pos != std::string_view::npos)
    summary.target = wordAfter(pos + 7);
  for (size_t pos = text.find(".entry"); pos != std::string_view::npos;
       pos = text.find(".entry", pos + 6)) {
    size_t start = pos + 6;
    while (start < text.size() && (text[start] == ' ' || text[start] == '\t'))
      ++start;
    size_t end = start;
    while (end < text.size() && isIdentifierChar(text[end]))
      ++end;
    if (end > start)
      summary.entries.emplace_back(text.substr(start, end - start));
  }
  return summary;
}

std::string joinQuoted(const std::vector<std::string> &names) {
  std::string result;
  for (size_t i = 0; i < names.size(); ++i)
    result += (i ? ", '" : "'") + names[i] + "'";
  return result;
}

/// Keeps the first `limit` bytes of a JIT log, without trailing newlines.
std::string trimLog(const char *log, size_t capacity) {
  std::string result(log, strnlen(log, capacity));
  while (!result.empty() && (result.back() == '\n' || result.back() == '\r'))
    result.pop_back();
  return result;
}

/// Looks up `name` in `module`, filling its KernelInfo on first use.
int getKernel(ModuleImpl &module, const char *name, KernelInfo **result) {
  if (auto it = module.kernels.find(name); it != module.kernels.end()) {
    *result = &it->second;
    return bptRuntimeSuccess;
  }
  RuntimeImpl &runtime = *module.runtime;
  const Driver &driver = *runtime.driver;
  KernelInfo info;
  CUresult error =
      driver.cuModuleGetFunction(&info.function, module.module, name);
  if (error == CUDA_ERROR_NOT_FOUND)
    return fail(bptRuntimeErrorInvalidArgument,
                format("no kernel named '%s' in the module (its kernels: %s)",
                       name,
                       module.entryNames.empty()
                           ? "none found"
                           : joinQuoted(module.entryNames).c_str()));
  if (error)
    return runtime.cudaFailure(error, "cuModuleGetFunction",
                               format("looking up kernel '%s'", name));

  struct {
    int attribute;
    int *value;
    const char *description;
  } attributes[] = {
      {CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, &info.maxThreadsPerBlock,
       "its maximum threads per block"},
      {CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, &info.staticSharedBytes,
       "its static shared memory"},
      {CU_FUNC_ATTRIBUTE_NUM_REGS, &info.numRegisters, "its register count"},
      {CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
       &info.maxDynamicSharedBytes, "its maximum dynamic shared memory"},
  };
  for (auto &attribute : attributes)
    if (CUresult error = driver.cuFuncGetAttribute(
            attribute.value, attribute.attribute, info.function))
      return runtime.cudaFailure(
          error, "cuFuncGetAttribute",
          format("reading %s of kernel '%s'", attribute.description, name));

  // The parameter count comes from cuFuncGetParamCount (CUDA 13); probing
  // cuFuncGetParamInfo past the last parameter would work too, but shows up
  // as an API error under compute-sanitizer. Any error leaves the count
  // unknown rather than wrong.
  size_t count = 0;
  if (driver.cuFuncGetParamCount && driver.cuFuncGetParamInfo &&
      driver.cuFuncGetParamCount(info.function, &count) == CUDA_SUCCESS) {
    info.numParams = static_cast<long>(count);
    for (size_t index = 0; index < count; ++index) {
      size_t offset = 0, size = 0;
      if (driver.cuFuncGetParamInfo(info.function, index, &offset, &size) !=
          CUDA_SUCCESS) {
        info.numParams = -1;
        info.paramSizes.clear();
        break;
      }
      info.paramSizes.push_back(size);
    }
  }

  auto inserted = module.kernels.emplace(name, std::move(info));
  *result = &inserted.first->second;
  return bptRuntimeSuccess;
}

int createEvent(RuntimeImpl &runtime, CUevent *event, const char *what) {
  if (CUresult error = runtime.driver->cuEventCreate(event, CU_EVENT_DEFAULT))
    return runtime.cudaFailure(error, "cuEventCreate",
                               format("creating the %s event", what));
  return bptRuntimeSuccess;
}

/// Records `stop`, waits for it and reads the time since `start`.
int finishTiming(RuntimeImpl &runtime, CUevent start, CUevent stop,
                 float *milliseconds) {
  const Driver &driver = *runtime.driver;
  if (CUresult error = driver.cuEventRecord(stop, nullptr))
    return runtime.cudaFailure(error, "cuEventRecord",
                               "recording the timing stop event");
  if (CUresult error = driver.cuEventSynchronize(stop))
    return runtime.cudaFailure(error, "cuEventSynchronize",
                               "waiting for the timed work to finish");
  runtime.forgetLaunches();
  float elapsed = 0;
  if (CUresult error = driver.cuEventElapsedTime(&elapsed, start, stop))
    return runtime.cudaFailure(error, "cuEventElapsedTime",
                               "reading the time between the timing events");
  *milliseconds = elapsed;
  return bptRuntimeSuccess;
}

//===----------------------------------------------------------------------===//
// Tensor maps
//===----------------------------------------------------------------------===//

/// "[2, 8, 64]".
std::string formatDims(const int64_t *dims, int rank) {
  std::string result = "[";
  for (int i = 0; i < rank; ++i)
    result += format(i ? ", %lld" : "%lld", (long long)dims[i]);
  return result + "]";
}

/// bptTensorMapGetEncoding(), with messages that start with `function`.
/// Checks what the CUDA documentation of cuTensorMapEncodeTiled requires of
/// a non-interleaved tiled map, so that a bad map is reported by argument
/// rather than as the driver's bare CUDA_ERROR_INVALID_VALUE.
int computeTensorMapEncoding(const char *function, uint64_t globalAddress,
                             const char *dtype, int rank, const int64_t *shape,
                             const int64_t *box, int swizzleBytes,
                             int l2PromotionBytes, int oobNaN,
                             bptTensorMapEncoding *encoding) {
  auto invalid = [&](const std::string &message) {
    return fail(bptRuntimeErrorInvalidArgument,
                format("%s: %s", function, message.c_str()));
  };
  if (!encoding)
    return nullArgument(function, "encoding");
  if (!dtype)
    return nullArgument(function, "dtype");
  if (!shape)
    return nullArgument(function, "shape");
  if (!box)
    return nullArgument(function, "box");

  bptTensorMapEncoding result;
  std::memset(&result, 0, sizeof(result));
  uint64_t elementBytes = 0;
  if (std::strcmp(dtype, "f32") == 0) {
    result.dataType = CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
    elementBytes = 4;
  } else if (std::strcmp(dtype, "f16") == 0) {
    result.dataType = CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    elementBytes = 2;
  } else if (std::strcmp(dtype, "bf16") == 0) {
    result.dataType = CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
    elementBytes = 2;
  } else {
    return invalid(format("dtype is \"%s\", must be f32, f16 or bf16", dtype));
  }
  if (rank < 1 || rank > BPT_TENSOR_MAP_MAX_RANK)
    return invalid(
        format("rank is %d, must be 1 to %d", rank, BPT_TENSOR_MAP_MAX_RANK));
  if (globalAddress == 0 || globalAddress % 16 != 0)
    return invalid(format("globalAddress 0x%llx is not a 16-byte aligned "
                          "device address",
                          (unsigned long long)globalAddress));
  result.rank = uint32_t(rank);
  result.globalAddress = globalAddress;

  // CUDA counts dimensions innermost first: dimension d is shape[rank-1-d].
  const uint64_t kMaxGlobalDim = uint64_t(1) << 32;
  const uint64_t kStrideLimit = uint64_t(1) << 40;
  uint64_t stride = elementBytes;
  for (int d = 0; d < rank; ++d) {
    int i = rank - 1 - d;
    if (shape[i] < 1 || uint64_t(shape[i]) > kMaxGlobalDim)
      return invalid(format("shape[%d] is %lld, must be 1 to 2^32", i,
                            (long long)shape[i]));
    result.globalDim[d] = uint64_t(shape[i]);
    if (d == 0)
      continue;
    // The byte stride of dimension d: all inner dimensions times the
    // element size (row-major, no padding); checked before multiplying, so
    // that it cannot wrap.
    uint64_t inner = uint64_t(shape[i + 1]);
    if (stride > (kStrideLimit - 1) / inner)
      return invalid(format("the byte stride of shape[%d] in %s %s is 2^40 "
                            "or more, beyond TMA's limit",
                            i, dtype, formatDims(shape, rank).c_str()));
    stride *= inner;
    if (stride % 16 != 0)
      return invalid(format("the byte stride of shape[%d] in %s %s is %llu, "
                            "not a multiple of 16",
                            i, dtype, formatDims(shape, rank).c_str(),
                            (unsigned long long)stride));
    result.globalStrides[d - 1] = stride;
  }

  int swizzle = 0;
  switch (swizzleBytes) {
  case 0:
    swizzle = CU_TENSOR_MAP_SWIZZLE_NONE;
    break;
  case 32:
    swizzle = 1;
    break;
  case 64:
    swizzle = 2;
    break;
  case 128:
    swizzle = 3;
    break;
  default:
    return invalid(format("swizzleBytes is %d, must be 0 (none), 32, 64 or "
                          "128",
                          swizzleBytes));
  }
  int l2Promotion = 0;
  switch (l2PromotionBytes) {
  case 0:
    l2Promotion = CU_TENSOR_MAP_L2_PROMOTION_NONE;
    break;
  case 64:
    l2Promotion = 1;
    break;
  case 128:
    l2Promotion = 2;
    break;
  case 256:
    l2Promotion = 3;
    break;
  default:
    return invalid(format("l2PromotionBytes is %d, must be 0 (none), 64, 128 "
                          "or 256",
                          l2PromotionBytes));
  }
  if (oobNaN != 0 && oobNaN != 1)
    return invalid(
        format("oobNaN is %d, must be 0 (zeros) or 1 (NaN)", oobNaN));

  for (int d = 0; d < rank; ++d) {
    int i = rank - 1 - d;
    if (box[i] < 1 || box[i] > 256)
      return invalid(
          format("box[%d] is %lld, must be 1 to 256", i, (long long)box[i]));
    result.boxDim[d] = uint32_t(box[i]);
    result.elementStrides[d] = 1;
  }
  uint64_t innerBytes = uint64_t(box[rank - 1]) * elementBytes;
  if (innerBytes % 16 != 0)
    return invalid(format("box[%d] is %lld elements of %s, %llu bytes, not a "
                          "multiple of 16",
                          rank - 1, (long long)box[rank - 1], dtype,
                          (unsigned long long)innerBytes));
  if (swizzleBytes && innerBytes > uint64_t(swizzleBytes))
    return invalid(format("box[%d] is %lld elements of %s, %llu bytes, more "
                          "than the swizzle span of %d bytes",
                          rank - 1, (long long)box[rank - 1], dtype,
                          (unsigned long long)innerBytes, swizzleBytes));

  result.interleave = CU_TENSOR_MAP_INTERLEAVE_NONE;
  result.swizzle = swizzle;
  result.l2Promotion = l2Promotion;
  result.oobFill = oobNaN ? CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA
                          : CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE;
  *encoding = result;
  return bptRuntimeSuccess;
}

} // namespace

//===----------------------------------------------------------------------===//
// C API: status, availability, runtime
//===----------------------------------------------------------------------===//

extern "C" {

const char *bptRuntimeLastError(void) { return lastError.c_str(); }

int bptRuntimeGetDeviceCount(int *count) {
  if (!count)
    return nullArgument(__func__, "count");
  const Driver *driver = nullptr;
  int status = getDriver(&driver);
  if (status == bptRuntimeErrorNoDevice) {
    // cuInit reports a machine without devices as an error; here it is 0.
    *count = 0;
    return bptRuntimeSuccess;
  }
  if (status)
    return status;
  int result = 0;
  if (CUresult error = driver->cuDeviceGetCount(&result))
    return fail(bptRuntimeErrorCuda,
                format("counting CUDA devices: cuDeviceGetCount failed: %s",
                       describeError(*driver, error).c_str()));
  *count = result;
  return bptRuntimeSuccess;
}

int bptRuntimeIsAvailable(char *message, size_t capacity) {
  auto report = [&](const std::string &text) {
    if (message && capacity > 0) {
      size_t length = std::min(text.size(), capacity - 1);
      std::memcpy(message, text.data(), length);
      message[length] = '\0';
    }
  };

  int count = 0;
  if (bptRuntimeGetDeviceCount(&count) != bptRuntimeSuccess) {
    report(lastError);
    return 0;
  }
  if (count == 0) {
    fail(bptRuntimeErrorNoDevice, "no CUDA device found");
    report(lastError);
    return 0;
  }

  const Driver *driver = nullptr;
  if (getDriver(&driver) != bptRuntimeSuccess) {
    report(lastError);
    return 0;
  }
  int version = 0;
  driver->cuDriverGetVersion(&version);
  char name[256] = "unknown device";
  CUdevice device = 0;
  int major = 0, minor = 0;
  if (driver->cuDeviceGet(&device, 0) == CUDA_SUCCESS) {
    driver->cuDeviceGetName(name, sizeof(name), device);
    driver->cuDeviceGetAttribute(
        &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
    driver->cuDeviceGetAttribute(
        &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
  }
  report(format("%d CUDA device%s, driver CUDA %d.%d; device 0: %s (sm_%d%d)",
                count, count == 1 ? "" : "s", version / 1000,
                (version % 1000) / 10, name, major, minor));
  return 1;
}

int bptRuntimeCreate(int device, bptRuntime *runtime) {
  if (!runtime)
    return nullArgument(__func__, "runtime");
  const Driver *driver = nullptr;
  if (int status = getDriver(&driver))
    return status;

  int count = 0;
  if (CUresult error = driver->cuDeviceGetCount(&count))
    return fail(bptRuntimeErrorCuda,
                format("counting CUDA devices: cuDeviceGetCount failed: %s",
                       describeError(*driver, error).c_str()));
  if (count == 0)
    return fail(bptRuntimeErrorNoDevice, "no CUDA device found");
  if (device < 0 || device >= count)
    return fail(bptRuntimeErrorNoDevice,
                format("CUDA device %d requested, but this machine has %d "
                       "device%s (0 to %d)",
                       device, count, count == 1 ? "" : "s", count - 1));

  auto impl = std::make_unique<RuntimeImpl>();
  impl->driver = driver;
  impl->ordinal = device;
  std::string what = format("opening CUDA device %d", device);
  if (CUresult error = driver->cuDeviceGet(&impl->device, device))
    return impl->cudaFailure(error, "cuDeviceGet", what);
  char name[256] = {0};
  if (CUresult error =
          driver->cuDeviceGetName(name, sizeof(name) - 1, impl->device))
    return impl->cudaFailure(error, "cuDeviceGetName", what);
  impl->deviceName = name;

  struct {
    int attribute;
    int *value;
    const char *description;
  } attributes[] = {
      {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
       &impl->computeCapabilityMajor, "compute capability"},
      {CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
       &impl->computeCapabilityMinor, "compute capability"},
      {CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
       &impl->maxSharedMemoryPerBlockOptin, "maximum shared memory per block"},
  };
  for (auto &attribute : attributes)
    if (CUresult error = driver->cuDeviceGetAttribute(
            attribute.value, attribute.attribute, impl->device))
      return impl->cudaFailure(error, "cuDeviceGetAttribute",
                               format("reading the %s of CUDA device %d",
                                      attribute.description, device));

  const char *dependent = std::getenv("BPT_DEPENDENT_LAUNCH");
  impl->dependentLaunch = impl->computeCapabilityMajor >= 9 &&
                          driver->cuLaunchKernelEx &&
                          !(dependent && std::string_view(dependent) == "0");

  if (CUresult error =
          driver->cuDevicePrimaryCtxRetain(&impl->context, impl->device))
    return impl->cudaFailure(error, "cuDevicePrimaryCtxRetain",
                             "creating the context of " +
                                 impl->describeDevice());
  if (int status = impl->makeCurrent()) {
    driver->cuDevicePrimaryCtxRelease(impl->device);
    return status;
  }
  runtime->ptr = impl.release();
  return bptRuntimeSuccess;
}

int bptRuntimeDestroy(bptRuntime runtime) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return bptRuntimeSuccess;
  std::unique_ptr<RuntimeImpl> owner(impl);
  if (CUresult error = impl->driver->cuDevicePrimaryCtxRelease(impl->device))
    return impl->cudaFailure(error, "cuDevicePrimaryCtxRelease",
                             "releasing the context of " +
                                 impl->describeDevice());
  return bptRuntimeSuccess;
}

int bptRuntimeGetDeviceInfo(bptRuntime runtime, bptDeviceInfo *info) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!info)
    return nullArgument(__func__, "info");
  if (int status = impl->makeCurrent())
    return status;
  const Driver &driver = *impl->driver;
  bptDeviceInfo result;
  std::memset(&result, 0, sizeof(result));
  std::snprintf(result.name, sizeof(result.name), "%s",
                impl->deviceName.c_str());
  result.ordinal = impl->ordinal;
  result.computeCapabilityMajor = impl->computeCapabilityMajor;
  result.computeCapabilityMinor = impl->computeCapabilityMinor;
  result.maxSharedMemoryPerBlockOptin = impl->maxSharedMemoryPerBlockOptin;
  std::string what = "reading the properties of " + impl->describeDevice();
  if (CUresult error = driver.cuDeviceGetAttribute(
          &result.multiprocessorCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
          impl->device))
    return impl->cudaFailure(error, "cuDeviceGetAttribute", what);
  if (CUresult error = driver.cuDriverGetVersion(&result.driverVersion))
    return impl->cudaFailure(error, "cuDriverGetVersion", what);
  size_t total = 0, freeBytes = 0, contextTotal = 0;
  if (CUresult error = driver.cuDeviceTotalMem(&total, impl->device))
    return impl->cudaFailure(error, "cuDeviceTotalMem_v2", what);
  if (CUresult error = driver.cuMemGetInfo(&freeBytes, &contextTotal))
    return impl->cudaFailure(error, "cuMemGetInfo_v2", what);
  result.totalMemoryBytes = total;
  result.freeMemoryBytes = freeBytes;
  *info = result;
  return bptRuntimeSuccess;
}

int bptRuntimeSynchronize(bptRuntime runtime) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (int status = impl->makeCurrent())
    return status;
  if (CUresult error = impl->driver->cuCtxSynchronize()) {
    std::string what =
        impl->numPendingLaunches
            ? "waiting for the kernels launched on " + impl->describeDevice()
            : "waiting for the work queued on " + impl->describeDevice();
    return impl->cudaFailure(error, "cuCtxSynchronize", what);
  }
  impl->forgetLaunches();
  return bptRuntimeSuccess;
}

//===----------------------------------------------------------------------===//
// C API: device memory
//===----------------------------------------------------------------------===//

int bptRuntimeMalloc(bptRuntime runtime, size_t bytes,
                     uint64_t *devicePointer) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!devicePointer)
    return nullArgument(__func__, "devicePointer");
  if (bytes == 0)
    return fail(bptRuntimeErrorInvalidArgument,
                "bptRuntimeMalloc: cannot allocate 0 bytes of device memory");
  if (int status = impl->makeCurrent())
    return status;
  CUdeviceptr pointer = 0;
  if (CUresult error = impl->driver->cuMemAlloc(&pointer, bytes)) {
    std::string what =
        format("allocating %s (%zu bytes) on %s", formatBytes(bytes).c_str(),
               bytes, impl->describeDevice().c_str());
    size_t freeBytes = 0, totalBytes = 0;
    if (error == CUDA_ERROR_OUT_OF_MEMORY &&
        impl->driver->cuMemGetInfo(&freeBytes, &totalBytes) == CUDA_SUCCESS)
      what += format(" with %s free of %s", formatBytes(freeBytes).c_str(),
                     formatBytes(totalBytes).c_str());
    return impl->cudaFailure(error, "cuMemAlloc_v2", what);
  }
  *devicePointer = pointer;
  return bptRuntimeSuccess;
}

int bptRuntimeFree(bptRuntime runtime, uint64_t devicePointer) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (devicePointer == 0)
    return bptRuntimeSuccess;
  if (int status = impl->makeCurrent())
    return status;
  if (CUresult error = impl->driver->cuMemFree(devicePointer))
    return impl->cudaFailure(error, "cuMemFree_v2",
                             format("freeing device memory at 0x%llx",
                                    (unsigned long long)devicePointer));
  return bptRuntimeSuccess;
}

int bptRuntimeCopyHostToDevice(bptRuntime runtime, uint64_t destination,
                               const void *source, size_t bytes) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (bytes == 0)
    return bptRuntimeSuccess;
  if (!source)
    return nullArgument(__func__, "source");
  if (int status = impl->makeCurrent())
    return status;
  if (CUresult error = impl->driver->cuMemcpyHtoD(destination, source, bytes))
    return impl->cudaFailure(
        error, "cuMemcpyHtoD_v2",
        format("copying %zu bytes from the host to device address 0x%llx",
               bytes, (unsigned long long)destination));
  return bptRuntimeSuccess;
}

int bptRuntimeCopyDeviceToHost(bptRuntime runtime, void *destination,
                               uint64_t source, size_t bytes) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (bytes == 0)
    return bptRuntimeSuccess;
  if (!destination)
    return nullArgument(__func__, "destination");
  if (int status = impl->makeCurrent())
    return status;
  if (CUresult error = impl->driver->cuMemcpyDtoH(destination, source, bytes))
    return impl->cudaFailure(
        error, "cuMemcpyDtoH_v2",
        format("copying %zu bytes from device address 0x%llx to the host",
               bytes, (unsigned long long)source));
  return bptRuntimeSuccess;
}

int bptRuntimeMemset(bptRuntime runtime, uint64_t destination, uint8_t value,
                     size_t bytes) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (bytes == 0)
    return bptRuntimeSuccess;
  if (int status = impl->makeCurrent())
    return status;
  if (CUresult error = impl->driver->cuMemsetD8(destination, value, bytes))
    return impl->cudaFailure(
        error, "cuMemsetD8_v2",
        format("setting %zu bytes at device address 0x%llx to 0x%02x", bytes,
               (unsigned long long)destination, unsigned(value)));
  return bptRuntimeSuccess;
}

//===----------------------------------------------------------------------===//
// C API: tensor maps
//===----------------------------------------------------------------------===//

int bptTensorMapGetEncoding(uint64_t globalAddress, const char *dtype, int rank,
                            const int64_t *shape, const int64_t *box,
                            int swizzleBytes, int l2PromotionBytes, int oobNaN,
                            bptTensorMapEncoding *encoding) {
  return computeTensorMapEncoding(__func__, globalAddress, dtype, rank, shape,
                                  box, swizzleBytes, l2PromotionBytes, oobNaN,
                                  encoding);
}

int bptRuntimeCreateTensorMap(bptRuntime runtime, uint64_t globalAddress,
                              const char *dtype, int rank, const int64_t *shape,
                              const int64_t *box, int swizzleBytes,
                              int l2PromotionBytes, int oobNaN,
                              uint64_t *deviceAddress) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!deviceAddress)
    return nullArgument(__func__, "deviceAddress");
  bptTensorMapEncoding encoding;
  if (int status = computeTensorMapEncoding(
          __func__, globalAddress, dtype, rank, shape, box, swizzleBytes,
          l2PromotionBytes, oobNaN, &encoding))
    return status;
  const Driver &driver = *impl->driver;
  if (!driver.cuTensorMapEncodeTiled) {
    int version = 0;
    driver.cuDriverGetVersion(&version);
    return fail(bptRuntimeErrorNoDriver,
                format("%s: the NVIDIA driver (CUDA %d.%d) lacks "
                       "cuTensorMapEncodeTiled, which tensor maps need (CUDA "
                       "12.0 or later); update the driver",
                       __func__, version / 1000, (version % 1000) / 10));
  }
  if (int status = impl->makeCurrent())
    return status;

  std::string what = format(
      "encoding a tensor map of %s %s with box %s (swizzle %d bytes) at "
      "device address 0x%llx",
      dtype, formatDims(shape, rank).c_str(), formatDims(box, rank).c_str(),
      swizzleBytes, (unsigned long long)globalAddress);
  CUtensorMap map;
  std::memset(&map, 0, sizeof(map));
  if (CUresult error = driver.cuTensorMapEncodeTiled(
          &map, encoding.dataType, encoding.rank,
          reinterpret_cast<void *>(uintptr_t(globalAddress)),
          encoding.globalDim, encoding.globalStrides, encoding.boxDim,
          encoding.elementStrides, encoding.interleave, encoding.swizzle,
          encoding.l2Promotion, encoding.oobFill))
    return impl->cudaFailure(error, "cuTensorMapEncodeTiled", what);

  uint64_t pointer = 0;
  if (int status = bptRuntimeMalloc(runtime, sizeof(map), &pointer))
    return status;
  if (int status =
          bptRuntimeCopyHostToDevice(runtime, pointer, &map, sizeof(map))) {
    std::string message = lastError;
    bptRuntimeFree(runtime, pointer);
    return fail(status, message);
  }
  *deviceAddress = pointer;
  return bptRuntimeSuccess;
}

//===----------------------------------------------------------------------===//
// C API: modules
//===----------------------------------------------------------------------===//

int bptModuleLoadPTX(bptRuntime runtime, const char *ptx, bptModule *module) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!ptx)
    return nullArgument(__func__, "ptx");
  if (!module)
    return nullArgument(__func__, "module");
  if (int status = impl->makeCurrent())
    return status;

  PTXSummary summary = summarizePTX(ptx);
  constexpr size_t kLogCapacity = 16 * 1024;
  std::vector<char> errorLog(kLogCapacity, '\0');
  std::vector<char> infoLog(kLogCapacity, '\0');
  CUjit_option options[] = {
      CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
      CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES};
  void *optionValues[] = {
      errorLog.data(), reinterpret_cast<void *>(uintptr_t(kLogCapacity - 1)),
      infoLog.data(), reinterpret_cast<void *>(uintptr_t(kLogCapacity - 1))};
  CUmodule loaded = nullptr;
  if (CUresult error = impl->driver->cuModuleLoadDataEx(
          &loaded, ptx, sizeof(options) / sizeof(options[0]), options,
          optionValues)) {
    std::string what =
        format("loading PTX (.version %s, .target %s) on %s",
               summary.version.empty() ? "?" : summary.version.c_str(),
               summary.target.empty() ? "?" : summary.target.c_str(),
               impl->describeDevice().c_str());
    impl->cudaFailure(error, "cuModuleLoadDataEx", what);
    std::string log = trimLog(errorLog.data(), kLogCapacity);
    if (log.empty())
      log = trimLog(infoLog.data(), kLogCapacity);
    if (!log.empty())
      lastError += "\nJIT log:\n" + log;
    return bptRuntimeErrorCuda;
  }

  auto result = std::make_unique<ModuleImpl>();
  result->runtime = impl;
  result->module = loaded;
  result->infoLog = trimLog(infoLog.data(), kLogCapacity);
  result->entryNames = std::move(summary.entries);
  module->ptr = result.release();
  return bptRuntimeSuccess;
}

int bptModuleLoadPTXFile(bptRuntime runtime, const char *path,
                         bptModule *module) {
  if (!unwrap(runtime))
    return nullHandle(__func__, "runtime");
  if (!path)
    return nullArgument(__func__, "path");
  // Not /dev/zero, a FIFO or a directory (read forever or not at all), and
  // not more than any kernel set's PTX (1 GiB, as the manifest reader).
  struct stat info;
  if (::stat(path, &info) != 0)
    return fail(bptRuntimeErrorIO, format("cannot open PTX file '%s': %s", path,
                                          std::strerror(errno)));
  if (!S_ISREG(info.st_mode))
    return fail(bptRuntimeErrorIO,
                format("PTX file '%s' is not a regular file", path));
  if (info.st_size > (off_t(1) << 30))
    return fail(bptRuntimeErrorIO,
                format("PTX file '%s' is %lld bytes, more than the limit of "
                       "%lld",
                       path, (long long)info.st_size, 1LL << 30));
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return fail(bptRuntimeErrorIO, format("cannot open PTX file '%s': %s", path,
                                          std::strerror(errno)));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad())
    return fail(bptRuntimeErrorIO, format("cannot read PTX file '%s': %s", path,
                                          std::strerror(errno)));
  std::string ptx = text.str();
  if (int status = bptModuleLoadPTX(runtime, ptx.c_str(), module)) {
    lastError = format("%s: ", path) + lastError;
    return status;
  }
  return bptRuntimeSuccess;
}

int bptModuleDestroy(bptModule module) {
  ModuleImpl *impl = unwrap(module);
  if (!impl)
    return bptRuntimeSuccess;
  std::unique_ptr<ModuleImpl> owner(impl);
  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  if (CUresult error = runtime.driver->cuModuleUnload(impl->module))
    return runtime.cudaFailure(error, "cuModuleUnload", "unloading a module");
  return bptRuntimeSuccess;
}

const char *bptModuleGetInfoLog(bptModule module) {
  ModuleImpl *impl = unwrap(module);
  return impl ? impl->infoLog.c_str() : "";
}

/// bptModuleLaunch, bptModuleLaunchOnStream and bptModuleLaunchWithFlags;
/// `api` names the caller in messages.
static int launchKernel(const char *api, bptModule module, const char *kernel,
                        const uint32_t grid[3], const uint32_t block[3],
                        uint32_t dynamicSharedMemoryBytes, const uint64_t *args,
                        size_t numArgs, uint64_t stream, uint32_t flags) {
  ModuleImpl *impl = unwrap(module);
  if (!impl)
    return nullHandle(api, "module");
  if (!kernel)
    return nullArgument(api, "kernel");
  if (!grid)
    return nullArgument(api, "grid");
  if (!block)
    return nullArgument(api, "block");
  if (numArgs > 0 && !args)
    return nullArgument(api, "args");
  if (flags & ~uint32_t(BPT_LAUNCH_DEPENDENT))
    return fail(bptRuntimeErrorInvalidArgument,
                format("%s: unknown launch flags 0x%x", api,
                       unsigned(flags & ~uint32_t(BPT_LAUNCH_DEPENDENT))));

  // Limits of every CUDA device of compute capability 3.0 and later.
  const uint32_t gridLimits[3] = {0x7fffffffu, 65535u, 65535u};
  const uint32_t blockLimits[3] = {1024u, 1024u, 64u};
  const char *axes = "xyz";
  for (int i = 0; i < 3; ++i) {
    if (grid[i] == 0 || grid[i] > gridLimits[i])
      return fail(bptRuntimeErrorInvalidArgument,
                  format("launching kernel '%s': grid.%c is %u, must be 1 to "
                         "%u",
                         kernel, axes[i], grid[i], gridLimits[i]));
    if (block[i] == 0 || block[i] > blockLimits[i])
      return fail(bptRuntimeErrorInvalidArgument,
                  format("launching kernel '%s': block.%c is %u, must be 1 to "
                         "%u",
                         kernel, axes[i], block[i], blockLimits[i]));
  }
  uint64_t threads = uint64_t(block[0]) * block[1] * block[2];
  if (threads > 1024)
    return fail(bptRuntimeErrorInvalidArgument,
                format("launching kernel '%s': block %ux%ux%u has %llu "
                       "threads, more than 1024",
                       kernel, block[0], block[1], block[2],
                       (unsigned long long)threads));

  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  KernelInfo *info = nullptr;
  if (int status = getKernel(*impl, kernel, &info))
    return status;

  if (info->numParams >= 0 && size_t(info->numParams) != numArgs)
    return fail(bptRuntimeErrorInvalidArgument,
                format("launching kernel '%s': it takes %ld parameter%s, but "
                       "%zu argument%s were given",
                       kernel, info->numParams, info->numParams == 1 ? "" : "s",
                       numArgs, numArgs == 1 ? "" : "s"));
  for (size_t i = 0; i < info->paramSizes.size(); ++i)
    if (info->paramSizes[i] != sizeof(uint64_t))
      return fail(bptRuntimeErrorInvalidArgument,
                  format("launching kernel '%s': parameter %zu is %zu bytes, "
                         "not a device pointer (8 bytes); this runtime passes "
                         "only device pointers",
                         kernel, i, info->paramSizes[i]));
  if (threads > uint64_t(info->maxThreadsPerBlock))
    return fail(bptRuntimeErrorInvalidArgument,
                format("launching kernel '%s': block %ux%ux%u has %llu "
                       "threads, but the kernel can run at most %d per block "
                       "(it uses %d registers per thread)",
                       kernel, block[0], block[1], block[2],
                       (unsigned long long)threads, info->maxThreadsPerBlock,
                       info->numRegisters));

  if (dynamicSharedMemoryBytes > uint32_t(info->maxDynamicSharedBytes)) {
    uint64_t needed =
        uint64_t(dynamicSharedMemoryBytes) + uint64_t(info->staticSharedBytes);
    if (needed > uint64_t(runtime.maxSharedMemoryPerBlockOptin))
      return fail(
          bptRuntimeErrorInvalidArgument,
          format(
              "launching kernel '%s': it needs %u bytes of dynamic shared "
              "memory%s per block, but %s allows at most %d bytes per block "
              "(its opt-in maximum); use smaller tiles",
              kernel, dynamicSharedMemoryBytes,
              info->staticSharedBytes
                  ? format(" (plus %d static)", info->staticSharedBytes).c_str()
                  : "",
              runtime.describeDevice().c_str(),
              runtime.maxSharedMemoryPerBlockOptin));
    if (CUresult error = runtime.driver->cuFuncSetAttribute(
            info->function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            int(dynamicSharedMemoryBytes)))
      return runtime.cudaFailure(
          error, "cuFuncSetAttribute",
          format("raising the dynamic shared memory limit of kernel '%s' "
                 "from %d to %u bytes",
                 kernel, info->maxDynamicSharedBytes,
                 dynamicSharedMemoryBytes));
    info->maxDynamicSharedBytes = int(dynamicSharedMemoryBytes);
  }

  // cuLaunchKernel takes the address of each parameter's value.
  constexpr size_t kInlineArgs = 32;
  uint64_t inlineValues[kInlineArgs];
  void *inlinePointers[kInlineArgs];
  std::vector<uint64_t> heapValues;
  std::vector<void *> heapPointers;
  uint64_t *values = inlineValues;
  void **pointers = inlinePointers;
  if (numArgs > kInlineArgs) {
    heapValues.resize(numArgs);
    heapPointers.resize(numArgs);
    values = heapValues.data();
    pointers = heapPointers.data();
  }
  for (size_t i = 0; i < numArgs; ++i) {
    values[i] = args[i];
    pointers[i] = &values[i];
  }

  CUstream cuStream = reinterpret_cast<CUstream>(uintptr_t(stream));
  CUresult launched;
  const bool dependent =
      (flags & BPT_LAUNCH_DEPENDENT) && runtime.dependentLaunch;
  if (dependent) {
    // The kernel waits for its predecessor itself (griddepcontrol.wait):
    // its blocks may be scheduled while that kernel still runs.
    CUlaunchAttribute attribute{};
    attribute.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attribute.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig config{grid[0],
                          grid[1],
                          grid[2],
                          block[0],
                          block[1],
                          block[2],
                          dynamicSharedMemoryBytes,
                          cuStream,
                          &attribute,
                          1};
    launched = runtime.driver->cuLaunchKernelEx(
        &config, info->function, numArgs ? pointers : nullptr, nullptr);
  } else {
    launched = runtime.driver->cuLaunchKernel(
        info->function, grid[0], grid[1], grid[2], block[0], block[1], block[2],
        dynamicSharedMemoryBytes, cuStream, numArgs ? pointers : nullptr,
        nullptr);
  }
  if (CUresult error = launched) {
    std::string what = format(
        "launching kernel '%s' (grid %ux%ux%u, block %ux%ux%u, %u bytes of "
        "dynamic shared memory, %d registers per thread%s)",
        kernel, grid[0], grid[1], grid[2], block[0], block[1], block[2],
        dynamicSharedMemoryBytes, info->numRegisters,
        stream ? format(", stream 0x%llx", (unsigned long long)stream).c_str()
               : "");
    return runtime.cudaFailure(
        error, dependent ? "cuLaunchKernelEx" : "cuLaunchKernel", what);
  }
  runtime.rememberLaunch(kernel);
  return bptRuntimeSuccess;
}

int bptModuleLaunch(bptModule module, const char *kernel,
                    const uint32_t grid[3], const uint32_t block[3],
                    uint32_t dynamicSharedMemoryBytes, const uint64_t *args,
                    size_t numArgs) {
  return launchKernel(__func__, module, kernel, grid, block,
                      dynamicSharedMemoryBytes, args, numArgs, /*stream=*/0,
                      /*flags=*/0);
}

int bptModuleLaunchOnStream(bptModule module, const char *kernel,
                            const uint32_t grid[3], const uint32_t block[3],
                            uint32_t dynamicSharedMemoryBytes,
                            const uint64_t *args, size_t numArgs,
                            uint64_t stream) {
  return launchKernel(__func__, module, kernel, grid, block,
                      dynamicSharedMemoryBytes, args, numArgs, stream,
                      /*flags=*/0);
}

int bptModuleLaunchWithFlags(bptModule module, const char *kernel,
                             const uint32_t grid[3], const uint32_t block[3],
                             uint32_t dynamicSharedMemoryBytes,
                             const uint64_t *args, size_t numArgs,
                             uint64_t stream, uint32_t flags) {
  return launchKernel(__func__, module, kernel, grid, block,
                      dynamicSharedMemoryBytes, args, numArgs, stream, flags);
}

//===----------------------------------------------------------------------===//
// C API: timing
//===----------------------------------------------------------------------===//

int bptRuntimeTimeLaunches(bptRuntime runtime, int iterations,
                           bptRuntimeLaunchCallback body, void *userData,
                           float *milliseconds) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!body)
    return nullArgument(__func__, "body");
  if (!milliseconds)
    return nullArgument(__func__, "milliseconds");
  if (iterations < 1)
    return fail(bptRuntimeErrorInvalidArgument,
                format("bptRuntimeTimeLaunches: iterations is %d, must be at "
                       "least 1",
                       iterations));
  if (int status = impl->makeCurrent())
    return status;

  bptTimer timer = {nullptr};
  if (int status = bptTimerCreate(runtime, &timer))
    return status;
  std::unique_ptr<TimerImpl> owner(unwrap(timer));
  auto destroyEvents = [&] {
    impl->driver->cuEventDestroy(owner->start);
    impl->driver->cuEventDestroy(owner->stop);
  };

  int status = bptTimerStart(timer);
  for (int i = 0; status == bptRuntimeSuccess && i < iterations; ++i) {
    std::string before = lastError;
    if (int result = body(userData, i)) {
      std::string message =
          format("timing stopped: the launch callback returned %d at "
                 "iteration %d of %d",
                 result, i, iterations);
      if (lastError != before && !lastError.empty())
        message += ": " + lastError;
      status = fail(bptRuntimeErrorCallback, message);
    }
  }
  if (status == bptRuntimeSuccess)
    status = finishTiming(*impl, owner->start, owner->stop, milliseconds);
  destroyEvents();
  return status;
}

int bptTimerCreate(bptRuntime runtime, bptTimer *timer) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!timer)
    return nullArgument(__func__, "timer");
  if (int status = impl->makeCurrent())
    return status;
  auto result = std::make_unique<TimerImpl>();
  result->runtime = impl;
  if (int status = createEvent(*impl, &result->start, "timing start"))
    return status;
  if (int status = createEvent(*impl, &result->stop, "timing stop")) {
    impl->driver->cuEventDestroy(result->start);
    return status;
  }
  timer->ptr = result.release();
  return bptRuntimeSuccess;
}

int bptTimerStart(bptTimer timer) {
  TimerImpl *impl = unwrap(timer);
  if (!impl)
    return nullHandle(__func__, "timer");
  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  if (CUresult error = runtime.driver->cuEventRecord(impl->start, nullptr))
    return runtime.cudaFailure(error, "cuEventRecord",
                               "recording the timing start event");
  impl->started = true;
  return bptRuntimeSuccess;
}

int bptTimerStop(bptTimer timer, float *milliseconds) {
  TimerImpl *impl = unwrap(timer);
  if (!impl)
    return nullHandle(__func__, "timer");
  if (!milliseconds)
    return nullArgument(__func__, "milliseconds");
  if (!impl->started)
    return fail(bptRuntimeErrorInvalidArgument,
                "bptTimerStop: the timer was not started (call bptTimerStart "
                "first)");
  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  impl->started = false;
  return finishTiming(runtime, impl->start, impl->stop, milliseconds);
}

int bptTimerDestroy(bptTimer timer) {
  TimerImpl *impl = unwrap(timer);
  if (!impl)
    return bptRuntimeSuccess;
  std::unique_ptr<TimerImpl> owner(impl);
  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  CUresult startError = runtime.driver->cuEventDestroy(impl->start);
  CUresult stopError = runtime.driver->cuEventDestroy(impl->stop);
  if (CUresult error = startError ? startError : stopError)
    return runtime.cudaFailure(error, "cuEventDestroy_v2",
                               "destroying a timer's events");
  return bptRuntimeSuccess;
}

//===----------------------------------------------------------------------===//
// C API: CUDA graphs
//===----------------------------------------------------------------------===//

/// Fails unless the driver has the graph functions.
static int requireGraphs(const char *api, RuntimeImpl &runtime) {
  const Driver &driver = *runtime.driver;
  if (driver.cuStreamCreate && driver.cuStreamDestroy &&
      driver.cuStreamBeginCapture && driver.cuStreamEndCapture &&
      driver.cuGraphInstantiateWithFlags && driver.cuGraphLaunch &&
      driver.cuGraphExecDestroy && driver.cuGraphDestroy)
    return bptRuntimeSuccess;
  return fail(bptRuntimeErrorCuda,
              format("%s: this driver has no CUDA graph functions "
                     "(cuStreamBeginCapture_v2, cuGraphInstantiateWithFlags, "
                     "...: CUDA 11.4 and later)",
                     api));
}

int bptGraphBeginRecording(bptRuntime runtime, uint64_t *stream) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!stream)
    return nullArgument(__func__, "stream");
  if (int status = requireGraphs(__func__, *impl))
    return status;
  if (int status = impl->makeCurrent())
    return status;
  const Driver &driver = *impl->driver;
  CUstream recording = nullptr;
  if (CUresult error =
          driver.cuStreamCreate(&recording, CU_STREAM_NON_BLOCKING))
    return impl->cudaFailure(error, "cuStreamCreate",
                             "creating the stream to record a graph on");
  if (CUresult error = driver.cuStreamBeginCapture(
          recording, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)) {
    driver.cuStreamDestroy(recording);
    return impl->cudaFailure(error, "cuStreamBeginCapture_v2",
                             "starting to record a graph");
  }
  *stream = reinterpret_cast<uint64_t>(recording);
  return bptRuntimeSuccess;
}

int bptGraphEndRecording(bptRuntime runtime, uint64_t stream, bptGraph *graph) {
  RuntimeImpl *impl = unwrap(runtime);
  if (!impl)
    return nullHandle(__func__, "runtime");
  if (!stream)
    return nullArgument(__func__, "stream");
  if (int status = requireGraphs(__func__, *impl))
    return status;
  if (int status = impl->makeCurrent())
    return status;
  const Driver &driver = *impl->driver;
  auto recording = reinterpret_cast<CUstream>(stream);
  auto result = std::make_unique<GraphImpl>();
  result->runtime = impl;
  CUresult ended = driver.cuStreamEndCapture(recording, &result->graph);
  // The stream is the recording's own: gone whatever happened.
  driver.cuStreamDestroy(recording);
  if (ended)
    return impl->cudaFailure(ended, "cuStreamEndCapture",
                             "ending a graph's recording (a call between "
                             "begin and end that cannot be recorded, such "
                             "as a synchronization, invalidates it)");
  if (!graph) {
    driver.cuGraphDestroy(result->graph);
    return nullArgument(__func__, "graph");
  }
  if (CUresult error =
          driver.cuGraphInstantiateWithFlags(&result->exec, result->graph, 0)) {
    driver.cuGraphDestroy(result->graph);
    return impl->cudaFailure(error, "cuGraphInstantiateWithFlags",
                             "instantiating a recorded graph");
  }
  graph->ptr = result.release();
  return bptRuntimeSuccess;
}

int bptGraphLaunch(bptGraph graph, uint64_t stream) {
  GraphImpl *impl = unwrap(graph);
  if (!impl)
    return nullHandle(__func__, "graph");
  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  if (CUresult error = runtime.driver->cuGraphLaunch(
          impl->exec, reinterpret_cast<CUstream>(stream)))
    return runtime.cudaFailure(error, "cuGraphLaunch", "launching a graph");
  return bptRuntimeSuccess;
}

int bptGraphDestroy(bptGraph graph) {
  GraphImpl *impl = unwrap(graph);
  if (!impl)
    return bptRuntimeSuccess;
  std::unique_ptr<GraphImpl> owner(impl);
  RuntimeImpl &runtime = *impl->runtime;
  if (int status = runtime.makeCurrent())
    return status;
  CUresult execError = runtime.driver->cuGraphExecDestroy(impl->exec);
  CUresult graphError = runtime.driver->cuGraphDestroy(impl->graph);
  if (execError)
    return runtime.cudaFailure(execError, "cuGraphExecDestroy",
                               "destroying a graph");
  if (graphError)
    return runtime.cudaFailure(graphError, "cuGraphDestroy",
                               "destroying a graph");
  return bptRuntimeSuccess;
}

} // extern "C"
