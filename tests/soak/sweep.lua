-- wrk script for the soak's address sweep (tests/soak/soak.mjs runs it; docs/security.md,
-- "Soak and origin faults"). Every request is GET /page/<n> as soak.test from a new client
-- address (cf-connecting-ip, the header tests/soak/policy.toml trusts) taken from a pool of
-- SOAK_POOL addresses, 10.0.0.0 upwards (10.0.0.0–10.15.66.63 for 1 000 000). wrk thread t of
-- SOAK_THREADS (1-based) owns the disjoint slice [floor(P·(t−1)/T), floor(P·t/T)) of the pool and
-- walks it in order from its cursor; once its slice is used up it starts it again (with the goal
-- "every address once", the coordinator stops after the wrk run in which that happened and
-- reports the sends after it as repeats). Every SOAK_HOT_EVERY-th
-- request of a thread is instead GET /api/hot from one hot client, 192.0.2.1, which the `api`
-- limit (burst 20) must refuse with 429.
--
-- The sweep runs in slices (one wrk run each); the coordinator passes every thread's cursor in
-- and reads it back from the EGSWEEP line done() prints, so the walk continues where it stopped.
--
-- Environment: SOAK_POOL=1000000 SOAK_THREADS=<wrk -t> SOAK_CURSORS=c1,c2,… (default all 0)
--   SOAK_HOT_EVERY=100 (0: no hot client)
--
-- response() classifies every answer (so wrk parses each response's headers in Lua):
--   ok          200 carrying the soak origin's x-soak-origin: 1 (the edge forwarded it)
--   hot_429     429 whose ratelimit-policy names "api" — only the hot client calls /api/
--   other       anything else, counted per status (the soak fails on any)
-- LuaJIT: integer maths through the bit library.

local bit = require("bit")

local pool = tonumber(os.getenv("SOAK_POOL") or "1000000")
local nthreads = tonumber(os.getenv("SOAK_THREADS") or "1")
local hot_every = tonumber(os.getenv("SOAK_HOT_EVERY") or "100")

local cursors_in = {}
for c in string.gmatch(os.getenv("SOAK_CURSORS") or "", "[^,]+") do
  table.insert(cursors_in, tonumber(c))
end

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

-- per thread (each wrk thread has its own Lua state)
local lo, size = 0, 0
local k = 0
local prefix = "GET /page/"
local mid = " HTTP/1.1\r\nHost: soak.test\r\nUser-Agent: wrk-soak\r\nAccept: text/html\r\ncf-connecting-ip: 10."
local tail = "\r\n\r\n"
local hot_req = "GET /api/hot HTTP/1.1\r\nHost: soak.test\r\nUser-Agent: wrk-soak\r\nAccept: application/json\r\ncf-connecting-ip: 192.0.2.1\r\n\r\n"

function init(args)
  local t = tid or 1
  lo = math.floor(pool * (t - 1) / nthreads)
  size = math.floor(pool * t / nthreads) - lo
  cursor = cursors_in[t] or 0 -- global: read back by done() through thread:get
  start_cursor = cursor
  hot_sent = 0
  ok, hot_429, hot_other, not_from_origin = 0, 0, 0, 0
  other = {}
end

function request()
  k = k + 1
  if hot_every > 0 and k % hot_every == 0 then
    hot_sent = hot_sent + 1
    return hot_req
  end
  local i = lo + cursor % size
  cursor = cursor + 1
  return prefix .. (i % 1000) .. mid .. bit.band(bit.rshift(i, 16), 255) .. "." ..
    bit.band(bit.rshift(i, 8), 255) .. "." .. bit.band(i, 255) .. tail
end

function response(status, headers, body)
  if status == 200 then
    if headers["x-soak-origin"] == "1" then
      ok = ok + 1
    else
      not_from_origin = not_from_origin + 1
    end
    return
  end
  if status == 429 and string.find(headers["ratelimit-policy"] or "", '"api"', 1, true) then
    hot_429 = hot_429 + 1
    return
  end
  other[status] = (other[status] or 0) + 1
end

function done(summary, latency, requests)
  local s = summary
  local secs = s.duration / 1000000
  local cur, sent, hot, okc, h429, nfo = {}, 0, 0, 0, 0, 0
  local others = {}
  for _, t in ipairs(threads) do
    local c = t:get("cursor")
    table.insert(cur, string.format("%d", c))
    sent = sent + (c - t:get("start_cursor"))
    hot = hot + t:get("hot_sent")
    okc = okc + t:get("ok")
    h429 = h429 + t:get("hot_429")
    nfo = nfo + t:get("not_from_origin")
    for code, n in pairs(t:get("other") or {}) do others[code] = (others[code] or 0) + n end
  end
  local oth = {}
  for code, n in pairs(others) do table.insert(oth, code .. ":" .. n) end
  io.write(string.format(
    "EGSWEEP requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d" ..
    " connect_err=%d read_err=%d write_err=%d timeouts=%d addresses_sent=%d hot_sent=%d ok=%d hot_429=%d" ..
    " not_from_origin=%d other=%s cursors=%s slice_sizes=%s\n",
    s.requests, secs, s.requests / secs, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout, sent, hot, okc, h429, nfo,
    (#oth > 0 and table.concat(oth, ";") or "-"), table.concat(cur, ","), (function()
      local z = {}
      for t = 1, #threads do
        table.insert(z, string.format("%d", math.floor(pool * t / nthreads) - math.floor(pool * (t - 1) / nthreads)))
      end
      return table.concat(z, ",")
    end)()))
end
