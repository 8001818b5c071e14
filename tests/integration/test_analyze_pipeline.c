/*
 * The meeting-analysis pipeline end to end on real transcripts and a real
 * SQLite store: every supported input format, schema validity of every
 * output, links back into the transcript, unchanged meetings reused,
 * a changed meeting re-analysed without duplicates in the search index,
 * malformed inputs failing alone with clear errors, and the LLM path against
 * hark-llm-sim: only new chunks are ever sent (checked in the simulator's
 * request log), identical chunks across meetings are sent once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "analyze/chunk.h"
#include "analyze/llm_minutes.h"
#include "analyze/pipeline.h"
#include "analyze/search.h"
#include "hark/hark.h"
#include "llm/llm.h"
#include "llm/schema.h"
#include "llmtest_util.h"
#include "schema_util.h"
#include "store/store.h"
#include "wd_util.h"

static struct hark_llm_schema *load_schema(const char *name)
{
	struct hark_llm_schema *s = su_schema_load(name);

	assert_non_null(s);
	return s;
}

static void assert_valid(const struct hark_llm_schema *s, const char *json_text, const char *what)
{
	char err[512] = "";

	if (su_schema_check_text(s, json_text, err, sizeof(err)) != 0)
		fail_msg("%s does not match its schema: %s", what, err);
}

static char *shared_path(const char *rel)
{
	const char *sh = wd_shared_dir();
	char *p = malloc(1024);

	assert_non_null(p);
	snprintf(p, 1024, "%s/%s", sh, rel);
	return p;
}

static int shared_ok(void)
{
	char *p = shared_path("meetings/ami/ES2004a.transcript.txt");
	struct stat sb;
	int ok = stat(p, &sb) == 0;

	free(p);
	return ok;
}

/* A short SRT with speakers, times and clear cues. */
static const char srt_meeting[] =
	"1\n00:00:01,000 --> 00:00:06,000\nAlice: Welcome everyone, today we plan the Atlas launch with Acme Corp.\n\n"
	"2\n00:00:06,500 --> 00:00:12,000\nBob: The Atlas budget is still open, we need to decide on the vendor.\n\n"
	"3\n00:00:12,500 --> 00:00:18,000\nAlice: We agreed to use Acme Corp as the hosting vendor for Atlas.\n\n"
	"4\n00:00:18,500 --> 00:00:25,000\nBob: I'll send the revised Atlas budget to Carol by next Friday.\n\n"
	"5\n00:00:25,500 --> 00:00:31,000\nCarol: Thanks Bob. We still need to figure out the launch date for Atlas.\n\n"
	"6\n00:00:31,500 --> 00:00:38,000\nAlice: Carol, can you draft the Atlas press release by the end of the month?\n\n"
	"7\n00:00:38,500 --> 00:00:44,000\nCarol: Yes, I will draft the press release and share it with Acme Corp.\n";

