// Device-mapper tasks through libdevmapper: one worker per dm ioctl.
#include <dirent.h>
#include <fcntl.h>
#include <libdevmapper.h>
#include <linux/dm-ioctl.h>
#include <limits.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "args.h"
#include "dm_log.h"
#include "worker.h"

namespace dmthin {

namespace {

using TaskPtr = std::unique_ptr<dm_task, decltype(&dm_task_destroy)>;

struct Target {
  uint64_t start;
  uint64_t length;
  std::string type;
  std::string params;
};

struct DevNumber {
  uint32_t major;
  uint32_t minor;
};

const char* TaskName(int type) {
  switch (type) {
    case DM_DEVICE_CREATE: return "create";
    case DM_DEVICE_RELOAD: return "reload";
    case DM_DEVICE_REMOVE: return "remove";
    case DM_DEVICE_SUSPEND: return "suspend";
    case DM_DEVICE_RESUME: return "resume";
    case DM_DEVICE_INFO: return "info";
    case DM_DEVICE_DEPS: return "deps";
    case DM_DEVICE_STATUS: return "status";
    case DM_DEVICE_TABLE: return "table";
    case DM_DEVICE_TARGET_MSG: return "message";
    case DM_DEVICE_LIST: return "list";
    case DM_DEVICE_VERSION: return "version";
    default: return "task";
  }
}

// libdevmapper opens /dev/mapper/control without O_CLOEXEC on some
// versions; children we spawn (mkfs, blkid) must not inherit it.
void MarkControlCloseOnExec() {
  static bool done = false;
  if (done) return;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::string link = std::string("/proc/self/fd/") + entry->d_name;
    char target[PATH_MAX];
    ssize_t len = readlink(link.c_str(), target, sizeof(target) - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    if (std::string(target) == "/dev/mapper/control") {
      int fd = atoi(entry->d_name);
      int flags = fcntl(fd, F_GETFD);
      if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
      done = true;
    }
  }
  closedir(dir);
}

// DmWorker runs libdevmapper tasks under the library lock and forwards what
// the library logged to the JavaScript logger when it settles.
class DmWorker : public PromiseWorker {
 protected:
  DmWorker(Napi::Env env, const char* resource, std::string device)
      : PromiseWorker(env, resource), device_(std::move(device)) {}

  virtual void RunDm() = 0;

  // NewTask creates a task for the worker's device, or records a failure.
  TaskPtr NewTask(int type) {
    TaskPtr task(dm_task_create(type), dm_task_destroy);
    if (!task) {
      FailFromLog(type, nullptr, 0, ENOMEM);
      return task;
    }
    if (!device_.empty() && !dm_task_set_name(task.get(), device_.c_str())) {
      FailFromLog(type, nullptr, 0, EINVAL);
      return TaskPtr(nullptr, dm_task_destroy);
    }
    return task;
  }

  // RunTask runs the task. With use_cookie, it waits for udev (or, without
  // udev, lets the library create or remove the /dev/mapper node itself).
  bool RunTask(dm_task* task, int type, bool use_cookie = false, uint16_t cookie_flags = 0) {
    size_t mark = log_.size();
    uint32_t cookie = 0;
    if (use_cookie && !dm_task_set_cookie(task, &cookie, cookie_flags)) {
      FailFromLog(type, task, mark, EIO);
      return false;
    }
    int ok = dm_task_run(task);
    if (use_cookie) dm_udev_wait(cookie);  // pairs with set_cookie; frees the semaphore
    if (!ok) {
      FailFromLog(type, task, mark, EIO);
      return false;
    }
    return true;
  }

  const std::string& device() const { return device_; }

 private:
  void Run() final {
    DmSession session(&log_);
    RunDm();
    MarkControlCloseOnExec();
  }

  void Settled(Napi::Env env) override {
    AddonData* data = GetAddonData(env);
    if (log_.empty() || data == nullptr || data->dm_logger.IsEmpty()) return;
    for (const DmLogEntry& entry : log_) {
      Napi::Value code = entry.err > 0 ? Napi::String::New(env, ErrnoName(entry.err)) : env.Null();
      // A throwing logger must not turn a finished dm call into a failure.
      try {
        data->dm_logger.Call({Napi::Number::New(env, entry.level), Napi::String::New(env, entry.message), code});
      } catch (const Napi::Error&) {
      }
    }
  }

  void FailFromLog(int type, dm_task* task, size_t mark, int fallback) {
    int err = task != nullptr ? dm_task_get_errno(task) : 0;
    if (err <= 0) err = ErrnoFromLog(log_, mark);
    if (err <= 0) err = fallback;
    Fail(err, std::string("dm_task_run(") + TaskName(type) + ")", device_, LastErrorLine(log_, mark));
  }

