/*
 * Output formats for struct hark_transcript: format names and extensions,
 * rendering to plain text and to OpenAI verbose_json (plus an "engine"
 * object) with jansson, writing to a FILE, and the JSON reader that loads
 * hark's own JSON back. Every string is sanitised to valid UTF-8 before it
 * reaches jansson (which rejects invalid UTF-8), times are rounded to the
 * millisecond and probabilities to 1e-6 so numbers print short. SRT/WebVTT
 * live in subtitle.c.
 */
#include "format/format.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>

#include "format/transcript.h"
#include "hark/hark.h"
#include "util/textnorm.h"
#include "util/errbuf.h"

/* ------------------------------------------------------------ buffer ---- */

int hark_format_buf_put(struct hark_format_buf *b, const char *s, size_t n)
{
	size_t max = b->max ? b->max : HARK_FORMAT_MAX_OUTPUT;

	if (n > max || b->len + n + 1 > max)
		return HARK_ERR_LIMIT;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 1024;
		char *np;

		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > max)
			ncap = max;
		np = realloc(b->p, ncap);
		if (!np)
			return HARK_ERR_NOMEM;
		b->p = np;
		b->cap = ncap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return HARK_OK;
}

int hark_format_buf_printf(struct hark_format_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n, rc;
	char *big;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return HARK_ERR_INTERNAL;
	if ((size_t)n < sizeof(small))
		return hark_format_buf_put(b, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (!big)
		return HARK_ERR_NOMEM;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = hark_format_buf_put(b, big, (size_t)n);
	free(big);
	return rc;
}

/* ----------------------------------------------------- names / ext ---- */

int hark_format_parse(const char *name, enum hark_format *out)
{
	static const struct {
		const char *name;
		enum hark_format fmt;
	} table[] = {
		{"txt", HARK_FORMAT_TXT},
		{"json", HARK_FORMAT_JSON},
		{"srt", HARK_FORMAT_SRT},
		{"vtt", HARK_FORMAT_VTT},
	};
	size_t i;

	if (!name || !out)
		return HARK_ERR_INVALID_ARG;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcasecmp(name, table[i].name) == 0) {
			*out = table[i].fmt;
			return HARK_OK;
		}
	}
	return HARK_ERR_INVALID_ARG;
}

const char *hark_format_ext(enum hark_format fmt)
{
	switch (fmt) {
	case HARK_FORMAT_TXT:
		return "txt";
	case HARK_FORMAT_JSON:
		return "json";
	case HARK_FORMAT_SRT:
		return "srt";
	case HARK_FORMAT_VTT:
		return "vtt";
	}
	return "txt";
}

/* --------------------------------------------------------------- txt ---- */

/* Appends s as one line: sanitised, control characters and line breaks
 * turned into spaces, runs of spaces collapsed, trimmed. Empty -> nothing. */
static int put_line(struct hark_format_buf *b, const char *s)
{
	char *clean = NULL;
	size_t n, i, o = 0;
	int rc, space = 0;

	if (!s)
		return HARK_OK;
	if ((rc = hark_textnorm_utf8_sanitize(s, strlen(s), 1, &clean, &n)))
		return rc;
	for (i = 0; i < n; i++) {
		char c = clean[i];

		if (c == '\t' || c == '\n' || c == '\r' || c == ' ') {
			space = 1;
			continue;
		}
		if (space && o)
			clean[o++] = ' ';
		space = 0;
		clean[o++] = c;
	}
	rc = HARK_OK;
	if (o && !(rc = hark_format_buf_put(b, clean, o)))
		rc = hark_format_buf_put(b, "\n", 1);
	free(clean);
	return rc;
}

static int render_txt(const struct hark_transcript *t, struct hark_format_buf *b)
{
	size_t i;
	int rc;

	if (!t->n_segments)
		return put_line(b, t->text);
	for (i = 0; i < t->n_segments; i++)
		if ((rc = put_line(b, t->segments[i].text)))
			return rc;
	return HARK_OK;
}

