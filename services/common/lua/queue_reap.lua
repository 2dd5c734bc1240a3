-- Housekeeping every replica runs about once a second. With lib/enqueue.lua prepended.
-- 1. Expired leases: the job counts a failure and goes back to the queue, or to the
--    dead letters once it has failed `max attempts` times.
-- 2. Aging, against starvation: a job that has waited `aging` or longer rises one
--    level per `aging` waited, up to critical: level = min(3, priority + floor(wait /
--    aging)). Its enqueue time is kept, so at its new level it is claimed before the
--    jobs of that level that arrived after it.
-- KEYS[1] queue   KEYS[2] leases   KEYS[3] dead-letter list
-- ARGV[1] job key prefix   ARGV[2] max attempts   ARGV[3] dead cap
-- ARGV[4] dead letter ttl (s)   ARGV[5] aging (ms, 0 = never)   ARGV[6] batch limit
-- ARGV[7] now (ms) or '' for Redis's clock
-- Returns {jobs requeued, jobs promoted, dead-lettered id...}.
redis.replicate_commands()
local now_ms = vigil_now(ARGV[7])
local limit = tonumber(ARGV[6])
local requeued, promoted, dead = 0, 0, {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', vigil_ms(now_ms), 'LIMIT', 0, limit)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  local jk = ARGV[1] .. id
  if redis.call('EXISTS', jk) == 1 then
    local failures = redis.call('HINCRBY', jk, 'failures', 1)
    local err = 'lease expired on attempt ' .. redis.call('HGET', jk, 'attempts')
    if failures >= tonumber(ARGV[2]) then
      vigil_dead_letter(KEYS[1], KEYS[3], jk, id, err, ARGV[3], ARGV[4])
      dead[#dead + 1] = id
    else
      redis.call('HSET', jk, 'state', 'queued', 'last_error', err)
      redis.call('ZADD', KEYS[1], redis.call('HGET', jk, 'score'), id)
      requeued = requeued + 1
    end
  end
end
local aging = tonumber(ARGV[5])
if aging > 0 then
  local half = VIGIL_LEVEL_SCALE / 2
  for level = VIGIL_CRITICAL - 1, 1, -1 do
    -- Level `level` holds scores around level * 10^12 - now; those waiting at least
    -- `aging` score at least level * 10^12 - now + aging. Oldest first.
    local base = level * VIGIL_LEVEL_SCALE - now_ms
    local aged = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. vigil_ms(base + half),
      vigil_ms(base + aging), 'LIMIT', 0, limit)
    for _, id in ipairs(aged) do
      local jk = ARGV[1] .. id
      local f = redis.call('HMGET', jk, 'priority', 'enqueued_ms')
      if f[1] then
        local wait = now_ms - tonumber(f[2])
        local target = math.min(VIGIL_CRITICAL, tonumber(f[1]) + math.floor(wait / aging))
        if target > level then
          local score = vigil_score(target, f[2])
          redis.call('ZADD', KEYS[1], score, id)
          redis.call('HSET', jk, 'level', target, 'score', score)
          promoted = promoted + 1
        end
      end
    end
  end
end
local reply = {requeued, promoted}
for _, id in ipairs(dead) do
  reply[#reply + 1] = id
end
return reply
