//===- Chip.cpp - facts of the NVIDIA chips bpt targets ---------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Target/Chip.h"

#include "llvm/ADT/StringExtras.h"

using namespace bpt;

namespace {

/// One row of the table: a compute capability and its figures (the
/// largest part of the family where parts differ: H100/H200 SXM, A100,
/// RTX 3090-class, RTX 4090, Jetson Orin).
struct Row {
  unsigned version;
  int64_t sharedKiBPerBlock, sharedKiBPerSM, multiprocessors;
  double clockGHz;
};

constexpr Row kChips[] = {
    {80, 163, 164, 108, 1.4}, {86, 99, 100, 84, 1.7},
    {87, 163, 164, 16, 1.3},  {89, 99, 100, 128, 2.5},
    {90, 227, 228, 132, 1.8},
};

} // namespace

ChipInfo bpt::getChipInfo(llvm::StringRef chip) {
  ChipInfo info;
  info.name = chip.str();
  llvm::StringRef rest = chip;
  if (!rest.consume_front("sm_"))
    return info;
  llvm::StringRef digits = rest.take_while(llvm::isDigit);
  rest = rest.drop_front(digits.size());
  unsigned version = 0;
  if (digits.empty() || digits.getAsInteger(10, version) ||
      !(rest.empty() || rest == "a"))
    return info;
  info.version = version;
  info.archSpecific = rest == "a";
  info.hasMmaSync = version >= 80;
  info.hasWgmma = info.hasTma = version == 90 && info.archSpecific;

  // The chip's own row, else its family's: the newest listed chip not
  // newer than it (sm_100 is counted as an sm_90 without wgmma).
  const Row *row = nullptr;
  for (const Row &r : kChips)
    if (r.version <= version)
      row = &r;
  if (!row)
    return info;
  info.known = row->version == version;
  info.sharedMemoryPerBlock = row->sharedKiBPerBlock * 1024;
  info.sharedMemoryPerSM = row->sharedKiBPerSM * 1024;
  info.multiprocessors = row->multiprocessors;
  info.clockGHz = row->clockGHz;
  return info;
}
