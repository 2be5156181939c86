/* crash: the test switch MAILFS_CRASH_AT=N makes the process exit abruptly
 * (no cleanup, no flush: as if killed) right after its N-th durable step, so
 * tests can check that every interruption point recovers. Steps are counted
 * across threads; each call site names what was just made durable.
 * MAILFS_CRASH_TRACE=1 logs every step ("durable step N: what"), so a test
 * can count them. */
#ifndef MAILFS_CRASH_H
#define MAILFS_CRASH_H

/* Read MAILFS_CRASH_AT once, at start. */
void crash_init(void);
/* A durable step was just completed. */
void crash_point(const char *what);

#endif
