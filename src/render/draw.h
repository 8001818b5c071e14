/*
 * Diagram painter: draws a laid-out spec (render/layout.h) with cairo, for
 * still images (SVG and PNG, written to memory so the caller can write them
 * atomically) and for video frames (render/video.h). Two themes, a clean
 * light default and a dark one, sized for readability at 720p: the layout is
 * scaled to fit the target rectangle with a margin, never cropped, and never
 * scaled above 2x so small diagrams do not become cartoons.
 *
 * Time-driven painting (video): an element whose span starts after t is not
 * drawn yet (elements with an unknown start are visible from t = 0); an
 * element appears with a short fade-in (0.35 s) at its start; the "current"
 * element, the last one to have started at or before t, is highlighted with
 * the theme's accent (thicker accent outline and a soft glow). Edges are
 * visible once both ends and the edge itself have started. Captions are the
 * transcript segment spoken at t, wrapped into at most two lines in a band at
 * the bottom of the frame.
 *
 * Every function here is reentrant: frames are painted from several threads
 * at once, each with its own cairo context, sharing one const diagram and
 * layout.
 */
#ifndef HARK_RENDER_DRAW_H
#define HARK_RENDER_DRAW_H

#include <stddef.h>

#include <cairo.h>

#include "render/diagram.h"
#include "render/layout.h"

struct hark_draw_theme {
	double bg[3];          /* page background, RGB 0..1 */
	double text[3];        /* label text */
	double muted[3];       /* axis, lifelines, captions' secondary text */
	double node_fill[3];   /* default node fill */
	double node_stroke[3];
	double edge[3];
	double accent[3];      /* highlight of the current element */
	double palette[8][3];  /* branch / lane / participant colours */
	double caption_bg[4];  /* RGBA of the caption band */
	const char *font;      /* cairo toy font family, matches hark_layout_params.font */
};

/* The light (dark = 0) or dark (dark != 0) theme. */
struct hark_draw_theme hark_draw_theme_get(int dark);

struct hark_draw_caption {
	double start_s, end_s; /* when it is spoken */
	const char *text;      /* UTF-8, borrowed */
};

struct hark_draw_params {
	int dark;              /* theme (0 = light) */
	double t;              /* seconds; < 0 = static: everything visible, nothing highlighted */
	double x, y, w, h;     /* target rectangle in device units (pixels) */
	int show_title;        /* 1 = title line above the diagram */
	const struct hark_draw_caption *captions; /* sorted by start; may be NULL */
	size_t n_captions;
	double caption_h;      /* height of the caption band inside the rectangle (0 = none) */
};

/* Defaults for a w x h target at the origin: light theme, static, title on,
 * no captions. */
struct hark_draw_params hark_draw_default_params(double w, double h);

/*
 * Paints the whole scene (background, title, diagram, caption band) into
 * p->x..p->x+w, p->y..p->y+h of cr. d and l must belong together (same
 * element counts; HARK_ERR_INVALID_ARG otherwise). The cairo state is saved
 * and restored. Returns 0, HARK_ERR_INVALID_ARG, or HARK_ERR_INTERNAL when
 * cairo reports an error status on cr afterwards.
 */
int hark_draw_scene(cairo_t *cr, const struct hark_diagram *d, const struct hark_layout *l,
		    const struct hark_draw_params *p);

/*
 * A 64-bit digest of everything that makes hark_draw_scene(p) look the way it
 * does at p->t: the set of visible elements, each one's fade-in step, the
 * current (highlighted) element, the caption shown, theme and rectangle.
 * Equal keys mean identical pixels, so a video encoder can reuse a frame
 * (render/video.h). Never fails; 0 for invalid arguments.
 */
unsigned long long hark_draw_scene_key(const struct hark_diagram *d, const struct hark_layout *l,
				       const struct hark_draw_params *p);

/*
 * The device-space rectangle (x, y, w, h) where node i is drawn by
 * hark_draw_scene with params p (the same fit-and-scale computation), into
 * rect[4]. HARK_ERR_INVALID_ARG for i out of range.
 */
int hark_draw_node_rect(const struct hark_layout *l, const struct hark_draw_params *p, size_t i,
			double rect[4]);

/*
 * Still images into new heap buffers (*out, *len; free with free()):
 *  - SVG sized to the layout (plus margins), static, vector text;
 *  - PNG of width x height pixels (0 x 0 = 1280 x 720), static.
 * Errors: HARK_ERR_INVALID_ARG, HARK_ERR_NOMEM, HARK_ERR_INTERNAL (cairo
 * failure); err (errlen bytes) says why.
 */
int hark_draw_svg(const struct hark_diagram *d, const struct hark_layout *l, int dark,
		  unsigned char **out, size_t *len, char *err, size_t errlen);
int hark_draw_png(const struct hark_diagram *d, const struct hark_layout *l, int dark, int width,
		  int height, unsigned char **out, size_t *len, char *err, size_t errlen);

#endif /* HARK_RENDER_DRAW_H */
