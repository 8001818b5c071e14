/*
 * Diagram layout: places a validated spec (render/diagram.h) on a plane so
 * that render/draw.h can paint it. Graphviz (libgvc) does the placement:
 * dot for flowcharts (top to bottom, decisions as diamonds, edge labels),
 * hierarchies (top to bottom tree) and the participant row of sequences;
 * twopi (radial, rooted at the "root" node) for mind maps. Timelines are
 * placed on a time-scaled horizontal axis (x proportional to each event's
 * order, with a minimum gap so labels never overlap, events alternating
 * above and below the axis). Sequences get one lifeline per participant and
 * one horizontal message row per edge, in seq order.
 *
 * Labels are wrapped into lines here (at word boundaries, max_chars per
 * line, overlong words hard-split on UTF-8 boundaries) and measured with
 * cairo using the same font the painter uses, so Graphviz gets exact node
 * sizes (fixedsize) and the painter never has to guess. Coordinates are in
 * layout units (points, 1/72 in), origin top-left, y growing downwards; the
 * painter scales them to the target.
 *
 * Graphviz keeps global state, so layout runs are serialised internally by
 * one mutex; a finished hark_layout is plain data, immutable, and may be
 * read by any number of threads at once (the video painter does).
 */
#ifndef HARK_RENDER_LAYOUT_H
#define HARK_RENDER_LAYOUT_H

#include <stddef.h>

#include "render/diagram.h"

enum hark_layout_shape {
	HARK_SHAPE_BOX = 0,     /* rounded rectangle: flowchart step, hierarchy unit, event card */
	HARK_SHAPE_PILL = 1,    /* stadium: flowchart start/end */
	HARK_SHAPE_DIAMOND = 2, /* flowchart decision */
	HARK_SHAPE_ELLIPSE = 3, /* mind map root */
	HARK_SHAPE_PLAIN = 4,   /* mind map sub-topic: text with an underline */
	HARK_SHAPE_PERSON = 5,  /* hierarchy person: box with a head marker */
	HARK_SHAPE_HEAD = 6,    /* sequence participant head (box at the top of a lifeline) */
};

struct hark_layout_node {
	double x, y;       /* centre, layout units */
	double w, h;       /* full width and height */
	int shape;         /* enum hark_layout_shape */
	int level;         /* mind map: 0 root, 1 topic, 2 sub-topic; hierarchy: depth; else 0 */
	int color;         /* palette index 0..7 (mind map branch, timeline lane, participant) */
	char **lines;      /* wrapped label, n_lines >= 1 entries, owned */
	size_t n_lines;
	double font_size;  /* points */
	/* sequence only: the lifeline runs from (x, y + h/2) down to life_y1 */
	double life_y1;
};

struct hark_layout_edge {
	/* Path: pts[0] is the start point, then (n_pts - 1) / 3 cubic Bezier
	 * segments of three points each (control 1, control 2, end), as
	 * Graphviz produces them; straight lines are written as degenerate
	 * Beziers. n_pts >= 4 and n_pts % 3 == 1. */
	double *pts;       /* 2 * n_pts doubles: x0, y0, x1, y1, ... owned */
	size_t n_pts;
	int arrow;         /* 1 = arrowhead at the end point */
	int dashed;        /* 1 = dashed (sequence replies, timeline links) */
	double lx, ly;     /* label centre when n_lines > 0 */
	char **lines;      /* wrapped edge label, may be 0 lines; owned */
	size_t n_lines;
	double font_size;
};

struct hark_layout_group {
	double x, y, w, h; /* top-left corner and size of the cluster box; w == 0 = empty group */
	char *label;       /* owned copy */
};

struct hark_layout {
	double width, height;  /* drawing bounds, layout units (everything lies in [0,w]x[0,h]) */
	struct hark_layout_node *nodes;   size_t n_nodes;  /* parallel to the spec's nodes */
	struct hark_layout_edge *edges;   size_t n_edges;  /* parallel to the spec's edges */
	struct hark_layout_group *groups; size_t n_groups; /* parallel to the spec's groups */
	/* timeline only: the axis line and its tick labels */
	int has_axis;
	double axis_x0, axis_x1, axis_y;
	double *tick_x;         /* n_ticks positions */
	char **tick_label;      /* n_ticks owned strings ("2024-03", "Q3", "1", ...) */
	size_t n_ticks;
	char *title;            /* copy of the spec title */
};

struct hark_layout_params {
	size_t max_chars;   /* wrap width in characters (22; mind map topics 18) */
	double font_size;   /* node label size in points (14) */
	const char *font;   /* cairo toy font family ("DejaVu Sans") */
	double node_gap;    /* minimum gap between nodes, points (18) */
};

struct hark_layout_params hark_layout_default_params(void);

/*
 * Lays out d (which must pass hark_diagram_validate; it is checked again and
 * HARK_ERR_FORMAT returned otherwise) into *out (caller frees with
 * hark_layout_free; zeroed on error). p NULL = defaults. Errors:
 * HARK_ERR_INVALID_ARG, HARK_ERR_FORMAT, HARK_ERR_NOMEM, HARK_ERR_INTERNAL
 * (Graphviz refused the graph); err (errlen bytes) says why. Deterministic:
 * the same spec gives the same layout.
 */
int hark_layout_compute(const struct hark_diagram *d, const struct hark_layout_params *p,
			struct hark_layout *out, char *err, size_t errlen);

/* Frees everything l owns and zeroes it. NULL is a no-op. */
void hark_layout_free(struct hark_layout *l);

/*
 * Wraps text into lines of at most max_chars characters (UTF-8 aware, breaking
 * at spaces, hard-splitting longer words) into a new heap array *lines
 * (*n_lines entries, each heap-owned; free with hark_layout_lines_free).
 * Empty text gives one empty line. HARK_ERR_NOMEM.
 */
int hark_layout_wrap(const char *text, size_t max_chars, char ***lines, size_t *n_lines);
void hark_layout_lines_free(char **lines, size_t n_lines);

#endif /* HARK_RENDER_LAYOUT_H */
