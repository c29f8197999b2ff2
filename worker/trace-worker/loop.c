/*
 * loop.c: trace-worker's main thread.
 *
 * Why threads (not processes or an event loop):
 *   - operators block: a UDF waits on its child, the chain operators wait on
 *     HTTP; one thread per task slot lets each run plain blocking code with
 *     its own libpq connection, and libpq is thread-safe per connection;
 *   - the process stays one unit for signals, config reload, logging and
 *     shutdown, and in-flight work is visible to the main thread for
 *     heartbeats and draining without any IPC;
 *   - a task's crash-prone code (user code) already runs in a separate,
 *     sandboxed process, so processes would buy no isolation that matters;
 *   - tasks are I/O-bound: N threads and N+2 connections are cheap at the
 *     concurrency one worker runs (1-256); scale out with more workers.
 *
 * Each pass of the loop is one named call per phase, as in pg_cron's
 * launcher: handle signals (daemon.h: reload, drain, exit now), keep the
 * connections up, do the work due (heartbeats, claims: claim.c), then wait
 * in daemon_wait() until something is due: a heartbeat, the slow poll, a
 * reconnect, a wake-up on LISTEN, or a slot that became idle (eventfd).
 *
 * Draining (SIGTERM, first SIGINT): claim nothing more, let in-flight tasks
 * finish within drain_timeout, then tell them to stop (they fail retryably)
 * and give them 15 s more; exit 0 once every slot is idle.  A second SIGINT
 * exits at once (exit 1): leases then expire and the tasks are retried.
 */
#define _GNU_SOURCE
#include "worker.h"

#include "log.h"
#include "sandbox.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define STOP_GRACE_MS 15000     /* after drain_timeout: how long stopping tasks may take */

extern char **environ;

/* What one pass decides. */
enum { LOOP_ON = 0, LOOP_DRAINED, LOOP_EXIT_NOW, LOOP_ERROR };

/* SIGHUP: re-read everything; apply what may change, keep the rest. */
static void
reload(loop_state *ls, int argc, char **argv)
{
    worker *w = ls->w;
    worker_config *fresh = calloc(1, sizeof *fresh);
    char err[1024], changed[512] = "", runtimes[512];
    op_settings st;

    if (fresh == NULL)
        return;
    if (config_load(fresh, argc, argv, environ, NULL, err, sizeof err) < 0) {
        daemon_log_reload_failed(err);
        free(fresh);
        return;
    }
    if (config_runtimes_literal(fresh->runtimes, runtimes, sizeof runtimes, err, sizeof err) < 0 ||
        config_op_settings(fresh, &st, err, sizeof err) < 0) {
        daemon_log_reload_failed(err);
        config_free(fresh);
        free(fresh);
        return;
    }
    settings_restart_changes(&worker_settings, 0, w->cfg, fresh, "", changed, sizeof changed);
    daemon_log_restart_needed(changed);
    settings_keep_restart_only(&worker_settings, 0, fresh, w->cfg);
    log_configure(fresh->log_level, fresh->log_format, NULL);
    copy_str(ls->runtimes, sizeof ls->runtimes, runtimes);
    apply_lease_param(ls, fresh);
    ls->ctl.connect_timeout_ms = ls->lis.pc.connect_timeout_ms = fresh->connect_timeout_ms;
    ls->ctl.backoff_max_ms = ls->lis.pc.backoff_max_ms = fresh->reconnect_max_ms;
    pthread_mutex_lock(&w->settings_mu);
    w->settings = st;
    pthread_mutex_unlock(&w->settings_mu);
    config_free(w->cfg);
    free(w->cfg);
    w->cfg = fresh;
    ls->next_poll_ms = 0;
    log_msg(LOG_INFO, "reloaded %s (log_level %s, poll_interval %lldms, runtimes %s)",
            fresh->config_file ? fresh->config_file : "settings", log_level_name(fresh->log_level),
            (long long) fresh->poll_interval_ms, fresh->runtimes);
}

/* What the signals ask: reload, start draining, exit now. */
static int
handle_signals(loop_state *ls, int argc, char **argv)
{
    for (;;) {
        switch (daemon_next_event(&ls->ds, ls->w->cfg->drain_timeout_ms)) {
        case DAEMON_EV_NONE:
            return LOOP_ON;
        case DAEMON_EV_RELOAD:
            reload(ls, argc, argv);
            break;
        case DAEMON_EV_DRAIN:
            atomic_store(&ls->w->draining, 1);
            log_msg(LOG_INFO, "%s: draining (claiming nothing more; in-flight tasks have %lldms)",
                    ls->ds.drain_signal, (long long) ls->w->cfg->drain_timeout_ms);
            break;
        case DAEMON_EV_EXIT_NOW:
            log_msg(LOG_WARN, "second SIGINT: exiting now; in-flight leases will expire");
            return LOOP_EXIT_NOW;
        }
    }
}

/* While draining: done when every slot is idle; past drain_timeout the
 * tasks are told to stop, and past the grace after that we exit anyway. */
