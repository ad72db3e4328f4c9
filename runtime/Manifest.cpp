//===- Manifest.cpp - kernel-set manifest and JSON reader -----------------===//
//
// Part of the bpt project: a compiler for Blockwise Parallel Transformers.
//
//===----------------------------------------------------------------------===//

#include "bpt/Runtime/Manifest.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>

using namespace bpt::rt;

//===----------------------------------------------------------------------===//
// JsonValue
//===----------------------------------------------------------------------===//

JsonValue JsonValue::makeBool(bool value) {
  JsonValue result;
  result.kind_ = Kind::Bool;
  result.bool_ = value;
  return result;
}

JsonValue JsonValue::makeNumber(double value, bool isInteger, int64_t integer) {
  JsonValue result;
  result.kind_ = Kind::Number;
  result.number_ = value;
  result.isInteger_ = isInteger;
  result.integer_ = isInteger ? integer : 0;
  return result;
}

JsonValue JsonValue::makeString(std::string value) {
  JsonValue result;
  result.kind_ = Kind::String;
  result.string_ = std::move(value);
  return result;
}

JsonValue JsonValue::makeArray() {
  JsonValue result;
  result.kind_ = Kind::Array;
  return result;
}

JsonValue JsonValue::makeObject() {
  JsonValue result;
  result.kind_ = Kind::Object;
  return result;
}

const char *JsonValue::kindName() const {
  switch (kind_) {
  case Kind::Null:
    return "null";
  case Kind::Bool:
    return "boolean";
  case Kind::Number:
    return "number";
  case Kind::String:
    return "string";
  case Kind::Array:
    return "array";
  case Kind::Object:
    return "object";
  }
  return "?";
}

std::optional<int64_t> JsonValue::getInteger() const {
  if (kind_ != Kind::Number)
    return std::nullopt;
  if (isInteger_)
    return integer_;
  // 2^53: beyond it a double no longer holds every integer exactly.
  if (std::nearbyint(number_) == number_ &&
      std::fabs(number_) < 9007199254740992.0)
    return int64_t(number_);
  return std::nullopt;
}

const JsonValue *JsonValue::find(std::string_view key) const {
  for (size_t i = 0; i < keys_.size(); ++i)
    if (keys_[i] == key)
      return &items_[i];
  return nullptr;
}

void JsonValue::push(JsonValue value) { items_.push_back(std::move(value)); }

bool JsonValue::insert(std::string key, JsonValue value) {
  if (find(key))
    return false;
  keys_.push_back(std::move(key));
  items_.push_back(std::move(value));
  return true;
}

namespace {

void appendQuoted(std::string &out, const std::string &text) {
  out += '"';
  for (unsigned char c : text) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20) {
        char escape[8];
        std::snprintf(escape, sizeof(escape), "\\u%04x", unsigned(c));
        out += escape;
      } else {
        out += char(c);
      }
    }
  }
  out += '"';
}

void appendJson(std::string &out, const JsonValue &value) {
  switch (value.kind()) {
  case JsonValue::Kind::Null:
    out += "null";
    return;
  case JsonValue::Kind::Bool:
    out += value.getBool() ? "true" : "false";
    return;
  case JsonValue::Kind::Number: {
    if (std::optional<int64_t> integer = value.getInteger()) {
      out += std::to_string(*integer);
      return;
    }
    char text[32];
    std::snprintf(text, sizeof(text), "%.17g", value.getNumber());
    out += text;
    return;
  }
  case JsonValue::Kind::String:
    appendQuoted(out, value.getString());
    return;
  case JsonValue::Kind::Array:
    out += '[';
    for (size_t i = 0; i < value.size(); ++i) {
      if (i)
        out += ',';
      appendJson(out, value[i]);
    }
    out += ']';
    return;
  case JsonValue::Kind::Object:
    out += '{';
    for (size_t i = 0; i < value.size(); ++i) {
      if (i)
        out += ',';
      appendQuoted(out, value.key(i));
      out += ':';
      appendJson(out, value[i]);
    }
    out += '}';
    return;
  }
}

} // namespace

