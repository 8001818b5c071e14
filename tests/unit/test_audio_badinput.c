/*
 * The streaming decoder on bad input: file-system errors (missing, directory,
 * empty, unreadable), content that is not media (text renamed .wav,
 * subtitles, an image, an FFmpeg concat script, random bytes), damaged media
 * (truncated mp3/wav/flac/ogg/m4a at many cut points, garbage mid-stream,
 * container signatures followed by junk), a video without audio, codecs
 * without a usable decoder; FFmpeg must stay silent on stderr throughout.
 * Policy under test: a truncated file yields its decodable prefix; a file
 * from which nothing decodes is HARK_ERR_CORRUPT. Also: every file of
 * $HARK_SHARED/audio/REFERENCES.tsv decodes, jfk.wav to exactly 176000
 * samples.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "audio/audio.h"
#include "audio_testutil.h"
#include "hark/hark.h"

#define MAX_SAMPLES ((size_t)HARK_AUDIO_RATE * 3600)

static char tmp[512];
static int have_ffmpeg;

static void path_of(char *buf, size_t n, const char *file)
{
	snprintf(buf, n, "%s/%s", tmp, file);
}

static int group_setup(void **state)
{
	(void)state;
	if (audio_tu_mkdtemp(tmp, sizeof(tmp)))
		return -1;
	have_ffmpeg = audio_tu_have_ffmpeg();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	audio_tu_rmtree(tmp);
	return 0;
}

/* Generates tmp/file with ffmpeg (fmt gets the output path), or skips. */
static void make(const char *file, const char *fmt)
{
	char out[700], args[1500];

	if (!have_ffmpeg)
		skip();
	path_of(out, sizeof(out), file);
	if (access(out, F_OK) == 0)
		return;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(args, sizeof(args), fmt, out);
#pragma GCC diagnostic pop
	assert_int_equal(audio_tu_ffmpeg("%s", args), 0);
}

static void write_tmp(const char *file, const void *data, size_t n)
{
	char path[700];

	path_of(path, sizeof(path), file);
	assert_int_equal(audio_tu_write_file(path, data, n), 0);
}

/* Opens path, expects code; on success decodes everything. Returns the
 * number of samples (0 on error) and checks the one-line message. */
static size_t try_path(const char *path, int want)
{
	struct hark_audio *a = (struct hark_audio *)&a;
	char err[256] = "";
	size_t total = 0;
	int code = hark_audio_open(path, NULL, &a, err, sizeof(err));

	if (code != want)
		fprintf(stderr, "%s: got %s (%s), want %s\n", path, hark_err_code(code),
			err, hark_err_code(want));
	assert_int_equal(code, want);
	if (code) {
		assert_null(a);
		assert_true(strlen(err) > 0);
		assert_null(strchr(err, '\n'));
		assert_null(strstr(err, tmp));   /* no file name in the reason */
		return 0;
	}
	for (;;) {
		const float *pcm;
		size_t n;

		code = hark_audio_read(a, &pcm, &n, err, sizeof(err));
		if (code || n == 0)
			break;
		for (size_t i = 0; i < n; i++)
			assert_true(pcm[i] >= -1.0f && pcm[i] <= 1.0f);
		total += n;
	}
	hark_audio_close(a);
	return total;
}

static size_t try_file(const char *file, int want)
{
	char path[700];

	path_of(path, sizeof(path), file);
	return try_path(path, want);
}

/* Result code of opening file (decoding it fully on success). */
static int open_code(const char *file, size_t *samples)
{
	char path[700], err[256];
	struct hark_audio *a = NULL;
	int code;

	path_of(path, sizeof(path), file);
	*samples = 0;
	code = hark_audio_open(path, NULL, &a, err, sizeof(err));
	if (code) {
		assert_null(a);
		return code;
	}
	for (;;) {
		const float *pcm;
		size_t n;

		code = hark_audio_read(a, &pcm, &n, err, sizeof(err));
		if (code || n == 0)
			break;
		*samples += n;
	}
	hark_audio_close(a);
	return code;
}

