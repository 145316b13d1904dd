-- wrk script: POST /predict_cltv of a customer by id (its BG/NBD summary
-- from the store or the training table), with a token from RFM_BENCH_TOKEN.
wrk.method = "POST"
wrk.body = '{"customer_id": "12347"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")
