/*-------------------------------------------------------------------------
 * lease.c
 *		The hot path of the task lifecycle: claiming and ending tasks.
 *
 * trace.claim / trace.claim_tasks and trace.move_to_done /
 * trace.complete_task / trace.complete_tasks are C so that each call is one
 * saved statement: no PL/pgSQL interpreter, no stack of SECURITY DEFINER
 * layers (each re-pinning search_path costs tens of microseconds), and a
 * generic plan kept for the backend's life.  The statements are written so
 * their generic plans stay index scans whatever the estimates: candidates
 * come from the claim index under FOR UPDATE SKIP LOCKED, and rows are then
 * updated or deleted by primary key (= ANY of an array).
 *
 * There is one claim statement and one ending statement; every SQL entry
 * point runs one of them.  Fencing is in the ending statement itself: a row
 * moves only while the given (attempt, lease_token) is its current,
 * unexpired lease.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "trace.h"

/* Longest batch one call may claim or complete. */
#define MAX_BATCH 10000

/* The claim: lock the best candidates, update them by primary key. */
#define CLAIM_SQL \
	"WITH claimed AS (" \
	"  UPDATE trace.task t" \
	"  SET state = 'running', attempt = t.attempt + 1," \
	"      lease = coalesce($5, t.lease), lease_token = gen_random_uuid()," \
	"      lease_expires_at = now() + coalesce($5, t.lease)," \
	"      deadline_at = now() + t.timeout, worker_id = $2, started_at = now()" \
	"  WHERE t.task_id = ANY (ARRAY(" \
	"      SELECT c.task_id FROM unnest($3::text[]) AS r(runtime)" \
	"      CROSS JOIN LATERAL (" \
	"          SELECT q.task_id, q.priority FROM trace.task q" \
	"          WHERE q.org_id = $1 AND q.runtime = r.runtime AND q.state = 'queued'" \
	"          ORDER BY q.priority DESC, q.task_id LIMIT $4" \
	"          FOR UPDATE SKIP LOCKED) c" \
	"      ORDER BY c.priority DESC, c.task_id LIMIT $4))" \
	"  RETURNING t.task_id, t.attempt, t.lease_token, t.lease_expires_at, t.job_id," \
	"            t.operator, t.runtime, t.mode, t.payload, t.priority)" \
	"SELECT task_id, attempt, lease_token, lease_expires_at, job_id, operator, runtime," \
	"       mode, payload FROM claimed ORDER BY priority DESC, task_id"

/*
 * The ending: move tasks to trace.task_done in one statement.  An input row
 * with attempt and lease_token is fenced (current, unexpired lease); one
 * without is moved as is (its caller holds the row lock).  The final state
 * is the given one, or 'canceled' when a cancel was requested, or
 * 'succeeded'.  Returns every input row, in order, with its new state, or
 * NULL when it did not move.
 */
#define ENDING_SQL \
	"WITH input AS (" \
	"  SELECT * FROM unnest($1::bigint[], $2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::text[])" \
	"      WITH ORDINALITY AS i(task_id, attempt, lease_token, state, result, error, ord)" \
	"), ended AS (" \
	"  DELETE FROM trace.task t USING input i" \
	"  WHERE t.task_id = ANY ($1::bigint[]) AND t.task_id = i.task_id" \
	"    AND (i.attempt IS NULL" \
	"         OR (t.attempt = i.attempt AND t.lease_token = i.lease_token" \
	"             AND t.state = 'running' AND t.lease_expires_at > now()))" \
	"  RETURNING t.*, i.state AS final_state, i.result AS final_result, i.error AS final_error" \
	"), stored AS (" \
	"  INSERT INTO trace.task_done (task_id, org_id, job_id, operator, runtime, state, mode," \
	"      priority, attempt, max_attempts, worker_id, payload, result, error, event_id," \
	"      dag_version, created_at, started_at, finished_at)" \
	"  SELECT e.task_id, e.org_id, e.job_id, e.operator, e.runtime," \
	"         coalesce(e.final_state, CASE WHEN e.cancel_requested THEN 'canceled' ELSE 'succeeded' END)," \
	"         e.mode, e.priority, e.attempt, e.max_attempts, e.worker_id, e.payload," \
	"         e.final_result, e.final_error, e.event_id, e.dag_version, e.created_at," \
	"         e.started_at, now()" \
	"  FROM ended e" \
	"  RETURNING task_done.task_id, task_done.state)" \
	"SELECT i.task_id, s.state FROM input i LEFT JOIN stored s ON s.task_id = i.task_id" \
	" ORDER BY i.ord"

