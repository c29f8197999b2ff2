/*-------------------------------------------------------------------------
 * loadgen.c
 *		libpq load generator for the trace task queue (bench/run.sh drives it).
 *
 * Each client is one thread with one connection that only uses prepared
 * statements (PQprepare/PQexecPrepared) and pins search_path = pg_catalog,
 * as a trace-worker does.  Every call is its own transaction (autocommit),
 * so each claim and each complete pays its own commit.
 *
 * Modes:
 *   claim-complete       claim_tasks(max_tasks 1) -> complete_task
 *   claim-emit-complete  claim_tasks(1) -> emit_event -> complete_task
 *   batch                claim_tasks(max_tasks N) -> complete_tasks(N)
 *   enqueue              enqueue_task (N = 1: one NOTIFY per transaction) or
 *                        enqueue_tasks(N payloads) per call; -L adds a
 *                        LISTEN trace_wakeup client that counts wake-ups
 *   wakeup-latency       one enqueuer, one LISTEN trace_wakeup client: time
 *                        from sending enqueue_task to the notification's
 *                        arrival, one sample at a time on an idle queue
 *
 * A run lasts -T seconds or until -n tasks are done (both given: whichever
 * comes first).  It prints one line of
 * key=value pairs (tasks/s, claim latency p50/p99 in ms, counts of empty
 * claims and errors) that bench/run.sh turns into its table.
 *
 * Memory: each client owns its latency buffer; main() merges them after the
 * threads are joined.  Functions return 0/-1 and fill an error buffer; only
 * main() decides to exit.
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define ERRBUF 512

typedef enum
{
	MODE_CLAIM_COMPLETE,
	MODE_CLAIM_EMIT_COMPLETE,
	MODE_BATCH,
	MODE_ENQUEUE,
	MODE_WAKEUP
} Mode;

static const char *const mode_names[] = {
	"claim-complete", "claim-emit-complete", "batch", "enqueue", "wakeup-latency"
};

typedef struct Options
{
	const char *conninfo;		/* libpq conninfo of the bench database */
	Mode		mode;
	int			clients;
	double		seconds;		/* run length; 0 when -n is given */
	long		tasks;			/* fixed task count; 0 when -T is given */
	int			batch;			/* tasks per claim / per enqueue call */
	const char *runtime;
	long		job_id;			/* enqueue modes */
	int			samples;		/* wakeup-latency */
	int			gap_ms;			/* wakeup-latency: idle time between samples */
	bool		listen;			/* enqueue: attach a counting listener */
} Options;

/* A growable array of latencies in milliseconds. */
typedef struct LatencyBuf
{
	double	   *v;
	size_t		n;
	size_t		cap;
} LatencyBuf;

/* One client thread's connection and tallies; owned by that thread. */
typedef struct Client
{
	int			id;
	pthread_t	thread;
	PGconn	   *conn;
	long		tasks;			/* tasks finished (or enqueued) */
	long		empty;			/* claims that returned no task */
	long		errors;			/* calls that failed; the thread goes on */
	LatencyBuf	lat;			/* per-claim (or per-enqueue) latency */
	double		end;			/* when the thread stopped (monotonic s) */
	char		err[ERRBUF];	/* first error, for the report */
	int			failed;			/* the thread could not run at all */
} Client;

static Options opt = {
	.conninfo = "dbname=bench",
	.mode = MODE_CLAIM_COMPLETE,
	.clients = 1,
	.seconds = 10,
	.batch = 1,
	.runtime = "ecs_platform",
	.job_id = 1,
	.samples = 200,
	.gap_ms = 20,
};

/* ready: every client connected; go: start_time is set, run. */
static pthread_barrier_t ready_barrier;
static pthread_barrier_t go_barrier;
static double start_time;
static long remaining;			/* fixed-count mode: tasks not yet taken */
static volatile int stop_listener;

/* Seconds on the monotonic clock. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
set_err(char *err, const char *fmt,...)
{
	va_list		ap;

	if (err[0] != '\0')
		return;					/* keep the first error */
	va_start(ap, fmt);
	vsnprintf(err, ERRBUF, fmt, ap);
	va_end(ap);
	err[strcspn(err, "\n")] = '\0';
}

