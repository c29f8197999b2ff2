/*
 * sandbox.c: bubblewrap + rlimits + seccomp for UDF programs: the seccomp
 * program (built once), scratch directories, bwrap's command line (built
 * before the fork: the child may not allocate), the fork, and watching and
 * reaping the child.  What the child does between fork() and exec() is
 * sandbox_child.c (async-signal-safe only).  bwrap runs with an
 * environment of PATH only (--clearenv then sets the program's), loads the
 * seccomp program just before it execs the user's program, and closes fds
 * 3 and 4 from the program's view.
 */
#define _GNU_SOURCE
#include "sandbox.h"
#include "sandbox_child.h"

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

/* The strings bwrap's argv points into, filled before fork. */
typedef struct sandbox_paths {
    char work[4096], tmp[4096];
    char links[6][256];
    char envbuf[4096];
} sandbox_paths;

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

/* The mounts: a read-only /usr (and the /bin, /lib links), a few files of
 * /etc, the UDF directory at /udf, the scratch dir's work/ and tmp/, a
 * private /proc and /dev, all read-only but those two. */
static void
add_mounts(argvec *a, const sandbox_spec *spec, sandbox_paths *p)
{
    static const char *const root_links[] = {"/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                             "/libx32"};
    static const char *const etc_files[] = {
        "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
        "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/alternatives",
        "/etc/mime.types",
    };
    const char *fixed[] = {"--tmpfs", "/", "--ro-bind", "/usr", "/usr"};

    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        add(a, fixed[i]);
    for (size_t i = 0; i < ARRAY_LEN(root_links); i++)
        add_root_link(a, root_links[i], p->links[i], sizeof p->links[i]);
    for (size_t i = 0; i < ARRAY_LEN(etc_files); i++) {
        add(a, "--ro-bind-try");
        add(a, etc_files[i]);
        add(a, etc_files[i]);
    }
    {
        const char *rest[] = {"--ro-bind", spec->udf_dir, "/udf", "--bind", p->work, "/scratch",
                              "--bind", p->tmp, "/tmp", "--proc", "/proc", "--dev", "/dev",
                              "--remount-ro", "/", "--chdir", "/scratch"};

        for (size_t i = 0; i < ARRAY_LEN(rest); i++)
            add(a, rest[i]);
    }
}

/* A clean environment: PATH, HOME, TMPDIR, LANG, then the spec's extra
 * NAME=VALUE pairs (split into p->envbuf).  0 or -1 with err. */
static int
add_env(argvec *a, const sandbox_spec *spec, sandbox_paths *p, char *err, size_t errlen)
{
    const char *fixed[] = {"--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
                           "--setenv", "HOME", "/scratch", "--setenv", "TMPDIR", "/tmp",
                           "--setenv", "LANG", "C.UTF-8"};
    size_t used = 0;

    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        add(a, fixed[i]);
    for (const char *const *e = spec->env; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = strlen(*e);

        if (eq == NULL || used + len + 1 > sizeof p->envbuf) {
            set_err(err, errlen, "bad sandbox environment entry");
            return -1;
        }
        memcpy(p->envbuf + used, *e, len + 1);
        p->envbuf[used + (size_t) (eq - *e)] = '\0';
        add(a, "--setenv");
        add(a, p->envbuf + used);
        add(a, p->envbuf + used + (eq - *e) + 1);
        used += len + 1;
    }
    return 0;
}

/* bwrap's whole command line, built before the fork (the child may not
 * allocate).  0 or -1 with err. */
static int
bwrap_argv(argvec *a, const sandbox_spec *spec, sandbox_paths *p, char *err, size_t errlen)
{
    const char *head[] = {spec->bwrap_path, "--unshare-all" /* user, pid, net, ipc, uts, cgroup */,
                          "--die-with-parent", "--new-session" /* no controlling terminal */,
                          "--json-status-fd", "3", "--seccomp", "4", "--hostname", "trace-udf"};

    snprintf(p->work, sizeof p->work, "%s/work", spec->scratch);
    snprintf(p->tmp, sizeof p->tmp, "%s/tmp", spec->scratch);
    for (size_t i = 0; i < ARRAY_LEN(head); i++)
        add(a, head[i]);
    add_mounts(a, spec, p);
    if (add_env(a, spec, p, err, errlen) < 0)
        return -1;
    add(a, "--");
    for (const char *const *arg = spec->argv; *arg; arg++)
        add(a, *arg);
    if (a->overflow) {
        set_err(err, errlen, "sandbox command line too long");
        return -1;
    }
    return 0;
}

/* The four pipes (stdin, stdout, stderr, bwrap's status) and a memfd with
 * the seccomp program.  0, or -1 with err (the caller closes what opened). */
static int
open_channels(int pipes[4][2], int *sfd, char *err, size_t errlen)
{
    for (int i = 0; i < 4; i++)
        if (pipe2(pipes[i], O_CLOEXEC) < 0) {
            set_err(err, errlen, "pipe: %s", strerror(errno));
            return -1;
        }
    *sfd = memfd_create("trace-seccomp", MFD_CLOEXEC);
    if (*sfd < 0 || write(*sfd, seccomp_prog, seccomp_len) != (ssize_t) seccomp_len ||
        lseek(*sfd, 0, SEEK_SET) < 0) {
        set_err(err, errlen, "cannot pass the seccomp program: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void
close_channels(int pipes[4][2], int sfd)
{
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++)
            if (pipes[i][k] >= 0)
                close(pipes[i][k]);
    if (sfd >= 0)
        close(sfd);
}

int
sandbox_spawn(const sandbox_spec *spec, sandbox_child *child, char *err, size_t errlen)
{
    int pipes[4][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}}, sfd = -1;
    static const char *const bwrap_env[] = {"PATH=/usr/bin:/bin", NULL};
    sandbox_paths paths;
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
    if (bwrap_argv(&a, spec, &paths, err, errlen) < 0)
        return -1;
    if (open_channels(pipes, &sfd, err, errlen) < 0) {
        close_channels(pipes, sfd);
        return -1;
    }
    if ((pid = fork()) < 0) {
        set_err(err, errlen, "fork: %s", strerror(errno));
        close_channels(pipes, sfd);
        return -1;
    }
    if (pid == 0) {
        /* The child: from here to execve only async-signal-safe calls (the
         * worker is multi-threaded); sandbox_child.c keeps to that. */
        int fds[5] = {pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1], sfd};

        sandbox_child_exec(spec, fds, parent, (char *const *) a.v, (char *const *) bwrap_env);
    }
    child->pid = pid;
    child->stdin_fd = pipes[0][1];
    child->stdout_fd = pipes[1][0];
    child->stderr_fd = pipes[2][0];
    child->status_fd = pipes[3][0];
    pipes[0][1] = pipes[1][0] = pipes[2][0] = pipes[3][0] = -1;
    close_channels(pipes, sfd);     /* the child's ends and the memfd */
    fcntl(child->stdin_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->stdout_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->stderr_fd, F_SETFL, O_NONBLOCK);
    fcntl(child->status_fd, F_SETFL, O_NONBLOCK);
    return 0;
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
