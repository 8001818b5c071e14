/*
 * Diagram painter (see draw.h for the contract): fits a laid-out spec into a
 * target rectangle and paints it with cairo, node shapes by layout shape,
 * colours by theme and palette index, edges as the layout's Bezier paths
 * with filled arrowheads, then the title line and the caption band in
 * device space. A frame's look at time t is reduced to a small "scene
 * state" (per element a fade step 0..FADE_STEPS, the current element, the
 * caption index) computed by one function that both the painter and
 * hark_draw_scene_key use, so equal keys give identical pixels by
 * construction. The painter keeps no state between calls: everything lives
 * on the stack of the call (element counts are bounded by the spec caps),
 * and every drawn string is first copied into a stack buffer as valid UTF-8
 * so a bad label can never put the cairo context into an error state.
 */
#include "render/draw.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-svg.h>

#include "hark/hark.h"
#include "util/errbuf.h"
#include "util/textnorm.h"

#define FADE_S 0.35          /* fade-in length, seconds */
#define FADE_STEPS 8         /* alpha quantisation of the fade */
#define SCALE_MAX 2.0        /* never blow a small layout up further */
#define LINE_SPACING 1.25    /* line height / font size for wrapped labels */
#define DEFAULT_PT 14.0      /* label size when the layout gives none */
#define TEXT_MAX 1024        /* bytes of one drawn string after cleaning */
#define CAPTION_WORDS 256    /* words of a caption considered for wrapping */
#define OUT_CAP ((size_t)64 << 20) /* largest SVG / PNG we return */
#define IMG_MIN 16
#define IMG_MAX 8192
#define SVG_PAD 32.0         /* SVG margin around the layout, points */
#define SVG_TITLE_PT 18.0
#define ARROW_LEN 9.0        /* arrowhead length and half width, layout units */
#define ARROW_HALF 4.5

#define MAX_N HARK_DIAGRAM_MAX_NODES
#define MAX_E HARK_DIAGRAM_MAX_EDGES
#define MAX_G HARK_DIAGRAM_MAX_GROUPS

/* ------------------------------------------------------------- themes --- */

static const struct hark_draw_theme theme_light = {
	.bg = {0.984, 0.988, 0.992},
	.text = {0.129, 0.149, 0.180},
	.muted = {0.443, 0.486, 0.549},
	.node_fill = {0.925, 0.945, 0.973},
	.node_stroke = {0.549, 0.616, 0.710},
	.edge = {0.424, 0.471, 0.545},
	.accent = {0.914, 0.392, 0.082},
	.palette = {{0.349, 0.553, 0.855},
		    {0.290, 0.675, 0.467},
		    {0.929, 0.631, 0.184},
		    {0.573, 0.447, 0.847},
		    {0.192, 0.667, 0.714},
		    {0.886, 0.408, 0.588},
		    {0.600, 0.647, 0.251},
		    {0.502, 0.549, 0.647}},
	.caption_bg = {0.918, 0.929, 0.945, 0.97},
	.font = "DejaVu Sans",
};

static const struct hark_draw_theme theme_dark = {
	.bg = {0.071, 0.078, 0.090},
	.text = {0.906, 0.922, 0.945},
	.muted = {0.584, 0.620, 0.675},
	.node_fill = {0.133, 0.149, 0.176},
	.node_stroke = {0.376, 0.420, 0.494},
	.edge = {0.561, 0.608, 0.678},
	.accent = {1.000, 0.620, 0.251},
	.palette = {{0.451, 0.651, 0.949},
		    {0.400, 0.796, 0.580},
		    {0.980, 0.749, 0.302},
		    {0.702, 0.580, 0.949},
		    {0.302, 0.780, 0.820},
		    {0.949, 0.522, 0.702},
		    {0.722, 0.780, 0.349},
		    {0.620, 0.667, 0.757}},
	.caption_bg = {0.027, 0.031, 0.039, 0.92},
	.font = "DejaVu Sans",
};

struct hark_draw_theme hark_draw_theme_get(int dark)
{
	return dark ? theme_dark : theme_light;
}

struct hark_draw_params hark_draw_default_params(double w, double h)
{
	struct hark_draw_params p;

	memset(&p, 0, sizeof(p));
	p.dark = 0;
	p.t = -1.0;
	p.w = w;
	p.h = h;
	p.show_title = 1;
	p.captions = NULL;
	p.n_captions = 0;
	p.caption_h = 0.0;
	return p;
}

/* ------------------------------------------------------ argument checks --- */

static int finite_nonneg(double v)
{
	return isfinite(v) && v >= 0.0;
}

static int check_params(const struct hark_draw_params *p)
{
	if (!p || !isfinite(p->x) || !isfinite(p->y) || !isfinite(p->w) || !isfinite(p->h) ||
	    p->w <= 0.0 || p->h <= 0.0 || !isfinite(p->t) || !finite_nonneg(p->caption_h))
		return HARK_ERR_INVALID_ARG;
	if (p->n_captions > 0 && !p->captions)
		return HARK_ERR_INVALID_ARG;
	return HARK_OK;
}

static int check_layout(const struct hark_layout *l)
{
	if (!l || !isfinite(l->width) || !isfinite(l->height))
		return HARK_ERR_INVALID_ARG;
	if ((l->n_nodes && !l->nodes) || (l->n_edges && !l->edges) || (l->n_groups && !l->groups))
		return HARK_ERR_INVALID_ARG;
	if (l->n_ticks && (!l->tick_x || !l->tick_label))
		return HARK_ERR_INVALID_ARG;
	return HARK_OK;
}

/* The spec and the layout belong together and fit the stack arrays. */
static int check_pair(const struct hark_diagram *d, const struct hark_layout *l)
{
	if (!d || check_layout(l))
		return HARK_ERR_INVALID_ARG;
	if (d->n_nodes != l->n_nodes || d->n_edges != l->n_edges || d->n_groups != l->n_groups)
		return HARK_ERR_INVALID_ARG;
	if (d->n_nodes > MAX_N || d->n_edges > MAX_E || d->n_groups > MAX_G)
		return HARK_ERR_INVALID_ARG;
	if ((d->n_nodes && !d->nodes) || (d->n_edges && !d->edges) || (d->n_groups && !d->groups))
		return HARK_ERR_INVALID_ARG;
	return HARK_OK;
}

/* ---------------------------------------------------------------- fit --- */

/* Where layout units land in device space, and the bands around them. */
struct fit {
	double s;          /* device units per layout unit */
	double ox, oy;     /* device position of layout (0, 0) */
	double margin;
	double title_px;   /* title font size, device units */
	double title_band; /* height reserved for the title (0 = none) */
	double caption_h;  /* height of the caption band (0 = none) */
};

