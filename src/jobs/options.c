/*
 * Job options (src/jobs/options.h): strict parsing of the client's JSON
 * options object and of single multipart form fields, a canonical JSON text
 * (sorted keys, no spaces, fixed number formatting) that round-trips through
 * the parser, and the dedup key, a sha256 over the job type, the content hash
 * and only the options that change a job's result (engine, model, language,
 * prompt, temperature, translate, beam_size, word_timestamps; for analysis
 * jobs also the meeting name and date, chunking, batch size and offline; for
 * diagram and video jobs the date, offline and the diagram and video fields).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "hark/transcribe.h"
#include "jobs/options.h"
#include "util/errbuf.h"
#include "util/textnorm.h"

#define MAX_PROMPT 4096
#define MAX_WEBHOOK 2048
#define MAX_BATCH 50
#define MAX_TITLE 200         /* bytes; the diagram label cap */
#define MIN_NODES 4
#define MAX_NODES 60          /* HARK_DIAGRAM_MAX_NODES */
#define MIN_SIDE 64
#define MAX_WIDTH 3840
#define MAX_HEIGHT 2160
#define MAX_FPS 60
#define MIN_CHUNK_TOKENS 64
#define MAX_CHUNK_TOKENS 32000
#define ALL_FORMATS ((1u << HARK_FORMAT_TXT) | (1u << HARK_FORMAT_JSON) | \
		     (1u << HARK_FORMAT_SRT) | (1u << HARK_FORMAT_VTT))

/* Format names in canonical order (alphabetical, as emitted). */
static const struct {
	const char *name;
	enum hark_format fmt;
} format_names[] = {
	{"json", HARK_FORMAT_JSON},
	{"srt", HARK_FORMAT_SRT},
	{"txt", HARK_FORMAT_TXT},
	{"vtt", HARK_FORMAT_VTT},
};
#define N_FORMAT_NAMES (sizeof(format_names) / sizeof(format_names[0]))

struct hark_job_options hark_job_options_default(void)
{
	struct hark_job_options o;

	memset(&o, 0, sizeof(o));
	snprintf(o.engine, sizeof(o.engine), "auto");
	o.temperature = 0.0;
	o.translate = 0;
	o.beam_size = 0;
	o.word_timestamps = 1;
	o.formats = ALL_FORMATS;
	o.priority = HARK_PRIO_NORMAL;
	o.overlap_tokens = -1;
	o.captions = 1;
	return o;
}

int hark_job_options_has_video(const struct hark_job_options *o)
{
	return o && (o->width > 0 || o->height > 0 || o->fps > 0 || !o->captions);
}

int hark_job_options_has_visual(const struct hark_job_options *o)
{
	return o && (o->diagram_type[0] || o->dark || o->title[0] || o->max_nodes > 0 ||
		     hark_job_options_has_video(o));
}

int hark_job_options_has_analysis(const struct hark_job_options *o)
{
	return o && (o->date[0] || o->name[0] || o->batch > 0 || o->chunk_tokens > 0 ||
		     o->overlap_tokens >= 0 || o->offline || o->force);
}

void hark_job_options_clear(struct hark_job_options *o)
{
	if (!o)
		return;
	free(o->prompt);
	free(o->webhook);
	*o = hark_job_options_default();
}

/* Deep copy of src into dst (dst's previous contents are ignored). */
static int options_copy(struct hark_job_options *dst, const struct hark_job_options *src)
{
	*dst = *src;
	dst->prompt = NULL;
	dst->webhook = NULL;
	if (src->prompt && !(dst->prompt = strdup(src->prompt)))
		goto nomem;
	if (src->webhook && !(dst->webhook = strdup(src->webhook)))
		goto nomem;
	return HARK_OK;
nomem:
	free(dst->prompt);
	dst->prompt = NULL;
	return HARK_ERR_NOMEM;
}

/* ---- field validators (shared by the JSON and the form-field paths) ---- */

static int set_engine(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	if (!*v)
		v = "auto";
	if (strcmp(v, "auto") != 0 && strcmp(v, "pocketsphinx") != 0 && strcmp(v, "whisper") != 0) {
		hark_errbuf_set(err, errlen, "options.engine: unknown engine \"%.32s\" "
				"(expected auto, pocketsphinx or whisper)", v);
		return HARK_ERR_INVALID_ARG;
	}
	snprintf(o->engine, sizeof(o->engine), "%s", v);
	return HARK_OK;
}

