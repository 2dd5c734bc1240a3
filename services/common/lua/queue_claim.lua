-- Claim the highest-scored job under a lease, after returning expired leases.
-- KEYS[1] queue   KEYS[2] leases   KEYS[3] dead-letter list
-- ARGV[1] lease (ms)   ARGV[2] job key prefix   ARGV[3] max attempts   ARGV[4] dead cap
-- Returns nil, or {id, body, attempt, priority}.
redis.replicate_commands()
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_attempts = tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now_ms),
  'LIMIT', 0, 32)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  local jk = ARGV[2] .. id
  if redis.call('EXISTS', jk) == 1 then
    local attempts = tonumber(redis.call('HGET', jk, 'attempts') or '0')
    if attempts >= max_attempts then
      redis.call('HSET', jk, 'state', 'dead', 'last_error', 'lease expired')
      redis.call('LPUSH', KEYS[3], id)
      redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
    else
      redis.call('HSET', jk, 'state', 'queued')
      redis.call('ZADD', KEYS[1], redis.call('HGET', jk, 'score'), id)
    end
  end
end
while true do
  local top = redis.call('ZPOPMAX', KEYS[1])
  if #top == 0 then
    return nil
  end
  local id = top[1]
  local jk = ARGV[2] .. id
  if redis.call('EXISTS', jk) == 1 then
    local attempt = redis.call('HINCRBY', jk, 'attempts', 1)
    redis.call('HSET', jk, 'state', 'running', 'claimed_ms', string.format('%d', now_ms))
    redis.call('ZADD', KEYS[2], string.format('%d', now_ms + tonumber(ARGV[1])), id)
    return {id, redis.call('HGET', jk, 'body'), attempt, redis.call('HGET', jk, 'priority')}
  end
end