std::string JsonValue::toString() const {
  std::string result;
  appendJson(result, *this);
  return result;
}

//===----------------------------------------------------------------------===//
// JSON parser
//===----------------------------------------------------------------------===//

namespace {

/// A recursive-descent parser of RFC 8259 JSON. Each parse function leaves
/// `pos` after what it parsed, or records the first error and returns false.
class JsonParser {
public:
  explicit JsonParser(std::string_view text) : text_(text) {}

  bool parseDocument(JsonValue &result) {
    skipWhitespace();
    if (!parseValue(result))
      return false;
    skipWhitespace();
    if (pos_ != text_.size())
      return fail(pos_,
                  "unexpected " + describeAt(pos_) + " after the JSON value");
    return true;
  }

  const std::string &error() const { return error_; }

private:
  static constexpr int kMaxDepth = 256;

  /// "line 3, column 7 (byte 42)"; lines and columns count from 1, columns
  /// and the offset in bytes.
  std::string location(size_t offset) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return "line " + std::to_string(line) + ", column " +
           std::to_string(column) + " (byte " + std::to_string(offset) + ")";
  }

  bool fail(size_t offset, const std::string &message) {
    if (error_.empty())
      error_ = location(offset) + ": " + message;
    return false;
  }

  /// "'x'", "end of input" or "byte 0x07".
  std::string describeAt(size_t offset) const {
    if (offset >= text_.size())
      return "end of input";
    unsigned char c = text_[offset];
    if (c >= 0x20 && c < 0x7f)
      return std::string("'") + char(c) + "'";
    char text[16];
    std::snprintf(text, sizeof(text), "byte 0x%02x", unsigned(c));
    return text;
  }

  bool atEnd() const { return pos_ >= text_.size(); }
  char peek() const { return atEnd() ? '\0' : text_[pos_]; }

  void skipWhitespace() {
    while (!atEnd() && (peek() == ' ' || peek() == '\t' || peek() == '\n' ||
                        peek() == '\r'))
      ++pos_;
  }

  bool parseValue(JsonValue &result) {
    if (atEnd())
      return fail(pos_, "expected a value, got end of input");
    switch (peek()) {
    case '{':
      return parseObject(result);
    case '[':
      return parseArray(result);
    case '"': {
      std::string text;
      if (!parseString(text))
        return false;
      result = JsonValue::makeString(std::move(text));
      return true;
    }
    case 't':
    case 'f':
    case 'n':
      return parseLiteral(result);
    case '/':
      return fail(pos_, "comments are not allowed in JSON");
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9'))
        return parseNumber(result);
      return fail(pos_, "expected a value (object, array, string, number, "
                        "true, false or null), got " +
                            describeAt(pos_));
    }
  }

  bool enter(size_t offset) {
    if (++depth_ > kMaxDepth)
      return fail(offset, "nesting deeper than " + std::to_string(kMaxDepth) +
                              " levels");
    return true;
  }

  bool parseObject(JsonValue &result) {
    size_t start = pos_;
    if (!enter(start))
      return false;
    ++pos_; // '{'
    result = JsonValue::makeObject();
    skipWhitespace();
    if (peek() == '}') {
      ++pos_;
      --depth_;
      return true;
    }
    bool afterComma = false;
    while (true) {
      if (peek() != '"') {
        if (afterComma && peek() == '}')
          return fail(pos_, "expected a string key after ',' (trailing commas "
                            "are not allowed), got '}'");
        if (atEnd())
          return fail(pos_, "unterminated object (opened at " +
                                location(start) + ")");
        return fail(pos_, std::string("expected a string key") +
                              (afterComma ? "" : " or '}'") + ", got " +
                              describeAt(pos_));
      }
      size_t keyOffset = pos_;
      std::string key;
      if (!parseString(key))
        return false;
      skipWhitespace();
      if (peek() != ':')
        return fail(pos_, "expected ':' after the key \"" + key + "\", got " +
                              describeAt(pos_));
      ++pos_;
      skipWhitespace();
      JsonValue value;
      if (!parseValue(value))
        return false;
      if (!result.insert(key, std::move(value)))
        return fail(keyOffset, "duplicate key \"" + key + "\" in object");
      skipWhitespace();
      if (peek() == ',') {
        ++pos_;
        skipWhitespace();
        afterComma = true;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        --depth_;
        return true;
      }
      if (atEnd())
        return fail(pos_,
                    "unterminated object (opened at " + location(start) + ")");
      return fail(pos_, "expected ',' or '}' after the value of \"" + key +
                            "\", got " + describeAt(pos_));
    }
  }