static int set_model(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n >= sizeof(o->model)) {
		hark_errbuf_set(err, errlen, "options.model: longer than %zu characters",
				sizeof(o->model) - 1);
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!(isascii(c) && (isalnum(c) || c == '.' || c == '-' || c == '_'))) {
			hark_errbuf_set(err, errlen, "options.model: a model name may contain only "
					"letters, digits, '.', '-' and '_' (never a path)");
			return HARK_ERR_INVALID_ARG;
		}
	}
	if (strstr(v, "..") || v[0] == '.') {
		hark_errbuf_set(err, errlen, "options.model: a model name may not start with '.' "
				"or contain \"..\"");
		return HARK_ERR_INVALID_ARG;
	}
	memcpy(o->model, v, n + 1);
	return HARK_OK;
}

static int set_language(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n == 0 || strcmp(v, "auto") == 0) {
		snprintf(o->language, sizeof(o->language), "%s", v);
		return HARK_OK;
	}
	if (n < 2 || n > 3)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!isascii((unsigned char)v[i]) || !isalpha((unsigned char)v[i]))
			goto bad;
	for (size_t i = 0; i < n; i++)
		o->language[i] = (char)tolower((unsigned char)v[i]);
	o->language[n] = '\0';
	return HARK_OK;
bad:
	hark_errbuf_set(err, errlen, "options.language: expected an ISO 639-1 code or \"auto\", "
			"got \"%.16s\"", v);
	return HARK_ERR_INVALID_ARG;
}

static int set_prompt(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	char *p = NULL;

	if (v && strlen(v) > MAX_PROMPT) {
		hark_errbuf_set(err, errlen, "options.prompt: longer than %d bytes", MAX_PROMPT);
		return HARK_ERR_INVALID_ARG;
	}
	if (v && *v && !(p = strdup(v)))
		return HARK_ERR_NOMEM;
	free(o->prompt);
	o->prompt = p;
	return HARK_OK;
}

static int set_temperature(struct hark_job_options *o, double v, char *err, size_t errlen)
{
	if (!isfinite(v) || v < 0.0 || v > 1.0) {
		hark_errbuf_set(err, errlen, "options.temperature: must be a number from 0 to 1");
		return HARK_ERR_INVALID_ARG;
	}
	o->temperature = v;
	return HARK_OK;
}

static int set_beam_size(struct hark_job_options *o, long long v, char *err, size_t errlen)
{
	if (v < 0 || v > 16) {
		hark_errbuf_set(err, errlen, "options.beam_size: must be an integer from 0 to 16");
		return HARK_ERR_INVALID_ARG;
	}
	o->beam_size = (int)v;
	return HARK_OK;
}

static int format_bit(const char *name, unsigned *bit)
{
	for (size_t i = 0; i < N_FORMAT_NAMES; i++) {
		if (strcmp(name, format_names[i].name) == 0) {
			*bit = 1u << format_names[i].fmt;
			return HARK_OK;
		}
	}
	return HARK_ERR_INVALID_ARG;
}

static int bad_format(const char *name, char *err, size_t errlen)
{
	hark_errbuf_set(err, errlen, "options.formats: unknown format \"%.16s\" "
			"(expected json, txt, srt or vtt)", name);
	return HARK_ERR_INVALID_ARG;
}

/* Priority names, indexed by enum hark_job_priority (the same names as
 * hark_store_priority_name(); kept here so that options parsing does not
 * need the store linked in). */
static const char *const priority_names[HARK_PRIO_COUNT] = {
	[HARK_PRIO_REALTIME] = "realtime",
	[HARK_PRIO_HIGH] = "high",
	[HARK_PRIO_NORMAL] = "normal",
	[HARK_PRIO_BATCH] = "batch",
};

static int set_priority(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	for (int p = 0; p < HARK_PRIO_COUNT; p++) {
		if (strcmp(v, priority_names[p]) == 0) {
			o->priority = p;
			return HARK_OK;
		}
	}
	hark_errbuf_set(err, errlen, "options.priority: unknown priority \"%.32s\" "
			"(expected realtime, high, normal or batch)", v);
	return HARK_ERR_INVALID_ARG;
}