static void write_text(const char *dir, const char *name, const char *text, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void copy_shared(const char *rel, const char *dir, const char *name)
{
	char *src = shared_path(rel);
	size_t len = 0;
	char *data = lt_read_file(src, &len);

	assert_non_null(data);
	write_text(dir, name, data, len);
	free(data);
	free(src);
}

static size_t arr_len(const json_t *o, const char *k)
{
	return json_array_size(json_object_get(o, k));
}

static void check_refs(const json_t *items, size_t n_turns, double dur)
{
	size_t i;
	json_t *it;

	json_array_foreach(items, i, it) {
		json_t *turn = json_object_get(it, "turn");
		json_t *start = json_object_get(it, "start");

		if (json_is_integer(turn)) {
			assert_true(json_integer_value(turn) >= 0);
			assert_true((size_t)json_integer_value(turn) < n_turns);
		}
		if (json_is_number(start) && dur > 0)
			assert_true(json_number_value(start) <= dur + 0.01);
	}
}

/* ---- offline: formats, schemas, links ---------------------------------------------------- */

static void test_offline_formats(void **state)
{
	char dir[256], data[300], paths[5][400], err[512] = "";
	struct hark_store *st = NULL;
	struct hark_pipeline_input in[5];
	struct hark_pipeline_meeting out[5];
	struct hark_pipeline_stats stats;
	struct hark_graph corpus = {0};
	struct hark_llm_schema *ms, *gs;
	static const char *const names[5] = {"qmsum.json", "ES2004a.transcript.txt", "launch.srt",
					     "hark.json", "plain.txt"};
	static const char hark_json[] =
		"{\"text\":\"x\",\"date\":\"2024-03-04\",\"segments\":["
		"{\"id\":0,\"start\":0.0,\"end\":4.0,\"text\":\"Dana: Let's go with the blue design for the remote.\"},"
		"{\"id\":1,\"start\":4.5,\"end\":9.0,\"text\":\"Eve: I'll order the blue cases from the supplier by next Friday.\"},"
		"{\"id\":2,\"start\":9.5,\"end\":14.0,\"text\":\"Dana: Great, and the remote control prototype is due tomorrow.\"}]}";
	static const char plain[] = "Frank: The quarterly report covers the Berlin office.\n"
				    "Grace: I will review the quarterly report for the Berlin office tomorrow.\n"
				    "Frank: We decided to move the Berlin office review to Q3.\n";

	(void)state;
	if (!shared_ok())
		skip();
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "analyze"), 0);
	snprintf(data, sizeof(data), "%s/data", dir);
	{
		/* the first QMSum meeting, whatever its name */
		char *qdir = shared_path("meetings/qmsum");
		char cmd[1400];

		snprintf(cmd, sizeof(cmd), "cp \"$(ls -1 '%s'/*.json | head -n1)\" '%s/qmsum.json'", qdir, dir);
		assert_int_equal(system(cmd), 0);
		free(qdir);
	}
	copy_shared("meetings/ami/ES2004a.transcript.txt", dir, names[1]);
	write_text(dir, names[2], srt_meeting, sizeof(srt_meeting) - 1);
	write_text(dir, names[3], hark_json, sizeof(hark_json) - 1);
	write_text(dir, names[4], plain, sizeof(plain) - 1);
	assert_int_equal(hark_store_open(data, NULL, &st, err, sizeof(err)), HARK_OK);
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 5; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, names[i]);
		in[i].path = paths[i];
	}
	in[2].date = "2024-03-04"; /* a Monday */
	assert_int_equal(hark_pipeline_run(st, in, 5, NULL, out, &corpus, &stats, err, sizeof(err)),
			 HARK_OK);
	ms = load_schema("minutes.json");
	gs = load_schema("graph.json");
	for (int i = 0; i < 5; i++) {
		json_error_t je;
		json_t *mj;

		if (out[i].err)
			fail_msg("%s: %s", names[i], out[i].error);
		assert_string_equal(out[i].method, "offline");
		assert_false(out[i].reused);
		assert_valid(ms, out[i].minutes_json, names[i]);
		assert_valid(gs, out[i].graph_json, names[i]);
		assert_non_null(out[i].minutes_md);
		assert_true(strlen(out[i].minutes_md) > 20);
		mj = json_loads(out[i].minutes_json, 0, &je);
		assert_non_null(mj);
		check_refs(json_object_get(mj, "decisions"), out[i].turns, -1);
		check_refs(json_object_get(mj, "action_items"), out[i].turns, -1);
		check_refs(json_object_get(mj, "open_questions"), out[i].turns, -1);
		check_refs(json_object_get(mj, "summary_points"), out[i].turns, -1);
		json_decref(mj);
	}
	assert_string_equal(out[1].name, "ES2004a");
	assert_string_equal(out[2].name, "launch");
	{
		/* the SRT meeting: speakers, the Bob action with a resolved due date and a time */
		json_error_t je;
		json_t *mj = json_loads(out[2].minutes_json, 0, &je), *it;
		size_t i;
		int found_bob = 0, found_dec = 0;

		assert_non_null(mj);
		assert_string_equal(json_string_value(json_object_get(mj, "date")), "2024-03-04");
		assert_true(arr_len(mj, "participants") == 3);
		json_array_foreach(json_object_get(mj, "action_items"), i, it) {
			const char *owner = json_string_value(json_object_get(it, "owner"));

			if (owner && !strcmp(owner, "Bob")) {
				found_bob = 1;
				/* next Friday said on Monday 2024-03-04 -> Friday of the following week */
				assert_string_equal(json_string_value(json_object_get(it, "due_date")),
						    "2024-03-15");
				assert_true(json_number_value(json_object_get(it, "start")) >= 18.0);
				assert_true(json_number_value(json_object_get(it, "start")) <= 25.0);
				assert_int_equal(json_integer_value(json_object_get(it, "turn")), 3);
				assert_non_null(strstr(json_string_value(json_object_get(it, "evidence_quote")),
						       "revised Atlas budget"));
			}
		}
		json_array_foreach(json_object_get(mj, "decisions"), i, it)
			if (strstr(json_string_value(json_object_get(it, "text")), "Acme"))
				found_dec = 1;
		assert_true(found_bob);
		assert_true(found_dec);
		json_decref(mj);
	}
	{
		/* the hark JSON meeting takes its date from the "date" member */
		json_error_t je;
		json_t *mj = json_loads(out[3].minutes_json, 0, &je);

		assert_string_equal(json_string_value(json_object_get(mj, "date")), "2024-03-04");
		json_decref(mj);
	}
	/* corpus graph: resolved, valid, holds entities of several meetings */
	assert_true(corpus.n_entities > 0);
	{
		json_t *cj = hark_graph_to_json(&corpus);
		char *txt = json_dumps(cj, 0);

		assert_valid(gs, txt, "corpus graph");
		free(txt);
		json_decref(cj);
	}
	/* search finds the SRT meeting's decision with its turn */
	{
		struct hark_search_params sp = hark_search_default_params();
		struct hark_search_hit *hits = NULL;
		size_t n = 0;

		assert_int_equal(hark_search_query(st, NULL, "hosting vendor", &sp, &hits, &n, err,
						   sizeof(err)),
				 HARK_OK);
		assert_true(n > 0);
		assert_string_equal(hits[0].meeting, "launch");
		hark_search_hits_free(hits, n);
	}
	for (int i = 0; i < 5; i++)
		hark_pipeline_meeting_clear(&out[i]);
	hark_graph_clear(&corpus);
	hark_llm_schema_free(ms);
	hark_llm_schema_free(gs);
	hark_store_close(st);
	lt_rmrf(dir);
}

