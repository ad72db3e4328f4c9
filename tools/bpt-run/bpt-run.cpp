//===- bpt-run.cpp - run a compiled kernel set on the GPU -------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// Plain C++ (no LLVM), so it can be copied to a GPU machine with the
// runtime library alone. Exit status: 0 pass, 1 mismatch, 2 error.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/KernelSetCheck.h"
#include "bpt/Runtime/Manifest.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static void usage(FILE *out) {
  std::fprintf(
      out, "usage: bpt-run <manifest.json> [--seed=N] [--device=N]\n"
           "               [--iterations=N] [--warmup=N] [--no-check]\n"
           "               [--graph] [--probe]\n"
           "       bpt-run --tune=DIR [--tuning-out=FILE] [--no-check] ...\n"
           "       bpt-run --check-manifest=<manifest.json>\n"
           "Runs a kernel set from bpt-compile on the GPU on seeded random\n"
           "inputs, checks every output against the float64 reference,\n"
           "and prints the time and TFLOP/s. --graph records the launches\n"
           "once as a CUDA graph and replays it for every run (the checked\n"
           "one too). --probe only says whether a\n"
           "GPU is usable (exit 0) or not (exit 2).\n"
           "--tune=DIR runs every candidate of `bpt-compile --tune -o DIR`\n"
           "(checked unless --no-check), prints their times and writes the\n"
           "fastest passing one to FILE (default DIR/tuning.json) for\n"
           "`bpt-compile --tuning=FILE`.\n"
           "--check-manifest=FILE validates a manifest and its PTX file\n"
           "(all that is checked before the driver is loaded) and exits:\n"
           "0 valid, 2 invalid; it needs no GPU.\n");
}

/// Parses the integer after `--name=` into `value`, which must lie in
/// [minimum, maximum] (so that 4294967297 iterations is an error, not 1);
/// false if `arg` is not that flag.
static bool parseInt(const char *arg, const char *name, long long minimum,
                     long long maximum, long long &value, bool &bad) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=')
    return false;
  char *end = nullptr;
  errno = 0;
  value = std::strtoll(arg + n + 1, &end, 10);
  bad = end == arg + n + 1 || *end != '\0' || errno == ERANGE ||
        value < minimum || value > maximum;
  if (bad)
    std::fprintf(stderr, "bpt-run: %s expects an integer in [%lld, %lld]\n",
                 name, minimum, maximum);
  return true;
}

