//===-- bpt-c/Runtime.h - C API of the CUDA driver runtime --------*- C -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Loads the PTX that bpt-compile writes, allocates device memory, builds TMA
// tensor maps, launches kernels and times them, through the CUDA driver API.
// The driver (libcuda.so.1) is opened at run time with dlopen, so a program
// linked with this library builds and starts on a machine without a GPU or
// driver and can ask bptRuntimeIsAvailable() whether it can run kernels.
//
// Conventions (those of MLIR's C API):
// - handles are structs holding one pointer; a null handle has ptr == NULL;
// - every call that can fail returns an int status: 0 (bptRuntimeSuccess) on
//   success, otherwise one of the bptRuntimeStatus codes, and stores a
//   message a person can act on, which bptRuntimeLastError() returns;
// - out-parameters come last and are written only on success.
//
// Threading: the last error is per thread. A runtime and its modules, buffers
// and timers may be used from any thread (each call makes the runtime's
// context current), but from one thread at a time.
//
// All work goes to the context's default (legacy) stream, in call order,
// except the launches of bptModuleLaunchOnStream(), which go to the stream
// given. Launches are asynchronous: an error in a running kernel shows at the next
// bptRuntimeSynchronize(), device-to-host copy or timer stop, and the message
// names the kernels launched since the last synchronization.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_C_RUNTIME_H
#define BPT_C_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//===----------------------------------------------------------------------===//
// Status and errors
//===----------------------------------------------------------------------===//

/// The status codes that the calls return. Anything but bptRuntimeSuccess is
/// a failure whose message bptRuntimeLastError() returns.
typedef enum bptRuntimeStatus {
  /// The call succeeded.
  bptRuntimeSuccess = 0,
  /// libcuda.so.1 could not be loaded, lacks a needed function, or cuInit
  /// failed.
  bptRuntimeErrorNoDriver = 1,
  /// The driver loaded but there is no CUDA device, or not the one asked for.
  bptRuntimeErrorNoDevice = 2,
  /// The caller passed a bad argument (null handle, zero size, bad launch
  /// dimensions, unknown kernel, too much shared memory, ...).
  bptRuntimeErrorInvalidArgument = 3,
  /// A CUDA driver call failed; the message names the call and the error.
  bptRuntimeErrorCuda = 4,
  /// A file could not be read.
  bptRuntimeErrorIO = 5,
  /// A callback given to bptRuntimeTimeLaunches() returned non-zero.
  bptRuntimeErrorCallback = 6,
} bptRuntimeStatus;

/// The message of the most recent failed call on this thread, or "" if none
/// failed yet. Successful calls leave it unchanged. The pointer stays valid
/// until the next failing call on this thread.
const char *bptRuntimeLastError(void);

/// Whether a CUDA driver and at least one device can be found. Never aborts:
/// returns 1 when a device is usable, 0 otherwise. When `message` is not
/// NULL, writes at most `capacity` bytes (NUL-terminated) to it: a line
/// describing the devices found, or why none can be used, for example
/// "no NVIDIA driver found (libcuda.so.1 could not be loaded: ...)" or
/// "no CUDA device found". On 0 the reason is also bptRuntimeLastError().
///
/// The environment variable BPT_LIBCUDA, if set, names the driver library to
/// load instead of libcuda.so.1.
int bptRuntimeIsAvailable(char *message, size_t capacity);

/// Writes the number of CUDA devices to `*count`. Fails with
/// bptRuntimeErrorNoDriver if no driver can be loaded.
int bptRuntimeGetDeviceCount(int *count);

//===----------------------------------------------------------------------===//
// Runtime: driver + device + primary context
//===----------------------------------------------------------------------===//

/// A loaded driver bound to one device and that device's primary context
/// (the context the CUDA runtime API, PyTorch and CuPy use, so device
/// pointers can be shared with them).
typedef struct bptRuntime {
  void *ptr;
} bptRuntime;

/// Whether `runtime` is the null handle.
static inline bool bptRuntimeIsNull(bptRuntime runtime) {
  return runtime.ptr == NULL;
}

/// Loads the driver, initialises it and retains the primary context of
/// device `device` (0-based). Fails with bptRuntimeErrorNoDriver or
/// bptRuntimeErrorNoDevice and a message saying what is missing.
int bptRuntimeCreate(int device, bptRuntime *runtime);

/// Releases the runtime's primary context. Every module and timer of the
/// runtime must have been destroyed first; device memory still allocated is
/// freed when the last user of the primary context releases it. Destroying
/// the null handle does nothing.
int bptRuntimeDestroy(bptRuntime runtime);