#define ORG_SQL \
	"SELECT coalesce((SELECT o.org_id FROM trace.org_role o WHERE o.role_name = session_user), 'default')"

static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr ending_plan = NULL;
static SPIPlanPtr org_plan = NULL;

/* Prepares a statement once per backend, with a generic plan kept. */
static SPIPlanPtr
prepare_once(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "trace: could not prepare statement: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "trace: could not keep prepared statement");
		*cache = plan;
	}
	return *cache;
}

/* Raises the NULL-argument error the SQL API uses (22004). */
static void
require_arg(bool is_null, const char *argument)
{
	if (is_null)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be NULL", argument)));
}

/* The org the calling login role acts for (see trace.org_role). */
static Datum
caller_org(void)
{
	Datum		org;
	bool		isnull;

	if (SPI_execute_plan(prepare_once(&org_plan, ORG_SQL, 0, NULL), NULL, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "trace: org lookup failed");
	org = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return SPI_datumTransfer(org, false, -1);
}

/*
 * Executes a saved plan with the planner steered to indexes.  A generic
 * plan is made from the statistics of the moment it is (re)planned; made
 * while trace.task is empty, it would be a sequential scan and a sort, kept
 * for the backend's life.  Planning here happens only inside execute, so
 * the settings are applied around it, at this nesting level only.  JIT is
 * off too: these are short statements it never pays for, and the sorts
 * they cannot avoid carry disable_cost, which would otherwise push every
 * call past the JIT thresholds (seconds of LLVM compilation per call).
 */
static int
execute_index_plan(SPIPlanPtr plan, Datum *values, const char *nulls)
{
	int			nest = NewGUCNestLevel();
	int			rc;

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_sort", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_plan(plan, values, nulls, false, 0);
	AtEOXact_GUC(true, nest);
	return rc;
}

/*
 * Runs the claim and returns its rows into the function's result set.
 * The caller has validated the arguments and connected SPI.
 */
static void
claim_into(FunctionCallInfo fcinfo, Datum org, Datum worker_id, Datum runtimes,
		   int32 max_tasks, Datum lease, bool lease_null)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			argtypes[5] = {TEXTOID, TEXTOID, TEXTARRAYOID, INT4OID, INTERVALOID};
	Datum		values[5] = {org, worker_id, runtimes, Int32GetDatum(max_tasks), lease};
	char		nulls[5] = {' ', ' ', ' ', ' ', lease_null ? 'n' : ' '};
	int			rc;

	rc = execute_index_plan(prepare_once(&claim_plan, CLAIM_SQL, 5, argtypes), values, nulls);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "trace: claim failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[9];
		bool		isnull[9];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
}

/* Refuses a batch size or lease outside their ranges (22023). */
static void
check_claim_args(int32 max_tasks, bool lease_null, Datum lease)
{
	if (max_tasks < 1 || max_tasks > MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"max_tasks\" must be between 1 and %d, not %d", MAX_BATCH, max_tasks)));
	if (!lease_null)
	{
		Interval   *l = DatumGetIntervalP(lease);
		Interval	zero = {0, 0, 0};
		Interval	day = {0, 1, 0};

		if (DatumGetBool(DirectFunctionCall2(interval_le, IntervalPGetDatum(l), IntervalPGetDatum(&zero))) ||
			DatumGetBool(DirectFunctionCall2(interval_gt, IntervalPGetDatum(l), IntervalPGetDatum(&day))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("argument \"lease\" must be more than 0 and at most 1 day")));
	}
}

