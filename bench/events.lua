-- wrk script: POST /events, batches of 500 new events (ids unique per
-- thread and request), customers drawn from the first 4,000 of the bundled
-- file's id range, with the token from RFM_BENCH_TOKEN.
-- tid is a global each thread's Lua state gets from setup().
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(tid * 7919)
end
local parts = {}
function request()
  counter = counter + 1
  for i = 1, 500 do
    parts[i] = string.format(
      '{"event_id":"b%d-%d-%d","customer_id":"%d","time":"2011-12-%02dT10:00:00Z","invoice":"B%d-%d","amount":%d.5}',
      tid, counter, i, 12346 + math.random(0, 5999), math.random(10, 28), tid, counter * 1000 + i % 7,
      math.random(1, 200))
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")},
    '{"events":[' .. table.concat(parts, ",") .. ']}')
end
