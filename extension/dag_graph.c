/*-------------------------------------------------------------------------
 * dag_graph.c
 *		Checks that span the jobs of a DAG.
 *
 * A DAG's datasets connect its jobs: a job consumes the datasets in its
 * inputs and produces those in its outputs.  This file checks that graph:
 * every dataset has one producer here, sources read nothing, each operator
 * has the inputs and outputs it needs, the jobs form no cycle, publish names
 * datasets of this DAG, and SQL placeholders name the job's inputs.  Whether
 * another DAG produces an input that no job here produces is for the
 * database to say (trace.validate_model).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/hsearch.h"

#include "dag_graph.h"

typedef struct Producer
{
	char		dataset[64];	/* hash key */
	int			job;			/* index in model->jobs */
	DatasetRef *ref;
} Producer;

/* Whether an operator is one of a NULL-terminated list. */
static bool
operator_in(const JobModel *job, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++)
		if (job->operator && strcmp(job->operator, names[i]) == 0)
			return true;
	return false;
}

/*
 * Finds the {{ name }} placeholders of a SQL query, in order.  Returns NIL
 * with *error set when a placeholder is malformed.
 */
List *
sql_placeholders(const char *query, char **error)
{
	List	   *names = NIL;
	const char *p = query;

	*error = NULL;
	while ((p = strstr(p, "{{")) != NULL)
	{
		const char *end = strstr(p + 2, "}}");
		const char *a,
				   *b;

		if (end == NULL)
		{
			*error = psprintf("unclosed placeholder \"{{\" at offset %d of the query",
							  (int) (p - query));
			return NIL;
		}
		for (a = p + 2; a < end && *a == ' '; a++)
			;
		for (b = end; b > a && b[-1] == ' '; b--)
			;
		if (a == b)
		{
			*error = psprintf("empty placeholder \"{{}}\" at offset %d of the query",
							  (int) (p - query));
			return NIL;
		}
		names = lappend(names, pnstrdup(a, b - a));
		p = end + 2;
	}
	return names;
}

/* Checks inputs and outputs against what each operator needs. */
static void
check_arity(const JobModel *job, DagReport *report)
{
	static const char *const one_input[] = {"aggregator", "splitter", NULL};
	static const char *const some_input[] = {"sql", "parquet_compact", "integrity_check",
	"alert_evaluate", "alert_route", NULL};
	static const char *const one_output[] = {"aggregator", "splitter", "sql", NULL};
	static const char *const some_output[] = {"block_follower", "range_ingest",
	"parquet_compact", "udf", NULL};
	char	   *path = psprintf("jobs.%s", job->name);
	int			inputs = list_length(job->inputs);
	int			outputs = list_length(job->outputs);

	if (strcmp(job->activation, "source") == 0 && inputs > 0)
		dag_error(report, psprintf("%s.inputs", path), job->line, job->col,
				  "job \"%s\" is a source and cannot have inputs", job->name);
	if (operator_in(job, one_input) && inputs != 1)
		dag_error(report, psprintf("%s.inputs", path), job->line, job->col,
				  "job \"%s\" (operator %s) needs exactly one input, has %d",
				  job->name, job->operator, inputs);
	if (operator_in(job, some_input) && inputs == 0)
		dag_error(report, psprintf("%s.inputs", path), job->line, job->col,
				  "job \"%s\" (operator %s) needs at least one input", job->name, job->operator);
	if (operator_in(job, one_output) && outputs != 1)
		dag_error(report, psprintf("%s.outputs", path), job->line, job->col,
				  "job \"%s\" (operator %s) needs exactly one output, has %d",
				  job->name, job->operator, outputs);
	if (operator_in(job, some_output) && outputs == 0)
		dag_error(report, psprintf("%s.outputs", path), job->line, job->col,
				  "job \"%s\" (operator %s) needs at least one output", job->name, job->operator);
	if (strcmp(job->activation, "source") != 0 && inputs == 0 && !job->has_trigger &&
		job->operator && job->operator[0] && !operator_in(job, some_output))
		dag_warning(report, path, job->line, job->col,
					"job \"%s\" has no inputs, no trigger and is not a source: only trace.trigger_job runs it",
					job->name);
}

/* Reports parquet outputs outside parquet_compact: not supported yet. */
static void
check_storage(const JobModel *job, DagReport *report)
{
	ListCell   *lc;
	int			i = 0;

	foreach(lc, job->outputs)
	{
		DatasetRef *ref = lfirst(lc);

		if (strcmp(ref->storage, "parquet") == 0 && strcmp(job->operator, "parquet_compact") != 0)
			dag_error(report, psprintf("jobs.%s.outputs[%d].storage", job->name, i),
					  ref->line, ref->col,
					  "only parquet_compact writes parquet outputs; %s writes postgres tables",
					  job->operator);
		i++;
	}
}

