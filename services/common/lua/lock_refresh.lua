-- Extend a lock's lease only if the caller still owns it.
-- KEYS[1] lock   ARGV[1] owner token   ARGV[2] lease (ms)
-- Returns 1 when extended, 0 when the lock is gone or someone else's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
