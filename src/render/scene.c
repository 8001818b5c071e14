/*
 * Diagram scenes (contract in render/scene.h): owns copies of the pages,
 * their layouts and the caption phrases, and maps a moment of the audio to
 * the page, the revealed elements and the caption that render/draw.h paints.
 */
#include "render/scene.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hark/hark.h"
#include "util/errbuf.h"

/* Caption phrases at most (a 3-hour meeting has ~30k words). */
#define SCENE_MAX_CAPTIONS ((size_t)1 << 20)

struct hark_scene {
	struct hark_scene_params p;
	struct hark_diagram *pages;
	struct hark_layout *layouts;
	double *page_start;          /* when each page appears */
	size_t n_pages;
	struct hark_draw_caption *caps;
	char **cap_text;
	size_t n_caps;
};

struct hark_scene_params hark_scene_default_params(void)
{
	struct hark_scene_params p;

	memset(&p, 0, sizeof(p));
	p.captions = 1;
	p.caption_frac = 0.14;
	p.caption_words = 12;
	return p;
}

void hark_scene_free(struct hark_scene *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_caps; i++)
		free(s->cap_text[i]);
	free(s->cap_text);
	free(s->caps);
	for (size_t i = 0; i < s->n_pages; i++) {
		hark_layout_free(&s->layouts[i]);
		hark_diagram_clear(&s->pages[i]);
	}
	free(s->page_start);
	free(s->layouts);
	free(s->pages);
	free(s);
}

/* Deep copy through the spec's own JSON form. */
static int copy_spec(const struct hark_diagram *src, struct hark_diagram *dst, char *err,
		     size_t errlen)
{
	json_t *j = hark_diagram_to_json(src);
	int rc;

	if (!j)
		return HARK_ERR_NOMEM;
	rc = hark_diagram_from_json(j, dst, err, errlen);
	json_decref(j);
	return rc;
}

static double page_first_time(const struct hark_diagram *d)
{
	double t = INFINITY;

	for (size_t i = 0; i < d->n_nodes; i++)
		if (d->nodes[i].span.start_s >= 0 && d->nodes[i].span.start_s < t)
			t = d->nodes[i].span.start_s;
	/* edges are not counted: one may carry the time of a step on the page
	 * before (a branch joining later), and a page is shown for its nodes */
	return t;
}

/* Appends the phrases of one turn: caption_words words each, times
 * interpolated by byte offset along the turn. */
static int add_phrases(struct hark_scene *s, const struct hark_chunk_turn *t, size_t *cap)
{
	const char *txt = t->text ? t->text : "";
	size_t len = strlen(txt), i = 0;
	double t0 = t->start_s, t1 = t->end_s > t->start_s ? t->end_s : t->start_s + 0.5;

	if (t->start_s < 0 || len == 0)
		return HARK_OK;
	while (i < len) {
		size_t a, words = 0;

		while (i < len && (txt[i] == ' ' || txt[i] == '\n' || txt[i] == '\t'))
			i++;
		if (i >= len)
			break;
		a = i;
		while (i < len && words < s->p.caption_words) {
			while (i < len && txt[i] != ' ' && txt[i] != '\n' && txt[i] != '\t')
				i++;
			words++;
			while (i < len && words < s->p.caption_words &&
			       (txt[i] == ' ' || txt[i] == '\n' || txt[i] == '\t'))
				i++;
		}
		if (s->n_caps >= SCENE_MAX_CAPTIONS)
			return HARK_OK;
		if (s->n_caps == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			struct hark_draw_caption *c = realloc(s->caps, nc * sizeof(*c));
			char **ct;

			if (!c)
				return HARK_ERR_NOMEM;
			s->caps = c;
			ct = realloc(s->cap_text, nc * sizeof(*ct));
			if (!ct)
				return HARK_ERR_NOMEM;
			s->cap_text = ct;
			*cap = nc;
		}
		s->cap_text[s->n_caps] = strndup(txt + a, i - a);
		if (!s->cap_text[s->n_caps])
			return HARK_ERR_NOMEM;
		s->caps[s->n_caps].start_s = t0 + (t1 - t0) * (double)a / (double)len;
		s->caps[s->n_caps].end_s = t0 + (t1 - t0) * (double)i / (double)len;
		s->caps[s->n_caps].text = s->cap_text[s->n_caps];
		s->n_caps++;
	}
	return HARK_OK;
}

static int cap_cmp(const void *a, const void *b)
{
	const struct hark_draw_caption *x = a, *y = b;

	return (x->start_s > y->start_s) - (x->start_s < y->start_s);
}