  std::string device_;
  std::vector<DmLogEntry> log_;
};

Napi::Array TargetsToJs(Napi::Env env, const std::vector<Target>& targets) {
  Napi::Array array = Napi::Array::New(env, targets.size());
  for (size_t i = 0; i < targets.size(); i++) {
    Napi::Object target = Napi::Object::New(env);
    target.Set("start", Napi::Number::New(env, static_cast<double>(targets[i].start)));
    target.Set("length", Napi::Number::New(env, static_cast<double>(targets[i].length)));
    target.Set("type", Napi::String::New(env, targets[i].type));
    target.Set("params", Napi::String::New(env, targets[i].params));
    array.Set(i, target);
  }
  return array;
}

Napi::Array DevNumbersToJs(Napi::Env env, const std::vector<DevNumber>& devs) {
  Napi::Array array = Napi::Array::New(env, devs.size());
  for (size_t i = 0; i < devs.size(); i++) {
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("major", Napi::Number::New(env, devs[i].major));
    dev.Set("minor", Napi::Number::New(env, devs[i].minor));
    array.Set(i, dev);
  }
  return array;
}

// DeviceName checks a dm device name: non-empty, no '/', shorter than
// DM_NAME_LEN, no NUL.
std::string DeviceName(const Args& args, size_t index) {
  std::string name = args.String(index, "name");
  if (name.size() >= DM_NAME_LEN) args.Throw("name must be shorter than " + std::to_string(DM_NAME_LEN) + " bytes");
  if (name.find('/') != std::string::npos) args.Throw("name must not contain '/'");
  if (name == "." || name == "..") args.Throw("name must not be '.' or '..'");
  return name;
}

std::vector<Target> TableArg(const Args& args, size_t index) {
  Napi::Value value = args.info()[index];
  if (!value.IsArray()) args.Throw("table must be an array of targets");
  Napi::Array array = value.As<Napi::Array>();
  if (array.Length() == 0) args.Throw("table must have at least one target");
  std::vector<Target> targets;
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    std::string where = "table[" + std::to_string(i) + "]";
    if (!item.IsObject()) args.Throw(where + " must be an object");
    Napi::Object object = item.As<Napi::Object>();
    Target target;
    target.start = args.CheckedUint64(object.Get("start"), where + ".start");
    target.length = args.CheckedUint64(object.Get("length"), where + ".length");
    target.type = args.CheckedString(object.Get("type"), where + ".type");
    Napi::Value params = object.Get("params");
    if (!params.IsString()) args.Throw(where + ".params must be a string");
    target.params = params.As<Napi::String>().Utf8Value();
    if (target.params.find('\0') != std::string::npos) args.Throw(where + ".params must not contain NUL bytes");
    if (target.length == 0) args.Throw(where + ".length must be greater than 0");
    targets.push_back(std::move(target));
  }
  return targets;
}

bool AddTargets(dm_task* task, const std::vector<Target>& targets) {
  for (const Target& t : targets) {
    if (!dm_task_add_target(task, t.start, t.length, t.type.c_str(), t.params.c_str())) return false;
  }
  return true;
}

// ---- version ---------------------------------------------------------------

class VersionWorker : public DmWorker {
 public:
  explicit VersionWorker(Napi::Env env) : DmWorker(env, "dmthin:dm.version", "") {}

