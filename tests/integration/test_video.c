/*
 * Video encoder end to end: real recordings from the shared data (jfk.wav,
 * the 30 s conversation sample) and a generated 44.1 kHz stereo WAV are
 * encoded with a simple painter (a background, plus a white rectangle from
 * t = 5 s on) and the MP4 is read back with libavformat/libavcodec: one
 * H.264 yuv420p stream of the requested size, one AAC stream at the source
 * rate and channel count, a duration matching the audio (counted here
 * independently through the 16 kHz decoder), exactly round(fps * duration)
 * decoded frames, the rectangle appearing between the frames around 5 s and
 * nowhere else, the key callback skipping repeated paints. Errors (missing
 * or non-media input, bad output directory, a write failure, cancel,
 * painter failure, bad parameters) must leave neither the output nor a
 * temporary behind. Prints
 * the encode speed at 1280x720 for a static picture.
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
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "audio/audio.h"
#include "audio_testutil.h"
#include "hark/hark.h"
#include "render/video.h"

/* rectangle painted from RECT_T on */
#define RECT_T 5.0
#define RX0 96
#define RY0 72
#define RX1 224
#define RY1 168
#define MARGIN 8

static char dir[512];   /* sub-paths below fit in 600 bytes */

static int teardown(void **state)
{
	(void)state;
	if (dir[0]) {
		chmod(dir, 0700);
		audio_tu_rmtree(dir);
		dir[0] = '\0';
	}
	return 0;
}

static int setup(void **state)
{
	(void)state;
	assert_int_equal(audio_tu_mkdtemp(dir, sizeof(dir)), 0);
	return 0;
}

static int shared_file(char *out, size_t n, const char *rel)
{
	const char *root = getenv("HARK_SHARED");

	snprintf(out, n, "%s/%s", root && *root ? root : "../shared", rel);
	return access(out, R_OK) == 0;
}

static int paint_test(cairo_t *cr, double t, long frame, int w, int h, void *ud)
{
	(void)frame;
	(void)ud;
	cairo_set_source_rgb(cr, 0.1, 0.2, 0.5);
	cairo_rectangle(cr, 0, 0, w, h);
	cairo_fill(cr);
	if (t >= RECT_T) {
		cairo_set_source_rgb(cr, 1, 1, 1);
		cairo_rectangle(cr, RX0, RY0, RX1 - RX0, RY1 - RY0);
		cairo_fill(cr);
	}
	return 0;
}

static unsigned long long key_test(double t, long frame, void *ud)
{
	(void)frame;
	(void)ud;
	return t >= RECT_T ? 1 : 0;
}

static int paint_fail_at_30(cairo_t *cr, double t, long frame, int w, int h, void *ud)
{
	if (frame == 30)
		return HARK_ERR_IO;
	return paint_test(cr, t, frame, w, h, ud);
}

static int cancel_after_20(void *ud)
{
	int *calls = ud;

	return ++*calls > 20;
}

/* Samples / 16000 through the default (16 kHz mono) decoder. */
static double audio_duration(const char *path)
{
	float *pcm = NULL;
	size_t n = 0;
	char err[256];

	assert_int_equal(hark_audio_decode_all(path, NULL, (size_t)16000 * 3600, &pcm, &n, err,
					       sizeof(err)), HARK_OK);
	free(pcm);
	return (double)n / 16000.0;
}

struct probe {
	int n_video, n_audio;
	enum AVCodecID vcodec, acodec;
	int width, height, pix_fmt;
	int arate, achannels;
	double duration;
	long frames;
	double in_diff, out_diff;   /* mean |dY| between frames fa and fb */
};

/* Opens the MP4, checks its streams, decodes every video frame; compares
 * the luma of frames fa and fb inside / outside the rectangle. */
