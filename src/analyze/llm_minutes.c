/*
 * LLM minutes: the map step (batched extraction of notes, decisions, action
 * items, open questions, entities and relations, one canonical JSON slice
 * per chunk) and the reduce step (per-meeting minutes and graph items from
 * the slices, summary and topics from one or more reduce requests) of the
 * LLM analysis path. All model calls go through hark_llm_run; the prompts
 * and schemas come from analyze/prompts.h.
 */
#include "analyze/llm_minutes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "analyze/prompts.h"
#include "hark/hark.h"
#include "llm/llm.h"
#include "llm/schema.h"
#include "llm/tokens.h"
#include "util/errbuf.h"

#define P_EXTRACT "prompts/minutes_extract.md"
#define S_EXTRACT "schemas/minutes_extract.json"
#define P_REDUCE "prompts/minutes_reduce.md"
#define S_REDUCE "schemas/minutes_reduce.json"

#define MAX_BATCH 50
#define MAX_CHUNKS ((size_t)1000000)
#define MAX_REDUCE_PASSES 32
#define MAX_REDUCE_LEVELS 8
#define MAX_QUOTE_WORDS 40
#define MAX_TEXT_BYTES ((size_t)256 << 20)

/* The six arrays of a slice and the member holding each item's evidence
 * (NULL = none). */
static const char *const kinds[6] = {"notes",          "decisions", "action_items",
				     "open_questions", "entities",  "relations"};
static const char *const kind_evidence[6] = {NULL, "evidence", "evidence",
					     "evidence", "evidence", "evidence"};

struct hark_llm_minutes_params hark_llm_minutes_default_params(void)
{
	struct hark_llm_minutes_params p;

	memset(&p, 0, sizeof(p));
	p.batch_chunks = 10;
	p.max_tokens_per_chunk = 800;
	p.reduce_max_tokens = 2048;
	p.extract_task = "extract";
	p.reduce_task = "summarize";
	return p;
}

static int params_ok(const struct hark_llm_minutes_params *p)
{
	return p->batch_chunks >= 1 && p->batch_chunks <= MAX_BATCH &&
	       p->max_tokens_per_chunk >= 16 && p->max_tokens_per_chunk <= 100000 &&
	       p->reduce_max_tokens >= 64 && p->reduce_max_tokens <= 100000;
}

int hark_llm_minutes_pipeline_key(char out[65])
{
	static const char hexd[] = "0123456789abcdef";
	const char *names[2] = {P_EXTRACT, S_EXTRACT};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	char ver[64];
	int rc = HARK_OK;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return HARK_ERR_NOMEM;
	snprintf(ver, sizeof(ver), "hark-llm-minutes/%d\n", HARK_LLM_MINUTES_VERSION);
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, ver, strlen(ver))) {
		rc = HARK_ERR_INTERNAL;
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		const char *t;
		size_t len;
		char sep[32];

		rc = hark_prompts_get(names[i], &t, &len);
		if (rc)
			goto out;
		/* length-prefixed, so the split between the texts is unambiguous */
		snprintf(sep, sizeof(sep), "%zu\n", len);
		if (!EVP_DigestUpdate(ctx, sep, strlen(sep)) || !EVP_DigestUpdate(ctx, t, len)) {
			rc = HARK_ERR_INTERNAL;
			goto out;
		}
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		rc = HARK_ERR_INTERNAL;
		goto out;
	}
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hexd[md[i] >> 4];
		out[2 * i + 1] = hexd[md[i] & 15];
	}
	out[64] = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* ------------------------------------------------------------ text utils */

static int is_alnum(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch >= 0x80;
}

/* Normalised copy of s (see hark_llm_minutes_quote_in); heap, NULL on OOM. */
static char *norm_text(const char *s)
{
	size_t n = s ? strlen(s) : 0, o = 0;
	char *d = malloc(n + 1);
	int space = 0;

	if (!d)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '{' || ch == '[' || ch == '<') {
			char close = ch == '{' ? '}' : ch == '[' ? ']' : '>';
			size_t j = i + 1;

			while (j < n && j - i <= 64 && s[j] != close && s[j] != '\n')
				j++;
			if (j < n && s[j] == close) {
				i = j;
				space = 1;
				continue;
			}
		}
		if (is_alnum(ch)) {
			if (space && o > 0)
				d[o++] = ' ';
			space = 0;
			d[o++] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
		} else {
			space = 1;
		}
	}
	d[o] = 0;
	return d;
}

/* First whole-word-aligned occurrence of normalised needle in normalised
 * hay, or NULL. */
static const char *norm_find(const char *hay, const char *needle)
{
	size_t nl = strlen(needle);
	const char *p = hay;

	if (nl == 0)
		return NULL;
	while ((p = strstr(p, needle)) != NULL) {
		int left = p == hay || p[-1] == ' ';
		int right = p[nl] == 0 || p[nl] == ' ';

		if (left && right)
			return p;
		p++;
	}
	return NULL;
}

static int norm_contains(const char *hay, const char *needle)
{
	return norm_find(hay, needle) != NULL;
}

int hark_llm_minutes_quote_in(const char *quote, const char *text)
{
	char *q, *t;
	int r = 0;

	if (!quote || !text)
		return 0;
	q = norm_text(quote);
	t = norm_text(text);
	if (q && t)
		r = norm_contains(t, q);
	free(q);
	free(t);
	return r;
}

/* Growable string with a cap. */
struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

static void sb_add(struct sbuf *b, const char *t, size_t n)
{
	if (b->err)
		return;
	if (b->len + n + 1 > MAX_TEXT_BYTES) {
		b->err = HARK_ERR_LIMIT;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *ns;

		while (cap < b->len + n + 1)
			cap *= 2;
		ns = realloc(b->s, cap);
		if (!ns) {
			b->err = HARK_ERR_NOMEM;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, t, n);
	b->len += n;
	b->s[b->len] = 0;
}

static void sb_str(struct sbuf *b, const char *t)
{
	sb_add(b, t, strlen(t));
}

/* Appends text, defusing lines that would read as chunk markers. */
static void sb_chunk_text(struct sbuf *b, const char *t)
{
	const char *line = t;

	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line + 1) : strlen(line);

		if (strncmp(line, "[chunk", 6) == 0) {
			sb_str(b, "(");
			sb_add(b, line + 1, n - 1);
		} else {
			sb_add(b, line, n);
		}
		line += n;
	}
}

static const char *jstr(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* Copy of s with at most max_words words (heap; NULL on OOM). */
static char *cut_words(const char *s, size_t max_words)
{
	size_t i = 0, words = 0;
	int in = 0;

	while (s[i]) {
		int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t';

		if (!sp && !in) {
			if (++words > max_words)
				break;
		}
		in = !sp;
		i++;
	}
	while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == '\t'))
		i--;
	return strndup(s, i);
}