/* Checks a sql job's placeholders: well formed, and each one an input. */
static void
check_sql(const JobModel *job, DagReport *report)
{
	char	   *error;
	List	   *names;
	ListCell   *lc;
	char	   *path = psprintf("jobs.%s.config.query", job->name);

	if (job->query == NULL)
		return;
	names = sql_placeholders(job->query, &error);
	if (error != NULL)
	{
		dag_error(report, path, job->query_line, job->query_col, "%s", error);
		return;
	}
	foreach(lc, names)
	{
		char	   *name = lfirst(lc);
		bool		found = false;
		ListCell   *ic;

		foreach(ic, job->inputs)
			found |= (strcmp(((DatasetRef *) lfirst(ic))->dataset, name) == 0);
		if (!found)
			dag_error(report, path, job->query_line, job->query_col,
					  "placeholder {{%s}} is not an input of job \"%s\"", name, job->name);
	}
}

/*
 * Finds a cycle among the jobs with an iterative depth-first search and
 * reports it once, naming the jobs on it.
 */
static void
check_cycles(const DagModel *model, HTAB *producers, DagReport *report)
{
	int			n = list_length(model->jobs);
	int		   *color = palloc0(n * sizeof(int));	/* 0 new, 1 on stack, 2 done */
	int		   *stack = palloc(n * sizeof(int));
	int		   *next_input = palloc0(n * sizeof(int));
	int		   *parent = palloc(n * sizeof(int));

	for (int start = 0; start < n; start++)
	{
		int			depth = 0;

		if (color[start] != 0)
			continue;
		stack[depth++] = start;
		color[start] = 1;
		parent[start] = -1;
		while (depth > 0)
		{
			int			j = stack[depth - 1];
			JobModel   *job = list_nth(model->jobs, j);
			Producer   *p = NULL;

			/* walk from a job to the producers of its inputs */
			while (p == NULL && next_input[j] < list_length(job->inputs))
			{
				DatasetRef *in = list_nth(job->inputs, next_input[j]++);

				p = hash_search(producers, in->dataset, HASH_FIND, NULL);
			}
			if (p == NULL)
			{
				color[j] = 2;
				depth--;
				continue;
			}
			if (color[p->job] == 1)
			{
				StringInfoData cycle;
				JobModel   *closing = list_nth(model->jobs, p->job);

				initStringInfo(&cycle);
				appendStringInfoString(&cycle, closing->name);
				for (int k = j; k != p->job && k >= 0; k = parent[k])
					appendStringInfo(&cycle, " -> %s", ((JobModel *) list_nth(model->jobs, k))->name);
				appendStringInfo(&cycle, " -> %s", closing->name);
				dag_error(report, psprintf("jobs.%s.inputs", job->name), job->line, job->col,
						  "jobs form a cycle: %s (each job reads the output of the one before it)",
						  cycle.data);
				return;
			}
			if (color[p->job] == 0)
			{
				color[p->job] = 1;
				parent[p->job] = j;
				stack[depth++] = p->job;
			}
		}
	}
}

void
dag_graph_check(DagModel *model, DagReport *report)
{
	HASHCTL		ctl;
	HTAB	   *producers;
	ListCell   *lc;
	int			j = 0;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = 64;
	ctl.entrysize = sizeof(Producer);
	ctl.hcxt = CurrentMemoryContext;
	producers = hash_create("trace dag producers", 64, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/* one producer per dataset */
	foreach(lc, model->jobs)
	{
		JobModel   *job = lfirst(lc);
		ListCell   *oc;
		int			i = 0;

		foreach(oc, job->outputs)
		{
			DatasetRef *ref = lfirst(oc);
			bool		found;
			Producer   *p = hash_search(producers, ref->dataset, HASH_ENTER, &found);

			if (found)
				dag_error(report, psprintf("jobs.%s.outputs[%d]", job->name, i), ref->line, ref->col,
						  "dataset \"%s\" is produced by both job \"%s\" and job \"%s\"",
						  ref->dataset, ((JobModel *) list_nth(model->jobs, p->job))->name, job->name);
			else
			{
				p->job = j;
				p->ref = ref;
			}
			i++;
		}
		j++;
	}

	foreach(lc, model->jobs)
	{
		JobModel   *job = lfirst(lc);

		if (job->operator == NULL || job->operator[0] == '\0')
			continue;
		check_arity(job, report);
		check_storage(job, report);
		check_sql(job, report);
	}

	foreach(lc, model->publish)
	{
		DatasetRef *ref = lfirst(lc);

		if (hash_search(producers, ref->dataset, HASH_FIND, NULL) == NULL)
			dag_error(report, "publish", ref->line, ref->col,
					  "publish names dataset \"%s\", which no job of this DAG produces", ref->dataset);
	}
	check_cycles(model, producers, report);
	hash_destroy(producers);
}
