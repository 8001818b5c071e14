/*
 * Meeting analysis through `hark serve`, end to end over 127.0.0.1 with the
 * real binary (docs/SERVER.md, "Meeting analysis" and "Search"): a shared
 * QMSum meeting submitted as an analyze job (JSON body, the meeting as a
 * string) runs to done with stage events named after the pipeline stages,
 * and its minutes (JSON with summary, decisions, action items and
 * participants of the meeting), Markdown minutes and knowledge graph are
 * served with their content types; /v1/search finds the meeting by one of
 * its own words (with meeting name, turn and text); a text upload with
 * type=analyze takes its meeting name from the file name; an identical
 * submission is answered from the first job, force bypasses that; malformed
 * transcripts fail the job with malformed_input, binary and non-UTF-8
 * uploads are refused with 415, bad options and bad search arguments with
 * 400, and the server keeps serving; /metrics counts analysis jobs by
 * method. With the LLM simulator built, a server configured with it
 * analyses with method "llm" and the job shows its LLM usage; with the
 * shared audio, a run job transcribes and analyses one upload.
 */
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_harness.h"
#include "srv_harness.h"

static struct srv_server A;
static int a_up;
/* the LLM tests' server and simulator: static so that the group teardown
 * stops them when an assertion ends a test early */
static struct srv_server L;
static struct simh sim;
static int l_up, sim_up;
static char scratch[512];
static char meeting_name[64];    /* base name of the first QMSum meeting */
static char meeting_path[1024];
static char analyze_job[64];     /* the QMSum analyze job (done) */
static char probe_word[64];      /* a content word of that meeting */

static void need_server(void)
{
	if (!srv_serve_available())
		skip();
}

static struct srv_server *server_a(void)
{
	const char *args[] = {"--no-auth", "--workers", "2", "--threads", "1", "--engine",
			      "pocketsphinx", NULL};
	need_server();
	if (!a_up) {
		assert_int_equal(srv_init(&A), 0);
		assert_int_equal(srv_start(&A, NULL, args), 0);
		a_up = 1;
	}
	return &A;
}

/* First QMSum meeting by name ($HARK_SHARED/meetings/qmsum/<first>.json). */
static int find_meeting(void)
{
	char dir[768];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/meetings/qmsum", srv_shared());
	d = opendir(dir);
	if (!d)
		return -1;
	meeting_name[0] = '\0';
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n < 6 || n - 5 >= sizeof(meeting_name) || strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		char base[64];
		memcpy(base, e->d_name, n - 5);
		base[n - 5] = '\0';
		if (!meeting_name[0] || strcmp(base, meeting_name) < 0)
			snprintf(meeting_name, sizeof(meeting_name), "%s", base);
	}
	closedir(d);
	if (!meeting_name[0])
		return -1;
	snprintf(meeting_path, sizeof(meeting_path), "%s/%s.json", dir, meeting_name);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(scratch, sizeof(scratch), "%s/hark-srvana-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(scratch))
		return -1;
	if (find_meeting() != 0)
		meeting_path[0] = '\0';
	return 0;
}

static int group_teardown(void **state)
{
	int rc = 0;
	(void)state;
	if (a_up)
		rc |= srv_destroy(&A);
	if (l_up)
		rc |= srv_destroy(&L);
	if (sim_up)
		simh_stop(&sim);
	srv_rmtree(scratch);
	return rc;
}

static void need_meeting(void)
{
	if (!meeting_path[0])
		skip();
}

/* POST /v1/jobs {"type":"analyze","transcript":<text as a string>,"options":opts}. */
static long submit_analyze(struct srv_server *s, const char *text, json_t *opts, char *id,
			   size_t idlen, struct srv_resp *out)
{
	json_t *body = json_pack("{s:s,s:s}", "type", "analyze", "transcript", text);
	char *txt;
	long st;

	if (opts)
		json_object_set(body, "options", opts);
	txt = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	assert_non_null(txt);
	memset(out, 0, sizeof(*out));
	srv_post_json(s, "/v1/jobs", txt, out);
	free(txt);
	st = out->status;
	if (id && (st == 200 || st == 202) && srv_jstr(out->json, "id"))
		snprintf(id, idlen, "%s", srv_jstr(out->json, "id"));
	return st;
}

/* The most frequent word of 8+ letters (lowercase ASCII) in the "content"
 * members of the meeting's turns, annotations in brackets left out: a word
 * that certainly occurs in what the meeting's participants said. */