static void test_fs_errors(void **state)
{
	char path[700];

	(void)state;
	write_tmp("empty.wav", "", 0);
	try_file("empty.wav", HARK_ERR_EMPTY);
	path_of(path, sizeof(path), "adir.wav");
	assert_int_equal(mkdir(path, 0755), 0);
	try_file("adir.wav", HARK_ERR_IS_DIR);
	try_file("missing.wav", HARK_ERR_NOT_FOUND);
	try_file("missing_dir/x.wav", HARK_ERR_NOT_FOUND);
	try_file("empty.wav/x.wav", HARK_ERR_NOT_FOUND);     /* ENOTDIR */
	try_path("", HARK_ERR_INVALID_ARG);
	/* a path that looks like a URL is still just a file name */
	try_path("http://example.invalid/a.mp3", HARK_ERR_NOT_FOUND);
}

static void test_unreadable(void **state)
{
	char path[700];

	(void)state;
	make("ok.wav", "-f lavfi -i sine=f=440:r=16000:d=1 %s");
	path_of(path, sizeof(path), "noperm.wav");
	{
		char src[700];

		path_of(src, sizeof(src), "ok.wav");
		assert_int_equal(audio_tu_truncate_copy(src, path, audio_tu_file_size(src)), 0);
	}
	assert_int_equal(chmod(path, 0), 0);
	if (geteuid() == 0) {
		/* root reads anyway: the honest expectation is a normal decode */
		assert_int_equal(try_path(path, HARK_OK), 16000);
	} else {
		try_path(path, HARK_ERR_PERMISSION);
	}
	chmod(path, 0644);
}

