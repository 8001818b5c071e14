/*
 * Diagram specs (see diagram.h for the contract): type names, the append
 * builders with their caps, the validator and the JSON reader and writer.
 * Validation runs in a fixed order so the first violation reported is
 * predictable: the spec header (type, title, source, duration, pages,
 * counts), then groups, nodes, edges, node kinds and finally the shape rules
 * of the type. Every check works on at most HARK_DIAGRAM_MAX_NODES nodes and
 * HARK_DIAGRAM_MAX_EDGES edges (the counts are checked first), so the graph
 * walks use fixed-size arrays, never recursion or the heap.
 */
#include "render/diagram.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/errbuf.h"
#include "util/textnorm.h"

#define MAX_ID 32

static const char *const type_names[HARK_DIAGRAM_N_TYPES] = {"flowchart", "timeline", "mindmap",
							     "hierarchy", "sequence"};

/* Allowed node kinds per type, NULL-terminated. */
static const char *const kinds_flowchart[] = {"start", "end", "step", "decision", NULL};
static const char *const kinds_timeline[] = {"event", NULL};
static const char *const kinds_mindmap[] = {"root", "topic", "subtopic", NULL};
static const char *const kinds_hierarchy[] = {"unit", "person", NULL};
static const char *const kinds_sequence[] = {"participant", NULL};
static const char *const *const type_kinds[HARK_DIAGRAM_N_TYPES] = {
	kinds_flowchart, kinds_timeline, kinds_mindmap, kinds_hierarchy, kinds_sequence};

const char *hark_diagram_type_name(int type)
{
	if (type < 0 || type >= HARK_DIAGRAM_N_TYPES)
		return "unknown";
	return type_names[type];
}

static int ascii_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Case-insensitive (ASCII only, locale-free) equality. */
static int ieq(const char *a, const char *b)
{
	while (*a && *b) {
		if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
			return 0;
		a++;
		b++;
	}
	return *a == *b;
}

int hark_diagram_type_parse(const char *name, int *out)
{
	if (!name || !out)
		return HARK_ERR_INVALID_ARG;
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
		if (ieq(name, type_names[t])) {
			*out = t;
			return HARK_OK;
		}
	}
	if (ieq(name, "mind-map") || ieq(name, "mind_map")) {
		*out = HARK_DIAGRAM_MINDMAP;
		return HARK_OK;
	}
	return HARK_ERR_INVALID_ARG;
}

/* ------------------------------------------------------------ building --- */

static char *dup_opt(const char *s, int *fail)
{
	char *r;

	if (!s)
		return NULL;
	r = strdup(s);
	if (!r)
		*fail = 1;
	return r;
}

static void node_free(struct hark_diagram_node *n)
{
	free(n->id);
	free(n->label);
	free(n->kind);
	free(n->group);
	free(n->date);
	memset(n, 0, sizeof(*n));
}

static void edge_free(struct hark_diagram_edge *e)
{
	free(e->from);
	free(e->to);
	free(e->label);
	memset(e, 0, sizeof(*e));
}

static void group_free(struct hark_diagram_group *g)
{
	free(g->id);
	free(g->label);
	memset(g, 0, sizeof(*g));
}

void hark_diagram_clear(struct hark_diagram *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_nodes && d->nodes; i++)
		node_free(&d->nodes[i]);
	for (size_t i = 0; i < d->n_edges && d->edges; i++)
		edge_free(&d->edges[i]);
	for (size_t i = 0; i < d->n_groups && d->groups; i++)
		group_free(&d->groups[i]);
	free(d->nodes);
	free(d->edges);
	free(d->groups);
	free(d->title);
	free(d->source);
	memset(d, 0, sizeof(*d));
}

static const struct hark_diagram_span unknown_span = {-1.0, -1.0, -1};

/* Makes room for one more element in *arr (n used, elements of sz bytes,
 * at most cap). The array is reallocated to exactly n + 1 elements: the caps
 * keep that to a few hundred small reallocations, and it stays correct when
 * a caller trims n or supplies its own malloc'd array. */
static int grow(void **arr, size_t n, size_t sz, size_t cap)
{
	void *p;

	if (n >= cap)
		return HARK_ERR_LIMIT;
	p = realloc(*arr, (n + 1) * sz);
	if (!p)
		return HARK_ERR_NOMEM;
	*arr = p;
	return HARK_OK;
}

