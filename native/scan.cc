// Layer scans: the lstat of every entry of a tree, and the lstat, image
// xattrs, link target and small body of a batch of entries, each in one
// worker-thread call. Changes and Diff visit tens of thousands of entries:
// one thread-pool round trip per file (or per xattr) cost more than the
// syscalls themselves. Names cross as binary strings (one char per byte,
// latin1), so names that are not UTF-8 survive.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "call.h"

namespace dmthin {

namespace {

constexpr size_t kXattrSizeMax = 65536;

// The numbers kept per entry, in this order (src/native/binding.ts STAT_FIELDS).
enum StatField {
  kMode,
  kUid,
  kGid,
  kRdevMajor,
  kRdevMinor,
  kSize,
  kMtimeSec,
  kMtimeNsec,
  kInoHigh,
  kInoLow,
  kCtimeSec,
  kCtimeNsec,
  kNlink,
  kStatFields
};

void PutStat(const struct stat& st, double* out) {
  out[kMode] = st.st_mode;
  out[kUid] = st.st_uid;
  out[kGid] = st.st_gid;
  out[kRdevMajor] = major(st.st_rdev);
  out[kRdevMinor] = minor(st.st_rdev);
  out[kSize] = static_cast<double>(st.st_size);
  out[kMtimeSec] = static_cast<double>(st.st_mtim.tv_sec);
  out[kMtimeNsec] = static_cast<double>(st.st_mtim.tv_nsec);
  // Two halves: an inode number may not fit a double exactly.
  out[kInoHigh] = static_cast<double>(static_cast<uint64_t>(st.st_ino) >> 32);
  out[kInoLow] = static_cast<double>(static_cast<uint64_t>(st.st_ino) & 0xffffffffu);
  out[kCtimeSec] = static_cast<double>(st.st_ctim.tv_sec);
  out[kCtimeNsec] = static_cast<double>(st.st_ctim.tv_nsec);
  out[kNlink] = static_cast<double>(st.st_nlink);
}

Napi::String Latin1(Napi::Env env, const std::string& bytes) {
  napi_value value;
  NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, bytes.data(), bytes.size(), &value), Napi::String());
  return Napi::String(env, value);
}

// A binary string (latin1, one char per byte) as bytes.
std::string BinaryString(const Args& args, const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) args.Throw(what + " must be a string");
  size_t length = 0;
  napi_env env = args.env();
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_latin1(env, value, nullptr, 0, &length), std::string());
  std::string bytes(length, '\0');
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_latin1(env, value, bytes.data(), length + 1, &length),
                       std::string());
  if (bytes.find('\0') != std::string::npos) args.Throw(what + " must not contain NUL bytes");
  return bytes;
}

// Relative paths: non-empty, no leading slash.
std::vector<std::string> RelativePaths(const Args& args, size_t index) {
  Napi::Value value = args.info()[index];
  if (!value.IsArray()) args.Throw("paths must be an array of strings");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> paths;
  paths.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) {
    std::string rel = BinaryString(args, array.Get(i), "paths[" + std::to_string(i) + "]");
    if (rel.empty() || rel[0] == '/') args.Throw("paths[" + std::to_string(i) + "] must be a relative path");
    paths.push_back(std::move(rel));
  }
  return paths;
}

// ---- walk ----

struct WalkResult {
  std::vector<std::string> paths;
  std::vector<uint32_t> ends;
  std::vector<double> stats;
};

class Walker {
 public:
  Walker(CallWorker& worker, int root_fd, std::string root, WalkResult& out)
      : worker_(worker), root_fd_(root_fd), root_(std::move(root)), out_(out) {}

  // Adds the entries under rel ("" for the root), pre-order, children sorted by name.
  bool Dir(const std::string& rel) {
    int fd = rel.empty() ? dup(root_fd_) : openat(root_fd_, rel.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      // Removed since its parent was read (a running container): nothing under it.
      if (errno == ENOENT || errno == ENOTDIR) return true;
      return Fail("open", rel);
    }
    DIR* dir = fdopendir(fd);
    if (dir == nullptr) {
      close(fd);
      return Fail("fdopendir", rel);
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* d = readdir(dir)) {
      if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0) names.emplace_back(d->d_name);
    }
    if (errno != 0) {
      closedir(dir);
      return Fail("readdir", rel);
    }
    std::sort(names.begin(), names.end());
    std::vector<std::pair<std::string, struct stat>> children;
    children.reserve(names.size());
    for (std::string& name : names) {
      struct stat st;
      if (fstatat(dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        closedir(dir);
        return Fail("lstat", Join(rel, name));
      }
      children.emplace_back(std::move(name), st);
    }
    closedir(dir);
    // Pre-order: each subdirectory's entries follow it, before its next sibling.
    for (const auto& [name, st] : children) {
      size_t index = out_.paths.size();
      out_.paths.push_back(Join(rel, name));
      out_.ends.push_back(static_cast<uint32_t>(index + 1));
      size_t at = out_.stats.size();
      out_.stats.resize(at + kStatFields);
      PutStat(st, &out_.stats[at]);
      if (!S_ISDIR(st.st_mode)) continue;
      std::string child = out_.paths.back();
      if (!Dir(child)) return false;
      out_.ends[index] = static_cast<uint32_t>(out_.paths.size());
    }
    return true;
  }

