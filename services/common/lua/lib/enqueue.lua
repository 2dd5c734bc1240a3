-- Library: prepended to every script that enqueues analysis jobs (see scripts.py), so
-- the queue's rules live in one place while each caller stays one atomic script.
--
-- vigil_enqueue(queue_key, job_key, id, priority, body, now_ms) -> 1 added, 0 not added
-- Score = priority * 10^12 - now_ms (ms with a microsecond fraction).
local function vigil_enqueue(queue_key, job_key, id, priority, body, now_ms)
  if redis.call('EXISTS', job_key) == 1 then
    return 0
  end
  local score = string.format('%.3f', tonumber(priority) * 1000000000000 - now_ms)
  redis.call('HSET', job_key, 'id', id, 'priority', priority, 'body', body, 'attempts', 0,
    'state', 'queued', 'score', score, 'enqueued_ms', string.format('%.3f', now_ms))
  redis.call('ZADD', queue_key, score, id)
  return 1
end