static void pick_probe_word(const char *meeting_json, char *out, size_t n)
{
	json_t *root = json_loads(meeting_json, 0, NULL), *arr = NULL, *t;
	char words[512][32];
	int counts[512];
	size_t nw = 0, i;

	out[0] = '\0';
	assert_non_null(root);
	arr = json_object_get(root, "meeting_transcripts");
	assert_true(json_is_array(arr));
	json_array_foreach(arr, i, t) {
		const char *p = json_string_value(json_object_get(t, "content"));
		while (p && *p) {
			char w[32];
			size_t k = 0;
			while (*p && !isalpha((unsigned char)*p)) {
				/* skip annotations such as {disfmarker}, [noise], <laugh> */
				const char *close = *p == '{' ? strchr(p, '}') : *p == '[' ? strchr(p, ']')
						    : *p == '<' ? strchr(p, '>') : NULL;
				p = close ? close + 1 : p + 1;
			}
			while (*p && isalpha((unsigned char)*p)) {
				if (k + 1 < sizeof(w))
					w[k++] = (char)tolower((unsigned char)*p);
				p++;
			}
			w[k] = '\0';
			if (k < 8 || k + 1 >= sizeof(w))
				continue;
			size_t j;
			for (j = 0; j < nw && strcmp(words[j], w) != 0; j++)
				;
			if (j == nw && nw < 512) {
				memcpy(words[nw], w, k + 1);
				counts[nw++] = 0;
			}
			if (j < nw)
				counts[j]++;
		}
	}
	if (nw > 0) {
		size_t best = 0;
		for (size_t j = 1; j < nw; j++)
			if (counts[j] > counts[best] ||
			    (counts[j] == counts[best] && strcmp(words[j], words[best]) < 0))
				best = j;
		size_t l = strnlen(words[best], n - 1);

		memcpy(out, words[best], l);
		out[l] = '\0';
	}
	json_decref(root);
}

/* Stage names seen in the job's stored events (SSE replay of a finished job). */
static int events_have_stage(struct srv_server *s, const char *id, const char *stage)
{
	struct srv_events ev;
	char path[128];
	int found = 0;

	memset(&ev, 0, sizeof(ev));
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
	assert_int_equal(srv_sse_collect(s, path, NULL, 20, &ev), 0);
	for (size_t i = 0; i < ev.n; i++) {
		const char *st = srv_jstr(ev.ev[i].json, "progress.stage");
		if (st && strcmp(st, stage) == 0)
			found = 1;
	}
	srv_events_free(&ev);
	return found;
}

/* ---- the QMSum meeting -------------------------------------------------------- */