int hark_diagram_add_node(struct hark_diagram *d, const char *id, const char *label,
			  const char *kind, const char *group, const struct hark_diagram_span *span)
{
	struct hark_diagram_node n;
	int fail = 0, rc;

	if (!d || !id || !label || !kind)
		return HARK_ERR_INVALID_ARG;
	if (d->n_nodes >= HARK_DIAGRAM_MAX_NODES || strlen(label) > HARK_DIAGRAM_MAX_LABEL)
		return HARK_ERR_LIMIT;
	rc = grow((void **)&d->nodes, d->n_nodes, sizeof(*d->nodes), HARK_DIAGRAM_MAX_NODES);
	if (rc)
		return rc;
	memset(&n, 0, sizeof(n));
	n.id = dup_opt(id, &fail);
	n.label = dup_opt(label, &fail);
	n.kind = dup_opt(kind, &fail);
	n.group = dup_opt(group, &fail);
	n.date = NULL;
	n.order = 0.0;
	n.span = span ? *span : unknown_span;
	if (fail) {
		node_free(&n);
		return HARK_ERR_NOMEM;
	}
	d->nodes[d->n_nodes++] = n;
	return HARK_OK;
}

int hark_diagram_add_edge(struct hark_diagram *d, const char *from, const char *to,
			  const char *label, long seq, const struct hark_diagram_span *span)
{
	struct hark_diagram_edge e;
	int fail = 0, rc;

	if (!d || !from || !to)
		return HARK_ERR_INVALID_ARG;
	if (d->n_edges >= HARK_DIAGRAM_MAX_EDGES ||
	    (label && strlen(label) > HARK_DIAGRAM_MAX_LABEL))
		return HARK_ERR_LIMIT;
	rc = grow((void **)&d->edges, d->n_edges, sizeof(*d->edges), HARK_DIAGRAM_MAX_EDGES);
	if (rc)
		return rc;
	memset(&e, 0, sizeof(e));
	e.from = dup_opt(from, &fail);
	e.to = dup_opt(to, &fail);
	e.label = dup_opt(label, &fail);
	e.seq = seq;
	e.span = span ? *span : unknown_span;
	if (fail) {
		edge_free(&e);
		return HARK_ERR_NOMEM;
	}
	d->edges[d->n_edges++] = e;
	return HARK_OK;
}

int hark_diagram_add_group(struct hark_diagram *d, const char *id, const char *label)
{
	struct hark_diagram_group g;
	int fail = 0, rc;

	if (!d || !id || !label)
		return HARK_ERR_INVALID_ARG;
	if (d->n_groups >= HARK_DIAGRAM_MAX_GROUPS || strlen(label) > HARK_DIAGRAM_MAX_LABEL)
		return HARK_ERR_LIMIT;
	rc = grow((void **)&d->groups, d->n_groups, sizeof(*d->groups), HARK_DIAGRAM_MAX_GROUPS);
	if (rc)
		return rc;
	g.id = dup_opt(id, &fail);
	g.label = dup_opt(label, &fail);
	if (fail) {
		group_free(&g);
		return HARK_ERR_NOMEM;
	}
	d->groups[d->n_groups++] = g;
	return HARK_OK;
}

/* ---------------------------------------------------------- validation --- */

/* Describes why id is not [A-Za-z0-9_-]{1,32}, or NULL when it is fine. */
static const char *id_problem(const char *id)
{
	size_t n;

	if (!id)
		return "missing";
	n = strlen(id);
	if (n == 0)
		return "empty";
	if (n > MAX_ID)
		return "longer than 32 bytes";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return "only A-Z, a-z, 0-9, '_' and '-' are allowed";
	}
	return NULL;
}

/* Why a text is not a label (non-empty, not only white space, valid UTF-8,
 * at most cap bytes), or NULL. */
