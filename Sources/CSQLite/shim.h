#ifndef SRIOVD_CSQLITE_SHIM_H
#define SRIOVD_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
