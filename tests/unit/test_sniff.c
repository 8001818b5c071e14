/*
 * Unit tests for upload sniffing (src/server/sniff). Real media: the shared
 * WAV and FLAC recordings, and files encoded here with the ffmpeg CLI from
 * the shared WAV (MP3 with and without an ID3 tag, M4A, MP4 and MOV with a
 * video stream, Ogg Opus and Vorbis, WebM, Matroska, AAC ADTS, AIFF,
 * MPEG-TS, AVI, raw AC-3 which has no signature in the table and so goes
 * through libavformat's probe). Each is judged from its first 4096 bytes
 * only. Non-media must be refused: text, JSON, HTML, SRT subtitles, a PDF
 * header, a real ZIP archive, PNG/JPEG/GIF images made by ffmpeg, an HEIC
 * ftyp header, this test's own ELF executable, empty input and random
 * bytes. Short prefixes report need_more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audio_testutil.h"
#include "hark/hark.h"
#include "server/sniff.h"

#define HEAD 4096

static char g_dir[512];
static char g_wav[700];
static int g_ready;

static int read_head(const char *path, unsigned char *buf, size_t cap, size_t *n)
{
	FILE *f = fopen(path, "rb");

	if (!f)
		return -1;
	*n = fread(buf, 1, cap, f);
	fclose(f);
	return 0;
}

static const char *sniff_file(const char *path, size_t limit, int *need_more)
{
	unsigned char buf[HEAD];
	size_t n = 0;

	if (read_head(path, buf, limit < HEAD ? limit : HEAD, &n) != 0)
		fail_msg("cannot read %s", path);
	return hark_sniff_media(buf, n, need_more);
}

static int setup(void **state)
{
	const char *shared = getenv("HARK_SHARED");

	(void)state;
	if (!shared || !*shared)
		shared = "../shared";
	snprintf(g_wav, sizeof(g_wav), "%s/audio/jfk/jfk.wav", shared);
	if (audio_tu_file_size(g_wav) <= 0)
		return 0; /* tests skip */
	if (audio_tu_mkdtemp(g_dir, sizeof(g_dir)) != 0)
		return -1;
	g_ready = 1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (g_dir[0])
		audio_tu_rmtree(g_dir);
	return 0;
}

static void need_shared(void)
{
	if (!g_ready)
		skip();
}

static void need_ffmpeg(void)
{
	need_shared();
	if (!audio_tu_have_ffmpeg())
		skip();
}

/* Encodes the first 2 s of the shared WAV with args into g_dir/name. */
static void make(const char *name, const char *args)
{
	char path[800];

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	if (audio_tu_ffmpeg("-t 2 -i '%s' %s '%s'", g_wav, args, path) != 0)
		fail_msg("ffmpeg could not make %s (%s)", name, args);
}

static void expect(const char *name, const char *want)
{
	char path[800];
	int more = -1;
	const char *got;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	got = sniff_file(path, HEAD, &more);
	if (!got || strcmp(got, want))
		fail_msg("%s: sniffed %s, want %s", name, got ? got : "NULL", want);
	assert_int_equal(more, 0);
}

static void test_shared_files(void **state)
{
	char path[800];
	const char *shared = getenv("HARK_SHARED");
	const char *got;
	int more = -1;

	(void)state;
	need_shared();
	got = sniff_file(g_wav, HEAD, &more);
	assert_non_null(got);
	assert_string_equal(got, "audio/wav");
	assert_int_equal(more, 0);
	snprintf(path, sizeof(path), "%s/audio/librispeech/dev-clean/2412-153948-0000.flac",
		 shared && *shared ? shared : "../shared");
	got = sniff_file(path, HEAD, &more);
	assert_non_null(got);
	assert_string_equal(got, "audio/flac");
	/* a WAV is recognised from its first 12 bytes */
	assert_string_equal(sniff_file(g_wav, 12, &more), "audio/wav");
	assert_int_equal(more, 0);
	assert_null(sniff_file(g_wav, 3, &more));
	assert_int_equal(more, 1);
}

