// Block device ioctls: size and discard.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <memory>

#include "addon.h"
#include "args.h"
#include "call.h"

namespace dmthin {

namespace {

// size(path): BLKGETSIZE64, the device's size in bytes.
Napi::Value Size(const Napi::CallbackInfo& info) {
  Args args(info, "blockdev.size", 1);
  std::string path = args.Path(0, "path");
  auto size = std::make_shared<uint64_t>(0);
  return StartCall(
      info.Env(), "dmthin:blockdev.size",
      [path, size](CallWorker& w) {
        Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.ok()) return w.FailErrno("open", path);
        if (ioctl(fd.get(), BLKGETSIZE64, size.get()) != 0) w.FailErrno("ioctl(BLKGETSIZE64)", path);
      },
      [size](Napi::Env env) { return Napi::Number::New(env, static_cast<double>(*size)); });
}

// discard(path, offset, length): BLKDISCARD of a byte range.
Napi::Value Discard(const Napi::CallbackInfo& info) {
  Args args(info, "blockdev.discard", 3);
  std::string path = args.Path(0, "path");
  uint64_t offset = args.Uint64(1, "offset");
  uint64_t length = args.Uint64(2, "length");
  return StartCall(info.Env(), "dmthin:blockdev.discard", [path, offset, length](CallWorker& w) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.ok()) return w.FailErrno("open", path);
    uint64_t range[2] = {offset, length};
    if (ioctl(fd.get(), BLKDISCARD, range) != 0) w.FailErrno("ioctl(BLKDISCARD)", path);
  });
}

}  // namespace

void InitBlockdev(Napi::Env env, Napi::Object exports) {
  exports.Set("size", Napi::Function::New(env, Size, "size"));
  exports.Set("discard", Napi::Function::New(env, Discard, "discard"));
}

}  // namespace dmthin
