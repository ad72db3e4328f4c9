//===- bpt-run.cpp - run a compiled kernel set on the GPU -------*- C++ -*-===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
// Plain C++ (no LLVM), so it can be copied to a GPU machine with the
// runtime library alone. Exit status: 0 pass, 1 mismatch, 2 error.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/KernelSetCheck.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static void usage(FILE *out) {
  std::fprintf(out,
               "usage: bpt-run <manifest.json> [--seed=N] [--device=N]\n"
               "               [--iterations=N] [--warmup=N] [--no-check]\n"
               "               [--probe]\n"
               "Runs a kernel set from bpt-compile on the GPU on seeded random\n"
               "inputs, checks every output against the float64 reference,\n"
               "and prints the time and TFLOP/s. --probe only says whether a\n"
               "GPU is usable (exit 0) or not (exit 2).\n");
}

/// Parses the integer after `--name=`; false if `arg` is not that flag.
static bool parseInt(const char *arg, const char *name, long long &value,
                     bool &bad) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=')
    return false;
  char *end = nullptr;
  value = std::strtoll(arg + n + 1, &end, 10);
  bad = end == arg + n + 1 || *end != '\0';
  return true;
}

int main(int argc, char **argv) {
  bpt::rt::CheckOptions options;
  bool probe = false;
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
    } else if (parseInt(arg, "--seed", value, bad)) {
      options.seed = value;
    } else if (parseInt(arg, "--device", value, bad)) {
      options.device = static_cast<int>(value);
    } else if (parseInt(arg, "--iterations", value, bad)) {
      options.iterations = static_cast<int>(value);
      bad = bad || value < 0;
    } else if (parseInt(arg, "--warmup", value, bad)) {
      options.warmup = static_cast<int>(value);
      bad = bad || value < 0;
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
  if (probe) {
    std::string message;
    bool available = bpt::rt::Runtime::isAvailable(&message);
    std::printf("%s\n", message.c_str());
    return available ? 0 : 2;
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
  if (options.iterations > 0) {
    std::printf("time: median %.4f ms, min %.4f ms over %d runs", result->medianMs,
                result->minMs, options.iterations);
    if (result->flops > 0)
      std::printf(", %.2f TFLOP/s", result->flops / (result->medianMs * 1e9));
    std::printf("\n");
  }
  if (!options.check) {
    std::printf("(not checked)\n");
    return 0;
  }
  std::printf("%s\n", result->passed() ? "PASS" : "FAIL");
  return result->passed() ? 0 : 1;
}
