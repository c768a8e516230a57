#ifndef C_SQLITE_SHIM_H
#define C_SQLITE_SHIM_H
#include <sqlite3.h>

/* sqlite3_db_config is variadic: Swift cannot call it, so each use gets a typed wrapper. */
static inline int csqlite_db_config_defensive(sqlite3 *db, int on) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, (int *)0);
}

/* sqlite3_config is variadic too. Memory statistics take a global mutex on every
   allocation, which serialises all connections; the gateway never reads them. Must run
   before the library initialises (before the first open). */
static inline int csqlite_disable_memstatus(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* SQLITE_TRANSIENT is a macro over a cast Swift cannot import. */
static inline sqlite3_destructor_type csqlite_transient(void) {
    return SQLITE_TRANSIENT;
}
#endif