static double clampd(double v, double lo, double hi)
{
	return v < lo ? lo : (v > hi ? hi : v);
}

static int layout_has_title(const struct hark_layout *l, const struct hark_draw_params *p)
{
	return p->show_title && l->title && l->title[0];
}

static void fit_compute(const struct hark_layout *l, const struct hark_draw_params *p,
			struct fit *f)
{
	double aw, ah, lw, lh;

	f->margin = clampd(fmin(p->w, p->h) * 0.04, 4.0, 48.0);
	f->title_px = clampd(p->h * 0.042, 11.0, 34.0);
	f->title_band = layout_has_title(l, p) ? f->title_px * 1.9 : 0.0;
	f->caption_h = fmin(p->caption_h, p->h);
	aw = p->w - 2.0 * f->margin;
	ah = p->h - 2.0 * f->margin - f->title_band - f->caption_h;
	if (aw < 1.0)
		aw = 1.0;
	if (ah < 1.0)
		ah = 1.0;
	lw = l->width > 1e-6 ? l->width : 1.0;
	lh = l->height > 1e-6 ? l->height : 1.0;
	f->s = fmin(aw / lw, ah / lh);
	if (f->s > SCALE_MAX)
		f->s = SCALE_MAX;
	f->ox = p->x + f->margin + (aw - lw * f->s) / 2.0;
	f->oy = p->y + f->margin + f->title_band + (ah - lh * f->s) / 2.0;
}

int hark_draw_node_rect(const struct hark_layout *l, const struct hark_draw_params *p, size_t i,
			double rect[4])
{
	const struct hark_layout_node *n;
	struct fit f;

	if (check_layout(l) || check_params(p) || !rect || i >= l->n_nodes)
		return HARK_ERR_INVALID_ARG;
	fit_compute(l, p, &f);
	n = &l->nodes[i];
	rect[0] = f.ox + (n->x - n->w / 2.0) * f.s;
	rect[1] = f.oy + (n->y - n->h / 2.0) * f.s;
	rect[2] = n->w * f.s;
	rect[3] = n->h * f.s;
	return HARK_OK;
}

/* -------------------------------------------------------- scene state --- */

/* Everything time-dependent about a frame. */
struct state {
	unsigned char node_step[MAX_N]; /* 0 hidden, 1..FADE_STEPS fading in / shown */
	unsigned char edge_step[MAX_E];
	int edge_from[MAX_E];           /* node index of each end, -1 unknown */
	int edge_to[MAX_E];
	long current;                   /* -1 none; node i; or n_nodes + edge j */
	long caption;                   /* caption shown, -1 none */
};

static int node_index(const struct hark_diagram *d, const char *id)
{
	if (!id)
		return -1;
	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].id && strcmp(d->nodes[i].id, id) == 0)
			return (int)i;
	return -1;
}

/* Fade step at t >= 0 of an element that starts at start (< 0 = unknown:
 * shown from the beginning, without a fade). */
static int fade_step(double t, double start)
{
	double k;

	if (start < 0.0)
		return FADE_STEPS;
	if (t < start)
		return 0;
	k = floor((t - start) / FADE_S * FADE_STEPS) + 1.0;
	return k >= FADE_STEPS ? FADE_STEPS : (int)k;
}

/* The caption spoken at t: the last one starting at or before t, if t is
 * before its end (an unknown end lasts until the next caption). */
