/*
 * struct hark_transcript lifetime and builder: allocation, release, and the
 * capped, invariant-keeping append operations that engines and parsers use
 * to fill a transcript (see transcript.h for the contract).
 */
#include "format/transcript.h"

#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

static void segment_release(struct hark_segment *s)
{
	free(s->text);
	free(s->tokens);
}

void hark_transcript_clear(struct hark_transcript *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n_segments; i++)
		segment_release(&t->segments[i]);
	for (i = 0; i < t->n_words; i++)
		free(t->words[i].word);
	free(t->segments);
	free(t->words);
	free(t->text);
	free(t->language);
	free(t->engine_name);
	free(t->engine_model);
	free(t->engine_version);
	free(t->source);
	memset(t, 0, sizeof(*t));
}

void hark_transcript_free(struct hark_transcript *t)
{
	if (!t)
		return;
	hark_transcript_clear(t);
	free(t);
}

int hark_transcript_new(struct hark_transcript **out)
{
	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = calloc(1, sizeof(**out));
	return *out ? HARK_OK : HARK_ERR_NOMEM;
}

static int copy_str(const char *value, char **out)
{
	size_t n;

	*out = NULL;
	if (!value)
		return HARK_OK;
	n = strnlen(value, HARK_TRANSCRIPT_MAX_STR + 1);
	if (n > HARK_TRANSCRIPT_MAX_STR)
		return HARK_ERR_LIMIT;
	*out = malloc(n + 1);
	if (!*out)
		return HARK_ERR_NOMEM;
	memcpy(*out, value, n + 1);
	return HARK_OK;
}

int hark_transcript_set_str(char **field, const char *value)
{
	char *copy;
	int rc;

	if (!field)
		return HARK_ERR_INVALID_ARG;
	if ((rc = copy_str(value, &copy)))
		return rc;
	free(*field);
	*field = copy;
	return HARK_OK;
}

/* Makes room for one more element in *arr (n used, elem bytes each). */
static int grow(void **arr, size_t n, size_t elem, size_t max)
{
	size_t cap = *arr ? malloc_usable_size(*arr) / elem : 0;
	size_t ncap;
	void *np;

	if (n >= max)
		return HARK_ERR_LIMIT;
	if (n < cap)
		return HARK_OK;
	ncap = n < 16 ? 16 : n * 2;
	if (ncap > max)
		ncap = max;
	np = realloc(*arr, ncap * elem);
	if (!np)
		return HARK_ERR_NOMEM;
	*arr = np;
	return HARK_OK;
}

static int fix_times(double *start, double *end)
{
	if (!isfinite(*start) || !isfinite(*end))
		return HARK_ERR_INVALID_ARG;
	if (*start < 0)
		*start = 0;
	if (*end < *start)
		*end = *start;
	return HARK_OK;
}

int hark_transcript_add_segment(struct hark_transcript *t, double start, double end,
				const char *text, const int32_t *tokens, size_t n_tokens,
				float avg_logprob, float no_speech_prob, float temperature,
				float compression_ratio)
{
	struct hark_segment s;
	void *arr;
	int rc;

	if (!t || (n_tokens && !tokens))
		return HARK_ERR_INVALID_ARG;
	if ((rc = fix_times(&start, &end)))
		return rc;
	if (n_tokens > HARK_TRANSCRIPT_MAX_TOKENS)
		return HARK_ERR_LIMIT;
	arr = t->segments;
	rc = grow(&arr, t->n_segments, sizeof(*t->segments), HARK_TRANSCRIPT_MAX_SEGMENTS);
	t->segments = arr;
	if (rc)
		return rc;

	memset(&s, 0, sizeof(s));
	if ((rc = copy_str(text ? text : "", &s.text)))
		return rc;
	if (n_tokens) {
		s.tokens = malloc(n_tokens * sizeof(*s.tokens));
		if (!s.tokens) {
			free(s.text);
			return HARK_ERR_NOMEM;
		}
		memcpy(s.tokens, tokens, n_tokens * sizeof(*s.tokens));
		s.n_tokens = n_tokens;
	}
	s.id = (int)t->n_segments;
	s.start = start;
	s.end = end;
	s.avg_logprob = avg_logprob;
	s.no_speech_prob = no_speech_prob;
	s.temperature = temperature;
	s.compression_ratio = compression_ratio;
	s.first_word = t->n_words;
	s.n_words = 0;
	t->segments[t->n_segments++] = s;
	return HARK_OK;
}

