//===- HostTensor.h - typed host buffers for running kernels ----*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// A buffer in a kernel's storage type (f32, f16 or bf16) on the host, with
// the conversions the runners need: seeded random fill, NaN poisoning, and
// conversion to the float64 reference tensor. Plain C++ (no LLVM), shared
// by the CPU runner and the GPU runner.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_REFERENCE_HOSTTENSOR_H
#define BPT_REFERENCE_HOSTTENSOR_H

#include "bpt/Reference/Reference.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace bpt {

/// Storage types of kernel arguments.
enum class DType { F32, F16, BF16 };

/// "f32", "f16", "bf16".
const char *dtypeName(DType dtype);
/// Bytes per element.
int64_t dtypeBytes(DType dtype);
/// The relative-error bound a result of this type must meet against the
/// float64 reference: 1e-5 for f32, 1e-2 for f16 and bf16.
double dtypeTolerance(DType dtype);
/// ‖out − ref‖ / ‖ref‖ allowed for f32 outputs of TF32 tensor-core math
/// (10 mantissa bits, operands rounded to nearest: about 3e-4 expected;
/// bf16's 1e-2 would hide a wrong fragment).
inline constexpr double kTF32Tolerance = 2e-3;
/// The smallest positive normal number of the type (f32 and bf16 2^-126,
/// f16 2^-14): below it values are subnormal and hold fewer bits.
double dtypeSmallestNormal(DType dtype);

/// The relative error ‖out − ref‖ / ‖ref‖ of an output of type `dtype`
/// against the float64 reference, where an element whose output and
/// reference are both subnormal in `dtype` (below dtypeSmallestNormal,
/// where values hold fewer bits, or are flushed to zero) adds no
/// difference: gradients scaled by a softmax scale near 2^-126 are such
/// values. Every element with a normal output or reference is measured as
/// before.
double outputError(const ref::Tensor &out, const ref::Tensor &ref,
                   DType dtype);

/// A dense row-major host buffer of `shape` in `dtype`.
class HostTensor {
public:
  HostTensor(std::vector<int64_t> shape, DType dtype);

  const std::vector<int64_t> &shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t numElements() const;
  int64_t numBytes() const { return numElements() * dtypeBytes(dtype_); }
  void *data() { return bytes_.data(); }
  const void *data() const { return bytes_.data(); }

  /// Element `i` as a double.
  double get(int64_t i) const;
  /// Stores `value` rounded (to nearest even) to the storage type.
  void set(int64_t i, double value);

  /// Fills with values drawn uniformly from [-scale, scale), rounded to the
  /// storage type.
  void fillUniform(std::mt19937_64 &rng, double scale);
  /// Fills with quiet NaN, so that unwritten elements show.
  void poison();

  /// The values as a float64 reference tensor.
  ref::Tensor toReference() const;

  /// E.g. "tensor<2x64xbf16>".
  std::string typeString() const;

private:
  std::vector<int64_t> shape_;
  DType dtype_;
  std::vector<uint8_t> bytes_;
};

} // namespace bpt

#endif // BPT_REFERENCE_HOSTTENSOR_H
