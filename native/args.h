// Argument checking at the JS boundary. Every check throws a TypeError
// that names the function and the argument, so a caller sees exactly what
// was wrong ("dm.create: name must be a string").
#ifndef DMTHIN_ARGS_H_
#define DMTHIN_ARGS_H_

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dmthin {

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* function, size_t required);

  // String rejects non-strings, empty strings and strings holding NUL.
  std::string String(size_t index, const char* what) const;
  // Path is a String that must also be absolute.
  std::string Path(size_t index, const char* what) const;
  // OptionalString is like String but also takes null or undefined, which
  // give has_value == false.
  bool OptionalString(size_t index, const char* what, std::string* out) const;
  // Uint64 takes a non-negative safe integer Number.
  uint64_t Uint64(size_t index, const char* what) const;
  // Int64 takes a safe integer Number of either sign (times before 1970).
  int64_t Int64(size_t index, const char* what) const;
  // Buffer takes a Buffer or a string (as UTF-8).
  std::vector<char> Bytes(size_t index, const char* what) const;
  // Object returns the options object at index, or an empty one when the
  // argument is undefined.
  Napi::Object Options(size_t index) const;

  // Field readers for option objects; a missing field gives the fallback.
  bool BoolField(const Napi::Object& object, const char* key, bool fallback) const;
  std::string StringField(const Napi::Object& object, const char* key) const;

  Napi::Env env() const { return info_.Env(); }
  const Napi::CallbackInfo& info() const { return info_; }
  [[noreturn]] void Throw(const std::string& message) const;

  // CheckedString applies the String rules to any value.
  std::string CheckedString(const Napi::Value& value, const std::string& what) const;
  uint64_t CheckedUint64(const Napi::Value& value, const std::string& what) const;

 private:
  const Napi::CallbackInfo& info_;
  std::string function_;
};

}  // namespace dmthin

#endif  // DMTHIN_ARGS_H_
