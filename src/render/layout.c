/*
 * Diagram layout (see layout.h for the contract): wraps and measures every
 * label with cairo's toy font API (the painter's font, hint metrics off so
 * sizes do not depend on the target), then places the spec by type. Graphviz
 * runs under one process-wide mutex with one lazily created context that is
 * kept for the life of the process (libgvc 2.42 leaks its parsed plugin
 * configuration with every context, so one context is the only leak-free
 * choice). Graphviz never sees text: nodes are fixedsize boxes of the
 * measured sizes and edge and cluster labels are empty fixed-size HTML
 * tables, so its own text layout (pango) is never loaded and the sizes it
 * reserves are exactly ours. Flowcharts and hierarchies use dot (clusters
 * for groups, retried without clusters should dot refuse them); the
 * participant row of a sequence is a dot LR chain, widened where message
 * labels need room, with message rows placed here; mind maps use twopi with
 * ring distances computed from the node sizes so that rings and neighbours
 * cannot overlap (a deterministic push-apart pass backs that up); timelines
 * are placed here on a compressed time axis. Graphviz's y axis grows up, so
 * its points are flipped, and at the end everything is translated so the
 * drawing starts at a margin from the top-left corner.
 *
 * Fonts: labels are regular weight except the mind map root and sequence
 * heads (bold). Sizes: nodes font_size (root x1.2, sub-topics x0.9), edge
 * labels x0.85, group labels x0.85, tick labels x0.8.
 */
#include "render/layout.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>
#include <graphviz/gvc.h>

#include "hark/hark.h"
#include "util/errbuf.h"

#define PT_PER_IN 72.0
#define DEFAULT_FONT "DejaVu Sans"
#define TOPIC_MAX_CHARS 18
#define EDGE_FONT_SCALE 0.85
#define GROUP_FONT_SCALE 0.85
#define TICK_FONT_SCALE 0.8
#define PUSH_ITERATIONS 200

struct hark_layout_params hark_layout_default_params(void)
{
	struct hark_layout_params p = {22, 14.0, DEFAULT_FONT, 18.0};

	return p;
}

/* -------------------------------------------------------------- wrap --- */

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_lead(unsigned char c)
{
	return (c & 0xc0) != 0x80;
}

/* Code points in s[0..n) (continuation bytes do not count). */
static size_t utf8_count(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += is_lead((unsigned char)s[i]);
	return c;
}

/* Byte offset in s[0..n) after k code points (with their continuation
 * bytes), at most n. */
static size_t utf8_skip(const char *s, size_t n, size_t k)
{
	size_t i = 0;

	while (i < n && k > 0) {
		i++;
		while (i < n && !is_lead((unsigned char)s[i]))
			i++;
		k--;
	}
	return i;
}

struct wrapper {
	char **v;
	size_t n, cap;
	char *cur;      /* line being filled */
	size_t cur_b, cur_c;
};

static int wrap_push(struct wrapper *w, const char *s, size_t len)
{
	char *line;

	if (w->n >= w->cap)
		return HARK_ERR_INTERNAL; /* cannot happen: cap counts every code point */
	line = malloc(len + 1);
	if (!line)
		return HARK_ERR_NOMEM;
	memcpy(line, s, len);
	line[len] = '\0';
	w->v[w->n++] = line;
	return HARK_OK;
}

static int wrap_flush(struct wrapper *w)
{
	int rc;

	if (w->cur_c == 0)
		return HARK_OK;
	rc = wrap_push(w, w->cur, w->cur_b);
	w->cur_b = 0;
	w->cur_c = 0;
	return rc;
}

static void wrap_set(struct wrapper *w, const char *s, size_t len, size_t chars)
{
	memcpy(w->cur, s, len);
	w->cur_b = len;
	w->cur_c = chars;
}

/* Adds one word (len bytes, chars code points) to the wrapper. */
static int wrap_word(struct wrapper *w, const char *s, size_t len, size_t chars, size_t max)
{
	int rc;

	if (chars > max) {
		rc = wrap_flush(w);
		while (rc == HARK_OK && chars > max) {
			size_t b = utf8_skip(s, len, max);
			rc = wrap_push(w, s, b);
			s += b;
			len -= b;
			chars -= max;
		}
		if (rc == HARK_OK)
			wrap_set(w, s, len, chars);
		return rc;
	}
	if (w->cur_c == 0) {
		wrap_set(w, s, len, chars);
		return HARK_OK;
	}
	if (w->cur_c + 1 + chars <= max) {
		w->cur[w->cur_b++] = ' ';
		memcpy(w->cur + w->cur_b, s, len);
		w->cur_b += len;
		w->cur_c += 1 + chars;
		return HARK_OK;
	}
	rc = wrap_flush(w);
	if (rc == HARK_OK)
		wrap_set(w, s, len, chars);
	return rc;
}

void hark_layout_lines_free(char **lines, size_t n_lines)
{
	if (!lines)
		return;
	for (size_t i = 0; i < n_lines; i++)
		free(lines[i]);
	free(lines);
}

int hark_layout_wrap(const char *text, size_t max_chars, char ***lines, size_t *n_lines)
{
	struct wrapper w;
	size_t len, i = 0;
	int rc = HARK_OK;

	if (!lines || !n_lines)
		return HARK_ERR_INVALID_ARG;
	*lines = NULL;
	*n_lines = 0;
	if (!text)
		text = "";
	if (max_chars == 0)
		max_chars = 1;
	memset(&w, 0, sizeof(w));
	len = strlen(text);
	/* every line but a final empty one holds at least one code point, so
	 * this many slots are always enough: the array never grows */
	w.cap = utf8_count(text, len) + 1;
	w.v = calloc(w.cap, sizeof(*w.v));
	w.cur = malloc(len + 2);
	if (!w.v || !w.cur) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	while (i < len) {
		size_t start;

		while (i < len && is_space((unsigned char)text[i]))
			i++;
		if (i >= len)
			break;
		start = i;
		while (i < len && !is_space((unsigned char)text[i]))
			i++;
		rc = wrap_word(&w, text + start, i - start, utf8_count(text + start, i - start),
			       max_chars);
		if (rc)
			goto out;
	}
	rc = wrap_flush(&w);
	if (rc == HARK_OK && w.n == 0)
		rc = wrap_push(&w, "", 0);
out:
	free(w.cur);
	if (rc) {
		hark_layout_lines_free(w.v, w.n);
		return rc;
	}
	*lines = w.v;
	*n_lines = w.n;
	return HARK_OK;
}

/* ------------------------------------------------------------ measure --- */

/* The default font's regular and bold toy faces, created once and kept for
 * the process: while they live, cairo's toy face cache never has to
 * recreate them, which it does not do race-free when several threads
 * measure or paint at once. */
static pthread_once_t faces_once = PTHREAD_ONCE_INIT;
static cairo_font_face_t *default_faces[2];

