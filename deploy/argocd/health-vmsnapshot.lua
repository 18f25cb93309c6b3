-- Argo CD health check for vmsnap.io/VMSnapshot.
-- Install it in argocd-cm under the key `resource.customizations.health.vmsnap.io_VMSnapshot`.
-- Argo CD sets the global `obj` to the resource and reads the returned table `hs`:
-- hs.status is Healthy, Progressing, Degraded, Suspended, Missing or Unknown; hs.message is text.
-- Argo CD runs Lua 5.1 (gopher-lua), so nothing newer than 5.1 is used here.
--
--   Succeeded                                              -> Healthy
--   Pending, Frozen, DisksSnapshotted, MemorySaved, Thawed -> Progressing (also: no status yet)
--   Failed, or condition Stalled=True                      -> Degraded

local hs = {}

local PROGRESSING = {
  Pending = "waiting to freeze the guest",
  Frozen = "guest frozen, snapshotting disks",
  DisksSnapshotted = "disks snapshotted",
  MemorySaved = "memory saved",
  Thawed = "guest thawed, finishing",
}

-- The condition of the given type, or nil.
local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

-- "Reason: message", from whichever parts are present.
local function explain(reason, message, fallback)
  if reason ~= nil and message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  return reason or message or fallback
end

local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the agent on the snapshot's node to pick it up"
  return hs
end

if status.phase == "Failed" then
  local err = status.error or {}
  hs.status = "Degraded"
  hs.message = explain(err.reason, err.message, "Snapshot failed")
  return hs
end

-- kstatus: Stalled=True means no progress without a human, whatever the phase says.
local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled.reason, stalled.message, "Snapshot stalled")
  return hs
end

-- A status written for an older spec says nothing about the current one.
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the agent to observe generation " .. tostring(generation)
  return hs
end

if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Snapshot ready"
  if status.freezeDurationMs ~= nil then
    hs.message = hs.message .. "; guest frozen " .. tostring(status.freezeDurationMs) .. " ms"
  end
  return hs
end

if PROGRESSING[status.phase] ~= nil then
  hs.status = "Progressing"
  hs.message = status.phase .. ": " .. PROGRESSING[status.phase]
  return hs
end

-- A phase this script does not know (a newer vmsnap): say so rather than guess.
hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(status.phase)
return hs
