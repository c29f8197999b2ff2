/*-------------------------------------------------------------------------
 * fuzz_dag.c
 *		libFuzzer target: the DAG loader (extension/yaml_tree.c, dag_report.c,
 *		dag_model.c, dag_graph.c, cron.c, compiled unchanged) on arbitrary
 *		bytes, with pg_shim.c standing in for the backend.
 *
 * Each input is loaded as trace.validate_dag / deploy_dag would load it, and
 * turned into JSON when it is valid.  Inputs that look like a cron line are
 * also parsed as one and their next three fire times computed, checking that
 * each is later than the last, is a slot of the expression, and that no slot
 * in the day before it was skipped.  An ERROR raised by the code under test
 * is caught, as the backend would (the statement fails, the server lives).
 *
 * FUZZ_DAG_VERBOSE=1 prints the problems, the JSON and any ERROR: handy to
 * replay a single input (./fuzz_dag crash-...).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "cron.h"
#include "dag_model.h"

#undef printf
#undef fprintf

extern void pg_shim_reset(void);
extern const char *pg_shim_last_error(void);

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool verbose;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	verbose = getenv("FUZZ_DAG_VERBOSE") != NULL;
	return 0;
}

/* Whether instant t is a slot of spec in zone tz (Vixie cron's day rule). */
static bool
cron_matches(const CronSpec *spec, pg_tz *tz, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			offset;
	bool		dom,
				dow;

	if (timestamp2tm(t, &offset, &tm, &fsec, NULL, tz) != 0)
		abort();
	if (tm.tm_sec != 0 || fsec != 0 ||
		!((spec->minutes >> tm.tm_min) & 1) || !((spec->hours >> tm.tm_hour) & 1) ||
		!((spec->months >> tm.tm_mon) & 1))
		return false;
	dom = (spec->days >> tm.tm_mday) & 1;
	dow = (spec->weekdays >> j2day(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday))) & 1;
	return spec->days_restricted && spec->weekdays_restricted ? dom || dow : dom && dow;
}

static void
fuzz_cron(const uint8_t *data, size_t size)
{
	char	   *expr = pnstrdup((const char *) data, size);
	pg_tz	   *tz = pg_tzset(size % 2 ? "Asia/Kolkata" : "UTC");
	uint64		hash = UINT64CONST(14695981039346656037);
	TimestampTz after;
	CronSpec	spec;
	char		err[256];

	if (!cron_parse(expr, &spec, err, sizeof(err)))
		return;
	/* start from an instant in 1950-2150 that depends on the input */
	for (size_t i = 0; i < size; i++)
		hash = (hash ^ data[i]) * UINT64CONST(1099511628211);
	after = (TimestampTz) (hash % (INT64CONST(200) * 365 * SECS_PER_DAY)) * USECS_PER_SEC
		- INT64CONST(50) * 365 * USECS_PER_DAY;
	for (int n = 0; n < 3; n++)
	{
		TimestampTz next = cron_next(&spec, tz, after);

		if (next == DT_NOEND)
			return;
		if (next <= after || !cron_matches(&spec, tz, next))
		{
			fprintf(stderr, "cron_next(\"%s\", " INT64_FORMAT ") = " INT64_FORMAT
					": not a later slot\n", expr, after, next);
			abort();
		}
		for (TimestampTz t = next - USECS_PER_MINUTE;
			 t > after && t > next - USECS_PER_DAY; t -= USECS_PER_MINUTE)
		{
			if (cron_matches(&spec, tz, t))
			{
				fprintf(stderr, "cron_next(\"%s\", " INT64_FORMAT ") = " INT64_FORMAT
						" skipped the slot " INT64_FORMAT "\n", expr, after, next, t);
				abort();
			}
		}
		after = next;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	PG_TRY();
	{
		DagReport	report = {NIL, 0};
		DagModel   *model = dag_model_load((const char *) data, size, &report);
		ListCell   *lc;

		if (model != NULL && report.errors == 0)
		{
			StringInfoData json;

			initStringInfo(&json);
			dag_model_to_json(model, &json);
			if (verbose)
				printf("%s\n", json.data);
		}
		if (verbose)
			foreach(lc, report.problems)
			{
				DagProblem *p = lfirst(lc);

				printf("%s %d:%d %s: %s\n", p->is_error ? "error" : "warning",
					   p->line, p->col, p->path, p->message);
			}
		if (size > 0 && size <= 100 && (isdigit(data[0]) || data[0] == '*' || data[0] == '@') &&
			memchr(data, '\n', size) == NULL && memchr(data, ':', size) == NULL)
			fuzz_cron(data, size);
	}
	PG_CATCH();
	{
		if (verbose)
			printf("ERROR: %s\n", pg_shim_last_error());
	}
	PG_END_TRY();
	pg_shim_reset();
	return 0;
}
