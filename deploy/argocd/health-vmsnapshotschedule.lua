-- Argo CD health check for vmsnap.io/VMSnapshotSchedule.
-- Install it in argocd-cm under the key `resource.customizations.health.vmsnap.io_VMSnapshotSchedule`.
-- Argo CD sets the global `obj` and reads the returned table `hs` (see health-vmsnapshot.lua).
-- Lua 5.1 (gopher-lua), as Argo CD runs it.
--
--   no status yet, or status of an older generation -> Progressing
--   Stalled=True (a spec the agent refuses)         -> Degraded
--   Ready=False (the newest finished run failed)    -> Degraded
--   suspended                                       -> Suspended
--   Ready=True                                      -> Healthy (message: the next run)

local hs = {}

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

local function explain(c, fallback)
  if c.reason ~= nil and c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason or c.message or fallback
end

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil or status.observedGeneration == nil
    or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the agent on the template's node to take up this generation"
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled, "Schedule stalled")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "False" then
  hs.status = "Degraded"
  hs.message = explain(ready, "Schedule not ready")
  return hs
end

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Suspended: no runs until spec.suspend is false"
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = explain(ready, "Scheduled")
  return hs
end

hs.status = "Progressing"
hs.message = "Waiting for the agent to report readiness"
return hs