static void test_not_media(void **state)
{
	static const char text[] =
		"Minutes of the weekly meeting\n\nAttendees: Ann, Bob\n"
		"1. Budget was approved.\n2. Next meeting on Monday.\n";
	static const char srt[] =
		"1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n"
		"2\n00:00:03,000 --> 00:00:04,000\nGeneral Kenobi.\n";
	static const char concat[] = "ffconcat version 1.0\nfile /etc/passwd\n";
	static const char m3u[] = "#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n";
	char big[20000];

	(void)state;
	write_tmp("text.wav", text, sizeof(text) - 1);
	try_file("text.wav", HARK_ERR_NOT_MEDIA);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = "the quick brown fox jumps over a lazy dog\n"[i % 42];
	write_tmp("big_text.mp3", big, sizeof(big));
	try_file("big_text.mp3", HARK_ERR_NOT_MEDIA);
	write_tmp("subs.wav", srt, sizeof(srt) - 1);
	try_file("subs.wav", HARK_ERR_NOT_MEDIA);
	write_tmp("list.wav", concat, sizeof(concat) - 1);
	try_file("list.wav", HARK_ERR_NOT_MEDIA);
	write_tmp("list.m3u8", m3u, sizeof(m3u) - 1);
	try_file("list.m3u8", HARK_ERR_NOT_MEDIA);
	/* ANSI escape art (FFmpeg's tty demuxer would take it) */
	{
		char ansi[4096];
		size_t k = 0;

		while (k + 16 < sizeof(ansi)) {
			memcpy(ansi + k, "\x1b[1;31mRED\x1b[0m ", 15);
			k += 15;
		}
		write_tmp("ansi.wav", ansi, k);
		try_file("ansi.wav", HARK_ERR_NOT_MEDIA);
	}
	if (have_ffmpeg) {
		make("image.wav", "-f lavfi -i testsrc=s=64x48 -frames:v 1 -c:v png "
		     "-f image2 %s");
		try_file("image.wav", HARK_ERR_NOT_MEDIA);
	}
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void test_random_bytes(void **state)
{
#define MAGIC(s) {s, sizeof(s) - 1}
	static const struct {
		const char *m;
		size_t len;
	} magics[] = {
		MAGIC(""), MAGIC("RIFF\x24\x10\x00\x00WAVEfmt "),
		MAGIC("ID3\x03\x00\x00\x00\x00\x01\x00"), MAGIC("OggS"), MAGIC("fLaC"),
		MAGIC("\x00\x00\x00\x18" "ftypmp42"), MAGIC("\x1a\x45\xdf\xa3"),
		MAGIC("\xff\xfb\x90\x64"), MAGIC("FORM\x00\x00\x10\x00" "AIFF"),
	};
#undef MAGIC
	enum { NMAGIC = sizeof(magics) / sizeof(magics[0]) };
	size_t cap = 300000;
	unsigned char *buf = malloc(cap);

	(void)state;
	assert_non_null(buf);
	for (int round = 0; round < 40; round++) {
		const char *m = magics[round % NMAGIC].m;
		size_t ml = magics[round % NMAGIC].len;
		size_t n = 1 + rng() % (round < 20 ? 2000 : cap - 64);
		size_t samples;
		int code;

		memcpy(buf, m, ml);
		for (size_t i = ml; i < ml + n; i++)
			buf[i] = (unsigned char)rng();
		write_tmp("random.bin", buf, ml + n);
		code = open_code("random.bin", &samples);
		if (!ml) {
			/* plain noise: never media */
			if (code != HARK_ERR_NOT_MEDIA && code != HARK_ERR_CORRUPT)
				fail_msg("random %zu bytes: %s", n, hark_err_code(code));
		} else if (code != HARK_OK && code != HARK_ERR_NOT_MEDIA &&
			   code != HARK_ERR_CORRUPT && code != HARK_ERR_UNSUPPORTED) {
			fail_msg("magic %d + %zu random bytes: %s", round % NMAGIC, n,
				 hark_err_code(code));
		}
	}
	free(buf);
}

/* Noise keeps the bit rate steady, so 30 % of the bytes is ~30 % of the
 * audio (a sine compresses so well that headers dominate). */
#define NOISE(r) "-f lavfi -i anoisesrc=d=10:a=0.3:seed=4:r=" #r

static void test_truncated(void **state)
{
	static const struct {
		const char *file, *gen;
	} srcs[] = {
		{"t.mp3", NOISE(44100) " -c:a libmp3lame -b:a 64k %s"},
		{"t.wav", NOISE(22050) " -c:a pcm_s16le %s"},
		{"t.flac", NOISE(44100) " -c:a flac %s"},
		{"t.ogg", NOISE(44100) " -c:a libvorbis %s"},
		{"t.opus", NOISE(48000) " -c:a libopus %s"},
		{"t.m4a", NOISE(44100) " -c:a aac -movflags +faststart %s"},
	};

	(void)state;
	for (size_t s = 0; s < sizeof(srcs) / sizeof(srcs[0]); s++) {
		char src[700], dst[700];
		long size;
		size_t full, got;

		make(srcs[s].file, srcs[s].gen);
		path_of(src, sizeof(src), srcs[s].file);
		path_of(dst, sizeof(dst), "cut.bin");
		size = audio_tu_file_size(src);
		full = try_file(srcs[s].file, HARK_OK);
		assert_true(full >= 160000 && full <= 161000);
		/* a few hundred bytes: the header at best, nothing decodable
		 * (for PCM WAV the ~128 samples after the header do decode) */
		assert_int_equal(audio_tu_truncate_copy(src, dst, 300), 0);
		if (!strcmp(srcs[s].file, "t.wav")) {
			assert_int_equal(open_code("cut.bin", &got), HARK_OK);
			assert_true(got > 0 && got < 128);
		} else {
			assert_int_equal(open_code("cut.bin", &got), HARK_ERR_CORRUPT);
		}
		/* 30 %: the decodable prefix (less up to one second for Ogg,
		 * whose incomplete last page cannot be verified and is lost) */
		assert_int_equal(audio_tu_truncate_copy(src, dst, size * 3 / 10), 0);
		assert_int_equal(open_code("cut.bin", &got), HARK_OK);
		if (got + 16000 < full / 4 || got > full * 2 / 5)
			fail_msg("%s cut to 30%%: %zu of %zu samples", srcs[s].file, got, full);
		/* every 1/16 of the file: prefix or CORRUPT, growing with the cut */
		{
			size_t prev = 0;

			for (int k = 1; k < 16; k++) {
				int code;

				assert_int_equal(audio_tu_truncate_copy(src, dst, size * k / 16), 0);
				code = open_code("cut.bin", &got);
				assert_true(code == HARK_OK || code == HARK_ERR_CORRUPT);
				if (code == HARK_OK) {
					assert_true(got + 4000 >= prev);
					assert_true(got <= full);
					prev = got;
				}
			}
		}
	}
	/* m4a with the index (moov) at the end: nothing without it */
	make("moov_end.m4a", "-f lavfi -i sine=f=440:r=44100:d=10 -c:a aac %s");
	{
		char src[700], dst[700];

		path_of(src, sizeof(src), "moov_end.m4a");
		path_of(dst, sizeof(dst), "cut.bin");
		assert_int_equal(audio_tu_truncate_copy(src, dst,
							audio_tu_file_size(src) / 2), 0);
		try_file("cut.bin", HARK_ERR_CORRUPT);
	}
}

/* Damage in the middle: skipped, the rest still decodes. */
static void test_midstream_garbage(void **state)
{
	char src[700];
	unsigned char *d;
	long size;
	size_t got, n;
	FILE *f;

	(void)state;
	make("g.mp3", "-f lavfi -i sine=f=440:r=44100:d=10 -c:a libmp3lame -b:a 64k %s");
	path_of(src, sizeof(src), "g.mp3");
	size = audio_tu_file_size(src);
	d = malloc((size_t)size);
	assert_non_null(d);
	f = fopen(src, "rb");
	assert_non_null(f);
	n = fread(d, 1, (size_t)size, f);
	fclose(f);
	assert_int_equal(n, (size_t)size);
	/* 2 KB of junk in the middle: about a quarter second lost */
	for (long i = size / 2; i < size / 2 + 2048; i++)
		d[i] = (unsigned char)rng();
	write_tmp("mid.mp3", d, (size_t)size);
	assert_int_equal(open_code("mid.mp3", &got), HARK_OK);
	assert_true(got > 160000 * 9 / 10 && got <= 160000);
	/* everything after the first 2000 bytes is junk: the prefix, or CORRUPT */
	for (long i = 2000; i < size; i++)
		d[i] = (unsigned char)rng();
	write_tmp("junk.mp3", d, (size_t)size);
	{
		int code = open_code("junk.mp3", &got);

		assert_true(code == HARK_OK || code == HARK_ERR_CORRUPT);
		assert_true(got < 16000);
	}
	free(d);
}

/* Random byte damage anywhere (headers included): a clean error or audio,
 * never a crash (run under ASan this also checks memory safety). */
static void test_bitflips(void **state)
{
	static const char *const files[] = {"t.mp3", "t.wav", "t.flac", "t.ogg",
					    "t.opus", "t.m4a"};
	/* HARK_AUDIO_FLIP_ROUNDS=1000 for a longer soak */
	const char *env = getenv("HARK_AUDIO_FLIP_ROUNDS");
	int rounds = env && atoi(env) > 0 ? atoi(env) : 25;

	(void)state;
	if (!have_ffmpeg)
		skip();
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char src[700];
		unsigned char *orig, *d;
		long size;
		size_t got;
		FILE *fp;

		path_of(src, sizeof(src), files[f]);
		size = audio_tu_file_size(src);
		if (size <= 0)
			continue;   /* made by test_truncated */
		orig = malloc((size_t)size);
		d = malloc((size_t)size);
		assert_true(orig && d);
		fp = fopen(src, "rb");
		assert_non_null(fp);
		assert_int_equal(fread(orig, 1, (size_t)size, fp), (size_t)size);
		fclose(fp);
		for (int round = 0; round < rounds; round++) {
			int flips = 1 + (int)(rng() % 40), code;

			memcpy(d, orig, (size_t)size);
			for (int k = 0; k < flips; k++) {
				/* half of the damage lands in the first 4 KB */
				size_t at = (k & 1) ? rng() % (uint32_t)size :
					    rng() % (uint32_t)(size < 4096 ? size : 4096);

				d[at] ^= (unsigned char)(1 + rng() % 255);
			}
			write_tmp("flipped.bin", d, (size_t)size);
			code = open_code("flipped.bin", &got);
			if (code != HARK_OK && code != HARK_ERR_CORRUPT &&
			    code != HARK_ERR_NOT_MEDIA && code != HARK_ERR_UNSUPPORTED &&
			    code != HARK_ERR_NO_AUDIO)
				fail_msg("%s with %d flipped bytes: %s", files[f], flips,
					 hark_err_code(code));
			assert_true(got < (size_t)HARK_AUDIO_RATE * 60);
		}
		free(orig);
		free(d);
	}
}