static void test_analyze_meeting(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char *text, path[160], *ct;
	json_t *opts, *job, *m;
	size_t n;

	(void)state;
	need_meeting();
	text = srv_slurp(meeting_path, &n);
	assert_non_null(text);
	pick_probe_word(text, probe_word, sizeof(probe_word));
	SRV_ASSERT(s, probe_word[0] != '\0');
	opts = json_pack("{s:s,s:s}", "name", meeting_name, "date", "2024-03-05");
	SRV_ASSERT(s, submit_analyze(s, text, opts, analyze_job, sizeof(analyze_job), &r) == 202);
	SRV_ASSERT(s, strcmp(srv_jstr(r.json, "status"), "queued") == 0);
	srv_resp_free(&r);
	json_decref(opts);
	free(text);

	job = srv_wait_status(s, analyze_job, "done|failed|canceled", 300);
	SRV_ASSERT(s, job != NULL);
	if (strcmp(srv_jstr(job, "status"), "done") != 0)
		fprintf(stderr, "job ended %s: %s\n", srv_jstr(job, "status"),
			srv_jstr(job, "error.message") ? srv_jstr(job, "error.message") : "");
	SRV_ASSERT(s, strcmp(srv_jstr(job, "status"), "done") == 0);
	assert_string_equal(srv_jstr(job, "type"), "analyze");
	SRV_ASSERT(s, srv_jget(job, "timings.analyze") != NULL);
	json_decref(job);

	/* minutes (JSON) */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes", analyze_job);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200);
	ct = srv_header(&r, "Content-Type");
	SRV_ASSERT(s, ct && strncmp(ct, "application/json", 16) == 0);
	free(ct);
	m = r.json;
	SRV_ASSERT(s, m != NULL);
	assert_string_equal(srv_jstr(m, "meeting"), meeting_name);
	assert_string_equal(srv_jstr(m, "date"), "2024-03-05");
	assert_string_equal(srv_jstr(m, "method"), "offline");
	SRV_ASSERT(s, json_is_string(json_object_get(m, "summary")) &&
			      strlen(srv_jstr(m, "summary")) > 40);
	SRV_ASSERT(s, json_is_array(json_object_get(m, "decisions")));
	SRV_ASSERT(s, json_is_array(json_object_get(m, "action_items")));
	SRV_ASSERT(s, json_array_size(json_object_get(m, "participants")) >= 2);
	/* participants are the meeting's speakers: each spoke some turns */
	{
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(m, "participants"), i, p) {
			SRV_ASSERT(s, json_is_string(json_object_get(p, "name")));
			SRV_ASSERT(s, srv_jnum(p, "turns", 0) >= 1);
		}
	}
	srv_resp_free(&r);

	/* the default result format of an analyze job is its minutes */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", analyze_job);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && r.json && srv_jstr(r.json, "meeting") &&
			      strcmp(srv_jstr(r.json, "meeting"), meeting_name) == 0);
	srv_resp_free(&r);

	/* Markdown minutes */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes.md", analyze_job);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200);
	ct = srv_header(&r, "Content-Type");
	SRV_ASSERT(s, ct && strncmp(ct, "text/markdown", 13) == 0);
	free(ct);
	SRV_ASSERT(s, r.len > 100 && strchr(r.body, '#') != NULL);
	SRV_ASSERT(s, strstr(r.body, meeting_name) != NULL);
	srv_resp_free(&r);

	/* knowledge graph */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=graph", analyze_job);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && r.json != NULL);
	SRV_ASSERT(s, json_is_array(json_object_get(r.json, "entities")));
	SRV_ASSERT(s, json_is_array(json_object_get(r.json, "relations")));
	SRV_ASSERT(s, json_array_size(json_object_get(r.json, "entities")) > 0);
	srv_resp_free(&r);

	/* a transcript format an analyze job does not have */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=srt", analyze_job);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes.pdf", analyze_job);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 404);
	srv_resp_free(&r);

	/* progress events named the pipeline stages */
	SRV_ASSERT(s, events_have_stage(s, analyze_job, "read"));
	SRV_ASSERT(s, events_have_stage(s, analyze_job, "offline"));
	SRV_ASSERT(s, events_have_stage(s, analyze_job, "index"));
}

static void test_search(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char path[512];
	json_t *hit, *res;
	size_t i;
	int found = 0;

	(void)state;
	need_meeting();
	if (!analyze_job[0] || !probe_word[0])
		skip();
	snprintf(path, sizeof(path), "/v1/search?q=%s&limit=20", probe_word);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && r.json != NULL);
	assert_string_equal(srv_jstr(r.json, "query"), probe_word);
	res = json_object_get(r.json, "results");
	SRV_ASSERT(s, json_is_array(res) && json_array_size(res) >= 1 && json_array_size(res) <= 20);
	json_array_foreach(res, i, hit) {
		const char *mt = srv_jstr(hit, "meeting");
		const char *txt = srv_jstr(hit, "text");
		if (mt && strcmp(mt, meeting_name) == 0 && json_is_integer(json_object_get(hit, "turn")) &&
		    txt && strcasestr(txt, probe_word))
			found = 1;
	}
	SRV_ASSERT(s, found);
	srv_resp_free(&r);

	/* filters: chunks of this meeting only, one result */
	snprintf(path, sizeof(path), "/v1/search?q=%s&kind=chunk&meeting=%s&limit=1", probe_word,
		 meeting_name);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && r.json != NULL);
	res = json_object_get(r.json, "results");
	SRV_ASSERT(s, json_array_size(res) == 1);
	hit = json_array_get(res, 0);
	assert_string_equal(srv_jstr(hit, "kind"), "chunk");
	assert_string_equal(srv_jstr(hit, "meeting"), meeting_name);
	srv_resp_free(&r);

	/* a meeting that does not exist has no hits */
	snprintf(path, sizeof(path), "/v1/search?q=%s&meeting=no-such-meeting", probe_word);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && json_array_size(srv_jget(r.json, "results")) == 0);
	srv_resp_free(&r);
}