static void add_result_stats(struct hark_llm_minutes_stats *st, const struct hark_llm_result *r)
{
	if (!st)
		return;
	st->requests++;
	st->tokens_in += r->tokens_in;
	st->tokens_out += r->tokens_out;
	st->cost_usd += r->cost_usd;
	if (r->cached)
		st->cached++;
	if (r->err)
		st->failed_batches++;
}

/* ------------------------------------------------------------- map step */

/*
 * The ID of chunk i (position k in its request): the first 12 hex digits of
 * its sha256, so a request stays a pure function of its chunk texts and a
 * provider's request log names the chunks it was sent; "c<k+1>" when the
 * caller gave no hash.
 */
static void chunk_label(const struct hark_llm_chunk_in *chunks, size_t i, size_t k, char out[24])
{
	const char *h = chunks[i].sha256;

	if (h && strlen(h) >= 12)
		snprintf(out, 24, "%.12s", h);
	else
		snprintf(out, 24, "c%zu", k + 1);
}

struct xreq {
	size_t first, count; /* chunks[first .. first+count) */
	char *user;
	struct hark_llm_msg msgs[2];
};

struct xctx {
	const struct hark_llm_chunk_in *chunks;
	size_t n;
	struct xreq *reqs;
	size_t n_reqs;
	unsigned char *reported; /* per chunk */
	size_t *retry;           /* chunk indices to retry alone */
	size_t n_retry;
	int phase;               /* 0: batches, 1: single-chunk retries */
	int fatal;               /* HARK_ERR_NOMEM while handling a reply */
	void (*on_chunk)(size_t, const char *, int, const char *, void *);
	void *ud;
	const struct hark_llm_minutes_params *p;
	struct hark_llm_minutes_stats *stats;
};

static void report(struct xctx *x, size_t idx, const char *json, int err, const char *msg)
{
	if (x->reported[idx])
		return;
	x->reported[idx] = 1;
	if (x->stats) {
		if (err)
			x->stats->chunks_failed++;
		else
			x->stats->chunks_ok++;
	}
	x->on_chunk(idx, json, err, msg, x->ud);
}

/* Cuts a validated reply into per-chunk slices and reports them. Returns
 * 0, or an error for the whole request (reply unusable). */
