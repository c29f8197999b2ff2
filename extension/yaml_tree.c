/*-------------------------------------------------------------------------
 * yaml_tree.c
 *		The one YAML loader: libyaml events into a YamlNode tree.
 *
 * DAG files are small, plain documents, so the loader accepts exactly that
 * and refuses the rest before it can cost anything:
 *	 - at most YAML_MAX_BYTES of text, YAML_MAX_DEPTH levels of nesting,
 *	   YAML_MAX_NODES nodes and YAML_MAX_SCALAR bytes per scalar;
 *	 - one document; no anchors, aliases, merge keys or explicit tags (so an
 *	   alias bomb or a self-referencing alias is refused at its first '&');
 *	 - map keys are scalars, and unique (found by sorting, so a map with many
 *	   keys costs O(n log n), not O(n^2));
 *	 - the text is UTF-8 without NUL bytes (libyaml checks the encoding).
 * Parsing is iterative with an explicit stack: nesting cannot overflow the C
 * stack.  On any problem the tree is abandoned and NULL returned, with the
 * problem (and its line:column) in the report.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <yaml.h>

#include "yaml_tree.h"

/* Parser state: the stack of open collections, and what is left to spend. */
typedef struct YamlBuild
{
	YamlNode   *stack[YAML_MAX_DEPTH + 1];
	int			depth;
	int			nodes;
	YamlNode   *root;
	YamlNode   *pending_key;	/* a map key waiting for its value */
	DagReport  *report;
} YamlBuild;

/* Makes a node at an event's position (libyaml counts from 0). */
static YamlNode *
yaml_node_new(YamlKind kind, const yaml_mark_t *mark)
{
	YamlNode   *node = palloc0(sizeof(YamlNode));

	node->kind = kind;
	node->line = (int) mark->line + 1;
	node->col = (int) mark->column + 1;
	return node;
}

/* Appends a child (and its key, for maps) to a collection. */
static void
yaml_node_append(YamlNode *parent, YamlNode *key, YamlNode *child)
{
	if (parent->count == parent->capacity)
	{
		parent->capacity = parent->capacity ? parent->capacity * 2 : 8;
		parent->items = parent->items
			? repalloc(parent->items, parent->capacity * sizeof(YamlNode *))
			: palloc(parent->capacity * sizeof(YamlNode *));
		if (parent->kind == YAML_MAP)
			parent->keys = parent->keys
				? repalloc(parent->keys, parent->capacity * sizeof(YamlNode *))
				: palloc(parent->capacity * sizeof(YamlNode *));
	}
	if (parent->kind == YAML_MAP)
		parent->keys[parent->count] = key;
	parent->items[parent->count++] = child;
}

/*
 * Places a finished node: as the root, as a map key, as a map value or as a
 * sequence item.  Returns false (with a problem reported) when it cannot be.
 */
static bool
yaml_place(YamlBuild *b, YamlNode *node)
{
	YamlNode   *parent;

	if (++b->nodes > YAML_MAX_NODES)
	{
		dag_error(b->report, "", node->line, node->col,
				  "document has more than %d nodes", YAML_MAX_NODES);
		return false;
	}
	if (b->depth == 0)
	{
		b->root = node;
		return true;
	}
	parent = b->stack[b->depth - 1];
	if (parent->kind == YAML_SEQ)
	{
		yaml_node_append(parent, NULL, node);
		return true;
	}
	if (b->pending_key == NULL)
	{
		if (node->kind != YAML_SCALAR)
		{
			dag_error(b->report, "", node->line, node->col,
					  "a map key must be a plain string");
			return false;
		}
		b->pending_key = node;
		return true;
	}
	yaml_node_append(parent, b->pending_key, node);
	b->pending_key = NULL;
	return true;
}

/* Orders map keys by text, then by position, for duplicate detection. */
static int
yaml_key_cmp(const void *a, const void *b)
{
	const YamlNode *ka = *(YamlNode *const *) a;
	const YamlNode *kb = *(YamlNode *const *) b;
	int			c = strcmp(ka->value, kb->value);

	if (c != 0)
		return c;
	if (ka->line != kb->line)
		return ka->line - kb->line;
	return ka->col - kb->col;
}

