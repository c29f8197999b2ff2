/*
 * sandbox.c: bubblewrap + rlimits + seccomp for UDF programs.
 *
 * Order of events in the child between fork() and exec() (only
 * async-signal-safe calls: the worker is multi-threaded):
 *   new process group; default signal dispositions and an empty mask;
 *   stdin/stdout/stderr to pipes, bwrap's status pipe at fd 3 and the
 *   seccomp program at fd 4, every other fd closed; privileges dropped to
 *   the sandbox user when root; rlimits; die with the worker; exec bwrap
 *   with an environment of PATH only (bwrap --clearenv then sets the
 *   program's), from a small subreaper process that reaps whatever bwrap
 *   leaves behind.  bwrap loads the seccomp program just before it execs the
 *   user's program, and closes fds 3 and 4 from the program's view.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* The compiled seccomp program (struct sock_filter[]), built once. */
static void *seccomp_prog;
static size_t seccomp_len;

/* Adds "syscall -> errno" when the syscall exists on this architecture. */
static int
deny(scmp_filter_ctx ctx, const char *name, int err_no, unsigned nargs,
     const struct scmp_arg_cmp *arg)
{
    int nr = seccomp_syscall_resolve_name(name);

    if (nr == __NR_SCMP_ERROR)
        return 0;
    if (nargs)
        return seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(err_no), nr, nargs, arg);
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(err_no), nr, 0);
}

int
sandbox_init(char *err, size_t errlen)
{
    static const char *const denied[] = {
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
        "keyctl", "add_key", "request_key",
        "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
        "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
        "unshare", "setns",
        "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
        "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
        "acct", "swapon", "swapoff", "reboot", "syslog", "quotactl", "lookup_dcookie",
        "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
        "vhangup", "pidfd_getfd",
    };
    /* io_uring can open sockets without the socket() syscall; ENOSYS makes
     * runtimes (libuv) fall back to epoll and threads. */
    static const char *const nosys[] = {"io_uring_setup", "io_uring_enter",
                                        "io_uring_register", "clone3"};
    static const unsigned long ns_flags[] = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET,
                                             CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWUTS,
                                             CLONE_NEWCGROUP};
    scmp_filter_ctx ctx;
    int fd = -1, rc = -1;
    off_t len;
    struct scmp_arg_cmp a;

    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        set_err(err, errlen, "seccomp_init failed");
        return -1;
    }
    /* Other architectures' syscall tables (i386 via int 0x80) kill. */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0)
        goto fail;
    /* Sockets: only AF_UNIX (socketpair and the like); no AF_INET, AF_INET6,
     * AF_NETLINK, AF_PACKET, AF_VSOCK... */
    a = SCMP_A0(SCMP_CMP_NE, AF_UNIX);
    if (deny(ctx, "socket", EPERM, 1, &a) < 0)
        goto fail;
    for (size_t i = 0; i < ARRAY_LEN(denied); i++)
        if (deny(ctx, denied[i], EPERM, 0, NULL) < 0)
            goto fail;
    for (size_t i = 0; i < ARRAY_LEN(nosys); i++)
        if (deny(ctx, nosys[i], ENOSYS, 0, NULL) < 0)
            goto fail;
    /* clone() that would make a namespace. */
    for (size_t i = 0; i < ARRAY_LEN(ns_flags); i++) {
        a = SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
        if (deny(ctx, "clone", EPERM, 1, &a) < 0)
            goto fail;
    }
    /* Typing into a terminal (there is none, but still). */
    a = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, TIOCSTI);
    if (deny(ctx, "ioctl", EPERM, 1, &a) < 0)
        goto fail;
    a = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, TIOCLINUX);
    if (deny(ctx, "ioctl", EPERM, 1, &a) < 0)
        goto fail;

    fd = memfd_create("trace-seccomp", MFD_CLOEXEC);
    if (fd < 0 || seccomp_export_bpf(ctx, fd) < 0) {
        set_err(err, errlen, "cannot export the seccomp program: %s", strerror(errno));
        goto cleanup;
    }
    len = lseek(fd, 0, SEEK_END);
    if (len <= 0 || lseek(fd, 0, SEEK_SET) < 0) {
        set_err(err, errlen, "cannot read back the seccomp program");
        goto cleanup;
    }
    free(seccomp_prog);
    seccomp_prog = malloc((size_t) len);
    if (seccomp_prog == NULL || read(fd, seccomp_prog, (size_t) len) != len) {
        set_err(err, errlen, "cannot read back the seccomp program");
        free(seccomp_prog);
        seccomp_prog = NULL;
        goto cleanup;
    }
    seccomp_len = (size_t) len;
    rc = 0;
    goto cleanup;
