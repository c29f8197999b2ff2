/*
 * daemon.c: signals as flags, the one wait, the standard options (see
 * daemon.h).
 *
 * Signal handlers only set volatile sig_atomic_t flags.  TERM, INT and HUP
 * are blocked everywhere but inside ppoll() in daemon_wait(), which unblocks
 * them atomically for the duration of the wait: a signal that arrives while
 * the main thread works stays pending and ends its next wait at once, so
 * none is lost and no library call (libpq, libcurl) is ever interrupted.
 */
#define _GNU_SOURCE
#include "daemon.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t got_term, got_int, got_hup;
static sigset_t wait_mask;      /* the mask during daemon_wait: the three deliverable */

static void
on_signal(int sig)
{
    if (sig == SIGTERM)
        got_term = 1;
    else if (sig == SIGINT)
        got_int++;
    else if (sig == SIGHUP)
        got_hup = 1;
}

void
daemon_signals_init(void)
{
    struct sigaction sa;
    sigset_t block;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGHUP);
}

daemon_event
daemon_next_event(daemon_state *d, int64_t drain_timeout_ms)
{
    if (got_hup) {
        got_hup = 0;
        return DAEMON_EV_RELOAD;
    }
    if ((got_term || got_int) && !d->draining) {
        d->draining = 1;
        d->drain_signal = got_term ? "SIGTERM" : "SIGINT";
        d->drain_deadline_ms = now_ms() + drain_timeout_ms;
        return DAEMON_EV_DRAIN;
    }
    if (got_int >= 2)
        return DAEMON_EV_EXIT_NOW;
    return DAEMON_EV_NONE;
}

int
daemon_drain_expired(const daemon_state *d, int64_t now)
{
    return d->draining && now >= d->drain_deadline_ms;
}

int
daemon_wait(struct pollfd *fds, int nfds, int64_t timeout_ms)
{
    struct timespec ts;
    int rc;

    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (timeout_ms % 1000) * 1000000L;
    }
    rc = ppoll(fds, (nfds_t) nfds, timeout_ms >= 0 ? &ts : NULL, &wait_mask);
    if (rc < 0 && errno == EINTR)
        return 0;
    return rc;
}

void
daemon_log_reload_failed(const char *err)
{
    log_msg(LOG_ERROR, "reload failed, keeping the current settings: %s", err);
}

void
daemon_log_restart_needed(const char *names)
{
    if (names[0])
        log_msg(LOG_WARN, "reload: %s cannot change without a restart; keeping the old value",
                names);
}

/* --help: the program's lines, then one per setting (or the Markdown
 * table with --help=markdown). */
static void
print_help(const daemon_info *info, const char *how)
{
    if (strcmp(how, "markdown") == 0) {
        settings_markdown(info->settings, info->scoped_flag, info->scoped_prefix, stdout);
        return;
    }
    fputs(info->usage, stdout);
    settings_usage(info->settings, info->scoped_flag, info->scoped_prefix, stdout);
}

daemon_mode
daemon_options(const daemon_info *info, int argc, char **argv)
{
    daemon_mode mode = DAEMON_RUN;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strncmp(a, "--help=", 7) == 0) {
            print_help(info, a[6] == '=' ? a + 7 : "");
            return DAEMON_DONE;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s", info->program, info->version);
            if (info->version_extra)
                info->version_extra(stdout);
            putchar('\n');
            return DAEMON_DONE;
        }
        if (strcmp(a, "--check-config") == 0)
            mode = DAEMON_CHECK_CONFIG;
    }
    return mode;
}