 private:
  void RunDm() override {
    char buffer[128];
    if (dm_get_library_version(buffer, sizeof(buffer))) library_ = buffer;
    TaskPtr task = NewTask(DM_DEVICE_VERSION);
    if (!task || !RunTask(task.get(), DM_DEVICE_VERSION)) return;
    if (dm_task_get_driver_version(task.get(), buffer, sizeof(buffer))) driver_ = buffer;
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("library", Napi::String::New(env, library_));
    result.Set("driver", Napi::String::New(env, driver_));
    return result;
  }
  std::string library_;
  std::string driver_;
};

Napi::Value Version(const Napi::CallbackInfo& info) {
  return (new VersionWorker(info.Env()))->Start();
}

// ---- create / reload ---------------------------------------------------------

class LoadWorker : public DmWorker {
 public:
  LoadWorker(Napi::Env env, int type, std::string name, std::vector<Target> table, std::string uuid, bool read_only)
      : DmWorker(env, type == DM_DEVICE_CREATE ? "dmthin:dm.create" : "dmthin:dm.reload", std::move(name)),
        type_(type), table_(std::move(table)), uuid_(std::move(uuid)), read_only_(read_only) {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(type_);
    if (!task) return;
    if ((!uuid_.empty() && !dm_task_set_uuid(task.get(), uuid_.c_str())) ||
        (read_only_ && !dm_task_set_ro(task.get())) || !AddTargets(task.get(), table_)) {
      Fail(EINVAL, std::string("dm_task_run(") + TaskName(type_) + ")", device(), "invalid table or uuid");
      return;
    }
    bool create = type_ == DM_DEVICE_CREATE;
    if (create) dm_task_set_add_node(task.get(), DM_ADD_NODE_ON_CREATE);
    RunTask(task.get(), type_, create);
  }
  int type_;
  std::vector<Target> table_;
  std::string uuid_;
  bool read_only_;
};

// create(name, table, {uuid, readOnly}) and reload(name, table, {readOnly}).
Napi::Value Load(const Napi::CallbackInfo& info, int type, const char* fn) {
  Args args(info, fn, 2);
  std::string name = DeviceName(args, 0);
  std::vector<Target> table = TableArg(args, 1);
  Napi::Object options = args.Options(2);
  std::string uuid = args.StringField(options, "uuid");
  if (uuid.size() >= DM_UUID_LEN) args.Throw("options.uuid must be shorter than " + std::to_string(DM_UUID_LEN) + " bytes");
  bool read_only = args.BoolField(options, "readOnly", false);
  return (new LoadWorker(info.Env(), type, std::move(name), std::move(table), std::move(uuid), read_only))->Start();
}

Napi::Value Create(const Napi::CallbackInfo& info) { return Load(info, DM_DEVICE_CREATE, "dm.create"); }
Napi::Value Reload(const Napi::CallbackInfo& info) { return Load(info, DM_DEVICE_RELOAD, "dm.reload"); }

// ---- remove / suspend / resume ---------------------------------------------------

struct StateOptions {
  bool deferred = false;
  bool retry = false;
  bool no_flush = false;
  bool skip_lockfs = false;
};

class StateWorker : public DmWorker {
 public:
  StateWorker(Napi::Env env, const char* resource, int type, std::string name, StateOptions options)
      : DmWorker(env, resource, std::move(name)), type_(type), options_(options) {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(type_);
    if (!task) return;
    if (options_.deferred) dm_task_deferred_remove(task.get());
    if (options_.retry) dm_task_retry_remove(task.get());
    if (options_.no_flush) dm_task_no_flush(task.get());
    if (options_.skip_lockfs) dm_task_skip_lockfs(task.get());
    // Suspend creates and removes no node, so it needs no udev cookie.
    RunTask(task.get(), type_, type_ != DM_DEVICE_SUSPEND);
  }
  int type_;
  StateOptions options_;
};

Napi::Value Remove(const Napi::CallbackInfo& info) {
  Args args(info, "dm.remove", 1);
  std::string name = DeviceName(args, 0);
  Napi::Object options = args.Options(1);
  StateOptions state;
  state.deferred = args.BoolField(options, "deferred", false);
  state.retry = args.BoolField(options, "retry", false);
  return (new StateWorker(info.Env(), "dmthin:dm.remove", DM_DEVICE_REMOVE, std::move(name), state))->Start();
}

Napi::Value Suspend(const Napi::CallbackInfo& info) {
  Args args(info, "dm.suspend", 1);
  std::string name = DeviceName(args, 0);
  Napi::Object options = args.Options(1);
  StateOptions state;
  state.no_flush = args.BoolField(options, "noFlush", false);
  state.skip_lockfs = args.BoolField(options, "skipLockfs", false);
  return (new StateWorker(info.Env(), "dmthin:dm.suspend", DM_DEVICE_SUSPEND, std::move(name), state))->Start();
}

Napi::Value Resume(const Napi::CallbackInfo& info) {
  Args args(info, "dm.resume", 1);
  std::string name = DeviceName(args, 0);
  return (new StateWorker(info.Env(), "dmthin:dm.resume", DM_DEVICE_RESUME, std::move(name), StateOptions()))->Start();
}

// ---- message -----------------------------------------------------------------------

class MessageWorker : public DmWorker {
 public:
  MessageWorker(Napi::Env env, std::string name, uint64_t sector, std::string message)
      : DmWorker(env, "dmthin:dm.message", std::move(name)), sector_(sector), message_(std::move(message)) {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(DM_DEVICE_TARGET_MSG);
    if (!task) return;
    if (!dm_task_set_sector(task.get(), sector_) || !dm_task_set_message(task.get(), message_.c_str())) {
      Fail(ENOMEM, "dm_task_run(message)", device());
      return;
    }
    if (!RunTask(task.get(), DM_DEVICE_TARGET_MSG)) return;
    const char* response = dm_task_get_message_response(task.get());
    if (response != nullptr && response[0] != '\0') {
      has_response_ = true;
      response_ = response;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    return has_response_ ? Napi::String::New(env, response_) : env.Null();
  }
  uint64_t sector_;
  std::string message_;
  bool has_response_ = false;
  std::string response_;
};

Napi::Value Message(const Napi::CallbackInfo& info) {
  Args args(info, "dm.message", 3);
  std::string name = DeviceName(args, 0);
  uint64_t sector = args.Uint64(1, "sector");
  std::string message = args.String(2, "message");
  return (new MessageWorker(info.Env(), std::move(name), sector, std::move(message)))->Start();
}

// ---- info ----------------------------------------------------------------------------

class InfoWorker : public DmWorker {
 public:
  InfoWorker(Napi::Env env, std::string name) : DmWorker(env, "dmthin:dm.info", std::move(name)) {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(DM_DEVICE_INFO);
    if (!task || !RunTask(task.get(), DM_DEVICE_INFO)) return;
    if (!dm_task_get_info(task.get(), &info_)) {
      Fail(EIO, "dm_task_get_info", device());
      return;
    }
    if (info_.exists) {
      const char* uuid = dm_task_get_uuid(task.get());
      if (uuid != nullptr) uuid_ = uuid;
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("name", Napi::String::New(env, device()));
    result.Set("exists", Napi::Boolean::New(env, info_.exists != 0));
    if (!info_.exists) return result;
    result.Set("uuid", Napi::String::New(env, uuid_));
    result.Set("major", Napi::Number::New(env, info_.major));
    result.Set("minor", Napi::Number::New(env, info_.minor));
    result.Set("openCount", Napi::Number::New(env, info_.open_count));
    result.Set("targetCount", Napi::Number::New(env, info_.target_count));
    result.Set("eventNr", Napi::Number::New(env, info_.event_nr));
    result.Set("suspended", Napi::Boolean::New(env, info_.suspended != 0));
    result.Set("readOnly", Napi::Boolean::New(env, info_.read_only != 0));
    result.Set("liveTable", Napi::Boolean::New(env, info_.live_table != 0));
    result.Set("inactiveTable", Napi::Boolean::New(env, info_.inactive_table != 0));
    result.Set("deferredRemove", Napi::Boolean::New(env, info_.deferred_remove != 0));
    return result;
  }
  struct dm_info info_ = {};
  std::string uuid_;
};

Napi::Value Info(const Napi::CallbackInfo& info) {
  Args args(info, "dm.info", 1);
  return (new InfoWorker(info.Env(), DeviceName(args, 0)))->Start();
}

// ---- status / table ------------------------------------------------------------------

class TargetsWorker : public DmWorker {
 public:
  TargetsWorker(Napi::Env env, const char* resource, int type, std::string name)
      : DmWorker(env, resource, std::move(name)), type_(type) {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(type_);
    if (!task || !RunTask(task.get(), type_)) return;
    void* next = nullptr;
    do {
      uint64_t start = 0, length = 0;
      char* type = nullptr;
      char* params = nullptr;
      next = dm_get_next_target(task.get(), next, &start, &length, &type, &params);
      if (type != nullptr) targets_.push_back(Target{start, length, type, params != nullptr ? params : ""});
    } while (next != nullptr);
  }
  Napi::Value Result(Napi::Env env) override { return TargetsToJs(env, targets_); }
  int type_;
  std::vector<Target> targets_;
};

Napi::Value Status(const Napi::CallbackInfo& info) {
  Args args(info, "dm.status", 1);
  return (new TargetsWorker(info.Env(), "dmthin:dm.status", DM_DEVICE_STATUS, DeviceName(args, 0)))->Start();
}

Napi::Value Table(const Napi::CallbackInfo& info) {
  Args args(info, "dm.table", 1);
  return (new TargetsWorker(info.Env(), "dmthin:dm.table", DM_DEVICE_TABLE, DeviceName(args, 0)))->Start();
}

// ---- deps / list ----------------------------------------------------------------------

class DepsWorker : public DmWorker {
 public:
  DepsWorker(Napi::Env env, std::string name) : DmWorker(env, "dmthin:dm.deps", std::move(name)) {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(DM_DEVICE_DEPS);
    if (!task || !RunTask(task.get(), DM_DEVICE_DEPS)) return;
    struct dm_deps* deps = dm_task_get_deps(task.get());
    if (deps == nullptr) return;
    for (uint32_t i = 0; i < deps->count; i++) {
      deps_.push_back(DevNumber{major(deps->device[i]), minor(deps->device[i])});
    }
  }
  Napi::Value Result(Napi::Env env) override { return DevNumbersToJs(env, deps_); }
  std::vector<DevNumber> deps_;
};

Napi::Value Deps(const Napi::CallbackInfo& info) {
  Args args(info, "dm.deps", 1);
  return (new DepsWorker(info.Env(), DeviceName(args, 0)))->Start();
}

class ListWorker : public DmWorker {
 public:
  explicit ListWorker(Napi::Env env) : DmWorker(env, "dmthin:dm.list", "") {}