fail:
    set_err(err, errlen, "cannot build the seccomp filter");
cleanup:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return rc;
}

int
sandbox_make_scratch(const char *base, int drop, uid_t uid, gid_t gid, char *path,
                     size_t pathlen, char *err, size_t errlen)
{
    char sub[4096];
    static const char *const subs[] = {"work", "tmp"};

    if ((size_t) snprintf(path, pathlen, "%s/trace-udf-XXXXXX", base) >= pathlen) {
        set_err(err, errlen, "scratch_dir path too long");
        return -1;
    }
    if (mkdtemp(path) == NULL) {
        set_err(err, errlen, "cannot make a scratch dir under \"%s\": %s", base, strerror(errno));
        return -1;
    }
    /* The top is the worker's: searchable, so bwrap (as the sandbox user)
     * can bind what is inside, but not writable by the UDF. */
    if (chmod(path, 0711) < 0)
        goto fail;
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
        if (mkdir(sub, 0700) < 0)
            goto fail;
        if (drop && chown(sub, uid, gid) < 0)
            goto fail;
    }
    return 0;
fail:
    set_err(err, errlen, "cannot prepare scratch dir \"%s\": %s", path, strerror(errno));
    remove_tree(path);
    return -1;
}

/* argv builder: a fixed array, filled before fork. */
typedef struct argvec {
    const char *v[256];
    int n;
    int overflow;
} argvec;

static void
add(argvec *a, const char *s)
{
    if (a->n + 1 >= (int) ARRAY_LEN(a->v)) {
        a->overflow = 1;
        return;
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

/* /bin, /lib... are symlinks into /usr on a merged-/usr system: recreate
 * the link; when they are real directories bind them. */
static void
add_root_link(argvec *a, const char *path, char *buf, size_t buflen)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return;
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(path, buf, buflen - 1);

        if (n <= 0)
            return;
        buf[n] = '\0';
        add(a, "--symlink");
        add(a, buf);
        add(a, path);
    } else if (S_ISDIR(st.st_mode)) {
        add(a, "--ro-bind");
        add(a, path);
        add(a, path);
    }
}

/* Async-signal-safe "message: errno N" to fd 2, then _exit. */
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
    buf[n++] = ' ';
    buf[n++] = '(';
    buf[n++] = 'e';
    buf[n++] = 'r';
    buf[n++] = 'r';
    buf[n++] = 'n';
    buf[n++] = 'o';
    buf[n++] = ' ';
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

