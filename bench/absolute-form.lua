-- wrk script: send absolute-form requests (a proxy request) for the URL in TARGET.
local target = os.getenv("TARGET")
local host = target:match("^https?://([^/]+)")
request = function()
  return wrk.format("GET", target, { ["Host"] = host })
end
