//===- RuntimeTest.cpp - unit tests of the runtime and manifest reader ----===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//
//
// Checks the JSON reader, the manifest reader (a valid manifest and every kind
// of error, with its message) and the runtime's C API where no driver or
// device is present. These run on any machine. Where a CUDA device is found,
// the same binary also runs hand-written PTX through the runtime: launches,
// shared memory above 48 KiB, timing and the error messages of bad launches;
// elsewhere those tests are skipped.
//
// On GoogleTest (Debian's libgtest-dev). Tests run in the order written, and
// one depends on it: DriverOverride must run before anything loads the real
// driver (so no --gtest_shuffle). The lit test runtime.test runs the binary
// and fails on any failure.
//
//===----------------------------------------------------------------------===//

#include "bpt-c/Runtime.h"
#include "bpt/Runtime/KernelSetCheck.h"
#include "bpt/Runtime/Manifest.h"
#include "bpt/Runtime/Runtime.h"
#include "bpt/Target/Chip.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace bpt::rt;

//===----------------------------------------------------------------------===//
// Assertions
//===----------------------------------------------------------------------===//

namespace {

::testing::AssertionResult contains(const char *textExpr, const char *,
                                    const std::string &text,
                                    const std::string &part) {
  if (text.find(part) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << textExpr << "\n  got:      \"" << text
         << "\"\n  expected to contain: \"" << part << "\"";
}

::testing::AssertionResult startsWith(const char *textExpr, const char *,
                                      const std::string &text,
                                      const std::string &prefix) {
  if (text.compare(0, prefix.size(), prefix) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << textExpr << "\n  got:      \"" << text
         << "\"\n  expected to start with: \"" << prefix << "\"";
}

/// What a run shows besides pass and fail (the device, skipped parts).
void note(const std::string &text) { std::printf("note: %s\n", text.c_str()); }

} // namespace

#define EXPECT_CONTAINS(text, part) EXPECT_PRED_FORMAT2(contains, text, part)
#define EXPECT_STARTS_WITH(text, prefix)                                       \
  EXPECT_PRED_FORMAT2(startsWith, text, prefix)

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

/// `text` with the first `from` replaced by `to`; a missing `from` is a bug
/// in the test and counts as a failure.
std::string replaced(std::string text, const std::string &from,
                     const std::string &to) {
  size_t pos = text.find(from);
  if (pos == std::string::npos) {
    ADD_FAILURE() << "test bug: \"" << from
                  << "\" not found in the manifest text";
    return text;
  }
  return text.replace(pos, from.size(), to);
}

/// The error of parsing `json`, or "<parsed>" if it parsed.
std::string jsonError(const std::string &json) {
  Expected<Json> value = readJson(json);
  return value ? "<parsed>" : value.error();
}

/// The error of reading manifest `json`, or "<valid>" if it is valid.
std::string manifestError(const std::string &json) {
  Expected<Manifest> manifest = Manifest::parse(json);
  return manifest ? "<valid>" : manifest.error();
}

/// The manifest of the schema's example: attention over 2x8x1024x64 bf16.
const char *kValidManifest = R"({
  "bpt_manifest_version": 1,
  "ptx": "out.ptx",
  "chip": "sm_90a",
  "features": "+ptx80",
  "op": "attention",
  "options": {"causal": true, "q_block": 128, "scale": 0.125},
  "buffers": [
    {"name": "query", "role": "input", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "key", "role": "input", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "value", "role": "input", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "result", "role": "output", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "workspace0", "role": "workspace", "dtype": "i8",
     "shape": [4096], "bytes": 4096}
  ],
  "launches": [
    {"kernel": "block_kernel", "grid": [2, 8, 16], "block": [256, 1, 1],
     "dynamic_shared_memory": 49152, "args": [0, 1, 2, 3]},
    {"kernel": "epilogue", "grid": [16], "block": [128], "args": [3, 4]}
  ]
})";

/// A version 2 manifest with tensor maps; "result" is written only through
/// tensor map 2 (a TMA store).
const char *kTensorMapManifest = R"({
  "bpt_manifest_version": 2,
  "ptx": "out.ptx",
  "chip": "sm_90a",
  "op": "attention",
  "buffers": [
    {"name": "query", "role": "input", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "key", "role": "input", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "value", "role": "input", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152},
    {"name": "result", "role": "output", "dtype": "bf16",
     "shape": [2, 8, 1024, 64], "bytes": 2097152}
  ],
  "tensor_maps": [
    {"buffer": 0, "dtype": "bf16", "shape": [16384, 64], "box": [128, 64],
     "swizzle": "128b", "l2_promotion": "128b", "oob_fill": "zero"},
    {"buffer": 1, "dtype": "bf16", "shape": [2, 8, 1024, 64],
     "box": [1, 1, 128, 64], "swizzle": "none"},
    {"buffer": 3, "dtype": "bf16", "shape": [16384, 64], "box": [64, 32],
     "swizzle": "64b", "oob_fill": "nan"}
  ],
  "launches": [
    {"kernel": "attention_tma", "grid": [132], "block": [384],
     "dynamic_shared_memory": 200000,
     "args": [{"tensor_map": 0}, {"tensor_map": 1}, 2, {"tensor_map": 2}]}
  ]
})";

/// A version 2 manifest that processes a sequence in two chunks of 2048
/// rows: each launch addresses its row block through byte offsets. "out" is
/// written only through offset arguments; tensor map 1 views the i8
/// workspace as bf16.
const char *kByteOffsetManifest = R"({
  "bpt_manifest_version": 2,
  "ptx": "out.ptx",
  "chip": "sm_90a",
  "op": "custom",
  "buffers": [
    {"name": "x", "role": "input", "dtype": "bf16",
     "shape": [4096, 64], "bytes": 524288},
    {"name": "out", "role": "output", "dtype": "bf16",
     "shape": [4096, 64], "bytes": 524288},
    {"name": "workspace0", "role": "workspace", "dtype": "i8",
     "shape": [65536], "bytes": 65536}
  ],
  "tensor_maps": [
    {"buffer": 0, "byte_offset": 262144, "dtype": "bf16",
     "shape": [2048, 64], "box": [64, 64], "swizzle": "128b"},
    {"buffer": 2, "byte_offset": 32768, "dtype": "bf16",
     "shape": [256, 64], "box": [64, 64], "swizzle": "128b"}
  ],
  "launches": [
    {"kernel": "chunk", "grid": [32], "block": [128],
     "args": [{"buffer": 0}, {"tensor_map": 1},
              {"buffer": 1, "byte_offset": 0}]},
    {"kernel": "chunk_tma", "grid": [32], "block": [128],
     "args": [{"tensor_map": 0}, {"buffer": 2, "byte_offset": 16},
              {"buffer": 1, "byte_offset": 262144}]}
  ]
})";

} // namespace

//===----------------------------------------------------------------------===//
// JSON
//===----------------------------------------------------------------------===//

namespace {

TEST(Json, Values) {
  Expected<Json> value = readJson(
      R"( {"a": [1, -2, 3.5, 1e3, -0, 12345678901234567], "b": {"c": null},
          "t": true, "f": false, "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00",
          "e": [], "o": {}} )");
  ASSERT_TRUE(value.ok()) << value.error();
  EXPECT_TRUE(value->is_object());
  EXPECT_EQ(value->size(), 7u);
  // Members keep their source order.
  EXPECT_EQ(value->begin().key(), "a");
  const Json *a = jsonMember(*value, "a");
  EXPECT_TRUE(a && a->is_array() && a->size() == 6);
  if (a && a->size() == 6) {
    EXPECT_EQ(*jsonInteger((*a)[0]), 1);
    EXPECT_EQ(*jsonInteger((*a)[1]), -2);
    EXPECT_TRUE(!jsonInteger((*a)[2]));
    EXPECT_TRUE((*a)[2].get<double>() == 3.5);
    // 1e3 is integral though written with an exponent.
    EXPECT_EQ(jsonInteger((*a)[3]).value_or(-1), 1000);
    EXPECT_EQ(jsonInteger((*a)[4]).value_or(-1), 0);
    // Exact beyond 2^53, where a double would round.
    EXPECT_EQ(jsonInteger((*a)[5]).value_or(-1), 12345678901234567LL);
  }
  const Json *b = jsonMember(*value, "b");
  EXPECT_TRUE(b && b->is_object() && jsonMember(*b, "c") &&
              jsonMember(*b, "c")->is_null());
  EXPECT_TRUE(jsonMember(*value, "t")->get<bool>());
  EXPECT_TRUE(jsonMember(*value, "f")->is_boolean() &&
              !jsonMember(*value, "f")->get<bool>());
  EXPECT_EQ(jsonMember(*value, "s")->get<std::string>(),
            "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(jsonMember(*value, "e")->is_array() &&
              jsonMember(*value, "e")->empty());
  EXPECT_TRUE(jsonMember(*value, "o")->is_object() &&
              jsonMember(*value, "o")->empty());
  EXPECT_TRUE(jsonMember(*value, "missing") == nullptr);
  EXPECT_EQ(jsonText(*readJson(R"({"k":[1,2.5,"x\n",null,true]})")),
            R"({"k":[1,2.5,"x\n",null,true]})");
  EXPECT_EQ(jsonText(*readJson("  42 ")), "42");

  // Beyond int64_t no integer is exact; an integral double is one.
  EXPECT_TRUE(!jsonInteger(*readJson("18446744073709551615")));
  EXPECT_EQ(jsonInteger(*readJson("8.0")).value_or(-1), 8);
  EXPECT_TRUE(!jsonInteger(*readJson("\"8\"")));
  // A member of something that is no object is absent.
  EXPECT_TRUE(jsonMember(*readJson("[1]"), "a") == nullptr);
  // Writing never throws: bytes that are not UTF-8 become U+FFFD.
  EXPECT_EQ(jsonText(Json("a\xff")), "\"a\xef\xbf\xbd\"");
}

/// Syntax errors are nlohmann's, located by line, column and byte; duplicate
/// keys, deep nesting and numbers out of range are caught on top.
TEST(Json, Errors) {
  const std::string value = "syntax error while parsing value - ";
  EXPECT_EQ(jsonError(""), "line 1, column 1 (byte 0): " + value +
                               "unexpected end of input; expected '[', '{', "
                               "or a literal");
  EXPECT_EQ(jsonError("{\n  \"a\": 1,\n  \"b\" 2\n}"),
            "line 3, column 7 (byte 18): syntax error while parsing object "
            "separator - unexpected number literal; expected ':'");
  EXPECT_EQ(jsonError("{\"a\": 1,}"),
            "line 1, column 9 (byte 8): syntax error while parsing object "
            "key - unexpected '}'; expected string literal");
  EXPECT_EQ(jsonError("[1, 2,]"), "line 1, column 7 (byte 6): " + value +
                                      "unexpected ']'; expected '[', '{', or "
                                      "a literal");
  EXPECT_EQ(jsonError("[1 2]"), "line 1, column 4 (byte 3): syntax error "
                                "while parsing array - unexpected number "
                                "literal; expected ']'");
  EXPECT_EQ(jsonError("{\"a\": 1 \"b\": 2}"),
            "line 1, column 11 (byte 10): syntax error while parsing object "
            "- unexpected string literal; expected '}'");
  EXPECT_EQ(jsonError("{a: 1}"),
            "line 1, column 2 (byte 1): syntax error while parsing object "
            "key - invalid literal; last read: '{a'; expected string "
            "literal");
  EXPECT_EQ(jsonError("{\"a\": 1, \"a\": 2}"),
            "line 1, column 10 (byte 9): duplicate key \"a\" in object");
  EXPECT_EQ(jsonError("{\"a\": {\"b\": 1, \"b\": 2}}"),
            "line 1, column 16 (byte 15): duplicate key \"b\" in object");
  // The key's opening quote, past escaped quotes inside it.
  EXPECT_EQ(jsonError("{\"k\\\"y\": 1, \"k\\\"y\": 2}"),
            "line 1, column 13 (byte 12): duplicate key \"k\"y\" in object");
  EXPECT_EQ(jsonError("\"abc"), "line 1, column 5 (byte 4): " + value +
                                    "invalid string: missing closing quote; "
                                    "last read: '\"abc'");
  EXPECT_EQ(jsonError("[1, [2"), "line 1, column 7 (byte 6): syntax error "
                                 "while parsing array - unexpected end of "
                                 "input; expected ']'");
  EXPECT_EQ(jsonError("{\"a\": 1"), "line 1, column 8 (byte 7): syntax error "
                                    "while parsing object - unexpected end of "
                                    "input; expected '}'");
  EXPECT_CONTAINS(jsonError("\"a\\qb\""),
                  "line 1, column 4 (byte 3): " + value +
                      "invalid string: forbidden character after backslash");
  EXPECT_EQ(jsonError("\"a\nb\""),
            "line 1, column 3 (byte 2): " + value +
                "invalid string: control character U+000A (LF) must be "
                "escaped to \\u000A or \\n; last read: '\"a<U+000A>'");
  EXPECT_EQ(jsonError("\"\\u12G4\""),
            "line 1, column 6 (byte 5): " + value +
                "invalid string: '\\u' must be followed by 4 hex digits; last "
                "read: '\"\\u12G'");
  EXPECT_EQ(jsonError("\"\\ud83d\""),
            "line 1, column 8 (byte 7): " + value +
                "invalid string: surrogate U+D800..U+DBFF must be followed by "
                "U+DC00..U+DFFF; last read: '\"\\ud83d\"'");
  EXPECT_EQ(jsonError("\"\\ude00\""),
            "line 1, column 7 (byte 6): " + value +
                "invalid string: surrogate U+DC00..U+DFFF must follow "
                "U+D800..U+DBFF; last read: '\"\\ude00'");
  EXPECT_EQ(jsonError("[\"\xff\"]"),
            "line 1, column 3 (byte 2): " + value +
                "invalid string: ill-formed UTF-8 byte; last read: '\"\xff'");
  // "0" then a second number: leading zeros are not allowed.
  EXPECT_EQ(jsonError("[01]"), "line 1, column 3 (byte 2): syntax error "
                               "while parsing array - unexpected number "
                               "literal; expected ']'");
  EXPECT_EQ(jsonError("-x"), "line 1, column 2 (byte 1): " + value +
                                 "invalid number; expected digit after '-'; "
                                 "last read: '-x'");
  EXPECT_EQ(jsonError("1."), "line 1, column 3 (byte 2): " + value +
                                 "invalid number; expected digit after '.'; "
                                 "last read: '1.'");
  EXPECT_EQ(jsonError("1e+"), "line 1, column 4 (byte 3): " + value +
                                  "invalid number; expected digit after "
                                  "exponent sign; last read: '1e+'");
  EXPECT_EQ(jsonError("1e999"),
            "line 1, column 1 (byte 0): number 1e999 is out of range");
  EXPECT_EQ(jsonError("[1, -1e999]"),
            "line 1, column 5 (byte 4): number -1e999 is out of range");
  EXPECT_EQ(jsonError("[tru]"), "line 1, column 5 (byte 4): " + value +
                                    "invalid literal; last read: '[tru]'");
  EXPECT_EQ(jsonError("nullx"), "line 1, column 5 (byte 4): " + value +
                                    "invalid literal; last read: 'nullx'; "
                                    "expected end of input");
  EXPECT_EQ(jsonError("{} x"), "line 1, column 4 (byte 3): " + value +
                                   "invalid literal; last read: '{} x'; "
                                   "expected end of input");
  // No comments.
  EXPECT_EQ(jsonError("// c\n{}"), "line 1, column 1 (byte 0): " + value +
                                       "invalid literal; last read: '/'");
  EXPECT_EQ(jsonError("[NaN]"), "line 1, column 2 (byte 1): " + value +
                                    "invalid literal; last read: '[N'");
  EXPECT_EQ(jsonError("[\x01]"), "line 1, column 2 (byte 1): " + value +
                                     "invalid literal; last read: "
                                     "'[<U+0001>'");
  EXPECT_EQ(jsonError(std::string(300, '[') + std::string(300, ']')),
            "line 1, column 257 (byte 256): nesting deeper than 256 levels");
  // 256 levels are fine.
  EXPECT_EQ(jsonError(std::string(256, '[') + std::string(256, ']')),
            "<parsed>");
}

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