static int split_reply(struct xctx *x, const struct xreq *q, const char *content, char *msg,
		       size_t msglen)
{
	json_t *root = NULL, *slices[MAX_BATCH] = {0};
	char *norm[MAX_BATCH] = {0};
	int rc = HARK_OK;

	root = json_loads(content ? content : "", 0, NULL);
	if (!json_is_object(root)) {
		hark_errbuf_set(msg, msglen, "reply is not a JSON object");
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	for (size_t k = 0; k < q->count; k++) {
		slices[k] = json_object();
		if (!slices[k]) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		for (int a = 0; a < 6; a++)
			if (json_object_set_new(slices[k], kinds[a], json_array())) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
	}
	for (int a = 0; a < 6; a++) {
		json_t *arr = json_object_get(root, kinds[a]), *it;
		size_t i;

		json_array_foreach(arr, i, it) {
			const char *cid = jstr(it, "chunk");
			char *end = NULL;
			long k;
			json_t *copy;

			k = 0;
			end = NULL;
			for (size_t j = 0; j < q->count; j++) {
				char id[24];

				chunk_label(x->chunks, q->first + j, j, id);
				if (strcmp(cid, id) == 0) {
					k = (long)j + 1;
					end = (char *)"";
					break;
				}
			}
			if (!json_is_object(it) || k < 1 || (size_t)k > q->count || !end || *end) {
				if (x->stats)
					x->stats->items_dropped++;
				continue;
			}
			k--;
			if (kind_evidence[a]) {
				const char *ev = jstr(it, kind_evidence[a]);
				char *ne;
				int found;

				if (!norm[k]) {
					norm[k] = norm_text(x->chunks[q->first + (size_t)k].text);
					if (!norm[k]) {
						rc = HARK_ERR_NOMEM;
						goto out;
					}
				}
				ne = norm_text(ev);
				if (!ne) {
					rc = HARK_ERR_NOMEM;
					goto out;
				}
				found = norm_contains(norm[k], ne);
				free(ne);
				if (!found) {
					if (x->stats)
						x->stats->items_dropped++;
					continue;
				}
			}
			copy = json_deep_copy(it);
			if (!copy) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			json_object_del(copy, "chunk");
			if (json_array_append_new(json_object_get(slices[k], kinds[a]), copy)) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
		}
	}
	for (size_t k = 0; k < q->count; k++) {
		char *txt = hark_llm_json_canonical(slices[k]);

		if (!txt) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		report(x, q->first + k, txt, 0, NULL);
		free(txt);
	}
out:
	for (size_t k = 0; k < MAX_BATCH; k++) {
		json_decref(slices[k]);
		free(norm[k]);
	}
	json_decref(root);
	return rc;
}

static void x_item_done(size_t index, const struct hark_llm_result *r, void *ud)
{
	struct xctx *x = ud;
	const struct xreq *q = &x->reqs[index];
	char msg[256];
	int err = r->err;

	add_result_stats(x->stats, r);
	snprintf(msg, sizeof(msg), "%s", r->error[0] ? r->error : hark_strerror(err));
	if (!err) {
		err = split_reply(x, q, r->content, msg, sizeof(msg));
		if (err == HARK_ERR_NOMEM) {
			x->fatal = HARK_ERR_NOMEM;
			return;
		}
		if (err && x->stats)
			x->stats->failed_batches++;
	}
	if (!err)
		return;
	if (x->phase == 0 && q->count > 1 && err != HARK_ERR_CANCELED) {
		for (size_t k = 0; k < q->count; k++)
			x->retry[x->n_retry++] = q->first + k;
		return;
	}
	for (size_t k = 0; k < q->count; k++)
		report(x, q->first + k, NULL, err, msg);
}

static void x_progress(size_t done, size_t total, void *ud)
{
	struct xctx *x = ud;

	if (x->p->progress)
		x->p->progress(done, total, x->p->user_data);
}

static int x_cancel(void *ud)
{
	struct xctx *x = ud;

	return x->fatal || (x->p->cancel && x->p->cancel(x->p->user_data));
}

static void free_xreqs(struct xreq *r, size_t n)
{
	if (!r)
		return;
	for (size_t i = 0; i < n; i++)
		free(r[i].user);
	free(r);
}

/* Builds one request per group of chunk indices idx[0..n) taken `per` at a
 * time, and runs them all. */
static int x_run(struct hark_llm *c, struct xctx *x, const size_t *idx, size_t n, size_t per,
		 const char *prompt, const char *schema)
{
	struct hark_llm_request *reqs = NULL;
	struct hark_llm_result *res = NULL;
	struct hark_llm_callbacks cb;
	size_t nr = (n + per - 1) / per;
	int rc = HARK_OK;

	x->reqs = calloc(nr, sizeof(*x->reqs));
	reqs = calloc(nr, sizeof(*reqs));
	res = calloc(nr, sizeof(*res));
	if (!x->reqs || !reqs || !res) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	x->n_reqs = nr;
	for (size_t r = 0; r < nr; r++) {
		struct xreq *q = &x->reqs[r];
		struct sbuf b = {0};
		char mark[48];

		/* a request covers chunks first..first+count-1: idx is the
		 * identity in the batch phase, and the retry phase (whose
		 * indices need not be contiguous) has per == 1 */
		q->first = idx[r * per];
		q->count = (r + 1) * per <= n ? per : n - r * per;
		for (size_t k = 0; k < q->count; k++) {
			char id[24];

			chunk_label(x->chunks, q->first + k, k, id);
			snprintf(mark, sizeof(mark), "%s[chunk %s]\n", k ? "\n" : "", id);
			sb_str(&b, mark);
			sb_chunk_text(&b, x->chunks[q->first + k].text);
			sb_str(&b, "\n");
		}
		if (b.err) {
			free(b.s);
			rc = b.err;
			goto out;
		}
		q->user = b.s;
		q->msgs[0].role = "system";
		q->msgs[0].content = prompt;
		q->msgs[1].role = "user";
		q->msgs[1].content = q->user;
		reqs[r].task = x->p->extract_task;
		reqs[r].messages = q->msgs;
		reqs[r].n_messages = 2;
		reqs[r].schema = schema;
		reqs[r].schema_name = "minutes_extract";
		reqs[r].temperature = 0;
		/* a single-chunk retry gets twice the budget: a batch often
		 * fails because its reply was cut at max_tokens */
		reqs[r].max_tokens = x->p->max_tokens_per_chunk * (long)q->count *
				     (x->phase == 1 ? 2 : 1);
		reqs[r].job_id = x->p->job_id;
		reqs[r].key_id = x->p->key_id;
	}
	memset(&cb, 0, sizeof(cb));
	cb.progress = x_progress;
	cb.item_done = x_item_done;
	cb.cancel = x_cancel;
	cb.user_data = x;
	rc = hark_llm_run(c, reqs, nr, res, &cb);
	if (x->fatal)
		rc = x->fatal;
out:
	if (res)
		for (size_t r = 0; r < nr; r++)
			hark_llm_result_clear(&res[r]);
	free(res);
	free(reqs);
	free_xreqs(x->reqs, x->n_reqs);
	x->reqs = NULL;
	x->n_reqs = 0;
	return rc;
}

int hark_llm_minutes_extract(struct hark_llm *c, const struct hark_llm_chunk_in *chunks, size_t n,
			     const struct hark_llm_minutes_params *p,
			     void (*on_chunk)(size_t index, const char *json, int err,
					      const char *msg, void *ud),
			     void *ud, struct hark_llm_minutes_stats *stats)
{
	struct hark_llm_minutes_params dp = hark_llm_minutes_default_params();
	const char *prompt, *schema;
	struct xctx x;
	size_t *idx = NULL, *retry = NULL, n_retry;
	int rc;

	if (!p)
		p = &dp;
	if (!c || (!chunks && n) || !on_chunk || !params_ok(p) || n > MAX_CHUNKS)
		return HARK_ERR_INVALID_ARG;
	for (size_t i = 0; i < n; i++)
		if (!chunks[i].text)
			return HARK_ERR_INVALID_ARG;
	if (n == 0)
		return HARK_OK;
	rc = hark_prompts_get(P_EXTRACT, &prompt, NULL);
	if (!rc)
		rc = hark_prompts_get(S_EXTRACT, &schema, NULL);
	if (rc)
		return rc;
	memset(&x, 0, sizeof(x));
	x.chunks = chunks;
	x.n = n;
	x.on_chunk = on_chunk;
	x.ud = ud;
	x.p = p;
	x.stats = stats;
	x.reported = calloc(n, 1);
	x.retry = calloc(n, sizeof(size_t));
	idx = calloc(n, sizeof(size_t));
	if (!x.reported || !x.retry || !idx) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	if (stats)
		stats->batches += (n + p->batch_chunks - 1) / p->batch_chunks;
	rc = x_run(c, &x, idx, n, p->batch_chunks, prompt, schema);
	if (rc == HARK_OK && x.n_retry > 0) {
		retry = x.retry;
		n_retry = x.n_retry;
		x.retry = NULL; /* phase 1 reports, never queues */
		x.n_retry = 0;
		x.phase = 1;
		rc = x_run(c, &x, retry, n_retry, 1, prompt, schema);
	}
	if (rc == HARK_ERR_CANCELED || (rc == HARK_OK && p->cancel && p->cancel(p->user_data))) {
		for (size_t i = 0; i < n; i++)
			report(&x, i, NULL, HARK_ERR_CANCELED, "canceled");
		rc = HARK_ERR_CANCELED;
	} else if (rc == HARK_OK) {
		/* every chunk has been reported by now; this is a safety net */
		for (size_t i = 0; i < n; i++)
			report(&x, i, NULL, HARK_ERR_INTERNAL, "no answer for this chunk");
	}
out:
	free(x.reported);
	free(x.retry);
	free(retry);
	free(idx);
	return rc;
}

/* ---------------------------------------------------------- reduce step */

struct entry {
	long chunk;
	char *text;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static void entries_clear(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].text);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

/* Appends (takes text). */
static int entries_push(struct entries *e, long chunk, char *text)
{
	if (!text)
		return HARK_ERR_NOMEM;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		struct entry *nv;

		if (cap > 4000000) {
			free(text);
			return HARK_ERR_LIMIT;
		}
		nv = realloc(e->v, cap * sizeof(*nv));
		if (!nv) {
			free(text);
			return HARK_ERR_NOMEM;
		}
		e->v = nv;
		e->cap = cap;
	}
	e->v[e->n].chunk = chunk;
	e->v[e->n].text = text;
	e->n++;
	return HARK_OK;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->chunk != y->chunk)
		return x->chunk < y->chunk ? -1 : 1;
	return strcmp(x->text, y->text);
}

