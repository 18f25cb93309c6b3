// connection.cc — the libvirt calls, each run on a pool thread (see connection.h).
#include "connection.h"

#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "addon.h"
#include "pool.h"

namespace vmsnap {
namespace {

// ---- arguments (checked on the JS thread, before any work is queued) -----------------------

std::string Str(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>();
}

std::optional<std::string> OptStr(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNull() || info[i].IsUndefined()) return std::nullopt;
  return Str(info, i);
}

int Int(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

unsigned Flags(const Napi::CallbackInfo& info, size_t i) {
  return info[i].IsUndefined() ? 0 : info[i].As<Napi::Number>().Uint32Value();
}

std::vector<std::string> Strs(const Napi::CallbackInfo& info, size_t i) {
  std::vector<std::string> out;
  if (info[i].IsUndefined()) return out;
  if (!info[i].IsArray()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be an array");
  auto array = info[i].As<Napi::Array>();
  for (uint32_t k = 0; k < array.Length(); ++k) out.push_back(array.Get(k).As<Napi::String>());
  return out;
}

Napi::Function Fn(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsFunction()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a function");
  return info[i].As<Napi::Function>();
}

// ---- results (values captured on the pool thread, turned into JS on the JS thread) ---------

Result Undefined() { return [](Napi::Env env) { return env.Undefined(); }; }
Result Number(double v) { return [v](Napi::Env env) -> Napi::Value { return Napi::Number::New(env, v); }; }
Result Boolean(bool v) { return [v](Napi::Env env) -> Napi::Value { return Napi::Boolean::New(env, v); }; }
Result String(std::string v) { return [v](Napi::Env env) -> Napi::Value { return Napi::String::New(env, v); }; }
Result Strings(std::vector<std::string> v) {
  return [v](Napi::Env env) -> Napi::Value {
    auto array = Napi::Array::New(env, v.size());
    for (size_t k = 0; k < v.size(); ++k) array.Set(k, v[k]);
    return array;
  };
}

// ---- libvirt helpers (pool thread) ---------------------------------------------------------

int Check(virConnectPtr c, int rc) {
  if (rc < 0) throw LastError(c);
  return rc;
}

struct FreeC {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeC>;

std::string Take(virConnectPtr c, char* owned) {
  if (!owned) throw LastError(c);
  return CString(owned).get();
}

std::vector<const char*> CStrs(const std::vector<std::string>& v) {
  std::vector<const char*> out;
  for (auto& s : v) out.push_back(s.c_str());
  return out;
}

/** A domain looked up for the span of one call. */
class Domain {
 public:
  static Domain ByName(virConnectPtr c, const std::string& name) { return Domain(c, virDomainLookupByName(c, name.c_str())); }
  static Domain ByUUID(virConnectPtr c, const std::string& uuid) { return Domain(c, virDomainLookupByUUIDString(c, uuid.c_str())); }
  Domain(Domain&& other) noexcept : ptr_(other.ptr_) { other.ptr_ = nullptr; }
  ~Domain() { if (ptr_) virDomainFree(ptr_); }
  operator virDomainPtr() const { return ptr_; }

 private:
  Domain(virConnectPtr c, virDomainPtr p) : ptr_(p) { if (!p) throw LastError(c); }
  virDomainPtr ptr_;
};

/** A snapshot looked up for the span of one call. */
class Snapshot {
 public:
  Snapshot(virConnectPtr c, virDomainSnapshotPtr p) : ptr_(p) { if (!p) throw LastError(c); }
  ~Snapshot() { virDomainSnapshotFree(ptr_); }
  operator virDomainSnapshotPtr() const { return ptr_; }

 private:
  virDomainSnapshotPtr ptr_;
};

Result Info(virConnectPtr c, virDomainPtr d) {
  struct {
    std::string name, uuid;
    int id, state, reason, active, persistent;
  } v;
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  Check(c, virDomainGetUUIDString(d, uuid));
  Check(c, virDomainGetState(d, &v.state, &v.reason, 0));
  v.name = virDomainGetName(d);
  v.uuid = uuid;
  v.id = static_cast<int>(virDomainGetID(d));  // -1 when not running
  v.active = Check(c, virDomainIsActive(d));
  v.persistent = Check(c, virDomainIsPersistent(d));
  return [v](Napi::Env env) -> Napi::Value {
    auto o = Napi::Object::New(env);
    o.Set("name", v.name);
    o.Set("uuid", v.uuid);
    o.Set("id", v.id);
    o.Set("state", v.state);
    o.Set("reason", v.reason);
    o.Set("active", v.active == 1);
    o.Set("persistent", v.persistent == 1);
    return o;
  };
}

// virDomainGetMetadata. `uri` names the namespace of a VIR_DOMAIN_METADATA_ELEMENT and must be
// null for TITLE/DESCRIPTION. Absent metadata rejects with VIR_ERR_NO_DOMAIN_METADATA (80), as
// every other failure: the adapter decides what "absent" means.
Result Metadata(virConnectPtr c, virDomainPtr d, int type, const std::optional<std::string>& uri, unsigned flags) {
  return String(Take(c, virDomainGetMetadata(d, type, uri ? uri->c_str() : nullptr, flags)));
}

// ---- callbacks from libvirt's event-loop thread --------------------------------------------

void Invoke(Listener* listener, Napi::Env env, const std::initializer_list<napi_value>& args) {
  try {
    listener->fn.Call(args);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();  // surfaces as an uncaught exception, as from an emitter
  }
}

void OnClose(virConnectPtr, int reason, void* opaque) {
  auto* listener = static_cast<Listener*>(opaque);
  listener->bridge->Post([listener, reason](Napi::Env env) { Invoke(listener, env, {Napi::Number::New(env, reason)}); });
}

// Lifecycle (event, detail) and agent lifecycle (state, reason) callbacks share this shape.
void OnDomainEvent(virConnectPtr, virDomainPtr dom, int a, int b, void* opaque) {
  auto* listener = static_cast<Listener*>(opaque);
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  virDomainGetUUIDString(dom, uuid);
  std::string name = virDomainGetName(dom) ? virDomainGetName(dom) : "";
  listener->bridge->Post([listener, name, uuid = std::string(uuid), a, b](Napi::Env env) {
    auto event = Napi::Object::New(env);
    event.Set("domain", name);
    event.Set("uuid", uuid);
    event.Set("event", a);
    event.Set("detail", b);
    Invoke(listener, env, {event});
  });
}

}  // namespace

// ---- lifecycle of the connection -----------------------------------------------------------

Napi::Function Connection::Define(Napi::Env env) {
  return DefineClass(env, "Connection", {
    InstanceMethod<&Connection::Close>("close"),
    InstanceMethod<&Connection::IsAlive>("isAlive"),
    InstanceMethod<&Connection::DomainInfo>("domainInfo"),
    InstanceMethod<&Connection::DomainInfoByUUID>("domainInfoByUUID"),
    InstanceMethod<&Connection::DomainXml>("domainXml"),
    InstanceMethod<&Connection::IsActive>("isActive"),
    InstanceMethod<&Connection::FSFreeze>("fsFreeze"),
    InstanceMethod<&Connection::FSThaw>("fsThaw"),
    InstanceMethod<&Connection::FSInfo>("fsInfo"),
    InstanceMethod<&Connection::AgentSetResponseTimeout>("agentSetResponseTimeout"),
    InstanceMethod<&Connection::QemuAgentCommand>("qemuAgentCommand"),
    InstanceMethod<&Connection::QemuMonitorCommand>("qemuMonitorCommand"),
    InstanceMethod<&Connection::Suspend>("suspend"),
    InstanceMethod<&Connection::Resume>("resume"),
    InstanceMethod<&Connection::SnapshotCreate>("snapshotCreate"),
    InstanceMethod<&Connection::SnapshotList>("snapshotList"),
    InstanceMethod<&Connection::SnapshotXml>("snapshotXml"),
    InstanceMethod<&Connection::SnapshotDelete>("snapshotDelete"),
    InstanceMethod<&Connection::Save>("save"),
    InstanceMethod<&Connection::Restore>("restore"),
    InstanceMethod<&Connection::RegisterDomainEvent>("registerDomainEvent"),
    InstanceMethod<&Connection::DeregisterDomainEvent>("deregisterDomainEvent"),
    InstanceMethod<&Connection::DomainMetadata>("domainMetadata"),
    InstanceMethod<&Connection::DomainMetadataByUUID>("domainMetadataByUUID"),
    // Restore (VMRestore): appended here so that other additions merge without conflict.
    InstanceMethod<&Connection::DefineXml>("defineXml"),
    InstanceMethod<&Connection::Start>("start"),
    InstanceMethod<&Connection::Destroy>("destroy"),
    InstanceMethod<&Connection::AbortJob>("abortJob"),
    InstanceMethod<&Connection::JobType>("jobType"),
    InstanceMethod<&Connection::Undefine>("undefine"),
    InstanceMethod<&Connection::SaveImageXml>("saveImageXml"),
    InstanceMethod<&Connection::SetDomainMetadataByUUID>("setDomainMetadataByUUID"),
  });
}

Connection::Connection(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Connection>(info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "use open(uri) to create a Connection");
  conn_ = info[0].As<Napi::External<virConnect>>().Data();
}

Connection::~Connection() {
  // Collected without close(): release off the JS thread, closing a remote connection is an RPC.
  if (conn_) Submit([c = conn_, a = attachments_] { Release(c, a); });
}

Napi::Value Connection::Open(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto uri = Str(info, 0);
  int interval = Int(info, 1);
  unsigned count = static_cast<unsigned>(Int(info, 2));
  auto& addon = AddonOf(env);
  auto* onClose = new Listener{Napi::Persistent(Fn(info, 3)), addon.bridge};
  return addon.bridge->Run(env, [uri, interval, count, onClose]() -> Result {
    virConnectPtr c = virConnectOpen(uri.c_str());
    auto fail = [&](LibvirtError e) {
      if (c) virConnectClose(c);
      FreeListener(onClose);
      return e;
    };
    if (!c) throw fail(LastError(nullptr));
    // Keepalive notices a dead daemon within interval*count seconds. Drivers without a wire
    // (test://) refuse it with VIR_ERR_NO_SUPPORT; they cannot lose the connection anyway.
    if (virConnectSetKeepAlive(c, interval, count) < 0) {
      auto e = LastError(nullptr);
      if (e.code != VIR_ERR_NO_SUPPORT) throw fail(e);
    }
    if (virConnectRegisterCloseCallback(c, OnClose, onClose, nullptr) < 0) throw fail(LastError(c));
    return [c, onClose](Napi::Env env) -> Napi::Value {
      auto object = AddonOf(env).connectionClass.New({Napi::External<virConnect>::New(env, c)});
      Unwrap(object)->attachments_->onClose = onClose;
      return object;
    };
  });
}

void Connection::Release(virConnectPtr c, std::shared_ptr<Attachments> attachments) {
  std::vector<int> ids;
  Listener* onClose = nullptr;
  {
    std::lock_guard<std::mutex> lock(attachments->mutex);
    ids.swap(attachments->eventIds);
    std::swap(onClose, attachments->onClose);
  }
  // Failures are fine here: a dead connection has nothing left to deregister.
  for (int id : ids) virConnectDomainEventDeregisterAny(c, id);
  // The close callback holds a reference on the connection: without this it would never be freed.
  // Unregistering waits for a running callback, whose post then precedes the listener's deletion.
  virConnectUnregisterCloseCallback(c, OnClose);
  if (onClose) FreeListener(onClose);
  virConnectClose(c);
}

Napi::Value Connection::Close(const Napi::CallbackInfo& info) {
  auto c = conn_;
  conn_ = nullptr;
  auto a = attachments_;
  return AddonOf(info.Env()).bridge->Run(info.Env(), [c, a]() -> Result {
    if (c) Release(c, a);
    return Undefined();
  });
}

Napi::Value Connection::Closed(Napi::Env env) {
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Reject(ErrorValue(env, {VIR_ERR_INVALID_CONN, VIR_FROM_NONE, "connection is closed", false}));
  return deferred.Promise();
}

Napi::Value Connection::Call(const Napi::CallbackInfo& info, std::function<Result(virConnectPtr)> work) {
  auto env = info.Env();
  if (!conn_) return Closed(env);
  virConnectRef(conn_);  // this job's own reference: close() may run while it is in flight
  return AddonOf(env).bridge->Run(env, [c = conn_, work = std::move(work)]() -> Result {
    struct Unref {
      virConnectPtr c;
      ~Unref() { virConnectClose(c); }
    } unref{c};
    return work(c);
  });
}

// ---- the calls -----------------------------------------------------------------------------

Napi::Value Connection::IsAlive(const Napi::CallbackInfo& info) {
  return Call(info, [](virConnectPtr c) { return Boolean(Check(c, virConnectIsAlive(c)) == 1); });
}

Napi::Value Connection::DomainInfo(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) { return Info(c, Domain::ByName(c, name)); });
}

Napi::Value Connection::DomainInfoByUUID(const Napi::CallbackInfo& info) {
  auto uuid = Str(info, 0);
  return Call(info, [uuid](virConnectPtr c) { return Info(c, Domain::ByUUID(c, uuid)); });
}

Napi::Value Connection::DomainXml(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto flags = Flags(info, 1);
  return Call(info, [name, flags](virConnectPtr c) {
    return String(Take(c, virDomainGetXMLDesc(Domain::ByName(c, name), flags)));
  });
}

Napi::Value Connection::IsActive(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) { return Boolean(Check(c, virDomainIsActive(Domain::ByName(c, name))) == 1); });
}