TEST(Manifest, Valid) {
  Expected<Manifest> parsed = Manifest::parse(kValidManifest, "/data/run");
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  const Manifest &m = *parsed;
  EXPECT_EQ(m.ptx, "out.ptx");
  EXPECT_EQ(m.ptxPath(), "/data/run/out.ptx");
  EXPECT_EQ(m.chip, "sm_90a");
  EXPECT_EQ(m.features, "+ptx80");
  EXPECT_TRUE(m.op == ManifestOp::Attention);
  EXPECT_STREQ(manifestOpName(m.op), "attention");

  EXPECT_EQ(m.buffers.size(), 5);
  const ManifestBuffer &query = m.buffers[0];
  EXPECT_EQ(query.name, "query");
  EXPECT_TRUE(query.role == BufferRole::Input);
  EXPECT_TRUE(query.dtype == ElementType::BF16);
  EXPECT_TRUE(query.shape == (std::vector<int64_t>{2, 8, 1024, 64}));
  EXPECT_EQ(query.bytes, 2097152);
  EXPECT_EQ(query.numElements(), 1048576);
  EXPECT_TRUE(m.buffers[3].role == BufferRole::Output);
  EXPECT_TRUE(m.buffers[4].role == BufferRole::Workspace);
  EXPECT_TRUE(m.buffers[4].dtype == ElementType::I8);
  EXPECT_TRUE(m.findBuffer("result") == &m.buffers[3]);
  EXPECT_TRUE(m.findBuffer("nope") == nullptr);

  EXPECT_EQ(m.launches.size(), 2);
  const ManifestLaunch &first = m.launches[0];
  EXPECT_EQ(first.kernel, "block_kernel");
  EXPECT_TRUE(first.grid.x == 2 && first.grid.y == 8 && first.grid.z == 16);
  EXPECT_TRUE(first.block.x == 256 && first.block.y == 1 && first.block.z == 1);
  EXPECT_EQ(first.dynamicSharedMemory, 49152);
  EXPECT_TRUE(first.args == (std::vector<ManifestArg>{ManifestArg::buffer(0),
                                                      ManifestArg::buffer(1),
                                                      ManifestArg::buffer(2),
                                                      ManifestArg::buffer(3)}));
  // Version 1 still reads, without tensor maps.
  EXPECT_EQ(m.version, 1);
  EXPECT_TRUE(m.tensorMaps.empty());
  // Missing dimensions are 1; dynamic shared memory defaults to 0.
  const ManifestLaunch &second = m.launches[1];
  EXPECT_TRUE(second.grid.x == 16 && second.grid.y == 1 && second.grid.z == 1);
  EXPECT_EQ(second.block.count(), 128);
  EXPECT_EQ(second.dynamicSharedMemory, 0);

  EXPECT_TRUE(m.hasOption("causal"));
  EXPECT_TRUE(!m.hasOption("window"));
  EXPECT_EQ(m.getIntOption("q_block").value_or(-1), 128);
  EXPECT_TRUE(!m.getIntOption("scale"));  // not an integer
  EXPECT_TRUE(!m.getIntOption("causal")); // a boolean
  EXPECT_TRUE(m.getNumberOption("scale").value_or(0) == 0.125);
  EXPECT_TRUE(!m.getStringOption("q_block"));
  EXPECT_TRUE(m.getBoolOption("causal").value_or(false));
  EXPECT_TRUE(!m.getBoolOption("q_block"));
  EXPECT_TRUE(!m.getIntOption("absent"));

  // Optional fields may be left out; ptxPath without a directory.
  std::string minimal = R"({"bpt_manifest_version": 1, "ptx": "k.ptx",
    "chip": "sm_80", "op": "custom",
    "buffers": [{"name": "x", "role": "output", "dtype": "f32",
                 "shape": [3], "bytes": 12}],
    "launches": [{"kernel": "k", "grid": [1], "block": [32], "args": [0]}]})";
  Expected<Manifest> small = Manifest::parse(minimal);
  EXPECT_TRUE(small.ok());
  if (small) {
    EXPECT_EQ(small->ptxPath(), "k.ptx");
    EXPECT_EQ(small->features, "");
    EXPECT_TRUE(small->options.is_object() && small->options.empty());
    EXPECT_TRUE(small->op == ManifestOp::Custom);
  }
  // An absolute ptx path ignores the directory.
  Expected<Manifest> below = Manifest::parse(
      replaced(kValidManifest, "\"out.ptx\"", "\"ptx/out.ptx\""), "/data");
  EXPECT_TRUE(below.ok() && below->ptxPath() == "/data/ptx/out.ptx");

  EXPECT_STREQ(elementTypeName(ElementType::F16), "f16");
  EXPECT_EQ(elementTypeBytes(ElementType::F32), 4);
  EXPECT_EQ(elementTypeBytes(ElementType::BF16), 2);
  EXPECT_EQ(elementTypeBytes(ElementType::I8), 1);
  EXPECT_TRUE(parseElementType("bf16") == ElementType::BF16);
  EXPECT_TRUE(!parseElementType("fp32"));
  EXPECT_STREQ(bufferRoleName(BufferRole::Workspace), "workspace");
}

/// A workspace may list what it holds (names and bytes, none larger than
/// the slot); nothing else may.
TEST(Manifest, WorkspaceHolds) {
  std::string valid = kValidManifest;
  const char *slot = "\"shape\": [4096], \"bytes\": 4096";
  std::string named = replaced(
      valid, slot,
      "\"shape\": [4096], \"bytes\": 4096, \"holds\": "
      "[{\"name\": \"delta\", \"bytes\": 1024}, "
      "{\"name\": \"dq_accumulator\", \"bytes\": 4096}]");
  Expected<Manifest> manifest = Manifest::parse(named);
  ASSERT_TRUE(manifest) << manifest.error();
  ASSERT_EQ(manifest->buffers[4].holds.size(), 2u);
  EXPECT_EQ(manifest->buffers[4].holds[0].first, "delta");
  EXPECT_EQ(manifest->buffers[4].holds[1].second, 4096);
  EXPECT_EQ(manifestError(replaced(
                valid, slot,
                "\"shape\": [4096], \"bytes\": 4096, \"holds\": "
                "[{\"name\": \"delta\", \"bytes\": 8192}]")),
            "buffers[4].holds[0].bytes: 8192 exceeds the limit of 4096");
  EXPECT_EQ(manifestError(replaced(
                valid, slot,
                "\"shape\": [4096], \"bytes\": 4096, \"holds\": "
                "[{\"name\": \"\", \"bytes\": 16}]")),
            "buffers[4].holds[0].name: must not be empty");
  EXPECT_EQ(manifestError(replaced(valid, slot,
                                   "\"shape\": [4096], \"bytes\": 4096, "
                                   "\"holds\": {}")),
            "buffers[4].holds: expected an array, got an object");
  EXPECT_EQ(manifestError(replaced(
                valid, "\"bytes\": 2097152},\n    {\"name\": \"key\"",
                "\"bytes\": 2097152, \"holds\": []},\n    "
                "{\"name\": \"key\"")),
            "buffers[0].holds: only a workspace lists what it holds");
  // An arena: each held buffer at a byte offset, inside the workspace and
  // aligned to 16.
  Expected<Manifest> arena = Manifest::parse(
      replaced(valid, slot,
               "\"shape\": [4096], \"bytes\": 4096, \"holds\": "
               "[{\"name\": \"delta\", \"bytes\": 1024}, "
               "{\"name\": \"lse\", \"bytes\": 1024, \"byte_offset\": 3072}]"));
  ASSERT_TRUE(arena) << arena.error();
  EXPECT_EQ(arena->buffers[4].holds[1].first, "lse");
  EXPECT_EQ(
      manifestError(replaced(valid, slot,
                             "\"shape\": [4096], \"bytes\": 4096, \"holds\": "
                             "[{\"name\": \"lse\", \"bytes\": 1024, "
                             "\"byte_offset\": 3088}]")),
      "buffers[4].holds[0].byte_offset: 3088 exceeds the limit of 3072");
  EXPECT_EQ(
      manifestError(replaced(valid, slot,
                             "\"shape\": [4096], \"bytes\": 4096, \"holds\": "
                             "[{\"name\": \"lse\", \"bytes\": 1024, "
                             "\"byte_offset\": 8}]")),
      "buffers[4].holds[0].byte_offset: 8 is not a multiple of 16");
}

TEST(Manifest, Errors) {
  const std::string valid = kValidManifest;
  EXPECT_EQ(manifestError(valid), "<valid>");

  // Top level.
  EXPECT_EQ(manifestError("[1]"),
            "manifest: expected a JSON object, got an array");
  EXPECT_EQ(manifestError(replaced(valid, "\"bpt_manifest_version\": 1,", "")),
            "bpt_manifest_version: missing (is this a bpt kernel "
            "manifest?)");
  EXPECT_EQ(manifestError(replaced(valid, "\"bpt_manifest_version\": 1",
                                   "\"bpt_manifest_version\": 3")),
            "bpt_manifest_version: version 3 is not supported (this "
            "runtime reads versions 1 and 2)");
  EXPECT_EQ(manifestError(replaced(valid, "\"bpt_manifest_version\": 1",
                                   "\"bpt_manifest_version\": 0")),
            "bpt_manifest_version: version 0 is not supported (this "
            "runtime reads versions 1 and 2)");
  EXPECT_EQ(manifestError(replaced(valid, "\"bpt_manifest_version\": 1",
                                   "\"bpt_manifest_version\": \"1\"")),
            "bpt_manifest_version: expected an integer, got string \"1\"");
  EXPECT_EQ(manifestError(replaced(valid, "\"launches\"", "\"lauches\"")),
            "lauches: unknown field (expected bpt_manifest_version, ptx, "
            "chip, features, op, options, buffers, tensor_maps or "
            "launches)");
  EXPECT_EQ(manifestError(replaced(valid, "\"ptx\": \"out.ptx\",", "")),
            "ptx: missing");
  EXPECT_EQ(manifestError(replaced(valid, "\"out.ptx\"", "5")),
            "ptx: expected a string, got 5");
  EXPECT_EQ(manifestError(replaced(valid, "\"out.ptx\"", "\"\"")),
            "ptx: must not be empty");
  EXPECT_EQ(manifestError(replaced(valid, "\"sm_90a\"", "\"h100\"")),
            "chip: unknown chip 'h100' (LLVM's NVPTX back end supports "
            "sm_20, sm_21, sm_30, sm_32, sm_35, sm_37, sm_50, sm_52, sm_53, "
            "sm_60, sm_61, sm_62, sm_70, sm_72, sm_75, sm_80, sm_86, sm_87, "
            "sm_88, sm_89, sm_90, sm_90a, sm_100, sm_100a, sm_100f, sm_101, "
            "sm_101a, sm_101f, sm_103, sm_103a, sm_103f, sm_110, sm_110a, "
            "sm_110f, sm_120, sm_120a, sm_120f, sm_121, sm_121a, sm_121f)");
  EXPECT_EQ(manifestError(replaced(valid, "\"+ptx80\"", "80")),
            "features: expected a string, got 80");
  EXPECT_EQ(manifestError(replaced(valid, "\"attention\"", "\"attn\"")),
            "op: unknown op \"attn\" (expected attention, attention_lse, "
            "attention_grad, attention_backward, ffn, block, block_backward or "
            "custom)");
  EXPECT_EQ(manifestError(
                replaced(valid, "\"q_block\": 128", "\"q_block\": [128, 64]")),
            "options.q_block: expected a number, string or boolean, got an "
            "array");
  std::string optionsText =
      valid.substr(valid.find("\"options\""),
                   valid.find("\"buffers\"") - valid.find("\"options\""));
  EXPECT_EQ(manifestError(replaced(valid, optionsText, "\"options\": 3,\n  ")),
            "options: expected an object, got 3");

  // Buffers.
  std::string noBuffers = replaced(
      valid,
      valid.substr(valid.find("\"buffers\""),
                   valid.find("\"launches\"") - valid.find("\"buffers\"")),
      "\"buffers\": [],\n  ");
  EXPECT_EQ(manifestError(noBuffers), "buffers: expected at least one buffer");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"role\": \"input\"", "\"role\": \"in\"")),
      "buffers[0].role: unknown role \"in\" (expected input, output "
      "or workspace)");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"role\": \"input\", \"dtype\": \"bf16\"",
                             "\"role\": \"input\", \"dtype\": \"fp32\"")),
      "buffers[0].dtype: unknown dtype \"fp32\" (expected f32, f16, "
      "bf16 or i8)");
  EXPECT_EQ(manifestError(replaced(valid, "\"name\": \"query\", ", "")),
            "buffers[0].name: missing");
  EXPECT_EQ(manifestError(
                replaced(valid, "\"name\": \"key\"", "\"name\": \"query\"")),
            "buffers[1].name: \"query\" is already the name of buffers[0]");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [2, 8, 1024, 64]",
                                   "\"shape\": [2, 8, 0, 64]")),
            "buffers[0].shape[2]: expected a positive integer, got 0");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [2, 8, 1024, 64]",
                                   "\"shape\": [2, 8.5, 1024, 64]")),
            "buffers[0].shape[1]: expected a positive integer, got 8.5");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [2, 8, 1024, 64]",
                                   "\"shape\": []")),
            "buffers[0].shape: expected at least one dimension");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [2, 8, 1024, 64]",
                                   "\"shape\": \"2x8\"")),
            "buffers[0].shape: expected an array of positive integers, got "
            "string \"2x8\"");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"bytes\": 2097152", "\"bytes\": 1000")),
      "buffers[0].bytes: 1000 does not match shape [2, 8, 1024, 64] "
      "of bf16, which is 2097152 bytes");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"bytes\": 2097152", "\"bytes\": -4")),
      "buffers[0].bytes: expected a positive integer, got -4");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [4096]",
                                   "\"shape\": [4294967296, 4294967296]")),
            "buffers[4].shape: the buffer is too large (2^62 bytes or "
            "more)");
  EXPECT_EQ(manifestError(replaced(valid, "\"bytes\": 4096",
                                   "\"bytes\": 4096, \"offset\": 0")),
            "buffers[4].offset: unknown field (expected name, role, dtype, "
            "shape, bytes or holds)");
  EXPECT_EQ(manifestError(replaced(valid, "{\"name\": \"query\"",
                                   "7, {\"name\": \"query\"")),
            "buffers[0]: expected an object, got 7");
  EXPECT_EQ(manifestError(replaced(replaced(valid, "\"args\": [0, 1, 2, 3]",
                                            "\"args\": [0, 1, 2]"),
                                   "\"args\": [3, 4]", "\"args\": [4]")),
            "buffers[3]: output \"result\" is not an argument of any "
            "launch, so nothing would write it");

  // Launches.
  EXPECT_EQ(manifestError(replaced(valid, "\"args\": [0, 1, 2, 3]",
                                   "\"args\": [0, 1, 2, 7]")),
            "launches[0].args[3]: index 7 out of range (5 buffers)");
  EXPECT_EQ(manifestError(replaced(valid, "\"args\": [0, 1, 2, 3]",
                                   "\"args\": [-1, 1, 2, 3]")),
            "launches[0].args[0]: expected a buffer index (a non-negative "
            "integer), got -1");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"args\": [0, 1, 2, 3]", "\"args\": 3")),
      "launches[0].args: expected an array of buffer indices, got 3");
  EXPECT_EQ(manifestError(replaced(valid, "\"grid\": [2, 8, 16]",
                                   "\"grid\": [2, 8, 16, 1]")),
            "launches[0].grid: expected 1 to 3 dimensions, got 4");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"grid\": [2, 8, 16]", "\"grid\": []")),
      "launches[0].grid: expected 1 to 3 dimensions, got 0");
  EXPECT_EQ(manifestError(replaced(valid, "\"grid\": [2, 8, 16]",
                                   "\"grid\": [2, 0, 16]")),
            "launches[0].grid[1]: expected a positive integer, got 0");
  EXPECT_EQ(manifestError(replaced(valid, "\"grid\": [2, 8, 16]",
                                   "\"grid\": [2, 70000, 16]")),
            "launches[0].grid[1]: 70000 exceeds the limit of 65535");
  EXPECT_EQ(manifestError(replaced(valid, "\"grid\": [2, 8, 16]",
                                   "\"grid\": {\"x\": 2}")),
            "launches[0].grid: expected an array of 1 to 3 positive "
            "integers, got an object");
  EXPECT_EQ(manifestError(replaced(valid, "\"block\": [256, 1, 1]",
                                   "\"block\": [32, 32, 2]")),
            "launches[0].block: 32x32x2 is 2048 threads per block, more "
            "than 1024");
  EXPECT_EQ(manifestError(replaced(valid, "\"block\": [256, 1, 1]",
                                   "\"block\": [1, 1, 65]")),
            "launches[0].block[2]: 65 exceeds the limit of 64");
  EXPECT_EQ(manifestError(replaced(valid, "\"block\": [256, 1, 1],", "")),
            "launches[0].block: missing");
  EXPECT_EQ(manifestError(replaced(valid,
                                   "\"dynamic_shared_memory\": "
                                   "49152",
                                   "\"dynamic_shared_memory\": -1")),
            "launches[0].dynamic_shared_memory: expected a non-negative "
            "integer (bytes), got -1");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"kernel\": \"block_kernel\", ", "")),
      "launches[0].kernel: missing");
  EXPECT_EQ(manifestError(replaced(valid, "\"kernel\": \"epilogue\"",
                                   "\"kernel\": \"epilogue\", \"stream\": "
                                   "1")),
            "launches[1].stream: unknown field (expected kernel, grid, "
            "block, dynamic_shared_memory, args or dependent)");
  std::string noLaunches =
      valid.substr(0, valid.find("\"launches\"")) + "\"launches\": []}";
  EXPECT_EQ(manifestError(noLaunches),
            "launches: expected at least one launch");

  // A JSON syntax error comes through with its location.
  EXPECT_EQ(manifestError(replaced(valid, "\"op\": \"attention\",",
                                   "\"op\": \"attention\",,")),
            "line 6, column 21 (byte 115): syntax error while parsing "
            "object key - unexpected ','; expected string literal");
}

