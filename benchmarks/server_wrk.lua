-- wrk script for benchmarks/server_bench.py: POSTs JSON bodies to /get-online-features.
--
--   wrk -t1 -c32 -d20s -s server_wrk.lua http://127.0.0.1:PORT -- BODIES_FILE
--
-- BODIES_FILE holds one JSON request body per line. Every request string is built once in init();
-- each connection thread cycles through them from its own offset, so the server sees many distinct
-- entities rather than one hot key. done() prints one line "WRKJSON {...}" that the harness parses.

local requests_list = {}
local count = 0
local index = 0

function init(args)
   local path = args[1]
   if path == nil then
      error("usage: wrk ... -s server_wrk.lua URL -- BODIES_FILE")
   end
   local headers = { ["Content-Type"] = "application/json" }
   for line in io.lines(path) do
      if #line > 0 then
         count = count + 1
         requests_list[count] = wrk.format("POST", "/get-online-features", headers, line)
      end
   end
   if count == 0 then
      error("no request bodies in " .. path)
   end
   index = math.random(count) - 1
end

function request()
   index = index % count + 1
   return requests_list[index]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
      '"status":%d,"timeout":%d},"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,' ..
      '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.max, latency.mean, latency.stdev,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
