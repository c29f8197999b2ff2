/*-------------------------------------------------------------------------
 * dag_report.c
 *		Collecting DAG problems (see dag_report.h).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "dag_report.h"

/* Appends one problem; the message is formatted into the current context. */
void
dag_report_add(DagReport *report, bool is_error, const char *path,
			   int line, int col, const char *fmt,...)
{
	DagProblem *p = palloc0(sizeof(DagProblem));
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	p->is_error = is_error;
	p->path = pstrdup(path ? path : "");
	p->line = line;
	p->col = col;
	p->message = buf.data;
	report->problems = lappend(report->problems, p);
	if (is_error)
		report->errors++;
}
