/*
 * Diagram specs: the data model between "what was said" and "what is drawn".
 * A spec has a type (flowchart, timeline, mind map, hierarchy, sequence),
 * nodes, edges and groups, and every element carries the transcript time
 * span it came from, so a renderer can show it at the moment it is spoken
 * and a reader can jump back to it. Specs are built offline by
 * analyze/structure.h or by an LLM (then parsed with
 * hark_diagram_from_json), and a spec is always validated before it is laid
 * out or drawn: a broken diagram is never rendered. Written as
 * <name>.diagram.json (schema share/schemas/diagram.json, docs/DIAGRAM.md).
 * All strings are heap-owned UTF-8 and belong to the spec.
 */
#ifndef HARK_RENDER_DIAGRAM_H
#define HARK_RENDER_DIAGRAM_H

#include <stddef.h>

#include <jansson.h>

enum hark_diagram_type {
	HARK_DIAGRAM_FLOWCHART = 0, /* steps and decisions, directed */
	HARK_DIAGRAM_TIMELINE = 1,  /* dated or ordered events on an axis */
	HARK_DIAGRAM_MINDMAP = 2,   /* a tree of topics around one root */
	HARK_DIAGRAM_HIERARCHY = 3, /* reporting / containment, a tree or DAG */
	HARK_DIAGRAM_SEQUENCE = 4,  /* messages between named participants, in order */
	HARK_DIAGRAM_N_TYPES = 5,
};

/* Caps a valid spec respects (larger inputs are summarised or paginated by
 * the builder, never drawn as a hairball). */
#define HARK_DIAGRAM_MAX_NODES 60
#define HARK_DIAGRAM_MAX_EDGES 120
#define HARK_DIAGRAM_MAX_GROUPS 16
#define HARK_DIAGRAM_MAX_LABEL 200 /* bytes per label */

/* "flowchart", "timeline", "mindmap", "hierarchy", "sequence"; "unknown". */
const char *hark_diagram_type_name(int type);

/* Parses a type name (case-insensitive; "mind-map"/"mind_map" accepted) into
 * *out. HARK_ERR_INVALID_ARG for anything else (including "auto"). */
int hark_diagram_type_parse(const char *name, int *out);

/* Where an element was said. */
struct hark_diagram_span {
	double start_s; /* seconds from the start of the audio; < 0 = unknown */
	double end_s;   /* < 0 = unknown */
	long turn;      /* speaker turn index; -1 = unknown */
};

struct hark_diagram_node {
	char *id;        /* unique within the spec, [A-Za-z0-9_-]{1,32} */
	char *label;     /* 1..HARK_DIAGRAM_MAX_LABEL bytes, never NULL */
	char *kind;      /* by type: flowchart "start" | "end" | "step" | "decision";
			  * timeline "event"; mindmap "root" | "topic" | "subtopic";
			  * hierarchy "unit" | "person"; sequence "participant" */
	char *group;     /* group id or NULL */
	char *date;      /* timeline: "YYYY-MM-DD" when known, else NULL */
	double order;    /* timeline: position on the axis (days since 1970 when
			  * dated, else the event's rank); other types: 0 */
	struct hark_diagram_span span;
};

struct hark_diagram_edge {
	char *from;      /* node ids */
	char *to;
	char *label;     /* NULL or 1..HARK_DIAGRAM_MAX_LABEL bytes ("yes", "no",
			  * a message for sequences) */
	long seq;        /* sequence: message order 0.. (unique, increasing with
			  * time); other types: -1 */
	struct hark_diagram_span span;
};

struct hark_diagram_group {
	char *id;
	char *label;
};

struct hark_diagram {
	int type;        /* enum hark_diagram_type */
	char *title;     /* never NULL once built */
	char *source;    /* input name or NULL */
	double duration_s; /* audio length; < 0 = unknown */
	struct hark_diagram_node *nodes;   size_t n_nodes;
	struct hark_diagram_edge *edges;   size_t n_edges;
	struct hark_diagram_group *groups; size_t n_groups;
	int page;        /* 1-based page when a long input was paginated, else 1 */
	int pages;       /* total pages (>= 1) */
};

/* Frees everything d owns and zeroes it. NULL is a no-op. */
void hark_diagram_clear(struct hark_diagram *d);

/*
 * Appends a node / edge / group (strings copied; NULL optional strings stay
 * NULL). Errors: HARK_ERR_LIMIT past the caps, HARK_ERR_NOMEM. They do not
 * validate; call hark_diagram_validate when the spec is complete.
 */
int hark_diagram_add_node(struct hark_diagram *d, const char *id, const char *label,
			  const char *kind, const char *group, const struct hark_diagram_span *span);
int hark_diagram_add_edge(struct hark_diagram *d, const char *from, const char *to,
			  const char *label, long seq, const struct hark_diagram_span *span);
int hark_diagram_add_group(struct hark_diagram *d, const char *id, const char *label);

/*
 * Checks d completely: a known type, a title, 1..MAX nodes, unique well-formed
 * ids, labels non-empty valid UTF-8 within the cap, kinds allowed for the
 * type, edges between existing distinct nodes, groups existing, finite
 * times with end >= start, and the type's shape rules: flowchart has exactly
 * one "start", decisions have >= 2 outgoing edges; timeline has no edges
 * other than consecutive-order links and every node an order; mind map is a
 * tree with one "root" reaching every node; hierarchy has no cycle; sequence
 * edges join "participant" nodes with unique increasing seq. Returns 0 or
 * HARK_ERR_FORMAT with the first violation in err (errlen bytes), e.g.
 * "edges[3].to: no node \"n9\"".
 */
int hark_diagram_validate(const struct hark_diagram *d, char *err, size_t errlen);

/*
 * The spec as JSON (new reference; NULL when out of memory): {"type",
 * "title", "source", "duration", "page", "pages", "nodes": [{id, label,
 * kind, group, date, order, start, end, turn}], "edges": [{from, to, label,
 * seq, start, end, turn}], "groups": [{id, label}]}; unknown values are null.
 */
json_t *hark_diagram_to_json(const struct hark_diagram *d);

/* Reads a spec (what hark_diagram_to_json writes; also an LLM's answer) into
 * *out (caller clears). Does not validate. HARK_ERR_FORMAT (err names the
 * member), HARK_ERR_LIMIT (over the caps), HARK_ERR_NOMEM. */
int hark_diagram_from_json(const json_t *j, struct hark_diagram *out, char *err, size_t errlen);

#endif /* HARK_RENDER_DIAGRAM_H */
