/*
 * daemon.h: the skeleton every Trace program runs in.
 *
 * Exit codes (docs/architecture.md):
 *   0  TRACE_EXIT_OK       stopped cleanly (drained), or --help, --version,
 *                          --check-config with a valid configuration
 *   1  TRACE_EXIT_RUNTIME  could not start (a port in use, out of memory) or
 *                          stopped without draining (a second SIGINT, work
 *                          that did not stop in time)
 *   2  TRACE_EXIT_CONFIG   bad usage or configuration: an unknown option, a
 *                          bad value, a missing credential; --check-config
 *                          with an invalid configuration
 *
 * Signals (handlers only set flags; see daemon.c):
 *   SIGTERM  drain: take no new work, let work in flight finish within the
 *            program's drain_timeout, then stop it and exit 0
 *   SIGINT   the first drains like SIGTERM; a second exits now (exit 1)
 *   SIGHUP   reload: the program re-reads its settings, applies the
 *            reloadable ones and logs which changes need a restart
 *   SIGPIPE  ignored
 * The three are blocked in every thread and delivered only while the main
 * thread waits in daemon_wait(), so they never interrupt other code and
 * are seen at once.
 *
 * Standard options: -h/--help (--help=markdown prints the settings as a
 * Markdown table, what docs/<program>.md shows), --version,
 * --check-config (print the effective settings, secrets masked, and exit).
 *
 * Nothing here exits the process: main() decides.
 */
#ifndef TRACE_DAEMON_H
#define TRACE_DAEMON_H

#include "settings.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>

#define TRACE_EXIT_OK       0
#define TRACE_EXIT_RUNTIME  1
#define TRACE_EXIT_CONFIG   2

/* What --help and --version say about a program. */
typedef struct daemon_info {
    const char           *program;      /* "trace-worker" */
    const char           *version;      /* "0.1" */
    const char           *usage;        /* the lines above the settings */
    const settings_table *settings;
    unsigned              scoped_flag;  /* rows shown with scoped_prefix in --help */
    const char           *scoped_prefix;
    void                (*version_extra)(FILE *out);    /* after "<program> <version>"; may be NULL */
} daemon_info;

/* What the standard options ask. */
typedef enum {
    DAEMON_RUN = 0,         /* none of them: run */
    DAEMON_DONE,            /* --help or --version was printed: exit 0 */
    DAEMON_CHECK_CONFIG     /* load the settings, print them, exit 0 (or 2) */
} daemon_mode;

/* Acts on -h/--help[=markdown] and --version (printing to stdout) and finds
 * --check-config, anywhere in argv[1..]. */
daemon_mode daemon_options(const daemon_info *info, int argc, char **argv);

/* Installs the flag-setting handlers, ignores SIGPIPE and blocks TERM, INT
 * and HUP in the calling thread (threads it starts later inherit that).
 * Call in main before starting any thread. */
void daemon_signals_init(void);

/* What the signals received since the last call ask for, one at a time:
 * call until DAEMON_EV_NONE. */
typedef enum {
    DAEMON_EV_NONE = 0,
    DAEMON_EV_RELOAD,       /* SIGHUP */
    DAEMON_EV_DRAIN,        /* the first SIGTERM or SIGINT: start draining */
    DAEMON_EV_EXIT_NOW      /* a second SIGINT */
} daemon_event;

typedef struct daemon_state {
    int         draining;
    int64_t     drain_deadline_ms;      /* monotonic: drain_timeout after the signal */
    const char *drain_signal;           /* "SIGTERM" or "SIGINT", for the log */
} daemon_state;

/* The next event.  On DAEMON_EV_DRAIN, d->draining is set and the deadline
 * is now + drain_timeout_ms. */
daemon_event daemon_next_event(daemon_state *d, int64_t drain_timeout_ms);

/* Whether the drain deadline has passed. */
int daemon_drain_expired(const daemon_state *d, int64_t now_ms);

/* Waits until one of fds is ready, a signal arrives, or timeout_ms passes
 * (< 0: no timeout).  The signals blocked by daemon_signals_init are
 * deliverable only in here.  Returns poll's count (0 after a timeout or a
 * signal), -1 on an error other than EINTR (errno set). */
int daemon_wait(struct pollfd *fds, int nfds, int64_t timeout_ms);

/* The log lines every program writes the same way about a reload:
 * "reload failed, keeping the current settings: <err>" and
 * "reload: <names> cannot change without a restart; keeping the old
 * value". */
void daemon_log_reload_failed(const char *err);
void daemon_log_restart_needed(const char *names);

#endif
