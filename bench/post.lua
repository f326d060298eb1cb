-- wrk script: POST one JSON body; count answers that succeeded, for the lost-update check.
-- BODY and TOKEN come from the environment. Requests accept gzip, as browsers, fetch and the
-- Convex client do: large answers come compressed (small ones, statistics writes among them,
-- never are), and a compressed answer counts as a success by its status alone.
-- A BODY holding "{n}" gets a number there unique to each request: such requests are never
-- answered from memory (a computed read).
wrk.method = "POST"
local template = os.getenv("BODY")
wrk.body = template
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept-Encoding"] = "gzip, deflate"
local token = os.getenv("TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  successes = 0
  failures = 0
  sent = 0
  run = (os.time() % 10000) * 100000  -- and across runs of a row: none is held from before
end

if string.find(template, "{n}", 1, true) then
  function request()
    sent = sent + 1
    local n = tostring(run + sent * 16 + id)  -- unique across wrk's threads (up to 16)
    return wrk.format(nil, nil, nil, (string.gsub(template, "{n}", n)))
  end
end

function response(status, headers, body)
  local compressed = headers["Content-Encoding"] == "gzip"
  if status == 200 and (compressed or string.find(body, '"status":"success"', 1, true)) then
    successes = successes + 1
  else
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("successes")
    bad = bad + thread:get("failures")
  end
  io.write(string.format("SUCCESSES %d\nFAILURES %d\n", ok, bad))
  io.write(string.format("P50 %d\nP99 %d\n", latency:percentile(50), latency:percentile(99)))
end