PG_FUNCTION_INFO_V1(trace_claim);

/*
 * trace.claim(org, worker_id, runtimes, max_tasks, lease): the one claim
 * path, for an explicit org (the dispatcher's executor claims for each).
 */
Datum
trace_claim(PG_FUNCTION_ARGS)
{
	InitMaterializedSRF(fcinfo, 0);
	require_arg(PG_ARGISNULL(0), "org");
	require_arg(PG_ARGISNULL(1), "worker_id");
	require_arg(PG_ARGISNULL(2), "runtimes");
	require_arg(PG_ARGISNULL(3), "max_tasks");
	check_claim_args(PG_GETARG_INT32(3), PG_ARGISNULL(4), PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4));
	SPI_connect();
	claim_into(fcinfo, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2),
			   PG_GETARG_INT32(3), PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4), PG_ARGISNULL(4));
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(trace_claim_tasks);

/*
 * trace.claim_tasks(worker_id, runtimes, max_tasks, lease): leases up to
 * max_tasks queued tasks of the given runtimes for the caller's org, best
 * first (priority, then age).
 */
Datum
trace_claim_tasks(PG_FUNCTION_ARGS)
{
	Datum		org;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		require_arg(PG_ARGISNULL(0), "worker_id");
		require_arg(PG_ARGISNULL(1), "runtimes");
		require_arg(PG_ARGISNULL(2), "max_tasks");
	}
	check_claim_args(PG_GETARG_INT32(2), PG_ARGISNULL(3), PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3));
	SPI_connect();
	org = caller_org();
	claim_into(fcinfo, org, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_INT32(2),
			   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3));
	SPI_finish();
	return (Datum) 0;
}

/*
 * Runs the ending statement over six parallel arrays (NULL arrays allowed
 * for attempts, tokens, states, results, errors) and leaves its rows, one
 * per input in order, in SPI_tuptable.
 */
static void
run_ending(Datum task_ids, Datum attempts, Datum tokens, Datum states, Datum results,
		   Datum errors, const bool *null_args)
{
	Oid			argtypes[6] = {INT8ARRAYOID, INT4ARRAYOID, UUIDARRAYOID, TEXTARRAYOID,
	JSONBARRAYOID, TEXTARRAYOID};
	Datum		values[6] = {task_ids, attempts, tokens, states, results, errors};
	char		nulls[6];
	int			rc;

	for (int i = 0; i < 6; i++)
		nulls[i] = null_args[i] ? 'n' : ' ';
	rc = execute_index_plan(prepare_once(&ending_plan, ENDING_SQL, 6, argtypes), values, nulls);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "trace: ending tasks failed: %s", SPI_result_code_string(rc));
}

PG_FUNCTION_INFO_V1(trace_move_to_done);

/*
 * trace.move_to_done(task_ids, attempts, lease_tokens, states, results,
 * errors): the one path that ends tasks; returns (task_id, state) for each
 * task that moved.
 */
Datum
trace_move_to_done(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	bool		null_args[6];

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0))
		return (Datum) 0;
	for (int i = 0; i < 6; i++)
		null_args[i] = PG_ARGISNULL(i);
	SPI_connect();
	run_ending(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), PG_GETARG_DATUM(3),
			   PG_GETARG_DATUM(4), PG_GETARG_DATUM(5), null_args);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[2];
		bool		isnull[2];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, isnull);
		if (!isnull[1])
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
	SPI_finish();
	return (Datum) 0;
}

