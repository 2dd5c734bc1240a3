-- Enqueue one job from a service (deep analysis tickets); ingest enqueues inside its
-- commit script. With lib/enqueue.lua prepended.
-- KEYS[1] queue   KEYS[2] job hash
-- ARGV[1] id   ARGV[2] priority   ARGV[3] body JSON   ARGV[4] now (ms) or ''
-- ARGV[5] queue notify channel
-- Returns 'added', 'exists', 'merged' or 'shed'.
redis.replicate_commands()
local added = vigil_enqueue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], vigil_now(ARGV[4]))
if added > 0 then
  redis.call('PUBLISH', ARGV[5], added)
end
return vigil_enqueue_outcome.last
