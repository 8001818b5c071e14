/*
 * Tests for render/layout: label wrapping (word breaks, hard splits on UTF-8
 * boundaries, empty text), then the geometric invariants of laid-out specs of
 * every type, built by hand (including 60-node specs at the caps) and from
 * the labelled texts in tests/data/diagram_texts.tsv through
 * analyze/structure: everything inside the bounds, no two node boxes
 * overlapping, edge paths that start and end at their nodes, measured boxes
 * wider than their text, type rules (timeline order and axis, sequence rows,
 * mind map centre, levels and branch colours, hierarchy ranks), determinism,
 * identical results from four threads at once, error handling, and the time
 * one layout takes per type.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cairo.h>
#include <cmocka.h>

#include "analyze/structure.h"
#include "hark/hark.h"
#include "render/diagram.h"
#include "render/layout.h"

#define TOL 1.0 /* points */

/* ------------------------------------------------------- helpers --- */

static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* 1 when s is complete, well-formed UTF-8 (no sequence cut short). */
static int utf8_whole(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
		if (len == 0)
			return 0;
		for (int k = 1; k < len; k++)
			if ((p[k] & 0xc0) != 0x80)
				return 0;
		p += len;
	}
	return 1;
}

/* s without any whitespace, into buf. */
static void squeeze(const char *s, char *buf, size_t n)
{
	size_t j = 0;

	for (; *s && j + 1 < n; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			buf[j++] = *s;
	buf[j] = '\0';
}

static void check_lines(const char *label, char **lines, size_t n, size_t max)
{
	char a[1024], b[1024], joined[1024];
	size_t used = 0;

	assert_true(n >= 1);
	joined[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		assert_non_null(lines[i]);
		if (utf8_chars(lines[i]) > max)
			fail_msg("line \"%s\" of \"%s\" over %zu chars", lines[i], label, max);
		assert_true(utf8_whole(lines[i]));
		int w = snprintf(joined + used, sizeof(joined) - used, "%s%s", i ? " " : "", lines[i]);
		assert_true(w >= 0 && (size_t)w < sizeof(joined) - used);
		used += (size_t)w;
	}
	squeeze(label, a, sizeof(a));
	squeeze(joined, b, sizeof(b));
	if (strcmp(a, b) != 0)
		fail_msg("lines of \"%s\" rejoin to \"%s\"", label, joined);
}

static double text_width(char **lines, size_t n, double size, int bold)
{
	cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4);
	cairo_t *cr = cairo_create(s);
	double w = 0;

	cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
	for (size_t i = 0; i < n; i++) {
		cairo_text_extents_t te;
		cairo_text_extents(cr, lines[i], &te);
		if (te.width > w)
			w = te.width;
	}
	cairo_destroy(cr);
	cairo_surface_destroy(s);
	return w;
}

static double box_dist(const struct hark_layout_node *n, double x, double y)
{
	double dx = fmax(0.0, fabs(x - n->x) - n->w / 2), dy = fmax(0.0, fabs(y - n->y) - n->h / 2);

	return sqrt(dx * dx + dy * dy);
}

static size_t node_idx(const struct hark_diagram *d, const char *id)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (strcmp(d->nodes[i].id, id) == 0)
			return i;
	fail_msg("no node %s", id);
	return 0;
}

static int in_range(double v, double lo, double hi)
{
	return isfinite(v) && v >= lo - 1e-6 && v <= hi + 1e-6;
}

