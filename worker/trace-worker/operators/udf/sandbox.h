/*
 * sandbox.h: starting untrusted programs under bubblewrap.
 *
 * What the program gets: a read-only root made of /usr (and the /bin, /lib
 * links), a few files of /etc, the UDF directory read-only at /udf, its
 * scratch directory read-write at /scratch (and /tmp, on the same disk), a
 * private /proc and /dev; new user, pid, network, ipc, uts and cgroup
 * namespaces (so no network and no view of the worker's processes); a clean
 * environment; only fds 0, 1 and 2; rlimits on CPU, memory, processes, file
 * size and open files; no core dumps; a seccomp filter that refuses
 * non-local sockets, ptrace, namespace changes, io_uring, bpf, keyrings and
 * the like.  When the worker runs as root, the program runs as an
 * unprivileged user (sandbox_user).
 *
 * If any of this cannot be set up the spawn fails or the sandbox reports
 * that it did not start: the program never runs unsandboxed.
 */
#ifndef TRACE_SANDBOX_H
#define TRACE_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sandbox_spec {
    const char        *bwrap_path;
    const char        *udf_dir;     /* host dir, read-only at /udf */
    const char        *scratch;     /* host dir made by sandbox_make_scratch */
    const char *const *argv;        /* the program, as seen inside */
    const char *const *env;         /* extra NAME=VALUE for the program */
    int                drop_privileges;
    uid_t              uid;
    gid_t              gid;
    int64_t            memory_bytes;
    int64_t            cpu_seconds;
    int64_t            max_file_bytes;
    int64_t            max_procs;
    int64_t            max_open_files;
} sandbox_spec;

typedef struct sandbox_child {
    pid_t pid;          /* the bwrap process; leader of its process group */
    pid_t inner_pid;    /* the sandbox's pid 1 (from bwrap's status), or 0 */
    int   stdin_fd;     /* parent's ends; non-blocking, close-on-exec */
    int   stdout_fd;
    int   stderr_fd;
    int   status_fd;    /* bwrap's JSON status stream */
    int   exit_code;    /* from the status stream, -1 until known */
    int   started;      /* bwrap reported the program started */
    char  status_buf[1024];
    size_t status_len;
} sandbox_child;

/* Builds the seccomp program once (at startup).  0, or -1 with err filled
 * (then every UDF task fails: no unsandboxed fallback). */
int sandbox_init(char *err, size_t errlen);

/* Makes <base>/trace-udf-XXXXXX with work/ and tmp/ owned by the sandbox
 * user.  path receives the directory.  0 or -1. */
int sandbox_make_scratch(const char *base, int drop, uid_t uid, gid_t gid, char *path,
                         size_t pathlen, char *err, size_t errlen);

/* Starts the program.  0 with child filled, or -1 with err filled. */
int sandbox_spawn(const sandbox_spec *spec, sandbox_child *child, char *err, size_t errlen);

/* Reads what bwrap reported on its status fd (call when readable).
 * Returns 1 on EOF, 0 otherwise. */
int sandbox_read_status(sandbox_child *child);

/* Kills the sandbox: its pid 1 (which takes every process inside with it)
 * and bwrap's process group. */
void sandbox_kill(sandbox_child *child);

/* Waits for bwrap to exit, at most wait_ms (then kills and waits for good),
 * closes the fds and returns the wait status.  Always reaps. */
int sandbox_reap(sandbox_child *child, int64_t wait_ms);

/* Closes the parent's fds that are still open. */
void sandbox_close_fds(sandbox_child *child);

#endif