/* ---- reuse, change, no duplicates ------------------------------------------------------------- */

static size_t count_hits(struct hark_store *st, const char *q, const char *kind)
{
	struct hark_search_params sp = hark_search_default_params();
	struct hark_search_hit *hits = NULL;
	size_t n = 0;
	char err[256];

	sp.limit = 100;
	sp.kind = kind;
	assert_int_equal(hark_search_query(st, NULL, q, &sp, &hits, &n, err, sizeof(err)), HARK_OK);
	hark_search_hits_free(hits, n);
	return n;
}

static void test_rerun_and_change(void **state)
{
	char dir[256], data[300], p1[400], p2[400], err[512] = "";
	struct hark_store *st = NULL;
	struct hark_pipeline_input in[2];
	struct hark_pipeline_meeting out[2];
	struct hark_pipeline_stats stats;
	static const char m2[] = "Henry: The zeppelin prototype needs a new gondola.\n"
				 "Iris: I will sketch the zeppelin gondola by Thursday.\n";
	static const char m2b[] = "Henry: The zeppelin prototype needs a new gondola.\n"
				  "Iris: I will sketch the zeppelin gondola by Thursday.\n"
				  "Henry: We agreed the quokka mascot goes on the gondola.\n";

	(void)state;
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "analyze-rerun"), 0);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(p1, sizeof(p1), "%s/one.srt", dir);
	snprintf(p2, sizeof(p2), "%s/two.txt", dir);
	write_text(dir, "one.srt", srt_meeting, sizeof(srt_meeting) - 1);
	write_text(dir, "two.txt", m2, sizeof(m2) - 1);
	assert_int_equal(hark_store_open(data, NULL, &st, err, sizeof(err)), HARK_OK);
	memset(in, 0, sizeof(in));
	in[0].path = p1;
	in[1].path = p2;
	assert_int_equal(hark_pipeline_run(st, in, 2, NULL, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(out[0].err, HARK_OK);
	assert_int_equal(out[1].err, HARK_OK);
	assert_int_equal(stats.reused, 0);
	hark_pipeline_meeting_clear(&out[0]);
	hark_pipeline_meeting_clear(&out[1]);
	assert_int_equal(count_hits(st, "zeppelin", "chunk"), 1);

	/* unchanged: both reused, same results */
	assert_int_equal(hark_pipeline_run(st, in, 2, NULL, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_true(out[0].reused);
	assert_true(out[1].reused);
	assert_int_equal(stats.reused, 2);
	assert_non_null(out[0].minutes_json);
	assert_non_null(strstr(out[0].minutes_json, "Atlas"));
	hark_pipeline_meeting_clear(&out[0]);
	hark_pipeline_meeting_clear(&out[1]);

	/* one changed: only it is analysed again; the index holds no duplicates */
	write_text(dir, "two.txt", m2b, sizeof(m2b) - 1);
	assert_int_equal(hark_pipeline_run(st, in, 2, NULL, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_true(out[0].reused);
	assert_false(out[1].reused);
	assert_non_null(strstr(out[1].minutes_json, "quokka"));
	assert_int_equal(count_hits(st, "zeppelin", "chunk"), 1);
	assert_int_equal(count_hits(st, "quokka", "chunk"), 1);
	hark_pipeline_meeting_clear(&out[0]);
	hark_pipeline_meeting_clear(&out[1]);
	hark_store_close(st);
	lt_rmrf(dir);
}

/* ---- malformed inputs ------------------------------------------------------------------------ */

static void test_malformed_inputs(void **state)
{
	char dir[256], data[300], paths[7][400], err[512] = "";
	struct hark_store *st = NULL;
	struct hark_pipeline_input in[7];
	struct hark_pipeline_meeting out[7];
	static const char bin[] = "RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00";
	static const char bad_json[] = "{\"segments\": [ {\"start\": 1, \"text\": \"hi\" ";
	static const char bad_utf8[] = "Alice: caf\xc3\x28 is closed\n";
	static const char bad_srt[] = "1\n00:00:01,000 --> 00:00:xx,000\nAlice: hello there\n";
	static const char good[] = "Alice: We agreed to ship the widget on Monday.\n";
	static const char qmsum_bad[] = "{\"meeting_transcripts\": [{\"speaker\": 3}]}";
	static const int expect[7] = {HARK_ERR_FORMAT, HARK_ERR_FORMAT, HARK_ERR_FORMAT,
				      HARK_ERR_FORMAT, HARK_ERR_EMPTY, HARK_OK, HARK_ERR_FORMAT};
	const char *names[7] = {"a.wav.txt", "b.json", "c.txt", "d.srt", "e.txt", "f.txt", "g.json"};

	(void)state;
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "analyze-bad"), 0);
	snprintf(data, sizeof(data), "%s/data", dir);
	write_text(dir, names[0], bin, sizeof(bin) - 1);
	write_text(dir, names[1], bad_json, sizeof(bad_json) - 1);
	write_text(dir, names[2], bad_utf8, sizeof(bad_utf8) - 1);
	write_text(dir, names[3], bad_srt, sizeof(bad_srt) - 1);
	write_text(dir, names[4], "  \n\n", 4);
	write_text(dir, names[5], good, sizeof(good) - 1);
	write_text(dir, names[6], qmsum_bad, sizeof(qmsum_bad) - 1);
	assert_int_equal(hark_store_open(data, NULL, &st, err, sizeof(err)), HARK_OK);
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 7; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", dir, names[i]);
		in[i].path = paths[i];
	}
	assert_int_equal(hark_pipeline_run(st, in, 7, NULL, out, NULL, NULL, err, sizeof(err)),
			 HARK_OK);
	for (int i = 0; i < 7; i++) {
		if (out[i].err != expect[i])
			fail_msg("%s: got %s (%s), expected %s", names[i], hark_err_code(out[i].err),
				 out[i].error, hark_err_code(expect[i]));
		if (expect[i] != HARK_OK) {
			assert_true(strlen(out[i].error) > 5);
			assert_null(out[i].minutes_json);
		}
		hark_pipeline_meeting_clear(&out[i]);
	}
	/* a missing file and a bad date */
	{
		struct hark_pipeline_input x[2];
		struct hark_pipeline_meeting o[2];
		char missing[400];

		memset(x, 0, sizeof(x));
		snprintf(missing, sizeof(missing), "%s/nope.txt", dir);
		x[0].path = missing;
		x[1].path = paths[5];
		x[1].date = "2024-02-30";
		assert_int_equal(hark_pipeline_run(st, x, 2, NULL, o, NULL, NULL, err, sizeof(err)),
				 HARK_OK);
		assert_int_equal(o[0].err, HARK_ERR_NOT_FOUND);
		assert_int_equal(o[1].err, HARK_ERR_INVALID_ARG);
		hark_pipeline_meeting_clear(&o[0]);
		hark_pipeline_meeting_clear(&o[1]);
	}
	/* the good meeting stayed stored */
	{
		struct hark_meeting_rec rec;

		memset(&rec, 0, sizeof(rec));
		assert_int_equal(hark_store_meeting_get(st, "f", &rec), HARK_OK);
		assert_non_null(rec.minutes_json);
		hark_meeting_rec_clear(&rec);
	}
	hark_store_close(st);
	lt_rmrf(dir);
}

/* ---- LLM path: only new chunks are sent -------------------------------------------------------- */

/* chunk IDs of every chat request logged after entry `from` (status 200 only when ok_only) */
static size_t log_chunk_ids(const json_t *log, size_t from, char ids[][64], size_t cap,
			    size_t *requests)
{
	size_t i, n = 0;
	json_t *e;

	*requests = 0;
	json_array_foreach(log, i, e) {
		size_t k;
		json_t *c;
		const char *path = json_string_value(json_object_get(e, "path"));

		if (i < from || !path || !strstr(path, "chat/completions"))
			continue;
		if (json_integer_value(json_object_get(e, "status")) != 200)
			continue;
		(*requests)++;
		/* extraction requests name their chunks by sha256 prefix (12 hex
		 * digits); reduce requests by index, which are not counted */
		json_array_foreach(json_object_get(e, "chunks"), k, c) {
			const char *id = json_string_value(c);

			if (id && strlen(id) == 12 && strspn(id, "0123456789abcdef") == 12 && n < cap)
				snprintf(ids[n++], 64, "%s", id);
		}
	}
	return n;
}

static int has_id(char ids[][64], size_t n, const char *sha)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(ids[i]) >= 8 && strncmp(sha, ids[i], strlen(ids[i])) == 0)
			return 1;
	return 0;
}