static long caption_at(const struct hark_draw_params *p, double t)
{
	size_t lo = 0, hi = p->n_captions;
	double end;
	size_t i;

	if (t < 0.0 || p->n_captions == 0)
		return -1;
	while (lo < hi) { /* first caption starting after t */
		size_t mid = lo + (hi - lo) / 2;
		if (p->captions[mid].start_s <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -1;
	i = lo - 1;
	if (!p->captions[i].text || !p->captions[i].text[0])
		return -1;
	end = p->captions[i].end_s;
	if (end < p->captions[i].start_s)
		end = i + 1 < p->n_captions ? p->captions[i + 1].start_s : INFINITY;
	return t < end ? (long)i : -1;
}

/* Which of (start_a, rank_a) and (start_b, rank_b) comes later. */
static int later(double sa, long ra, double sb, long rb)
{
	return sa > sb || (sa == sb && ra > rb);
}

static void state_compute(const struct hark_diagram *d, const struct hark_draw_params *p,
			  struct state *st)
{
	double t = p->t, best_s = -1.0;
	long best_r = -1;

	st->current = -1;
	st->caption = -1;
	for (size_t j = 0; j < d->n_edges; j++) {
		st->edge_from[j] = node_index(d, d->edges[j].from);
		st->edge_to[j] = node_index(d, d->edges[j].to);
	}
	if (t < 0.0) {
		memset(st->node_step, FADE_STEPS, sizeof(st->node_step));
		memset(st->edge_step, FADE_STEPS, sizeof(st->edge_step));
		return;
	}
	for (size_t i = 0; i < d->n_nodes; i++) {
		double s = d->nodes[i].span.start_s;
		st->node_step[i] = (unsigned char)fade_step(t, s);
		/* Ties: nodes rank after edges, then by index. */
		if (st->node_step[i] && s >= 0.0 && later(s, (long)(MAX_E + i), best_s, best_r)) {
			best_s = s;
			best_r = (long)(MAX_E + i);
			st->current = (long)i;
		}
	}
	for (size_t j = 0; j < d->n_edges; j++) {
		double own = d->edges[j].span.start_s, eff = -1.0;
		int a = st->edge_from[j], b = st->edge_to[j];

		if ((a >= 0 && !st->node_step[a]) || (b >= 0 && !st->node_step[b]) ||
		    (own >= 0.0 && t < own)) {
			st->edge_step[j] = 0;
			continue;
		}
		eff = own;
		if (a >= 0 && d->nodes[a].span.start_s > eff)
			eff = d->nodes[a].span.start_s;
		if (b >= 0 && d->nodes[b].span.start_s > eff)
			eff = d->nodes[b].span.start_s;
		st->edge_step[j] = (unsigned char)fade_step(t, eff);
		if (st->edge_step[j] && own >= 0.0 && later(eff, (long)j, best_s, best_r)) {
			best_s = eff;
			best_r = (long)j;
			st->current = (long)(d->n_nodes + j);
		}
	}
	st->caption = caption_at(p, t);
}

/* FNV-1a over bytes, finished with a splitmix64 mix. */
static uint64_t fnv_bytes(uint64_t h, const void *data, size_t n)
{
	const unsigned char *b = data;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t fnv_double(uint64_t h, double v)
{
	uint64_t bits;

	if (v == 0.0)
		v = 0.0; /* -0 and +0 paint alike */
	memcpy(&bits, &v, sizeof(bits));
	return fnv_bytes(h, &bits, sizeof(bits));
}

static uint64_t fnv_long(uint64_t h, long v)
{
	int64_t w = v;

	return fnv_bytes(h, &w, sizeof(w));
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

unsigned long long hark_draw_scene_key(const struct hark_diagram *d, const struct hark_layout *l,
				       const struct hark_draw_params *p)
{
	struct state st;
	uint64_t h = 0xcbf29ce484222325ULL;

	if (check_pair(d, l) || check_params(p))
		return 0;
	state_compute(d, p, &st);
	h = fnv_long(h, p->dark ? 1 : 0);
	h = fnv_long(h, p->show_title ? 1 : 0);
	h = fnv_long(h, p->t < 0.0 ? 1 : 0);
	h = fnv_double(h, p->x);
	h = fnv_double(h, p->y);
	h = fnv_double(h, p->w);
	h = fnv_double(h, p->h);
	h = fnv_double(h, p->caption_h);
	h = fnv_long(h, (long)d->n_nodes);
	h = fnv_long(h, (long)d->n_edges);
	h = fnv_bytes(h, st.node_step, d->n_nodes);
	h = fnv_bytes(h, st.edge_step, d->n_edges);
	h = fnv_long(h, st.current);
	h = fnv_long(h, st.caption);
	if (st.caption >= 0) /* the words too, should the caller swap the list */
		h = fnv_bytes(h, p->captions[st.caption].text,
			      strlen(p->captions[st.caption].text));
	h = mix64(h);
	return h ? h : 1;
}

/* -------------------------------------------------------------- text --- */

/* Copies s into buf (cap >= 1 bytes) as valid UTF-8 without control
 * characters (invalid bytes become U+FFFD, controls a space), cut at a
 * character boundary. Returns the length. */
static size_t clean_text(const char *s, char *buf, size_t cap)
{
	size_t len = s ? strlen(s) : 0, i = 0, n = 0;

	while (i < len) {
		uint32_t cp;
		char enc[4];
		size_t m;

		i += hark_textnorm_utf8_decode(s + i, len - i, &cp);
		if (cp < 0x20 || cp == 0x7f)
			cp = ' ';
		m = hark_textnorm_utf8_encode(cp, enc);
		if (n + m + 1 > cap)
			break;
		memcpy(buf + n, enc, m);
		n += m;
	}
	buf[n] = '\0';
	return n;
}

static void set_font(cairo_t *cr, const char *family, int bold, double size)
{
	cairo_select_font_face(cr, family, CAIRO_FONT_SLANT_NORMAL,
			       bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
	cairo_set_font_size(cr, size);
}

static double text_advance(cairo_t *cr, const char *clean)
{
	cairo_text_extents_t te;

	cairo_text_extents(cr, clean, &te);
	return te.x_advance;
}

static void set_rgba(cairo_t *cr, const double c[3], double a)
{
	cairo_set_source_rgba(cr, c[0], c[1], c[2], a);
}

static void mix(const double a[3], const double b[3], double k, double out[3])
{
	for (int i = 0; i < 3; i++)
		out[i] = a[i] * k + b[i] * (1.0 - k);
}

/* Draws n lines centred on (cx, cy) in the current font; size is the font
 * size (for the line height). */
static void draw_lines(cairo_t *cr, char *const *lines, size_t n, double size, double cx,
		       double cy)
{
	cairo_font_extents_t fe;
	double lh = size * LINE_SPACING, top = cy - lh * (double)n / 2.0;
	char buf[TEXT_MAX];

	cairo_font_extents(cr, &fe);
	for (size_t k = 0; k < n; k++) {
		double base = top + lh * (double)k + lh / 2.0 + (fe.ascent - fe.descent) / 2.0;

		if (!lines[k] || !clean_text(lines[k], buf, sizeof(buf)))
			continue;
		cairo_move_to(cr, cx - text_advance(cr, buf) / 2.0, base);
		cairo_show_text(cr, buf);
	}
}

static double font_pt(double v)
{
	return (isfinite(v) && v > 0.5) ? v : DEFAULT_PT;
}

/* ------------------------------------------------------------ painter --- */

struct painter {
	cairo_t *cr;
	const struct hark_diagram *d;
	const struct hark_layout *l;
	const struct hark_draw_params *p;
	struct hark_draw_theme th;
	struct fit f;
	struct state st;
	double lw; /* base line width, layout units */
};

static double step_alpha(int step)
{
	return (double)step / FADE_STEPS;
}

static void path_round_rect(cairo_t *cr, double x, double y, double w, double h, double r)
{
	r = fmin(r, fmin(w, h) / 2.0);
	if (r <= 0.0) {
		cairo_rectangle(cr, x, y, w, h);
		return;
	}
	cairo_new_sub_path(cr);
	cairo_arc(cr, x + w - r, y + r, r, -M_PI / 2.0, 0.0);
	cairo_arc(cr, x + w - r, y + h - r, r, 0.0, M_PI / 2.0);
	cairo_arc(cr, x + r, y + h - r, r, M_PI / 2.0, M_PI);
	cairo_arc(cr, x + r, y + r, r, M_PI, 1.5 * M_PI);
	cairo_close_path(cr);
}

static void path_node(cairo_t *cr, const struct hark_layout_node *n)
{
	double x = n->x - n->w / 2.0, y = n->y - n->h / 2.0;

	cairo_new_path(cr);
	switch (n->shape) {
	case HARK_SHAPE_PILL:
		path_round_rect(cr, x, y, n->w, n->h, n->h / 2.0);
		break;
	case HARK_SHAPE_DIAMOND:
		cairo_move_to(cr, n->x, y);
		cairo_line_to(cr, x + n->w, n->y);
		cairo_line_to(cr, n->x, y + n->h);
		cairo_line_to(cr, x, n->y);
		cairo_close_path(cr);
		break;
	case HARK_SHAPE_ELLIPSE:
		cairo_save(cr);
		cairo_translate(cr, n->x, n->y);
		cairo_scale(cr, n->w / 2.0, n->h / 2.0);
		cairo_arc(cr, 0.0, 0.0, 1.0, 0.0, 2.0 * M_PI);
		cairo_close_path(cr);
		cairo_restore(cr);
		break;
	default:
		path_round_rect(cr, x, y, n->w, n->h, fmin(8.0, n->h / 4.0));
		break;
	}
}

static const double *palette(const struct painter *pt, int color)
{
	return pt->th.palette[(color % 8 + 8) % 8];
}

/* Fill and stroke colours of node i, and whether its label is bold. */
static void node_colors(const struct painter *pt, size_t i, double fill[3], double stroke[3],
			int *bold)
{
	const struct hark_layout_node *n = &pt->l->nodes[i];
	const double *c = palette(pt, n->color);
	int type = pt->d->type;

	*bold = 0;
	memcpy(fill, pt->th.node_fill, sizeof(pt->th.node_fill));
	memcpy(stroke, pt->th.node_stroke, sizeof(pt->th.node_stroke));
	if (n->shape == HARK_SHAPE_PILL || n->shape == HARK_SHAPE_DIAMOND) {
		c = pt->th.palette[n->shape == HARK_SHAPE_PILL ? 1 : 2];
		mix(c, pt->th.bg, 0.2, fill);
		memcpy(stroke, c, 3 * sizeof(double));
	} else if (n->shape == HARK_SHAPE_ELLIPSE || n->shape == HARK_SHAPE_HEAD) {
		mix(c, pt->th.bg, 0.32, fill);
		memcpy(stroke, c, 3 * sizeof(double));
		*bold = 1;
	} else if (type == HARK_DIAGRAM_MINDMAP || type == HARK_DIAGRAM_TIMELINE ||
		   type == HARK_DIAGRAM_SEQUENCE) {
		mix(c, pt->th.bg, 0.2, fill);
		memcpy(stroke, c, 3 * sizeof(double));
	} else if (type == HARK_DIAGRAM_HIERARCHY && n->level == 0) {
		/* the top of a hierarchy stands out by colour; bold would not fit
		 * the box, which layout.c measures in the regular weight */
		mix(pt->th.palette[0], pt->th.bg, 0.22, fill);
		memcpy(stroke, pt->th.palette[0], 3 * sizeof(double));
	}
}

/* The accent glow and thick outline around the current element's path
 * (the path is kept). */
static void stroke_highlight(const struct painter *pt, double a)
{
	cairo_t *cr = pt->cr;

	set_rgba(cr, pt->th.accent, 0.10 * a);
	cairo_set_line_width(cr, pt->lw * 9.0);
	cairo_stroke_preserve(cr);
	set_rgba(cr, pt->th.accent, 0.18 * a);
	cairo_set_line_width(cr, pt->lw * 5.5);
	cairo_stroke_preserve(cr);
}

/* A round badge with a head-and-shoulders icon at the top-left corner of a
 * person node. */
static void draw_person_badge(const struct painter *pt, const struct hark_layout_node *n,
			      double a)
{
	cairo_t *cr = pt->cr;
	double r = clampd(n->h * 0.22, 5.0, 11.0);
	double cx = n->x - n->w / 2.0 + r + 4.0, cy = n->y - n->h / 2.0;

	cairo_new_path(cr);
	cairo_arc(cr, cx, cy, r, 0.0, 2.0 * M_PI);
	set_rgba(cr, palette(pt, n->color), a);
	cairo_fill_preserve(cr);
	cairo_save(cr);
	cairo_clip(cr);
	set_rgba(cr, pt->th.bg, a);
	cairo_new_path(cr);
	cairo_arc(cr, cx, cy - r * 0.22, r * 0.36, 0.0, 2.0 * M_PI);
	cairo_fill(cr);
	cairo_arc(cr, cx, cy + r * 0.85, r * 0.62, 0.0, 2.0 * M_PI);
	cairo_fill(cr);
	cairo_restore(cr);
}

static void draw_node(const struct painter *pt, size_t i)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout_node *n = &pt->l->nodes[i];
	double a = step_alpha(pt->st.node_step[i]), fill[3], stroke[3];
	double size = font_pt(n->font_size);
	int bold, cur = pt->st.current == (long)i;

	if (!a || !isfinite(n->x) || !isfinite(n->y) || !isfinite(n->w) || !isfinite(n->h))
		return;
	node_colors(pt, i, fill, stroke, &bold);
	if (n->shape == HARK_SHAPE_PLAIN) {
		double y = n->y + n->h / 2.0 - pt->lw;

		if (cur) {
			cairo_new_path(cr);
			path_round_rect(cr, n->x - n->w / 2.0 - 4.0, n->y - n->h / 2.0 - 2.0,
					n->w + 8.0, n->h + 4.0, 6.0);
			set_rgba(cr, pt->th.accent, 0.14 * a);
			cairo_fill(cr);
		}
		cairo_new_path(cr);
		cairo_move_to(cr, n->x - n->w / 2.0, y);
		cairo_line_to(cr, n->x + n->w / 2.0, y);
		set_rgba(cr, cur ? pt->th.accent : palette(pt, n->color), a);
		cairo_set_line_width(cr, pt->lw * (cur ? 3.0 : 1.6));
		cairo_stroke(cr);
	} else if (n->w > 0.0 && n->h > 0.0) {
		path_node(cr, n);
		if (cur)
			stroke_highlight(pt, a);
		set_rgba(cr, fill, a);
		cairo_fill_preserve(cr);
		set_rgba(cr, cur ? pt->th.accent : stroke, a);
		cairo_set_line_width(cr, pt->lw * (cur ? 2.8 : (bold ? 1.5 : 1.0)));
		cairo_stroke(cr);
		if (n->shape == HARK_SHAPE_PERSON)
			draw_person_badge(pt, n, a);
	}
	if (n->n_lines && n->lines) {
		set_font(cr, pt->th.font, bold, size);
		set_rgba(cr, pt->th.text, a);
		draw_lines(cr, n->lines, n->n_lines, size, n->x, n->y);
	}
}

/* Sequence lifelines (under everything of their participant). */
static void draw_lifeline(const struct painter *pt, size_t i)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout_node *n = &pt->l->nodes[i];
	double a = step_alpha(pt->st.node_step[i]), y0 = n->y + n->h / 2.0;
	double dash[2] = {5.0, 4.0};

	if (!a || n->shape != HARK_SHAPE_HEAD || !(n->life_y1 > y0) || !isfinite(n->life_y1))
		return;
	cairo_new_path(cr);
	cairo_move_to(cr, n->x, y0);
	cairo_line_to(cr, n->x, n->life_y1);
	cairo_set_dash(cr, dash, 2, 0.0);
	cairo_set_line_width(cr, pt->lw * 1.2);
	set_rgba(cr, pt->th.muted, 0.8 * a);
	cairo_stroke(cr);
	cairo_set_dash(cr, NULL, 0, 0.0);
}

static int axis_ok(const struct hark_layout *l)
{
	return l->has_axis && isfinite(l->axis_x0) && isfinite(l->axis_x1) && isfinite(l->axis_y);
}

/* Timeline: the connector from an event card to the axis, with a dot. */
static void draw_connector(const struct painter *pt, size_t i)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout_node *n = &pt->l->nodes[i];
	double a = step_alpha(pt->st.node_step[i]), ay = pt->l->axis_y, edge_y;
	const double *c = pt->st.current == (long)i ? pt->th.accent : palette(pt, n->color);

	if (!a || !axis_ok(pt->l))
		return;
	edge_y = n->y < ay ? n->y + n->h / 2.0 : n->y - n->h / 2.0;
	cairo_new_path(cr);
	cairo_move_to(cr, n->x, edge_y);
	cairo_line_to(cr, n->x, ay);
	cairo_set_line_width(cr, pt->lw * 1.2);
	set_rgba(cr, c, a);
	cairo_stroke(cr);
	cairo_arc(cr, n->x, ay, 4.5, 0.0, 2.0 * M_PI);
	set_rgba(cr, pt->th.bg, a);
	cairo_fill_preserve(cr);
	set_rgba(cr, c, a);
	cairo_set_line_width(cr, pt->lw * 2.0);
	cairo_stroke(cr);
}

/* Timeline axis line, arrow and tick marks (under the event connectors). */
static void draw_axis(const struct painter *pt)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout *l = pt->l;

	if (!axis_ok(l))
		return;
	cairo_new_path(cr);
	cairo_move_to(cr, l->axis_x0, l->axis_y);
	cairo_line_to(cr, l->axis_x1, l->axis_y);
	cairo_set_line_width(cr, pt->lw * 2.2);
	cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
	set_rgba(cr, pt->th.muted, 1.0);
	cairo_stroke(cr);
	cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
	if (l->axis_x1 > l->axis_x0) { /* a small arrow at the future end */
		cairo_move_to(cr, l->axis_x1 + 6.0, l->axis_y);
		cairo_line_to(cr, l->axis_x1 - 3.0, l->axis_y - 5.0);
		cairo_line_to(cr, l->axis_x1 - 3.0, l->axis_y + 5.0);
		cairo_close_path(cr);
		cairo_fill(cr);
	}
	cairo_set_line_width(cr, pt->lw * 1.2);
	for (size_t k = 0; k < l->n_ticks; k++) {
		if (!isfinite(l->tick_x[k]))
			continue;
		cairo_move_to(cr, l->tick_x[k], l->axis_y - 5.0);
		cairo_line_to(cr, l->tick_x[k], l->axis_y + 5.0);
	}
	cairo_stroke(cr);
}

/* Tick labels below the axis, each on a patch of background so that event
 * connectors crossing them do not strike the text through. */
static void draw_tick_labels(const struct painter *pt)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout *l = pt->l;
	double size = DEFAULT_PT * 0.8;
	char buf[TEXT_MAX];
	cairo_font_extents_t fe;

	if (!axis_ok(l))
		return;
	set_font(cr, pt->th.font, 0, size);
	cairo_font_extents(cr, &fe);
	for (size_t k = 0; k < l->n_ticks; k++) {
		double x = l->tick_x[k], adv, top = l->axis_y + 8.0;

		if (!isfinite(x) || !l->tick_label[k] || !clean_text(l->tick_label[k], buf, sizeof(buf)))
			continue;
		adv = text_advance(cr, buf);
		cairo_new_path(cr);
		path_round_rect(cr, x - adv / 2.0 - 3.0, top - 1.0, adv + 6.0,
				fe.ascent + fe.descent + 2.0, 3.0);
		set_rgba(cr, pt->th.bg, 1.0);
		cairo_fill(cr);
		set_rgba(cr, pt->th.muted, 1.0);
		cairo_move_to(cr, x - adv / 2.0, top + fe.ascent);
		cairo_show_text(cr, buf);
	}
}

