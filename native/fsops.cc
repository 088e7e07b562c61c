// Filesystem calls Node lacks: mount, umount2, statfs (with flags), mknod
// and the l-variants of the xattr calls (they never follow a symlink).
// mknodSync, lsetxattrSync and lutimensSync run on the calling thread, for ApplyDiff:
// one call per tar entry, where a thread-pool round trip costs far more
// than the syscall; they take paths and names as raw bytes (Buffers), as
// tar names are.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <fcntl.h>

#include <cmath>

#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "call.h"
#include "errors.h"

namespace dmthin {

namespace {

// Largest value the kernel accepts for one extended attribute.
constexpr size_t kXattrSizeMax = 65536;

// mount(source, target, fstype, flags, data): mount(2).
// source, fstype and data may be null (as for a bind or a remount).
Napi::Value Mount(const Napi::CallbackInfo& info) {
  Args args(info, "fs.mount", 4);
  std::string source, fstype, data;
  bool has_source = args.OptionalString(0, "source", &source);
  std::string target = args.Path(1, "target");
  bool has_fstype = args.OptionalString(2, "fstype", &fstype);
  uint64_t flags = args.Uint64(3, "flags");
  bool has_data = args.OptionalString(4, "data", &data);
  return StartCall(info.Env(), "dmthin:fs.mount", [=](CallWorker& w) {
    if (mount(has_source ? source.c_str() : nullptr, target.c_str(), has_fstype ? fstype.c_str() : nullptr,
              static_cast<unsigned long>(flags), has_data ? data.c_str() : nullptr) != 0) {
      w.FailErrno("mount", target);
    }
  });
}

// umount2(target, flags): umount2(2).
Napi::Value Umount2(const Napi::CallbackInfo& info) {
  Args args(info, "fs.umount2", 1);
  std::string target = args.Path(0, "target");
  uint64_t flags = info.Length() > 1 && !info[1].IsUndefined() ? args.Uint64(1, "flags") : 0;
  return StartCall(info.Env(), "dmthin:fs.umount2", [=](CallWorker& w) {
    if (umount2(target.c_str(), static_cast<int>(flags)) != 0) w.FailErrno("umount2", target);
  });
}

// statfs(path): statfs(2), with the mount flags Node's fs.statfs leaves out.
Napi::Value Statfs(const Napi::CallbackInfo& info) {
  Args args(info, "fs.statfs", 1);
  std::string path = args.Path(0, "path");
  auto st = std::make_shared<struct statfs>();
  return StartCall(
      info.Env(), "dmthin:fs.statfs",
      [path, st](CallWorker& w) {
        if (statfs(path.c_str(), st.get()) != 0) w.FailErrno("statfs", path);
      },
      [st](Napi::Env env) {
        Napi::Object result = Napi::Object::New(env);
        auto set = [&](const char* key, double value) { result.Set(key, Napi::Number::New(env, value)); };
        set("type", static_cast<double>(static_cast<unsigned long>(st->f_type)));
        set("bsize", static_cast<double>(st->f_bsize));
        set("blocks", static_cast<double>(st->f_blocks));
        set("bfree", static_cast<double>(st->f_bfree));
        set("bavail", static_cast<double>(st->f_bavail));
        set("files", static_cast<double>(st->f_files));
        set("ffree", static_cast<double>(st->f_ffree));
        set("namelen", static_cast<double>(st->f_namelen));
        set("frsize", static_cast<double>(st->f_frsize));
        set("flags", static_cast<double>(st->f_flags));
        return result;
      });
}

// mknod(path, mode, major, minor): mknod(2); mode carries the file type
// (S_IFIFO, S_IFCHR, S_IFBLK) and the permission bits.
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Args args(info, "fs.mknod", 2);
  std::string path = args.Path(0, "path");
  uint64_t mode = args.Uint64(1, "mode");
  uint64_t dev_major = info.Length() > 2 ? args.Uint64(2, "major") : 0;
  uint64_t dev_minor = info.Length() > 3 ? args.Uint64(3, "minor") : 0;
  if (mode > 0xffffffff || dev_major > 0xfff || dev_minor > 0xfffff) args.Throw("mode, major or minor out of range");
  return StartCall(info.Env(), "dmthin:fs.mknod", [=](CallWorker& w) {
    dev_t dev = makedev(static_cast<unsigned>(dev_major), static_cast<unsigned>(dev_minor));
    if (mknod(path.c_str(), static_cast<mode_t>(mode), dev) != 0) w.FailErrno("mknod", path);
  });
}

std::string XattrName(const Args& args, size_t index) {
  std::string name = args.String(index, "name");
  if (name.size() > 255) args.Throw("name must be at most 255 bytes");
  return name;
}

// lgetxattr(path, name): the value as a Buffer; ENODATA when absent.
Napi::Value Lgetxattr(const Napi::CallbackInfo& info) {
  Args args(info, "fs.lgetxattr", 2);
  std::string path = args.Path(0, "path");
  std::string name = XattrName(args, 1);
  auto value = std::make_shared<std::vector<char>>();
  return StartCall(
      info.Env(), "dmthin:fs.lgetxattr",
      [path, name, value](CallWorker& w) {
        value->resize(kXattrSizeMax);
        ssize_t len = lgetxattr(path.c_str(), name.c_str(), value->data(), value->size());
        if (len < 0) return w.FailErrno("lgetxattr", path);
        value->resize(static_cast<size_t>(len));
      },
      [value](Napi::Env env) { return Napi::Buffer<char>::Copy(env, value->data(), value->size()); });
}

// lsetxattr(path, name, value, flags): flags 0, XATTR_CREATE or XATTR_REPLACE.
Napi::Value Lsetxattr(const Napi::CallbackInfo& info) {
  Args args(info, "fs.lsetxattr", 3);
  std::string path = args.Path(0, "path");
  std::string name = XattrName(args, 1);
  std::vector<char> value = args.Bytes(2, "value");
  uint64_t flags = info.Length() > 3 && !info[3].IsUndefined() ? args.Uint64(3, "flags") : 0;
  if (value.size() > kXattrSizeMax) args.Throw("value must be at most 65536 bytes");
  return StartCall(info.Env(), "dmthin:fs.lsetxattr", [=](CallWorker& w) {
    if (lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), static_cast<int>(flags)) != 0) {
      w.FailErrno("lsetxattr", path);
    }
  });
}