TEST(Manifest, TensorMaps) {
  Expected<Manifest> parsed = Manifest::parse(kTensorMapManifest);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  const Manifest &m = *parsed;
  EXPECT_EQ(m.version, 2);
  EXPECT_EQ(m.tensorMaps.size(), 3);
  const ManifestTensorMap &q = m.tensorMaps[0];
  EXPECT_EQ(q.buffer, 0);
  EXPECT_TRUE(q.dtype == ElementType::BF16);
  EXPECT_TRUE(q.shape == (std::vector<int64_t>{16384, 64}));
  EXPECT_TRUE(q.box == (std::vector<int64_t>{128, 64}));
  EXPECT_EQ(q.swizzleBytes, 128);
  EXPECT_EQ(q.l2PromotionBytes, 128);
  EXPECT_TRUE(!q.oobNaN);
  // Optional fields default to none and zero.
  const ManifestTensorMap &k = m.tensorMaps[1];
  EXPECT_EQ(k.buffer, 1);
  EXPECT_TRUE(k.shape == (std::vector<int64_t>{2, 8, 1024, 64}));
  EXPECT_TRUE(k.box == (std::vector<int64_t>{1, 1, 128, 64}));
  EXPECT_EQ(k.swizzleBytes, 0);
  EXPECT_EQ(k.l2PromotionBytes, 0);
  EXPECT_TRUE(!k.oobNaN);
  EXPECT_EQ(m.tensorMaps[2].buffer, 3);
  EXPECT_EQ(m.tensorMaps[2].swizzleBytes, 64);
  EXPECT_TRUE(m.tensorMaps[2].oobNaN);
  EXPECT_TRUE(m.launches[0].args ==
              (std::vector<ManifestArg>{
                  ManifestArg::tensorMap(0), ManifestArg::tensorMap(1),
                  ManifestArg::buffer(2), ManifestArg::tensorMap(2)}));
  EXPECT_TRUE(ManifestArg::tensorMap(2) != ManifestArg::buffer(2));

  // Version 2 without tensor maps, and with an empty list.
  const std::string valid = kTensorMapManifest;
  std::string mapsText =
      valid.substr(valid.find("\"tensor_maps\""),
                   valid.find("\"launches\"") - valid.find("\"tensor_maps\""));
  std::string plainLaunches =
      replaced(valid,
               "[{\"tensor_map\": 0}, {\"tensor_map\": 1}, 2, "
               "{\"tensor_map\": 2}]",
               "[0, 1, 2, 3]");
  Expected<Manifest> noMaps =
      Manifest::parse(replaced(plainLaunches, mapsText, ""));
  EXPECT_TRUE(noMaps.ok() && noMaps->version == 2 &&
              noMaps->tensorMaps.empty());
  EXPECT_EQ(
      manifestError(replaced(plainLaunches, mapsText, "\"tensor_maps\": [],")),
      "<valid>");

  // The tensor_maps list and its entries.
  EXPECT_EQ(manifestError(replaced(valid, mapsText, "\"tensor_maps\": {},")),
            "tensor_maps: expected an array, got an object");
  EXPECT_EQ(
      manifestError(replaced(valid, "{\"buffer\": 0,", "3, {\"buffer\": 0,")),
      "tensor_maps[0]: expected an object, got 3");
  EXPECT_EQ(manifestError(replaced(valid, "\"buffer\": 0", "\"buffer\": 9")),
            "tensor_maps[0].buffer: index 9 out of range (4 buffers)");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"buffer\": 0", "\"buffer\": \"query\"")),
      "tensor_maps[0].buffer: expected a buffer index (a non-negative "
      "integer), got string \"query\"");
  EXPECT_EQ(manifestError(replaced(valid, "{\"buffer\": 0, ", "{")),
            "tensor_maps[0].buffer: missing");
  EXPECT_EQ(manifestError(replaced(valid, "\"buffer\": 0, \"dtype\": \"bf16\"",
                                   "\"buffer\": 0, \"dtype\": \"f16\"")),
            "tensor_maps[0].dtype: f16 does not match the dtype of "
            "buffers[0] (\"query\"), bf16 (only an i8 buffer takes any dtype)");
  EXPECT_EQ(manifestError(replaced(valid, "\"buffer\": 0, \"dtype\": \"bf16\"",
                                   "\"buffer\": 0, \"dtype\": \"i8\"")),
            "tensor_maps[0].dtype: unknown value \"i8\" (expected f32, f16 "
            "or bf16)");
  // A map may cover part of its buffer, not more.
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [16384, 64]",
                                   "\"shape\": [8192, 64]")),
            "<valid>");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [16384, 64]",
                                   "\"shape\": [16384, 128]")),
            "tensor_maps[0].shape: [16384, 128] of bf16 is 4194304 bytes, "
            "but buffers[0] (\"query\") has 2097152 bytes");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [16384, 64]",
                                   "\"shape\": [4294967296, 4294967296]")),
            "tensor_maps[0].shape: [4294967296, 4294967296] of bf16 is 2^62 "
            "or more bytes, but buffers[0] (\"query\") has 2097152 bytes");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [16384, 64]",
                                   "\"shape\": [4294967297, 64]")),
            "tensor_maps[0].shape[0]: 4294967297 exceeds the limit of "
            "4294967296");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [16384, 64]",
                                   "\"shape\": [1, 2, 8, 1024, 8, 8]")),
            "tensor_maps[0].shape: expected 1 to 5 dimensions, got 6");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"shape\": [16384, 64]", "\"shape\": []")),
      "tensor_maps[0].shape: expected 1 to 5 dimensions, got 0");
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [16384, 64]",
                                   "\"shape\": [262144, 4]")),
            "tensor_maps[0].shape[0]: its byte stride (the inner "
            "dimensions times 2 bytes) is 8, not a multiple of 16 as TMA "
            "needs");
  EXPECT_EQ(manifestError(
                replaced(valid, "\"box\": [128, 64]", "\"box\": [300, 64]")),
            "tensor_maps[0].box[0]: 300 exceeds the limit of 256");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"box\": [128, 64]", "\"box\": [128, 0]")),
      "tensor_maps[0].box[1]: expected a positive integer, got 0");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"box\": [128, 64]", "\"box\": [128]")),
      "tensor_maps[0].box: expected 2 dimensions (as many as shape), got 1");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"box\": [128, 64]", "\"box\": [128, 4]")),
      "tensor_maps[0].box[1]: 4 elements of bf16 are 8 bytes, not a "
      "multiple of 16");
  EXPECT_EQ(manifestError(replaced(valid, "\"swizzle\": \"128b\"",
                                   "\"swizzle\": \"64b\"")),
            "tensor_maps[0].box[1]: 64 elements of bf16 are 128 bytes, more "
            "than the swizzle span of 64 bytes");
  EXPECT_EQ(manifestError(replaced(valid, "\"swizzle\": \"128b\"",
                                   "\"swizzle\": \"256b\"")),
            "tensor_maps[0].swizzle: unknown value \"256b\" (expected "
            "none, 32b, 64b or 128b)");
  EXPECT_EQ(manifestError(replaced(valid, ", \"swizzle\": \"none\"", "")),
            "tensor_maps[1].swizzle: missing");
  EXPECT_EQ(manifestError(replaced(valid, "\"l2_promotion\": \"128b\"",
                                   "\"l2_promotion\": 128")),
            "tensor_maps[0].l2_promotion: expected a string, got 128");
  EXPECT_EQ(manifestError(replaced(valid, "\"l2_promotion\": \"128b\"",
                                   "\"l2_promotion\": \"512b\"")),
            "tensor_maps[0].l2_promotion: unknown value \"512b\" (expected "
            "none, 64b, 128b or 256b)");
  EXPECT_EQ(manifestError(replaced(valid, "\"oob_fill\": \"zero\"",
                                   "\"oob_fill\": \"inf\"")),
            "tensor_maps[0].oob_fill: unknown value \"inf\" (expected zero "
            "or nan)");
  EXPECT_EQ(manifestError(replaced(valid, "\"oob_fill\": \"zero\"",
                                   "\"oob_fill\": \"zero\", \"stride\": 1")),
            "tensor_maps[0].stride: unknown field (expected buffer, "
            "byte_offset, dtype, shape, box, swizzle, l2_promotion or "
            "oob_fill)");

  // Tensor-map arguments.
  EXPECT_EQ(manifestError(
                replaced(valid, "{\"tensor_map\": 1}", "{\"tensor_map\": 3}")),
            "launches[0].args[1].tensor_map: index 3 out of range (3 "
            "tensor maps)");
  EXPECT_EQ(manifestError(replaced(valid, "{\"tensor_map\": 0}",
                                   "{\"tensor_map\": \"0\"}")),
            "launches[0].args[0].tensor_map: expected a tensor map index (a "
            "non-negative integer), got string \"0\"");
  EXPECT_EQ(manifestError(replaced(valid, "{\"tensor_map\": 0}",
                                   "{\"tensor_map\": 0, \"offset\": 8}")),
            "launches[0].args[0].offset: unknown field (expected "
            "buffer, byte_offset, tensor_map or i32)");
  EXPECT_EQ(
      manifestError(replaced(valid, "{\"tensor_map\": 0}", "{\"buffer\": 0}")),
      "<valid>");
  EXPECT_EQ(manifestError(replaced(valid, "{\"tensor_map\": 0}", "{}")),
            "launches[0].args[0]: expected \"buffer\", \"tensor_map\" or "
            "\"i32\" in an argument object");
  EXPECT_EQ(manifestError(replaced(valid, "{\"tensor_map\": 1}, 2",
                                   "{\"tensor_map\": 1}, \"x\"")),
            "launches[0].args[2]: expected a buffer index (a non-negative "
            "integer), {\"buffer\": index, \"byte_offset\": bytes} or "
            "{\"tensor_map\": index}, got string \"x\"");
  EXPECT_EQ(manifestError(replaced(valid, "{\"tensor_map\": 1}, 2",
                                   "{\"tensor_map\": 1}, 4")),
            "launches[0].args[2]: index 4 out of range (4 buffers)");
  // An output that no tensor map or argument reaches is never written.
  EXPECT_EQ(manifestError(replaced(valid, ", {\"tensor_map\": 2}]", "]")),
            "buffers[3]: output \"result\" is not an argument of any "
            "launch, so nothing would write it");

  // Version 1 has neither tensor maps nor tensor-map arguments.
  EXPECT_EQ(manifestError(replaced(valid, "\"bpt_manifest_version\": 2",
                                   "\"bpt_manifest_version\": 1")),
            "tensor_maps: needs bpt_manifest_version 2 (this manifest is "
            "version 1)");
  EXPECT_EQ(manifestError(replaced(kValidManifest, "\"args\": [0, 1, 2, 3]",
                                   "\"args\": [{\"tensor_map\": 0}, 1, 2, "
                                   "3]")),
            "launches[0].args[0]: argument objects ({\"buffer\": ...} or "
            "{\"tensor_map\": ...}) need bpt_manifest_version 2 (this "
            "manifest is version 1)");
}

