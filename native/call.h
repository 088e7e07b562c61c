// CallWorker: a PromiseWorker made of two functions, for the many calls
// that are one syscall (or a few) with a small result.
#ifndef DMTHIN_CALL_H_
#define DMTHIN_CALL_H_

#include <napi.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>
#include <utility>

#include "worker.h"

namespace dmthin {

class CallWorker : public PromiseWorker {
 public:
  using RunFn = std::function<void(CallWorker&)>;
  using ResultFn = std::function<Napi::Value(Napi::Env)>;

  CallWorker(Napi::Env env, const char* resource, RunFn run, ResultFn result)
      : PromiseWorker(env, resource), run_(std::move(run)), result_(std::move(result)) {}

  // FailErrno records the current errno against syscall and path.
  void FailErrno(const std::string& syscall, const std::string& path) { Fail(errno, syscall, path); }
  void FailWith(int err, const std::string& syscall, const std::string& path) { Fail(err, syscall, path); }

 private:
  void Run() override { run_(*this); }
  Napi::Value Result(Napi::Env env) override { return result_ ? result_(env) : env.Undefined(); }

  RunFn run_;
  ResultFn result_;
};

// StartCall queues a CallWorker and returns its Promise.
inline Napi::Value StartCall(Napi::Env env, const char* resource, CallWorker::RunFn run,
                             CallWorker::ResultFn result = nullptr) {
  return (new CallWorker(env, resource, std::move(run), std::move(result)))->Start();
}

// Fd closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  // release hands the descriptor to the caller, who must close it.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace dmthin

#endif  // DMTHIN_CALL_H_