static void test_no_audio(void **state)
{
	(void)state;
	make("video_only.mp4", "-f lavfi -i testsrc=s=64x48:r=10:d=2 -an -c:v libx264 "
	     "-pix_fmt yuv420p %s");
	try_file("video_only.mp4", HARK_ERR_NO_AUDIO);
	make("video_only.mkv", "-f lavfi -i testsrc=s=64x48:r=10:d=2 -an -c:v mpeg4 %s");
	try_file("video_only.mkv", HARK_ERR_NO_AUDIO);
}

static void put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

static void test_unsupported(void **state)
{
	unsigned char w[44 + 32000];
	struct hark_audio *a = NULL;
	char path[700], err[256];

	(void)state;
	/* WAV with a format tag no decoder knows */
	memset(w, 0, sizeof(w));
	memcpy(w, "RIFF", 4);
	put32(w + 4, sizeof(w) - 8);
	memcpy(w + 8, "WAVEfmt ", 8);
	put32(w + 16, 16);
	put16(w + 20, 0x7777);
	put16(w + 22, 1);
	put32(w + 24, 16000);
	put32(w + 28, 32000);
	put16(w + 32, 2);
	put16(w + 34, 16);
	memcpy(w + 36, "data", 4);
	put32(w + 40, 32000);
	write_tmp("unknown_codec.wav", w, sizeof(w));
	path_of(path, sizeof(path), "unknown_codec.wav");
	assert_int_equal(hark_audio_open(path, NULL, &a, err, sizeof(err)),
			 HARK_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "0x7777"));
	/* the same header with PCM: decodes (the file itself is fine) */
	put16(w + 20, 1);
	write_tmp("known_codec.wav", w, sizeof(w));
	assert_int_equal(try_file("known_codec.wav", HARK_OK), 16000);
	/* Sonic lossless: FFmpeg encodes it, but its decoder is experimental */
	if (have_ffmpeg) {
		char out[700];

		path_of(out, sizeof(out), "sonic.mkv");
		if (audio_tu_ffmpeg("-f lavfi -i sine=r=44100:d=1 -strict -2 -c:a sonicls %s",
				    out) == 0)
			try_file("sonic.mkv", HARK_ERR_UNSUPPORTED);
	}
}

