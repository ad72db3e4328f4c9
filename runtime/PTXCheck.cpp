//===- PTXCheck.cpp - a kernel set's PTX file against its manifest --------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// What can be checked of a kernel set without a driver: the PTX file is a
// regular file of sane size next to the manifest, its target is the
// manifest's chip, and every launched kernel is an entry of it taking as many
// parameters as the launch passes. bpt-run does this before loading the
// driver, and `bpt-run --check-manifest` stops after it.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/Manifest.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

using namespace bpt::rt;

namespace {

bool isIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '$';
}

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// The PTX text without its comments (// to the end of the line, /* */),
/// so that a kernel named only in a comment does not count.
std::string stripComments(std::string_view ptx) {
  std::string text;
  text.reserve(ptx.size());
  for (size_t i = 0; i < ptx.size(); ++i) {
    if (ptx.compare(i, 2, "//") == 0) {
      while (i < ptx.size() && ptx[i] != '\n')
        ++i;
      if (i < ptx.size())
        text += '\n';
    } else if (ptx.compare(i, 2, "/*") == 0) {
      size_t end = ptx.find("*/", i + 2);
      i = end == std::string_view::npos ? ptx.size() : end + 1;
      text += ' ';
    } else {
      text += ptx[i];
    }
  }
  return text;
}

/// The word after directive `name` (".target" -> "sm_90a"), or "".
std::string wordAfter(const std::string &text, const char *name) {
  size_t pos = text.find(name);
  if (pos == std::string::npos)
    return "";
  pos += std::strlen(name);
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t'))
    ++pos;
  size_t end = pos;
  while (end < text.size() && isIdentifierChar(text[end]))
    ++end;
  return text.substr(pos, end - pos);
}

/// What the PTX says of one kernel.
struct Entry {
  /// Its `.param`s; -1 where the parameter list does not close.
  int params = 0;
  /// `.maxntid x, y, z` or `.reqntid x, y, z` (missing dimensions are 1):
  /// the block it was compiled for; 0 where the PTX gives none.
  uint64_t threads[3] = {0, 0, 0};
  std::string directive;
  /// Whether the body waits for its predecessor grid (griddepcontrol.wait)
  /// before its first global or generic memory access, and that access's
  /// opcode otherwise (empty: the body has none).
  bool waitsFirst = false;
  std::string firstAccess;
};

/// Whether `opcode` (an instruction's first word) may touch memory another
/// grid writes: loads and stores other than of parameters and shared
/// memory, atomics, reductions, copies (cp.async, TMA), prefetches.
bool touchesGlobalMemory(std::string_view opcode) {
  size_t dot = opcode.find('.');
  std::string_view base = opcode.substr(0, dot);
  std::string_view space =
      dot == std::string_view::npos ? "" : opcode.substr(dot + 1);
  // "shared::cta" is shared memory too.
  space = space.substr(0, std::min(space.find('.'), space.find("::")));
  if (space == "param" || space == "shared" || space == "const" ||
      space == "local")
    return false;
  for (std::string_view memory :
       {"ld", "ldu", "st", "atom", "red", "cp", "prefetch", "prefetchu",
        "multimem", "tex", "tld4", "suld", "sust", "sured"})
    if (base == memory)
      return true;
  return false;
}

