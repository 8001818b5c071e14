/*
 * Durability of `hark serve` with the real binary on 127.0.0.1 and real
 * speech (PocketSphinx, one worker): kill -9 while a transcription runs with
 * progress > 0 and another job waits in the queue, restart on the same data
 * directory, and both finish; the running job's history has a requeued
 * event and exactly one done, the store holds exactly one result per
 * format, and its text equals a fresh `hark transcribe` of the same file (the
 * engine is deterministic). SIGTERM while a job runs with --drain-timeout 1:
 * the process exits 0 within seconds, the job goes back to the queue
 * (requeued event) and the next start finishes it with the same text.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "srv_harness.h"

#define LONG_S 20

static struct srv_server S, T;
static int s_up, t_up;
static char scratch[512];
static char longf[1024];
static char *server_text;   /* words of the kill -9 job's result */
static pid_t cli_pid;
static char cli_out[1024];

static const char *const ARGS[] = {"--no-auth", "--workers", "1", "--threads", "1", "--engine",
				   "pocketsphinx", NULL};

static int group_setup(void **state)
{
	(void)state;
	snprintf(scratch, sizeof(scratch), "%s/hark-srvrec-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(scratch) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	if (cli_pid > 0) {
		kill(cli_pid, SIGKILL);
		waitpid(cli_pid, NULL, 0);
	}
	int rc = 0;
	if (s_up)
		rc |= srv_destroy(&S);
	if (t_up)
		rc |= srv_destroy(&T);
	free(server_text);
	srv_rmtree(scratch);
	return rc;
}

/* `hark transcribe FILE -e pocketsphinx -t 1 --format json -o DIR` in the
 * background (the reference text), started early so it overlaps. */
static void start_reference(void)
{
	char outdir[1024];
	snprintf(outdir, sizeof(outdir), "%s/ref", scratch);
	snprintf(cli_out, sizeof(cli_out), "%s/ref/long.json", scratch);
	cli_pid = fork();
	if (cli_pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(srv_bin(), srv_bin(), "transcribe", longf, "-e", "pocketsphinx", "-t", "1", "--format",
		      "json", "-o", outdir, "-q", (char *)NULL);
		_exit(127);
	}
}

static char *reference_words(void)
{
	int st = -1;
	if (cli_pid <= 0)
		return NULL;
	waitpid(cli_pid, &st, 0);
	cli_pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return NULL;
	json_error_t je;
	json_t *j = json_load_file(cli_out, 0, &je);
	char *w = j ? srv_words(srv_jstr(j, "text")) : NULL;
	json_decref(j);
	return w;
}

static char *result_words(struct srv_server *s, const char *id)
{
	struct srv_resp r;
	char path[256];
	char *w = NULL;
	snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
	if (srv_get(s, path, &r) == 0 && r.status == 200 && r.json)
		w = srv_words(srv_jstr(r.json, "text"));
	srv_resp_free(&r);
	return w;
}

/*
 * Rows per result format of a job, read straight from the store (found by
 * its columns, so no table name is assumed). Returns the number of formats
 * seen, -1 if no results table could be identified; *max_rows gets the
 * largest row count of one format.
 */