int
sandbox_spawn(const sandbox_spec *spec, sandbox_child *child, char *err, size_t errlen)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, st[2] = {-1, -1};
    int sfd = -1;
    char work[4096], tmp[4096], links[6][256];
    static const char *const root_links[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                             "/libx32"};
    static const char *const etc_files[] = {
        "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/alternatives",
        "/etc/mime.types",
    };
    const char *bwrap_env[] = {"PATH=/usr/bin:/bin", NULL};
    argvec a = {.n = 0};
    pid_t pid, parent = getpid();

    memset(child, 0, sizeof *child);
    child->pid = -1;
    child->stdin_fd = child->stdout_fd = child->stderr_fd = child->status_fd = -1;
    child->exit_code = -1;
    if (seccomp_prog == NULL) {
        set_err(err, errlen, "the seccomp filter is not available");
        return -1;
    }
    if (access(spec->bwrap_path, X_OK) < 0) {
        set_err(err, errlen, "bubblewrap not found at \"%s\" (install the bubblewrap package)",
                spec->bwrap_path);
        return -1;
    }
    snprintf(work, sizeof work, "%s/work", spec->scratch);
    snprintf(tmp, sizeof tmp, "%s/tmp", spec->scratch);

    add(&a, spec->bwrap_path);
    add(&a, "--unshare-all");           /* user, pid, net, ipc, uts, cgroup */
    add(&a, "--die-with-parent");
    add(&a, "--new-session");           /* no controlling terminal */
    add(&a, "--json-status-fd");
    add(&a, "3");
    add(&a, "--seccomp");
    add(&a, "4");
    add(&a, "--hostname");
    add(&a, "trace-udf");
    add(&a, "--tmpfs");
    add(&a, "/");
    add(&a, "--ro-bind");
    add(&a, "/usr");
    add(&a, "/usr");
    for (size_t i = 0; i < ARRAY_LEN(root_links); i++)
        add_root_link(&a, root_links[i], links[i], sizeof links[i]);
    for (size_t i = 0; i < ARRAY_LEN(etc_files); i++) {
        add(&a, "--ro-bind-try");
        add(&a, etc_files[i]);
        add(&a, etc_files[i]);
    }
    add(&a, "--ro-bind");
    add(&a, spec->udf_dir);
    add(&a, "/udf");
    add(&a, "--bind");
    add(&a, work);
    add(&a, "/scratch");
    add(&a, "--bind");
    add(&a, tmp);
    add(&a, "/tmp");
    add(&a, "--proc");
    add(&a, "/proc");
    add(&a, "--dev");
    add(&a, "/dev");
    add(&a, "--remount-ro");
    add(&a, "/");
    add(&a, "--chdir");
    add(&a, "/scratch");
    add(&a, "--clearenv");
    add(&a, "--setenv");
    add(&a, "PATH");
    add(&a, "/usr/local/bin:/usr/bin:/bin");
    add(&a, "--setenv");
    add(&a, "HOME");
    add(&a, "/scratch");
    add(&a, "--setenv");
    add(&a, "TMPDIR");
    add(&a, "/tmp");
    add(&a, "--setenv");
    add(&a, "LANG");
    add(&a, "C.UTF-8");
    /* Extra variables: "NAME=VALUE" split into a buffer of our own. */
    char envbuf[4096];
    size_t used = 0;

    for (const char *const *e = spec->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = strlen(*e);

        if (eq == NULL || used + len + 1 > sizeof envbuf) {
            set_err(err, errlen, "bad sandbox environment entry");
            return -1;
        }
        memcpy(envbuf + used, *e, len + 1);
        envbuf[used + (size_t) (eq - *e)] = '\0';
        add(&a, "--setenv");
        add(&a, envbuf + used);
        add(&a, envbuf + used + (eq - *e) + 1);
        used += len + 1;
    }
    add(&a, "--");
    for (const char *const *p = spec->argv; *p; p++)
        add(&a, *p);
    if (a.overflow) {
        set_err(err, errlen, "sandbox command line too long");
        return -1;
    }

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        pipe2(st, O_CLOEXEC) < 0) {
        set_err(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    sfd = memfd_create("trace-seccomp", MFD_CLOEXEC);
    if (sfd < 0 || write(sfd, seccomp_prog, seccomp_len) != (ssize_t) seccomp_len ||
        lseek(sfd, 0, SEEK_SET) < 0) {
        set_err(err, errlen, "cannot pass the seccomp program: %s", strerror(errno));
        goto fail;
    }

    pid = fork();
    if (pid < 0) {
        set_err(err, errlen, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only from here to execve. */
        struct sigaction dfl;
        sigset_t none;
        int fds[5] = {in[0], out[1], errp[1], st[1], sfd};

        setpgid(0, 0);
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            (void) sigaction(s, &dfl, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Move the five fds above 10 first, so dup2 into 0..4 cannot
         * clobber one not yet moved. */
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
            /* RLIMIT_DATA bounds what a program allocates; RLIMIT_AS only
             * stops runaway reservations (V8 reserves ~1 GB up front). */
            set_limit(RLIMIT_DATA, spec->memory_bytes, spec->memory_bytes);
            set_limit(RLIMIT_AS, spec->memory_bytes + (4LL << 30),
                      spec->memory_bytes + (4LL << 30));
        }
        if (spec->max_file_bytes > 0)
            set_limit(RLIMIT_FSIZE, spec->max_file_bytes, spec->max_file_bytes);
        if (spec->max_procs > 0)
            set_limit(RLIMIT_NPROC, spec->max_procs, spec->max_procs);
        if (spec->max_open_files > 0)
            set_limit(RLIMIT_NOFILE, spec->max_open_files, spec->max_open_files);
        /* This process stays as a subreaper between the worker and bwrap:
         * bwrap's monitor can exit before the sandbox's pid 1 does, and an
         * orphan would go to the host's init, which may never reap it.
         * Here every such orphan is reaped, then this process exits with
         * bwrap's status. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
            child_die("cannot become a subreaper", 126);
        pid_t me = getpid();
        pid_t bw = fork();

        if (bw < 0)
            child_die("fork failed", 126);
        if (bw == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != me)
                _exit(126);
            execve(spec->bwrap_path, (char *const *) a.v, (char *const *) bwrap_env);
            child_die("cannot execute bubblewrap", 127);
        }
        /* Only bwrap keeps the pipes, so EOF means bwrap is done with them. */
        for (int fd = 0; fd < 5; fd++)
            close(fd);
        int wst, bst = 0;
        pid_t r;

        while ((r = waitpid(-1, &wst, 0)) > 0 || (r < 0 && errno == EINTR))
            if (r == bw)
                bst = wst;
        if (WIFSIGNALED(bst)) {
            kill(me, WTERMSIG(bst));
            _exit(128 + WTERMSIG(bst));
        }
        _exit(WIFEXITED(bst) ? WEXITSTATUS(bst) : 126);
    }

    close(in[0]);
    close(out[1]);
    close(errp[1]);
    close(st[1]);
    close(sfd);
    child->pid = pid;
    child->stdin_fd = in[1];
    child->stdout_fd = out[0];
    child->stderr_fd = errp[0];
    child->status_fd = st[0];
    fcntl(child->stdin_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->stdout_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->stderr_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->status_fd, F_SETFL, O_NONBLOCK);
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (st[i] >= 0)
            close(st[i]);
    }
    if (sfd >= 0)
        close(sfd);
    return -1;
}

/* Finds "key": N in bwrap's status text. */
static long
status_field(const char *buf, const char *key)
{
    const char *p = strstr(buf, key);

    if (p == NULL)
        return -1;
    p += strlen(key);
    while (*p == '"' || *p == ':' || *p == ' ')
        p++;
    return strtol(p, NULL, 10);
}

int
sandbox_read_status(sandbox_child *child)
{
    for (;;) {
        ssize_t n;

        if (child->status_fd < 0)
            return 1;
        if (child->status_len + 1 >= sizeof child->status_buf) {
            /* More than we need: drop it, keep what we parsed. */
            char drain[512];

            n = read(child->status_fd, drain, sizeof drain);
        } else {
            n = read(child->status_fd, child->status_buf + child->status_len,
                     sizeof child->status_buf - 1 - child->status_len);
            if (n > 0) {
                child->status_len += (size_t) n;
                child->status_buf[child->status_len] = '\0';
            }
        }
        if (n == 0) {
            close(child->status_fd);
            child->status_fd = -1;
            break;
        }
        if (n < 0)
            break;
    }
    if (!child->started) {
        long pid = status_field(child->status_buf, "\"child-pid\"");

        if (pid > 0) {
            child->inner_pid = (pid_t) pid;
            child->started = 1;
        }
    }
    if (child->exit_code < 0) {
        long code = status_field(child->status_buf, "\"exit-code\"");

        if (code >= 0)
            child->exit_code = (int) code;
    }
    return child->status_fd < 0;
}

void
sandbox_kill(sandbox_child *child)
{
    /* The sandbox's pid 1: when it dies the kernel kills every process in
     * its pid namespace, and bwrap then exits on its own (no orphans). */
    if (child->inner_pid > 0)
        kill(child->inner_pid, SIGKILL);
    else if (child->pid > 0)
        killpg(child->pid, SIGKILL);
}

void
sandbox_close_fds(sandbox_child *child)
{
    int *fds[] = {&child->stdin_fd, &child->stdout_fd, &child->stderr_fd, &child->status_fd};

    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

int
sandbox_reap(sandbox_child *child, int64_t wait_ms)
{
    int status = 0;
    int64_t deadline = now_ms() + wait_ms;

    if (child->pid <= 0) {
        sandbox_close_fds(child);
        return 0;
    }
    for (;;) {
        pid_t r = waitpid(child->pid, &status, WNOHANG);

        if (r == child->pid || (r < 0 && errno != EINTR))
            break;
        if (now_ms() >= deadline) {
            /* bwrap itself did not go: take the whole group down. */
            sandbox_kill(child);
            killpg(child->pid, SIGKILL);
            while (waitpid(child->pid, &status, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        usleep(2000);
    }
    if (child->status_fd >= 0)
        sandbox_read_status(child);
    child->pid = -1;
    sandbox_close_fds(child);
    return status;
}