static void test_search_bad_args(void **state)
{
	struct srv_server *s = server_a();
	static const char *const bad[] = {
		"/v1/search", "/v1/search?q=", "/v1/search?q=%20%20", "/v1/search?limit=5",
		"/v1/search?q=budget&limit=0", "/v1/search?q=budget&limit=101",
		"/v1/search?q=budget&limit=ten", "/v1/search?q=budget&kind=bogus",
		"/v1/search?q=%21%3F%21", /* no word to search for */
	};
	struct srv_resp r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(srv_get(s, bad[i], &r), 0);
		if (r.status != 400)
			fprintf(stderr, "%s -> %ld %s\n", bad[i], r.status, r.body ? r.body : "");
		SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
		srv_resp_free(&r);
	}
	assert_int_equal(srv_get(s, "/v1/search", &r), 0);
	SRV_ASSERT(s, srv_is_error(&r, "missing_query"));
	srv_resp_free(&r);
	assert_int_equal(srv_request(s, "POST", "/v1/search?q=x", "application/json", "{}", 2, NULL,
				     &r), 0);
	SRV_ASSERT(s, r.status == 405);
	srv_resp_free(&r);
}

/* ---- text upload, dedup, force -------------------------------------------------- */

static void test_text_upload(void **state)
{
	struct srv_server *s = server_a();
	const char *fields[] = {"type", "analyze", NULL};
	char path[1024], id[64] = "", id2[64] = "", res[160];
	struct srv_resp r;
	json_t *job;

	(void)state;
	need_meeting();
	/* a plain "Speaker: text" transcript, the type field after the file */
	snprintf(path, sizeof(path), "%s/standup-notes.txt", scratch);
	{
		static const char txt[] =
			"Alice: Good morning everyone, let us review the quarterly budget.\n"
			"Bob: The marketing budget is over by ten percent this quarter.\n"
			"Alice: We decided to freeze new marketing spend until July.\n"
			"Carol: I will prepare the revised forecast by Friday.\n"
			"Bob: Should we tell the finance team about the freeze?\n"
			"Alice: Yes, Carol will send them the forecast and the decision.\n";
		assert_int_equal(srv_write_file(path, txt, sizeof(txt) - 1), 0);
	}
	assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, "text/plain", NULL, fields, NULL, &r),
			 0);
	SRV_ASSERT(s, r.status == 202);
	snprintf(id, sizeof(id), "%s", srv_jstr(r.json, "id"));
	srv_resp_free(&r);
	job = srv_wait_status(s, id, "done|failed|canceled", 120);
	SRV_ASSERT(s, job && strcmp(srv_jstr(job, "status"), "done") == 0);
	assert_string_equal(srv_jstr(job, "type"), "analyze");
	assert_string_equal(srv_jstr(job, "filename"), "standup-notes.txt");
	json_decref(job);
	snprintf(res, sizeof(res), "/v1/jobs/%s/result?format=minutes", id);
	assert_int_equal(srv_get(s, res, &r), 0);
	SRV_ASSERT(s, r.status == 200 && r.json);
	/* the meeting is named after the file */
	assert_string_equal(srv_jstr(r.json, "meeting"), "standup-notes");
	SRV_ASSERT(s, json_array_size(srv_jget(r.json, "participants")) == 3);
	srv_resp_free(&r);

	/* the same upload again: answered from the first job */
	assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, NULL, NULL, fields, NULL, &r), 0);
	SRV_ASSERT(s, r.status == 200);
	SRV_ASSERT(s, json_is_true(srv_jget(r.json, "cached")));
	SRV_ASSERT(s, srv_jstr(r.json, "result.meeting") &&
			      strcmp(srv_jstr(r.json, "result.meeting"), "standup-notes") == 0);
	srv_resp_free(&r);
	/* force: a new job */
	assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, NULL, "{\"force\":true}", fields,
				    NULL, &r),
			 0);
	SRV_ASSERT(s, r.status == 202);
	snprintf(id2, sizeof(id2), "%s", srv_jstr(r.json, "id"));
	SRV_ASSERT(s, strcmp(id, id2) != 0);
	srv_resp_free(&r);
	job = srv_wait_status(s, id2, "done|failed|canceled", 120);
	SRV_ASSERT(s, job && strcmp(srv_jstr(job, "status"), "done") == 0);
	json_decref(job);
}

/* ---- malformed input ----------------------------------------------------------- */