int hark_scene_init(const struct hark_diagram *pages, size_t n_pages,
		    const struct hark_chunk_turn *turns, size_t n_turns,
		    const struct hark_scene_params *p, struct hark_scene **out, char *err,
		    size_t errlen)
{
	struct hark_scene_params dp = hark_scene_default_params();
	struct hark_scene *s = NULL;
	size_t cap = 0;
	int rc = HARK_OK;

	if (!out || !pages || n_pages == 0 || (!turns && n_turns > 0)) {
		hark_errbuf_set(err, errlen, "invalid arguments");
		return HARK_ERR_INVALID_ARG;
	}
	*out = NULL;
	if (!p)
		p = &dp;
	if (!(p->caption_frac >= 0 && p->caption_frac <= 0.4) || p->caption_words < 1) {
		hark_errbuf_set(err, errlen, "invalid scene parameters");
		return HARK_ERR_INVALID_ARG;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return HARK_ERR_NOMEM;
	s->p = *p;
	s->pages = calloc(n_pages, sizeof(*s->pages));
	s->layouts = calloc(n_pages, sizeof(*s->layouts));
	s->page_start = calloc(n_pages, sizeof(*s->page_start));
	if (!s->pages || !s->layouts || !s->page_start) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_pages; i++) {
		rc = copy_spec(&pages[i], &s->pages[i], err, errlen);
		s->n_pages = i + 1;
		if (rc == HARK_OK)
			rc = hark_layout_compute(&s->pages[i], NULL, &s->layouts[i], err, errlen);
		if (rc != HARK_OK)
			goto out;
		s->page_start[i] = i == 0 ? 0 : page_first_time(&s->pages[i]);
		if (i > 0 && !(s->page_start[i] >= s->page_start[i - 1]))
			s->page_start[i] = s->page_start[i - 1];
	}
	if (p->captions) {
		for (size_t i = 0; i < n_turns && rc == HARK_OK; i++)
			rc = add_phrases(s, &turns[i], &cap);
		if (rc != HARK_OK)
			goto out;
		if (s->n_caps > 1)
			qsort(s->caps, s->n_caps, sizeof(*s->caps), cap_cmp);
	}
	*out = s;
	s = NULL;
out:
	hark_scene_free(s);
	return rc;
}

size_t hark_scene_n_pages(const struct hark_scene *s)
{
	return s ? s->n_pages : 0;
}

const struct hark_diagram *hark_scene_page(const struct hark_scene *s, size_t page)
{
	return s && page < s->n_pages ? &s->pages[page] : NULL;
}

const struct hark_layout *hark_scene_layout(const struct hark_scene *s, size_t page)
{
	return s && page < s->n_pages ? &s->layouts[page] : NULL;
}

size_t hark_scene_page_at(const struct hark_scene *s, double t)
{
	size_t k = 0;

	if (!s || t < 0)
		return 0;
	while (k + 1 < s->n_pages && s->page_start[k + 1] <= t)
		k++;
	return k;
}

struct hark_draw_params hark_scene_draw_params(const struct hark_scene *s, double t, int width,
					       int height)
{
	struct hark_draw_params dp = hark_draw_default_params(width, height);

	dp.dark = s->p.dark;
	dp.t = t;
	if (s->p.captions && t >= 0) {
		dp.captions = s->caps;
		dp.n_captions = s->n_caps;
		dp.caption_h = floor(height * s->p.caption_frac);
	}
	return dp;
}

int hark_scene_paint(cairo_t *cr, double t_s, long frame, int width, int height, void *scene)
{
	const struct hark_scene *s = scene;
	struct hark_draw_params dp;
	size_t k;

	(void)frame;
	if (!s || !cr)
		return HARK_ERR_INVALID_ARG;
	k = hark_scene_page_at(s, t_s);
	dp = hark_scene_draw_params(s, t_s, width, height);
	return hark_draw_scene(cr, &s->pages[k], &s->layouts[k], &dp);
}

unsigned long long hark_scene_key(double t_s, long frame, void *scene)
{
	const struct hark_scene *s = scene;
	struct hark_draw_params dp;
	unsigned long long k;
	size_t pg;

	(void)frame;
	if (!s)
		return 0;
	pg = hark_scene_page_at(s, t_s);
	/* the size does not change within one video, so any fixed one keys it */
	dp = hark_scene_draw_params(s, t_s, 1280, 720);
	k = hark_draw_scene_key(&s->pages[pg], &s->layouts[pg], &dp);
	return k ^ ((unsigned long long)(pg + 1) * 0x9E3779B97F4A7C15ULL);
}

int hark_scene_svg(const struct hark_scene *s, size_t page, unsigned char **out, size_t *len,
		   char *err, size_t errlen)
{
	if (!s || page >= s->n_pages) {
		hark_errbuf_set(err, errlen, "no page %zu", page + 1);
		return HARK_ERR_INVALID_ARG;
	}
	return hark_draw_svg(&s->pages[page], &s->layouts[page], s->p.dark, out, len, err, errlen);
}

int hark_scene_png(const struct hark_scene *s, size_t page, int width, int height,
		   unsigned char **out, size_t *len, char *err, size_t errlen)
{
	if (!s || page >= s->n_pages) {
		hark_errbuf_set(err, errlen, "no page %zu", page + 1);
		return HARK_ERR_INVALID_ARG;
	}
	return hark_draw_png(&s->pages[page], &s->layouts[page], s->p.dark, width, height, out,
			     len, err, errlen);
}