/* Checks every invariant of l as a layout of d with params p. */
static void check_layout(const struct hark_diagram *d, const struct hark_layout *l,
			 const struct hark_layout_params *p)
{
	assert_int_equal(l->n_nodes, d->n_nodes);
	assert_int_equal(l->n_edges, d->n_edges);
	assert_int_equal(l->n_groups, d->n_groups);
	assert_non_null(l->title);
	assert_string_equal(l->title, d->title);
	assert_true(isfinite(l->width) && l->width > 0);
	assert_true(isfinite(l->height) && l->height > 0);
	for (size_t i = 0; i < l->n_nodes; i++) {
		const struct hark_layout_node *n = &l->nodes[i];
		const struct hark_diagram_node *dn = &d->nodes[i];
		int bold = (d->type == HARK_DIAGRAM_MINDMAP && strcmp(dn->kind, "root") == 0) ||
			   d->type == HARK_DIAGRAM_SEQUENCE;

		if (!in_range(n->x - n->w / 2, 0, l->width) || !in_range(n->x + n->w / 2, 0, l->width) ||
		    !in_range(n->y - n->h / 2, 0, l->height) ||
		    !in_range(n->y + n->h / 2, 0, l->height))
			fail_msg("%s node %zu (%g,%g %gx%g) outside %gx%g",
				 hark_diagram_type_name(d->type), i, n->x, n->y, n->w, n->h, l->width,
				 l->height);
		assert_true(n->w > 0 && n->h > 0);
		assert_true(n->font_size > 0);
		check_lines(dn->label, n->lines, n->n_lines, p->max_chars);
		double tw = text_width(n->lines, n->n_lines, n->font_size, bold);
		if (!(n->w > tw))
			fail_msg("node \"%s\" box %g not wider than its text %g", dn->label, n->w, tw);
		assert_true(n->color >= 0 && n->color < 8);
		assert_true(n->shape >= HARK_SHAPE_BOX && n->shape <= HARK_SHAPE_HEAD);
		for (size_t j = 0; j < i; j++) {
			const struct hark_layout_node *m = &l->nodes[j];
			double ox = (n->w + m->w) / 2 - fabs(n->x - m->x);
			double oy = (n->h + m->h) / 2 - fabs(n->y - m->y);
			if (ox > 0.5 && oy > 0.5)
				fail_msg("%s: nodes %zu \"%s\" and %zu \"%s\" overlap (%g x %g)",
					 hark_diagram_type_name(d->type), i, dn->label, j,
					 d->nodes[j].label, ox, oy);
		}
		if (d->type == HARK_DIAGRAM_SEQUENCE) {
			assert_int_equal(n->shape, HARK_SHAPE_HEAD);
			assert_true(n->life_y1 > n->y + n->h / 2);
			assert_true(in_range(n->life_y1, 0, l->height));
		}
	}
	for (size_t k = 0; k < l->n_edges; k++) {
		const struct hark_layout_edge *e = &l->edges[k];
		const struct hark_diagram_edge *de = &d->edges[k];
		const struct hark_layout_node *a = &l->nodes[node_idx(d, de->from)];
		const struct hark_layout_node *b = &l->nodes[node_idx(d, de->to)];
		size_t last = e->n_pts - 1;

		assert_true(e->n_pts >= 4);
		assert_int_equal(e->n_pts % 3, 1);
		for (size_t i = 0; i < e->n_pts; i++) {
			assert_true(in_range(e->pts[2 * i], 0, l->width));
			assert_true(in_range(e->pts[2 * i + 1], 0, l->height));
		}
		if (d->type == HARK_DIAGRAM_SEQUENCE) {
			/* a message leaves one lifeline and ends on the other */
			assert_true(fabs(e->pts[0] - a->x) < TOL);
			assert_true(fabs(e->pts[2 * last] - b->x) < TOL);
			assert_true(e->pts[1] > a->y + a->h / 2 && e->pts[1] < a->life_y1);
			assert_true(e->pts[2 * last + 1] < b->life_y1);
			assert_int_equal(e->arrow, 1);
		} else {
			double ds = box_dist(a, e->pts[0], e->pts[1]);
			double dt = box_dist(b, e->pts[2 * last], e->pts[2 * last + 1]);
			if (ds > 3.0 || dt > 3.0)
				fail_msg("%s edge %zu %s->%s ends %g / %g pt from its nodes",
					 hark_diagram_type_name(d->type), k, de->from, de->to, ds, dt);
		}
		if (de->label) {
			check_lines(de->label, e->lines, e->n_lines, p->max_chars);
			assert_true(in_range(e->lx, 0, l->width) && in_range(e->ly, 0, l->height));
		} else {
			assert_int_equal(e->n_lines, 0);
		}
	}
	for (size_t g = 0; g < l->n_groups; g++) {
		const struct hark_layout_group *lg = &l->groups[g];
		int members = 0;

		assert_non_null(lg->label);
		assert_string_equal(lg->label, d->groups[g].label);
		for (size_t i = 0; i < d->n_nodes; i++) {
			const struct hark_layout_node *n = &l->nodes[i];
			if (!d->nodes[i].group || strcmp(d->nodes[i].group, d->groups[g].id) != 0)
				continue;
			members++;
			assert_true(n->x - n->w / 2 >= lg->x - TOL && n->x + n->w / 2 <= lg->x + lg->w + TOL);
			assert_true(n->y - n->h / 2 >= lg->y - TOL && n->y + n->h / 2 <= lg->y + lg->h + TOL);
		}
		if (members == 0) {
			assert_true(lg->w == 0);
		} else {
			assert_true(lg->w > 0 && lg->h > 0);
			assert_true(in_range(lg->x, 0, l->width) && in_range(lg->x + lg->w, 0, l->width));
			assert_true(in_range(lg->y, 0, l->height) && in_range(lg->y + lg->h, 0, l->height));
		}
	}
	if (d->type == HARK_DIAGRAM_TIMELINE) {
		assert_int_equal(l->has_axis, 1);
		assert_true(l->axis_x0 < l->axis_x1);
		assert_true(in_range(l->axis_y, 0, l->height));
		assert_true(in_range(l->axis_x0, 0, l->width) && in_range(l->axis_x1, 0, l->width));
		assert_true(l->n_ticks >= 1 && l->n_ticks <= d->n_nodes);
		for (size_t t = 0; t < l->n_ticks; t++) {
			assert_non_null(l->tick_label[t]);
			assert_true(strlen(l->tick_label[t]) > 0);
			assert_true(l->tick_x[t] >= l->axis_x0 && l->tick_x[t] <= l->axis_x1);
			if (t > 0)
				assert_true(l->tick_x[t] > l->tick_x[t - 1]);
		}
		for (size_t i = 0; i < d->n_nodes; i++) {
			const struct hark_layout_node *n = &l->nodes[i];
			/* cards sit off the axis */
			assert_true(n->y + n->h / 2 < l->axis_y || n->y - n->h / 2 > l->axis_y);
			for (size_t j = 0; j < d->n_nodes; j++)
				if (d->nodes[i].order < d->nodes[j].order)
					assert_true(n->x < l->nodes[j].x);
		}
	} else {
		assert_int_equal(l->has_axis, 0);
		assert_int_equal(l->n_ticks, 0);
	}
	if (d->type == HARK_DIAGRAM_SEQUENCE) {
		for (size_t i = 1; i < d->n_nodes; i++) {
			assert_true(l->nodes[i].x > l->nodes[i - 1].x);
			assert_true(fabs(l->nodes[i].y - l->nodes[0].y) < 1e-9);
		}
		for (size_t k = 0; k < d->n_edges; k++)
			for (size_t j = 0; j < d->n_edges; j++)
				if (d->edges[k].seq < d->edges[j].seq)
					assert_true(l->edges[k].pts[1] < l->edges[j].pts[1]);
	}
	if (d->type == HARK_DIAGRAM_MINDMAP) {
		size_t root = 0;
		for (size_t i = 0; i < d->n_nodes; i++)
			if (strcmp(d->nodes[i].kind, "root") == 0)
				root = i;
		const struct hark_layout_node *r = &l->nodes[root];
		assert_int_equal(r->shape, HARK_SHAPE_ELLIPSE);
		assert_int_equal(r->level, 0);
		/* the root is in the central third of the drawing */
		assert_true(r->x > l->width / 3 - TOL && r->x < 2 * l->width / 3 + TOL);
		assert_true(r->y > l->height / 3 - TOL && r->y < 2 * l->height / 3 + TOL);
		for (size_t k = 0; k < d->n_edges; k++) {
			size_t a = node_idx(d, d->edges[k].from), b = node_idx(d, d->edges[k].to);
			const struct hark_layout_node *na = &l->nodes[a], *nb = &l->nodes[b];
			assert_int_equal(nb->level, na->level + 1 > 2 ? 2 : na->level + 1);
			if (a != root)
				assert_int_equal(nb->color, na->color);
			assert_int_equal(l->edges[k].arrow, 0);
		}
		for (size_t i = 0; i < d->n_nodes; i++) {
			const struct hark_layout_node *n = &l->nodes[i];
			if (strcmp(d->nodes[i].kind, "subtopic") == 0)
				assert_int_equal(n->shape, HARK_SHAPE_PLAIN);
			if (strcmp(d->nodes[i].kind, "topic") == 0)
				assert_int_equal(n->shape, HARK_SHAPE_BOX);
			/* children are further from the root than their parents */
			if (n->level >= 1)
				assert_true(hypot(n->x - r->x, n->y - r->y) > 0);
		}
		/* distinct level-1 branches get distinct colours (up to 8) */
		int seen[8] = {0};
		size_t topics = 0;
		for (size_t i = 0; i < d->n_nodes; i++) {
			if (l->nodes[i].level != 1)
				continue;
			if (topics < 8) {
				assert_int_equal(seen[l->nodes[i].color], 0);
				seen[l->nodes[i].color] = 1;
			}
			topics++;
		}
	}
	if (d->type == HARK_DIAGRAM_HIERARCHY) {
		for (size_t k = 0; k < d->n_edges; k++) {
			size_t a = node_idx(d, d->edges[k].from), b = node_idx(d, d->edges[k].to);
			assert_true(l->nodes[b].level > l->nodes[a].level);
			assert_true(l->nodes[b].y > l->nodes[a].y);
		}
		for (size_t i = 0; i < d->n_nodes; i++) {
			int has_parent = 0;
			for (size_t k = 0; k < d->n_edges; k++)
				has_parent |= node_idx(d, d->edges[k].to) == i;
			if (!has_parent)
				assert_int_equal(l->nodes[i].level, 0);
			assert_int_equal(l->nodes[i].shape, strcmp(d->nodes[i].kind, "person") == 0
								     ? HARK_SHAPE_PERSON
								     : HARK_SHAPE_BOX);
		}
	}
	if (d->type == HARK_DIAGRAM_FLOWCHART) {
		for (size_t i = 0; i < d->n_nodes; i++) {
			const char *k = d->nodes[i].kind;
			int want = strcmp(k, "decision") == 0 ? HARK_SHAPE_DIAMOND
				   : (strcmp(k, "start") == 0 || strcmp(k, "end") == 0) ? HARK_SHAPE_PILL
											: HARK_SHAPE_BOX;
			assert_int_equal(l->nodes[i].shape, want);
			if (want == HARK_SHAPE_DIAMOND) {
				/* the text block fits inside the diamond */
				const struct hark_layout_node *n = &l->nodes[i];
				double tw = text_width(n->lines, n->n_lines, n->font_size, 0);
				double th = n->font_size * 1.2 * (double)n->n_lines;
				assert_true(tw / n->w + th / n->h <= 1.0);
			}
		}
		for (size_t k = 0; k < d->n_edges; k++)
			assert_int_equal(l->edges[k].arrow, 1);
	}
}