static const char *text_problem(const char *s, size_t cap)
{
	size_t n;
	int blank = 1;

	if (!s)
		return "missing";
	n = strlen(s);
	if (n == 0)
		return "empty";
	if (n > cap)
		return "longer than the cap";
	if (!hark_textnorm_utf8_valid(s, n))
		return "not valid UTF-8";
	for (size_t i = 0; i < n && blank; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			blank = 0;
	if (blank)
		return "only white space";
	return NULL;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* 1 when s is a real calendar date written YYYY-MM-DD. */
static int date_ok(const char *s)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, day, lim;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return 0;
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	day = (s[8] - '0') * 10 + (s[9] - '0');
	if (m < 1 || m > 12 || day < 1)
		return 0;
	lim = mdays[m - 1] + (m == 2 && is_leap(y));
	return day <= lim;
}

static int fail_fmt(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_fmt(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return HARK_ERR_FORMAT;
}

/* Checks a span; prefix is e.g. "nodes[2]". */
static int span_check(const struct hark_diagram_span *sp, const char *prefix, char *err,
		      size_t errlen)
{
	if (!isfinite(sp->start_s))
		return fail_fmt(err, errlen, "%s.start: not a finite time", prefix);
	if (!isfinite(sp->end_s))
		return fail_fmt(err, errlen, "%s.end: not a finite time", prefix);
	if (sp->start_s >= 0 && sp->end_s >= 0 && sp->end_s < sp->start_s)
		return fail_fmt(err, errlen, "%s.end: %.3f s is before start %.3f s", prefix,
				sp->end_s, sp->start_s);
	if (sp->turn < -1)
		return fail_fmt(err, errlen, "%s.turn: %ld is negative (-1 = unknown)", prefix,
				sp->turn);
	return HARK_OK;
}

static int kind_allowed(int type, const char *kind)
{
	if (!kind)
		return 0;
	for (const char *const *k = type_kinds[type]; *k; k++)
		if (strcmp(*k, kind) == 0)
			return 1;
	return 0;
}

/* "a, b, c" list of the kinds allowed for type into buf. */
static void kinds_list(int type, char *buf, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (const char *const *k = type_kinds[type]; *k; k++) {
		int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", *k);
		if (w < 0 || (size_t)w >= n - used)
			return;
		used += (size_t)w;
	}
}

static size_t node_index(const struct hark_diagram *d, const char *id)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].id && strcmp(d->nodes[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

static int check_header(const struct hark_diagram *d, char *err, size_t errlen)
{
	const char *p;

	if (d->type < 0 || d->type >= HARK_DIAGRAM_N_TYPES)
		return fail_fmt(err, errlen, "type: unknown diagram type %d", d->type);
	p = text_problem(d->title, HARK_DIAGRAM_MAX_LABEL);
	if (p)
		return fail_fmt(err, errlen, "title: %s", p);
	if (d->source && !hark_textnorm_utf8_valid(d->source, strlen(d->source)))
		return fail_fmt(err, errlen, "source: not valid UTF-8");
	if (!isfinite(d->duration_s))
		return fail_fmt(err, errlen, "duration: not a finite time");
	if (d->pages < 1)
		return fail_fmt(err, errlen, "pages: %d, at least 1", d->pages);
	if (d->page < 1 || d->page > d->pages)
		return fail_fmt(err, errlen, "page: %d is outside 1..%d", d->page, d->pages);
	if (d->n_nodes == 0 || !d->nodes)
		return fail_fmt(err, errlen, "nodes: a diagram needs at least one node");
	if (d->n_nodes > HARK_DIAGRAM_MAX_NODES)
		return fail_fmt(err, errlen, "nodes: %zu nodes, at most %d", d->n_nodes,
				HARK_DIAGRAM_MAX_NODES);
	if (d->n_edges > HARK_DIAGRAM_MAX_EDGES)
		return fail_fmt(err, errlen, "edges: %zu edges, at most %d", d->n_edges,
				HARK_DIAGRAM_MAX_EDGES);
	if (d->n_edges && !d->edges)
		return fail_fmt(err, errlen, "edges: missing array");
	if (d->n_groups > HARK_DIAGRAM_MAX_GROUPS)
		return fail_fmt(err, errlen, "groups: %zu groups, at most %d", d->n_groups,
				HARK_DIAGRAM_MAX_GROUPS);
	if (d->n_groups && !d->groups)
		return fail_fmt(err, errlen, "groups: missing array");
	return HARK_OK;
}

static int check_groups(const struct hark_diagram *d, char *err, size_t errlen)
{
	for (size_t i = 0; i < d->n_groups; i++) {
		const struct hark_diagram_group *g = &d->groups[i];
		const char *p = id_problem(g->id);

		if (p)
			return fail_fmt(err, errlen, "groups[%zu].id: %s", i, p);
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->groups[j].id, g->id) == 0)
				return fail_fmt(err, errlen,
						"groups[%zu].id: duplicate id \"%s\" (also groups[%zu])",
						i, g->id, j);
		p = text_problem(g->label, HARK_DIAGRAM_MAX_LABEL);
		if (p)
			return fail_fmt(err, errlen, "groups[%zu].label: %s", i, p);
	}
	return HARK_OK;
}

static int check_nodes(const struct hark_diagram *d, char *err, size_t errlen)
{
	char prefix[32];

	for (size_t i = 0; i < d->n_nodes; i++) {
		const struct hark_diagram_node *n = &d->nodes[i];
		const char *p = id_problem(n->id);
		int found = 0, rc;

		if (p)
			return fail_fmt(err, errlen, "nodes[%zu].id: %s", i, p);
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->nodes[j].id, n->id) == 0)
				return fail_fmt(err, errlen,
						"nodes[%zu].id: duplicate id \"%s\" (also nodes[%zu])",
						i, n->id, j);
		p = text_problem(n->label, HARK_DIAGRAM_MAX_LABEL);
		if (p)
			return fail_fmt(err, errlen, "nodes[%zu].label: %s", i, p);
		if (n->group) {
			for (size_t g = 0; g < d->n_groups && !found; g++)
				found = strcmp(d->groups[g].id, n->group) == 0;
			if (!found)
				return fail_fmt(err, errlen, "nodes[%zu].group: no group \"%.40s\"", i,
						n->group);
		}
		if (n->date && !date_ok(n->date))
			return fail_fmt(err, errlen, "nodes[%zu].date: not a YYYY-MM-DD date", i);
		snprintf(prefix, sizeof(prefix), "nodes[%zu]", i);
		rc = span_check(&n->span, prefix, err, errlen);
		if (rc)
			return rc;
	}
	return HARK_OK;
}

