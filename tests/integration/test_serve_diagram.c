/*
 * Diagram and video jobs through `hark serve`, end to end over 127.0.0.1
 * with the real binary (docs/SERVER.md, "Diagrams and videos"): a text
 * transcript uploaded with type=diagram runs to done, and its results are
 * real: the spec (JSON, the forced type, nodes), the SVG and the PNG (PNG
 * signature, the size of a real picture), with their content types and a
 * job summary saying how the diagram was made; with the type left to
 * detection the server picks the same type as `hark diagram --json`; bad
 * diagram and video options are refused with 400 and a JSON error; a video
 * job on the shared JFK clip ends done with an MP4 that libavformat reads
 * as one H.264 and one AAC stream lasting as long as the WAV, with
 * round(fps x duration) frames, and its events show the transcribe,
 * diagram, layout, render and store stages; a text upload for a video job
 * is refused with 415 whichever order the form fields come in; and a video
 * job canceled while it renders ends canceled within seconds and leaves no
 * temporary file in the data directory.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "srv_harness.h"

static struct srv_server A;
static int a_up;
static char scratch[512];
static char flow_txt[640];   /* the flowchart-like explanation */

/* An explanation of a procedure, as someone would say it. */
static const char flow_text[] =
	"Alice: Let me walk you through how we handle a customer refund request.\n"
	"Alice: First the support agent opens the ticket and checks the order number.\n"
	"Alice: Then the agent verifies that the purchase is less than thirty days old.\n"
	"Bob: And if it is older than thirty days?\n"
	"Alice: If the purchase is older than thirty days, the agent escalates the ticket to "
	"a team lead, otherwise the agent approves the refund directly.\n"
	"Alice: After that the finance system issues the payment back to the card.\n"
	"Alice: Then the agent sends the confirmation email to the customer.\n"
	"Alice: Finally the ticket is closed and archived.\n";

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