/* Exact equality of two layouts' geometry. */
static void assert_same(const struct hark_layout *a, const struct hark_layout *b)
{
	assert_true(a->width == b->width && a->height == b->height);
	assert_int_equal(a->n_nodes, b->n_nodes);
	for (size_t i = 0; i < a->n_nodes; i++) {
		assert_true(a->nodes[i].x == b->nodes[i].x && a->nodes[i].y == b->nodes[i].y);
		assert_true(a->nodes[i].w == b->nodes[i].w && a->nodes[i].h == b->nodes[i].h);
		assert_true(a->nodes[i].life_y1 == b->nodes[i].life_y1);
		assert_int_equal(a->nodes[i].color, b->nodes[i].color);
	}
	assert_int_equal(a->n_edges, b->n_edges);
	for (size_t k = 0; k < a->n_edges; k++) {
		assert_int_equal(a->edges[k].n_pts, b->edges[k].n_pts);
		assert_memory_equal(a->edges[k].pts, b->edges[k].pts,
				    2 * a->edges[k].n_pts * sizeof(double));
		assert_true(a->edges[k].lx == b->edges[k].lx && a->edges[k].ly == b->edges[k].ly);
	}
	for (size_t g = 0; g < a->n_groups; g++)
		assert_memory_equal(&a->groups[g], &b->groups[g], 4 * sizeof(double));
	assert_int_equal(a->n_ticks, b->n_ticks);
	for (size_t t = 0; t < a->n_ticks; t++)
		assert_true(a->tick_x[t] == b->tick_x[t]);
}

