import CSQLite
import FoundationEssentials
import Glibc

// Usage: RuntimeFloor DATABASE. Opens the database in WAL mode, writes a row, encodes some JSON, fills a
// dictionary, runs a task, prints "ready" and then idles until killed.
let path = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "floor.db"
var database: OpaquePointer?
guard sqlite3_open(path, &database) == SQLITE_OK else { fatalError("cannot open \(path)") }
sqlite3_exec(
    database, "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t(a); INSERT INTO t VALUES (1)", nil, nil, nil)
let json = try JSONEncoder().encode(["items": [1, 2, 3]])
var table: [String: Int] = [:]
for index in 0..<1000 { table["key\(index)"] = index }
let counted = await Task { table.count + json.count }.value
print("ready \(counted)")
fflush(nil)
while true { try? await Task.sleep(for: .seconds(60)) }
