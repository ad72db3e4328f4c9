//===- HostTensor.cpp - typed host buffers for running kernels --*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Reference/HostTensor.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace bpt;

const char *bpt::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  }
  return "?";
}

int64_t bpt::dtypeBytes(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

double bpt::dtypeTolerance(DType dtype) {
  return dtype == DType::F32 ? 1e-5 : 1e-2;
}

double bpt::dtypeSmallestNormal(DType dtype) {
  return std::ldexp(1.0, dtype == DType::F16 ? -14 : -126);
}

double bpt::outputError(const ref::Tensor &out, const ref::Tensor &ref,
                        DType dtype) {
  return ref::relativeError(out, ref, dtypeSmallestNormal(dtype));
}

HostTensor::HostTensor(std::vector<int64_t> shape, DType dtype)
    : shape_(std::move(shape)), dtype_(dtype) {
  bytes_.resize(numElements() * dtypeBytes(dtype_));
}

int64_t HostTensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape_)
    n *= d;
  return n;
}

double HostTensor::get(int64_t i) const {
  switch (dtype_) {
  case DType::F32: {
    float f;
    std::memcpy(&f, bytes_.data() + 4 * i, 4);
    return f;
  }
  case DType::F16:
  case DType::BF16: {
    uint16_t bits;
    std::memcpy(&bits, bytes_.data() + 2 * i, 2);
    return dtype_ == DType::F16 ? ref::f16BitsToFloat(bits)
                                : ref::bf16BitsToFloat(bits);
  }
  }
  return 0;
}

void HostTensor::set(int64_t i, double value) {
  float f = static_cast<float>(value);
  switch (dtype_) {
  case DType::F32:
    std::memcpy(bytes_.data() + 4 * i, &f, 4);
    return;
  case DType::F16:
  case DType::BF16: {
    uint16_t bits = dtype_ == DType::F16 ? ref::floatToF16Bits(f)
                                         : ref::floatToBF16Bits(f);
    std::memcpy(bytes_.data() + 2 * i, &bits, 2);
    return;
  }
  }
}

void HostTensor::fillUniform(std::mt19937_64 &rng, double scale) {
  std::uniform_real_distribution<double> dist(-scale, scale);
  for (int64_t i = 0, e = numElements(); i < e; ++i)
    set(i, dist(rng));
}

void HostTensor::poison() {
  for (int64_t i = 0, e = numElements(); i < e; ++i)
    set(i, std::numeric_limits<double>::quiet_NaN());
}

ref::Tensor HostTensor::toReference() const {
  ref::Tensor t(shape_);
  for (int64_t i = 0, e = numElements(); i < e; ++i)
    t.data[i] = get(i);
  return t;
}

std::string HostTensor::typeString() const {
  std::string s = "tensor<";
  for (int64_t d : shape_)
    s += std::to_string(d) + "x";
  return s + dtypeName(dtype_) + ">";
}
