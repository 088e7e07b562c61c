#include "args.h"

#include <cmath>

namespace dmthin {

namespace {
constexpr double kMaxSafeInteger = 9007199254740991.0;
}

Args::Args(const Napi::CallbackInfo& info, const char* function, size_t required)
    : info_(info), function_(function) {
  if (info.Length() < required) {
    Throw("expected " + std::to_string(required) + " argument" + (required == 1 ? "" : "s") +
          ", got " + std::to_string(info.Length()));
  }
}

void Args::Throw(const std::string& message) const {
  throw Napi::TypeError::New(info_.Env(), function_ + ": " + message);
}

std::string Args::CheckedString(const Napi::Value& value, const std::string& what) const {
  if (!value.IsString()) Throw(what + " must be a string");
  std::string text = value.As<Napi::String>().Utf8Value();
  if (text.empty()) Throw(what + " must not be empty");
  if (text.find('\0') != std::string::npos) Throw(what + " must not contain NUL bytes");
  return text;
}

uint64_t Args::CheckedUint64(const Napi::Value& value, const std::string& what) const {
  if (!value.IsNumber()) Throw(what + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || number < 0 || number > kMaxSafeInteger || std::floor(number) != number) {
    Throw(what + " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(number);
}

std::string Args::String(size_t index, const char* what) const {
  return CheckedString(info_[index], what);
}

std::string Args::Path(size_t index, const char* what) const {
  std::string path = String(index, what);
  if (path[0] != '/') Throw(std::string(what) + " must be an absolute path");
  if (path.size() >= 4096) Throw(std::string(what) + " is longer than PATH_MAX");
  return path;
}

bool Args::OptionalString(size_t index, const char* what, std::string* out) const {
  Napi::Value value = info_[index];
  if (value.IsUndefined() || value.IsNull()) return false;
  *out = CheckedString(value, what);
  return true;
}

uint64_t Args::Uint64(size_t index, const char* what) const {
  return CheckedUint64(info_[index], what);
}

int64_t Args::Int64(size_t index, const char* what) const {
  Napi::Value value = info_[index];
  if (!value.IsNumber()) Throw(std::string(what) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::floor(number) != number || std::fabs(number) > kMaxSafeInteger) {
    Throw(std::string(what) + " must be a safe integer");
  }
  return static_cast<int64_t>(number);
}

std::vector<char> Args::Bytes(size_t index, const char* what) const {
  Napi::Value value = info_[index];
  if (value.IsBuffer()) {
    auto buffer = value.As<Napi::Buffer<char>>();
    return std::vector<char>(buffer.Data(), buffer.Data() + buffer.Length());
  }
  if (value.IsString()) {
    std::string text = value.As<Napi::String>().Utf8Value();
    return std::vector<char>(text.begin(), text.end());
  }
  Throw(std::string(what) + " must be a Buffer or a string");
}

Napi::Object Args::Options(size_t index) const {
  Napi::Value value = info_[index];
  if (value.IsUndefined() || value.IsNull()) return Napi::Object::New(info_.Env());
  if (!value.IsObject() || value.IsArray()) Throw("options must be an object");
  return value.As<Napi::Object>();
}

bool Args::BoolField(const Napi::Object& object, const char* key, bool fallback) const {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined()) return fallback;
  if (!value.IsBoolean()) Throw(std::string("options.") + key + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::string Args::StringField(const Napi::Object& object, const char* key) const {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined()) return "";
  return CheckedString(value, std::string("options.") + key);
}

}  // namespace dmthin
