-- wrk script: QuoteKit page views from many clients. Every request is
--   GET <path> with Host: lawnquote.online, x-forwarded-proto: https (the worker sees an
--   https URL, as behind Cloudflare's TLS) and cf-connecting-ip cycling through N addresses
--   (10.0.0.0 upwards), so the per-IP `pages` limit (burst 150, 2/s) never refuses; plus the
--   headers a browser behind Cloudflare brings (user agent, accept*, a cookie, cf-ray,
--   cf-ipcountry, cf-visitor): about 700 bytes, 13 headers.
--
-- Environment (read when the script loads, in every thread):
--   EG_IPS=N         distinct client addresses (default 8192)
--   EG_PATH=/p       request path (default /dashboard)
--   EG_RATE=R        constant rate per wrk thread in req/s (open loop: each request takes the
--                    next slot of a fixed schedule; wrk's timers have 1 ms resolution, so sends
--                    within a millisecond go together). Unset: closed loop, as fast as possible.
--   EG_STATUS=1      count response statuses (slower: wrk then parses every response in Lua)
-- LuaJIT: no `//` operator; integer maths through the bit library.

local bit = require("bit")
local ffi = require("ffi")

local ips = tonumber(os.getenv("EG_IPS") or "8192")
local path = os.getenv("EG_PATH") or "/dashboard"
local rate = tonumber(os.getenv("EG_RATE") or "0")
local want_status = os.getenv("EG_STATUS") == "1"

local requests = {}
local n = 0
local id = 0

function setup(thread)
  id = id + 1
  thread:set("thread_id", id)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  for i = 0, ips - 1 do
    local ip = "10." .. bit.band(bit.rshift(i, 16), 255) .. "." .. bit.band(bit.rshift(i, 8), 255) .. "." .. bit.band(i, 255)
    requests[i + 1] = wrk.format("GET", path, {
      ["Host"] = "lawnquote.online",
      ["User-Agent"] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
      ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
      ["Accept-Language"] = "en-US,en;q=0.9",
      ["Accept-Encoding"] = "gzip, br",
      ["Cookie"] = "eg_lane=blue; ph_phc_project_posthog=%7B%22distinct_id%22%3A%22" .. i .. "%22%7D; theme=light",
      ["Referer"] = "https://lawnquote.online/quotes",
      ["Upgrade-Insecure-Requests"] = "1",
      ["x-forwarded-proto"] = "https",
      ["cf-connecting-ip"] = ip,
      ["cf-ray"] = string.format("8f%014x-IAD", i),
      ["cf-ipcountry"] = "US",
      ["cf-visitor"] = '{"scheme":"https"}',
    })
  end
  -- threads start at different points of the cycle
  n = math.fmod((thread_id or 0) * 1237, ips)
end

function request()
  n = n + 1
  if n > ips then n = 1 end
  return requests[n]
end

if rate > 0 then
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } eg_timespec;
    int clock_gettime(int clk_id, eg_timespec *tp);
  ]]
  local ts = ffi.new("eg_timespec")
  local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
  end
  local interval = 1000000 / rate
  local next_slot = nil
  max_lag_ms = 0

  function delay()
    local now = now_us()
    if next_slot == nil then next_slot = now end
    local slot = next_slot
    next_slot = next_slot + interval
    local wait = slot - now
    if wait < 0 then
      if -wait / 1000 > max_lag_ms then max_lag_ms = -wait / 1000 end
      return 0
    end
    return math.floor(wait / 1000)
  end
end

if want_status then
  statuses = {}
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local s = summary
  local secs = s.duration / 1000000
  io.write(string.format("EG requests=%d duration_s=%.3f rps=%.1f", s.requests, secs, s.requests / secs))
  io.write(string.format(" non2xx3xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d",
    s.errors.status, s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout))
  io.write(string.format(" p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean))
  local lag = 0
  local counts = {}
  for _, t in ipairs(threads or {}) do
    local l = t:get("max_lag_ms")
    if l and l > lag then lag = l end
    local st = t:get("statuses")
    if st then
      for code, c in pairs(st) do counts[code] = (counts[code] or 0) + c end
    end
  end
  if rate > 0 then io.write(string.format(" max_lag_ms=%.1f", lag)) end
  if want_status then
    io.write(" statuses=")
    for code, c in pairs(counts) do io.write(code .. ":" .. c .. ";") end
  end
  io.write("\n")
end
