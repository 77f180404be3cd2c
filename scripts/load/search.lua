-- wrk script: GET /fhir/Observation?patient=<id> over the patient ids in $PATIENTS (one per
-- line), round robin per thread.
local ids = {}
for line in io.lines(os.getenv("PATIENTS")) do
    ids[#ids + 1] = line
end
local i = 0

function request()
    i = i + 1
    local id = ids[(i % #ids) + 1]
    return wrk.format("GET", "/fhir/Observation?patient=" .. id .. "&_count=50", {["Authorization"] = "Bearer " .. os.getenv("TOKEN")})
end

function response(status, headers, body)
    if status ~= 200 then
        io.stderr:write("unexpected status " .. status .. "\n")
    end
end
