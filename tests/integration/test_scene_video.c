/*
 * End to end from speaker turns to the MP4 the way `hark video` makes it
 * (analyze/visual.h -> render/scene.h -> render/video.h), on the shared 30 s
 * conversation's audio with a spoken procedure laid over its timeline: the
 * file has one H.264 and one AAC stream, the audio's duration and fps x
 * duration frames; for every node that starts after 1 s, the decoded frame
 * shortly after its start differs from the frame before it inside the
 * node's box (hark_draw_node_rect), while a node already shown stays the
 * same between those frames; pages of a long input switch as the speech
 * reaches them; most frames are reused rather than painted again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "analyze/visual.h"
#include "audio/audio.h"
#include "hark/hark.h"
#include "render/draw.h"
#include "render/scene.h"
#include "render/video.h"

#include "audio_testutil.h"

#define W 640
#define H 360
#define FPS 10

static char g_dir[256];

static int setup(void **state)
{
	(void)state;
	return audio_tu_mkdtemp(g_dir, sizeof(g_dir));
}

static int teardown(void **state)
{
	(void)state;
	audio_tu_rmtree(g_dir);
	return 0;
}

static const char *conv_path(char *buf, size_t n)
{
	const char *sh = getenv("HARK_SHARED");

	snprintf(buf, n, "%s/audio/conversation/pyannote_sample.wav", sh ? sh : "../shared");
	return access(buf, R_OK) == 0 ? buf : NULL;
}

/* Decoded luma planes of every frame (W x H each), *n frames. */
static uint8_t *decode_all(const char *path, long *n, double *dur, int *nv, int *na)
{
	AVFormatContext *fc = NULL;
	AVCodecContext *dec = NULL;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	uint8_t *y = NULL;
	size_t cap = 0;
	int vidx = -1;

	*n = 0;
	*nv = *na = 0;
	assert_int_equal(avformat_open_input(&fc, path, NULL, NULL), 0);
	assert_true(avformat_find_stream_info(fc, NULL) >= 0);
	for (unsigned i = 0; i < fc->nb_streams; i++) {
		const AVCodecParameters *par = fc->streams[i]->codecpar;

		if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
			(*nv)++;
			vidx = (int)i;
			assert_int_equal(par->codec_id, AV_CODEC_ID_H264);
			assert_int_equal(par->width, W);
			assert_int_equal(par->height, H);
		} else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
			(*na)++;
			assert_int_equal(par->codec_id, AV_CODEC_ID_AAC);
		}
	}
	*dur = (double)fc->duration / AV_TIME_BASE;
	assert_true(vidx >= 0);
	dec = avcodec_alloc_context3(avcodec_find_decoder(AV_CODEC_ID_H264));
	assert_non_null(dec);
	assert_true(avcodec_parameters_to_context(dec, fc->streams[vidx]->codecpar) >= 0);
	assert_int_equal(avcodec_open2(dec, dec->codec, NULL), 0);
	for (int eof = 0; !eof;) {
		if (av_read_frame(fc, pkt) < 0) {
			eof = 1;
			avcodec_send_packet(dec, NULL);
		} else {
			if (pkt->stream_index == vidx)
				assert_int_equal(avcodec_send_packet(dec, pkt), 0);
			av_packet_unref(pkt);
		}
		while (avcodec_receive_frame(dec, f) == 0) {
			if ((size_t)*n == cap) {
				cap = cap ? cap * 2 : 64;
				y = realloc(y, cap * W * H);
				assert_non_null(y);
			}
			for (int r = 0; r < H; r++)
				memcpy(y + (size_t)*n * W * H + (size_t)r * W,
				       f->data[0] + (size_t)r * (size_t)f->linesize[0], W);
			(*n)++;
			av_frame_unref(f);
		}
	}
	av_frame_free(&f);
	av_packet_free(&pkt);
	avcodec_free_context(&dec);
	avformat_close_input(&fc);
	return y;
}

