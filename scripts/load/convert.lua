-- wrk script: POST /fhir/$convert with the typical record in $RECORD.
wrk.method = "POST"
wrk.body = io.open(os.getenv("RECORD") or "fixtures/records/ms-rrms-auto-beam-atg.json"):read("*a")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")

function response(status, headers, body)
    if status ~= 200 then
        io.stderr:write("unexpected status " .. status .. "\n")
    end
end