Napi::Value Connection::FSFreeze(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto mountpoints = Strs(info, 1);
  return Call(info, [name, mountpoints](virConnectPtr c) {
    auto mp = CStrs(mountpoints);
    return Number(Check(c, virDomainFSFreeze(Domain::ByName(c, name), mp.empty() ? nullptr : mp.data(), mp.size(), 0)));
  });
}

Napi::Value Connection::FSThaw(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto mountpoints = Strs(info, 1);
  return Call(info, [name, mountpoints](virConnectPtr c) {
    auto mp = CStrs(mountpoints);
    return Number(Check(c, virDomainFSThaw(Domain::ByName(c, name), mp.empty() ? nullptr : mp.data(), mp.size(), 0)));
  });
}

Napi::Value Connection::FSInfo(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) -> Result {
    struct Fs {
      std::string mountpoint, name, fstype;
      std::vector<std::string> devAliases;
    };
    std::vector<Fs> list;
    virDomainFSInfoPtr* infos = nullptr;
    int n = Check(c, virDomainGetFSInfo(Domain::ByName(c, name), &infos, 0));
    for (int k = 0; k < n; ++k) {
      Fs fs{infos[k]->mountpoint, infos[k]->name, infos[k]->fstype, {}};
      for (size_t a = 0; a < infos[k]->ndevAlias; ++a) fs.devAliases.push_back(infos[k]->devAlias[a]);
      list.push_back(fs);
      virDomainFSInfoFree(infos[k]);
    }
    std::free(infos);
    return [list](Napi::Env env) -> Napi::Value {
      auto array = Napi::Array::New(env, list.size());
      for (size_t k = 0; k < list.size(); ++k) {
        auto o = Napi::Object::New(env);
        o.Set("mountpoint", list[k].mountpoint);
        o.Set("name", list[k].name);
        o.Set("fstype", list[k].fstype);
        o.Set("devAliases", Strings(list[k].devAliases)(env));
        array.Set(k, o);
      }
      return array;
    };
  });
}