/// --tune: times each candidate kernel set listed in DIR/tune.json and
/// records the fastest one that passes.
static int runTuning(const std::string &dir, const std::string &outPath,
                     bpt::rt::CheckOptions options) {
  std::string listPath = dir + "/tune.json";
  // Not /dev/zero or a FIFO, which would be read forever.
  struct stat info;
  if (::stat(listPath.c_str(), &info) == 0 &&
      (!S_ISREG(info.st_mode) || info.st_size > bpt::rt::kMaxManifestBytes)) {
    std::fprintf(stderr,
                 "bpt-run: %s is not a regular file of at most %lld "
                 "bytes\n",
                 listPath.c_str(), (long long)bpt::rt::kMaxManifestBytes);
    return 2;
  }
  std::FILE *file = std::fopen(listPath.c_str(), "rb");
  if (!file) {
    std::fprintf(stderr, "bpt-run: cannot read %s (written by bpt-compile "
                         "--tune -o %s)\n",
                 listPath.c_str(), dir.c_str());
    return 2;
  }
  std::string text;
  char chunk[4096];
  for (size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;)
    text.append(chunk, n);
  std::fclose(file);
  using bpt::rt::Json;
  using bpt::rt::jsonMember;
  bpt::rt::Expected<Json> list = bpt::rt::readJson(text);
  const Json *candidates = list ? jsonMember(*list, "candidates") : nullptr;
  if (!candidates || !candidates->is_array() || candidates->empty()) {
    std::fprintf(stderr, "bpt-run: %s: %s\n", listPath.c_str(),
                 list ? "expected a non-empty \"candidates\" array"
                      : list.error().c_str());
    return 2;
  }
  if (options.iterations == 0)
    options.iterations = 20;
  Json results = Json::array();
  int best = -1;
  double bestMs = 0;
  for (size_t i = 0; i < candidates->size(); ++i) {
    const Json &c = (*candidates)[i];
    const Json *name = jsonMember(c, "name");
    const Json *manifest = jsonMember(c, "manifest");
    const Json *flags = jsonMember(c, "flags");
    if (!name || !manifest || !flags || !name->is_string() ||
        !manifest->is_string() || !flags->is_object()) {
      std::fprintf(stderr, "bpt-run: %s: candidates[%zu] needs \"name\", "
                           "\"manifest\" and \"flags\"\n",
                   listPath.c_str(), i);
      return 2;
    }
    const std::string &manifestName = manifest->get_ref<const std::string &>();
    // bpt-compile --tune writes the candidates next to tune.json.
    if (manifestName.empty() || manifestName.find('/') != std::string::npos ||
        manifestName == "." || manifestName == "..") {
      std::fprintf(stderr,
                   "bpt-run: %s: candidates[%zu].manifest must be a "
                   "file name in %s, got \"%s\"\n",
                   listPath.c_str(), i, dir.c_str(), manifestName.c_str());
      return 2;
    }
    const std::string &nameText = name->get_ref<const std::string &>();
    std::string flagsText = bpt::rt::jsonText(*flags);
    options.manifestPath = dir + "/" + manifest->get_ref<const std::string &>();
    bpt::rt::Expected<bpt::rt::CheckResult> result =
        bpt::rt::checkKernelSet(options);
    Json entry = Json::object();
    entry["name"] = nameText;
    entry["flags"] = *flags;
    if (!result) {
      std::printf("%-14s %s: %s\n", nameText.c_str(), flagsText.c_str(),
                  result.error().c_str());
      entry["error"] = result.error();
    } else {
      bool passed = !options.check || result->passed();
      // The cost model's prediction, where bpt-compile made one.
      const Json *predicted = jsonMember(c, "predicted_ms");
      std::string model;
      if (predicted && predicted->is_number()) {
        char text[64];
        std::snprintf(text, sizeof text, " (model: %.4f ms)",
                      predicted->get<double>());
        model = text;
        entry["predicted_ms"] = *predicted;
      }
      std::printf("%-14s %s: %.4f ms%s%s\n", nameText.c_str(),
                  flagsText.c_str(), result->medianMs, model.c_str(),
                  passed ? "" : " (FAILED the check)");
      entry["ms"] = result->medianMs;
      entry["passed"] = passed;
      if (passed && (best < 0 || result->medianMs < bestMs)) {
        best = static_cast<int>(i);
        bestMs = result->medianMs;
      }
    }
    results.push_back(std::move(entry));
    // Each candidate's line as it is timed (a run cut short keeps them).
    std::fflush(stdout);
  }
  if (best < 0) {
    std::fprintf(stderr, "bpt-run: no candidate ran and passed\n");
    return 1;
  }
  const Json &winner = (*candidates)[best];
  const Json &winnerName = *jsonMember(winner, "name");
  const Json &winnerFlags = *jsonMember(winner, "flags");
  Json record = Json::object();
  record["winner"] = winnerName;
  record["flags"] = winnerFlags;
  record["median_ms"] = bestMs;
  record["checked"] = options.check;
  record["results"] = std::move(results);
  std::string path = outPath.empty() ? dir + "/tuning.json" : outPath;
  std::FILE *out = std::fopen(path.c_str(), "wb");
  std::string json = bpt::rt::jsonText(record) + "\n";
  if (!out || std::fwrite(json.data(), 1, json.size(), out) != json.size()) {
    std::fprintf(stderr, "bpt-run: cannot write %s\n", path.c_str());
    if (out)
      std::fclose(out);
    return 2;
  }
  std::fclose(out);
  std::printf("winner: %s %s, %.4f ms; written to %s\n",
              winnerName.get_ref<const std::string &>().c_str(),
              bpt::rt::jsonText(winnerFlags).c_str(), bestMs, path.c_str());
  return 0;
}

static bool parseString(const char *arg, const char *name, std::string &value) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=')
    return false;
  value = arg + n + 1;
  return true;
}

/// Timed runs beyond this are a typo, not a measurement.
constexpr long long kMaxIterations = 1000000;

/// --check-manifest: everything bpt-run checks before it loads the driver,
/// so that kernel sets (and the fuzzer) can be checked without a GPU.
static int checkManifestOnly(const std::string &path) {
  bpt::rt::Expected<bpt::rt::Manifest> manifest = bpt::rt::loadKernelSet(path);
  if (!manifest) {
    std::fprintf(stderr, "bpt-run: %s\n", manifest.error().c_str());
    return 2;
  }
  std::printf("%s: valid (op %s, %zu buffers, %zu launches, PTX %s)\n",
              path.c_str(), bpt::rt::manifestOpName(manifest->op),
              manifest->buffers.size(), manifest->launches.size(),
              manifest->ptxPath().c_str());
  return 0;
}

