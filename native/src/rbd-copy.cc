// rbd-copy.cc — the librbd addon: copies one RBD image snapshot, addressed by its snapshot id,
// into a new image.
//
// Why librbd and not the `rbd` CLI: on Ceph 16 a group snapshot's per-image snapshots live in the
// image's *group* snapshot namespace, and every CLI command that takes `image@snap` (clone,
// export, deep cp, snap rename/protect) fails with ENOENT for them; QEMU's rbd driver cannot open
// them either. librbd's rbd_snap_set_by_id can, and then the data is read like any snapshot.
// Never call rbd_deep_copy with such a snapshot set: librbd 16 aborts the process
// (ceph_assert(snap_id != CEPH_NOSNAP) in object_map::SnapshotRollbackRequest).
//
// The copy reads only the extents diff_iterate reports as existing (whole objects, using the
// object map when the image has one), a few reads and writes in flight at once, and writes the
// caller's marker into the new image's metadata last: an image without the marker is a copy
// that did not finish, which the caller removes and starts again.
//
// Each copy runs on its own thread (a copy of a large image takes seconds and Ceph may stall up
// to its op timeout): never on libuv's pool, which Node's fs and dns share. The result comes back
// through a ThreadSafeFunction, which holds Node alive only while copies are pending.
#include <napi.h>
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

/** A Ceph failure: the negative errno librbd returned and what was being done. */
struct CephError {
  int errnum;  // positive errno
  std::string operation;
};

int Must(int rc, const std::string& operation) {
  if (rc < 0) throw CephError{-rc, operation};
  return rc;
}

struct CopyRequest {
  std::string conf;
  std::string clientId;
  std::string keyring;
  unsigned opTimeoutSeconds = 10;
  std::string pool;
  std::string ns;
  std::string image;
  uint64_t snapId = 0;
  std::string destPool;
  std::string destNs;
  std::string destImage;
  std::string markerKey;
  std::string markerValue;
};

struct CopyResult {
  uint64_t size = 0;
  uint64_t bytesCopied = 0;
  uint64_t extents = 0;
  double elapsedMs = 0;
};

// ---- RAII around the C API ------------------------------------------------------------------

struct Cluster {
  rados_t handle = nullptr;
  ~Cluster() {
    if (handle) rados_shutdown(handle);
  }
};

struct IoCtx {
  rados_ioctx_t handle = nullptr;
  ~IoCtx() {
    if (handle) rados_ioctx_destroy(handle);
  }
};

struct Image {
  rbd_image_t handle = nullptr;
  ~Image() {
    if (handle) rbd_close(handle);
  }
};

struct Options {
  rbd_image_options_t handle = nullptr;
  Options() { rbd_image_options_create(&handle); }
  ~Options() { rbd_image_options_destroy(handle); }
};

void Connect(Cluster& cluster, const CopyRequest& r) {
  Must(rados_create(&cluster.handle, r.clientId.c_str()), "rados_create");
  Must(rados_conf_read_file(cluster.handle, r.conf.c_str()), "read " + r.conf);
  Must(rados_conf_set(cluster.handle, "keyring", r.keyring.c_str()), "set keyring");
  // The same fail-fast timeouts the CLI runner passes: a dead OSD or mon must end the copy.
  auto timeout = std::to_string(r.opTimeoutSeconds);
  for (const char* key : {"rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"})
    Must(rados_conf_set(cluster.handle, key, timeout.c_str()), std::string("set ") + key);
  Must(rados_connect(cluster.handle), "connect");
}

void OpenPool(Cluster& cluster, IoCtx& io, const std::string& pool, const std::string& ns) {
  Must(rados_ioctx_create(cluster.handle, pool.c_str(), &io.handle), "open pool " + pool);
  rados_ioctx_set_namespace(io.handle, ns.empty() ? nullptr : ns.c_str());
}

/** Features a plain new image may carry: journaling and mirroring are the pool admin's choice. */
constexpr uint64_t kCopiedFeatures = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                                     RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
                                     RBD_FEATURE_DEEP_FLATTEN;

struct Extent {
  uint64_t offset;
  uint64_t length;
};

