/*
 * The meeting-analysis pipeline (see pipeline.h): input readers that turn
 * any supported transcript into speaker turns, the per-meeting offline pass,
 * the corpus-wide LLM map step over chunks not yet in the store (each
 * chunk's result stored as its batch settles), the per-meeting LLM reduce,
 * and the store/search indexing of each finished meeting in one transaction.
 * Meetings are independent: one that fails is reported and the others go on.
 */
#include "analyze/pipeline.h"

#include <ctype.h>
#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "analyze/dates.h"
#include "analyze/llm_minutes.h"
#include "analyze/meeting_text.h"
#include "analyze/minutes.h"
#include "analyze/search.h"
#include "format/format.h"
#include "hark/hark.h"
#include "hark/transcribe.h"
#include "store/store.h"
#include "util/errbuf.h"
#include "util/textnorm.h"

#define PIPELINE_VERSION "hark-analyze-1"
#define MAX_TURN_BYTES 4000       /* merged same-speaker segments start a new turn beyond this */
#define MAX_LABEL_BYTES 40
#define MAX_DOC_TEXT 8000         /* bytes of one search document */

static const char *const stage_names[HARK_PIPELINE_N_STAGES] = {
	"read", "offline", "extract", "reduce", "index", "graph",
};

const char *hark_pipeline_stage_name(int stage)
{
	return stage >= 0 && stage < HARK_PIPELINE_N_STAGES ? stage_names[stage] : "unknown";
}

struct hark_pipeline_params hark_pipeline_default_params(void)
{
	struct hark_pipeline_params p;

	memset(&p, 0, sizeof(p));
	p.chunk = hark_chunk_default_params();
	p.offline = hark_offline_default_params();
	p.entities = hark_entities_default_params();
	p.batch_chunks = 10;
	p.max_input_bytes = (size_t)64 << 20;
	return p;
}

void hark_pipeline_meeting_clear(struct hark_pipeline_meeting *m)
{
	if (!m)
		return;
	free(m->minutes_json);
	free(m->minutes_md);
	free(m->graph_json);
	m->minutes_json = m->minutes_md = m->graph_json = NULL;
}

/* ---- small helpers ------------------------------------------------------------------ */

static void to_hex(const unsigned char *md, size_t n, char *out)
{
	static const char hx[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[2 * n] = '\0';
}

/* sha256 over up to three parts (NULL parts skipped), separated by NUL bytes. */
static int sha_parts(const char *a, size_t alen, const char *b, const char *c, char hex[65])
{
	EVP_MD_CTX *x = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int ok = x && EVP_DigestInit_ex(x, EVP_sha256(), NULL);

	if (ok && a)
		ok = EVP_DigestUpdate(x, a, alen);
	if (ok && b)
		ok = EVP_DigestUpdate(x, "", 1) && EVP_DigestUpdate(x, b, strlen(b));
	if (ok && c)
		ok = EVP_DigestUpdate(x, "", 1) && EVP_DigestUpdate(x, c, strlen(c));
	if (ok)
		ok = EVP_DigestFinal_ex(x, md, &mdlen) && mdlen == 32;
	EVP_MD_CTX_free(x);
	if (!ok)
		return HARK_ERR_INTERNAL;
	to_hex(md, 32, hex);
	return HARK_OK;
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parses "YYYY-MM-DD" at s (exactly 10 bytes used) into d; 1 when valid. */
static int parse_iso_date(const char *s, struct hark_date *d)
{
	int y, m, dd;

	if (!s || strlen(s) < 10)
		return 0;
	for (int i = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return 0;
		} else if (!isdigit((unsigned char)s[i])) {
			return 0;
		}
	}
	y = atoi(s);
	m = (s[5] - '0') * 10 + (s[6] - '0');
	dd = (s[8] - '0') * 10 + (s[9] - '0');
	if (!hark_date_valid(y, m, dd))
		return 0;
	d->year = y;
	d->month = m;
	d->day = dd;
	return 1;
}

/* First valid YYYY-MM-DD inside s (e.g. a file name), or 0. */
static int find_date_in(const char *s, char out[11])
{
	struct hark_date d;

	for (const char *p = s; p && *p; p++) {
		if ((p == s || !isdigit((unsigned char)p[-1])) && parse_iso_date(p, &d) &&
		    !isdigit((unsigned char)p[10])) {
			hark_date_format(&d, out);
			return 1;
		}
	}
	return 0;
}

/* Meeting name from a path: the base name without the known extensions. */
static void name_from_path(const char *path, char *out, size_t cap)
{
	static const char *const exts[] = {".transcript.txt", ".json", ".txt", ".srt", ".vtt",
					   ".md", NULL};
	const char *b = strrchr(path, '/');
	size_t n;

	b = b ? b + 1 : path;
	n = strlen(b);
	for (int i = 0; exts[i]; i++) {
		size_t e = strlen(exts[i]);

		if (n > e && strcasecmp(b + n - e, exts[i]) == 0) {
			n -= e;
			break;
		}
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(out, b, n);
	out[n] = '\0';
}

/* Output-safe name: no '/', no leading '.', no control bytes; "" -> "meeting". */
static void sanitize_name(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
	while (*s == '.')
		*s = '_';
	if (!*s)
		strcpy(s, "meeting");
}

/* ---- input readers ----------------------------------------------------------------------- */

/* A turn under construction (owned strings). */
struct tmp_turn {
	char *speaker;
	char *text;
	double start_s, end_s;
};

struct tmp_turns {
	struct tmp_turn *v;
	size_t n, cap;
};

static void tmp_free(struct tmp_turns *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].speaker);
		free(t->v[i].text);
	}
	free(t->v);
	memset(t, 0, sizeof(*t));
}

static int tmp_push(struct tmp_turns *t, const char *speaker, size_t slen, const char *text,
		    size_t tlen, double start_s, double end_s)
{
	struct tmp_turn *e;

	if (t->n == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		void *nv;

		if (nc > 10000000)
			return HARK_ERR_LIMIT;
		nv = realloc(t->v, nc * sizeof(*t->v));
		if (!nv)
			return HARK_ERR_NOMEM;
		t->v = nv;
		t->cap = nc;
	}
	e = &t->v[t->n];
	e->speaker = speaker ? strndup(speaker, slen) : NULL;
	e->text = strndup(text ? text : "", text ? tlen : 0);
	e->start_s = start_s;
	e->end_s = end_s;
	if ((speaker && !e->speaker) || !e->text) {
		free(e->speaker);
		free(e->text);
		return HARK_ERR_NOMEM;
	}
	t->n++;
	return HARK_OK;
}

/* Length of a "Label: " prefix of s (label 1..40 bytes, at most 4 words,
 * starting with a letter, no sentence punctuation), or 0. *label_len gets
 * the label's length. */
static size_t label_prefix(const char *s, size_t *label_len)
{
	size_t i = 0, words = 1;

	if (!isalpha((unsigned char)s[0]) && (unsigned char)s[0] < 0x80)
		return 0;
	for (; s[i] && s[i] != ':' && i <= MAX_LABEL_BYTES; i++) {
		if (s[i] == '.' || s[i] == '?' || s[i] == '!' || s[i] == ',' || s[i] == '"' ||
		    s[i] == '\n')
			return 0;
		if (s[i] == ' ' && s[i + 1] != ' ')
			words++;
	}
	if (s[i] != ':' || i == 0 || i > MAX_LABEL_BYTES || words > 4 || s[i + 1] != ' ')
		return 0;
	while (i > 0 && s[i - 1] == ' ')
		i--;
	*label_len = i;
	{
		size_t j = i;

		while (s[j] != ':')
			j++;
		j++;
		while (s[j] == ' ')
			j++;
		return j;
	}
}

