-- wrk script: durable allocate+release cycles through the placement rule and a quota. Each connection alternates
-- POST /allocations (a selector: driver ice, spread, prefer NUMA node 0, anti-affinity on label bond, whose values
-- b0..b63 the setup already holds twice each, so the rule must avoid PFs) and DELETE of the id it was given.
local pending = {}
local counter = 0
function request()
  local id = table.remove(pending)
  if id then
    return wrk.format("DELETE", "/allocations/" .. id)
  end
  counter = counter + 1
  return wrk.format("POST", "/allocations", {["Content-Type"] = "application/json"},
    '{"owner":"bench:' .. counter .. '","labels":{"bond":"b' .. (counter % 64) .. '"},' ..
    '"selector":{"driver":"ice","placement":"spread","prefer_numa_node":0,"anti_affinity":{"label":"bond"}}}')
end
function response(status, headers, body)
  if status == 201 then
    local id = body:match('"id":"([^"]+)"')
    if id then table.insert(pending, id) end
  end
end
