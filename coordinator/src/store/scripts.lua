-- Shared helpers of the RedisStore scripts; each script is this file plus its own body.
-- Keys are built from the prefix in ARGV[1], so the store needs a single Redis (not a cluster).
local p = ARGV[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function job_key(job) return p .. ':job:' .. job end
local function task_key(tid) return p .. ':task:' .. tid end

local function is_active(state) return state == 'queued' or state == 'running' end

local function event(job, now, message)
  redis.call('RPUSH', job_key(job) .. ':events', now .. '\t' .. message)
end

-- Ends an active job in `state` and drops its queued and leased tasks.
local function end_job(job, state, reason, now)
  local jk = job_key(job)
  if not is_active(redis.call('HGET', jk, 'state')) then return false end
  redis.call('HSET', jk, 'state', state, 'error', reason, 'updated_ms', now)
  redis.call('SREM', p .. ':active', job)
  event(job, now, state .. ': ' .. reason)
  for _, tid in ipairs(redis.call('SMEMBERS', jk .. ':tasks')) do
    local tk = task_key(tid)
    local st = redis.call('HGET', tk, 'state')
    if st == 'queued' then
      redis.call('LREM', p .. ':queue', 0, tid)
      redis.call('HSET', tk, 'state', 'cancelled')
    elseif st == 'leased' then
      redis.call('ZREM', p .. ':leases', tid)
      redis.call('HSET', tk, 'state', 'cancelled')
    end
  end
  return true
end

-- Returns how many of a task's `attempt` leases failed or expired: hand-backs by stopping
-- workers do not count.
local function failed_attempts(tk, attempt)
  return attempt - (tonumber(redis.call('HGET', tk, 'handed_back')) or 0)
end

-- Requeues (or fails, past the attempt limit) every lease whose deadline has passed.
local function expire(now, max_attempts)
  local out = {}
  for _, tid in ipairs(redis.call('ZRANGEBYSCORE', p .. ':leases', '-inf', now)) do
    redis.call('ZREM', p .. ':leases', tid)
    local tk = task_key(tid)
    if redis.call('HGET', tk, 'state') == 'leased' then
      local attempt = tonumber(redis.call('HGET', tk, 'attempt'))
      local job = redis.call('HGET', tk, 'job')
      if failed_attempts(tk, attempt) >= max_attempts then
        local reason = 'task ' .. tid .. ' lease expired after ' .. attempt .. ' attempts'
        redis.call('HSET', tk, 'state', 'failed')
        end_job(job, 'failed', reason, now)
        out[#out + 1] = {tid, attempt, reason}
      else
        redis.call('HSET', tk, 'state', 'queued')
        redis.call('LPUSH', p .. ':queue', tid)
        out[#out + 1] = {tid, attempt, ''}
      end
    end
  end
  return out
end
