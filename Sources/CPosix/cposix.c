#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "cposix.h"

int isosweep_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

// Lock-free, so setting it is async-signal-safe.
static atomic_int sigterm_seen = 0;

static void note_sigterm(int signal) {
    (void)signal;
    atomic_store(&sigterm_seen, 1);
}

int isosweep_catch_sigterm(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = note_sigterm;
    sigemptyset(&action.sa_mask);
    // Restart interrupted reads and writes: the runner's channel must not see EINTR mid-frame.
    action.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &action, NULL) != 0) return -1;
    // A parent that handles SIGTERM through a dispatch source blocks it, and a spawned process
    // inherits that mask: unblocked here, or it would stay pending for ever.
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    return pthread_sigmask(SIG_UNBLOCK, &term, NULL) == 0 ? 0 : -1;
}

int isosweep_take_sigterm(void) { return atomic_exchange(&sigterm_seen, 0); }
