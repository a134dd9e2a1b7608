-- wrk script for benches/load.sh's flood case: every request carries Basic
-- credentials with a fresh random user name and a wrong (random) password,
-- so the credential cache never helps and no two requests coalesce; unknown
-- users cost a bcrypt verification all the same (regauth's dummy hash).
-- Sends `X-Forwarded-For: $BENCH_FORWARDED_FOR` when that variable is set
-- (the attacker's address, as a proxy in front of regauth would report it).
-- Ends with one machine-readable line:
-- FLOOD <requests> <seconds> <401> <429> <503> <other statuses> <socket errors> <p50 us> <p99 us>

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1 = math.floor(n / 262144) % 64
    local d2 = math.floor(n / 4096) % 64
    local d3 = math.floor(n / 64) % 64
    local d4 = n % 64
    out[#out + 1] = B64:sub(d1 + 1, d1 + 1) .. B64:sub(d2 + 1, d2 + 1)
      .. (b and B64:sub(d3 + 1, d3 + 1) or "=")
      .. (c and B64:sub(d4 + 1, d4 + 1) or "=")
  end
  return table.concat(out)
end

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
  n401, n429, n503, nother = 0, 0, 0, 0
  local xff = os.getenv("BENCH_FORWARDED_FOR")
  if xff ~= nil and xff ~= "" then
    wrk.headers["X-Forwarded-For"] = xff
  end
end

function request()
  local user = string.format("flood%07x%07x", math.random(0, 0xfffffff), math.random(0, 0xfffffff))
  local password = string.format("wrong%07x", math.random(0, 0xfffffff))
  wrk.headers["Authorization"] = "Basic " .. b64(user .. ":" .. password)
  return wrk.format()
end

function response(status, headers, body)
  if status == 401 then
    n401 = n401 + 1
  elseif status == 429 then
    n429 = n429 + 1
  elseif status == 503 then
    n503 = n503 + 1
  else
    nother = nother + 1
  end
end

function done(summary, latency, requests)
  local c401, c429, c503, cother = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    c401 = c401 + t:get("n401")
    c429 = c429 + t:get("n429")
    c503 = c503 + t:get("n503")
    cother = cother + t:get("nother")
  end
  local e = summary.errors
  io.write(string.format("FLOOD %d %.3f %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration / 1e6, c401, c429, c503, cother,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
