#!/usr/bin/env python3
"""db-lock-watcher.py DB HOLD_S STATE_FILE [WATCH_S=60]: makes sriovd's database refuse the completion of a change.

Runs beside sriovd (in the lab guest, with the host's python3 and its sqlite3 module). It polls DB for an intent
that was not open when it started (`SELECT id FROM intents WHERE completed_at IS NULL`): sriovd commits a change's
intent before its first hardware write and completes it, in one transaction with the writes' audit, after the
last. The moment one shows, the watcher takes SQLite's write lock (`BEGIN EXCLUSIVE`, without waiting) and holds
it for HOLD_S seconds, longer than sriovd's 5 s busy timeout, so that the completion is refused and sriovd must
undo the writes before it answers. It never writes anything: the transaction is rolled back.

The race can be lost: the completion may take the lock first, or commit before the watcher looks again. The
outcome is written to STATE_FILE, one word and details: `ready` once it watches, then `held <intent id>` while it
holds the lock, and finally `released <intent id> after <s>`, or `lost busy|completed <intent id>`, or `timeout`.
"""
import sqlite3
import sys
import time


def main():
    db, hold, state = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    watch = float(sys.argv[4]) if len(sys.argv) > 4 else 60.0

    def say(text):
        with open(state, "w") as out:
            out.write(text + "\n")

    # timeout=0: a lock sriovd holds is a lost race at once, never a wait that would end after its commit.
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)
    open_at_start = {row[0] for row in conn.execute("SELECT id FROM intents WHERE completed_at IS NULL")}
    say("ready")
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline:
        new = [row[0] for row in conn.execute("SELECT id FROM intents WHERE completed_at IS NULL")
               if row[0] not in open_at_start]
        if not new:
            continue
        intent = new[0]
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            say(f"lost busy {intent}")
            return
        still_open = conn.execute("SELECT count(*) FROM intents WHERE id = ? AND completed_at IS NULL",
                                  (intent,)).fetchone()[0]
        if not still_open:
            conn.execute("ROLLBACK")
            say(f"lost completed {intent}")
            return
        taken = time.monotonic()
        say(f"held {intent}")
        time.sleep(hold)
        conn.execute("ROLLBACK")
        say(f"released {intent} after {time.monotonic() - taken:.1f}")
        return
    say("timeout")


if __name__ == "__main__":
    main()
