// PromiseWorker: the shape of every blocking call in this addon.
//
// The entry point validates and copies its arguments into the worker (no JS
// values cross threads), Run() does the syscalls on the libuv pool, and the
// Promise settles on the main thread: Result() on success, a Node-style
// system error built from the recorded Failure otherwise.
#ifndef DMTHIN_WORKER_H_
#define DMTHIN_WORKER_H_

#include <napi.h>

#include <string>
#include <utility>

#include "errors.h"

namespace dmthin {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* resource_name)
      : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queue starts the worker and hands its Promise to JavaScript.
  Napi::Value Start() {
    Napi::Promise promise = deferred_.Promise();
    Queue();
    return promise;
  }

 protected:
  // Run is called on a worker thread. It must not touch JavaScript values.
  virtual void Run() = 0;

  // Result is called on the main thread after Run succeeded.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  // Settled is called on the main thread before the Promise settles,
  // whichever way; dm workers flush the libdevmapper log from here.
  virtual void Settled(Napi::Env env) {}

  // Fail records why Run failed; the first failure wins.
  void Fail(int err, std::string syscall, std::string path, std::string detail = "") {
    if (failed_) return;
    failed_ = true;
    failure_ = Failure{err, std::move(syscall), std::move(path), std::move(detail)};
  }

  bool failed() const { return failed_; }

 private:
  void Execute() override {
    Run();
    if (failed_) SetError(failure_.syscall);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Settled(env);
    deferred_.Resolve(Result(env));
  }

  void OnError(const Napi::Error&) override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Settled(env);
    deferred_.Reject(SystemError(env, failure_).Value());
  }

  Napi::Promise::Deferred deferred_;
  bool failed_ = false;
  Failure failure_;
};

}  // namespace dmthin

#endif  // DMTHIN_WORKER_H_
