//===- Manifest.h - kernel-set manifest and JSON reader ---------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// bpt-compile writes, next to each .ptx, a manifest (JSON) with everything a
// runtime needs to launch it: buffers (name, role, dtype, shape, bytes), the
// TMA tensor maps to build over them, the kernels to launch in order with
// grid, block, dynamic shared memory and what each argument is, and the
// options the kernels were compiled for. This reader needs no LLVM: it reads
// JSON with nlohmann/json (header-only; Debian's nlohmann-json3-dev).
//
// Schema, version 2 (every field is required unless marked optional; unknown
// fields are errors, so that a typo cannot silently change a launch).
// Version 1 is version 2 without "tensor_maps" and without object
// arguments; both are read.
//
//   {
//     "bpt_manifest_version": 2,
//     "ptx": "out.ptx",                 // a file in the manifest's folder
//                                       // or below it: relative, no "..",
//                                       // a regular file of at most 1 GiB
//     "chip": "sm_90a",                 // one LLVM 22's NVPTX back end
//                                       // knows (bpt/Target/Chip.h)
//     "features": "+ptx80",             // optional; +ptxNN, at least the
//                                       // chip's minimum PTX version
//     "op": "attention",                // attention | ffn | block | custom
//     "options": {"causal": true, ...}, // optional; the keys and types
//                                       // of ManifestOp.cpp's table, each
//                                       // on the ops that read it
//     "buffers": [                      // at least one
//       {"name": "query", "role": "input", "dtype": "bf16",
//        "shape": [2, 8, 1024, 64], "bytes": 2097152}, ...
//     ],                                // role: input | output | workspace
//                                       // dtype: f32 | f16 | bf16 | i8
//                                       // (workspaces: i8, shape [bytes],
//                                       // optional "holds": [{"name":
//                                       // "delta", "bytes": n}, ...], each
//                                       // n <= the slot's bytes; in a
//                                       // workspace packed as an arena,
//                                       // also "byte_offset": o, a multiple
//                                       // of 16, o + n <= the bytes)
//     "tensor_maps": [                  // optional (default []); version 2
//       {"buffer": 0,                   // index into "buffers"
//        "byte_offset": 0,              // optional, default 0: the map
//                                       // starts this many bytes into the
//                                       // buffer; a multiple of 16
//        "dtype": "bf16",               // f32 | f16 | bf16; the buffer's,
//                                       // or any over an i8 buffer
//        "shape": [16384, 64],          // a row-major tensor, outermost
//                                       // first, rank 1 to 5; byte_offset +
//                                       // product · element size <= bytes
//        "box": [128, 64],              // elements per copy, outermost first
//        "swizzle": "128b",             // none | 32b | 64b | 128b
//        "l2_promotion": "128b",        // optional: none | 64b | 128b | 256b
//        "oob_fill": "zero"}            // optional: zero | nan
//     ],
//     "launches": [                     // at least one, run in order
//       {"kernel": "block_kernel", "grid": [2, 8, 16], "block": [256, 1, 1],
//        "dynamic_shared_memory": 49152,  // optional, default 0
//        "args": [0, {"buffer": 1, "byte_offset": 4096},
//                 {"tensor_map": 0}, 3]}
//     ]
//   }
//
// Launch arguments, each one kernel parameter:
//   i                                   that buffer's device pointer
//   {"buffer": i, "byte_offset": n}     (version 2) buffers[i]'s pointer plus
//                                       n; n optional (default 0), a
//                                       multiple of 16, below the buffer's
//                                       bytes: one row block of a buffer
//   {"tensor_map": i}                   (version 2) the device address of
//                                       tensor map i
//   {"i32": n}                          (version 2) a 32-bit integer
//                                       parameter, e.g. a chunk's first row
// An object holds exactly one of "buffer", "tensor_map" and "i32".
//
// The runtime encodes each tensor map over its buffer's device pointer plus
// its byte_offset and copies the 128-byte CUtensorMap to device memory; the
// kernel takes that global-memory address as a u64 parameter, like a buffer
// pointer. Offsets are multiples of 16 so that, over allocations aligned to
// 256 bytes, every address stays 16-byte aligned as TMA and vector accesses
// need.
// A tensor map follows TMA's rules (cuTensorMapEncodeTiled): every byte
// stride of the row-major tensor is a multiple of 16, each box dimension is
// 1 to 256, the innermost box dimension spans a multiple of 16 bytes, and at
// most the swizzle span (32, 64 or 128 bytes) when swizzled.
//
// The buffers must be what the op computes (ManifestOp.cpp): the inputs
// it reads by name (and no other inputs), its outputs in order with their
// shapes, and one dtype for all but the log-sum-exp (f32); a custom op takes
// any buffers. Each launch's dynamic shared memory is at most the chip's
// (bpt/Target/Chip.h), and, where the PTX is read (loadKernelSet), each
// kernel is an entry of the PTX with as many parameters as its arguments.
//
// Errors name the field's path, e.g.
// "launches[0].args[3]: index 7 out of range (4 buffers)" or
// "tensor_maps[0].box[1]: 300 exceeds the limit of 256"; JSON syntax errors
// give line, column and byte offset.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_RUNTIME_MANIFEST_H
#define BPT_RUNTIME_MANIFEST_H

