-- wrk script for benches/load.sh: sends `Authorization: Basic $BENCH_AUTH`
-- when that variable is set, and `X-Forwarded-For: $BENCH_FORWARDED_FOR`
-- when that one is (the flood case's cached user), and ends with one
-- machine-readable line:
-- RESULT <requests> <seconds> <p50 us> <p99 us> <non-2xx> <socket errors>
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = "Basic " .. auth
end
local xff = os.getenv("BENCH_FORWARDED_FOR")
if xff ~= nil and xff ~= "" then
  wrk.headers["X-Forwarded-For"] = xff
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %d %d %d %d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
