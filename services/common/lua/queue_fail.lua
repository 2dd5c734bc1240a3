-- Give back a claimed job whose attempt failed: to the queue for another try, or to the
-- dead letters (with its last error) when it has failed `max attempts` times. A release
-- (the worker is stopping) gives it back without counting a failure. Only the attempt
-- that holds the lease may do either. With lib/enqueue.lua prepended.
-- KEYS[1] leases   KEYS[2] job hash   KEYS[3] queue   KEYS[4] dead-letter list
-- ARGV[1] job id   ARGV[2] attempt   ARGV[3] error   ARGV[4] max attempts
-- ARGV[5] dead cap   ARGV[6] dead letter ttl (s)   ARGV[7] '1' to release
-- Returns 'retry', 'dead', 'released' or 'lost'.
if redis.call('HGET', KEYS[2], 'attempts') ~= ARGV[2] then
  return 'lost'
end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 'lost'
end
local outcome = 'released'
if ARGV[7] ~= '1' then
  local failures = redis.call('HINCRBY', KEYS[2], 'failures', 1)
  if failures >= tonumber(ARGV[4]) then
    vigil_dead_letter(KEYS[3], KEYS[4], KEYS[2], ARGV[1], ARGV[3], ARGV[5], ARGV[6])
    return 'dead'
  end
  redis.call('HSET', KEYS[2], 'last_error', ARGV[3])
  outcome = 'retry'
end
redis.call('HSET', KEYS[2], 'state', 'queued')
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[2], 'score'), ARGV[1])
return outcome