/* Turns from transcript segments: "Label: text" prefixes become speakers when
 * at least 80 % of the segments carry one; consecutive segments of the same
 * known speaker merge (up to MAX_TURN_BYTES). */
static int turns_from_transcript(const struct hark_transcript *t, struct tmp_turns *out)
{
	size_t labelled = 0, nonempty = 0;
	int use_labels;
	char *cur_spk = NULL;
	int rc = HARK_OK;

	for (size_t i = 0; i < t->n_segments; i++) {
		const char *s = t->segments[i].text ? t->segments[i].text : "";
		size_t ll;

		while (*s == ' ')
			s++;
		if (!*s)
			continue;
		nonempty++;
		if (label_prefix(s, &ll))
			labelled++;
	}
	use_labels = nonempty > 0 && labelled * 5 >= nonempty * 4;
	for (size_t i = 0; rc == HARK_OK && i < t->n_segments; i++) {
		const struct hark_segment *sg = &t->segments[i];
		const char *s = sg->text ? sg->text : "";
		size_t ll = 0, skip = 0;
		const char *spk = NULL;
		size_t slen = 0;

		while (*s == ' ')
			s++;
		if (!*s)
			continue;
		if (use_labels && (skip = label_prefix(s, &ll)) > 0) {
			spk = s;
			slen = ll;
			free(cur_spk);
			cur_spk = strndup(s, ll);
			if (!cur_spk) {
				rc = HARK_ERR_NOMEM;
				break;
			}
			s += skip;
		} else if (use_labels && cur_spk) {
			spk = cur_spk;
			slen = strlen(cur_spk);
		}
		if (spk && out->n > 0) {
			struct tmp_turn *last = &out->v[out->n - 1];
			size_t tl = strlen(last->text), nl = strlen(s);

			if (last->speaker && strlen(last->speaker) == slen &&
			    memcmp(last->speaker, spk, slen) == 0 && tl + nl + 1 <= MAX_TURN_BYTES) {
				char *nt = realloc(last->text, tl + nl + 2);

				if (!nt) {
					rc = HARK_ERR_NOMEM;
					break;
				}
				nt[tl] = ' ';
				memcpy(nt + tl + 1, s, nl + 1);
				last->text = nt;
				if (sg->end > last->end_s)
					last->end_s = sg->end;
				continue;
			}
		}
		rc = tmp_push(out, spk, slen, s, strlen(s), sg->start, sg->end);
	}
	free(cur_spk);
	return rc;
}

static int turns_from_meeting_text(const struct hark_meeting_text *mt, struct tmp_turns *out)
{
	int rc = HARK_OK;

	for (size_t i = 0; rc == HARK_OK && i < mt->n_turns; i++) {
		const struct hark_meeting_turn *tu = &mt->turns[i];

		rc = tmp_push(out, tu->speaker, tu->speaker ? strlen(tu->speaker) : 0, tu->text,
			      strlen(tu->text), tu->start_s, tu->end_s);
	}
	return rc;
}

/* Reads a whole file with a cap, mapping errno to hark errors. */
static int slurp(const char *path, size_t cap, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f;
	struct stat sb;
	char *buf = NULL;
	size_t n;

	if (stat(path, &sb) != 0) {
		int e = errno;

		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(e));
		return e == ENOENT || e == ENOTDIR ? HARK_ERR_NOT_FOUND
		       : e == EACCES		   ? HARK_ERR_PERMISSION
						   : HARK_ERR_IO;
	}
	if (S_ISDIR(sb.st_mode)) {
		hark_errbuf_set(err, errlen, "%s: is a directory", path);
		return HARK_ERR_IS_DIR;
	}
	if ((uint64_t)sb.st_size > cap) {
		hark_errbuf_set(err, errlen, "%s: %lld bytes is over the %zu-byte transcript limit",
				path, (long long)sb.st_size, cap);
		return HARK_ERR_LIMIT;
	}
	f = fopen(path, "rb");
	if (!f) {
		int e = errno;

		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(e));
		return e == EACCES ? HARK_ERR_PERMISSION : HARK_ERR_IO;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		fclose(f);
		return HARK_ERR_NOMEM;
	}
	n = fread(buf, 1, (size_t)sb.st_size, f);
	if (ferror(f)) {
		fclose(f);
		free(buf);
		hark_errbuf_set(err, errlen, "%s: read error", path);
		return HARK_ERR_IO;
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return HARK_OK;
}

/* Packs tmp turns into one heap blob: the turn array followed by the strings. */
static int pack_turns(const struct tmp_turns *t, struct hark_chunk_turn **turns, size_t *n,
		      void **owner)
{
	size_t bytes = t->n * sizeof(struct hark_chunk_turn);
	char *blob, *p;
	struct hark_chunk_turn *arr;

	for (size_t i = 0; i < t->n; i++)
		bytes += strlen(t->v[i].text) + 1 +
			 (t->v[i].speaker ? strlen(t->v[i].speaker) + 1 : 0);
	blob = malloc(bytes ? bytes : 1);
	if (!blob)
		return HARK_ERR_NOMEM;
	arr = (struct hark_chunk_turn *)(void *)blob;
	p = blob + t->n * sizeof(struct hark_chunk_turn);
	for (size_t i = 0; i < t->n; i++) {
		size_t l = strlen(t->v[i].text) + 1;

		memcpy(p, t->v[i].text, l);
		arr[i].text = p;
		p += l;
		if (t->v[i].speaker) {
			l = strlen(t->v[i].speaker) + 1;
			memcpy(p, t->v[i].speaker, l);
			arr[i].speaker = p;
			p += l;
		} else {
			arr[i].speaker = NULL;
		}
		arr[i].start_s = t->v[i].start_s;
		arr[i].end_s = t->v[i].end_s;
	}
	*turns = arr;
	*n = t->n;
	*owner = blob;
	return HARK_OK;
}