#include "bpt/Runtime/Runtime.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpt::rt {

//===----------------------------------------------------------------------===//
// JSON
//===----------------------------------------------------------------------===//

/// A JSON value (nlohmann/json). Objects keep their members in source or
/// insertion order, so that messages name fields in the order they were
/// written and written files keep the order they were built in.
using Json = nlohmann::ordered_json;

/// Parses one JSON document (RFC 8259: no comments, no trailing commas).
/// Stricter than nlohmann's own parse: a duplicate key in an object, nesting
/// deeper than 256 levels and a number out of double's range are errors.
/// Errors read "line L, column C (byte B): <what>", with lines and columns
/// counted from 1 and bytes from 0; nothing is thrown.
Expected<Json> readJson(std::string_view text);

/// `value` as an exact integer: an integer literal that fits int64_t, or a
/// number with an integral value of magnitude below 2^53; nullopt otherwise
/// (other types included).
std::optional<int64_t> jsonInteger(const Json &value);

/// The value of member `key` of `object`, or null if it has none or is not
/// an object.
const Json *jsonMember(const Json &object, std::string_view key);

/// `value` as compact JSON text. Never throws: bytes that are not UTF-8 in
/// strings are replaced with U+FFFD.
std::string jsonText(const Json &value);

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

/// Element types of manifest buffers.
enum class ElementType { F32, F16, BF16, I8 };

/// "f32", "f16", "bf16", "i8".
const char *elementTypeName(ElementType type);
/// Bytes per element: 4, 2, 2, 1.
int64_t elementTypeBytes(ElementType type);
/// The element type named `name`, or nullopt.
std::optional<ElementType> parseElementType(std::string_view name);

/// What a buffer is for.
enum class BufferRole { Input, Output, Workspace };

/// "input", "output", "workspace".
const char *bufferRoleName(BufferRole role);

/// What the kernel set computes.
/// AttentionLSE: the attention's forward with its log-sum-exp (inputs
/// query, key, value; outputs output, lse [B, Hq, Sq] f32).
/// AttentionGrad: the gradients of an attention whose forward has run
/// (inputs query, key, value, output, output_grad, lse; outputs query_grad,
/// key_grad, value_grad).
/// AttentionBackward: the attention's forward with its log-sum-exp, then
/// its gradients (inputs query, key, value, output_grad; outputs the
/// output, the lse, dq, dk, dv).
/// BlockBackward: a transformer block's training step, the forward then the
/// gradients (inputs the block's, then output_grad; outputs the output,
/// input_grad, then "<weight>_grad" for each weight in the inputs' order;
/// the saved lse in a workspace that holds "lse").
enum class ManifestOp {
  Attention,
  AttentionLSE,
  AttentionGrad,
  AttentionBackward,
  FFN,
  Block,
  BlockBackward,
  Custom
};