static int group_setup(void **state)
{
	(void)state;
	snprintf(scratch, sizeof(scratch), "%s/hark-srvdia-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(scratch))
		return -1;
	snprintf(flow_txt, sizeof(flow_txt), "%s/refund-process.txt", scratch);
	if (srv_write_file(flow_txt, flow_text, sizeof(flow_text) - 1) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	int rc = 0;
	(void)state;
	if (a_up)
		rc |= srv_destroy(&A);
	srv_rmtree(scratch);
	return rc;
}

/* ---- helpers ---------------------------------------------------------------- */

/* Uploads file with type and options (JSON text or NULL); the id on 202. */
static long upload_job(struct srv_server *s, const char *file, const char *type,
		       const char *options, char *id, size_t idlen, struct srv_resp *r)
{
	const char *fields[] = {"type", type, NULL};

	memset(r, 0, sizeof(*r));
	assert_int_equal(srv_upload(s, "/v1/jobs", file, NULL, NULL, options, fields, NULL, r), 0);
	if (id && (r->status == 200 || r->status == 202) && srv_jstr(r->json, "id"))
		snprintf(id, idlen, "%s", srv_jstr(r->json, "id"));
	return r->status;
}

/* Waits for the job to end; asserts done and returns its summary. */
static json_t *wait_done(struct srv_server *s, const char *id, double timeout_s)
{
	json_t *job = srv_wait_status(s, id, "done|failed|canceled", timeout_s);

	SRV_ASSERT(s, job != NULL);
	if (strcmp(srv_jstr(job, "status"), "done") != 0)
		fprintf(stderr, "job %s ended %s: %s: %s\n", id, srv_jstr(job, "status"),
			srv_jstr(job, "error.code") ? srv_jstr(job, "error.code") : "",
			srv_jstr(job, "error.message") ? srv_jstr(job, "error.message") : "");
	SRV_ASSERT(s, strcmp(srv_jstr(job, "status"), "done") == 0);
	return job;
}

static void get_result(struct srv_server *s, const char *id, const char *format,
		       struct srv_resp *r)
{
	char path[160];

	memset(r, 0, sizeof(*r));
	snprintf(path, sizeof(path), "/v1/jobs/%s/result?format=%s", id, format);
	assert_int_equal(srv_get(s, path, r), 0);
}

static int ctype_is(const struct srv_resp *r, const char *want)
{
	char *ct = srv_header(r, "Content-Type");
	int ok = ct && strncmp(ct, want, strlen(want)) == 0;

	if (!ok)
		fprintf(stderr, "Content-Type %s, expected %s\n", ct ? ct : "(none)", want);
	free(ct);
	return ok;
}

/* Stage names in the job's stored events (SSE replay of a finished job). */
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

/* The diagram type `hark diagram --json --offline` reports for file, into
 * out (empty when the CLI could not be run). */
static void cli_diagram_type(const char *file, char *out, size_t n)
{
	char cmd[2048], outdir[700], *buf = NULL;
	size_t len = 0, cap = 0;
	json_t *root;
	FILE *p;

	out[0] = '\0';
	snprintf(outdir, sizeof(outdir), "%s/cli-out", scratch);
	snprintf(cmd, sizeof(cmd), "'%s' diagram '%s' --offline --json -q -o '%s' 2>/dev/null",
		 srv_bin(), file, outdir);
	p = popen(cmd, "r");
	if (!p)
		return;
	for (;;) {
		char chunk[4096];
		size_t got = fread(chunk, 1, sizeof(chunk), p);
		if (got == 0)
			break;
		if (len + got + 1 > cap) {
			cap = (len + got + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		memcpy(buf + len, chunk, got);
		len += got;
	}
	pclose(p);
	if (!buf)
		return;
	buf[len] = '\0';
	root = json_loads(buf, 0, NULL);
	if (root && json_is_string(json_object_get(root, "type")))
		snprintf(out, n, "%s", json_string_value(json_object_get(root, "type")));
	json_decref(root);
	free(buf);
}

/* Length in seconds of a PCM WAV file from its header (fmt and data chunks);
 * -1 when it cannot be read. */
static double wav_seconds(const char *path)
{
	unsigned char *b;
	size_t n, pos = 12;
	unsigned rate = 0, block = 0;
	double secs = -1;

	b = (unsigned char *)srv_slurp(path, &n);
	if (!b || n < 12 || memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0) {
		free(b);
		return -1;
	}
	while (pos + 8 <= n) {
		uint32_t sz = (uint32_t)b[pos + 4] | (uint32_t)b[pos + 5] << 8 |
			      (uint32_t)b[pos + 6] << 16 | (uint32_t)b[pos + 7] << 24;
		const unsigned char *c = b + pos + 8;
		if (memcmp(b + pos, "fmt ", 4) == 0 && sz >= 16 && pos + 8 + 16 <= n) {
			rate = (unsigned)c[4] | (unsigned)c[5] << 8 | (unsigned)c[6] << 16 |
			       (unsigned)c[7] << 24;
			block = (unsigned)c[12] | (unsigned)c[13] << 8;
		} else if (memcmp(b + pos, "data", 4) == 0 && rate > 0 && block > 0) {
			uint32_t avail = (uint32_t)(n - pos - 8);
			secs = (double)(sz < avail ? sz : avail) / block / rate;
			break;
		}
		pos += 8 + sz + (sz & 1);
	}
	free(b);
	return secs;
}

/* What libavformat sees in an MP4 file. */
struct mp4_info {
	int n_streams, n_video, n_audio;
	int video_h264, audio_aac;
	int width, height;
	long video_packets;
	double video_s, audio_s;   /* from the packets' timestamps and durations */
	double fps;                /* the video stream's average frame rate */
};

static int probe_mp4(const char *path, struct mp4_info *mi)
{
	AVFormatContext *fc = NULL;
	AVPacket *pkt = NULL;
	int vi = -1, ai = -1, rc = -1;
	double v_end = 0, a_end = 0;

	memset(mi, 0, sizeof(*mi));
	if (avformat_open_input(&fc, path, NULL, NULL) < 0)
		return -1;
	if (avformat_find_stream_info(fc, NULL) < 0)
		goto out;
	mi->n_streams = (int)fc->nb_streams;
	for (unsigned i = 0; i < fc->nb_streams; i++) {
		const AVCodecParameters *cp = fc->streams[i]->codecpar;
		if (cp->codec_type == AVMEDIA_TYPE_VIDEO) {
			mi->n_video++;
			vi = (int)i;
			mi->video_h264 = cp->codec_id == AV_CODEC_ID_H264;
			mi->width = cp->width;
			mi->height = cp->height;
			if (fc->streams[i]->avg_frame_rate.den > 0)
				mi->fps = av_q2d(fc->streams[i]->avg_frame_rate);
		} else if (cp->codec_type == AVMEDIA_TYPE_AUDIO) {
			mi->n_audio++;
			ai = (int)i;
			mi->audio_aac = cp->codec_id == AV_CODEC_ID_AAC;
		}
	}
	pkt = av_packet_alloc();
	if (!pkt)
		goto out;
	while (av_read_frame(fc, pkt) >= 0) {
		const AVStream *st = fc->streams[pkt->stream_index];
		if (pkt->pts != AV_NOPTS_VALUE) {
			double end = (double)(pkt->pts + pkt->duration) * av_q2d(st->time_base);
			if (pkt->stream_index == vi) {
				mi->video_packets++;
				if (end > v_end)
					v_end = end;
			} else if (pkt->stream_index == ai && end > a_end) {
				a_end = end;
			}
		} else if (pkt->stream_index == vi) {
			mi->video_packets++;
		}
		av_packet_unref(pkt);
	}
	if (vi >= 0 && fc->streams[vi]->start_time != AV_NOPTS_VALUE)
		v_end -= (double)fc->streams[vi]->start_time * av_q2d(fc->streams[vi]->time_base);
	if (ai >= 0 && fc->streams[ai]->start_time != AV_NOPTS_VALUE)
		a_end -= (double)fc->streams[ai]->start_time * av_q2d(fc->streams[ai]->time_base);
	mi->video_s = v_end;
	mi->audio_s = a_end;
	rc = 0;
out:
	av_packet_free(&pkt);
	avformat_close_input(&fc);
	return rc;
}

/* Entries (files or directories) directly in dir whose name starts with
 * prefix ("" = all); 0 when dir is missing. */
static int count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			fprintf(stderr, "left in %s: %s\n", dir, e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* ---- (1) a diagram of a text transcript ---------------------------------------- */

static void test_diagram_text(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char id[64] = "", id2[64] = "", cli_type[32];
	json_t *job, *nodes;

	(void)state;
	SRV_ASSERT(s, upload_job(s, flow_txt, "diagram",
				 "{\"diagram_type\":\"flowchart\",\"offline\":true,\"dark\":true}", id,
				 sizeof(id), &r) == 202);
	srv_resp_free(&r);
	job = wait_done(s, id, 120);
	assert_string_equal(srv_jstr(job, "type"), "diagram");
	/* the job's summary says how the diagram was made */
	SRV_ASSERT(s, srv_jstr(job, "diagram.type") &&
			      strcmp(srv_jstr(job, "diagram.type"), "flowchart") == 0);
	assert_string_equal(srv_jstr(job, "diagram.requested"), "flowchart");
	assert_string_equal(srv_jstr(job, "diagram.method"), "offline");
	SRV_ASSERT(s, srv_jstr(job, "diagram.detected") != NULL);
	SRV_ASSERT(s, srv_jnum(job, "diagram.pages", 0) >= 1);
	SRV_ASSERT(s, srv_jnum(job, "diagram.nodes", 0) >= 2);
	SRV_ASSERT(s, json_is_string(srv_jget(job, "diagram.note")));
	SRV_ASSERT(s, srv_jget(job, "timings.diagram") != NULL);
	json_decref(job);

	/* the spec */
	get_result(s, id, "diagram", &r);
	SRV_ASSERT(s, r.status == 200 && r.json && ctype_is(&r, "application/json"));
	assert_string_equal(srv_jstr(r.json, "type"), "flowchart");
	nodes = srv_jget(r.json, "nodes");
	SRV_ASSERT(s, json_is_array(nodes) && json_array_size(nodes) >= 2);
	SRV_ASSERT(s, json_is_string(json_object_get(json_array_get(nodes, 0), "label")));
	SRV_ASSERT(s, json_is_array(srv_jget(r.json, "edges")) &&
			      json_array_size(srv_jget(r.json, "edges")) >= 1);
	SRV_ASSERT(s, srv_jstr(r.json, "source") &&
			      strcmp(srv_jstr(r.json, "source"), "refund-process.txt") == 0);
	srv_resp_free(&r);
	/* the default format of a diagram job is its spec */
	{
		char path[160];
		snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
		assert_int_equal(srv_get(s, path, &r), 0);
		SRV_ASSERT(s, r.status == 200 && r.json &&
				      strcmp(srv_jstr(r.json, "type"), "flowchart") == 0);
		srv_resp_free(&r);
	}

	/* SVG */
	get_result(s, id, "svg", &r);
	SRV_ASSERT(s, r.status == 200 && ctype_is(&r, "image/svg+xml"));
	SRV_ASSERT(s, r.len > 200 && strstr(r.body, "<svg") != NULL);
	SRV_ASSERT(s, strncmp(r.body, "<?xml", 5) == 0 || strncmp(r.body, "<svg", 4) == 0);
	srv_resp_free(&r);

	/* PNG: the bytes survive (NULs included) */
	get_result(s, id, "png", &r);
	SRV_ASSERT(s, r.status == 200 && ctype_is(&r, "image/png"));
	SRV_ASSERT(s, r.len > 2000);
	SRV_ASSERT(s, memcmp(r.body, "\x89PNG\r\n\x1a\n", 8) == 0);
	{
		/* IHDR: width and height of the default still (1280 x 720) */
		const unsigned char *b = (const unsigned char *)r.body;
		uint32_t w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
		uint32_t h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
		SRV_ASSERT(s, memcmp(b + 12, "IHDR", 4) == 0 && w == 1280 && h == 720);
	}
	srv_resp_free(&r);

	/* a video result does not exist for a diagram job */
	get_result(s, id, "mp4", &r);
	SRV_ASSERT(s, r.status == 404 && srv_is_error(&r, "not_found"));
	srv_resp_free(&r);

	/* the type left to detection: the same as the CLI's */
	cli_diagram_type(flow_txt, cli_type, sizeof(cli_type));
	SRV_ASSERT(s, upload_job(s, flow_txt, "diagram", "{\"offline\":true}", id2, sizeof(id2),
				 &r) == 202);
	srv_resp_free(&r);
	job = wait_done(s, id2, 120);
	assert_string_equal(srv_jstr(job, "diagram.requested"), "auto");
	/* offline and not forced: the type drawn is the type detected */
	assert_string_equal(srv_jstr(job, "diagram.method"), "offline");
	assert_string_equal(srv_jstr(job, "diagram.type"), srv_jstr(job, "diagram.detected"));
	if (cli_type[0])
		assert_string_equal(srv_jstr(job, "diagram.type"), cli_type);
	else
		fprintf(stderr, "note: `hark diagram --json` gave no type (did it fail?); "
			"not compared\n");
	json_decref(job);

	/* the same upload again: answered from that job, the summary inline */
	SRV_ASSERT(s, upload_job(s, flow_txt, "diagram", "{\"offline\":true}", NULL, 0, &r) == 200);
	SRV_ASSERT(s, json_is_true(srv_jget(r.json, "cached")));
	SRV_ASSERT(s, srv_jstr(r.json, "result.type") && srv_jstr(r.json, "result.method"));
	srv_resp_free(&r);

	/* a transcript in a JSON body works too */
	{
		json_t *body = json_pack("{s:s,s:s,s:{s:s,s:b}}", "type", "diagram", "transcript",
					 flow_text, "options", "diagram_type", "timeline",
					 "offline", 1);
		char *txt = json_dumps(body, JSON_COMPACT), id3[64];
		json_decref(body);
		memset(&r, 0, sizeof(r));
		assert_int_equal(srv_post_json(s, "/v1/jobs", txt, &r), 0);
		free(txt);
		SRV_ASSERT(s, r.status == 202);
		snprintf(id3, sizeof(id3), "%s", srv_jstr(r.json, "id"));
		srv_resp_free(&r);
		job = wait_done(s, id3, 120);
		assert_string_equal(srv_jstr(job, "diagram.type"), "timeline");
		json_decref(job);
	}
}

/* ---- (2) bad options ----------------------------------------------------------- */

static void expect_400(struct srv_server *s, struct srv_resp *r, const char *code,
		       const char *needle)
{
	SRV_ASSERT(s, r->status == 400);
	SRV_ASSERT(s, srv_is_error(r, code));
	if (needle)
		SRV_ASSERT(s, srv_jstr(r->json, "error.message") &&
				      strstr(srv_jstr(r->json, "error.message"), needle));
	srv_resp_free(r);
}

static void test_bad_options(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char wav[1024];

	(void)state;
	/* an unknown diagram type, as an options object and as a form field */
	upload_job(s, flow_txt, "diagram", "{\"diagram_type\":\"bogus\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "bogus");
	{
		const char *fields[] = {"type", "diagram", "diagram_type", "bogus", NULL};
		memset(&r, 0, sizeof(r));
		assert_int_equal(srv_upload(s, "/v1/jobs", flow_txt, NULL, NULL, NULL, fields, NULL,
					    &r), 0);
		expect_400(s, &r, "invalid_option", "diagram_type");
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(srv_post_json(s, "/v1/jobs",
				       "{\"type\":\"diagram\",\"transcript\":\"A: hi\","
				       "\"options\":{\"diagram_type\":\"bogus\"}}", &r), 0);
	expect_400(s, &r, "invalid_option", "bogus");
	/* out-of-range and mistyped values */
	upload_job(s, flow_txt, "diagram", "{\"max_nodes\":3}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "max_nodes");
	upload_job(s, flow_txt, "diagram", "{\"max_nodes\":61}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "max_nodes");
	upload_job(s, flow_txt, "diagram", "{\"dark\":\"yes\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "dark");
	upload_job(s, flow_txt, "diagram", "{\"date\":\"2024-02-30\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "date");
	{
		char title[400];
		memset(title, 'x', sizeof(title) - 1);
		title[sizeof(title) - 1] = '\0';
		char opt[512];
		snprintf(opt, sizeof(opt), "{\"title\":\"%s\"}", title);
		upload_job(s, flow_txt, "diagram", opt, NULL, 0, &r);
		expect_400(s, &r, "invalid_option", "title");
	}
	/* video options on a diagram job, diagram options on a transcription */
	upload_job(s, flow_txt, "diagram", "{\"fps\":10}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "video");
	/* analysis-only options on a diagram job */
	upload_job(s, flow_txt, "diagram", "{\"batch\":5}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", NULL);
	if (!srv_have_audio())
		return;
	srv_clip("jfk/jfk.wav", wav, sizeof(wav));
	upload_job(s, wav, "transcribe", "{\"diagram_type\":\"flowchart\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "diagram");
	/* video sizes and rates */
	upload_job(s, wav, "video", "{\"size\":\"321x240\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "size");
	upload_job(s, wav, "video", "{\"size\":\"32x32\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "size");
	upload_job(s, wav, "video", "{\"size\":\"4000x2000\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "size");
	upload_job(s, wav, "video", "{\"size\":\"big\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "size");
	upload_job(s, wav, "video", "{\"fps\":0}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "fps");
	upload_job(s, wav, "video", "{\"fps\":61}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "fps");
	upload_job(s, wav, "video", "{\"captions\":1}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "captions");
	upload_job(s, wav, "video", "{\"diagram_type\":\"venn\"}", NULL, 0, &r);
	expect_400(s, &r, "invalid_option", "venn");
	/* the server is still fine */
	memset(&r, 0, sizeof(r));
	assert_int_equal(srv_get(s, "/healthz", &r), 0);
	SRV_ASSERT(s, r.status == 200);
	srv_resp_free(&r);
}

/* ---- (3) a video of the JFK clip -------------------------------------------------- */

static void test_video_jfk(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	struct mp4_info mi;
	char wav[1024], id[64] = "", mp4[700];
	const int fps = 10;
	double wav_s, want_frames;
	json_t *job;

	(void)state;
	if (!srv_have_audio())
		skip();
	srv_clip("jfk/jfk.wav", wav, sizeof(wav));
	wav_s = wav_seconds(wav);
	SRV_ASSERT(s, wav_s > 10.0 && wav_s < 12.0);
	SRV_ASSERT(s, upload_job(s, wav, "video",
				 "{\"size\":\"320x240\",\"fps\":10,\"offline\":true}", id, sizeof(id),
				 &r) == 202);
	srv_resp_free(&r);
	job = wait_done(s, id, 600);
	assert_string_equal(srv_jstr(job, "type"), "video");
	SRV_ASSERT(s, srv_jstr(job, "diagram.kind") &&
			      strcmp(srv_jstr(job, "diagram.kind"), "video") == 0);
	assert_string_equal(srv_jstr(job, "diagram.method"), "offline");
	SRV_ASSERT(s, srv_jnum(job, "diagram.width", 0) == 320 &&
			      srv_jnum(job, "diagram.height", 0) == 240 &&
			      srv_jnum(job, "diagram.fps", 0) == fps);
	SRV_ASSERT(s, srv_jget(job, "timings.transcribe") && srv_jget(job, "timings.render"));
	json_decref(job);

	get_result(s, id, "mp4", &r);
	SRV_ASSERT(s, r.status == 200 && ctype_is(&r, "video/mp4"));
	SRV_ASSERT(s, r.len > 1000);
	snprintf(mp4, sizeof(mp4), "%s/jfk.mp4", scratch);
	assert_int_equal(srv_write_file(mp4, r.body, r.len), 0);
	srv_resp_free(&r);
	assert_int_equal(probe_mp4(mp4, &mi), 0);
	fprintf(stderr, "mp4: %d streams, video %s %dx%d %.3f s %ld frames, audio %s %.3f s; wav %.3f s\n",
		mi.n_streams, mi.video_h264 ? "h264" : "?", mi.width, mi.height, mi.video_s,
		mi.video_packets, mi.audio_aac ? "aac" : "?", mi.audio_s, wav_s);
	SRV_ASSERT(s, mi.n_streams == 2 && mi.n_video == 1 && mi.n_audio == 1);
	SRV_ASSERT(s, mi.video_h264 && mi.audio_aac);
	SRV_ASSERT(s, mi.width == 320 && mi.height == 240);
	SRV_ASSERT(s, fabs(mi.video_s - wav_s) <= 0.1);
	SRV_ASSERT(s, fabs(mi.audio_s - wav_s) <= 0.1);
	want_frames = floor(wav_s * fps + 0.5);
	SRV_ASSERT(s, (double)mi.video_packets == want_frames);
	/* the whole stored result came back: the default format is the MP4 */
	{
		char path[160];
		size_t n = 0;
		char *disk = srv_slurp(mp4, &n);
		snprintf(path, sizeof(path), "/v1/jobs/%s/result", id);
		memset(&r, 0, sizeof(r));
		assert_int_equal(srv_get(s, path, &r), 0);
		SRV_ASSERT(s, r.status == 200 && r.len == n && disk && memcmp(r.body, disk, n) == 0);
		srv_resp_free(&r);
		free(disk);
	}
	/* the spec is there too */
	get_result(s, id, "diagram", &r);
	SRV_ASSERT(s, r.status == 200 && r.json && json_array_size(srv_jget(r.json, "nodes")) >= 1);
	srv_resp_free(&r);

	/* progress went through every stage */
	SRV_ASSERT(s, events_have_stage(s, id, "transcribe"));
	SRV_ASSERT(s, events_have_stage(s, id, "diagram"));
	SRV_ASSERT(s, events_have_stage(s, id, "layout"));
	SRV_ASSERT(s, events_have_stage(s, id, "render"));
	SRV_ASSERT(s, events_have_stage(s, id, "store"));

	/* nothing left behind */
	{
		char tmp[800];
		snprintf(tmp, sizeof(tmp), "%s/blobs/tmp", s->data);
		SRV_ASSERT(s, count_entries(tmp, "") == 0);
	}

	/* /metrics counts it */
	memset(&r, 0, sizeof(r));
	assert_int_equal(srv_get(s, "/metrics", &r), 0);
	SRV_ASSERT(s, srv_metric(r.body, "hark_diagram_jobs_total", "kind=\"video\"", NULL) >= 1);
	SRV_ASSERT(s, srv_metric(r.body, "hark_diagram_jobs_total", "kind=\"diagram\"", NULL) >= 1);
	srv_resp_free(&r);
}

/* ---- (4) a text upload for a video job ------------------------------------------- */

static void test_video_text_refused(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char body[4096];
	static const char boundary[] = "hark-test-boundary-7f3a";
	char ctype[96];
	const char *hdrs[] = {NULL};
	int n;

	(void)state;
	/* the type field after the file (srv_upload's order) */
	SRV_ASSERT(s, upload_job(s, flow_txt, "video", NULL, NULL, 0, &r) == 415);
	SRV_ASSERT(s, srv_is_error(&r, "unsupported_media_type"));
	SRV_ASSERT(s, strstr(srv_jstr(r.json, "error.message"), "video job"));
	srv_resp_free(&r);

	/* the type field first */
	n = snprintf(body, sizeof(body),
		     "--%s\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nvideo\r\n"
		     "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.txt\"\r\n"
		     "Content-Type: text/plain\r\n\r\n%s\r\n--%s--\r\n",
		     boundary, boundary, flow_text, boundary);
	SRV_ASSERT(s, n > 0 && (size_t)n < sizeof(body));
	snprintf(ctype, sizeof(ctype), "multipart/form-data; boundary=%s", boundary);
	memset(&r, 0, sizeof(r));
	assert_int_equal(srv_request(s, "POST", "/v1/jobs", ctype, body, (size_t)n, hdrs, &r), 0);
	SRV_ASSERT(s, r.status == 415 && srv_is_error(&r, "unsupported_media_type"));
	SRV_ASSERT(s, strstr(srv_jstr(r.json, "error.message"), "video job"));
	srv_resp_free(&r);

	/* a transcript in a JSON body */
	memset(&r, 0, sizeof(r));
	assert_int_equal(srv_post_json(s, "/v1/jobs",
				       "{\"type\":\"video\",\"transcript\":\"A: hello there\"}", &r),
			 0);
	SRV_ASSERT(s, r.status == 400 && srv_is_error(&r, "bad_request"));
	srv_resp_free(&r);
}

/* ---- (5) canceling a render ---------------------------------------------------------- */

static void test_video_cancel(void **state)
{
	struct srv_server *s = server_a();
	struct srv_resp r;
	char wav[1024], id[64] = "", path[160], tmp[800];
	double deadline, t_cancel, waited;
	int rendering = 0;
	json_t *job;

	(void)state;
	srv_clip("conversation/pyannote_sample.wav", wav, sizeof(wav));
	if (access(wav, R_OK) != 0)
		skip();
	SRV_ASSERT(s, upload_job(s, wav, "video",
				 "{\"size\":\"1920x1080\",\"fps\":60,\"offline\":true}", id,
				 sizeof(id), &r) == 202);
	srv_resp_free(&r);
	/* wait for the render stage */
	deadline = srv_now() + 300 * srv_time_scale();
	while (srv_now() < deadline) {
		const char *st, *stage;
		job = srv_job_get(s, id);
		SRV_ASSERT(s, job != NULL);
		st = srv_jstr(job, "status");
		stage = srv_jstr(job, "progress.stage");
		if (strcmp(st, "running") == 0 && stage && strcmp(stage, "render") == 0)
			rendering = 1;
		if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "canceled") == 0) {
			fprintf(stderr, "job ended %s before the render could be canceled\n", st);
			json_decref(job);
			break;
		}
		json_decref(job);
		if (rendering)
			break;
		srv_sleep_ms(20);
	}
	SRV_ASSERT(s, rendering);
	t_cancel = srv_now();
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	memset(&r, 0, sizeof(r));
	assert_int_equal(srv_delete(s, path, &r), 0);
	SRV_ASSERT(s, r.status == 202 && strcmp(srv_jstr(r.json, "status"), "canceling") == 0);
	srv_resp_free(&r);
	job = srv_wait_status(s, id, "done|failed|canceled", 60);
	waited = srv_now() - t_cancel;
	SRV_ASSERT(s, job && strcmp(srv_jstr(job, "status"), "canceled") == 0);
	json_decref(job);
	fprintf(stderr, "render canceled after %.2f s\n", waited);
	SRV_ASSERT(s, waited < 10 * srv_time_scale());
	/* no result, no files left */
	get_result(s, id, "mp4", &r);
	SRV_ASSERT(s, r.status == 409);
	srv_resp_free(&r);
	snprintf(tmp, sizeof(tmp), "%s/blobs/tmp", s->data);
	SRV_ASSERT(s, count_entries(tmp, "") == 0);
	SRV_ASSERT(s, srv_find_file(s->data, "video.mp4") == 0);
	/* the worker is free again: a small job still runs */
	SRV_ASSERT(s, upload_job(s, flow_txt, "diagram", "{\"offline\":true,\"max_nodes\":8}", id,
				 sizeof(id), &r) == 202);
	srv_resp_free(&r);
	job = wait_done(s, id, 120);
	json_decref(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diagram_text),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_video_jfk),
		cmocka_unit_test(test_video_text_refused),
		cmocka_unit_test(test_video_cancel),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
