/*
 * LLM layer benchmark: the knowledge-graph extraction workload against a
 * provider (normally hark-llm-sim, driven by bench/bench_llm.sh).
 *
 * Corpus ("seed002" for --seed 2): every speaker turn of every shared meeting
 * ($HARK_SHARED/meetings/qmsum/<id>.json, then ami/<id>.transcript.txt, in
 * name order) is pooled; each of --transcripts synthetic transcripts is built from
 * a seeded random sequence of runs of consecutive pool turns, then trimmed
 * (a turn removed where one would jump past the target) so that chunking it
 * (analyze/chunk.h defaults: 1200 tokens, 100 overlap) gives exactly its
 * share of --chunks chunks (the first chunks % transcripts transcripts get
 * one more). Deterministic for a given seed and shared corpus.
 *
 * Workload: per transcript, its chunks in batches of --batch B; one request
 * per batch (task "extract"): system = share/prompts/graph_extract.md, user =
 * the B chunks each after a line "[chunk <transcript>:<index>]", response
 * schema share/schemas/graph_extract.json, max_tokens = B x --out-per-chunk.
 * All requests go through one hark_llm_run (the layer does concurrency,
 * rate limits, retries, caching). --sequential caps every model at one
 * request in flight (the baseline); --sample N submits only the first N
 * requests and extrapolates the time to all of them; --rerun labels a second
 * run against the same store, which must be answered from the cache.
 *
 * Report (human block + one "RESULT k=v ..." line): calls; prompt and
 * completion tokens from the results and from the simulator's /_sim/stats
 * (deltas over the run; they must agree); simulated elapsed time (provider
 * seconds = real seconds x time_scale); the rate-limit bound
 * max(calls / RPM, counted tokens / TPM) in minutes with calls and counted
 * tokens (prompt + max_tokens) from the simulator's request log; time/bound;
 * 429s; cost at the config's prices.
 *
 *   bench_llm --config LLM.json --store DIR [--batch 10] [--sequential]
 *             [--rerun] [--sample N] [--seed 2] [--transcripts 150]
 *             [--chunks 8834] [--out-per-chunk 320] [--share DIR]
 *             [--shared DIR] [--sim-url http://127.0.0.1:PORT]
 *             [--sim-log FILE] [--corpus-only] [--write-corpus DIR]
 *
 * --write-corpus DIR writes each synthetic transcript as DIR/<name>.txt
 * ("Speaker: text" lines) for the meeting-analysis benchmark.
 */
#include <curl/curl.h>
#include <glob.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analyze/chunk.h"
#include "analyze/meeting_text.h"
#include "hark/hark.h"
#include "llm/config.h"
#include "llm/llm.h"
#include "llm/tokens.h"
#include "store/store.h"

#define MAX_FILE_BYTES ((size_t)4 << 20)
#define MAX_STATS_BYTES ((size_t)1 << 20)
#define MAX_BUILD_STEPS 100000

struct opts {
	const char *config, *store, *share, *shared, *sim_url, *sim_log;
	int batch, sequential, rerun, corpus_only;
	const char *write_corpus;
	long sample;
	uint64_t seed;
	size_t transcripts, chunks;
	long out_per_chunk;
};

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static double real_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(MAX_FILE_BYTES + 1);
	if (buf) {
		n = fread(buf, 1, MAX_FILE_BYTES, f);
		buf[n] = '\0';
		if (len_out)
			*len_out = n;
	}
	fclose(f);
	return buf;
}

/* ------------------------------------------------------------- corpus ---- */

struct pool {
	struct hark_meeting_text *meetings;
	size_t n_meetings;
	struct hark_chunk_turn *turns; /* borrowed strings from meetings */
	size_t n;
};