/* Renders entries[a..b) as the reduce request's user text. */
static char *render(const struct entries *e, size_t a, size_t b, int *err)
{
	struct sbuf s = {0};
	long prev = -1;

	for (size_t i = a; i < b; i++) {
		if (i == a || e->v[i].chunk != prev) {
			char mark[48];

			snprintf(mark, sizeof(mark), "%s[chunk %ld]\n", i > a ? "\n" : "",
				 e->v[i].chunk);
			sb_str(&s, mark);
			prev = e->v[i].chunk;
		}
		sb_chunk_text(&s, e->v[i].text);
		sb_str(&s, "\n");
	}
	if (!s.s && !s.err)
		sb_str(&s, "");
	*err = s.err;
	if (s.err) {
		free(s.s);
		return NULL;
	}
	return s.s;
}

static size_t entry_tokens(const struct entry *en)
{
	return hark_llm_tokens_count(en->text, strlen(en->text)) + 8;
}

/* Chunk index from a reply's chunk ID, or -1 when not a chunk of the
 * meeting. */
static long chunk_id(const char *s, size_t n_chunks)
{
	char *end = NULL;
	long v;

	if (!s || s[0] < '0' || s[0] > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (!end || *end || v < 0 || (size_t)v >= n_chunks)
		return -1;
	return v;
}

struct reduce_ctx {
	struct hark_llm *c;
	const struct hark_llm_minutes_params *p;
	struct hark_llm_minutes_stats *stats;
	const char *prompt, *schema;
	size_t n_chunks;
};

static int r_cancel(void *ud)
{
	const struct reduce_ctx *r = ud;

	return r->p->cancel && r->p->cancel(r->p->user_data);
}

/* Runs one reduce request per group; groups are [starts[g], starts[g+1]).
 * results owned by the caller (ng entries). */
static int run_groups(struct reduce_ctx *r, const struct entries *e, const size_t *starts,
		      size_t ng, struct hark_llm_result *res)
{
	struct hark_llm_request *reqs = calloc(ng, sizeof(*reqs));
	struct hark_llm_msg *msgs = calloc(2 * ng, sizeof(*msgs));
	char **users = calloc(ng, sizeof(char *));
	struct hark_llm_callbacks cb;
	int rc = HARK_OK;

	if (!reqs || !msgs || !users) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t g = 0; g < ng; g++) {
		users[g] = render(e, starts[g], starts[g + 1], &rc);
		if (!users[g])
			goto out;
		msgs[2 * g].role = "system";
		msgs[2 * g].content = r->prompt;
		msgs[2 * g + 1].role = "user";
		msgs[2 * g + 1].content = users[g];
		reqs[g].task = r->p->reduce_task;
		reqs[g].messages = &msgs[2 * g];
		reqs[g].n_messages = 2;
		reqs[g].schema = r->schema;
		reqs[g].schema_name = "minutes_reduce";
		reqs[g].max_tokens = r->p->reduce_max_tokens;
		reqs[g].job_id = r->p->job_id;
		reqs[g].key_id = r->p->key_id;
	}
	memset(&cb, 0, sizeof(cb));
	cb.cancel = r_cancel;
	cb.user_data = r;
	rc = hark_llm_run(r->c, reqs, ng, res, &cb);
	for (size_t g = 0; g < ng && rc == HARK_OK; g++) {
		if (res[g].err == HARK_ERR_LIMIT)
			continue; /* not billed, not counted: the caller re-plans */
		add_result_stats(r->stats, &res[g]);
		if (r->stats)
			r->stats->reduce_requests++;
	}
out:
	if (users)
		for (size_t g = 0; g < ng; g++)
			free(users[g]);
	free(users);
	free(msgs);
	free(reqs);
	return rc;
}

/* Entries for the next level from one partial reduce reply of the group
 * whose first entry is in chunk first_chunk. */
static int partial_entries(const json_t *v, long first_chunk, size_t n_chunks,
			   struct entries *next)
{
	json_t *arr, *it;
	size_t i;
	int rc;
	const char *summary = jstr(v, "summary");

	arr = json_object_get(v, "topics");
	json_array_foreach(arr, i, it) {
		long a = chunk_id(jstr(it, "first_chunk"), n_chunks);
		long b = chunk_id(jstr(it, "last_chunk"), n_chunks);
		char buf[128];
		struct sbuf s = {0};

		if (a < 0 || b < 0)
			continue;
		if (b < a) {
			long t = a;

			a = b;
			b = t;
		}
		sb_str(&s, "Topic: ");
		sb_str(&s, jstr(it, "title"));
		snprintf(buf, sizeof(buf), " (chunks %ld-%ld)", a, b);
		sb_str(&s, buf);
		if (s.err) {
			free(s.s);
			return s.err;
		}
		rc = entries_push(next, a, s.s);
		if (rc)
			return rc;
	}
	if (*summary) {
		struct sbuf s = {0};

		sb_str(&s, "Summary of this part: ");
		sb_str(&s, summary);
		if (s.err) {
			free(s.s);
			return s.err;
		}
		rc = entries_push(next, first_chunk, s.s);
		if (rc)
			return rc;
	}
	return HARK_OK;
}

/*
 * Reduces entries to one reply (*final, a JSON object, new reference) and
 * the model that answered. Hierarchical when a request does not fit: the
 * token budget starts unbounded and halves at each HARK_ERR_LIMIT answer.
 */