/* Checks the edges and resolves their endpoints into ef / et (node
 * indexes). */
static int check_edges(const struct hark_diagram *d, size_t *ef, size_t *et, char *err,
		       size_t errlen)
{
	char prefix[32];

	for (size_t k = 0; k < d->n_edges; k++) {
		const struct hark_diagram_edge *e = &d->edges[k];
		const char *p;
		int rc;

		if (!e->from)
			return fail_fmt(err, errlen, "edges[%zu].from: missing", k);
		ef[k] = node_index(d, e->from);
		if (ef[k] == SIZE_MAX)
			return fail_fmt(err, errlen, "edges[%zu].from: no node \"%.40s\"", k, e->from);
		if (!e->to)
			return fail_fmt(err, errlen, "edges[%zu].to: missing", k);
		et[k] = node_index(d, e->to);
		if (et[k] == SIZE_MAX)
			return fail_fmt(err, errlen, "edges[%zu].to: no node \"%.40s\"", k, e->to);
		if (ef[k] == et[k])
			return fail_fmt(err, errlen, "edges[%zu].to: self edge on \"%s\"", k, e->to);
		if (e->label) {
			p = text_problem(e->label, HARK_DIAGRAM_MAX_LABEL);
			if (p)
				return fail_fmt(err, errlen, "edges[%zu].label: %s", k, p);
		}
		snprintf(prefix, sizeof(prefix), "edges[%zu]", k);
		rc = span_check(&e->span, prefix, err, errlen);
		if (rc)
			return rc;
		if (d->type == HARK_DIAGRAM_SEQUENCE) {
			const struct hark_diagram_node *a = &d->nodes[ef[k]], *b = &d->nodes[et[k]];

			if (!a->kind || strcmp(a->kind, "participant") != 0)
				return fail_fmt(err, errlen,
						"edges[%zu].from: \"%s\" is not a participant", k,
						a->id);
			if (!b->kind || strcmp(b->kind, "participant") != 0)
				return fail_fmt(err, errlen,
						"edges[%zu].to: \"%s\" is not a participant", k, b->id);
			if (e->seq < 0)
				return fail_fmt(err, errlen,
						"edges[%zu].seq: a message needs a seq >= 0", k);
			for (size_t j = 0; j < k; j++)
				if (d->edges[j].seq == e->seq)
					return fail_fmt(err, errlen,
							"edges[%zu].seq: repeated seq %ld (also "
							"edges[%zu])",
							k, e->seq, j);
		}
	}
	return HARK_OK;
}

static int check_kinds(const struct hark_diagram *d, char *err, size_t errlen)
{
	char list[96];

	for (size_t i = 0; i < d->n_nodes; i++) {
		const char *kind = d->nodes[i].kind;

		if (!kind_allowed(d->type, kind)) {
			kinds_list(d->type, list, sizeof(list));
			if (!kind)
				return fail_fmt(err, errlen, "nodes[%zu].kind: missing (%s: %s)", i,
						type_names[d->type], list);
			return fail_fmt(err, errlen, "nodes[%zu].kind: \"%.40s\" is not a %s kind (%s)",
					i, kind, type_names[d->type], list);
		}
	}
	return HARK_OK;
}

/* Index of the only node of kind k; reports none / a second one. */
static int single_kind(const struct hark_diagram *d, const char *k, size_t *out, char *err,
		       size_t errlen)
{
	size_t first = SIZE_MAX;

	for (size_t i = 0; i < d->n_nodes; i++) {
		if (strcmp(d->nodes[i].kind, k) != 0)
			continue;
		if (first != SIZE_MAX)
			return fail_fmt(err, errlen,
					"nodes[%zu].kind: a second \"%s\" node (first is nodes[%zu])", i,
					k, first);
		first = i;
	}
	if (first == SIZE_MAX)
		return fail_fmt(err, errlen, "nodes: a %s needs one \"%s\" node, found none",
				type_names[d->type], k);
	*out = first;
	return HARK_OK;
}

static int shape_flowchart(const struct hark_diagram *d, const size_t *ef, char *err,
			   size_t errlen)
{
	size_t start;
	int rc = single_kind(d, "start", &start, err, errlen);

	if (rc)
		return rc;
	for (size_t i = 0; i < d->n_nodes; i++) {
		size_t out = 0;

		if (strcmp(d->nodes[i].kind, "decision") != 0)
			continue;
		for (size_t k = 0; k < d->n_edges; k++)
			out += ef[k] == i;
		if (out < 2)
			return fail_fmt(err, errlen,
					"nodes[%zu]: decision \"%s\" has %zu outgoing edge%s, at "
					"least 2 needed",
					i, d->nodes[i].id, out, out == 1 ? "" : "s");
	}
	return HARK_OK;
}

