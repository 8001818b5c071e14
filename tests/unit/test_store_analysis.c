/*
 * The meeting-analysis part of the job store (schema version 3) on a real
 * SQLite database in a fresh temporary directory: migration of a store at
 * schema version 2 (existing jobs kept, new tables and the FTS5 index
 * created), analysed meetings (put, get, list, chunks, delete), a re-put
 * that replaces chunks and search documents without leaving stale or
 * duplicate ones (checked in the FTS index too) and that fails as a whole
 * on a full disk (the previous version intact), the per-chunk result
 * cache (get, put, replace, batched get), BM25 ranking through FTS5
 * (term frequency, rare terms, Porter stemming, diacritics, snippets,
 * kind/meeting filters), the LIKE fallback used without FTS5 and the index
 * rebuilt when FTS5 becomes available, embeddings (put, batched get, scan),
 * and hostile or oversized input rejected with the right error.
 */
#include <ftw.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "store/store_backend.h"

struct fx {
	char root[256];
	char dir[300];
	char db[320];
	struct hark_store *st;
};

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static struct hark_store *open_dir(const char *dir)
{
	struct hark_store_params p = hark_store_default_params();
	struct hark_store *st = NULL;
	char err[256] = "";
	int rc;

	p.sync_full = 0;
	rc = hark_store_open(dir, &p, &st, err, sizeof(err));
	if (rc != HARK_OK)
		fail_msg("open %s: %s (%d)", dir, err, rc);
	return st;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/hark-store-an.XXXXXX");
	if (!mkdtemp(f->root)) {
		free(f);
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
	snprintf(f->db, sizeof(f->db), "%s/hark.db", f->dir);
	hark_store_sqlite_force_no_fts(0);
	f->st = open_dir(f->dir);
	*state = f;
	return f->st ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	hark_store_sqlite_force_no_fts(0);
	hark_store_close(f->st);
	nftw(f->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void raw_exec(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "?");
	sqlite3_close(h);
}

static long raw_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	long v = -1;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(h));
	if (sqlite3_step(s) == SQLITE_ROW)
		v = (long)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* sha256 hex of a string (the store's own helper, used as a hash here). */
static void sha_of(const char *s, char out[HARK_SHA_HEX_LEN])
{
	hark_store_key_hash(s, out);
}

static struct hark_search_doc doc(const char *kind, const char *speaker, const char *text,
				  long turn)
{
	struct hark_search_doc d;

	memset(&d, 0, sizeof(d));
	d.kind = kind;
	d.speaker = speaker;
	d.text = text;
	d.start_s = turn * 10.0;
	d.end_s = turn * 10.0 + 9.5;
	d.turn = turn;
	return d;
}

static void put_meeting(struct hark_store *st, const char *name, const struct hark_search_doc *docs,
			size_t n_docs, size_t n_chunks)
{
	struct hark_meeting_rec m;
	struct hark_meeting_chunk ch[8];
	char tmp[64];

	assert_true(n_chunks <= 8);
	memset(&m, 0, sizeof(m));
	m.name = (char *)name;
	m.source = (char *)"/data/in.json";
	sha_of(name, m.content_sha);
	sha_of("params", m.params_sha);
	m.date = (char *)"2024-05-01";
	m.method = (char *)"offline";
	m.n_chunks = (int64_t)n_chunks;
	m.analyzed_at = 1700000000.5;
	m.minutes_json = (char *)"{\"title\":\"m\"}";
	m.graph_json = (char *)"{\"nodes\":[]}";
	for (size_t i = 0; i < n_chunks; i++) {
		memset(&ch[i], 0, sizeof(ch[i]));
		ch[i].seq = (int64_t)i;
		snprintf(tmp, sizeof(tmp), "%s-chunk-%zu", name, i);
		sha_of(tmp, ch[i].chunk_sha);
		ch[i].start_s = (double)i * 60;
		ch[i].end_s = (double)i * 60 + 59;
		ch[i].first_turn = (long)i * 4;
		ch[i].last_turn = (long)i * 4 + 3;
	}
	assert_int_equal(hark_store_meeting_put(st, &m, ch, n_chunks, docs, n_docs), HARK_OK);
}

/* Searches with a raw FTS query; returns the hit count (hits freed unless out). */
static size_t search(struct hark_store *st, const char *q, const char *kind, const char *meeting,
		     size_t limit, struct hark_search_hit **out)
{
	struct hark_search_hit *h = NULL;
	size_t n = 0;
	int rc = hark_store_search_bm25_in(st, q, kind, meeting, limit, &h, &n);

	if (rc != HARK_OK)
		fail_msg("search %s: %d %s", q, rc, hark_store_errmsg(st));
	for (size_t i = 1; i < n; i++)
		assert_true(h[i - 1].score >= h[i].score);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(h[i].bm25_rank, (int)i + 1);
	if (out)
		*out = h;
	else
		hark_search_hits_free(h, n);
	return n;
}

/* ---- migration ---------------------------------------------------------------------- */

static void test_migration_from_v2(void **state)
{
	struct fx *f = *state;
	struct hark_job j, got;
	struct hark_event ev;
	struct hark_search_doc d[2];
	struct hark_search_hit *h = NULL;

	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 3);
	memset(&j, 0, sizeof(j));
	assert_int_equal(hark_store_new_job_id(j.id), HARK_OK);
	strcpy(j.type, "noop");
	j.priority = HARK_PRIO_NORMAL;
	j.options = (char *)"{}";
	j.filename = (char *)"standup.wav";
	j.max_attempts = 3;
	j.eta_s = -1;
	j.created_at = (double)time(NULL);
	j.next_run_at = j.created_at;
	assert_int_equal(hark_store_job_insert(f->st, &j, &ev), HARK_OK);
	hark_event_clear(&ev);
	assert_int_equal(hark_store_meta_set(f->st, "x", "y"), HARK_OK);
	hark_store_close(f->st);
	f->st = NULL;

	/* back to what schema version 2 had */
	raw_exec(f->db, "BEGIN; DROP TABLE IF EXISTS search_fts; DROP TABLE search_docs;"
			" DROP TABLE meetings; DROP TABLE meeting_chunks; DROP TABLE chunk_results;"
			" DROP TABLE embeddings; PRAGMA user_version=2; COMMIT;");
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name IN"
					" ('meetings','search_docs','embeddings','chunk_results')"),
			 0);

	f->st = open_dir(f->dir);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 3);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND"
					" name IN ('meetings','meeting_chunks','chunk_results',"
					"'search_docs','embeddings')"),
			 5);
	assert_int_equal(hark_store_search_has_fts(f->st),
			 raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE name='search_fts'"));
	/* old data untouched */
	assert_int_equal(hark_store_job_get(f->st, j.id, &got), HARK_OK);
	assert_string_equal(got.filename, "standup.wav");
	hark_job_clear(&got);
	{
		char *v = NULL;

		assert_int_equal(hark_store_meta_get(f->st, "x", &v), HARK_OK);
		assert_string_equal(v, "y");
		free(v);
	}
	/* the new tables work */
	d[0] = doc("chunk", "Ann", "the migration kept every job", 0);
	d[1] = doc("summary", NULL, "a summary about something else", -1);
	put_meeting(f->st, "after-migration", d, 2, 1);
	assert_int_equal(search(f->st, "\"migration\"", NULL, NULL, 10, &h), 1);
	assert_string_equal(h[0].meeting, "after-migration");
	hark_search_hits_free(h, 1);

	/* reopening an up-to-date store changes nothing */
	hark_store_close(f->st);
	f->st = open_dir(f->dir);
	assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 3);
	assert_int_equal(search(f->st, "\"migration\"", NULL, NULL, 10, NULL), 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_docs"), 2);
}