static void test_encoded_audio(void **state)
{
	(void)state;
	need_ffmpeg();
	make("a.mp3", "-c:a libmp3lame -b:a 64k");
	expect("a.mp3", "audio/mpeg");
	/* no ID3 tag, no Xing frame: frame sync checked over two frames */
	make("raw.mp3", "-c:a libmp3lame -b:a 64k -id3v2_version 0 -write_xing 0 -f mp3");
	expect("raw.mp3", "audio/mpeg");
	make("a.m4a", "-c:a aac -b:a 64k");
	expect("a.m4a", "audio/mp4");
	make("a.opus", "-c:a libopus -b:a 32k -f ogg");
	expect("a.opus", "audio/ogg");
	make("a.ogg", "-c:a libvorbis");
	expect("a.ogg", "audio/ogg");
	make("a.aac", "-c:a aac -b:a 64k -f adts");
	expect("a.aac", "audio/aac");
	make("a.aiff", "-c:a pcm_s16be");
	expect("a.aiff", "audio/aiff");
	make("a.mka", "-c:a flac");
	expect("a.mka", "video/x-matroska");
	make("a.flac", "-c:a flac");
	expect("a.flac", "audio/flac");
	/* raw AC-3 has no entry in the signature table: libavformat's probe */
	make("a.ac3", "-c:a ac3 -b:a 96k -f ac3");
	expect("a.ac3", "audio/ac3");
}

static void make_video(const char *name, const char *vcodec, const char *acodec,
		       const char *extra)
{
	char path[800];

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	if (audio_tu_ffmpeg("-f lavfi -i color=c=blue:s=64x48:r=10:d=2 -t 2 -i '%s' "
			    "-c:v %s -c:a %s %s -shortest '%s'", g_wav, vcodec, acodec, extra,
			    path) != 0)
		fail_msg("ffmpeg could not make %s", name);
}

static void test_encoded_video(void **state)
{
	(void)state;
	need_ffmpeg();
	make_video("v.mp4", "libx264 -preset ultrafast", "aac", "");
	expect("v.mp4", "video/mp4");
	make_video("v.mov", "mpeg4", "aac", "");
	expect("v.mov", "video/quicktime");
	make_video("v.webm", "libvpx -deadline realtime -b:v 100k", "libopus", "");
	expect("v.webm", "video/webm");
	make_video("v.ts", "mpeg2video", "mp2", "-f mpegts");
	expect("v.ts", "video/mp2t");
	make_video("v.avi", "mpeg4", "mp3", "");
	expect("v.avi", "video/x-msvideo");
	make_video("v.mkv", "mpeg4", "libvorbis", "");
	expect("v.mkv", "video/x-matroska");
	make_video("v.ogv", "libtheora", "libvorbis", "");
	expect("v.ogv", "video/ogg");
}

static void test_need_more(void **state)
{
	char path[800];
	int more = -1;

	(void)state;
	need_ffmpeg();
	/* headerless MP3: 64 bytes hold one frame header, not the next */
	make("nm.mp3", "-c:a libmp3lame -b:a 64k -id3v2_version 0 -write_xing 0 -f mp3");
	snprintf(path, sizeof(path), "%s/nm.mp3", g_dir);
	assert_null(sniff_file(path, 64, &more));
	assert_int_equal(more, 1);
	assert_string_equal(sniff_file(path, HEAD, &more), "audio/mpeg");
	assert_int_equal(more, 0);
	make_video("nm.ts", "mpeg2video", "mp2", "-f mpegts");
	snprintf(path, sizeof(path), "%s/nm.ts", g_dir);
	assert_null(sniff_file(path, 200, &more));
	assert_int_equal(more, 1);
	assert_string_equal(sniff_file(path, 1000, &more), "video/mp2t");
	/* NULL pointer for need_more is fine */
	assert_null(sniff_file(path, 200, NULL));
}

static void expect_null(const char *what, const unsigned char *b, size_t n)
{
	int more = -1;
	const char *got = hark_sniff_media(b, n, &more);

	if (got)
		fail_msg("%s sniffed as %s", what, got);
	if (n >= HEAD && more != 0)
		fail_msg("%s: need_more with %zu bytes", what, n);
}

static void expect_file_null(const char *path)
{
	unsigned char buf[HEAD];
	size_t n = 0;

	if (read_head(path, buf, HEAD, &n) != 0 || n == 0)
		fail_msg("cannot read %s", path);
	expect_null(path, buf, n);
}