/// Reads the body's instructions from `open` (its '{') in order, up to
/// griddepcontrol.wait or the first memory access.
void readFirstAccess(const std::string &text, size_t open, Entry &entry) {
  size_t end = text.find(".entry", open);
  if (end == std::string::npos)
    end = text.size();
  size_t pos = open + 1;
  while (pos < end) {
    size_t stop = text.find_first_of(";{}", pos);
    if (stop == std::string::npos || stop > end)
      stop = end;
    // One statement: labels ("$L__BB0_1:") and a guard ("@%p1") first.
    std::string_view statement(text.data() + pos, stop - pos);
    pos = stop + 1;
    auto skipSpace = [&] {
      while (!statement.empty() && isSpace(statement.front()))
        statement.remove_prefix(1);
    };
    skipSpace();
    // A label is an identifier and one colon ("shared::cta" is not).
    size_t name = 0;
    while (name < statement.size() && isIdentifierChar(statement[name]))
      ++name;
    if (name > 0 && name < statement.size() && statement[name] == ':' &&
        (name + 1 == statement.size() || statement[name + 1] != ':')) {
      statement.remove_prefix(name + 1);
      skipSpace();
    }
    if (!statement.empty() && statement.front() == '@') {
      size_t space = statement.find_first_of(" \t\n\r");
      statement.remove_prefix(space == std::string_view::npos ? statement.size()
                                                              : space);
      skipSpace();
    }
    size_t word = 0;
    while (word < statement.size() && !isSpace(statement[word]))
      ++word;
    std::string_view opcode = statement.substr(0, word);
    if (opcode == "griddepcontrol.wait") {
      entry.waitsFirst = true;
      return;
    }
    if (touchesGlobalMemory(opcode)) {
      entry.firstAccess = std::string(opcode);
      return;
    }
  }
}

/// The block-size directive (`.maxntid` or `.reqntid`) among the
/// performance directives between an entry's parameter list and its body.
void readBlockDirective(const std::string &text, size_t from, Entry &entry) {
  size_t body = text.find('{', from);
  std::string directives =
      text.substr(from, body == std::string::npos ? 0 : body - from);
  for (const char *name : {".reqntid", ".maxntid"}) {
    size_t pos = directives.find(name);
    if (pos == std::string::npos)
      continue;
    entry.directive = name;
    pos += std::strlen(name);
    for (int axis = 0; axis < 3; ++axis) {
      while (pos < directives.size() &&
             (isSpace(directives[pos]) || directives[pos] == ','))
        ++pos;
      uint64_t value = 0;
      size_t start = pos;
      while (pos < directives.size() && directives[pos] >= '0' &&
             directives[pos] <= '9' && value < (uint64_t(1) << 32))
        value = value * 10 + uint64_t(directives[pos++] - '0');
      entry.threads[axis] = pos > start ? value : 1;
    }
    return;
  }
}

/// Each `.entry NAME (params)` of the PTX.
std::map<std::string, Entry> entries(const std::string &text) {
  std::map<std::string, Entry> entries;
  for (size_t pos = text.find(".entry"); pos != std::string::npos;
       pos = text.find(".entry", pos + 6)) {
    size_t start = pos + 6;
    if (start >= text.size() || !isSpace(text[start]))
      continue;
    while (start < text.size() && isSpace(text[start]))
      ++start;
    size_t end = start;
    while (end < text.size() && isIdentifierChar(text[end]))
      ++end;
    std::string name = text.substr(start, end - start);
    if (name.empty())
      continue;
    size_t open = end;
    while (open < text.size() && isSpace(text[open]))
      ++open;
    Entry entry;
    if (open < text.size() && text[open] == '(') {
      size_t close = text.find(')', open);
      if (close == std::string::npos) {
        entry.params = -1;
      } else {
        for (size_t p = text.find(".param", open);
             p != std::string::npos && p < close;
             p = text.find(".param", p + 6))
          ++entry.params;
        readBlockDirective(text, close + 1, entry);
        size_t body = text.find('{', close + 1);
        if (body != std::string::npos)
          readFirstAccess(text, body, entry);
      }
    }
    entries[name] = entry;
  }
  return entries;
}

std::string formatDims(const uint64_t dims[3]) {
  return std::to_string(dims[0]) + "x" + std::to_string(dims[1]) + "x" +
         std::to_string(dims[2]);
}

} // namespace

Expected<std::string> bpt::rt::readPTXFile(const std::string &path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return Status::failure("cannot open PTX file '" + path +
                           "': " + std::strerror(errno));
  // /dev/zero or a FIFO would be read forever, a directory not at all.
  if (!S_ISREG(info.st_mode))
    return Status::failure("PTX file '" + path + "' is not a regular file");
  if (info.st_size > kMaxPTXBytes)
    return Status::failure(
        "PTX file '" + path + "' is " + std::to_string(info.st_size) +
        " bytes, more than the limit of " + std::to_string(kMaxPTXBytes));
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Status::failure("cannot open PTX file '" + path +
                           "': " + std::strerror(errno));
  std::string text(size_t(info.st_size), '\0');
  file.read(text.data(), info.st_size);
  if (file.gcount() != info.st_size)
    return Status::failure("cannot read PTX file '" + path + "'");
  if (text.find('\0') != std::string::npos)
    return Status::failure("PTX file '" + path +
                           "' contains a NUL byte (not PTX text)");
  return text;
}