Napi::Value Connection::AgentSetResponseTimeout(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  int seconds = Int(info, 1);
  return Call(info, [name, seconds](virConnectPtr c) {
    Check(c, virDomainAgentSetResponseTimeout(Domain::ByName(c, name), seconds, 0));
    return Undefined();
  });
}

Napi::Value Connection::QemuAgentCommand(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto command = Str(info, 1);
  int timeout = Int(info, 2);
  return Call(info, [name, command, timeout](virConnectPtr c) {
    return String(Take(c, virDomainQemuAgentCommand(Domain::ByName(c, name), command.c_str(), timeout, 0)));
  });
}

// QMP straight to QEMU, for what libvirt 9.0 has no API for (background snapshots). libvirt marks
// the domain tainted ("custom-monitor") for the rest of its QEMU process's life. `fds` are open
// descriptors of this process handed to QEMU with the command (a QMP `getfd` names them there);
// they stay open here, the caller closes them.
Napi::Value Connection::QemuMonitorCommand(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto command = Str(info, 1);
  std::vector<int> fds;
  if (!info[2].IsUndefined()) {
    if (!info[2].IsArray()) throw Napi::TypeError::New(info.Env(), "argument 2 must be an array");
    auto array = info[2].As<Napi::Array>();
    for (uint32_t k = 0; k < array.Length(); ++k) fds.push_back(array.Get(k).As<Napi::Number>().Int32Value());
  }
  return Call(info, [name, command, fds](virConnectPtr c) {
    char* result = nullptr;
    auto files = fds;
    Check(c, virDomainQemuMonitorCommandWithFiles(Domain::ByName(c, name), command.c_str(), files.size(),
                                                  files.empty() ? nullptr : files.data(), nullptr, nullptr,
                                                  &result, 0));
    return String(Take(c, result));
  });
}

