//! The Lua scripts of [`super::RedisStore`], one per multi-key transition.
//!
//! Each script runs atomically on the Redis server and reads the time with `TIME`, so lease
//! deadlines never depend on the coordinator's clock. ARGV[1] is always the key prefix.

use redis::Script;

const HELPERS: &str = include_str!("scripts.lua");

/// Scripts compiled once per store.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) create_job: Script,
    pub(super) set_progress: Script,
    pub(super) succeed_job: Script,
    pub(super) end_job: Script,
    pub(super) enqueue: Script,
    pub(super) lease: Script,
    pub(super) heartbeat: Script,
    pub(super) complete: Script,
    pub(super) fail: Script,
    pub(super) expire: Script,
    pub(super) touch_worker: Script,
}

fn script(body: &str) -> Script {
    Script::new(&format!("{HELPERS}\n{body}"))
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            // ARGV: prefix, job, spec, width, height, num_scales
            create_job: script(
                r#"
local jk = job_key(ARGV[2])
if redis.call('EXISTS', jk) == 1 then return 0 end
local now = now_ms()
redis.call('HSET', jk, 'spec', ARGV[3], 'width', ARGV[4], 'height', ARGV[5],
  'num_scales', ARGV[6], 'state', 'queued', 'scale', 0, 'tiles_total', 0, 'error', '',
  'created_ms', now, 'updated_ms', now)
redis.call('ZADD', p .. ':jobs', now, ARGV[2])
redis.call('SADD', p .. ':active', ARGV[2])
event(ARGV[2], now, 'queued')
return 1
"#,
            ),
            // ARGV: prefix, job, scale, tiles_total
            set_progress: script(
                r#"
local jk = job_key(ARGV[2])
if redis.call('EXISTS', jk) == 0 then return -1 end
if not is_active(redis.call('HGET', jk, 'state')) then return 0 end
redis.call('HSET', jk, 'scale', ARGV[3], 'tiles_total', ARGV[4], 'updated_ms', now_ms())
return 1
"#,
            ),
            // ARGV: prefix, job
            succeed_job: script(
                r#"
local jk = job_key(ARGV[2])
if redis.call('EXISTS', jk) == 0 then return -1 end
if not is_active(redis.call('HGET', jk, 'state')) then return 0 end
local now = now_ms()
redis.call('HSET', jk, 'state', 'succeeded', 'updated_ms', now)
redis.call('SREM', p .. ':active', ARGV[2])
event(ARGV[2], now, 'succeeded')
return 1
"#,
            ),
            // ARGV: prefix, job, state, reason
            end_job: script(
                r#"
if redis.call('EXISTS', job_key(ARGV[2])) == 0 then return -1 end
if end_job(ARGV[2], ARGV[3], ARGV[4], now_ms()) then return 1 end
return 0
"#,
            ),
            // ARGV: prefix, job, then (task id, payload) pairs
            enqueue: script(
                r#"
local jk = job_key(ARGV[2])
if redis.call('EXISTS', jk) == 0 then return -1 end
if not is_active(redis.call('HGET', jk, 'state')) then return 0 end
local created = 0
for i = 3, #ARGV, 2 do
  local tid = ARGV[i]
  local tk = task_key(tid)
  if redis.call('EXISTS', tk) == 0 then
    redis.call('HSET', tk, 'job', ARGV[2], 'payload', ARGV[i + 1], 'state', 'queued',
      'attempt', 0, 'done_attempt', 0)
    redis.call('SADD', jk .. ':tasks', tid)
    redis.call('RPUSH', p .. ':queue', tid)
    created = created + 1
  end
end
return created
"#,
            ),
            // ARGV: prefix, ttl_ms, max_attempts
            lease: script(
                r#"
local now = now_ms()
expire(now, tonumber(ARGV[3]))
while true do
  local tid = redis.call('LPOP', p .. ':queue')
  if not tid then return false end
  local tk = task_key(tid)
  if redis.call('HGET', tk, 'state') == 'queued' then
    local job = redis.call('HGET', tk, 'job')
    local jk = job_key(job)
    local js = redis.call('HGET', jk, 'state')
    if is_active(js) then
      local attempt = redis.call('HINCRBY', tk, 'attempt', 1)
      local deadline = now + tonumber(ARGV[2])
      redis.call('HSET', tk, 'state', 'leased', 'deadline', deadline)
      redis.call('ZADD', p .. ':leases', deadline, tid)
      if js == 'queued' then redis.call('HSET', jk, 'state', 'running', 'updated_ms', now) end
      return {tid, attempt, deadline, redis.call('HGET', tk, 'payload')}
    end
  end
end
"#,
            ),
            // ARGV: prefix, task, attempt, ttl_ms, max_attempts
            heartbeat: script(
                r#"
local now = now_ms()
expire(now, tonumber(ARGV[5]))
local tk = task_key(ARGV[2])
if redis.call('HGET', tk, 'state') ~= 'leased' then return 0 end
if redis.call('HGET', tk, 'attempt') ~= ARGV[3] then return 0 end
local deadline = now + tonumber(ARGV[4])
redis.call('HSET', tk, 'deadline', deadline)
redis.call('ZADD', p .. ':leases', deadline, ARGV[2])
return deadline
"#,
            ),
            // ARGV: prefix, task, attempt, max_attempts, scale ('' for style targets)
            complete: script(
                r#"
local now = now_ms()
expire(now, tonumber(ARGV[4]))
local tk = task_key(ARGV[2])
local st = redis.call('HGET', tk, 'state')
if not st then return 'unknown' end
if st == 'done' then
  if redis.call('HGET', tk, 'done_attempt') == ARGV[3] then return 'duplicate' end
  return 'stale'
end
if st == 'cancelled' then return 'cancelled' end
if st ~= 'leased' or redis.call('HGET', tk, 'attempt') ~= ARGV[3] then return 'stale' end
redis.call('HSET', tk, 'state', 'done', 'done_attempt', ARGV[3])
redis.call('ZREM', p .. ':leases', ARGV[2])
local job = redis.call('HGET', tk, 'job')
redis.call('HSET', job_key(job), 'updated_ms', now)
if ARGV[5] ~= '' then redis.call('SADD', job_key(job) .. ':done:' .. ARGV[5], ARGV[2]) end
return 'accepted'
"#,
            ),
            // ARGV: prefix, task, attempt, max_attempts, reason, why (fatal/retry/handback)
            fail: script(
                r#"
local now = now_ms()
local max_attempts = tonumber(ARGV[4])
expire(now, max_attempts)
local tk = task_key(ARGV[2])
if redis.call('HGET', tk, 'state') ~= 'leased' then return {'stale', ''} end
if redis.call('HGET', tk, 'attempt') ~= ARGV[3] then return {'stale', ''} end
redis.call('ZREM', p .. ':leases', ARGV[2])
if ARGV[6] == 'handback' then redis.call('HINCRBY', tk, 'handed_back', 1) end
if ARGV[6] == 'handback'
    or (ARGV[6] == 'retry' and failed_attempts(tk, tonumber(ARGV[3])) < max_attempts) then
  redis.call('HSET', tk, 'state', 'queued')
  redis.call('LPUSH', p .. ':queue', ARGV[2])
  return {'requeued', ''}
end
redis.call('HSET', tk, 'state', 'failed')
local reason = 'task ' .. ARGV[2] .. ' failed on attempt ' .. ARGV[3] .. ': ' .. ARGV[5]
end_job(redis.call('HGET', tk, 'job'), 'failed', reason, now)
return {'failed', reason}
"#,
            ),
            // ARGV: prefix, max_attempts
            expire: script("return expire(now_ms(), tonumber(ARGV[2]))"),
            // ARGV: prefix, worker, tasks_done, device or '', memory or '' (register when set)
            touch_worker: script(
                r#"
local wk = p .. ':worker:' .. ARGV[2]
local now = now_ms()
redis.call('SADD', p .. ':workers', ARGV[2])
if ARGV[4] ~= '' or ARGV[5] ~= '' then
  redis.call('HSET', wk, 'device', ARGV[4], 'memory_bytes', ARGV[5])
end
redis.call('HSET', wk, 'last_seen_ms', now)
redis.call('HINCRBY', wk, 'tasks_done', ARGV[3])
return now
"#,
            ),
        }
    }
}
