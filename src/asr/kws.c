/*
 * Keyword spotting (see kws.h): validates and normalises the phrases, loads
 * the PocketSphinx model through the engine table, streams the media through
 * hark_audio into a keyphrase-search state built by engine_pocketsphinx.c,
 * turns its detections into hits, and merges overlapping detections of one
 * phrase (keeping the best score and the union of their spans).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr/kws.h"
#include "audio/audio.h"
#include "format/transcript.h"

struct hark_kws_params hark_kws_default_params(void)
{
	struct hark_kws_params p;
	memset(&p, 0, sizeof p);
	p.threshold = 1e-20;
	p.channel = -1;
	return p;
}

void hark_kws_hits_free(struct hark_kws_hit *hits, size_t n)
{
	if (!hits)
		return;
	for (size_t i = 0; i < n; i++)
		free(hits[i].keyword);
	free(hits);
}

/* Lowercases phrase and collapses blanks into dst (cap bytes). */
static int norm_phrase(const char *in, char *dst, size_t cap, char *err, size_t errlen)
{
	size_t k = 0;
	int space = 0;

	for (const char *c = in; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		if (isspace(ch)) {
			space = k > 0;
			continue;
		}
		if (ch == '/' || ch < 0x20) {
			snprintf(err, errlen, "keyword \"%s\" contains an invalid character", in);
			return HARK_ERR_INVALID_ARG;
		}
		if (k + 2 >= cap) {
			snprintf(err, errlen, "keyword \"%.40s...\" is too long", in);
			return HARK_ERR_INVALID_ARG;
		}
		if (space)
			dst[k++] = ' ';
		space = 0;
		dst[k++] = (char)tolower(ch);
	}
	dst[k] = 0;
	if (k == 0) {
		snprintf(err, errlen, "empty keyword");
		return HARK_ERR_INVALID_ARG;
	}
	return HARK_OK;
}

static int cmp_hit(const void *a, const void *b)
{
	const struct hark_kws_hit *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return strcmp(x->keyword, y->keyword);
}

/* Converts detections (transcript words) to sorted, merged hits. */
static int collect_hits(const struct hark_transcript *t, struct hark_kws_hit **hits,
			size_t *n_hits, char *err, size_t errlen)
{
	struct hark_kws_hit *h = NULL;
	size_t n = 0;

	if (t->n_words > HARK_KWS_MAX_HITS) {
		snprintf(err, errlen, "more than %d keyword hits", HARK_KWS_MAX_HITS);
		return HARK_ERR_LIMIT;
	}
	if (t->n_words) {
		h = calloc(t->n_words, sizeof *h);
		if (!h)
			return HARK_ERR_NOMEM;
	}
	for (size_t i = 0; i < t->n_words; i++) {
		const char *w = t->words[i].word;
		size_t len;
		while (*w == ' ')
			w++;
		len = strlen(w);
		while (len > 0 && w[len - 1] == ' ')  /* PocketSphinx appends a blank */
			len--;
		h[n].keyword = strndup(w, len);
		if (!h[n].keyword) {
			hark_kws_hits_free(h, n);
			return HARK_ERR_NOMEM;
		}
		h[n].start = t->words[i].start;
		h[n].end = t->words[i].end;
		h[n].score = t->words[i].probability;
		n++;
	}
	if (n > 1)
		qsort(h, n, sizeof *h, cmp_hit);
	/* Merge a hit into an earlier overlapping hit of the same phrase. */
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n && h[j].start < h[i].end;) {
			if (strcmp(h[i].keyword, h[j].keyword) == 0) {
				if (h[j].end > h[i].end)
					h[i].end = h[j].end;
				if (h[j].score > h[i].score)
					h[i].score = h[j].score;
				free(h[j].keyword);
				memmove(&h[j], &h[j + 1], (n - j - 1) * sizeof *h);
				n--;
			} else {
				j++;
			}
		}
	}
	if (n == 0) {
		free(h);
		h = NULL;
	}
	*hits = h;
	*n_hits = n;
	return HARK_OK;
}

/* Shared driver: exactly one of path / pcm is used. */
static int spot(const char *path, const float *pcm, size_t n_samples,
		const char *const *keywords, size_t n, const struct hark_kws_params *pin,
		struct hark_kws_hit **hits, size_t *n_hits, char *err, size_t errlen)
{
	struct hark_kws_params p = pin ? *pin : hark_kws_default_params();
	const struct hark_engine_ops *ops = &hark_engine_pocketsphinx;
	struct hark_engine_run_params rp;
	struct hark_audio_params ap = hark_audio_default_params();
	struct hark_audio *audio = NULL;
	struct hark_transcript *t = NULL;
	char (*phrases)[HARK_KWS_MAX_PHRASE] = NULL;
	const char **pp = NULL;
	double *thr = NULL;
	void *model = NULL, *state = NULL;
	int rc = HARK_OK;