/* Group clusters: visible (and as opaque as) their most visible member. */
static void draw_groups(const struct painter *pt)
{
	cairo_t *cr = pt->cr;
	const struct hark_diagram *d = pt->d;
	double size = DEFAULT_PT * 0.85;
	char buf[TEXT_MAX];
	cairo_font_extents_t fe;

	set_font(cr, pt->th.font, 1, size);
	cairo_font_extents(cr, &fe);
	for (size_t g = 0; g < pt->l->n_groups; g++) {
		const struct hark_layout_group *lg = &pt->l->groups[g];
		const double *c = pt->th.palette[g % 8];
		int members = 0, step = 0;
		double a, tint[3];

		if (!(lg->w > 0.0) || !(lg->h > 0.0) || !isfinite(lg->x) || !isfinite(lg->y))
			continue;
		for (size_t i = 0; i < d->n_nodes; i++) {
			if (!d->nodes[i].group || !d->groups[g].id ||
			    strcmp(d->nodes[i].group, d->groups[g].id) != 0)
				continue;
			members++;
			if (pt->st.node_step[i] > step)
				step = pt->st.node_step[i];
		}
		a = members ? step_alpha(step) : 1.0;
		if (!a)
			continue;
		mix(c, pt->th.bg, 0.07, tint);
		cairo_new_path(cr);
		path_round_rect(cr, lg->x, lg->y, lg->w, lg->h, 10.0);
		set_rgba(cr, tint, a);
		cairo_fill_preserve(cr);
		set_rgba(cr, c, 0.55 * a);
		cairo_set_line_width(cr, pt->lw * 1.2);
		cairo_stroke(cr);
		if (lg->label && clean_text(lg->label, buf, sizeof(buf))) {
			set_rgba(cr, pt->th.muted, a);
			cairo_move_to(cr, lg->x + 10.0, lg->y + 6.0 + fe.ascent);
			cairo_show_text(cr, buf);
		}
	}
}