/* ---- meetings ------------------------------------------------------------------------- */

static void test_meeting_crud(void **state)
{
	struct fx *f = *state;
	struct hark_meeting_rec m, *list = NULL;
	struct hark_meeting_chunk *ch = NULL;
	struct hark_search_doc d[3];
	size_t n = 0;

	d[0] = doc("chunk", "Ann", "we agreed on the launch date", 0);
	d[1] = doc("decision", NULL, "launch on the first of june", -1);
	d[2] = doc("action", "Bob", "Bob drafts the launch announcement", 3);
	put_meeting(f->st, "zeta-sync", d, 3, 3);
	put_meeting(f->st, "alpha-review", d, 1, 1);

	assert_int_equal(hark_store_meeting_get(f->st, "zeta-sync", &m), HARK_OK);
	assert_string_equal(m.name, "zeta-sync");
	assert_string_equal(m.source, "/data/in.json");
	assert_string_equal(m.date, "2024-05-01");
	assert_string_equal(m.method, "offline");
	assert_null(m.model);
	assert_int_equal(m.n_chunks, 3);
	assert_true(fabs(m.analyzed_at - 1700000000.5) < 1e-6);
	assert_string_equal(m.minutes_json, "{\"title\":\"m\"}");
	assert_string_equal(m.graph_json, "{\"nodes\":[]}");
	{
		char sha[HARK_SHA_HEX_LEN];

		sha_of("zeta-sync", sha);
		assert_string_equal(m.content_sha, sha);
	}
	hark_meeting_rec_clear(&m);
	assert_null(m.name);

	assert_int_equal(hark_store_meeting_get(f->st, "nope", &m), HARK_ERR_NOT_FOUND);

	/* list: sorted by name, JSON only on request */
	assert_int_equal(hark_store_meeting_list(f->st, 0, &list, &n), HARK_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alpha-review");
	assert_string_equal(list[1].name, "zeta-sync");
	assert_null(list[0].minutes_json);
	assert_null(list[1].graph_json);
	assert_int_equal(list[1].n_chunks, 3);
	hark_meeting_rec_array_free(list, n);
	assert_int_equal(hark_store_meeting_list(f->st, 1, &list, &n), HARK_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].minutes_json, "{\"title\":\"m\"}");
	hark_meeting_rec_array_free(list, n);

	/* chunks in seq order */
	assert_int_equal(hark_store_meeting_chunks(f->st, "zeta-sync", &ch, &n), HARK_OK);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		char tmp[64], sha[HARK_SHA_HEX_LEN];

		assert_int_equal(ch[i].seq, (int64_t)i);
		snprintf(tmp, sizeof(tmp), "zeta-sync-chunk-%zu", i);
		sha_of(tmp, sha);
		assert_string_equal(ch[i].chunk_sha, sha);
		assert_int_equal(ch[i].first_turn, (long)i * 4);
		assert_int_equal(ch[i].last_turn, (long)i * 4 + 3);
	}
	free(ch);
	assert_int_equal(hark_store_meeting_chunks(f->st, "nope", &ch, &n), HARK_ERR_NOT_FOUND);

	/* both meetings searchable; delete takes chunks and documents along */
	assert_int_equal(search(f->st, "\"launch\"", NULL, NULL, 10, NULL), 4);
	assert_int_equal(hark_store_meeting_delete(f->st, "zeta-sync"), HARK_OK);
	assert_int_equal(hark_store_meeting_get(f->st, "zeta-sync", &m), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_store_meeting_delete(f->st, "zeta-sync"), HARK_ERR_NOT_FOUND);
	assert_int_equal(search(f->st, "\"launch\"", NULL, NULL, 10, NULL), 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM meeting_chunks WHERE"
					" meeting='zeta-sync'"),
			 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_docs"), 1);
	assert_int_equal(hark_store_meeting_list(f->st, 0, &list, &n), HARK_OK);
	assert_int_equal(n, 1);
	hark_meeting_rec_array_free(list, n);
}

