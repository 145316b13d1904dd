-- wrk script: POST /events, batches of 500 new events (ids unique per
-- thread and request), customers drawn from the first 6,000 of the bundled
-- file's id range, with the token from RFM_BENCH_TOKEN.
-- The client shares the 2 cores with the daemon, so a body is one gsub of
-- the request counter into one of 8 bodies made at start (500 events of
-- random customers, days, amounts, 7 invoices), not 500 string.formats.
-- tid is a global each thread's Lua state gets from setup().
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
local templates = {}
function init(args)
  math.randomseed(tid * 7919)
  for t = 1, 8 do
    local parts = {}
    for i = 1, 500 do
      parts[i] = string.format(
        '{"event_id":"b%d-@-%d","customer_id":"%d","time":"2011-12-%02dT10:00:00Z","invoice":"B%d-@-%d","amount":%d.5}',
        tid, i, 12346 + math.random(0, 5999), math.random(10, 28), tid, i % 7, math.random(1, 200))
    end
    templates[t] = '{"events":[' .. table.concat(parts, ",") .. ']}'
  end
end
function request()
  counter = counter + 1
  local body = templates[counter % 8 + 1]:gsub("@", counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")}, body)
end
