/* What a multi-row INSERT costs SQLite with and without a statement journal, outside gatewayd.
 *
 *   statement-journal DB VERB
 *
 * Writes 3 000 statements of 14 rows each into DB's `readings` table, inside one transaction,
 * bound as Sources/RingStore/ReadingRows.swift binds them (`?1` first slot, `?2` device, `?3`
 * time, `?4` sequence number, then signal and value per row; slots `?1 + k`). VERB is the
 * statement's start, e.g. "INSERT OR REPLACE". Run under callgrind by statement-journal.sh. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

enum { STATEMENTS = 3000, ROWS = 14 };

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DB VERB\n", argv[0]);
        return 2;
    }
    sqlite3 *db;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK) {
        fprintf(stderr, "open %s: %s\n", argv[1], sqlite3_errmsg(db));
        return 1;
    }
    char sql[4096];
    int used = snprintf(sql, sizeof sql, "%s INTO readings(slot, device_id, signal_id, ts_ms, value, dev_seq) VALUES ",
                        argv[2]);
    for (int k = 0; k < ROWS; k++) {
        used += snprintf(sql + used, sizeof sql - used, "%s(?1 + %d, ?2, ?%d, ?3, ?%d, ?4)", k ? ", " : "", k,
                         5 + 2 * k, 6 + 2 * k);
    }
    sqlite3_stmt *statement;
    if (sqlite3_prepare_v2(db, sql, -1, &statement, NULL) != SQLITE_OK) {
        fprintf(stderr, "prepare: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (int i = 0; i < STATEMENTS; i++) {
        sqlite3_bind_int64(statement, 1, (i * ROWS) % 20000);
        sqlite3_bind_int64(statement, 2, i % 100);
        sqlite3_bind_int64(statement, 3, 1767225600000LL + i * 1000LL);
        sqlite3_bind_int64(statement, 4, i);
        for (int k = 0; k < ROWS; k++) {
            sqlite3_bind_int64(statement, 5 + 2 * k, k);
            sqlite3_bind_double(statement, 6 + 2 * k, k * 1.5);
        }
        if (sqlite3_step(statement) != SQLITE_DONE) {
            fprintf(stderr, "step %d: %s\n", i, sqlite3_errmsg(db));
            return 1;
        }
        sqlite3_reset(statement);
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "commit: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_finalize(statement);
    sqlite3_close(db);
    return 0;
}
