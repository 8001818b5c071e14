/*
 * Diagram painter (src/render/draw.c) on hand-built layouts (the tests build
 * struct hark_layout themselves so they depend on the painter alone): SVG
 * and PNG output that decodes back and is not blank, the fit transform
 * shared with hark_draw_node_rect, time-driven appearance, fade and
 * highlight, the two themes, the caption band, the scene key (equal keys
 * give byte-identical frames, and each kind of change changes it),
 * reentrancy across threads, argument checks, every diagram type, and the
 * paint time of a 20-node flowchart at 720p.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <cairo.h>

#include "hark/hark.h"
#include "render/diagram.h"
#include "render/draw.h"
#include "render/layout.h"

/* ------------------------------------------------------------ helpers ---- */

static struct hark_diagram_span sp(double a, double b)
{
	struct hark_diagram_span s = {a, b, -1};
	return s;
}

static void spec_init(struct hark_diagram *d, int type, const char *title)
{
	memset(d, 0, sizeof(*d));
	d->type = type;
	d->title = strdup(title);
	assert_non_null(d->title);
	d->duration_s = 60.0;
	d->page = 1;
	d->pages = 1;
}

static void add_node(struct hark_diagram *d, const char *id, const char *label, const char *kind,
		     const char *group, double start)
{
	struct hark_diagram_span s = sp(start, start >= 0 ? start + 1.0 : -1.0);

	assert_int_equal(hark_diagram_add_node(d, id, label, kind, group, &s), HARK_OK);
}

static void add_edge(struct hark_diagram *d, const char *from, const char *to, const char *label,
		     long seq, double start)
{
	struct hark_diagram_span s = sp(start, start >= 0 ? start + 1.0 : -1.0);

	assert_int_equal(hark_diagram_add_edge(d, from, to, label, seq, &s), HARK_OK);
}

static char **one_line(const char *text, size_t *n)
{
	char **lines = calloc(1, sizeof(*lines));

	assert_non_null(lines);
	lines[0] = strdup(text);
	assert_non_null(lines[0]);
	*n = 1;
	return lines;
}

static void free_lines(char **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* A layout with room for the spec's elements, all zero. */
static void lay_init(struct hark_layout *l, const struct hark_diagram *d, double w, double h)
{
	memset(l, 0, sizeof(*l));
	l->width = w;
	l->height = h;
	l->n_nodes = d->n_nodes;
	l->n_edges = d->n_edges;
	l->n_groups = d->n_groups;
	l->nodes = calloc(d->n_nodes ? d->n_nodes : 1, sizeof(*l->nodes));
	l->edges = calloc(d->n_edges ? d->n_edges : 1, sizeof(*l->edges));
	l->groups = calloc(d->n_groups ? d->n_groups : 1, sizeof(*l->groups));
	assert_true(l->nodes && l->edges && l->groups);
	l->title = strdup(d->title);
	assert_non_null(l->title);
}

static void lay_node(struct hark_layout *l, size_t i, double x, double y, double w, double h,
		     int shape, int color, const char *label)
{
	struct hark_layout_node *n = &l->nodes[i];

	n->x = x;
	n->y = y;
	n->w = w;
	n->h = h;
	n->shape = shape;
	n->color = color;
	n->font_size = 14.0;
	n->lines = one_line(label, &n->n_lines);
}

/* A straight edge written as one degenerate cubic Bezier. */
static void lay_edge(struct hark_layout *l, size_t j, double x0, double y0, double x1, double y1,
		     int arrow, int dashed, const char *label)
{
	struct hark_layout_edge *e = &l->edges[j];

	e->n_pts = 4;
	e->pts = malloc(8 * sizeof(double));
	assert_non_null(e->pts);
	for (int k = 0; k < 4; k++) {
		e->pts[2 * k] = x0 + (x1 - x0) * k / 3.0;
		e->pts[2 * k + 1] = y0 + (y1 - y0) * k / 3.0;
	}
	e->arrow = arrow;
	e->dashed = dashed;
	e->font_size = 12.0;
	e->lx = (x0 + x1) / 2.0;
	e->ly = (y0 + y1) / 2.0;
	if (label)
		e->lines = one_line(label, &e->n_lines);
}

static void lay_free(struct hark_layout *l)
{
	for (size_t i = 0; i < l->n_nodes; i++)
		free_lines(l->nodes[i].lines, l->nodes[i].n_lines);
	for (size_t j = 0; j < l->n_edges; j++) {
		free(l->edges[j].pts);
		free_lines(l->edges[j].lines, l->edges[j].n_lines);
	}
	for (size_t g = 0; g < l->n_groups; g++)
		free(l->groups[g].label);
	for (size_t k = 0; k < l->n_ticks; k++)
		free(l->tick_label[k]);
	free(l->tick_x);
	free(l->tick_label);
	free(l->nodes);
	free(l->edges);
	free(l->groups);
	free(l->title);
	memset(l, 0, sizeof(*l));
}

/* Flowchart in a column: start (1 s) -> step (2 s) -> decision (5 s) -yes->
 * end (8 s), decision -no-> fix (11 s). Nodes are 120 units apart. */
static void make_flowchart(struct hark_diagram *d, struct hark_layout *l)
{
	spec_init(d, HARK_DIAGRAM_FLOWCHART, "Release process");
	add_node(d, "s", "Start", "start", NULL, 1.0);
	add_node(d, "a", "Run the tests", "step", NULL, 2.0);
	add_node(d, "q", "All green?", "decision", NULL, 5.0);
	add_node(d, "e", "Ship it", "end", NULL, 8.0);
	add_node(d, "f", "Fix failures", "step", NULL, 11.0);
	add_edge(d, "s", "a", NULL, -1, -1);
	add_edge(d, "a", "q", NULL, -1, -1);
	add_edge(d, "q", "e", "yes", -1, 8.0);
	add_edge(d, "q", "f", "no", -1, 11.0);
	lay_init(l, d, 400, 500);
	lay_node(l, 0, 100, 30, 100, 40, HARK_SHAPE_PILL, 0, "Start");
	lay_node(l, 1, 100, 150, 140, 44, HARK_SHAPE_BOX, 0, "Run the tests");
	lay_node(l, 2, 100, 270, 150, 80, HARK_SHAPE_DIAMOND, 0, "All green?");
	lay_node(l, 3, 100, 440, 100, 40, HARK_SHAPE_PILL, 0, "Ship it");
	lay_node(l, 4, 320, 440, 130, 44, HARK_SHAPE_BOX, 0, "Fix failures");
	lay_edge(l, 0, 100, 50, 100, 128, 1, 0, NULL);
	lay_edge(l, 1, 100, 172, 100, 230, 1, 0, NULL);
	lay_edge(l, 2, 100, 310, 100, 420, 1, 0, "yes");
	lay_edge(l, 3, 175, 270, 320, 418, 1, 0, "no");
}

static void free_pair(struct hark_diagram *d, struct hark_layout *l)
{
	lay_free(l);
	hark_diagram_clear(d);
}

static cairo_surface_t *render(const struct hark_diagram *d, const struct hark_layout *l,
			       const struct hark_draw_params *p)
{
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)p->w, (int)p->h);
	cairo_t *cr;

	assert_int_equal(cairo_surface_status(sf), CAIRO_STATUS_SUCCESS);
	cr = cairo_create(sf);
	assert_int_equal(hark_draw_scene(cr, d, l, p), HARK_OK);
	assert_int_equal(cairo_status(cr), CAIRO_STATUS_SUCCESS);
	cairo_destroy(cr);
	cairo_surface_flush(sf);
	return sf;
}