static void probe_mp4(const char *path, long fa, long fb, struct probe *r)
{
	AVFormatContext *fc = NULL;
	AVCodecContext *dec = NULL;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	uint8_t *ya = NULL, *yb = NULL;
	int vidx = -1, w = 0, h = 0;
	double sin = 0, sout = 0;
	long nin = 0, nout = 0;

	memset(r, 0, sizeof(*r));
	assert_non_null(pkt);
	assert_non_null(f);
	assert_int_equal(avformat_open_input(&fc, path, NULL, NULL), 0);
	assert_true(avformat_find_stream_info(fc, NULL) >= 0);
	for (unsigned i = 0; i < fc->nb_streams; i++) {
		AVCodecParameters *par = fc->streams[i]->codecpar;

		if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
			r->n_video++;
			r->vcodec = par->codec_id;
			r->width = w = par->width;
			r->height = h = par->height;
			r->pix_fmt = par->format;
			vidx = (int)i;
		} else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
			r->n_audio++;
			r->acodec = par->codec_id;
			r->arate = par->sample_rate;
			r->achannels = par->ch_layout.nb_channels;
		}
	}
	r->duration = (double)fc->duration / AV_TIME_BASE;
	assert_true(vidx >= 0);
	dec = avcodec_alloc_context3(avcodec_find_decoder(fc->streams[vidx]->codecpar->codec_id));
	assert_non_null(dec);
	assert_true(avcodec_parameters_to_context(dec, fc->streams[vidx]->codecpar) >= 0);
	assert_int_equal(avcodec_open2(dec, dec->codec, NULL), 0);
	ya = calloc((size_t)w * (size_t)h, 1);
	yb = calloc((size_t)w * (size_t)h, 1);
	assert_true(ya && yb);
	for (int eof = 0; !eof;) {
		int ret = av_read_frame(fc, pkt);

		if (ret < 0) {
			eof = 1;
			avcodec_send_packet(dec, NULL);
		} else {
			if (pkt->stream_index == vidx)
				assert_int_equal(avcodec_send_packet(dec, pkt), 0);
			av_packet_unref(pkt);
		}
		while (avcodec_receive_frame(dec, f) == 0) {
			uint8_t *dst = r->frames == fa ? ya : r->frames == fb ? yb : NULL;

			assert_int_equal(f->width, w);
			assert_int_equal(f->height, h);
			for (int y = 0; dst && y < h; y++)
				memcpy(dst + (size_t)y * (size_t)w,
				       f->data[0] + (size_t)y * (size_t)f->linesize[0], (size_t)w);
			r->frames++;
			av_frame_unref(f);
		}
	}
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			double d = fabs((double)ya[y * w + x] - (double)yb[y * w + x]);
			int in = x >= RX0 + MARGIN && x < RX1 - MARGIN && y >= RY0 + MARGIN &&
				 y < RY1 - MARGIN;
			int out = x < RX0 - MARGIN || x >= RX1 + MARGIN || y < RY0 - MARGIN ||
				  y >= RY1 + MARGIN;

			if (in) {
				sin += d;
				nin++;
			} else if (out) {
				sout += d;
				nout++;
			}
		}
	}
	r->in_diff = nin ? sin / (double)nin : 0;
	r->out_diff = nout ? sout / (double)nout : 0;
	free(ya);
	free(yb);
	av_frame_free(&f);
	av_packet_free(&pkt);
	avcodec_free_context(&dec);
	avformat_close_input(&fc);
}

/* No "*.tmp-*" left in dir; returns how many entries dir holds. */
static int count_entries_no_tmp(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *e;
	int n = 0;

	assert_non_null(dp);
	while ((e = readdir(dp))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (strstr(e->d_name, ".tmp-"))
			fail_msg("temporary file left behind: %s", e->d_name);
		n++;
	}
	closedir(dp);
	return n;
}

static struct hark_video_params small_params(void)
{
	struct hark_video_params p = hark_video_default_params();

	p.width = 320;
	p.height = 240;
	p.fps = 10;
	p.threads = 2;
	p.paint = paint_test;
	return p;
}