static int shape_timeline(const struct hark_diagram *d, const size_t *ef, const size_t *et,
			  char *err, size_t errlen)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (!isfinite(d->nodes[i].order))
			return fail_fmt(err, errlen, "nodes[%zu].order: a timeline event needs an order",
					i);
	for (size_t k = 0; k < d->n_edges; k++) {
		double a = d->nodes[ef[k]].order, b = d->nodes[et[k]].order;

		if (!(b > a))
			return fail_fmt(err, errlen,
					"edges[%zu]: a timeline link goes forward (order %g -> %g)", k,
					a, b);
		for (size_t i = 0; i < d->n_nodes; i++) {
			double c = d->nodes[i].order;
			if (c > a && c < b)
				return fail_fmt(err, errlen,
						"edges[%zu]: links non-consecutive events (nodes[%zu] "
						"lies between)",
						k, i);
		}
	}
	return HARK_OK;
}

static int shape_mindmap(const struct hark_diagram *d, const size_t *ef, const size_t *et,
			 char *err, size_t errlen)
{
	size_t parent[HARK_DIAGRAM_MAX_NODES], parent_edge[HARK_DIAGRAM_MAX_NODES];
	unsigned char seen[HARK_DIAGRAM_MAX_NODES];
	size_t queue[HARK_DIAGRAM_MAX_NODES], head = 0, tail = 0, root;
	int rc = single_kind(d, "root", &root, err, errlen);

	if (rc)
		return rc;
	for (size_t i = 0; i < d->n_nodes; i++) {
		parent[i] = SIZE_MAX;
		parent_edge[i] = SIZE_MAX;
		seen[i] = 0;
	}
	for (size_t k = 0; k < d->n_edges; k++) {
		if (et[k] == root)
			return fail_fmt(err, errlen, "edges[%zu].to: an edge into the root \"%s\"", k,
					d->nodes[root].id);
		if (parent[et[k]] != SIZE_MAX)
			return fail_fmt(err, errlen,
					"edges[%zu].to: \"%s\" has a second parent (edges[%zu])", k,
					d->nodes[et[k]].id, parent_edge[et[k]]);
		parent[et[k]] = ef[k];
		parent_edge[et[k]] = k;
	}
	/* Breadth-first from the root over the children edges. */
	queue[tail++] = root;
	seen[root] = 1;
	while (head < tail) {
		size_t u = queue[head++];
		for (size_t k = 0; k < d->n_edges; k++) {
			if (ef[k] != u || seen[et[k]])
				continue;
			seen[et[k]] = 1;
			queue[tail++] = et[k];
		}
	}
	for (size_t i = 0; i < d->n_nodes; i++) {
		size_t v = i, steps = 0;

		if (seen[i])
			continue;
		/* Climb the parents: a cycle never ends at a parentless node. */
		while (parent[v] != SIZE_MAX && steps <= d->n_nodes) {
			v = parent[v];
			steps++;
		}
		if (parent[v] != SIZE_MAX)
			return fail_fmt(err, errlen,
					"nodes[%zu]: \"%s\" is on or under a cycle, not reachable from "
					"the root",
					i, d->nodes[i].id);
		return fail_fmt(err, errlen, "nodes[%zu]: \"%s\" is not reachable from the root \"%s\"",
				i, d->nodes[i].id, d->nodes[root].id);
	}
	return HARK_OK;
}

/* Iterative depth-first search with white / grey / black marks; an edge to a
 * grey node closes a cycle. Nodes and edges are visited in index order. */
static int shape_hierarchy(const struct hark_diagram *d, const size_t *ef, const size_t *et,
			   char *err, size_t errlen)
{
	unsigned char color[HARK_DIAGRAM_MAX_NODES]; /* 0 white, 1 grey, 2 black */
	size_t stack[HARK_DIAGRAM_MAX_NODES], next[HARK_DIAGRAM_MAX_NODES];
	size_t top;

	for (size_t i = 0; i < d->n_nodes; i++) {
		color[i] = 0;
		next[i] = 0;
	}
	for (size_t s = 0; s < d->n_nodes; s++) {
		if (color[s])
			continue;
		top = 0;
		stack[top++] = s;
		color[s] = 1;
		while (top > 0) {
			size_t u = stack[top - 1];
			size_t k = next[u];

			while (k < d->n_edges && ef[k] != u)
				k++;
			if (k == d->n_edges) {
				next[u] = k;
				color[u] = 2;
				top--;
				continue;
			}
			next[u] = k + 1;
			if (color[et[k]] == 1)
				return fail_fmt(err, errlen,
						"edges[%zu].to: \"%s\" -> \"%s\" closes a cycle", k,
						d->nodes[u].id, d->nodes[et[k]].id);
			if (color[et[k]] == 0) {
				color[et[k]] = 1;
				stack[top++] = et[k]; /* grey nodes are distinct: top <= n */
			}
		}
	}
	return HARK_OK;
}