static void faces_init(void)
{
	for (int b = 0; b < 2; b++)
		default_faces[b] = cairo_toy_font_face_create(
			DEFAULT_FONT, CAIRO_FONT_SLANT_NORMAL,
			b ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
}

struct meter {
	cairo_surface_t *surf;
	cairo_t *cr;
	const char *font;
};

static int meter_open(struct meter *m, const char *font)
{
	cairo_font_options_t *fo;

	m->font = font;
	m->surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 4, 4);
	m->cr = cairo_create(m->surf);
	if (cairo_status(m->cr) != CAIRO_STATUS_SUCCESS)
		return HARK_ERR_INTERNAL;
	fo = cairo_font_options_create();
	cairo_font_options_set_hint_metrics(fo, CAIRO_HINT_METRICS_OFF);
	cairo_font_options_set_hint_style(fo, CAIRO_HINT_STYLE_NONE);
	cairo_set_font_options(m->cr, fo);
	cairo_font_options_destroy(fo);
	return cairo_status(m->cr) == CAIRO_STATUS_SUCCESS ? HARK_OK : HARK_ERR_INTERNAL;
}

static void meter_close(struct meter *m)
{
	if (m->cr)
		cairo_destroy(m->cr);
	if (m->surf)
		cairo_surface_destroy(m->surf);
	m->cr = NULL;
	m->surf = NULL;
}

