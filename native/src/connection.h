// connection.h — one libvirt connection as a JS object whose methods return promises.
//
// Every method addresses a domain by name and looks it up inside the same pool job, so JS never
// holds a stale virDomainPtr and each call costs one thread hop. Each job holds its own
// reference on the virConnectPtr: close() never waits for, nor frees memory under, a call that
// is still running (or hung) on another thread.
#pragma once
#include <libvirt/libvirt.h>
#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "bridge.h"

namespace vmsnap {

class Connection : public Napi::ObjectWrap<Connection> {
 public:
  static Napi::Function Define(Napi::Env env);
  /** open(uri, keepaliveInterval, keepaliveCount, onClose(reason)) → Promise<Connection> */
  static Napi::Value Open(const Napi::CallbackInfo& info);

  explicit Connection(const Napi::CallbackInfo& info);
  ~Connection() override;

 private:
  /** What this connection hangs on libvirt, so close() can undo it. */
  struct Attachments {
    std::mutex mutex;
    std::vector<int> eventIds;  // domain-event registrations
    // The close-callback listener is ours to free: drivers without close callbacks (test://)
    // accept the registration but never call its free-callback.
    Listener* onClose = nullptr;
  };

  Napi::Value Call(const Napi::CallbackInfo& info, std::function<Result(virConnectPtr)> work);
  static Napi::Value Closed(Napi::Env env);
  static void Release(virConnectPtr conn, std::shared_ptr<Attachments> attachments);

  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value IsAlive(const Napi::CallbackInfo& info);
  Napi::Value DomainInfo(const Napi::CallbackInfo& info);
  Napi::Value DomainInfoByUUID(const Napi::CallbackInfo& info);
  Napi::Value DomainXml(const Napi::CallbackInfo& info);
  Napi::Value IsActive(const Napi::CallbackInfo& info);
  Napi::Value FSFreeze(const Napi::CallbackInfo& info);
  Napi::Value FSThaw(const Napi::CallbackInfo& info);
  Napi::Value FSInfo(const Napi::CallbackInfo& info);
  Napi::Value AgentSetResponseTimeout(const Napi::CallbackInfo& info);
  Napi::Value QemuAgentCommand(const Napi::CallbackInfo& info);
  Napi::Value QemuMonitorCommand(const Napi::CallbackInfo& info);
  Napi::Value Suspend(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);
  Napi::Value SnapshotCreate(const Napi::CallbackInfo& info);
  Napi::Value SnapshotList(const Napi::CallbackInfo& info);
  Napi::Value SnapshotXml(const Napi::CallbackInfo& info);
  Napi::Value SnapshotDelete(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Restore(const Napi::CallbackInfo& info);
  Napi::Value RegisterDomainEvent(const Napi::CallbackInfo& info);
  Napi::Value DeregisterDomainEvent(const Napi::CallbackInfo& info);
  Napi::Value DomainMetadata(const Napi::CallbackInfo& info);
  Napi::Value DomainMetadataByUUID(const Napi::CallbackInfo& info);
  // Restore (VMRestore).
  Napi::Value DefineXml(const Napi::CallbackInfo& info);
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);
  // A memory save past its budget: stop QEMU's job, and see when it is gone.
  Napi::Value AbortJob(const Napi::CallbackInfo& info);
  Napi::Value JobType(const Napi::CallbackInfo& info);
  Napi::Value Undefine(const Napi::CallbackInfo& info);
  Napi::Value SaveImageXml(const Napi::CallbackInfo& info);
  // Writing one element of a live domain's <metadata>: the guard's record of a thaw it did.
  Napi::Value SetDomainMetadataByUUID(const Napi::CallbackInfo& info);

  virConnectPtr conn_ = nullptr;  // JS thread only; null once closed
  std::shared_ptr<Attachments> attachments_ = std::make_shared<Attachments>();
};

}  // namespace vmsnap