/* Messages with known start times must not go back in time as seq grows. */
static int shape_sequence(const struct hark_diagram *d, char *err, size_t errlen)
{
	for (size_t k = 0; k < d->n_edges; k++) {
		const struct hark_diagram_edge *a = &d->edges[k];

		if (a->span.start_s < 0)
			continue;
		for (size_t j = 0; j < d->n_edges; j++) {
			const struct hark_diagram_edge *b = &d->edges[j];

			if (b->span.start_s < 0 || b->seq >= a->seq)
				continue;
			if (b->span.start_s > a->span.start_s)
				return fail_fmt(err, errlen,
						"edges[%zu].seq: seq %ld at %.3f s comes after seq %ld "
						"(edges[%zu]) at %.3f s",
						k, a->seq, a->span.start_s, b->seq, j,
						b->span.start_s);
		}
	}
	return HARK_OK;
}

int hark_diagram_validate(const struct hark_diagram *d, char *err, size_t errlen)
{
	size_t ef[HARK_DIAGRAM_MAX_EDGES], et[HARK_DIAGRAM_MAX_EDGES];
	int rc;

	if (!d) {
		hark_errbuf_set(err, errlen, "no diagram");
		return HARK_ERR_INVALID_ARG;
	}
	rc = check_header(d, err, errlen);
	if (!rc)
		rc = check_groups(d, err, errlen);
	if (!rc)
		rc = check_nodes(d, err, errlen);
	if (!rc)
		rc = check_edges(d, ef, et, err, errlen);
	if (!rc)
		rc = check_kinds(d, err, errlen);
	if (rc)
		return rc;
	switch (d->type) {
	case HARK_DIAGRAM_FLOWCHART:
		rc = shape_flowchart(d, ef, err, errlen);
		break;
	case HARK_DIAGRAM_TIMELINE:
		rc = shape_timeline(d, ef, et, err, errlen);
		break;
	case HARK_DIAGRAM_MINDMAP:
		rc = shape_mindmap(d, ef, et, err, errlen);
		break;
	case HARK_DIAGRAM_HIERARCHY:
		rc = shape_hierarchy(d, ef, et, err, errlen);
		break;
	default:
		rc = shape_sequence(d, err, errlen);
		break;
	}
	if (!rc && err && errlen)
		err[0] = '\0';
	return rc;
}

/* ---------------------------------------------------------------- JSON --- */

/* Sets key to v (stolen) in o; records a failure in *fail. */
static void put(json_t *o, const char *key, json_t *v, int *fail)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		*fail = 1;
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* Strings already checked as UTF-8 would pass json_string; an invalid one
 * (an unvalidated spec) is written as is so nothing is silently altered. */
static json_t *text_value(const char *s)
{
	if (!s)
		return json_null();
	return json_stringn_nocheck(s, strlen(s));
}

static json_t *time_or_null(double t)
{
	return (isfinite(t) && t >= 0) ? json_real(t) : json_null();
}

static void put_span(json_t *o, const struct hark_diagram_span *sp, int *fail)
{
	put(o, "start", time_or_null(sp->start_s), fail);
	put(o, "end", time_or_null(sp->end_s), fail);
	put(o, "turn", sp->turn >= 0 ? json_integer((json_int_t)sp->turn) : json_null(), fail);
}

json_t *hark_diagram_to_json(const struct hark_diagram *d)
{
	json_t *root = NULL, *nodes = NULL, *edges = NULL, *groups = NULL;
	int fail = 0;

	if (!d)
		return NULL;
	root = json_object();
	nodes = json_array();
	edges = json_array();
	groups = json_array();
	if (!root || !nodes || !edges || !groups) {
		fail = 1;
		goto out;
	}
	put(root, "type", json_string(hark_diagram_type_name(d->type)), &fail);
	put(root, "title", d->title ? text_value(d->title) : json_string(""), &fail);
	put(root, "source", text_value(d->source), &fail);
	put(root, "duration", time_or_null(d->duration_s), &fail);
	put(root, "page", json_integer(d->page), &fail);
	put(root, "pages", json_integer(d->pages), &fail);
	for (size_t i = 0; i < d->n_nodes && !fail; i++) {
		const struct hark_diagram_node *n = &d->nodes[i];
		json_t *o = json_object();

		if (!o || json_array_append_new(nodes, o) != 0) {
			fail = 1;
			break;
		}
		put(o, "id", str_or_null(n->id), &fail);
		put(o, "label", text_value(n->label), &fail);
		put(o, "kind", str_or_null(n->kind), &fail);
		put(o, "group", str_or_null(n->group), &fail);
		put(o, "date", str_or_null(n->date), &fail);
		put(o, "order", isfinite(n->order) ? json_real(n->order) : json_null(), &fail);
		put_span(o, &n->span, &fail);
	}
	for (size_t k = 0; k < d->n_edges && !fail; k++) {
		const struct hark_diagram_edge *e = &d->edges[k];
		json_t *o = json_object();

		if (!o || json_array_append_new(edges, o) != 0) {
			fail = 1;
			break;
		}
		put(o, "from", str_or_null(e->from), &fail);
		put(o, "to", str_or_null(e->to), &fail);
		put(o, "label", text_value(e->label), &fail);
		put(o, "seq", e->seq >= 0 ? json_integer((json_int_t)e->seq) : json_null(), &fail);
		put_span(o, &e->span, &fail);
	}
	for (size_t g = 0; g < d->n_groups && !fail; g++) {
		json_t *o = json_object();

		if (!o || json_array_append_new(groups, o) != 0) {
			fail = 1;
			break;
		}
		put(o, "id", str_or_null(d->groups[g].id), &fail);
		put(o, "label", text_value(d->groups[g].label), &fail);
	}
	if (!fail) {
		put(root, "nodes", nodes, &fail);
		nodes = NULL;
		put(root, "edges", edges, &fail);
		edges = NULL;
		put(root, "groups", groups, &fail);
		groups = NULL;
	}
out:
	json_decref(nodes);
	json_decref(edges);
	json_decref(groups);
	if (fail) {
		json_decref(root);
		return NULL;
	}
	return root;
}