/* Detects the format of data[0..len) and fills *tt. */
static int read_data(const char *data, size_t len, const char *id, struct tmp_turns *tt,
		     char date_out[11], char *err, size_t errlen)
{
	const char *p = data, *end = data + len;
	struct hark_transcript *t = NULL;
	struct hark_meeting_text mt;
	int rc;

	memset(&mt, 0, sizeof(mt));
	if (len == 0) {
		hark_errbuf_set(err, errlen, "transcript is empty");
		return HARK_ERR_EMPTY;
	}
	if (memchr(data, '\0', len)) {
		hark_errbuf_set(err, errlen,
				"not a transcript: binary data (audio and video go to `hark run`)");
		return HARK_ERR_FORMAT;
	}
	if (!hark_textnorm_utf8_valid(data, len)) {
		hark_errbuf_set(err, errlen, "not a transcript: the text is not valid UTF-8");
		return HARK_ERR_FORMAT;
	}
	if (len >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
	    (unsigned char)p[2] == 0xBF)
		p += 3;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end) {
		hark_errbuf_set(err, errlen, "transcript is empty");
		return HARK_ERR_EMPTY;
	}
	if (*p == '{') {
		json_error_t je;
		json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);

		if (!root) {
			hark_errbuf_set(err, errlen, "invalid JSON at line %d column %d: %s", je.line,
					je.column, je.text);
			return HARK_ERR_FORMAT;
		}
		if (json_is_object(root)) {
			const char *ds = json_string_value(json_object_get(root, "date"));
			struct hark_date d;

			if (!ds)
				ds = json_string_value(json_object_get(root, "recorded_at"));
			if (ds && parse_iso_date(ds, &d))
				hark_date_format(&d, date_out);
		}
		if (json_is_object(root) && json_object_get(root, "meeting_transcripts")) {
			struct hark_meeting_text_params mp = hark_meeting_text_default_params();

			json_decref(root);
			mp.format = HARK_MEETING_TEXT_QMSUM;
			mp.load_summary = 0;
			rc = hark_meeting_text_parse(data, len, id, &mp, &mt, err, errlen);
			if (rc == HARK_OK)
				rc = turns_from_meeting_text(&mt, tt);
			hark_meeting_text_clear(&mt);
			return rc;
		}
		json_decref(root);
		rc = hark_transcript_from_json(data, len, &t, err, errlen);
	} else if ((size_t)(end - p) >= 6 && memcmp(p, "WEBVTT", 6) == 0) {
		rc = hark_subtitle_parse(data, len, &t, err, errlen);
	} else {
		/* SRT when a timing line appears among the first lines. */
		const char *scan_end = p + ((size_t)(end - p) < 4096 ? (size_t)(end - p) : 4096);
		const char *arrow = NULL;

		for (const char *q = p; q + 3 <= scan_end; q++)
			if (q[0] == '-' && q[1] == '-' && q[2] == '>') {
				arrow = q;
				break;
			}
		if (arrow) {
			rc = hark_subtitle_parse(data, len, &t, err, errlen);
		} else {
			struct hark_meeting_text_params mp = hark_meeting_text_default_params();

			mp.format = HARK_MEETING_TEXT_PLAIN;
			mp.load_summary = 0;
			rc = hark_meeting_text_parse(data, len, id, &mp, &mt, err, errlen);
			if (rc == HARK_OK)
				rc = turns_from_meeting_text(&mt, tt);
			hark_meeting_text_clear(&mt);
			return rc;
		}
	}
	if (rc == HARK_OK)
		rc = turns_from_transcript(t, tt);
	hark_transcript_free(t);
	return rc;
}

int hark_pipeline_read(const struct hark_pipeline_input *in, size_t max_bytes,
		       struct hark_chunk_turn **turns, size_t *n_turns, void **owner,
		       char date_out[11], char *err, size_t errlen)
{
	struct tmp_turns tt;
	char *buf = NULL, id[128] = "";
	size_t len = 0;
	int rc;

	memset(&tt, 0, sizeof(tt));
	if (!in || !turns || !n_turns || !owner || !date_out)
		return HARK_ERR_INVALID_ARG;
	*turns = NULL;
	*n_turns = 0;
	*owner = NULL;
	date_out[0] = '\0';
	if (max_bytes == 0)
		max_bytes = (size_t)64 << 20;
	if (in->name)
		snprintf(id, sizeof(id), "%s", in->name);
	else if (in->path)
		name_from_path(in->path, id, sizeof(id));
	if (in->transcript) {
		rc = turns_from_transcript(in->transcript, &tt);
	} else if (in->path) {
		rc = slurp(in->path, max_bytes, &buf, &len, err, errlen);
		if (rc == HARK_OK)
			rc = read_data(buf, len, id, &tt, date_out, err, errlen);
	} else if (in->data) {
		if (in->len > max_bytes) {
			hark_errbuf_set(err, errlen, "transcript of %zu bytes is over the %zu-byte limit",
					in->len, max_bytes);
			rc = HARK_ERR_LIMIT;
		} else {
			rc = read_data(in->data, in->len, id, &tt, date_out, err, errlen);
		}
	} else {
		rc = HARK_ERR_INVALID_ARG;
	}
	if (rc == HARK_OK && tt.n == 0) {
		hark_errbuf_set(err, errlen, "transcript has no speech turns");
		rc = HARK_ERR_EMPTY;
	}
	if (rc == HARK_OK && !date_out[0])
		find_date_in(id, date_out);
	if (rc == HARK_OK)
		rc = pack_turns(&tt, turns, n_turns, owner);
	free(buf);
	tmp_free(&tt);
	return rc;
}

/* ---- per-meeting state ------------------------------------------------------------------ */

struct mtg {
	struct hark_pipeline_meeting *out;
	struct hark_chunk_turn *turns;
	size_t n_turns;
	void *owner;
	char date[11];
	struct hark_date d;
	char content_sha[65];
	int active;                 /* read ok, needs analysis */
	struct hark_chunk_list chunks;
	struct hark_minutes offline;
	struct hark_minutes minutes;
	struct hark_graph graph;
	char **chunk_json;          /* per chunk (LLM path), borrowed from the result map */
};

static void mtg_clear(struct mtg *m)
{
	free(m->owner);
	hark_chunk_list_clear(&m->chunks);
	hark_minutes_clear(&m->offline);
	hark_minutes_clear(&m->minutes);
	hark_graph_clear(&m->graph);
	free(m->chunk_json);
	memset(m, 0, sizeof(*m));
}

/* Unique chunk results of the LLM map step, keyed by chunk sha (sorted array). */
struct chunk_res {
	char sha[65];
	const char *text;   /* borrowed chunk text */
	char *json;         /* result slice, NULL = missing/failed */
	int failed;
	int sent;
	size_t m_off, m_n;  /* its meetings: run_ctx.res_meet[m_off .. m_off + m_n) */
};

static int cmp_chunk_res(const void *a, const void *b)
{
	return strcmp(((const struct chunk_res *)a)->sha, ((const struct chunk_res *)b)->sha);
}

static struct chunk_res *find_res(struct chunk_res *v, size_t n, const char *sha)
{
	struct chunk_res key;

	memset(&key, 0, sizeof(key));
	snprintf(key.sha, sizeof(key.sha), "%s", sha);
	return bsearch(&key, v, n, sizeof(*v), cmp_chunk_res);
}

struct run_ctx {
	struct hark_store *st;
	const struct hark_pipeline_params *p;
	char pipeline_key[65];
	char params_sha[65];
	struct chunk_res *res;
	size_t n_res;
	struct chunk_res **pending;  /* the chunks sent, index -> entry */
	size_t n_pending;
	size_t batches_done, batches_total;
	int store_err;
	struct hark_pipeline_stats *stats;
	pthread_mutex_t *stats_mu;   /* held around stats updates while reduces run in parallel */
	struct reduce_pool *pool;    /* reduces started while extraction still runs */
	size_t *res_meet;            /* meeting indices per unique chunk (see chunk_res) */
};

static int canceled(const struct hark_pipeline_params *p)
{
	return p->cancel && p->cancel(p->user_data);
}

static void progress(const struct hark_pipeline_params *p, int stage, size_t done, size_t total)
{
	if (p->progress)
		p->progress(stage, done, total, p->user_data);
}

/* Parameters that change the analysis result, hashed into params_sha. */
static int compute_params_sha(const struct hark_pipeline_params *p, const char *pipeline_key,
			      char out[65])
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "%s|chunk:%zu/%zu/%zu/%d/%d|offline:%zu/%zu/%zu/%.3f/%zu|ent:%zu/%zu/%zu/%zu|"
			 "llm:%s",
			 PIPELINE_VERSION, p->chunk.max_tokens, p->chunk.overlap_tokens,
			 p->chunk.min_tokens, p->chunk.drop_fillers, p->chunk.strip_markers,
			 p->offline.summary_words, p->offline.max_topics, p->offline.min_topic_turns,
			 p->offline.min_confidence, p->offline.max_items, p->entities.min_mentions,
			 p->entities.max_entities, p->entities.window_sentences,
			 p->entities.min_cooccur, p->llm ? pipeline_key : "none");

	if (n < 0 || (size_t)n >= sizeof(buf))
		return HARK_ERR_INTERNAL;
	return sha_parts(buf, (size_t)n, NULL, NULL, out);
}