 private:
  static std::string Join(const std::string& rel, const std::string& name) { return rel.empty() ? name : rel + "/" + name; }

  bool Fail(const char* syscall, const std::string& rel) {
    worker_.FailErrno(syscall, rel.empty() ? root_ : root_ + "/" + rel);
    return false;
  }

  CallWorker& worker_;
  int root_fd_;
  std::string root_;
  WalkResult& out_;
};

// walk(root): every entry under root (not root itself), pre-order with
// children sorted by name: { paths, ends, stats }. ends[i] is the index
// after entry i's last descendant; stats holds STAT_FIELDS numbers per entry.
Napi::Value Walk(const Napi::CallbackInfo& info) {
  Args args(info, "scan.walk", 1);
  std::string root = args.Path(0, "root");
  auto result = std::make_shared<WalkResult>();
  return StartCall(
      info.Env(), "dmthin:scan.walk",
      [root, result](CallWorker& w) {
        Fd fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd.ok()) return w.FailErrno("open", root);
        Walker(w, fd.get(), root, *result).Dir("");
      },
      [result](Napi::Env env) {
        Napi::Object out = Napi::Object::New(env);
        size_t n = result->paths.size();
        Napi::Array paths = Napi::Array::New(env, n);
        for (size_t i = 0; i < n; i++) paths.Set(static_cast<uint32_t>(i), Latin1(env, result->paths[i]));
        Napi::Uint32Array ends = Napi::Uint32Array::New(env, n);
        std::copy(result->ends.begin(), result->ends.end(), ends.Data());
        Napi::Float64Array stats = Napi::Float64Array::New(env, result->stats.size());
        std::copy(result->stats.begin(), result->stats.end(), stats.Data());
        out.Set("paths", paths);
        out.Set("ends", ends);
        out.Set("stats", stats);
        return out;
      });
}

// ---- entries ----

using Xattrs = std::vector<std::pair<std::string, std::string>>;

// Only the namespaces an image carries: user.* and the file capability.
bool ImageXattr(const std::string& name) { return name == "security.capability" || name.rfind("user.", 0) == 0; }

// The image xattrs of path, sorted by name; false (errno set) on failure.
bool ReadXattrs(const std::string& path, bool capability_only, Xattrs* out) {
  std::vector<char> value(kXattrSizeMax);
  auto get = [&](const std::string& name) -> int {
    ssize_t len = lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (len < 0) return errno == ENODATA ? 0 : -1;
    out->emplace_back(name, std::string(value.data(), static_cast<size_t>(len)));
    return 0;
  };
  if (capability_only) return get("security.capability") == 0 || errno == ENOTSUP;
  for (int attempt = 0; attempt < 8; attempt++) {
    ssize_t size = llistxattr(path.c_str(), nullptr, 0);
    if (size < 0) return errno == ENOTSUP;
    if (size == 0) return true;
    std::vector<char> list(static_cast<size_t>(size) + 1);
    ssize_t len = llistxattr(path.c_str(), list.data(), list.size());
    if (len < 0 && errno == ERANGE) continue;
    if (len < 0) return false;
    std::vector<std::string> names;
    for (ssize_t start = 0; start < len;) {
      std::string name(list.data() + start);
      start += static_cast<ssize_t>(name.size()) + 1;
      if (ImageXattr(name)) names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      if (get(name) != 0) return false;
    }
    return true;
  }
  errno = ERANGE;
  return false;
}

struct Entry {
  bool present = false;
  double stat[kStatFields] = {};
  Xattrs xattrs;
  bool has_link = false;
  std::string link;
  bool has_body = false;
  std::string body;
};

