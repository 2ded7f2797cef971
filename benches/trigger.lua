-- wrk script for spur's trigger benchmark: POSTs valid triggers and records the id of every
-- pipeline acknowledged with 201, so the bench can check each one is in the database.
-- Environment: SPUR_TOKEN (trigger token), SPUR_IDS (file to write acknowledged ids to),
-- SPUR_KEYED=1 to send a fresh Idempotency-Key with every request.
local token = os.getenv("SPUR_TOKEN")
local keyed = os.getenv("SPUR_KEYED") == "1"
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

-- Both modes build each request the same way (a fresh header per request), so that the
-- client's own cost is equal and the difference is the server's.
local sent = 0
function request()
  sent = sent + 1
  local name = keyed and "Idempotency-Key" or "X-Bench-Sequence"
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    [name] = "bench-" .. thread_id .. "-" .. sent,
  }
  return wrk.format(nil, nil, headers, nil)
end

function init(args)
  ids = {}
  created = 0
  other = 0
  wrk.method = "POST"
  wrk.body = "token=" .. token .. "&ref=main&variables[BENCH]=1"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
    local id = string.match(body, '^{"id":(%d+)')
    if id then ids[#ids + 1] = id end
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("SPUR_IDS"), "w")
  local total_created, total_other = 0, 0
  for _, t in ipairs(threads) do
    total_created = total_created + t:get("created")
    total_other = total_other + t:get("other")
    for _, id in ipairs(t:get("ids")) do out:write(id, "\n") end
  end
  out:close()
  io.write(string.format("RESULT created=%d other=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d duration_us=%d errors_connect=%d errors_read=%d errors_timeout=%d\n",
    total_created, total_other, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    summary.duration, summary.errors.connect, summary.errors.read, summary.errors.timeout))
end
