/* LD_PRELOAD shim that makes CLOCK_REALTIME read a fixed instant, for running the JWT
 * fixture cases (tests/fixtures/jwt/cases.json, whose tokens are valid at their "now")
 * through a real Envoy.
 *
 *   SSO_FIXED_TIME=<unix seconds>  the wall clock reads this instant, frozen
 *
 * Only the wall clock is touched: CLOCK_MONOTONIC (Envoy's timers) stays real. libfaketime
 * deadlocks inside Envoy (its constructor calls dlsym, which allocates through Envoy's
 * tcmalloc before the library is ready), so this shim needs no dlsym at all: the real clock
 * is read with the raw syscall.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long fixed_seconds(void) {
    static long long cached = -2;
    if (cached == -2) {
        const char *v = getenv("SSO_FIXED_TIME");
        cached = (v && *v) ? atoll(v) : -1;
    }
    return cached;
}

static int is_wall(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE || id == CLOCK_TAI;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    long long fixed = fixed_seconds();
    if (fixed >= 0 && is_wall(id) && ts) {
        ts->tv_sec = (time_t)fixed;
        ts->tv_nsec = 0;
        return 0;
    }
    return (int)syscall(SYS_clock_gettime, id, ts);
}

int gettimeofday(struct timeval *tv, void *tz) {
    long long fixed = fixed_seconds();
    if (fixed >= 0 && tv) {
        tv->tv_sec = (time_t)fixed;
        tv->tv_usec = 0;
        return 0;
    }
    return (int)syscall(SYS_gettimeofday, tv, tz);
}

time_t time(time_t *out) {
    long long fixed = fixed_seconds();
    time_t t;
    if (fixed >= 0) {
        t = (time_t)fixed;
    } else {
        struct timespec ts;
        syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
        t = ts.tv_sec;
    }
    if (out) *out = t;
    return t;
}