static void lay_and_check(const struct hark_diagram *d)
{
	struct hark_layout_params p = hark_layout_default_params();
	struct hark_layout l;
	char err[256] = "";

	int rc = hark_layout_compute(d, &p, &l, err, sizeof(err));
	if (rc)
		fail_msg("%s \"%s\": %d %s", hark_diagram_type_name(d->type), d->title, rc, err);
	check_layout(d, &l, &p);
	hark_layout_free(&l);
}

/* --------------------------------------------------- spec builders --- */

static void spec_init(struct hark_diagram *d, int type, const char *title)
{
	memset(d, 0, sizeof(*d));
	d->type = type;
	d->title = strdup(title);
	assert_non_null(d->title);
	d->duration_s = -1;
	d->page = d->pages = 1;
}

static void node(struct hark_diagram *d, const char *id, const char *label, const char *kind,
		 const char *group)
{
	assert_int_equal(hark_diagram_add_node(d, id, label, kind, group, NULL), 0);
}

static void edge(struct hark_diagram *d, const char *from, const char *to, const char *label,
		 long seq)
{
	assert_int_equal(hark_diagram_add_edge(d, from, to, label, seq, NULL), 0);
}

static void assert_valid(const struct hark_diagram *d)
{
	char err[256];

	if (hark_diagram_validate(d, err, sizeof(err)) != 0)
		fail_msg("hand-built spec invalid: %s", err);
}

static void make_flowchart(struct hark_diagram *d)
{
	spec_init(d, HARK_DIAGRAM_FLOWCHART, "Order handling");
	assert_int_equal(hark_diagram_add_group(d, "wh", "Warehouse"), 0);
	assert_int_equal(hark_diagram_add_group(d, "none", "Nobody here"), 0);
	node(d, "s", "Customer submits the order form", "start", NULL);
	node(d, "c", "Is the item in stock?", "decision", NULL);
	node(d, "ship", "Ship it the same day", "step", "wh");
	node(d, "pack", "Pack the parcel with care", "step", "wh");
	node(d, "mail", "Email the customer a back-order notice", "step", NULL);
	node(d, "r", "Retry after restock?", "decision", NULL);
	node(d, "e", "Close the ticket", "end", NULL);
	edge(d, "s", "c", NULL, -1);
	edge(d, "c", "pack", "yes", -1);
	edge(d, "pack", "ship", NULL, -1);
	edge(d, "c", "mail", "no", -1);
	edge(d, "mail", "r", NULL, -1);
	edge(d, "r", "c", "yes, when the supplier delivers again", -1); /* a loop back */
	edge(d, "r", "e", "no", -1);
	edge(d, "ship", "e", NULL, -1);
	assert_valid(d);
}

static void make_hierarchy(struct hark_diagram *d)
{
	spec_init(d, HARK_DIAGRAM_HIERARCHY, "Engineering");
	assert_int_equal(hark_diagram_add_group(d, "plat", "Platform"), 0);
	node(d, "cto", "Chief Technology Officer", "person", NULL);
	node(d, "eng", "Engineering department", "unit", NULL);
	node(d, "ops", "Operations", "unit", NULL);
	node(d, "p1", "Storage team", "unit", "plat");
	node(d, "p2", "Networking team", "unit", "plat");
	node(d, "ann", "Ann, tech lead", "person", "plat");
	node(d, "bob", "Bob", "person", NULL);
	edge(d, "cto", "eng", NULL, -1);
	edge(d, "cto", "ops", NULL, -1);
	edge(d, "eng", "p1", NULL, -1);
	edge(d, "eng", "p2", NULL, -1);
	edge(d, "p1", "ann", NULL, -1);
	edge(d, "p2", "ann", NULL, -1); /* a DAG, not a tree */
	edge(d, "ops", "bob", NULL, -1);
	assert_valid(d);
}

static void make_mindmap(struct hark_diagram *d, size_t topics, size_t subs)
{
	char id[48], lab[96], tid[48];

	spec_init(d, HARK_DIAGRAM_MINDMAP, "Quarterly planning");
	node(d, "root", "Quarterly planning for the whole team", "root", NULL);
	for (size_t t = 0; t < topics; t++) {
		snprintf(tid, sizeof(tid), "t%zu", t);
		snprintf(lab, sizeof(lab), "Topic %zu about budget and hiring", t);
		node(d, tid, lab, "topic", NULL);
		edge(d, "root", tid, NULL, -1);
		for (size_t s = 0; s < subs + (t % 2); s++) {
			snprintf(id, sizeof(id), "t%zus%zu", t, s);
			snprintf(lab, sizeof(lab), "keyword %zu.%zu", t, s);
			node(d, id, lab, "subtopic", NULL);
			edge(d, tid, id, NULL, -1);
		}
	}
	assert_valid(d);
}

