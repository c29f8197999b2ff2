/*
 * main.c: trace-worker, the thin worker of Trace.
 *
 * It claims tasks of its runtimes from PostgreSQL (trace.claim_tasks), runs
 * each through its operator, keeps the lease with heartbeats, and completes
 * or fails it.  It holds nothing a crash can lose: a kill -9 at any moment
 * leaves leases that expire, and the dispatcher hands the tasks to another
 * attempt.
 *
 * Why threads (not processes or an event loop):
 *   - operators block: a UDF waits on its child, future operators wait on
 *     HTTP; one thread per task slot lets each run plain blocking code with
 *     its own libpq connection, and libpq is thread-safe per connection;
 *   - the process stays one unit for signals, config reload, logging and
 *     shutdown, and in-flight work is visible to main for heartbeats and
 *     draining without any IPC;
 *   - a task's crash-prone code (user code) already runs in a separate,
 *     sandboxed process, so processes would buy no isolation that matters;
 *   - tasks are I/O-bound: N threads and N+2 connections are cheap at the
 *     concurrency one worker runs (1-256); scale out with more workers.
 *
 * The main thread is an event loop (ppoll): signals, the LISTEN
 * connection, the slow poll, claiming up to the free capacity, heartbeats
 * at a third of each lease, reconnects with backoff.  Signal handlers only
 * set flags; the signals are blocked everywhere except inside ppoll, so
 * they are seen at once and never interrupt libpq.
 *   SIGTERM        drain: claim nothing more, let in-flight tasks finish
 *                  within drain_timeout, then stop them, give them back
 *                  (retryable failure) and exit 0
 *   SIGINT         the first drains like SIGTERM; a second exits now
 *                  (leases then expire)
 *   SIGHUP         reload the config file (settings marked "restart to
 *                  change" keep their value, with a warning)
 *
 * This is the only file that exits.
 */
#define _GNU_SOURCE
#include "config.h"
#include "listen.h"
#include "log.h"
#include "operator.h"
#include "pgconn.h"
#include "protocol.h"
#include "sandbox.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define TRACE_WORKER_VERSION "0.1"

extern char **environ;

static volatile sig_atomic_t got_term, got_int, got_hup;

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

/* Settings for operators, from the config.  Resolves the sandbox user when
 * running as root.  0 or -1 with err filled. */
static int
settings_from_config(const worker_config *cfg, op_settings *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof *st);
    copy_str(st->udf_dir, sizeof st->udf_dir, cfg->udf_dir);
    copy_str(st->scratch_dir, sizeof st->scratch_dir, cfg->scratch_dir);
    copy_str(st->bwrap_path, sizeof st->bwrap_path, cfg->bwrap_path);
    copy_str(st->python_path, sizeof st->python_path, cfg->python_path);
    copy_str(st->node_path, sizeof st->node_path, cfg->node_path);
    st->udf_timeout_ms = cfg->udf_timeout_ms;
    st->udf_memory_bytes = cfg->udf_memory_bytes;
    st->udf_max_output_bytes = cfg->udf_max_output_bytes;
    st->udf_max_line_bytes = cfg->udf_max_line_bytes;
    st->udf_max_file_bytes = cfg->udf_max_file_bytes;
    st->udf_max_rows = cfg->udf_max_rows;
    st->udf_max_events = cfg->udf_max_events;
    st->udf_max_procs = cfg->udf_max_procs;
    st->udf_max_open_files = cfg->udf_max_open_files;
    copy_str(st->rpc_gateway, sizeof st->rpc_gateway, cfg->rpc_gateway);
    if (geteuid() == 0) {
        struct passwd pw, *found = NULL;
        char buf[4096];

        if (getpwnam_r(cfg->sandbox_user, &pw, buf, sizeof buf, &found) != 0 || !found) {
            set_err(err, errlen, "sandbox_user \"%s\" does not exist", cfg->sandbox_user);
            return -1;
        }
        if (pw.pw_uid == 0) {
            set_err(err, errlen, "sandbox_user must not be root");
            return -1;
        }
        st->drop_privileges = 1;
        st->sandbox_uid = pw.pw_uid;
        st->sandbox_gid = pw.pw_gid;
    }
    return 0;
}