static void test_llm_incremental(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *llm = NULL;
	struct hark_llm_params lp = hark_llm_default_params();
	struct hark_store *st = NULL;
	struct hark_pipeline_params pp = hark_pipeline_default_params();
	struct hark_pipeline_input in[3];
	struct hark_pipeline_meeting out[3];
	struct hark_pipeline_stats stats;
	char dir[256], data[300], p[3][400], err[512] = "", (*ids)[64];
	json_t *log;
	size_t log_n, n_ids, reqs;
	size_t ext_reqs1;

	(void)state;
	if (!lt_sim_bin() || !shared_ok())
		skip();
	ids = calloc(4096, sizeof(*ids));
	assert_non_null(ids);
	lt_clean_env();
	setenv("HARK_TEST_SIM_KEY", "k-analyze", 1);
	assert_int_equal(lt_sim_start(&sim, "{\"models\":[{\"name\":\"m\",\"context_window\":32768,"
					     "\"max_output_tokens\":8192}]}",
				      1, "k-analyze"),
			 0);
	{
		char *cj = lt_fmt("{\"providers\":[{\"name\":\"sim\",\"base_url\":\"%s\","
			       "\"api_key_env\":\"HARK_TEST_SIM_KEY\",\"models\":[{\"name\":\"m\","
			       "\"context_window\":32768,\"max_output_tokens\":8192,"
			       "\"max_concurrency\":8}]}],\"routes\":{\"default\":[\"sim/m\"]}}",
			       sim.base);

		assert_non_null(cj);
		cfg = lt_config(cj);
		free(cj);
	}
	assert_non_null(cfg);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "analyze-llm"), 0);
	snprintf(data, sizeof(data), "%s/data", dir);
	assert_int_equal(hark_store_open(data, NULL, &st, err, sizeof(err)), HARK_OK);
	lp.config = cfg;
	lp.store = st;
	lp.seed = 7;
	assert_int_equal(hark_llm_init(&lp, &llm, err, sizeof(err)), HARK_OK);
	copy_shared("meetings/ami/ES2004a.transcript.txt", dir, "a.txt");
	copy_shared("meetings/ami/ES2004b.transcript.txt", dir, "b.txt");
	copy_shared("meetings/ami/ES2004a.transcript.txt", dir, "c.txt"); /* same content as a */
	memset(in, 0, sizeof(in));
	for (int i = 0; i < 3; i++) {
		snprintf(p[i], sizeof(p[i]), "%s/%c.txt", dir, 'a' + i);
		in[i].path = p[i];
	}
	pp.llm = llm;
	pp.batch_chunks = 3;
	pp.chunk.max_tokens = 400;
	pp.chunk.overlap_tokens = 40;

	/* run 1: every unique chunk sent exactly once (c duplicates a) */
	assert_int_equal(hark_pipeline_run(st, in, 3, &pp, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	for (int i = 0; i < 3; i++) {
		if (out[i].err)
			fail_msg("%s: %s", out[i].name, out[i].error);
		assert_string_equal(out[i].method, "llm");
	}
	assert_int_equal(stats.chunks, out[0].chunks + out[1].chunks + out[2].chunks);
	assert_int_equal(stats.chunks_unique, out[0].chunks + out[1].chunks);
	assert_int_equal(stats.chunks_sent, stats.chunks_unique);
	log = lt_sim_log(&sim);
	n_ids = log_chunk_ids(log, 0, ids, 4096, &reqs);
	ext_reqs1 = reqs;
	if (getenv("HARK_TEST_DEBUG")) {
		char *d = json_dumps(json_array_get(log, 0), 0);
		fprintf(stderr, "log %zu entries, %zu ids, %zu reqs: %s\n", json_array_size(log), n_ids, reqs, d);
		free(d);
	}
	/* extraction requests carry chunk markers; the unique chunks were each sent once */
	{
		size_t marked = 0;

		for (size_t i = 0; i < n_ids; i++)
			for (size_t j = i + 1; j < n_ids; j++)
				assert_string_not_equal(ids[i], ids[j]);
		marked = n_ids;
		assert_int_equal(marked, stats.chunks_unique);
	}
	log_n = json_array_size(log);
	json_decref(log);
	for (int i = 0; i < 3; i++)
		hark_pipeline_meeting_clear(&out[i]);

	/* run 2, unchanged: nothing sent at all */
	assert_int_equal(hark_pipeline_run(st, in, 3, &pp, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	for (int i = 0; i < 3; i++) {
		assert_true(out[i].reused);
		hark_pipeline_meeting_clear(&out[i]);
	}
	log = lt_sim_log(&sim);
	assert_int_equal(json_array_size(log), log_n);
	json_decref(log);

	/* run 3: b changes at its end; only b's new chunks are sent */
	{
		char *old;
		size_t len;
		FILE *f;
		struct hark_chunk_list before = {0};

		(void)before;
		old = lt_read_file(p[1], &len);
		assert_non_null(old);
		f = fopen(p[1], "ab");
		assert_non_null(f);
		fputs("\nThe zeppelin marketing plan goes to the board next week and Maria will present it.\n", f);
		fclose(f);
		free(old);
	}
	assert_int_equal(hark_pipeline_run(st, in, 3, &pp, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_true(out[0].reused);
	assert_false(out[1].reused);
	assert_true(out[2].reused);
	assert_true(stats.chunks_sent >= 1);
	assert_true(stats.chunks_sent < out[1].chunks);
	log = lt_sim_log(&sim);
	n_ids = log_chunk_ids(log, log_n, ids, 4096, &reqs);
	/* every chunk sent now is new, and only as many as the pipeline says */
	assert_int_equal(n_ids, stats.chunks_sent);
	assert_true(reqs >= 1 && reqs < ext_reqs1);
	json_decref(log);
	assert_non_null(strstr(out[1].minutes_json, "\"method\": \"llm\""));
	for (int i = 0; i < 3; i++)
		hark_pipeline_meeting_clear(&out[i]);
	(void)has_id;

	hark_llm_free(llm);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
	lt_rmrf(dir);
	free(ids);
}

/* Chunks whose extraction failed are reported, the meeting still gets
 * minutes, and the next run sends exactly those chunks again. */
static void test_llm_failed_chunks_retried(void **state)
{
	struct lt_sim sim;
	struct hark_llm_config *cfg;
	struct hark_llm *llm = NULL;
	struct hark_llm_params lp = hark_llm_default_params();
	struct hark_store *st = NULL;
	struct hark_pipeline_params pp = hark_pipeline_default_params();
	struct hark_pipeline_input in[1];
	struct hark_pipeline_meeting out[1];
	struct hark_pipeline_stats stats;
	char dir[256], data[300], p0[400], err[512] = "";
	size_t n_chunks;

	(void)state;
	if (!lt_sim_bin() || !shared_ok())
		skip();
	lt_clean_env();
	setenv("HARK_TEST_SIM_KEY", "k-analyze", 1);
	assert_int_equal(lt_sim_start(&sim, "{\"models\":[{\"name\":\"m\",\"context_window\":32768,"
					     "\"max_output_tokens\":8192}]}",
				      1, "k-analyze"),
			 0);
	{
		char *cj = lt_fmt("{\"providers\":[{\"name\":\"sim\",\"base_url\":\"%s\","
			       "\"api_key_env\":\"HARK_TEST_SIM_KEY\",\"models\":[{\"name\":\"m\","
			       "\"context_window\":32768,\"max_output_tokens\":8192}]}],"
			       "\"routes\":{\"default\":[\"sim/m\"]},\"llm\":{\"max_attempts\":1,"
			       "\"backoff_base_s\":0.01,\"breaker_failures\":1000,\"breaker_open_s\":0.1}}",
			       sim.base);

		assert_non_null(cj);
		cfg = lt_config(cj);
		free(cj);
	}
	assert_non_null(cfg);
	assert_int_equal(lt_mkdtemp(dir, sizeof(dir), "analyze-fail"), 0);
	snprintf(data, sizeof(data), "%s/data", dir);
	assert_int_equal(hark_store_open(data, NULL, &st, err, sizeof(err)), HARK_OK);
	lp.config = cfg;
	lp.store = st;
	lp.seed = 3;
	assert_int_equal(hark_llm_init(&lp, &llm, err, sizeof(err)), HARK_OK);
	copy_shared("meetings/ami/ES2004c.transcript.txt", dir, "c.txt");
	snprintf(p0, sizeof(p0), "%s/c.txt", dir);
	memset(in, 0, sizeof(in));
	in[0].path = p0;
	pp.llm = llm;
	pp.batch_chunks = 4;
	pp.chunk.max_tokens = 500;
	pp.chunk.overlap_tokens = 50;

	/* the provider is down: every chunk fails, the meeting falls back */
	assert_int_equal(lt_sim_post(&sim, "/_sim/fail", "{\"status\":500}"), 200);
	assert_int_equal(hark_pipeline_run(st, in, 1, &pp, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(out[0].err, HARK_OK);
	n_chunks = out[0].chunks;
	assert_true(n_chunks > 2);
	assert_int_equal(out[0].chunks_failed, n_chunks);
	assert_int_equal(stats.chunks_failed, n_chunks);
	assert_true(strlen(out[0].warning) > 0);
	assert_non_null(out[0].minutes_json);
	hark_pipeline_meeting_clear(&out[0]);

	/* it recovers: the same run again sends exactly the failed chunks */
	assert_int_equal(lt_sim_post(&sim, "/_sim/recover", "{}"), 200);
	lt_sleep(0.2);
	assert_int_equal(hark_pipeline_run(st, in, 1, &pp, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_false(out[0].reused);
	assert_int_equal(stats.chunks_sent, n_chunks);
	assert_int_equal(stats.chunks_failed, 0);
	assert_int_equal(out[0].chunks_failed, 0);
	hark_pipeline_meeting_clear(&out[0]);

	/* and then nothing is left to do */
	assert_int_equal(hark_pipeline_run(st, in, 1, &pp, out, NULL, &stats, err, sizeof(err)),
			 HARK_OK);
	assert_true(out[0].reused);
	assert_int_equal(stats.chunks_sent, 0);
	hark_pipeline_meeting_clear(&out[0]);

	hark_llm_free(llm);
	hark_store_close(st);
	hark_llm_config_free(cfg);
	assert_int_equal(lt_sim_stop(&sim), 0);
	lt_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_formats),
		cmocka_unit_test(test_rerun_and_change),
		cmocka_unit_test(test_malformed_inputs),
		cmocka_unit_test_teardown(test_llm_incremental, lt_teardown),
		cmocka_unit_test_teardown(test_llm_failed_chunks_retried, lt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
