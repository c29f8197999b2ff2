/*
 * sandbox_child.c: what the forked child does between fork() and
 * execve(bwrap).
 *
 * ASYNC-SIGNAL-SAFE ONLY.  The worker is multi-threaded: after fork() the
 * child has one thread, and any lock another thread held (malloc's,
 * stdio's, the log's) stays held forever.  So nothing here allocates, uses
 * stdio or logs: only system calls and code that touches nothing global.
 * Every argument (argv, envp, the spec) was built before the fork.  A
 * failure is written to fd 2 with write(2) and the child _exit()s.
 *
 * Order: new process group; default signal dispositions and an empty mask;
 * stdin/stdout/stderr to the pipes, bwrap's status pipe at fd 3 and the
 * seccomp program at fd 4, every other fd closed; privileges dropped to the
 * sandbox user when root; death with the worker; rlimits; then a small
 * subreaper process that reaps whatever bwrap leaves behind and exits with
 * bwrap's status.
 */
#define _GNU_SOURCE
#include "sandbox_child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* "trace-worker sandbox: <what> (errno N)" to fd 2, then _exit(code). */
static void __attribute__((noreturn))
child_die(const char *what, int code)
{
    char buf[160];
    int e = errno, n = 0;
    const char *p = "trace-worker sandbox: ";

    while (*p && n < 100)
        buf[n++] = *p++;
    for (p = what; *p && n < 140; p++)
        buf[n++] = *p;
    for (p = " (errno "; *p; p++)
        buf[n++] = *p;
    if (e >= 100)
        buf[n++] = (char) ('0' + e / 100 % 10);
    if (e >= 10)
        buf[n++] = (char) ('0' + e / 10 % 10);
    buf[n++] = (char) ('0' + e % 10);
    buf[n++] = ')';
    buf[n++] = '\n';
    (void) !write(2, buf, (size_t) n);
    _exit(code);
}

static void
set_limit(int resource, int64_t soft, int64_t hard)
{
    struct rlimit rl;

    rl.rlim_cur = soft < 0 ? RLIM_INFINITY : (rlim_t) soft;
    rl.rlim_max = hard < 0 ? RLIM_INFINITY : (rlim_t) hard;
    if (setrlimit(resource, &rl) < 0)
        child_die("setrlimit failed", 126);
}

/* Default dispositions, nothing blocked, and fds[0..4] at 0..4 alone. */
static void
reset_process(int fds[5])
{
    struct sigaction dfl;
    sigset_t none;

    setpgid(0, 0);
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        (void) sigaction(s, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Move the five fds above 10 first, so dup2 into 0..4 cannot clobber
     * one not yet moved. */
    for (int i = 0; i < 5; i++) {
        fds[i] = fcntl(fds[i], F_DUPFD, 10);
        if (fds[i] < 0)
            child_die("fcntl failed", 126);
    }
    for (int i = 0; i < 5; i++)
        if (dup2(fds[i], i) < 0)
            child_die("dup2 failed", 126);
    if (close_range(5, ~0U, 0) < 0)
        for (int fd = 5; fd < 65536; fd++)
            close(fd);
}

/* The sandbox user (when root), death with the worker, the rlimits. */
static void
restrict_process(const sandbox_spec *spec, pid_t parent)
{
    if (spec->drop_privileges) {
        if (setgroups(0, NULL) < 0 || setgid(spec->gid) < 0 || setuid(spec->uid) < 0)
            child_die("cannot switch to the sandbox user", 126);
        if (getuid() != spec->uid || geteuid() != spec->uid)
            child_die("still privileged after setuid", 126);
    }
    /* After the uid change, which clears it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        child_die("worker gone", 126);
    set_limit(RLIMIT_CORE, 0, 0);
    if (spec->cpu_seconds > 0)
        set_limit(RLIMIT_CPU, spec->cpu_seconds, spec->cpu_seconds + 1);
    if (spec->memory_bytes > 0) {
        /* RLIMIT_DATA bounds what a program allocates; RLIMIT_AS only stops
         * runaway reservations (V8 reserves ~1 GB up front). */
        set_limit(RLIMIT_DATA, spec->memory_bytes, spec->memory_bytes);
        set_limit(RLIMIT_AS, spec->memory_bytes + (4LL << 30), spec->memory_bytes + (4LL << 30));
    }
    if (spec->max_file_bytes > 0)
        set_limit(RLIMIT_FSIZE, spec->max_file_bytes, spec->max_file_bytes);
    if (spec->max_procs > 0)
        set_limit(RLIMIT_NPROC, spec->max_procs, spec->max_procs);
    if (spec->max_open_files > 0)
        set_limit(RLIMIT_NOFILE, spec->max_open_files, spec->max_open_files);
}

/* This process stays as a subreaper between the worker and bwrap: bwrap's
 * monitor can exit before the sandbox's pid 1 does, and an orphan would go
 * to the host's init, which may never reap it.  Here every such orphan is
 * reaped, then this process exits with bwrap's status. */
static void __attribute__((noreturn))
run_bwrap(const sandbox_spec *spec, char *const *argv, char *const *envp)
{
    pid_t me = getpid(), bw, r;
    int wst, bst = 0;

    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        child_die("cannot become a subreaper", 126);
    bw = fork();
    if (bw < 0)
        child_die("fork failed", 126);
    if (bw == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != me)
            _exit(126);
        execve(spec->bwrap_path, argv, envp);
        child_die("cannot execute bubblewrap", 127);
    }
    /* Only bwrap keeps the pipes, so EOF means bwrap is done with them. */
    for (int fd = 0; fd < 5; fd++)
        close(fd);
    while ((r = waitpid(-1, &wst, 0)) > 0 || (r < 0 && errno == EINTR))
        if (r == bw)
            bst = wst;
    if (WIFSIGNALED(bst)) {
        kill(me, WTERMSIG(bst));
        _exit(128 + WTERMSIG(bst));
    }
    _exit(WIFEXITED(bst) ? WEXITSTATUS(bst) : 126);
}

void
sandbox_child_exec(const sandbox_spec *spec, int fds[5], pid_t parent, char *const *argv,
                   char *const *envp)
{
    reset_process(fds);
    restrict_process(spec, parent);
    run_bwrap(spec, argv, envp);
}
