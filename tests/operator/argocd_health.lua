-- Runs an Argo CD health.lua the way Argo CD does: the resource as the global `obj`, the script's
-- return value as the health.  Usage: lua5.1 argocd_health.lua HEALTH_LUA OBJECT_CHUNK
-- (OBJECT_CHUNK is Lua source that returns the resource as a table).  Prints status, newline, message.
obj = dofile(arg[2])
local hs = dofile(arg[1])
io.write(tostring(hs.status), "\n", tostring(hs.message or ""))