	if (!hits || !n_hits || !keywords) {
		snprintf(err, errlen, "missing argument");
		return HARK_ERR_INVALID_ARG;
	}
	*hits = NULL;
	*n_hits = 0;
	if (n == 0) {
		snprintf(err, errlen, "no keywords given");
		return HARK_ERR_INVALID_ARG;
	}
	if (n > HARK_KWS_MAX_KEYWORDS) {
		snprintf(err, errlen, "more than %d keywords", HARK_KWS_MAX_KEYWORDS);
		return HARK_ERR_LIMIT;
	}
	if (!(p.threshold > 0.0) || p.threshold > 1.0) {
		snprintf(err, errlen, "threshold must be in (0, 1], e.g. 1e-20");
		return HARK_ERR_INVALID_ARG;
	}
	phrases = calloc(n, sizeof *phrases);
	pp = calloc(n, sizeof *pp);
	thr = calloc(n, sizeof *thr);
	if (!phrases || !pp || !thr) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!keywords[i]) {
			snprintf(err, errlen, "NULL keyword");
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
		if ((rc = norm_phrase(keywords[i], phrases[i], sizeof phrases[i], err, errlen)))
			goto out;
		pp[i] = phrases[i];
		thr[i] = p.thresholds && p.thresholds[i] > 0 ? p.thresholds[i] : p.threshold;
		if (thr[i] > 1.0) {
			snprintf(err, errlen, "threshold for \"%s\" must be in (0, 1]", pp[i]);
			rc = HARK_ERR_INVALID_ARG;
			goto out;
		}
	}
	memset(&rp, 0, sizeof rp);
	rp.language = "en";
	rp.n_threads = 1;
	rp.progress = p.progress;
	rp.progress_user_data = p.progress_user_data;
	rp.cancel = p.cancel;
	rp.cancel_user_data = p.cancel_user_data;
	if (path) {
		ap.offset_s = p.offset_s;
		ap.duration_s = p.duration_s;
		ap.channel = p.channel;
		if ((rc = hark_audio_open(path, &ap, &audio, err, errlen)))
			goto out;
		rp.total_s = hark_audio_info(audio)->duration_s - p.offset_s;
		if (p.duration_s > 0 && (rp.total_s <= 0 || p.duration_s < rp.total_s))
			rp.total_s = p.duration_s;
		if (rp.total_s < 0)
			rp.total_s = 0;
	} else {
		rp.total_s = (double)n_samples / HARK_SAMPLE_RATE;
	}
	if ((rc = hark_kws_ps_model_load(p.model_path, &model, err, errlen)))
		goto out;
	if ((rc = hark_kws_ps_state_new(model, pp, thr, n, &rp, &state, err, errlen)))
		goto out;
	if (path) {
		for (;;) {
			const float *buf;
			size_t k;
			if ((rc = hark_audio_read(audio, &buf, &k, err, errlen)))
				goto out;
			if (k == 0)
				break;
			if ((rc = ops->feed(state, buf, k, err, errlen)))
				goto out;
		}
	} else {
		/* feed in 1 s pieces so cancel and progress are polled */
		for (size_t off = 0; off < n_samples; off += HARK_SAMPLE_RATE) {
			size_t k = n_samples - off < HARK_SAMPLE_RATE ? n_samples - off
								     : HARK_SAMPLE_RATE;
			if ((rc = ops->feed(state, pcm + off, k, err, errlen)))
				goto out;
		}
	}
	if ((rc = hark_transcript_new(&t)))
		goto out;
	if ((rc = ops->finish(state, t, err, errlen)))
		goto out;
	rc = collect_hits(t, hits, n_hits, err, errlen);
	if (rc == HARK_OK && path && p.offset_s > 0)
		for (size_t i = 0; i < *n_hits; i++) {
			(*hits)[i].start += p.offset_s;
			(*hits)[i].end += p.offset_s;
		}
out:
	if (rc == HARK_ERR_CANCELED)
		snprintf(err, errlen, "canceled");
	else if (rc == HARK_ERR_NOMEM)
		snprintf(err, errlen, "out of memory");
	hark_transcript_free(t);
	if (state)
		ops->state_free(state);
	if (model)
		ops->model_free(model);
	hark_audio_close(audio);
	free(thr);
	free(pp);
	free(phrases);
	return rc;
}

int hark_kws_spot_file(const char *path, const char *const *keywords, size_t n,
		       const struct hark_kws_params *p, struct hark_kws_hit **hits,
		       size_t *n_hits, char *err, size_t errlen)
{
	if (!path) {
		snprintf(err, errlen, "no input file");
		return HARK_ERR_INVALID_ARG;
	}
	return spot(path, NULL, 0, keywords, n, p, hits, n_hits, err, errlen);
}

int hark_kws_spot_pcm(const float *pcm, size_t n_samples, const char *const *keywords,
		      size_t n, const struct hark_kws_params *p, struct hark_kws_hit **hits,
		      size_t *n_hits, char *err, size_t errlen)
{
	if (!pcm && n_samples) {
		snprintf(err, errlen, "no samples");
		return HARK_ERR_INVALID_ARG;
	}
	return spot(NULL, pcm, n_samples, keywords, n, p, hits, n_hits, err, errlen);
}
