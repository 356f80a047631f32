-- Argo CD health of an s1mple.io Optimization / VariantTest (the same check for both kinds).
-- Reads the kstatus conditions the operator sets: Stalled=True -> Degraded (Invalid or Failed, with
-- the operator's message), Ready=True -> Healthy, anything else -> Progressing.  A spec change the
-- operator has not observed yet (metadata.generation ~= status.observedGeneration) is Progressing,
-- whatever the conditions of the previous generation say.
local hs = {status = "Progressing", message = "Waiting for the s1mple operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for the s1mple operator to observe generation " .. tostring(generation)
  return hs
end
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    conditions[condition.type] = condition
  end
end
local stalled, ready = conditions["Stalled"], conditions["Ready"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or ""
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
elseif obj.status.phase == "Failed" or obj.status.phase == "Invalid" then
  -- a status written before the kstatus conditions existed
  hs.status = "Degraded"
  hs.message = (conditions["Succeeded"] or {}).message or obj.status.phase
elseif obj.status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = (conditions["Succeeded"] or {}).message or ""
else
  local why = ready or conditions["Succeeded"]
  if why ~= nil and why.message ~= nil and why.message ~= "" then
    hs.message = why.message
  end
end
return hs