static int reduce_all(struct reduce_ctx *r, struct entries *e, json_t **final, char *model,
		      size_t model_len, char *err, size_t errlen)
{
	size_t budget = (size_t)-1, levels = 0, *starts = NULL, ng = 0;
	struct hark_llm_result *res = NULL;
	struct entries next = {0};
	int rc = HARK_OK;

	*final = NULL;
	for (int pass = 0; pass < MAX_REDUCE_PASSES; pass++) {
		size_t total = 0, acc = 0, next_total = 0, min_entry = (size_t)-1;
		int limited = 0;

		for (size_t i = 0; i < e->n; i++) {
			size_t t = entry_tokens(&e->v[i]);

			total += t;
			if (t < min_entry)
				min_entry = t;
		}
		free(starts);
		ng = 0;
		starts = calloc(e->n + 1, sizeof(size_t));
		if (!starts) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		/* groups of at most budget tokens (one entry at least) */
		for (size_t i = 0; i < e->n; i++) {
			size_t t = entry_tokens(&e->v[i]);

			if (i == 0 || (acc + t > budget && acc > 0)) {
				starts[ng++] = i;
				acc = 0;
			}
			acc += t;
		}
		starts[ng] = e->n;
		res = calloc(ng, sizeof(*res));
		if (!res)
			ng = 0;
		if (!res) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		rc = run_groups(r, e, starts, ng, res);
		if (rc)
			goto out;
		for (size_t g = 0; g < ng; g++) {
			if (res[g].err == HARK_ERR_LIMIT) {
				limited = 1;
			} else if (res[g].err) {
				rc = res[g].err;
				hark_errbuf_set(err, errlen, "reduce request failed: %s",
						res[g].error);
				goto out;
			}
		}
		if (limited) {
			size_t largest = 0;

			for (size_t g = 0; g < ng; g++) {
				size_t t = 0;

				for (size_t i = starts[g]; i < starts[g + 1]; i++)
					t += entry_tokens(&e->v[i]);
				if (res[g].err == HARK_ERR_LIMIT && t > largest)
					largest = t;
			}
			budget = largest / 2;
			if (budget < min_entry || budget < 16) {
				rc = HARK_ERR_LIMIT;
				hark_errbuf_set(err, errlen,
						"reduce: the notes of one chunk do not fit the "
						"context window of the reduce route");
				goto out;
			}
			goto again;
		}
		if (ng == 1) {
			*final = json_loads(res[0].content ? res[0].content : "", 0, NULL);
			if (!json_is_object(*final)) {
				json_decref(*final);
				*final = NULL;
				rc = HARK_ERR_FORMAT;
				hark_errbuf_set(err, errlen, "reduce reply is not a JSON object");
				goto out;
			}
			snprintf(model, model_len, "%s", res[0].model);
			levels++;
			goto out;
		}
		/* a level of partial reductions */
		levels++;
		if (levels >= MAX_REDUCE_LEVELS) {
			rc = HARK_ERR_LIMIT;
			hark_errbuf_set(err, errlen, "reduce: too many levels");
			goto out;
		}
		for (size_t g = 0; g < ng; g++) {
			json_t *v = json_loads(res[g].content ? res[g].content : "", 0, NULL);

			if (!json_is_object(v)) {
				json_decref(v);
				rc = HARK_ERR_FORMAT;
				hark_errbuf_set(err, errlen, "reduce reply is not a JSON object");
				goto out;
			}
			rc = partial_entries(v, e->v[starts[g]].chunk, r->n_chunks, &next);
			json_decref(v);
			if (rc)
				goto out;
		}
		qsort(next.v, next.n, sizeof(*next.v), entry_cmp);
		for (size_t i = 0; i < next.n; i++)
			next_total += entry_tokens(&next.v[i]);
		if (next.n == 0 || next_total >= total) {
			rc = HARK_ERR_LIMIT;
			hark_errbuf_set(err, errlen,
					"reduce: partial summaries are not shorter than their notes");
			goto out;
		}
		entries_clear(e);
		*e = next;
		memset(&next, 0, sizeof(next));
	again:
		for (size_t g = 0; g < ng; g++)
			hark_llm_result_clear(&res[g]);
		free(res);
		res = NULL;
	}
	rc = HARK_ERR_LIMIT;
	hark_errbuf_set(err, errlen, "reduce: too many passes");
out:
	if (r->stats && levels > r->stats->reduce_levels)
		r->stats->reduce_levels = levels;
	if (res)
		for (size_t g = 0; g < ng; g++)
			hark_llm_result_clear(&res[g]);
	free(res);
	free(starts);
	entries_clear(&next);
	return rc;
}

/* ------------------------------------------------------------ build step */

struct bctx {
	const char *meeting;
	const struct hark_chunk_turn *turns;
	size_t n_turns;
	const struct hark_chunk_list *chunks;
	char **norm_turns; /* lazily normalised turn texts */
	char **seen;       /* normalised keys of items kept (all kinds, prefixed) */
	size_t n_seen, cap_seen;
};

static const char *nturn(struct bctx *b, size_t t)
{
	if (!b->norm_turns[t])
		b->norm_turns[t] = norm_text(b->turns[t].text ? b->turns[t].text : "");
	return b->norm_turns[t];
}

/* Locates quote in chunk ci: the turn that holds it; else, for a quote
 * that runs over several lines (or includes a speaker label), the turn where
 * it starts in the chunk's "speaker text" lines; else the chunk's first
 * turn (found = 0). Returns HARK_ERR_NOMEM or 0. */
static int locate(struct bctx *b, size_t ci, const char *quote, long *turn, int *found)
{
	const struct hark_chunk *ch = &b->chunks->chunks[ci];
	size_t last = ch->last_turn < b->n_turns ? ch->last_turn : b->n_turns - 1;
	char *nq = norm_text(quote ? quote : "");
	size_t *offs = NULL;
	struct sbuf all = {0};
	int rc = HARK_OK;

	if (!nq)
		return HARK_ERR_NOMEM;
	*turn = ch->first_turn < b->n_turns ? (long)ch->first_turn : -1;
	*found = 0;
	if (!*nq || *turn < 0)
		goto out;
	for (size_t t = ch->first_turn; t <= last; t++) {
		const char *nt = nturn(b, t);

		if (!nt) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		if (norm_contains(nt, nq)) {
			*turn = (long)t;
			*found = 1;
			goto out;
		}
	}
	offs = calloc(last - ch->first_turn + 2, sizeof(size_t));
	if (!offs) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t t = ch->first_turn; t <= last; t++) {
		const char *sp = b->turns[t].speaker;

		offs[t - ch->first_turn] = all.len;
		if (all.len)
			sb_str(&all, " ");
		if (sp && *sp) {
			char *ns = norm_text(sp);

			if (!ns) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			sb_str(&all, ns);
			if (*ns)
				sb_str(&all, " ");
			free(ns);
		}
		sb_str(&all, nturn(b, t));
	}
	if (all.err) {
		rc = all.err == HARK_ERR_NOMEM ? HARK_ERR_NOMEM : HARK_OK;
		goto out;
	}
	{
		const char *at = all.s ? norm_find(all.s, nq) : NULL;

		if (at) {
			size_t pos = (size_t)(at - all.s), t = ch->first_turn;

			while (t < last && offs[t + 1 - ch->first_turn] <= pos)
				t++;
			*turn = (long)t;
			*found = 1;
		}
	}
out:
	free(all.s);
	free(offs);
	free(nq);
	return rc;
}

/* Fills ref from a located turn (strings duplicated). */
static int fill_ref(struct bctx *b, size_t ci, long turn, int found, const char *quote,
		    struct hark_minutes_ref *ref)
{
	const struct hark_chunk *ch = &b->chunks->chunks[ci];

	*ref = hark_minutes_ref_none();
	ref->turn = turn;
	if (found && turn >= 0) {
		const struct hark_chunk_turn *t = &b->turns[turn];

		ref->start_s = t->start_s;
		ref->end_s = t->end_s;
		if (t->speaker && *t->speaker && !(ref->speaker = strdup(t->speaker)))
			return HARK_ERR_NOMEM;
	} else {
		ref->start_s = ch->start_s;
		ref->end_s = ch->end_s;
	}
	if (quote && ref->speaker) {
		/* a quote copied with its line's "Speaker: " label */
		size_t sl = strlen(ref->speaker);

		if (strncmp(quote, ref->speaker, sl) == 0 && quote[sl] == ':') {
			quote += sl + 1;
			while (*quote == ' ')
				quote++;
		}
	}
	if (quote && *quote && !(ref->quote = cut_words(quote, MAX_QUOTE_WORDS)))
		return HARK_ERR_NOMEM;
	return HARK_OK;
}

