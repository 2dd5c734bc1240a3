-- Claim the job with the highest score under a lease (expired leases are returned by
-- queue_reap.lua). With lib/enqueue.lua prepended.
-- KEYS[1] queue   KEYS[2] leases
-- ARGV[1] lease (ms)   ARGV[2] job key prefix   ARGV[3] now (ms) or '' for Redis's clock
-- Returns nil, or {id, body, attempt, priority, enqueued_ms, level}.
redis.replicate_commands()
local now_ms = vigil_now(ARGV[3])
while true do
  local top = redis.call('ZPOPMAX', KEYS[1])
  if #top == 0 then
    return nil
  end
  local id = top[1]
  local jk = ARGV[2] .. id
  if redis.call('EXISTS', jk) == 1 then
    local attempt = redis.call('HINCRBY', jk, 'attempts', 1)
    redis.call('HSET', jk, 'state', 'running', 'claimed_ms', vigil_ms(now_ms))
    redis.call('ZADD', KEYS[2], vigil_ms(now_ms + tonumber(ARGV[1])), id)
    local f = redis.call('HMGET', jk, 'body', 'priority', 'enqueued_ms', 'level')
    return {id, f[1], attempt, f[2], f[3], f[4] or f[2]}
  end
end