int hark_transcript_add_word(struct hark_transcript *t, const char *word, double start,
			     double end, float probability)
{
	struct hark_segment *seg;
	struct hark_word w;
	void *arr;
	int rc;

	if (!t || !t->n_segments)
		return HARK_ERR_INVALID_ARG;
	seg = &t->segments[t->n_segments - 1];
	if (seg->first_word + seg->n_words != t->n_words)
		return HARK_ERR_INTERNAL;
	if ((rc = fix_times(&start, &end)))
		return rc;
	arr = t->words;
	rc = grow(&arr, t->n_words, sizeof(*t->words), HARK_TRANSCRIPT_MAX_WORDS);
	t->words = arr;
	if (rc)
		return rc;
	memset(&w, 0, sizeof(w));
	if ((rc = copy_str(word ? word : "", &w.word)))
		return rc;
	w.start = start;
	w.end = end;
	if (!(probability >= 0.0f)) /* also catches NaN */
		probability = 0.0f;
	w.probability = probability > 1.0f ? 1.0f : probability;
	t->words[t->n_words++] = w;
	seg->n_words++;
	return HARK_OK;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int hark_transcript_finalize_text(struct hark_transcript *t)
{
	size_t total = 0, i, o = 0, a, b;
	char *buf;

	if (!t)
		return HARK_ERR_INVALID_ARG;
	for (i = 0; i < t->n_segments; i++) {
		total += strlen(t->segments[i].text ? t->segments[i].text : "") + 1;
		if (total > HARK_TRANSCRIPT_MAX_TEXT)
			return HARK_ERR_LIMIT;
	}
	buf = malloc(total + 1);
	if (!buf)
		return HARK_ERR_NOMEM;
	for (i = 0; i < t->n_segments; i++) {
		const char *s = t->segments[i].text ? t->segments[i].text : "";
		size_t n = strlen(s);

		if (!n)
			continue;
		if (o && !is_ws(buf[o - 1]) && !is_ws(s[0]))
			buf[o++] = ' ';
		memcpy(buf + o, s, n);
		o += n;
	}
	/* Trim. */
	a = 0;
	b = o;
	while (a < b && is_ws(buf[a]))
		a++;
	while (b > a && is_ws(buf[b - 1]))
		b--;
	memmove(buf, buf + a, b - a);
	buf[b - a] = '\0';
	free(t->text);
	t->text = buf;
	return HARK_OK;
}

static double shift1(double v, double d)
{
	v += d;
	return v < 0 ? 0 : v;
}

void hark_transcript_shift(struct hark_transcript *t, double delta_s)
{
	size_t i;

	if (!t || !isfinite(delta_s))
		return;
	for (i = 0; i < t->n_segments; i++) {
		t->segments[i].start = shift1(t->segments[i].start, delta_s);
		t->segments[i].end = shift1(t->segments[i].end, delta_s);
	}
	for (i = 0; i < t->n_words; i++) {
		t->words[i].start = shift1(t->words[i].start, delta_s);
		t->words[i].end = shift1(t->words[i].end, delta_s);
	}
}

int hark_transcript_append(struct hark_transcript *dst, const struct hark_transcript *src,
			   double delta_s)
{
	size_t i, w;
	int rc;

	if (!dst || !src || dst == src || !isfinite(delta_s))
		return HARK_ERR_INVALID_ARG;
	for (i = 0; i < src->n_segments; i++) {
		const struct hark_segment *s = &src->segments[i];

		rc = hark_transcript_add_segment(dst, shift1(s->start, delta_s),
						 shift1(s->end, delta_s), s->text, s->tokens,
						 s->n_tokens, s->avg_logprob, s->no_speech_prob,
						 s->temperature, s->compression_ratio);
		if (rc)
			return rc;
		for (w = s->first_word; w < s->first_word + s->n_words && w < src->n_words; w++) {
			const struct hark_word *wd = &src->words[w];

			rc = hark_transcript_add_word(dst, wd->word, shift1(wd->start, delta_s),
						      shift1(wd->end, delta_s), wd->probability);
			if (rc)
				return rc;
		}
	}
	return HARK_OK;
}