/* Reports the second occurrence of any key that a map holds twice. */
static bool
yaml_check_unique_keys(YamlBuild *b, YamlNode *map)
{
	YamlNode  **sorted;
	bool		ok = true;

	if (map->count < 2)
		return true;
	sorted = palloc(map->count * sizeof(YamlNode *));
	memcpy(sorted, map->keys, map->count * sizeof(YamlNode *));
	qsort(sorted, map->count, sizeof(YamlNode *), yaml_key_cmp);
	for (int i = 1; i < map->count; i++)
	{
		if (strcmp(sorted[i - 1]->value, sorted[i]->value) == 0)
		{
			dag_error(b->report, "", sorted[i]->line, sorted[i]->col,
					  "duplicate key \"%s\" (first at line %d, column %d)",
					  sorted[i]->value, sorted[i - 1]->line, sorted[i - 1]->col);
			ok = false;
			break;
		}
	}
	pfree(sorted);
	return ok;
}

/* Refuses what DAG files never need: anchors, tags and merge keys. */
static bool
yaml_check_plain(YamlBuild *b, const yaml_event_t *ev, const yaml_char_t *anchor,
				 const yaml_char_t *tag, bool implicit)
{
	int			line = (int) ev->start_mark.line + 1;
	int			col = (int) ev->start_mark.column + 1;

	if (anchor != NULL)
	{
		dag_error(b->report, "", line, col,
				  "anchors (&%s) are not supported in DAG files", (const char *) anchor);
		return false;
	}
	if (tag != NULL && !implicit)
	{
		dag_error(b->report, "", line, col,
				  "explicit tags (%s) are not supported in DAG files", (const char *) tag);
		return false;
	}
	return true;
}

/* Handles one parser event; returns false to stop on a problem. */
static bool
yaml_handle_event(YamlBuild *b, yaml_event_t *ev)
{
	YamlNode   *node;

	switch (ev->type)
	{
		case YAML_STREAM_START_EVENT:
		case YAML_STREAM_END_EVENT:
		case YAML_DOCUMENT_END_EVENT:
		case YAML_NO_EVENT:
			return true;
		case YAML_DOCUMENT_START_EVENT:
			if (b->root != NULL)
			{
				dag_error(b->report, "", (int) ev->start_mark.line + 1,
						  (int) ev->start_mark.column + 1,
						  "a DAG file holds one YAML document, found a second");
				return false;
			}
			return true;
		case YAML_ALIAS_EVENT:
			dag_error(b->report, "", (int) ev->start_mark.line + 1,
					  (int) ev->start_mark.column + 1,
					  "aliases (*%s) are not supported in DAG files",
					  (const char *) ev->data.alias.anchor);
			return false;
		case YAML_SCALAR_EVENT:
			if (!yaml_check_plain(b, ev, ev->data.scalar.anchor, ev->data.scalar.tag,
								  ev->data.scalar.plain_implicit || ev->data.scalar.quoted_implicit))
				return false;
			if (ev->data.scalar.length > YAML_MAX_SCALAR)
			{
				dag_error(b->report, "", (int) ev->start_mark.line + 1,
						  (int) ev->start_mark.column + 1,
						  "a value is longer than %d bytes", YAML_MAX_SCALAR);
				return false;
			}
			if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL)
			{
				dag_error(b->report, "", (int) ev->start_mark.line + 1,
						  (int) ev->start_mark.column + 1, "a value contains a NUL byte");
				return false;
			}
			node = yaml_node_new(YAML_SCALAR, &ev->start_mark);
			node->value = pnstrdup((const char *) ev->data.scalar.value, ev->data.scalar.length);
			node->plain = (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
			if (b->depth > 0 && b->stack[b->depth - 1]->kind == YAML_MAP &&
				b->pending_key == NULL && node->plain && strcmp(node->value, "<<") == 0)
			{
				dag_error(b->report, "", node->line, node->col,
						  "merge keys (<<) are not supported in DAG files");
				return false;
			}
			return yaml_place(b, node);
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			{
				bool		is_map = (ev->type == YAML_MAPPING_START_EVENT);

				if (!yaml_check_plain(b, ev,
									  is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor,
									  is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag,
									  is_map ? ev->data.mapping_start.implicit : ev->data.sequence_start.implicit))
					return false;
				if (b->depth >= YAML_MAX_DEPTH)
				{
					dag_error(b->report, "", (int) ev->start_mark.line + 1,
							  (int) ev->start_mark.column + 1,
							  "nesting is deeper than %d levels", YAML_MAX_DEPTH);
					return false;
				}
				node = yaml_node_new(is_map ? YAML_MAP : YAML_SEQ, &ev->start_mark);
				if (!yaml_place(b, node))
					return false;
				/* a collection used as a key was refused by yaml_place */
				b->stack[b->depth++] = node;
				return true;
			}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			node = b->stack[--b->depth];
			if (node->kind == YAML_MAP)
				return yaml_check_unique_keys(b, node);
			return true;
	}
	return true;
}

