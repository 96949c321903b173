-- wrk (4.1) script for the writers phase of benchmarks/ingest.py (--writers-client wrk):
-- every connection is one writer that POSTs a JSON body and waits for its acknowledgement.
--
--   DRIFTWATCH_API_KEY=... wrk -t1 -c64 -d4s --timeout 60s -s benchmarks/writers.lua \
--       http://127.0.0.1:PORT/api/v1/models/small/inferences -- TEMPLATES ROWS
--
-- TEMPLATES: one JSON body a line, built by benchmarks/ingest.py (writer_templates) before
-- wrk starts; each holds the slot @@@@@@@@@ in every request_id. Each request takes the next
-- template and fills the slot with the thread's number and its own count (table.concat of the
-- pieces around the slot), so request ids are unique per request: the server keeps
-- idempotency keys. Every response must be 200 with "accepted" equal to ROWS; anything else
-- is counted. done() prints one line "WRITERS {json}" (requests, seconds, p50/p95 in µs from
-- wrk's latency histogram, errors) and, if there were errors, "WRITERS-ERROR <first one>".
-- wrk's latency is per request, timed by its own event loop (from writing the request to
-- reading the whole response).

local SLOT = "@@@@@@@@@"
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  expected = tonumber(args[2])
  errors = 0
  first_error = ""
  sent = 0
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
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  local accepted = tonumber(string.match(body or "", '"accepted"%s*:%s*(%d+)'))
  if status ~= 200 or accepted ~= expected then
    errors = errors + 1
    if first_error == "" then
      first_error = status .. ": " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local errs, first = 0, ""
  for _, t in ipairs(threads) do
    errs = errs + t:get("errors")
    if first == "" then
      first = t:get("first_error")
    end
  end
  local e = summary.errors
  io.write(string.format(
    'WRITERS {"requests": %d, "seconds": %.6f, "p50_us": %d, "p95_us": %d, ' ..
    '"errors": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    errs, e.connect + e.read + e.write + e.timeout))
  if first ~= "" then
    io.write("WRITERS-ERROR " .. string.gsub(first, "\n", " ") .. "\n")
  end
end
