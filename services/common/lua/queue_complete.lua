-- Finish a claimed job: publish its result event and forget the job, atomically, but
-- only if the caller still holds the lease of that attempt. Idempotent. With
-- lib/enqueue.lua prepended.
-- KEYS[1] leases   KEYS[2] job hash   KEYS[3] events stream   KEYS[4] queue
-- ARGV[1] job id   ARGV[2] attempt   ARGV[3] events maxlen
-- ARGV[4..7] event kind, device, sev, data (kind empty: publish nothing)
-- Returns 1 when completed now, 0 when the lease was lost or the job already done.
if redis.call('HGET', KEYS[2], 'attempts') ~= ARGV[2] then
  return 0
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
    'kind', ARGV[4], 'device', ARGV[5], 'sev', ARGV[6], 'data', ARGV[7])
end
vigil_forget_episode(KEYS[4], redis.call('HGET', KEYS[2], 'episode'), ARGV[1])
redis.call('DEL', KEYS[2])
return 1
