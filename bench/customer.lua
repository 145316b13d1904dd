-- wrk script: GET /customers/{id}?as_of=2011-12-09 of random customers of
-- the bundled file's id range (about 70 % exist; the rest answer 404).
math.randomseed(42)
function request()
  return wrk.format("GET", string.format("/customers/%d?as_of=2011-12-09", 12346 + math.random(0, 5999)),
    {["Authorization"] = "Bearer " .. (os.getenv("RFM_BENCH_TOKEN") or "")})
end