static void test_malformed(void **state)
{
	struct srv_server *s = server_a();
	const char *fields[] = {"type", "analyze", NULL};
	char id[64] = "", path[1024];
	unsigned char bin[3000];
	struct srv_resp r;
	json_t *job;

	(void)state;
	/* a JSON transcript that is not JSON: the job fails, 4xx-class code */
	SRV_ASSERT(s, submit_analyze(s, "{not json", NULL, id, sizeof(id), &r) == 202);
	srv_resp_free(&r);
	job = srv_wait_status(s, id, "done|failed|canceled", 60);
	SRV_ASSERT(s, job && strcmp(srv_jstr(job, "status"), "failed") == 0);
	assert_string_equal(srv_jstr(job, "error.code"), "malformed_input");
	SRV_ASSERT(s, srv_jstr(job, "error.message") && *srv_jstr(job, "error.message"));
	json_decref(job);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes", id);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 409 && srv_is_error(&r, "job_failed"));
	srv_resp_free(&r);

	/* binary upload as a transcript: 415 */
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)((i * 2654435761u) >> 13);
	bin[10] = 0;
	snprintf(path, sizeof(path), "%s/garbage.bin", scratch);
	assert_int_equal(srv_write_file(path, bin, sizeof(bin)), 0);
	assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, NULL, NULL, fields, NULL, &r), 0);
	SRV_ASSERT(s, r.status == 415 && srv_is_error(&r, "unsupported_media_type"));
	srv_resp_free(&r);

	/* Latin-1 text (not UTF-8): 415 */
	{
		static const char latin1[] = "Ren\xe9: caf\xe9 cr\xe8me on the agenda.\n"
					     "Zo\xeb: agreed.\n";
		snprintf(path, sizeof(path), "%s/latin1.txt", scratch);
		assert_int_equal(srv_write_file(path, latin1, sizeof(latin1) - 1), 0);
	}
	assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, NULL, NULL, fields, NULL, &r), 0);
	SRV_ASSERT(s, r.status == 415 && srv_is_error(&r, "unsupported_media_type"));
	srv_resp_free(&r);

	/* a text file without type=analyze is not a transcription upload */
	{
		static const char txt[] = "Ann: hello there.\nBen: hi.\n";
		snprintf(path, sizeof(path), "%s/plain.txt", scratch);
		assert_int_equal(srv_write_file(path, txt, sizeof(txt) - 1), 0);
	}
	assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, NULL, NULL, NULL, NULL, &r), 0);
	SRV_ASSERT(s, r.status == 415 && srv_is_error(&r, "unsupported_media_type"));
	srv_resp_free(&r);

	/* an unknown upload type */
	{
		const char *f2[] = {"type", "summarize", NULL};
		assert_int_equal(srv_upload(s, "/v1/jobs", path, NULL, NULL, NULL, f2, NULL, &r), 0);
		SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
		srv_resp_free(&r);
	}

	/* still serving */
	assert_int_equal(srv_get(s, "/healthz", &r), 0);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
}

static void test_bad_options(void **state)
{
	struct srv_server *s = server_a();
	static const char *const bad[] = {
		"{\"batch\":0}",
		"{\"batch\":51}",
		"{\"batch\":\"10\"}",
		"{\"date\":\"2024-13-01\"}",
		"{\"date\":\"2023-02-29\"}",
		"{\"date\":\"yesterday\"}",
		"{\"chunk_tokens\":10}",
		"{\"chunk_tokens\":400,\"overlap_tokens\":300}",
		"{\"overlap_tokens\":-1}",
		"{\"offline\":\"yes\"}",
		"{\"force\":1}",
		"{\"name\":\"../etc\"}",
		"{\"name\":\"a/b\"}",
		"{\"name\":\"   \"}",
		"{\"summarise\":true}",
	};
	struct srv_resp r;
	char body[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body),
			 "{\"type\":\"analyze\",\"transcript\":\"A: hello.\\nB: hi.\",\"options\":%s}",
			 bad[i]);
		assert_int_equal(srv_post_json(s, "/v1/jobs", body, &r), 0);
		if (r.status != 400)
			fprintf(stderr, "%s -> %ld\n", bad[i], r.status);
		SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, "invalid_option"));
		srv_resp_free(&r);
	}
	/* analysis options on a transcript job */
	assert_int_equal(srv_post_json(s, "/v1/jobs",
				       "{\"transcript\":\"hello\",\"options\":{\"batch\":5}}", &r),
			 0);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, "invalid_option"));
	srv_resp_free(&r);
	/* run needs an upload; analyze needs a transcript */
	assert_int_equal(srv_post_json(s, "/v1/jobs", "{\"type\":\"run\",\"transcript\":\"x\"}", &r),
			 0);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, NULL));
	srv_resp_free(&r);
	assert_int_equal(srv_post_json(s, "/v1/jobs", "{\"type\":\"analyze\"}", &r), 0);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, "missing_file"));
	srv_resp_free(&r);
	/* a valid set is accepted */
	assert_int_equal(srv_post_json(s, "/v1/jobs",
				       "{\"type\":\"analyze\",\"transcript\":\"Ann: we agreed on the "
				       "plan.\\nBen: I will write it up.\",\"options\":{\"batch\":5,"
				       "\"chunk_tokens\":400,\"overlap_tokens\":50,\"offline\":true,"
				       "\"date\":\"2024-02-29\",\"name\":\"tiny plan\"}}",
				       &r),
			 0);
	SRV_ASSERT(s, r.status == 202);
	srv_resp_free(&r);
}