static void test_reput_replaces(void **state)
{
	struct fx *f = *state;
	struct hark_search_doc d1[3], d2[2];
	struct hark_meeting_chunk *ch = NULL;
	struct hark_search_hit *h = NULL;
	size_t n;

	d1[0] = doc("chunk", "Ann", "the zebra crossing near the office", 0);
	d1[1] = doc("chunk", "Bob", "another zebra sighting reported", 1);
	d1[2] = doc("topic", NULL, "zebra crossings", -1);
	put_meeting(f->st, "weekly", d1, 3, 4);
	assert_int_equal(search(f->st, "\"zebra\"", NULL, NULL, 10, NULL), 3);

	d2[0] = doc("chunk", "Ann", "only one zebra remains in the new analysis", 0);
	d2[1] = doc("summary", NULL, "a short summary of the week", -1);
	put_meeting(f->st, "weekly", d2, 2, 2);
	assert_int_equal(search(f->st, "\"zebra\"", NULL, NULL, 10, &h), 1);
	assert_string_equal(h[0].text, "only one zebra remains in the new analysis");
	hark_search_hits_free(h, 1);
	assert_int_equal(search(f->st, "\"sighting\"", NULL, NULL, 10, NULL), 0);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_docs"), 2);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM meetings"), 1);
	assert_int_equal(hark_store_meeting_chunks(f->st, "weekly", &ch, &n), HARK_OK);
	assert_int_equal(n, 2);
	free(ch);
	if (hark_store_search_has_fts(f->st)) {
		/* the external-content index agrees with its table */
		raw_exec(f->db, "INSERT INTO search_fts(search_fts) VALUES('integrity-check')");
		assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_fts('zebra')"), 1);
		assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_fts('sighting')"), 0);
	}
	/* the same put again is idempotent */
	put_meeting(f->st, "weekly", d2, 2, 2);
	assert_int_equal(search(f->st, "\"zebra\"", NULL, NULL, 10, NULL), 1);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_docs"), 2);
}