/* Mean |dY| between frames a and b inside rect (shrunk by 2 px). */
static double rect_diff(const uint8_t *y, long a, long b, const double r[4])
{
	int x0 = (int)ceil(r[0]) + 2, y0 = (int)ceil(r[1]) + 2;
	int x1 = (int)floor(r[0] + r[2]) - 2, y1 = (int)floor(r[1] + r[3]) - 2;
	double s = 0;
	long n = 0;

	if (x0 < 0)
		x0 = 0;
	if (y0 < 0)
		y0 = 0;
	if (x1 > W)
		x1 = W;
	if (y1 > H)
		y1 = H;
	for (int yy = y0; yy < y1; yy++)
		for (int xx = x0; xx < x1; xx++) {
			s += fabs((double)y[(size_t)a * W * H + (size_t)yy * W + (size_t)xx] -
				  (double)y[(size_t)b * W * H + (size_t)yy * W + (size_t)xx]);
			n++;
		}
	return n ? s / (double)n : 0;
}

static const char *const k_steps[] = {
	"First, the customer submits the order form on the website.",
	"Then we check whether the item is in stock.",
	"If it is in stock, we pack it and ship it the same day.",
	"Otherwise we email the customer a back-order notice.",
	"After that the invoice is sent.",
	"Finally, the order is closed in the system.",
};

static void test_nodes_appear_in_their_boxes(void **state)
{
	struct hark_chunk_turn turns[6];
	struct hark_visual_result vr;
	struct hark_scene *sc = NULL;
	struct hark_video_params vp = hark_video_default_params();
	struct hark_video_stats st;
	char wav[512], out[600], err[256] = "";
	uint8_t *y;
	long n;
	double dur, audio_s;
	int nv, na;
	size_t checked = 0;

	(void)state;
	if (!conv_path(wav, sizeof(wav)))
		skip();
	/* the procedure spoken over the 30 s: one step every 4.5 s from 2 s */
	for (size_t i = 0; i < 6; i++) {
		turns[i].speaker = "Ana";
		turns[i].text = k_steps[i];
		turns[i].start_s = 2.0 + 4.5 * (double)i;
		turns[i].end_s = turns[i].start_s + 4.0;
	}
	assert_int_equal(hark_visual_build(turns, 6, NULL, &vr, err, sizeof(err)), HARK_OK);
	assert_int_equal(vr.pages[0].type, HARK_DIAGRAM_FLOWCHART);
	assert_int_equal(hark_scene_init(vr.pages, vr.n_pages, turns, 6, NULL, &sc, err,
					 sizeof(err)),
			 HARK_OK);
	snprintf(out, sizeof(out), "%s/proc.mp4", g_dir);
	vp.width = W;
	vp.height = H;
	vp.fps = FPS;
	vp.paint = hark_scene_paint;
	vp.key = hark_scene_key;
	vp.paint_user_data = sc;
	assert_int_equal(hark_video_encode(wav, out, &vp, &st, err, sizeof(err)), HARK_OK);
	{
		float *pcm = NULL;
		size_t ns = 0;

		assert_int_equal(hark_audio_decode_all(wav, NULL, (size_t)16000 * 600, &pcm, &ns, err, sizeof(err)),
				 HARK_OK);
		free(pcm);
		audio_s = (double)ns / 16000.0;
	}
	assert_true(st.painted < st.frames / 2);
	y = decode_all(out, &n, &dur, &nv, &na);
	assert_int_equal(nv, 1);
	assert_int_equal(na, 1);
	assert_true(fabs(dur - audio_s) <= 0.1);
	assert_int_equal(n, lround(audio_s * FPS));
	assert_int_equal(st.frames, n);

	for (size_t i = 0; i < vr.pages[0].n_nodes; i++) {
		const struct hark_diagram_node *nd = &vr.pages[0].nodes[i];
		struct hark_draw_params dp;
		double rect[4], t0 = nd->span.start_s;
		long before, after;

		if (!(t0 > 1.0) || t0 + 1.0 > audio_s)
			continue;
		before = (long)floor((t0 - 0.3) * FPS);
		after = (long)ceil((t0 + 0.6) * FPS);
		dp = hark_scene_draw_params(sc, t0 + 0.6, W, H);
		assert_int_equal(hark_draw_node_rect(hark_scene_layout(sc, 0), &dp, i, rect),
				 HARK_OK);
		if (rect[2] < 8 || rect[3] < 8)
			continue;
		/* the node's box changes when it appears */
		if (rect_diff(y, before, after, rect) <= 8.0)
			fprintf(stderr, "node %zu (%s) at %.2f s: diff %.2f\n", i, nd->label, t0,
				rect_diff(y, before, after, rect));
		assert_true(rect_diff(y, before, after, rect) > 8.0);
		checked++;
	}
	assert_true(checked >= 3);
	/* the start node, shown from the first step on, is steady later on */
	{
		struct hark_draw_params dp = hark_scene_draw_params(sc, 20.0, W, H);
		double rect[4];

		for (size_t i = 0; i < vr.pages[0].n_nodes; i++)
			if (!strcmp(vr.pages[0].nodes[i].kind, "start")) {
				assert_int_equal(hark_draw_node_rect(hark_scene_layout(sc, 0), &dp, i,
								     rect),
						 HARK_OK);
				assert_true(rect_diff(y, 20 * FPS, 22 * FPS, rect) < 3.0);
			}
	}
	free(y);
	hark_scene_free(sc);
	hark_visual_result_clear(&vr);
}

