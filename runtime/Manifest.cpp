//===- Manifest.cpp - kernel-set manifest and JSON reader -----------------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/Manifest.h"

#include "bpt/Target/Chip.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <sstream>

using namespace bpt::rt;

//===----------------------------------------------------------------------===//
// JSON
//===----------------------------------------------------------------------===//

namespace {

/// Nesting deeper than this is an error, not a deep recursion later.
constexpr int kMaxJsonDepth = 256;

/// "line 3, column 7 (byte 42)"; lines and columns count from 1, columns
/// and the offset in bytes.
std::string jsonLocation(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column) +
         " (byte " + std::to_string(offset) + ")";
}

/// An input iterator over the text that counts the bytes nlohmann's lexer
/// has read, so that what the builder below rejects (a duplicate key, deep
/// nesting) gets a location too: the SAX events carry none.
class CountingIterator {
public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char *;
  using reference = const char &;

  CountingIterator(const char *position, size_t *count)
      : position_(position), count_(count) {}
  reference operator*() const { return *position_; }
  CountingIterator &operator++() {
    ++position_;
    ++*count_;
    return *this;
  }
  CountingIterator operator++(int) {
    CountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const CountingIterator &other) const {
    return position_ == other.position_;
  }
  bool operator!=(const CountingIterator &other) const {
    return position_ != other.position_;
  }

private:
  const char *position_;
  size_t *count_;
};

/// Builds a Json from nlohmann's SAX events, as its own DOM parser does, and
/// adds the checks that parser lacks: duplicate keys (nlohmann keeps the
/// last) and a nesting limit. Records the first error with its location.
class StrictDomBuilder {
public:
  StrictDomBuilder(std::string_view text, const size_t &bytesRead)
      : text_(text), bytesRead_(bytesRead) {}

  Json &result() { return root_; }
  const std::string &error() const { return error_; }

  // The SAX interface (nlohmann::json_sax).
  bool null() { return add(Json()); }
  bool boolean(bool value) { return add(Json(value)); }
  bool number_integer(Json::number_integer_t value) { return add(Json(value)); }
  bool number_unsigned(Json::number_unsigned_t value) {
    return add(Json(value));
  }
  bool number_float(Json::number_float_t value, const std::string &) {
    return add(Json(value));
  }
  bool string(std::string &value) { return add(Json(std::move(value))); }
  bool binary(Json::binary_t &value) {
    return add(Json::binary(std::move(value)));
  }
  bool start_object(size_t) { return open(Json::object()); }
  bool key(std::string &key) {
    if (stack_.back()->contains(key))
      return fail(keyOffset(), "duplicate key \"" + key + "\" in object");
    key_ = std::move(key);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(size_t) { return open(Json::array()); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(size_t position, const std::string &lastToken,
                   const Json::exception &error) {
    // An overflowing number (out_of_range.406) is reported once read:
    // `position` is just past it.
    if (dynamic_cast<const Json::out_of_range *>(&error))
      return fail(position - std::min(position, lastToken.size()),
                  "number " + lastToken + " is out of range");
    // nlohmann's `position` counts the offending byte (or the end) too.
    return fail(position > 0 ? position - 1 : 0, describe(error));
  }

private:
  /// Places a scalar; true, for the parser to go on.
  bool add(Json value) {
    place(std::move(value));
    return true;
  }

  /// Puts `value` where it goes: at the root, at the end of the open array,
  /// or in the open object under the last key. References to the open
  /// containers stay valid, as only the innermost one grows.
  Json &place(Json value) {
    if (stack_.empty())
      return root_ = std::move(value);
    Json &container = *stack_.back();
    if (!container.is_array())
      return container[key_] = std::move(value);
    container.push_back(std::move(value));
    return container.back();
  }

  bool open(Json container) {
    if (int(stack_.size()) >= kMaxJsonDepth)
      // The bracket just read.
      return fail(bytesRead_ - 1, "nesting deeper than " +
                                      std::to_string(kMaxJsonDepth) +
                                      " levels");
    stack_.push_back(&place(std::move(container)));
    return true;
  }

  /// The opening quote of the key just read: the lexer has read up to its
  /// closing quote, and the first quote before that with an even number of
  /// backslashes before it opens the string.
  size_t keyOffset() const {
    size_t quote = bytesRead_ - 1;
    while (quote > 0) {
      --quote;
      if (text_[quote] != '"')
        continue;
      size_t backslashes = 0;
      while (backslashes < quote && text_[quote - 1 - backslashes] == '\\')
        ++backslashes;
      if (backslashes % 2 == 0)
        return quote;
    }
    return 0;
  }

  /// nlohmann's message without its "[json.exception.parse_error.101] parse
  /// error at line L, column C: " prefix (the location is given our way).
  static std::string describe(const Json::exception &error) {
    std::string message = error.what();
    size_t start = message.find("] ");
    start = start == std::string::npos ? 0 : start + 2;
    if (message.compare(start, 11, "parse error") == 0) {
      size_t colon = message.find(": ", start);
      if (colon != std::string::npos)
        start = colon + 2;
    }
    return message.substr(start);
  }

  bool fail(size_t offset, const std::string &message) {
    if (error_.empty())
      error_ =
          jsonLocation(text_, std::min(offset, text_.size())) + ": " + message;
    return false;
  }

  std::string_view text_;
  const size_t &bytesRead_;
  Json root_;
  std::vector<Json *> stack_;
  std::string key_;
  std::string error_;
};

} // namespace

Expected<Json> bpt::rt::readJson(std::string_view text) {
  size_t bytesRead = 0;
  StrictDomBuilder builder(text, bytesRead);
  bool parsed = false;
  try {
    parsed =
        Json::sax_parse(CountingIterator(text.data(), &bytesRead),
                        CountingIterator(text.data() + text.size(), &bytesRead),
                        &builder, Json::input_format_t::json, /*strict=*/true,
                        /*ignore_comments=*/false);
  } catch (const Json::exception &error) {
    // The builder reports errors instead of throwing; this is a safety net.
    return Status::failure(std::string("invalid JSON: ") + error.what());
  }
  if (!parsed)
    return Status::failure(builder.error().empty() ? "invalid JSON"
                                                   : builder.error());
  return std::move(builder.result());
}

std::optional<int64_t> bpt::rt::jsonInteger(const Json &value) {
  if (value.is_number_unsigned()) {
    uint64_t integer = value.get<uint64_t>();
    if (integer <= uint64_t(std::numeric_limits<int64_t>::max()))
      return int64_t(integer);
    return std::nullopt;
  }
  if (value.is_number_integer())
    return value.get<int64_t>();
  if (!value.is_number_float())
    return std::nullopt;
  // 2^53: beyond it a double no longer holds every integer exactly.
  double number = value.get<double>();
  if (std::nearbyint(number) == number &&
      std::fabs(number) < 9007199254740992.0)
    return int64_t(number);
  return std::nullopt;
}

const Json *bpt::rt::jsonMember(const Json &object, std::string_view key) {
  if (!object.is_object())
    return nullptr;
  Json::const_iterator member = object.find(key);
  return member == object.end() ? nullptr : &*member;
}

std::string bpt::rt::jsonText(const Json &value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false,
                    Json::error_handler_t::replace);
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

const char *bpt::rt::elementTypeName(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return "f32";
  case ElementType::F16:
    return "f16";
  case ElementType::BF16:
    return "bf16";
  case ElementType::I8:
    return "i8";
  }
  return "?";
}