/* ---- LLM map step ---------------------------------------------------------------------------- */

static void pool_chunk_settled(struct run_ctx *rc, const struct chunk_res *r);
static int pool_start(struct run_ctx *rc, struct mtg *m, size_t n);

static void on_chunk(size_t index, const char *json, int err, const char *msg, void *ud)
{
	struct run_ctx *rc = ud;
	struct chunk_res *r;

	(void)msg;
	if (index >= rc->n_pending)
		return;
	r = rc->pending[index];
	if (err == HARK_OK && json) {
		char *dup = strdup(json);

		if (dup) {
			free(r->json);
			r->json = dup;
			if (hark_store_chunk_result_put(rc->st, r->sha, rc->pipeline_key, "llm", json) !=
			    HARK_OK)
				rc->store_err = 1;
		}
	} else {
		r->failed = 1;
	}
	pool_chunk_settled(rc, r);
}

static void on_extract_progress(size_t done, size_t total, void *ud)
{
	struct run_ctx *rc = ud;

	rc->batches_done = done;
	rc->batches_total = total;
	if (rc->stats_mu)
		pthread_mutex_lock(rc->stats_mu);
	progress(rc->p, HARK_PIPELINE_EXTRACT, done, total);
	if (rc->stats_mu)
		pthread_mutex_unlock(rc->stats_mu);
}

static int on_extract_cancel(void *ud)
{
	struct run_ctx *rc = ud;

	return canceled(rc->p);
}

/* Builds the unique chunk table of the active meetings, loads stored
 * results, and sends the rest to the LLM. */
static int llm_map(struct run_ctx *rc, struct mtg *m, size_t n, char *err, size_t errlen)
{
	const struct hark_pipeline_params *p = rc->p;
	size_t total = 0, u = 0;
	const char **shas = NULL;
	char **got = NULL;
	struct hark_llm_chunk_in *in = NULL;
	struct hark_llm_minutes_params lp = hark_llm_minutes_default_params();
	struct hark_llm_minutes_stats ls;
	int ret = HARK_OK;

	memset(&ls, 0, sizeof(ls));
	for (size_t i = 0; i < n; i++)
		if (m[i].active)
			total += m[i].chunks.n;
	if (total == 0)
		return HARK_OK;
	rc->res = calloc(total, sizeof(*rc->res));
	if (!rc->res)
		return HARK_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!m[i].active)
			continue;
		for (size_t k = 0; k < m[i].chunks.n; k++) {
			snprintf(rc->res[u].sha, sizeof(rc->res[u].sha), "%s", m[i].chunks.chunks[k].sha256);
			rc->res[u].text = m[i].chunks.chunks[k].text;
			u++;
		}
	}
	qsort(rc->res, u, sizeof(*rc->res), cmp_chunk_res);
	{
		size_t w = 0;

		for (size_t i = 0; i < u; i++)
			if (w == 0 || strcmp(rc->res[w - 1].sha, rc->res[i].sha) != 0)
				rc->res[w++] = rc->res[i];
		u = w;
	}
	rc->n_res = u;
	if (rc->stats) {
		rc->stats->chunks += total;
		rc->stats->chunks_unique += u;
	}
	shas = calloc(u, sizeof(*shas));
	got = calloc(u, sizeof(*got));
	rc->pending = calloc(u, sizeof(*rc->pending));
	in = calloc(u, sizeof(*in));
	if (!shas || !got || !rc->pending || !in) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < u; i++)
		shas[i] = rc->res[i].sha;
	ret = hark_store_chunk_result_get_many(rc->st, rc->pipeline_key, shas, u, got);
	if (ret != HARK_OK) {
		hark_errbuf_set(err, errlen, "store: %s", hark_store_errmsg(rc->st));
		goto out;
	}
	for (size_t i = 0; i < u; i++) {
		if (got[i]) {
			rc->res[i].json = got[i];
			got[i] = NULL;
			if (rc->stats)
				rc->stats->chunks_cached++;
		}
	}
	/* The chunks to send, in meeting order and transcript order: a batch
	 * holds neighbouring chunks of one meeting, and meetings complete one
	 * after another, so their reduces can start while later meetings are
	 * still being extracted. */
	for (size_t i = 0; i < n; i++) {
		if (!m[i].active)
			continue;
		for (size_t k = 0; k < m[i].chunks.n; k++) {
			struct chunk_res *r = find_res(rc->res, rc->n_res, m[i].chunks.chunks[k].sha256);

			if (!r || r->json || r->sent)
				continue;
			rc->pending[rc->n_pending] = r;
			in[rc->n_pending].sha256 = r->sha;
			in[rc->n_pending].text = r->text;
			r->sent = 1;
			rc->n_pending++;
		}
	}
	if (rc->n_pending == 0)
		goto out;
	lp.batch_chunks = p->batch_chunks;
	lp.job_id = p->job_id;
	lp.key_id = p->key_id;
	lp.cancel = on_extract_cancel;
	lp.progress = on_extract_progress;
	lp.user_data = rc;
	progress(p, HARK_PIPELINE_EXTRACT, 0,
		 (rc->n_pending + p->batch_chunks - 1) / (p->batch_chunks ? p->batch_chunks : 1));
	ret = pool_start(rc, m, n);
	if (ret != HARK_OK)
		goto out;
	ret = hark_llm_minutes_extract(p->llm, in, rc->n_pending, &lp, on_chunk, rc, &ls);
	if (rc->stats) {
		if (rc->stats_mu)
			pthread_mutex_lock(rc->stats_mu);
		rc->stats->chunks_sent += rc->n_pending;
		rc->stats->llm_requests += ls.requests;
		rc->stats->tokens_in += ls.tokens_in;
		rc->stats->tokens_out += ls.tokens_out;
		rc->stats->cost_usd += ls.cost_usd;
		for (size_t i = 0; i < rc->n_pending; i++)
			if (!rc->pending[i]->json)
				rc->stats->chunks_failed++;
		if (rc->stats_mu)
			pthread_mutex_unlock(rc->stats_mu);
	}
	if (ret == HARK_OK && canceled(p))
		ret = HARK_ERR_CANCELED;
	if (ret != HARK_OK && ret != HARK_ERR_CANCELED)
		hark_errbuf_set(err, errlen, "LLM extraction: %s", hark_strerror(ret));
	if (ret == HARK_OK && rc->store_err) {
		hark_errbuf_set(err, errlen, "store: %s", hark_store_errmsg(rc->st));
		ret = HARK_ERR_IO;
	}
out:
	if (got)
		for (size_t i = 0; i < u; i++)
			free(got[i]);
	free(got);
	free(shas);
	free(in);
	return ret;
}

/* ---- indexing ------------------------------------------------------------------------------ */

struct docs {
	struct hark_search_doc *v;
	size_t n, cap;
	char **owned;
	size_t n_owned, cap_owned;
};