/// "attention", "attention_lse", "attention_grad", "attention_backward",
/// "ffn", "block", "block_backward", "custom".
const char *manifestOpName(ManifestOp op);

/// One kernel argument buffer.
struct ManifestBuffer {
  /// Unique within the manifest, e.g. "query".
  std::string name;
  /// Input (read), output (written) or workspace (scratch).
  BufferRole role = BufferRole::Input;
  /// The element type.
  ElementType dtype = ElementType::F32;
  /// Dimensions, outermost first; each > 0.
  std::vector<int64_t> shape;
  /// Size in bytes: product(shape) · elementTypeBytes(dtype).
  int64_t bytes = 0;
  /// A workspace slot's contents in order of first use, each with its
  /// bytes (e.g. the attention backward's "delta"); empty for other roles.
  std::vector<std::pair<std::string, int64_t>> holds;

  /// product(shape).
  int64_t numElements() const;
};

/// A TMA tensor map over one buffer, built by the runtime before the
/// launches (see bptRuntimeCreateTensorMap()).
struct ManifestTensorMap {
  /// Index into Manifest::buffers.
  size_t buffer = 0;
  /// Where the tensor starts in the buffer, in bytes; a multiple of 16.
  int64_t byteOffset = 0;
  /// The element type: f32, f16 or bf16; the buffer's unless that is i8.
  ElementType dtype = ElementType::F32;
  /// A row-major tensor in the buffer, outermost first; 1 to 5 dimensions,
  /// within the buffer's bytes after byteOffset.
  std::vector<int64_t> shape;
  /// Elements per copy, outermost first; as many dimensions as `shape`.
  std::vector<int64_t> box;
  /// Swizzle span in bytes: 0 (none), 32, 64 or 128.
  int swizzleBytes = 0;
  /// L2 promotion in bytes: 0 (none), 64, 128 or 256.
  int l2PromotionBytes = 0;
  /// Whether out-of-bounds elements read as NaN rather than zero.
  bool oobNaN = false;
};

/// One kernel parameter: a buffer's device pointer plus a byte offset, or
/// the device address of a tensor map.
struct ManifestArg {
  /// What `index` refers to; a scalar argument carries its value instead.
  enum class Kind { Buffer, TensorMap, I32 };

  /// Buffer or tensor map.
  Kind kind = Kind::Buffer;
  /// Index into Manifest::buffers or Manifest::tensorMaps.
  size_t index = 0;
  /// Bytes added to a buffer's pointer: a multiple of 16, below the buffer's
  /// bytes; 0 for a tensor map.
  int64_t byteOffset = 0;

  /// The pointer of buffers[index], plus `byteOffset`.
  static ManifestArg buffer(size_t index, int64_t byteOffset = 0) {
    return {Kind::Buffer, index, byteOffset};
  }
  /// The address of tensorMaps[index].
  static ManifestArg tensorMap(size_t index) {
    return {Kind::TensorMap, index, 0};
  }
  /// A 32-bit integer parameter (e.g. a chunk's first row).
  static ManifestArg i32(int32_t value) {
    ManifestArg arg{Kind::I32, 0, 0};
    arg.value = value;
    return arg;
  }
  /// The value of an I32 argument.
  int32_t value = 0;
  bool operator==(const ManifestArg &other) const {
    return kind == other.kind && index == other.index &&
           byteOffset == other.byteOffset && value == other.value;
  }
  bool operator!=(const ManifestArg &other) const { return !(*this == other); }
};