/* The last point of the edge's path that differs from its end, for the
 * arrow direction; returns 0 when the path is a single point. */
static int arrow_dir(const struct hark_layout_edge *e, double *dx, double *dy)
{
	double ex = e->pts[2 * (e->n_pts - 1)], ey = e->pts[2 * (e->n_pts - 1) + 1];

	for (size_t k = e->n_pts - 1; k-- > 0;) {
		double vx = ex - e->pts[2 * k], vy = ey - e->pts[2 * k + 1];
		double len = hypot(vx, vy);

		if (len > 1e-6) {
			*dx = vx / len;
			*dy = vy / len;
			return 1;
		}
	}
	return 0;
}

static int edge_path_ok(const struct hark_layout_edge *e)
{
	if (!e->pts || e->n_pts < 4 || e->n_pts % 3 != 1)
		return 0;
	for (size_t k = 0; k < 2 * e->n_pts; k++)
		if (!isfinite(e->pts[k]))
			return 0;
	return 1;
}

static void draw_edge(const struct painter *pt, size_t j)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout_edge *e = &pt->l->edges[j];
	double a = step_alpha(pt->st.edge_step[j]), dx = 0.0, dy = 0.0, back = 0.0;
	double dash[2] = {6.0, 4.0};
	const double *c = pt->th.edge;
	int cur = pt->st.current == (long)(pt->d->n_nodes + j), has_arrow;
	size_t last;

	if (!a || !edge_path_ok(e))
		return;
	if (pt->d->type == HARK_DIAGRAM_MINDMAP && pt->st.edge_to[j] >= 0)
		c = palette(pt, pt->l->nodes[pt->st.edge_to[j]].color);
	if (cur)
		c = pt->th.accent;
	has_arrow = e->arrow && arrow_dir(e, &dx, &dy);
	last = e->n_pts - 1;
	if (has_arrow) /* end the line inside the arrowhead so it does not poke out */
		back = ARROW_LEN * 0.6;
	cairo_new_path(cr);
	cairo_move_to(cr, e->pts[0], e->pts[1]);
	for (size_t k = 1; k + 2 <= last; k += 3) {
		double x3 = e->pts[2 * (k + 2)], y3 = e->pts[2 * (k + 2) + 1];

		if (k + 2 == last) {
			x3 -= dx * back;
			y3 -= dy * back;
		}
		cairo_curve_to(cr, e->pts[2 * k], e->pts[2 * k + 1], e->pts[2 * (k + 1)],
			       e->pts[2 * (k + 1) + 1], x3, y3);
	}
	if (e->dashed)
		cairo_set_dash(cr, dash, 2, 0.0);
	if (cur) {
		stroke_highlight(pt, a);
	}
	set_rgba(cr, c, a);
	cairo_set_line_width(cr, pt->lw * (cur ? 3.0 : 1.4));
	cairo_stroke(cr);
	cairo_set_dash(cr, NULL, 0, 0.0);
	if (has_arrow) {
		double ex = e->pts[2 * last], ey = e->pts[2 * last + 1];
		double k = cur ? 1.35 : 1.0;
		double bx = ex - dx * ARROW_LEN * k, by = ey - dy * ARROW_LEN * k;

		cairo_move_to(cr, ex, ey);
		cairo_line_to(cr, bx - dy * ARROW_HALF * k, by + dx * ARROW_HALF * k);
		cairo_line_to(cr, bx + dy * ARROW_HALF * k, by - dx * ARROW_HALF * k);
		cairo_close_path(cr);
		set_rgba(cr, c, a);
		cairo_fill(cr);
	}
}