static void test_text_rejected(void **state)
{
	static const char *const texts[] = {
		"Hello, this is a plain text file with a few words in it.\n",
		"{\"transcript\": \"hello world\", \"options\": {\"language\": \"en\"}}\n",
		"[1, 2, 3, {\"a\": null}]",
		"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n",
		"1\n00:00:01,000 --> 00:00:02,000\nHello there\n\n2\n00:00:03,000 --> "
		"00:00:04,500\nGeneral Kenobi\n\n",
		"WEBVTT\n\n00:01.000 --> 00:02.000\nHello\n",
		"\xef\xbb\xbfUTF-8 with a BOM: caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 ok\n",
		"Grüße aus Köln, ça va? Ünïcödé everywhere… 日本語のテキスト\n",
		"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
		"GET / HTTP/1.1\r\nHost: example\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		expect_null(texts[i], (const unsigned char *)texts[i], strlen(texts[i]));
	/* a long text document (more than a probe window) */
	{
		unsigned char *big = malloc(HEAD);
		const char *line = "The quick brown fox jumps over the lazy dog. 0123456789\n";

		assert_non_null(big);
		for (size_t i = 0; i < HEAD; i++)
			big[i] = (unsigned char)line[i % strlen(line)];
		expect_null("long text", big, HEAD);
		free(big);
	}
}

static void test_binary_rejected(void **state)
{
	static const unsigned char heic[] = {
		0, 0, 0, 0x18, 'f', 't', 'y', 'p', 'h', 'e', 'i', 'c', 0, 0, 0, 0,
		'm', 'i', 'f', '1', 'h', 'e', 'i', 'c', 0, 0, 0, 0x10, 'm', 'e', 't', 'a',
	};
	static const unsigned char webp[] = {
		'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' ',
		0x18, 0, 0, 0, 0x30, 0x01, 0, 0x9d, 0x01, 0x2a, 1, 0, 1, 0, 0, 0,
	};
	unsigned char *rnd = malloc(HEAD);
	uint64_t x = 0x243f6a8885a308d3ull;
	int more = -1;

	(void)state;
	assert_non_null(rnd);
	expect_null("HEIC ftyp", heic, sizeof(heic));
	expect_null("WebP", webp, sizeof(webp));
	/* this executable */
	expect_file_null("/proc/self/exe");
	/* empty input */
	assert_null(hark_sniff_media((const unsigned char *)"", 0, &more));
	assert_int_equal(more, 1);
	assert_null(hark_sniff_media(NULL, 0, NULL));
	/* random bytes, many seeds, whole window and short */
	for (int seed = 0; seed < 200; seed++) {
		for (size_t i = 0; i < HEAD; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			rnd[i] = (unsigned char)(x >> 32);
		}
		expect_null("random bytes", rnd, HEAD);
		expect_null("random bytes (short)", rnd, 100);
	}
	/* zeros */
	memset(rnd, 0, HEAD);
	expect_null("zeros", rnd, HEAD);
	free(rnd);
}

static void test_images_and_archives(void **state)
{
	char path[800], cmd[2000];

	(void)state;
	need_ffmpeg();
	snprintf(path, sizeof(path), "%s/i.png", g_dir);
	assert_int_equal(audio_tu_ffmpeg("-f lavfi -i color=c=red:s=32x32 -frames:v 1 '%s'", path),
			 0);
	expect_file_null(path);
	snprintf(path, sizeof(path), "%s/i.jpg", g_dir);
	assert_int_equal(audio_tu_ffmpeg("-f lavfi -i testsrc=s=64x64 -frames:v 1 '%s'", path),
			 0);
	expect_file_null(path);
	snprintf(path, sizeof(path), "%s/i.gif", g_dir);
	assert_int_equal(audio_tu_ffmpeg("-f lavfi -i testsrc=s=64x64:d=0.5 '%s'", path), 0);
	expect_file_null(path);
	snprintf(path, sizeof(path), "%s/i.bmp", g_dir);
	assert_int_equal(audio_tu_ffmpeg("-f lavfi -i testsrc=s=64x64 -frames:v 1 '%s'", path),
			 0);
	expect_file_null(path);
	/* a real ZIP archive (with the WAV inside: still not media) */
	snprintf(path, sizeof(path), "%s/a.zip", g_dir);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import sys, zipfile; "
		 "zipfile.ZipFile(sys.argv[1], \"w\").write(sys.argv[2], \"jfk.wav\")' '%s' '%s'",
		 path, g_wav);
	if (system(cmd) == 0)
		expect_file_null(path);
	/* gzip of the WAV */
	snprintf(path, sizeof(path), "%s/a.wav.gz", g_dir);
	snprintf(cmd, sizeof(cmd), "gzip -c '%s' > '%s'", g_wav, path);
	if (system(cmd) == 0)
		expect_file_null(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_files),
		cmocka_unit_test(test_encoded_audio),
		cmocka_unit_test(test_encoded_video),
		cmocka_unit_test(test_need_more),
		cmocka_unit_test(test_text_rejected),
		cmocka_unit_test(test_binary_rejected),
		cmocka_unit_test(test_images_and_archives),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