static uint32_t pixel(cairo_surface_t *sf, int x, int y)
{
	const unsigned char *data = cairo_image_surface_get_data(sf);
	int stride = cairo_image_surface_get_stride(sf);
	uint32_t v;

	memcpy(&v, data + (size_t)y * stride + (size_t)x * 4, 4);
	return v;
}

/* Pixels of the rectangle r (device units) that differ from colour c. */
static long count_diff_color(cairo_surface_t *sf, const double r[4], uint32_t c)
{
	int w = cairo_image_surface_get_width(sf), h = cairo_image_surface_get_height(sf);
	int x0 = (int)floor(r[0]), y0 = (int)floor(r[1]);
	int x1 = (int)ceil(r[0] + r[2]), y1 = (int)ceil(r[1] + r[3]);
	long n = 0;

	for (int y = y0 < 0 ? 0 : y0; y < y1 && y < h; y++)
		for (int x = x0 < 0 ? 0 : x0; x < x1 && x < w; x++)
			n += pixel(sf, x, y) != c;
	return n;
}

/* Pixels of r that differ between two surfaces of the same size. */
static long count_diff(cairo_surface_t *a, cairo_surface_t *b, const double r[4])
{
	int w = cairo_image_surface_get_width(a), h = cairo_image_surface_get_height(a);
	int x0 = (int)floor(r[0]), y0 = (int)floor(r[1]);
	int x1 = (int)ceil(r[0] + r[2]), y1 = (int)ceil(r[1] + r[3]);
	long n = 0;

	for (int y = y0 < 0 ? 0 : y0; y < y1 && y < h; y++)
		for (int x = x0 < 0 ? 0 : x0; x < x1 && x < w; x++)
			n += pixel(a, x, y) != pixel(b, x, y);
	return n;
}

static int same_bytes(cairo_surface_t *a, cairo_surface_t *b)
{
	int h = cairo_image_surface_get_height(a), stride = cairo_image_surface_get_stride(a);

	if (h != cairo_image_surface_get_height(b) || stride != cairo_image_surface_get_stride(b))
		return 0;
	return memcmp(cairo_image_surface_get_data(a), cairo_image_surface_get_data(b),
		      (size_t)h * stride) == 0;
}

static struct hark_draw_params timed(double w, double h, double t)
{
	struct hark_draw_params p = hark_draw_default_params(w, h);

	p.t = t;
	return p;
}