/* ---- reading ---- */

struct reader {
	char *err;
	size_t errlen;
	char path[48]; /* "nodes[12]" */
};

static int rd_fail(struct reader *r, const char *member, const char *what)
{
	if (r->path[0])
		hark_errbuf_set(r->err, r->errlen, "%s.%s: %s", r->path, member, what);
	else
		hark_errbuf_set(r->err, r->errlen, "%s: %s", member, what);
	return HARK_ERR_FORMAT;
}

/* Reads member key of o as a string: *out borrowed (NULL when absent or null
 * and optional). */
static int rd_str(struct reader *r, const json_t *o, const char *key, int required,
		  const char **out)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return rd_fail(r, key, v ? "expected a string, got null" : "missing");
		return HARK_OK;
	}
	if (!json_is_string(v))
		return rd_fail(r, key, "expected a string");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return rd_fail(r, key, "contains a NUL character");
	*out = json_string_value(v);
	return HARK_OK;
}

/* A number or null / absent (then dflt). */
static int rd_num(struct reader *r, const json_t *o, const char *key, double dflt, double *out)
{
	const json_t *v = json_object_get(o, key);

	*out = dflt;
	if (!v || json_is_null(v))
		return HARK_OK;
	if (!json_is_number(v))
		return rd_fail(r, key, "expected a number");
	*out = json_number_value(v);
	return HARK_OK;
}

/* An integer within [lo, hi] or null / absent (then dflt). */
static int rd_int(struct reader *r, const json_t *o, const char *key, long lo, long hi,
		  long dflt, long *out)
{
	const json_t *v = json_object_get(o, key);
	json_int_t x;

	*out = dflt;
	if (!v || json_is_null(v))
		return HARK_OK;
	if (!json_is_integer(v))
		return rd_fail(r, key, "expected an integer");
	x = json_integer_value(v);
	if (x < lo || x > hi)
		return rd_fail(r, key, "out of range");
	*out = (long)x;
	return HARK_OK;
}

static int rd_span(struct reader *r, const json_t *o, struct hark_diagram_span *sp)
{
	int rc = rd_num(r, o, "start", -1.0, &sp->start_s);

	if (!rc)
		rc = rd_num(r, o, "end", -1.0, &sp->end_s);
	if (!rc)
		rc = rd_int(r, o, "turn", LONG_MIN, LONG_MAX, -1, &sp->turn);
	return rc;
}

/* Array member key (absent / null = empty when optional). */
static int rd_array(struct reader *r, const json_t *o, const char *key, int required,
		    size_t cap, const json_t **out)
{
	const json_t *v = json_object_get(o, key);
	char what[64];

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return rd_fail(r, key, v ? "expected an array, got null" : "missing");
		return HARK_OK;
	}
	if (!json_is_array(v))
		return rd_fail(r, key, "expected an array");
	if (json_array_size(v) > cap) {
		snprintf(what, sizeof(what), "%zu elements, at most %zu", json_array_size(v), cap);
		rd_fail(r, key, what);
		return HARK_ERR_LIMIT;
	}
	*out = v;
	return HARK_OK;
}

static int rd_label_cap(struct reader *r, const char *key, const char *s)
{
	if (s && strlen(s) > HARK_DIAGRAM_MAX_LABEL) {
		rd_fail(r, key, "longer than the label cap");
		return HARK_ERR_LIMIT;
	}
	return HARK_OK;
}