static int pool_load(struct pool *p, const char *shared)
{
	glob_t g;
	char pat[4096], err[256];
	int rc = 0;

	memset(p, 0, sizeof(*p));
	memset(&g, 0, sizeof(g));
	if (snprintf(pat, sizeof(pat), "%s/meetings/qmsum/*.json", shared) < (int)sizeof(pat))
		glob(pat, 0, NULL, &g);
	if (snprintf(pat, sizeof(pat), "%s/meetings/ami/*.transcript.txt", shared) <
	    (int)sizeof(pat))
		glob(pat, GLOB_APPEND, NULL, &g);
	if (g.gl_pathc == 0) {
		fprintf(stderr, "bench_llm: no meetings under %s/meetings\n", shared);
		globfree(&g);
		return 1;
	}
	p->meetings = calloc(g.gl_pathc, sizeof(*p->meetings));
	if (!p->meetings) {
		globfree(&g);
		return 1;
	}
	for (size_t i = 0; i < g.gl_pathc; i++) {
		if (hark_meeting_text_read(g.gl_pathv[i], NULL, &p->meetings[i], err,
					   sizeof(err))) {
			fprintf(stderr, "bench_llm: %s\n", err);
			rc = 1;
			break;
		}
		p->n_meetings++;
		p->n += p->meetings[i].n_turns;
	}
	globfree(&g);
	if (rc)
		return rc;
	p->turns = calloc(p->n, sizeof(*p->turns));
	if (!p->turns)
		return 1;
	p->n = 0;
	for (size_t i = 0; i < p->n_meetings; i++)
		for (size_t k = 0; k < p->meetings[i].n_turns; k++) {
			struct hark_chunk_turn *t = &p->turns[p->n++];

			t->speaker = p->meetings[i].turns[k].speaker;
			t->text = p->meetings[i].turns[k].text;
			t->start_s = -1;
			t->end_s = -1;
		}
	return 0;
}

static void pool_free(struct pool *p)
{
	for (size_t i = 0; i < p->n_meetings; i++)
		hark_meeting_text_clear(&p->meetings[i]);
	free(p->meetings);
	free(p->turns);
	memset(p, 0, sizeof(*p));
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A synthetic transcript: pool turn indices and, once built, its chunks. */
struct transcript {
	char name[32];
	size_t *idx;
	size_t n, cap;
	struct hark_chunk_list chunks;
};

/* Chunks the first k turns of tr into *out. */
static int chunk_prefix(const struct pool *p, const struct transcript *tr, size_t k,
			struct hark_chunk_turn *scratch, struct hark_chunk_list *out)
{
	struct hark_chunk_params cp = hark_chunk_default_params();
	char err[256];
	int rc;

	for (size_t i = 0; i < k; i++)
		scratch[i] = p->turns[tr->idx[i]];
	rc = hark_chunk_split(scratch, k, &cp, out, err, sizeof(err));
	if (rc)
		fprintf(stderr, "bench_llm: chunking %s: %s\n", tr->name, err);
	return rc;
}

static long count_prefix(const struct pool *p, const struct transcript *tr, size_t k,
			 struct hark_chunk_turn *scratch)
{
	struct hark_chunk_list l;
	long n;

	if (k == 0)
		return 0;
	if (chunk_prefix(p, tr, k, scratch, &l))
		return -1;
	n = (long)l.n;
	hark_chunk_list_clear(&l);
	return n;
}

static int push_idx(struct transcript *tr, size_t v)
{
	if (tr->n == tr->cap) {
		size_t nc = tr->cap ? tr->cap * 2 : 1024;
		size_t *x = realloc(tr->idx, nc * sizeof(*x));

		if (!x)
			return 1;
		tr->idx = x;
		tr->cap = nc;
	}
	tr->idx[tr->n++] = v;
	return 0;
}

/*
 * Builds transcript number t with exactly target chunks: appends seeded runs
 * of consecutive pool turns until chunking gives more than target, then
 * keeps the longest prefix with at most target; when that prefix gives
 * fewer (the next turn alone adds several chunks), that turn is removed and
 * the search goes on.
 */
static int build_transcript(const struct pool *p, uint64_t seed, size_t t, size_t target,
			    struct transcript *tr, struct hark_chunk_turn **scratch,
			    size_t *scratch_cap)
{
	uint64_t rng = seed * 0x100000001B3ull + t * 0x9E3779B97F4A7C15ull + 1;
	size_t est = 0, lo = 0, steps = 0, want;
	const size_t per_chunk = 1000; /* a little under the new tokens per chunk */

	want = target * per_chunk;
	for (;;) {
		long c_hi;
		size_t hi;

		if (++steps > MAX_BUILD_STEPS) {
			fprintf(stderr, "bench_llm: %s: cannot reach %zu chunks\n", tr->name, target);
			return 1;
		}
		/* grow until the estimate passes the target, then until it really does */
		for (;;) {
			size_t start = (size_t)(splitmix(&rng) % p->n);
			size_t len = 1 + (size_t)(splitmix(&rng) % 40);

			for (size_t j = 0; j < len && start + j < p->n; j++) {
				const struct hark_chunk_turn *pt = &p->turns[start + j];

				if (push_idx(tr, start + j))
					return 1;
				if (!hark_chunk_is_low_value(pt->text))
					est += hark_llm_tokens_count(pt->text, strlen(pt->text)) + 3;
			}
			if (tr->n > *scratch_cap) {
				size_t nc = tr->cap;
				struct hark_chunk_turn *s = realloc(*scratch, nc * sizeof(*s));

				if (!s)
					return 1;
				*scratch = s;
				*scratch_cap = nc;
			}
			if (est < want)
				continue;
			c_hi = count_prefix(p, tr, tr->n, *scratch);
			if (c_hi < 0)
				return 1;
			if ((size_t)c_hi > target)
				break;
			lo = tr->n; /* count(lo) <= target */
			want = est + (target - (size_t)c_hi) * per_chunk;
		}
		/* largest k in [lo, n) with count(k) <= target */
		hi = tr->n;
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;
			long c = count_prefix(p, tr, mid, *scratch);

			if (c < 0)
				return 1;
			if ((size_t)c <= target)
				lo = mid;
			else
				hi = mid;
		}
		if ((size_t)count_prefix(p, tr, lo, *scratch) == target) {
			tr->n = lo;
			return chunk_prefix(p, tr, tr->n, *scratch, &tr->chunks);
		}
		/* turn lo jumps past the target: drop it, keep the rest */
		memmove(tr->idx + lo, tr->idx + lo + 1, (tr->n - lo - 1) * sizeof(tr->idx[0]));
		tr->n--;
		est = 0;
		for (size_t i = 0; i < tr->n; i++) {
			const char *tx = p->turns[tr->idx[i]].text;

			if (!hark_chunk_is_low_value(tx))
				est += hark_llm_tokens_count(tx, strlen(tx)) + 3;
		}
		if (lo > tr->n)
			lo = tr->n;
		want = est;
	}
}

