//===- Chip.h - facts of the NVIDIA chips bpt targets -----------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// The one table of chip facts: shared memory, multiprocessors, clock and
// which tensor-core instructions a chip has. The strategy pass, the cost
// model, the kernel conversions, the pipelines and bpt-compile all read it;
// nothing else spells a chip's numbers. It also lists the chips LLVM 22's
// NVPTX back end accepts, with the PTX version each needs, so that a bad
// --chip is an error here, not a fatal error in instruction selection.
// Plain C++ (no LLVM): the runtime reads it too, to check manifests.
//
//===----------------------------------------------------------------------===//

#ifndef BPT_TARGET_CHIP_H
#define BPT_TARGET_CHIP_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
  /// Shared memory the driver reserves for each resident block, bytes (1
  /// KiB since sm_80), out of sharedMemoryPerSM.
  int64_t sharedMemoryReservedPerBlock = 1024;
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
ChipInfo getChipInfo(std::string_view chip);

/// The lowest PTX ISA version (times ten: 80 is PTX 8.0) that LLVM 22's
/// NVPTX back end accepts for `chip`, or nullopt when that back end does not
/// know the chip (sm_junk, sm_80a).
std::optional<unsigned> minimumPTXVersion(std::string_view chip);

/// The chips minimumPTXVersion() knows, comma-separated, for messages.
std::string supportedChipList();

/// The PTX version bpt targets for `chip` when no feature names one: 8.0
/// (what the kernels were written and measured with), or the chip's own
/// minimum where that is higher (sm_100 and later).
unsigned defaultPTXVersion(std::string_view chip);

/// "+ptx80" for defaultPTXVersion(chip) 80.
std::string defaultPTXFeatures(std::string_view chip);

/// Checks a chip and its PTX features ("+ptx80", comma-separated; empty for
/// the default) against the back end: an unknown chip, a malformed or
/// unknown feature, or a PTX version below the chip's minimum. Returns the
/// message (naming `chipFlag` / `featuresFlag`, e.g. "--chip"), or nullopt
/// when the pair is valid.
std::optional<std::string> checkChipAndFeatures(std::string_view chip,
                                                std::string_view features,
                                                std::string_view chipFlag,
                                                std::string_view featuresFlag);

} // namespace bpt

#endif // BPT_TARGET_CHIP_H