// llistxattr(path): the attribute names.
Napi::Value Llistxattr(const Napi::CallbackInfo& info) {
  Args args(info, "fs.llistxattr", 1);
  std::string path = args.Path(0, "path");
  auto names = std::make_shared<std::vector<std::string>>();
  return StartCall(
      info.Env(), "dmthin:fs.llistxattr",
      [path, names](CallWorker& w) {
        // The list can grow between the size query and the read; retry then.
        for (int attempt = 0; attempt < 8; attempt++) {
          ssize_t size = llistxattr(path.c_str(), nullptr, 0);
          if (size < 0) return w.FailErrno("llistxattr", path);
          std::vector<char> buffer(static_cast<size_t>(size) + 1);
          ssize_t len = llistxattr(path.c_str(), buffer.data(), buffer.size());
          if (len < 0 && errno == ERANGE) continue;
          if (len < 0) return w.FailErrno("llistxattr", path);
          for (ssize_t start = 0; start < len;) {
            std::string name(buffer.data() + start);
            start += static_cast<ssize_t>(name.size()) + 1;
            if (!name.empty()) names->push_back(name);
          }
          return;
        }
        w.FailWith(ERANGE, "llistxattr", path);
      },
      [names](Napi::Env env) {
        Napi::Array array = Napi::Array::New(env, names->size());
        for (size_t i = 0; i < names->size(); i++) array.Set(i, Napi::String::New(env, (*names)[i]));
        return array;
      });
}