/* Edge labels on a small rounded background, above every edge. */
static void draw_edge_label(const struct painter *pt, size_t j)
{
	cairo_t *cr = pt->cr;
	const struct hark_layout_edge *e = &pt->l->edges[j];
	double a = step_alpha(pt->st.edge_step[j]), size = font_pt(e->font_size), wmax = 0.0;
	double lh = size * LINE_SPACING, bw, bh;
	int cur = pt->st.current == (long)(pt->d->n_nodes + j);
	char buf[TEXT_MAX];

	if (!a || !e->n_lines || !e->lines || !isfinite(e->lx) || !isfinite(e->ly))
		return;
	set_font(cr, pt->th.font, 0, size);
	for (size_t k = 0; k < e->n_lines; k++) {
		if (e->lines[k] && clean_text(e->lines[k], buf, sizeof(buf)))
			wmax = fmax(wmax, text_advance(cr, buf));
	}
	if (wmax <= 0.0)
		return;
	bw = wmax + size * 0.8;
	bh = lh * (double)e->n_lines + size * 0.3;
	cairo_new_path(cr);
	path_round_rect(cr, e->lx - bw / 2.0, e->ly - bh / 2.0, bw, bh, fmin(6.0, bh / 2.0));
	set_rgba(cr, pt->th.bg, 0.92 * a);
	cairo_fill_preserve(cr);
	set_rgba(cr, cur ? pt->th.accent : pt->th.node_stroke, (cur ? 1.0 : 0.5) * a);
	cairo_set_line_width(cr, pt->lw * (cur ? 1.6 : 0.8));
	cairo_stroke(cr);
	set_rgba(cr, pt->th.text, a);
	draw_lines(cr, e->lines, e->n_lines, size, e->lx, e->ly);
}

static void draw_title(const struct painter *pt)
{
	cairo_t *cr = pt->cr;
	const struct hark_draw_params *p = pt->p;
	char buf[TEXT_MAX];
	size_t n;
	double size = pt->f.title_px, wmax = p->w - 2.0 * pt->f.margin, adv;
	cairo_font_extents_t fe;

	if (!pt->f.title_band)
		return;
	n = clean_text(pt->l->title, buf, sizeof(buf) - 24);
	if (pt->d->pages > 1)
		snprintf(buf + n, sizeof(buf) - n, "  (%d/%d)", pt->d->page, pt->d->pages);
	set_font(cr, pt->th.font, 1, size);
	adv = text_advance(cr, buf);
	if (adv > wmax && adv > 0.0) { /* shrink a long title to fit */
		size = fmax(6.0, size * wmax / adv);
		set_font(cr, pt->th.font, 1, size);
		adv = text_advance(cr, buf);
	}
	cairo_font_extents(cr, &fe);
	set_rgba(cr, pt->th.text, 1.0);
	cairo_move_to(cr, p->x + (p->w - adv) / 2.0,
		      p->y + pt->f.margin + pt->f.title_band / 2.0 + (fe.ascent - fe.descent) / 2.0);
	cairo_show_text(cr, buf);
}

/* ------------------------------------------------------------ captions --- */

struct words {
	char text[TEXT_MAX];
	size_t off[CAPTION_WORDS], len[CAPTION_WORDS];
	double adv[CAPTION_WORDS];
	size_t n;
};

/* Splits the tail of s (the most recent words when it is very long) into
 * words and measures them in the current font. */
static void words_split(cairo_t *cr, const char *s, struct words *w)
{
	size_t len = strlen(s), start = 0, i, n;

	if (len > TEXT_MAX / 2) { /* keep the end, from a character boundary */
		start = len - TEXT_MAX / 2;
		while (start < len && ((unsigned char)s[start] & 0xc0) == 0x80)
			start++;
	}
	n = clean_text(s + start, w->text, sizeof(w->text));
	w->n = 0;
	i = 0;
	while (i < n) {
		size_t b;

		while (i < n && w->text[i] == ' ')
			i++;
		if (i >= n)
			break;
		b = i;
		while (i < n && w->text[i] != ' ')
			i++;
		if (w->n == CAPTION_WORDS) { /* drop the oldest word */
			memmove(w->off, w->off + 1, (CAPTION_WORDS - 1) * sizeof(w->off[0]));
			memmove(w->len, w->len + 1, (CAPTION_WORDS - 1) * sizeof(w->len[0]));
			w->n--;
		}
		w->off[w->n] = b;
		w->len[w->n] = i - b;
		w->n++;
	}
	for (size_t k = 0; k < w->n; k++) {
		char save = w->text[w->off[k] + w->len[k]];

		w->text[w->off[k] + w->len[k]] = '\0';
		w->adv[k] = text_advance(cr, w->text + w->off[k]);
		w->text[w->off[k] + w->len[k]] = save;
	}
}

