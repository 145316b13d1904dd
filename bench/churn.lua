-- wrk script: POST /predict_churn with a token from RFM_BENCH_TOKEN.
wrk.method = "POST"
wrk.body = '{"recency": 300, "frequency": 1, "monetary": 50}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")