 private:
  void RunDm() override {
    TaskPtr task = NewTask(DM_DEVICE_LIST);
    if (!task || !RunTask(task.get(), DM_DEVICE_LIST)) return;
    struct dm_names* names = dm_task_get_names(task.get());
    if (names == nullptr || names->dev == 0) return;
    unsigned next = 0;
    do {
      names = reinterpret_cast<struct dm_names*>(reinterpret_cast<char*>(names) + next);
      entries_.emplace_back(names->name, DevNumber{major(names->dev), minor(names->dev)});
      next = names->next;
    } while (next != 0);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Array array = Napi::Array::New(env, entries_.size());
    for (size_t i = 0; i < entries_.size(); i++) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", Napi::String::New(env, entries_[i].first));
      entry.Set("major", Napi::Number::New(env, entries_[i].second.major));
      entry.Set("minor", Napi::Number::New(env, entries_[i].second.minor));
      array.Set(i, entry);
    }
    return array;
  }
  std::vector<std::pair<std::string, DevNumber>> entries_;
};

Napi::Value List(const Napi::CallbackInfo& info) { return (new ListWorker(info.Env()))->Start(); }

// ---- udev and logging settings -------------------------------------------------------------

// These take the library lock briefly on the calling thread: they only read
// or set library flags and never wait on the kernel.
Napi::Value SetUdevSync(const Napi::CallbackInfo& info) {
  Args args(info, "dm.setUdevSync", 1);
  if (!info[0].IsBoolean()) args.Throw("enabled must be a boolean");
  std::vector<DmLogEntry> ignored;
  DmSession session(&ignored);
  dm_udev_set_sync_support(info[0].As<Napi::Boolean>().Value() ? 1 : 0);
  return info.Env().Undefined();
}

Napi::Value UdevSync(const Napi::CallbackInfo& info) {
  std::vector<DmLogEntry> ignored;
  DmSession session(&ignored);
  return Napi::Boolean::New(info.Env(), dm_udev_get_sync_support() != 0);
}

Napi::Value SetLogger(const Napi::CallbackInfo& info) {
  Args args(info, "dm.setLogger", 1);
  AddonData* data = GetAddonData(info.Env());
  if (info[0].IsNull() || info[0].IsUndefined()) {
    data->dm_logger.Reset();
  } else if (info[0].IsFunction()) {
    data->dm_logger = Napi::Persistent(info[0].As<Napi::Function>());
  } else {
    args.Throw("logger must be a function or null");
  }
  return info.Env().Undefined();
}

Napi::Value SetLogLevel(const Napi::CallbackInfo& info) {
  Args args(info, "dm.setLogLevel", 1);
  uint64_t level = args.Uint64(0, "level");
  if (level < 2 || level > 7) args.Throw("level must be between 2 (fatal) and 7 (debug)");
  SetDmLogLevel(static_cast<int>(level));
  return info.Env().Undefined();
}

}  // namespace

void InitDm(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("create", Napi::Function::New(env, Create, "create"));
  exports.Set("reload", Napi::Function::New(env, Reload, "reload"));
  exports.Set("remove", Napi::Function::New(env, Remove, "remove"));
  exports.Set("suspend", Napi::Function::New(env, Suspend, "suspend"));
  exports.Set("resume", Napi::Function::New(env, Resume, "resume"));
  exports.Set("message", Napi::Function::New(env, Message, "message"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("status", Napi::Function::New(env, Status, "status"));
  exports.Set("table", Napi::Function::New(env, Table, "table"));
  exports.Set("deps", Napi::Function::New(env, Deps, "deps"));
  exports.Set("list", Napi::Function::New(env, List, "list"));
  exports.Set("setUdevSync", Napi::Function::New(env, SetUdevSync, "setUdevSync"));
  exports.Set("udevSync", Napi::Function::New(env, UdevSync, "udevSync"));
  exports.Set("setLogger", Napi::Function::New(env, SetLogger, "setLogger"));
  exports.Set("setLogLevel", Napi::Function::New(env, SetLogLevel, "setLogLevel"));
}

}  // namespace dmthin