/// Byte offsets into buffers: arguments that address a row block, tensor
/// maps that start inside their buffer, and maps over an i8 workspace.
TEST(Manifest, ByteOffsets) {
  Expected<Manifest> parsed = Manifest::parse(kByteOffsetManifest);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  const Manifest &m = *parsed;
  EXPECT_EQ(m.tensorMaps[0].byteOffset, 262144);
  EXPECT_TRUE(m.tensorMaps[0].shape == (std::vector<int64_t>{2048, 64}));
  EXPECT_EQ(m.tensorMaps[1].buffer, 2);
  EXPECT_EQ(m.tensorMaps[1].byteOffset, 32768);
  EXPECT_TRUE(m.tensorMaps[1].dtype == ElementType::BF16);
  EXPECT_TRUE(m.launches[0].args ==
              (std::vector<ManifestArg>{ManifestArg::buffer(0),
                                        ManifestArg::tensorMap(1),
                                        ManifestArg::buffer(1, 0)}));
  EXPECT_TRUE(m.launches[1].args ==
              (std::vector<ManifestArg>{ManifestArg::tensorMap(0),
                                        ManifestArg::buffer(2, 16),
                                        ManifestArg::buffer(1, 262144)}));
  EXPECT_TRUE(ManifestArg::buffer(1, 16) != ManifestArg::buffer(1));

  // Scalar arguments (a chunk's first row).
  {
    const std::string text = kByteOffsetManifest;
    const std::string scalarArgs = replaced(
        text, "{\"buffer\": 1, \"byte_offset\": 262144}",
        "{\"buffer\": 1, \"byte_offset\": 262144}, {\"i32\": 2048}, "
        "{\"i32\": -1}");
    Expected<Manifest> scalars = Manifest::parse(scalarArgs);
    EXPECT_TRUE(scalars.ok());
    if (scalars) {
      EXPECT_TRUE(scalars->launches[1].args.size() == 5);
      EXPECT_TRUE(scalars->launches[1].args[3] == ManifestArg::i32(2048));
      EXPECT_TRUE(scalars->launches[1].args[4] == ManifestArg::i32(-1));
      EXPECT_TRUE(ManifestArg::i32(1) != ManifestArg::i32(2));
    }
  }

  const std::string valid = kByteOffsetManifest;
  const std::string arg = "{\"buffer\": 1, \"byte_offset\": 262144}";
  auto withArg = [&](const std::string &text) {
    return manifestError(replaced(valid, arg, text));
  };
  // The largest offset inside the buffer.
  EXPECT_EQ(withArg("{\"buffer\": 1, \"byte_offset\": 524272}"), "<valid>");
  EXPECT_EQ(withArg("{\"buffer\": 1, \"byte_offset\": -16}"),
            "launches[1].args[2].byte_offset: expected a non-negative "
            "integer (bytes), got -16");
  EXPECT_EQ(withArg("{\"buffer\": 1, \"byte_offset\": 8}"),
            "launches[1].args[2].byte_offset: 8 is not a multiple of 16");
  EXPECT_EQ(withArg("{\"buffer\": 1, \"byte_offset\": 524288}"),
            "launches[1].args[2].byte_offset: 524288 is not inside "
            "buffers[1] (\"out\"), which is 524288 bytes");
  EXPECT_EQ(withArg("{\"buffer\": 1, \"byte_offset\": \"16\"}"),
            "launches[1].args[2].byte_offset: expected a non-negative "
            "integer (bytes), got string \"16\"");
  EXPECT_EQ(withArg("{\"tensor_map\": 0, \"byte_offset\": 16}"),
            "launches[1].args[2].byte_offset: only a buffer argument takes "
            "a byte offset (a tensor map's goes in its tensor_maps entry)");
  EXPECT_EQ(withArg("{\"buffer\": 1, \"tensor_map\": 0}"),
            "launches[1].args[2]: has both \"buffer\" and \"tensor_map\" "
            "(expected exactly one)");
  EXPECT_EQ(withArg("{\"byte_offset\": 16}"),
            "launches[1].args[2]: expected \"buffer\", \"tensor_map\" or "
            "\"i32\" in an argument object");
  EXPECT_EQ(withArg("{\"buffer\": 1, \"offset\": 16}"),
            "launches[1].args[2].offset: unknown field (expected buffer, "
            "byte_offset, tensor_map or i32)");
  EXPECT_EQ(withArg("{\"i32\": 2147483648}"),
            "launches[1].args[2].i32: expected a 32-bit integer, got "
            "2147483648");
  EXPECT_EQ(withArg("{\"i32\": 1.5}"),
            "launches[1].args[2].i32: expected a 32-bit integer, got 1.5");
  EXPECT_EQ(withArg("{\"i32\": 1, \"buffer\": 1}"),
            "launches[1].args[2]: an \"i32\" argument takes no other field");
  EXPECT_EQ(withArg("{\"buffer\": 3, \"byte_offset\": 16}"),
            "launches[1].args[2].buffer: index 3 out of range (3 buffers)");
  EXPECT_EQ(withArg("{\"buffer\": -1}"),
            "launches[1].args[2].buffer: expected a buffer index (a "
            "non-negative integer), got -1");
  // An output passed only with offsets counts as written; one passed nowhere
  // does not.
  EXPECT_EQ(manifestError(replaced(replaced(valid, arg, "0"),
                                   "{\"buffer\": 1, \"byte_offset\": 0}", "0")),
            "buffers[1]: output \"out\" is not an argument of any launch, so "
            "nothing would write it");
  // Version 1 has no argument objects.
  EXPECT_EQ(manifestError(replaced(kValidManifest, "\"args\": [3, 4]",
                                   "\"args\": [{\"buffer\": 3, "
                                   "\"byte_offset\": 16}, 4]")),
            "launches[1].args[0]: argument objects ({\"buffer\": ...} or "
            "{\"tensor_map\": ...}) need bpt_manifest_version 2 (this "
            "manifest is version 1)");

  // Tensor-map offsets, and the tensor fitting after them.
  const std::string mapOffset = "\"byte_offset\": 262144";
  EXPECT_EQ(manifestError(replaced(valid, mapOffset, "\"byte_offset\": 0")),
            "<valid>");
  EXPECT_EQ(manifestError(replaced(valid, mapOffset, "\"byte_offset\": 24")),
            "tensor_maps[0].byte_offset: 24 is not a multiple of 16");
  EXPECT_EQ(manifestError(replaced(valid, mapOffset, "\"byte_offset\": -16")),
            "tensor_maps[0].byte_offset: expected a non-negative integer "
            "(bytes), got -16");
  EXPECT_EQ(
      manifestError(replaced(valid, mapOffset, "\"byte_offset\": 524288")),
      "tensor_maps[0].byte_offset: 524288 is not inside buffers[0] (\"x\"), "
      "which is 524288 bytes");
  EXPECT_EQ(
      manifestError(replaced(valid, mapOffset, "\"byte_offset\": 262160")),
      "tensor_maps[0].shape: [2048, 64] of bf16 is 262144 bytes, but "
      "buffers[0] (\"x\") has 262128 bytes after byte_offset 262160");
  // Over a typed buffer the dtype must still match.
  EXPECT_EQ(manifestError(replaced(valid, mapOffset + ", \"dtype\": \"bf16\"",
                                   mapOffset + ", \"dtype\": \"f16\"")),
            "tensor_maps[0].dtype: f16 does not match the dtype of buffers[0] "
            "(\"x\"), bf16 (only an i8 buffer takes any dtype)");

  // Over the i8 workspace: any dtype, as long as it fits.
  const std::string workspaceMap =
      "{\"buffer\": 2, \"byte_offset\": 32768, \"dtype\": \"bf16\",\n"
      "     \"shape\": [256, 64], \"box\": [64, 64], \"swizzle\": \"128b\"}";
  auto withMap = [&](const std::string &text) {
    return manifestError(replaced(valid, workspaceMap, text));
  };
  EXPECT_EQ(withMap("{\"buffer\": 2, \"dtype\": \"f32\", \"shape\": "
                    "[128, 128], \"box\": [64, 32], \"swizzle\": \"128b\"}"),
            "<valid>");
  EXPECT_EQ(withMap("{\"buffer\": 2, \"dtype\": \"bf16\", \"shape\": "
                    "[512, 64], \"box\": [64, 64], \"swizzle\": \"128b\"}"),
            "<valid>");
  EXPECT_EQ(withMap("{\"buffer\": 2, \"byte_offset\": 32768, \"dtype\": "
                    "\"bf16\", \"shape\": [257, 64], \"box\": [64, 64], "
                    "\"swizzle\": \"128b\"}"),
            "tensor_maps[1].shape: [257, 64] of bf16 is 32896 bytes, but "
            "buffers[2] (\"workspace0\") has 32768 bytes after byte_offset "
            "32768");
  EXPECT_EQ(withMap("{\"buffer\": 2, \"dtype\": \"f32\", \"shape\": "
                    "[16385], \"box\": [64], \"swizzle\": \"none\"}"),
            "tensor_maps[1].shape: [16385] of f32 is 65540 bytes, but "
            "buffers[2] (\"workspace0\") has 65536 bytes");
}

/// The encoding computed without a driver: CUDA's order (innermost first),
/// byte strides, enum values, and a message naming each bad argument.
TEST(TensorMapEncoding, WithoutDriver) {
  bptTensorMapEncoding e;
  const int64_t shape4[] = {2, 8, 1024, 64};
  const int64_t box4[] = {1, 1, 128, 64};
  EXPECT_EQ(bptTensorMapGetEncoding(0x10000, "bf16", 4, shape4, box4, 128, 128,
                                    0, &e),
            bptRuntimeSuccess);
  EXPECT_EQ(e.dataType, 9);
  EXPECT_EQ(e.rank, 4);
  EXPECT_EQ(e.globalAddress, 0x10000);
  EXPECT_TRUE(e.globalDim[0] == 64 && e.globalDim[1] == 1024 &&
              e.globalDim[2] == 8 && e.globalDim[3] == 2);
  EXPECT_TRUE(e.globalStrides[0] == 128 && e.globalStrides[1] == 131072 &&
              e.globalStrides[2] == 1048576);
  EXPECT_TRUE(e.boxDim[0] == 64 && e.boxDim[1] == 128 && e.boxDim[2] == 1 &&
              e.boxDim[3] == 1);
  EXPECT_TRUE(e.elementStrides[0] == 1 && e.elementStrides[1] == 1 &&
              e.elementStrides[2] == 1 && e.elementStrides[3] == 1);
  EXPECT_EQ(e.interleave, 0);
  EXPECT_EQ(e.swizzle, 3);
  EXPECT_EQ(e.l2Promotion, 2);
  EXPECT_EQ(e.oobFill, 0);

  const int64_t shape1[] = {1000}, box1[] = {256};
  EXPECT_EQ(
      bptTensorMapGetEncoding(0x10000, "f32", 1, shape1, box1, 0, 0, 0, &e),
      bptRuntimeSuccess);
  EXPECT_TRUE(e.dataType == 7 && e.rank == 1 && e.globalDim[0] == 1000 &&
              e.boxDim[0] == 256 && e.swizzle == 0 && e.l2Promotion == 0);
  const int64_t shape2[] = {300, 16}, box2[] = {64, 16};
  EXPECT_EQ(
      bptTensorMapGetEncoding(0x10010, "f16", 2, shape2, box2, 32, 256, 1, &e),
      bptRuntimeSuccess);
  EXPECT_TRUE(e.dataType == 6 && e.globalStrides[0] == 32 && e.swizzle == 1 &&
              e.l2Promotion == 3 && e.oobFill == 1);
  EXPECT_EQ(
      bptTensorMapGetEncoding(0x10010, "f16", 2, shape2, box2, 64, 64, 0, &e),
      bptRuntimeSuccess);
  EXPECT_TRUE(e.swizzle == 2 && e.l2Promotion == 1);

  // Each bad argument, by name; the encoding is left alone.
  auto error = [](uint64_t address, const char *dtype, int rank,
                  std::vector<int64_t> shape, std::vector<int64_t> box,
                  int swizzle = 0, int l2 = 0, int nan = 0) -> std::string {
    bptTensorMapEncoding unused;
    int status = bptTensorMapGetEncoding(address, dtype, rank, shape.data(),
                                         box.data(), swizzle, l2, nan, &unused);
    if (status == bptRuntimeSuccess)
      return "<success>";
    if (status != bptRuntimeErrorInvalidArgument)
      return "<status " + std::to_string(status) + ">";
    return bptRuntimeLastError();
  };
  const std::string prefix = "bptTensorMapGetEncoding: ";
  EXPECT_EQ(error(0x1000, "i8", 1, {64}, {64}),
            prefix + "dtype is \"i8\", must be f32, f16 or bf16");
  EXPECT_EQ(error(0x1000, "f32", 0, {64}, {64}),
            prefix + "rank is 0, must be 1 to 5");
  EXPECT_EQ(error(0x1000, "f32", 6, {1, 1, 1, 1, 1, 4}, {1, 1, 1, 1, 1, 4}),
            prefix + "rank is 6, must be 1 to 5");
  EXPECT_EQ(error(0x1008, "f32", 1, {64}, {64}),
            prefix + "globalAddress 0x1008 is not a 16-byte aligned device "
                     "address");
  EXPECT_EQ(error(0, "f32", 1, {64}, {64}),
            prefix + "globalAddress 0x0 is not a 16-byte aligned device "
                     "address");
  EXPECT_EQ(error(0x1000, "f32", 2, {0, 64}, {1, 64}),
            prefix + "shape[0] is 0, must be 1 to 2^32");
  EXPECT_EQ(error(0x1000, "f32", 1, {(int64_t(1) << 32) + 1}, {64}),
            prefix + "shape[0] is 4294967297, must be 1 to 2^32");
  EXPECT_EQ(error(0x1000, "f16", 2, {16, 4}, {16, 8}),
            prefix + "the byte stride of shape[0] in f16 [16, 4] is 8, not "
                     "a multiple of 16");
  EXPECT_EQ(error(0x1000, "f32", 3, {2, int64_t(1) << 32, 256}, {1, 1, 64}),
            prefix + "the byte stride of shape[0] in f32 [2, 4294967296, "
                     "256] is 2^40 or more, beyond TMA's limit");
  EXPECT_EQ(error(0x1000, "f32", 1, {1024}, {257}),
            prefix + "box[0] is 257, must be 1 to 256");
  EXPECT_EQ(error(0x1000, "f32", 2, {4, 64}, {0, 64}),
            prefix + "box[0] is 0, must be 1 to 256");
  EXPECT_EQ(error(0x1000, "bf16", 2, {64, 64}, {64, 4}),
            prefix + "box[1] is 4 elements of bf16, 8 bytes, not a "
                     "multiple of 16");
  EXPECT_EQ(error(0x1000, "bf16", 2, {64, 64}, {64, 64}, 64),
            prefix + "box[1] is 64 elements of bf16, 128 bytes, more than "
                     "the swizzle span of 64 bytes");
  EXPECT_EQ(error(0x1000, "bf16", 2, {64, 64}, {64, 64}, 16),
            prefix + "swizzleBytes is 16, must be 0 (none), 32, 64 or 128");
  EXPECT_EQ(error(0x1000, "bf16", 2, {64, 64}, {64, 64}, 0, 32),
            prefix + "l2PromotionBytes is 32, must be 0 (none), 64, 128 or "
                     "256");
  EXPECT_EQ(error(0x1000, "bf16", 2, {64, 64}, {64, 64}, 0, 0, 2),
            prefix + "oobNaN is 2, must be 0 (zeros) or 1 (NaN)");
  EXPECT_EQ(error(0x1000, nullptr, 1, {64}, {64}),
            prefix + "`dtype` must not be null");
  EXPECT_EQ(
      bptTensorMapGetEncoding(0x1000, "f32", 1, shape1, box1, 0, 0, 0, nullptr),
      bptRuntimeErrorInvalidArgument);
  EXPECT_EQ(bptRuntimeLastError(), prefix + "`encoding` must not be null");
  EXPECT_EQ(
      bptTensorMapGetEncoding(0x1000, "f32", 1, nullptr, box1, 0, 0, 0, &e),
      bptRuntimeErrorInvalidArgument);
  EXPECT_EQ(bptRuntimeLastError(), prefix + "`shape` must not be null");
}

TEST(Manifest, Files) {
  char directory[] = "/tmp/bpt-runtime-test-XXXXXX";
  ASSERT_TRUE(mkdtemp(directory)) << "cannot create a temporary directory";
  std::string dir = directory;
  std::string good = dir + "/kernels.json";
  std::string bad = dir + "/bad.json";
  std::ofstream(good) << kValidManifest;
  std::ofstream(bad) << replaced(kValidManifest, "\"args\": [0, 1, 2, 3]",
                                 "\"args\": [0, 1, 2, 7]");

  Expected<Manifest> loaded = Manifest::load(good);
  EXPECT_TRUE(loaded.ok());
  if (loaded) {
    EXPECT_EQ(loaded->directory, dir);
    EXPECT_EQ(loaded->ptxPath(), dir + "/out.ptx");
  }
  Expected<Manifest> invalid = Manifest::load(bad);
  EXPECT_TRUE(!invalid.ok());
  EXPECT_EQ(invalid.error(), bad + ": launches[0].args[3]: index 7 out of "
                                   "range (5 buffers)");
  Expected<Manifest> missing = Manifest::load(dir + "/absent.json");
  EXPECT_EQ(missing.error(), "cannot open manifest '" + dir +
                                 "/absent.json': No such file or "
                                 "directory");

  std::remove(good.c_str());
  std::remove(bad.c_str());
  rmdir(directory);
}

/// An attention_grad set over f32 [1, 2, 3, 4] queries and [1, 1, 5, 4]
/// keys (GQA), causal: the buffers bpt-compile --op=attention_grad names.
const char *kAttentionGradManifest = R"({
  "bpt_manifest_version": 1,
  "ptx": "grad.ptx",
  "chip": "sm_80",
  "op": "attention_grad",
  "options": {"causal": true, "scale": 0.5},
  "buffers": [
    {"name": "query", "role": "input", "dtype": "f32",
     "shape": [1, 2, 3, 4], "bytes": 96},
    {"name": "key", "role": "input", "dtype": "f32",
     "shape": [1, 1, 5, 4], "bytes": 80},
    {"name": "value", "role": "input", "dtype": "f32",
     "shape": [1, 1, 5, 4], "bytes": 80},
    {"name": "output", "role": "input", "dtype": "f32",
     "shape": [1, 2, 3, 4], "bytes": 96},
    {"name": "output_grad", "role": "input", "dtype": "f32",
     "shape": [1, 2, 3, 4], "bytes": 96},
    {"name": "lse", "role": "input", "dtype": "f32",
     "shape": [1, 2, 3], "bytes": 24},
    {"name": "query_grad", "role": "output", "dtype": "f32",
     "shape": [1, 2, 3, 4], "bytes": 96},
    {"name": "key_grad", "role": "output", "dtype": "f32",
     "shape": [1, 1, 5, 4], "bytes": 80},
    {"name": "value_grad", "role": "output", "dtype": "f32",
     "shape": [1, 1, 5, 4], "bytes": 80}
  ],
  "launches": [
    {"kernel": "k", "grid": [1], "block": [32],
     "args": [0, 1, 2, 3, 4, 5, 6, 7, 8]}
  ]
})";

/// The forward with its log-sum-exp over the same shapes.
const char *kAttentionLSEManifest = R"({
  "bpt_manifest_version": 1,
  "ptx": "lse.ptx",
  "chip": "sm_80",
  "op": "attention_lse",
  "options": {"causal": true, "scale": 0.5},
  "buffers": [
    {"name": "query", "role": "input", "dtype": "f32",
     "shape": [1, 2, 3, 4], "bytes": 96},
    {"name": "key", "role": "input", "dtype": "f32",
     "shape": [1, 1, 5, 4], "bytes": 80},
    {"name": "value", "role": "input", "dtype": "f32",
     "shape": [1, 1, 5, 4], "bytes": 80},
    {"name": "output", "role": "output", "dtype": "f32",
     "shape": [1, 2, 3, 4], "bytes": 96},
    {"name": "lse", "role": "output", "dtype": "f32",
     "shape": [1, 2, 3], "bytes": 24}
  ],
  "launches": [
    {"kernel": "k", "grid": [1], "block": [32], "args": [0, 1, 2, 3, 4]}
  ]
})";

TEST(Manifest, AttentionTrainingOps) {
  Expected<Manifest> grad = Manifest::parse(kAttentionGradManifest);
  ASSERT_TRUE(grad.ok()) << grad.error();
  EXPECT_STREQ(manifestOpName(grad->op), "attention_grad");
  // 2.5 forwards of 4·B·H·Sq·Skv·D, halved for causal.
  EXPECT_DOUBLE_EQ(countFlops(*grad), 2.5 * 4 * 1 * 2 * 3 * 5 * 4 / 2);
  Expected<Manifest> lse = Manifest::parse(kAttentionLSEManifest);
  ASSERT_TRUE(lse.ok()) << lse.error();
  EXPECT_STREQ(manifestOpName(lse->op), "attention_lse");
  EXPECT_DOUBLE_EQ(countFlops(*lse), 4.0 * 1 * 2 * 3 * 5 * 4 / 2);
}