/* ---------------------------------------------------------- simulator ---- */

struct membuf {
	char *p;
	size_t n;
};

static size_t on_body(char *d, size_t sz, size_t nm, void *u)
{
	struct membuf *b = u;
	size_t n = sz * nm;
	char *x;

	if (b->n + n > MAX_STATS_BYTES)
		return 0;
	x = realloc(b->p, b->n + n + 1);
	if (!x)
		return 0;
	memcpy(x + b->n, d, n);
	b->p = x;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

struct sim_stats {
	int ok;
	int64_t requests, rate_limited, prompt_tokens, completion_tokens;
};

static void sim_stats_get(const char *base, struct sim_stats *s)
{
	char url[1024];
	struct membuf b = {0};
	CURL *h;
	json_t *j;

	memset(s, 0, sizeof(*s));
	if (!base)
		return;
	snprintf(url, sizeof(url), "%s/_sim/stats", base);
	h = curl_easy_init();
	if (!h)
		return;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) == CURLE_OK && b.p && (j = json_loads(b.p, 0, NULL)) != NULL) {
		json_t *u = json_object_get(j, "usage");

		s->requests = json_integer_value(json_object_get(j, "requests"));
		s->rate_limited = json_integer_value(json_object_get(j, "rate_limited"));
		s->prompt_tokens = json_integer_value(json_object_get(u, "prompt_tokens"));
		s->completion_tokens = json_integer_value(json_object_get(u, "completion_tokens"));
		s->ok = 1;
		json_decref(j);
	}
	curl_easy_cleanup(h);
	free(b.p);
}