/* Encode jfk and check everything the container says. */
static void check_jfk(int with_key)
{
	char in[700], out[700], err[256];
	struct hark_video_params p = small_params();
	struct hark_video_stats st;
	struct probe r;
	double dur;
	long expect;

	if (!shared_file(in, sizeof(in), "audio/jfk/jfk.wav"))
		skip();
	snprintf(out, sizeof(out), "%s/jfk.mp4", dir);
	if (with_key)
		p.key = key_test;
	assert_int_equal(hark_video_encode(in, out, &p, &st, err, sizeof(err)), HARK_OK);
	dur = audio_duration(in);
	expect = lround(dur * p.fps);
	assert_true(fabs(st.duration_s - dur) < 1e-3);
	assert_int_equal(st.frames, expect);
	if (with_key) {
		/* frame 0 and the first frame with the rectangle */
		assert_true(st.painted >= 2 && st.painted <= 2 * p.threads);
	} else {
		assert_int_equal(st.painted, expect);
	}
	printf("# jfk %s: %.2f s, %ld frames, %ld painted, wall %.2f s\n",
	       with_key ? "key" : "no key", st.duration_s, st.frames, st.painted, st.wall_s);

	/* the frame just before 5 s and one shortly after */
	probe_mp4(out, (long)(RECT_T * p.fps) - 1, (long)(RECT_T * p.fps) + 2, &r);
	assert_int_equal(r.n_video, 1);
	assert_int_equal(r.n_audio, 1);
	assert_int_equal(r.vcodec, AV_CODEC_ID_H264);
	assert_int_equal(r.pix_fmt, AV_PIX_FMT_YUV420P);
	assert_int_equal(r.width, 320);
	assert_int_equal(r.height, 240);
	assert_int_equal(r.acodec, AV_CODEC_ID_AAC);
	assert_int_equal(r.arate, 16000);
	assert_int_equal(r.achannels, 1);
	printf("# container %.3f s vs audio %.3f s; luma diff in %.1f out %.2f\n",
	       r.duration, dur, r.in_diff, r.out_diff);
	assert_true(fabs(r.duration - dur) < 0.1);
	assert_int_equal(r.frames, expect);
	assert_true(r.in_diff > 100.0);
	assert_true(r.out_diff < 3.0);
	assert_int_equal(count_entries_no_tmp(dir), 1);
}

static void test_jfk(void **state)
{
	(void)state;
	check_jfk(0);
}

static void test_jfk_key(void **state)
{
	(void)state;
	check_jfk(1);
}