/* http:// or https:// followed by a host; no whitespace or control bytes. */
static int set_webhook(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	size_t n, skip;
	char *p;

	if (!v || !*v) {
		free(o->webhook);
		o->webhook = NULL;
		return HARK_OK;
	}
	n = strlen(v);
	if (n > MAX_WEBHOOK) {
		hark_errbuf_set(err, errlen, "options.webhook: longer than %d bytes", MAX_WEBHOOK);
		return HARK_ERR_INVALID_ARG;
	}
	if (strncasecmp(v, "http://", 7) == 0)
		skip = 7;
	else if (strncasecmp(v, "https://", 8) == 0)
		skip = 8;
	else {
		hark_errbuf_set(err, errlen, "options.webhook: must be an http:// or https:// URL");
		return HARK_ERR_INVALID_ARG;
	}
	if (!v[skip] || v[skip] == '/' || v[skip] == '?' || v[skip] == '#' || v[skip] == '@') {
		hark_errbuf_set(err, errlen, "options.webhook: URL has no host");
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= 0x20 || c == 0x7f || c >= 0x80) {
			hark_errbuf_set(err, errlen, "options.webhook: URL contains spaces, control "
					"or non-ASCII characters (percent-encode them)");
			return HARK_ERR_INVALID_ARG;
		}
	}
	if (!(p = strdup(v)))
		return HARK_ERR_NOMEM;
	free(o->webhook);
	o->webhook = p;
	return HARK_OK;
}

/* ---- meeting-analysis fields ---- */

static int set_date(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, m, d;

	if (!*v) {
		o->date[0] = '\0';
		return HARK_OK;
	}
	if (strlen(v) != 10 || v[4] != '-' || v[7] != '-')
		goto bad;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !(v[i] >= '0' && v[i] <= '9'))
			goto bad;
	y = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
	m = (v[5] - '0') * 10 + (v[6] - '0');
	d = (v[8] - '0') * 10 + (v[9] - '0');
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		goto bad;
	if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		goto bad;
	memcpy(o->date, v, 11);
	return HARK_OK;
bad:
	hark_errbuf_set(err, errlen, "options.date: expected a calendar date YYYY-MM-DD, got "
			"\"%.16s\"", v);
	return HARK_ERR_INVALID_ARG;
}

/* Printable UTF-8 (no control characters), no path separators, no leading
 * '.', at most sizeof(o->name) - 1 bytes, not only spaces. */
static int set_name(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);
	int visible = 0;

	if (n == 0) {
		o->name[0] = '\0';
		return HARK_OK;
	}
	if (n >= sizeof(o->name)) {
		hark_errbuf_set(err, errlen, "options.name: longer than %zu bytes",
				sizeof(o->name) - 1);
		return HARK_ERR_INVALID_ARG;
	}
	if (!hark_textnorm_utf8_valid(v, n)) {
		hark_errbuf_set(err, errlen, "options.name: not valid UTF-8");
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') {
			hark_errbuf_set(err, errlen, "options.name: control characters, '/' and '\\' "
					"are not allowed");
			return HARK_ERR_INVALID_ARG;
		}
		if (c != ' ')
			visible = 1;
	}
	if (v[0] == '.' || !visible) {
		hark_errbuf_set(err, errlen, "options.name: may not start with '.' or be blank");
		return HARK_ERR_INVALID_ARG;
	}
	memcpy(o->name, v, n + 1);
	return HARK_OK;
}

static int set_int_range(int *dst, const char *name, long long v, long long lo, long long hi,
			 char *err, size_t errlen)
{
	if (v < lo || v > hi) {
		hark_errbuf_set(err, errlen, "options.%s: must be an integer from %lld to %lld", name,
				lo, hi);
		return HARK_ERR_INVALID_ARG;
	}
	*dst = (int)v;
	return HARK_OK;
}

/* ---- diagram and video fields ---- */

/* The diagram types (the names of render/diagram.h, kept here so that
 * options parsing does not need the renderer linked in). */
static const char *const diagram_types[] = {"flowchart", "timeline", "mindmap", "hierarchy",
					    "sequence"};

static int set_diagram_type(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	if (!*v || strcmp(v, "auto") == 0) {
		o->diagram_type[0] = '\0';
		return HARK_OK;
	}
	for (size_t i = 0; i < sizeof(diagram_types) / sizeof(diagram_types[0]); i++) {
		if (strcmp(v, diagram_types[i]) == 0) {
			snprintf(o->diagram_type, sizeof(o->diagram_type), "%s", v);
			return HARK_OK;
		}
	}
	hark_errbuf_set(err, errlen, "options.diagram_type: unknown diagram type \"%.32s\" "
			"(expected auto, flowchart, timeline, mindmap, hierarchy or sequence)", v);
	return HARK_ERR_INVALID_ARG;
}