/* A re-put that fails half-way (disk full) leaves the previous version whole. */
static void test_put_atomic(void **state)
{
	struct fx *f = *state;
	struct hark_search_doc d1[2], *d2;
	struct hark_meeting_rec m;
	char *texts;
	const size_t n2 = 400, len = 2000;
	long pages;

	d1[0] = doc("chunk", "Ann", "the original wording about giraffes", 0);
	d1[1] = doc("summary", NULL, "giraffes were discussed", -1);
	put_meeting(f->st, "atomic", d1, 2, 2);

	d2 = calloc(n2, sizeof(*d2));
	texts = malloc(n2 * (len + 1));
	assert_non_null(d2);
	assert_non_null(texts);
	for (size_t i = 0; i < n2; i++) {
		char *t = texts + i * (len + 1);

		for (size_t k = 0; k < len; k++)
			t[k] = "abcdefghij klmnopqrst uvwxyz "[(i * 7 + k * 13) % 29];
		memcpy(t, "replacement ", 12);
		t[len] = '\0';
		d2[i] = doc("chunk", NULL, t, (long)i);
	}
	pages = raw_int(f->db, "PRAGMA page_count");
	assert_true(pages > 0);
	assert_int_equal(hark_store_sqlite_limit_pages(f->st, pages + 4), HARK_OK);
	memset(&m, 0, sizeof(m));
	m.name = (char *)"atomic";
	m.method = (char *)"llm";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, d2, n2), HARK_ERR_IO);
	assert_non_null(strstr(hark_store_errmsg(f->st), "disk full"));
	assert_int_equal(hark_store_sqlite_limit_pages(f->st, 1L << 30), HARK_OK);

	/* the first version, whole */
	assert_int_equal(search(f->st, "\"giraffes\"", NULL, NULL, 10, NULL), 2);
	assert_int_equal(search(f->st, "\"replacement\"", NULL, NULL, 10, NULL), 0);
	assert_int_equal(hark_store_meeting_get(f->st, "atomic", &m), HARK_OK);
	assert_string_equal(m.method, "offline");
	hark_meeting_rec_clear(&m);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM meeting_chunks"), 2);

	/* and the same put succeeds once there is room */
	memset(&m, 0, sizeof(m));
	m.name = (char *)"atomic";
	m.method = (char *)"llm";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, d2, n2), HARK_OK);
	assert_int_equal(search(f->st, "\"giraffes\"", NULL, NULL, 10, NULL), 0);
	assert_int_equal(search(f->st, "\"replacement\"", NULL, NULL, 1000, NULL), n2);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM meeting_chunks"), 0);
	free(d2);
	free(texts);
}

/* ---- chunk results -------------------------------------------------------------------- */