/* -------------------------------------------------------- json write ---- */

static double round_to(double v, double scale)
{
	if (!isfinite(v))
		return 0.0;
	v = round(v * scale) / scale;
	return v == 0.0 ? 0.0 : v; /* no "-0.0" */
}

static json_t *jtime(double s)
{
	return json_real(round_to(s < 0 ? 0 : s, 1000.0));
}

static json_t *jfloat(float f)
{
	return json_real(round_to((double)f, 1e6));
}

/* A JSON string from arbitrary bytes (invalid UTF-8 -> U+FFFD); NULL -> null. */
static json_t *jstr(const char *s)
{
	char *clean;
	size_t n;
	json_t *j;

	if (!s)
		return json_null();
	if (hark_textnorm_utf8_sanitize(s, strlen(s), 0, &clean, &n))
		return NULL;
	j = json_stringn(clean, n);
	free(clean);
	return j;
}

/* json_object_set_new that fails on a NULL value (allocation failure). */
static int oset(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return -1;
	return json_object_set_new(o, key, v);
}

static int aappend(json_t *a, json_t *v)
{
	if (!v)
		return -1;
	return json_array_append_new(a, v);
}

static json_t *json_segment(const struct hark_segment *s)
{
	json_t *o = json_object(), *toks = json_array();
	size_t i;
	double start = s->start < 0 || !isfinite(s->start) ? 0 : s->start;

	if (!o || !toks)
		goto fail;
	for (i = 0; i < s->n_tokens; i++)
		if (aappend(toks, json_integer(s->tokens[i])))
			goto fail;
	if (oset(o, "id", json_integer(s->id)) ||
	    oset(o, "seek", json_integer((json_int_t)llround(start * 100.0))) ||
	    oset(o, "start", jtime(s->start)) || oset(o, "end", jtime(s->end)) ||
	    oset(o, "text", jstr(s->text ? s->text : "")))
		goto fail;
	if (json_object_set(o, "tokens", toks))
		goto fail;
	json_decref(toks);
	toks = NULL;
	if (oset(o, "temperature", jfloat(s->temperature)) ||
	    oset(o, "avg_logprob", jfloat(s->avg_logprob)) ||
	    oset(o, "compression_ratio", jfloat(s->compression_ratio)) ||
	    oset(o, "no_speech_prob", jfloat(s->no_speech_prob)))
		goto fail;
	return o;
fail:
	json_decref(toks);
	json_decref(o);
	return NULL;
}

