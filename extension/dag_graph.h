/*-------------------------------------------------------------------------
 * dag_graph.h
 *		Checks that span the jobs of a DAG (see dag_graph.c).
 *-------------------------------------------------------------------------
 */
#ifndef DAG_GRAPH_H
#define DAG_GRAPH_H

#include "dag_model.h"

extern void dag_graph_check(DagModel *model, DagReport *report);
extern List *sql_placeholders(const char *query, char **error);

#endif							/* DAG_GRAPH_H */
