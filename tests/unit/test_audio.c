/*
 * The streaming decoder on good input: synthetic tones written at run time
 * (with the ffmpeg CLI, fixtures only) in many containers, codecs and rates
 * must decode to 16 kHz mono of the right length and pitch with correct
 * info fields; 16 kHz s16 input must come out bit-exact as x / 32768;
 * offset/duration cuts must equal the matching slice of a full decode
 * (seeking and non-seeking paths; FLAC in Matroska, whose 1 ms timestamps
 * cannot place a seek exactly, too); channel selection, chunking, the
 * decode_all cap, parameter validation and concurrent decoders.
 *
 * Length tolerances (in 16 kHz samples, 2 s tones = 32000 samples): PCM,
 * FLAC, ALAC and Ogg (granule positions) are exact; lossy codecs may keep
 * encoder padding the container does not describe: mp3 one frame (1152
 * source samples), AAC up to two frames (2 x 1024), Vorbis in Matroska one
 * long block (2048), Opus in WebM one 20 ms frame.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "audio/audio.h"
#include "audio_testutil.h"
#include "hark/hark.h"

#define TONE_S 2
#define TONE_N (TONE_S * HARK_AUDIO_RATE)
#define MAX_SAMPLES ((size_t)HARK_AUDIO_RATE * 120)

static char tmp[512];

struct fixture {
	const char *file;
	const char *gen;        /* ffmpeg args; %1$s = output, %2$d = Hz */
	int freq;
	const char *codec;      /* expected info.codec */
	const char *container;  /* expected substring of info.container */
	int rate, channels;
	int tol;                /* accepted |length - TONE_N| */
};

#define SINE(r) "-f lavfi -i sine=f=%2$d:r=" #r ":d=2"
#define VIDEO "-f lavfi -i testsrc=s=64x48:r=5:d=2 "

static const struct fixture fixtures[] = {
	{"s16_44k_stereo.wav",
	 SINE(44100) " -af 'pan=stereo|c0=c0|c1=c0' -c:a pcm_s16le %1$s", 440,
	 "pcm_s16le", "wav", 44100, 2, 0},
	{"f32_48k.wav", SINE(48000) " -c:a pcm_f32le %1$s", 523,
	 "pcm_f32le", "wav", 48000, 1, 0},
	{"u8_8k.wav", SINE(8000) " -c:a pcm_u8 %1$s", 700,
	 "pcm_u8", "wav", 8000, 1, 0},
	{"s24_96k.wav", SINE(96000) " -c:a pcm_s24le %1$s", 1200,
	 "pcm_s24le", "wav", 96000, 1, 0},
	{"a_22k.flac", SINE(22050) " -c:a flac %1$s", 660,
	 "flac", "flac", 22050, 1, 0},
	{"a_44k.mp3", SINE(44100) " -c:a libmp3lame -b:a 96k %1$s", 880,
	 "mp3", "mp3", 44100, 1, 418},
	{"a_44k.ogg", SINE(44100) " -c:a libvorbis %1$s", 1000,
	 "vorbis", "ogg", 44100, 1, 0},
	{"a_48k.opus", SINE(48000) " -c:a libopus -b:a 48k %1$s", 600,
	 "opus", "ogg", 48000, 1, 0},
	{"a_44k.m4a", SINE(44100) " -c:a aac %1$s", 750,
	 "aac", "mp4", 44100, 1, 743},
	{"alac_44k.m4a", SINE(44100) " -c:a alac %1$s", 500,
	 "alac", "mp4", 44100, 1, 0},
	{"a_32k.aiff", SINE(32000) " %1$s", 1500,
	 "pcm_s16be", "aiff", 32000, 1, 0},
	{"v.mp4", VIDEO SINE(44100) " -c:v libx264 -pix_fmt yuv420p -c:a aac "
	 "-shortest %1$s", 950, "aac", "mp4", 44100, 1, 743},
	{"v.webm", VIDEO SINE(48000) " -c:v libvpx -c:a libopus %1$s", 810,
	 "opus", "webm", 48000, 1, 320},
	{"v.mkv", VIDEO SINE(44100) " -c:v mpeg4 -c:a libvorbis %1$s", 1100,
	 "vorbis", "matroska", 44100, 1, 743},
	{"v.mov", VIDEO SINE(48000) " -c:v mpeg4 -c:a pcm_s16le %1$s", 450,
	 "pcm_s16le", "mov", 48000, 1, 0},
	{"a.ts", VIDEO SINE(48000) " -c:v mpeg2video -c:a mp2 -f mpegts %1$s", 640,
	 "mp2", "mpegts", 48000, 1, 1152},
};
#define NFIX (sizeof(fixtures) / sizeof(fixtures[0]))