/* Width of the widest line and total height (lines x font height). */
static int measure_lines(struct meter *m, char *const *lines, size_t n, double size, int bold,
			 double *w, double *h)
{
	cairo_font_extents_t fe;
	double mw = 0;

	if (strcmp(m->font, DEFAULT_FONT) == 0 && pthread_once(&faces_once, faces_init) == 0 &&
	    default_faces[bold ? 1 : 0] &&
	    cairo_font_face_status(default_faces[bold ? 1 : 0]) == CAIRO_STATUS_SUCCESS)
		cairo_set_font_face(m->cr, default_faces[bold ? 1 : 0]);
	else
		cairo_select_font_face(m->cr, m->font, CAIRO_FONT_SLANT_NORMAL,
				       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(m->cr, size);
	cairo_font_extents(m->cr, &fe);
	for (size_t i = 0; i < n; i++) {
		cairo_text_extents_t te;

		cairo_text_extents(m->cr, lines[i], &te);
		mw = fmax(mw, fmax(te.x_advance, te.x_bearing + te.width));
	}
	*w = mw;
	*h = (double)n * fe.height;
	return cairo_status(m->cr) == CAIRO_STATUS_SUCCESS ? HARK_OK : HARK_ERR_INTERNAL;
}

static int measure_text(struct meter *m, const char *text, double size, int bold, double *w,
			double *h)
{
	char *one[1];

	one[0] = (char *)text;
	return measure_lines(m, one, 1, size, bold, w, h);
}

/* --------------------------------------------------------- geometry --- */

struct box {
	double x0, y0, x1, y1;
};

static void box_grow(struct box *b, double x0, double y0, double x1, double y1)
{
	b->x0 = fmin(b->x0, x0);
	b->y0 = fmin(b->y0, y0);
	b->x1 = fmax(b->x1, x1);
	b->y1 = fmax(b->y1, y1);
}

/* Where the ray from n's centre towards (tx, ty) leaves n's outline. */
static void node_exit(const struct hark_layout_node *n, double tx, double ty, double *ox,
		      double *oy)
{
	double dx = tx - n->x, dy = ty - n->y, a = n->w / 2, b = n->h / 2, s;

	if (fabs(dx) < 1e-9 && fabs(dy) < 1e-9) {
		*ox = n->x;
		*oy = n->y;
		return;
	}
	if (n->shape == HARK_SHAPE_DIAMOND)
		s = 1.0 / (fabs(dx) / a + fabs(dy) / b);
	else if (n->shape == HARK_SHAPE_ELLIPSE)
		s = 1.0 / sqrt((dx * dx) / (a * a) + (dy * dy) / (b * b));
	else
		s = fmin(fabs(dx) > 1e-9 ? a / fabs(dx) : INFINITY,
			 fabs(dy) > 1e-9 ? b / fabs(dy) : INFINITY);
	*ox = n->x + dx * s;
	*oy = n->y + dy * s;
}

/* Degenerate cubic Bezier for the straight line (x0,y0)-(x1,y1). */
static int edge_line(struct hark_layout_edge *e, double x0, double y0, double x1, double y1)
{
	double *p = malloc(8 * sizeof(*p));

	if (!p)
		return HARK_ERR_NOMEM;
	for (int k = 0; k < 4; k++) {
		p[2 * k] = x0 + (x1 - x0) * k / 3.0;
		p[2 * k + 1] = y0 + (y1 - y0) * k / 3.0;
	}
	free(e->pts);
	e->pts = p;
	e->n_pts = 4;
	return HARK_OK;
}

/* Straight edge between the outlines of a and b. */
static int edge_between(struct hark_layout_edge *e, const struct hark_layout_node *a,
			const struct hark_layout_node *b)
{
	double x0, y0, x1, y1;

	node_exit(a, b->x, b->y, &x0, &y0);
	node_exit(b, a->x, a->y, &x1, &y1);
	return edge_line(e, x0, y0, x1, y1);
}

/* Point of the path at its middle segment's t = 0.5. */
static void edge_mid(const struct hark_layout_edge *e, double *x, double *y)
{
	size_t segs = (e->n_pts - 1) / 3, s = segs / 2;
	const double *p = e->pts + 6 * s;

	if (segs % 2 == 0 && s > 0) {
		/* even count: the joint between the two middle segments */
		*x = p[0];
		*y = p[1];
		return;
	}
	*x = 0.125 * p[0] + 0.375 * p[2] + 0.375 * p[4] + 0.125 * p[6];
	*y = 0.125 * p[1] + 0.375 * p[3] + 0.375 * p[5] + 0.125 * p[7];
}

/* Distance from (x, y) to n's bounding box (0 inside). */
static double box_dist(const struct hark_layout_node *n, double x, double y)
{
	double dx = fmax(0.0, fabs(x - n->x) - n->w / 2), dy = fmax(0.0, fabs(y - n->y) - n->h / 2);

	return sqrt(dx * dx + dy * dy);
}

static int nodes_overlap(const struct hark_layout_node *a, const struct hark_layout_node *b,
			 double gap)
{
	return fabs(a->x - b->x) < (a->w + b->w) / 2 + gap &&
	       fabs(a->y - b->y) < (a->h + b->h) / 2 + gap;
}

/* ------------------------------------------------------------- work --- */

struct work {
	const struct hark_diagram *d;
	struct hark_layout_params p;
	struct hark_layout *out;
	struct meter m;
	size_t ef[HARK_DIAGRAM_MAX_EDGES], et[HARK_DIAGRAM_MAX_EDGES];
	double ew[HARK_DIAGRAM_MAX_EDGES], eh[HARK_DIAGRAM_MAX_EDGES]; /* edge label sizes */
	double gw[HARK_DIAGRAM_MAX_GROUPS], gh[HARK_DIAGRAM_MAX_GROUPS]; /* group label sizes */
	long node_group[HARK_DIAGRAM_MAX_NODES];                        /* -1 = none */
	int level[HARK_DIAGRAM_MAX_NODES];
	char *err;
	size_t errlen;
};

static size_t find_node(const struct hark_diagram *d, const char *id)
{
	for (size_t i = 0; i < d->n_nodes; i++)
		if (strcmp(d->nodes[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

static int kind_is(const struct hark_diagram_node *n, const char *k)
{
	return n->kind && strcmp(n->kind, k) == 0;
}

/* Mind map depth from the root and branch colour; hierarchy rank (longest
 * path from a root) into w->level and the nodes. */
static void assign_levels(struct work *w)
{
	const struct hark_diagram *d = w->d;
	struct hark_layout *l = w->out;

	for (size_t i = 0; i < d->n_nodes; i++)
		w->level[i] = 0;
	if (d->type != HARK_DIAGRAM_HIERARCHY && d->type != HARK_DIAGRAM_MINDMAP)
		return;
	/* relaxation over at most n rounds: the spec is acyclic (validated) */
	for (size_t round = 0; round < d->n_nodes; round++) {
		int changed = 0;
		for (size_t k = 0; k < d->n_edges; k++) {
			if (w->level[w->et[k]] < w->level[w->ef[k]] + 1) {
				w->level[w->et[k]] = w->level[w->ef[k]] + 1;
				changed = 1;
			}
		}
		if (!changed)
			break;
	}
	if (d->type == HARK_DIAGRAM_HIERARCHY) {
		for (size_t i = 0; i < d->n_nodes; i++)
			l->nodes[i].level = w->level[i];
	} else if (d->type == HARK_DIAGRAM_MINDMAP) {
		size_t parent[HARK_DIAGRAM_MAX_NODES];
		int branch = 0;

		for (size_t i = 0; i < d->n_nodes; i++)
			parent[i] = SIZE_MAX;
		for (size_t k = 0; k < d->n_edges; k++)
			parent[w->et[k]] = w->ef[k];
		for (size_t i = 0; i < d->n_nodes; i++) {
			l->nodes[i].level = w->level[i] > 2 ? 2 : w->level[i];
			l->nodes[i].color = 0;
			if (w->level[i] == 1)
				l->nodes[i].color = branch++ % 8;
		}
		for (size_t i = 0; i < d->n_nodes; i++) {
			size_t a = i;
			for (size_t hops = 0; hops < d->n_nodes && w->level[a] > 1; hops++)
				a = parent[a] == SIZE_MAX ? a : parent[a];
			if (w->level[a] == 1)
				l->nodes[i].color = l->nodes[a].color;
		}
	}
}

/* Shape, font, wrapped lines and size of every node; edge and group label
 * sizes. */
static int prepare(struct work *w)
{
	const struct hark_diagram *d = w->d;
	struct hark_layout *l = w->out;
	double fs = w->p.font_size, padx = 0.8 * fs, pady = 0.5 * fs;
	int rc;

	for (size_t k = 0; k < d->n_edges; k++) {
		w->ef[k] = find_node(d, d->edges[k].from);
		w->et[k] = find_node(d, d->edges[k].to);
		if (w->ef[k] == SIZE_MAX || w->et[k] == SIZE_MAX)
			return HARK_ERR_INTERNAL; /* validated: cannot happen */
	}
	for (size_t i = 0; i < d->n_nodes; i++) {
		w->node_group[i] = -1;
		for (size_t g = 0; d->nodes[i].group && g < d->n_groups; g++)
			if (strcmp(d->groups[g].id, d->nodes[i].group) == 0)
				w->node_group[i] = (long)g;
	}
	assign_levels(w);
	for (size_t i = 0; i < d->n_nodes; i++) {
		const struct hark_diagram_node *dn = &d->nodes[i];
		struct hark_layout_node *n = &l->nodes[i];
		size_t maxc = w->p.max_chars;
		int bold = 0;
		double tw, th;

		n->shape = HARK_SHAPE_BOX;
		n->font_size = fs;
		switch (d->type) {
		case HARK_DIAGRAM_FLOWCHART:
			if (kind_is(dn, "start") || kind_is(dn, "end"))
				n->shape = HARK_SHAPE_PILL;
			else if (kind_is(dn, "decision"))
				n->shape = HARK_SHAPE_DIAMOND;
			break;
		case HARK_DIAGRAM_MINDMAP:
			if (kind_is(dn, "root")) {
				n->shape = HARK_SHAPE_ELLIPSE;
				n->font_size = 1.2 * fs;
				bold = 1;
			} else {
				if (kind_is(dn, "subtopic")) {
					n->shape = HARK_SHAPE_PLAIN;
					n->font_size = 0.9 * fs;
				}
				if (maxc > TOPIC_MAX_CHARS)
					maxc = TOPIC_MAX_CHARS;
			}
			break;
		case HARK_DIAGRAM_HIERARCHY:
			if (kind_is(dn, "person"))
				n->shape = HARK_SHAPE_PERSON;
			break;
		case HARK_DIAGRAM_SEQUENCE:
			n->shape = HARK_SHAPE_HEAD;
			n->color = (int)(i % 8);
			bold = 1;
			break;
		default:
			break;
		}
		rc = hark_layout_wrap(dn->label, maxc, &n->lines, &n->n_lines);
		if (rc)
			return rc;
		rc = measure_lines(&w->m, n->lines, n->n_lines, n->font_size, bold, &tw, &th);
		if (rc)
			return rc;
		switch (n->shape) {
		case HARK_SHAPE_PILL:
			n->h = th + 2 * pady;
			n->w = tw + n->h + padx;
			break;
		case HARK_SHAPE_DIAMOND:
			/* the text rectangle (iw x ih) fits in the diamond when
			 * iw / w + ih / h <= 1: 0.6 + 0.4 */
			n->w = (tw + padx) / 0.6;
			n->h = (th + pady) / 0.4;
			break;
		case HARK_SHAPE_ELLIPSE:
			n->w = M_SQRT2 * (tw + 2 * padx);
			n->h = M_SQRT2 * (th + 2 * pady);
			break;
		case HARK_SHAPE_PLAIN:
			n->w = tw + padx;
			n->h = th + pady;
			break;
		case HARK_SHAPE_PERSON:
			/* room for the head marker on the left */
			n->w = tw + 2 * padx + 1.2 * fs;
			n->h = th + 2 * pady;
			break;
		default:
			n->w = tw + 2 * padx;
			n->h = th + 2 * pady;
			break;
		}
		n->w = ceil(fmax(n->w, 2.0 * fs));
		n->h = ceil(n->h);
	}
	for (size_t k = 0; k < d->n_edges; k++) {
		struct hark_layout_edge *e = &l->edges[k];

		e->font_size = EDGE_FONT_SCALE * fs;
		w->ew[k] = w->eh[k] = 0;
		if (!d->edges[k].label)
			continue;
		rc = hark_layout_wrap(d->edges[k].label, w->p.max_chars, &e->lines, &e->n_lines);
		if (rc == HARK_OK)
			rc = measure_lines(&w->m, e->lines, e->n_lines, e->font_size, 0, &w->ew[k],
					   &w->eh[k]);
		if (rc)
			return rc;
	}
	for (size_t g = 0; g < d->n_groups; g++) {
		l->groups[g].label = strdup(d->groups[g].label);
		if (!l->groups[g].label)
			return HARK_ERR_NOMEM;
		rc = measure_text(&w->m, d->groups[g].label, GROUP_FONT_SCALE * fs, 0, &w->gw[g],
				  &w->gh[g]);
		if (rc)
			return rc;
	}
	return HARK_OK;
}

/* ---------------------------------------------------------- graphviz --- */

static pthread_mutex_t gv_lock = PTHREAD_MUTEX_INITIALIZER;
static GVC_t *gv_ctx; /* created on first use under gv_lock, kept for the process */

struct gv {
	Agraph_t *g;
	Agnode_t *n[HARK_DIAGRAM_MAX_NODES];
	Agedge_t *e[HARK_DIAGRAM_MAX_EDGES];
	Agraph_t *c[HARK_DIAGRAM_MAX_GROUPS];
	int laid;
};

static void gv_setf(void *obj, const char *name, double v)
{
	char buf[48];

	snprintf(buf, sizeof(buf), "%.4f", v);
	agsafeset(obj, (char *)name, buf, "");
}

static void gv_set(void *obj, const char *name, const char *v)
{
	agsafeset(obj, (char *)name, (char *)v, "");
}

/* An empty HTML table of exactly w x h points as obj's label, so Graphviz
 * reserves the room without laying out any text. */
static void gv_label_box(Agraph_t *g, void *obj, double w, double h)
{
	char buf[200];
	char *s;

	snprintf(buf, sizeof(buf),
		 "<TABLE FIXEDSIZE=\"TRUE\" WIDTH=\"%d\" HEIGHT=\"%d\" BORDER=\"0\" "
		 "CELLBORDER=\"0\" CELLPADDING=\"0\" CELLSPACING=\"0\"><TR><TD></TD></TR></TABLE>",
		 (int)ceil(fmin(fmax(w, 1.0), 60000.0)), (int)ceil(fmin(fmax(h, 1.0), 60000.0)));
	s = agstrdup_html(g, buf);
	if (!s)
		return;
	agsafeset(obj, "label", s, "");
	agstrfree(g, s);
}

static void gv_close(struct gv *gv)
{
	if (gv->laid)
		gvFreeLayout(gv_ctx, gv->g);
	if (gv->g)
		agclose(gv->g);
	memset(gv, 0, sizeof(*gv));
}

static const char *gv_shape(int shape)
{
	switch (shape) {
	case HARK_SHAPE_DIAMOND:
		return "diamond";
	case HARK_SHAPE_ELLIPSE:
		return "ellipse";
	default:
		return "box";
	}
}

/* Opens a graph with every node (fixed size), every edge unless chain, and
 * (with_clusters) one cluster per non-empty group. Caller holds gv_lock. */
static int gv_build(struct work *w, struct gv *gv, int with_clusters, int with_edges)
{
	const struct hark_diagram *d = w->d;
	struct hark_layout *l = w->out;
	char name[64];

	gv->g = agopen("hark", Agdirected, NULL);
	if (!gv->g)
		return HARK_ERR_NOMEM;
	agattr(gv->g, AGNODE, "label", "");
	agattr(gv->g, AGNODE, "fixedsize", "true");
	agattr(gv->g, AGNODE, "margin", "0");
	agattr(gv->g, AGEDGE, "dir", "none");
	agattr(gv->g, AGEDGE, "label", "");
	for (size_t g = 0; with_clusters && g < d->n_groups; g++) {
		int used = 0;
		for (size_t i = 0; i < d->n_nodes; i++)
			used |= w->node_group[i] == (long)g;
		if (!used)
			continue;
		snprintf(name, sizeof(name), "cluster_%s", d->groups[g].id);
		gv->c[g] = agsubg(gv->g, name, 1);
		if (!gv->c[g])
			return HARK_ERR_NOMEM;
		gv_label_box(gv->g, gv->c[g], w->gw[g] + 4, w->gh[g] + 2);
		gv_set(gv->c[g], "labelloc", "t");
		gv_set(gv->c[g], "labeljust", "l");
		gv_setf(gv->c[g], "margin", 0.6 * w->p.node_gap);
	}
	for (size_t i = 0; i < d->n_nodes; i++) {
		snprintf(name, sizeof(name), "n%zu", i);
		gv->n[i] = agnode(gv->g, name, 1);
		if (!gv->n[i])
			return HARK_ERR_NOMEM;
		gv_set(gv->n[i], "shape", gv_shape(l->nodes[i].shape));
		gv_setf(gv->n[i], "width", l->nodes[i].w / PT_PER_IN);
		gv_setf(gv->n[i], "height", l->nodes[i].h / PT_PER_IN);
		if (w->node_group[i] >= 0 && gv->c[w->node_group[i]])
			agsubnode(gv->c[w->node_group[i]], gv->n[i], 1);
	}
	for (size_t k = 0; with_edges && k < d->n_edges; k++) {
		snprintf(name, sizeof(name), "e%zu", k);
		gv->e[k] = agedge(gv->g, gv->n[w->ef[k]], gv->n[w->et[k]], name, 1);
		if (!gv->e[k])
			return HARK_ERR_NOMEM;
		if (l->edges[k].n_lines > 0)
			gv_label_box(gv->g, gv->e[k], w->ew[k] + 6, w->eh[k] + 2);
	}
	return HARK_OK;
}

static int gv_layout(struct gv *gv, const char *engine)
{
	if (!gv_ctx) {
		agseterr(AGERR); /* warnings are not ours to print */
		gv_ctx = gvContext();
		if (!gv_ctx)
			return HARK_ERR_NOMEM;
	}
	if (gvLayout(gv_ctx, gv->g, engine) != 0)
		return HARK_ERR_INTERNAL;
	gv->laid = 1;
	return HARK_OK;
}

/* Node centres from Graphviz, y flipped. */
static void gv_read_nodes(struct work *w, struct gv *gv)
{
	for (size_t i = 0; i < w->d->n_nodes; i++) {
		w->out->nodes[i].x = ND_coord(gv->n[i]).x;
		w->out->nodes[i].y = -ND_coord(gv->n[i]).y;
	}
}

/* Edge k's path from Graphviz (first Bezier, oriented from its tail node),
 * or a straight line between the outlines when Graphviz gave none. */
static int gv_read_edge(struct work *w, struct gv *gv, size_t k)
{
	struct hark_layout_edge *e = &w->out->edges[k];
	const struct hark_layout_node *a = &w->out->nodes[w->ef[k]], *b = &w->out->nodes[w->et[k]];
	const splines *spl = gv->e[k] ? ED_spl(gv->e[k]) : NULL;
	size_t n;

	if (!spl || spl->size < 1 || spl->list[0].size < 4 || (spl->list[0].size - 1) % 3 != 0)
		return edge_between(e, a, b);
	n = (size_t)spl->list[0].size;
	e->pts = malloc(2 * n * sizeof(*e->pts));
	if (!e->pts)
		return HARK_ERR_NOMEM;
	e->n_pts = n;
	for (size_t i = 0; i < n; i++) {
		e->pts[2 * i] = spl->list[0].list[i].x;
		e->pts[2 * i + 1] = -spl->list[0].list[i].y;
	}
	/* back edges may come out head first: orient them tail to head */
	if (box_dist(a, e->pts[0], e->pts[1]) + box_dist(b, e->pts[2 * n - 2], e->pts[2 * n - 1]) >
	    box_dist(b, e->pts[0], e->pts[1]) + box_dist(a, e->pts[2 * n - 2], e->pts[2 * n - 1])) {
		for (size_t i = 0; i < n / 2; i++) {
			size_t j = n - 1 - i;
			double tx = e->pts[2 * i], ty = e->pts[2 * i + 1];
			e->pts[2 * i] = e->pts[2 * j];
			e->pts[2 * i + 1] = e->pts[2 * j + 1];
			e->pts[2 * j] = tx;
			e->pts[2 * j + 1] = ty;
		}
	}
	if (e->n_lines > 0) {
		const textlabel_t *lab = ED_label(gv->e[k]);
		if (lab && lab->set) {
			e->lx = lab->pos.x;
			e->ly = -lab->pos.y;
		} else {
			edge_mid(e, &e->lx, &e->ly);
		}
	}
	return HARK_OK;
}

/* Group boxes as the bounding boxes of their members plus padding and room
 * for the label on top (used where Graphviz has no clusters). */
static void groups_from_members(struct work *w, int include_lifelines)
{
	struct hark_layout *l = w->out;
	double pad = 0.6 * w->p.node_gap;

	for (size_t g = 0; g < w->d->n_groups; g++) {
		struct box b = {INFINITY, INFINITY, -INFINITY, -INFINITY};
		int any = 0;

		for (size_t i = 0; i < w->d->n_nodes; i++) {
			const struct hark_layout_node *n = &l->nodes[i];
			if (w->node_group[i] != (long)g)
				continue;
			any = 1;
			box_grow(&b, n->x - n->w / 2, n->y - n->h / 2, n->x + n->w / 2,
				 include_lifelines ? fmax(n->life_y1, n->y + n->h / 2)
						   : n->y + n->h / 2);
		}
		if (!any) {
			memset(&l->groups[g].x, 0, 4 * sizeof(double));
			continue;
		}
		b.x1 = fmax(b.x1, b.x0 + w->gw[g] + 4);
		l->groups[g].x = b.x0 - pad;
		l->groups[g].y = b.y0 - pad - w->gh[g] - 4;
		l->groups[g].w = b.x1 - b.x0 + 2 * pad;
		l->groups[g].h = b.y1 - b.y0 + 2 * pad + w->gh[g] + 4;
	}
}

/* -------------------------------------------------- dot: flow / tree --- */

static int dot_attempt(struct work *w, int with_clusters)
{
	struct gv gv;
	int rc;

	memset(&gv, 0, sizeof(gv));
	rc = gv_build(w, &gv, with_clusters, 1);
	if (rc)
		goto out;
	agattr(gv.g, AGRAPH, "rankdir", "TB");
	gv_setf(gv.g, "nodesep", w->p.node_gap / PT_PER_IN);
	gv_setf(gv.g, "ranksep", 1.5 * w->p.node_gap / PT_PER_IN);
	rc = gv_layout(&gv, "dot");
	if (rc)
		goto out;
	gv_read_nodes(w, &gv);
	for (size_t k = 0; k < w->d->n_edges && rc == HARK_OK; k++)
		rc = gv_read_edge(w, &gv, k);
	if (rc)
		goto out;
	for (size_t g = 0; g < w->d->n_groups; g++) {
		struct hark_layout_group *lg = &w->out->groups[g];
		if (!gv.c[g])
			continue;
		boxf bb = GD_bb(gv.c[g]);
		lg->x = bb.LL.x;
		lg->y = -bb.UR.y;
		lg->w = bb.UR.x - bb.LL.x;
		lg->h = bb.UR.y - bb.LL.y;
	}
	if (!with_clusters)
		groups_from_members(w, 0);
out:
	gv_close(&gv);
	return rc;
}

static void reset_edges(struct work *w)
{
	for (size_t k = 0; k < w->d->n_edges; k++) {
		free(w->out->edges[k].pts);
		w->out->edges[k].pts = NULL;
		w->out->edges[k].n_pts = 0;
	}
}

static int place_dot(struct work *w)
{
	int rc, clusters = w->d->n_groups > 0;

	for (size_t k = 0; k < w->d->n_edges; k++)
		w->out->edges[k].arrow = w->d->type == HARK_DIAGRAM_FLOWCHART;
	pthread_mutex_lock(&gv_lock);
	rc = dot_attempt(w, clusters);
	if (rc == HARK_ERR_INTERNAL && clusters) {
		/* dot occasionally refuses cluster constraints: lay out without */
		reset_edges(w);
		rc = dot_attempt(w, 0);
	}
	pthread_mutex_unlock(&gv_lock);
	if (rc == HARK_ERR_INTERNAL)
		hark_errbuf_set(w->err, w->errlen, "graphviz dot could not lay out the %s",
				hark_diagram_type_name(w->d->type));
	return rc;
}

/* ------------------------------------------------------ sequence ------ */

static int reply_like(const char *s)
{
	static const char *const words[] = {"return", "repl", "respon", "ok", "ack", "answer"};
	char low[16];
	size_t n = 0;

	if (!s)
		return 0;
	while (*s == ' ')
		s++;
	while (n + 1 < sizeof(low) && s[n] && s[n] != ' ') {
		char c = s[n];
		low[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	low[n] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t L = strlen(words[i]);
		if (strncmp(low, words[i], L) != 0)
			continue;
		/* the short words only as whole words ("ok", "ack") */
		if (L <= 3 && low[L] >= 'a' && low[L] <= 'z')
			continue;
		return 1;
	}
	return 0;
}

/* 1 when message a comes before message b (seq, then index). */
static int msg_before(const struct hark_diagram *d, size_t a, size_t b)
{
	if (d->edges[a].seq != d->edges[b].seq)
		return d->edges[a].seq < d->edges[b].seq;
	return a < b;
}

static int place_sequence(struct work *w)
{
	const struct hark_diagram *d = w->d;
	struct hark_layout *l = w->out;
	size_t nn = d->n_nodes, ne = d->n_edges, order[HARK_DIAGRAM_MAX_EDGES];
	double gap = w->p.node_gap, head_h = 0, loop_w = 2.2 * gap, y;
	struct gv gv;
	int rc;

	for (size_t i = 0; i < nn; i++)
		head_h = fmax(head_h, l->nodes[i].h);
	for (size_t i = 0; i < nn; i++)
		l->nodes[i].h = head_h;
	/* the participant row: a dot LR chain in spec order */
	memset(&gv, 0, sizeof(gv));
	pthread_mutex_lock(&gv_lock);
	rc = gv_build(w, &gv, 0, 0);
	if (rc)
		goto unlock;
	agattr(gv.g, AGRAPH, "rankdir", "LR");
	gv_setf(gv.g, "ranksep", gap / PT_PER_IN);
	for (size_t i = 0; i + 1 < nn; i++) {
		Agedge_t *e = agedge(gv.g, gv.n[i], gv.n[i + 1], NULL, 1);
		if (!e) {
			rc = HARK_ERR_NOMEM;
			goto unlock;
		}
		gv_set(e, "style", "invis");
	}
	rc = gv_layout(&gv, "dot");
	if (rc == HARK_OK)
		gv_read_nodes(w, &gv);
unlock:
	gv_close(&gv);
	pthread_mutex_unlock(&gv_lock);
	if (rc) {
		if (rc == HARK_ERR_INTERNAL)
			hark_errbuf_set(w->err, w->errlen, "graphviz dot could not place participants");
		return rc;
	}
	/* keep the row strictly left to right with at least gap between heads */
	for (size_t i = 1; i < nn; i++) {
		double min = l->nodes[i - 1].x + (l->nodes[i - 1].w + l->nodes[i].w) / 2 + gap;
		if (l->nodes[i].x < min)
			l->nodes[i].x = min;
	}
	for (size_t i = 0; i < nn; i++)
		l->nodes[i].y = head_h / 2;
	/* messages in seq order (insertion sort: at most 120) */
	for (size_t k = 0; k < ne; k++) {
		size_t j = k;
		order[k] = k;
		while (j > 0 && msg_before(d, order[j], order[j - 1])) {
			size_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
			j--;
		}
	}
	/* widen the row where a label needs more room than its arrow spans;
	 * handled by rightmost participant so earlier fixes stay valid */
	for (size_t hi = 0; hi < nn; hi++) {
		for (size_t k = 0; k < ne; k++) {
			size_t a = w->ef[k], b = w->et[k], lo = a < b ? a : b, top = a < b ? b : a;
			double need;

			if (a == b) {
				if (a + 1 != hi)
					continue;
				lo = a;
				need = loop_w + w->ew[k] + 12;
			} else {
				if (top != hi)
					continue;
				need = w->ew[k] + 16;
			}
			double have = l->nodes[hi].x - l->nodes[lo].x;
			if (have < need)
				for (size_t j = hi; j < nn; j++)
					l->nodes[j].x += need - have;
		}
	}
	/* message rows */
	y = head_h + 0.8 * gap;
	for (size_t r = 0; r < ne; r++) {
		size_t k = order[r], a = w->ef[k], b = w->et[k];
		struct hark_layout_edge *e = &l->edges[k];
		double ay = y + w->eh[k] + 4, xa = l->nodes[a].x, xb = l->nodes[b].x;

		e->arrow = 1;
		e->dashed = reply_like(d->edges[k].label);
		if (a == b) {
			double *p = malloc(8 * sizeof(*p));
			if (!p)
				return HARK_ERR_NOMEM;
			double pts[8] = {xa, ay, xa + loop_w, ay, xa + loop_w, ay + gap, xa, ay + gap};
			memcpy(p, pts, sizeof(pts));
			e->pts = p;
			e->n_pts = 4;
			e->lx = xa + loop_w + 6 + w->ew[k] / 2;
			e->ly = ay + gap / 2;
			ay += gap;
		} else {
			rc = edge_line(e, xa, ay, xb, ay);
			if (rc)
				return rc;
			e->lx = (xa + xb) / 2;
			e->ly = ay - 3 - w->eh[k] / 2;
		}
		y = ay + 0.8 * gap;
	}
	for (size_t i = 0; i < nn; i++)
		l->nodes[i].life_y1 = y + 0.7 * gap;
	groups_from_members(w, 1);
	return HARK_OK;
}

/* ----------------------------------------------------------- mind map --- */

/* Pushes overlapping nodes apart (deterministic; the root stays put);
 * returns 1 when anything moved. */
static int push_apart(struct work *w, size_t root)
{
	struct hark_layout *l = w->out;
	double gap = 0.5 * w->p.node_gap;
	int moved = 0;

	for (int it = 0; it < PUSH_ITERATIONS; it++) {
		int any = 0;
		for (size_t i = 0; i < l->n_nodes; i++) {
			for (size_t j = i + 1; j < l->n_nodes; j++) {
				struct hark_layout_node *a = &l->nodes[i], *b = &l->nodes[j];
				if (!nodes_overlap(a, b, gap))
					continue;
				double dx = b->x - a->x, dy = b->y - a->y;
				double ox = (a->w + b->w) / 2 + gap - fabs(dx);
				double oy = (a->h + b->h) / 2 + gap - fabs(dy);
				double sx = dx < 0 ? -1 : 1, sy = dy < 0 ? -1 : 1;
				double fa = i == root ? 0.0 : (j == root ? 1.0 : 0.5), fb = 1.0 - fa;
				if (ox < oy) {
					a->x -= sx * ox * fa + sx * 0.5;
					b->x += sx * ox * fb + sx * 0.5;
				} else {
					a->y -= sy * oy * fa + sy * 0.5;
					b->y += sy * oy * fb + sy * 0.5;
				}
				any = 1;
			}
		}
		if (!any)
			break;
		moved = 1;
	}
	return moved;
}

/* Ring distances for twopi (":"-separated increments, inches) into seps.
 * twopi gives every subtree an angular span proportional to its leaves and
 * centres each node in its span, so two neighbours on ring k are at least
 * (m1 + m2) / 2 leaf slots apart, m1 <= m2 the two smallest leaf counts of
 * that ring; the ring radius makes that chord a diagonal plus gap, and
 * consecutive rings are a diagonal plus gap apart, so no boxes can meet. */
static size_t ring_seps(struct work *w, size_t root, char *seps, size_t cap)
{
	const struct hark_diagram *d = w->d;
	const struct hark_layout *l = w->out;
	double diag[HARK_DIAGRAM_MAX_NODES], m1[HARK_DIAGRAM_MAX_NODES];
	double m2[HARK_DIAGRAM_MAX_NODES], leaves[HARK_DIAGRAM_MAX_NODES];
	double gap = w->p.node_gap, prev_r = 0, total = 0;
	int maxlev = 0;
	size_t used = 0;

	for (size_t i = 0; i < d->n_nodes; i++) {
		diag[i] = 0;
		m1[i] = m2[i] = INFINITY;
		leaves[i] = 1;
		if (w->level[i] > maxlev)
			maxlev = w->level[i];
	}
	for (size_t k = 0; k < d->n_edges; k++)
		leaves[w->ef[k]] = 0;
	/* subtree leaf counts, deepest ring first (the spec is a tree) */
	for (int lev = maxlev; lev >= 1; lev--)
		for (size_t k = 0; k < d->n_edges; k++)
			if (w->level[w->et[k]] == lev)
				leaves[w->ef[k]] += leaves[w->et[k]];
	total = leaves[root];
	for (size_t i = 0; i < d->n_nodes; i++) {
		int lev = w->level[i];
		diag[lev] = fmax(diag[lev], hypot(l->nodes[i].w, l->nodes[i].h));
		if (leaves[i] < m1[lev]) {
			m2[lev] = m1[lev];
			m1[lev] = leaves[i];
		} else if (leaves[i] < m2[lev]) {
			m2[lev] = leaves[i];
		}
	}
	seps[0] = '\0';
	for (int lev = 1; lev <= maxlev; lev++) {
		double r = prev_r + (diag[lev - 1] + diag[lev]) / 2 + gap;
		if (isfinite(m2[lev]) && total >= 2) {
			double half = fmin(M_PI * (m1[lev] + m2[lev]) / (2.0 * total), M_PI / 2);
			r = fmax(r, (diag[lev] + gap) / (2.0 * sin(half)));
		}
		int n = snprintf(seps + used, cap - used, "%s%.4f", lev > 1 ? ":" : "",
				 (r - prev_r) / PT_PER_IN);
		if (n > 0 && (size_t)n < cap - used)
			used += (size_t)n;
		prev_r = r;
	}
	return used;
}

static int place_mindmap(struct work *w)
{
	const struct hark_diagram *d = w->d;
	struct hark_layout *l = w->out;
	size_t root = 0, used;
	char seps[HARK_DIAGRAM_MAX_NODES * 12 + 8];
	struct gv gv;
	int rc;

	for (size_t i = 0; i < d->n_nodes; i++)
		if (kind_is(&d->nodes[i], "root"))
			root = i;
	used = ring_seps(w, root, seps, sizeof(seps));
	for (size_t k = 0; k < d->n_edges; k++)
		l->edges[k].arrow = 0;
	memset(&gv, 0, sizeof(gv));
	pthread_mutex_lock(&gv_lock);
	rc = gv_build(w, &gv, 0, 1);
	if (rc)
		goto unlock;
	gv_set(gv.g, "root", agnameof(gv.n[root]));
	if (used)
		gv_set(gv.g, "ranksep", seps);
	gv_set(gv.g, "overlap", "true");
	gv_set(gv.g, "splines", "false");
	rc = gv_layout(&gv, "twopi");
	if (rc)
		goto unlock;
	gv_read_nodes(w, &gv);
	for (size_t k = 0; k < d->n_edges && rc == HARK_OK; k++)
		rc = gv_read_edge(w, &gv, k);
unlock:
	gv_close(&gv);
	pthread_mutex_unlock(&gv_lock);
	if (rc) {
		if (rc == HARK_ERR_INTERNAL)
			hark_errbuf_set(w->err, w->errlen, "graphviz twopi could not lay out the mind map");
		return rc;
	}
	if (push_apart(w, root)) {
		reset_edges(w);
		for (size_t k = 0; k < d->n_edges && rc == HARK_OK; k++)
			rc = edge_between(&l->edges[k], &l->nodes[w->ef[k]], &l->nodes[w->et[k]]);
	}
	for (size_t k = 0; k < d->n_edges && rc == HARK_OK; k++)
		if (l->edges[k].n_lines > 0)
			edge_mid(&l->edges[k], &l->edges[k].lx, &l->edges[k].ly);
	if (rc == HARK_OK)
		groups_from_members(w, 0);
	return rc;
}

/* ----------------------------------------------------------- timeline --- */

static int place_timeline(struct work *w)
{
	const struct hark_diagram *d = w->d;
	struct hark_layout *l = w->out;
	size_t n = d->n_nodes, ord[HARK_DIAGRAM_MAX_NODES], nt = 0;
	double fs = w->p.font_size, gap = w->p.node_gap, tick_w = 0, tick_h = 0, maxw = 0;
	double dmin = INFINITY, base, stem;
	char lab[HARK_DIAGRAM_MAX_NODES][24];
	int rc;

	if (n == 0 || n > HARK_DIAGRAM_MAX_NODES)
		return HARK_ERR_INTERNAL; /* validated: cannot happen */
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		ord[i] = i;
		while (j > 0 && (d->nodes[ord[j]].order < d->nodes[ord[j - 1]].order ||
				 (d->nodes[ord[j]].order == d->nodes[ord[j - 1]].order &&
				  ord[j] < ord[j - 1]))) {
			size_t t = ord[j];
			ord[j] = ord[j - 1];
			ord[j - 1] = t;
			j--;
		}
	}
	for (size_t k = 0; k < n; k++) {
		const struct hark_diagram_node *dn = &d->nodes[ord[k]];
		double tw, th;

		if (dn->date && strlen(dn->date) >= 7)
			snprintf(lab[k], sizeof(lab[k]), "%.7s", dn->date);
		else
			snprintf(lab[k], sizeof(lab[k]), "%zu", k + 1);
		rc = measure_text(&w->m, lab[k], TICK_FONT_SCALE * fs, 0, &tw, &th);
		if (rc)
			return rc;
		tick_w = fmax(tick_w, tw);
		tick_h = fmax(tick_h, th);
		maxw = fmax(maxw, l->nodes[ord[k]].w);
		if (k > 0) {
			double dd = dn->order - d->nodes[ord[k - 1]].order;
			if (dd > 0 && dd < dmin)
				dmin = dd;
		}
	}
	/* consecutive events at least base apart (tick labels fit), at most
	 * 3 x base (long quiet stretches are compressed); same-side cards
	 * (every other event) never overlap */
	base = fmax(tick_w + 0.5 * gap, 0.55 * maxw);
	stem = 1.6 * tick_h + gap;
	for (size_t k = 0; k < n; k++) {
		struct hark_layout_node *nd = &l->nodes[ord[k]];
		double x = 0;

		if (k > 0) {
			double dd = d->nodes[ord[k]].order - d->nodes[ord[k - 1]].order;
			double step = isfinite(dmin) ? base * dd / dmin : base;
			x = l->nodes[ord[k - 1]].x + fmin(fmax(step, base), 3.0 * base);
		}
		if (k > 1) {
			const struct hark_layout_node *s = &l->nodes[ord[k - 2]];
			x = fmax(x, s->x + (s->w + nd->w) / 2 + gap);
		}
		nd->x = x;
		nd->y = (k % 2 == 0) ? -(stem + nd->h / 2) : stem + nd->h / 2;
		nd->color = (int)(k % 2);
	}
	l->has_axis = 1;
	l->axis_y = 0;
	l->axis_x0 = l->nodes[ord[0]].x - l->nodes[ord[0]].w / 2 - 0.5 * gap;
	l->axis_x1 = l->nodes[ord[n - 1]].x + l->nodes[ord[n - 1]].w / 2 + 0.5 * gap;
	for (size_t k = 0; k < n; k++) {
		const struct hark_layout_node *nd = &l->nodes[ord[k]];
		l->axis_x0 = fmin(l->axis_x0, nd->x - nd->w / 2 - 0.5 * gap);
		l->axis_x1 = fmax(l->axis_x1, nd->x + nd->w / 2 + 0.5 * gap);
	}
	l->tick_x = calloc(n, sizeof(*l->tick_x));
	l->tick_label = calloc(n, sizeof(*l->tick_label));
	if (!l->tick_x || !l->tick_label)
		return HARK_ERR_NOMEM;
	for (size_t k = 0; k < n; k++) {
		if (nt > 0 && strcmp(l->tick_label[nt - 1], lab[k]) == 0)
			continue;
		l->tick_label[nt] = strdup(lab[k]);
		if (!l->tick_label[nt])
			return HARK_ERR_NOMEM;
		l->tick_x[nt] = l->nodes[ord[k]].x;
		l->n_ticks = ++nt;
	}
	for (size_t k = 0; k < d->n_edges; k++) {
		struct hark_layout_edge *e = &l->edges[k];
		e->arrow = 1;
		e->dashed = 1;
		rc = edge_between(e, &l->nodes[w->ef[k]], &l->nodes[w->et[k]]);
		if (rc)
			return rc;
		if (e->n_lines > 0)
			edge_mid(e, &e->lx, &e->ly);
	}
	groups_from_members(w, 0);
	return HARK_OK;
}

/* -------------------------------------------------------- finishing --- */

/* Translates everything so the drawing starts at (margin, margin) and sets
 * width and height. */
static void normalise(struct work *w)
{
	struct hark_layout *l = w->out;
	struct box b = {INFINITY, INFINITY, -INFINITY, -INFINITY};
	double margin = w->p.node_gap, dx, dy, tick_h = TICK_FONT_SCALE * w->p.font_size * 1.5;

	for (size_t i = 0; i < l->n_nodes; i++) {
		const struct hark_layout_node *n = &l->nodes[i];
		double bottom = n->y + n->h / 2;
		if (w->d->type == HARK_DIAGRAM_SEQUENCE)
			bottom = fmax(bottom, n->life_y1);
		box_grow(&b, n->x - n->w / 2, n->y - n->h / 2, n->x + n->w / 2, bottom);
	}
	for (size_t k = 0; k < l->n_edges; k++) {
		const struct hark_layout_edge *e = &l->edges[k];
		for (size_t i = 0; i < e->n_pts; i++)
			box_grow(&b, e->pts[2 * i], e->pts[2 * i + 1], e->pts[2 * i],
				 e->pts[2 * i + 1]);
		if (e->n_lines > 0)
			box_grow(&b, e->lx - w->ew[k] / 2, e->ly - w->eh[k] / 2, e->lx + w->ew[k] / 2,
				 e->ly + w->eh[k] / 2);
	}
	for (size_t g = 0; g < l->n_groups; g++)
		if (l->groups[g].w > 0)
			box_grow(&b, l->groups[g].x, l->groups[g].y, l->groups[g].x + l->groups[g].w,
				 l->groups[g].y + l->groups[g].h);
	if (l->has_axis)
		box_grow(&b, l->axis_x0, l->axis_y - tick_h, l->axis_x1, l->axis_y + tick_h);
	dx = margin - b.x0;
	dy = margin - b.y0;
	for (size_t i = 0; i < l->n_nodes; i++) {
		l->nodes[i].x += dx;
		l->nodes[i].y += dy;
		if (w->d->type == HARK_DIAGRAM_SEQUENCE)
			l->nodes[i].life_y1 += dy;
	}
	for (size_t k = 0; k < l->n_edges; k++) {
		struct hark_layout_edge *e = &l->edges[k];
		for (size_t i = 0; i < e->n_pts; i++) {
			e->pts[2 * i] += dx;
			e->pts[2 * i + 1] += dy;
		}
		e->lx += dx;
		e->ly += dy;
	}
	for (size_t g = 0; g < l->n_groups; g++) {
		if (l->groups[g].w > 0) {
			l->groups[g].x += dx;
			l->groups[g].y += dy;
		}
	}
	if (l->has_axis) {
		l->axis_x0 += dx;
		l->axis_x1 += dx;
		l->axis_y += dy;
		for (size_t t = 0; t < l->n_ticks; t++)
			l->tick_x[t] += dx;
	}
	l->width = b.x1 - b.x0 + 2 * margin;
	l->height = b.y1 - b.y0 + 2 * margin;
}

void hark_layout_free(struct hark_layout *l)
{
	if (!l)
		return;
	for (size_t i = 0; l->nodes && i < l->n_nodes; i++)
		hark_layout_lines_free(l->nodes[i].lines, l->nodes[i].n_lines);
	for (size_t k = 0; l->edges && k < l->n_edges; k++) {
		free(l->edges[k].pts);
		hark_layout_lines_free(l->edges[k].lines, l->edges[k].n_lines);
	}
	for (size_t g = 0; l->groups && g < l->n_groups; g++)
		free(l->groups[g].label);
	for (size_t t = 0; l->tick_label && t < l->n_ticks; t++)
		free(l->tick_label[t]);
	free(l->nodes);
	free(l->edges);
	free(l->groups);
	free(l->tick_x);
	free(l->tick_label);
	free(l->title);
	memset(l, 0, sizeof(*l));
}

int hark_layout_compute(const struct hark_diagram *d, const struct hark_layout_params *p,
			struct hark_layout *out, char *err, size_t errlen)
{
	struct work *w = NULL;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (out)
		memset(out, 0, sizeof(*out));
	if (!d || !out) {
		hark_errbuf_set(err, errlen, "layout: NULL %s", d ? "output" : "diagram");
		return HARK_ERR_INVALID_ARG;
	}
	rc = hark_diagram_validate(d, err, errlen);
	if (rc)
		return HARK_ERR_FORMAT;
	w = calloc(1, sizeof(*w));
	if (!w) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	w->d = d;
	w->out = out;
	w->err = err;
	w->errlen = errlen;
	w->p = p ? *p : hark_layout_default_params();
	if (!w->p.font || !*w->p.font)
		w->p.font = DEFAULT_FONT;
	if (!(w->p.font_size >= 4.0 && w->p.font_size <= 200.0) ||
	    !(w->p.node_gap >= 0.0 && w->p.node_gap <= 500.0) || w->p.max_chars == 0 ||
	    w->p.max_chars > HARK_DIAGRAM_MAX_LABEL) {
		hark_errbuf_set(err, errlen,
				"layout: font_size 4..200, node_gap 0..500 and max_chars 1..%d",
				HARK_DIAGRAM_MAX_LABEL);
		rc = HARK_ERR_INVALID_ARG;
		goto out;
	}
	out->nodes = calloc(d->n_nodes, sizeof(*out->nodes));
	out->edges = d->n_edges ? calloc(d->n_edges, sizeof(*out->edges)) : NULL;
	out->groups = d->n_groups ? calloc(d->n_groups, sizeof(*out->groups)) : NULL;
	out->title = strdup(d->title);
	if (!out->nodes || (d->n_edges && !out->edges) || (d->n_groups && !out->groups) ||
	    !out->title) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	out->n_nodes = d->n_nodes;
	out->n_edges = d->n_edges;
	out->n_groups = d->n_groups;
	rc = meter_open(&w->m, w->p.font);
	if (rc == HARK_OK)
		rc = prepare(w);
	if (rc)
		goto out;
	switch (d->type) {
	case HARK_DIAGRAM_FLOWCHART:
	case HARK_DIAGRAM_HIERARCHY:
		rc = place_dot(w);
		break;
	case HARK_DIAGRAM_SEQUENCE:
		rc = place_sequence(w);
		break;
	case HARK_DIAGRAM_MINDMAP:
		rc = place_mindmap(w);
		break;
	default:
		rc = place_timeline(w);
		break;
	}
	if (rc)
		goto out;
	for (size_t k = 0; k < d->n_edges; k++) {
		if (out->edges[k].n_pts < 4 || out->edges[k].n_pts % 3 != 1) {
			hark_errbuf_set(err, errlen, "layout: edges[%zu] has no usable path", k);
			rc = HARK_ERR_INTERNAL;
			goto out;
		}
	}
	normalise(w);
out:
	if (w)
		meter_close(&w->m);
	free(w);
	if (rc) {
		if (rc == HARK_ERR_NOMEM)
			hark_errbuf_set(err, errlen, "layout: out of memory");
		else if (rc == HARK_ERR_INTERNAL && err && errlen && !err[0])
			hark_errbuf_set(err, errlen, "layout: cairo could not measure text");
		hark_layout_free(out);
	}
	return rc;
}
