// Loop devices: attach a file, detach, find, status, refresh capacity.
#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <memory>
#include <string>

#include "addon.h"
#include "args.h"
#include "call.h"

namespace dmthin {

namespace {

constexpr int kLoopMajor = 7;
// Another process may take the free device between LOOP_CTL_GET_FREE and
// our configure call; try again with the next free one this many times.
constexpr int kAttachAttempts = 16;

// OpenLoop opens /dev/loopN, creating the node when /dev is a static copy
// without it (a container's /dev does not grow when the kernel adds one).
int OpenLoop(const std::string& path, int number, int flags) {
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (mknod(path.c_str(), S_IFBLK | 0660, makedev(kLoopMajor, number)) != 0 && errno != EEXIST) {
      errno = ENOENT;
      return -1;
    }
    fd = open(path.c_str(), flags | O_CLOEXEC);
  }
  return fd;
}

struct AttachState {
  std::string file;
  bool read_only;
  bool autoclear;
  std::string device;
  int hold_fd = -1;
};

// Configure binds the file to the loop device: LOOP_CONFIGURE where the
// kernel has it (atomic), else LOOP_SET_FD + LOOP_SET_STATUS64.
int Configure(int loop_fd, int file_fd, const AttachState& s) {
  struct loop_config config;
  memset(&config, 0, sizeof(config));
  config.fd = file_fd;
  config.info.lo_flags = (s.read_only ? LO_FLAGS_READ_ONLY : 0) | (s.autoclear ? LO_FLAGS_AUTOCLEAR : 0);
  strncpy(reinterpret_cast<char*>(config.info.lo_file_name), s.file.c_str(), LO_NAME_SIZE - 1);
  if (ioctl(loop_fd, LOOP_CONFIGURE, &config) == 0) return 0;
  if (errno != EINVAL && errno != ENOTTY) return -1;

  if (ioctl(loop_fd, LOOP_SET_FD, file_fd) != 0) return -1;
  if (ioctl(loop_fd, LOOP_SET_STATUS64, &config.info) != 0) {
    int err = errno;
    ioctl(loop_fd, LOOP_CLR_FD, 0);
    errno = err;
    return -1;
  }
  return 0;
}

// attach(file, {readOnly, autoclear}): losetup --find --show FILE.
// Resolves to {device, fd}. The kernel clears an autoclear device when its
// last opener closes it, and the descriptor used to configure it counts:
// so with autoclear, fd stays open and the caller closes it once something
// else (a dm table, a mount) holds the device. Without autoclear fd is -1.
Napi::Value Attach(const Napi::CallbackInfo& info) {
  Args args(info, "loop.attach", 1);
  auto state = std::make_shared<AttachState>();
  state->file = args.Path(0, "file");
  Napi::Object options = args.Options(1);
  state->read_only = args.BoolField(options, "readOnly", false);
  state->autoclear = args.BoolField(options, "autoclear", false);
  return StartCall(
      info.Env(), "dmthin:loop.attach",
      [state](CallWorker& w) {
        int mode = state->read_only ? O_RDONLY : O_RDWR;
        Fd file(open(state->file.c_str(), mode | O_CLOEXEC));
        if (!file.ok()) return w.FailErrno("open", state->file);
        Fd control(open("/dev/loop-control", O_RDWR | O_CLOEXEC));
        if (!control.ok()) return w.FailErrno("open", "/dev/loop-control");
        for (int attempt = 0; attempt < kAttachAttempts; attempt++) {
          int number = ioctl(control.get(), LOOP_CTL_GET_FREE);
          if (number < 0) return w.FailErrno("ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control");
          std::string path = "/dev/loop" + std::to_string(number);
          Fd loop(OpenLoop(path, number, mode));
          if (!loop.ok()) return w.FailErrno("open", path);
          if (Configure(loop.get(), file.get(), *state) == 0) {
            state->device = path;
            if (state->autoclear) state->hold_fd = loop.release();
            return;
          }
          if (errno != EBUSY) return w.FailErrno("ioctl(LOOP_CONFIGURE)", path);
        }
        w.FailWith(EBUSY, "ioctl(LOOP_CONFIGURE)", state->file);
      },
      [state](Napi::Env env) {
        Napi::Object result = Napi::Object::New(env);
        result.Set("device", Napi::String::New(env, state->device));
        result.Set("fd", Napi::Number::New(env, state->hold_fd));
        return result;
      });
}

// DeviceIoctl runs one argument-less ioctl on the loop device named by
// the first argument.
Napi::Value DeviceIoctl(const Napi::CallbackInfo& info, const char* function, const char* resource,
                        unsigned long request, const char* syscall) {
  Args args(info, function, 1);
  std::string device = args.Path(0, "device");
  return StartCall(info.Env(), resource, [device, request, syscall](CallWorker& w) {
    Fd loop(open(device.c_str(), O_RDONLY | O_CLOEXEC));
    if (!loop.ok()) return w.FailErrno("open", device);
    if (ioctl(loop.get(), request, 0) != 0) w.FailErrno(syscall, device);
  });
}

// detach(device): losetup --detach DEVICE.
Napi::Value Detach(const Napi::CallbackInfo& info) {
  return DeviceIoctl(info, "loop.detach", "dmthin:loop.detach", LOOP_CLR_FD, "ioctl(LOOP_CLR_FD)");
}

// setCapacity(device): losetup --set-capacity DEVICE, after the file grew.
Napi::Value SetCapacity(const Napi::CallbackInfo& info) {
  return DeviceIoctl(info, "loop.setCapacity", "dmthin:loop.setCapacity", LOOP_SET_CAPACITY,
                     "ioctl(LOOP_SET_CAPACITY)");
}

struct StatusState {
  bool bound = false;
  struct loop_info64 info;
};

Napi::Value StatusToJs(Napi::Env env, const std::string& device, const StatusState& s) {
  if (!s.bound) return env.Null();
  Napi::Object result = Napi::Object::New(env);
  result.Set("device", Napi::String::New(env, device));
  result.Set("number", Napi::Number::New(env, s.info.lo_number));
  result.Set("backingFile", Napi::String::New(env, reinterpret_cast<const char*>(s.info.lo_file_name)));
  result.Set("backingMajor", Napi::Number::New(env, major(s.info.lo_device)));
  result.Set("backingMinor", Napi::Number::New(env, minor(s.info.lo_device)));
  result.Set("backingInode", Napi::Number::New(env, static_cast<double>(s.info.lo_inode)));
  result.Set("offset", Napi::Number::New(env, static_cast<double>(s.info.lo_offset)));
  result.Set("sizeLimit", Napi::Number::New(env, static_cast<double>(s.info.lo_sizelimit)));
  result.Set("autoclear", Napi::Boolean::New(env, (s.info.lo_flags & LO_FLAGS_AUTOCLEAR) != 0));
  result.Set("readOnly", Napi::Boolean::New(env, (s.info.lo_flags & LO_FLAGS_READ_ONLY) != 0));
  return result;
}

// status(device): losetup --list DEVICE; null when nothing is attached.
Napi::Value Status(const Napi::CallbackInfo& info) {
  Args args(info, "loop.status", 1);
  std::string device = args.Path(0, "device");
  auto state = std::make_shared<StatusState>();
  return StartCall(
      info.Env(), "dmthin:loop.status",
      [device, state](CallWorker& w) {
        Fd loop(open(device.c_str(), O_RDONLY | O_CLOEXEC));
        if (!loop.ok()) return w.FailErrno("open", device);
        if (ioctl(loop.get(), LOOP_GET_STATUS64, &state->info) == 0) {
          state->bound = true;
        } else if (errno != ENXIO) {
          w.FailErrno("ioctl(LOOP_GET_STATUS64)", device);
        }
      },
      [device, state](Napi::Env env) { return StatusToJs(env, device, *state); });
}

// find(file): losetup --associated FILE; the first loop device backed by
// the file (same device and inode), or null.
Napi::Value Find(const Napi::CallbackInfo& info) {
  Args args(info, "loop.find", 1);
  std::string file = args.Path(0, "file");
  auto found = std::make_shared<std::string>();
  return StartCall(
      info.Env(), "dmthin:loop.find",
      [file, found](CallWorker& w) {
        struct stat st;
        if (stat(file.c_str(), &st) != 0) return w.FailErrno("stat", file);
        DIR* dir = opendir("/sys/block");
        if (dir == nullptr) return w.FailErrno("opendir", "/sys/block");
        while (struct dirent* entry = readdir(dir)) {
          if (strncmp(entry->d_name, "loop", 4) != 0) continue;
          std::string device = std::string("/dev/") + entry->d_name;
          Fd loop(open(device.c_str(), O_RDONLY | O_CLOEXEC));
          if (!loop.ok()) continue;
          struct loop_info64 li;
          if (ioctl(loop.get(), LOOP_GET_STATUS64, &li) != 0) continue;
          if (li.lo_device == static_cast<uint64_t>(st.st_dev) && li.lo_inode == static_cast<uint64_t>(st.st_ino)) {
            *found = device;
            break;
          }
        }
        closedir(dir);
      },
      [found](Napi::Env env) -> Napi::Value {
        if (found->empty()) return env.Null();
        return Napi::String::New(env, *found);
      });
}

}  // namespace

void InitLoop(Napi::Env env, Napi::Object exports) {
  exports.Set("attach", Napi::Function::New(env, Attach, "attach"));
  exports.Set("detach", Napi::Function::New(env, Detach, "detach"));
  exports.Set("setCapacity", Napi::Function::New(env, SetCapacity, "setCapacity"));
  exports.Set("status", Napi::Function::New(env, Status, "status"));
  exports.Set("find", Napi::Function::New(env, Find, "find"));
}

}  // namespace dmthin