TEST(Manifest, OpSchema) {
  const std::string valid = kValidManifest;
  // An output relabelled a workspace would be checked against nothing.
  EXPECT_EQ(manifestError(replaced(valid,
                                   "\"name\": \"result\", \"role\": \"output\"",
                                   "\"name\": \"result\", \"role\": "
                                   "\"workspace\"")),
            "buffers: op attention has 1 output(s) (the attention's output, "
            "shaped as query), but 0 buffer(s) have role output");
  // Another rank with the same byte count (the reference would abort).
  EXPECT_EQ(manifestError(replaced(valid, "\"shape\": [2, 8, 1024, 64]",
                                   "\"shape\": [16, 1024, 64]")),
            "buffers[0] (\"query\").shape: [16, 1024, 64] has rank 3, but op "
            "attention needs [B, Hq, Sq, D]");
  EXPECT_EQ(manifestError(replaced(valid,
                                   "\"name\": \"key\", \"role\": \"input\", "
                                   "\"dtype\": \"bf16\",\n     \"shape\": "
                                   "[2, 8, 1024, 64]",
                                   "\"name\": \"key\", \"role\": \"input\", "
                                   "\"dtype\": \"bf16\",\n     \"shape\": "
                                   "[2, 8, 2048, 32]")),
            "buffers[1] (\"key\").shape: [2, 8, 2048, 32] is not [B, Hkv, "
            "Skv, D] (B and D of query) = [2, 8, 2048, 64] for op attention");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"name\": \"query\"", "\"name\": \"q\"")),
      "buffers: op attention needs an input buffer named \"query\"");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"name\": \"key\", \"role\": \"input\"",
                             "\"name\": \"key\", \"role\": "
                             "\"workspace\"")),
      "buffers[1] (\"key\").role: is workspace, but op attention reads "
      "\"key\" as an input");
  EXPECT_EQ(
      manifestError(replaced(valid,
                             "\"name\": \"result\", \"role\": \"output\", "
                             "\"dtype\": \"bf16\"",
                             "\"name\": \"result\", \"role\": "
                             "\"output\", \"dtype\": \"f16\"")),
      "buffers[3] (\"result\").dtype: f16, but op attention needs bf16 "
      "here");
  // Options: types, ranges, keys and the ops they apply to.
  EXPECT_EQ(manifestError(replaced(valid, "\"scale\": 0.125", "\"scale\": -1")),
            "options.scale: expected a positive number, got -1");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"causal\": true", "\"causal\": \"yes\"")),
      "options.causal: expected true or false, got \"yes\"");
  EXPECT_EQ(
      manifestError(replaced(valid, "\"q_block\": 128", "\"q_block\": 0")),
      "options.q_block: expected a positive 32-bit integer, got 0");
  EXPECT_EQ(manifestError(replaced(valid, "\"q_block\": 128", "\"heads\": 0")),
            "options.heads: does not apply to op attention");
  EXPECT_STARTS_WITH(
      manifestError(replaced(valid, "\"q_block\": 128", "\"window\": 3")),
      "options.window: unknown option (expected one of causal, scale, ");
  // A custom set takes any buffers (bpt-run only times it).
  std::string custom =
      replaced(replaced(valid, "\"attention\"", "\"custom\""),
               "\"causal\": true, \"q_block\": 128, \"scale\": 0.125", "");
  EXPECT_EQ(
      manifestError(replaced(custom, "\"name\": \"query\"", "\"name\": \"q\"")),
      "<valid>");
  // Options only on the ops that read them.
  EXPECT_EQ(manifestError(replaced(custom, "\"options\": {}",
                                   "\"options\": {\"causal\": true}")),
            "options.causal: does not apply to op custom");
  // The PTX file stays in the manifest's folder.
  EXPECT_EQ(manifestError(replaced(valid, "\"out.ptx\"", "\"/dev/zero\"")),
            "ptx: \"/dev/zero\" is an absolute path; expected a file name "
            "relative to the manifest's folder");
  EXPECT_EQ(manifestError(replaced(valid, "\"out.ptx\"", "\"a/../../x.ptx\"")),
            "ptx: \"a/../../x.ptx\" leaves the manifest's folder (\"..\"); "
            "expected a file in it or below it");
  EXPECT_EQ(manifestError(replaced(valid, "\"out.ptx\"", "\"a//x.ptx\"")),
            "ptx: \"a//x.ptx\" has an empty or \".\" part");
  // Chips and PTX versions of the back end, shared memory of the chip.
  EXPECT_EQ(manifestError(replaced(valid, "\"+ptx80\"", "\"+ptx70\"")),
            "features: PTX 7.0 ('+ptx70') does not support sm_90a, which "
            "needs PTX 8.0 or later (e.g. +ptx80)");
  EXPECT_STARTS_WITH(
      manifestError(replaced(valid, "\"sm_90a\"", "\"sm_80a\"")),
      "chip: unknown chip 'sm_80a' (LLVM's NVPTX back end supports sm_20, ");
  EXPECT_EQ(manifestError(replaced(valid, "\"dynamic_shared_memory\": 49152",
                                   "\"dynamic_shared_memory\": 232449")),
            "launches[0].dynamic_shared_memory: 232449 bytes exceeds the "
            "232448 bytes of shared memory a block of sm_90a can have");
  EXPECT_EQ(manifestError(replaced(valid, "\"block_kernel\"", "\"9k\"")),
            "launches[0].kernel: \"9k\" is not a PTX identifier (letters, "
            "digits, _ and $, not starting with a digit)");
}

TEST(Manifest, OpSchemaFFNAndBlock) {
  std::string ffn = R"({"bpt_manifest_version": 1, "ptx": "f.ptx",
    "chip": "sm_80", "op": "ffn", "options": {"activation": "swiglu"},
    "buffers": [
      {"name": "input", "role": "input", "dtype": "f32", "shape": [1, 4, 8],
       "bytes": 128},
      {"name": "w_in", "role": "input", "dtype": "f32", "shape": [8, 16],
       "bytes": 512},
      {"name": "w_out", "role": "input", "dtype": "f32", "shape": [16, 8],
       "bytes": 512},
      {"name": "w_gate", "role": "input", "dtype": "f32", "shape": [8, 16],
       "bytes": 512},
      {"name": "result", "role": "output", "dtype": "f32", "shape": [1, 4, 8],
       "bytes": 128}],
    "launches": [{"kernel": "k", "grid": [1], "block": [32],
                  "args": [0, 1, 2, 3, 4]}]})";
  EXPECT_EQ(manifestError(ffn), "<valid>");
  EXPECT_EQ(manifestError(replaced(ffn, "swiglu", "gelu")),
            "buffers[3] (\"w_gate\"): unexpected: activation gelu is not gated "
            "(only swiglu and geglu take w_gate)");
  EXPECT_EQ(manifestError(replaced(ffn, "swiglu", "tanh")),
            "options.activation: expected one of gelu, gelu_tanh, relu, silu, "
            "swiglu, geglu, got \"tanh\"");
  EXPECT_EQ(
      manifestError(replaced(ffn, "\"shape\": [16, 8]", "\"shape\": [8, 16]")),
      "buffers[2] (\"w_out\").shape: [8, 16] is not [F, H] = [16, 8] for "
      "op ffn");
  EXPECT_EQ(manifestError(
                replaced(ffn, "\"name\": \"w_gate\"", "\"name\": \"w_extra\"")),
            "buffers: activation swiglu is gated: op ffn needs an input buffer "
            "named \"w_gate\"");

  std::string block = R"({"bpt_manifest_version": 1, "ptx": "b.ptx",
    "chip": "sm_80", "op": "block",
    "options": {"heads": 2, "kv_heads": 1, "norm": "rms_norm",
                "activation": "gelu", "epsilon": 1e-5, "causal": false},
    "buffers": [
      {"name": "input", "role": "input", "dtype": "f32", "shape": [1, 4, 8],
       "bytes": 128},
      {"name": "norm1_weight", "role": "input", "dtype": "f32", "shape": [8],
       "bytes": 32},
      {"name": "w_q", "role": "input", "dtype": "f32", "shape": [8, 8],
       "bytes": 256},
      {"name": "w_k", "role": "input", "dtype": "f32", "shape": [8, 4],
       "bytes": 128},
      {"name": "w_v", "role": "input", "dtype": "f32", "shape": [8, 4],
       "bytes": 128},
      {"name": "w_o", "role": "input", "dtype": "f32", "shape": [8, 8],
       "bytes": 256},
      {"name": "norm2_weight", "role": "input", "dtype": "f32", "shape": [8],
       "bytes": 32},
      {"name": "w_in", "role": "input", "dtype": "f32", "shape": [8, 32],
       "bytes": 1024},
      {"name": "w_out", "role": "input", "dtype": "f32", "shape": [32, 8],
       "bytes": 1024},
      {"name": "result", "role": "output", "dtype": "f32", "shape": [1, 4, 8],
       "bytes": 128}],
    "launches": [{"kernel": "k", "grid": [1], "block": [32],
                  "args": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}]})";
  EXPECT_EQ(manifestError(block), "<valid>");
  EXPECT_EQ(manifestError(replaced(block, "\"heads\": 2", "\"heads\": 0")),
            "options.heads: expected a positive 32-bit integer, got 0");
  EXPECT_EQ(manifestError(replaced(block, "\"heads\": 2, ", "")),
            "options.heads: missing (op block needs heads and kv_heads)");
  EXPECT_EQ(manifestError(replaced(block, "\"heads\": 2, \"kv_heads\": 1",
                                   "\"heads\": 3, \"kv_heads\": 2")),
            "options.heads: 3 is not a multiple of kv_heads (2)");
  EXPECT_EQ(
      manifestError(replaced(block, "\"kv_heads\": 1", "\"kv_heads\": 2")),
      "buffers[3] (\"w_k\").shape: [8, 4] is not [H, kv_heads * D] = "
      "[8, 8] for op block");
  EXPECT_EQ(manifestError(replaced(block, "rms_norm", "layer_norm")),
            "buffers: op block needs an input buffer named \"norm1_bias\"");
  EXPECT_EQ(
      manifestError(replaced(block, "\"epsilon\": 1e-5", "\"epsilon\": 0")),
      "options.epsilon: expected a positive number, got 0");
}

TEST(Chip, BackEndTable) {
  // LLVM 22's NVPTX chips and the PTX versions they need.
  EXPECT_EQ(bpt::minimumPTXVersion("sm_90a").value_or(0), 80u);
  EXPECT_EQ(bpt::minimumPTXVersion("sm_80").value_or(0), 70u);
  EXPECT_EQ(bpt::minimumPTXVersion("sm_100").value_or(0), 86u);
  EXPECT_TRUE(!bpt::minimumPTXVersion("sm_80a"));
  EXPECT_TRUE(!bpt::minimumPTXVersion("sm_junk"));
  // The default stays +ptx80 (the kernels' PTX) unless the chip needs more.
  EXPECT_EQ(bpt::defaultPTXFeatures("sm_80"), "+ptx80");
  EXPECT_EQ(bpt::defaultPTXFeatures("sm_90a"), "+ptx80");
  EXPECT_EQ(bpt::defaultPTXFeatures("sm_110"), "+ptx90");
  EXPECT_TRUE(!bpt::checkChipAndFeatures("sm_90a", "", "c", "f"));
  EXPECT_TRUE(!bpt::checkChipAndFeatures("sm_90a", "+ptx80,+ptx83", "c", "f"));
  EXPECT_EQ(
      bpt::checkChipAndFeatures("sm_100", "+ptx80", "--chip", "--features")
          .value_or(""),
      "--features: PTX 8.0 ('+ptx80') does not support sm_100, which "
      "needs PTX 8.6 or later (e.g. +ptx86)");
  EXPECT_STARTS_WITH(
      bpt::checkChipAndFeatures("sm_90a", "+ptx80,", "c", "f").value_or(""),
      "f: unknown feature '' (expected PTX versions: +ptx32, ");
  EXPECT_STARTS_WITH(
      bpt::checkChipAndFeatures("sm_90a", "+ptx0080", "c", "f").value_or(""),
      "f: unknown feature '+ptx0080'");
  // Names that are not sm_XY[a] have no version (and 48 KiB of shared
  // memory); a long run of digits does not overflow.
  EXPECT_EQ(bpt::getChipInfo("sm_99999999999999999999").version, 0u);
  EXPECT_EQ(bpt::getChipInfo("sm_90a").sharedMemoryPerBlock, 232448);
}

TEST(Manifest, PTXFile) {
  Expected<Manifest> m = Manifest::parse(kValidManifest);
  ASSERT_TRUE(m.ok()) << m.error();
  std::string ptx = ".version 8.0\n.target sm_90a\n.address_size 64\n"
                    "// .entry commented_out(\n"
                    ".visible .entry block_kernel(\n"
                    "  .param .u64 a, .param .u64 b, .param .u64 c,\n"
                    "  .param .u64 d)\n{ ret; }\n"
                    ".visible .entry epilogue(.param .u64 a, .param .u64 b)\n"
                    "{ ret; }\n";
  EXPECT_TRUE(checkPTXMatchesManifest(*m, ptx).ok())
      << checkPTXMatchesManifest(*m, ptx).message();
  EXPECT_EQ(
      checkPTXMatchesManifest(*m, replaced(ptx, "sm_90a", "sm_80")).message(),
      "the PTX targets sm_80, but the manifest's chip is sm_90a");
  EXPECT_EQ(checkPTXMatchesManifest(*m, replaced(ptx, "  .param .u64 d", ""))
                .message(),
            "launches[0].args: kernel 'block_kernel' takes 3 parameters in "
            "the PTX, but the launch passes 4");
  EXPECT_EQ(checkPTXMatchesManifest(
                *m, replaced(ptx, "entry epilogue", "entry epilog"))
                .message(),
            "launches[1].kernel: the PTX has no kernel 'epilogue' (its "
            "kernels: 'block_kernel', 'epilog')");
  // The block a kernel was compiled for (.maxntid) is the launch's.
  std::string bounded = replaced(ptx, "  .param .u64 d)\n",
                                 "  .param .u64 d)\n.maxntid 256, 1, 1\n");
  EXPECT_TRUE(checkPTXMatchesManifest(*m, bounded).ok());
  EXPECT_EQ(
      checkPTXMatchesManifest(*m, replaced(bounded, "256, 1, 1", "128, 1, 1"))
          .message(),
      "launches[0].block: kernel 'block_kernel' was compiled for blocks "
      "of 128x1x1 threads (.maxntid in the PTX), but the launch has "
      "256x1x1");
  EXPECT_EQ(checkPTXMatchesManifest(
                *m, replaced(bounded, ".maxntid 256, 1, 1", ".reqntid 512"))
                .message(),
            "launches[0].block: kernel 'block_kernel' was compiled for blocks "
            "of 512x1x1 threads (.reqntid in the PTX), but the launch has "
            "256x1x1");
  EXPECT_EQ(checkPTXMatchesManifest(*m, "garbage").message(),
            "the PTX has no .target directive (is 'out.ptx' PTX?)");
  // Files that are not PTX text are refused before they are read.
  EXPECT_EQ(readPTXFile("/dev/zero").error(),
            "PTX file '/dev/zero' is not a regular file");
  EXPECT_EQ(readPTXFile("/tmp").error(),
            "PTX file '/tmp' is not a regular file");
  EXPECT_STARTS_WITH(readPTXFile("/nonexistent/k.ptx").error(),
                     "cannot open PTX file '/nonexistent/k.ptx': ");
}

