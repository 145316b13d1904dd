-- wrk script: the same POST, sent to the floor server.
wrk.method = "POST"
wrk.body = '{"recency": 12, "frequency": 7, "monetary": 4310.5}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer x"
