// ApplyDiff's per-entry filesystem work in one call each, on the calling
// thread: under emulation (the VM) every crossing from JavaScript into
// Node's fs costs more than the syscalls behind it, and a small file took
// eight of them (lstat, unlink, open, write, close, lchown, chmod,
// utimensat). A new file's metadata goes through its descriptor: one path
// lookup per file (the open) instead of four. Paths are raw bytes
// (Buffers), as tar names are; errors are Node-style system errors naming
// the syscall, as Node's own fs throws.
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <string>

#include "addon.h"
#include "args.h"
#include "errors.h"

namespace dmthin {

namespace {

[[noreturn]] void ThrowSyscall(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Failure failure;
  failure.err = err;
  failure.syscall = syscall;
  failure.path = path;
  throw SystemError(env, failure);
}

// A path as raw bytes; its length is the kernel's to judge (ENAMETOOLONG).
std::string PathBytes(const Args& args, size_t index) {
  Napi::Value value = args.info()[index];
  if (!value.IsBuffer()) args.Throw("path must be a Buffer");
  auto buffer = value.As<Napi::Buffer<char>>();
  std::string bytes(buffer.Data(), buffer.Length());
  if (bytes.empty() || bytes[0] != '/') args.Throw("path must be an absolute path");
  if (bytes.find('\0') != std::string::npos) args.Throw("path must not contain NUL bytes");
  return bytes;
}

// removeNonDirSync(path): makes room for a new entry at path: lstat(2),
// then unlink(2) of whatever is there unless it is a directory. Returns
// the st_mode found, 0 when nothing was there (ENOENT, ENOTDIR: as Node's
// lstatSync with throwIfNoEntry false).
Napi::Value RemoveNonDirSync(const Napi::CallbackInfo& info) {
  Args args(info, "apply.removeNonDirSync", 1);
  std::string path = PathBytes(args, 0);
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Napi::Number::New(info.Env(), 0);
    ThrowSyscall(info.Env(), errno, "lstat", path);
  }
  if (!S_ISDIR(st.st_mode) && unlink(path.c_str()) != 0) ThrowSyscall(info.Env(), errno, "unlink", path);
  return Napi::Number::New(info.Env(), st.st_mode);
}

// createFileSync(path, body, uid, gid, mode, atimeSec, atimeNsec,
// mtimeSec, mtimeNsec): a new regular file with the whole body, then its
// owner, mode and times, in that order (chown clears setuid bits, so mode
// comes after it; times last, after the last write), all on the open
// descriptor, which is the file the open created. Opened as Node's 'wx'
// (O_EXCL: never through a symlink or onto something there).
Napi::Value CreateFileSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "apply.createFileSync", 9);
  std::string path = PathBytes(args, 0);
  if (!info[1].IsBuffer()) args.Throw("body must be a Buffer");
  auto body = info[1].As<Napi::Buffer<char>>();
  uint64_t uid = args.Uint64(2, "uid");
  uint64_t gid = args.Uint64(3, "gid");
  uint64_t mode = args.Uint64(4, "mode");
  if (uid > 0xfffffffe || gid > 0xfffffffe || mode > 07777) args.Throw("uid, gid or mode out of range");
  struct timespec times[2];
  for (int i = 0; i < 2; i++) {
    int64_t sec = args.Int64(5 + 2 * i, i == 0 ? "atimeSec" : "mtimeSec");
    int64_t nsec = args.Int64(6 + 2 * i, i == 0 ? "atimeNsec" : "mtimeNsec");
    if (nsec < 0 || nsec > 999999999) args.Throw("nanoseconds must be 0 to 999999999");
    times[i].tv_sec = static_cast<time_t>(sec);
    times[i].tv_nsec = static_cast<long>(nsec);
  }

  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) ThrowSyscall(env, errno, "open", path);
  const char* data = body.Data();
  size_t left = body.Length();
  while (left > 0) {
    ssize_t n = write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      ThrowSyscall(env, err, "write", path);
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  const char* failed = nullptr;
  if (fchown(fd, static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) failed = "fchown";
  else if (fchmod(fd, static_cast<mode_t>(mode)) != 0) failed = "fchmod";
  else if (futimens(fd, times) != 0) failed = "futimens";
  if (failed != nullptr) {
    int err = errno;
    close(fd);
    ThrowSyscall(env, err, failed, path);
  }
  if (close(fd) != 0) ThrowSyscall(env, errno, "close", path);
  return env.Undefined();
}

}  // namespace

void InitApplyOps(Napi::Env env, Napi::Object exports) {
  exports.Set("removeNonDirSync", Napi::Function::New(env, RemoveNonDirSync, "removeNonDirSync"));
  exports.Set("createFileSync", Napi::Function::New(env, CreateFileSync, "createFileSync"));
}

}  // namespace dmthin