static int stored_results(const char *data_dir, const char *job_id, int *max_rows)
{
	char db[4096], sql[2048];
	sqlite3 *h = NULL;
	sqlite3_stmt *q = NULL;
	int formats = -1;

	*max_rows = 0;
	snprintf(db, sizeof(db), "file:%s/hark.db?mode=ro", data_dir);
	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(h, 5000);
	if (sqlite3_prepare_v2(h, "SELECT name FROM sqlite_master WHERE type='table'", -1, &q, NULL))
		goto out;
	char tables[16][64];
	int nt = 0;
	while (sqlite3_step(q) == SQLITE_ROW && nt < 16)
		snprintf(tables[nt++], 64, "%s", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	q = NULL;
	for (int t = 0; t < nt && formats < 0; t++) {
		int has_job = 0, has_fmt = 0;
		snprintf(sql, sizeof(sql), "PRAGMA table_info(\"%.63s\")", tables[t]);
		if (sqlite3_prepare_v2(h, sql, -1, &q, NULL))
			continue;
		while (sqlite3_step(q) == SQLITE_ROW) {
			const char *col = (const char *)sqlite3_column_text(q, 1);
			has_job |= col && !strcmp(col, "job_id");
			has_fmt |= col && !strcmp(col, "format");
		}
		sqlite3_finalize(q);
		q = NULL;
		if (!has_job || !has_fmt)
			continue;
		snprintf(sql, sizeof(sql), "SELECT format, count(*) FROM \"%.63s\" WHERE job_id = ?1 GROUP BY format",
			 tables[t]);
		if (sqlite3_prepare_v2(h, sql, -1, &q, NULL))
			continue;
		sqlite3_bind_text(q, 1, job_id, -1, SQLITE_STATIC);
		formats = 0;
		while (sqlite3_step(q) == SQLITE_ROW) {
			formats++;
			int c = sqlite3_column_int(q, 1);
			if (c > *max_rows)
				*max_rows = c;
		}
		sqlite3_finalize(q);
		q = NULL;
	}
out:
	sqlite3_finalize(q);
	sqlite3_close(h);
	return formats;
}

static void test_kill9_recovery(void **state)
{
	struct srv_server *s = &S;
	char lid[64], qid[64], clip[1024], jfk[1024], path[256];

	(void)state;
	if (!srv_serve_available() || !srv_have_audio())
		skip();
	assert_int_equal(srv_make_audio(scratch, "long.wav", LONG_S, longf, sizeof(longf)), 0);
	srv_clip("jfk/jfk.wav", jfk, sizeof(jfk));
	snprintf(clip, sizeof(clip), "%s/queued.wav", scratch);
	assert_int_equal(srv_cut_audio(jfk, 0.2, 3.0, clip), 0);
	assert_int_equal(srv_init(s), 0);
	s_up = 1;
	assert_int_equal(srv_start(s, NULL, ARGS), 0);

	SRV_ASSERT(s, srv_submit_file(s, longf, NULL, lid, sizeof(lid)) == 202);
	SRV_ASSERT(s, srv_submit_file(s, clip, NULL, qid, sizeof(qid)) == 202);
	start_reference();
	json_t *j = srv_wait_running(s, lid, 0, 60);
	SRV_ASSERT(s, j != NULL);
	fprintf(stderr, "kill -9 at %.1f%% (stage %s)\n", srv_jnum(j, "progress.percent", -1),
		srv_jstr(j, "progress.stage"));
	json_decref(j);
	j = srv_job_get(s, qid);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "queued"));
	json_decref(j);

	srv_kill9(s);
	SRV_ASSERT(s, s->last_exit == 128 + SIGKILL);
	double t0 = srv_now();
	SRV_ASSERT(s, srv_restart(s) == 0);
	fprintf(stderr, "restarted in %.2f s\n", srv_now() - t0);

	j = srv_wait_status(s, lid, "done|failed|canceled", 90);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	fprintf(stderr, "recovered job done %.1f s after restart, attempts %.0f\n", srv_now() - t0,
		srv_jnum(j, "attempts", -1));
	SRV_ASSERT(s, srv_jnum(j, "audio_s", 0) > LONG_S - 1 && srv_jnum(j, "audio_s", 0) < LONG_S + 1);
	json_decref(j);
	j = srv_wait_status(s, qid, "done|failed|canceled", 60);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	json_decref(j);

	/* history: requeued by the restart, exactly one done, nothing after it */
	struct srv_events ev;
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", lid);
	srv_sse_collect(s, path, NULL, 15, &ev);
	SRV_ASSERT(s, ev.status == 200 && ev.closed);
	fprintf(stderr, "history:");
	for (size_t i = 0; i < ev.n; i++)
		fprintf(stderr, " %lld:%s", ev.ev[i].id, ev.ev[i].type);
	fprintf(stderr, "\n");
	SRV_ASSERT(s, srv_events_count(&ev, "done") == 1);
	SRV_ASSERT(s, srv_events_count(&ev, "failed") == 0);
	SRV_ASSERT(s, srv_events_count(&ev, "requeued") >= 1);
	SRV_ASSERT(s, srv_events_count(&ev, "running") >= 2);
	SRV_ASSERT(s, ev.n > 0 && !strcmp(ev.ev[ev.n - 1].type, "done"));
	for (size_t i = 1; i < ev.n; i++)
		SRV_ASSERT(s, ev.ev[i].id > ev.ev[i - 1].id);
	srv_events_free(&ev);

	/* one result per format, each readable */
	static const char *const fmts[] = {"json", "txt", "srt", "vtt"};
	for (int i = 0; i < 4; i++) {
		struct srv_resp r;
		snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=%s", lid, fmts[i]);
		srv_get(s, path, &r);
		SRV_ASSERT(s, r.status == 200 && r.len > 0);
		srv_resp_free(&r);
	}
	int max_rows = 0;
	int nf = stored_results(s->data, lid, &max_rows);
	fprintf(stderr, "store: %d formats, at most %d rows per format\n", nf, max_rows);
	if (nf >= 0)
		SRV_ASSERT(s, nf == 4 && max_rows == 1);

	/* the text equals a fresh transcription of the same file */
	server_text = result_words(s, lid);
	char *ref = reference_words();
	SRV_ASSERT(s, server_text && ref);
	if (strcmp(server_text, ref))
		fprintf(stderr, "server: %s\nfresh:  %s\n", server_text, ref);
	SRV_ASSERT(s, strlen(ref) > 20 && !strcmp(server_text, ref));
	free(ref);
	s_up = 0;
	assert_int_equal(srv_destroy(s), 0);
}