/*
 * Parses text into a tree allocated in the current memory context.  Returns
 * NULL when the text is not a DAG-shaped YAML document, with the reason in
 * report.  libyaml's own memory is released on every path, errors included.
 */
YamlNode *
yaml_tree_parse(const char *text, size_t len, DagReport *report)
{
	yaml_parser_t parser;
	YamlBuild  *b;
	YamlNode   *volatile result = NULL;

	if (len > YAML_MAX_BYTES)
	{
		dag_error(report, "", 1, 1, "document is larger than %d bytes", YAML_MAX_BYTES);
		return NULL;
	}
	if (memchr(text, '\0', len) != NULL)
	{
		dag_error(report, "", 1, 1, "document contains a NUL byte");
		return NULL;
	}
	b = palloc0(sizeof(YamlBuild));
	b->report = report;
	if (!yaml_parser_initialize(&parser))
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not initialize the YAML parser")));
	yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
	yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);

	PG_TRY();
	{
		bool		done = false;
		bool		ok = true;

		while (!done && ok)
		{
			yaml_event_t ev;

			if (!yaml_parser_parse(&parser, &ev))
			{
				const yaml_mark_t *mark = parser.problem ? &parser.problem_mark : &parser.mark;

				dag_error(report, "", (int) mark->line + 1, (int) mark->column + 1,
						  "invalid YAML: %s%s%s",
						  parser.problem ? parser.problem : "syntax error",
						  parser.context ? " " : "",
						  parser.context ? parser.context : "");
				ok = false;
				break;
			}
			done = (ev.type == YAML_STREAM_END_EVENT);
			ok = yaml_handle_event(b, &ev);
			yaml_event_delete(&ev);
		}
		if (ok && b->root == NULL)
		{
			dag_error(report, "", 1, 1, "document is empty");
			ok = false;
		}
		if (ok)
			result = b->root;
	}
	PG_FINALLY();
	{
		yaml_parser_delete(&parser);
	}
	PG_END_TRY();
	return result;
}

/* The value of a key in a map, or NULL. */
YamlNode *
yaml_map_get(const YamlNode *map, const char *key)
{
	if (map == NULL || map->kind != YAML_MAP)
		return NULL;
	for (int i = 0; i < map->count; i++)
		if (strcmp(map->keys[i]->value, key) == 0)
			return map->items[i];
	return NULL;
}

/*
 * Whether a plain scalar is a number that JSON can carry as one:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?.  Other YAML number forms
 * (0x10, .inf) stay strings.
 */
bool
yaml_scalar_is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (isdigit((unsigned char) *s))
			s++;
	else
		return false;
	if (*s == '.')
	{
		s++;
		if (!isdigit((unsigned char) *s))
			return false;
		while (isdigit((unsigned char) *s))
			s++;
	}
	if (*s == 'e' || *s == 'E')
	{
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!isdigit((unsigned char) *s))
			return false;
		while (isdigit((unsigned char) *s))
			s++;
	}
	return *s == '\0';
}