Napi::Value Connection::Suspend(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) {
    Check(c, virDomainSuspend(Domain::ByName(c, name)));
    return Undefined();
  });
}

Napi::Value Connection::Resume(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) {
    Check(c, virDomainResume(Domain::ByName(c, name)));
    return Undefined();
  });
}

Napi::Value Connection::SnapshotCreate(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto xml = Str(info, 1);
  auto flags = Flags(info, 2);
  return Call(info, [name, xml, flags](virConnectPtr c) {
    Snapshot snap(c, virDomainSnapshotCreateXML(Domain::ByName(c, name), xml.c_str(), flags));
    return String(virDomainSnapshotGetName(snap));
  });
}

Napi::Value Connection::SnapshotList(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) {
    virDomainSnapshotPtr* snaps = nullptr;
    int n = Check(c, virDomainListAllSnapshots(Domain::ByName(c, name), &snaps, 0));
    std::vector<std::string> names;
    for (int k = 0; k < n; ++k) {
      names.push_back(virDomainSnapshotGetName(snaps[k]));
      virDomainSnapshotFree(snaps[k]);
    }
    std::free(snaps);
    return Strings(names);
  });
}

Napi::Value Connection::SnapshotXml(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto snapshot = Str(info, 1);
  return Call(info, [name, snapshot](virConnectPtr c) {
    Snapshot snap(c, virDomainSnapshotLookupByName(Domain::ByName(c, name), snapshot.c_str(), 0));
    return String(Take(c, virDomainSnapshotGetXMLDesc(snap, 0)));
  });
}