/* "ecs_platform,lambda" -> {"ecs_platform","lambda"} (a text[] literal). */
static int
runtimes_literal(const char *csv, char *out, size_t n, char *err, size_t errlen)
{
    size_t len = 0;
    int count = 0;

    out[len++] = '{';
    for (const char *p = csv; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        if (count++)
            out[len++] = ',';
        out[len++] = '"';
        while (*p && *p != ',' && *p != ' ') {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
                set_err(err, errlen, "runtimes: \"%s\" is not a list of runtime names", csv);
                return -1;
            }
            if (len + 4 >= n) {
                set_err(err, errlen, "runtimes: too long");
                return -1;
            }
            out[len++] = *p++;
        }
        out[len++] = '"';
    }
    if (count == 0) {
        set_err(err, errlen, "runtimes: no runtime given");
        return -1;
    }
    out[len++] = '}';
    out[len] = '\0';
    return 0;
}

typedef struct loop_state {
    worker     *w;
    pgconn      ctl;            /* claims and heartbeats */
    listener    lis;
    char        runtimes[512];  /* text[] literal */
    char        lease_param[64];
    int         maybe_more;     /* claim again as soon as there is room */
    int64_t     next_poll_ms;
    int64_t     drain_deadline_ms;
} loop_state;

static void
apply_lease_param(loop_state *ls, const worker_config *cfg)
{
    if (cfg->lease_ms > 0)
        snprintf(ls->lease_param, sizeof ls->lease_param, "%lld milliseconds",
                 (long long) cfg->lease_ms);
    else
        ls->lease_param[0] = '\0';
}

/* Claims up to the free capacity and hands the tasks to idle slots. */
static void
claim(loop_state *ls)
{
    worker *w = ls->w;
    int free_slots = slots_idle(w);
    char max[16];
    const char *vals[4];
    PGresult *r;
    pgc_error e;
    int64_t sent;
    int n;

    if (free_slots <= 0 || !pgc_connected(&ls->ctl))
        return;
    snprintf(max, sizeof max, "%d", free_slots);
    vals[0] = w->worker_id;
    vals[1] = ls->runtimes;
    vals[2] = max;
    vals[3] = ls->lease_param[0] ? ls->lease_param : NULL;
    sent = now_ms();
    r = pgc_exec(&ls->ctl,
                 "SELECT c.task_id, c.attempt, c.lease_token, "
                 "(extract(epoch FROM c.lease_expires_at - now()) * 1000)::bigint, c.operator "
                 "FROM trace.claim_tasks($1, $2::text[], $3::int, $4::interval) c",
                 4, vals, &e);
    if (r == NULL) {
        if (e.status == PGC_CONN_LOST)
            log_msg(LOG_WARN, "control connection lost during claim_tasks (%s): any task it "
                    "leased will be retried when its lease expires", e.msg);
        else
            log_msg(LOG_ERROR, "claim_tasks failed: %s [%s]", e.msg, e.sqlstate);
        return;
    }
    n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        claimed_task t;

        memset(&t, 0, sizeof t);
        t.l.task_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        t.l.attempt = atoi(PQgetvalue(r, i, 1));
        copy_str(t.l.token, sizeof t.l.token, PQgetvalue(r, i, 2));
        t.l.lease_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        if (t.l.lease_ms < 300)
            t.l.lease_ms = 300;
        copy_str(t.operator_name, sizeof t.operator_name, PQgetvalue(r, i, 4));
        t.claimed_at_ms = sent;
        log_task(LOG_DEBUG, t.l.task_id, t.l.attempt, "claimed (operator %s, lease %" PRId64 "ms)",
                 t.operator_name, t.l.lease_ms);
        if (slot_assign(w, &t) < 0)     /* cannot happen: we asked for free slots */
            log_task(LOG_ERROR, t.l.task_id, t.l.attempt, "no idle slot; the lease will expire");
    }
    PQclear(r);
    /* A full batch means more may be waiting. */
    ls->maybe_more = n == free_slots;
}

