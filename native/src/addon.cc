// addon.cc — module entry: libvirt's event loop and the exports.
//
// libvirt delivers domain events, close callbacks and keepalive only from a registered event
// loop. We use libvirt's default implementation on a dedicated thread, registered once per
// process before any connection opens (connections made earlier would never get keepalive).
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <napi.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "addon.h"
#include "connection.h"

namespace vmsnap {
namespace {

void StartEventLoop() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    // libvirt prints every error to stderr by default; ours travel to JS as rejections instead.
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
    virEventRegisterDefaultImpl();
    std::thread([] {
      for (;;) {
        // An iteration fails only on a broken poll(); back off instead of spinning.
        if (virEventRunDefaultImpl() < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }).detach();
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  StartEventLoop();
  auto* addon = new Addon{Bridge::Create(env), {}};
  addon->connectionClass = Napi::Persistent(Connection::Define(env));
  env.SetInstanceData(addon);
  exports.Set("open", Napi::Function::New(env, Connection::Open, "open"));
  exports.Set("libvirtVersion", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    unsigned long version = 0;
    virGetVersion(&version, nullptr, nullptr);
    return Napi::Number::New(info.Env(), static_cast<double>(version));
  }));
  return exports;
}

}  // namespace vmsnap

// The macro pastes its argument into an identifier, so it needs an unqualified name.
using vmsnap::Init;
NODE_API_MODULE(vmsnap_libvirt, Init)
