-- wrk script: POST /segment with a token from RFM_BENCH_TOKEN.
wrk.method = "POST"
wrk.body = '{"recency": 12, "frequency": 7, "monetary": 4310.5}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")