static int
check_drain(loop_state *ls)
{
    worker *w = ls->w;
    int64_t now = now_ms();

    if (!ls->ds.draining)
        return LOOP_ON;
    if (slots_idle(w) == w->nslots) {
        log_msg(LOG_INFO, "drained: no task in flight");
        return LOOP_DRAINED;
    }
    if (daemon_drain_expired(&ls->ds, now) && !atomic_load(&w->drain_expired)) {
        atomic_store(&w->drain_expired, 1);
        ls->hard_deadline_ms = now + STOP_GRACE_MS;
        log_msg(LOG_WARN, "drain_timeout passed: stopping in-flight tasks and giving them back");
    }
    if (ls->hard_deadline_ms && now >= ls->hard_deadline_ms) {
        log_msg(LOG_ERROR, "tasks did not give up in time; exiting with their leases held "
                "(they will expire)");
        return LOOP_EXIT_NOW;
    }
    return LOOP_ON;
}

/* Reconnects the control and LISTEN connections whose backoff has passed.
 * After a reconnect the worker claims at once: wake-ups sent while it was
 * deaf are lost. */
static void
ensure_connections(loop_state *ls)
{
    char err[1024];

    if (!pgc_connected(&ls->ctl)) {
        if (pgc_try_connect(&ls->ctl, err, sizeof err) == 0)
            ls->maybe_more = 1;
        else if (err[0])
            log_msg(ls->ctl.failures == 1 ? LOG_WARN : LOG_DEBUG,
                    "control connection failed (attempt %d, retrying with backoff): %s",
                    ls->ctl.failures, err);
    }
    if (listener_ensure(&ls->lis) == 1)
        ls->maybe_more = 1;
}

/* Heartbeats, then claims when there is room and a reason to. */
static void
do_work(loop_state *ls)
{
    worker *w = ls->w;
    int64_t poll = w->cfg->poll_interval_ms;

    heartbeats(ls);
    if (atomic_load(&w->draining) || !pgc_connected(&ls->ctl) || slots_idle(w) == 0 ||
        (!ls->maybe_more && now_ms() < ls->next_poll_ms))
        return;
    claim(ls);
    /* Without LISTEN, poll at least every second. */
    ls->next_poll_ms = now_ms() + (listener_fd(&ls->lis) >= 0 ? poll : poll < 1000 ? poll : 1000);
}

/* How long the loop may sleep: until the poll, a heartbeat, a reconnect
 * (at most 1 s; 100 ms while draining; 0 when a claim is pending). */
static int64_t
time_to_next(loop_state *ls)
{
    worker *w = ls->w;
    int64_t now = now_ms(), next = ls->next_poll_ms, hb = next_heartbeat(w), wait;

    if (atomic_load(&w->draining))
        next = now + 100;
    if (hb < next)
        next = hb;
    if (!pgc_connected(&ls->ctl) && ls->ctl.next_try_ms < next)
        next = ls->ctl.next_try_ms;
    if (listener_fd(&ls->lis) < 0 && ls->lis.pc.next_try_ms < next)
        next = ls->lis.pc.next_try_ms;
    if (ls->maybe_more && slots_idle(w) > 0 && !atomic_load(&w->draining))
        next = now;
    wait = next - now;
    return wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
}

/* Sleeps until something is due, then consumes what woke us: LISTEN
 * notifications (a wake-up for our runtimes means claim now) and the
 * slots' eventfd. */
static int
wait_until_due(loop_state *ls)
{
    struct pollfd pfd[2];
    int nfd = 0, lfd = listener_fd(&ls->lis);

    if (lfd >= 0) {
        pfd[nfd].fd = lfd;
        pfd[nfd++].events = POLLIN;
    }
    pfd[nfd].fd = ls->w->wake_fd;
    pfd[nfd++].events = POLLIN;
    pfd[0].revents = pfd[nfd - 1].revents = 0;
    if (daemon_wait(pfd, nfd, time_to_next(ls)) < 0) {
        log_msg(LOG_ERROR, "ppoll: %s", strerror(errno));
        return LOOP_ERROR;
    }
    if (lfd >= 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
        int wake = 0;

        if (listener_consume(&ls->lis, ls->w->cfg->runtimes, &wake) == 0 && wake)
            ls->maybe_more = 1;
    }
    if (pfd[nfd - 1].revents & POLLIN) {
        uint64_t v;

        (void) !read(ls->w->wake_fd, &v, sizeof v);
    }
    return LOOP_ON;
}