/* Luminance 0..1 of an opaque ARGB32 pixel. */
static double luma(uint32_t v)
{
	double r = ((v >> 16) & 0xff) / 255.0, g = ((v >> 8) & 0xff) / 255.0, b = (v & 0xff) / 255.0;

	return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

static size_t count_sub(const unsigned char *buf, size_t len, const char *needle)
{
	size_t n = 0, k = strlen(needle);

	for (size_t i = 0; i + k <= len; i++)
		if (memcmp(buf + i, needle, k) == 0)
			n++;
	return n;
}

/* --------------------------------------------------------------- tests ---- */

static void test_themes_and_defaults(void **state)
{
	struct hark_draw_theme lt = hark_draw_theme_get(0), dk = hark_draw_theme_get(1);
	struct hark_draw_params p = hark_draw_default_params(640, 360);

	(void)state;
	assert_true(lt.bg[0] > 0.9 && lt.bg[1] > 0.9 && lt.bg[2] > 0.9);
	assert_true(lt.text[0] < 0.3 && lt.text[1] < 0.3 && lt.text[2] < 0.3);
	assert_true(dk.bg[0] < 0.12 && dk.bg[1] < 0.12 && dk.bg[2] < 0.12);
	assert_true(dk.text[0] > 0.8 && dk.text[1] > 0.8 && dk.text[2] > 0.8);
	assert_string_equal(lt.font, "DejaVu Sans");
	assert_string_equal(dk.font, "DejaVu Sans");
	assert_int_equal(p.dark, 0);
	assert_true(p.t < 0);
	assert_true(p.w == 640 && p.h == 360 && p.x == 0 && p.y == 0);
	assert_int_equal(p.show_title, 1);
	assert_null(p.captions);
	assert_true(p.caption_h == 0);
}

static void test_svg(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	unsigned char *out = NULL;
	size_t len = 0, chars = 0;
	char err[256] = "";

	(void)state;
	make_flowchart(&d, &l);
	assert_int_equal(hark_draw_svg(&d, &l, 0, &out, &len, err, sizeof(err)), HARK_OK);
	assert_non_null(out);
	assert_true(len > 200);
	assert_memory_equal(out, "<?xml", 5);
	assert_true(count_sub(out, len, "<svg") >= 1);
	assert_true(count_sub(out, len, "</svg>") == 1);
	/* cairo 1.16 writes text as glyph symbols and <use> references: at
	 * least one reference per visible character of labels and title. */
	assert_true(count_sub(out, len, "<symbol") > 0);
	for (size_t i = 0; i < l.n_nodes; i++)
		for (const char *c = l.nodes[i].lines[0]; *c; c++)
			chars += *c != ' ';
	for (const char *c = l.title; *c; c++)
		chars += *c != ' ';
	chars += strlen("yes") + strlen("no");
	assert_true(count_sub(out, len, "xlink:href=\"#glyph") >= chars);
	free(out);

	/* The dark theme gives a different document; both are complete. */
	assert_int_equal(hark_draw_svg(&d, &l, 1, &out, &len, err, sizeof(err)), HARK_OK);
	assert_memory_equal(out, "<?xml", 5);
	assert_true(count_sub(out, len, "</svg>") == 1);
	free(out);
	free_pair(&d, &l);
}

static cairo_status_t read_mem(void *closure, unsigned char *data, unsigned int length)
{
	struct {
		const unsigned char *p;
		size_t left;
	} *src = closure;

	if (length > src->left)
		return CAIRO_STATUS_READ_ERROR;
	memcpy(data, src->p, length);
	src->p += length;
	src->left -= length;
	return CAIRO_STATUS_SUCCESS;
}

static cairo_surface_t *decode_png(const unsigned char *buf, size_t len)
{
	struct {
		const unsigned char *p;
		size_t left;
	} src = {buf, len};
	cairo_surface_t *sf = cairo_image_surface_create_from_png_stream(read_mem, &src);

	assert_int_equal(cairo_surface_status(sf), CAIRO_STATUS_SUCCESS);
	return sf;
}

static void test_png(void **state)
{
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	struct hark_diagram d;
	struct hark_layout l;
	unsigned char *out = NULL;
	size_t len = 0;
	char err[256] = "";
	cairo_surface_t *sf;
	double all[4] = {0, 0, 800, 600};
	long diff;

	(void)state;
	make_flowchart(&d, &l);
	assert_int_equal(hark_draw_png(&d, &l, 0, 800, 600, &out, &len, err, sizeof(err)), HARK_OK);
	assert_true(len > sizeof(sig));
	assert_memory_equal(out, sig, sizeof(sig));
	sf = decode_png(out, len);
	assert_int_equal(cairo_image_surface_get_width(sf), 800);
	assert_int_equal(cairo_image_surface_get_height(sf), 600);
	diff = count_diff_color(sf, all, pixel(sf, 1, 1));
	assert_true(diff > 800 * 600 / 50); /* at least 2% of the pixels are drawing */
	assert_true(diff < 800 * 600 / 2);  /* and the background dominates */
	assert_true(luma(pixel(sf, 1, 1)) > 0.9);
	cairo_surface_destroy(sf);
	free(out);

	/* 0 x 0 = 1280 x 720, dark. */
	assert_int_equal(hark_draw_png(&d, &l, 1, 0, 0, &out, &len, err, sizeof(err)), HARK_OK);
	sf = decode_png(out, len);
	assert_int_equal(cairo_image_surface_get_width(sf), 1280);
	assert_int_equal(cairo_image_surface_get_height(sf), 720);
	assert_true(luma(pixel(sf, 1, 1)) < 0.12);
	cairo_surface_destroy(sf);
	free(out);

	/* Bad sizes. */
	out = (unsigned char *)"x";
	assert_int_equal(hark_draw_png(&d, &l, 0, -5, 100, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_null(out);
	assert_true(err[0] != '\0');
	assert_int_equal(hark_draw_png(&d, &l, 0, 640, 0, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_png(&d, &l, 0, 100000, 100, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	free_pair(&d, &l);
}

static void test_fit(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p = hark_draw_default_params(1280, 720);
	double r[4], r2[4], s;

	(void)state;
	make_flowchart(&d, &l);
	/* Every node lies inside the target, below the title band. */
	for (size_t i = 0; i < l.n_nodes; i++) {
		assert_int_equal(hark_draw_node_rect(&l, &p, i, r), HARK_OK);
		assert_true(r[0] >= 0 && r[1] > 0 && r[0] + r[2] <= 1280 && r[1] + r[3] <= 720);
	}
	/* Uniform scale: the ratio of sizes is the layout's. */
	assert_int_equal(hark_draw_node_rect(&l, &p, 1, r), HARK_OK);
	s = r[2] / l.nodes[1].w;
	assert_true(fabs(r[3] / l.nodes[1].h - s) < 1e-9);
	assert_true(s > 1.0 && s <= 2.0);
	/* Offset targets shift by exactly the offset. */
	p.x = 100;
	p.y = 50;
	assert_int_equal(hark_draw_node_rect(&l, &p, 1, r2), HARK_OK);
	assert_true(fabs(r2[0] - r[0] - 100) < 1e-9 && fabs(r2[1] - r[1] - 50) < 1e-9);
	/* A caption band shrinks the diagram (a 500-unit-high layout is
	 * height-bound in 720 px). */
	p.x = p.y = 0;
	p.caption_h = 120;
	assert_int_equal(hark_draw_node_rect(&l, &p, 1, r2), HARK_OK);
	assert_true(r2[2] < r[2]);
	assert_true(r2[1] + r2[3] <= 720 - 120);
	/* A tiny layout in a large target is scaled at most 2x. */
	l.width = 50;
	l.height = 40;
	p = hark_draw_default_params(3000, 3000);
	assert_int_equal(hark_draw_node_rect(&l, &p, 1, r), HARK_OK);
	assert_true(fabs(r[2] - 2.0 * l.nodes[1].w) < 1e-9);
	/* Out of range and bad params. */
	assert_int_equal(hark_draw_node_rect(&l, &p, l.n_nodes, r), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_node_rect(NULL, &p, 0, r), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_node_rect(&l, NULL, 0, r), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_node_rect(&l, &p, 0, NULL), HARK_ERR_INVALID_ARG);
	p.w = 0;
	assert_int_equal(hark_draw_node_rect(&l, &p, 0, r), HARK_ERR_INVALID_ARG);
	free_pair(&d, &l);
}

static void test_appearance(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p4 = timed(640, 480, 4.0), p5 = timed(640, 480, 5.5);
	struct hark_draw_params pf = timed(640, 480, 5.05);
	cairo_surface_t *a, *b, *c;
	double r[4];
	uint32_t bg;
	long before, after, fading;

	(void)state;
	make_flowchart(&d, &l);
	assert_int_equal(hark_draw_node_rect(&l, &p4, 2, r), HARK_OK); /* decision, start 5 s */
	a = render(&d, &l, &p4);
	b = render(&d, &l, &p5);
	c = render(&d, &l, &pf);
	bg = pixel(a, 1, 1);
	assert_int_equal(pixel(b, 1, 1), bg);
	before = count_diff_color(a, r, bg);
	after = count_diff_color(b, r, bg);
	fading = count_diff(c, b, r);
	assert_int_equal(before, 0);          /* not drawn before its start */
	assert_true(after > r[2] * r[3] / 4); /* filled shape once it has faded in */
	assert_true(fading > 0);              /* half-way through the fade it looks different */
	/* An element that started long ago looks the same at both times. */
	assert_int_equal(hark_draw_node_rect(&l, &p4, 0, r), HARK_OK);
	assert_int_equal(count_diff(a, b, r), 0);
	/* Static painting shows everything: the node at 11 s too. */
	cairo_surface_destroy(c);
	p4.t = -1;
	c = render(&d, &l, &p4);
	assert_int_equal(hark_draw_node_rect(&l, &p4, 4, r), HARK_OK);
	assert_int_equal(count_diff_color(b, r, bg), 0);
	assert_true(count_diff_color(c, r, bg) > r[2] * r[3] / 4);
	cairo_surface_destroy(a);
	cairo_surface_destroy(b);
	cairo_surface_destroy(c);
	free_pair(&d, &l);
}

static void test_highlight(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p3 = timed(640, 480, 3.0), p9 = timed(640, 480, 9.0);
	cairo_surface_t *a, *b;
	double r[4], big[4];

	(void)state;
	make_flowchart(&d, &l);
	/* At 3 s the step "a" (2 s) is current; at 9 s the end node (8 s) is. */
	a = render(&d, &l, &p3);
	b = render(&d, &l, &p9);
	assert_int_equal(hark_draw_node_rect(&l, &p3, 1, r), HARK_OK);
	/* include the glow around the box */
	big[0] = r[0] - 8;
	big[1] = r[1] - 8;
	big[2] = r[2] + 16;
	big[3] = r[3] + 16;
	assert_true(count_diff(a, b, big) > 50);
	/* The start node, current in neither, is unchanged. */
	assert_int_equal(hark_draw_node_rect(&l, &p3, 0, r), HARK_OK);
	assert_int_equal(count_diff(a, b, r), 0);
	cairo_surface_destroy(a);
	cairo_surface_destroy(b);
	free_pair(&d, &l);
}

static void test_dark_light(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p = hark_draw_default_params(320, 240);
	cairo_surface_t *a, *b;

	(void)state;
	make_flowchart(&d, &l);
	a = render(&d, &l, &p);
	p.dark = 1;
	b = render(&d, &l, &p);
	assert_true(luma(pixel(a, 2, 2)) > 0.9);
	assert_true(luma(pixel(b, 2, 2)) < 0.12);
	assert_true(luma(pixel(a, 318, 238)) > 0.9);
	assert_true(luma(pixel(b, 318, 238)) < 0.12);
	cairo_surface_destroy(a);
	cairo_surface_destroy(b);
	free_pair(&d, &l);
}

static const struct hark_draw_caption caps[] = {
	{1.0, 3.0, "So let us start with the release process"},
	{9.0, 10.0,
	 "and this is a very long caption that goes on and on about many different things "
	 "so that it can never fit into two lines of the band at the bottom of a small frame "
	 "and must be cut so that only the most recent words remain visible in the end"},
	{10.5, 10.9, "bad \xff\xfe utf-8 \x01 here"},
};

static void test_captions(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p = timed(480, 360, 2.5);
	cairo_surface_t *with, *without, *longc, *nolong, *bad;
	double band[4] = {0, 360 - 60, 480, 60}, above[4] = {0, 0, 480, 360 - 60};

	(void)state;
	make_flowchart(&d, &l);
	p.captions = caps;
	p.n_captions = 3;
	p.caption_h = 60;
	with = render(&d, &l, &p);
	p.t = 3.5; /* between captions, nothing else changes from 2 s */
	without = render(&d, &l, &p);
	assert_true(count_diff(with, without, band) > 100);
	assert_int_equal(count_diff(with, without, above), 0);
	/* The long caption stays in the band. */
	p.t = 9.5;
	longc = render(&d, &l, &p);
	p.n_captions = 0;
	p.captions = NULL;
	nolong = render(&d, &l, &p);
	assert_true(count_diff(longc, nolong, band) > 100);
	assert_int_equal(count_diff(longc, nolong, above), 0);
	/* Invalid UTF-8 and controls paint without a cairo error. */
	p.captions = caps;
	p.n_captions = 3;
	p.t = 10.6;
	bad = render(&d, &l, &p);
	assert_true(count_diff(bad, nolong, band) > 50);
	cairo_surface_destroy(with);
	cairo_surface_destroy(without);
	cairo_surface_destroy(longc);
	cairo_surface_destroy(nolong);
	cairo_surface_destroy(bad);
	free_pair(&d, &l);
}

static void test_scene_key(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p = timed(320, 240, 6.0);
	unsigned long long k1, k2, prev = 0;
	cairo_surface_t *a, *b, *prev_sf = NULL;
	int reused = 0, changed = 0;

	(void)state;
	make_flowchart(&d, &l);
	p.captions = caps;
	p.n_captions = 3;
	p.caption_h = 40;
	/* Same state: equal keys and byte-identical frames. */
	k1 = hark_draw_scene_key(&d, &l, &p);
	a = render(&d, &l, &p);
	p.t = 6.5;
	k2 = hark_draw_scene_key(&d, &l, &p);
	b = render(&d, &l, &p);
	assert_true(k1 != 0);
	assert_true(k1 == k2);
	assert_true(same_bytes(a, b));
	cairo_surface_destroy(a);
	cairo_surface_destroy(b);
	/* Appearance (5 s), fade step, caption change. */
	p.t = 4.99;
	k1 = hark_draw_scene_key(&d, &l, &p);
	p.t = 5.0;
	k2 = hark_draw_scene_key(&d, &l, &p);
	assert_true(k1 != k2);
	p.t = 5.3;
	assert_true(hark_draw_scene_key(&d, &l, &p) != k2);
	p.t = 2.5; /* caption 0, nothing fading */
	k1 = hark_draw_scene_key(&d, &l, &p);
	p.t = 3.5;
	assert_true(hark_draw_scene_key(&d, &l, &p) != k1);
	{ /* the same caption slot with other words */
		struct hark_draw_caption other[3];

		memcpy(other, caps, sizeof(other));
		other[0].text = "Something else entirely";
		p.t = 2.5;
		p.captions = other;
		assert_true(hark_draw_scene_key(&d, &l, &p) != k1);
		p.captions = caps;
	}
	p.t = 2.5;
	/* Theme, rectangle and title flag are part of it. */
	k1 = hark_draw_scene_key(&d, &l, &p);
	p.dark = 1;
	assert_true(hark_draw_scene_key(&d, &l, &p) != k1);
	p.dark = 0;
	p.w = 321;
	assert_true(hark_draw_scene_key(&d, &l, &p) != k1);
	p.w = 320;
	p.show_title = 0;
	assert_true(hark_draw_scene_key(&d, &l, &p) != k1);
	p.show_title = 1;
	assert_true(hark_draw_scene_key(&d, &l, &p) == k1);
	/* Highlight alone: swap the starts of "s" and "a" (both long visible at
	 * 4.5 s, so only which one is current differs). */
	p.t = 4.5;
	k1 = hark_draw_scene_key(&d, &l, &p);
	a = render(&d, &l, &p);
	d.nodes[0].span.start_s = 2.0;
	d.nodes[1].span.start_s = 1.0;
	k2 = hark_draw_scene_key(&d, &l, &p);
	b = render(&d, &l, &p);
	assert_true(k1 != k2);
	assert_false(same_bytes(a, b));
	cairo_surface_destroy(a);
	cairo_surface_destroy(b);
	d.nodes[0].span.start_s = 1.0;
	d.nodes[1].span.start_s = 2.0;
	/* Sweep: whenever consecutive frames share a key they are identical,
	 * and the key changes when the picture does. */
	for (int f = 0; f <= 130; f++) {
		unsigned long long k;
		cairo_surface_t *sf;

		p.t = f / 10.0;
		k = hark_draw_scene_key(&d, &l, &p);
		sf = render(&d, &l, &p);
		if (prev_sf) {
			if (k == prev) {
				assert_true(same_bytes(sf, prev_sf));
				reused++;
			} else {
				changed++;
			}
			if (!same_bytes(sf, prev_sf))
				assert_true(k != prev);
			cairo_surface_destroy(prev_sf);
		}
		prev_sf = sf;
		prev = k;
	}
	cairo_surface_destroy(prev_sf);
	assert_true(reused > 60); /* most frames are reusable */
	assert_true(changed >= 10);
	/* Invalid arguments give 0. */
	assert_true(hark_draw_scene_key(NULL, &l, &p) == 0);
	assert_true(hark_draw_scene_key(&d, NULL, &p) == 0);
	assert_true(hark_draw_scene_key(&d, &l, NULL) == 0);
	free_pair(&d, &l);
}

struct thread_job {
	const struct hark_diagram *d;
	const struct hark_layout *l;
	cairo_surface_t *const *ref;
	int n_frames;
	int mismatches;
	int errors;
};

#define N_FRAMES 12

static double frame_t(int f)
{
	return f * 1.03;
}

static void *thread_main(void *arg)
{
	struct thread_job *job = arg;

	for (int rep = 0; rep < 2; rep++) {
		for (int f = 0; f < job->n_frames; f++) {
			struct hark_draw_params p = timed(400, 300, frame_t(f));
			cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 400, 300);
			cairo_t *cr = cairo_create(sf);

			p.dark = f & 1;
			p.captions = caps;
			p.n_captions = 3;
			p.caption_h = 50;
			if (hark_draw_scene(cr, job->d, job->l, &p) != HARK_OK)
				job->errors++;
			cairo_destroy(cr);
			cairo_surface_flush(sf);
			if (!same_bytes(sf, job->ref[f]))
				job->mismatches++;
			cairo_surface_destroy(sf);
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	cairo_surface_t *ref[N_FRAMES];
	struct thread_job jobs[4];
	pthread_t th[4];

	(void)state;
	make_flowchart(&d, &l);
	for (int f = 0; f < N_FRAMES; f++) {
		struct hark_draw_params p = timed(400, 300, frame_t(f));

		p.dark = f & 1;
		p.captions = caps;
		p.n_captions = 3;
		p.caption_h = 50;
		ref[f] = render(&d, &l, &p);
	}
	for (int i = 0; i < 4; i++) {
		jobs[i].d = &d;
		jobs[i].l = &l;
		jobs[i].ref = ref;
		jobs[i].n_frames = N_FRAMES;
		jobs[i].mismatches = 0;
		jobs[i].errors = 0;
		assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].errors, 0);
		assert_int_equal(jobs[i].mismatches, 0);
	}
	for (int f = 0; f < N_FRAMES; f++)
		cairo_surface_destroy(ref[f]);
	free_pair(&d, &l);
}

static void test_invalid(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p = hark_draw_default_params(320, 240);
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 320, 240);
	cairo_t *cr = cairo_create(sf);
	unsigned char *out = NULL;
	size_t len = 0;
	char err[128];

	(void)state;
	make_flowchart(&d, &l);
	assert_int_equal(hark_draw_scene(NULL, &d, &l, &p), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_scene(cr, NULL, &l, &p), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_scene(cr, &d, NULL, &p), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_scene(cr, &d, &l, NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_svg(NULL, &l, 0, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_svg(&d, &l, 0, NULL, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_png(&d, NULL, 0, 0, 0, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	/* Counts that do not match. */
	l.n_nodes--;
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INVALID_ARG);
	assert_true(hark_draw_scene_key(&d, &l, &p) == 0);
	assert_int_equal(hark_draw_svg(&d, &l, 0, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_draw_png(&d, &l, 0, 0, 0, &out, &len, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	l.n_nodes++;
	l.n_edges--;
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INVALID_ARG);
	l.n_edges++;
	l.n_groups = 1;
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INVALID_ARG);
	l.n_groups = 0;
	/* Bad rectangles and times. */
	p.w = 0;
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INVALID_ARG);
	p.w = 320;
	p.t = NAN;
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INVALID_ARG);
	p.t = -1;
	p.n_captions = 2; /* but no array */
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INVALID_ARG);
	p.n_captions = 0;
	/* Still valid afterwards, and the cairo state is restored. */
	cairo_set_source_rgb(cr, 0.25, 0.5, 0.75);
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_OK);
	{
		double r, g, b, a;

		assert_int_equal(cairo_pattern_get_rgba(cairo_get_source(cr), &r, &g, &b, &a),
				 CAIRO_STATUS_SUCCESS);
		assert_true(r == 0.25 && g == 0.5 && b == 0.75);
	}
	/* A context already in error is reported as internal. */
	cairo_destroy(cr);
	cr = cairo_create(sf);
	cairo_restore(cr); /* unbalanced: CAIRO_STATUS_INVALID_RESTORE */
	assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_ERR_INTERNAL);
	cairo_destroy(cr);
	cairo_surface_destroy(sf);
	free_pair(&d, &l);
}

/* ------------------------------------------------------ diagram types ---- */

static void make_mindmap(struct hark_diagram *d, struct hark_layout *l)
{
	spec_init(d, HARK_DIAGRAM_MINDMAP, "Budget");
	add_node(d, "r", "Budget 2025", "root", NULL, 0.0);
	add_node(d, "t1", "Hardware", "topic", NULL, 3.0);
	add_node(d, "t2", "Travel \xc3\xa0 Z\xc3\xbcrich", "topic", NULL, 6.0);
	add_node(d, "s1", "Laptops", "subtopic", NULL, 4.0);
	add_node(d, "s2", "Odd label", "subtopic", NULL, 7.0);
	add_edge(d, "r", "t1", NULL, -1, -1);
	add_edge(d, "r", "t2", NULL, -1, -1);
	add_edge(d, "t1", "s1", NULL, -1, -1);
	add_edge(d, "t2", "s2", NULL, -1, -1);
	lay_init(l, d, 600, 300);
	lay_node(l, 0, 300, 150, 160, 70, HARK_SHAPE_ELLIPSE, 0, "Budget 2025");
	lay_node(l, 1, 120, 80, 120, 36, HARK_SHAPE_BOX, 1, "Hardware");
	lay_node(l, 2, 480, 80, 160, 36, HARK_SHAPE_BOX, 2, "Travel \xc3\xa0 Z\xc3\xbcrich");
	lay_node(l, 3, 100, 230, 90, 24, HARK_SHAPE_PLAIN, 1, "Laptops");
	/* A line that is not UTF-8 must not put cairo into an error state. */
	lay_node(l, 4, 500, 230, 110, 24, HARK_SHAPE_PLAIN, 2, "Odd \xff label");
	for (size_t i = 1; i < 5; i++)
		l->nodes[i].level = i < 3 ? 1 : 2;
	lay_edge(l, 0, 230, 140, 180, 90, 0, 0, NULL);
	lay_edge(l, 1, 370, 140, 400, 90, 0, 0, NULL);
	lay_edge(l, 2, 120, 98, 100, 218, 0, 0, NULL);
	lay_edge(l, 3, 480, 98, 500, 218, 0, 0, NULL);
}

static void make_hierarchy(struct hark_diagram *d, struct hark_layout *l)
{
	spec_init(d, HARK_DIAGRAM_HIERARCHY, "Organisation");
	d->page = 2;
	d->pages = 3;
	assert_int_equal(hark_diagram_add_group(d, "eng", "Engineering"), HARK_OK);
	add_node(d, "ceo", "Company", "unit", NULL, 1.0);
	add_node(d, "dev", "Development", "unit", "eng", 2.0);
	add_node(d, "ann", "Ann (lead)", "person", "eng", 3.0);
	add_edge(d, "ceo", "dev", NULL, -1, -1);
	add_edge(d, "dev", "ann", NULL, -1, -1);
	lay_init(l, d, 300, 320);
	lay_node(l, 0, 150, 30, 120, 40, HARK_SHAPE_BOX, 0, "Company");
	lay_node(l, 1, 150, 150, 130, 40, HARK_SHAPE_BOX, 0, "Development");
	lay_node(l, 2, 150, 260, 130, 44, HARK_SHAPE_PERSON, 3, "Ann (lead)");
	l->nodes[1].level = 1;
	l->nodes[2].level = 2;
	l->groups[0].x = 60;
	l->groups[0].y = 100;
	l->groups[0].w = 180;
	l->groups[0].h = 210;
	l->groups[0].label = strdup("Engineering");
	lay_edge(l, 0, 150, 50, 150, 130, 1, 0, NULL);
	lay_edge(l, 1, 150, 170, 150, 238, 1, 0, NULL);
}

static void make_sequence(struct hark_diagram *d, struct hark_layout *l)
{
	spec_init(d, HARK_DIAGRAM_SEQUENCE, "Login");
	add_node(d, "u", "User", "participant", NULL, 0.5);
	add_node(d, "s", "Server", "participant", NULL, 1.0);
	add_node(d, "db", "Database", "participant", NULL, 1.5);
	add_edge(d, "u", "s", "POST /login", 0, 2.0);
	add_edge(d, "s", "db", "lookup user", 1, 3.0);
	add_edge(d, "db", "s", "row", 2, 4.0);
	add_edge(d, "s", "u", "200 OK", 3, 5.0);
	lay_init(l, d, 460, 300);
	for (size_t i = 0; i < 3; i++) {
		lay_node(l, i, 70 + 160.0 * i, 20, 110, 36, HARK_SHAPE_HEAD, (int)i,
			 d->nodes[i].label);
		l->nodes[i].life_y1 = 290;
	}
	lay_edge(l, 0, 70, 80, 230, 80, 1, 0, "POST /login");
	lay_edge(l, 1, 230, 140, 390, 140, 1, 0, "lookup user");
	lay_edge(l, 2, 390, 200, 230, 200, 1, 1, "row");
	lay_edge(l, 3, 230, 260, 70, 260, 1, 1, "200 OK");
	for (size_t j = 0; j < 4; j++)
		l->edges[j].ly -= 10;
}

static void make_timeline(struct hark_diagram *d, struct hark_layout *l)
{
	static const char *const ticks[] = {"2024-02", "2024-06", "2025-01"};

	spec_init(d, HARK_DIAGRAM_TIMELINE, "Milestones");
	add_node(d, "e1", "Kick-off", "event", NULL, 2.0);
	add_node(d, "e2", "Beta", "event", NULL, 4.0);
	add_node(d, "e3", "General availability", "event", NULL, 6.0);
	d->nodes[0].order = 0;
	d->nodes[1].order = 1;
	d->nodes[2].order = 2;
	add_edge(d, "e1", "e2", NULL, -1, -1);
	add_edge(d, "e2", "e3", NULL, -1, -1);
	lay_init(l, d, 560, 240);
	lay_node(l, 0, 80, 50, 110, 40, HARK_SHAPE_BOX, 0, "Kick-off");
	lay_node(l, 1, 280, 190, 100, 40, HARK_SHAPE_BOX, 1, "Beta");
	lay_node(l, 2, 480, 50, 150, 40, HARK_SHAPE_BOX, 2, "General availability");
	lay_edge(l, 0, 135, 50, 230, 190, 1, 1, NULL);
	lay_edge(l, 1, 330, 190, 405, 50, 1, 1, NULL);
	l->has_axis = 1;
	l->axis_x0 = 20;
	l->axis_x1 = 540;
	l->axis_y = 120;
	l->n_ticks = 3;
	l->tick_x = calloc(3, sizeof(double));
	l->tick_label = calloc(3, sizeof(char *));
	assert_true(l->tick_x && l->tick_label);
	for (size_t k = 0; k < 3; k++) {
		l->tick_x[k] = 80 + 200.0 * k;
		l->tick_label[k] = strdup(ticks[k]);
	}
}

static void check_type(void (*make)(struct hark_diagram *, struct hark_layout *))
{
	struct hark_diagram d;
	struct hark_layout l;
	unsigned char *out = NULL;
	size_t len = 0;
	char err[256] = "";
	double all[4] = {0, 0, 640, 360};
	static const double times[] = {-1.0, 0.0, 2.2, 3.1, 4.1, 100.0};

	make(&d, &l);
	if (hark_diagram_validate(&d, err, sizeof(err)) != HARK_OK)
		fail_msg("spec %s: %s", d.title, err);
	for (int dark = 0; dark < 2; dark++) {
		for (size_t k = 0; k < sizeof(times) / sizeof(times[0]); k++) {
			struct hark_draw_params p = timed(640, 360, times[k]);
			cairo_surface_t *sf;

			p.dark = dark;
			sf = render(&d, &l, &p);
			if (times[k] < 0 || times[k] > 50) /* everything visible */
				assert_true(count_diff_color(sf, all, pixel(sf, 1, 1)) > 640 * 360 / 100);
			cairo_surface_destroy(sf);
		}
		assert_int_equal(hark_draw_svg(&d, &l, dark, &out, &len, err, sizeof(err)), HARK_OK);
		assert_true(count_sub(out, len, "</svg>") == 1);
		free(out);
		assert_int_equal(hark_draw_png(&d, &l, dark, 320, 200, &out, &len, err, sizeof(err)),
				 HARK_OK);
		free(out);
	}
	free_pair(&d, &l);
}

static void test_types(void **state)
{
	(void)state;
	check_type(make_flowchart);
	check_type(make_mindmap);
	check_type(make_hierarchy);
	check_type(make_sequence);
	check_type(make_timeline);
}

/* The sequence's lifelines are drawn below the heads; the timeline's axis
 * and tick labels are there even before any event. */
static void test_type_details(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	struct hark_draw_params p = hark_draw_default_params(640, 360);
	cairo_surface_t *sf;
	double r[4], life[4];
	int dashes = 0, prev = -1;

	(void)state;
	make_sequence(&d, &l);
	sf = render(&d, &l, &p);
	/* Scan the first participant's lifeline between the messages' rows:
	 * a dashed line alternates between ink and background. */
	assert_int_equal(hark_draw_node_rect(&l, &p, 0, r), HARK_OK);
	life[0] = r[0] + r[2] / 2.0;
	for (int y = (int)(r[1] + r[3] + 2); y < (int)(r[1] + r[3] + 60); y++) {
		int ink = pixel(sf, (int)life[0], y) != pixel(sf, 1, 1);

		if (prev >= 0 && ink != prev)
			dashes++;
		prev = ink;
	}
	assert_true(dashes >= 4);
	cairo_surface_destroy(sf);
	free_pair(&d, &l);

	make_timeline(&d, &l);
	p.t = 0.5; /* no event yet */
	sf = render(&d, &l, &p);
	{
		double all[4] = {0, 0, 640, 360};
		long ink = count_diff_color(sf, all, pixel(sf, 1, 1));

		assert_true(ink > 300); /* title, axis, ticks and their labels */
		assert_int_equal(hark_draw_node_rect(&l, &p, 0, r), HARK_OK);
		assert_int_equal(count_diff_color(sf, r, pixel(sf, 1, 1)), 0);
	}
	cairo_surface_destroy(sf);
	free_pair(&d, &l);
}

/* ------------------------------------------------------------- timing ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_paint_time(void **state)
{
	struct hark_diagram d;
	struct hark_layout l;
	cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 1280, 720);
	cairo_t *cr = cairo_create(sf);
	struct hark_draw_params p = timed(1280, 720, 0.0);
	char id[16], label[64], prev[16];
	double t0, ms;
	int frames = 40;
	const struct hark_draw_caption cap = {
		0.0, 1000.0, "and then we agreed that the twentieth step closes the process"};

	(void)state;
	spec_init(&d, HARK_DIAGRAM_FLOWCHART, "Twenty steps of a long process");
	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "n%d", i);
		snprintf(label, sizeof(label), "Step %d of the process", i);
		add_node(&d, id, label, i == 0 ? "start" : "step", NULL, 2.0 * i);
		if (i > 0) {
			snprintf(prev, sizeof(prev), "n%d", i - 1);
			add_edge(&d, prev, id, i % 3 ? NULL : "then", -1, 2.0 * i);
		}
	}
	lay_init(&l, &d, 900, 620);
	for (int i = 0; i < 20; i++) {
		double x = 100 + 175.0 * (i % 5), y = 40 + 180.0 * (i / 5);

		snprintf(label, sizeof(label), "Step %d of the process", i);
		lay_node(&l, (size_t)i, x, y, 150, 50, i == 0 ? HARK_SHAPE_PILL : HARK_SHAPE_BOX, 0,
			 label);
		if (i > 0) {
			double px = 100 + 175.0 * ((i - 1) % 5), py = 40 + 180.0 * ((i - 1) / 5);

			lay_edge(&l, (size_t)i - 1, px, py + 25, x, y - 25, 1, 0,
				 i % 3 ? NULL : "then");
		}
	}
	p.captions = &cap;
	p.n_captions = 1;
	p.caption_h = 80;
	t0 = now_s();
	for (int f = 0; f < frames; f++) {
		p.t = 20.0 + f * 0.5; /* a mix of fades, highlights and steady frames */
		assert_int_equal(hark_draw_scene(cr, &d, &l, &p), HARK_OK);
	}
	ms = (now_s() - t0) * 1000.0 / frames;
	print_message("paint 1280x720, 20-node flowchart: %.2f ms/frame\n", ms);
	assert_true(ms < 250.0); /* generous: sanitizers and a busy machine */
	cairo_destroy(cr);
	cairo_surface_destroy(sf);
	free_pair(&d, &l);
}

#if defined(__SANITIZE_ADDRESS__)
/* fontconfig is built without frame pointers, so LSan's fast unwinder stops
 * inside it and the suppressions in tests/lsan.supp (XML_ParseBuffer: the
 * leak fontconfig makes once while parsing its configuration) cannot match;
 * the full unwinder sees the whole stack. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_themes_and_defaults),
		cmocka_unit_test(test_svg),
		cmocka_unit_test(test_png),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_appearance),
		cmocka_unit_test(test_highlight),
		cmocka_unit_test(test_dark_light),
		cmocka_unit_test(test_captions),
		cmocka_unit_test(test_scene_key),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_type_details),
		cmocka_unit_test(test_paint_time),
	};

	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	/* Let the leak checker see cairo's font caches released (fontconfig's
	 * frames defeat LSan's fast unwinder, so suppressions cannot match). */
	cairo_debug_reset_static_data();
	return failed;
}