/// A dependent launch needs a kernel that waits for its predecessor
/// (griddepcontrol.wait) before it touches global or generic memory.
TEST(Manifest, DependentLaunchPTX) {
  Expected<Manifest> m = Manifest::parse(
      replaced(kValidManifest, "{\"kernel\": \"block_kernel\",",
               "{\"kernel\": \"block_kernel\", \"dependent\": true,"));
  ASSERT_TRUE(m.ok()) << m.error();
  ASSERT_TRUE(m->launches[0].dependent);
  EXPECT_FALSE(m->launches[1].dependent);
  auto ptxWith = [](const std::string &body) {
    return ".version 8.0\n.target sm_90a\n.address_size 64\n"
           ".visible .entry block_kernel(\n"
           "  .param .u64 a, .param .u64 b, .param .u64 c,\n"
           "  .param .u64 d)\n.maxntid 256, 1, 1\n{\n" +
           body +
           "\n  ret;\n}\n"
           ".visible .entry epilogue(.param .u64 a, .param .u64 b)\n"
           "{\n  ld.global.u32 %r1, [%rd1];\n  ret;\n}\n";
  };
  auto check = [&](const std::string &body) {
    return checkPTXMatchesManifest(*m, ptxWith(body)).message();
  };
  // Parameters, shared memory, arithmetic, labels and guarded branches may
  // come first (the second kernel, not dependent, loads before any wait).
  EXPECT_EQ(check("  ld.param.u64 %rd1, [a];\n"
                  "  cvta.to.global.u64 %rd2, %rd1;\n"
                  "  mov.u32 %r1, %tid.x;\n"
                  "  st.shared.u32 [%r1], %r1;\n"
                  "  ld.shared::cta.u32 %r2, [%r1];\n"
                  "$L__BB0_1:\n"
                  "  @%p1 bra $L__BB0_1;\n"
                  "  // ld.global.u32 %r3, [%rd2]; (a comment)\n"
                  "  griddepcontrol.wait;\n"
                  "  griddepcontrol.launch_dependents;\n"
                  "  ld.global.u32 %r3, [%rd2];"),
            "");
  const std::string early = "launches[0].dependent: kernel 'block_kernel' "
                            "accesses memory ('";
  const std::string late = "') before it waits for its predecessor "
                           "(griddepcontrol.wait) in the PTX, so it may not "
                           "be launched before that kernel ends";
  EXPECT_EQ(check("  ld.global.nc.u32 %r3, [%rd2];\n  griddepcontrol.wait;"),
            early + "ld.global.nc.u32" + late);
  // A generic load may read global memory; so may a guarded store, an
  // atomic, a TMA copy and a prefetch.
  EXPECT_EQ(check("  ld.u32 %r3, [%rd2];\n  griddepcontrol.wait;"),
            early + "ld.u32" + late);
  EXPECT_EQ(check("  @%p1 st.global.u32 [%rd2], %r1;\n  griddepcontrol.wait;"),
            early + "st.global.u32" + late);
  EXPECT_EQ(check("  atom.global.add.u32 %r3, [%rd2], 1;"),
            early + "atom.global.add.u32" + late);
  EXPECT_EQ(check("  cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::"
                  "complete_tx::bytes [%r1], [%rd2, {%r1, %r1}], [%r2];\n"
                  "  griddepcontrol.wait;"),
            early +
                "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::"
                "complete_tx::bytes" +
                late);
  EXPECT_EQ(check("  griddepcontrol.launch_dependents;"),
            "launches[0].dependent: kernel 'block_kernel' never waits for its "
            "predecessor (griddepcontrol.wait) in the PTX, so it may not be "
            "launched before that kernel ends");
  // Without the flag the same kernel is fine.
  Expected<Manifest> plain = Manifest::parse(kValidManifest);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(
      checkPTXMatchesManifest(*plain, ptxWith("  ld.u32 %r3, [%rd2];")).ok());
  EXPECT_EQ(
      manifestError(replaced(kValidManifest, "{\"kernel\": \"block_kernel\",",
                             "{\"kernel\": \"block_kernel\", "
                             "\"dependent\": 1,")),
      "launches[0].dependent: expected true or false, got 1");
}

TEST(KernelSetCheck, ConsistentAttentionState) {
  // The grad set's output and lse inputs are the forward of its random
  // query, key and value, not random values.
  Expected<Manifest> m = Manifest::parse(kAttentionGradManifest);
  ASSERT_TRUE(m.ok()) << m.error();
  std::mt19937_64 rng(7);
  std::map<std::string, bpt::HostTensor> inputs = randomInputs(*m, rng);
  ASSERT_EQ(inputs.size(), 6u);
  ASSERT_TRUE(consistentAttentionState(*m, inputs).ok());
  bpt::ref::AttentionWithLSE forward = bpt::ref::attentionWithLSE(
      inputs.at("query").toReference(), inputs.at("key").toReference(),
      inputs.at("value").toReference(), /*causal=*/true, 0.5);
  EXPECT_LT(bpt::ref::relativeError(inputs.at("output").toReference(),
                                    forward.out),
            1e-6);
  EXPECT_LT(bpt::ref::relativeError(inputs.at("lse").toReference(),
                                    forward.lse),
            1e-6);
  // A missing buffer is named.
  inputs.erase("lse");
  EXPECT_EQ(consistentAttentionState(*m, inputs).message(),
            "the manifest has no input buffer 'lse'");
}

TEST(KernelSetCheck, PlausibleAttentionState) {
  // Timed, not checked: lse is the log of each row's visible keys (causal
  // bottom-right, Sq 3, Skv 5: rows see 3, 4, 5 keys), with no float64
  // forward.
  Expected<Manifest> m = Manifest::parse(kAttentionGradManifest);
  ASSERT_TRUE(m.ok()) << m.error();
  std::mt19937_64 rng(7);
  std::map<std::string, bpt::HostTensor> inputs = randomInputs(*m, rng);
  ASSERT_TRUE(plausibleAttentionState(*m, inputs).ok());
  const bpt::HostTensor &lse = inputs.at("lse");
  for (int64_t head = 0; head < 2; ++head)
    for (int64_t row = 0; row < 3; ++row)
      EXPECT_FLOAT_EQ(lse.get(3 * head + row), std::log(3.0 + row));
  // Rows that see no key (Sq 7 > Skv 5: the first two) get -inf.
  std::string shifted = kAttentionGradManifest;
  for (auto [from, to] :
       {std::pair<std::string, std::string>{"[1, 2, 3, 4], \"bytes\": 96",
                                            "[1, 2, 7, 4], \"bytes\": 224"},
        {"[1, 2, 3], \"bytes\": 24", "[1, 2, 7], \"bytes\": 56"}})
    for (size_t at; (at = shifted.find(from)) != std::string::npos;)
      shifted.replace(at, from.size(), to);
  Expected<Manifest> wide = Manifest::parse(shifted);
  ASSERT_TRUE(wide.ok()) << wide.error();
  std::map<std::string, bpt::HostTensor> more = randomInputs(*wide, rng);
  ASSERT_TRUE(plausibleAttentionState(*wide, more).ok());
  EXPECT_EQ(more.at("lse").get(0), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(more.at("lse").get(1), -std::numeric_limits<double>::infinity());
  EXPECT_FLOAT_EQ(more.at("lse").get(2), std::log(1.0));
  EXPECT_FLOAT_EQ(more.at("lse").get(6), std::log(5.0));
  // Other ops are left alone.
  inputs.erase("lse");
  EXPECT_EQ(plausibleAttentionState(*m, inputs).message(),
            "the manifest has no input buffer 'lse'");
}

//===----------------------------------------------------------------------===//
// Runtime without a driver or device
//===----------------------------------------------------------------------===//

TEST(NoDevice, BufferPointers) {
  Expected<Manifest> manifest = Manifest::parse(R"({
    "bpt_manifest_version": 2, "ptx": "k.ptx", "chip": "sm_90a",
    "op": "custom",
    "buffers": [
      {"name": "input", "role": "input", "dtype": "bf16", "shape": [64],
       "bytes": 128},
      {"name": "result", "role": "output", "dtype": "bf16", "shape": [64],
       "bytes": 128}],
    "launches": [{"kernel": "k", "grid": [1], "block": [64],
                  "args": [0, 1]}]})");
  ASSERT_TRUE(manifest.ok()) << manifest.error();
  EXPECT_TRUE(checkBufferPointers(*manifest, {0x10000, 0x20010}).ok());
  EXPECT_EQ(checkBufferPointers(*manifest, {0x10000}).message(),
            "the manifest has 2 buffers, but 1 device pointers were given");
  EXPECT_EQ(checkBufferPointers(*manifest, {0x10000, 0x20008}).message(),
            "buffers[1] ('result') is at 0x20008, which is not a 16-byte "
            "aligned device address (kernel sets access their buffers 16 "
            "bytes at a time)");
  EXPECT_FALSE(checkBufferPointers(*manifest, {0, 0x20000}).ok());
}

TEST(NoDevice, DeviceMemoryReport) {
  Expected<Manifest> manifest = Manifest::parse(kByteOffsetManifest);
  ASSERT_TRUE(manifest.ok()) << manifest.error();
  // Three buffers and two tensor-map descriptors.
  EXPECT_EQ(predictedDeviceBytes(*manifest),
            uint64_t(524288 + 524288 + 65536 + 2 * 128));
  DeviceMemory small{1 << 20, 3 << 20};
  EXPECT_FALSE(small.checked());
  EXPECT_TRUE(small.withinTolerance());
  DeviceMemory large{uint64_t(1000) << 20, uint64_t(1090) << 20};
  EXPECT_TRUE(large.checked());
  EXPECT_NEAR(large.deviation(), 0.09, 1e-12);
  EXPECT_TRUE(large.withinTolerance());
  large.measuredBytes = uint64_t(1110) << 20;
  EXPECT_FALSE(large.withinTolerance());
  CheckResult result;
  result.outputs.push_back({"y", "bf16", 1e-3, 1e-2, true});
  EXPECT_TRUE(result.passed());
  result.memory = large;
  EXPECT_FALSE(result.passed());
}

TEST(NoDevice, NullHandles) {
  bptRuntime noRuntime = {nullptr};
  bptModule noModule = {nullptr};
  bptTimer noTimer = {nullptr};
  bptGraph noGraph = {nullptr};
  uint64_t pointer = 0;
  EXPECT_TRUE(bptRuntimeIsNull(noRuntime));
  EXPECT_TRUE(bptGraphIsNull(noGraph));
  EXPECT_EQ(bptGraphBeginRecording(noRuntime, &pointer),
            bptRuntimeErrorInvalidArgument);
  EXPECT_STREQ(bptRuntimeLastError(),
               "bptGraphBeginRecording: the runtime handle is null (was it "
               "created successfully?)");
  EXPECT_EQ(bptGraphEndRecording(noRuntime, 0x1234, &noGraph),
            bptRuntimeErrorInvalidArgument);
  EXPECT_EQ(bptGraphLaunch(noGraph, 0), bptRuntimeErrorInvalidArgument);
  EXPECT_STREQ(bptRuntimeLastError(),
               "bptGraphLaunch: the graph handle is null (was it created "
               "successfully?)");
  EXPECT_EQ(bptGraphDestroy(noGraph), bptRuntimeSuccess);
  EXPECT_EQ(bptRuntimeMalloc(noRuntime, 16, &pointer),
            bptRuntimeErrorInvalidArgument);
  EXPECT_STREQ(bptRuntimeLastError(),
               "bptRuntimeMalloc: the runtime handle is null (was it created "
               "successfully?)");
  uint32_t dims[3] = {1, 1, 1};
  EXPECT_EQ(bptModuleLaunch(noModule, "k", dims, dims, 0, nullptr, 0),
            bptRuntimeErrorInvalidArgument);
  EXPECT_CONTAINS(std::string(bptRuntimeLastError()),
                  "bptModuleLaunch: the module handle is null");
  EXPECT_EQ(bptModuleLaunchOnStream(noModule, "k", dims, dims, 0, nullptr, 0,
                                    /*stream=*/0x1234),
            bptRuntimeErrorInvalidArgument);
  EXPECT_CONTAINS(std::string(bptRuntimeLastError()),
                  "bptModuleLaunchOnStream: the module handle is null");
  EXPECT_EQ(bptModuleLaunchWithFlags(noModule, "k", dims, dims, 0, nullptr, 0,
                                     /*stream=*/0, BPT_LAUNCH_DEPENDENT),
            bptRuntimeErrorInvalidArgument);
  EXPECT_CONTAINS(std::string(bptRuntimeLastError()),
                  "bptModuleLaunchWithFlags: the module handle is null");
  EXPECT_EQ(bptTimerStart(noTimer), bptRuntimeErrorInvalidArgument);
  const int64_t shape[] = {64}, box[] = {64};
  EXPECT_EQ(bptRuntimeCreateTensorMap(noRuntime, 0x1000, "f32", 1, shape, box,
                                      0, 0, 0, &pointer),
            bptRuntimeErrorInvalidArgument);
  EXPECT_STREQ(bptRuntimeLastError(),
               "bptRuntimeCreateTensorMap: the runtime handle is null (was it "
               "created successfully?)");
  EXPECT_EQ(bptRuntimeCreate(0, nullptr), bptRuntimeErrorInvalidArgument);
  EXPECT_STREQ(bptRuntimeLastError(),
               "bptRuntimeCreate: `runtime` must not be null");
  // Destroying null handles is a no-op.
  EXPECT_EQ(bptRuntimeDestroy(noRuntime), bptRuntimeSuccess);
  EXPECT_EQ(bptModuleDestroy(noModule), bptRuntimeSuccess);
  EXPECT_EQ(bptTimerDestroy(noTimer), bptRuntimeSuccess);
  EXPECT_STREQ(bptModuleGetInfoLog(noModule), "");

  // The last error is per thread.
  std::string otherThreadError = "unset";
  std::thread([&] { otherThreadError = bptRuntimeLastError(); }).join();
  EXPECT_EQ(otherThreadError, "");
}

/// Loading a driver library that does not exist, through BPT_LIBCUDA, gives
/// the no-driver message on any machine. Must run before anything loads the
/// real driver, since a loaded driver is kept for the process.
TEST(NoDevice, DriverOverride) {
  setenv("BPT_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
  char message[512];
  EXPECT_EQ(bptRuntimeIsAvailable(message, sizeof(message)), 0);
  EXPECT_STARTS_WITH(std::string(message),
                     "no NVIDIA driver found (/nonexistent/libcuda.so.1 could "
                     "not be loaded: ");
  EXPECT_EQ(std::string(bptRuntimeLastError()), std::string(message));
  bptRuntime runtime = {nullptr};
  EXPECT_EQ(bptRuntimeCreate(0, &runtime), bptRuntimeErrorNoDriver);
  EXPECT_TRUE(bptRuntimeIsNull(runtime));
  unsetenv("BPT_LIBCUDA");
}

/// Where libcuda.so.1 is absent (as on CI), every entry point says so.
TEST(NoDevice, NoDriver) {
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library) {
    dlclose(library);
    GTEST_SKIP() << "libcuda.so.1 is present: skipping the no-driver checks";
  }
  const std::string prefix =
      "no NVIDIA driver found (libcuda.so.1 could not be loaded: ";

  char message[512] = "unchanged";
  EXPECT_EQ(bptRuntimeIsAvailable(message, sizeof(message)), 0);
  EXPECT_STARTS_WITH(std::string(message), prefix);
  EXPECT_TRUE(message[std::strlen(message) - 1] == ')');
  EXPECT_EQ(std::string(bptRuntimeLastError()), std::string(message));
  // A short buffer gets a truncated, terminated message; none is fine too.
  char shortMessage[10];
  EXPECT_EQ(bptRuntimeIsAvailable(shortMessage, sizeof(shortMessage)), 0);
  EXPECT_EQ(std::string(shortMessage), "no NVIDIA");
  EXPECT_EQ(bptRuntimeIsAvailable(nullptr, 0), 0);

  int count = -1;
  EXPECT_EQ(bptRuntimeGetDeviceCount(&count), bptRuntimeErrorNoDriver);
  EXPECT_EQ(count, -1);
  bptRuntime runtime = {nullptr};
  EXPECT_EQ(bptRuntimeCreate(0, &runtime), bptRuntimeErrorNoDriver);
  EXPECT_STARTS_WITH(std::string(bptRuntimeLastError()), prefix);

  std::string why;
  EXPECT_TRUE(!Runtime::isAvailable(&why));
  EXPECT_STARTS_WITH(why, prefix);
  Expected<Runtime> created = Runtime::create();
  EXPECT_TRUE(!created.ok());
  EXPECT_STARTS_WITH(created.error(), prefix);
}

TEST(NoDevice, ChipCheck) {
  DeviceInfo h100;
  h100.name = "NVIDIA H100";
  h100.computeCapabilityMajor = 9;
  h100.computeCapabilityMinor = 0;
  DeviceInfo a100 = h100;
  a100.name = "NVIDIA A100";
  a100.computeCapabilityMajor = 8;
  EXPECT_EQ(h100.chip(), "sm_90");
  EXPECT_TRUE(checkChipRunsOn("sm_90a", h100).ok());
  EXPECT_TRUE(checkChipRunsOn("sm_90", h100).ok());
  EXPECT_TRUE(checkChipRunsOn("sm_80", h100).ok());
  EXPECT_EQ(checkChipRunsOn("sm_90a", a100).message(),
            "the kernels were generated for sm_90a, which runs only on "
            "compute capability 9.0 devices, but device 0 (NVIDIA A100) is "
            "sm_80; regenerate them with --chip=sm_80");
  EXPECT_EQ(checkChipRunsOn("sm_90", a100).message(),
            "the kernels were generated for sm_90, which needs compute "
            "capability 9.0 or newer, but device 0 (NVIDIA A100) is sm_80; "
            "regenerate them with --chip=sm_80");
  EXPECT_EQ(checkChipRunsOn("gfx90a", h100).message(),
            "unrecognised chip 'gfx90a' (expected sm_<major><minor>, e.g. "
            "sm_90a)");
}