struct log_sums {
	int ok;
	int64_t admitted, rate_limited, counted_tokens, prompt_tokens, completion_tokens;
	int64_t faults; /* admitted requests answered with something other than 200 */
};

static long file_size(const char *path)
{
	struct stat st;

	return (path && stat(path, &st) == 0) ? (long)st.st_size : 0;
}

/* Sums the chat requests the simulator logged after byte offset from. */
static void log_sums_read(const char *path, long from, struct log_sums *s)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;

	memset(s, 0, sizeof(*s));
	if (!path || !(f = fopen(path, "r")))
		return;
	if (fseek(f, from, SEEK_SET) == 0) {
		s->ok = 1;
		while (getline(&line, &cap, f) > 0) {
			json_t *j = json_loads(line, 0, NULL);
			const char *path_s;
			json_int_t status;

			if (!j)
				continue;
			path_s = json_string_value(json_object_get(j, "path"));
			status = json_integer_value(json_object_get(j, "status"));
			if (path_s && strstr(path_s, "chat/completions")) {
				if (status == 429) {
					s->rate_limited++;
				} else {
					s->admitted++;
					s->counted_tokens +=
						json_integer_value(json_object_get(j, "counted_tokens"));
					s->prompt_tokens +=
						json_integer_value(json_object_get(j, "prompt_tokens"));
					s->completion_tokens +=
						json_integer_value(json_object_get(j, "completion_tokens"));
					if (status != 200)
						s->faults++;
				}
			}
			json_decref(j);
		}
	}
	free(line);
	fclose(f);
}

/* ------------------------------------------------------------ the run ---- */

static void on_progress(size_t done, size_t total, void *u)
{
	size_t *last = u;

	if (!isatty(2))
		return;
	if (done == total || done * 20 / total != *last * 20 / total) {
		fprintf(stderr, "\rbench_llm: %zu/%zu calls done", done, total);
		if (done == total)
			fputc('\n', stderr);
	}
	*last = done;
}

static int on_cancel(void *u)
{
	(void)u;
	return g_stop != 0;
}

