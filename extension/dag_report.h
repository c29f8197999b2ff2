/*-------------------------------------------------------------------------
 * dag_report.h
 *		Problems found while loading a DAG: each with a path and a position.
 *
 * The loader never raises on bad input; it collects every problem it can
 * find so trace.validate_dag can list them all, and trace.deploy_dag raises
 * on the first.  Positions are 1-based line and column in the YAML text.
 *-------------------------------------------------------------------------
 */
#ifndef DAG_REPORT_H
#define DAG_REPORT_H

#include "postgres.h"
#include "nodes/pg_list.h"

typedef struct DagProblem
{
	bool		is_error;		/* error, or warning */
	char	   *path;			/* e.g. jobs.ranges.config.size */
	int			line;
	int			col;
	char	   *message;
} DagProblem;

typedef struct DagReport
{
	List	   *problems;		/* of DagProblem * */
	int			errors;
} DagReport;

extern void dag_report_add(DagReport *report, bool is_error, const char *path,
						   int line, int col, const char *fmt,...) pg_attribute_printf(6, 7);

#define dag_error(report, path, line, col, ...) \
	dag_report_add((report), true, (path), (line), (col), __VA_ARGS__)
#define dag_warning(report, path, line, col, ...) \
	dag_report_add((report), false, (path), (line), (col), __VA_ARGS__)

#endif							/* DAG_REPORT_H */
