/*-------------------------------------------------------------------------
 * dag_model.h
 *		A DAG file, validated: jobs, datasets, triggers, with positions.
 *-------------------------------------------------------------------------
 */
#ifndef DAG_MODEL_H
#define DAG_MODEL_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "dag_report.h"
#include "yaml_tree.h"

/* A dataset named in a job's inputs or outputs, where it was named. */
typedef struct DatasetRef
{
	char	   *dataset;
	char	   *storage;		/* outputs: postgres or parquet */
	int			line;
	int			col;
} DatasetRef;

typedef struct JobModel
{
	char	   *name;
	int			line;
	int			col;
	char	   *operator;
	int			operator_version;
	char	   *activation;		/* source or reactive */
	char	   *runtime;
	List	   *inputs;			/* of DatasetRef * */
	List	   *outputs;		/* of DatasetRef * */
	char	   *config_json;	/* normalized config, JSON text */
	char	   *query;			/* sql: the query text */
	int			query_line;
	int			query_col;
	bool		has_trigger;
	char	   *cron;
	char	   *timezone;
	char	   *catchup;
	int			max_attempts;
	int64		backoff_ms;
	int64		max_backoff_ms;
	int64		lease_ms;
	int64		timeout_ms;		/* -1: none */
	int			concurrency;	/* 0: unlimited */
	int			priority;
	bool		materialize;
	char	   *execution_strategy;
	char	   *description;
} JobModel;

typedef struct DagModel
{
	char	   *dag;
	char	   *description;
	List	   *jobs;			/* of JobModel * */
	List	   *publish;		/* of DatasetRef * */
} DagModel;

extern DagModel *dag_model_load(const char *text, size_t len, DagReport *report);
extern void dag_model_to_json(const DagModel *model, StringInfo out);

#endif							/* DAG_MODEL_H */