/* Checks one reply: valid JSON object, every item names a chunk of its batch. */
static void check_reply(const char *content, const struct hark_llm_request *req, size_t *ents,
			size_t *rels, size_t *bad)
{
	json_t *j = content ? json_loads(content, 0, NULL) : NULL;
	static const char *const keys[] = {"entities", "relations"};

	if (!j) {
		(*bad)++;
		return;
	}
	for (int k = 0; k < 2; k++) {
		json_t *arr = json_object_get(j, keys[k]), *it;
		size_t i;

		json_array_foreach(arr, i, it) {
			const char *ch = json_string_value(json_object_get(it, "chunk"));
			char marker[96];

			snprintf(marker, sizeof(marker), "[chunk %s]\n", ch ? ch : "");
			if (!ch || !strstr(req->messages[1].content, marker))
				(*bad)++;
			if (k == 0)
				(*ents)++;
			else
				(*rels)++;
		}
	}
	json_decref(j);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_llm --config LLM.json --store DIR [--batch B] [--sequential] "
		"[--rerun] [--sample N]\n"
		"                 [--seed S] [--transcripts N] [--chunks N] [--out-per-chunk T]\n"
		"                 [--share DIR] [--shared DIR] [--sim-url URL] [--sim-log FILE] "
		"[--corpus-only]\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->batch = 10;
	o->seed = 2;
	o->transcripts = 150;
	o->chunks = 8834;
	o->out_per_chunk = 320;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int used = 1;

		if (!strcmp(a, "--sequential"))
			o->sequential = 1, used = 0;
		else if (!strcmp(a, "--rerun"))
			o->rerun = 1, used = 0;
		else if (!strcmp(a, "--corpus-only"))
			o->corpus_only = 1, used = 0;
		else if (!v)
			return 1;
		else if (!strcmp(a, "--write-corpus"))
			o->write_corpus = v;
		else if (!strcmp(a, "--config"))
			o->config = v;
		else if (!strcmp(a, "--store"))
			o->store = v;
		else if (!strcmp(a, "--share"))
			o->share = v;
		else if (!strcmp(a, "--shared"))
			o->shared = v;
		else if (!strcmp(a, "--sim-url"))
			o->sim_url = v;
		else if (!strcmp(a, "--sim-log"))
			o->sim_log = v;
		else if (!strcmp(a, "--batch"))
			o->batch = atoi(v);
		else if (!strcmp(a, "--sample"))
			o->sample = atol(v);
		else if (!strcmp(a, "--seed"))
			o->seed = strtoull(v, NULL, 10);
		else if (!strcmp(a, "--transcripts"))
			o->transcripts = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--chunks"))
			o->chunks = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--out-per-chunk"))
			o->out_per_chunk = atol(v);
		else
			return 1;
		i += used;
	}
	if (o->batch < 1 || o->batch > 200 || o->transcripts < 1 || o->out_per_chunk < 1 ||
	    o->chunks < o->transcripts || o->sample < 0)
		return 1;
	if (!o->corpus_only && (!o->config || !o->store))
		return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct pool pool = {NULL, 0, NULL, 0};
	struct transcript *trs = NULL;
	struct hark_chunk_turn *scratch = NULL;
	size_t scratch_cap = 0, total_chunks = 0, n_req = 0, n_submit;
	char corpus[32], path[4096], err[512];
	char *prompt = NULL, *schema = NULL;
	char **users = NULL;
	long *req_chunks = NULL;
	struct hark_llm_msg *msgs = NULL;
	struct hark_llm_request *reqs = NULL;
	struct hark_llm_result *res = NULL;
	struct hark_llm_config *cfg = NULL;
	struct hark_store *store = NULL;
	struct hark_llm *llm = NULL;
	const struct hark_llm_model *model;
	const struct hark_llm_route *route;
	struct hark_llm_params lp;
	struct hark_store_params sp;
	struct hark_llm_callbacks cb;
	struct hark_llm_totals tot;
	struct sim_stats s0, s1;
	struct log_sums ls;
	long log_from;
	size_t last = 0, ok = 0, failed = 0, cached = 0, ents = 0, rels = 0, bad = 0;
	int64_t tin = 0, tout = 0, attempts = 0, repairs = 0;
	int64_t d_req, d_pin, d_pout, d_429;
	double cost = 0, t0, t1, r0, r1, elapsed_s, bound_min, calls_min, tok_min, extrap = 1;
	double corpus_s;
	int rc = 1, run_rc;
	const char *src = getenv("HARK_SOURCE_DIR"), *shared;
	char share_buf[4096], shared_buf[4096];

	if (parse_args(argc, argv, &o)) {
		usage();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	snprintf(corpus, sizeof(corpus), "seed%03llu", (unsigned long long)o.seed);
	if (!o.share) {
		snprintf(share_buf, sizeof(share_buf), "%s/share", src ? src : ".");
		o.share = share_buf;
	}
	shared = o.shared ? o.shared : getenv("HARK_SHARED");
	if (!shared || !*shared) {
		snprintf(shared_buf, sizeof(shared_buf), "%s/../shared", src ? src : ".");
		shared = shared_buf;
	}

	/* ---- corpus */
	r0 = real_now();
	if (pool_load(&pool, shared))
		goto out;
	trs = calloc(o.transcripts, sizeof(*trs));
	if (!trs)
		goto out;
	for (size_t t = 0; t < o.transcripts; t++) {
		size_t target = o.chunks / o.transcripts + (t < o.chunks % o.transcripts ? 1 : 0);

		if (snprintf(trs[t].name, sizeof(trs[t].name), "%s-t%03zu", corpus, t) >=
		    (int)sizeof(trs[t].name))
			goto out;
		if (build_transcript(&pool, o.seed, t, target, &trs[t], &scratch, &scratch_cap))
			goto out;
		total_chunks += trs[t].chunks.n;
		n_req += (trs[t].chunks.n + (size_t)o.batch - 1) / (size_t)o.batch;
	}
	corpus_s = real_now() - r0;
	{
		size_t toks = 0, turns = 0;

		for (size_t t = 0; t < o.transcripts; t++) {
			turns += trs[t].n;
			for (size_t i = 0; i < trs[t].chunks.n; i++)
				toks += trs[t].chunks.chunks[i].tokens;
		}
		printf("corpus %s: %zu meetings, %zu pooled turns -> %zu transcripts, %zu turns, "
		       "%zu chunks (%zu tokens, %.0f per chunk), built in %.1f s\n",
		       corpus, pool.n_meetings, pool.n, o.transcripts, turns, total_chunks, toks,
		       (double)toks / (double)total_chunks, corpus_s);
	}
	if (total_chunks != o.chunks) {
		fprintf(stderr, "bench_llm: built %zu chunks, wanted %zu\n", total_chunks, o.chunks);
		goto out;
	}
	if (o.write_corpus) {
		for (size_t t = 0; t < o.transcripts; t++) {
			FILE *f;

			snprintf(path, sizeof(path), "%s/%s.txt", o.write_corpus, trs[t].name);
			f = fopen(path, "w");
			if (!f) {
				fprintf(stderr, "bench_llm: cannot write %s\n", path);
				goto out;
			}
			for (size_t i = 0; i < trs[t].n; i++) {
				const struct hark_chunk_turn *tu = &pool.turns[trs[t].idx[i]];

				if (tu->speaker && tu->speaker[0])
					fprintf(f, "%s: ", tu->speaker);
				fprintf(f, "%s\n", tu->text ? tu->text : "");
			}
			if (fclose(f) != 0) {
				fprintf(stderr, "bench_llm: cannot write %s\n", path);
				goto out;
			}
		}
	}
	if (o.corpus_only) {
		rc = 0;
		goto out;
	}

	/* ---- requests */
	snprintf(path, sizeof(path), "%s/prompts/graph_extract.md", o.share);
	prompt = read_file(path, NULL);
	snprintf(path, sizeof(path), "%s/schemas/graph_extract.json", o.share);
	schema = read_file(path, NULL);
	if (!prompt || !schema) {
		fprintf(stderr, "bench_llm: cannot read %s (use --share or HARK_SOURCE_DIR)\n", path);
		goto out;
	}
	users = calloc(n_req, sizeof(*users));
	req_chunks = calloc(n_req, sizeof(*req_chunks));
	msgs = calloc(2 * n_req, sizeof(*msgs));
	reqs = calloc(n_req, sizeof(*reqs));
	res = calloc(n_req, sizeof(*res));
	if (!users || !req_chunks || !msgs || !reqs || !res)
		goto out;
	{
		size_t r = 0;

		for (size_t t = 0; t < o.transcripts; t++) {
			const struct hark_chunk_list *l = &trs[t].chunks;

			for (size_t c0 = 0; c0 < l->n; c0 += (size_t)o.batch, r++) {
				size_t c1 = c0 + (size_t)o.batch < l->n ? c0 + (size_t)o.batch : l->n;
				size_t len = 0, off = 0;
				char *u;

				for (size_t c = c0; c < c1; c++)
					len += l->chunks[c].len + 64;
				u = malloc(len + 1);
				if (!u)
					goto out;
				for (size_t c = c0; c < c1; c++)
					off += (size_t)snprintf(u + off, len + 1 - off, "%s[chunk %s:%zu]\n%s\n",
								c > c0 ? "\n" : "", trs[t].name, c,
								l->chunks[c].text);
				users[r] = u;
				req_chunks[r] = (long)(c1 - c0);
				msgs[2 * r].role = "system";
				msgs[2 * r].content = prompt;
				msgs[2 * r + 1].role = "user";
				msgs[2 * r + 1].content = u;
				reqs[r].task = "extract";
				reqs[r].messages = &msgs[2 * r];
				reqs[r].n_messages = 2;
				reqs[r].schema = schema;
				reqs[r].schema_name = "graph_extract";
				reqs[r].temperature = 0;
				reqs[r].max_tokens = o.out_per_chunk * req_chunks[r];
				reqs[r].job_id = "bench-llm";
			}
		}
	}
	n_submit = (o.sample > 0 && (size_t)o.sample < n_req) ? (size_t)o.sample : n_req;

	/* ---- client */
	if (hark_llm_config_load(o.config, &cfg, err, sizeof(err))) {
		fprintf(stderr, "bench_llm: %s\n", err);
		goto out;
	}
	route = hark_llm_config_route(cfg, "extract");
	if (!route || route->n_models == 0) {
		fprintf(stderr, "bench_llm: the config has no \"extract\" route\n");
		goto out;
	}
	model = &cfg->models[route->models[0]];
	if (o.sequential)
		for (size_t i = 0; i < cfg->n_models; i++)
			cfg->models[i].max_concurrency = 1;
	sp = hark_store_default_params();
	if (hark_store_open(o.store, &sp, &store, err, sizeof(err))) {
		fprintf(stderr, "bench_llm: store %s: %s\n", o.store, err);
		goto out;
	}
	lp = hark_llm_default_params();
	lp.config = cfg;
	lp.store = store;
	lp.seed = o.seed;
	if (hark_llm_init(&lp, &llm, err, sizeof(err))) {
		fprintf(stderr, "bench_llm: %s\n", err);
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);

	/* ---- run */
	sim_stats_get(o.sim_url, &s0);
	log_from = file_size(o.sim_log);
	memset(&cb, 0, sizeof(cb));
	cb.progress = on_progress;
	cb.cancel = on_cancel;
	cb.user_data = &last;
	t0 = hark_llm_now(llm);
	r0 = real_now();
	run_rc = hark_llm_run(llm, reqs, n_submit, res, &cb);
	r1 = real_now();
	t1 = hark_llm_now(llm);
	hark_llm_get_totals(llm, &tot);
	sim_stats_get(o.sim_url, &s1);
	log_sums_read(o.sim_log, log_from, &ls);
	if (run_rc) {
		fprintf(stderr, "bench_llm: hark_llm_run: %s\n", hark_strerror(run_rc));
		goto out;
	}
	for (size_t r = 0; r < n_submit; r++) {
		if (res[r].err) {
			if (failed < 5)
				fprintf(stderr, "bench_llm: call %zu failed: %s\n", r, res[r].error);
			failed++;
			continue;
		}
		ok++;
		cached += res[r].cached ? 1 : 0;
		check_reply(res[r].content, &reqs[r], &ents, &rels, &bad);
	}
	for (size_t r = 0; r < n_submit; r++) {
		tin += res[r].tokens_in;
		tout += res[r].tokens_out;
		cost += res[r].cost_usd;
		attempts += res[r].attempts;
		repairs += res[r].repairs;
	}

	/* ---- report */
	if (n_submit < n_req)
		extrap = (double)n_req / (double)n_submit;
	elapsed_s = (t1 - t0) * extrap;
	d_req = s1.requests - s0.requests;
	d_pin = s1.prompt_tokens - s0.prompt_tokens;
	d_pout = s1.completion_tokens - s0.completion_tokens;
	d_429 = s1.rate_limited - s0.rate_limited;
	calls_min = model->rpm > 0 ? (double)ls.admitted * extrap / model->rpm : 0;
	tok_min = model->tpm > 0 ? (double)ls.counted_tokens * extrap / model->tpm : 0;
	bound_min = calls_min > tok_min ? calls_min : tok_min;
	{
		const char *mode = o.rerun ? "rerun" : o.sequential ? "sequential" : "batch";
		int agree = s0.ok && s1.ok && d_pin == tin && d_pout == tout;
		double price_cost = ((double)tin * model->price_in + (double)tout * model->price_out) /
				    1e6;

		printf("%s %s batch=%d: %zu calls (%zu submitted%s), %zu ok, %zu failed, %zu cached, "
		       "%lld HTTP requests (%lld retries, %lld repairs)\n",
		       corpus, mode, o.batch, n_req, n_submit,
		       n_submit < n_req ? ", sequential sample, times extrapolated" : "", ok, failed,
		       cached, (long long)tot.requests, (long long)tot.retries, (long long)repairs);
		printf("  tokens: results %lld in / %lld out; simulator %lld in / %lld out (%s)\n",
		       (long long)tin, (long long)tout, (long long)d_pin, (long long)d_pout,
		       !(s0.ok && s1.ok) ? "no /_sim/stats" : agree ? "agree" : "DISAGREE");
		printf("  simulator log: %lld admitted requests, %lld counted tokens (prompt + "
		       "max_tokens), %lld 429s, %lld faults\n",
		       (long long)ls.admitted, (long long)ls.counted_tokens, (long long)ls.rate_limited,
		       (long long)ls.faults);
		printf("  elapsed: %.1f s real x time_scale %g = %.1f min simulated%s\n", r1 - r0,
		       cfg->time_scale, elapsed_s / 60.0, extrap > 1 ? " (extrapolated)" : "");
		if (bound_min > 0)
			printf("  bound: max(%lld calls / %g RPM = %.2f min, %lld tokens / %g TPM = "
			       "%.2f min) = %.2f min; time/bound = %.2f\n",
			       (long long)(ls.admitted * extrap), model->rpm, calls_min,
			       (long long)(ls.counted_tokens * extrap), model->tpm, tok_min, bound_min,
			       elapsed_s / 60.0 / bound_min);
		printf("  429s: client %lld, simulator %lld; replies: %zu entities, %zu relations, "
		       "%zu bad items\n",
		       (long long)tot.rate_limited, (long long)d_429, ents, rels, bad);
		printf("  cost: $%.4f (results) / $%.4f (tokens x $%g in, $%g out per 1M)%s\n",
		       cost * extrap, price_cost * extrap, model->price_in, model->price_out,
		       extrap > 1 ? " (extrapolated)" : "");
		printf("RESULT corpus=%s mode=%s batch=%d calls=%zu submitted=%zu ok=%zu failed=%zu "
		       "cached=%zu http=%lld sim_chat_requests=%lld sim_requests=%lld retries=%lld "
		       "repairs=%lld "
		       "prompt_tokens=%lld completion_tokens=%lld sim_prompt_tokens=%lld "
		       "sim_completion_tokens=%lld tokens_agree=%d counted_tokens=%lld "
		       "admitted=%lld elapsed_real_s=%.2f time_scale=%g elapsed_sim_min=%.2f "
		       "bound_min=%.2f time_over_bound=%.2f client_429=%lld sim_429=%lld "
		       "cost_usd=%.4f bad_items=%zu extrapolated=%d\n",
		       corpus, mode, o.batch, n_req, n_submit, ok, failed, cached,
		       (long long)tot.requests,
		       (long long)(ls.ok ? ls.admitted + ls.rate_limited : -1),
		       (long long)(s0.ok && s1.ok ? d_req : -1),
		       (long long)tot.retries, (long long)repairs, (long long)tin, (long long)tout,
		       (long long)d_pin, (long long)d_pout, agree, (long long)ls.counted_tokens,
		       (long long)ls.admitted, r1 - r0, cfg->time_scale, elapsed_s / 60.0, bound_min,
		       bound_min > 0 ? elapsed_s / 60.0 / bound_min : 0.0, (long long)tot.rate_limited,
		       (long long)d_429, cost * extrap, bad, extrap > 1);
	}
	(void)attempts;
	rc = failed ? 3 : 0;
	if (o.rerun && (tot.requests != 0 || ls.admitted + ls.rate_limited != 0)) {
		fprintf(stderr, "bench_llm: the rerun made HTTP calls\n");
		rc = 3;
	}
out:
	hark_llm_free(llm);
	if (store)
		hark_store_close(store);
	hark_llm_config_free(cfg);
	if (res)
		for (size_t r = 0; r < n_req; r++)
			hark_llm_result_clear(&res[r]);
	if (users)
		for (size_t r = 0; r < n_req; r++)
			free(users[r]);
	free(users);
	free(req_chunks);
	free(msgs);
	free(reqs);
	free(res);
	free(prompt);
	free(schema);
	if (trs)
		for (size_t t = 0; t < o.transcripts; t++) {
			hark_chunk_list_clear(&trs[t].chunks);
			free(trs[t].idx);
		}
	free(trs);
	free(scratch);
	pool_free(&pool);
	return rc;
}