//===----------------------------------------------------------------------===//
// On a GPU: hand-written PTX through the runtime
//===----------------------------------------------------------------------===//

/// The GPU tests share one runtime (one context), created before the first of
/// them; each is skipped where no driver or device is found.
class OnDevice : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    std::string why;
    if (!Runtime::isAvailable(&why)) {
      unavailable = "GPU checks skipped: " + why;
      return;
    }
    note("GPU checks on: " + why);
    Expected<Runtime> created = Runtime::create(0);
    if (created)
      sharedRuntime.emplace(created.take());
    else
      createError = created.error();
  }
  static void TearDownTestSuite() { sharedRuntime.reset(); }

  void SetUp() override {
    if (!unavailable.empty())
      GTEST_SKIP() << unavailable;
    ASSERT_TRUE(sharedRuntime.has_value()) << createError;
    Expected<DeviceInfo> queried = sharedRuntime->deviceInfo();
    ASSERT_TRUE(queried.ok()) << queried.error();
    info = *queried;
  }

  /// Why the tests are skipped; empty where a driver and device are found.
  static inline std::string unavailable;
  /// Device 0's runtime, unless creating it failed with `createError`.
  static inline std::optional<Runtime> sharedRuntime;
  static inline std::string createError;
  /// Device 0.
  DeviceInfo info;
};

/// out[i] = x[i] + 2·y[i], one thread per element; and a block-wise reversal
/// through dynamic shared memory at offset 60 KiB, which needs the
/// dynamic-shared-memory limit raised above 48 KiB.
const char *kTestPTX = R"(
.version 7.0
.target sm_70
.address_size 64

.extern .shared .align 16 .b8 dynamic_smem[];

.visible .entry vector_add(
    .param .u64 x_param,
    .param .u64 y_param,
    .param .u64 out_param)
{
    .reg .b32 %r<5>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<11>;

    ld.param.u64 %rd1, [x_param];
    ld.param.u64 %rd2, [y_param];
    ld.param.u64 %rd3, [out_param];
    cvta.to.global.u64 %rd4, %rd1;
    cvta.to.global.u64 %rd5, %rd2;
    cvta.to.global.u64 %rd6, %rd3;
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mad.lo.s32 %r4, %r1, %r2, %r3;
    mul.wide.s32 %rd7, %r4, 4;
    add.s64 %rd8, %rd4, %rd7;
    add.s64 %rd9, %rd5, %rd7;
    add.s64 %rd10, %rd6, %rd7;
    ld.global.f32 %f1, [%rd8];
    ld.global.f32 %f2, [%rd9];
    fma.rn.f32 %f3, %f2, 0f40000000, %f1;
    st.global.f32 [%rd10], %f3;
    ret;
}

.visible .entry reverse_shared(
    .param .u64 in_param,
    .param .u64 out_param)
{
    .reg .b32 %r<7>;
    .reg .f32 %f<3>;
    .reg .b64 %rd<13>;

    ld.param.u64 %rd1, [in_param];
    ld.param.u64 %rd2, [out_param];
    cvta.to.global.u64 %rd3, %rd1;
    cvta.to.global.u64 %rd4, %rd2;
    mov.u32 %r1, %ctaid.x;
    mov.u32 %r2, %ntid.x;
    mov.u32 %r3, %tid.x;
    mad.lo.s32 %r4, %r1, %r2, %r3;
    mul.wide.s32 %rd5, %r4, 4;
    add.s64 %rd6, %rd3, %rd5;
    ld.global.f32 %f1, [%rd6];
    mov.u64 %rd7, dynamic_smem;
    mul.wide.u32 %rd8, %r3, 4;
    add.s64 %rd9, %rd7, %rd8;
    st.shared.f32 [%rd9+61440], %f1;
    bar.sync 0;
    sub.s32 %r5, %r2, %r3;
    sub.s32 %r6, %r5, 1;
    mul.wide.u32 %rd10, %r6, 4;
    add.s64 %rd11, %rd7, %rd10;
    ld.shared.f32 %f2, [%rd11+61440];
    add.s64 %rd12, %rd4, %rd5;
    st.global.f32 [%rd12], %f2;
    ret;
}
)";

/// One block per 16x32 f32 box of a tensor map (a generic pointer to the
/// CUtensorMap in global memory): TMA loads the box at row 16·block into
/// shared memory, completing an mbarrier, and the block copies it to
/// out[16·block ...]. Needs sm_90.
const char *kTensorMapPTX = R"(
.version 8.0
.target sm_90
.address_size 64

.visible .entry tma_load_2d(
    .param .u64 map_param,
    .param .u64 out_param)
{
    .reg .pred %p<4>;
    .reg .b32 %r<12>;
    .reg .b64 %rd<12>;
    .reg .f32 %f<2>;
    .shared .align 128 .b8 tile[2048];
    .shared .align 8 .b64 bar;

    ld.param.u64 %rd1, [map_param];
    ld.param.u64 %rd2, [out_param];
    cvta.to.global.u64 %rd3, %rd2;
    mov.u32 %r1, %tid.x;
    mov.u32 %r2, %ctaid.x;
    setp.eq.u32 %p1, %r1, 0;
    @!%p1 bra INIT_DONE;
    mbarrier.init.shared::cta.b64 [bar], 1;
    fence.mbarrier_init.release.cluster;
INIT_DONE:
    bar.sync 0;
    @!%p1 bra WAIT;
    mbarrier.arrive.expect_tx.shared::cta.b64 %rd4, [bar], 2048;
    shl.b32 %r3, %r2, 4;
    mov.u32 %r4, 0;
    cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [tile], [%rd1, {%r4, %r3}], [bar];
WAIT:
    mov.u32 %r10, 0;
    mbarrier.try_wait.parity.shared::cta.b64 %p2, [bar], %r10;
    @!%p2 bra WAIT;
    mov.u64 %rd6, tile;
    shl.b32 %r8, %r2, 9;
    mov.u32 %r5, 0;
COPY:
    shl.b32 %r6, %r5, 7;
    add.u32 %r7, %r6, %r1;
    mul.wide.u32 %rd5, %r7, 4;
    add.s64 %rd7, %rd6, %rd5;
    ld.shared.f32 %f1, [%rd7];
    add.u32 %r9, %r8, %r7;
    mul.wide.u32 %rd8, %r9, 4;
    add.s64 %rd9, %rd3, %rd8;
    st.global.f32 [%rd9], %f1;
    add.u32 %r5, %r5, 1;
    setp.lt.u32 %p3, %r5, 4;
    @%p3 bra COPY;
    ret;
}
)";

/// Builds tensor maps on the device and loads boxes through them with TMA,
/// directly and through a version 2 manifest; rows past the tensor's 56
/// read as the map's out-of-bounds fill.
TEST_F(OnDevice, TensorMaps) {
  if (info.computeCapabilityMajor < 9)
    GTEST_SKIP() << "device older than sm_90: skipping the TMA checks";
  Runtime &runtime = *sharedRuntime;
  Expected<Module> loaded = runtime.loadPTX(kTensorMapPTX);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  Module &module = *loaded;
  const int rows = 56, cols = 32, paddedRows = 64;
  std::vector<float> host(rows * cols), out(paddedRows * cols);
  for (size_t i = 0; i < host.size(); ++i)
    host[i] = float(i) + 0.5f;
  Expected<DeviceBuffer> input = runtime.allocate(host.size() * sizeof(float));
  Expected<DeviceBuffer> output = runtime.allocate(out.size() * sizeof(float));
  ASSERT_TRUE(input.ok() && output.ok());
  EXPECT_TRUE(
      input->copyFromHost(host.data(), host.size() * sizeof(float)).ok());

  auto check = [&](bool nanFill) {
    int wrong = 0;
    for (int r = 0; r < paddedRows; ++r)
      for (int c = 0; c < cols; ++c) {
        float value = out[r * cols + c];
        if (r < rows)
          wrong += value != host[r * cols + c];
        else
          wrong += nanFill ? !std::isnan(value) : value != 0.0f;
      }
    return wrong;
  };
  for (bool nanFill : {false, true}) {
    Expected<DeviceBuffer> map = runtime.createTensorMap(
        input->pointer(), "f32", {rows, cols}, {16, cols}, 0, 128, nanFill);
    ASSERT_TRUE(map.ok()) << map.error();
    EXPECT_EQ(map->size(), 128);
    EXPECT_EQ(map->pointer() % 64, 0);
    EXPECT_TRUE(output->fill(0x7f).ok());
    Status launched = module.launch("tma_load_2d", {4, 1, 1}, {128, 1, 1}, 0,
                                    {map->pointer(), output->pointer()});
    EXPECT_TRUE(launched.ok()) << launched.message();
    EXPECT_TRUE(
        output->copyToHost(out.data(), out.size() * sizeof(float)).ok());
    EXPECT_EQ(check(nanFill), 0);
  }

  // Swizzled bf16 maps encode too; the driver rejects what the checks let
  // through only rarely, and says which call failed.
  Expected<DeviceBuffer> swizzled = runtime.createTensorMap(
      output->pointer(), "bf16", {64, 64}, {64, 64}, 128, 256, false);
  EXPECT_TRUE(swizzled.ok()) << swizzled.error();
  Expected<DeviceBuffer> badBox =
      runtime.createTensorMap(output->pointer(), "f32", {rows, cols}, {16, 3});
  EXPECT_EQ(badBox.error(), "bptRuntimeCreateTensorMap: box[1] is 3 "
                            "elements of f32, 12 bytes, not a multiple of "
                            "16");
  Expected<DeviceBuffer> badRank =
      runtime.createTensorMap(output->pointer(), "f32", {rows, cols}, {16});
  EXPECT_EQ(badRank.error(),
            "createTensorMap: shape has 2 dimensions but box has 1");

  // Through a manifest, as bpt-run does it.
  std::string manifestText = R"({"bpt_manifest_version": 2, "ptx": "t.ptx",
    "chip": "sm_90", "op": "custom",
    "buffers": [
      {"name": "x", "role": "input", "dtype": "f32", "shape": [56, 32],
       "bytes": 7168},
      {"name": "out", "role": "output", "dtype": "f32", "shape": [64, 32],
       "bytes": 8192}],
    "tensor_maps": [
      {"buffer": 0, "dtype": "f32", "shape": [56, 32], "box": [16, 32],
       "swizzle": "none", "oob_fill": "nan"}],
    "launches": [
      {"kernel": "tma_load_2d", "grid": [4], "block": [128],
       "args": [{"tensor_map": 0}, 1]}]})";
  Expected<Manifest> manifest = Manifest::parse(manifestText);
  ASSERT_TRUE(manifest.ok()) << manifest.error();
  std::vector<DeviceBuffer> buffers;
  buffers.push_back(std::move(*input));
  buffers.push_back(std::move(*output));
  EXPECT_EQ(module.launchAll(*manifest, buffers).message(),
            "the manifest has 1 tensor maps, but 0 were given (build them "
            "with Runtime::createTensorMaps)");
  Expected<std::vector<DeviceBuffer>> maps =
      runtime.createTensorMaps(*manifest, buffers);
  ASSERT_TRUE(maps.ok()) << maps.error();
  EXPECT_EQ(maps->size(), 1u);
  EXPECT_TRUE(buffers[1].fill(0).ok());
  Status launched = module.launchAll(*manifest, buffers, *maps);
  EXPECT_TRUE(launched.ok()) << launched.message();
  EXPECT_TRUE(
      buffers[1].copyToHost(out.data(), out.size() * sizeof(float)).ok());
  EXPECT_EQ(check(/*nanFill=*/true), 0);

  // Byte offsets: the map starts 16 rows into x (40 rows remain) and the
  // kernel writes from 16 rows into a larger output, so output row r is x's
  // row r up to 56, NaN (out of the map's bounds) after, and rows 0-15 stay.
  std::string offsetText = R"({"bpt_manifest_version": 2, "ptx": "t.ptx",
    "chip": "sm_90", "op": "custom",
    "buffers": [
      {"name": "x", "role": "input", "dtype": "f32", "shape": [56, 32],
       "bytes": 7168},
      {"name": "out", "role": "output", "dtype": "f32", "shape": [80, 32],
       "bytes": 10240}],
    "tensor_maps": [
      {"buffer": 0, "byte_offset": 2048, "dtype": "f32", "shape": [40, 32],
       "box": [16, 32], "swizzle": "none", "oob_fill": "nan"}],
    "launches": [
      {"kernel": "tma_load_2d", "grid": [4], "block": [128],
       "args": [{"tensor_map": 0}, {"buffer": 1, "byte_offset": 2048}]}]})";
  Expected<Manifest> offsetManifest = Manifest::parse(offsetText);
  Expected<DeviceBuffer> wide = runtime.allocate(80 * cols * sizeof(float));
  ASSERT_TRUE(offsetManifest.ok() && wide.ok());
  buffers[1] = std::move(*wide);
  Expected<std::vector<DeviceBuffer>> offsetMaps =
      runtime.createTensorMaps(*offsetManifest, buffers);
  ASSERT_TRUE(offsetMaps.ok()) << offsetMaps.error();
  EXPECT_TRUE(buffers[1].fill(0).ok());
  launched = module.launchAll(*offsetManifest, buffers, *offsetMaps);
  EXPECT_TRUE(launched.ok()) << launched.message();
  std::vector<float> wideOut(80 * cols);
  EXPECT_TRUE(buffers[1]
                  .copyToHost(wideOut.data(), wideOut.size() * sizeof(float))
                  .ok());
  int wrongRows = 0;
  for (int r = 0; r < 80; ++r) {
    bool rowWrong = false;
    for (int c = 0; c < cols; ++c) {
      float value = wideOut[r * cols + c];
      rowWrong = rowWrong || (r < 16     ? value != 0.0f
                              : r < rows ? value != host[r * cols + c]
                                         : !std::isnan(value));
    }
    wrongRows += rowWrong;
  }
  EXPECT_EQ(wrongRows, 0);
  // Later checks expect no launches pending since the last synchronization.
  EXPECT_TRUE(runtime.synchronize().ok());
  note("TMA loads through tensor maps checked");
}

struct TimingState {
  bptModule module;
  uint64_t args[3];
  int failAt;
};

int launchForTiming(void *userData, int iteration) {
  auto *state = static_cast<TimingState *>(userData);
  if (iteration == state->failAt)
    return 7;
  uint32_t grid[3] = {4, 1, 1}, block[3] = {256, 1, 1};
  return bptModuleLaunch(state->module, "vector_add", grid, block, 0,
                         state->args, 3);
}

