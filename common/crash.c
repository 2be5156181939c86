/* crash: counted exit points for crash-recovery tests. */
#include "common/crash.h"

#include "common/log.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

static long crash_at;
static bool crash_trace;
static atomic_long crash_steps;

void
crash_init(void)
{
    const char *v = getenv("MAILFS_CRASH_AT");
    crash_at = v ? strtol(v, NULL, 10) : 0;
    v = getenv("MAILFS_CRASH_TRACE");
    crash_trace = v && v[0] == '1';
}

void
crash_point(const char *what)
{
    if (crash_at <= 0 && !crash_trace)
        return;
    long n = atomic_fetch_add(&crash_steps, 1) + 1;
    if (crash_trace)
        log_info("durable step %ld: %s", n, what);
    if (n == crash_at) {
        log_error("MAILFS_CRASH_AT=%ld: exiting after step %ld (%s)", crash_at, n, what);
        _exit(86);
    }
}
