// addon.h — per-environment state of the addon.
#pragma once
#include <napi.h>

#include <memory>

#include "bridge.h"

namespace vmsnap {

struct Addon {
  std::shared_ptr<Bridge> bridge;
  Napi::FunctionReference connectionClass;
};

inline Addon& AddonOf(Napi::Env env) { return *env.GetInstanceData<Addon>(); }

}  // namespace vmsnap
