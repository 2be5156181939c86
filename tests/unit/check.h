/* check: a tiny unit-test harness that prints TAP (one "ok"/"not ok" line per
 * test function), so the test runner can count each test. */
#ifndef MAILFS_CHECK_H
#define MAILFS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_current_failed;
static int check_count;
static int check_failures;

#define CHECK(cond)                                                               \
    do {                                                                          \
        if (!(cond)) {                                                            \
            printf("# %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
            check_current_failed = 1;                                             \
        }                                                                         \
    } while (0)

#define CHECK_STR(a, b)                                                           \
    do {                                                                          \
        const char *check_a_ = (a), *check_b_ = (b);                              \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {         \
            printf("# %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,             \
                   check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
            check_current_failed = 1;                                             \
        }                                                                         \
    } while (0)

static inline void
check_run(const char *name, void (*fn)(void))
{
    check_current_failed = 0;
    fn();
    check_count++;
    if (check_current_failed)
        check_failures++;
    printf("%s %d - %s\n", check_current_failed ? "not ok" : "ok", check_count, name);
    fflush(stdout);
}

#define RUN(fn) check_run(#fn, fn)

/* Call at the end of main: prints the TAP plan and returns the exit status. */
static inline int
check_done(void)
{
    printf("1..%d\n", check_count);
    return check_failures ? 1 : 0;
}

#endif