/* Nothing of FFmpeg's logging reaches stderr. */
static void test_ffmpeg_silent(void **state)
{
	char log[700], src[700], dst[700];
	size_t got;
	int saved, fd;

	(void)state;
	make("s.mp3", "-f lavfi -i sine=f=440:r=44100:d=4 -c:a libmp3lame %s");
	path_of(src, sizeof(src), "s.mp3");
	path_of(dst, sizeof(dst), "s_cut.mp3");
	assert_int_equal(audio_tu_truncate_copy(src, dst, audio_tu_file_size(src) / 3), 0);
	path_of(log, sizeof(log), "stderr.log");
	fflush(stderr);
	saved = dup(2);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	close(fd);
	open_code("s_cut.mp3", &got);
	open_code("mid.mp3", &got);
	open_code("junk.mp3", &got);
	open_code("unknown_codec.wav", &got);
	open_code("random.bin", &got);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(audio_tu_file_size(log), 0);
}

static void test_read_args(void **state)
{
	const float *pcm;
	size_t n;
	char err[64];

	(void)state;
	assert_int_equal(hark_audio_read(NULL, &pcm, &n, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
	assert_true(hark_audio_position(NULL) == 0.0);
	assert_int_equal(hark_audio_decode_all("x", NULL, 10, NULL, &n, err, sizeof(err)),
			 HARK_ERR_INVALID_ARG);
}

/* Every file the shared references name decodes; jfk.wav is 176000 samples. */
static void test_shared_references(void **state)
{
	const char *shared = getenv("HARK_SHARED");
	char path[1200], line[4096], seen[64][300];
	int nseen = 0, jfk = 0;
	FILE *f;

	(void)state;
	if (!shared || !*shared)
		shared = "../shared";
	snprintf(path, sizeof(path), "%s/audio/REFERENCES.tsv", shared);
	f = fopen(path, "r");
	if (!f)
		skip();
	assert_non_null(fgets(line, sizeof(line), f));   /* header */
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t'), errbuf[256];
		struct hark_audio *a = NULL;
		const struct hark_audio_info *info;
		float *pcm = NULL;
		size_t n = 0;
		int dup = 0;
		double end_s, dur;

		if (!tab || tab == line)
			continue;
		*tab = '\0';
		for (int i = 0; i < nseen; i++)
			dup |= !strcmp(seen[i], line);
		if (dup || nseen == 64)
			continue;
		if (strlen(line) >= sizeof(seen[0]))
			continue;
		snprintf(seen[nseen++], sizeof(seen[0]), "%.299s", line);
		{
			/* third column, possibly empty (atof would skip tabs) */
			const char *e = strchr(tab + 1, '\t');

			end_s = e && e[1] >= '0' && e[1] <= '9' ? atof(e + 1) : 0.0;
		}
		snprintf(path, sizeof(path), "%.800s/audio/%.299s", shared, line);
		assert_int_equal(hark_audio_open(path, NULL, &a, errbuf, sizeof(errbuf)),
				 HARK_OK);
		info = hark_audio_info(a);
		dur = info->duration_s;
		assert_true(dur > 0.5);
		assert_true(info->src_rate >= 8000);
		if (end_s > dur + 0.5)
			fail_msg("%s: reference ends at %g s, audio at %g s", line, end_s, dur);
		hark_audio_close(a);
		if (hark_audio_decode_all(path, NULL, MAX_SAMPLES, &pcm, &n, errbuf,
					  sizeof(errbuf)))
			fail_msg("%s: %s", line, errbuf);
		assert_true(fabs((double)n / HARK_AUDIO_RATE - dur) < 0.1);
		assert_true(audio_tu_rms(pcm, n) > 0.001);   /* real speech, not silence */
		if (!strcmp(line, "jfk/jfk.wav")) {
			assert_int_equal(n, 176000);
			jfk = 1;
		}
		free(pcm);
	}
	fclose(f);
	assert_true(nseen >= 5);
	assert_true(jfk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fs_errors),
		cmocka_unit_test(test_unreadable),
		cmocka_unit_test(test_not_media),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_midstream_garbage),
		cmocka_unit_test(test_bitflips),
		cmocka_unit_test(test_no_audio),
		cmocka_unit_test(test_unsupported),
		cmocka_unit_test(test_ffmpeg_silent),
		cmocka_unit_test(test_read_args),
		cmocka_unit_test(test_shared_references),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