static void path_of(char *buf, size_t n, const char *file)
{
	snprintf(buf, n, "%s/%s", tmp, file);
}

static int gen(const char *file, const char *fmt, int freq)
{
	char out[700], args[1500];

	path_of(out, sizeof(out), file);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(args, sizeof(args), fmt, out, freq);
#pragma GCC diagnostic pop
	return audio_tu_ffmpeg("%s", args);
}

static int group_setup(void **state)
{
	(void)state;
	if (!audio_tu_have_ffmpeg() || audio_tu_mkdtemp(tmp, sizeof(tmp))) {
		tmp[0] = '\0';   /* every test skips */
		return 0;
	}
	for (size_t i = 0; i < NFIX; i++)
		if (gen(fixtures[i].file, fixtures[i].gen, fixtures[i].freq)) {
			fprintf(stderr, "cannot create fixture %s\n", fixtures[i].file);
			audio_tu_rmtree(tmp);
			return -1;
		}
	/* 30 s noise in several forms for the cut tests */
	if (gen("n16.wav", "-f lavfi -i anoisesrc=d=30:r=16000:a=0.4:seed=%2$d "
		"-c:a pcm_s16le %1$s", 7) ||
	    gen("n44.flac", "-f lavfi -i anoisesrc=d=30:r=44100:a=0.4:seed=%2$d "
		"-c:a flac %1$s", 8) ||
	    gen("n48f.wav", "-f lavfi -i anoisesrc=d=30:r=48000:a=0.4:seed=%2$d "
		"-c:a pcm_f32le %1$s", 9) ||
	    gen("n44f.mkv", "-f lavfi -i anoisesrc=d=30:r=44100:a=0.4:seed=%2$d "
		"-c:a flac %1$s", 10)) {
		fprintf(stderr, "cannot create noise fixtures\n");
		audio_tu_rmtree(tmp);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (tmp[0])
		audio_tu_rmtree(tmp);
	return 0;
}

static void need_fixtures(void)
{
	if (!tmp[0])
		skip();
}

static float *decode(const char *file, const struct hark_audio_params *p,
		     size_t *n, int *code)
{
	char path[700], err[256];
	float *pcm = NULL;

	path_of(path, sizeof(path), file);
	*code = hark_audio_decode_all(path, p, MAX_SAMPLES, &pcm, n, err, sizeof(err));
	if (*code)
		fprintf(stderr, "%s: %s (%s)\n", file, hark_err_code(*code), err);
	return pcm;
}

/* Power at freq clearly above the power slightly below and above it. */
static void assert_tone(const float *pcm, size_t n, double freq)
{
	/* skip codec edge transients */
	const float *x = pcm + 1600;
	size_t m = n - 3200;
	double on = audio_tu_tone_power(x, m, freq, HARK_AUDIO_RATE);
	double lo = audio_tu_tone_power(x, m, freq * 0.85, HARK_AUDIO_RATE);
	double hi = audio_tu_tone_power(x, m, freq * 1.18, HARK_AUDIO_RATE);

	assert_true(n > 3200);
	assert_true(on > 100.0 * lo);
	assert_true(on > 100.0 * hi);
}

static void test_containers(void **state)
{
	(void)state;
	need_fixtures();
	for (size_t i = 0; i < NFIX; i++) {
		const struct fixture *f = &fixtures[i];
		struct hark_audio *a = NULL;
		char path[700], err[256];
		size_t n = 0;
		int code;
		float *pcm;
		double rms;

		path_of(path, sizeof(path), f->file);
		code = hark_audio_open(path, NULL, &a, err, sizeof(err));
		if (code)
			fprintf(stderr, "%s: %s\n", f->file, err);
		assert_int_equal(code, HARK_OK);
		{
			const struct hark_audio_info *info = hark_audio_info(a);

			assert_string_equal(info->codec, f->codec);
			if (!strstr(info->container, f->container))
				fprintf(stderr, "%s: container %s\n", f->file, info->container);
			assert_non_null(strstr(info->container, f->container));
			assert_int_equal(info->src_rate, f->rate);
			assert_int_equal(info->src_channels, f->channels);
			assert_true(fabs(info->duration_s - TONE_S) < 0.1);
		}
		hark_audio_close(a);

		pcm = decode(f->file, NULL, &n, &code);
		assert_int_equal(code, HARK_OK);
		if ((long)n - TONE_N > f->tol || TONE_N - (long)n > f->tol)
			fprintf(stderr, "%s: %zu samples, want %d +- %d\n", f->file,
				n, TONE_N, f->tol);
		assert_true(labs((long)n - TONE_N) <= f->tol);
		assert_tone(pcm, n, f->freq);
		/* lavfi sine has amplitude 1/8: RMS 0.0884 (also after downmix) */
		rms = audio_tu_rms(pcm + 1600, n - 3200);
		if (!(rms > 0.0884 * 0.85 && rms < 0.0884 * 1.15))
			fprintf(stderr, "%s: rms %.4f\n", f->file, rms);
		assert_true(rms > 0.0884 * 0.85 && rms < 0.0884 * 1.15);
		for (size_t k = 0; k < n; k++)
			assert_true(pcm[k] >= -1.0f && pcm[k] <= 1.0f);
		free(pcm);
	}
}

/* 16 kHz s16 input: every sample exactly s16 / 32768. */
static void check_exact_wav(const char *path, int channel)
{
	struct hark_audio_params p = hark_audio_default_params();
	int16_t *raw = NULL;
	size_t frames = 0, n = 0;
	int ch = 0, rate = 0, code;
	float *pcm = NULL;
	char err[256];

	assert_int_equal(audio_tu_read_wav_s16(path, &raw, &frames, &ch, &rate), 0);
	assert_int_equal(rate, 16000);
	p.channel = channel;
	code = hark_audio_decode_all(path, &p, MAX_SAMPLES, &pcm, &n, err, sizeof(err));
	assert_int_equal(code, HARK_OK);
	assert_int_equal(n, frames);
	for (size_t i = 0; i < n; i++) {
		float want = (float)raw[i * (size_t)ch + (size_t)(channel < 0 ? 0 : channel)]
			     / 32768.0f;

		if (memcmp(&pcm[i], &want, sizeof(float)) != 0)
			fail_msg("sample %zu: %.9g != %.9g", i, pcm[i], want);
	}
	free(raw);
	free(pcm);
}

static void test_s16_passthrough_exact(void **state)
{
	char path[700];
	const char *shared = getenv("HARK_SHARED");

	(void)state;
	need_fixtures();
	path_of(path, sizeof(path), "n16.wav");
	check_exact_wav(path, -1);
	if (shared && *shared) {
		snprintf(path, sizeof(path), "%s/audio/jfk/jfk.wav", shared);
		check_exact_wav(path, -1);
		snprintf(path, sizeof(path), "%s/audio/conversation/stereo_diarization.wav",
			 shared);
		check_exact_wav(path, 0);
		check_exact_wav(path, 1);
	}
}

/* 16 kHz stereo s16: picked channels exact, downmix the mean of both. */
static void test_stereo_16k(void **state)
{
	char path[700], err[256];
	int16_t *raw = NULL;
	size_t frames, n;
	int ch, rate;
	float *pcm = NULL;

	(void)state;
	need_fixtures();
	assert_int_equal(gen("st16.wav", "-f lavfi -i anoisesrc=d=3:r=16000:a=0.5:seed=%2$d "
			     "-f lavfi -i sine=f=300:r=16000:d=3 -filter_complex amerge=inputs=2 "
			     "-c:a pcm_s16le %1$s", 3), 0);
	path_of(path, sizeof(path), "st16.wav");
	check_exact_wav(path, 0);
	check_exact_wav(path, 1);
	assert_int_equal(audio_tu_read_wav_s16(path, &raw, &frames, &ch, &rate), 0);
	assert_int_equal(ch, 2);
	assert_int_equal(hark_audio_decode_all(path, NULL, MAX_SAMPLES, &pcm, &n, err,
					       sizeof(err)), HARK_OK);
	assert_int_equal(n, frames);
	for (size_t i = 0; i < n; i++) {
		double want = ((double)raw[2 * i] + raw[2 * i + 1]) / 65536.0;

		assert_true(fabs(pcm[i] - want) < 1e-6);
	}
	free(raw);
	free(pcm);
}

/* Different tones per channel through the resampling path. */
static void test_channel_select(void **state)
{
	struct hark_audio_params p = hark_audio_default_params();
	struct hark_audio *a = NULL;
	char path[700], err[256];
	size_t n;
	int code;
	float *pcm;
	double p440, p1k;

	(void)state;
	need_fixtures();
	assert_int_equal(gen("lr.flac", "-f lavfi -i sine=f=440:r=44100:d=2 "
			     "-f lavfi -i sine=f=%2$d:r=44100:d=2 "
			     "-filter_complex amerge=inputs=2 -c:a flac %1$s", 1000), 0);
	for (int c = 0; c < 2; c++) {
		p.channel = c;
		pcm = decode("lr.flac", &p, &n, &code);
		assert_int_equal(code, HARK_OK);
		assert_int_equal(n, TONE_N);
		assert_tone(pcm, n, c == 0 ? 440 : 1000);
		p440 = audio_tu_tone_power(pcm, n, 440, HARK_AUDIO_RATE);
		p1k = audio_tu_tone_power(pcm, n, 1000, HARK_AUDIO_RATE);
		if (c == 0)
			assert_true(p440 > 1e4 * p1k);
		else
			assert_true(p1k > 1e4 * p440);
		free(pcm);
	}
	/* downmix: both tones, equal weight */
	pcm = decode("lr.flac", NULL, &n, &code);
	assert_int_equal(code, HARK_OK);
	p440 = audio_tu_tone_power(pcm, n, 440, HARK_AUDIO_RATE);
	p1k = audio_tu_tone_power(pcm, n, 1000, HARK_AUDIO_RATE);
	assert_true(p440 > 0.5 * p1k && p440 < 2.0 * p1k);
	free(pcm);
	/* no third channel */
	p.channel = 2;
	path_of(path, sizeof(path), "lr.flac");
	assert_int_equal(hark_audio_open(path, &p, &a, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_null(a);
	assert_true(strlen(err) > 0);
}

/* Cuts equal the slice of the full decode, with and without seeking. */
static void test_cut_exact(void **state)
{
	static const char *const files[] = {"n16.wav", "n44.flac", "n48f.wav",
					    "n44f.mkv", "s16_44k_stereo.wav"};
	static const double offs[] = {0.0, 0.5, 4.25, 12.3456, 21.00003, 29.0};
	static const double durs[] = {1.5, 3.0, 0.0};

	(void)state;
	need_fixtures();
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		size_t nfull, n;
		int code;
		float *full = decode(files[f], NULL, &nfull, &code);

		assert_int_equal(code, HARK_OK);
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
			for (size_t j = 0; j < sizeof(durs) / sizeof(durs[0]); j++) {
				struct hark_audio_params p = hark_audio_default_params();
				size_t start = (size_t)llround(offs[i] * HARK_AUDIO_RATE);
				size_t want;
				float *cut;

				if (start > nfull)
					continue;
				want = nfull - start;
				if (durs[j] > 0 && (size_t)llround(durs[j] * HARK_AUDIO_RATE) < want)
					want = (size_t)llround(durs[j] * HARK_AUDIO_RATE);
				p.offset_s = offs[i];
				p.duration_s = durs[j];
				cut = decode(files[f], &p, &n, &code);
				assert_int_equal(code, HARK_OK);
				if (n != want || memcmp(cut, full + start, n * sizeof(float)))
					fail_msg("%s offset %g duration %g: %zu samples (want %zu)"
						 " or content differs", files[f], offs[i],
						 durs[j], n, want);
				free(cut);
			}
		free(full);
	}
}

/* Lag (in samples, within +-maxlag) at which cut best matches full around
 * start; *rel gets the mean |difference| there relative to the mean |full|. */
static int best_lag(const float *cut, size_t n, const float *full, size_t nfull,
		    size_t start, int maxlag, double *rel)
{
	double best = INFINITY, energy = 0;
	int lag = 0;

	for (int k = -maxlag; k <= maxlag; k++) {
		double d = 0;

		if ((long)start + k < 0 || (long)start + k + (long)n > (long)nfull)
			continue;
		for (size_t i = 0; i < n; i++)
			d += fabs(cut[i] - full[(size_t)((long)start + k) + i]);
		if (d < best) {
			best = d;
			lag = k;
		}
	}
	for (size_t i = 0; i < n; i++)
		energy += fabs(full[start + i]);
	*rel = best / (energy > 0 ? energy : 1);
	return lag;
}

/* Lossy cuts through seeking stay aligned with the full decode: exactly for
 * timestamps in samples (mp3, Ogg, MP4); within the 1 ms time base (plus
 * codec delay rounding) for Matroska/WebM. */
static void test_cut_lossy(void **state)
{
	static const struct {
		const char *file, *codec;
		int maxlag;
	} files[] = {
		{"n44.mp3", "libmp3lame -b:a 128k", 0},
		{"n44.opus", "libopus", 0},
		{"n44.m4a", "aac", 0},
		{"n44.webm", "libopus", 24},
		{"n44v.mkv", "libvorbis", 24},
	};

	(void)state;
	need_fixtures();
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		struct hark_audio_params p = hark_audio_default_params();
		size_t nfull, n, start;
		int code, lag;
		float *full, *cut;
		double rel;
		char fmt[200];

		snprintf(fmt, sizeof(fmt), "-f lavfi -i anoisesrc=d=30:r=44100:a=0.4:"
			 "seed=%%2$d -c:a %s %%1$s", files[f].codec);
		assert_int_equal(gen(files[f].file, fmt, 11 + (int)f), 0);
		full = decode(files[f].file, NULL, &nfull, &code);
		assert_int_equal(code, HARK_OK);
		p.offset_s = 17.77;
		p.duration_s = 2.0;
		start = (size_t)llround(p.offset_s * HARK_AUDIO_RATE);
		cut = decode(files[f].file, &p, &n, &code);
		assert_int_equal(code, HARK_OK);
		assert_int_equal(n, 32000);
		lag = best_lag(cut, 4000, full, nfull, start, 32, &rel);
		if (abs(lag) > files[f].maxlag)
			fail_msg("%s: cut is %d samples off", files[f].file, lag);
		/* on noise even one sample of misalignment gives rel ~ 1 */
		if (files[f].maxlag == 0)
			assert_true(rel < 0.01);
		free(cut);
		free(full);
	}
}

static void test_cut_edges(void **state)
{
	struct hark_audio_params p = hark_audio_default_params();
	size_t n;
	int code;
	float *pcm;

	(void)state;
	need_fixtures();
	/* offset beyond the end (seek path and decode-and-drop path) */
	p.offset_s = 45.0;
	pcm = decode("n44.flac", &p, &n, &code);
	assert_int_equal(code, HARK_OK);
	assert_int_equal(n, 0);
	free(pcm);
	p.offset_s = 2.5;
	pcm = decode("a_22k.flac", &p, &n, &code);
	assert_int_equal(code, HARK_OK);
	assert_int_equal(n, 0);
	free(pcm);
	/* duration past the end: the rest */
	p.offset_s = 1.25;
	p.duration_s = 10.0;
	pcm = decode("a_22k.flac", &p, &n, &code);
	assert_int_equal(code, HARK_OK);
	assert_int_equal(n, TONE_N - 20000);
	free(pcm);
}

static void test_chunks(void **state)
{
	static const size_t sizes[] = {0, 1, 3001, 16000, 40000};
	char path[700], err[256];

	(void)state;
	need_fixtures();
	path_of(path, sizeof(path), "f32_48k.wav");
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct hark_audio_params p = hark_audio_default_params();
		struct hark_audio *a = NULL;
		size_t chunk = sizes[s] ? sizes[s] : HARK_AUDIO_RATE, total = 0, calls = 0;
		const float *pcm;
		size_t n;
		int last = 0;

		p.chunk_samples = sizes[s];
		assert_int_equal(hark_audio_open(path, &p, &a, err, sizeof(err)), HARK_OK);
		assert_true(hark_audio_position(a) == 0.0);
		for (;;) {
			assert_int_equal(hark_audio_read(a, &pcm, &n, err, sizeof(err)),
					 HARK_OK);
			if (n == 0)
				break;
			assert_false(last);   /* only the final chunk may be short */
			assert_true(n <= chunk);
			if (n < chunk)
				last = 1;
			total += n;
			calls++;
			assert_true(fabs(hark_audio_position(a) -
					 (double)total / HARK_AUDIO_RATE) < 1e-9);
		}
		assert_int_equal(total, TONE_N);
		assert_int_equal(calls, (TONE_N + chunk - 1) / chunk);
		/* end of stream is sticky */
		assert_int_equal(hark_audio_read(a, &pcm, &n, err, sizeof(err)), HARK_OK);
		assert_int_equal(n, 0);
		hark_audio_close(a);
	}
}