// lremovexattr(path, name).
Napi::Value Lremovexattr(const Napi::CallbackInfo& info) {
  Args args(info, "fs.lremovexattr", 2);
  std::string path = args.Path(0, "path");
  std::string name = XattrName(args, 1);
  return StartCall(info.Env(), "dmthin:fs.lremovexattr", [=](CallWorker& w) {
    if (lremovexattr(path.c_str(), name.c_str()) != 0) w.FailErrno("lremovexattr", path);
  });
}

// Bytes of a path or name given as a Buffer (raw bytes) or a string
// (UTF-8): not empty, no NUL; a path must be absolute.
std::string RawBytes(const Args& args, size_t index, const char* what, bool is_path) {
  Napi::Value value = args.info()[index];
  std::string bytes;
  if (value.IsBuffer()) {
    auto buffer = value.As<Napi::Buffer<char>>();
    bytes.assign(buffer.Data(), buffer.Length());
  } else if (value.IsString()) {
    bytes = value.As<Napi::String>().Utf8Value();
  } else {
    args.Throw(std::string(what) + " must be a Buffer or a string");
  }
  if (bytes.empty()) args.Throw(std::string(what) + " must not be empty");
  if (bytes.find('\0') != std::string::npos) args.Throw(std::string(what) + " must not contain NUL bytes");
  if (is_path && bytes[0] != '/') args.Throw(std::string(what) + " must be an absolute path");
  if (is_path && bytes.size() >= 4096) args.Throw(std::string(what) + " is longer than PATH_MAX");
  return bytes;
}

// Throws a Node-style system error for errno, on the calling thread.
[[noreturn]] void ThrowErrno(Napi::Env env, const char* syscall, const std::string& path) {
  Failure failure;
  failure.err = errno;
  failure.syscall = syscall;
  failure.path = path;
  throw SystemError(env, failure);
}

// mknodSync(path, mode, major, minor): mknod(2) on this thread.
Napi::Value MknodSync(const Napi::CallbackInfo& info) {
  Args args(info, "fs.mknodSync", 4);
  std::string path = RawBytes(args, 0, "path", true);
  uint64_t mode = args.Uint64(1, "mode");
  uint64_t dev_major = args.Uint64(2, "major");
  uint64_t dev_minor = args.Uint64(3, "minor");
  if (mode > 0xffffffff || dev_major > 0xfff || dev_minor > 0xfffff) args.Throw("mode, major or minor out of range");
  dev_t dev = makedev(static_cast<unsigned>(dev_major), static_cast<unsigned>(dev_minor));
  if (mknod(path.c_str(), static_cast<mode_t>(mode), dev) != 0) ThrowErrno(info.Env(), "mknod", path);
  return info.Env().Undefined();
}

// lsetxattrSync(path, name, value, flags): lsetxattr(2) on this thread.
Napi::Value LsetxattrSync(const Napi::CallbackInfo& info) {
  Args args(info, "fs.lsetxattrSync", 4);
  std::string path = RawBytes(args, 0, "path", true);
  std::string name = RawBytes(args, 1, "name", false);
  if (name.size() > 255) args.Throw("name must be at most 255 bytes");
  if (!info[2].IsBuffer()) args.Throw("value must be a Buffer");
  auto value = info[2].As<Napi::Buffer<char>>();
  if (value.Length() > kXattrSizeMax) args.Throw("value must be at most 65536 bytes");
  uint64_t flags = args.Uint64(3, "flags");
  if (lsetxattr(path.c_str(), name.c_str(), value.Data(), value.Length(), static_cast<int>(flags)) != 0) {
    ThrowErrno(info.Env(), "lsetxattr", path);
  }
  return info.Env().Undefined();
}

