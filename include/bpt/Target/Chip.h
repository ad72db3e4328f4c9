//===- Chip.h - facts of the NVIDIA chips bpt targets -----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The one table of chip facts: shared memory, multiprocessors, clock and
// which tensor-core instructions a chip has. The strategy pass, the cost
// model, the kernel conversions, the pipelines and bpt-compile all read it;
// nothing else spells a chip's numbers.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TARGET_CHIP_H
#define BPT_TARGET_CHIP_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace bpt {

/// What bpt knows of one chip (`sm_XY`, or `sm_XYa` for the
/// architecture-specific features such as wgmma).
struct ChipInfo {
  /// The chip as given (`sm_90a`).
  std::string name;
  /// Compute capability times ten (90 for sm_90a); 0 when `name` is not of
  /// the form sm_XY[a].
  unsigned version = 0;
  /// The `a` suffix: architecture-specific instructions (wgmma, setmaxnreg).
  bool archSpecific = false;
  /// Whether the table has the chip itself, rather than its family's
  /// figures (the numbers are then a guess, used only by the cost model).
  bool known = false;
  /// Most dynamic shared memory one thread block may opt into, bytes.
  int64_t sharedMemoryPerBlock = 48 * 1024;
  /// Shared memory of a multiprocessor, all resident blocks together, bytes.
  int64_t sharedMemoryPerSM = 48 * 1024;
  int64_t multiprocessors = 1;
  double clockGHz = 1.0;
  /// Warp-level tensor cores (mma.sync with bf16 / f16): sm_80 and later.
  bool hasMmaSync = false;
  /// Warpgroup tensor cores (wgmma), the tensor memory accelerator (TMA),
  /// and setmaxnreg: sm_90a only.
  bool hasWgmma = false;
  bool hasTma = false;
};

/// The facts of `chip`. Chips the table does not list get their family's
/// figures (`known` false); names that are not sm_XY[a] get a chip without
/// tensor cores and 48 KiB of shared memory.
ChipInfo getChipInfo(llvm::StringRef chip);

} // namespace bpt

#endif // BPT_TARGET_CHIP_H