static void put_le(unsigned char *b, unsigned v, int n)
{
	for (int i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

/* 16-bit PCM WAV: 44 byte header + interleaved samples. */
static void write_sine_wav(const char *path, int rate, int nch, double secs)
{
	size_t frames = (size_t)(rate * secs), bytes = frames * (size_t)nch * 2;
	unsigned char *b = malloc(44 + bytes);

	assert_non_null(b);
	memcpy(b, "RIFF", 4);
	put_le(b + 4, (unsigned)(36 + bytes), 4);
	memcpy(b + 8, "WAVEfmt ", 8);
	put_le(b + 16, 16, 4);
	put_le(b + 20, 1, 2);
	put_le(b + 22, (unsigned)nch, 2);
	put_le(b + 24, (unsigned)rate, 4);
	put_le(b + 28, (unsigned)(rate * nch * 2), 4);
	put_le(b + 32, (unsigned)(nch * 2), 2);
	put_le(b + 34, 16, 2);
	memcpy(b + 36, "data", 4);
	put_le(b + 40, (unsigned)bytes, 4);
	for (size_t i = 0; i < frames; i++)
		for (int c = 0; c < nch; c++) {
			double v = 0.3 * sin(2 * M_PI * (440.0 + 220.0 * c) * (double)i / rate);

			put_le(b + 44 + (i * (size_t)nch + (size_t)c) * 2,
			       (unsigned)(uint16_t)(int16_t)lround(v * 32767), 2);
		}
	assert_int_equal(audio_tu_write_file(path, b, 44 + bytes), 0);
	free(b);
}

static void test_stereo_44k(void **state)
{
	char in[700], out[700], err[256];
	struct hark_video_params p = small_params();
	struct hark_video_stats st;
	struct probe r;

	(void)state;
	snprintf(in, sizeof(in), "%s/sine.wav", dir);
	snprintf(out, sizeof(out), "%s/sine.mp4", dir);
	write_sine_wav(in, 44100, 2, 3.3);
	p.fps = 30;
	assert_int_equal(hark_video_encode(in, out, &p, &st, err, sizeof(err)), HARK_OK);
	assert_true(fabs(st.duration_s - 3.3) < 1e-4);
	assert_int_equal(st.frames, 99);
	probe_mp4(out, 0, 1, &r);
	assert_int_equal(r.n_video, 1);
	assert_int_equal(r.n_audio, 1);
	assert_int_equal(r.acodec, AV_CODEC_ID_AAC);
	assert_int_equal(r.arate, 44100);
	assert_int_equal(r.achannels, 2);
	assert_int_equal(r.frames, 99);
	assert_true(fabs(r.duration - 3.3) < 0.1);
	assert_true(r.in_diff < 3.0);   /* no rectangle yet: frames alike */
}

static void expect_fail(const char *in, const char *out, const struct hark_video_params *p,
			int want)
{
	char err[256] = "";
	int ret = hark_video_encode(in, out, p, NULL, err, sizeof(err));

	printf("# %s -> %s: %s (%s)\n", in ? in : "(null)", out, hark_err_code(ret), err);
	if (want)
		assert_int_equal(ret, want);
	else
		assert_int_not_equal(ret, HARK_OK);
	assert_true(err[0] != '\0');
	assert_int_not_equal(access(out, F_OK), 0);
}

static void test_errors(void **state)
{
	char in[700], out[700], txt[700], sub[700], bad[700];
	struct hark_video_params p = small_params();

	(void)state;
	if (!shared_file(in, sizeof(in), "audio/jfk/jfk.wav"))
		skip();
	snprintf(out, sizeof(out), "%s/e.mp4", dir);
	snprintf(txt, sizeof(txt), "%s/notes.txt", dir);
	snprintf(bad, sizeof(bad), "%s/missing.wav", dir);
	assert_int_equal(audio_tu_write_file(txt, "just some text, not audio\n", 26), 0);

	expect_fail(bad, out, &p, HARK_ERR_NOT_FOUND);
	expect_fail(txt, out, &p, HARK_ERR_NOT_MEDIA);

	/* output directory missing */
	snprintf(sub, sizeof(sub), "%s/nodir/e.mp4", dir);
	expect_fail(in, sub, &p, 0);

	/* output "directory" that is a file; output path that is a directory */
	snprintf(sub, sizeof(sub), "%s/notes.txt/e.mp4", dir);
	expect_fail(in, sub, &p, 0);
	{
		char err[256] = "";

		assert_int_equal(hark_video_encode(in, dir, &p, NULL, err, sizeof(err)),
				 HARK_ERR_IS_DIR);
		assert_true(err[0] != '\0');
	}

	/* invalid parameters */
	p.width = 321;
	expect_fail(in, out, &p, HARK_ERR_INVALID_ARG);
	p = small_params();
	p.fps = 0;
	expect_fail(in, out, &p, HARK_ERR_INVALID_ARG);
	p = small_params();
	p.crf = 52;
	expect_fail(in, out, &p, HARK_ERR_INVALID_ARG);
	p = small_params();
	p.paint = NULL;
	expect_fail(in, out, &p, HARK_ERR_INVALID_ARG);
	p = small_params();
	p.preset = "warp";
	expect_fail(in, out, &p, HARK_ERR_INVALID_ARG);
	expect_fail(in, out, NULL, HARK_ERR_INVALID_ARG);

	/* painter error */
	p = small_params();
	p.paint = paint_fail_at_30;
	expect_fail(in, out, &p, HARK_ERR_IO);

	assert_int_equal(count_entries_no_tmp(dir), 1);   /* notes.txt */
}

static void test_unwritable_dir(void **state)
{
	char in[700], sub[600], out[700];
	struct hark_video_params p = small_params();

	(void)state;
	if (!shared_file(in, sizeof(in), "audio/jfk/jfk.wav"))
		skip();
	snprintf(sub, sizeof(sub), "%s/ro", dir);
	assert_int_equal(mkdir(sub, 0555), 0);
	if (access(sub, W_OK) == 0) {
		printf("# running as a user who may write anywhere: skipped\n");
		return;
	}
	snprintf(out, sizeof(out), "%s/v.mp4", sub);
	expect_fail(in, out, &p, HARK_ERR_PERMISSION);
	assert_int_equal(count_entries_no_tmp(sub), 0);
}

/* A write failure mid-file (EFBIG from a file size limit, standing in for
 * a full disk) is an I/O error and leaves nothing behind. */
static void test_write_failure(void **state)
{
	char in[700], out[700];
	struct hark_video_params p = small_params();
	struct rlimit old, lim;
	void (*prev)(int);

	(void)state;
	if (!shared_file(in, sizeof(in), "audio/jfk/jfk.wav"))
		skip();
	snprintf(out, sizeof(out), "%s/big.mp4", dir);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 40000;
	prev = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	expect_fail(in, out, &p, HARK_ERR_IO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(count_entries_no_tmp(dir), 0);
}

static void test_cancel_keeps_existing(void **state)
{
	char in[700], out[700], err[256], buf[64] = "";
	struct hark_video_params p = small_params();
	struct hark_video_stats st;
	int calls = 0;
	FILE *f;

	(void)state;
	if (!shared_file(in, sizeof(in), "audio/jfk/jfk.wav"))
		skip();
	snprintf(out, sizeof(out), "%s/old.mp4", dir);
	assert_int_equal(audio_tu_write_file(out, "previous video", 14), 0);
	p.cancel = cancel_after_20;
	p.cb_user_data = &calls;
	assert_int_equal(hark_video_encode(in, out, &p, &st, err, sizeof(err)),
			 HARK_ERR_CANCELED);
	assert_true(calls > 20);
	assert_true(st.frames < 110);
	f = fopen(out, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 14);
	fclose(f);
	assert_string_equal(buf, "previous video");
	assert_int_equal(count_entries_no_tmp(dir), 1);

	/* a fresh name stays absent */
	calls = 0;
	snprintf(out, sizeof(out), "%s/new.mp4", dir);
	expect_fail(in, out, &p, HARK_ERR_CANCELED);
	assert_int_equal(count_entries_no_tmp(dir), 1);
}

static int paint_static(cairo_t *cr, double t, long frame, int w, int h, void *ud)
{
	(void)t;
	(void)frame;
	(void)ud;
	cairo_set_source_rgb(cr, 0.95, 0.95, 0.92);
	cairo_paint(cr);
	cairo_set_source_rgb(cr, 0.2, 0.3, 0.6);
	cairo_rectangle(cr, w * 0.1, h * 0.1, w * 0.3, h * 0.2);
	cairo_fill(cr);
	return 0;
}

static unsigned long long key_static(double t, long frame, void *ud)
{
	(void)t;
	(void)frame;
	(void)ud;
	return 7;
}

static void test_speed_720p(void **state)
{
	char in[700], out[700], err[256];
	struct hark_video_params p = hark_video_default_params();
	struct hark_video_stats st;

	(void)state;
	if (!shared_file(in, sizeof(in), "audio/conversation/pyannote_sample.wav"))
		skip();
	snprintf(out, sizeof(out), "%s/speed.mp4", dir);
	p.paint = paint_static;
	p.key = key_static;
	assert_int_equal(hark_video_encode(in, out, &p, &st, err, sizeof(err)), HARK_OK);
	assert_int_equal(st.painted, 1);
	assert_int_equal(st.frames, lround(st.duration_s * 30));
	printf("# speed 1280x720 30 fps static+key: %.1f s video in %.2f s wall "
	       "(%.2f s per minute of video; paint %.2f s, encode %.2f s)\n",
	       st.duration_s, st.wall_s, st.wall_s * 60.0 / st.duration_s, st.paint_s,
	       st.encode_s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_jfk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jfk_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stereo_44k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_keeps_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_speed_720p, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