Napi::Value Connection::SnapshotDelete(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto snapshot = Str(info, 1);
  auto flags = Flags(info, 2);
  return Call(info, [name, snapshot, flags](virConnectPtr c) {
    Snapshot snap(c, virDomainSnapshotLookupByName(Domain::ByName(c, name), snapshot.c_str(), 0));
    Check(c, virDomainSnapshotDelete(snap, flags));
    return Undefined();
  });
}

Napi::Value Connection::Save(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto path = Str(info, 1);
  auto xml = OptStr(info, 2);
  auto flags = Flags(info, 3);
  return Call(info, [name, path, xml, flags](virConnectPtr c) {
    Check(c, virDomainSaveFlags(Domain::ByName(c, name), path.c_str(), xml ? xml->c_str() : nullptr, flags));
    return Undefined();
  });
}

Napi::Value Connection::Restore(const Napi::CallbackInfo& info) {
  auto path = Str(info, 0);
  auto xml = OptStr(info, 1);
  auto flags = Flags(info, 2);
  return Call(info, [path, xml, flags](virConnectPtr c) {
    Check(c, virDomainRestoreFlags(c, path.c_str(), xml ? xml->c_str() : nullptr, flags));
    return Undefined();
  });
}

Napi::Value Connection::RegisterDomainEvent(const Napi::CallbackInfo& info) {
  int eventId = Int(info, 0);
  if (eventId != VIR_DOMAIN_EVENT_ID_LIFECYCLE && eventId != VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE)
    throw Napi::RangeError::New(info.Env(), "only lifecycle and agent-lifecycle events are supported");
  auto fn = Fn(info, 1);
  if (!conn_) return Closed(info.Env());
  auto* listener = new Listener{Napi::Persistent(fn), AddonOf(info.Env()).bridge};
  auto attachments = attachments_;
  return Call(info, [eventId, listener, attachments](virConnectPtr c) {
    int id = virConnectDomainEventRegisterAny(c, nullptr, eventId, VIR_DOMAIN_EVENT_CALLBACK(OnDomainEvent), listener,
                                              FreeListener);
    if (id < 0) {
      auto e = LastError(c);
      FreeListener(listener);  // libvirt calls the free-callback only for registered listeners
      throw e;
    }
    std::lock_guard<std::mutex> lock(attachments->mutex);
    attachments->eventIds.push_back(id);
    return Number(id);
  });
}