/* Joins words [a, b) (with an ellipsis first when ell) into out. */
static void words_join(const struct words *w, size_t a, size_t b, int ell, char *out, size_t cap)
{
	size_t n = 0;

	out[0] = '\0';
	if (ell && cap > 5) {
		memcpy(out, "\xe2\x80\xa6 ", 4);
		n = 4;
	}
	for (size_t k = a; k < b; k++) {
		size_t need = w->len[k] + (k > a ? 1 : 0);

		if (n + need + 1 > cap)
			break;
		if (k > a)
			out[n++] = ' ';
		memcpy(out + n, w->text + w->off[k], w->len[k]);
		n += w->len[k];
	}
	out[n] = '\0';
}

/* At most two lines of the caption, keeping the most recent words. */
static void caption_lines(cairo_t *cr, const struct words *w, double maxw, char *l1, char *l2,
			  size_t cap)
{
	double sp = text_advance(cr, " "), ell = text_advance(cr, "\xe2\x80\xa6 "), cur = 0.0;
	size_t lines = 1, brk = 0, k, b;

	l1[0] = l2[0] = '\0';
	for (k = 0; k < w->n; k++) { /* forward greedy: does it fit in two? */
		if (k > 0 && cur + sp + w->adv[k] > maxw) {
			if (++lines > 2)
				break;
			brk = k;
			cur = w->adv[k];
		} else {
			cur += (k > 0 ? sp : 0.0) + w->adv[k];
		}
	}
	if (lines == 1) {
		words_join(w, 0, w->n, 0, l1, cap);
		return;
	}
	if (lines == 2) {
		words_join(w, 0, brk, 0, l1, cap);
		words_join(w, brk, w->n, 0, l2, cap);
		return;
	}
	/* Too long: fill the bottom line from the end, then the top one. */
	k = w->n - 1;
	cur = w->adv[k];
	while (k > 0 && cur + sp + w->adv[k - 1] <= maxw)
		cur += sp + w->adv[--k];
	b = k;
	if (b == 0) {
		words_join(w, 0, w->n, 0, l1, cap);
		return;
	}
	k = b - 1;
	cur = ell + w->adv[k];
	while (k > 0 && cur + sp + w->adv[k - 1] <= maxw)
		cur += sp + w->adv[--k];
	words_join(w, k, b, k > 0, l1, cap);
	words_join(w, b, w->n, 0, l2, cap);
}

static void draw_caption(const struct painter *pt)
{
	cairo_t *cr = pt->cr;
	const struct hark_draw_params *p = pt->p;
	double band = pt->f.caption_h, y0, size, lh, maxw, margin;
	struct words w;
	char l1[TEXT_MAX], l2[TEXT_MAX];
	cairo_font_extents_t fe;
	int n;

	if (band <= 0.0)
		return;
	y0 = p->y + p->h - band;
	cairo_new_path(cr);
	cairo_rectangle(cr, p->x, y0, p->w, band);
	cairo_set_source_rgba(cr, pt->th.caption_bg[0], pt->th.caption_bg[1], pt->th.caption_bg[2],
			      pt->th.caption_bg[3]);
	cairo_fill(cr);
	if (pt->st.caption < 0)
		return;
	size = clampd(band / 3.1, 8.0, 40.0);
	lh = size * LINE_SPACING;
	margin = fmax(pt->f.margin, size);
	maxw = fmax(p->w - 2.0 * margin, size);
	set_font(cr, pt->th.font, 0, size);
	cairo_font_extents(cr, &fe);
	words_split(cr, p->captions[pt->st.caption].text, &w);
	caption_lines(cr, &w, maxw, l1, l2, sizeof(l1));
	n = l2[0] ? 2 : (l1[0] ? 1 : 0);
	cairo_save(cr);
	cairo_rectangle(cr, p->x, y0, p->w, band);
	cairo_clip(cr);
	set_rgba(cr, pt->th.text, 1.0);
	for (int k = 0; k < n; k++) {
		const char *s = k == 0 ? l1 : l2;
		double base = y0 + band / 2.0 - lh * n / 2.0 + lh * k + lh / 2.0 +
			      (fe.ascent - fe.descent) / 2.0;

		cairo_move_to(cr, p->x + (p->w - text_advance(cr, s)) / 2.0, base);
		cairo_show_text(cr, s);
	}
	cairo_restore(cr);
}

/* ------------------------------------------------------------- scene --- */

static int paint(cairo_t *cr, const struct hark_diagram *d, const struct hark_layout *l,
		 const struct hark_draw_params *p, const struct fit *f)
{
	struct painter pt;

	pt.cr = cr;
	pt.d = d;
	pt.l = l;
	pt.p = p;
	pt.th = hark_draw_theme_get(p->dark);
	pt.f = *f;
	state_compute(d, p, &pt.st);
	pt.lw = fmax(1.0, 1.1 / f->s);

	cairo_save(cr);
	cairo_new_path(cr);
	cairo_rectangle(cr, p->x, p->y, p->w, p->h);
	cairo_clip(cr);
	set_rgba(cr, pt.th.bg, 1.0);
	cairo_paint(cr);
	cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
	draw_title(&pt);

	cairo_save(cr);
	cairo_translate(cr, f->ox, f->oy);
	cairo_scale(cr, f->s, f->s);
	draw_groups(&pt);
	draw_axis(&pt);
	for (size_t i = 0; i < l->n_nodes; i++)
		draw_lifeline(&pt, i);
	if (l->has_axis) {
		for (size_t i = 0; i < l->n_nodes; i++)
			draw_connector(&pt, i);
		draw_tick_labels(&pt);
	}
	for (size_t j = 0; j < l->n_edges; j++)
		draw_edge(&pt, j);
	for (size_t i = 0; i < l->n_nodes; i++)
		draw_node(&pt, i);
	for (size_t j = 0; j < l->n_edges; j++)
		draw_edge_label(&pt, j);
	cairo_restore(cr);

	draw_caption(&pt);
	cairo_restore(cr);
	return cairo_status(cr) == CAIRO_STATUS_SUCCESS ? HARK_OK : HARK_ERR_INTERNAL;
}

