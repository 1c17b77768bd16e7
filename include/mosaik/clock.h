/* Clocks: wall time for what crosses the network (entry versions, ticket
 * expiry), monotonic time for local timeouts. */
#ifndef MK_CLOCK_H
#define MK_CLOCK_H

#include <stdint.h>

/* Unix milliseconds (CLOCK_REALTIME). */
int64_t mk_now_ms(void);

/* Milliseconds since an arbitrary point (CLOCK_MONOTONIC). */
int64_t mk_mono_ms(void);

/* Microseconds since an arbitrary point (CLOCK_MONOTONIC). */
int64_t mk_mono_us(void);

#endif
