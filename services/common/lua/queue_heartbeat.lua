-- Extend the lease of a claimed job that is still being worked on, if the caller still
-- holds it. With lib/enqueue.lua prepended.
-- KEYS[1] leases   KEYS[2] job hash
-- ARGV[1] job id   ARGV[2] attempt   ARGV[3] lease (ms)   ARGV[4] now (ms) or ''
-- Returns 1 when extended, 0 when the lease was lost.
redis.replicate_commands()
if redis.call('HGET', KEYS[2], 'attempts') ~= ARGV[2] then
  return 0
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local now_ms = vigil_now(ARGV[4])
redis.call('ZADD', KEYS[1], 'XX', vigil_ms(now_ms + tonumber(ARGV[3])), ARGV[1])
return 1