int hark_draw_scene(cairo_t *cr, const struct hark_diagram *d, const struct hark_layout *l,
		    const struct hark_draw_params *p)
{
	struct fit f;

	if (!cr || check_pair(d, l) || check_params(p))
		return HARK_ERR_INVALID_ARG;
	if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
		return HARK_ERR_INTERNAL;
	fit_compute(l, p, &f);
	return paint(cr, d, l, p, &f);
}

/* ------------------------------------------------------- still images --- */

struct membuf {
	unsigned char *data;
	size_t len, cap;
	int err; /* HARK_ERR_NOMEM once a write failed */
};

static cairo_status_t membuf_write(void *closure, const unsigned char *data, unsigned int length)
{
	struct membuf *m = closure;

	if (m->err)
		return CAIRO_STATUS_WRITE_ERROR;
	if (length > OUT_CAP - m->len) {
		m->err = HARK_ERR_NOMEM;
		return CAIRO_STATUS_WRITE_ERROR;
	}
	if (m->len + length > m->cap) {
		size_t nc = m->cap ? m->cap : 65536;
		unsigned char *nd;

		while (nc < m->len + length)
			nc *= 2;
		if (nc > OUT_CAP)
			nc = OUT_CAP;
		nd = realloc(m->data, nc);
		if (!nd) {
			m->err = HARK_ERR_NOMEM;
			return CAIRO_STATUS_WRITE_ERROR;
		}
		m->data = nd;
		m->cap = nc;
	}
	memcpy(m->data + m->len, data, length);
	m->len += length;
	return CAIRO_STATUS_SUCCESS;
}

/* Turns the outcome of a still-image render into the return code. */
static int still_result(int rc, cairo_status_t cst, const struct membuf *m, const char *what,
			char *err, size_t errlen)
{
	if (m->err) {
		hark_errbuf_set(err, errlen, "%s output: out of memory or over %zu MiB", what,
				OUT_CAP >> 20);
		return m->err;
	}
	if (rc == HARK_ERR_INVALID_ARG) {
		hark_errbuf_set(err, errlen, "%s: invalid arguments", what);
		return rc;
	}
	if (rc || cst != CAIRO_STATUS_SUCCESS) {
		hark_errbuf_set(err, errlen, "%s: cairo: %s", what,
				cairo_status_to_string(cst != CAIRO_STATUS_SUCCESS
							       ? cst
							       : CAIRO_STATUS_INVALID_STATUS));
		return HARK_ERR_INTERNAL;
	}
	return HARK_OK;
}

int hark_draw_svg(const struct hark_diagram *d, const struct hark_layout *l, int dark,
		  unsigned char **out, size_t *len, char *err, size_t errlen)
{
	struct membuf m = {NULL, 0, 0, 0};
	cairo_surface_t *sf = NULL;
	cairo_t *cr = NULL;
	struct hark_draw_params p;
	struct fit f;
	double lw, lh;
	int rc = HARK_OK;
	cairo_status_t cst;

	if (out)
		*out = NULL;
	if (len)
		*len = 0;
	if (!out || !len || check_pair(d, l) || l->width < 0.0 || l->height < 0.0 ||
	    l->width > 1e5 || l->height > 1e5) {
		hark_errbuf_set(err, errlen, "svg: invalid arguments");
		return HARK_ERR_INVALID_ARG;
	}
	lw = ceil(fmax(l->width, 1.0));
	lh = ceil(fmax(l->height, 1.0));
	p = hark_draw_default_params(lw + 2.0 * SVG_PAD, 0.0);
	p.dark = dark;
	f.s = 1.0;
	f.margin = SVG_PAD;
	f.title_px = SVG_TITLE_PT;
	f.title_band = layout_has_title(l, &p) ? SVG_TITLE_PT * 1.9 : 0.0;
	f.caption_h = 0.0;
	f.ox = SVG_PAD;
	f.oy = SVG_PAD + f.title_band;
	p.h = lh + 2.0 * SVG_PAD + f.title_band;

	sf = cairo_svg_surface_create_for_stream(membuf_write, &m, p.w, p.h);
	cst = cairo_surface_status(sf);
	if (cst != CAIRO_STATUS_SUCCESS)
		goto out;
	cr = cairo_create(sf);
	cst = cairo_status(cr);
	if (cst != CAIRO_STATUS_SUCCESS)
		goto out;
	rc = paint(cr, d, l, &p, &f);
	cst = cairo_status(cr);
	if (rc || cst != CAIRO_STATUS_SUCCESS)
		goto out;
	cairo_destroy(cr);
	cr = NULL;
	cairo_surface_finish(sf);
	cst = cairo_surface_status(sf);
out:
	if (cr)
		cairo_destroy(cr);
	if (sf)
		cairo_surface_destroy(sf);
	rc = still_result(rc, cst, &m, "svg", err, errlen);
	if (rc) {
		free(m.data);
		return rc;
	}
	*out = m.data;
	*len = m.len;
	return HARK_OK;
}

int hark_draw_png(const struct hark_diagram *d, const struct hark_layout *l, int dark, int width,
		  int height, unsigned char **out, size_t *len, char *err, size_t errlen)
{
	struct membuf m = {NULL, 0, 0, 0};
	cairo_surface_t *sf = NULL;
	cairo_t *cr = NULL;
	struct hark_draw_params p;
	int rc = HARK_OK;
	cairo_status_t cst;

	if (out)
		*out = NULL;
	if (len)
		*len = 0;
	if (width == 0 && height == 0) {
		width = 1280;
		height = 720;
	}
	if (!out || !len || check_pair(d, l) || width < IMG_MIN || height < IMG_MIN ||
	    width > IMG_MAX || height > IMG_MAX) {
		hark_errbuf_set(err, errlen, "png: invalid arguments (size %d x %d)", width, height);
		return HARK_ERR_INVALID_ARG;
	}
	p = hark_draw_default_params(width, height);
	p.dark = dark;
	sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
	cst = cairo_surface_status(sf);
	if (cst != CAIRO_STATUS_SUCCESS)
		goto out;
	cr = cairo_create(sf);
	cst = cairo_status(cr);
	if (cst != CAIRO_STATUS_SUCCESS)
		goto out;
	rc = hark_draw_scene(cr, d, l, &p);
	cst = cairo_status(cr);
	if (rc || cst != CAIRO_STATUS_SUCCESS)
		goto out;
	cairo_surface_flush(sf);
	cst = cairo_surface_write_to_png_stream(sf, membuf_write, &m);
out:
	if (cr)
		cairo_destroy(cr);
	if (sf)
		cairo_surface_destroy(sf);
	rc = still_result(rc, cst, &m, "png", err, errlen);
	if (rc) {
		free(m.data);
		return rc;
	}
	*out = m.data;
	*len = m.len;
	return HARK_OK;
}