static void test_pages_follow_speech(void **state)
{
	struct hark_chunk_turn turns[120];
	char *txt[120];
	struct hark_visual_params p = hark_visual_default_params();
	struct hark_visual_result vr;
	struct hark_scene *sc = NULL;
	char err[256] = "";

	(void)state;
	for (size_t i = 0; i < 120; i++) {
		txt[i] = malloc(160);
		assert_non_null(txt[i]);
		snprintf(txt[i], 160, "Then we move crate %zu to bay %zu, and next we log it.",
			 i * 7 % 97, i % 13);
		turns[i].speaker = "Lead";
		turns[i].text = txt[i];
		turns[i].start_s = 5.0 * (double)i;
		turns[i].end_s = turns[i].start_s + 4.5;
	}
	p.type = HARK_DIAGRAM_FLOWCHART;
	assert_int_equal(hark_visual_build(turns, 120, &p, &vr, err, sizeof(err)), HARK_OK);
	assert_true(vr.n_pages >= 2);
	assert_int_equal(hark_scene_init(vr.pages, vr.n_pages, turns, 120, NULL, &sc, err,
					 sizeof(err)),
			 HARK_OK);
	assert_int_equal(hark_scene_n_pages(sc), vr.n_pages);
	assert_int_equal(hark_scene_page_at(sc, 0.0), 0);
	assert_int_equal(hark_scene_page_at(sc, 1e9), vr.n_pages - 1);
	/* never goes back, and page k is shown once its own elements are spoken */
	{
		size_t last = 0;

		for (double t = 0; t < 600; t += 2.5) {
			size_t k = hark_scene_page_at(sc, t);

			assert_true(k >= last);
			last = k;
		}
		assert_true(last == vr.n_pages - 1);
	}
	for (size_t k = 1; k < vr.n_pages; k++) {
		const struct hark_diagram *d = hark_scene_page(sc, k);
		double first = INFINITY;

		for (size_t i = 0; i < d->n_nodes; i++)
			if (d->nodes[i].span.start_s >= 0 && d->nodes[i].span.start_s < first)
				first = d->nodes[i].span.start_s;
		assert_true(isfinite(first));
		assert_int_equal(hark_scene_page_at(sc, first), k);
		assert_true(hark_scene_page_at(sc, first - 0.01) < k);
	}
	hark_scene_free(sc);
	hark_visual_result_clear(&vr);
	for (size_t i = 0; i < 120; i++)
		free(txt[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodes_appear_in_their_boxes),
		cmocka_unit_test(test_pages_follow_speech),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
