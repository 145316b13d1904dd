-- wrk script: a mix of scoring requests, for the soak.
local bodies = {
  {"/segment", '{"recency": 12, "frequency": 7, "monetary": 4310.5}'},
  {"/predict_cltv", '{"customer_id": "12347"}'},
  {"/predict_churn", '{"recency": 300, "frequency": 1, "monetary": 50}'},
  {"/similar_customers", '{"customer_id": "12347", "k": 10}'},
  {"/uplift_score", '{"features": {"recency": 10, "history": 142.44, "mens": 1, "womens": 0, "zip_code": "Urban", "newbie": 0, "channel": "Web"}}'},
  {"/segment", '{"customers": [{"recency": 1, "frequency": 9, "monetary": 900}, {"recency": 300, "frequency": 1, "monetary": 5}]}'},
}
local i = 0
request = function()
  i = i + 1
  local b = bodies[(i % #bodies) + 1]
  return wrk.format("POST", b[1],
    {["Content-Type"] = "application/json",
     ["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")}, b[2])
end
