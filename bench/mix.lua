-- The realistic mix for `wrk -t1 -c100 -s bench/mix.lua URL -- DATA_FILE [REVIEW_OFFSET]`.
-- DATA_FILE (written by bench/load.py) returns the operations with their weights, the
-- agent ids and category slugs in popularity order, search terms and user tokens.
-- Agents, categories and searches are drawn Zipf-distributed (s = 1): rank k is picked with
-- probability proportional to 1/k. Non-2xx/3xx responses are counted here, and the requests
-- sent per operation (`op_requests`, printed as "ops").
-- An operation with a `kind` ("review", "install") takes (user, agent) pairs in turn from
-- data[kind .. "_users"] / data[kind .. "_agents"]: pairs that had no review (installation)
-- yet, so a POST never conflicts or repeats. bench/endpoints.py measures the writes alone
-- with such a one-operation mix.

local data
local cdfs = {}
local op_cdf = {}
local pair_seq = 0
-- Counters are globals of each thread's Lua state: done() reads them with thread:get().
s2xx, s3xx, s4xx, s5xx, cache_hit, cache_miss = 0, 0, 0, 0, 0, 0
op_requests = {}
local threads = {}

local function zipf_cdf(n)
  local cdf, total = {}, 0
  for k = 1, n do
    total = total + 1 / k
    cdf[k] = total
  end
  for k = 1, n do cdf[k] = cdf[k] / total end
  return cdf
end

local function pick_index(cdf)
  local u, lo, hi = math.random(), 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

local function zipf(name)
  local list = data[name]
  if not cdfs[name] then cdfs[name] = zipf_cdf(#list) end
  return list[pick_index(cdfs[name])]
end

local function uniform(name)
  local list = data[name]
  return list[math.random(#list)]
end

setup = function(thread)
  table.insert(threads, thread)
end

init = function(args)
  data = dofile(args[1])
  -- A second run (after the warm-up) starts further along the pairs.
  pair_seq = tonumber(args[2] or "0")
  math.randomseed(data.seed or 1)
  local total = 0
  for _, op in ipairs(data.ops) do total = total + op.weight end
  local acc = 0
  for i, op in ipairs(data.ops) do
    acc = acc + op.weight / total
    op_cdf[i] = acc
  end
end

request = function()
  local op = data.ops[pick_index(op_cdf)]
  local headers = { ["Accept"] = "application/json" }
  local body = nil
  local path
  op_requests[op.name] = (op_requests[op.name] or 0) + 1
  if op.kind then
    -- Precomputed (user, agent) pairs with no review (installation) yet: no 409, no repeat.
    local users, agents = data[op.kind .. "_users"], data[op.kind .. "_agents"]
    local k = (pair_seq % #agents) + 1
    pair_seq = pair_seq + 1
    headers["Authorization"] = "Token " .. data.tokens[users[k]]
    headers["Content-Type"] = "application/json"
    if op.kind == "review" then
      body = string.format('{"rating": %d, "title": "Bench review", "body": "Measured."}',
        math.random(1, 5))
    else
      body = "{}"
    end
    path = string.format(op.path, agents[k])
  else
    local value = op.pick and (op.zipf and zipf(op.pick) or uniform(op.pick)) or nil
    path = value and string.format(op.path, value) or op.path
    if op.auth then headers["Authorization"] = "Token " .. uniform("tokens") end
    if op.method ~= "GET" then headers["Content-Type"] = "application/json"; body = "{}" end
  end
  return wrk.format(op.method, path, headers, body)
end

response = function(status, headers, body)
  local class = math.floor(status / 100)
  if class == 2 then s2xx = s2xx + 1
  elseif class == 3 then s3xx = s3xx + 1
  elseif class == 4 then s4xx = s4xx + 1
  else s5xx = s5xx + 1 end
  local cache = headers["X-Cache"] or headers["x-cache"]
  if cache then
    cache = string.upper(cache)
    if string.find(cache, "HIT") then cache_hit = cache_hit + 1
    elseif string.find(cache, "MISS") then cache_miss = cache_miss + 1 end
  end
end

done = function(summary, latency, requests)
  local totals = { s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, cache_hit = 0, cache_miss = 0 }
  local ops = {}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(totals) do totals[k] = totals[k] + (thread:get(k) or 0) end
    for name, n in pairs(thread:get("op_requests") or {}) do ops[name] = (ops[name] or 0) + n end
  end
  local parts = {}
  for name, n in pairs(ops) do table.insert(parts, string.format('"%s":%d', name, n)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p95_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"s2xx":%d,"s3xx":%d,' ..
    '"s4xx":%d,"s5xx":%d,"cache_hit_header":%d,"cache_miss_header":%d,"ops":{%s}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx, totals.cache_hit, totals.cache_miss,
    table.concat(parts, ",")))
end