static void docs_free(struct docs *d)
{
	for (size_t i = 0; i < d->n_owned; i++)
		free(d->owned[i]);
	free(d->owned);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

static char *docs_own(struct docs *d, char *s)
{
	if (!s)
		return NULL;
	if (d->n_owned == d->cap_owned) {
		size_t nc = d->cap_owned ? d->cap_owned * 2 : 32;
		char **nv = realloc(d->owned, nc * sizeof(*nv));

		if (!nv) {
			free(s);
			return NULL;
		}
		d->owned = nv;
		d->cap_owned = nc;
	}
	d->owned[d->n_owned++] = s;
	return s;
}

static int docs_add(struct docs *d, const char *kind, const char *meeting, const char *speaker,
		    const char *text, const char *chunk_sha, const struct hark_minutes_ref *ref,
		    double start_s, double end_s, long turn)
{
	struct hark_search_doc *e;

	if (!text || !*text)
		return HARK_OK;
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		void *nv = realloc(d->v, nc * sizeof(*d->v));

		if (!nv)
			return HARK_ERR_NOMEM;
		d->v = nv;
		d->cap = nc;
	}
	e = &d->v[d->n++];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->meeting = meeting;
	e->speaker = ref ? ref->speaker : speaker;
	e->text = text;
	e->chunk_sha = chunk_sha;
	e->start_s = ref ? ref->start_s : start_s;
	e->end_s = ref ? ref->end_s : end_s;
	e->turn = ref ? ref->turn : turn;
	if (strlen(text) > MAX_DOC_TEXT) {
		char *cut = strndup(text, MAX_DOC_TEXT);

		if (!docs_own(d, cut))
			return HARK_ERR_NOMEM;
		e->text = cut;
	}
	return HARK_OK;
}

/* "task (owner, due)" for an action item document. */
static char *action_text(const struct hark_minutes_item *it)
{
	size_t n = strlen(it->text) + (it->owner ? strlen(it->owner) : 0) +
		   (it->due ? strlen(it->due) : 0) + 16;
	char *s = malloc(n);

	if (!s)
		return NULL;
	snprintf(s, n, "%s%s%s%s%s%s", it->text, it->owner || it->due ? " (" : "",
		 it->owner ? it->owner : "", it->owner && it->due ? ", " : "", it->due ? it->due : "",
		 it->owner || it->due ? ")" : "");
	return s;
}

static int build_docs(const struct mtg *m, const char *name, struct docs *d)
{
	const struct hark_minutes *mi = &m->minutes;
	int rc = HARK_OK;

	for (size_t k = 0; rc == HARK_OK && k < m->chunks.n; k++) {
		const struct hark_chunk *c = &m->chunks.chunks[k];
		const char *spk = c->first_turn < m->n_turns ? m->turns[c->first_turn].speaker : NULL;

		rc = docs_add(d, "chunk", name, spk, c->text, c->sha256, NULL, c->start_s, c->end_s,
			      (long)c->first_turn);
	}
	for (size_t k = 0; rc == HARK_OK && k < mi->n_points; k++)
		rc = docs_add(d, "summary", name, NULL, mi->points[k].text, NULL, &mi->points[k].ref, 0,
			      0, 0);
	for (size_t k = 0; rc == HARK_OK && k < mi->n_topics; k++) {
		const struct hark_minutes_topic *t = &mi->topics[k];
		size_t n = strlen(t->title) + (t->summary ? strlen(t->summary) : 0) + 4;
		char *s;

		for (size_t j = 0; j < t->n_keywords; j++)
			n += strlen(t->keywords[j]) + 2;
		s = malloc(n);
		if (!s)
			return HARK_ERR_NOMEM;
		snprintf(s, n, "%s. %s", t->title, t->summary ? t->summary : "");
		for (size_t j = 0; j < t->n_keywords; j++) {
			strcat(s, j ? ", " : " ");
			strcat(s, t->keywords[j]);
		}
		if (!docs_own(d, s))
			return HARK_ERR_NOMEM;
		rc = docs_add(d, "topic", name, NULL, s, NULL, &t->ref, 0, 0, 0);
	}
	for (size_t k = 0; rc == HARK_OK && k < mi->n_decisions; k++)
		rc = docs_add(d, "decision", name, NULL, mi->decisions[k].text, NULL,
			      &mi->decisions[k].ref, 0, 0, 0);
	for (size_t k = 0; rc == HARK_OK && k < mi->n_actions; k++) {
		char *s = docs_own(d, action_text(&mi->actions[k]));

		if (!s)
			return HARK_ERR_NOMEM;
		rc = docs_add(d, "action", name, NULL, s, NULL, &mi->actions[k].ref, 0, 0, 0);
	}
	for (size_t k = 0; rc == HARK_OK && k < mi->n_questions; k++)
		rc = docs_add(d, "question", name, NULL, mi->questions[k].text, NULL,
			      &mi->questions[k].ref, 0, 0, 0);
	return rc;
}

static char *dump_json(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	json_decref(j);
	return s;
}

/* Stores one finished meeting (minutes, graph, chunks, search docs) and fills out. */
static int index_meeting(struct run_ctx *rc, struct mtg *m, const char *source, char *err,
			 size_t errlen)
{
	struct hark_pipeline_meeting *o = m->out;
	struct hark_meeting_rec rec;
	struct hark_meeting_chunk *mc = NULL;
	struct docs d;
	int ret;

	memset(&rec, 0, sizeof(rec));
	memset(&d, 0, sizeof(d));
	o->minutes_json = dump_json(hark_minutes_to_json(&m->minutes));
	o->minutes_md = hark_minutes_to_markdown(&m->minutes);
	o->graph_json = dump_json(hark_graph_to_json(&m->graph));
	if (!o->minutes_json || !o->minutes_md || !o->graph_json) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	mc = calloc(m->chunks.n ? m->chunks.n : 1, sizeof(*mc));
	if (!mc) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t k = 0; k < m->chunks.n; k++) {
		const struct hark_chunk *c = &m->chunks.chunks[k];

		mc[k].seq = (int64_t)k;
		snprintf(mc[k].chunk_sha, sizeof(mc[k].chunk_sha), "%s", c->sha256);
		mc[k].start_s = c->start_s;
		mc[k].end_s = c->end_s;
		mc[k].first_turn = (int64_t)c->first_turn;
		mc[k].last_turn = (int64_t)c->last_turn;
	}
	ret = build_docs(m, o->name, &d);
	if (ret != HARK_OK)
		goto out;
	rec.name = o->name;
	rec.source = (char *)(source ? source : "");
	snprintf(rec.content_sha, sizeof(rec.content_sha), "%s", m->content_sha);
	/* a meeting with chunks whose LLM extraction failed is stored (its
	 * minutes are usable) but marked so that the next run analyses it again,
	 * sending only the chunks that failed */
	snprintf(rec.params_sha, sizeof(rec.params_sha), "%s",
		 o->chunks_failed ? "0000000000000000000000000000000000000000000000000000000000000000"
				  : rc->params_sha);
	rec.date = m->date[0] ? m->date : NULL;
	rec.method = o->method;
	rec.model = m->minutes.model;
	rec.n_chunks = (int64_t)m->chunks.n;
	rec.analyzed_at = wall_now();
	rec.minutes_json = o->minutes_json;
	rec.graph_json = o->graph_json;
	ret = hark_store_meeting_put(rc->st, &rec, mc, m->chunks.n, d.v, d.n);
	if (ret != HARK_OK) {
		hark_errbuf_set(err, errlen, "store: %s", hark_store_errmsg(rc->st));
		goto out;
	}
	if (rc->p->embed && rc->p->llm && m->chunks.n) {
		const char **texts = calloc(m->chunks.n, sizeof(*texts));
		char eerr[256] = "";

		if (!texts) {
			ret = HARK_ERR_NOMEM;
			goto out;
		}
		for (size_t k = 0; k < m->chunks.n; k++)
			texts[k] = m->chunks.chunks[k].text;
		if (hark_search_embed_docs(rc->st, rc->p->llm, "embed", texts, m->chunks.n,
					   rc->p->job_id, eerr, sizeof(eerr)) != HARK_OK)
			hark_errbuf_set(o->warning, sizeof(o->warning),
					"embeddings not stored (search stays BM25-only): %s", eerr);
		free(texts);
	}