/* Printable UTF-8 without control characters, at most MAX_TITLE bytes. */
static int set_title(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n > MAX_TITLE) {
		hark_errbuf_set(err, errlen, "options.title: longer than %d bytes", MAX_TITLE);
		return HARK_ERR_INVALID_ARG;
	}
	if (!hark_textnorm_utf8_valid(v, n)) {
		hark_errbuf_set(err, errlen, "options.title: not valid UTF-8");
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c < 0x20 || c == 0x7f) {
			hark_errbuf_set(err, errlen, "options.title: control characters are not "
					"allowed");
			return HARK_ERR_INVALID_ARG;
		}
	}
	memcpy(o->title, v, n + 1);
	return HARK_OK;
}

/* "WxH": even, MIN_SIDE..MAX_WIDTH x MIN_SIDE..MAX_HEIGHT. */
static int set_size(struct hark_job_options *o, const char *v, char *err, size_t errlen)
{
	long w = 0, h = 0;
	const char *p = v;
	int nd = 0;

	if (!*v) {
		o->width = o->height = 0;
		return HARK_OK;
	}
	while (*p >= '0' && *p <= '9' && nd < 6) {
		w = w * 10 + (*p++ - '0');
		nd++;
	}
	if (nd == 0 || (*p != 'x' && *p != 'X'))
		goto bad;
	p++;
	nd = 0;
	while (*p >= '0' && *p <= '9' && nd < 6) {
		h = h * 10 + (*p++ - '0');
		nd++;
	}
	if (nd == 0 || *p)
		goto bad;
	if (w < MIN_SIDE || w > MAX_WIDTH || h < MIN_SIDE || h > MAX_HEIGHT || (w & 1) || (h & 1))
		goto bad;
	o->width = (int)w;
	o->height = (int)h;
	return HARK_OK;
bad:
	hark_errbuf_set(err, errlen, "options.size: expected \"WxH\" with even numbers within "
			"%dx%d..%dx%d, got \"%.24s\"", MIN_SIDE, MIN_SIDE, MAX_WIDTH, MAX_HEIGHT, v);
	return HARK_ERR_INVALID_ARG;
}

/* Integer analysis fields by name: 1 and *rc set when name is one of them. */
static int set_analysis_int(struct hark_job_options *o, const char *name, long long v, int *rc,
			    char *err, size_t errlen)
{
	if (strcmp(name, "batch") == 0)
		*rc = set_int_range(&o->batch, name, v, 1, MAX_BATCH, err, errlen);
	else if (strcmp(name, "chunk_tokens") == 0)
		*rc = set_int_range(&o->chunk_tokens, name, v, MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS,
				    err, errlen);
	else if (strcmp(name, "overlap_tokens") == 0)
		*rc = set_int_range(&o->overlap_tokens, name, v, 0, MAX_CHUNK_TOKENS / 2, err,
				    errlen);
	else if (strcmp(name, "max_nodes") == 0)
		*rc = set_int_range(&o->max_nodes, name, v, MIN_NODES, MAX_NODES, err, errlen);
	else if (strcmp(name, "fps") == 0)
		*rc = set_int_range(&o->fps, name, v, 1, MAX_FPS, err, errlen);
	else {
		hark_errbuf_set(err, errlen, "options.%.64s: unknown option", name);
		*rc = HARK_ERR_INVALID_ARG;
		return 0;
	}
	return 1;
}

/* Cross-field checks after all fields are set. */
static int check_analysis(const struct hark_job_options *o, char *err, size_t errlen)
{
	int chunk = o->chunk_tokens > 0 ? o->chunk_tokens : 1200;

	if (o->overlap_tokens > chunk / 2) {
		hark_errbuf_set(err, errlen, "options.overlap_tokens: must be at most half of "
				"chunk_tokens (%d)", chunk / 2);
		return HARK_ERR_INVALID_ARG;
	}
	return HARK_OK;
}

/* ---- JSON ----------------------------------------------------------------- */

static int want_string(json_t *v, const char *name, int allow_null, const char **out,
		       char *err, size_t errlen)
{
	if (allow_null && json_is_null(v)) {
		*out = NULL;
		return HARK_OK;
	}
	if (!json_is_string(v)) {
		hark_errbuf_set(err, errlen, "options.%s: expected a string", name);
		return HARK_ERR_INVALID_ARG;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		hark_errbuf_set(err, errlen, "options.%s: contains a NUL character", name);
		return HARK_ERR_INVALID_ARG;
	}
	*out = json_string_value(v);
	return HARK_OK;
}