/// What the runtime knows about its device.
typedef struct bptDeviceInfo {
  /// The device's name, e.g. "NVIDIA H100 80GB HBM3" (NUL-terminated).
  char name[256];
  /// The device index given to bptRuntimeCreate().
  int ordinal;
  /// Compute capability, e.g. 9 and 0 for sm_90.
  int computeCapabilityMajor;
  /// See computeCapabilityMajor.
  int computeCapabilityMinor;
  /// Number of streaming multiprocessors.
  int multiprocessorCount;
  /// The most shared memory one block may use, in bytes, once a kernel opts
  /// in (CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN).
  int maxSharedMemoryPerBlockOptin;
  /// The driver's CUDA version, e.g. 13000 for 13.0.
  int driverVersion;
  /// Device memory in bytes.
  uint64_t totalMemoryBytes;
  /// Device memory free at the time of the call, in bytes.
  uint64_t freeMemoryBytes;
} bptDeviceInfo;

/// Fills `*info` for the runtime's device (free memory is read now).
int bptRuntimeGetDeviceInfo(bptRuntime runtime, bptDeviceInfo *info);

/// Waits for all work queued on the runtime's context. A kernel that failed
/// while running is reported here, with the names of the kernels launched
/// since the last synchronization.
int bptRuntimeSynchronize(bptRuntime runtime);

//===----------------------------------------------------------------------===//
// Device memory
//===----------------------------------------------------------------------===//

/// Allocates `bytes` (> 0) of device memory and writes its address to
/// `*devicePointer`. On failure the message says how much memory is free.
int bptRuntimeMalloc(bptRuntime runtime, size_t bytes, uint64_t *devicePointer);

/// Frees memory from bptRuntimeMalloc(). Freeing 0 does nothing.
int bptRuntimeFree(bptRuntime runtime, uint64_t devicePointer);

/// Copies `bytes` from host memory `source` to device address `destination`.
/// Waits for earlier work on the default stream.
int bptRuntimeCopyHostToDevice(bptRuntime runtime, uint64_t destination,
                               const void *source, size_t bytes);

/// Copies `bytes` from device address `source` to host memory `destination`.
/// Waits for earlier work, so it reports errors of kernels still running.
int bptRuntimeCopyDeviceToHost(bptRuntime runtime, void *destination,
                               uint64_t source, size_t bytes);

/// Sets `bytes` bytes at device address `destination` to `value`.
int bptRuntimeMemset(bptRuntime runtime, uint64_t destination, uint8_t value,
                     size_t bytes);

//===----------------------------------------------------------------------===//
// Tensor maps (TMA descriptors, Hopper and later)
//===----------------------------------------------------------------------===//

/// The most dimensions a tensor map has.
#define BPT_TENSOR_MAP_MAX_RANK 5

/// The arguments of the driver's cuTensorMapEncodeTiled for one tensor map,
/// as bptTensorMapGetEncoding() computes them: dimensions innermost first,
/// enums with the values of cuda.h.
typedef struct bptTensorMapEncoding {
  /// CUtensorMapDataType: 6 (FLOAT16), 7 (FLOAT32) or 9 (BFLOAT16).
  int dataType;
  /// 1 to BPT_TENSOR_MAP_MAX_RANK.
  uint32_t rank;
  /// The tensor's address (16-byte aligned).
  uint64_t globalAddress;
  /// Elements per dimension, innermost first.
  uint64_t globalDim[BPT_TENSOR_MAP_MAX_RANK];
  /// Byte strides of dimensions 1 .. rank-1 (dimension 0 is contiguous).
  uint64_t globalStrides[BPT_TENSOR_MAP_MAX_RANK - 1];
  /// Box (elements per copy) per dimension, innermost first.
  uint32_t boxDim[BPT_TENSOR_MAP_MAX_RANK];
  /// All 1: every element of the box is copied.
  uint32_t elementStrides[BPT_TENSOR_MAP_MAX_RANK];
  /// CUtensorMapInterleave: 0 (NONE).
  int interleave;
  /// CUtensorMapSwizzle: 0 (NONE), 1 (32B), 2 (64B) or 3 (128B).
  int swizzle;
  /// CUtensorMapL2promotion: 0 (NONE), 1 (64B), 2 (128B) or 3 (256B).
  int l2Promotion;
  /// CUtensorMapFloatOOBfill: 0 (NONE: zeros) or 1 (NAN_REQUEST_ZERO_FMA).
  int oobFill;
} bptTensorMapEncoding;

