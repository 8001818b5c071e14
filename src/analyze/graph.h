/*
 * Knowledge graph of one meeting or of a corpus of meetings: entities
 * {id, name, type, aliases, mentions} and relations {source, target, type,
 * evidence}, filled by the offline extractor (analyze/entities.h) or the LLM
 * path (analyze/llm_minutes.h), then resolved: entities that name the same
 * thing are merged (within a meeting and across meetings) with every alias
 * and every mention kept as evidence, and relations are re-pointed and
 * de-duplicated. Written as <name>.graph.json / corpus.graph.json (schema in
 * share/schemas/graph.json, documented in docs/GRAPH.md), as GraphML and as
 * Neo4j-loadable CSV (neo4j-admin import headers).
 *
 * Resolution rules (hark_graph_resolve), applied to entities of compatible
 * types (equal types; "concept" is compatible with any type except person
 * and date, and the merged entity takes the more specific type):
 *   - normalized names are equal: case-folded, accents kept, punctuation
 *     and possessive "'s" removed, whitespace collapsed, a leading "the"
 *     dropped, person titles (mr, mrs, ms, dr, prof, hon, sir, madam) dropped, organisation
 *     suffixes (inc, corp, ltd, llc, co, gmbh, plc) dropped;
 *   - acronyms: an all-caps name of 2..8 letters equals the initials of a
 *     multi-word name ("WHO" = "World Health Organization", stop words such
 *     as "of", "the", "and", "for" may be skipped or kept);
 *   - people: "John Doe" = "John T. Doe" = "J. Doe" = "Doe, John" (same first
 *     and last name with middle names/initials ignored, or a first initial
 *     compatible with the first name); a lone first or last name ("John")
 *     merges into the full name when exactly one person entity of the same
 *     graph has it (ambiguous ones stay separate);
 *   - plural/singular of a final word ("budgets" = "budget").
 * The canonical name is the longest full form (ties: most mentions, then
 * byte order); every other surface form becomes an alias. Ids are
 * "<type>:<slug of canonical name>" with a numeric suffix on collisions, so
 * they are stable across runs for the same input.
 */
#ifndef HARK_ANALYZE_GRAPH_H
#define HARK_ANALYZE_GRAPH_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define HARK_GRAPH_MAX_ENTITIES ((size_t)1000000)
#define HARK_GRAPH_MAX_RELATIONS ((size_t)4000000)
#define HARK_GRAPH_MAX_MENTIONS ((size_t)256) /* kept per entity / relation; more are counted */

/* Entity types (the extraction schemas use the same names). */
#define HARK_GRAPH_TYPES "person", "organization", "project", "product", "place", "date", "concept"

/* One piece of evidence: where an entity or relation was mentioned. */
struct hark_graph_mention {
	char *meeting;    /* meeting name; never NULL */
	char *surface;    /* the name as written there (entities) or NULL */
	char *quote;      /* verbatim quote, NULL = none */
	long chunk;       /* chunk index in the meeting, -1 = unknown */
	long turn;        /* turn index, -1 = unknown */
	double start_s;   /* seconds, < 0 = unknown */
};

struct hark_graph_entity {
	char *id;         /* "<type>:<slug>"; set by hark_graph_resolve (NULL before) */
	char *name;       /* canonical name */
	char *type;       /* one of HARK_GRAPH_TYPES */
	char **aliases;   /* other surface forms, sorted, no duplicates */
	size_t n_aliases;
	struct hark_graph_mention *mentions; /* at most HARK_GRAPH_MAX_MENTIONS kept */
	size_t n_mentions;
	size_t mention_count; /* all mentions, including those not kept */
	char **meetings;  /* distinct meetings it appears in, sorted */
	size_t n_meetings;
};

struct hark_graph_relation {
	size_t source;    /* index into entities */
	size_t target;    /* index into entities */
	char *type;       /* lowercase verb phrase ("works on") or "co_occurs" */
	double weight;    /* number of supporting mentions (co-occurrence count) */
	struct hark_graph_mention *evidence; /* at most HARK_GRAPH_MAX_MENTIONS kept */
	size_t n_evidence;
};

/* A graph (plain data; initialise with {0} and release with hark_graph_clear). */
struct hark_graph {
	struct hark_graph_entity *entities;
	size_t n_entities, cap_entities;
	struct hark_graph_relation *relations;
	size_t n_relations, cap_relations;
};

