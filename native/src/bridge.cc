// bridge.cc — completions and events from libvirt's threads to the JS thread (see bridge.h).
#include "bridge.h"

#include <exception>

#include "pool.h"

namespace vmsnap {

LibvirtError LastError(virConnectPtr conn) {
  virErrorPtr e = virGetLastError();
  LibvirtError out{e ? e->code : -1, e ? e->domain : -1,
                   e && e->message ? e->message : "libvirt call failed without an error", true};
  // Copy first: any libvirt API call, virConnectIsAlive included, resets the thread's error.
  if (conn) out.connectionAlive = virConnectIsAlive(conn) == 1;
  return out;
}

Napi::Value ErrorValue(Napi::Env env, const LibvirtError& error) {
  auto err = Napi::Error::New(env, error.message);
  err.Set("code", Napi::Number::New(env, error.code));
  err.Set("domain", Napi::Number::New(env, error.domain));
  err.Set("connectionAlive", Napi::Boolean::New(env, error.connectionAlive));
  return err.Value();
}

std::shared_ptr<Bridge> Bridge::Create(Napi::Env env) {
  auto bridge = std::shared_ptr<Bridge>(new Bridge());
  bridge->tsfn_ = decltype(tsfn_)::New(env, "vmsnap-libvirt", 0, 1, bridge.get());
  bridge->tsfn_.Unref(env);
  // Runs before Node finalizes thread-safe functions: later posts from threads still inside
  // libvirt then fail cleanly instead of touching a dead environment.
  env.AddCleanupHook([bridge] {
    std::lock_guard<std::mutex> lock(bridge->mutex_);
    bridge->open_ = false;
    bridge->tsfn_.Release();
  });
  return bridge;
}

bool Bridge::Post(Task task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!open_) return false;
  auto* boxed = new Task(std::move(task));
  if (tsfn_.NonBlockingCall(boxed) != napi_ok) {  // unbounded queue: fails only when closing
    delete boxed;
    return false;
  }
  return true;
}

void Bridge::Deliver(Napi::Env env, Napi::Function, Bridge*, Task* task) {
  if (env != nullptr) (*task)(env);
  delete task;
}

void Bridge::Hold(Napi::Env env) {
  if (pending_++ == 0) tsfn_.Ref(env);
}

void Bridge::Drop(Napi::Env env) {
  if (--pending_ == 0) tsfn_.Unref(env);
}

Napi::Promise Bridge::Run(Napi::Env env, Work work) {
  auto deferred = Napi::Promise::Deferred::New(env);
  Hold(env);
  Submit([self = shared_from_this(), deferred, work = std::move(work)] {
    Result result;
    LibvirtError error{-1, -1, "", true};
    try {
      result = work();
    } catch (const LibvirtError& e) {
      error = e;
    } catch (const std::exception& e) {
      error.message = e.what();
    }
    // Post fails once the environment is gone; the job's own reference keeps the bridge alive.
    self->Post([self, deferred, result, error](Napi::Env env) {
      self->Drop(env);
      if (result) {
        try {
          deferred.Resolve(result(env));
        } catch (const Napi::Error& e) {
          deferred.Reject(e.Value());
        }
        return;
      }
      deferred.Reject(ErrorValue(env, error));
    });
  });
  return deferred.Promise();
}

void FreeListener(void* opaque) {
  auto* listener = static_cast<Listener*>(opaque);
  // A FunctionReference may only be released on the JS thread. If the environment is already
  // gone the listener is leaked, which is harmless at process exit.
  listener->bridge->Post([listener](Napi::Env) { delete listener; });
}

}  // namespace vmsnap