/* 1 when key (kind-prefixed normalised text) was already kept; else
 * remembers it. -1 on OOM. */
static int seen_before(struct bctx *b, const char *kind, const char *text)
{
	char *nt = norm_text(text), *key;
	size_t kl;

	if (!nt)
		return -1;
	kl = strlen(kind) + 1 + strlen(nt) + 1;
	key = malloc(kl);
	if (!key) {
		free(nt);
		return -1;
	}
	snprintf(key, kl, "%s:%s", kind, nt);
	free(nt);
	for (size_t i = 0; i < b->n_seen; i++)
		if (strcmp(b->seen[i], key) == 0) {
			free(key);
			return 1;
		}
	if (b->n_seen == b->cap_seen) {
		size_t cap = b->cap_seen ? b->cap_seen * 2 : 64;
		char **ns;

		if (cap > 1000000) {
			free(key);
			return -1;
		}
		ns = realloc(b->seen, cap * sizeof(*ns));
		if (!ns) {
			free(key);
			return -1;
		}
		b->seen = ns;
		b->cap_seen = cap;
	}
	b->seen[b->n_seen++] = key;
	return 0;
}

static void resolve_due(const char *due, const struct hark_date *date, char **iso)
{
	struct hark_date_match m[4];
	size_t nm = 0;
	const struct hark_date *md = date && date->year ? date : NULL;

	*iso = NULL;
	if (!due || !*due)
		return;
	if (md && !hark_date_valid(md->year, md->month, md->day))
		md = NULL;
	if (hark_dates_find(due, strlen(due), md, m, 4, &nm) != 0)
		return;
	for (size_t i = 0; i < nm; i++)
		if (m[i].resolved) {
			*iso = strdup(m[i].iso);
			return;
		}
}

/* Adds the items of one kind from chunk ci's slice. */
static int add_items(struct bctx *b, size_t ci, const json_t *arr, const char *kind,
		     const char *text_key, const struct hark_date *date,
		     struct hark_minutes_item **items, size_t *n_items)
{
	json_t *it;
	size_t i;
	int rc = HARK_OK;

	json_array_foreach(arr, i, it) {
		struct hark_minutes_item item;
		const char *text = jstr(it, text_key), *ev = jstr(it, "evidence");
		long turn;
		int found, dup;

		if (!*text)
			continue;
		dup = seen_before(b, kind, text);
		if (dup < 0)
			return HARK_ERR_NOMEM;
		if (dup)
			continue;
		memset(&item, 0, sizeof(item));
		rc = locate(b, ci, ev, &turn, &found);
		if (rc)
			return rc;
		rc = fill_ref(b, ci, turn, found, ev, &item.ref);
		item.text = (char *)text;
		item.source = (char *)"llm";
		item.confidence = found ? 0.8 : 0.6;
		if (!rc && strcmp(kind, "action") == 0) {
			const char *owner = jstr(it, "owner"), *due = jstr(it, "due");

			item.owner = *owner ? (char *)owner : NULL;
			item.due = *due ? (char *)due : NULL;
			resolve_due(due, date, &item.due_iso);
		}
		if (!rc)
			rc = hark_minutes_item_push(items, n_items, &item);
		/* only the ref and due_iso are ours; the rest is borrowed */
		hark_minutes_ref_clear(&item.ref);
		free(item.due_iso);
		if (rc)
			return rc;
	}
	return HARK_OK;
}

struct named {
	const char *name;
	size_t index;
};

/* Adds chunk ci's entities and relations to g. */
static int add_graph(struct bctx *b, size_t ci, const json_t *slice, struct hark_graph *g)
{
	json_t *ents = json_object_get(slice, "entities"), *rels = json_object_get(slice, "relations");
	json_t *it;
	size_t i, nn = 0;
	struct named *names = NULL;
	int rc = HARK_OK;

	names = calloc(json_array_size(ents) + 2 * json_array_size(rels) + 1, sizeof(*names));
	if (!names)
		return HARK_ERR_NOMEM;
	json_array_foreach(ents, i, it) {
		struct hark_graph_mention m;
		const char *name = jstr(it, "name"), *ev = jstr(it, "evidence");
		long turn;
		int found;
		size_t idx;

		if (!*name)
			continue;
		rc = locate(b, ci, ev, &turn, &found);
		if (rc)
			goto out;
		memset(&m, 0, sizeof(m));
		m.meeting = (char *)b->meeting;
		m.quote = *ev ? (char *)ev : NULL;
		m.chunk = (long)ci;
		m.turn = turn;
		m.start_s = found && turn >= 0 ? b->turns[turn].start_s
					       : b->chunks->chunks[ci].start_s;
		rc = hark_graph_add_entity(g, name, jstr(it, "type"), &m, &idx);
		if (rc == HARK_ERR_INVALID_ARG) {
			rc = HARK_OK;
			continue;
		}
		if (rc)
			goto out;
		names[nn].name = name;
		names[nn].index = idx;
		nn++;
	}
	json_array_foreach(rels, i, it) {
		struct hark_graph_mention m;
		const char *ends[2] = {jstr(it, "source"), jstr(it, "target")};
		const char *ev = jstr(it, "evidence"), *type = jstr(it, "type");
		size_t idx[2];
		long turn;
		int found;

		if (!*ends[0] || !*ends[1] || !*type)
			continue;
		rc = locate(b, ci, ev, &turn, &found);
		if (rc)
			goto out;
		memset(&m, 0, sizeof(m));
		m.meeting = (char *)b->meeting;
		m.quote = *ev ? (char *)ev : NULL;
		m.chunk = (long)ci;
		m.turn = turn;
		m.start_s = found && turn >= 0 ? b->turns[turn].start_s
					       : b->chunks->chunks[ci].start_s;
		for (int e = 0; e < 2; e++) {
			size_t k;

			for (k = 0; k < nn; k++)
				if (strcasecmp(names[k].name, ends[e]) == 0)
					break;
			if (k < nn) {
				idx[e] = names[k].index;
				continue;
			}
			/* an endpoint missing from the entity list: a concept */
			rc = hark_graph_add_entity(g, ends[e], "concept", &m, &idx[e]);
			if (rc)
				goto out;
			names[nn].name = ends[e];
			names[nn].index = idx[e];
			nn++;
		}
		if (idx[0] == idx[1])
			continue;
		rc = hark_graph_add_relation(g, idx[0], idx[1], type, &m);
		if (rc == HARK_ERR_INVALID_ARG)
			rc = HARK_OK;
		if (rc)
			goto out;
	}
out:
	free(names);
	return rc;
}

