// bridge.h — the way back from libvirt's threads to the JS thread.
//
// One Napi::ThreadSafeFunction per addon instance carries every completion (promise results)
// and every event (domain lifecycle, agent lifecycle, connection closed) to the JS thread, in
// order. It keeps Node alive only while promises are pending: events alone never hold the
// process open, in the way an unref'd socket doesn't.
#pragma once
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace vmsnap {

/** A libvirt failure, copied on the thread that saw it (libvirt keeps errors per thread). */
struct LibvirtError {
  int code;
  int domain;
  std::string message;
  /** Whether the connection was still alive right after the failure: a dead one means "lost". */
  bool connectionAlive;
};

/** The calling thread's last libvirt error; `conn` (optional) is probed for liveness. */
LibvirtError LastError(virConnectPtr conn);

/** The JS Error for a libvirt failure: message plus numeric `code`, `domain`, `connectionAlive`. */
Napi::Value ErrorValue(Napi::Env env, const LibvirtError& error);

/** Builds the call's JS value on the JS thread from what the worker thread computed. */
using Result = std::function<Napi::Value(Napi::Env)>;
/** Runs on a pool thread; returns the result builder or throws LibvirtError. */
using Work = std::function<Result()>;

class Bridge : public std::enable_shared_from_this<Bridge> {
 public:
  /** Creates the bridge of this addon instance; call once from module init. */
  static std::shared_ptr<Bridge> Create(Napi::Env env);

  /** Runs `task` on the JS thread; from any thread. False when the environment is gone. */
  bool Post(std::function<void(Napi::Env)> task);

  /** Runs `work` on a pool thread and settles the returned promise with its outcome. */
  Napi::Promise Run(Napi::Env env, Work work);

 private:
  using Task = std::function<void(Napi::Env)>;
  static void Deliver(Napi::Env env, Napi::Function, Bridge*, Task* task);
  void Hold(Napi::Env env);
  void Drop(Napi::Env env);

  std::mutex mutex_;
  bool open_ = true;  // false once the environment is torn down
  size_t pending_ = 0;  // promises in flight; JS thread only
  Napi::TypedThreadSafeFunction<Bridge, Task, Deliver> tsfn_;
};

/** A JS callback that libvirt's threads may invoke; deleted on the JS thread only. */
struct Listener {
  Napi::FunctionReference fn;
  std::shared_ptr<Bridge> bridge;
};

/** libvirt's free-callback for a Listener: hands the deletion to the JS thread. */
void FreeListener(void* opaque);

}  // namespace vmsnap
