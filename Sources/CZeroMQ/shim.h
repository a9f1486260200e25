#ifndef ISOSWEEP_CZEROMQ_SHIM_H
#define ISOSWEEP_CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>

// errno values as functions: Swift does not import every macro of errno.h portably.
static inline int czmq_eagain(void) { return EAGAIN; }
static inline int czmq_eintr(void) { return EINTR; }
static inline int czmq_eterm(void) { return ETERM; }
static inline int czmq_ehostunreach(void) { return EHOSTUNREACH; }
// ZMQ_ZAP_ENFORCE_DOMAIN sits behind ZMQ_BUILD_DRAFT_API in zmq.h, but libzmq 4.3 honours it:
// with it, a socket with a ZAP domain fails every handshake that no ZAP handler approves.
#define CZMQ_ZAP_ENFORCE_DOMAIN 93
#endif
