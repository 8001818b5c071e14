/*
 * A diagram scene: the pages of a diagram (analyze/visual.h), their layouts
 * and the captions of the transcript, ready to be painted at any moment of
 * the audio. It is what `hark diagram` writes as still images and what
 * `hark video` and the server's video jobs paint frame by frame: the page
 * shown at time t is the last one whose first node has been spoken, its
 * elements appear as they are said (render/draw.h), and the caption is the
 * phrase being spoken (turns are cut into phrases of at most a dozen words
 * with times interpolated along the turn). A finished scene is immutable and
 * may be painted from any number of threads at once.
 */
#ifndef HARK_RENDER_SCENE_H
#define HARK_RENDER_SCENE_H

#include <stddef.h>

#include <cairo.h>

#include "analyze/chunk.h"
#include "render/diagram.h"
#include "render/draw.h"
#include "render/layout.h"

struct hark_scene;

struct hark_scene_params {
	int dark;              /* dark theme (0) */
	int captions;          /* 1 = caption band (1) */
	double caption_frac;   /* caption band height as a fraction of the frame (0.14) */
	size_t caption_words;  /* words per caption phrase (12) */
};

struct hark_scene_params hark_scene_default_params(void);

/*
 * Lays out pages[0..n_pages) (each must validate) and cuts turns[0..n_turns)
 * (may be 0) into captions. pages and turns are copied: the caller may free
 * them afterwards. *out heap-owned (hark_scene_free). Errors: those of
 * hark_layout_compute, HARK_ERR_INVALID_ARG, HARK_ERR_NOMEM; err says why.
 */
int hark_scene_init(const struct hark_diagram *pages, size_t n_pages,
		    const struct hark_chunk_turn *turns, size_t n_turns,
		    const struct hark_scene_params *p, struct hark_scene **out, char *err,
		    size_t errlen);

void hark_scene_free(struct hark_scene *s);

/* The page shown at t seconds (0-based); t < 0 = page 0. */
size_t hark_scene_page_at(const struct hark_scene *s, double t);

size_t hark_scene_n_pages(const struct hark_scene *s);
const struct hark_diagram *hark_scene_page(const struct hark_scene *s, size_t page);
const struct hark_layout *hark_scene_layout(const struct hark_scene *s, size_t page);

/* The draw parameters of a width x height frame at t (captions, theme,
 * caption band), as hark_scene_paint uses them. */
struct hark_draw_params hark_scene_draw_params(const struct hark_scene *s, double t, int width,
					       int height);

/*
 * A render/video.h painter and frame key over a scene (user_data = the
 * scene): the page at t_s with its elements revealed up to t_s and the
 * caption spoken at t_s.
 */
int hark_scene_paint(cairo_t *cr, double t_s, long frame, int width, int height, void *scene);
unsigned long long hark_scene_key(double t_s, long frame, void *scene);

/*
 * Still images of page `page`: SVG and a width x height PNG (0 x 0 =
 * 1280 x 720), static (everything shown), in new heap buffers (free()).
 * Errors as hark_draw_svg / hark_draw_png.
 */
int hark_scene_svg(const struct hark_scene *s, size_t page, unsigned char **out, size_t *len,
		   char *err, size_t errlen);
int hark_scene_png(const struct hark_scene *s, size_t page, int width, int height,
		   unsigned char **out, size_t *len, char *err, size_t errlen);

#endif /* HARK_RENDER_SCENE_H */