// lutimensSync(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec):
// utimensat(2) with AT_SYMLINK_NOFOLLOW on this thread, to the
// nanosecond; a nanosecond count of -1 leaves that time as it is
// (UTIME_OMIT).
Napi::Value LutimensSync(const Napi::CallbackInfo& info) {
  Args args(info, "fs.lutimensSync", 5);
  std::string path = RawBytes(args, 0, "path", true);
  struct timespec times[2];
  for (int i = 0; i < 2; i++) {
    int64_t sec = args.Int64(1 + 2 * i, i == 0 ? "atimeSec" : "mtimeSec");
    int64_t nsec = args.Int64(2 + 2 * i, i == 0 ? "atimeNsec" : "mtimeNsec");
    if (nsec < -1 || nsec > 999999999) args.Throw("nanoseconds must be -1 (omit) or 0 to 999999999");
    times[i].tv_sec = static_cast<time_t>(sec);
    times[i].tv_nsec = nsec == -1 ? UTIME_OMIT : static_cast<long>(nsec);
  }
  if (utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) ThrowErrno(info.Env(), "utimensat", path);
  return info.Env().Undefined();
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  auto set = [&](const char* key, double value) { c.Set(key, Napi::Number::New(env, value)); };
  set("MS_RDONLY", MS_RDONLY);
  set("MS_NOSUID", MS_NOSUID);
  set("MS_NODEV", MS_NODEV);
  set("MS_NOEXEC", MS_NOEXEC);
  set("MS_SYNCHRONOUS", MS_SYNCHRONOUS);
  set("MS_REMOUNT", MS_REMOUNT);
  set("MS_DIRSYNC", MS_DIRSYNC);
  set("MS_NOATIME", MS_NOATIME);
  set("MS_NODIRATIME", MS_NODIRATIME);
  set("MS_BIND", MS_BIND);
  set("MS_MOVE", MS_MOVE);
  set("MS_REC", MS_REC);
  set("MS_SILENT", MS_SILENT);
  set("MS_UNBINDABLE", MS_UNBINDABLE);
  set("MS_PRIVATE", MS_PRIVATE);
  set("MS_SLAVE", MS_SLAVE);
  set("MS_SHARED", MS_SHARED);
  set("MS_RELATIME", MS_RELATIME);
  set("MS_STRICTATIME", MS_STRICTATIME);
  set("MS_LAZYTIME", MS_LAZYTIME);
  set("MNT_FORCE", MNT_FORCE);
  set("MNT_DETACH", MNT_DETACH);
  set("MNT_EXPIRE", MNT_EXPIRE);
  set("UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW);
  set("XATTR_CREATE", XATTR_CREATE);
  set("XATTR_REPLACE", XATTR_REPLACE);
  set("S_IFIFO", S_IFIFO);
  set("S_IFCHR", S_IFCHR);
  set("S_IFBLK", S_IFBLK);
  set("S_IFREG", S_IFREG);
  set("S_IFSOCK", S_IFSOCK);
  return c;
}

}  // namespace

void InitFsops(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));
  exports.Set("statfs", Napi::Function::New(env, Statfs, "statfs"));
  exports.Set("mknod", Napi::Function::New(env, Mknod, "mknod"));
  exports.Set("lgetxattr", Napi::Function::New(env, Lgetxattr, "lgetxattr"));
  exports.Set("lsetxattr", Napi::Function::New(env, Lsetxattr, "lsetxattr"));
  exports.Set("mknodSync", Napi::Function::New(env, MknodSync, "mknodSync"));
  exports.Set("lsetxattrSync", Napi::Function::New(env, LsetxattrSync, "lsetxattrSync"));
  exports.Set("lutimensSync", Napi::Function::New(env, LutimensSync, "lutimensSync"));
  exports.Set("llistxattr", Napi::Function::New(env, Llistxattr, "llistxattr"));
  exports.Set("lremovexattr", Napi::Function::New(env, Lremovexattr, "lremovexattr"));
  exports.Set("constants", Constants(env));
}

}  // namespace dmthin
