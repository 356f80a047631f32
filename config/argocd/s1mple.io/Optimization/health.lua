-- Argo CD health of an s1mple.io Optimization / VariantTest (the same check for both kinds).
-- Reads the kstatus conditions the operator sets: Stalled=True -> Degraded (Invalid or Failed, with
-- the operator's message), Ready=True -> Healthy, anything else -> Progressing with Ready's message.
-- Conditions written for an older generation do not count: a spec change the operator has not
-- observed yet (metadata.generation ~= status.observedGeneration) is Progressing.
local hs = {status = "Progressing", message = "Waiting for the s1mple operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
local conditions = {}
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if generation == nil or condition.observedGeneration == nil or condition.observedGeneration == generation then
      conditions[condition.type] = condition
    end
  end
end
local stalled, ready = conditions["Stalled"], conditions["Ready"]
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = stalled.message or ""
elseif generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.message = "Waiting for the s1mple operator to observe generation " .. tostring(generation)
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    hs.message = ready.message  -- e.g. storage unavailable while planning it
  end
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
elseif ready == nil and (obj.status.phase == "Failed" or obj.status.phase == "Invalid") then
  -- a status written before the kstatus conditions existed
  hs.status = "Degraded"
  hs.message = (conditions["Succeeded"] or {}).message or obj.status.phase
elseif ready == nil and obj.status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = (conditions["Succeeded"] or {}).message or ""
elseif ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  hs.message = ready.message
end
return hs