/// One kernel launch.
struct ManifestLaunch {
  /// The kernel's name in the PTX.
  std::string kernel;
  /// Grid dimensions (missing trailing dimensions are 1).
  Dim3 grid;
  /// Block dimensions (missing trailing dimensions are 1).
  Dim3 block;
  /// Dynamic shared memory per block, in bytes.
  uint32_t dynamicSharedMemory = 0;
  /// Parameter i, each one 8-byte device address.
  std::vector<ManifestArg> args;
  /// The kernel begins with griddepcontrol.wait: it may be launched while
  /// the previous launch finishes (BPT_LAUNCH_DEPENDENT).
  bool dependent = false;
};

/// A validated manifest.
class Manifest {
public:
  /// The newest manifest version this reader understands (the one with
  /// tensor maps).
  static constexpr int kVersion = 2;
  /// The oldest one it still reads.
  static constexpr int kMinVersion = 1;

  /// Parses and validates manifest text. `directory` is where the manifest
  /// lives, for ptxPath(). Errors name the field's path.
  static Expected<Manifest> parse(std::string_view json,
                                  std::string directory = "");
  /// Reads, parses and validates the manifest file at `path` (a regular file
  /// of at most kMaxManifestBytes); errors start with the path.
  static Expected<Manifest> load(const std::string &path);

  /// The manifest's bpt_manifest_version.
  int version = kVersion;
  /// The PTX file name as written in the manifest.
  std::string ptx;
  /// The chip the PTX was generated for, e.g. "sm_90a".
  std::string chip;
  /// PTX features, e.g. "+ptx80" (may be empty).
  std::string features;
  /// What the kernels compute.
  ManifestOp op = ManifestOp::Custom;
  /// The options object (an empty object when absent).
  Json options = Json::object();
  /// Buffers, in argument-index order.
  std::vector<ManifestBuffer> buffers;
  /// Tensor maps over the buffers (none before version 2).
  std::vector<ManifestTensorMap> tensorMaps;
  /// Launches, in the order they must run.
  std::vector<ManifestLaunch> launches;
  /// The directory of the manifest file ("" when parsed from text).
  std::string directory;

  /// The PTX file's path: `ptx` joined to `directory` unless absolute.
  std::string ptxPath() const;

  /// The buffer named `name`, or null.
  const ManifestBuffer *findBuffer(std::string_view name) const;

  /// Whether option `key` is present.
  bool hasOption(std::string_view key) const;
  /// Option `key` if it is an integer, else nullopt.
  std::optional<int64_t> getIntOption(std::string_view key) const;
  /// Option `key` if it is a number, else nullopt.
  std::optional<double> getNumberOption(std::string_view key) const;
  /// Option `key` if it is a string, else nullopt.
  std::optional<std::string> getStringOption(std::string_view key) const;
  /// Option `key` if it is a boolean, else nullopt.
  std::optional<bool> getBoolOption(std::string_view key) const;
};

/// Checks that `manifest`'s buffers and options are what its op computes
/// (see the schema above); Manifest::parse calls it. Errors name the field.
Status checkManifestOp(const Manifest &manifest);

/// The largest manifest file Manifest::load() reads.
constexpr int64_t kMaxManifestBytes = int64_t(1) << 28;

/// The largest PTX file readPTXFile() reads.
constexpr int64_t kMaxPTXBytes = int64_t(1) << 30;

/// The text of the PTX file at `path`: a regular file (not /dev/zero, a
/// FIFO or a directory) of at most kMaxPTXBytes without NUL bytes.
Expected<std::string> readPTXFile(const std::string &path);

/// Checks PTX text against the manifest: its .target is the manifest's
/// chip, and each launched kernel is an .entry taking as many parameters
/// as the launch passes.
Status checkPTXMatchesManifest(const Manifest &manifest, std::string_view ptx);

/// Manifest::load, then the PTX file it names (readPTXFile,
/// checkPTXMatchesManifest): all that can be checked without a driver.
Expected<Manifest> loadKernelSet(const std::string &manifestPath);

} // namespace bpt::rt

#endif // BPT_RUNTIME_MANIFEST_H