/// Checks the description of a tiled tensor map and computes the arguments
/// of cuTensorMapEncodeTiled into `*encoding`, without the driver (so it
/// works on any machine). The tensor is row-major at device address
/// `globalAddress` (16-byte aligned) with element type `dtype` ("f32",
/// "f16" or "bf16") and `rank` (1 to 5) dimensions `shape`, outermost first;
/// each of its byte strides must be a multiple of 16 (and below 2^40), each
/// dimension at most 2^32. `box` is the part one copy moves, outermost
/// first: each dimension 1 to 256, the innermost one a multiple of 16 bytes
/// and, when swizzled, at most the swizzle span. `swizzleBytes` is 0 (none),
/// 32, 64 or 128; `l2PromotionBytes` 0 (none), 64, 128 or 256; `oobNaN` 1
/// makes out-of-bounds elements read as NaN, 0 as zero. A failure names the
/// argument that is wrong.
int bptTensorMapGetEncoding(uint64_t globalAddress, const char *dtype, int rank,
                            const int64_t *shape, const int64_t *box,
                            int swizzleBytes, int l2PromotionBytes, int oobNaN,
                            bptTensorMapEncoding *encoding);

/// Encodes the tensor map that bptTensorMapGetEncoding() describes with the
/// driver's cuTensorMapEncodeTiled (CUDA 12.0 or later; an older driver
/// fails with bptRuntimeErrorNoDriver), allocates 128 bytes of device memory,
/// copies the CUtensorMap there and writes its address to `*deviceAddress`:
/// the kernel parameter of a TMA copy through a generic pointer. Free it
/// with bptRuntimeFree() once no queued kernel uses it. The copy waits for
/// earlier work on the default stream, as bptRuntimeCopyHostToDevice() does.
int bptRuntimeCreateTensorMap(bptRuntime runtime, uint64_t globalAddress,
                              const char *dtype, int rank, const int64_t *shape,
                              const int64_t *box, int swizzleBytes,
                              int l2PromotionBytes, int oobNaN,
                              uint64_t *deviceAddress);

//===----------------------------------------------------------------------===//
// Modules: loaded PTX, kernel launches
//===----------------------------------------------------------------------===//

/// PTX compiled for the runtime's device by the driver's JIT compiler.
typedef struct bptModule {
  void *ptr;
} bptModule;

/// Whether `module` is the null handle.
static inline bool bptModuleIsNull(bptModule module) {
  return module.ptr == NULL;
}

/// Compiles the NUL-terminated PTX text `ptx` for the runtime's device. On
/// failure the message gives the PTX's .version and .target, the device's
/// compute capability and the JIT compiler's error log.
int bptModuleLoadPTX(bptRuntime runtime, const char *ptx, bptModule *module);

/// Reads the PTX file at `path` and loads it as bptModuleLoadPTX() does.
int bptModuleLoadPTXFile(bptRuntime runtime, const char *path,
                         bptModule *module);

/// Unloads the module. Destroying the null handle does nothing.
int bptModuleDestroy(bptModule module);

/// The JIT compiler's information log for the module (may be empty). The
/// pointer is valid until the module is destroyed.
const char *bptModuleGetInfoLog(bptModule module);

/// Queues kernel `kernel` of `module` on the default stream.
///
/// `grid` and `block` are {x, y, z}, each >= 1, with at most 1024 threads per
/// block. `dynamicSharedMemoryBytes` is the dynamic shared memory per block;
/// above what the kernel allows by default (48 KiB less its static shared
/// memory), the kernel's CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES is
/// raised, and the launch fails with a message naming both numbers when the
/// device's opt-in maximum is exceeded.
///
/// The kernel takes `numArgs` parameters, each one device pointer (of a
/// buffer or of a tensor map): `args[i]` is parameter i. Where the driver can
/// tell (it exports cuFuncGetParamCount, as CUDA 13 drivers may) a different
/// parameter count is an error.
int bptModuleLaunch(bptModule module, const char *kernel,
                    const uint32_t grid[3], const uint32_t block[3],
                    uint32_t dynamicSharedMemoryBytes, const uint64_t *args,
                    size_t numArgs);

/// As bptModuleLaunch(), on `stream`: a CUstream of the device's primary
/// context (the one the runtime uses, as PyTorch and CuPy do), passed as an
/// integer (e.g. torch.cuda.current_stream().cuda_stream), or 0 for the
/// default stream. The kernel reads its buffers and tensor maps when it
/// runs: work on other streams that writes them must be ordered before it
/// by the caller. Tensor maps are written by bptRuntimeCreateTensorMap()
/// with a copy on the default stream, which a non-blocking stream does not
/// wait for: synchronize (bptRuntimeSynchronize()) between creating a map
/// and a launch on such a stream that reads it.
int bptModuleLaunchOnStream(bptModule module, const char *kernel,
                            const uint32_t grid[3], const uint32_t block[3],
                            uint32_t dynamicSharedMemoryBytes,
                            const uint64_t *args, size_t numArgs,
                            uint64_t stream);