Napi::Value Connection::DeregisterDomainEvent(const Napi::CallbackInfo& info) {
  int id = Int(info, 0);
  auto attachments = attachments_;
  return Call(info, [id, attachments](virConnectPtr c) {
    Check(c, virConnectDomainEventDeregisterAny(c, id));
    std::lock_guard<std::mutex> lock(attachments->mutex);
    std::erase(attachments->eventIds, id);
    return Undefined();
  });
}

Napi::Value Connection::DomainMetadata(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  int type = Int(info, 1);
  auto uri = OptStr(info, 2);
  auto flags = Flags(info, 3);
  return Call(info, [name, type, uri, flags](virConnectPtr c) {
    return Metadata(c, Domain::ByName(c, name), type, uri, flags);
  });
}

Napi::Value Connection::DomainMetadataByUUID(const Napi::CallbackInfo& info) {
  auto uuid = Str(info, 0);
  int type = Int(info, 1);
  auto uri = OptStr(info, 2);
  auto flags = Flags(info, 3);
  return Call(info, [uuid, type, uri, flags](virConnectPtr c) {
    return Metadata(c, Domain::ByUUID(c, uuid), type, uri, flags);
  });
}

}  // namespace vmsnap

// ---- restore (VMRestore) ---------------------------------------------------------------------

namespace vmsnap {

Napi::Value Connection::DefineXml(const Napi::CallbackInfo& info) {
  auto xml = Str(info, 0);
  auto flags = Flags(info, 1);
  return Call(info, [xml, flags](virConnectPtr c) {
    virDomainPtr d = virDomainDefineXMLFlags(c, xml.c_str(), flags);
    if (!d) throw LastError(c);
    std::string name = virDomainGetName(d);
    virDomainFree(d);
    return String(name);
  });
}

Napi::Value Connection::Start(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto flags = Flags(info, 1);
  return Call(info, [name, flags](virConnectPtr c) {
    Check(c, virDomainCreateWithFlags(Domain::ByName(c, name), flags));
    return Undefined();
  });
}

Napi::Value Connection::Destroy(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto flags = Flags(info, 1);
  return Call(info, [name, flags](virConnectPtr c) {
    Check(c, virDomainDestroyFlags(Domain::ByName(c, name), flags));
    return Undefined();
  });
}

Napi::Value Connection::AbortJob(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) {
    Check(c, virDomainAbortJob(Domain::ByName(c, name)));
    return Undefined();
  });
}

// virDomainJobType of the domain's current job: 0 (VIR_DOMAIN_JOB_NONE) when there is none.
Napi::Value Connection::JobType(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  return Call(info, [name](virConnectPtr c) {
    virDomainJobInfo job{};
    Check(c, virDomainGetJobInfo(Domain::ByName(c, name), &job));
    return Number(static_cast<double>(job.type));
  });
}

Napi::Value Connection::Undefine(const Napi::CallbackInfo& info) {
  auto name = Str(info, 0);
  auto flags = Flags(info, 1);
  return Call(info, [name, flags](virConnectPtr c) {
    Check(c, virDomainUndefineFlags(Domain::ByName(c, name), flags));
    return Undefined();
  });
}

Napi::Value Connection::SaveImageXml(const Napi::CallbackInfo& info) {
  auto path = Str(info, 0);
  auto flags = Flags(info, 1);
  return Call(info, [path, flags](virConnectPtr c) {
    return String(Take(c, virDomainSaveImageGetXMLDesc(c, path.c_str(), flags)));
  });
}

// virDomainSetMetadata of the domain with this UUID: `metadata` null removes the element of
// namespace `uri`; `key` is the prefix libvirt writes it under. Flags are ModificationImpact.
Napi::Value Connection::SetDomainMetadataByUUID(const Napi::CallbackInfo& info) {
  auto uuid = Str(info, 0);
  int type = Int(info, 1);
  auto metadata = OptStr(info, 2);
  auto key = OptStr(info, 3);
  auto uri = OptStr(info, 4);
  auto flags = Flags(info, 5);
  return Call(info, [uuid, type, metadata, key, uri, flags](virConnectPtr c) {
    Check(c, virDomainSetMetadata(Domain::ByUUID(c, uuid), type, metadata ? metadata->c_str() : nullptr,
                                  key ? key->c_str() : nullptr, uri ? uri->c_str() : nullptr, flags));
    return Undefined();
  });
}

}  // namespace vmsnap