static int
lat_push(LatencyBuf *b, double ms)
{
	if (b->n == b->cap)
	{
		size_t		cap = b->cap ? b->cap * 2 : 4096;
		double	   *v = realloc(b->v, cap * sizeof(double));

		if (v == NULL)
			return -1;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = ms;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array; NAN when empty. */
static double
percentile(const double *v, size_t n, double p)
{
	size_t		rank;

	if (n == 0)
		return NAN;
	rank = (size_t) ceil(p * n);
	if (rank < 1)
		rank = 1;
	return v[rank - 1];
}

/*
 * Opens a connection with search_path pinned to pg_catalog, as the worker
 * does: every name the statements use is schema-qualified.  NULL on failure.
 */
static PGconn *
connect_db(char *err)
{
	const char *keys[] = {"dbname", "options", "application_name", NULL};
	const char *vals[] = {opt.conninfo, "-c search_path=pg_catalog", "trace-bench", NULL};
	PGconn	   *conn = PQconnectdbParams(keys, vals, 1);

	if (conn == NULL)
	{
		set_err(err, "out of memory connecting");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		set_err(err, "connect: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static int
prepare(PGconn *conn, const char *name, const char *sql, char *err)
{
	PGresult   *res = PQprepare(conn, name, sql, 0, NULL);
	int			rc = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		set_err(err, "prepare %s: %s", name, PQerrorMessage(conn));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* Prepares every statement the mode needs on one client connection. */
static int
prepare_all(PGconn *conn, char *err)
{
	if (prepare(conn, "claim",
				"SELECT task_id, attempt, lease_token"
				" FROM trace.claim_tasks($1::text, $2::text[], $3::int)", err) < 0
		|| prepare(conn, "complete",
				   "SELECT trace.complete_task($1::bigint, $2::int, $3::uuid, $4::jsonb)",
				   err) < 0
		|| prepare(conn, "complete_batch",
				   "SELECT pg_catalog.count(*) FILTER (WHERE status = 'succeeded')"
				   " FROM trace.complete_tasks($1::bigint[], $2::int[], $3::uuid[], $4::jsonb[])",
				   err) < 0
		|| prepare(conn, "emit",
				   "SELECT trace.emit_event($1::bigint, $2::int, $3::uuid, $4::text,"
				   " $5::text, $6::jsonb)", err) < 0
		|| prepare(conn, "enqueue",
				   "SELECT trace.enqueue_task($1::bigint, $2::jsonb)", err) < 0
		|| prepare(conn, "enqueue_batch",
				   "SELECT pg_catalog.count(*) FROM trace.enqueue_tasks($1::bigint, $2::jsonb[])",
				   err) < 0)
		return -1;
	return 0;
}

/*
 * Takes up to want tasks from the fixed-count budget; returns how many were
 * granted (0 when the budget is spent).  In timed mode it grants all.
 */
static int
take_budget(int want)
{
	long		left;

	if (opt.tasks == 0)
		return want;
	left = __atomic_fetch_sub(&remaining, want, __ATOMIC_RELAXED);
	if (left <= 0)
		return 0;
	return left < want ? (int) left : want;
}

static bool
time_left(void)
{
	return opt.seconds <= 0 || now_s() - start_time < opt.seconds;
}

/*
 * Runs one prepared statement and checks it returned tuples.  On error the
 * client's error count goes up and NULL comes back (the caller goes on).
 */
static PGresult *
exec_prepared(Client *c, const char *stmt, int n, const char *const *vals)
{
	PGresult   *res = PQexecPrepared(c->conn, stmt, n, vals, NULL, NULL, 0);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		set_err(c->err, "%s: %s", stmt, PQerrorMessage(c->conn));
		c->errors++;
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * One claim -> [emit ->] complete cycle of a single task.  Returns 1 when a
 * task was completed, 0 when the claim found none or a call failed.
 */
static int
cycle_single(Client *c, const char *worker, const char *runtimes, bool emit)
{
	const char *claim_args[] = {worker, runtimes, "1"};
	PGresult   *res;
	double		t0 = now_s();
	char		task_id[32];
	char		attempt[16];
	char		token[64];
	int			done = 0;

	res = exec_prepared(c, "claim", 3, claim_args);
	if (res == NULL)
		return 0;
	if (lat_push(&c->lat, (now_s() - t0) * 1000) < 0)
		set_err(c->err, "out of memory");
	if (PQntuples(res) == 0)
	{
		c->empty++;
		PQclear(res);
		return 0;
	}
	snprintf(task_id, sizeof(task_id), "%s", PQgetvalue(res, 0, 0));
	snprintf(attempt, sizeof(attempt), "%s", PQgetvalue(res, 0, 1));
	snprintf(token, sizeof(token), "%s", PQgetvalue(res, 0, 2));
	PQclear(res);

	if (emit)
	{
		const char *emit_args[] = {task_id, attempt, token, "bench.dataset", task_id,
		"{\"rows\": 100}"};

		res = exec_prepared(c, "emit", 6, emit_args);
		if (res == NULL)
			return 0;
		PQclear(res);
	}
	{
		const char *complete_args[] = {task_id, attempt, token, "{\"ok\": true}"};

		res = exec_prepared(c, "complete", 4, complete_args);
		if (res == NULL)
			return 0;
		done = strcmp(PQgetvalue(res, 0, 0), "succeeded") == 0;
		if (!done)
		{
			set_err(c->err, "complete_task answered %s", PQgetvalue(res, 0, 0));
			c->errors++;
		}
		PQclear(res);
	}
	return done;
}

/* Appends text to a buffer the caller sized for the whole array literal. */
static char *
append(char *p, const char *s)
{
	size_t		len = strlen(s);

	memcpy(p, s, len);
	return p + len;
}

/*
 * One claim(N) -> complete_tasks(N) cycle; arrays go as text literals.
 * bufs holds four buffers of at least 80 bytes per task.  Returns the
 * number of tasks completed.
 */
static int
cycle_batch(Client *c, const char *worker, const char *runtimes, int want, char **bufs)
{
	char		nbuf[16];
	const char *claim_args[] = {worker, runtimes, nbuf};
	PGresult   *res;
	double		t0 = now_s();
	int			n;
	int			done;
	char	   *p[4];

	snprintf(nbuf, sizeof(nbuf), "%d", want);
	res = exec_prepared(c, "claim", 3, claim_args);
	if (res == NULL)
		return 0;
	if (lat_push(&c->lat, (now_s() - t0) * 1000) < 0)
		set_err(c->err, "out of memory");
	n = PQntuples(res);
	if (n == 0)
	{
		c->empty++;
		PQclear(res);
		return 0;
	}
	for (int k = 0; k < 4; k++)
		p[k] = append(bufs[k], "{");
	for (int i = 0; i < n; i++)
	{
		const char *sep = i ? "," : "";

		p[0] = append(append(p[0], sep), PQgetvalue(res, i, 0));
		p[1] = append(append(p[1], sep), PQgetvalue(res, i, 1));
		p[2] = append(append(p[2], sep), PQgetvalue(res, i, 2));
		p[3] = append(append(p[3], sep), "\"{\\\"ok\\\": true}\"");
	}
	for (int k = 0; k < 4; k++)
		*append(p[k], "}") = '\0';
	PQclear(res);

	res = exec_prepared(c, "complete_batch", 4, (const char *const *) bufs);
	if (res == NULL)
		return 0;
	done = atoi(PQgetvalue(res, 0, 0));
	if (done != n)
	{
		set_err(c->err, "complete_tasks: %d of %d succeeded", done, n);
		c->errors += n - done;
	}
	PQclear(res);
	return done;
}

/* One enqueue call of n tasks: enqueue_task when n = 1, else enqueue_tasks. */
static int
cycle_enqueue(Client *c, int n, char *buf, long *seq)
{
	char		job[32];
	PGresult   *res;
	double		t0 = now_s();
	int			done;

	snprintf(job, sizeof(job), "%ld", opt.job_id);
	if (n == 1)
	{
		const char *args[] = {job, buf};

		snprintf(buf, 64, "{\"n\": %ld}", (*seq)++);
		res = exec_prepared(c, "enqueue", 2, args);
		done = res ? 1 : 0;
	}
	else
	{
		const char *args[] = {job, buf};
		char	   *p = append(buf, "{");

		for (int i = 0; i < n; i++)
			p += sprintf(p, "%s\"{\\\"n\\\": %ld}\"", i ? "," : "", (*seq)++);
		*append(p, "}") = '\0';
		res = exec_prepared(c, "enqueue_batch", 2, args);
		done = res ? atoi(PQgetvalue(res, 0, 0)) : 0;
	}
	if (res == NULL)
		return 0;
	PQclear(res);
	if (lat_push(&c->lat, (now_s() - t0) * 1000) < 0)
		set_err(c->err, "out of memory");
	return done;
}

/* A client thread: connect, prepare, wait for the others, then loop. */
static void *
client_main(void *arg)
{
	Client	   *c = arg;
	char		worker[32];
	char		runtimes[128];
	char	   *bufs[4] = {NULL, NULL, NULL, NULL};
	long		seq = (long) c->id << 40;

	snprintf(worker, sizeof(worker), "bench-%d", c->id);
	snprintf(runtimes, sizeof(runtimes), "{%s}", opt.runtime);
	c->conn = connect_db(c->err);
	if (c->conn == NULL || prepare_all(c->conn, c->err) < 0)
		c->failed = 1;
	for (int k = 0; k < 4 && !c->failed; k++)
	{
		bufs[k] = malloc((size_t) opt.batch * 80 + 64);
		if (bufs[k] == NULL)
		{
			set_err(c->err, "out of memory");
			c->failed = 1;
		}
	}
	pthread_barrier_wait(&ready_barrier);
	pthread_barrier_wait(&go_barrier);
	if (c->failed)
		goto cleanup;

	while (time_left())
	{
		int			want = take_budget(opt.batch);
		int			got;

		if (want == 0)
			break;
		switch (opt.mode)
		{
			case MODE_CLAIM_COMPLETE:
			case MODE_CLAIM_EMIT_COMPLETE:
				got = cycle_single(c, worker, runtimes, opt.mode == MODE_CLAIM_EMIT_COMPLETE);
				break;
			case MODE_BATCH:
				got = cycle_batch(c, worker, runtimes, want, bufs);
				break;
			default:
				got = cycle_enqueue(c, want, bufs[0], &seq);
				break;
		}
		c->tasks += got;
		if (opt.tasks > 0 && got < want)
			__atomic_fetch_add(&remaining, want - got, __ATOMIC_RELAXED);
		/* An empty queue ends the run rather than spinning on it. */
		if (c->empty > 0 && got == 0)
			break;
		if (PQstatus(c->conn) != CONNECTION_OK)
		{
			set_err(c->err, "connection lost");
			break;
		}
		if (c->errors > 100)
			break;				/* something is wrong; the report shows it */
	}
	c->end = now_s();

cleanup:
	for (int k = 0; k < 4; k++)
		free(bufs[k]);
	if (c->conn)
		PQfinish(c->conn);
	c->conn = NULL;
	return NULL;
}

/* Shared state of the LISTEN client (wakeup-latency and enqueue -L). */
typedef struct Listener
{
	PGconn	   *conn;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long		received;
	double		last_at;		/* monotonic time of the latest arrival */
	char		err[ERRBUF];
} Listener;

/* Opens a connection and LISTENs on trace_wakeup. */
static int
listener_open(Listener *l)
{
	PGresult   *res;

	l->conn = connect_db(l->err);
	if (l->conn == NULL)
		return -1;
	res = PQexec(l->conn, "LISTEN trace_wakeup");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		set_err(l->err, "LISTEN: %s", PQerrorMessage(l->conn));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/*
 * The listener thread: waits on the socket and stamps each notification the
 * moment libpq parses it, so the time does not depend on the enqueuer.
 */
static void *
listener_main(void *arg)
{
	Listener   *l = arg;
	struct pollfd pfd = {.fd = PQsocket(l->conn), .events = POLLIN};

	while (!stop_listener)
	{
		PGnotify   *n;

		if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
		{
			set_err(l->err, "poll: %s", strerror(errno));
			break;
		}
		if (!PQconsumeInput(l->conn))
		{
			set_err(l->err, "listener: %s", PQerrorMessage(l->conn));
			break;
		}
		while ((n = PQnotifies(l->conn)) != NULL)
		{
			double		t = now_s();

			pthread_mutex_lock(&l->mu);
			l->received++;
			l->last_at = t;
			pthread_cond_signal(&l->cv);
			pthread_mutex_unlock(&l->mu);
			PQfreemem(n);
		}
	}
	return NULL;
}

static void
print_latency(const char *name, LatencyBuf *b)
{
	qsort(b->v, b->n, sizeof(double), cmp_double);
	printf(" %s_p50_ms=%.3f %s_p99_ms=%.3f", name, percentile(b->v, b->n, 0.50),
		   name, percentile(b->v, b->n, 0.99));
}

/*
 * wakeup-latency: one enqueue at a time on an idle queue; for each, the time
 * from sending trace.enqueue_task to the trace_wakeup notification's
 * arrival on another connection (an upper bound on commit -> receipt), the
 * time from the enqueue's reply (its commit acknowledged) to that arrival
 * (negative when the notification wins the race), and the enqueue call's
 * own round trip.
 */
static int
run_wakeup(char *err)
{
	Listener	l = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	Client		c = {0};
	LatencyBuf	wake = {0};
	LatencyBuf	after_ack = {0};
	pthread_t	th;
	bool		started = false;
	long		missed = 0;
	int			rc = -1;
	char		buf[64];
	long		seq = 0;

	if (listener_open(&l) < 0)
	{
		set_err(err, "%s", l.err);
		goto cleanup;
	}
	c.conn = connect_db(err);
	if (c.conn == NULL || prepare_all(c.conn, err) < 0)
		goto cleanup;
	if (pthread_create(&th, NULL, listener_main, &l) != 0)
	{
		set_err(err, "pthread_create failed");
		goto cleanup;
	}
	started = true;

	for (int i = 0; i < opt.samples; i++)
	{
		long		before;
		double		t0;
		double		t_ack;
		struct timespec deadline;
		bool		got = true;

		usleep(opt.gap_ms * 1000);
		pthread_mutex_lock(&l.mu);
		before = l.received;
		pthread_mutex_unlock(&l.mu);
		t0 = now_s();
		if (cycle_enqueue(&c, 1, buf, &seq) != 1)
		{
			set_err(err, "%s", c.err);
			goto cleanup;
		}
		t_ack = now_s();
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 2;
		pthread_mutex_lock(&l.mu);
		while (l.received == before && got)
			got = pthread_cond_timedwait(&l.cv, &l.mu, &deadline) != ETIMEDOUT;
		if (l.received > before)
			got = lat_push(&wake, (l.last_at - t0) * 1000) == 0
				&& lat_push(&after_ack, (l.last_at - t_ack) * 1000) == 0;
		pthread_mutex_unlock(&l.mu);
		if (!got)
			missed++;
	}
	printf("mode=wakeup-latency samples=%zu missed=%ld", wake.n, missed);
	print_latency("wakeup", &wake);
	print_latency("after_ack", &after_ack);
	print_latency("enqueue", &c.lat);
	printf("\n");
	rc = 0;

cleanup:
	stop_listener = 1;
	if (started)
		pthread_join(th, NULL);
	if (l.err[0])
		set_err(err, "%s", l.err);
	if (l.conn)
		PQfinish(l.conn);
	if (c.conn)
		PQfinish(c.conn);
	free(wake.v);
	free(after_ack.v);
	free(c.lat.v);
	return rc;
}

/* The throughput modes: start the clients together, join, report. */
static int
run_clients(char *err)
{
	Client	   *clients = calloc(opt.clients, sizeof(Client));
	Listener	l = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	pthread_t	lth;
	bool		listening = false;
	LatencyBuf	all = {0};
	long		tasks = 0,
				empty = 0,
				errors = 0;
	double		end = 0;
	int			created = 0;
	int			rc = -1;

	if (clients == NULL)
	{
		set_err(err, "out of memory");
		return -1;
	}
	if (opt.mode == MODE_ENQUEUE && opt.listen)
	{
		if (listener_open(&l) < 0 || pthread_create(&lth, NULL, listener_main, &l) != 0)
		{
			set_err(err, "listener: %s", l.err);
			goto cleanup;
		}
		listening = true;
	}
	remaining = opt.tasks;
	pthread_barrier_init(&ready_barrier, NULL, opt.clients + 1);
	pthread_barrier_init(&go_barrier, NULL, opt.clients + 1);
	for (; created < opt.clients; created++)
	{
		clients[created].id = created + 1;
		if (pthread_create(&clients[created].thread, NULL, client_main, &clients[created]) != 0)
		{
			set_err(err, "pthread_create failed");
			break;
		}
	}
	if (created < opt.clients)
	{
		/* The barrier counts on every client: those missing never arrive. */
		fprintf(stderr, "loadgen: %s\n", err);
		exit(1);
	}
	pthread_barrier_wait(&ready_barrier);
	start_time = now_s();
	pthread_barrier_wait(&go_barrier);
	for (int i = 0; i < created; i++)
		pthread_join(clients[i].thread, NULL);
	pthread_barrier_destroy(&ready_barrier);
	pthread_barrier_destroy(&go_barrier);

	for (int i = 0; i < created; i++)
	{
		Client	   *c = &clients[i];

		if (c->failed)
		{
			set_err(err, "client %d: %s", c->id, c->err);
			goto cleanup;
		}
		if (c->err[0])
			fprintf(stderr, "loadgen: client %d: %s\n", c->id, c->err);
		tasks += c->tasks;
		empty += c->empty;
		errors += c->errors;
		if (c->end > end)
			end = c->end;
		for (size_t k = 0; k < c->lat.n; k++)
			if (lat_push(&all, c->lat.v[k]) < 0)
			{
				set_err(err, "out of memory");
				goto cleanup;
			}
	}
	/* A lagging notification still counts when it comes within a second. */
	if (listening)
		for (int i = 0; i < 20; i++)
		{
			long		got;

			pthread_mutex_lock(&l.mu);
			got = l.received;
			pthread_mutex_unlock(&l.mu);
			if ((size_t) got >= all.n)
				break;
			usleep(50 * 1000);
		}
	printf("mode=%s clients=%d batch=%d tasks=%ld seconds=%.2f tasks_per_s=%.1f"
		   " empty_claims=%ld errors=%ld",
		   mode_names[opt.mode], opt.clients, opt.batch, tasks, end - start_time,
		   tasks / (end - start_time), empty, errors);
	print_latency(opt.mode == MODE_ENQUEUE ? "call" : "claim", &all);
	if (listening)
		printf(" calls=%zu notifications=%ld", all.n, l.received);
	printf("\n");
	rc = 0;

cleanup:
	if (listening)
	{
		stop_listener = 1;
		pthread_join(lth, NULL);
	}
	if (l.conn)
		PQfinish(l.conn);
	for (int i = 0; i < created; i++)
		free(clients[i].lat.v);
	free(clients);
	free(all.v);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: loadgen -m MODE [-d CONNINFO] [-c CLIENTS] [-T SECONDS] [-n TASKS]\n"
			"               [-b BATCH] [-r RUNTIME] [-j JOB_ID] [-L] [-s SAMPLES] [-g GAP_MS]\n"
			"modes: claim-complete claim-emit-complete batch enqueue wakeup-latency\n");
}

int
main(int argc, char **argv)
{
	char		err[ERRBUF] = "";
	int			ch;
	bool		mode_set = false;
	bool		seconds_set = false;
	bool		tasks_set = false;

	while ((ch = getopt(argc, argv, "m:d:c:T:n:b:r:j:Ls:g:h")) != -1)
	{
		switch (ch)
		{
			case 'm':
				for (int i = 0; i < (int) (sizeof(mode_names) / sizeof(mode_names[0])); i++)
					if (strcmp(optarg, mode_names[i]) == 0)
					{
						opt.mode = (Mode) i;
						mode_set = true;
					}
				break;
			case 'd':
				opt.conninfo = optarg;
				break;
			case 'c':
				opt.clients = atoi(optarg);
				break;
			case 'T':
				opt.seconds = atof(optarg);
				seconds_set = true;
				break;
			case 'n':
				opt.tasks = atol(optarg);
				tasks_set = true;
				break;
			case 'b':
				opt.batch = atoi(optarg);
				break;
			case 'r':
				opt.runtime = optarg;
				break;
			case 'j':
				opt.job_id = atol(optarg);
				break;
			case 'L':
				opt.listen = true;
				break;
			case 's':
				opt.samples = atoi(optarg);
				break;
			case 'g':
				opt.gap_ms = atoi(optarg);
				break;
			default:
				usage();
				return 2;
		}
	}
	/* -T alone runs for a time, -n alone to a count, both to whichever first. */
	if (tasks_set && !seconds_set)
		opt.seconds = 0;
	if (seconds_set && !tasks_set)
		opt.tasks = 0;
	if (!mode_set || opt.clients < 1 || opt.clients > 1000 || opt.batch < 1
		|| opt.batch > 10000 || (opt.seconds <= 0 && opt.tasks <= 0) || opt.samples < 1
		|| opt.gap_ms < 0)
	{
		usage();
		return 2;
	}
	if ((opt.mode == MODE_CLAIM_COMPLETE || opt.mode == MODE_CLAIM_EMIT_COMPLETE)
		&& opt.batch != 1)
	{
		fprintf(stderr, "loadgen: %s claims one task per call; use -m batch\n",
				mode_names[opt.mode]);
		return 2;
	}

	if ((opt.mode == MODE_WAKEUP ? run_wakeup(err) : run_clients(err)) < 0)
	{
		fprintf(stderr, "loadgen: %s\n", err);
		return 1;
	}
	return 0;
}