static void test_decode_all_limit(void **state)
{
	char path[700], err[256];
	float *pcm = (float *)&err;
	size_t n = 123;

	(void)state;
	need_fixtures();
	path_of(path, sizeof(path), "a_22k.flac");
	assert_int_equal(hark_audio_decode_all(path, NULL, 1000, &pcm, &n, err,
					       sizeof(err)), HARK_ERR_LIMIT);
	assert_null(pcm);
	assert_int_equal(n, 0);
	assert_int_equal(hark_audio_decode_all(path, NULL, TONE_N, &pcm, &n, err,
					       sizeof(err)), HARK_OK);
	assert_int_equal(n, TONE_N);
	free(pcm);
}

static void test_bad_params(void **state)
{
	struct hark_audio_params p;
	struct hark_audio *a = NULL;
	char path[700], err[256];

	(void)state;
	need_fixtures();
	path_of(path, sizeof(path), "a_22k.flac");
	p = hark_audio_default_params();
	assert_true(p.offset_s == 0.0 && p.duration_s == 0.0);
	assert_int_equal(p.channel, -1);
	assert_int_equal(p.chunk_samples, HARK_AUDIO_RATE);
	p.offset_s = -1.0;
	assert_int_equal(hark_audio_open(path, &p, &a, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_audio_default_params();
	p.duration_s = NAN;
	assert_int_equal(hark_audio_open(path, &p, &a, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_audio_default_params();
	p.chunk_samples = (size_t)1 << 40;
	assert_int_equal(hark_audio_open(path, &p, &a, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	p = hark_audio_default_params();
	p.channel = -2;
	assert_int_equal(hark_audio_open(path, &p, &a, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_null(a);
	assert_int_equal(hark_audio_open(path, NULL, NULL, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_audio_open(NULL, NULL, &a, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	/* err may be NULL */
	p.channel = 9;
	assert_int_equal(hark_audio_open(path, &p, &a, NULL, 0), HARK_ERR_INVALID_ARG);
	assert_null(hark_audio_info(NULL));
	hark_audio_close(NULL);
}

/* An ID3v2 tag larger than the 1 MB probe window (cover art) still probes. */
static void test_big_id3_tag(void **state)
{
	size_t n;
	int code;
	float *pcm;

	(void)state;
	need_fixtures();
	assert_int_equal(gen("cover.png", "-f lavfi -i 'nullsrc=s=1200x900,"
			     "geq=random(%2$d)*255:128:128' -frames:v 1 -pix_fmt rgb24 "
			     "%1$s", 1), 0);
	{
		char mp3[700], png[700], out[700];

		path_of(mp3, sizeof(mp3), "a_44k.mp3");
		path_of(png, sizeof(png), "cover.png");
		path_of(out, sizeof(out), "cover.mp3");
		assert_int_equal(audio_tu_ffmpeg("-i %s -i %s -map 0 -map 1 -c copy "
						 "-disposition:v attached_pic "
						 "-id3v2_version 3 %s", mp3, png, out), 0);
		assert_true(audio_tu_file_size(out) > 1100000);
	}
	pcm = decode("cover.mp3", NULL, &n, &code);
	assert_int_equal(code, HARK_OK);
	assert_true(labs((long)n - TONE_N) <= 418);
	assert_tone(pcm, n, 880);
	free(pcm);
}

/* A pipe (not seekable, size unknown) decodes like the file. */
struct feeder {
	const char *src, *fifo;
};

static void *feed(void *arg)
{
	const struct feeder *fd = arg;
	FILE *in = fopen(fd->src, "rb"), *out = fopen(fd->fifo, "wb");
	char buf[8192];
	size_t k;

	while (in && out && (k = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, k, out) != k)
			break;
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	return NULL;
}

static void test_pipe(void **state)
{
	char src[700], fifo[700];
	struct feeder fd = {src, fifo};
	struct hark_audio_params p = hark_audio_default_params();
	pthread_t th;
	size_t n, nref;
	int code;
	float *pcm, *ref;

	(void)state;
	need_fixtures();
	path_of(src, sizeof(src), "a_22k.flac");
	path_of(fifo, sizeof(fifo), "pipe.fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	p.offset_s = 0.5;
	ref = decode("a_22k.flac", &p, &nref, &code);
	assert_int_equal(code, HARK_OK);
	assert_int_equal(pthread_create(&th, NULL, feed, &fd), 0);
	pcm = decode("pipe.fifo", &p, &n, &code);
	pthread_join(th, NULL);
	assert_int_equal(code, HARK_OK);
	assert_int_equal(n, nref);
	assert_memory_equal(pcm, ref, n * sizeof(float));
	free(pcm);
	free(ref);
}

/* ------------------------------------------------ concurrent decoders -- */

struct job {
	const char *file;
	float *ref;
	size_t nref;
	int ok;
};

static void *worker(void *arg)
{
	struct job *j = arg;

	j->ok = 1;
	for (int round = 0; round < 3; round++) {
		size_t n;
		int code;
		float *pcm = decode(j->file, NULL, &n, &code);

		if (code || n != j->nref || memcmp(pcm, j->ref, n * sizeof(float)))
			j->ok = 0;
		free(pcm);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct job jobs[] = {{.file = "a_44k.mp3"}, {.file = "a_48k.opus"},
			     {.file = "v.mp4"}, {.file = "n44.flac"},
			     {.file = "a_44k.ogg"}, {.file = "s16_44k_stereo.wav"}};
	enum { NJ = sizeof(jobs) / sizeof(jobs[0]) };
	pthread_t th[NJ];
	int code;

	(void)state;
	need_fixtures();
	for (int i = 0; i < NJ; i++) {
		jobs[i].ref = decode(jobs[i].file, NULL, &jobs[i].nref, &code);
		assert_int_equal(code, HARK_OK);
	}
	for (int i = 0; i < NJ; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
	for (int i = 0; i < NJ; i++) {
		pthread_join(th[i], NULL);
		assert_true(jobs[i].ok);
		free(jobs[i].ref);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_s16_passthrough_exact),
		cmocka_unit_test(test_stereo_16k),
		cmocka_unit_test(test_channel_select),
		cmocka_unit_test(test_cut_exact),
		cmocka_unit_test(test_cut_lossy),
		cmocka_unit_test(test_cut_edges),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_decode_all_limit),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_big_id3_tag),
		cmocka_unit_test(test_pipe),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