/* Frees everything g owns and zeroes it. NULL is a no-op. */
void hark_graph_clear(struct hark_graph *g);

/*
 * Adds one mention of an entity named name (type one of HARK_GRAPH_TYPES;
 * anything else becomes "concept"). An entity with the same type and the
 * same normalized name gets the mention (and the surface form as an alias
 * when it differs); otherwise a new entity is appended. m is copied
 * (m->surface defaults to name). *index_out (may be NULL) receives the
 * entity's index. Errors: HARK_ERR_INVALID_ARG (empty name), HARK_ERR_LIMIT,
 * HARK_ERR_NOMEM.
 */
int hark_graph_add_entity(struct hark_graph *g, const char *name, const char *type,
			  const struct hark_graph_mention *m, size_t *index_out);

/*
 * Adds evidence for a relation source -[type]-> target between existing
 * entity indices (type is lowercased and trimmed; "co_occurs" relations are
 * undirected and stored with source < target). An existing relation with the
 * same endpoints and type gains weight 1 and the evidence; else a new one is
 * appended. ev may be NULL (weight only). Errors: HARK_ERR_INVALID_ARG
 * (bad index, empty type, source == target), HARK_ERR_LIMIT, HARK_ERR_NOMEM.
 */
int hark_graph_add_relation(struct hark_graph *g, size_t source, size_t target, const char *type,
			    const struct hark_graph_mention *ev);

/*
 * Appends every entity and relation of src to dst (copies; src untouched),
 * without resolving. Used to build the corpus graph from meeting graphs.
 */
int hark_graph_append(struct hark_graph *dst, const struct hark_graph *src);

/*
 * Merges the entities that name the same thing (rules above), re-points and
 * de-duplicates relations (self-loops created by a merge are dropped),
 * assigns ids, and sorts entities by (type, name) and relations by
 * (source id, type, target id). Idempotent. *merged_out (may be NULL)
 * receives how many entities were merged away. Errors: HARK_ERR_NOMEM.
 */
int hark_graph_resolve(struct hark_graph *g, size_t *merged_out);

/*
 * The normalized form of a name used for matching (heap; caller frees;
 * NULL when out of memory): see the rules above. Exposed for tests.
 */
char *hark_graph_normalize_name(const char *name, const char *type);

/* 1 when entity names a and b (both of type type) refer to the same thing
 * by the rules above (without the "unique in the graph" condition for lone
 * first names, which only hark_graph_resolve can check). */
int hark_graph_same_entity(const char *a, const char *b, const char *type);

/*
 * The graph as JSON (new reference; NULL when out of memory):
 * {"entities": [{id, name, type, aliases, mention_count, meetings,
 * mentions: [{meeting, surface, quote, chunk, turn, start}]}],
 * "relations": [{source, target, type, weight, evidence: [{meeting, quote,
 * chunk, turn, start}]}], "stats": {entities, relations}} with source/target
 * as entity ids. Call after hark_graph_resolve (ids must be set).
 */
json_t *hark_graph_to_json(const struct hark_graph *g);

/* Reads back what hark_graph_to_json wrote (appending to *out, which may be
 * non-empty). HARK_ERR_FORMAT (err says which member), HARK_ERR_NOMEM. */
int hark_graph_from_json(const json_t *j, struct hark_graph *out, char *err, size_t errlen);

/* GraphML (nodes with name/type/aliases/mention_count, edges with type/weight)
 * to f. HARK_ERR_IO on a write error. XML special characters escaped. */
int hark_graph_write_graphml(const struct hark_graph *g, FILE *f);

/* Neo4j admin-import CSV: nodes ("id:ID,name,aliases:string[],mentions:int,
 * meetings:string[],:LABEL" with the type capitalised as label) to nodes and
 * relationships (":START_ID,:END_ID,:TYPE,weight:double,evidence" with the
 * type upper-snake-cased, e.g. WORKS_ON) to rels. RFC 4180 quoting; array
 * fields joined with ';'. HARK_ERR_IO on a write error. */
int hark_graph_write_neo4j_csv(const struct hark_graph *g, FILE *nodes, FILE *rels);

#endif /* HARK_ANALYZE_GRAPH_H */