// Reads up to limit bytes (its size at lstat) of a regular file; a file
// that shrank since gives what it holds now (the tar header takes what was read).
bool ReadBody(const std::string& path, size_t limit, std::string* out) {
  Fd fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
  if (!fd.ok()) return false;
  out->resize(limit);
  size_t have = 0;
  while (have < limit) {
    ssize_t n = read(fd.get(), out->data() + have, limit - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  out->resize(have);
  return true;
}

// entries(root, paths, options): for each relative path, its lstat (absent
// when gone), image xattrs, symlink target, and the body of a regular file
// of at most bodyLimit bytes while the batch's bodies stay within bodyBudget.
Napi::Value Entries(const Napi::CallbackInfo& info) {
  Args args(info, "scan.entries", 2);
  std::string root = args.Path(0, "root");
  std::vector<std::string> paths = RelativePaths(args, 1);
  Napi::Object options = args.Options(2);
  auto number = [&](const char* key) -> uint64_t {
    Napi::Value v = options.Get(key);
    return v.IsUndefined() ? 0 : args.CheckedUint64(v, std::string("options.") + key);
  };
  uint64_t body_limit = number("bodyLimit");
  uint64_t body_budget = number("bodyBudget");
  bool capability_only = args.BoolField(options, "capabilityOnly", false);
  bool want_xattrs = args.BoolField(options, "xattrs", true);
  if (body_limit > (64u << 20) || body_budget > (256u << 20)) args.Throw("bodyLimit or bodyBudget too large");
  auto entries = std::make_shared<std::vector<Entry>>(paths.size());
  return StartCall(
      info.Env(), "dmthin:scan.entries",
      [root, paths, entries, body_limit, body_budget, capability_only, want_xattrs](CallWorker& w) {
        uint64_t budget = body_budget;
        for (size_t i = 0; i < paths.size(); i++) {
          Entry& e = (*entries)[i];
          std::string path = root == "/" ? "/" + paths[i] : root + "/" + paths[i];
          struct stat st;
          if (lstat(path.c_str(), &st) != 0) {
            // Gone since the scan (a running container's file): reported absent.
            if (errno == ENOENT || errno == ENOTDIR) continue;
            return w.FailErrno("lstat", path);
          }
          e.present = true;
          PutStat(st, e.stat);
          if (want_xattrs && !ReadXattrs(path, capability_only, &e.xattrs)) {
            if (errno == ENOENT) {
              e.present = false;
              continue;
            }
            return w.FailErrno("lgetxattr", path);
          }
          if (S_ISLNK(st.st_mode)) {
            std::vector<char> target(static_cast<size_t>(std::max<off_t>(st.st_size, 255)) + 1);
            ssize_t len = readlink(path.c_str(), target.data(), target.size());
            if (len < 0) return w.FailErrno("readlink", path);
            e.has_link = true;
            e.link.assign(target.data(), static_cast<size_t>(len));
          } else if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) <= body_limit &&
                     static_cast<uint64_t>(st.st_size) <= budget) {
            if (!ReadBody(path, static_cast<size_t>(st.st_size), &e.body)) {
              if (errno == ENOENT) {
                e.present = false;
                continue;
              }
              return w.FailErrno("read", path);
            }
            e.has_body = true;
            budget -= std::min<uint64_t>(budget, e.body.size());
          }
        }
      },
      [entries](Napi::Env env) {
        size_t n = entries->size();
        Napi::Float64Array stats = Napi::Float64Array::New(env, n * kStatFields);
        Napi::Array links = Napi::Array::New(env, n);
        Napi::Array bodies = Napi::Array::New(env, n);
        Napi::Array xattrs = Napi::Array::New(env, n);
        for (size_t i = 0; i < n; i++) {
          Entry& e = (*entries)[i];
          auto index = static_cast<uint32_t>(i);
          // A mode of 0 marks an entry that is gone.
          if (e.present) std::copy(e.stat, e.stat + kStatFields, stats.Data() + i * kStatFields);
          links.Set(index, e.has_link ? Napi::Value(Latin1(env, e.link)) : env.Null());
          bodies.Set(index, e.has_body ? Napi::Value(Napi::Buffer<char>::Copy(env, e.body.data(), e.body.size()))
                                       : env.Null());
          if (e.xattrs.empty()) {
            xattrs.Set(index, env.Null());
            continue;
          }
          Napi::Array list = Napi::Array::New(env, e.xattrs.size());
          for (size_t k = 0; k < e.xattrs.size(); k++) {
            Napi::Array pair = Napi::Array::New(env, 2);
            pair.Set(0u, Latin1(env, e.xattrs[k].first));
            pair.Set(1u, Napi::Buffer<char>::Copy(env, e.xattrs[k].second.data(), e.xattrs[k].second.size()));
            list.Set(static_cast<uint32_t>(k), pair);
          }
          xattrs.Set(index, list);
        }
        Napi::Object out = Napi::Object::New(env);
        out.Set("stats", stats);
        out.Set("links", links);
        out.Set("bodies", bodies);
        out.Set("xattrs", xattrs);
        return out;
      });
}

}  // namespace

void InitScan(Napi::Env env, Napi::Object exports) {
  exports.Set("walk", Napi::Function::New(env, Walk, "walk"));
  exports.Set("entries", Napi::Function::New(env, Entries, "entries"));
  exports.Set("STAT_FIELDS", Napi::Number::New(env, kStatFields));
}

}  // namespace dmthin