  bool parseArray(JsonValue &result) {
    size_t start = pos_;
    if (!enter(start))
      return false;
    ++pos_; // '['
    result = JsonValue::makeArray();
    skipWhitespace();
    if (peek() == ']') {
      ++pos_;
      --depth_;
      return true;
    }
    while (true) {
      if (peek() == ']')
        return fail(pos_, "expected a value after ',' (trailing commas are "
                          "not allowed), got ']'");
      if (atEnd())
        return fail(pos_,
                    "unterminated array (opened at " + location(start) + ")");
      JsonValue element;
      if (!parseValue(element))
        return false;
      result.push(std::move(element));
      skipWhitespace();
      if (peek() == ',') {
        ++pos_;
        skipWhitespace();
        continue;
      }
      if (peek() == ']') {
        ++pos_;
        --depth_;
        return true;
      }
      if (atEnd())
        return fail(pos_,
                    "unterminated array (opened at " + location(start) + ")");
      return fail(pos_, "expected ',' or ']' after an array element, got " +
                            describeAt(pos_));
    }
  }

  /// Reads the 4 hex digits of a \u escape starting at pos_.
  bool parseHex4(unsigned &value) {
    value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = peek();
      unsigned digit;
      if (c >= '0' && c <= '9')
        digit = c - '0';
      else if (c >= 'a' && c <= 'f')
        digit = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        digit = c - 'A' + 10;
      else
        return fail(pos_, "invalid \\u escape: expected 4 hex digits, got " +
                              describeAt(pos_));
      value = value * 16 + digit;
      ++pos_;
    }
    return true;
  }

  static void appendUtf8(std::string &out, unsigned codePoint) {
    if (codePoint < 0x80) {
      out += char(codePoint);
    } else if (codePoint < 0x800) {
      out += char(0xc0 | (codePoint >> 6));
      out += char(0x80 | (codePoint & 0x3f));
    } else if (codePoint < 0x10000) {
      out += char(0xe0 | (codePoint >> 12));
      out += char(0x80 | ((codePoint >> 6) & 0x3f));
      out += char(0x80 | (codePoint & 0x3f));
    } else {
      out += char(0xf0 | (codePoint >> 18));
      out += char(0x80 | ((codePoint >> 12) & 0x3f));
      out += char(0x80 | ((codePoint >> 6) & 0x3f));
      out += char(0x80 | (codePoint & 0x3f));
    }
  }

  bool parseString(std::string &result) {
    size_t start = pos_;
    ++pos_; // '"'
    while (true) {
      if (atEnd())
        return fail(start, "unterminated string");
      unsigned char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) {
        char text[16];
        std::snprintf(text, sizeof(text), "0x%02x", unsigned(c));
        return fail(pos_, std::string("unescaped control character ") + text +
                              " in string (write it as an escape such as "
                              "\\n, or end the string with '\"')");
      }
      if (c != '\\') {
        result += char(c);
        ++pos_;
        continue;
      }
      size_t escapeOffset = pos_;
      ++pos_;
      if (atEnd())
        return fail(start, "unterminated string");
      char escape = text_[pos_++];
      switch (escape) {
      case '"':
        result += '"';
        break;
      case '\\':
        result += '\\';
        break;
      case '/':
        result += '/';
        break;
      case 'b':
        result += '\b';
        break;
      case 'f':
        result += '\f';
        break;
      case 'n':
        result += '\n';
        break;
      case 'r':
        result += '\r';
        break;
      case 't':
        result += '\t';
        break;
      case 'u': {
        unsigned codePoint;
        if (!parseHex4(codePoint))
          return false;
        if (codePoint >= 0xdc00 && codePoint <= 0xdfff)
          return fail(escapeOffset, "invalid \\u escape: unpaired low "
                                    "surrogate in string");
        if (codePoint >= 0xd800 && codePoint <= 0xdbff) {
          if (text_.substr(pos_, 2) != "\\u")
            return fail(escapeOffset, "invalid \\u escape: high surrogate "
                                      "not followed by a low surrogate");
          pos_ += 2;
          unsigned low;
          if (!parseHex4(low))
            return false;
          if (low < 0xdc00 || low > 0xdfff)
            return fail(escapeOffset, "invalid \\u escape: high surrogate "
                                      "not followed by a low surrogate");
          codePoint = 0x10000 + ((codePoint - 0xd800) << 10) + (low - 0xdc00);
        }
        appendUtf8(result, codePoint);
        break;
      }
      default:
        return fail(escapeOffset,
                    "invalid escape '\\" + std::string(1, escape) +
                        "' in string (valid: \\\" \\\\ \\/ \\b \\f \\n \\r "
                        "\\t \\uXXXX)");
      }
    }
  }

  bool isDigit(char c) const { return c >= '0' && c <= '9'; }

  bool parseNumber(JsonValue &result) {
    size_t start = pos_;
    if (peek() == '-')
      ++pos_;
    if (!isDigit(peek()))
      return fail(pos_, "invalid number: expected a digit after '-', got " +
                            describeAt(pos_));
    if (peek() == '0') {
      ++pos_;
      if (isDigit(peek()))
        return fail(start, "invalid number: leading zeros are not allowed");
    } else {
      while (isDigit(peek()))
        ++pos_;
    }
    bool isInteger = true;
    if (peek() == '.') {
      isInteger = false;
      ++pos_;
      if (!isDigit(peek()))
        return fail(pos_, "invalid number: expected a digit after '.', got " +
                              describeAt(pos_));
      while (isDigit(peek()))
        ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      isInteger = false;
      ++pos_;
      if (peek() == '+' || peek() == '-')
        ++pos_;
      if (!isDigit(peek()))
        return fail(pos_, "invalid number: expected a digit in the exponent, "
                          "got " +
                              describeAt(pos_));
      while (isDigit(peek()))
        ++pos_;
    }
    const char *first = text_.data() + start;
    const char *last = text_.data() + pos_;
    double value = 0;
    auto [end, error] = std::from_chars(first, last, value);
    if (error == std::errc::result_out_of_range || !std::isfinite(value))
      return fail(start,
                  "number " + std::string(first, last) + " is out of range");
    if (error != std::errc() || end != last)
      return fail(start, "invalid number " + std::string(first, last));
    int64_t integer = 0;
    if (isInteger) {
      auto [intEnd, intError] = std::from_chars(first, last, integer);
      isInteger = intError == std::errc() && intEnd == last;
    }
    result = JsonValue::makeNumber(value, isInteger, integer);
    return true;
  }

  bool parseLiteral(JsonValue &result) {
    for (std::string_view word : {"true", "false", "null"}) {
      if (text_.substr(pos_, word.size()) != word)
        continue;
      size_t after = pos_ + word.size();
      if (after < text_.size() &&
          ((text_[after] >= 'a' && text_[after] <= 'z') ||
           (text_[after] >= 'A' && text_[after] <= 'Z') ||
           (text_[after] >= '0' && text_[after] <= '9') || text_[after] == '_'))
        break;
      result = word == "true"    ? JsonValue::makeBool(true)
               : word == "false" ? JsonValue::makeBool(false)
                                 : JsonValue();
      pos_ = after;
      return true;
    }
    return fail(pos_, "invalid literal (expected true, false or null)");
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
  std::string error_;
};

} // namespace

