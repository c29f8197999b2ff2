/*-------------------------------------------------------------------------
 * yaml_tree.h
 *		A YAML document as a tree of maps, sequences and scalars with their
 *		positions, built under hard limits.
 *-------------------------------------------------------------------------
 */
#ifndef YAML_TREE_H
#define YAML_TREE_H

#include "dag_report.h"

/* Limits on hostile input; each refusal names the limit. */
#define YAML_MAX_BYTES		(1024 * 1024)
#define YAML_MAX_DEPTH		32
#define YAML_MAX_NODES		100000
#define YAML_MAX_SCALAR		(64 * 1024)

typedef enum YamlKind
{
	YAML_SCALAR,
	YAML_MAP,
	YAML_SEQ
} YamlKind;

typedef struct YamlNode
{
	YamlKind	kind;
	int			line;			/* 1-based position of the node's start */
	int			col;
	char	   *value;			/* YAML_SCALAR: the text, NUL-terminated */
	bool		plain;			/* YAML_SCALAR: unquoted, so typed (int, bool...) */
	int			count;			/* YAML_MAP: pairs; YAML_SEQ: items */
	int			capacity;
	struct YamlNode **keys;		/* YAML_MAP: key scalars */
	struct YamlNode **items;	/* YAML_MAP: values; YAML_SEQ: items */
} YamlNode;

extern YamlNode *yaml_tree_parse(const char *text, size_t len, DagReport *report);
extern YamlNode *yaml_map_get(const YamlNode *map, const char *key);
extern bool yaml_scalar_is_number(const char *value);

#endif							/* YAML_TREE_H */