static int copy_ref(struct hark_minutes_ref *d, const struct hark_minutes_ref *s)
{
	*d = *s;
	d->speaker = NULL;
	d->quote = NULL;
	if (s->speaker && !(d->speaker = strdup(s->speaker)))
		return HARK_ERR_NOMEM;
	if (s->quote && !(d->quote = strdup(s->quote)))
		return HARK_ERR_NOMEM;
	return HARK_OK;
}

/* Offline summary, points and topics into out. */
static int copy_offline_summary(struct hark_minutes *out, const struct hark_minutes *off)
{
	if (!(out->summary = strdup(off->summary ? off->summary : "")))
		return HARK_ERR_NOMEM;
	if (off->n_points) {
		out->points = calloc(off->n_points, sizeof(*out->points));
		if (!out->points)
			return HARK_ERR_NOMEM;
		for (size_t i = 0; i < off->n_points; i++) {
			out->n_points++;
			if (!(out->points[i].text = strdup(off->points[i].text ? off->points[i].text
									      : "")) ||
			    copy_ref(&out->points[i].ref, &off->points[i].ref))
				return HARK_ERR_NOMEM;
		}
	}
	if (off->n_topics) {
		out->topics = calloc(off->n_topics, sizeof(*out->topics));
		if (!out->topics)
			return HARK_ERR_NOMEM;
		for (size_t i = 0; i < off->n_topics; i++) {
			const struct hark_minutes_topic *s = &off->topics[i];
			struct hark_minutes_topic *d = &out->topics[i];

			out->n_topics++;
			if (!(d->title = strdup(s->title ? s->title : "")) ||
			    (s->summary && !(d->summary = strdup(s->summary))) ||
			    copy_ref(&d->ref, &s->ref))
				return HARK_ERR_NOMEM;
			if (s->n_keywords) {
				d->keywords = calloc(s->n_keywords, sizeof(char *));
				if (!d->keywords)
					return HARK_ERR_NOMEM;
				for (size_t k = 0; k < s->n_keywords; k++) {
					d->n_keywords++;
					if (!(d->keywords[k] = strdup(s->keywords[k])))
						return HARK_ERR_NOMEM;
				}
			}
		}
	}
	return HARK_OK;
}

static int copy_offline_meta(struct hark_minutes *out, const struct hark_minutes *off)
{
	out->duration_s = off->duration_s;
	if (off->date && !(out->date = strdup(off->date)))
		return HARK_ERR_NOMEM;
	if (off->n_participants) {
		out->participants = calloc(off->n_participants, sizeof(*out->participants));
		if (!out->participants)
			return HARK_ERR_NOMEM;
		for (size_t i = 0; i < off->n_participants; i++) {
			out->participants[i] = off->participants[i];
			out->participants[i].name = NULL;
			out->n_participants++;
			if (!(out->participants[i].name = strdup(off->participants[i].name
									? off->participants[i].name
									: "")))
				return HARK_ERR_NOMEM;
		}
	}
	return HARK_OK;
}

/* Chunk-range ref of a topic or point. */
static void range_ref(const struct hark_chunk_list *cl, long a, long b,
		      struct hark_minutes_ref *ref)
{
	*ref = hark_minutes_ref_none();
	ref->start_s = cl->chunks[a].start_s;
	ref->end_s = cl->chunks[b].end_s;
	ref->turn = (long)cl->chunks[a].first_turn;
	ref->last_turn = (long)cl->chunks[b].last_turn;
}

static int topic_cmp(const void *x, const void *y)
{
	const struct hark_minutes_topic *a = x, *b = y;

	if (a->ref.turn != b->ref.turn)
		return a->ref.turn < b->ref.turn ? -1 : 1;
	return 0;
}

/* Summary, points and topics from the final reduce reply. */
static int fill_from_reduce(struct hark_minutes *out, const json_t *v,
			    const struct hark_chunk_list *cl)
{
	json_t *arr, *it;
	size_t i;

	if (!(out->summary = strdup(jstr(v, "summary"))))
		return HARK_ERR_NOMEM;
	arr = json_object_get(v, "key_points");
	if (json_array_size(arr)) {
		out->points = calloc(json_array_size(arr), sizeof(*out->points));
		if (!out->points)
			return HARK_ERR_NOMEM;
	}
	json_array_foreach(arr, i, it) {
		long a = chunk_id(jstr(it, "chunk"), cl->n);
		struct hark_minutes_point *pt = &out->points[out->n_points];

		if (!*jstr(it, "point"))
			continue;
		if (!(pt->text = strdup(jstr(it, "point"))))
			return HARK_ERR_NOMEM;
		if (a >= 0) {
			range_ref(cl, a, a, &pt->ref);
			pt->ref.last_turn = -1;
		} else {
			pt->ref = hark_minutes_ref_none();
		}
		out->n_points++;
	}
	arr = json_object_get(v, "topics");
	if (json_array_size(arr)) {
		out->topics = calloc(json_array_size(arr), sizeof(*out->topics));
		if (!out->topics)
			return HARK_ERR_NOMEM;
	}
	json_array_foreach(arr, i, it) {
		long a = chunk_id(jstr(it, "first_chunk"), cl->n);
		long b = chunk_id(jstr(it, "last_chunk"), cl->n);
		struct hark_minutes_topic *t = &out->topics[out->n_topics];
		json_t *kw = json_object_get(it, "keywords"), *k;
		size_t j;

		if (a < 0 || b < 0 || !*jstr(it, "title"))
			continue;
		if (b < a) {
			long x = a;

			a = b;
			b = x;
		}
		out->n_topics++;
		range_ref(cl, a, b, &t->ref);
		if (!(t->title = strdup(jstr(it, "title"))))
			return HARK_ERR_NOMEM;
		if (*jstr(it, "summary") && !(t->summary = strdup(jstr(it, "summary"))))
			return HARK_ERR_NOMEM;
		if (json_array_size(kw)) {
			t->keywords = calloc(json_array_size(kw), sizeof(char *));
			if (!t->keywords)
				return HARK_ERR_NOMEM;
		}
		json_array_foreach(kw, j, k) {
			if (!json_string_value(k) || !*json_string_value(k))
				continue;
			if (!(t->keywords[t->n_keywords] = strdup(json_string_value(k))))
				return HARK_ERR_NOMEM;
			t->n_keywords++;
		}
	}
	if (out->n_topics > 1)
		qsort(out->topics, out->n_topics, sizeof(*out->topics), topic_cmp);
	return HARK_OK;
}