TEST_F(OnDevice, Launches) {
  Runtime &runtime = *sharedRuntime;
  EXPECT_TRUE(!info.name.empty());
  EXPECT_TRUE(info.computeCapabilityMajor >= 3);
  EXPECT_TRUE(info.multiprocessorCount > 0);
  EXPECT_TRUE(info.maxSharedMemoryPerBlockOptin >= 48 * 1024);
  EXPECT_TRUE(info.freeMemoryBytes > 0 &&
              info.freeMemoryBytes <= info.totalMemoryBytes);
  EXPECT_TRUE(info.driverVersion >= 11000);
  note("device: " + info.name + ", " + info.chip() + ", " +
       std::to_string(info.multiprocessorCount) + " SMs, " +
       std::to_string(info.maxSharedMemoryPerBlockOptin) +
       " bytes of opt-in shared memory per block, driver " +
       std::to_string(info.driverVersion));

  bptRuntime absent = {nullptr};
  EXPECT_EQ(bptRuntimeCreate(1 << 20, &absent), bptRuntimeErrorNoDevice);
  EXPECT_CONTAINS(std::string(bptRuntimeLastError()),
                  "CUDA device 1048576 requested, but this machine has");

  // Device memory.
  const int n = 1024;
  std::vector<float> x(n), y(n), out(n, -1.0f);
  for (int i = 0; i < n; ++i) {
    x[i] = 0.5f * float(i);
    y[i] = float(i % 7) - 3.0f;
  }
  Expected<DeviceBuffer> dx = runtime.allocate(n * sizeof(float));
  Expected<DeviceBuffer> dy = runtime.allocate(n * sizeof(float));
  Expected<DeviceBuffer> dout = runtime.allocate(n * sizeof(float));
  ASSERT_TRUE(dx.ok() && dy.ok() && dout.ok());
  EXPECT_TRUE(dx->copyFromHost(x.data(), n * sizeof(float)).ok());
  EXPECT_TRUE(dy->copyFromHost(y.data(), n * sizeof(float)).ok());
  EXPECT_TRUE(dout->fill(0xff).ok()); // NaN poison
  EXPECT_TRUE(!dx->copyFromHost(x.data(), 2 * n * sizeof(float)).ok());
  Expected<DeviceBuffer> empty = runtime.allocate(0);
  EXPECT_EQ(empty.error(),
            "bptRuntimeMalloc: cannot allocate 0 bytes of device memory");
  Expected<DeviceBuffer> huge = runtime.allocate(size_t(1) << 50);
  EXPECT_CONTAINS(huge.error(), "cuMemAlloc_v2 failed: "
                                "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_CONTAINS(huge.error(), " free of ");

  // Loading PTX.
  Expected<Module> loaded = runtime.loadPTX(kTestPTX);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  Module &module = *loaded;
  Expected<Module> broken = runtime.loadPTX(
      ".version 7.0\n.target sm_70\n.address_size 64\n"
      ".visible .entry bad() {\n  bogus.instruction %r1;\n  ret;\n}\n");
  EXPECT_TRUE(!broken.ok());
  EXPECT_CONTAINS(broken.error(),
                  "loading PTX (.version 7.0, .target sm_70) on device 0 (");
  EXPECT_CONTAINS(broken.error(), "cuModuleLoadDataEx failed: ");
  EXPECT_CONTAINS(broken.error(), "\nJIT log:\n");
  note("bad PTX reads: " + broken.error());
  Expected<Module> noFile = runtime.loadPTXFile("/nonexistent/k.ptx");
  EXPECT_EQ(noFile.error(), "cannot open PTX file '/nonexistent/k.ptx': "
                            "No such file or directory");

  // A launch, and its result.
  Status launched =
      module.launch("vector_add", {4, 1, 1}, {256, 1, 1}, 0,
                    {dx->pointer(), dy->pointer(), dout->pointer()});
  EXPECT_TRUE(launched.ok()) << launched.message();
  EXPECT_TRUE(runtime.synchronize().ok());
  EXPECT_TRUE(dout->copyToHost(out.data(), n * sizeof(float)).ok());
  int wrong = 0;
  for (int i = 0; i < n; ++i)
    wrong += out[i] != x[i] + 2.0f * y[i];
  EXPECT_EQ(wrong, 0);

  // The same launch recorded as a graph, then replayed twice.
  EXPECT_TRUE(dout->fill(0xff).ok());
  Expected<Graph> graph = runtime.recordGraph([&](uint64_t stream) {
    return module.launch("vector_add", {4, 1, 1}, {256, 1, 1}, 0,
                         {dx->pointer(), dy->pointer(), dout->pointer()},
                         stream);
  });
  ASSERT_TRUE(graph.ok()) << graph.error();
  EXPECT_TRUE(runtime.synchronize().ok());
  EXPECT_TRUE(dout->copyToHost(out.data(), n * sizeof(float)).ok());
  EXPECT_TRUE(std::isnan(out[0])) << "recording ran the launch";
  for (int replay = 0; replay < 2; ++replay) {
    EXPECT_TRUE(dout->fill(0xff).ok());
    EXPECT_TRUE(graph->launch().ok());
    EXPECT_TRUE(runtime.synchronize().ok());
    EXPECT_TRUE(dout->copyToHost(out.data(), n * sizeof(float)).ok());
    wrong = 0;
    for (int i = 0; i < n; ++i)
      wrong += out[i] != x[i] + 2.0f * y[i];
    EXPECT_EQ(wrong, 0) << "replay " << replay;
  }
  // A failing body records nothing, and says why.
  Expected<Graph> failed = runtime.recordGraph([&](uint64_t stream) {
    return module.launch("vector_sub", {1, 1, 1}, {1, 1, 1}, 0, {}, stream);
  });
  EXPECT_CONTAINS(failed.error(), "no kernel named 'vector_sub'");
  EXPECT_TRUE(runtime.synchronize().ok());

  // More than 48 KiB of dynamic shared memory.
  EXPECT_TRUE(dout->fill(0xff).ok());
  Status reversed = module.launch("reverse_shared", {4, 1, 1}, {256, 1, 1},
                                  64 * 1024, {dx->pointer(), dout->pointer()});
  EXPECT_TRUE(reversed.ok()) << reversed.message();
  EXPECT_TRUE(dout->copyToHost(out.data(), n * sizeof(float)).ok());
  wrong = 0;
  for (int i = 0; i < n; ++i)
    wrong += out[i] != x[(i / 256) * 256 + 255 - i % 256];
  EXPECT_EQ(wrong, 0);

  // Bad launches.
  uint32_t tooMuch = uint32_t(info.maxSharedMemoryPerBlockOptin) + 1;
  Status overShared = module.launch("reverse_shared", {1, 1, 1}, {256, 1, 1},
                                    tooMuch, {dx->pointer(), dout->pointer()});
  EXPECT_CONTAINS(overShared.message(),
                  "launching kernel 'reverse_shared': it needs " +
                      std::to_string(tooMuch) +
                      " bytes of dynamic shared memory per block, but device "
                      "0 (");
  EXPECT_CONTAINS(overShared.message(),
                  "allows at most " +
                      std::to_string(info.maxSharedMemoryPerBlockOptin) +
                      " bytes per block (its opt-in maximum)");
  Status unknown = module.launch("vector_sub", {1, 1, 1}, {1, 1, 1}, 0, {});
  EXPECT_EQ(unknown.message(), "no kernel named 'vector_sub' in the module "
                               "(its kernels: 'vector_add', "
                               "'reverse_shared')");
  Status bigBlock =
      module.launch("vector_add", {1, 1, 1}, {64, 32, 1}, 0,
                    {dx->pointer(), dy->pointer(), dout->pointer()});
  EXPECT_EQ(bigBlock.message(), "launching kernel 'vector_add': block "
                                "64x32x1 has 2048 threads, more than 1024");
  Status zeroGrid =
      module.launch("vector_add", {1, 0, 1}, {1, 1, 1}, 0,
                    {dx->pointer(), dy->pointer(), dout->pointer()});
  EXPECT_EQ(zeroGrid.message(), "launching kernel 'vector_add': grid.y is "
                                "0, must be 1 to 65535");
  // The count comes from cuFuncGetParamCount, which some CUDA 13.0 drivers
  // (580.x) lack; without it a short launch would read past `args`.
  void *driverLibrary = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  bool canCountParams =
      driverLibrary && dlsym(driverLibrary, "cuFuncGetParamCount");
  if (driverLibrary)
    dlclose(driverLibrary);
  if (canCountParams) {
    Status fewArgs = module.launch("vector_add", {1, 1, 1}, {1, 1, 1}, 0,
                                   {dx->pointer(), dy->pointer()});
    EXPECT_EQ(fewArgs.message(), "launching kernel 'vector_add': it takes "
                                 "3 parameters, but 2 arguments were "
                                 "given");
  } else {
    note("driver without cuFuncGetParamCount: skipping the parameter-count "
         "check");
  }

  // The whole manifest path: buffers checked against the manifest, launches
  // run in order.
  std::string manifestText = R"({"bpt_manifest_version": 1, "ptx": "t.ptx",
    "chip": "sm_70", "op": "custom",
    "buffers": [
      {"name": "x", "role": "input", "dtype": "f32", "shape": [1024],
       "bytes": 4096},
      {"name": "y", "role": "input", "dtype": "f32", "shape": [1024],
       "bytes": 4096},
      {"name": "out", "role": "output", "dtype": "f32", "shape": [1024],
       "bytes": 4096}],
    "launches": [
      {"kernel": "vector_add", "grid": [4], "block": [256],
       "args": [0, 1, 2]},
      {"kernel": "vector_add", "grid": [4], "block": [256],
       "args": [2, 1, 2]}]})";
  Expected<Manifest> manifest = Manifest::parse(manifestText);
  EXPECT_TRUE(manifest.ok());
  if (manifest) {
    EXPECT_TRUE(checkChipRunsOn(manifest->chip, info).ok());
    std::vector<DeviceBuffer> buffers;
    buffers.push_back(std::move(*dx));
    buffers.push_back(std::move(*dy));
    buffers.push_back(std::move(*dout));
    EXPECT_TRUE(module.launchAll(*manifest, buffers).ok());
    EXPECT_TRUE(buffers[2].copyToHost(out.data(), n * sizeof(float)).ok());
    wrong = 0;
    for (int i = 0; i < n; ++i)
      wrong += out[i] != (x[i] + 2.0f * y[i]) + 2.0f * y[i];
    EXPECT_EQ(wrong, 0);
    std::vector<DeviceBuffer> tooFew;
    tooFew.push_back(std::move(buffers[0]));
    EXPECT_EQ(module.launchAll(*manifest, tooFew).message(),
              "the manifest has 3 buffers, but 1 device buffers were "
              "given");
    buffers[0] = std::move(tooFew[0]);
    *dx = std::move(buffers[0]);
    *dy = std::move(buffers[1]);
    *dout = std::move(buffers[2]);
  }

  // Timing through the C callback and through a timer.
  TimingState state{
      module.handle(), {dx->pointer(), dy->pointer(), dout->pointer()}, -1};
  float milliseconds = -1;
  EXPECT_EQ(bptRuntimeTimeLaunches(runtime.handle(), 20, launchForTiming,
                                   &state, &milliseconds),
            bptRuntimeSuccess);
  EXPECT_TRUE(milliseconds > 0);
  note("20 launches of vector_add took " + std::to_string(milliseconds) +
       " ms");
  state.failAt = 3;
  EXPECT_EQ(bptRuntimeTimeLaunches(runtime.handle(), 20, launchForTiming,
                                   &state, &milliseconds),
            bptRuntimeErrorCallback);
  EXPECT_EQ(std::string(bptRuntimeLastError()),
            "timing stopped: the launch callback returned 7 at iteration 3 "
            "of 20");
  Expected<float> timed = runtime.timeLaunches(5, [&](int i) {
    if (i == 2)
      return Status::failure("stop here");
    return module.launch("vector_add", {4, 1, 1}, {256, 1, 1}, 0,
                         {dx->pointer(), dy->pointer(), dout->pointer()});
  });
  EXPECT_EQ(timed.error(), "timing stopped at iteration 2: stop here");
  bptTimer timer = {nullptr};
  EXPECT_EQ(bptTimerCreate(runtime.handle(), &timer), bptRuntimeSuccess);
  EXPECT_EQ(bptTimerStop(timer, &milliseconds), bptRuntimeErrorInvalidArgument);
  EXPECT_EQ(bptTimerStart(timer), bptRuntimeSuccess);
  EXPECT_TRUE(module
                  .launch("vector_add", {4, 1, 1}, {256, 1, 1}, 0,
                          {dx->pointer(), dy->pointer(), dout->pointer()})
                  .ok());
  milliseconds = -1;
  EXPECT_EQ(bptTimerStop(timer, &milliseconds), bptRuntimeSuccess);
  EXPECT_TRUE(milliseconds >= 0);
  EXPECT_EQ(bptTimerDestroy(timer), bptRuntimeSuccess);
}

/// A slow writer (one thread spins ~0.2 ms on the clock, then writes) and
/// a copy launched as its dependent: the copy waits (griddepcontrol.wait)
/// and must see every value written.
const char *kDependentPTX = R"(
.version 8.0
.target sm_90
.address_size 64

.visible .entry slow_fill(
    .param .u64 out_param)
{
    .reg .pred %p<2>;
    .reg .b32 %r<4>;
    .reg .b64 %rd<8>;

    ld.param.u64 %rd1, [out_param];
    cvta.to.global.u64 %rd2, %rd1;
    mov.u64 %rd3, %globaltimer;
$spin:
    mov.u64 %rd4, %globaltimer;
    sub.s64 %rd5, %rd4, %rd3;
    setp.lt.s64 %p1, %rd5, 200000;
    @%p1 bra $spin;
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd6, %r1, 4;
    add.s64 %rd7, %rd2, %rd6;
    add.s32 %r2, %r1, 7;
    st.global.u32 [%rd7], %r2;
    ret;
}

.visible .entry waiting_copy(
    .param .u64 in_param,
    .param .u64 out_param)
{
    .reg .b32 %r<3>;
    .reg .b64 %rd<9>;

    ld.param.u64 %rd1, [in_param];
    ld.param.u64 %rd2, [out_param];
    griddepcontrol.wait;
    griddepcontrol.launch_dependents;
    cvta.to.global.u64 %rd3, %rd1;
    cvta.to.global.u64 %rd4, %rd2;
    mov.u32 %r1, %tid.x;
    mul.wide.u32 %rd5, %r1, 4;
    add.s64 %rd6, %rd3, %rd5;
    add.s64 %rd7, %rd4, %rd5;
    ld.global.u32 %r2, [%rd6];
    st.global.u32 [%rd7], %r2;
    ret;
}
)";

TEST_F(OnDevice, DependentLaunches) {
  if (info.computeCapabilityMajor < 9)
    GTEST_SKIP() << "device older than sm_90: no dependent launches";
  Runtime &runtime = *sharedRuntime;
  Expected<Module> loaded = runtime.loadPTX(kDependentPTX);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  Module &module = *loaded;
  const int n = 256;
  Expected<DeviceBuffer> middle = runtime.allocate(n * sizeof(uint32_t));
  Expected<DeviceBuffer> out = runtime.allocate(n * sizeof(uint32_t));
  ASSERT_TRUE(middle.ok() && out.ok());
  for (int round = 0; round < 3; ++round) {
    EXPECT_TRUE(middle->fill(0).ok());
    EXPECT_TRUE(out->fill(0xff).ok());
    EXPECT_TRUE(runtime.synchronize().ok());
    Status writer = module.launch("slow_fill", {1, 1, 1}, {n, 1, 1}, 0,
                                  {middle->pointer()});
    Status copy = module.launch("waiting_copy", {1, 1, 1}, {n, 1, 1}, 0,
                                {middle->pointer(), out->pointer()},
                                /*stream=*/0, BPT_LAUNCH_DEPENDENT);
    EXPECT_TRUE(writer.ok()) << writer.message();
    EXPECT_TRUE(copy.ok()) << copy.message();
    EXPECT_TRUE(runtime.synchronize().ok());
    std::vector<uint32_t> host(n);
    EXPECT_TRUE(out->copyToHost(host.data(), n * sizeof(uint32_t)).ok());
    int wrong = 0;
    for (int i = 0; i < n; ++i)
      wrong += host[i] != uint32_t(i + 7);
    EXPECT_EQ(wrong, 0) << "round " << round;
  }
  const uint32_t dims[3] = {1, 1, 1};
  EXPECT_EQ(bptModuleLaunchWithFlags(module.handle(), "waiting_copy", dims,
                                     dims, 0, nullptr, 0, 0, 1u << 7),
            bptRuntimeErrorInvalidArgument);
  EXPECT_STREQ(bptRuntimeLastError(),
               "bptModuleLaunchWithFlags: unknown launch flags 0x80");
}

/// Last, since it leaves the context unusable: a kernel that faults is
/// reported at the next synchronization, by name.
TEST_F(OnDevice, FaultingKernel) {
  Runtime &runtime = *sharedRuntime;
  // Nothing of the earlier tests is pending.
  EXPECT_TRUE(runtime.synchronize().ok());
  Expected<Module> loaded = runtime.loadPTX(kTestPTX);
  ASSERT_TRUE(loaded.ok()) << loaded.error();
  const size_t bytes = 1024 * sizeof(float);
  Expected<DeviceBuffer> dx = runtime.allocate(bytes);
  Expected<DeviceBuffer> dout = runtime.allocate(bytes);
  ASSERT_TRUE(dx.ok() && dout.ok());
  EXPECT_TRUE(dx->fill(0).ok());
  // y at address 16.
  Status faulting = loaded->launch("vector_add", {4, 1, 1}, {256, 1, 1}, 0,
                                   {dx->pointer(), 16, dout->pointer()});
  EXPECT_TRUE(faulting.ok());
  Status synced = runtime.synchronize();
  EXPECT_TRUE(!synced.ok());
  EXPECT_CONTAINS(synced.message(), "cuCtxSynchronize failed: CUDA_ERROR_");
  EXPECT_CONTAINS(synced.message(), "kernels launched since the last "
                                    "synchronization: 'vector_add'");
  note("a faulting kernel reads: " + synced.message());
}

} // namespace