static int want_bool(json_t *v, const char *name, int *out, char *err, size_t errlen)
{
	if (!json_is_boolean(v)) {
		hark_errbuf_set(err, errlen, "options.%s: expected true or false", name);
		return HARK_ERR_INVALID_ARG;
	}
	*out = json_is_true(v) ? 1 : 0;
	return HARK_OK;
}

static int apply_json_field(struct hark_job_options *o, const char *name, json_t *v,
			    char *err, size_t errlen)
{
	const char *s;
	int rc;

	if (strcmp(name, "engine") == 0) {
		if ((rc = want_string(v, name, 0, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_engine(o, s, err, errlen);
	}
	if (strcmp(name, "model") == 0) {
		if ((rc = want_string(v, name, 0, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_model(o, s, err, errlen);
	}
	if (strcmp(name, "language") == 0) {
		if ((rc = want_string(v, name, 0, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_language(o, s, err, errlen);
	}
	if (strcmp(name, "prompt") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_prompt(o, s, err, errlen);
	}
	if (strcmp(name, "temperature") == 0) {
		if (!json_is_number(v)) {
			hark_errbuf_set(err, errlen, "options.temperature: expected a number");
			return HARK_ERR_INVALID_ARG;
		}
		return set_temperature(o, json_number_value(v), err, errlen);
	}
	if (strcmp(name, "translate") == 0)
		return want_bool(v, name, &o->translate, err, errlen);
	if (strcmp(name, "word_timestamps") == 0)
		return want_bool(v, name, &o->word_timestamps, err, errlen);
	if (strcmp(name, "beam_size") == 0) {
		if (!json_is_integer(v)) {
			hark_errbuf_set(err, errlen, "options.beam_size: expected an integer");
			return HARK_ERR_INVALID_ARG;
		}
		return set_beam_size(o, json_integer_value(v), err, errlen);
	}
	if (strcmp(name, "formats") == 0) {
		unsigned mask = 0, bit;
		size_t i;
		json_t *e;

		if (!json_is_array(v) || json_array_size(v) == 0) {
			hark_errbuf_set(err, errlen, "options.formats: expected a non-empty array "
					"of \"json\", \"txt\", \"srt\", \"vtt\"");
			return HARK_ERR_INVALID_ARG;
		}
		json_array_foreach(v, i, e) {
			if (!json_is_string(e)) {
				hark_errbuf_set(err, errlen, "options.formats[%zu]: expected a string", i);
				return HARK_ERR_INVALID_ARG;
			}
			if (format_bit(json_string_value(e), &bit) != HARK_OK)
				return bad_format(json_string_value(e), err, errlen);
			mask |= bit;
		}
		o->formats = mask;
		return HARK_OK;
	}
	if (strcmp(name, "priority") == 0) {
		if ((rc = want_string(v, name, 0, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_priority(o, s, err, errlen);
	}
	if (strcmp(name, "webhook") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_webhook(o, s, err, errlen);
	}
	if (strcmp(name, "date") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_date(o, s ? s : "", err, errlen);
	}
	if (strcmp(name, "name") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_name(o, s ? s : "", err, errlen);
	}
	if (strcmp(name, "offline") == 0)
		return want_bool(v, name, &o->offline, err, errlen);
	if (strcmp(name, "force") == 0)
		return want_bool(v, name, &o->force, err, errlen);
	if (strcmp(name, "diagram_type") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_diagram_type(o, s ? s : "", err, errlen);
	}
	if (strcmp(name, "title") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_title(o, s ? s : "", err, errlen);
	}
	if (strcmp(name, "size") == 0) {
		if ((rc = want_string(v, name, 1, &s, err, errlen)) != HARK_OK)
			return rc;
		return set_size(o, s ? s : "", err, errlen);
	}
	if (strcmp(name, "dark") == 0)
		return want_bool(v, name, &o->dark, err, errlen);
	if (strcmp(name, "captions") == 0)
		return want_bool(v, name, &o->captions, err, errlen);
	if (strcmp(name, "batch") == 0 || strcmp(name, "chunk_tokens") == 0 ||
	    strcmp(name, "overlap_tokens") == 0 || strcmp(name, "max_nodes") == 0 ||
	    strcmp(name, "fps") == 0) {
		if (!json_is_integer(v)) {
			hark_errbuf_set(err, errlen, "options.%s: expected an integer", name);
			return HARK_ERR_INVALID_ARG;
		}
		set_analysis_int(o, name, json_integer_value(v), &rc, err, errlen);
		return rc;
	}
	hark_errbuf_set(err, errlen, "options.%.64s: unknown option", name);
	return HARK_ERR_INVALID_ARG;
}

static int all_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)s[i]))
			return 0;
	return 1;
}

int hark_job_options_parse(const char *json, size_t len, struct hark_job_options *out,
			   char *err, size_t errlen)
{
	struct hark_job_options tmp;
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *name;
	int rc;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	if (!json || len == 0 || all_blank(json, len))
		return HARK_OK;
	rc = options_copy(&tmp, out);
	if (rc != HARK_OK)
		return rc;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		hark_errbuf_set(err, errlen, "options: invalid JSON at line %d column %d: %s",
				jerr.line, jerr.column, jerr.text);
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	if (!json_is_object(root)) {
		hark_errbuf_set(err, errlen, "options: expected a JSON object");
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	json_object_foreach(root, name, v) {
		rc = apply_json_field(&tmp, name, v, err, errlen);
		if (rc != HARK_OK)
			goto out;
	}
	rc = check_analysis(&tmp, err, errlen);
	if (rc != HARK_OK)
		goto out;
	hark_job_options_clear(out);
	*out = tmp;
	memset(&tmp, 0, sizeof(tmp));
out:
	free(tmp.prompt);
	free(tmp.webhook);
	json_decref(root);
	return rc;
}

/* ---- form fields ------------------------------------------------------------ */

static int parse_bool_text(const char *v, int *out)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return HARK_OK;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return HARK_OK;
		}
	}
	return HARK_ERR_INVALID_ARG;
}

/* Comma-separated list ("json,srt", spaces allowed), or a JSON array text. */
static int parse_formats_text(const char *v, unsigned *mask, char *err, size_t errlen)
{
	const char *p = v;
	unsigned m = 0, bit;

	while (isspace((unsigned char)*p))
		p++;
	if (*p == '[') {
		struct hark_job_options o = hark_job_options_default();
		json_t *arr = json_loads(p, 0, NULL);
		int rc;

		if (!arr) {
			hark_errbuf_set(err, errlen, "options.formats: invalid JSON array");
			return HARK_ERR_INVALID_ARG;
		}
		rc = apply_json_field(&o, "formats", arr, err, errlen);
		json_decref(arr);
		if (rc == HARK_OK)
			*mask = o.formats;
		return rc;
	}
	for (;;) {
		char name[16];
		size_t n = 0;

		while (isspace((unsigned char)*p))
			p++;
		while (*p && *p != ',' && !isspace((unsigned char)*p)) {
			if (n + 1 >= sizeof(name))
				return bad_format(v, err, errlen);
			name[n++] = *p++;
		}
		name[n] = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (n == 0 || format_bit(name, &bit) != HARK_OK)
			return bad_format(n ? name : v, err, errlen);
		m |= bit;
		if (*p == '\0')
			break;
		if (*p != ',')
			return bad_format(v, err, errlen);
		p++;
	}
	*mask = m;
	return HARK_OK;
}

int hark_job_options_set(struct hark_job_options *o, const char *name, const char *value,
			 char *err, size_t errlen)
{
	char *end;

	if (!o || !name || !value)
		return HARK_ERR_INVALID_ARG;
	if (strcmp(name, "engine") == 0)
		return set_engine(o, value, err, errlen);
	if (strcmp(name, "model") == 0)
		return set_model(o, value, err, errlen);
	if (strcmp(name, "language") == 0)
		return set_language(o, value, err, errlen);
	if (strcmp(name, "prompt") == 0)
		return set_prompt(o, value, err, errlen);
	if (strcmp(name, "temperature") == 0) {
		double d;

		errno = 0;
		d = strtod(value, &end);
		if (end == value || *end || errno) {
			hark_errbuf_set(err, errlen, "options.temperature: expected a number");
			return HARK_ERR_INVALID_ARG;
		}
		return set_temperature(o, d, err, errlen);
	}
	if (strcmp(name, "beam_size") == 0) {
		long long n;

		errno = 0;
		n = strtoll(value, &end, 10);
		if (end == value || *end || errno) {
			hark_errbuf_set(err, errlen, "options.beam_size: expected an integer");
			return HARK_ERR_INVALID_ARG;
		}
		return set_beam_size(o, n, err, errlen);
	}
	if (strcmp(name, "translate") == 0 || strcmp(name, "word_timestamps") == 0) {
		int b;

		if (parse_bool_text(value, &b) != HARK_OK) {
			hark_errbuf_set(err, errlen, "options.%s: expected true or false", name);
			return HARK_ERR_INVALID_ARG;
		}
		if (name[0] == 't')
			o->translate = b;
		else
			o->word_timestamps = b;
		return HARK_OK;
	}
	if (strcmp(name, "formats") == 0)
		return parse_formats_text(value, &o->formats, err, errlen);
	if (strcmp(name, "priority") == 0)
		return set_priority(o, value, err, errlen);
	if (strcmp(name, "webhook") == 0)
		return set_webhook(o, value, err, errlen);
	if (strcmp(name, "date") == 0)
		return set_date(o, value, err, errlen);
	if (strcmp(name, "name") == 0)
		return set_name(o, value, err, errlen);
	if (strcmp(name, "offline") == 0 || strcmp(name, "force") == 0 ||
	    strcmp(name, "dark") == 0 || strcmp(name, "captions") == 0) {
		int b;

		if (parse_bool_text(value, &b) != HARK_OK) {
			hark_errbuf_set(err, errlen, "options.%s: expected true or false", name);
			return HARK_ERR_INVALID_ARG;
		}
		if (strcmp(name, "offline") == 0)
			o->offline = b;
		else if (strcmp(name, "force") == 0)
			o->force = b;
		else if (strcmp(name, "dark") == 0)
			o->dark = b;
		else
			o->captions = b;
		return HARK_OK;
	}
	if (strcmp(name, "diagram_type") == 0)
		return set_diagram_type(o, value, err, errlen);
	if (strcmp(name, "title") == 0)
		return set_title(o, value, err, errlen);
	if (strcmp(name, "size") == 0)
		return set_size(o, value, err, errlen);
	if (strcmp(name, "batch") == 0 || strcmp(name, "chunk_tokens") == 0 ||
	    strcmp(name, "overlap_tokens") == 0 || strcmp(name, "max_nodes") == 0 ||
	    strcmp(name, "fps") == 0) {
		long long n;
		int rc = HARK_OK;

		errno = 0;
		n = strtoll(value, &end, 10);
		if (end == value || *end || errno) {
			hark_errbuf_set(err, errlen, "options.%s: expected an integer", name);
			return HARK_ERR_INVALID_ARG;
		}
		set_analysis_int(o, name, n, &rc, err, errlen);
		if (rc == HARK_OK)
			rc = check_analysis(o, err, errlen);
		return rc;
	}
	hark_errbuf_set(err, errlen, "options.%.64s: unknown option", name);
	return HARK_ERR_INVALID_ARG;
}

/* ---- canonical text and dedup key ------------------------------------------- */

/* Adds the result-affecting fields to obj. Returns 0 or -1. */
static int add_result_fields(json_t *obj, const struct hark_job_options *o)
{
	int bad = 0;

	bad |= json_object_set_new(obj, "beam_size", json_integer(o->beam_size));
	bad |= json_object_set_new(obj, "engine", json_string(o->engine[0] ? o->engine : "auto"));
	bad |= json_object_set_new(obj, "language", json_string(o->language));
	bad |= json_object_set_new(obj, "model", json_string(o->model));
	bad |= json_object_set_new(obj, "prompt", o->prompt && *o->prompt ?
				   json_string(o->prompt) : json_null());
	bad |= json_object_set_new(obj, "temperature", json_real(o->temperature));
	bad |= json_object_set_new(obj, "translate", json_boolean(o->translate));
	bad |= json_object_set_new(obj, "word_timestamps", json_boolean(o->word_timestamps));
	return bad ? -1 : 0;
}

/* Adds the analysis fields that are set (all but force when for_dedup). */
static int add_analysis_fields(json_t *obj, const struct hark_job_options *o, int for_dedup)
{
	int bad = 0;

	if (o->date[0])
		bad |= json_object_set_new(obj, "date", json_string(o->date));
	if (o->name[0])
		bad |= json_object_set_new(obj, "name", json_string(o->name));
	if (o->batch > 0)
		bad |= json_object_set_new(obj, "batch", json_integer(o->batch));
	if (o->chunk_tokens > 0)
		bad |= json_object_set_new(obj, "chunk_tokens", json_integer(o->chunk_tokens));
	if (o->overlap_tokens >= 0)
		bad |= json_object_set_new(obj, "overlap_tokens", json_integer(o->overlap_tokens));
	if (o->offline)
		bad |= json_object_set_new(obj, "offline", json_true());
	if (o->force && !for_dedup)
		bad |= json_object_set_new(obj, "force", json_true());
	return bad ? -1 : 0;
}

/* Adds the diagram and video fields that are set (video: the video-only
 * fields too). */
static int add_visual_fields(json_t *obj, const struct hark_job_options *o, int video)
{
	int bad = 0;

	if (o->diagram_type[0])
		bad |= json_object_set_new(obj, "diagram_type", json_string(o->diagram_type));
	if (o->dark)
		bad |= json_object_set_new(obj, "dark", json_true());
	if (o->title[0])
		bad |= json_object_set_new(obj, "title", json_string(o->title));
	if (o->max_nodes > 0)
		bad |= json_object_set_new(obj, "max_nodes", json_integer(o->max_nodes));
	if (!video)
		return bad ? -1 : 0;
	if (o->width > 0 && o->height > 0) {
		char size[32];

		snprintf(size, sizeof(size), "%dx%d", o->width, o->height);
		bad |= json_object_set_new(obj, "size", json_string(size));
	}
	if (o->fps > 0)
		bad |= json_object_set_new(obj, "fps", json_integer(o->fps));
	if (!o->captions)
		bad |= json_object_set_new(obj, "captions", json_false());
	return bad ? -1 : 0;
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(10) | JSON_ENSURE_ASCII)

char *hark_job_options_canonical(const struct hark_job_options *o)
{
	json_t *obj = json_object(), *fmts = json_array();
	char *text = NULL;
	int bad = 0;

	if (!o || !obj || !fmts)
		goto out;
	bad |= add_result_fields(obj, o);
	for (size_t i = 0; i < N_FORMAT_NAMES; i++)
		if (o->formats & (1u << format_names[i].fmt))
			bad |= json_array_append_new(fmts, json_string(format_names[i].name));
	bad |= json_object_set(obj, "formats", fmts);
	bad |= json_object_set_new(obj, "priority",
				   json_string(o->priority >= 0 && o->priority < HARK_PRIO_COUNT ?
					       priority_names[o->priority] : "normal"));
	bad |= json_object_set_new(obj, "webhook", o->webhook && *o->webhook ?
				   json_string(o->webhook) : json_null());
	bad |= add_analysis_fields(obj, o, 0);
	bad |= add_visual_fields(obj, o, 1);
	if (!bad)
		text = json_dumps(obj, DUMP_FLAGS);
out:
	json_decref(fmts);
	json_decref(obj);
	return text;
}

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void hark_job_options_dedup_key(const struct hark_job_options *o, const char *type,
				const char *content_sha, char key[HARK_SHA_HEX_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	json_t *obj = json_object();
	char *text = NULL;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	int ok = 0;

	key[0] = '\0';
	if (!o || !obj || !c || add_result_fields(obj, o) != 0)
		goto out;
	if (type && (strcmp(type, "analyze") == 0 || strcmp(type, "run") == 0) &&
	    add_analysis_fields(obj, o, 1) != 0)
		goto out;
	if (type && (strcmp(type, "diagram") == 0 || strcmp(type, "video") == 0)) {
		/* the meeting date places relative dates; offline picks the method */
		if (o->date[0] && json_object_set_new(obj, "date", json_string(o->date)) != 0)
			goto out;
		if (o->offline && json_object_set_new(obj, "offline", json_true()) != 0)
			goto out;
		if (add_visual_fields(obj, o, strcmp(type, "video") == 0) != 0)
			goto out;
	}
	text = json_dumps(obj, DUMP_FLAGS);
	if (!text)
		goto out;
	/* Fields are NUL-separated so that no two different inputs concatenate
	 * to the same bytes; a version tag lets the scheme change later. */
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, "hark-dedup-v1", 14) != 1 ||
	    EVP_DigestUpdate(c, type ? type : "", strlen(type ? type : "") + 1) != 1 ||
	    EVP_DigestUpdate(c, content_sha ? content_sha : "",
			     strlen(content_sha ? content_sha : "") + 1) != 1 ||
	    EVP_DigestUpdate(c, text, strlen(text)) != 1 ||
	    EVP_DigestFinal_ex(c, md, &mdlen) != 1 || mdlen != 32)
		goto out;
	ok = 1;
out:
	if (ok)
		to_hex(md, 32, key);
	EVP_MD_CTX_free(c);
	free(text);
	json_decref(obj);
}