int64_t bpt::rt::elementTypeBytes(ElementType type) {
  switch (type) {
  case ElementType::F32:
    return 4;
  case ElementType::F16:
  case ElementType::BF16:
    return 2;
  case ElementType::I8:
    return 1;
  }
  return 0;
}

std::optional<ElementType> bpt::rt::parseElementType(std::string_view name) {
  for (ElementType type :
       {ElementType::F32, ElementType::F16, ElementType::BF16, ElementType::I8})
    if (name == elementTypeName(type))
      return type;
  return std::nullopt;
}

const char *bpt::rt::bufferRoleName(BufferRole role) {
  switch (role) {
  case BufferRole::Input:
    return "input";
  case BufferRole::Output:
    return "output";
  case BufferRole::Workspace:
    return "workspace";
  }
  return "?";
}

/// The op named `name` in a manifest, or nullopt.
static std::optional<ManifestOp> parseManifestOp(const std::string &name) {
  for (ManifestOp op :
       {ManifestOp::Attention, ManifestOp::AttentionLSE,
        ManifestOp::AttentionGrad, ManifestOp::AttentionBackward,
        ManifestOp::FFN, ManifestOp::Block, ManifestOp::BlockBackward,
        ManifestOp::Custom})
    if (name == manifestOpName(op))
      return op;
  return std::nullopt;
}

const char *bpt::rt::manifestOpName(ManifestOp op) {
  switch (op) {
  case ManifestOp::Attention:
    return "attention";
  case ManifestOp::AttentionLSE:
    return "attention_lse";
  case ManifestOp::AttentionGrad:
    return "attention_grad";
  case ManifestOp::AttentionBackward:
    return "attention_backward";
  case ManifestOp::FFN:
    return "ffn";
  case ManifestOp::Block:
    return "block";
  case ManifestOp::BlockBackward:
    return "block_backward";
  case ManifestOp::Custom:
    return "custom";
  }
  return "?";
}