static int rd_node(struct reader *r, const json_t *o, struct hark_diagram *out)
{
	const char *id, *label, *kind, *group, *date;
	struct hark_diagram_span sp;
	double order;
	int rc;

	if (!json_is_object(o)) {
		hark_errbuf_set(r->err, r->errlen, "%s: expected an object", r->path);
		return HARK_ERR_FORMAT;
	}
	if ((rc = rd_str(r, o, "id", 1, &id)) || (rc = rd_str(r, o, "label", 1, &label)) ||
	    (rc = rd_str(r, o, "kind", 1, &kind)) || (rc = rd_str(r, o, "group", 0, &group)) ||
	    (rc = rd_str(r, o, "date", 0, &date)) ||
	    (rc = rd_num(r, o, "order", out->type == HARK_DIAGRAM_TIMELINE ? NAN : 0.0, &order)) ||
	    (rc = rd_span(r, o, &sp)) || (rc = rd_label_cap(r, "label", label)))
		return rc;
	rc = hark_diagram_add_node(out, id, label, kind, group, &sp);
	if (rc)
		return rc;
	out->nodes[out->n_nodes - 1].order = order;
	if (date) {
		out->nodes[out->n_nodes - 1].date = strdup(date);
		if (!out->nodes[out->n_nodes - 1].date)
			return HARK_ERR_NOMEM;
	}
	return HARK_OK;
}

static int rd_edge(struct reader *r, const json_t *o, struct hark_diagram *out)
{
	const char *from, *to, *label;
	struct hark_diagram_span sp;
	long seq;
	int rc;

	if (!json_is_object(o)) {
		hark_errbuf_set(r->err, r->errlen, "%s: expected an object", r->path);
		return HARK_ERR_FORMAT;
	}
	if ((rc = rd_str(r, o, "from", 1, &from)) || (rc = rd_str(r, o, "to", 1, &to)) ||
	    (rc = rd_str(r, o, "label", 0, &label)) ||
	    (rc = rd_int(r, o, "seq", LONG_MIN, LONG_MAX, -1, &seq)) ||
	    (rc = rd_span(r, o, &sp)) || (rc = rd_label_cap(r, "label", label)))
		return rc;
	return hark_diagram_add_edge(out, from, to, label, seq, &sp);
}

static int rd_group(struct reader *r, const json_t *o, struct hark_diagram *out)
{
	const char *id, *label;
	int rc;

	if (!json_is_object(o)) {
		hark_errbuf_set(r->err, r->errlen, "%s: expected an object", r->path);
		return HARK_ERR_FORMAT;
	}
	if ((rc = rd_str(r, o, "id", 1, &id)) || (rc = rd_str(r, o, "label", 1, &label)) ||
	    (rc = rd_label_cap(r, "label", label)))
		return rc;
	return hark_diagram_add_group(out, id, label);
}

int hark_diagram_from_json(const json_t *j, struct hark_diagram *out, char *err, size_t errlen)
{
	struct reader r = {err, errlen, ""};
	const json_t *nodes, *edges, *groups;
	const char *type, *title, *source;
	long page, pages;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	if (!j || !json_is_object(j)) {
		hark_errbuf_set(err, errlen, "(root): expected an object");
		return HARK_ERR_FORMAT;
	}
	if ((rc = rd_str(&r, j, "type", 1, &type)))
		goto out;
	if (hark_diagram_type_parse(type, &out->type) != HARK_OK) {
		hark_errbuf_set(err, errlen, "type: unknown diagram type \"%.40s\"", type);
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	if ((rc = rd_str(&r, j, "title", 1, &title)) || (rc = rd_str(&r, j, "source", 0, &source)) ||
	    (rc = rd_num(&r, j, "duration", -1.0, &out->duration_s)) ||
	    (rc = rd_int(&r, j, "page", INT_MIN, INT_MAX, 1, &page)) ||
	    (rc = rd_int(&r, j, "pages", INT_MIN, INT_MAX, 1, &pages)) ||
	    (rc = rd_array(&r, j, "nodes", 1, HARK_DIAGRAM_MAX_NODES, &nodes)) ||
	    (rc = rd_array(&r, j, "edges", 0, HARK_DIAGRAM_MAX_EDGES, &edges)) ||
	    (rc = rd_array(&r, j, "groups", 0, HARK_DIAGRAM_MAX_GROUPS, &groups)))
		goto out;
	out->page = (int)page;
	out->pages = (int)pages;
	out->title = strdup(title);
	if (!out->title || (source && !(out->source = strdup(source)))) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(groups); i++) {
		snprintf(r.path, sizeof(r.path), "groups[%zu]", i);
		if ((rc = rd_group(&r, json_array_get(groups, i), out)))
			goto out;
	}
	for (size_t i = 0; i < json_array_size(nodes); i++) {
		snprintf(r.path, sizeof(r.path), "nodes[%zu]", i);
		if ((rc = rd_node(&r, json_array_get(nodes, i), out)))
			goto out;
	}
	for (size_t i = 0; i < json_array_size(edges); i++) {
		snprintf(r.path, sizeof(r.path), "edges[%zu]", i);
		if ((rc = rd_edge(&r, json_array_get(edges, i), out)))
			goto out;
	}
out:
	if (rc) {
		if (rc == HARK_ERR_NOMEM)
			hark_errbuf_set(err, errlen, "out of memory");
		hark_diagram_clear(out);
	}
	return rc;
}