/* Raises TR001/TR004/22004 for a fenced call that matched nothing. */
static void
raise_lease_error(Datum task_id, Datum attempt, Datum token, const bool *isnull)
{
	Oid			argtypes[3] = {INT8OID, INT4OID, UUIDOID};
	Datum		values[3] = {task_id, attempt, token};
	char		nulls[3] = {isnull[0] ? 'n' : ' ', isnull[1] ? 'n' : ' ', isnull[2] ? 'n' : ' '};

	SPI_execute_with_args("SELECT trace.raise_lease_error($1, $2, $3)", 3, argtypes, values, nulls,
						  false, 1);
	/* not reached: it always raises */
	elog(ERROR, "trace: lease error expected");
}

/* A one-element array of a datum (NULL element when isnull). */
static Datum
singleton(Datum value, bool isnull, Oid elemtype)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			dims[1] = {1};
	int			lbs[1] = {1};

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(&value, &isnull, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

PG_FUNCTION_INFO_V1(trace_complete_task);

/*
 * trace.complete_task(task_id, attempt, lease_token, result): completes one
 * leased task; 'succeeded', or 'canceled' when a cancel was requested
 * meanwhile; TR001 when the lease is no longer held.
 */
Datum
trace_complete_task(PG_FUNCTION_ARGS)
{
	bool		null_args[6] = {false, false, false, true, false, true};
	bool		fence_nulls[3] = {PG_ARGISNULL(0), PG_ARGISNULL(1), PG_ARGISNULL(2)};
	bool		isnull;
	Datum		state;
	text	   *result;

	if (!PG_ARGISNULL(3))
		trace_check_size(PG_GETARG_DATUM(3), "result", trace_max_payload_bytes, "trace.max_payload_bytes");
	SPI_connect();
	if (fence_nulls[0] || fence_nulls[1] || fence_nulls[2])
		raise_lease_error(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), fence_nulls);
	run_ending(singleton(PG_GETARG_DATUM(0), false, INT8OID),
			   singleton(PG_GETARG_DATUM(1), false, INT4OID),
			   singleton(PG_GETARG_DATUM(2), false, UUIDOID),
			   (Datum) 0,
			   singleton(PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3), JSONBOID),
			   (Datum) 0, null_args);
	state = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		raise_lease_error(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), fence_nulls);
	result = (text *) SPI_datumTransfer(state, false, -1);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}

PG_FUNCTION_INFO_V1(trace_complete_tasks);

/*
 * trace.complete_tasks(task_ids, attempts, lease_tokens, results): a batch
 * in one transaction, each task fenced on its own; returns (task_id, status)
 * in input order, status 'succeeded', 'canceled' or 'stale'.
 */
Datum
trace_complete_tasks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo;
	bool		null_args[6] = {false, false, false, true, PG_ARGISNULL(3), true};
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		require_arg(PG_ARGISNULL(0), "task_ids");
		require_arg(PG_ARGISNULL(1), "attempts");
		require_arg(PG_ARGISNULL(2), "lease_tokens");
	}
	n = ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(0)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(0)));
	if (ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(1)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(1))) != n ||
		ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(2)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(2))) != n ||
		(!PG_ARGISNULL(3) &&
		 ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(3)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(3))) != n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("arguments \"task_ids\", \"attempts\", \"lease_tokens\" and \"results\" must have the same length")));
	if (n > MAX_BATCH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("at most %d tasks per call, got %d", MAX_BATCH, n)));
	if (!PG_ARGISNULL(3))
	{
		ArrayIterator it = array_create_iterator(PG_GETARG_ARRAYTYPE_P(3), 0, NULL);
		Datum		value;
		bool		isnull;

		while (array_iterate(it, &value, &isnull))
			if (!isnull)
				trace_check_size(value, "results", trace_max_payload_bytes, "trace.max_payload_bytes");
		array_free_iterator(it);
	}
	if (n == 0)
		return (Datum) 0;

	SPI_connect();
	run_ending(PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), (Datum) 0,
			   PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3), (Datum) 0, null_args);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		Datum		row[2];
		bool		isnull[2];

		heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, row, isnull);
		if (isnull[1])
		{
			row[1] = CStringGetTextDatum("stale");
			isnull[1] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, row, isnull);
	}
	SPI_finish();
	return (Datum) 0;
}
