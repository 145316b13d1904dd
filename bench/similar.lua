-- wrk script: POST /similar_customers for customers of the bundled data.
local ids = {"12347", "12348", "17850", "14911", "15311", "13089", "14606", "12748"}
local i = 0
request = function()
  i = i + 1
  local body = '{"customer_id": "' .. ids[(i % #ids) + 1] .. '", "k": 10}'
  return wrk.format("POST", "/similar_customers",
    {["Content-Type"] = "application/json",
     ["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")}, body)
end
