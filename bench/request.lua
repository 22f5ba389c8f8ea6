-- Send one request over and over, count the answers that are the expected one, and report.
--
-- bench/run.py sets, through the environment:
--   BENCH_METHOD    GET or POST
--   BENCH_BODY      a urlencoded form body (POST), or empty
--   BENCH_COOKIE    a Cookie header, or empty
--   BENCH_AUTHORIZATION  an Authorization header ("Bearer <token>"), or empty
--   BENCH_ORIGINAL_URL   an X-Original-URL header (a proxy's forward-auth check), or empty
--   BENCH_HOST      a Host header (nginx picks its server by it), or empty for the URL's
--   BENCH_STATUS    the status that counts as success (wrk counts every 2xx and 3xx alike)
--   BENCH_LOCATION  the Location that must come with it (303 to /yup, not to /nope), or empty
--   BENCH_CLOSE     "1": a new connection for every request (Connection: close)
-- and reads the one line starting with "BENCH " that done() prints.

local function setting(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    return nil
  end
  return value
end

wrk.method = setting("BENCH_METHOD") or "GET"
wrk.body = setting("BENCH_BODY")
if wrk.body ~= nil then
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
wrk.headers["Cookie"] = setting("BENCH_COOKIE")
wrk.headers["Authorization"] = setting("BENCH_AUTHORIZATION")
wrk.headers["X-Original-URL"] = setting("BENCH_ORIGINAL_URL")
wrk.headers["Host"] = setting("BENCH_HOST")
if setting("BENCH_CLOSE") == "1" then
  -- Every request is accepted anew, by whichever worker is free, instead of each connection
  -- staying for the whole run with the worker that happened to accept it.
  wrk.headers["Connection"] = "close"
end

local expected_status = tonumber(setting("BENCH_STATUS") or "200")
local expected_location = setting("BENCH_LOCATION")

-- Per-thread tallies; done() adds them up through the thread handles setup() keeps.
expected = 0
unexpected = 0
-- The 503s among the unexpected: the hashing gate's full queue, a failure where it is judged.
unavailable = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status == expected_status
      -- Header names are case-insensitive (RFC 9110 5.1); granian (hyper) sends them lowercase.
      and (expected_location == nil
        or (headers["Location"] or headers["location"]) == expected_location) then
    expected = expected + 1
  else
    unexpected = unexpected + 1
    if status == 503 then
      unavailable = unavailable + 1
    end
  end
end

function done(summary, latency, requests)
  local good, bad, busy = 0, 0, 0
  for _, thread in ipairs(threads) do
    good = good + thread:get("expected")
    bad = bad + thread:get("unexpected")
    busy = busy + thread:get("unavailable")
  end
  local errors = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d expected=%d unexpected=%d unavailable=%d non_2xx_3xx=%d"
      .. " connect=%d read=%d write=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d\n",
    summary.requests, summary.duration, good, bad, busy, errors.status,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