static void test_chunk_results(void **state)
{
	struct fx *f = *state;
	char a[HARK_SHA_HEX_LEN], b[HARK_SHA_HEX_LEN], c[HARK_SHA_HEX_LEN];
	char *json = NULL, *many[4];
	const char *shas[4];
	char longp[200];

	sha_of("chunk a", a);
	sha_of("chunk b", b);
	sha_of("chunk c", c);
	assert_int_equal(hark_store_chunk_result_get(f->st, a, "extract", &json),
			 HARK_ERR_NOT_FOUND);
	assert_null(json);
	assert_int_equal(hark_store_chunk_result_put(f->st, a, "extract", "sim/small",
						     "{\"items\":[1]}"),
			 HARK_OK);
	assert_int_equal(hark_store_chunk_result_put(f->st, b, "extract", NULL, "{\"items\":[2]}"),
			 HARK_OK);
	assert_int_equal(hark_store_chunk_result_put(f->st, a, "summarize", "sim/small", "\"s\""),
			 HARK_OK);
	assert_int_equal(hark_store_chunk_result_get(f->st, a, "extract", &json), HARK_OK);
	assert_string_equal(json, "{\"items\":[1]}");
	free(json);
	/* upsert */
	assert_int_equal(hark_store_chunk_result_put(f->st, a, "extract", "sim/large",
						     "{\"items\":[1,1]}"),
			 HARK_OK);
	assert_int_equal(hark_store_chunk_result_get(f->st, a, "extract", &json), HARK_OK);
	assert_string_equal(json, "{\"items\":[1,1]}");
	free(json);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM chunk_results"), 3);

	/* batched: order kept, missing ones NULL, pipelines separate */
	shas[0] = c;
	shas[1] = a;
	shas[2] = b;
	shas[3] = a;
	assert_int_equal(hark_store_chunk_result_get_many(f->st, "extract", shas, 4, many),
			 HARK_OK);
	assert_null(many[0]);
	assert_string_equal(many[1], "{\"items\":[1,1]}");
	assert_string_equal(many[2], "{\"items\":[2]}");
	assert_string_equal(many[3], "{\"items\":[1,1]}");
	for (int i = 0; i < 4; i++)
		free(many[i]);
	assert_int_equal(hark_store_chunk_result_get_many(f->st, "summarize", shas, 4, many),
			 HARK_OK);
	assert_null(many[0]);
	assert_string_equal(many[1], "\"s\"");
	assert_null(many[2]);
	assert_string_equal(many[3], "\"s\"");
	free(many[1]);
	free(many[3]);

	/* malformed input */
	assert_int_equal(hark_store_chunk_result_get(f->st, "abc", "extract", &json),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_chunk_result_put(f->st, a, "", NULL, "{}"),
			 HARK_ERR_INVALID_ARG);
	memset(longp, 'p', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(hark_store_chunk_result_put(f->st, a, longp, NULL, "{}"), HARK_ERR_LIMIT);
	assert_int_equal(hark_store_chunk_result_put(f->st, a, "extract", NULL, NULL),
			 HARK_ERR_INVALID_ARG);
	{
		char upper[HARK_SHA_HEX_LEN];

		memcpy(upper, a, sizeof(upper));
		upper[0] = 'A';
		upper[1] = 'B';
		shas[1] = upper;
		assert_int_equal(hark_store_chunk_result_get_many(f->st, "extract", shas, 4, many),
				 HARK_ERR_INVALID_ARG);
		for (int i = 0; i < 4; i++)
			assert_null(many[i]);
	}
	assert_int_equal(hark_store_chunk_result_get_many(f->st, "extract", shas,
							  HARK_STORE_BATCH_MAX + 1, NULL),
			 HARK_ERR_INVALID_ARG);
}

/* ---- BM25 ------------------------------------------------------------------------------- */

static const char *const corpus[] = {
	/* 0 */ "The budget review covered the budget for marketing and the budget timeline.",
	/* 1 */ "We briefly discussed the budget.",
	/* 2 */ "The lunch menu was discussed at length by everyone in the room.",
	/* 3 */ "Quarterly forecast and budget variance were presented by finance.",
	/* 4 */ "Caf\xc3\xa9 opening hours were changed to start earlier.",
	/* 5 */ "Budgets for next year: each team submits budgets by Friday.",
};

static void load_corpus(struct hark_store *st)
{
	struct hark_search_doc d[6];

	for (int i = 0; i < 6; i++)
		d[i] = doc(i == 3 ? "decision" : "chunk", i % 2 ? "Bob" : "Ann", corpus[i], i);
	put_meeting(st, "corpus", d, 6, 1);
}

/* The hit whose text is corpus[i], or -1. */
static int rank_of(const struct hark_search_hit *h, size_t n, int i)
{
	for (size_t k = 0; k < n; k++)
		if (strcmp(h[k].text, corpus[i]) == 0)
			return (int)k;
	return -1;
}

static void check_ranking(struct hark_store *st)
{
	struct hark_search_hit *h = NULL;
	size_t n;

	/* more occurrences of the term rank higher */
	n = search(st, "\"budget\"", NULL, NULL, 10, &h);
	assert_true(n >= 3);
	assert_true(rank_of(h, n, 0) >= 0 && rank_of(h, n, 1) >= 0 && rank_of(h, n, 3) >= 0);
	assert_true(rank_of(h, n, 0) < rank_of(h, n, 1));
	assert_int_equal(rank_of(h, n, 2), -1);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(strstr(h[i].snippet, "\xc2\xab"));
		assert_non_null(strstr(h[i].snippet, "\xc2\xbb"));
		assert_string_equal(h[i].meeting, "corpus");
		assert_true(h[i].turn >= 0 && h[i].start_s == h[i].turn * 10.0);
	}
	hark_search_hits_free(h, n);

	/* a rare term outweighs a common one */
	n = search(st, "\"budget\" OR \"variance\"", NULL, NULL, 10, &h);
	assert_true(n >= 3);
	assert_int_equal(rank_of(h, n, 3), 0);
	hark_search_hits_free(h, n);

	/* stemming: "budgets" finds the singular, and the plural doc */
	n = search(st, "\"budgets\"", NULL, NULL, 10, &h);
	assert_true(rank_of(h, n, 1) >= 0);
	assert_true(rank_of(h, n, 5) >= 0);
	hark_search_hits_free(h, n);

	/* filters */
	n = search(st, "\"budget\"", "decision", NULL, 10, &h);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].kind, "decision");
	hark_search_hits_free(h, n);
	assert_int_equal(search(st, "\"budget\"", NULL, "other-meeting", 10, NULL), 0);
	assert_true(search(st, "\"budget\"", NULL, "corpus", 10, NULL) >= 3);
	/* limit */
	assert_int_equal(search(st, "\"budget\"", NULL, NULL, 2, NULL), 2);
}