Expected<JsonValue> JsonValue::parse(std::string_view text) {
  JsonParser parser(text);
  JsonValue result;
  if (!parser.parseDocument(result))
    return Status::failure(parser.error());
  return result;
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

const char *bpt::rt::manifestOpName(ManifestOp op) {
  switch (op) {
  case ManifestOp::Attention:
    return "attention";
  case ManifestOp::FFN:
    return "ffn";
  case ManifestOp::Block:
    return "block";
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

/// "7", "1.5", "true", "null", "string \"8\"", "an array", "an object": how a
/// value that has the wrong type or range is shown in a message.
std::string describeValue(const JsonValue &value) {
  switch (value.kind()) {
  case JsonValue::Kind::String:
    return "string " + value.toString();
  case JsonValue::Kind::Array:
    return "an array";
  case JsonValue::Kind::Object:
    return "an object";
  default:
    return value.toString();
  }
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

/// TMA's limits: tensor rank and elements per box dimension.
constexpr size_t kMaxTensorMapRank = 5;
constexpr int64_t kMaxTensorMapBox = 256;

/// Reads a JSON document into a Manifest, stopping at the first problem.
class ManifestReader {
public:
  explicit ManifestReader(Manifest &manifest) : manifest_(manifest) {}

  const std::string &error() const { return error_; }

  bool read(const JsonValue &root) {
    if (!root.isObject())
      return fail("manifest", std::string("expected a JSON object, got ") +
                                  describeValue(root));
    const JsonValue *version = root.find("bpt_manifest_version");
    if (!version)
      return fail("bpt_manifest_version",
                  "missing (is this a bpt kernel manifest?)");
    std::optional<int64_t> versionNumber = version->getInteger();
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
    if (!readString(root, "", "chip", /*required=*/true, manifest_.chip))
      return false;
    if (manifest_.chip.compare(0, 3, "sm_") != 0 || manifest_.chip.size() < 5)
      return fail("chip", "expected a chip name such as sm_90a, got \"" +
                              manifest_.chip + "\"");
    if (!readString(root, "", "features", /*required=*/false,
                    manifest_.features, /*allowEmpty=*/true))
      return false;
    std::string op;
    if (!readString(root, "", "op", /*required=*/true, op))
      return false;
    if (op == "attention")
      manifest_.op = ManifestOp::Attention;
    else if (op == "ffn")
      manifest_.op = ManifestOp::FFN;
    else if (op == "block")
      manifest_.op = ManifestOp::Block;
    else if (op == "custom")
      manifest_.op = ManifestOp::Custom;
    else
      return fail("op", "unknown op \"" + op +
                            "\" (expected attention, ffn, block or custom)");

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

  bool checkFields(const JsonValue &object, const std::string &path,
                   std::initializer_list<const char *> known) {
    for (size_t i = 0; i < object.size(); ++i) {
      const std::string &key = object.key(i);
      bool found = false;
      for (const char *name : known)
        found = found || key == name;
      if (!found)
        return fail(member(path, key),
                    "unknown field (expected " + joinNames(known) + ")");
    }
    return true;
  }

  const JsonValue *require(const JsonValue &object, const std::string &path,
                           const char *key) {
    const JsonValue *value = object.find(key);
    if (!value)
      fail(member(path, key), "missing");
    return value;
  }

  bool readString(const JsonValue &object, const std::string &path,
                  const char *key, bool required, std::string &result,
                  bool allowEmpty = false) {
    const JsonValue *value = object.find(key);
    if (!value) {
      if (required)
        return fail(member(path, key), "missing");
      return true;
    }
    if (!value->isString())
      return fail(member(path, key),
                  "expected a string, got " + describeValue(*value));
    if (!allowEmpty && value->getString().empty())
      return fail(member(path, key), "must not be empty");
    result = value->getString();
    return true;
  }

  /// An integer in [minimum, maximum].
  bool readInteger(const JsonValue &value, const std::string &path,
                   int64_t minimum, int64_t maximum, const char *expected,
                   int64_t &result) {
    std::optional<int64_t> integer = value.getInteger();
    if (!integer || *integer < minimum)
      return fail(path, std::string("expected ") + expected + ", got " +
                            describeValue(value));
    if (*integer > maximum)
      return fail(path, std::to_string(*integer) + " exceeds the limit of " +
                            std::to_string(maximum));
    result = *integer;
    return true;
  }

  bool readOptions(const JsonValue &root) {
    const JsonValue *options = root.find("options");
    if (!options)
      return true;
    if (!options->isObject())
      return fail("options",
                  "expected an object, got " + describeValue(*options));
    for (size_t i = 0; i < options->size(); ++i) {
      const JsonValue &value = (*options)[i];
      if (!value.isNumber() && !value.isString() && !value.isBool())
        return fail(member("options", options->key(i)),
                    "expected a number, string or boolean, got " +
                        describeValue(value));
    }
    manifest_.options = *options;
    return true;
  }

  bool readBuffers(const JsonValue &root) {
    const JsonValue *buffers = require(root, "", "buffers");
    if (!buffers)
      return false;
    if (!buffers->isArray())
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

  bool readBuffer(const JsonValue &value, const std::string &path,
                  ManifestBuffer &buffer) {
    if (!value.isObject())
      return fail(path, "expected an object, got " + describeValue(value));
    if (!checkFields(value, path, {"name", "role", "dtype", "shape", "bytes"}))
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
    const JsonValue *shape = require(value, path, "shape");
    if (!shape)
      return false;
    if (!shape->isArray())
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

    const JsonValue *bytesValue = require(value, path, "bytes");
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
    return true;
  }

  /// Reads a string member that must be one of `names` and returns its
  /// position there.
  bool readChoice(const JsonValue &object, const std::string &path,
                  const char *key, bool required,
                  std::initializer_list<const char *> names, int &result) {
    std::string text;
    if (!readString(object, path, key, required, text))
      return false;
    if (!object.find(key))
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
  bool readTensorMapDims(const JsonValue &object, const std::string &path,
                         const char *key, int64_t maximum,
                         std::vector<int64_t> &dims) {
    std::string dimsPath = member(path, key);
    const JsonValue *value = require(object, path, key);
    if (!value)
      return false;
    if (!value->isArray())
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
  bool readIndex(const JsonValue &value, const std::string &path, size_t count,
                 const char *noun, const std::string &expected,
                 size_t &result) {
    std::optional<int64_t> index = value.getInteger();
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
  bool readByteOffset(const JsonValue &object, const std::string &path,
                      size_t bufferIndex, int64_t &offset) {
    const JsonValue *value = object.find("byte_offset");
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

  bool readTensorMaps(const JsonValue &root) {
    const JsonValue *maps = root.find("tensor_maps");
    if (!maps)
      return true;
    if (manifest_.version < 2)
      return fail("tensor_maps", "needs bpt_manifest_version 2 (this manifest "
                                 "is version " +
                                     std::to_string(manifest_.version) + ")");
    if (!maps->isArray())
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
  bool readTensorMap(const JsonValue &value, const std::string &path,
                     ManifestTensorMap &map) {
    if (!value.isObject())
      return fail(path, "expected an object, got " + describeValue(value));
    if (!checkFields(value, path,
                     {"buffer", "byte_offset", "dtype", "shape", "box",
                      "swizzle", "l2_promotion", "oob_fill"}))
      return false;

    const JsonValue *bufferValue = require(value, path, "buffer");
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
  bool readDims(const JsonValue &launch, const std::string &path,
                const char *key, const int64_t limits[3], Dim3 &dims) {
    std::string dimsPath = member(path, key);
    const JsonValue *value = require(launch, path, key);
    if (!value)
      return false;
    if (!value->isArray())
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

  bool readLaunches(const JsonValue &root) {
    const JsonValue *launches = require(root, "", "launches");
    if (!launches)
      return false;
    if (!launches->isArray())
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

  bool readLaunch(const JsonValue &value, const std::string &path,
                  ManifestLaunch &launch) {
    if (!value.isObject())
      return fail(path, "expected an object, got " + describeValue(value));
    if (!checkFields(
            value, path,
            {"kernel", "grid", "block", "dynamic_shared_memory", "args"}))
      return false;
    if (!readString(value, path, "kernel", /*required=*/true, launch.kernel))
      return false;

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

    if (const JsonValue *shared = value.find("dynamic_shared_memory")) {
      int64_t bytes = 0;
      if (!readInteger(*shared, member(path, "dynamic_shared_memory"), 0,
                       0x7fffffff, "a non-negative integer (bytes)", bytes))
        return false;
      launch.dynamicSharedMemory = uint32_t(bytes);
    }

    std::string argsPath = member(path, "args");
    const JsonValue *args = require(value, path, "args");
    if (!args)
      return false;
    if (!args->isArray())
      return fail(argsPath, "expected an array of buffer indices, got " +
                                describeValue(*args));
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
  bool readArg(const JsonValue &value, const std::string &path,
               ManifestArg &arg) {
    size_t numBuffers = manifest_.buffers.size();
    if (!value.isObject())
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
    if (const JsonValue *scalar = value.find("i32")) {
      if (value.find("buffer") || value.find("tensor_map") ||
          value.find("byte_offset"))
        return fail(path, "an \"i32\" argument takes no other field");
      std::optional<int64_t> v = scalar->getInteger();
      if (!v || *v < INT32_MIN || *v > INT32_MAX)
        return fail(member(path, "i32"), "expected a 32-bit integer, got " +
                                             scalar->toString());
      arg = ManifestArg::i32(static_cast<int32_t>(*v));
      return true;
    }
    const JsonValue *bufferValue = value.find("buffer");
    const JsonValue *mapValue = value.find("tensor_map");
    if (bufferValue && mapValue)
      return fail(path, "has both \"buffer\" and \"tensor_map\" (expected "
                        "exactly one)");
    if (!bufferValue && !mapValue)
      return fail(path, "expected \"buffer\", \"tensor_map\" or \"i32\" in "
                        "an argument object");
    if (mapValue) {
      if (value.find("byte_offset"))
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
  Expected<JsonValue> root = JsonValue::parse(json);
  if (!root)
    return Status::failure(root.error());
  Manifest manifest;
  manifest.directory = std::move(directory);
  ManifestReader reader(manifest);
  if (!reader.read(*root))
    return Status::failure(reader.error());
  return manifest;
}

Expected<Manifest> Manifest::load(const std::string &path) {
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
  return options.find(key) != nullptr;
}

std::optional<int64_t> Manifest::getIntOption(std::string_view key) const {
  const JsonValue *value = options.find(key);
  return value ? value->getInteger() : std::nullopt;
}

std::optional<double> Manifest::getNumberOption(std::string_view key) const {
  const JsonValue *value = options.find(key);
  if (!value || !value->isNumber())
    return std::nullopt;
  return value->getNumber();
}

std::optional<std::string>
Manifest::getStringOption(std::string_view key) const {
  const JsonValue *value = options.find(key);
  if (!value || !value->isString())
    return std::nullopt;
  return value->getString();
}

std::optional<bool> Manifest::getBoolOption(std::string_view key) const {
  const JsonValue *value = options.find(key);
  if (!value || !value->isBool())
    return std::nullopt;
  return value->getBool();
}