int64_t ManifestBuffer::numElements() const {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

//===----------------------------------------------------------------------===//
// Manifest validation
//===----------------------------------------------------------------------===//

namespace {

/// A value as messages quote it: numbers as exact integers where they are
/// one (8.0 reads "8"), else with 17 significant digits; anything else as
/// compact JSON.
std::string showValue(const Json &value) {
  if (!value.is_number())
    return jsonText(value);
  if (std::optional<int64_t> integer = jsonInteger(value))
    return std::to_string(*integer);
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value.get<double>());
  return text;
}

/// "7", "1.5", "true", "null", "string \"8\"", "an array", "an object": how a
/// value that has the wrong type or range is shown in a message.
std::string describeValue(const Json &value) {
  if (value.is_string())
    return "string " + showValue(value);
  if (value.is_array())
    return "an array";
  if (value.is_object())
    return "an object";
  return showValue(value);
}

std::string member(const std::string &path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string &path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string joinNames(std::initializer_list<const char *> names) {
  std::string result;
  size_t i = 0;
  for (const char *name : names) {
    if (i > 0)
      result += i + 1 == names.size() ? " or " : ", ";
    result += name;
    ++i;
  }
  return result;
}

/// "[2, 8, 1024, 64]".
std::string formatShape(const std::vector<int64_t> &shape) {
  std::string result = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    result += (i ? ", " : "") + std::to_string(shape[i]);
  return result + "]";
}

/// Buffers stay below 2^62 bytes, so products of their sizes never overflow
/// int64_t.
constexpr int64_t kMaxBufferBytes = int64_t(1) << 62;

/// 4 KiB of kernel parameters of 8 bytes each.
constexpr size_t kMaxLaunchArgs = 512;

/// TMA's limits: tensor rank and elements per box dimension.
constexpr size_t kMaxTensorMapRank = 5;
constexpr int64_t kMaxTensorMapBox = 256;

/// Reads a JSON document into a Manifest, stopping at the first problem.
class ManifestReader {
public:
  explicit ManifestReader(Manifest &manifest) : manifest_(manifest) {}

  const std::string &error() const { return error_; }

  bool read(const Json &root) {
    if (!root.is_object())
      return fail("manifest", std::string("expected a JSON object, got ") +
                                  describeValue(root));
    const Json *version = jsonMember(root, "bpt_manifest_version");
    if (!version)
      return fail("bpt_manifest_version",
                  "missing (is this a bpt kernel manifest?)");
    std::optional<int64_t> versionNumber = jsonInteger(*version);
    if (!versionNumber)
      return fail("bpt_manifest_version",
                  "expected an integer, got " + describeValue(*version));
    static_assert(Manifest::kMinVersion + 1 == Manifest::kVersion,
                  "update the message below");
    if (*versionNumber < Manifest::kMinVersion ||
        *versionNumber > Manifest::kVersion)
      return fail("bpt_manifest_version",
                  "version " + std::to_string(*versionNumber) +
                      " is not supported (this runtime reads versions " +
                      std::to_string(Manifest::kMinVersion) + " and " +
                      std::to_string(Manifest::kVersion) + ")");
    manifest_.version = int(*versionNumber);
    if (!checkFields(root, "",
                     {"bpt_manifest_version", "ptx", "chip", "features", "op",
                      "options", "buffers", "tensor_maps", "launches"}))
      return false;

    if (!readString(root, "", "ptx", /*required=*/true, manifest_.ptx))
      return false;
    if (!checkPTXPath(manifest_.ptx))
      return false;
    if (!readString(root, "", "chip", /*required=*/true, manifest_.chip))
      return false;
    if (!readString(root, "", "features", /*required=*/false,
                    manifest_.features, /*allowEmpty=*/true))
      return false;
    // The back end's chips and PTX versions (what bpt-compile accepts).
    if (std::optional<std::string> why = bpt::checkChipAndFeatures(
            manifest_.chip, manifest_.features, "chip", "features"))
      return fail(why->substr(0, why->find(':')),
                  why->substr(why->find(':') + 2));
    std::string op;
    if (!readString(root, "", "op", /*required=*/true, op))
      return false;
    std::optional<ManifestOp> parsed = parseManifestOp(op);
    if (!parsed)
      return fail("op", "unknown op \"" + op +
                            "\" (expected attention, attention_lse, "
                            "attention_grad, attention_backward, ffn, block, "
                            "block_backward or custom)");
    manifest_.op = *parsed;

    if (!readOptions(root))
      return false;
    if (!readBuffers(root))
      return false;
    if (!readTensorMaps(root))
      return false;
    if (!readLaunches(root))
      return false;
    return checkOutputsWritten();
  }

private:
  bool fail(const std::string &path, const std::string &message) {
    error_ = path + ": " + message;
    return false;
  }

  /// The PTX file must be in the manifest's folder or below it: an absolute
  /// path or ".." would let a manifest make bpt-run read any file.
  bool checkPTXPath(const std::string &ptx) {
    for (char c : ptx)
      if (static_cast<unsigned char>(c) < 0x20 || c == '\\')
        return fail("ptx", "\"" + jsonText(Json(ptx)) +
                               "\" has a control character or backslash");
    if (ptx[0] == '/')
      return fail("ptx", "\"" + ptx +
                             "\" is an absolute path; expected a file name "
                             "relative to the manifest's folder");
    size_t start = 0;
    while (start <= ptx.size()) {
      size_t slash = std::min(ptx.find('/', start), ptx.size());
      std::string part = ptx.substr(start, slash - start);
      if (part == "..")
        return fail("ptx", "\"" + ptx +
                               "\" leaves the manifest's folder (\"..\"); "
                               "expected a file in it or below it");
      if (part.empty() || part == ".")
        return fail("ptx", "\"" + ptx + "\" has an empty or \".\" part");
      start = slash + 1;
    }
    return true;
  }

  bool checkFields(const Json &object, const std::string &path,
                   std::initializer_list<const char *> known) {
    for (const auto &field : object.items()) {
      const std::string &key = field.key();
      bool found = false;
      for (const char *name : known)
        found = found || key == name;
      if (!found)
        return fail(member(path, key),
                    "unknown field (expected " + joinNames(known) + ")");
    }
    return true;
  }

  const Json *require(const Json &object, const std::string &path,
                      const char *key) {
    const Json *value = jsonMember(object, key);
    if (!value)
      fail(member(path, key), "missing");
    return value;
  }

  bool readString(const Json &object, const std::string &path, const char *key,
                  bool required, std::string &result, bool allowEmpty = false) {
    const Json *value = jsonMember(object, key);
    if (!value) {
      if (required)
        return fail(member(path, key), "missing");
      return true;
    }
    if (!value->is_string())
      return fail(member(path, key),
                  "expected a string, got " + describeValue(*value));
    if (!allowEmpty && value->get_ref<const std::string &>().empty())
      return fail(member(path, key), "must not be empty");
    result = value->get_ref<const std::string &>();
    return true;
  }

  /// An integer in [minimum, maximum].
  bool readInteger(const Json &value, const std::string &path, int64_t minimum,
                   int64_t maximum, const char *expected, int64_t &result) {
    std::optional<int64_t> integer = jsonInteger(value);
    if (!integer || *integer < minimum)
      return fail(path, std::string("expected ") + expected + ", got " +
                            describeValue(value));
    if (*integer > maximum)
      return fail(path, std::to_string(*integer) + " exceeds the limit of " +
                            std::to_string(maximum));
    result = *integer;
    return true;
  }

  bool readOptions(const Json &root) {
    const Json *options = jsonMember(root, "options");
    if (!options)
      return true;
    if (!options->is_object())
      return fail("options",
                  "expected an object, got " + describeValue(*options));
    for (const auto &[key, value] : options->items()) {
      if (!value.is_number() && !value.is_string() && !value.is_boolean())
        return fail(member("options", key),
                    "expected a number, string or boolean, got " +
                        describeValue(value));
    }
    manifest_.options = *options;
    return true;
  }

  bool readBuffers(const Json &root) {
    const Json *buffers = require(root, "", "buffers");
    if (!buffers)
      return false;
    if (!buffers->is_array())
      return fail("buffers",
                  "expected an array, got " + describeValue(*buffers));
    if (buffers->size() == 0)
      return fail("buffers", "expected at least one buffer");
    for (size_t i = 0; i < buffers->size(); ++i) {
      ManifestBuffer buffer;
      if (!readBuffer((*buffers)[i], element("buffers", i), buffer))
        return false;
      for (size_t j = 0; j < manifest_.buffers.size(); ++j)
        if (manifest_.buffers[j].name == buffer.name)
          return fail(member(element("buffers", i), "name"),
                      "\"" + buffer.name + "\" is already the name of " +
                          element("buffers", j));
      manifest_.buffers.push_back(std::move(buffer));
    }
    return true;
  }

  bool readBuffer(const Json &value, const std::string &path,
                  ManifestBuffer &buffer) {
    if (!value.is_object())
      return fail(path, "expected an object, got " + describeValue(value));
    if (!checkFields(value, path,
                     {"name", "role", "dtype", "shape", "bytes", "holds"}))
      return false;
    if (!readString(value, path, "name", /*required=*/true, buffer.name))
      return false;

    std::string role;
    if (!readString(value, path, "role", /*required=*/true, role))
      return false;
    if (role == "input")
      buffer.role = BufferRole::Input;
    else if (role == "output")
      buffer.role = BufferRole::Output;
    else if (role == "workspace")
      buffer.role = BufferRole::Workspace;
    else
      return fail(member(path, "role"),
                  "unknown role \"" + role +
                      "\" (expected input, output or workspace)");

    std::string dtype;
    if (!readString(value, path, "dtype", /*required=*/true, dtype))
      return false;
    std::optional<ElementType> type = parseElementType(dtype);
    if (!type)
      return fail(member(path, "dtype"),
                  "unknown dtype \"" + dtype +
                      "\" (expected f32, f16, bf16 or i8)");
    buffer.dtype = *type;

    std::string shapePath = member(path, "shape");
    const Json *shape = require(value, path, "shape");
    if (!shape)
      return false;
    if (!shape->is_array())
      return fail(shapePath, "expected an array of positive integers, got " +
                                 describeValue(*shape));
    if (shape->size() == 0)
      return fail(shapePath, "expected at least one dimension");
    int64_t bytes = elementTypeBytes(buffer.dtype);
    for (size_t i = 0; i < shape->size(); ++i) {
      int64_t dim = 0;
      if (!readInteger((*shape)[i], element(shapePath, i), 1, kMaxBufferBytes,
                       "a positive integer", dim))
        return false;
      if (bytes > kMaxBufferBytes / dim)
        return fail(shapePath, "the buffer is too large (2^62 bytes or more)");
      bytes *= dim;
      buffer.shape.push_back(dim);
    }

    const Json *bytesValue = require(value, path, "bytes");
    if (!bytesValue)
      return false;
    if (!readInteger(*bytesValue, member(path, "bytes"), 1, kMaxBufferBytes,
                     "a positive integer", buffer.bytes))
      return false;
    if (buffer.bytes != bytes)
      return fail(member(path, "bytes"),
                  std::to_string(buffer.bytes) + " does not match shape " +
                      formatShape(buffer.shape) + " of " + dtype +
                      ", which is " + std::to_string(bytes) + " bytes");
    if (const Json *holds = jsonMember(value, "holds"))
      return readHolds(*holds, member(path, "holds"), buffer);
    return true;
  }

  /// A workspace's "holds": [{"name": ..., "bytes": ...}, ...], each no
  /// larger than the slot.
  bool readHolds(const Json &holds, const std::string &path,
                 ManifestBuffer &buffer) {
    if (buffer.role != BufferRole::Workspace)
      return fail(path, "only a workspace lists what it holds");
    if (!holds.is_array())
      return fail(path, "expected an array, got " + describeValue(holds));
    for (size_t i = 0; i < holds.size(); ++i) {
      std::string at = element(path, i);
      if (!holds[i].is_object())
        return fail(at, "expected an object, got " + describeValue(holds[i]));
      if (!checkFields(holds[i], at, {"name", "bytes", "byte_offset"}))
        return false;
      std::string name;
      int64_t bytes = 0, offset = 0;
      if (!readString(holds[i], at, "name", /*required=*/true, name))
        return false;
      const Json *bytesValue = require(holds[i], at, "bytes");
      if (!bytesValue ||
          !readInteger(*bytesValue, member(at, "bytes"), 1, buffer.bytes,
                       "a positive integer", bytes))
        return false;
      // A workspace packed as an arena holds each buffer at an offset.
      if (const Json *offsetValue = jsonMember(holds[i], "byte_offset")) {
        std::string offsetPath = member(at, "byte_offset");
        if (!readInteger(*offsetValue, offsetPath, 0, buffer.bytes - bytes,
                         "a non-negative integer with the held bytes inside "
                         "the workspace",
                         offset))
          return false;
        if (offset % 16 != 0)
          return fail(offsetPath,
                      std::to_string(offset) + " is not a multiple of 16");
      }
      buffer.holds.emplace_back(std::move(name), bytes);
    }
    return true;
  }

  /// Reads a string member that must be one of `names` and returns its
  /// position there.
  bool readChoice(const Json &object, const std::string &path, const char *key,
                  bool required, std::initializer_list<const char *> names,
                  int &result) {
    std::string text;
    if (!readString(object, path, key, required, text))
      return false;
    if (!jsonMember(object, key))
      return true;
    int i = 0;
    for (const char *name : names) {
      if (text == name) {
        result = i;
        return true;
      }
      ++i;
    }
    return fail(member(path, key), "unknown value \"" + text + "\" (expected " +
                                       joinNames(names) + ")");
  }

  /// Reads 1 to kMaxTensorMapRank integers in [1, maximum] into `dims`.
  bool readTensorMapDims(const Json &object, const std::string &path,
                         const char *key, int64_t maximum,
                         std::vector<int64_t> &dims) {
    std::string dimsPath = member(path, key);
    const Json *value = require(object, path, key);
    if (!value)
      return false;
    if (!value->is_array())
      return fail(dimsPath, "expected an array of positive integers, got " +
                                describeValue(*value));
    if (value->size() < 1 || value->size() > kMaxTensorMapRank)
      return fail(dimsPath,
                  "expected 1 to " + std::to_string(kMaxTensorMapRank) +
                      " dimensions, got " + std::to_string(value->size()));
    for (size_t i = 0; i < value->size(); ++i) {
      int64_t dim = 0;
      if (!readInteger((*value)[i], element(dimsPath, i), 1, maximum,
                       "a positive integer", dim))
        return false;
      dims.push_back(dim);
    }
    return true;
  }

  /// buffers[i] ("name"), as messages show a buffer.
  std::string describeBuffer(size_t i) const {
    return element("buffers", i) + " (\"" + manifest_.buffers[i].name + "\")";
  }

  /// An index in [0, count) of a `noun` ("buffer", "tensor map"); `expected`
  /// describes a valid value for the message of one of the wrong type.
  bool readIndex(const Json &value, const std::string &path, size_t count,
                 const char *noun, const std::string &expected,
                 size_t &result) {
    std::optional<int64_t> index = jsonInteger(value);
    if (!index || *index < 0)
      return fail(path,
                  "expected " + expected + ", got " + describeValue(value));
    if (uint64_t(*index) >= count)
      return fail(path, "index " + std::to_string(*index) + " out of range (" +
                            std::to_string(count) + " " + noun +
                            (count == 1 ? ")" : "s)"));
    result = size_t(*index);
    return true;
  }

  /// The optional "byte_offset" of `object` into buffers[bufferIndex]: a
  /// multiple of 16 (so that addresses keep TMA's and vector accesses'
  /// alignment) below the buffer's size.
  bool readByteOffset(const Json &object, const std::string &path,
                      size_t bufferIndex, int64_t &offset) {
    const Json *value = jsonMember(object, "byte_offset");
    if (!value)
      return true;
    std::string offsetPath = member(path, "byte_offset");
    if (!readInteger(*value, offsetPath, 0, std::numeric_limits<int64_t>::max(),
                     "a non-negative integer (bytes)", offset))
      return false;
    if (offset % 16 != 0)
      return fail(offsetPath,
                  std::to_string(offset) + " is not a multiple of 16");
    int64_t bytes = manifest_.buffers[bufferIndex].bytes;
    if (offset >= bytes)
      return fail(offsetPath, std::to_string(offset) + " is not inside " +
                                  describeBuffer(bufferIndex) + ", which is " +
                                  std::to_string(bytes) + " bytes");
    return true;
  }

  bool readTensorMaps(const Json &root) {
    const Json *maps = jsonMember(root, "tensor_maps");
    if (!maps)
      return true;
    if (manifest_.version < 2)
      return fail("tensor_maps", "needs bpt_manifest_version 2 (this manifest "
                                 "is version " +
                                     std::to_string(manifest_.version) + ")");
    if (!maps->is_array())
      return fail("tensor_maps",
                  "expected an array, got " + describeValue(*maps));
    for (size_t i = 0; i < maps->size(); ++i) {
      ManifestTensorMap map;
      if (!readTensorMap((*maps)[i], element("tensor_maps", i), map))
        return false;
      manifest_.tensorMaps.push_back(std::move(map));
    }
    return true;
  }

  /// Checks what cuTensorMapEncodeTiled would reject that the manifest alone
  /// decides, so that a bad map fails here, with its field, not at run time.
  bool readTensorMap(const Json &value, const std::string &path,
                     ManifestTensorMap &map) {
    if (!value.is_object())
      return fail(path, "expected an object, got " + describeValue(value));
    if (!checkFields(value, path,
                     {"buffer", "byte_offset", "dtype", "shape", "box",
                      "swizzle", "l2_promotion", "oob_fill"}))
      return false;

    const Json *bufferValue = require(value, path, "buffer");
    if (!bufferValue)
      return false;
    if (!readIndex(*bufferValue, member(path, "buffer"),
                   manifest_.buffers.size(), "buffer",
                   "a buffer index (a non-negative integer)", map.buffer))
      return false;
    const ManifestBuffer &buffer = manifest_.buffers[map.buffer];
    std::string bufferName = describeBuffer(map.buffer);
    if (!readByteOffset(value, path, map.buffer, map.byteOffset))
      return false;

    int dtype = 0;
    if (!readChoice(value, path, "dtype", /*required=*/true,
                    {"f32", "f16", "bf16"}, dtype))
      return false;
    const ElementType dtypes[] = {ElementType::F32, ElementType::F16,
                                  ElementType::BF16};
    map.dtype = dtypes[dtype];
    // An i8 buffer is untyped memory (a workspace): any dtype views it.
    if (buffer.dtype != ElementType::I8 && map.dtype != buffer.dtype)
      return fail(member(path, "dtype"),
                  std::string(elementTypeName(map.dtype)) +
                      " does not match the dtype of " + bufferName + ", " +
                      elementTypeName(buffer.dtype) +
                      " (only an i8 buffer takes any dtype)");
    int64_t elementBytes = elementTypeBytes(map.dtype);

    // TMA's limit on each global dimension.
    const int64_t kMaxGlobalDim = int64_t(1) << 32;
    if (!readTensorMapDims(value, path, "shape", kMaxGlobalDim, map.shape))
      return false;
    std::string shapePath = member(path, "shape");
    // The tensor must fit in the buffer after the offset. The product stops
    // growing once past the elements that fit, so it cannot overflow.
    int64_t room = buffer.bytes - map.byteOffset;
    int64_t fits = room / elementBytes;
    int64_t elements = 1;
    bool tooMany = false;
    for (int64_t dim : map.shape) {
      tooMany = tooMany || elements > fits / dim;
      if (!tooMany)
        elements *= dim;
    }
    if (tooMany) {
      // The tensor's size for the message, unless it is absurd.
      int64_t bytes = elementBytes;
      for (int64_t dim : map.shape)
        bytes = bytes > kMaxBufferBytes / dim ? kMaxBufferBytes : bytes * dim;
      return fail(shapePath,
                  formatShape(map.shape) + " of " + elementTypeName(map.dtype) +
                      " is " +
                      (bytes >= kMaxBufferBytes ? "2^62 or more"
                                                : std::to_string(bytes)) +
                      " bytes, but " + bufferName + " has " +
                      std::to_string(room) + " bytes" +
                      (map.byteOffset ? " after byte_offset " +
                                            std::to_string(map.byteOffset)
                                      : std::string()));
    }
    // The byte stride of dimension i is the product of the inner dimensions
    // times the element size; TMA needs each to be a multiple of 16.
    int64_t stride = elementBytes;
    for (size_t i = map.shape.size(); i-- > 1;) {
      stride *= map.shape[i];
      if (stride % 16 != 0)
        return fail(element(shapePath, i - 1),
                    "its byte stride (the inner dimensions times " +
                        std::to_string(elementBytes) + " bytes) is " +
                        std::to_string(stride) +
                        ", not a multiple of 16 as TMA needs");
    }

    if (!readTensorMapDims(value, path, "box", kMaxTensorMapBox, map.box))
      return false;
    std::string boxPath = member(path, "box");
    if (map.box.size() != map.shape.size())
      return fail(boxPath, "expected " + std::to_string(map.shape.size()) +
                               " dimensions (as many as shape), got " +
                               std::to_string(map.box.size()));

    int swizzle = 0;
    if (!readChoice(value, path, "swizzle", /*required=*/true,
                    {"none", "32b", "64b", "128b"}, swizzle))
      return false;
    map.swizzleBytes = swizzle == 0 ? 0 : 16 << swizzle;
    size_t inner = map.box.size() - 1;
    int64_t innerBytes = map.box[inner] * elementBytes;
    std::string innerDescription = std::to_string(map.box[inner]) +
                                   " elements of " +
                                   elementTypeName(map.dtype) + " are " +
                                   std::to_string(innerBytes) + " bytes";
    if (innerBytes % 16 != 0)
      return fail(element(boxPath, inner),
                  innerDescription + ", not a multiple of 16");
    if (map.swizzleBytes && innerBytes > map.swizzleBytes)
      return fail(element(boxPath, inner),
                  innerDescription + ", more than the swizzle span of " +
                      std::to_string(map.swizzleBytes) + " bytes");

    int l2Promotion = 0;
    if (!readChoice(value, path, "l2_promotion", /*required=*/false,
                    {"none", "64b", "128b", "256b"}, l2Promotion))
      return false;
    map.l2PromotionBytes = l2Promotion == 0 ? 0 : 32 << l2Promotion;
    int oobFill = 0;
    if (!readChoice(value, path, "oob_fill", /*required=*/false,
                    {"zero", "nan"}, oobFill))
      return false;
    map.oobNaN = oobFill == 1;
    return true;
  }

  /// Reads 1 to 3 positive dimensions into `dims`, checking each against
  /// `limits`.
  bool readDims(const Json &launch, const std::string &path, const char *key,
                const int64_t limits[3], Dim3 &dims) {
    std::string dimsPath = member(path, key);
    const Json *value = require(launch, path, key);
    if (!value)
      return false;
    if (!value->is_array())
      return fail(dimsPath, "expected an array of 1 to 3 positive integers, "
                            "got " +
                                describeValue(*value));
    if (value->size() < 1 || value->size() > 3)
      return fail(dimsPath, "expected 1 to 3 dimensions, got " +
                                std::to_string(value->size()));
    uint32_t *fields[3] = {&dims.x, &dims.y, &dims.z};
    for (size_t i = 0; i < 3; ++i) {
      int64_t dim = 1;
      if (i < value->size() &&
          !readInteger((*value)[i], element(dimsPath, i), 1, limits[i],
                       "a positive integer", dim))
        return false;
      *fields[i] = uint32_t(dim);
    }
    return true;
  }

  bool readLaunches(const Json &root) {
    const Json *launches = require(root, "", "launches");
    if (!launches)
      return false;
    if (!launches->is_array())
      return fail("launches",
                  "expected an array, got " + describeValue(*launches));
    if (launches->size() == 0)
      return fail("launches", "expected at least one launch");
    for (size_t i = 0; i < launches->size(); ++i) {
      ManifestLaunch launch;
      if (!readLaunch((*launches)[i], element("launches", i), launch))
        return false;
      manifest_.launches.push_back(std::move(launch));
    }
    return true;
  }

  bool readLaunch(const Json &value, const std::string &path,
                  ManifestLaunch &launch) {
    if (!value.is_object())
      return fail(path, "expected an object, got " + describeValue(value));
    if (!checkFields(value, path,
                     {"kernel", "grid", "block", "dynamic_shared_memory",
                      "args", "dependent"}))
      return false;
    if (!readString(value, path, "kernel", /*required=*/true, launch.kernel))
      return false;
    // A PTX identifier: what an .entry can be named.
    for (size_t i = 0; i < launch.kernel.size(); ++i) {
      char c = launch.kernel[i];
      bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '_' || c == '$';
      if (!letter && !(i > 0 && c >= '0' && c <= '9'))
        return fail(member(path, "kernel"),
                    jsonText(Json(launch.kernel)) +
                        " is not a PTX identifier (letters, digits, _ and $, "
                        "not starting with a digit)");
    }

    // CUDA's limits for compute capability 3.0 and later.
    const int64_t gridLimits[3] = {0x7fffffff, 65535, 65535};
    const int64_t blockLimits[3] = {1024, 1024, 64};
    if (!readDims(value, path, "grid", gridLimits, launch.grid) ||
        !readDims(value, path, "block", blockLimits, launch.block))
      return false;
    if (launch.block.count() > 1024)
      return fail(member(path, "block"),
                  std::to_string(launch.block.x) + "x" +
                      std::to_string(launch.block.y) + "x" +
                      std::to_string(launch.block.z) + " is " +
                      std::to_string(launch.block.count()) +
                      " threads per block, more than 1024");

    if (const Json *shared = jsonMember(value, "dynamic_shared_memory")) {
      int64_t bytes = 0;
      if (!readInteger(*shared, member(path, "dynamic_shared_memory"), 0,
                       0x7fffffff, "a non-negative integer (bytes)", bytes))
        return false;
      // The chip's opt-in limit per block (the compiler sizes tiles by it);
      // the device's own limit is checked again at launch.
      int64_t limit = bpt::getChipInfo(manifest_.chip).sharedMemoryPerBlock;
      if (bytes > limit)
        return fail(member(path, "dynamic_shared_memory"),
                    std::to_string(bytes) + " bytes exceeds the " +
                        std::to_string(limit) +
                        " bytes of shared memory a block of " + manifest_.chip +
                        " can have");
      launch.dynamicSharedMemory = uint32_t(bytes);
    }

    if (const Json *dependent = jsonMember(value, "dependent")) {
      if (!dependent->is_boolean())
        return fail(member(path, "dependent"),
                    "expected true or false, got " + describeValue(*dependent));
      launch.dependent = dependent->get<bool>();
    }

    std::string argsPath = member(path, "args");
    const Json *args = require(value, path, "args");
    if (!args)
      return false;
    if (!args->is_array())
      return fail(argsPath, "expected an array of buffer indices, got " +
                                describeValue(*args));
    // CUDA passes at most 4 KiB of parameters; ours take 4 or 8 bytes.
    if (args->size() > kMaxLaunchArgs)
      return fail(argsPath, std::to_string(args->size()) +
                                " arguments, more than the limit of " +
                                std::to_string(kMaxLaunchArgs));
    for (size_t i = 0; i < args->size(); ++i) {
      ManifestArg arg;
      if (!readArg((*args)[i], element(argsPath, i), arg))
        return false;
      launch.args.push_back(arg);
    }
    return true;
  }

  /// A buffer index, or (version 2) {"buffer": index, "byte_offset": bytes}
  /// or {"tensor_map": index}.
  bool readArg(const Json &value, const std::string &path, ManifestArg &arg) {
    size_t numBuffers = manifest_.buffers.size();
    if (!value.is_object())
      return readIndex(value, path, numBuffers, "buffer",
                       std::string("a buffer index (a non-negative integer)") +
                           (manifest_.version >= 2
                                ? ", {\"buffer\": index, \"byte_offset\": "
                                  "bytes} or {\"tensor_map\": index}"
                                : ""),
                       arg.index);
    if (manifest_.version < 2)
      return fail(path, "argument objects ({\"buffer\": ...} or "
                        "{\"tensor_map\": ...}) need bpt_manifest_version 2 "
                        "(this manifest is version " +
                            std::to_string(manifest_.version) + ")");
    if (!checkFields(value, path, {"buffer", "byte_offset", "tensor_map", "i32"}))
      return false;
    if (const Json *scalar = jsonMember(value, "i32")) {
      if (jsonMember(value, "buffer") || jsonMember(value, "tensor_map") ||
          jsonMember(value, "byte_offset"))
        return fail(path, "an \"i32\" argument takes no other field");
      std::optional<int64_t> v = jsonInteger(*scalar);
      if (!v || *v < INT32_MIN || *v > INT32_MAX)
        return fail(member(path, "i32"),
                    "expected a 32-bit integer, got " + showValue(*scalar));
      arg = ManifestArg::i32(static_cast<int32_t>(*v));
      return true;
    }
    const Json *bufferValue = jsonMember(value, "buffer");
    const Json *mapValue = jsonMember(value, "tensor_map");
    if (bufferValue && mapValue)
      return fail(path, "has both \"buffer\" and \"tensor_map\" (expected "
                        "exactly one)");
    if (!bufferValue && !mapValue)
      return fail(path, "expected \"buffer\", \"tensor_map\" or \"i32\" in "
                        "an argument object");
    if (mapValue) {
      if (jsonMember(value, "byte_offset"))
        return fail(member(path, "byte_offset"),
                    "only a buffer argument takes a byte offset (a tensor "
                    "map's goes in its tensor_maps entry)");
      arg.kind = ManifestArg::Kind::TensorMap;
      return readIndex(*mapValue, member(path, "tensor_map"),
                       manifest_.tensorMaps.size(), "tensor map",
                       "a tensor map index (a non-negative integer)",
                       arg.index);
    }
    arg.kind = ManifestArg::Kind::Buffer;
    return readIndex(*bufferValue, member(path, "buffer"), numBuffers, "buffer",
                     "a buffer index (a non-negative integer)", arg.index) &&
           readByteOffset(value, path, arg.index, arg.byteOffset);
  }

  /// An output no launch takes, directly or through a tensor map (a TMA
  /// store), would never be written. Any byte offset counts: launches that
  /// each write a row block of an output together write all of it, which
  /// bpt-run checks (outputs start as NaN).
  bool checkOutputsWritten() {
    for (size_t i = 0; i < manifest_.buffers.size(); ++i) {
      const ManifestBuffer &buffer = manifest_.buffers[i];
      if (buffer.role != BufferRole::Output)
        continue;
      bool used = false;
      for (const ManifestLaunch &launch : manifest_.launches)
        for (const ManifestArg &arg : launch.args)
          used = used ||
                 (arg.kind == ManifestArg::Kind::Buffer && arg.index == i) ||
                 (arg.kind == ManifestArg::Kind::TensorMap &&
                  manifest_.tensorMaps[arg.index].buffer == i);
      if (!used)
        return fail(element("buffers", i),
                    "output \"" + buffer.name +
                        "\" is not an argument of any launch, so nothing "
                        "would write it");
    }
    return true;
  }

  Manifest &manifest_;
  std::string error_;
};

} // namespace

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

Expected<Manifest> Manifest::parse(std::string_view json,
                                   std::string directory) {
  Expected<Json> root = readJson(json);
  if (!root)
    return Status::failure(root.error());
  Manifest manifest;
  manifest.directory = std::move(directory);
  ManifestReader reader(manifest);
  if (!reader.read(*root))
    return Status::failure(reader.error());
  if (Status s = checkManifestOp(manifest); !s)
    return s;
  return manifest;
}

Expected<Manifest> Manifest::load(const std::string &path) {
  // A regular file of sane size: /dev/zero or a FIFO would be read forever.
  struct stat info;
  if (::stat(path.c_str(), &info) != 0)
    return Status::failure("cannot open manifest '" + path +
                           "': " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return Status::failure("manifest '" + path + "' is not a regular file");
  if (info.st_size > kMaxManifestBytes)
    return Status::failure(
        "manifest '" + path + "' is " + std::to_string(info.st_size) +
        " bytes, more than the limit of " + std::to_string(kMaxManifestBytes));
  std::ifstream file(path, std::ios::binary);
  if (!file)
    return Status::failure("cannot open manifest '" + path +
                           "': " + std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad())
    return Status::failure("cannot read manifest '" + path +
                           "': " + std::strerror(errno));
  size_t slash = path.find_last_of('/');
  std::string directory =
      slash == std::string::npos ? "" : path.substr(0, slash == 0 ? 1 : slash);
  Expected<Manifest> manifest = parse(text.str(), directory);
  if (!manifest)
    return Status::failure(path + ": " + manifest.error());
  return manifest;
}

std::string Manifest::ptxPath() const {
  if (directory.empty() || (!ptx.empty() && ptx[0] == '/'))
    return ptx;
  if (directory.back() == '/')
    return directory + ptx;
  return directory + "/" + ptx;
}

const ManifestBuffer *Manifest::findBuffer(std::string_view name) const {
  for (const ManifestBuffer &buffer : buffers)
    if (buffer.name == name)
      return &buffer;
  return nullptr;
}

bool Manifest::hasOption(std::string_view key) const {
  return jsonMember(options, key) != nullptr;
}

std::optional<int64_t> Manifest::getIntOption(std::string_view key) const {
  const Json *value = jsonMember(options, key);
  return value ? jsonInteger(*value) : std::nullopt;
}

std::optional<double> Manifest::getNumberOption(std::string_view key) const {
  const Json *value = jsonMember(options, key);
  if (!value || !value->is_number())
    return std::nullopt;
  return value->get<double>();
}

std::optional<std::string>
Manifest::getStringOption(std::string_view key) const {
  const Json *value = jsonMember(options, key);
  if (!value || !value->is_string())
    return std::nullopt;
  return value->get<std::string>();
}

std::optional<bool> Manifest::getBoolOption(std::string_view key) const {
  const Json *value = jsonMember(options, key);
  if (!value || !value->is_boolean())
    return std::nullopt;
  return value->get<bool>();
}