static void make_sequence(struct hark_diagram *d, size_t parts, size_t msgs)
{
	static const char *const names[] = {"Client", "API gateway", "Auth service", "Database",
					    "Cache", "Billing"};
	static const char *const verbs[] = {"sends the login request", "returns a token",
					    "asks for the user record", "ok",
					    "replies with the full profile and preferences",
					    "calls"};
	char id[48], id2[48], lab[96];

	spec_init(d, HARK_DIAGRAM_SEQUENCE, "Login");
	for (size_t i = 0; i < parts; i++) {
		snprintf(id, sizeof(id), "p%zu", i);
		snprintf(lab, sizeof(lab), "%s%s", names[i % 6], i >= 6 ? " replica" : "");
		node(d, id, lab, "participant", NULL);
	}
	for (size_t k = 0; k < msgs; k++) {
		size_t a = (k * 7) % parts, b = (k * 3 + 1) % parts;
		if (a == b)
			b = (b + 1) % parts;
		snprintf(id, sizeof(id), "p%zu", a);
		snprintf(id2, sizeof(id2), "p%zu", b);
		edge(d, id, id2, verbs[k % 6], (long)k);
	}
	assert_valid(d);
}

/* Events at uneven dates: a cluster of days, then a gap of years. */
static void make_timeline(struct hark_diagram *d, size_t n, int dated)
{
	static const double days[] = {0, 1, 2, 40, 41, 4000, 4001, 4002, 9000, 9010};
	char id[48], lab[96], date[48];

	spec_init(d, HARK_DIAGRAM_TIMELINE, "Company history");
	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "ev%zu", i);
		snprintf(lab, sizeof(lab), "Event %zu: we opened another office", i);
		node(d, id, lab, "event", NULL);
		double day = 17000 + days[i % 10] + 10000.0 * (double)(i / 10);
		d->nodes[i].order = dated ? day : (double)i;
		if (dated) {
			time_t t = (time_t)(day * 86400.0);
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(date, sizeof(date), "%Y-%m-%d", &tm);
			d->nodes[i].date = strdup(date);
			assert_non_null(d->nodes[i].date);
		}
		if (i > 0) {
			char prev[48];
			snprintf(prev, sizeof(prev), "ev%zu", i - 1);
			if (i % 3 != 0)
				edge(d, prev, id, NULL, -1);
		}
	}
	assert_valid(d);
}

static void make_big_flowchart(struct hark_diagram *d)
{
	char id[48], prev[48], lab[96];

	spec_init(d, HARK_DIAGRAM_FLOWCHART, "Long process");
	node(d, "n0", "Start the long process", "start", NULL);
	for (size_t i = 1; i < HARK_DIAGRAM_MAX_NODES; i++) {
		int dec = i % 5 == 0 && i + 2 < HARK_DIAGRAM_MAX_NODES;
		snprintf(id, sizeof(id), "n%zu", i);
		snprintf(lab, sizeof(lab), dec ? "Check result %zu?" : "Do step %zu of the work", i);
		node(d, id, lab, i + 1 == HARK_DIAGRAM_MAX_NODES ? "end" : dec ? "decision" : "step",
		     NULL);
	}
	for (size_t i = 1; i < HARK_DIAGRAM_MAX_NODES; i++) {
		snprintf(prev, sizeof(prev), "n%zu", i - 1);
		snprintf(id, sizeof(id), "n%zu", i);
		int pdec = (i - 1) % 5 == 0 && i - 1 > 0 && i + 1 < HARK_DIAGRAM_MAX_NODES;
		edge(d, prev, id, pdec ? "yes" : NULL, -1);
		if (pdec) {
			char other[48];
			snprintf(other, sizeof(other), "n%zu", i + 1);
			edge(d, prev, other, "no", -1);
		}
	}
	assert_valid(d);
}

static void make_big_hierarchy(struct hark_diagram *d)
{
	char id[48], parent[48], lab[96];

	spec_init(d, HARK_DIAGRAM_HIERARCHY, "Big company");
	for (size_t i = 0; i < HARK_DIAGRAM_MAX_NODES; i++) {
		snprintf(id, sizeof(id), "u%zu", i);
		snprintf(lab, sizeof(lab), i % 3 ? "Unit %zu" : "Person %zu the manager", i);
		node(d, id, lab, i % 3 ? "unit" : "person", NULL);
		if (i > 0) {
			snprintf(parent, sizeof(parent), "u%zu", (i - 1) / 3);
			edge(d, parent, id, NULL, -1);
		}
	}
	assert_valid(d);
}

/* ----------------------------------------------------------- tests --- */

