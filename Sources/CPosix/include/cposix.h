#ifndef ISOSWEEP_CPOSIX_H
#define ISOSWEEP_CPOSIX_H

/// pipe2(fds, O_CLOEXEC): both ends close-on-exec from the start, so no process another thread
/// spawns in between inherits them (Swift's Glibc module does not export pipe2, a GNU extension).
/// Returns 0, or -1 with errno set.
int isosweep_pipe_cloexec(int fds[2]);

/// Makes SIGTERM set a flag instead of ending the process (a cell runner: its worker decides
/// when a cell stops; a SIGTERM asks for a checkpoint). Returns 0, or -1 with errno set.
int isosweep_catch_sigterm(void);

/// Whether a SIGTERM arrived since the last call (the flag is cleared).
int isosweep_take_sigterm(void);

#endif