/* The worker's id: the setting, else host:pid. */
static void
make_worker_id(const worker_config *cfg, char *out, size_t n)
{
    char host[200];

    if (cfg->worker_id[0]) {
        copy_str(out, n, cfg->worker_id);
        return;
    }
    if (gethostname(host, sizeof host) < 0)
        copy_str(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(out, n, "%s:%d", host, (int) getpid());
}

/* Everything before the loop: settings, sandbox, slots, connections.
 * 0, or -1 (logged) when the worker cannot start. */
static int
worker_start(worker *w, loop_state *ls)
{
    const worker_config *cfg = w->cfg;
    char err[1024], where[512];

    make_worker_id(cfg, w->worker_id, sizeof w->worker_id);
    log_configure(cfg->log_level, cfg->log_format, w->worker_id);
    if (cfg->conninfo[0] == '\0' && getenv("PGHOST") == NULL && getenv("PGDATABASE") == NULL)
        log_msg(LOG_WARN, "no conninfo given (--conninfo, TRACE_CONNINFO or the config file): "
                "using libpq defaults");
    apply_lease_param(ls, cfg);
    if (sandbox_init(err, sizeof err) < 0)
        log_msg(LOG_WARN, "the UDF sandbox is unavailable (%s): udf tasks will fail", err);
    if (access(cfg->bwrap_path, X_OK) < 0 && strstr(cfg->runtimes, "lambda"))
        log_msg(LOG_WARN, "bubblewrap not found at %s: udf tasks will fail (install bubblewrap)",
                cfg->bwrap_path);
    w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w->nslots = cfg->concurrency;
    w->slots = calloc((size_t) w->nslots, sizeof *w->slots);
    if (w->wake_fd < 0 || w->slots == NULL) {
        log_msg(LOG_ERROR, "cannot allocate the task slots");
        return -1;
    }
    if (pgc_init(&ls->ctl, "control", cfg->conninfo, cfg->pg_options, cfg->connect_timeout_ms,
                 cfg->reconnect_max_ms) < 0 ||
        listener_init(&ls->lis, cfg->listen_conninfo[0] ? cfg->listen_conninfo : cfg->conninfo,
                      cfg->pg_options, cfg->connect_timeout_ms, cfg->reconnect_max_ms) < 0) {
        log_msg(LOG_ERROR, "out of memory");
        return -1;
    }
    if (slots_start(w, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        atomic_store(&w->stop_now, 1);
        slots_stop(w, 1000);
        return -1;
    }
    pgc_describe(cfg->conninfo, where, sizeof where);
    log_msg(LOG_INFO, "trace-worker %s started: %s, runtimes %s, concurrency %d, database %s",
            TRACE_WORKER_VERSION, w->worker_id, cfg->runtimes, cfg->concurrency, where);
    return 0;
}

static void
log_totals(worker *w)
{
    log_msg(LOG_INFO, "stopped: %ld succeeded, %ld failed, %ld canceled, %ld abandoned",
            atomic_load(&w->n_succeeded), atomic_load(&w->n_failed), atomic_load(&w->n_canceled),
            atomic_load(&w->n_abandoned));
}

/* After the loop: stop the slots (killing sandboxes when exiting now) and
 * free what is safe to free (with the settings).  The exit code. */
static int
worker_stop(worker *w, loop_state *ls, int how)
{
    int exit_now = how == LOOP_EXIT_NOW, code = how == LOOP_DRAINED ? TRACE_EXIT_OK
                                                                    : TRACE_EXIT_RUNTIME;

    if (exit_now) {
        atomic_store(&w->stop_now, 1);
        slots_kill_children(w);
    }
    if (slots_stop(w, exit_now ? 500 : 5000) > 0) {
        log_msg(LOG_WARN, "some task threads did not stop; exiting anyway");
        slots_kill_children(w);
        log_totals(w);
        return TRACE_EXIT_RUNTIME;  /* leave the rest to exit: threads still use it */
    }
    log_totals(w);
    pgc_destroy(&ls->ctl);
    listener_destroy(&ls->lis);
    close(w->wake_fd);
    free(w->slots);
    config_free(w->cfg);
    free(w->cfg);
    return code;
}

int
worker_run(worker_config *cfg, int argc, char **argv)
{
    worker w;
    loop_state ls;
    char err[1024];
    int how = LOOP_ON;

    memset(&w, 0, sizeof w);
    memset(&ls, 0, sizeof ls);
    ls.w = &w;
    w.cfg = cfg;
    w.wake_fd = -1;
    pthread_mutex_init(&w.settings_mu, NULL);
    if (config_runtimes_literal(cfg->runtimes, ls.runtimes, sizeof ls.runtimes, err,
                                sizeof err) < 0 ||
        config_op_settings(cfg, &w.settings, err, sizeof err) < 0) {
        fprintf(stderr, "trace-worker: %s\n", err);
        config_free(cfg);
        free(cfg);
        return TRACE_EXIT_CONFIG;
    }
    if (worker_start(&w, &ls) < 0) {
        config_free(cfg);
        free(cfg);
        return TRACE_EXIT_RUNTIME;
    }
    while (how == LOOP_ON) {
        how = handle_signals(&ls, argc, argv);
        if (how == LOOP_ON)
            how = check_drain(&ls);
        if (how != LOOP_ON)
            break;
        ensure_connections(&ls);
        do_work(&ls);
        how = wait_until_due(&ls);
    }
    return worker_stop(&w, &ls, how);
}