out:
	free(mc);
	docs_free(&d);
	return ret;
}

/* Fills out from a stored analysis (an unchanged meeting). */
static int reuse_meeting(const struct hark_meeting_rec *rec, struct mtg *m)
{
	struct hark_pipeline_meeting *o = m->out;
	json_error_t je;
	json_t *j = json_loads(rec->minutes_json, 0, &je);
	char e[128];
	int rc;

	if (!j)
		return HARK_ERR_FORMAT;
	rc = hark_minutes_from_json(j, &m->minutes, e, sizeof(e));
	json_decref(j);
	if (rc != HARK_OK)
		return rc;
	j = json_loads(rec->graph_json, 0, &je);
	if (!j)
		return HARK_ERR_FORMAT;
	rc = hark_graph_from_json(j, &m->graph, e, sizeof(e));
	json_decref(j);
	if (rc != HARK_OK)
		return rc;
	o->minutes_json = strdup(rec->minutes_json);
	o->graph_json = strdup(rec->graph_json);
	o->minutes_md = hark_minutes_to_markdown(&m->minutes);
	if (!o->minutes_json || !o->graph_json || !o->minutes_md)
		return HARK_ERR_NOMEM;
	snprintf(o->method, sizeof(o->method), "%s", rec->method ? rec->method : "offline");
	o->chunks = (size_t)rec->n_chunks;
	o->reused = 1;
	return HARK_OK;
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void fail_meeting(struct mtg *m, int rc, const char *msg)
{
	m->out->err = rc;
	snprintf(m->out->error, sizeof(m->out->error), "%s", msg && *msg ? msg : hark_strerror(rc));
	m->active = 0;
}

static int offline_pass(struct run_ctx *rc, struct mtg *m, char *err, size_t errlen)
{
	const struct hark_pipeline_params *p = rc->p;
	struct hark_offline_params op = p->offline;
	int ret;

	ret = hark_chunk_split(m->turns, m->n_turns, &p->chunk, &m->chunks, err, errlen);
	if (ret != HARK_OK)
		return ret;
	op.meeting_date = m->d;
	ret = hark_offline_minutes(m->turns, m->n_turns, m->out->name, &op, &m->offline, err,
				   errlen);
	if (ret != HARK_OK)
		return ret;
	m->offline.chunks = m->chunks.n;
	m->out->turns = m->n_turns;
	m->out->chunks = m->chunks.n;
	if (!p->llm && rc->stats)
		rc->stats->chunks += m->chunks.n;
	if (!p->llm) {
		/* The offline minutes are the result. */
		m->minutes = m->offline;
		memset(&m->offline, 0, sizeof(m->offline));
		ret = hark_entities_extract(m->turns, m->n_turns, m->out->name, &p->entities, &m->graph,
					    err, errlen);
		snprintf(m->out->method, sizeof(m->out->method), "offline");
	}
	return ret;
}

static int llm_reduce(struct run_ctx *rc, struct mtg *m, char *err, size_t errlen)
{
	struct hark_llm_minutes_params lp = hark_llm_minutes_default_params();
	struct hark_llm_minutes_stats ls;
	int ret;

	memset(&ls, 0, sizeof(ls));
	m->chunk_json = calloc(m->chunks.n ? m->chunks.n : 1, sizeof(*m->chunk_json));
	if (!m->chunk_json)
		return HARK_ERR_NOMEM;
	for (size_t k = 0; k < m->chunks.n; k++) {
		struct chunk_res *r = find_res(rc->res, rc->n_res, m->chunks.chunks[k].sha256);

		m->chunk_json[k] = r ? r->json : NULL;
		if (r && r->sent)
			m->out->chunks_sent++;
		if (!r || !r->json)
			m->out->chunks_failed++;
	}
	lp.batch_chunks = rc->p->batch_chunks;
	lp.job_id = rc->p->job_id;
	lp.key_id = rc->p->key_id;
	lp.cancel = on_extract_cancel;
	lp.user_data = rc;
	err[0] = '\0';
	ret = hark_llm_minutes_build(rc->p->llm, m->out->name, m->turns, m->n_turns, &m->chunks,
				     (const char *const *)m->chunk_json, m->d.year ? &m->d : NULL,
				     &m->offline, &lp, &m->minutes, &m->graph, &ls, err, errlen);
	if (ret == HARK_OK && err[0])
		hark_errbuf_set(m->out->warning, sizeof(m->out->warning), "%s", err);
	if (ret == HARK_OK && m->out->chunks_failed)
		snprintf(m->out->warning, sizeof(m->out->warning),
			 "%zu of %zu chunks failed LLM extraction; their items are missing",
			 m->out->chunks_failed, m->chunks.n);
	if (rc->stats) {
		if (rc->stats_mu)
			pthread_mutex_lock(rc->stats_mu);
		rc->stats->llm_requests += ls.requests;
		rc->stats->tokens_in += ls.tokens_in;
		rc->stats->tokens_out += ls.tokens_out;
		rc->stats->cost_usd += ls.cost_usd;
		if (rc->stats_mu)
			pthread_mutex_unlock(rc->stats_mu);
	}
	snprintf(m->out->method, sizeof(m->out->method), "llm");
	return ret;
}

/* ---- reduce, overlapped with extraction ---------------------------------------------------- */

/*
 * Each meeting's reduce (an LLM call whose latency dominates) starts as soon
 * as the last of its chunks has settled, on a small pool of threads, while
 * the extraction of other meetings' chunks is still in flight; the LLM layer
 * bounds concurrency and rate for both. Shared state is under mu: the queue,
 * the per-meeting counters, progress reports and run statistics.
 */
#define MAX_REDUCE_THREADS 64

struct reduce_pool {
	struct run_ctx *rc;
	struct mtg *m;
	size_t n;
	size_t *remaining;     /* per meeting: chunks still being extracted */
	unsigned char *queued; /* per meeting */
	size_t *queue;         /* meeting indices, FIFO */
	size_t qhead, qtail;
	size_t done, total;
	int closing, canceled, started;
	pthread_t th[MAX_REDUCE_THREADS];
	size_t n_threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

/* Under mu. */
static void pool_enqueue(struct reduce_pool *rp, size_t i)
{
	if (rp->queued[i] || !rp->m[i].active)
		return;
	rp->queued[i] = 1;
	rp->queue[rp->qtail++] = i;
	pthread_cond_signal(&rp->cv);
}

static void *reduce_worker(void *arg)
{
	struct reduce_pool *rp = arg;

	for (;;) {
		size_t i;
		char e[512] = "";
		int r;

		pthread_mutex_lock(&rp->mu);
		while (rp->qhead == rp->qtail && !rp->closing && !rp->canceled)
			pthread_cond_wait(&rp->cv, &rp->mu);
		if (rp->canceled || rp->qhead == rp->qtail) {
			pthread_mutex_unlock(&rp->mu);
			break;
		}
		i = rp->queue[rp->qhead++];
		pthread_mutex_unlock(&rp->mu);
		if (canceled(rp->rc->p)) {
			pthread_mutex_lock(&rp->mu);
			rp->canceled = 1;
			pthread_cond_broadcast(&rp->cv);
			pthread_mutex_unlock(&rp->mu);
			break;
		}
		r = llm_reduce(rp->rc, &rp->m[i], e, sizeof(e));
		pthread_mutex_lock(&rp->mu);
		if (r == HARK_ERR_CANCELED) {
			rp->canceled = 1;
			pthread_cond_broadcast(&rp->cv);
		} else if (r != HARK_OK) {
			fail_meeting(&rp->m[i], r, e);
		}
		rp->done++;
		progress(rp->rc->p, HARK_PIPELINE_REDUCE, rp->done, rp->total);
		pthread_mutex_unlock(&rp->mu);
	}
	return NULL;
}

/* A chunk's extraction settled (ok or failed): meetings whose last chunk
 * this was can be reduced. Calling thread. */
static void pool_chunk_settled(struct run_ctx *rc, const struct chunk_res *r)
{
	struct reduce_pool *rp = rc->pool;

	if (!rp || !rp->started)
		return;
	pthread_mutex_lock(&rp->mu);
	for (size_t k = 0; k < r->m_n; k++) {
		size_t i = rc->res_meet[r->m_off + k];

		if (rp->remaining[i] > 0 && --rp->remaining[i] == 0)
			pool_enqueue(rp, i);
	}
	pthread_mutex_unlock(&rp->mu);
}

static int cmp_pair(const void *a, const void *b)
{
	const size_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return (x[1] > y[1]) - (x[1] < y[1]);
}

/* Builds the chunk -> meetings map and the per-meeting counters (from the
 * chunks still to extract), queues the meetings with nothing left to
 * extract, and starts the threads. */
static int pool_start(struct run_ctx *rc, struct mtg *m, size_t n)
{
	struct reduce_pool *rp = rc->pool;
	size_t total = 0, np = 0, *pairs = NULL;

	if (!rp || rp->started)
		return HARK_OK;
	for (size_t i = 0; i < n; i++)
		if (m[i].active)
			total += m[i].chunks.n;
	pairs = malloc((total ? total : 1) * 2 * sizeof(*pairs));
	rc->res_meet = malloc((total ? total : 1) * sizeof(*rc->res_meet));
	if (!pairs || !rc->res_meet) {
		free(pairs);
		return HARK_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!m[i].active)
			continue;
		for (size_t k = 0; k < m[i].chunks.n; k++) {
			struct chunk_res *r = find_res(rc->res, rc->n_res, m[i].chunks.chunks[k].sha256);

			if (!r)
				continue;
			pairs[2 * np] = (size_t)(r - rc->res);
			pairs[2 * np + 1] = i;
			np++;
		}
	}
	qsort(pairs, np, 2 * sizeof(*pairs), cmp_pair);
	{
		size_t w = 0;

		for (size_t x = 0; x < np; x++) {
			if (w > 0 && pairs[2 * (w - 1)] == pairs[2 * x] &&
			    pairs[2 * (w - 1) + 1] == pairs[2 * x + 1])
				continue; /* a chunk twice in one meeting counts once */
			pairs[2 * w] = pairs[2 * x];
			pairs[2 * w + 1] = pairs[2 * x + 1];
			w++;
		}
		np = w;
	}
	for (size_t x = 0; x < rc->n_res; x++)
		rc->res[x].m_n = 0;
	for (size_t x = 0; x < np; x++) {
		struct chunk_res *r = &rc->res[pairs[2 * x]];

		if (r->m_n == 0)
			r->m_off = x;
		r->m_n++;
		rc->res_meet[x] = pairs[2 * x + 1];
		if (r->sent)
			rp->remaining[pairs[2 * x + 1]]++;
	}
	free(pairs);
	rp->started = 1;
	pthread_mutex_lock(&rp->mu);
	for (size_t i = 0; i < n; i++)
		if (m[i].active && rp->remaining[i] == 0)
			pool_enqueue(rp, i);
	pthread_mutex_unlock(&rp->mu);
	for (size_t t = 0; t < rp->total && t < MAX_REDUCE_THREADS; t++) {
		if (pthread_create(&rp->th[rp->n_threads], NULL, reduce_worker, rp) != 0)
			break;
		rp->n_threads++;
	}
	return HARK_OK;
}

static int pool_init(struct reduce_pool *rp, struct run_ctx *rc, struct mtg *m, size_t n)
{
	memset(rp, 0, sizeof(*rp));
	rp->rc = rc;
	rp->m = m;
	rp->n = n;
	for (size_t i = 0; i < n; i++)
		rp->total += m[i].active != 0;
	rp->remaining = calloc(n ? n : 1, sizeof(*rp->remaining));
	rp->queued = calloc(n ? n : 1, 1);
	rp->queue = calloc(n ? n : 1, sizeof(*rp->queue));
	if (!rp->remaining || !rp->queued || !rp->queue) {
		free(rp->remaining);
		free(rp->queued);
		free(rp->queue);
		return HARK_ERR_NOMEM;
	}
	if (pthread_mutex_init(&rp->mu, NULL) != 0) {
		free(rp->remaining);
		free(rp->queued);
		free(rp->queue);
		return HARK_ERR_NOMEM;
	}
	if (pthread_cond_init(&rp->cv, NULL) != 0) {
		pthread_mutex_destroy(&rp->mu);
		free(rp->remaining);
		free(rp->queued);
		free(rp->queue);
		return HARK_ERR_NOMEM;
	}
	rc->pool = rp;
	rc->stats_mu = &rp->mu;
	return HARK_OK;
}

/* Extraction is over (or never started): every active meeting not queued
 * yet is queued, the queue drains, the threads end. canceled: stop instead.
 * Returns HARK_ERR_CANCELED when a reduce saw the cancel. */
static int pool_finish(struct reduce_pool *rp, int cancel)
{
	int ret;

	if (!rp->started) {
		/* nothing was extracted in this run: reduce everything from here */
		pool_start(rp->rc, rp->m, rp->n);
	}
	pthread_mutex_lock(&rp->mu);
	if (cancel)
		rp->canceled = 1;
	else
		for (size_t i = 0; i < rp->n; i++)
			pool_enqueue(rp, i);
	rp->closing = 1;
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	if (rp->n_threads == 0 && !cancel)
		reduce_worker(rp); /* no thread could start: reduce here */
	for (size_t t = 0; t < rp->n_threads; t++)
		pthread_join(rp->th[t], NULL);
	ret = rp->canceled ? HARK_ERR_CANCELED : HARK_OK;
	rp->rc->pool = NULL;
	rp->rc->stats_mu = NULL;
	pthread_cond_destroy(&rp->cv);
	pthread_mutex_destroy(&rp->mu);
	free(rp->remaining);
	free(rp->queued);
	free(rp->queue);
	return ret;
}

int hark_pipeline_run(struct hark_store *st, const struct hark_pipeline_input *in, size_t n,
		      const struct hark_pipeline_params *pp, struct hark_pipeline_meeting *out,
		      struct hark_graph *corpus, struct hark_pipeline_stats *stats, char *err,
		      size_t errlen)
{
	struct hark_pipeline_params p = pp ? *pp : hark_pipeline_default_params();
	struct run_ctx rc;
	struct mtg *m = NULL;
	struct hark_pipeline_stats local;
	double t0 = mono_now();
	size_t done;
	int ret = HARK_OK;

	memset(&rc, 0, sizeof(rc));
	memset(&local, 0, sizeof(local));
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	if (!st || (!in && n) || (!out && n)) {
		hark_errbuf_set(err, errlen, "invalid arguments");
		return HARK_ERR_INVALID_ARG;
	}
	if (p.batch_chunks == 0 || p.batch_chunks > 50) {
		hark_errbuf_set(err, errlen, "batch size must be 1..50 chunks");
		return HARK_ERR_INVALID_ARG;
	}
	rc.st = st;
	rc.p = &p;
	rc.stats = stats;
	if (p.llm && hark_llm_minutes_pipeline_key(rc.pipeline_key) != HARK_OK) {
		hark_errbuf_set(err, errlen, "cannot load the analysis prompts");
		return HARK_ERR_INTERNAL;
	}
	ret = compute_params_sha(&p, rc.pipeline_key, rc.params_sha);
	if (ret != HARK_OK)
		return ret;
	m = calloc(n ? n : 1, sizeof(*m));
	if (!m)
		return HARK_ERR_NOMEM;
	stats->meetings = n;

	/* read; reuse unchanged meetings */
	for (size_t i = 0; i < n; i++) {
		struct hark_meeting_rec rec;
		char e[512] = "";
		int r;

		memset(&out[i], 0, sizeof(out[i]));
		m[i].out = &out[i];
		if (in[i].name)
			snprintf(out[i].name, sizeof(out[i].name), "%s", in[i].name);
		else if (in[i].path)
			name_from_path(in[i].path, out[i].name, sizeof(out[i].name));
		sanitize_name(out[i].name);
		if (canceled(&p)) {
			ret = HARK_ERR_CANCELED;
			goto out;
		}
		r = hark_pipeline_read(&in[i], p.max_input_bytes, &m[i].turns, &m[i].n_turns,
				       &m[i].owner, m[i].date, e, sizeof(e));
		if (r != HARK_OK) {
			fail_meeting(&m[i], r, e);
			continue;
		}
		if (in[i].date && *in[i].date) {
			struct hark_date d;

			if (!parse_iso_date(in[i].date, &d) || in[i].date[10]) {
				fail_meeting(&m[i], HARK_ERR_INVALID_ARG,
					     "meeting date must read YYYY-MM-DD");
				continue;
			}
			snprintf(m[i].date, sizeof(m[i].date), "%s", in[i].date);
		}
		if (m[i].date[0])
			parse_iso_date(m[i].date, &m[i].d);
		{
			/* content hash: the turns as read, plus the date */
			EVP_MD_CTX *x = EVP_MD_CTX_new();
			unsigned char md[EVP_MAX_MD_SIZE];
			unsigned int mdlen = 0;
			int ok = x && EVP_DigestInit_ex(x, EVP_sha256(), NULL);

			for (size_t k = 0; ok && k < m[i].n_turns; k++) {
				const struct hark_chunk_turn *t = &m[i].turns[k];
				char tm[64];

				snprintf(tm, sizeof(tm), "|%.3f|%.3f|", t->start_s, t->end_s);
				ok = EVP_DigestUpdate(x, t->speaker ? t->speaker : "", t->speaker ? strlen(t->speaker) : 0) &&
				     EVP_DigestUpdate(x, tm, strlen(tm)) &&
				     EVP_DigestUpdate(x, t->text, strlen(t->text) + 1);
			}
			if (ok)
				ok = EVP_DigestUpdate(x, m[i].date, strlen(m[i].date)) &&
				     EVP_DigestFinal_ex(x, md, &mdlen) && mdlen == 32;
			EVP_MD_CTX_free(x);
			if (!ok) {
				fail_meeting(&m[i], HARK_ERR_INTERNAL, "hashing failed");
				continue;
			}
			to_hex(md, 32, m[i].content_sha);
		}
		m[i].active = 1;
		memset(&rec, 0, sizeof(rec));
		if (!p.force && hark_store_meeting_get(st, out[i].name, &rec) == HARK_OK) {
			if (strcmp(rec.content_sha, m[i].content_sha) == 0 &&
			    strcmp(rec.params_sha, rc.params_sha) == 0 && rec.minutes_json &&
			    rec.graph_json && reuse_meeting(&rec, &m[i]) == HARK_OK) {
				out[i].turns = m[i].n_turns;
				m[i].active = 0;
				stats->reused++;
			} else if (out[i].reused == 0) {
				hark_minutes_clear(&m[i].minutes);
				hark_graph_clear(&m[i].graph);
				hark_pipeline_meeting_clear(&out[i]);
			}
		}
		hark_meeting_rec_clear(&rec);
		progress(&p, HARK_PIPELINE_READ, i + 1, n);
	}

	/* offline pass (always: the result without an LLM, the fallback with one) */
	done = 0;
	for (size_t i = 0; i < n; i++) {
		char e[512] = "";
		int r;

		if (!m[i].active)
			continue;
		if (canceled(&p)) {
			ret = HARK_ERR_CANCELED;
			goto out;
		}
		r = offline_pass(&rc, &m[i], e, sizeof(e));
		if (r == HARK_ERR_CANCELED) {
			ret = r;
			goto out;
		}
		if (r != HARK_OK)
			fail_meeting(&m[i], r, e);
		progress(&p, HARK_PIPELINE_OFFLINE, ++done, n);
	}

	/* LLM map + reduce */
	if (p.llm) {
		double tl = mono_now();
		struct reduce_pool rp;
		int fin;

		ret = pool_init(&rp, &rc, m, n);
		if (ret != HARK_OK)
			goto out;
		ret = llm_map(&rc, m, n, err, errlen);
		fin = pool_finish(&rp, ret != HARK_OK);
		if (ret == HARK_OK)
			ret = fin;
		stats->llm_seconds = mono_now() - tl;
		if (ret != HARK_OK)
			goto out;
	}

	/* resolve graphs, store and index */
	done = 0;
	for (size_t i = 0; i < n; i++) {
		char e[512] = "";
		int r;

		if (!m[i].active)
			continue;
		if (canceled(&p)) {
			ret = HARK_ERR_CANCELED;
			goto out;
		}
		m[i].minutes.chunks = m[i].chunks.n;
		r = hark_graph_resolve(&m[i].graph, NULL);
		if (r == HARK_OK)
			r = index_meeting(&rc, &m[i], in[i].path, e, sizeof(e));
		if (r != HARK_OK) {
			hark_pipeline_meeting_clear(&out[i]);
			fail_meeting(&m[i], r, e);
		}
		progress(&p, HARK_PIPELINE_INDEX, ++done, n);
	}

	/* corpus graph */
	for (size_t i = 0; i < n; i++) {
		if (out[i].err)
			stats->failed++;
		else if (corpus)
			ret = hark_graph_append(corpus, &m[i].graph);
		if (ret != HARK_OK)
			goto out;
	}
	if (corpus) {
		ret = hark_graph_resolve(corpus, NULL);
		progress(&p, HARK_PIPELINE_GRAPH, 1, 1);
	}
out:
	if (ret == HARK_ERR_CANCELED)
		hark_errbuf_set(err, errlen, "canceled; finished work is stored and a re-run continues");
	for (size_t i = 0; i < rc.n_res; i++)
		free(rc.res[i].json);
	free(rc.res);
	free(rc.pending);
	free(rc.res_meet);
	for (size_t i = 0; i < n && m; i++)
		mtg_clear(&m[i]);
	free(m);
	stats->seconds = mono_now() - t0;
	return ret;
}
