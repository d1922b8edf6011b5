-- wrk script: durable allocate+release cycles. Each connection alternates POST /allocations (pf 0000:5e:00.0)
-- and DELETE /allocations/{id} of an id it was given; cycles/s = completed DELETEs/s = requests/s / 2.
local pending = {}
local counter = 0
function request()
  local id = table.remove(pending)
  if id then
    return wrk.format("DELETE", "/allocations/" .. id)
  end
  counter = counter + 1
  return wrk.format("POST", "/allocations", {["Content-Type"] = "application/json"},
    '{"owner":"bench:' .. counter .. '","pf":"0000:5e:00.0"}')
end
function response(status, headers, body)
  if status == 201 then
    local id = body:match('"id":"([^"]+)"')
    if id then table.insert(pending, id) end
  end
end
