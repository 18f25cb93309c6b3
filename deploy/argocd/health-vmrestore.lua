-- Argo CD health check for vmsnap.io/VMRestore.
-- Install it in argocd-cm under the key `resource.customizations.health.vmsnap.io_VMRestore`.
-- Argo CD sets the global `obj` and reads the returned table `hs` (Lua 5.1, gopher-lua).
--
--   Succeeded                                                       -> Healthy
--   Pending, TargetStopped, DisksRestored, MemoryRestored, Resumed,
--   Thawed                                                          -> Progressing (also: no status yet)
--   Failed, or condition Stalled=True                               -> Degraded

local hs = {}

local PROGRESSING = {
  Pending = "checking the snapshot and the target",
  TargetStopped = "target stopped, restoring its disks",
  DisksRestored = "disks restored",
  MemoryRestored = "memory restored, vCPUs paused",
  Resumed = "guest resumed, thawing its filesystems",
  Thawed = "guest thawed, finishing",
}

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

local function explain(reason, message, fallback)
  if reason ~= nil and message ~= nil and message ~= "" then
    return reason .. ": " .. message
  end
  return reason or message or fallback
end

local status = obj.status
if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the agent of the snapshot's node to pick it up"
  return hs
end

if status.phase == "Failed" then
  local err = status.error or {}
  hs.status = "Degraded"
  hs.message = explain(err.reason, err.message, "Restore failed")
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled.reason, stalled.message, "Restore stalled")
  return hs
end

if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Restored " .. tostring(status.targetDomain or "")
  if status.resumeToThawMs ~= nil then
    hs.message = hs.message .. "; thawed " .. tostring(status.resumeToThawMs) .. " ms after the resume"
  end
  return hs
end

if PROGRESSING[status.phase] ~= nil then
  hs.status = "Progressing"
  hs.message = status.phase .. ": " .. PROGRESSING[status.phase]
  return hs
end

hs.status = "Unknown"
hs.message = "Unrecognised phase " .. tostring(status.phase)
return hs