/// Flags of bptModuleLaunchWithFlags().
enum {
  /// The kernel begins with `griddepcontrol.wait`, before it touches global
  /// memory (bpt-compile's kernels for sm_90 and later: manifest launches
  /// with "dependent": true). It is then launched with programmatic stream
  /// serialization, so that its blocks may be scheduled while the stream's
  /// previous kernel finishes. Ignored (a plain launch) before sm_90, with
  /// a driver without cuLaunchKernelEx, or when the environment sets
  /// BPT_DEPENDENT_LAUNCH=0. Never set it for a kernel without the wait: it
  /// could read its inputs before they are written.
  BPT_LAUNCH_DEPENDENT = 1u << 0,
};

/// As bptModuleLaunchOnStream(), with `flags` (BPT_LAUNCH_*); unknown flags
/// are an error.
int bptModuleLaunchWithFlags(bptModule module, const char *kernel,
                             const uint32_t grid[3], const uint32_t block[3],
                             uint32_t dynamicSharedMemoryBytes,
                             const uint64_t *args, size_t numArgs,
                             uint64_t stream, uint32_t flags);

//===----------------------------------------------------------------------===//
// Timing with CUDA events
//===----------------------------------------------------------------------===//

/// The body timed by bptRuntimeTimeLaunches(): queues the work of iteration
/// `iteration` (usually kernel launches) and returns 0, or non-zero to stop.
typedef int (*bptRuntimeLaunchCallback)(void *userData, int iteration);

/// Records an event, calls `body(userData, i)` for i = 0 .. iterations-1,
/// records a second event, waits for it and writes the GPU time between the
/// events, in milliseconds, for all iterations together, to `*milliseconds`.
/// If `body` returns non-zero the timing stops and the call fails with
/// bptRuntimeErrorCallback; a message the body left through a failing runtime
/// call is kept in the new message.
int bptRuntimeTimeLaunches(bptRuntime runtime, int iterations,
                           bptRuntimeLaunchCallback body, void *userData,
                           float *milliseconds);

/// A pair of CUDA events that time the work queued between start and stop.
typedef struct bptTimer {
  void *ptr;
} bptTimer;

/// Whether `timer` is the null handle.
static inline bool bptTimerIsNull(bptTimer timer) { return timer.ptr == NULL; }

/// Creates a timer on the runtime's default stream.
int bptTimerCreate(bptRuntime runtime, bptTimer *timer);

/// Records the start event.
int bptTimerStart(bptTimer timer);

/// Records the stop event, waits for it and writes the milliseconds since
/// the start event to `*milliseconds`. Fails if the timer was not started.
int bptTimerStop(bptTimer timer, float *milliseconds);

/// Destroys the timer's events. Destroying the null handle does nothing.
int bptTimerDestroy(bptTimer timer);

//===----------------------------------------------------------------------===//
// CUDA graphs: launches recorded once, replayed as one
//===----------------------------------------------------------------------===//

/// An instantiated CUDA graph of recorded launches. A replay queues them all
/// at the cost of one launch, with the arguments they were recorded with
/// (the same buffers and tensor maps: record again when one moves).
typedef struct bptGraph {
  void *ptr;
} bptGraph;

/// Whether `graph` is the null handle.
static inline bool bptGraphIsNull(bptGraph graph) { return graph.ptr == NULL; }

/// Starts recording: creates a stream of the runtime's context whose work
/// is recorded, not run, and writes it to `*stream` (pass it to
/// bptModuleLaunchOnStream()). Nothing that waits for the device may be
/// called on this thread until bptGraphEndRecording() (the recording would
/// be invalidated). Fails with bptRuntimeErrorCuda where the driver has no
/// graph functions (before CUDA 11.4).
int bptGraphBeginRecording(bptRuntime runtime, uint64_t *stream);

/// Ends the recording on `stream` (from bptGraphBeginRecording(), which is
/// destroyed whatever happens) and instantiates what was queued on it as
/// `*graph`. Fails if the recording was invalidated.
int bptGraphEndRecording(bptRuntime runtime, uint64_t stream, bptGraph *graph);

/// Queues the graph's launches on `stream` (as bptModuleLaunchOnStream()
/// says; 0: the default stream).
int bptGraphLaunch(bptGraph graph, uint64_t stream);

/// Destroys the graph. Destroying the null handle does nothing.
int bptGraphDestroy(bptGraph graph);

#ifdef __cplusplus
}
#endif

#endif // BPT_C_RUNTIME_H