static void test_sigterm_drain(void **state)
{
	struct srv_server *s = &T;
	char id[64], path[256];
	const char *args[] = {"--no-auth", "--workers", "1", "--threads", "1", "--engine",
			      "pocketsphinx", "--drain-timeout", "1", NULL};

	(void)state;
	if (!srv_serve_available() || !srv_have_audio())
		skip();
	if (!longf[0])
		assert_int_equal(srv_make_audio(scratch, "long.wav", LONG_S, longf, sizeof(longf)), 0);
	assert_int_equal(srv_init(s), 0);
	t_up = 1;
	assert_int_equal(srv_start(s, NULL, args), 0);
	SRV_ASSERT(s, srv_submit_file(s, longf, NULL, id, sizeof(id)) == 202);
	json_t *j = srv_wait_running(s, id, 0, 60);
	SRV_ASSERT(s, j != NULL);
	json_decref(j);

	double t0 = srv_now();
	kill(s->pid, SIGTERM);
	srv_sleep_ms(150);
	/* a submission during the drain is refused with 503 draining (or the
	 * listener is already closed) */
	struct srv_resp r;
	srv_post_json(s, "/v1/jobs", "{\"type\":\"noop\"}", &r);
	fprintf(stderr, "submit while draining: %ld\n", r.status);
	SRV_ASSERT(s, r.status == 0 || (r.status == 503 && srv_is_error(&r, "draining")));
	srv_resp_free(&r);
	int rc = srv_stop(s, 0, 10 * srv_time_scale()); /* signal 0: just wait */
	double dt = srv_now() - t0;
	fprintf(stderr, "SIGTERM: exit %d after %.2f s\n", s->last_exit, dt);
	SRV_ASSERT(s, rc == 0 && s->last_exit == 0);
	SRV_ASSERT(s, dt < 5 * srv_time_scale());

	SRV_ASSERT(s, srv_restart(s) == 0);
	j = srv_wait_status(s, id, "done|failed|canceled", 90);
	SRV_ASSERT(s, j && !strcmp(srv_jstr(j, "status"), "done"));
	fprintf(stderr, "drained job done after restart, attempts %.0f\n", srv_jnum(j, "attempts", -1));
	json_decref(j);
	struct srv_events ev;
	snprintf(path, sizeof(path), "/v1/jobs/%s/events", id);
	srv_sse_collect(s, path, NULL, 15, &ev);
	fprintf(stderr, "history:");
	for (size_t i = 0; i < ev.n; i++)
		fprintf(stderr, " %lld:%s", ev.ev[i].id, ev.ev[i].type);
	fprintf(stderr, "\n");
	SRV_ASSERT(s, ev.closed && srv_events_count(&ev, "done") == 1);
	SRV_ASSERT(s, srv_events_count(&ev, "failed") == 0 && srv_events_count(&ev, "canceled") == 0);
	/* handed back to the queue: a requeued event between the two runs */
	size_t first_run = 0, req = 0, second_run = 0;
	for (size_t i = 0; i < ev.n; i++) {
		if (!strcmp(ev.ev[i].type, "running") && !first_run)
			first_run = i + 1;
		else if (!strcmp(ev.ev[i].type, "requeued") && first_run && !req)
			req = i + 1;
		else if (!strcmp(ev.ev[i].type, "running") && req && !second_run)
			second_run = i + 1;
	}
	SRV_ASSERT(s, first_run && req && second_run);
	srv_events_free(&ev);
	char *w = result_words(s, id);
	if (server_text) {
		SRV_ASSERT(s, w && !strcmp(w, server_text));
	} else {
		SRV_ASSERT(s, w && strlen(w) > 20);
	}
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_recovery),
		cmocka_unit_test(test_sigterm_drain),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