static void test_metrics(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	int found = 0;

	(void)state;
	need_meeting();
	if (!analyze_job[0])
		skip();
	assert_int_equal(srv_get(s, "/metrics", &r), 0);
	SRV_ASSERT(s, r.status == 200);
	SRV_ASSERT(s, srv_metric(r.body, "hark_analyze_jobs_total", "method=\"offline\"", &found) >= 1);
	SRV_ASSERT(s, found == 1);
	SRV_ASSERT(s, srv_metric(r.body, "hark_stage_duration_seconds_count", "stage=\"analyze\"",
				 NULL) >= 1);
	SRV_ASSERT(s, srv_metric(r.body, "hark_searches_total", NULL, NULL) >= 1);
	srv_resp_free(&r);
}

/* ---- run: transcribe then analyse ---------------------------------------------- */

static void test_run_job(void **state)
{
	struct srv_server *s = server_a();
	const char *fields[] = {"type", "run", NULL};
	char jfk[1024], id[64] = "", path[160];
	struct srv_resp r;
	json_t *job;

	(void)state;
	if (!srv_have_audio())
		skip();
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	assert_int_equal(srv_upload(s, "/v1/jobs", jfk, NULL, NULL, "{\"name\":\"jfk-speech\"}",
				    fields, NULL, &r),
			 0);
	SRV_ASSERT(s, r.status == 202);
	snprintf(id, sizeof(id), "%s", srv_jstr(r.json, "id"));
	srv_resp_free(&r);
	job = srv_wait_status(s, id, "done|failed|canceled", 300);
	SRV_ASSERT(s, job && strcmp(srv_jstr(job, "status"), "done") == 0);
	assert_string_equal(srv_jstr(job, "type"), "run");
	SRV_ASSERT(s, srv_jnum(job, "audio_s", 0) > 5);
	SRV_ASSERT(s, srv_jget(job, "timings.transcribe") && srv_jget(job, "timings.analyze"));
	json_decref(job);
	/* transcript formats like a transcribe job ... */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=json", id);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && json_is_array(srv_jget(r.json, "segments")));
	srv_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=srt", id);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && strstr(r.body, "-->"));
	srv_resp_free(&r);
	/* ... and the analysis */
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes", id);
	assert_int_equal(srv_get(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 200 && r.json);
	assert_string_equal(srv_jstr(r.json, "meeting"), "jfk-speech");
	SRV_ASSERT(s, json_is_string(srv_jget(r.json, "summary")));
	srv_resp_free(&r);

	/* audio is not a transcript */
	{
		const char *f2[] = {"type", "analyze", NULL};
		assert_int_equal(srv_upload(s, "/v1/jobs", jfk, NULL, NULL, NULL, f2, NULL, &r), 0);
		SRV_ASSERT(s, r.status == 415 && srv_is_error(&r, "unsupported_media_type"));
		srv_resp_free(&r);
	}
}

/* ---- with an LLM provider (the simulator) -------------------------------------- */

/* Stops what an earlier LLM test left running (it failed half-way). */
static void llm_setup_clean(void)
{
	if (l_up)
		srv_destroy(&L);
	if (sim_up)
		simh_stop(&sim);
	l_up = sim_up = 0;
	memset(&sim, 0, sizeof(sim));
	memset(&L, 0, sizeof(L));
}

static void test_llm_analyze(void **state)
{
	const char *args[] = {"--no-auth", "--workers", "1", "--engine", "pocketsphinx", NULL};
	struct srv_resp r;
	char cfg[1024], id[64] = "", path[160];
	static const char text[] =
		"Alice: Good morning, let us review the launch plan for the mobile app.\n"
		"Bob: The beta build is ready but the payment screen still crashes.\n"
		"Alice: We decided to move the launch to the twelfth of May.\n"
		"Carol: I will fix the payment crash by Wednesday.\n"
		"Bob: Who tells the marketing team about the new date?\n"
		"Alice: I will email marketing today.\n";
	json_t *job, *opts;
	int rc;

	(void)state;
	need_server();
	if (!simh_bin())
		skip();
	llm_setup_clean();
	assert_int_equal(simh_start(&sim, NULL, 20, NULL, NULL), 0);
	sim_up = 1;
	snprintf(cfg, sizeof(cfg),
		 "{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		 "{\"name\":\"sim-small\",\"context_window\":16384}]}],"
		 "\"routes\":{\"default\":[\"p/sim-small\"]},\"llm\":{\"time_scale\":20}}",
		 sim.base);
	assert_int_equal(srv_init(&L), 0);
	l_up = 1;
	if (srv_start(&L, cfg, args) != 0)
		fail_msg("serve with an LLM provider did not start");
	SRV_ASSERT(&L, submit_analyze(&L, text, NULL, id, sizeof(id), &r) == 202);
	srv_resp_free(&r);
	job = srv_wait_status(&L, id, "done|failed|canceled", 300);
	SRV_ASSERT(&L, job && strcmp(srv_jstr(job, "status"), "done") == 0);
	/* the job made LLM calls, accounted to it */
	SRV_ASSERT(&L, json_is_object(srv_jget(job, "llm")));
	SRV_ASSERT(&L, srv_jnum(job, "llm.calls", 0) >= 1);
	json_decref(job);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes", id);
	assert_int_equal(srv_get(&L, path, &r), 0);
	SRV_ASSERT(&L, r.status == 200 && r.json);
	assert_string_equal(srv_jstr(r.json, "method"), "llm");
	srv_resp_free(&r);
	assert_int_equal(srv_get(&L, "/metrics", &r), 0);
	SRV_ASSERT(&L, srv_metric(r.body, "hark_analyze_jobs_total", "method=\"llm\"", NULL) >= 1);
	srv_resp_free(&r);

	/* offline: true keeps the LLM out */
	opts = json_pack("{s:b,s:s}", "offline", 1, "name", "off");
	SRV_ASSERT(&L, submit_analyze(&L, text, opts, id, sizeof(id), &r) == 202);
	json_decref(opts);
	srv_resp_free(&r);
	job = srv_wait_status(&L, id, "done|failed|canceled", 120);
	SRV_ASSERT(&L, job && strcmp(srv_jstr(job, "status"), "done") == 0);
	SRV_ASSERT(&L, srv_jget(job, "llm") == NULL);
	json_decref(job);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes", id);
	assert_int_equal(srv_get(&L, path, &r), 0);
	SRV_ASSERT(&L, r.status == 200 && r.json);
	assert_string_equal(srv_jstr(r.json, "method"), "offline");
	srv_resp_free(&r);

	rc = srv_destroy(&L);
	l_up = 0;
	simh_stop(&sim);
	sim_up = 0;
	assert_int_equal(rc, 0);
}

/* Identities (sha256 of the first user message) of the chat requests in the
 * simulator's log from line `from` on; complete_only: only replies that
 * were not cut at max_tokens (usable extractions). *n_lines gets the log's
 * length. New reference (an array of strings). */
static json_t *sim_identities(const struct simh *h, size_t from, int complete_only,
			      size_t *n_lines)
{
	json_t *log = simh_read_log(h), *ids = json_array(), *e;
	size_t i;

	assert_non_null(log);
	*n_lines = json_array_size(log);
	json_array_foreach(log, i, e) {
		const char *path = srv_jstr(e, "path"), *id = srv_jstr(e, "identity");
		double out = srv_jnum(e, "completion_tokens", 0), max = srv_jnum(e, "max_tokens", -1);
		if (i < from || !path || !strstr(path, "/chat/completions") || !id ||
		    srv_jnum(e, "status", 0) != 200 || (complete_only && out >= max))
			continue;
		json_array_append_new(ids, json_string(id));
	}
	json_decref(log);
	return ids;
}

static int ids_contain(json_t *ids, const char *id)
{
	size_t i;
	json_t *e;

	json_array_foreach(ids, i, e)
		if (strcmp(json_string_value(e), id) == 0)
			return 1;
	return 0;
}

/* A canceled LLM analysis keeps the chunk results it finished: analysing
 * the meeting again sends none of the chunks whose extraction the first job
 * completed to the LLM again. */
static void test_llm_cancel_keeps_chunks(void **state)
{
	const char *args[] = {"--no-auth", "--workers", "1", "--engine", "pocketsphinx", NULL};
	struct srv_resp r;
	char cfg[1024], id[64] = "", id2[64] = "", path[160];
	char *text;
	json_t *job, *opts, *ids1, *ids2, *e;
	size_t n1 = 0, n2 = 0, again = 0, i;
	double req1 = 0, t0;
	int rc;

	(void)state;
	need_server();
	need_meeting();
	if (!simh_bin())
		skip();
	llm_setup_clean();
	/* slow enough (one request at a time, 0.15 s each) to cancel mid-way */
	assert_int_equal(simh_start(&sim, "{\"latency\":{\"dist\":\"fixed\",\"s\":0.15}}", 1, NULL,
				    NULL),
			 0);
	sim_up = 1;
	snprintf(cfg, sizeof(cfg),
		 "{\"providers\":[{\"name\":\"p\",\"base_url\":\"%s\",\"models\":["
		 "{\"name\":\"sim-small\",\"context_window\":16384,\"max_concurrency\":1}]}],"
		 "\"routes\":{\"default\":[\"p/sim-small\"]}}",
		 sim.base);
	assert_int_equal(srv_init(&L), 0);
	l_up = 1;
	if (srv_start(&L, cfg, args) != 0)
		fail_msg("serve with an LLM provider did not start");
	text = srv_slurp(meeting_path, NULL);
	assert_non_null(text);
	opts = json_pack("{s:i,s:i,s:s}", "batch", 1, "chunk_tokens", 400, "name", "cancel-me");
	SRV_ASSERT(&L, submit_analyze(&L, text, opts, id, sizeof(id), &r) == 202);
	srv_resp_free(&r);

	/* wait for a few finished extraction requests, then cancel */
	t0 = srv_now();
	while (srv_now() - t0 < 60 * srv_time_scale()) {
		int running;
		job = srv_job_get(&L, id);
		SRV_ASSERT(&L, job != NULL);
		req1 = srv_jnum(job, "llm.requests", 0);
		running = strcmp(srv_jstr(job, "status"), "running") == 0 ||
			  strcmp(srv_jstr(job, "status"), "queued") == 0;
		json_decref(job);
		if (!running || req1 >= 6)
			break;
		srv_sleep_ms(50);
	}
	SRV_ASSERT(&L, req1 >= 6);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	assert_int_equal(srv_delete(&L, path, &r), 0);
	SRV_ASSERT(&L, r.status == 202);
	srv_resp_free(&r);
	job = srv_wait_status(&L, id, "done|failed|canceled", 60);
	SRV_ASSERT(&L, job && strcmp(srv_jstr(job, "status"), "canceled") == 0);
	json_decref(job);
	srv_sleep_ms(500); /* a request in flight at the cancel reaches the log */
	/* the extraction replies the first job got complete */
	ids1 = sim_identities(&sim, 0, 1, &n1);
	SRV_ASSERT(&L, json_array_size(ids1) >= 3);

	/* the same meeting again (force: no dedup, no reuse of the meeting) */
	json_object_set_new(opts, "force", json_true());
	SRV_ASSERT(&L, submit_analyze(&L, text, opts, id2, sizeof(id2), &r) == 202);
	srv_resp_free(&r);
	job = srv_wait_status(&L, id2, "done|failed|canceled", 300);
	SRV_ASSERT(&L, job && strcmp(srv_jstr(job, "status"), "done") == 0);
	SRV_ASSERT(&L, srv_jnum(job, "llm.requests", 0) >= 1);
	json_decref(job);
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=minutes", id2);
	assert_int_equal(srv_get(&L, path, &r), 0);
	SRV_ASSERT(&L, r.status == 200 && r.json);
	assert_string_equal(srv_jstr(r.json, "method"), "llm");
	srv_resp_free(&r);
	ids2 = sim_identities(&sim, n1, 0, &n2);
	SRV_ASSERT(&L, json_array_size(ids2) >= 1);
	json_array_foreach(ids2, i, e)
		again += ids_contain(ids1, json_string_value(e));
	if (again)
		fprintf(stderr, "canceled job: %zu complete replies; second job: %zu requests, "
			"%zu of them again\n", json_array_size(ids1), json_array_size(ids2), again);
	/* nothing the first job finished is asked again, but the one request
	 * in flight at the cancel (one at a time: max_concurrency 1), whose
	 * reply the simulator sent and the canceled job dropped */
	SRV_ASSERT(&L, again <= 1);

	json_decref(ids1);
	json_decref(ids2);
	json_decref(opts);
	free(text);
	rc = srv_destroy(&L);
	l_up = 0;
	simh_stop(&sim);
	sim_up = 0;
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_analyze_meeting),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_search_bad_args),
		cmocka_unit_test(test_text_upload),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_run_job),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_llm_analyze),
		cmocka_unit_test(test_llm_cancel_keeps_chunks),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