static void test_bm25(void **state)
{
	struct fx *f = *state;
	struct hark_search_hit *h = NULL;
	size_t n;

	load_corpus(f->st);
	if (!hark_store_search_has_fts(f->st))
		fprintf(stderr, "note: this SQLite has no FTS5; testing the fallback only\n");
	check_ranking(f->st);
	if (hark_store_search_has_fts(f->st)) {
		/* diacritics folded */
		n = search(f->st, "\"cafe\"", NULL, NULL, 10, &h);
		assert_int_equal(n, 1);
		assert_int_equal(rank_of(h, n, 4), 0);
		assert_non_null(strstr(h[0].snippet, "\xc2\xab" "Caf\xc3\xa9" "\xc2\xbb"));
		hark_search_hits_free(h, n);
		/* speaker names are searchable too */
		assert_true(search(f->st, "\"bob\"", NULL, NULL, 10, NULL) >= 3);
		/* raw FTS syntax errors are rejected, not crashes */
		assert_int_equal(hark_store_search_bm25(f->st, "\"unterminated", NULL, 10, &h, &n),
				 HARK_ERR_INVALID_ARG);
		assert_int_equal(hark_store_search_bm25(f->st, "NEAR(", NULL, 10, &h, &n),
				 HARK_ERR_INVALID_ARG);
		assert_null(h);
		assert_int_equal(n, 0);
	}
	assert_int_equal(hark_store_search_bm25(f->st, "\"budget\"", "bogus", 10, &h, &n),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_search_bm25(f->st, "", NULL, 10, &h, &n),
			 HARK_ERR_INVALID_ARG);
}

static void test_fallback_without_fts(void **state)
{
	struct fx *f = *state;
	struct hark_search_hit *h = NULL;
	char dir2[400], db2[420];
	struct hark_store *st;
	size_t n;

	snprintf(dir2, sizeof(dir2), "%s/nofts", f->root);
	snprintf(db2, sizeof(db2), "%s/hark.db", dir2);
	hark_store_sqlite_force_no_fts(1);
	st = open_dir(dir2);
	assert_int_equal(hark_store_search_has_fts(st), 0);
	assert_int_equal(raw_int(db2, "SELECT count(*) FROM sqlite_master WHERE name='search_fts'"),
			 0);
	assert_int_equal(raw_int(db2, "PRAGMA user_version"), 3);
	load_corpus(st);
	check_ranking(st);
	/* a word prefix, case-insensitively, at word starts only */
	n = search(st, "\"LUNCH\"", NULL, NULL, 10, &h);
	assert_int_equal(n, 1);
	assert_non_null(strstr(h[0].snippet, "\xc2\xab" "lunch" "\xc2\xbb"));
	hark_search_hits_free(h, n);
	assert_int_equal(search(st, "\"udget\"", NULL, NULL, 10, NULL), 0);
	assert_int_equal(hark_store_search_bm25(st, "\"\" OR", NULL, 10, &h, &n),
			 HARK_ERR_INVALID_ARG);
	hark_store_close(st);

	/* FTS5 available again: the index is created and filled from the table */
	hark_store_sqlite_force_no_fts(0);
	st = open_dir(dir2);
	if (hark_store_search_has_fts(st)) {
		assert_int_equal(raw_int(db2, "SELECT count(*) FROM search_fts"), 6);
		check_ranking(st);
	}
	hark_store_close(st);
}