int CollectExtent(uint64_t offset, size_t length, int exists, void* arg) {
  if (exists) static_cast<std::vector<Extent>*>(arg)->push_back({offset, length});
  return 0;
}

/** Copies `extents` from src to dst in chunks, up to `depth` reads/writes in flight. */
uint64_t CopyExtents(rbd_image_t src, rbd_image_t dst, const std::vector<Extent>& extents,
                     uint64_t chunk, size_t depth) {
  struct Slot {
    uint64_t offset = 0;
    size_t length = 0;
    std::vector<char> buffer;
    rbd_completion_t completion = nullptr;
  };
  std::deque<Slot> inflight;
  uint64_t copied = 0;
  auto finishOldest = [&]() {
    Slot slot = std::move(inflight.front());
    inflight.pop_front();
    rbd_aio_wait_for_complete(slot.completion);
    ssize_t rc = rbd_aio_get_return_value(slot.completion);
    rbd_aio_release(slot.completion);
    if (rc < 0) throw CephError{static_cast<int>(-rc), "read snapshot at " + std::to_string(slot.offset)};
    // A hole inside an existing object reads as zeros; writing zeros keeps the copy exact.
    ssize_t written = rbd_write2(dst, slot.offset, slot.length, slot.buffer.data(),
                                 LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL);
    if (written < 0) throw CephError{static_cast<int>(-written), "write at " + std::to_string(slot.offset)};
    copied += slot.length;
  };
  try {
    for (const auto& extent : extents) {
      for (uint64_t at = extent.offset; at < extent.offset + extent.length; at += chunk) {
        if (inflight.size() >= depth) finishOldest();
        Slot slot;
        slot.offset = at;
        slot.length = static_cast<size_t>(std::min(chunk, extent.offset + extent.length - at));
        slot.buffer.resize(slot.length);
        Must(rbd_aio_create_completion(nullptr, nullptr, &slot.completion), "aio completion");
        int rc = rbd_aio_read2(src, slot.offset, slot.length, slot.buffer.data(), slot.completion,
                               LIBRADOS_OP_FLAG_FADVISE_SEQUENTIAL);
        if (rc < 0) {
          rbd_aio_release(slot.completion);
          throw CephError{-rc, "read snapshot at " + std::to_string(at)};
        }
        inflight.push_back(std::move(slot));
      }
    }
    while (!inflight.empty()) finishOldest();
  } catch (...) {
    // Wait for the reads still in flight: their buffers must outlive them.
    for (auto& slot : inflight) {
      rbd_aio_wait_for_complete(slot.completion);
      rbd_aio_release(slot.completion);
    }
    throw;
  }
  return copied;
}

CopyResult Copy(const CopyRequest& r) {
  auto started = std::chrono::steady_clock::now();
  Cluster cluster;
  Connect(cluster, r);
  IoCtx srcIo, dstIo;
  OpenPool(cluster, srcIo, r.pool, r.ns);
  OpenPool(cluster, dstIo, r.destPool, r.destNs);

  Image src;
  Must(rbd_open_read_only(srcIo.handle, r.image.c_str(), &src.handle, nullptr), "open " + r.image);
  Must(rbd_snap_set_by_id(src.handle, r.snapId), "set snapshot id " + std::to_string(r.snapId));
  CopyResult result;
  Must(rbd_get_size(src.handle, &result.size), "size of snapshot");
  uint64_t features = 0;
  Must(rbd_get_features(src.handle, &features), "features of " + r.image);
  rbd_image_info_t info;
  Must(rbd_stat(src.handle, &info, sizeof info), "stat " + r.image);

  Options options;
  Must(rbd_image_options_set_uint64(options.handle, RBD_IMAGE_OPTION_FEATURES, features & kCopiedFeatures),
       "features option");
  Must(rbd_image_options_set_uint64(options.handle, RBD_IMAGE_OPTION_ORDER, info.order), "order option");
  Must(rbd_create4(dstIo.handle, r.destImage.c_str(), result.size, options.handle), "create " + r.destImage);

  Image dst;
  Must(rbd_open(dstIo.handle, r.destImage.c_str(), &dst.handle, nullptr), "open " + r.destImage);
  std::vector<Extent> extents;
  // whole_object=1: with fast-diff the object map answers without touching the data objects.
  Must(rbd_diff_iterate2(src.handle, nullptr, 0, result.size, 1, 1, CollectExtent, &extents),
       "list extents of snapshot");
  result.extents = extents.size();
  uint64_t chunk = uint64_t{1} << info.order;
  result.bytesCopied = CopyExtents(src.handle, dst.handle, extents, chunk, 8);
  Must(rbd_flush(dst.handle), "flush " + r.destImage);
  if (!r.markerKey.empty())
    Must(rbd_metadata_set(dst.handle, r.markerKey.c_str(), r.markerValue.c_str()), "set marker");
  result.elapsedMs =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return result;
}