int hark_llm_minutes_build(struct hark_llm *c, const char *meeting,
			   const struct hark_chunk_turn *turns, size_t n_turns,
			   const struct hark_chunk_list *chunks, const char *const *chunk_json,
			   const struct hark_date *date, const struct hark_minutes *offline,
			   const struct hark_llm_minutes_params *p, struct hark_minutes *out,
			   struct hark_graph *graph, struct hark_llm_minutes_stats *stats,
			   char *err, size_t errlen)
{
	struct hark_llm_minutes_params dp = hark_llm_minutes_default_params();
	struct bctx b;
	struct entries notes = {0};
	struct reduce_ctx rctx;
	json_t **slices = NULL, *final = NULL;
	char model[160] = "", rerr[256] = "";
	int rc = HARK_OK, rrc;

	if (err && errlen)
		err[0] = 0;
	if (!p)
		p = &dp;
	if (!c || !meeting || (!turns && n_turns) || !chunks || (!chunk_json && chunks->n) ||
	    !offline || !out || !params_ok(p))
		return HARK_ERR_INVALID_ARG;
	for (size_t i = 0; i < chunks->n; i++)
		if (chunks->chunks[i].first_turn > chunks->chunks[i].last_turn ||
		    chunks->chunks[i].last_turn >= n_turns)
			return HARK_ERR_INVALID_ARG;
	memset(out, 0, sizeof(*out));
	memset(&b, 0, sizeof(b));
	b.meeting = meeting;
	b.turns = turns;
	b.n_turns = n_turns;
	b.chunks = chunks;
	b.norm_turns = calloc(n_turns + 1, sizeof(char *));
	slices = calloc(chunks->n + 1, sizeof(json_t *));
	if (!b.norm_turns || !slices) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < chunks->n; i++) {
		json_error_t je;

		if (!chunk_json[i])
			continue;
		if (strlen(chunk_json[i]) > HARK_LLM_MINUTES_MAX_SLICE) {
			rc = HARK_ERR_LIMIT;
			hark_errbuf_set(err, errlen, "chunk %zu: slice too large", i);
			goto out;
		}
		slices[i] = json_loads(chunk_json[i], 0, &je);
		if (!json_is_object(slices[i])) {
			rc = HARK_ERR_FORMAT;
			hark_errbuf_set(err, errlen, "chunk %zu: slice is not a JSON object: %s", i,
					slices[i] ? "wrong type" : je.text);
			goto out;
		}
	}
	if (!(out->meeting = strdup(meeting)) || !(out->method = strdup("llm"))) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = copy_offline_meta(out, offline);
	if (rc)
		goto out;
	out->turns = n_turns;
	out->chunks = chunks->n;

	/* items, graph and notes, chunk by chunk */
	for (size_t i = 0; i < chunks->n; i++) {
		json_t *it, *s = slices[i];
		size_t j;
		struct sbuf nb = {0};

		if (!s)
			continue;
		rc = add_items(&b, i, json_object_get(s, "decisions"), "decision", "decision", date,
			       &out->decisions, &out->n_decisions);
		if (!rc)
			rc = add_items(&b, i, json_object_get(s, "action_items"), "action", "task",
				       date, &out->actions, &out->n_actions);
		if (!rc)
			rc = add_items(&b, i, json_object_get(s, "open_questions"), "question",
				       "question", date, &out->questions, &out->n_questions);
		if (!rc && graph)
			rc = add_graph(&b, i, s, graph);
		if (rc)
			goto out;
		json_array_foreach(json_object_get(s, "notes"), j, it) {
			const char *pt = jstr(it, "text");

			if (!*pt)
				continue;
			sb_str(&nb, "- ");
			sb_str(&nb, pt);
			sb_str(&nb, "\n");
		}
		if (nb.err) {
			free(nb.s);
			rc = nb.err;
			goto out;
		}
		if (nb.s) {
			nb.s[--nb.len] = 0; /* the last newline */
			rc = entries_push(&notes, (long)i, nb.s);
			if (rc)
				goto out;
		}
	}

	/* summary, points and topics */
	if (notes.n == 0) {
		rrc = HARK_ERR_EMPTY;
		hark_errbuf_set(rerr, sizeof(rerr), "no notes to summarise");
	} else {
		memset(&rctx, 0, sizeof(rctx));
		rctx.c = c;
		rctx.p = p;
		rctx.stats = stats;
		rctx.n_chunks = chunks->n;
		rrc = hark_prompts_get(P_REDUCE, &rctx.prompt, NULL);
		if (!rrc)
			rrc = hark_prompts_get(S_REDUCE, &rctx.schema, NULL);
		if (rrc)
			hark_errbuf_set(rerr, sizeof(rerr), "reduce prompt: %s",
					hark_strerror(rrc));
		else
			rrc = reduce_all(&rctx, &notes, &final, model, sizeof(model), rerr,
					 sizeof(rerr));
	}
	if (rrc == HARK_ERR_CANCELED || rrc == HARK_ERR_NOMEM) {
		rc = rrc;
		goto out;
	}
	if (rrc == HARK_OK) {
		rc = fill_from_reduce(out, final, chunks);
		if (rc)
			goto out;
		if (out->n_topics == 0 && offline->n_topics) {
			/* no usable topic: keep the offline segmentation */
			char *keep_summary = out->summary;
			struct hark_minutes_point *keep_points = out->points;
			size_t keep_np = out->n_points;

			free(out->topics);
			out->topics = NULL;
			out->summary = NULL;
			out->points = NULL;
			out->n_points = 0;
			rc = copy_offline_summary(out, offline);
			/* keep the LLM's summary and points */
			for (size_t i = 0; i < out->n_points; i++) {
				free(out->points[i].text);
				hark_minutes_ref_clear(&out->points[i].ref);
			}
			free(out->points);
			free(out->summary);
			out->summary = keep_summary;
			out->points = keep_points;
			out->n_points = keep_np;
			if (rc)
				goto out;
		}
		if (model[0] && !(out->model = strdup(model))) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
	} else {
		hark_errbuf_set(err, errlen, "summary from the offline analyzer: %s", rerr);
		rc = copy_offline_summary(out, offline);
		if (rc)
			goto out;
	}
out:
	if (rc)
		hark_minutes_clear(out);
	if (rc && err && errlen && !err[0])
		hark_errbuf_set(err, errlen, "%s", hark_strerror(rc));
	if (slices)
		for (size_t i = 0; i < chunks->n; i++)
			json_decref(slices[i]);
	free(slices);
	if (b.norm_turns)
		for (size_t i = 0; i < n_turns; i++)
			free(b.norm_turns[i]);
	free(b.norm_turns);
	for (size_t i = 0; i < b.n_seen; i++)
		free(b.seen[i]);
	free(b.seen);
	entries_clear(&notes);
	json_decref(final);
	return rc;
}
