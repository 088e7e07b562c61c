#include "errors.h"

#include <string.h>

#include <cctype>

namespace dmthin {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}

std::string ErrnoDescription(int err) {
  std::string text = strerror(err);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(text[0]));
  return text;
}

int ErrnoFromText(const std::string& message) {
  // Longest match wins: "Operation not permitted" must not lose to a
  // shorter text that happens to end the same way.
  int best = 0;
  size_t best_len = 0;
  for (int err = 1; err < 134; err++) {
    const char* text = strerrordesc_np(err);
    if (text == nullptr) continue;
    size_t len = strlen(text);
    if (len == 0 || len > message.size() || len <= best_len) continue;
    if (message.compare(message.size() - len, len, text) == 0) {
      best = err;
      best_len = len;
    }
  }
  return best;
}

Napi::Error SystemError(Napi::Env env, const Failure& failure) {
  std::string code = ErrnoName(failure.err);
  std::string message = code + ": " + ErrnoDescription(failure.err) + ", " + failure.syscall;
  if (!failure.path.empty()) message += " '" + failure.path + "'";
  if (!failure.detail.empty()) message += " (" + failure.detail + ")";

  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -failure.err));
  error.Set("syscall", Napi::String::New(env, failure.syscall));
  if (!failure.path.empty()) error.Set("path", Napi::String::New(env, failure.path));
  if (!failure.detail.empty()) error.Set("detail", Napi::String::New(env, failure.detail));
  return error;
}

}  // namespace dmthin
