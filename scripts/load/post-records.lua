-- wrk script: POST /registry/records with a distinct record per request (recordId and UPN
-- made unique per thread and request from the fixture in $RECORD).
local template = io.open(os.getenv("RECORD") or "fixtures/records/ms-rrms-auto-beam-atg.json"):read("*a")
local run = os.getenv("RUN") or tostring(os.time())
local counter = 0
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function request()
    counter = counter + 1
    local key = run .. "-" .. tostring(tid) .. "-" .. tostring(counter)
    local body = template:gsub('"recordId": "[^"]*"', '"recordId": "LOAD-' .. key .. '"', 1)
    body = body:gsub('"upn": "[^"]*"', '"upn": "U-' .. key .. '"', 1)
    return wrk.format("POST", "/registry/records", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("TOKEN")}, body)
end

function response(status, headers, body)
    if status ~= 201 then
        io.stderr:write("unexpected status " .. status .. "\n")
    end
end
