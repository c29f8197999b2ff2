/*-------------------------------------------------------------------------
 * dag_sql.c
 *		trace.parse_dag: the loader's SQL face.
 *
 * Returns {"model": <model or null>, "problems": [...]} as jsonb.  The model
 * is given only when there is no error; the SQL side (trace.validate_dag,
 * trace.deploy_dag) adds the checks that need the database and acts on it.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "dag_model.h"

PG_FUNCTION_INFO_V1(trace_parse_dag);

/* Appends the problems as a JSON array, in the order they were found. */
static void
problems_to_json(const DagReport *report, StringInfo out)
{
	ListCell   *lc;
	bool		first = true;

	appendStringInfoChar(out, '[');
	foreach(lc, report->problems)
	{
		DagProblem *p = lfirst(lc);

		appendStringInfo(out, "%s{\"severity\": \"%s\", \"path\": ", first ? "" : ", ",
						 p->is_error ? "error" : "warning");
		escape_json(out, p->path);
		appendStringInfo(out, ", \"line\": %d, \"col\": %d, \"message\": ", p->line, p->col);
		escape_json(out, p->message);
		appendStringInfoChar(out, '}');
		first = false;
	}
	appendStringInfoChar(out, ']');
}

Datum
trace_parse_dag(PG_FUNCTION_ARGS)
{
	text	   *yaml = PG_GETARG_TEXT_PP(0);
	DagReport	report = {NIL, 0};
	DagModel   *model;
	StringInfoData out;

	model = dag_model_load(VARDATA_ANY(yaml), VARSIZE_ANY_EXHDR(yaml), &report);
	initStringInfo(&out);
	appendStringInfoString(&out, "{\"model\": ");
	if (model != NULL && report.errors == 0)
		dag_model_to_json(model, &out);
	else
		appendStringInfoString(&out, "null");
	appendStringInfoString(&out, ", \"problems\": ");
	problems_to_json(&report, &out);
	appendStringInfoChar(&out, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
