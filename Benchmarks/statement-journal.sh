#!/usr/bin/env bash
# Instructions SQLite spends on the reading ring's multi-row insert, by how `readings` is declared:
# with NOT NULL, a statement that writes several rows can fail halfway, so SQLite opens a
# statement journal on every run and copies each page it changes into it (why migration 10 drops
# the NOT NULLs). Counts from callgrind over Benchmarks/statement-journal.c; Debian's libsqlite3.
#
#   bash Benchmarks/statement-journal.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="valgrind gcc" source .ci/deps.sh
dir=$(mktemp -d /tmp/gw-journal.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"${CC:-gcc}" -O2 -o "$dir/statement-journal" Benchmarks/statement-journal.c -lsqlite3

run() {
    local name=$1 verb=$2 columns=$3
    sqlite3 "$dir/$name.db" "PRAGMA journal_mode=WAL; CREATE TABLE readings($columns);" >/dev/null
    valgrind --tool=callgrind --callgrind-out-file="$dir/$name.out" "$dir/statement-journal" "$dir/$name.db" "$verb" 2>/dev/null
    local total journals
    total=$(callgrind_annotate "$dir/$name.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    journals=$(callgrind_annotate --tree=caller --threshold=100 "$dir/$name.out" 2>/dev/null |
        sed -n 's/.*< ???:sqlite3BtreeBeginStmt (\([0-9,]*\)x).*/\1/p' | head -1)
    printf '%-16s instructions=%s per_row=%d statement_journals=%s\n' "$name" "$total" $((total / 42000)) "${journals:-0}"
}
run not-null "INSERT OR REPLACE" "slot INTEGER PRIMARY KEY, device_id INTEGER NOT NULL, signal_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL, dev_seq INTEGER NOT NULL"
run not-null-default "INSERT OR REPLACE" "slot INTEGER PRIMARY KEY, device_id INTEGER NOT NULL DEFAULT 0, signal_id INTEGER NOT NULL DEFAULT 0, ts_ms INTEGER NOT NULL DEFAULT 0, value REAL NOT NULL DEFAULT 0, dev_seq INTEGER NOT NULL DEFAULT 0"
run on-conflict-fail "INSERT" "slot INTEGER PRIMARY KEY ON CONFLICT REPLACE, device_id INTEGER NOT NULL ON CONFLICT FAIL, signal_id INTEGER NOT NULL ON CONFLICT FAIL, ts_ms INTEGER NOT NULL ON CONFLICT FAIL, value REAL NOT NULL ON CONFLICT FAIL, dev_seq INTEGER NOT NULL ON CONFLICT FAIL"
run no-not-null "INSERT OR REPLACE" "slot INTEGER PRIMARY KEY, device_id INTEGER, signal_id INTEGER, ts_ms INTEGER, value REAL, dev_seq INTEGER"
