//===- Chip.cpp - facts of the NVIDIA chips bpt targets ---------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Target/Chip.h"

#include <algorithm>
#include <iterator>

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

/// The chips of LLVM 22's NVPTX back end (`llc -mtriple=nvptx64
/// -mcpu=help`) and the lowest PTX version it accepts for each (found by
/// compiling a kernel with each `+ptxNN`). Anything else reaches LLVM as an
/// unknown processor and fails late and unlocated.
struct BackEndChip {
  const char *name;
  unsigned minPTX;
};

constexpr BackEndChip kBackEndChips[] = {
    {"sm_20", 32},   {"sm_21", 32},   {"sm_30", 32},   {"sm_32", 40},
    {"sm_35", 32},   {"sm_37", 41},   {"sm_50", 40},   {"sm_52", 41},
    {"sm_53", 42},   {"sm_60", 50},   {"sm_61", 50},   {"sm_62", 50},
    {"sm_70", 60},   {"sm_72", 61},   {"sm_75", 63},   {"sm_80", 70},
    {"sm_86", 71},   {"sm_87", 74},   {"sm_88", 90},   {"sm_89", 78},
    {"sm_90", 78},   {"sm_90a", 80},  {"sm_100", 86},  {"sm_100a", 86},
    {"sm_100f", 88}, {"sm_101", 86},  {"sm_101a", 86}, {"sm_101f", 88},
    {"sm_103", 88},  {"sm_103a", 88}, {"sm_103f", 88}, {"sm_110", 90},
    {"sm_110a", 90}, {"sm_110f", 90}, {"sm_120", 87},  {"sm_120a", 87},
    {"sm_120f", 88}, {"sm_121", 88},  {"sm_121a", 88}, {"sm_121f", 88},
};

/// The `+ptxNN` features of LLVM 22's NVPTX back end.
constexpr unsigned kPTXVersions[] = {32, 40, 41, 42, 43, 50, 60, 61, 62, 63, 64,
                                     65, 70, 71, 72, 73, 74, 75, 76, 77, 78, 80,
                                     81, 82, 83, 84, 85, 86, 87, 88, 90};

/// The PTX version bpt's kernels were written and measured with.
constexpr unsigned kBaselinePTX = 80;

bool isDigit(char c) { return c >= '0' && c <= '9'; }

/// "8.0" for 80.
std::string ptxVersionText(unsigned version) {
  return std::to_string(version / 10) + "." + std::to_string(version % 10);
}

} // namespace

ChipInfo bpt::getChipInfo(std::string_view chip) {
  ChipInfo info;
  info.name = std::string(chip);
  if (chip.substr(0, 3) != "sm_")
    return info;
  std::string_view rest = chip.substr(3);
  size_t numDigits = 0;
  while (numDigits < rest.size() && isDigit(rest[numDigits]))
    ++numDigits;
  // Four digits are more than any chip has, and keep `version` small.
  if (numDigits == 0 || numDigits > 4)
    return info;
  unsigned version = 0;
  for (char c : rest.substr(0, numDigits))
    version = version * 10 + unsigned(c - '0');
  rest = rest.substr(numDigits);
  if (!(rest.empty() || rest == "a"))
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

std::optional<unsigned> bpt::minimumPTXVersion(std::string_view chip) {
  for (const BackEndChip &known : kBackEndChips)
    if (chip == known.name)
      return known.minPTX;
  return std::nullopt;
}

std::string bpt::supportedChipList() {
  std::string list;
  for (const BackEndChip &known : kBackEndChips)
    list += std::string(list.empty() ? "" : ", ") + known.name;
  return list;
}

unsigned bpt::defaultPTXVersion(std::string_view chip) {
  return std::max(kBaselinePTX, minimumPTXVersion(chip).value_or(0));
}

std::string bpt::defaultPTXFeatures(std::string_view chip) {
  return "+ptx" + std::to_string(defaultPTXVersion(chip));
}

std::optional<std::string>
bpt::checkChipAndFeatures(std::string_view chip, std::string_view features,
                          std::string_view chipFlag,
                          std::string_view featuresFlag) {
  std::optional<unsigned> minimum = minimumPTXVersion(chip);
  if (!minimum)
    return std::string(chipFlag) + ": unknown chip '" + std::string(chip) +
           "' (LLVM's NVPTX back end supports " + supportedChipList() + ")";
  // Comma-separated "+ptxNN"; the highest one is the PTX version.
  unsigned ptx = 0;
  size_t start = 0;
  while (start <= features.size() && !features.empty()) {
    size_t comma = std::min(features.find(',', start), features.size());
    std::string_view token = features.substr(start, comma - start);
    std::string_view digits =
        token.substr(0, 4) == "+ptx" ? token.substr(4) : std::string_view();
    unsigned version = 0;
    bool numeric = !digits.empty() && digits.size() <= 3 &&
                   std::all_of(digits.begin(), digits.end(), isDigit);
    for (char c : numeric ? digits : std::string_view())
      version = version * 10 + unsigned(c - '0');
    if (!numeric || std::find(std::begin(kPTXVersions), std::end(kPTXVersions),
                              version) == std::end(kPTXVersions)) {
      std::string known;
      for (unsigned v : kPTXVersions)
        known += (known.empty() ? "+ptx" : ", +ptx") + std::to_string(v);
      return std::string(featuresFlag) + ": unknown feature '" +
             std::string(token) + "' (expected PTX versions: " + known + ")";
    }
    ptx = std::max(ptx, version);
    start = comma + 1;
  }
  if (ptx != 0 && ptx < *minimum)
    return std::string(featuresFlag) + ": PTX " + ptxVersionText(ptx) + " ('" +
           std::string(features) + "') does not support " + std::string(chip) +
           ", which needs PTX " + ptxVersionText(*minimum) +
           " or later (e.g. +ptx" + std::to_string(defaultPTXVersion(chip)) +
           ")";
  return std::nullopt;
}