static void test_wrap(void **state)
{
	(void)state;
	char **v;
	size_t n;

	assert_int_equal(hark_layout_wrap("hello world again", 11, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "hello world");
	assert_string_equal(v[1], "again");
	hark_layout_lines_free(v, n);

	assert_int_equal(hark_layout_wrap("  a   b  ", 22, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "a b");
	hark_layout_lines_free(v, n);

	/* an overlong word is hard-split into max_chars pieces */
	assert_int_equal(hark_layout_wrap("go supercalifragilistic now", 6, &v, &n), 0);
	check_lines("go supercalifragilistic now", v, n, 6);
	assert_string_equal(v[0], "go");
	assert_string_equal(v[1], "superc");
	hark_layout_lines_free(v, n);

	assert_int_equal(hark_layout_wrap("", 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "");
	hark_layout_lines_free(v, n);
	assert_int_equal(hark_layout_wrap(" \t ", 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "");
	hark_layout_lines_free(v, n);

	assert_int_equal(hark_layout_wrap("x", 10, NULL, &n), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_layout_wrap("x", 10, &v, NULL), HARK_ERR_INVALID_ARG);
	hark_layout_lines_free(NULL, 3);
}

static void test_wrap_utf8(void **state)
{
	(void)state;
	const char *texts[] = {"Zoë's café — naïve 東京", "東京大阪名古屋札幌福岡神戸京都横浜",
			       "naïveté über-façade smörgåsbord 🙂🙂🙂🙂🙂🙂🙂 end"};

	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		for (size_t max = 1; max <= 24; max++) {
			char **v;
			size_t n;
			assert_int_equal(hark_layout_wrap(texts[t], max, &v, &n), 0);
			check_lines(texts[t], v, n, max);
			hark_layout_lines_free(v, n);
		}
	}
	/* words are kept whole when they fit */
	char **v;
	size_t n;
	assert_int_equal(hark_layout_wrap("Zoë's café — naïve 東京", 12, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "Zoë's café —");
	assert_string_equal(v[1], "naïve 東京");
	hark_layout_lines_free(v, n);
}

static void test_hand_specs(void **state)
{
	(void)state;
	struct hark_diagram d;

	make_flowchart(&d);
	lay_and_check(&d);
	hark_diagram_clear(&d);
	make_hierarchy(&d);
	lay_and_check(&d);
	hark_diagram_clear(&d);
	for (size_t t = 1; t <= 9; t += 4) {
		make_mindmap(&d, t, 3);
		lay_and_check(&d);
		hark_diagram_clear(&d);
	}
	make_sequence(&d, 4, 9);
	lay_and_check(&d);
	hark_diagram_clear(&d);
	make_sequence(&d, 2, 1);
	lay_and_check(&d);
	hark_diagram_clear(&d);
	make_timeline(&d, 10, 1);
	lay_and_check(&d);
	hark_diagram_clear(&d);
	make_timeline(&d, 7, 0);
	lay_and_check(&d);
	hark_diagram_clear(&d);
	/* a single node of every type */
	for (int type = 0; type < HARK_DIAGRAM_N_TYPES; type++) {
		static const char *const kinds[] = {"start", "event", "root", "unit", "participant"};
		spec_init(&d, type, "One");
		node(&d, "a", "Only node with a rather long label that needs wrapping", kinds[type],
		     NULL);
		lay_and_check(&d);
		hark_diagram_clear(&d);
	}
}

static void test_flowchart_details(void **state)
{
	(void)state;
	struct hark_diagram d;
	struct hark_layout l;
	char err[128];

	make_flowchart(&d);
	assert_int_equal(hark_layout_compute(&d, NULL, &l, err, sizeof(err)), 0);
	/* the start is on top, yes/no labels sit near their edges */
	for (size_t i = 1; i < d.n_nodes; i++)
		if (strcmp(d.nodes[i].kind, "end") == 0)
			assert_true(l.nodes[i].y > l.nodes[0].y);
	for (size_t k = 0; k < d.n_edges; k++) {
		const struct hark_layout_edge *e = &l.edges[k];
		if (!d.edges[k].label)
			continue;
		double best = INFINITY;
		for (size_t i = 0; i < e->n_pts; i++)
			best = fmin(best, hypot(e->pts[2 * i] - e->lx, e->pts[2 * i + 1] - e->ly));
		assert_true(best < 150.0);
	}
	/* the empty group has no box, the warehouse group holds its two steps */
	assert_true(l.groups[1].w == 0);
	assert_true(l.groups[0].w > 0);
	hark_layout_free(&l);
	hark_diagram_clear(&d);
}

static void test_timeline_details(void **state)
{
	(void)state;
	struct hark_diagram d;
	struct hark_layout l;
	char err[128];

	make_timeline(&d, 10, 1);
	assert_int_equal(hark_layout_compute(&d, NULL, &l, err, sizeof(err)), 0);
	/* a gap of years is wider than a gap of one day, but compressed */
	double day_gap = l.nodes[1].x - l.nodes[0].x, year_gap = l.nodes[5].x - l.nodes[4].x;
	assert_true(year_gap > day_gap);
	assert_true(year_gap < 10 * day_gap);
	/* alternating sides, month ticks, dashed connectors */
	for (size_t i = 1; i < d.n_nodes; i++)
		assert_true((l.nodes[i].y < l.axis_y) != (l.nodes[i - 1].y < l.axis_y));
	assert_int_equal(strlen(l.tick_label[0]), 7);
	assert_true(l.tick_label[0][4] == '-');
	for (size_t k = 0; k < d.n_edges; k++)
		assert_int_equal(l.edges[k].dashed, 1);
	hark_layout_free(&l);
	hark_diagram_clear(&d);
}

static void test_sequence_details(void **state)
{
	(void)state;
	struct hark_diagram d;
	struct hark_layout l;
	char err[128];

	make_sequence(&d, 4, 9);
	assert_int_equal(hark_layout_compute(&d, NULL, &l, err, sizeof(err)), 0);
	for (size_t k = 0; k < d.n_edges; k++) {
		const struct hark_layout_edge *e = &l.edges[k];
		/* horizontal, label above, wide enough between the lifelines */
		assert_true(fabs(e->pts[1] - e->pts[2 * (e->n_pts - 1) + 1]) < 1e-9);
		assert_true(e->ly < e->pts[1]);
		double span = fabs(e->pts[0] - e->pts[2 * (e->n_pts - 1)]);
		double tw = text_width(e->lines, e->n_lines, e->font_size, 0);
		assert_true(span > tw);
		const char *lab = d.edges[k].label;
		int reply = strncmp(lab, "return", 6) == 0 || strncmp(lab, "repl", 4) == 0 ||
			    strcmp(lab, "ok") == 0;
		assert_int_equal(e->dashed, reply);
	}
	hark_layout_free(&l);
	hark_diagram_clear(&d);
}

/* ---------------------------------------------- specs from texts --- */

static const char *src_dir(void)
{
	static char buf[1024];
	const char *s = getenv("HARK_SOURCE_DIR");

	if (s && *s)
		return s;
	snprintf(buf, sizeof(buf), "%s", __FILE__);
	char *x = strstr(buf, "/tests/unit/");
	if (x) {
		*x = '\0';
		return buf;
	}
	return ".";
}

/* Splits text at " | " into turns ("Name: " prefix = speaker). */
static size_t split_turns(char *p, struct hark_chunk_turn *turns, size_t max)
{
	size_t n = 0;

	while (p && n < max) {
		char *bar = strstr(p, " | ");
		if (bar) {
			*bar = '\0';
			bar += 3;
		}
		turns[n].speaker = NULL;
		turns[n].text = p;
		char *colon = strstr(p, ": ");
		if (colon && colon - p <= 24 && p[0] >= 'A' && p[0] <= 'Z') {
			*colon = '\0';
			turns[n].speaker = p;
			turns[n].text = colon + 2;
		}
		turns[n].start_s = 10.0 * (double)n;
		turns[n].end_s = turns[n].start_s + 8.0;
		n++;
		p = bar;
	}
	return n;
}

static void test_specs_from_texts(void **state)
{
	(void)state;
	char path[1200], line[4096];
	size_t n_texts = 0, built[HARK_DIAGRAM_N_TYPES] = {0};
	struct hark_structure_params sp = hark_structure_default_params();

	sp.meeting_date = "2024-05-10";
	snprintf(path, sizeof(path), "%s/tests/data/diagram_texts.tsv", src_dir());
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		size_t L = strlen(line);
		while (L > 0 && (line[L - 1] == '\n' || line[L - 1] == '\r'))
			line[--L] = '\0';
		if (L == 0 || line[0] == '#')
			continue;
		char *tab = strchr(line, '\t');
		assert_non_null(tab);
		*tab = '\0';
		n_texts++;
		for (int type = 0; type < HARK_DIAGRAM_N_TYPES; type++) {
			char copy[4096], err[256] = "";
			struct hark_chunk_turn turns[16];
			struct hark_diagram d;

			snprintf(copy, sizeof(copy), "%s", tab + 1);
			size_t nt = split_turns(copy, turns, 16);
			memset(&d, 0, sizeof(d));
			int rc = hark_structure_build(turns, nt, type, &sp, &d, err, sizeof(err));
			if (rc)
				fail_msg("build %s: %s", hark_diagram_type_name(type), err);
			built[d.type]++;
			lay_and_check(&d);
			hark_diagram_clear(&d);
		}
	}
	fclose(f);
	assert_true(n_texts >= 50);
	for (int t = 0; t < HARK_DIAGRAM_N_TYPES; t++) {
		print_message("laid out %zu %s specs from texts\n", built[t], hark_diagram_type_name(t));
		assert_true(built[t] >= 10);
	}
}

/* ------------------------------------------- caps, timing, threads --- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void make_big(struct hark_diagram *d, int type)
{
	switch (type) {
	case HARK_DIAGRAM_FLOWCHART:
		make_big_flowchart(d);
		break;
	case HARK_DIAGRAM_TIMELINE:
		make_timeline(d, HARK_DIAGRAM_MAX_NODES, 1);
		break;
	case HARK_DIAGRAM_MINDMAP:
		make_mindmap(d, 10, 4); /* 1 + 10 + 40 + 5 = 56 nodes */
		break;
	case HARK_DIAGRAM_HIERARCHY:
		make_big_hierarchy(d);
		break;
	default:
		make_sequence(d, 12, HARK_DIAGRAM_MAX_EDGES);
		break;
	}
}

static void test_caps_and_timing(void **state)
{
	(void)state;
	for (int type = 0; type < HARK_DIAGRAM_N_TYPES; type++) {
		struct hark_diagram d;
		struct hark_layout_params p = hark_layout_default_params();
		char err[256] = "";

		make_big(&d, type);
		double best = INFINITY;
		for (int rep = 0; rep < 3; rep++) {
			struct hark_layout l;
			double t0 = now_ms();
			int rc = hark_layout_compute(&d, &p, &l, err, sizeof(err));
			double dt = now_ms() - t0;
			if (rc)
				fail_msg("%s: %s", hark_diagram_type_name(type), err);
			best = fmin(best, dt);
			if (rep == 0)
				check_layout(&d, &l, &p);
			hark_layout_free(&l);
		}
		print_message("%-9s %2zu nodes %3zu edges: %.2f ms\n", hark_diagram_type_name(type),
			      d.n_nodes, d.n_edges, best);
		/* generous: sanitizer builds and a shared machine */
		assert_true(best < 2000.0);
		hark_diagram_clear(&d);
	}
}

static void test_determinism(void **state)
{
	(void)state;
	for (int type = 0; type < HARK_DIAGRAM_N_TYPES; type++) {
		struct hark_diagram d;
		struct hark_layout a, b;
		char err[128];

		make_big(&d, type);
		assert_int_equal(hark_layout_compute(&d, NULL, &a, err, sizeof(err)), 0);
		assert_int_equal(hark_layout_compute(&d, NULL, &b, err, sizeof(err)), 0);
		assert_same(&a, &b);
		hark_layout_free(&a);
		hark_layout_free(&b);
		hark_diagram_clear(&d);
	}
}

struct thread_job {
	struct hark_diagram d;
	struct hark_layout ref;
	int failures;
};

static void *thread_main(void *arg)
{
	struct thread_job *j = arg;

	for (int rep = 0; rep < 6; rep++) {
		struct hark_layout l;
		char err[128];
		if (hark_layout_compute(&j->d, NULL, &l, err, sizeof(err)) != 0) {
			j->failures++;
			continue;
		}
		/* compare without cmocka (not thread safe): count differences */
		int same = l.width == j->ref.width && l.height == j->ref.height &&
			   l.n_nodes == j->ref.n_nodes;
		for (size_t i = 0; same && i < l.n_nodes; i++)
			same = l.nodes[i].x == j->ref.nodes[i].x && l.nodes[i].y == j->ref.nodes[i].y &&
			       l.nodes[i].w == j->ref.nodes[i].w;
		for (size_t k = 0; same && k < l.n_edges; k++)
			same = l.edges[k].n_pts == j->ref.edges[k].n_pts &&
			       memcmp(l.edges[k].pts, j->ref.edges[k].pts,
				      2 * l.edges[k].n_pts * sizeof(double)) == 0;
		if (!same)
			j->failures++;
		hark_layout_free(&l);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct thread_job jobs[4];
	pthread_t th[4];
	char err[128];

	memset(jobs, 0, sizeof(jobs));
	make_flowchart(&jobs[0].d);
	make_mindmap(&jobs[1].d, 6, 2);
	make_sequence(&jobs[2].d, 5, 12);
	make_hierarchy(&jobs[3].d);
	for (int i = 0; i < 4; i++)
		assert_int_equal(hark_layout_compute(&jobs[i].d, NULL, &jobs[i].ref, err, sizeof(err)),
				 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(jobs[i].failures, 0);
		hark_layout_free(&jobs[i].ref);
		hark_diagram_clear(&jobs[i].d);
	}
}

static void test_errors(void **state)
{
	(void)state;
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_layout_params p = hark_layout_default_params();
	char err[256];

	make_flowchart(&d);
	assert_int_equal(hark_layout_compute(NULL, NULL, &l, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_null(l.nodes);
	assert_int_equal(hark_layout_compute(&d, NULL, NULL, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	p.font_size = 0;
	assert_int_equal(hark_layout_compute(&d, &p, &l, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	assert_null(l.nodes);
	hark_diagram_clear(&d);

	/* an invalid spec: an edge to a missing node */
	make_flowchart(&d);
	free(d.edges[0].to);
	d.edges[0].to = strdup("ghost");
	err[0] = '\0';
	assert_int_equal(hark_layout_compute(&d, NULL, &l, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_true(strlen(err) > 0);
	assert_non_null(strstr(err, "ghost"));
	assert_null(l.nodes);
	assert_int_equal(l.n_nodes, 0);
	hark_diagram_clear(&d);

	/* an empty spec and a wrong kind */
	spec_init(&d, HARK_DIAGRAM_MINDMAP, "Empty");
	err[0] = '\0';
	assert_int_equal(hark_layout_compute(&d, NULL, &l, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_true(strlen(err) > 0);
	node(&d, "x", "X", "step", NULL);
	assert_int_equal(hark_layout_compute(&d, NULL, &l, NULL, 0), HARK_ERR_FORMAT);
	hark_diagram_clear(&d);

	/* freeing a zeroed layout, twice, and NULL */
	memset(&l, 0, sizeof(l));
	hark_layout_free(&l);
	hark_layout_free(&l);
	hark_layout_free(NULL);
}

static void test_params(void **state)
{
	(void)state;
	struct hark_layout_params p = hark_layout_default_params();
	struct hark_diagram d;
	struct hark_layout a, b;
	char err[128];

	assert_int_equal(p.max_chars, 22);
	assert_true(p.font_size == 14.0 && p.node_gap == 18.0);
	assert_string_equal(p.font, "DejaVu Sans");
	make_hierarchy(&d);
	assert_int_equal(hark_layout_compute(&d, &p, &a, err, sizeof(err)), 0);
	/* a larger font gives larger boxes; a narrower wrap gives more lines */
	p.font_size = 20;
	p.max_chars = 10;
	assert_int_equal(hark_layout_compute(&d, &p, &b, err, sizeof(err)), 0);
	check_layout(&d, &b, &p);
	for (size_t i = 0; i < d.n_nodes; i++) {
		assert_true(b.nodes[i].h > a.nodes[i].h - 1e-9);
		assert_true(b.nodes[i].n_lines >= a.nodes[i].n_lines);
	}
	assert_true(b.width * b.height > a.width * a.height);
	hark_layout_free(&a);
	hark_layout_free(&b);
	hark_diagram_clear(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrap),
		cmocka_unit_test(test_wrap_utf8),
		cmocka_unit_test(test_hand_specs),
		cmocka_unit_test(test_flowchart_details),
		cmocka_unit_test(test_timeline_details),
		cmocka_unit_test(test_sequence_details),
		cmocka_unit_test(test_specs_from_texts),
		cmocka_unit_test(test_caps_and_timing),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