// ---- JS glue ----------------------------------------------------------------------------------

std::string Field(const Napi::Object& o, const char* key, bool required = true) {
  auto v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (required) throw Napi::TypeError::New(o.Env(), std::string(key) + " is required");
    return "";
  }
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

struct Outcome {
  std::optional<CopyResult> result;
  CephError error;
};

void Settle(Napi::Env env, Napi::Function, Napi::Promise::Deferred* deferred, Outcome* outcome) {
  std::unique_ptr<Napi::Promise::Deferred> d(deferred);
  std::unique_ptr<Outcome> o(outcome);
  if (env == nullptr) return;
  if (o->result) {
    auto value = Napi::Object::New(env);
    value.Set("size", Napi::Number::New(env, static_cast<double>(o->result->size)));
    value.Set("bytesCopied", Napi::Number::New(env, static_cast<double>(o->result->bytesCopied)));
    value.Set("extents", Napi::Number::New(env, static_cast<double>(o->result->extents)));
    value.Set("elapsedMs", Napi::Number::New(env, o->result->elapsedMs));
    d->Resolve(value);
  } else {
    auto error = Napi::Error::New(env, o->error.operation + ": " + std::strerror(o->error.errnum));
    error.Set("errno", Napi::Number::New(env, o->error.errnum));
    error.Set("operation", Napi::String::New(env, o->error.operation));
    d->Reject(error.Value());
  }
}

using Completion = Napi::TypedThreadSafeFunction<Napi::Promise::Deferred, Outcome, Settle>;

/** copySnapshot(request) → Promise<{size, bytesCopied, extents, elapsedMs}>; see rbd-native.ts. */
Napi::Value CopySnapshot(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "a request object is required");
  auto o = info[0].As<Napi::Object>();
  CopyRequest r;
  r.conf = Field(o, "confPath");
  r.clientId = Field(o, "clientId");
  r.keyring = Field(o, "keyringPath");
  auto timeout = o.Get("opTimeoutSeconds");
  if (timeout.IsNumber()) r.opTimeoutSeconds = timeout.As<Napi::Number>().Uint32Value();
  r.pool = Field(o, "pool");
  r.ns = Field(o, "namespace", false);
  r.image = Field(o, "image");
  auto snapId = o.Get("snapId");
  if (!snapId.IsNumber()) throw Napi::TypeError::New(env, "snapId must be a number");
  r.snapId = static_cast<uint64_t>(snapId.As<Napi::Number>().Int64Value());
  r.destPool = Field(o, "destPool");
  r.destNs = Field(o, "destNamespace", false);
  r.destImage = Field(o, "destImage");
  r.markerKey = Field(o, "markerKey", false);
  r.markerValue = Field(o, "markerValue", false);

  auto* deferred = new Napi::Promise::Deferred(env);
  auto promise = deferred->Promise();
  auto completion = Completion::New(env, "rbd copy", 0, 1, deferred);
  std::thread([r = std::move(r), completion]() mutable {
    auto* outcome = new Outcome();
    try {
      outcome->result = Copy(r);
    } catch (const CephError& e) {
      outcome->error = e;
    } catch (const std::exception& e) {
      outcome->error = {EIO, e.what()};
    }
    if (completion.BlockingCall(outcome) != napi_ok) delete outcome;
    completion.Release();
  }).detach();
  return promise;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("copySnapshot", Napi::Function::New(env, CopySnapshot, "copySnapshot"));
  return exports;
}

}  // namespace

NODE_API_MODULE(vmsnap_rbd, Init)
