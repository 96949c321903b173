-- wrk (4.1) script for the writers phase of benchmarks/ingest.py (--writers-client wrk):
-- every connection is one writer that POSTs a JSON body and waits for its acknowledgement.
--
--   DRIFTWATCH_API_KEY=... wrk -t64 -c64 -d4s --timeout 60s -s benchmarks/writers.lua \
--       http://127.0.0.1:PORT/api/v1/models/small/inferences -- TEMPLATES ROWS
--
-- One connection a wrk thread (-t equal to -c): each thread's request() and response() then
-- alternate for its one request in flight, so the script times every request itself
-- (CLOCK_MONOTONIC through LuaJIT's ffi, from the request's bytes being built to its whole
-- answer read). wrk's own latency histogram is not the writers' latency: wrk 4.1 corrects it
-- for coordinated omission before done() (stats_correct adds, for every sample above twice
-- the mean interval, samples at that value minus 1, 2, ... intervals), so a single 500 ms
-- stall of one writer adds a hundred made-up samples; it is kept as wrk_p95_us, for reference.
--
-- TEMPLATES: one JSON body a line, built by benchmarks/ingest.py (writer_templates) before
-- wrk starts; each holds the slot @@@@@@@@@ in every request_id. Each request takes the next
-- template and fills the slot with the thread's number and its own count (table.concat of the
-- pieces around the slot), so request ids are unique per request: the server keeps
-- idempotency keys. Every response must be 200 with "accepted" equal to ROWS; anything else
-- is counted. done() prints "WRITERS {json}" (requests, seconds, errors, wrk's corrected p95),
-- "WRITERS-LATENCIES-US" and each request's microseconds, and, if there were errors,
-- "WRITERS-ERROR <first one>".

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } dw_timespec;
int clock_gettime(int clock_id, dw_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local SLOT = "@@@@@@@@@"
local threads = {}

local ts = ffi.new("dw_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  expected = tonumber(args[2])
  errors = 0
  first_error = ""
  sent = 0
  started = 0
  latencies = {}
  pieces = {}
  for line in io.lines(args[1]) do
    local parts, from = {}, 1
    while true do
      local i, j = string.find(line, SLOT, from, true)
      if not i then
        parts[#parts + 1] = string.sub(line, from)
        break
      end
      parts[#parts + 1] = string.sub(line, from, i - 1)
      from = j + 1
    end
    pieces[#pieces + 1] = parts
  end
  assert(#pieces > 0, "no templates in " .. args[1])
  headers = {
    ["Authorization"] = "Bearer " .. assert(os.getenv("DRIFTWATCH_API_KEY"), "no key"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  local body = table.concat(pieces[sent % #pieces + 1], string.format("%02d%07d", tid, sent))
  sent = sent + 1
  local req = wrk.format("POST", nil, headers, body)
  started = now_us()
  return req
end

function response(status, headers, body)
  latencies[#latencies + 1] = math.floor(now_us() - started + 0.5)
  local accepted = tonumber(string.match(body or "", '"accepted"%s*:%s*(%d+)'))
  if status ~= 200 or accepted ~= expected then
    errors = errors + 1
    if first_error == "" then
      first_error = status .. ": " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local errs, first, all = 0, "", {}
  for _, t in ipairs(threads) do
    errs = errs + t:get("errors")
    if first == "" then
      first = t:get("first_error")
    end
    for _, v in ipairs(t:get("latencies")) do
      all[#all + 1] = v
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRITERS {"requests": %d, "seconds": %.6f, "errors": %d, "socket_errors": %d, ' ..
    '"timed": %d, "wrk_p95_us": %d}\n',
    summary.requests, summary.duration / 1e6, errs, e.connect + e.read + e.write + e.timeout,
    #all, latency:percentile(95)))
  io.write("WRITERS-LATENCIES-US " .. table.concat(all, " ") .. "\n")
  if first ~= "" then
    io.write("WRITERS-ERROR " .. string.gsub(first, "\n", " ") .. "\n")
  end
end