int main(int argc, char **argv) {
  bpt::rt::CheckOptions options;
  bool probe = false;
  std::string tuneDir, tuningOut, checkManifest;
  for (int i = 1; i < argc; ++i) {
    const char *arg = argv[i];
    long long value = 0;
    bool bad = false;
    if (!std::strcmp(arg, "--help") || !std::strcmp(arg, "-h")) {
      usage(stdout);
      return 0;
    } else if (!std::strcmp(arg, "--no-check")) {
      options.check = false;
    } else if (!std::strcmp(arg, "--probe")) {
      probe = true;
    } else if (!std::strcmp(arg, "--graph")) {
      options.graph = true;
    } else if (parseString(arg, "--tune", tuneDir)) {
      bad = tuneDir.empty();
    } else if (parseString(arg, "--tuning-out", tuningOut)) {
      bad = tuningOut.empty();
    } else if (parseString(arg, "--check-manifest", checkManifest)) {
      bad = checkManifest.empty();
    } else if (parseInt(arg, "--seed", 0, LLONG_MAX, value, bad)) {
      options.seed = value;
    } else if (parseInt(arg, "--device", 0, INT_MAX, value, bad)) {
      options.device = static_cast<int>(value);
    } else if (parseInt(arg, "--iterations", 0, kMaxIterations, value, bad)) {
      options.iterations = static_cast<int>(value);
    } else if (parseInt(arg, "--warmup", 0, kMaxIterations, value, bad)) {
      options.warmup = static_cast<int>(value);
    } else if (arg[0] == '-') {
      std::fprintf(stderr, "bpt-run: unknown option '%s'\n", arg);
      usage(stderr);
      return 2;
    } else if (options.manifestPath.empty()) {
      options.manifestPath = arg;
    } else {
      std::fprintf(stderr, "bpt-run: more than one manifest given\n");
      return 2;
    }
    if (bad) {
      std::fprintf(stderr, "bpt-run: bad value in '%s'\n", arg);
      return 2;
    }
  }
  if (!checkManifest.empty()) {
    if (!options.manifestPath.empty() || probe || !tuneDir.empty()) {
      std::fprintf(stderr, "bpt-run: --check-manifest takes no other "
                           "manifest, --probe or --tune\n");
      return 2;
    }
    return checkManifestOnly(checkManifest);
  }
  if (probe) {
    std::string message;
    bool available = bpt::rt::Runtime::isAvailable(&message);
    std::printf("%s\n", message.c_str());
    return available ? 0 : 2;
  }
  if (!tuneDir.empty()) {
    if (!options.manifestPath.empty()) {
      std::fprintf(stderr, "bpt-run: --tune takes no manifest\n");
      return 2;
    }
    return runTuning(tuneDir, tuningOut, options);
  }
  if (!tuningOut.empty()) {
    std::fprintf(stderr, "bpt-run: --tuning-out needs --tune=DIR\n");
    return 2;
  }
  if (options.manifestPath.empty()) {
    usage(stderr);
    return 2;
  }

  bpt::rt::Expected<bpt::rt::CheckResult> result =
      bpt::rt::checkKernelSet(options);
  if (!result) {
    std::fprintf(stderr, "bpt-run: %s\n", result.error().c_str());
    return 2;
  }
  std::printf("device: %s\n", result->device.c_str());
  for (const auto &out : result->outputs)
    std::printf("output %s %s: relative error %.2e (tolerance %.0e): %s\n",
                out.name.c_str(), out.type.c_str(), out.relativeError,
                out.tolerance, out.passed ? "PASS" : "FAIL");
  const bpt::rt::DeviceMemory &memory = result->memory;
  std::printf("device memory: manifest %.1f MiB, driver free-memory drop "
              "%.1f MiB (%+.1f%%): %s\n",
              memory.predictedBytes / 1048576.0,
              memory.measuredBytes / 1048576.0, 100 * memory.deviation(),
              !memory.checked()              ? "not checked below 256 MiB"
              : memory.withinTolerance()     ? "within 10%"
                                             : "FAIL (more than 10% off)");
  if (options.iterations > 0) {
    std::printf("time: median %.4f ms, min %.4f ms over %d runs%s",
                result->medianMs, result->minMs, options.iterations,
                options.graph ? " of one CUDA graph" : "");
    if (result->flops > 0)
      std::printf(", %.2f TFLOP/s", result->flops / (result->medianMs * 1e9));
    std::printf("\n");
  }
  if (!options.check) {
    // The outputs are not compared; the memory prediction still is.
    std::printf("(not checked)\n");
    return memory.withinTolerance() ? 0 : 1;
  }
  std::printf("%s\n", result->passed() ? "PASS" : "FAIL");
  return result->passed() ? 0 : 1;
}