Status bpt::rt::checkPTXMatchesManifest(const Manifest &manifest,
                                        std::string_view ptx) {
  std::string text = stripComments(ptx);
  std::string target = wordAfter(text, ".target");
  if (target.empty())
    return Status::failure("the PTX has no .target directive (is '" +
                           manifest.ptx + "' PTX?)");
  if (target != manifest.chip)
    return Status::failure("the PTX targets " + target +
                           ", but the manifest's chip is " + manifest.chip);
  std::map<std::string, Entry> kernels = entries(text);
  for (size_t i = 0; i < manifest.launches.size(); ++i) {
    const ManifestLaunch &launch = manifest.launches[i];
    std::string path = "launches[" + std::to_string(i) + "].kernel";
    auto found = kernels.find(launch.kernel);
    if (found == kernels.end()) {
      std::string names;
      for (const auto &[name, entry] : kernels)
        names += (names.empty() ? "'" : ", '") + name + "'";
      return Status::failure(
          path + ": the PTX has no kernel '" + launch.kernel +
          "' (its kernels: " + (names.empty() ? "none" : names) + ")");
    }
    const Entry &entry = found->second;
    if (entry.params < 0)
      return Status::failure(path + ": the parameter list of '" +
                             launch.kernel + "' in the PTX does not close");
    if (size_t(entry.params) != launch.args.size())
      return Status::failure("launches[" + std::to_string(i) +
                             "].args: kernel '" + launch.kernel + "' takes " +
                             std::to_string(entry.params) +
                             " parameters in the PTX, but the launch passes " +
                             std::to_string(launch.args.size()));
    // A dependent launch may start before its predecessor's writes land;
    // only a kernel that waits for them first is safe so launched.
    if (launch.dependent && !entry.waitsFirst)
      return Status::failure(
          "launches[" + std::to_string(i) + "].dependent: kernel '" +
          launch.kernel + "' " +
          (entry.firstAccess.empty()
               ? std::string("never waits for its predecessor")
               : "accesses memory ('" + entry.firstAccess +
                     "') before it waits for its predecessor") +
          " (griddepcontrol.wait) in the PTX, so it may not be launched "
          "before that kernel ends");
    // bpt's kernels are compiled for one block shape (.maxntid); a launch
    // with more threads fails, one with fewer computes part of the result.
    // A custom set's PTX may give only a bound.
    if (entry.directive.empty())
      continue;
    const uint64_t block[3] = {launch.block.x, launch.block.y, launch.block.z};
    bool exact =
        entry.directive == ".reqntid" || manifest.op != ManifestOp::Custom;
    bool fits = block[0] <= entry.threads[0] && block[1] <= entry.threads[1] &&
                block[2] <= entry.threads[2];
    bool equal = block[0] == entry.threads[0] && block[1] == entry.threads[1] &&
                 block[2] == entry.threads[2];
    if (!fits || (exact && !equal))
      return Status::failure(
          "launches[" + std::to_string(i) + "].block: kernel '" +
          launch.kernel + "' was compiled for blocks of " +
          formatDims(entry.threads) + " threads (" + entry.directive +
          " in the PTX), but the launch has " + formatDims(block));
  }
  return Status::success();
}

Expected<Manifest> bpt::rt::loadKernelSet(const std::string &manifestPath) {
  Expected<Manifest> manifest = Manifest::load(manifestPath);
  if (!manifest)
    return manifest.status();
  Expected<std::string> ptx = readPTXFile(manifest->ptxPath());
  if (!ptx)
    return Status::failure(manifestPath + ": " + ptx.error());
  if (Status s = checkPTXMatchesManifest(*manifest, *ptx); !s)
    return Status::failure(manifestPath + ": " + s.message());
  return manifest;
}