static json_t *json_word(const struct hark_word *w)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (oset(o, "word", jstr(w->word ? w->word : "")) || oset(o, "start", jtime(w->start)) ||
	    oset(o, "end", jtime(w->end)) || oset(o, "probability", jfloat(w->probability))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int render_json(const struct hark_transcript *t, struct hark_format_buf *b)
{
	json_t *root = NULL, *segs = NULL, *words = NULL, *eng = NULL;
	char *text = NULL, *dump = NULL;
	size_t i;
	int rc = HARK_ERR_NOMEM;

	root = json_object();
	segs = json_array();
	words = json_array();
	eng = json_object();
	if (!root || !segs || !words || !eng)
		goto out;
	if (t->text) {
		if (oset(root, "task", json_string("transcribe")) ||
		    oset(root, "language", jstr(t->language)) ||
		    oset(root, "duration", jtime(t->duration)) || oset(root, "text", jstr(t->text)))
			goto out;
	} else {
		/* No joined text yet: join a copy of the segments. */
		struct hark_transcript tmp = *t;

		tmp.text = NULL;
		if ((rc = hark_transcript_finalize_text(&tmp)))
			goto out;
		text = tmp.text;
		rc = HARK_ERR_NOMEM;
		if (oset(root, "task", json_string("transcribe")) ||
		    oset(root, "language", jstr(t->language)) ||
		    oset(root, "duration", jtime(t->duration)) || oset(root, "text", jstr(text)))
			goto out;
	}
	if (t->offset > 0 && oset(root, "offset", jtime(t->offset)))
		goto out;
	for (i = 0; i < t->n_segments; i++)
		if (aappend(segs, json_segment(&t->segments[i])))
			goto out;
	for (i = 0; i < t->n_words; i++)
		if (aappend(words, json_word(&t->words[i])))
			goto out;
	if (json_object_set(root, "segments", segs) || json_object_set(root, "words", words))
		goto out;
	if (oset(eng, "name", jstr(t->engine_name)) || oset(eng, "model", jstr(t->engine_model)) ||
	    oset(eng, "version", jstr(t->engine_version)) || json_object_set(root, "engine", eng))
		goto out;
	if (t->source && oset(root, "source", jstr(t->source)))
		goto out;
	dump = json_dumps(root, JSON_REAL_PRECISION(15));
	if (!dump)
		goto out;
	if ((rc = hark_format_buf_put(b, dump, strlen(dump))) ||
	    (rc = hark_format_buf_put(b, "\n", 1)))
		goto out;
	rc = HARK_OK;
out:
	free(dump);
	free(text);
	json_decref(eng);
	json_decref(words);
	json_decref(segs);
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------ render ---- */

int hark_transcript_render(const struct hark_transcript *t, enum hark_format fmt, char **out,
			   size_t *out_len)
{
	struct hark_format_buf b = {NULL, 0, 0, 0};
	int rc;

	if (!t || !out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (out_len)
		*out_len = 0;
	switch (fmt) {
	case HARK_FORMAT_TXT:
		rc = render_txt(t, &b);
		break;
	case HARK_FORMAT_JSON:
		rc = render_json(t, &b);
		break;
	case HARK_FORMAT_SRT:
	case HARK_FORMAT_VTT:
		return hark_format_render_subtitles(t, fmt == HARK_FORMAT_VTT, out, out_len);
	default:
		return HARK_ERR_INVALID_ARG;
	}
	if (!rc && !b.p)
		rc = hark_format_buf_put(&b, "", 0);
	if (rc) {
		free(b.p);
		return rc;
	}
	*out = b.p;
	if (out_len)
		*out_len = b.len;
	return HARK_OK;
}

int hark_transcript_write(const struct hark_transcript *t, enum hark_format fmt, FILE *f)
{
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (!t || !f)
		return HARK_ERR_INVALID_ARG;
	if ((rc = hark_transcript_render(t, fmt, &buf, &len)))
		return rc;
	if ((len && fwrite(buf, 1, len, f) != len) || fflush(f) != 0 || ferror(f))
		rc = HARK_ERR_IO;
	free(buf);
	return rc;
}

/* --------------------------------------------------------- json read ---- */

/* Reads an optional number member; missing/null keeps *v. */
static int get_num(json_t *o, const char *key, double *v, int required, const char *what,
		   size_t idx, char *err, size_t errlen)
{
	json_t *j = json_object_get(o, key);

	if (!j || json_is_null(j)) {
		if (required) {
			hark_errbuf_set(err, errlen, "%s[%zu].%s: missing", what, idx, key);
			return HARK_ERR_FORMAT;
		}
		return HARK_OK;
	}
	if (!json_is_number(j) || !isfinite(json_number_value(j))) {
		hark_errbuf_set(err, errlen, "%s[%zu].%s: not a number", what, idx, key);
		return HARK_ERR_FORMAT;
	}
	*v = json_number_value(j);
	return HARK_OK;
}

static int get_str(json_t *o, const char *key, const char **v, int required, const char *what,
		   size_t idx, char *err, size_t errlen)
{
	json_t *j = json_object_get(o, key);

	*v = NULL;
	if (!j || json_is_null(j)) {
		if (required) {
			hark_errbuf_set(err, errlen, "%s[%zu].%s: missing", what, idx, key);
			return HARK_ERR_FORMAT;
		}
		return HARK_OK;
	}
	if (!json_is_string(j)) {
		hark_errbuf_set(err, errlen, "%s[%zu].%s: not a string", what, idx, key);
		return HARK_ERR_FORMAT;
	}
	*v = json_string_value(j);
	return HARK_OK;
}

static int check_times(double start, double end, const char *what, size_t idx, char *err,
		       size_t errlen)
{
	if (start < 0 || end < start) {
		hark_errbuf_set(err, errlen, "%s[%zu]: bad times (start %.3f, end %.3f)", what, idx, start,
			end);
		return HARK_ERR_FORMAT;
	}
	return HARK_OK;
}

static int read_segment(struct hark_transcript *t, json_t *s, size_t idx, char *err,
			size_t errlen)
{
	double start = 0, end = 0, temp = 0, lp = 0, cr = 0, nsp = 0;
	const char *text;
	json_t *toks;
	int32_t *ids = NULL;
	size_t n = 0, i;
	int rc;

	if (!json_is_object(s)) {
		hark_errbuf_set(err, errlen, "segments[%zu]: not an object", idx);
		return HARK_ERR_FORMAT;
	}
	if ((rc = get_num(s, "start", &start, 1, "segments", idx, err, errlen)) ||
	    (rc = get_num(s, "end", &end, 1, "segments", idx, err, errlen)) ||
	    (rc = get_str(s, "text", &text, 1, "segments", idx, err, errlen)) ||
	    (rc = get_num(s, "temperature", &temp, 0, "segments", idx, err, errlen)) ||
	    (rc = get_num(s, "avg_logprob", &lp, 0, "segments", idx, err, errlen)) ||
	    (rc = get_num(s, "compression_ratio", &cr, 0, "segments", idx, err, errlen)) ||
	    (rc = get_num(s, "no_speech_prob", &nsp, 0, "segments", idx, err, errlen)) ||
	    (rc = check_times(start, end, "segments", idx, err, errlen)))
		return rc;
	toks = json_object_get(s, "tokens");
	if (toks && !json_is_null(toks)) {
		if (!json_is_array(toks)) {
			hark_errbuf_set(err, errlen, "segments[%zu].tokens: not an array", idx);
			return HARK_ERR_FORMAT;
		}
		n = json_array_size(toks);
		if (n > HARK_TRANSCRIPT_MAX_TOKENS) {
			hark_errbuf_set(err, errlen, "segments[%zu].tokens: too many", idx);
			return HARK_ERR_LIMIT;
		}
		if (n && !(ids = malloc(n * sizeof(*ids))))
			return HARK_ERR_NOMEM;
		for (i = 0; i < n; i++) {
			json_t *v = json_array_get(toks, i);
			json_int_t x;

			if (!json_is_integer(v) || (x = json_integer_value(v)) < INT32_MIN ||
			    x > INT32_MAX) {
				hark_errbuf_set(err, errlen, "segments[%zu].tokens[%zu]: not a token id",
					idx, i);
				free(ids);
				return HARK_ERR_FORMAT;
			}
			ids[i] = (int32_t)x;
		}
	}
	rc = hark_transcript_add_segment(t, start, end, text, ids, n, (float)lp, (float)nsp,
					 (float)temp, (float)cr);
	free(ids);
	if (rc) {
		hark_errbuf_set(err, errlen, "segments[%zu]: %s", idx, hark_strerror(rc));
		return rc;
	}
	/* openai-whisper (Python) style: words nested in their segment. */
	toks = json_object_get(s, "words");
	if (json_is_array(toks)) {
		char what[48];

		snprintf(what, sizeof(what), "segments[%zu].words", idx);
		for (i = 0; i < json_array_size(toks); i++) {
			json_t *w = json_array_get(toks, i);
			double ws = 0, we = 0, prob = 0;
			const char *word;

			if (!json_is_object(w)) {
				hark_errbuf_set(err, errlen, "%s[%zu]: not an object", what, i);
				return HARK_ERR_FORMAT;
			}
			if ((rc = get_str(w, "word", &word, 1, what, i, err, errlen)) ||
			    (rc = get_num(w, "start", &ws, 1, what, i, err, errlen)) ||
			    (rc = get_num(w, "end", &we, 1, what, i, err, errlen)) ||
			    (rc = get_num(w, "probability", &prob, 0, what, i, err, errlen)) ||
			    (rc = check_times(ws, we, what, i, err, errlen)))
				return rc;
			if ((rc = hark_transcript_add_word(t, word, ws, we, (float)prob))) {
				hark_errbuf_set(err, errlen, "%s[%zu]: %s", what, i, hark_strerror(rc));
				return rc;
			}
		}
	}
	return HARK_OK;
}

/* whisper.cpp's `-oj` output: {"result": {"language"}, "transcription":
 * [{"offsets": {"from": ms, "to": ms}, "text"}]}. */
static int read_whisper_cpp(struct hark_transcript *t, json_t *root, json_t *tr, char *err,
			    size_t errlen)
{
	json_t *res = json_object_get(root, "result"), *lang, *toks;
	int32_t *ids = NULL;
	size_t i, k, n, m = 0;
	int rc;

	lang = json_is_object(res) ? json_object_get(res, "language") : NULL;
	if (json_is_string(lang) &&
	    (rc = hark_transcript_set_str(&t->language, json_string_value(lang))))
		return rc;
	if (json_array_size(tr) > HARK_TRANSCRIPT_MAX_SEGMENTS) {
		hark_errbuf_set(err, errlen, "transcription: too many");
		return HARK_ERR_LIMIT;
	}
	for (i = 0; i < json_array_size(tr); i++) {
		json_t *item = json_array_get(tr, i), *off;
		double from = 0, to = 0;
		const char *text;

		if (!json_is_object(item)) {
			hark_errbuf_set(err, errlen, "transcription[%zu]: not an object", i);
			return HARK_ERR_FORMAT;
		}
		off = json_object_get(item, "offsets");
		if (!json_is_object(off)) {
			hark_errbuf_set(err, errlen, "transcription[%zu].offsets: missing", i);
			return HARK_ERR_FORMAT;
		}
		if ((rc = get_num(off, "from", &from, 1, "transcription.offsets", i, err, errlen)) ||
		    (rc = get_num(off, "to", &to, 1, "transcription.offsets", i, err, errlen)) ||
		    (rc = get_str(item, "text", &text, 1, "transcription", i, err, errlen)))
			return rc;
		/* whisper.cpp can emit negative offsets: clamp, as the builder does. */
		toks = json_object_get(item, "tokens");
		n = json_is_array(toks) ? json_array_size(toks) : 0;
		if (n > HARK_TRANSCRIPT_MAX_TOKENS) {
			hark_errbuf_set(err, errlen, "transcription[%zu].tokens: too many", i);
			return HARK_ERR_LIMIT;
		}
		if (n && !(ids = malloc(n * sizeof(*ids))))
			return HARK_ERR_NOMEM;
		for (k = 0, m = 0; k < n; k++) {
			json_t *id = json_object_get(json_array_get(toks, k), "id");

			if (json_is_integer(id) && json_integer_value(id) >= 0 &&
			    json_integer_value(id) <= INT32_MAX)
				ids[m++] = (int32_t)json_integer_value(id);
		}
		rc = hark_transcript_add_segment(t, from / 1000.0, to / 1000.0, text, ids, m, 0, 0, 0,
						 0);
		free(ids);
		ids = NULL;
		if (rc)
			return rc;
	}
	return HARK_OK;
}

/* Segment a word belongs to: words are assigned in order; the boundary
 * between segment k and k+1 is the middle of the gap (or overlap) between
 * them, compared with the word's midpoint. */
static int read_words(struct hark_transcript *t, json_t *words, char *err, size_t errlen)
{
	size_t n = json_array_size(words), i, k = 0, nseg = t->n_segments;
	struct hark_word *tmp;
	size_t *seg_of;
	int rc = HARK_OK;

	if (!n)
		return HARK_OK;
	if (!nseg) {
		/* Words without segments: make one segment spanning them. */
		if ((rc = hark_transcript_add_segment(t, 0, 0, t->text ? t->text : "", NULL, 0, 0,
						      0, 0, 0)))
			return rc;
		nseg = 1;
	}
	if (n > HARK_TRANSCRIPT_MAX_WORDS) {
		hark_errbuf_set(err, errlen, "words: too many");
		return HARK_ERR_LIMIT;
	}
	tmp = calloc(n, sizeof(*tmp));
	seg_of = calloc(n, sizeof(*seg_of));
	if (!tmp || !seg_of) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		json_t *w = json_array_get(words, i);
		double start = 0, end = 0, prob = 0, mid;
		const char *word;

		if (!json_is_object(w)) {
			hark_errbuf_set(err, errlen, "words[%zu]: not an object", i);
			rc = HARK_ERR_FORMAT;
			goto out;
		}
		if ((rc = get_str(w, "word", &word, 1, "words", i, err, errlen)) ||
		    (rc = get_num(w, "start", &start, 1, "words", i, err, errlen)) ||
		    (rc = get_num(w, "end", &end, 1, "words", i, err, errlen)) ||
		    (rc = get_num(w, "probability", &prob, 0, "words", i, err, errlen)) ||
		    (rc = check_times(start, end, "words", i, err, errlen)))
			goto out;
		tmp[i].word = (char *)word; /* borrowed from the JSON tree */
		tmp[i].start = start;
		tmp[i].end = end;
		tmp[i].probability = (float)prob;
		mid = (start + end) / 2;
		while (k + 1 < nseg &&
		       mid >= (t->segments[k].end + t->segments[k + 1].start) / 2)
			k++;
		seg_of[i] = k;
	}
	/* Words must be appended segment by segment: rebuild so that each
	 * segment's words follow it. Segments are already in place, so attach
	 * by hand while keeping the builder's invariants. */
	for (i = 0; i < n; i++) {
		struct hark_transcript view;
		size_t s = seg_of[i];

		/* A segment's words must be contiguous and in segment order;
		 * seg_of is non-decreasing, so set first_word on first use. */
		if (t->segments[s].n_words == 0)
			t->segments[s].first_word = t->n_words;
		view = *t;
		view.n_segments = s + 1; /* add_word attaches to the last segment */
		rc = hark_transcript_add_word(&view, tmp[i].word, tmp[i].start, tmp[i].end,
					      tmp[i].probability);
		t->words = view.words;
		t->n_words = view.n_words;
		if (rc) {
			hark_errbuf_set(err, errlen, "words[%zu]: %s", i, hark_strerror(rc));
			goto out;
		}
	}
	/* A segment made up for bare words spans them. */
	if (nseg == 1 && t->n_segments == 1 && t->segments[0].end < t->words[t->n_words - 1].end)
		t->segments[0].end = t->words[t->n_words - 1].end;
	/* Segments without words point at the word count at their position. */
	for (k = 0, i = 0; k < t->n_segments; k++) {
		if (t->segments[k].n_words)
			i = t->segments[k].first_word + t->segments[k].n_words;
		else
			t->segments[k].first_word = i;
	}
out:
	free(seg_of);
	free(tmp);
	return rc;
}

static int read_root(json_t *root, struct hark_transcript *t, char *err, size_t errlen)
{
	json_t *segs, *words, *eng, *j;
	const char *s;
	double d = 0;
	size_t i;
	int rc;

	if (!json_is_object(root)) {
		hark_errbuf_set(err, errlen, "top level: not an object");
		return HARK_ERR_FORMAT;
	}
	j = json_object_get(root, "text");
	if (j && !json_is_null(j) && !json_is_string(j)) {
		hark_errbuf_set(err, errlen, "text: not a string");
		return HARK_ERR_FORMAT;
	}
	if (json_is_string(j) && (rc = hark_transcript_set_str(&t->text, json_string_value(j))))
		return rc;
	j = json_object_get(root, "language");
	if (j && !json_is_null(j) && !json_is_string(j)) {
		hark_errbuf_set(err, errlen, "language: not a string");
		return HARK_ERR_FORMAT;
	}
	if (json_is_string(j) &&
	    (rc = hark_transcript_set_str(&t->language, json_string_value(j))))
		return rc;
	j = json_object_get(root, "source");
	if (json_is_string(j) && (rc = hark_transcript_set_str(&t->source, json_string_value(j))))
		return rc;
	if ((rc = get_num(root, "duration", &d, 0, "top", 0, err, errlen)))
		return rc;
	t->duration = d < 0 ? 0 : d;
	d = 0;
	if ((rc = get_num(root, "offset", &d, 0, "top", 0, err, errlen)))
		return rc;
	t->offset = d < 0 ? 0 : d;

	segs = json_object_get(root, "segments");
	if (segs && !json_is_null(segs)) {
		if (!json_is_array(segs)) {
			hark_errbuf_set(err, errlen, "segments: not an array");
			return HARK_ERR_FORMAT;
		}
		if (json_array_size(segs) > HARK_TRANSCRIPT_MAX_SEGMENTS) {
			hark_errbuf_set(err, errlen, "segments: too many");
			return HARK_ERR_LIMIT;
		}
		for (i = 0; i < json_array_size(segs); i++)
			if ((rc = read_segment(t, json_array_get(segs, i), i, err, errlen)))
				return rc;
	}
	j = json_object_get(root, "transcription");
	if (!segs && json_is_array(j) && (rc = read_whisper_cpp(t, root, j, err, errlen)))
		return rc;
	words = json_object_get(root, "words");
	if (words && !json_is_null(words) && !t->n_words) {
		if (!json_is_array(words)) {
			hark_errbuf_set(err, errlen, "words: not an array");
			return HARK_ERR_FORMAT;
		}
		if ((rc = read_words(t, words, err, errlen)))
			return rc;
	}
	eng = json_object_get(root, "engine");
	if (eng && !json_is_null(eng)) {
		if (!json_is_object(eng)) {
			hark_errbuf_set(err, errlen, "engine: not an object");
			return HARK_ERR_FORMAT;
		}
		if ((rc = get_str(eng, "name", &s, 0, "engine", 0, err, errlen)) ||
		    (rc = hark_transcript_set_str(&t->engine_name, s)) ||
		    (rc = get_str(eng, "model", &s, 0, "engine", 0, err, errlen)) ||
		    (rc = hark_transcript_set_str(&t->engine_model, s)) ||
		    (rc = get_str(eng, "version", &s, 0, "engine", 0, err, errlen)) ||
		    (rc = hark_transcript_set_str(&t->engine_version, s)))
			return rc;
	}
	if (!t->text && (rc = hark_transcript_finalize_text(t)))
		return rc;
	if (t->duration <= 0 && t->n_segments)
		t->duration = t->segments[t->n_segments - 1].end;
	return HARK_OK;
}

int hark_transcript_from_json(const char *buf, size_t len, struct hark_transcript **out,
			      char *err, size_t errlen)
{
	struct hark_transcript *t = NULL;
	json_error_t jerr;
	json_t *root = NULL;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!out || (!buf && len))
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (len == 0) {
		hark_errbuf_set(err, errlen, "empty input");
		return HARK_ERR_EMPTY;
	}
	if (len > HARK_FORMAT_MAX_INPUT) {
		hark_errbuf_set(err, errlen, "input larger than %zu bytes", HARK_FORMAT_MAX_INPUT);
		return HARK_ERR_LIMIT;
	}
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		buf += 3;
		len -= 3;
	}
	root = json_loadb(buf, len, 0, &jerr);
	if (!root) {
		hark_errbuf_set(err, errlen, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		return HARK_ERR_FORMAT;
	}
	if ((rc = hark_transcript_new(&t)))
		goto out;
	if ((rc = read_root(root, t, err, errlen)))
		goto out;
	*out = t;
	t = NULL;
out:
	if (rc && err && errlen && !err[0])
		hark_errbuf_set(err, errlen, "%s", hark_strerror(rc));
	hark_transcript_free(t);
	json_decref(root);
	return rc;
}

int hark_transcript_parse(const char *buf, size_t len, struct hark_transcript **out, char *err,
			  size_t errlen)
{
	size_t i = 0;

	if (!out || (!buf && len))
		return HARK_ERR_INVALID_ARG;
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	if (i < len && buf[i] == '{')
		return hark_transcript_from_json(buf, len, out, err, errlen);
	return hark_subtitle_parse(buf, len, out, err, errlen);
}

int hark_transcript_load(const char *path, struct hark_transcript **out, char *err,
			 size_t errlen)
{
	struct stat st;
	FILE *f = NULL;
	char *buf = NULL;
	size_t n = 0;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!path || !out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	f = fopen(path, "rb");
	if (!f) {
		rc = errno == ENOENT ? HARK_ERR_NOT_FOUND :
		     errno == EACCES ? HARK_ERR_PERMISSION :
		     errno == EISDIR ? HARK_ERR_IS_DIR : HARK_ERR_IO;
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		hark_errbuf_set(err, errlen, "%s: is a directory", path);
		rc = HARK_ERR_IS_DIR;
		goto out;
	}
	{
		size_t cap = S_ISREG(st.st_mode) && (uint64_t)st.st_size < HARK_FORMAT_MAX_INPUT
				     ? (size_t)st.st_size + 1 : (size_t)1 << 16;

		for (;;) {
			size_t got;

			if (n == cap) {
				char *nb;

				if (cap > HARK_FORMAT_MAX_INPUT) {
					hark_errbuf_set(err, errlen, "%s: larger than %zu bytes", path,
						HARK_FORMAT_MAX_INPUT);
					rc = HARK_ERR_LIMIT;
					goto out;
				}
				cap = cap * 2 > HARK_FORMAT_MAX_INPUT + 1 ? HARK_FORMAT_MAX_INPUT + 1
									  : cap * 2;
				nb = realloc(buf, cap);
				if (!nb) {
					rc = HARK_ERR_NOMEM;
					goto out;
				}
				buf = nb;
			} else if (!buf && !(buf = malloc(cap))) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			got = fread(buf + n, 1, cap - n, f);
			n += got;
			if (got == 0 || n < cap) {
				if (ferror(f)) {
					hark_errbuf_set(err, errlen, "%s: read error", path);
					rc = HARK_ERR_IO;
					goto out;
				}
				if (feof(f))
					break;
			}
		}
		if (n > HARK_FORMAT_MAX_INPUT) {
			hark_errbuf_set(err, errlen, "%s: larger than %zu bytes", path, HARK_FORMAT_MAX_INPUT);
			rc = HARK_ERR_LIMIT;
			goto out;
		}
	}
	rc = hark_transcript_parse(buf, n, out, err, errlen);
	if (rc && err && errlen) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s", err);
		hark_errbuf_set(err, errlen, "%s: %s", path, tmp);
	}
out:
	free(buf);
	fclose(f);
	return rc;
}