/* Heartbeats every running task whose time has come. */
static void
heartbeats(loop_state *ls)
{
    worker *w = ls->w;

    for (int i = 0; i < w->nslots && pgc_connected(&ls->ctl); i++) {
        slot *s = &w->slots[i];
        lease l;
        char id[24], att[16];
        const char *vals[3];
        PGresult *r;
        pgc_error e;
        int64_t sent = now_ms();

        pthread_mutex_lock(&s->mu);
        if ((s->state != SLOT_RUNNING && s->state != SLOT_ASSIGNED) || sent < s->next_hb_ms ||
            atomic_load(&s->verdict) == V_LOST) {
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        l = s->task.l;
        pthread_mutex_unlock(&s->mu);

        snprintf(id, sizeof id, "%" PRId64, l.task_id);
        snprintf(att, sizeof att, "%d", l.attempt);
        vals[0] = id;
        vals[1] = att;
        vals[2] = l.token;
        r = pgc_exec(&ls->ctl, "SELECT trace.heartbeat($1::bigint, $2::int, $3::uuid)", 3, vals,
                     &e);
        if (r) {
            const char *answer = PQntuples(r) ? PQgetvalue(r, 0, 0) : "";

            if (strcmp(answer, "canceled") == 0) {
                int none = V_NONE;

                if (atomic_compare_exchange_strong(&s->verdict, &none, V_CANCELED))
                    log_task(LOG_INFO, l.task_id, l.attempt,
                             "heartbeat: cancel requested, stopping the operator");
            }
            s->next_hb_ms = sent + l.lease_ms / 3;
            log_task(LOG_DEBUG, l.task_id, l.attempt, "heartbeat: %s", answer);
            PQclear(r);
            continue;
        }
        if (e.status == PGC_SQL_ERROR) {
            pthread_mutex_lock(&s->mu);
            int same = s->task.l.task_id == l.task_id && s->task.l.attempt == l.attempt &&
                       (s->state == SLOT_RUNNING || s->state == SLOT_ASSIGNED);
            pthread_mutex_unlock(&s->mu);

            if (!same)
                continue;       /* it ended meanwhile */
            if (sqlstate_is_lost(e.sqlstate)) {
                atomic_store(&s->verdict, V_LOST);
                log_task(LOG_WARN, l.task_id, l.attempt,
                         "heartbeat: lease lost (%s: %s); stopping the operator", e.sqlstate,
                         e.msg);
            } else {
                log_task(LOG_WARN, l.task_id, l.attempt, "heartbeat failed: %s [%s]", e.msg,
                         e.sqlstate);
                s->next_hb_ms = now_ms() + (l.lease_ms / 10 < 1000 ? l.lease_ms / 10 : 1000);
            }
        } else {
            log_msg(LOG_WARN, "control connection lost during heartbeat (%s); reconnecting",
                    e.msg);
        }
    }
}

/* The next instant any heartbeat is due. */
static int64_t
next_heartbeat(worker *w)
{
    int64_t next = INT64_MAX;

    for (int i = 0; i < w->nslots; i++) {
        slot *s = &w->slots[i];

        pthread_mutex_lock(&s->mu);
        if ((s->state == SLOT_RUNNING || s->state == SLOT_ASSIGNED) && s->next_hb_ms < next &&
            atomic_load(&s->verdict) != V_LOST)
            next = s->next_hb_ms;
        pthread_mutex_unlock(&s->mu);
    }
    return next;
}

static void
kill_children(worker *w)
{
    for (int i = 0; i < w->nslots; i++) {
        int pg = atomic_load(&w->slots[i].child_pgid);

        if (pg > 0)
            killpg(pg, SIGKILL);
    }
}

/* SIGHUP: re-read everything; apply what may change. */
static void
reload(loop_state *ls, int argc, char **argv)
{
    worker *w = ls->w;
    worker_config *fresh = calloc(1, sizeof *fresh);
    char err[1024], changed[512], runtimes[512];
    op_settings st;

    if (fresh == NULL)
        return;
    if (config_load(fresh, argc, argv, environ, NULL, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "reload failed, keeping the current settings: %s", err);
        free(fresh);
        return;
    }
    if (runtimes_literal(fresh->runtimes, runtimes, sizeof runtimes, err, sizeof err) < 0 ||
        settings_from_config(fresh, &st, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "reload failed, keeping the current settings: %s", err);
        config_free(fresh);
        free(fresh);
        return;
    }
    config_restart_only_changes(w->cfg, fresh, changed, sizeof changed);
    if (changed[0])
        log_msg(LOG_WARN, "reload: %s cannot change without a restart; keeping the old value",
                changed);
    /* Keep restart-only values: swap them back into the fresh config. */
#define KEEP_STR(f) do { char *tmp = fresh->f; fresh->f = w->cfg->f; w->cfg->f = tmp; } while (0)
    KEEP_STR(conninfo);
    KEEP_STR(listen_conninfo);
    KEEP_STR(pg_options);
    KEEP_STR(worker_id);
    fresh->concurrency = w->cfg->concurrency;
#undef KEEP_STR
    log_configure(fresh->log_level, fresh->log_format, NULL);
    copy_str(ls->runtimes, sizeof ls->runtimes, runtimes);
    apply_lease_param(ls, fresh);
    ls->ctl.backoff_max_ms = fresh->reconnect_max_ms;
    ls->lis.pc.backoff_max_ms = fresh->reconnect_max_ms;
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

static int
worker_main(worker_config *cfg, int argc, char **argv)
{
    worker w;
    loop_state ls;
    char err[1024], host[200], where[512];
    sigset_t block, orig;
    struct sigaction sa;
    int exit_code = 0, exit_now = 0;
    int64_t shutdown_deadline = 0;

    memset(&w, 0, sizeof w);
    memset(&ls, 0, sizeof ls);
    ls.w = &w;
    w.cfg = cfg;
    w.wake_fd = -1;
    pthread_mutex_init(&w.settings_mu, NULL);

    if (cfg->worker_id[0])
        copy_str(w.worker_id, sizeof w.worker_id, cfg->worker_id);
    else {
        if (gethostname(host, sizeof host) < 0)
            copy_str(host, sizeof host, "localhost");
        host[sizeof host - 1] = '\0';
        snprintf(w.worker_id, sizeof w.worker_id, "%s:%d", host, (int) getpid());
    }
    log_configure(cfg->log_level, cfg->log_format, w.worker_id);

    if (cfg->conninfo[0] == '\0' && getenv("PGHOST") == NULL && getenv("PGDATABASE") == NULL)
        log_msg(LOG_WARN, "no conninfo given (--conninfo, TRACE_CONNINFO or the config file): "
                "using libpq defaults");
    if (runtimes_literal(cfg->runtimes, ls.runtimes, sizeof ls.runtimes, err, sizeof err) < 0 ||
        settings_from_config(cfg, &w.settings, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        return 1;
    }
    apply_lease_param(&ls, cfg);
    if (sandbox_init(err, sizeof err) < 0)
        log_msg(LOG_WARN, "the UDF sandbox is unavailable (%s): udf tasks will fail", err);
    if (access(cfg->bwrap_path, X_OK) < 0 && strstr(cfg->runtimes, "lambda"))
        log_msg(LOG_WARN, "bubblewrap not found at %s: udf tasks will fail (install bubblewrap)",
                cfg->bwrap_path);

    /* Signals: handlers set flags; blocked in every thread, delivered only
     * inside main's ppoll. */
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
    pthread_sigmask(SIG_BLOCK, &block, &orig);
    sigdelset(&orig, SIGTERM);
    sigdelset(&orig, SIGINT);
    sigdelset(&orig, SIGHUP);

    w.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    w.nslots = cfg->concurrency;
    w.slots = calloc((size_t) w.nslots, sizeof *w.slots);
    if (w.wake_fd < 0 || w.slots == NULL) {
        log_msg(LOG_ERROR, "cannot allocate the task slots");
        return 1;
    }
    if (pgc_init(&ls.ctl, "control", cfg->conninfo, cfg->pg_options, cfg->connect_timeout_ms,
                 cfg->reconnect_max_ms) < 0 ||
        listener_init(&ls.lis, cfg->listen_conninfo[0] ? cfg->listen_conninfo : cfg->conninfo,
                      cfg->pg_options, cfg->connect_timeout_ms, cfg->reconnect_max_ms) < 0) {
        log_msg(LOG_ERROR, "out of memory");
        return 1;
    }
    if (slots_start(&w, err, sizeof err) < 0) {
        log_msg(LOG_ERROR, "%s", err);
        atomic_store(&w.stop_now, 1);
        slots_stop(&w, 1000);
        return 1;
    }
    pgc_describe(cfg->conninfo, where, sizeof where);
    log_msg(LOG_INFO, "trace-worker %s started: %s, runtimes %s, concurrency %d, database %s",
            TRACE_WORKER_VERSION, w.worker_id, cfg->runtimes, cfg->concurrency, where);

    for (;;) {
        int64_t now = now_ms(), wait, next;
        struct pollfd pfd[2];
        int nfd = 0, lfd;
        struct timespec ts;

        /* Signals. */
        if (got_hup) {
            got_hup = 0;
            reload(&ls, argc, argv);
        }
        if ((got_term || got_int) && !atomic_load(&w.draining)) {
            atomic_store(&w.draining, 1);
            ls.drain_deadline_ms = now + w.cfg->drain_timeout_ms;
            log_msg(LOG_INFO, "%s: draining (claiming nothing more; in-flight tasks have %lldms)",
                    got_term ? "SIGTERM" : "SIGINT", (long long) w.cfg->drain_timeout_ms);
        }
        if (got_int >= 2) {
            log_msg(LOG_WARN, "second SIGINT: exiting now; in-flight leases will expire");
            exit_now = 1;
            break;
        }
        if (atomic_load(&w.draining)) {
            if (slots_idle(&w) == w.nslots) {
                log_msg(LOG_INFO, "drained: no task in flight");
                break;
            }
            if (now >= ls.drain_deadline_ms && !atomic_load(&w.drain_expired)) {
                atomic_store(&w.drain_expired, 1);
                shutdown_deadline = now + 15000;
                log_msg(LOG_WARN, "drain_timeout passed: stopping in-flight tasks and giving "
                        "them back");
            }
            if (shutdown_deadline && now >= shutdown_deadline) {
                log_msg(LOG_ERROR, "tasks did not give up in time; exiting with their leases "
                        "held (they will expire)");
                exit_now = 1;
                break;
            }
        }

        /* Connections. */
        if (!pgc_connected(&ls.ctl)) {
            if (pgc_try_connect(&ls.ctl, err, sizeof err) == 0)
                ls.maybe_more = 1;      /* what did we miss? */
            else if (err[0])
                log_msg(ls.ctl.failures == 1 ? LOG_WARN : LOG_DEBUG,
                        "control connection failed (attempt %d, retrying with backoff): %s",
                        ls.ctl.failures, err);
        }
        if (listener_ensure(&ls.lis) == 1)
            ls.maybe_more = 1;          /* wake-ups sent while deaf are lost */

        /* Work. */
        heartbeats(&ls);
        if (!atomic_load(&w.draining) && pgc_connected(&ls.ctl) &&
            (ls.maybe_more || now_ms() >= ls.next_poll_ms) && slots_idle(&w) > 0) {
            claim(&ls);
            ls.next_poll_ms = now_ms() + (listener_fd(&ls.lis) >= 0
                                          ? w.cfg->poll_interval_ms
                                          : (w.cfg->poll_interval_ms < 1000
                                             ? w.cfg->poll_interval_ms : 1000));
        }

        /* Sleep until something is due. */
        now = now_ms();
        next = ls.next_poll_ms;
        if (atomic_load(&w.draining))
            next = now + 100;
        if (next_heartbeat(&w) < next)
            next = next_heartbeat(&w);
        if (!pgc_connected(&ls.ctl) && ls.ctl.next_try_ms < next)
            next = ls.ctl.next_try_ms;
        if (listener_fd(&ls.lis) < 0 && ls.lis.pc.next_try_ms < next)
            next = ls.lis.pc.next_try_ms;
        if (ls.maybe_more && slots_idle(&w) > 0 && !atomic_load(&w.draining))
            next = now;
        wait = next - now;
        if (wait < 0)
            wait = 0;
        if (wait > 1000)
            wait = 1000;
        lfd = listener_fd(&ls.lis);
        if (lfd >= 0) {
            pfd[nfd].fd = lfd;
            pfd[nfd].events = POLLIN;
            nfd++;
        }
        pfd[nfd].fd = w.wake_fd;
        pfd[nfd].events = POLLIN;
        nfd++;
        ts.tv_sec = wait / 1000;
        ts.tv_nsec = (wait % 1000) * 1000000L;
        if (ppoll(pfd, (nfds_t) nfd, &ts, &orig) < 0) {
            if (errno == EINTR)
                continue;
            log_msg(LOG_ERROR, "ppoll: %s", strerror(errno));
            exit_code = 1;
            break;
        }
        if (lfd >= 0 && (pfd[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            int wake = 0;

            if (listener_consume(&ls.lis, w.cfg->runtimes, &wake) == 0 && wake)
                ls.maybe_more = 1;
        }
        if (pfd[nfd - 1].revents & POLLIN) {
            uint64_t v;

            (void) !read(w.wake_fd, &v, sizeof v);
        }
    }

    if (exit_now) {
        atomic_store(&w.stop_now, 1);
        kill_children(&w);
        exit_code = 1;
    }
    if (slots_stop(&w, exit_now ? 500 : 5000) > 0) {
        log_msg(LOG_WARN, "some task threads did not stop; exiting anyway");
        kill_children(&w);
        exit_code = 1;
        /* Leave the rest to process exit: do not free what threads use. */
        log_msg(LOG_INFO, "stopped: %ld succeeded, %ld failed, %ld canceled, %ld abandoned",
                atomic_load(&w.n_succeeded), atomic_load(&w.n_failed),
                atomic_load(&w.n_canceled), atomic_load(&w.n_abandoned));
        return exit_code;
    }
    log_msg(LOG_INFO, "stopped: %ld succeeded, %ld failed, %ld canceled, %ld abandoned",
            atomic_load(&w.n_succeeded), atomic_load(&w.n_failed), atomic_load(&w.n_canceled),
            atomic_load(&w.n_abandoned));
    pgc_destroy(&ls.ctl);
    listener_destroy(&ls.lis);
    close(w.wake_fd);
    free(w.slots);
    config_free(w.cfg);
    free(w.cfg);
    return exit_code;
}

/* ---- run-udf: one UDF run in the sandbox, without a database ---------- */

static int
cli_emit(op_ctx *c, const char *dataset, const char *key, json_t *payload, char *err,
         size_t errlen)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:O}", "type", "event", "dataset", dataset,
                          "partition_key", key, "payload", payload);

    (void) c;
    if (o == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    json_dumpf(o, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(o);
    return 0;
}

static int
cli_write_rows(op_ctx *c, const char *dataset, const char *key, json_t *rows, int64_t *written,
               char *err, size_t errlen)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:O}", "type", "rows", "dataset", dataset,
                          "partition_key", key, "rows", rows);

    (void) c;
    if (o == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    json_dumpf(o, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    json_decref(o);
    *written = (int64_t) json_array_size(rows);
    return 0;
}

static void
cli_log(op_ctx *c, int level, const char *msg)
{
    (void) c;
    log_msg(level, "%s", msg);
}

static void
cli_log_udf(op_ctx *c, int level, const char *msg)
{
    log_udf(level, 1, 1, msg);
    (void) c;
}

static volatile sig_atomic_t cli_stop;

static void
cli_on_signal(int sig)
{
    (void) sig;
    cli_stop = 1;
}

static int
cli_should_stop(op_ctx *c)
{
    (void) c;
    return cli_stop;
}

static void
cli_set_child(op_ctx *c, pid_t pgid)
{
    (void) c;
    (void) pgid;
}

static int
run_udf_main(worker_config *cfg, const char *language, const char *entrypoint,
             const char *payload_text, const char *config_text)
{
    op_settings st;
    op_ctx ctx;
    op_result res;
    json_t *payload, *config, *task, *out;
    json_error_t jerr;
    char err[1024];
    int rc;

    log_configure(cfg->log_level, cfg->log_format, "run-udf");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, cli_on_signal);
    signal(SIGTERM, cli_on_signal);
    if (settings_from_config(cfg, &st, err, sizeof err) < 0 || sandbox_init(err, sizeof err) < 0) {
        fprintf(stderr, "trace-worker run-udf: %s\n", err);
        return 2;
    }
    payload = json_loads(payload_text ? payload_text : "{}", 0, &jerr);
    config = json_loads(config_text ? config_text : "{}", 0, &jerr);
    if (payload == NULL || config == NULL || !json_is_object(config)) {
        fprintf(stderr, "trace-worker run-udf: --payload and --udf-config must be JSON "
                "(--udf-config an object)\n");
        return 2;
    }
    if (language)
        json_object_set_new(config, "language", json_string(language));
    if (entrypoint)
        json_object_set_new(config, "entrypoint", json_string(entrypoint));
    task = json_pack("{s:i,s:i,s:s,s:o,s:{s:s,s:s,s:o}}", "task_id", 0, "attempt", 1, "mode",
                     "manual", "payload", payload, "job", "name", "run_udf", "operator", "udf",
                     "config", config);
    memset(&ctx, 0, sizeof ctx);
    memset(&res, 0, sizeof res);
    ctx.settings = &st;
    ctx.attempt = 1;
    ctx.emit_event = cli_emit;
    ctx.write_rows = cli_write_rows;
    ctx.log = cli_log;
    ctx.log_udf = cli_log_udf;
    ctx.should_stop = cli_should_stop;
    ctx.set_child = cli_set_child;
    op_udf_run(&ctx, task, &res);
    out = json_pack("{s:s,s:s}", "type", "outcome", "outcome",
                    res.outcome == OP_SUCCEEDED ? "succeeded"
                    : res.outcome == OP_FAILED  ? "failed" : "stopped");
    if (res.outcome == OP_SUCCEEDED)
        json_object_set(out, "result", res.result ? res.result : json_null());
    else {
        json_object_set_new(out, "error", json_string(res.error));
        json_object_set_new(out, "retryable", json_boolean(res.retryable));
    }
    json_dumpf(out, stdout, JSON_COMPACT);
    fputc('\n', stdout);
    fflush(stdout);
    rc = res.outcome == OP_SUCCEEDED ? 0 : 1;
    json_decref(out);
    json_decref(res.result);
    json_decref(task);
    return rc;
}

int
main(int argc, char **argv)
{
    worker_config *cfg = calloc(1, sizeof *cfg);
    char err[1024];
    int check = 0, run_udf = 0;
    const char *language = NULL, *entrypoint = NULL, *payload = NULL, *udf_config = NULL;
    char **args = calloc((size_t) argc + 1, sizeof *args);
    int nargs = 0, rest = 0;

    if (cfg == NULL || args == NULL) {
        fprintf(stderr, "trace-worker: out of memory\n");
        return 1;
    }
    args[nargs++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;

        if (i == 1 && strcmp(a, "run-udf") == 0) {
            run_udf = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--version") == 0) {
            printf("trace-worker %s (protocol %s)\n", TRACE_WORKER_VERSION, UDF_PROTOCOL);
            return 0;
        }
        if (strcmp(a, "--check-config") == 0) {
            check = 1;
            continue;
        }
        if (run_udf) {
            if (strcmp(a, "--language") == 0)
                target = &language;
            else if (strcmp(a, "--entrypoint") == 0)
                target = &entrypoint;
            else if (strcmp(a, "--payload") == 0)
                target = &payload;
            else if (strcmp(a, "--udf-config") == 0)
                target = &udf_config;
        }
        if (target) {
            if (i + 1 >= argc) {
                fprintf(stderr, "trace-worker: %s needs a value\n", a);
                return 2;
            }
            *target = argv[++i];
            continue;
        }
        args[nargs++] = argv[i];
    }
    args[nargs] = NULL;
    if (config_load(cfg, nargs, args, environ, &rest, err, sizeof err) < 0) {
        fprintf(stderr, "trace-worker: %s\n", err);
        return 2;
    }
    if (rest < nargs) {
        fprintf(stderr, "trace-worker: unexpected argument \"%s\" (see --help)\n", args[rest]);
        return 2;
    }
    if (check) {
        config_dump(cfg, stdout);
        config_free(cfg);
        free(cfg);
        free(args);
        return 0;
    }
    if (run_udf) {
        int rc = run_udf_main(cfg, language, entrypoint, payload, udf_config);

        config_free(cfg);
        free(cfg);
        free(args);
        return rc;
    }
    {
        int rc = worker_main(cfg, nargs, args);    /* frees cfg */

        free(args);
        return rc;
    }
}
