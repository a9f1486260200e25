#define _GNU_SOURCE
#include <fcntl.h>
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
    return sigaction(SIGTERM, &action, NULL);
}

int isosweep_take_sigterm(void) { return atomic_exchange(&sigterm_seen, 0); }
