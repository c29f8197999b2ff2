/*
 * sandbox_child.h: the part of sandbox_spawn() that runs in the forked
 * child (sandbox_child.c).  Private to sandbox.c.
 */
#ifndef TRACE_SANDBOX_CHILD_H
#define TRACE_SANDBOX_CHILD_H

#include "sandbox.h"

#include <sys/types.h>

/* In the child of fork(): fds[0..4] become its fds 0..4 (stdin, stdout,
 * stderr, bwrap's status pipe, the seccomp program), privileges drop,
 * limits apply, and bwrap runs under a subreaper with argv and envp.
 * parent is the worker's pid.  Never returns.  Async-signal-safe only. */
void sandbox_child_exec(const sandbox_spec *spec, int fds[5], pid_t parent,
                        char *const *argv, char *const *envp) __attribute__((noreturn));

#endif