/* ---- embeddings -------------------------------------------------------------------------- */

struct scan_acc {
	size_t n;
	size_t dim_sum;
	double first_sum;
	int stop_after;
};

static int scan_cb(const char *sha, const float *v, size_t dim, void *ud)
{
	struct scan_acc *a = ud;

	assert_int_equal(strlen(sha), 64);
	a->n++;
	a->dim_sum += dim;
	a->first_sum += v[0];
	return a->stop_after && (int)a->n >= a->stop_after;
}

static void test_embeddings(void **state)
{
	struct fx *f = *state;
	char s1[HARK_SHA_HEX_LEN], s2[HARK_SHA_HEX_LEN], s3[HARK_SHA_HEX_LEN];
	float v1[4] = {1, 0, 0, 0}, v2[4] = {0.5f, 0.5f, 0.5f, 0.5f}, v3[3] = {3, 2, 1};
	float two[8] = {0.25f, 1, 2, 3, 4, 5, 6, 7};
	float *got[3];
	size_t dims[3];
	const char *shas[3];
	struct scan_acc acc;

	sha_of("t1", s1);
	sha_of("t2", s2);
	sha_of("t3", s3);
	assert_int_equal(hark_store_embedding_put(f->st, s1, "p/emb", v1, 4), HARK_OK);
	assert_int_equal(hark_store_embedding_put(f->st, s2, "p/emb", v2, 4), HARK_OK);
	assert_int_equal(hark_store_embedding_put(f->st, s1, "q/other", v3, 3), HARK_OK);

	shas[0] = s2;
	shas[1] = s3;
	shas[2] = s1;
	assert_int_equal(hark_store_embedding_get_many(f->st, "p/emb", shas, 3, got, dims),
			 HARK_OK);
	assert_int_equal(dims[0], 4);
	assert_memory_equal(got[0], v2, sizeof(v2));
	assert_null(got[1]);
	assert_int_equal(dims[1], 0);
	assert_memory_equal(got[2], v1, sizeof(v1));
	for (int i = 0; i < 3; i++)
		free(got[i]);

	/* replace, and a batch in one transaction */
	shas[0] = s1;
	shas[1] = s3;
	assert_int_equal(hark_store_embedding_put_many(f->st, "p/emb", shas, 2, two, 4), HARK_OK);
	assert_int_equal(hark_store_embedding_get_many(f->st, "p/emb", shas, 2, got, dims),
			 HARK_OK);
	assert_memory_equal(got[0], two, 4 * sizeof(float));
	assert_memory_equal(got[1], two + 4, 4 * sizeof(float));
	free(got[0]);
	free(got[1]);

	memset(&acc, 0, sizeof(acc));
	assert_int_equal(hark_store_embedding_scan(f->st, "p/emb", scan_cb, &acc), HARK_OK);
	assert_int_equal(acc.n, 3);
	assert_int_equal(acc.dim_sum, 12);
	assert_true(fabs(acc.first_sum - (0.25 + 0.5 + 4)) < 1e-6);
	memset(&acc, 0, sizeof(acc));
	acc.stop_after = 1;
	assert_int_equal(hark_store_embedding_scan(f->st, "p/emb", scan_cb, &acc), HARK_OK);
	assert_int_equal(acc.n, 1);
	memset(&acc, 0, sizeof(acc));
	assert_int_equal(hark_store_embedding_scan(f->st, "q/other", scan_cb, &acc), HARK_OK);
	assert_int_equal(acc.n, 1);
	assert_int_equal(acc.dim_sum, 3);
	memset(&acc, 0, sizeof(acc));
	assert_int_equal(hark_store_embedding_scan(f->st, "none/such", scan_cb, &acc), HARK_OK);
	assert_int_equal(acc.n, 0);

	/* malformed vectors */
	v1[2] = NAN;
	assert_int_equal(hark_store_embedding_put(f->st, s1, "p/emb", v1, 4), HARK_ERR_INVALID_ARG);
	v1[2] = INFINITY;
	assert_int_equal(hark_store_embedding_put(f->st, s1, "p/emb", v1, 4), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_embedding_put(f->st, s1, "p/emb", v2, 0), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_embedding_put(f->st, s1, "p/emb", v2,
						  HARK_STORE_EMBED_DIM_MAX + 1),
			 HARK_ERR_LIMIT);
	assert_int_equal(hark_store_embedding_put(f->st, s1, "", v2, 4), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_embedding_put(f->st, "short", "p/emb", v2, 4),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_embedding_scan(f->st, "p/emb", NULL, NULL),
			 HARK_ERR_INVALID_ARG);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void test_input_checks(void **state)
{
	struct fx *f = *state;
	struct hark_meeting_rec m;
	struct hark_meeting_chunk ch;
	struct hark_search_doc d;
	char *big;
	size_t bign = HARK_STORE_DOC_TEXT_MAX + 10;

	memset(&m, 0, sizeof(m));
	memset(&ch, 0, sizeof(ch));
	m.name = (char *)"ok";
	assert_int_equal(hark_store_meeting_put(NULL, &m, NULL, 0, NULL, 0), HARK_ERR_INVALID_ARG);
	m.name = NULL;
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, NULL, 0), HARK_ERR_INVALID_ARG);
	m.name = (char *)"";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, NULL, 0), HARK_ERR_INVALID_ARG);
	big = malloc(bign + 1);
	assert_non_null(big);
	memset(big, 'x', bign);
	big[bign] = '\0';
	m.name = big;
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, NULL, 0), HARK_ERR_LIMIT);
	assert_int_equal(hark_store_meeting_get(f->st, big, &m), HARK_ERR_LIMIT);
	assert_int_equal(hark_store_meeting_delete(f->st, big), HARK_ERR_LIMIT);
	m.name = (char *)"bad\xff" "utf8";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, NULL, 0), HARK_ERR_INVALID_ARG);
	m.name = (char *)"ok";
	strcpy(m.content_sha, "not-hex");
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, NULL, 0), HARK_ERR_INVALID_ARG);
	m.content_sha[0] = '\0';
	m.analyzed_at = NAN;
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, NULL, 0), HARK_ERR_INVALID_ARG);
	m.analyzed_at = 0;
	/* a chunk without a valid sha */
	assert_int_equal(hark_store_meeting_put(f->st, &m, &ch, 1, NULL, 0), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_store_meeting_put(f->st, &m, &ch, HARK_STORE_CHUNKS_MAX + 1, NULL, 0),
			 HARK_ERR_LIMIT);
	/* documents */
	d = doc("chunk", NULL, "fine text", 0);
	d.kind = "memo";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_INVALID_ARG);
	d = doc("chunk", NULL, "", 0);
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_INVALID_ARG);
	d = doc("chunk", NULL, big, 0);
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_LIMIT);
	d = doc("chunk", NULL, "caf\xc3", 0);
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_INVALID_ARG);
	d = doc("chunk", NULL, "over\xed\xa0\x80long", 0); /* a UTF-16 surrogate */
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_INVALID_ARG);
	d = doc("chunk", NULL, "fine", 0);
	d.meeting = "another";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_INVALID_ARG);
	d.meeting = "ok";
	d.chunk_sha = "xyz";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_ERR_INVALID_ARG);
	d.chunk_sha = NULL;
	/* nothing of the above was written */
	assert_int_equal(hark_store_meeting_get(f->st, "ok", &m), HARK_ERR_NOT_FOUND);
	assert_int_equal(raw_int(f->db, "SELECT count(*) FROM search_docs"), 0);
	/* and a valid one goes through */
	memset(&m, 0, sizeof(m));
	m.name = (char *)"ok";
	assert_int_equal(hark_store_meeting_put(f->st, &m, NULL, 0, &d, 1), HARK_OK);
	assert_int_equal(hark_store_meeting_get(f->st, "ok", &m), HARK_OK);
	assert_true(m.analyzed_at > 1e9); /* 0 = now */
	assert_string_equal(m.content_sha, "");
	hark_meeting_rec_clear(&m);
	/* oversized queries and filters */
	{
		struct hark_search_hit *h = NULL;
		size_t n = 0;

		big[HARK_STORE_QUERY_MAX + 1] = '\0';
		assert_int_equal(hark_store_search_bm25(f->st, big, NULL, 10, &h, &n),
				 HARK_ERR_LIMIT);
		assert_int_equal(hark_store_search_bm25_in(f->st, "\"fine\"", NULL, "", 10, &h, &n),
				 HARK_ERR_INVALID_ARG);
		assert_int_equal(hark_store_search_bm25(f->st, "\"fine\"", NULL, 0, &h, &n),
				 HARK_OK); /* 0 = the default limit */
		assert_int_equal(n, 1);
		hark_search_hits_free(h, n);
	}
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migration_from_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meeting_crud, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reput_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_results, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bm25, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_without_fts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_embeddings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_checks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
