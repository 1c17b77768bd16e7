/* Error codes of the mosaik substrate.
 *
 * Every fallible mk_* call returns 0 (or a count) on success and a negative
 * MK_E* code on failure. System errors are negated errno values; the codes
 * the substrate adds live below -3000 so they never collide with errno.
 * Library codes from OpenSSL, jansson and libraft are translated where they
 * are received, never passed through.
 */
#ifndef MK_ERROR_H
#define MK_ERROR_H

#include <errno.h>
#include <stddef.h>

/* XX(name, value, message) */
#define MK_ERROR_MAP(XX)                                                      \
    XX(NOMEM, -ENOMEM, "out of memory")                                       \
    XX(INVAL, -EINVAL, "invalid argument")                                    \
    XX(IO, -EIO, "input/output error")                                        \
    XX(NOENT, -ENOENT, "no such file or directory")                           \
    XX(ACCES, -EACCES, "permission denied")                                   \
    XX(EXIST, -EEXIST, "already exists")                                      \
    XX(AGAIN, -EAGAIN, "resource temporarily unavailable")                    \
    XX(BUSY, -EBUSY, "resource busy")                                         \
    XX(CANCELED, -ECANCELED, "operation canceled")                            \
    XX(CONNREFUSED, -ECONNREFUSED, "connection refused")                      \
    XX(CONNRESET, -ECONNRESET, "connection reset by peer")                    \
    XX(ADDRINUSE, -EADDRINUSE, "address already in use")                      \
    XX(ADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                 \
    XX(HOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                     \
    XX(NETUNREACH, -ENETUNREACH, "network is unreachable")                    \
    XX(PIPE, -EPIPE, "broken pipe")                                           \
    XX(NOTCONN, -ENOTCONN, "not connected")                                   \
    XX(TIMEDOUT, -ETIMEDOUT, "timed out")                                     \
    XX(MSGSIZE, -EMSGSIZE, "message too long")                                \
    XX(PROTO, -EPROTO, "protocol error")                                      \
    XX(RANGE, -ERANGE, "value out of range")                                  \
    XX(CONNECT_TIMEOUT, -3001, "nothing answered before the deadline")        \
    XX(DECODE, -3002, "malformed encoding")                                   \
    XX(BAD_SIGNATURE, -3003, "signature does not verify")                     \
    XX(WRONG_PEER, -3004, "remote is not the expected peer")                  \
    XX(WRONG_NETWORK, -3005, "remote is on another network")                  \
    XX(NOT_ALLOWED, -3006, "not allowed")                                     \
    XX(CLOSED, -3007, "handle is closed")                                     \
    XX(OFFLINE, -3008, "not online")                                          \
    XX(NOT_LEADER, -3009, "not the leader")                                   \
    XX(TLS, -3010, "TLS failure")                                             \
    XX(STALE, -3011, "stale or older than what is known")                     \
    XX(FULL, -3012, "queue is full")                                          \
    XX(KEY_PERMS, -3013, "key file is readable by group or others")           \
    XX(HASH_MISMATCH, -3014, "content does not match its hash")               \
    XX(EXPIRED, -3015, "expired")                                             \
    XX(UNSUPPORTED, -3016, "not supported")                                   \
    XX(METRICS_OFF, -3017, "metrics are off on this node")

enum {
#define MK_ERROR_ENUM(name, value, msg) MK_E##name = (value),
    MK_ERROR_MAP(MK_ERROR_ENUM)
#undef MK_ERROR_ENUM
};

/* Size of every detail buffer: the `err` (or `why`) argument of a call
 * that can explain a failure, in both libraries (CO_ERRMSG_SIZE is the
 * same number), and the messages long-lived objects keep. Big enough for
 * a substrate message passed up under a coalition prefix. */
#define MK_ERRMSG_SIZE 512

/* Fixed text for `code`. Never NULL; unknown codes get a generic text. */
const char *mk_strerror(int code);

/* "MK_EINVAL" style name for `code`. Never NULL. */
const char *mk_err_name(int code);

/* Formats a detail message into `err` (MK_ERRMSG_SIZE bytes, truncated to
 * fit; NULL: nothing is written) and returns `rc`, so a failure reads
 * `return mk_errf(err, MK_EINVAL, "...", ...);`. The one way both
 * libraries and their programs fill a detail buffer. */
int mk_errf(char *err, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* MK_ERROR_H */
