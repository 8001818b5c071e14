/*
 * Unit tests for transcripts and their formats: the builder (ids, word
 * attachment, caps, text joining), JSON structure (checked by parsing the
 * output with jansson), JSON robustness against hostile text, the JSON
 * reader, TXT, and SRT/WebVTT. Subtitle output is checked by an
 * independent validator written here from the SRT/WebVTT rules (numbering,
 * timestamp syntax, blank-line separation, escaping, <= 42 code points per
 * line, <= 2 lines, ordered non-overlapping positive-length cues), then read
 * back with hark_subtitle_parse() and compared.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "format/format.h"
#include "format/transcript.h"
#include "hark/transcribe.h"
#include "util/textnorm.h"
#include "util/wer.h"

static long long ms_of(double s)
{
	return llround(s * 1000.0);
}

/* ------------------------------------------------------------ builder ---- */

static void test_builder(void **state)
{
	struct hark_transcript *t = NULL, *u = NULL;
	int32_t toks[3] = {50364, 2425, 50414};

	(void)state;
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, "x", 0, 1, 0.5f), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_transcript_add_segment(t, 0.5, 1.5, " Hello", toks, 3, -0.25f, 0.01f,
						     0.0f, 1.1f), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, " Hello", 0.5, 1.4, 0.9f), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 2.0, 1.0, "world.", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, "world.", 2.0, 2.5, 1.5f), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, "", 2.5, 2.6, NAN), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, NAN, 1, "x", NULL, 0, 0, 0, 0, 0),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_transcript_add_segment(t, -3, -1, "", NULL, 0, 0, 0, 0, 0), HARK_OK);
	assert_int_equal(t->n_segments, 3);
	assert_int_equal(t->segments[1].id, 1);
	assert_true(t->segments[1].end == 2.0); /* raised to start */
	assert_true(t->segments[2].start == 0.0 && t->segments[2].end == 0.0);
	assert_int_equal(t->segments[0].n_tokens, 3);
	assert_int_equal(t->segments[0].tokens[1], 2425);
	assert_int_equal(t->segments[0].first_word, 0);
	assert_int_equal(t->segments[0].n_words, 1);
	assert_int_equal(t->segments[1].first_word, 1);
	assert_int_equal(t->segments[1].n_words, 2);
	assert_int_equal(t->segments[2].first_word, 3);
	assert_int_equal(t->segments[2].n_words, 0);
	assert_true(t->words[1].probability == 1.0f);
	assert_true(t->words[2].probability == 0.0f);
	assert_int_equal(hark_transcript_finalize_text(t), HARK_OK);
	assert_string_equal(t->text, "Hello world.");
	assert_int_equal(hark_transcript_set_str(&t->language, "en"), HARK_OK);
	assert_string_equal(t->language, "en");
	assert_int_equal(hark_transcript_set_str(&t->language, NULL), HARK_OK);
	assert_null(t->language);

	/* Many appends exercise growth. */
	assert_int_equal(hark_transcript_new(&u), HARK_OK);
	for (int i = 0; i < 5000; i++) {
		assert_int_equal(hark_transcript_add_segment(u, i, i + 0.5, "w", NULL, 0, 0, 0, 0, 0),
				 HARK_OK);
		assert_int_equal(hark_transcript_add_word(u, "w", i, i + 0.5, 1), HARK_OK);
	}
	assert_int_equal(u->n_segments, 5000);
	assert_int_equal(u->segments[4999].first_word, 4999);
	assert_int_equal(hark_transcript_append(u, t, 10000.0), HARK_OK);
	assert_int_equal(u->n_segments, 5003);
	assert_int_equal(u->segments[5001].id, 5001);
	assert_int_equal(u->segments[5001].first_word, 5001);
	assert_int_equal(u->segments[5001].n_words, 2);
	assert_true(u->words[5001].start == 10002.0);
	hark_transcript_shift(u, -20000.0);
	assert_true(u->segments[5002].start == 0.0);
	hark_transcript_free(u);
	hark_transcript_free(t);
	hark_transcript_free(NULL);
}

static void test_format_names(void **state)
{
	enum hark_format f;

	(void)state;
	assert_int_equal(hark_format_parse("SRT", &f), HARK_OK);
	assert_int_equal(f, HARK_FORMAT_SRT);
	assert_int_equal(hark_format_parse("json", &f), HARK_OK);
	assert_int_equal(f, HARK_FORMAT_JSON);
	assert_int_equal(hark_format_parse("Vtt", &f), HARK_OK);
	assert_int_equal(f, HARK_FORMAT_VTT);
	assert_int_equal(hark_format_parse("txt", &f), HARK_OK);
	assert_int_equal(f, HARK_FORMAT_TXT);
	assert_int_equal(hark_format_parse("ass", &f), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_format_parse(NULL, &f), HARK_ERR_INVALID_ARG);
	assert_string_equal(hark_format_ext(HARK_FORMAT_VTT), "vtt");
	assert_string_equal(hark_format_ext(HARK_FORMAT_JSON), "json");
	assert_string_equal(hark_format_ext(HARK_FORMAT_SRT), "srt");
	assert_string_equal(hark_format_ext(HARK_FORMAT_TXT), "txt");
}

/* --------------------------------------------------------------- json ---- */

static struct hark_transcript *sample(void)
{
	struct hark_transcript *t = NULL;
	int32_t toks[4] = {50364, 2425, 11, 50414};

	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 1.23, 2.0004, " Hello, there.", toks, 4,
						     -0.3f, 0.02f, 0.2f, 1.25f), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, " Hello,", 1.23, 1.6, 0.91f), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, " there.", 1.6, 2.0, 0.5f), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 2.5, 3.75, " General Kenobi.", NULL, 0,
						     -0.5f, 0.1f, 0.0f, 1.0f), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, " General", 2.5, 3.0, 0.75f), HARK_OK);
	assert_int_equal(hark_transcript_add_word(t, " Kenobi.", 3.0, 3.75, 0.625f), HARK_OK);
	assert_int_equal(hark_transcript_finalize_text(t), HARK_OK);
	assert_int_equal(hark_transcript_set_str(&t->language, "en"), HARK_OK);
	assert_int_equal(hark_transcript_set_str(&t->engine_name, "whisper"), HARK_OK);
	assert_int_equal(hark_transcript_set_str(&t->engine_model, "ggml-tiny.en"), HARK_OK);
	assert_int_equal(hark_transcript_set_str(&t->engine_version, "1.2.3"), HARK_OK);
	t->duration = 12.34567;
	return t;
}

static json_t *render_json(const struct hark_transcript *t, char **raw)
{
	char *buf = NULL;
	size_t len = 0;
	json_error_t je;
	json_t *root;

	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_JSON, &buf, &len), HARK_OK);
	assert_int_equal(strlen(buf), len);
	root = json_loadb(buf, len, 0, &je);
	if (!root)
		fail_msg("rendered JSON does not parse: %s (line %d)", je.text, je.line);
	if (raw)
		*raw = buf;
	else
		free(buf);
	return root;
}

static double num(json_t *o, const char *key)
{
	json_t *j = json_object_get(o, key);

	assert_true(json_is_number(j));
	return json_number_value(j);
}

static const char *str(json_t *o, const char *key)
{
	json_t *j = json_object_get(o, key);

	assert_true(json_is_string(j));
	return json_string_value(j);
}

static void test_json_structure(void **state)
{
	struct hark_transcript *t = sample();
	char *raw = NULL;
	json_t *root = render_json(t, &raw), *segs, *s0, *words, *w1, *eng, *toks;

	(void)state;
	assert_string_equal(str(root, "task"), "transcribe");
	assert_string_equal(str(root, "language"), "en");
	assert_true(num(root, "duration") == 12.346);
	assert_string_equal(str(root, "text"), "Hello, there. General Kenobi.");
	segs = json_object_get(root, "segments");
	assert_true(json_is_array(segs));
	assert_int_equal(json_array_size(segs), 2);
	s0 = json_array_get(segs, 0);
	assert_int_equal(json_integer_value(json_object_get(s0, "id")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(segs, 1), "id")), 1);
	assert_true(json_is_integer(json_object_get(s0, "seek")));
	assert_true(num(s0, "start") == 1.23);
	assert_true(num(s0, "end") == 2.0);
	assert_string_equal(str(s0, "text"), " Hello, there.");
	toks = json_object_get(s0, "tokens");
	assert_int_equal(json_array_size(toks), 4);
	assert_int_equal(json_integer_value(json_array_get(toks, 0)), 50364);
	assert_int_equal(json_integer_value(json_array_get(toks, 3)), 50414);
	assert_int_equal(json_array_size(json_object_get(json_array_get(segs, 1), "tokens")), 0);
	assert_true(num(s0, "temperature") == 0.2);
	assert_true(num(s0, "avg_logprob") == -0.3);
	assert_true(num(s0, "compression_ratio") == 1.25);
	assert_true(num(s0, "no_speech_prob") == 0.02);
	words = json_object_get(root, "words");
	assert_int_equal(json_array_size(words), 4);
	w1 = json_array_get(words, 1);
	assert_string_equal(str(w1, "word"), " there.");
	assert_true(num(w1, "start") == 1.6);
	assert_true(num(w1, "end") == 2.0);
	assert_true(num(w1, "probability") == 0.5);
	eng = json_object_get(root, "engine");
	assert_string_equal(str(eng, "name"), "whisper");
	assert_string_equal(str(eng, "model"), "ggml-tiny.en");
	assert_string_equal(str(eng, "version"), "1.2.3");
	/* Short numbers: rounded, not 1.2299999999999999. */
	assert_non_null(strstr(raw, "1.23"));
	assert_null(strstr(raw, "1.229999"));
	assert_null(strstr(raw, "0.300000"));
	assert_null(strstr(raw, "2.0004"));
	assert_int_equal(raw[strlen(raw) - 1], '\n');
	free(raw);
	json_decref(root);
	hark_transcript_free(t);
}

static void test_json_hostile_text(void **state)
{
	struct hark_transcript *t = NULL;
	static const char *const texts[] = {
		"bad \xff\xfe bytes",
		"overlong \xc0\xaf and surrogate \xed\xa0\x80 and big \xf4\x90\x80\x80",
		"truncated \xe6\x9d",
		"ctrl \x01\x02\x1b[31m bell\x07 tab\t nl\n cr\r del\x7f",
		"quotes \" and \\ backslash and </script> and \xe2\x80\xa8 sep",
		"valid na\xc3\xafve caf\xc3\xa9 \xe2\x80\x93 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x98\x80",
	};
	json_t *root, *segs;
	size_t i;
	char *raw = NULL;

	(void)state;
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(hark_transcript_add_segment(t, (double)i, i + 0.5, texts[i], NULL, 0,
							     NAN, INFINITY, 0, 0), HARK_OK);
		assert_int_equal(hark_transcript_add_word(t, texts[i], (double)i, i + 0.5, 0.5f),
				 HARK_OK);
	}
	assert_int_equal(hark_transcript_finalize_text(t), HARK_OK);
	assert_int_equal(hark_transcript_set_str(&t->language, "\xff"), HARK_OK);
	assert_int_equal(hark_transcript_set_str(&t->source, "/tmp/a\xff" "b.wav"), HARK_OK);
	t->duration = NAN;
	root = render_json(t, &raw);
	assert_true(hark_textnorm_utf8_valid(raw, strlen(raw)));
	segs = json_object_get(root, "segments");
	assert_int_equal(json_array_size(segs), sizeof(texts) / sizeof(texts[0]));
	assert_non_null(strstr(str(json_array_get(segs, 0), "text"), "bad \xef\xbf\xbd"));
	assert_non_null(strstr(str(json_array_get(segs, 1), "text"), "overlong \xef\xbf\xbd"));
	assert_non_null(strstr(str(json_array_get(segs, 3), "text"), "\x1b[31m"));
	assert_non_null(strstr(str(json_array_get(segs, 4), "text"), "\" and \\ backslash"));
	assert_string_equal(str(json_array_get(segs, 5), "text"), texts[5]);
	assert_true(num(json_array_get(segs, 0), "avg_logprob") == 0.0); /* NaN -> 0 */
	assert_true(num(root, "duration") == 0.0);
	assert_string_equal(str(root, "language"), "\xef\xbf\xbd");
	free(raw);
	json_decref(root);
	hark_transcript_free(t);
}

static void test_json_roundtrip(void **state)
{
	struct hark_transcript *t = sample(), *u = NULL;
	char *buf = NULL, err[256];
	size_t len, i;

	(void)state;
	/* A third segment without words, and a word slightly before its
	 * segment start (as Whisper's word timing can produce). */
	t->words[2].start = 2.45;
	assert_int_equal(hark_transcript_add_segment(t, 5.0, 6.0, " Silence.", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_finalize_text(t), HARK_OK);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_JSON, &buf, &len), HARK_OK);
	assert_int_equal(hark_transcript_from_json(buf, len, &u, err, sizeof(err)), HARK_OK);
	assert_string_equal(u->text, t->text);
	assert_string_equal(u->language, "en");
	assert_string_equal(u->engine_name, "whisper");
	assert_string_equal(u->engine_model, "ggml-tiny.en");
	assert_string_equal(u->engine_version, "1.2.3");
	assert_int_equal(ms_of(u->duration), 12346);
	assert_int_equal(u->n_segments, t->n_segments);
	assert_int_equal(u->n_words, t->n_words);
	for (i = 0; i < t->n_segments; i++) {
		const struct hark_segment *a = &t->segments[i], *b = &u->segments[i];

		assert_int_equal(b->id, (int)i);
		assert_int_equal(ms_of(a->start), ms_of(b->start));
		assert_int_equal(ms_of(a->end), ms_of(b->end));
		assert_string_equal(a->text, b->text);
		assert_int_equal(a->n_tokens, b->n_tokens);
		if (a->n_tokens)
			assert_memory_equal(a->tokens, b->tokens, a->n_tokens * sizeof(int32_t));
		assert_int_equal(a->first_word, b->first_word);
		assert_int_equal(a->n_words, b->n_words);
		assert_true(fabsf(a->avg_logprob - b->avg_logprob) < 1e-6f);
		assert_true(fabsf(a->temperature - b->temperature) < 1e-6f);
	}
	for (i = 0; i < t->n_words; i++) {
		assert_string_equal(t->words[i].word, u->words[i].word);
		assert_int_equal(ms_of(t->words[i].start), ms_of(u->words[i].start));
		assert_true(fabsf(t->words[i].probability - u->words[i].probability) < 1e-6f);
	}
	/* And the re-rendered JSON is byte-identical. */
	{
		char *buf2 = NULL;
		size_t len2;

		assert_int_equal(hark_transcript_render(u, HARK_FORMAT_JSON, &buf2, &len2), HARK_OK);
		assert_int_equal(len, len2);
		assert_string_equal(buf, buf2);
		free(buf2);
	}
	free(buf);
	hark_transcript_free(u);
	hark_transcript_free(t);
}

static void expect_json_error(const char *doc, int want_rc, const char *want_msg)
{
	struct hark_transcript *u = (struct hark_transcript *)1;
	char err[256] = "";
	int rc = hark_transcript_from_json(doc, strlen(doc), &u, err, sizeof(err));

	if (rc != want_rc || !strstr(err, want_msg))
		fail_msg("json %s: rc %d err '%s', want %d '%s'", doc, rc, err, want_rc, want_msg);
	assert_null(u);
}

static void test_json_reader_errors(void **state)
{
	struct hark_transcript *u = NULL;
	const char *plain = "{\"text\": \" Just text.\"}";
	char err[128];

	(void)state;
	expect_json_error("", HARK_ERR_EMPTY, "empty");
	expect_json_error("{\"text\": \"a\",\n  \"segments\": [}", HARK_ERR_FORMAT, "line 2");
	expect_json_error("[1,2]", HARK_ERR_FORMAT, "not an object");
	expect_json_error("{\"segments\": 3}", HARK_ERR_FORMAT, "segments: not an array");
	expect_json_error("{\"segments\": [{\"end\": 1, \"text\": \"a\"}]}", HARK_ERR_FORMAT,
			  "segments[0].start: missing");
	expect_json_error("{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": \"a\"},"
			  "{\"start\": \"x\", \"end\": 1, \"text\": \"a\"}]}",
			  HARK_ERR_FORMAT, "segments[1].start: not a number");
	expect_json_error("{\"segments\": [{\"start\": 2, \"end\": 1, \"text\": \"a\"}]}",
			  HARK_ERR_FORMAT, "segments[0]: bad times");
	expect_json_error("{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": \"a\", "
			  "\"tokens\": [1, 2.5]}]}",
			  HARK_ERR_FORMAT, "tokens[1]");
	expect_json_error("{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": 7}]}",
			  HARK_ERR_FORMAT, "segments[0].text: not a string");
	expect_json_error("{\"segments\": [], \"words\": [{\"word\": \"a\", \"start\": 0}]}",
			  HARK_ERR_FORMAT, "words[0].end: missing");
	expect_json_error("{\"text\": \"a\\u0000b\"}", HARK_ERR_FORMAT, "line 1");
	expect_json_error("{\"text\": \"\xff\"}", HARK_ERR_FORMAT, "line 1");

	/* Plain OpenAI "json" output: text only. */
	assert_int_equal(hark_transcript_from_json(plain, strlen(plain), &u, err, sizeof(err)),
			 HARK_OK);
	assert_string_equal(u->text, " Just text.");
	assert_int_equal(u->n_segments, 0);
	hark_transcript_free(u);
	/* openai-whisper's Python result: words nested in segments. */
	{
		const char *py = "{\"text\": \" Hi there. Bye.\", \"language\": \"en\", \"segments\": ["
				 "{\"id\": 0, \"seek\": 0, \"start\": 0.0, \"end\": 1.5, \"text\": \" Hi there.\","
				 " \"tokens\": [50364, 2421], \"words\": [{\"word\": \" Hi\", \"start\": 0.0,"
				 " \"end\": 0.5, \"probability\": 0.9}, {\"word\": \" there.\", \"start\": 0.5,"
				 " \"end\": 1.5, \"probability\": 0.8}]}, {\"id\": 1, \"seek\": 0, \"start\": 2.0,"
				 " \"end\": 2.5, \"text\": \" Bye.\", \"words\": [{\"word\": \" Bye.\", "
				 "\"start\": 2.0, \"end\": 2.5, \"probability\": 0.7}]}]}";

		assert_int_equal(hark_transcript_from_json(py, strlen(py), &u, err, sizeof(err)),
				 HARK_OK);
		assert_int_equal(u->n_segments, 2);
		assert_int_equal(u->n_words, 3);
		assert_int_equal(u->segments[0].n_words, 2);
		assert_int_equal(u->segments[1].first_word, 2);
		assert_string_equal(u->words[2].word, " Bye.");
		hark_transcript_free(u);
		expect_json_error("{\"segments\": [{\"start\": 0, \"end\": 1, \"text\": \"a\", "
				  "\"words\": [{\"word\": \"a\", \"start\": \"0\", \"end\": 1}]}]}",
				  HARK_ERR_FORMAT, "segments[0].words[0].start: not a number");
	}
	/* whisper.cpp -oj output. */
	{
		const char *wc = "{\"systeminfo\": \"AVX = 1\", \"result\": {\"language\": \"en\"},"
				 " \"transcription\": [{\"timestamps\": {\"from\": \"00:00:00,000\","
				 " \"to\": \"00:00:03,240\"}, \"offsets\": {\"from\": 0, \"to\": 3240},"
				 " \"text\": \" And so my fellow Americans\"}, {\"offsets\": {\"from\": 3240,"
				 " \"to\": 11000}, \"text\": \" ask not.\"}]}";

		assert_int_equal(hark_transcript_from_json(wc, strlen(wc), &u, err, sizeof(err)),
				 HARK_OK);
		assert_int_equal(u->n_segments, 2);
		assert_int_equal(ms_of(u->segments[0].end), 3240);
		assert_int_equal(ms_of(u->segments[1].end), 11000);
		assert_string_equal(u->language, "en");
		assert_string_equal(u->text, "And so my fellow Americans ask not.");
		assert_int_equal(ms_of(u->duration), 11000);
		hark_transcript_free(u);
		expect_json_error("{\"transcription\": [{\"text\": \"x\"}]}", HARK_ERR_FORMAT,
				  "transcription[0].offsets: missing");
	}
	/* hark_transcript_parse dispatches on the first character. */
	assert_int_equal(hark_transcript_parse(plain, strlen(plain), &u, err, sizeof(err)), HARK_OK);
	hark_transcript_free(u);
}

/* ---------------------------------------------------------------- txt ---- */

static void test_txt(void **state)
{
	struct hark_transcript *t = NULL;
	char *buf = NULL;
	size_t len;

	(void)state;
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_TXT, &buf, &len), HARK_OK);
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	assert_int_equal(hark_transcript_add_segment(t, 0, 1, " Hello world.", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 1, 2, "   ", NULL, 0, 0, 0, 0, 0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 2, 3, " Two\nlines\there ", NULL, 0, 0, 0,
						     0, 0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 3, 4, "bad\xff", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_TXT, &buf, &len), HARK_OK);
	assert_string_equal(buf, "Hello world.\nTwo lines here\nbad\xef\xbf\xbd\n");
	assert_int_equal(len, strlen(buf));
	free(buf);
	hark_transcript_free(t);
}

static void test_write_file(void **state)
{
	struct hark_transcript *t = sample();
	FILE *f = tmpfile();
	char got[256];
	size_t n;

	(void)state;
	assert_non_null(f);
	assert_int_equal(hark_transcript_write(t, HARK_FORMAT_TXT, f), HARK_OK);
	rewind(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	assert_string_equal(got, "Hello, there.\nGeneral Kenobi.\n");
	fclose(f);
	f = fopen("/dev/full", "w");
	if (f) {
		assert_int_equal(hark_transcript_write(t, HARK_FORMAT_JSON, f), HARK_ERR_IO);
		fclose(f);
	}
	assert_int_equal(hark_transcript_write(NULL, HARK_FORMAT_JSON, stdout), HARK_ERR_INVALID_ARG);
	hark_transcript_free(t);
}

/* ----------------------------------------------------------- subtitles ---- */

struct vcue {
	long long start, end; /* ms */
	char text[2048];      /* lines joined by one space, unescaped */
	int lines;
};

struct vcues {
	struct vcue *v;
	size_t n;
};

/* One line starting at *pos (terminated by '\n', which must be present). */
static size_t vline(const char *buf, size_t len, size_t *pos, const char **line)
{
	const char *nl = memchr(buf + *pos, '\n', len - *pos);
	size_t n;

	if (!nl)
		fail_msg("line not terminated by \\n at byte %zu", *pos);
	*line = buf + *pos;
	n = (size_t)(nl - (buf + *pos));
	assert_null(memchr(*line, '\r', n));
	*pos += n + 1;
	return n;
}

/* Strict "HH:MM:SS<sep>mmm" (hours >= 2 digits) at s; returns length. */
static size_t vtime(const char *s, size_t n, char sep, long long *ms)
{
	size_t i = 0, hd = 0;
	long long h = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9') {
		h = h * 10 + (s[i] - '0');
		i++;
		hd++;
	}
	if (hd < 2 || i + 10 > n || s[i] != ':' || s[i + 3] != ':' || s[i + 6] != sep)
		fail_msg("bad timestamp '%.*s'", (int)n, s);
	for (size_t k = 1; k <= 9; k++)
		if (k != 3 && k != 6 && !(s[i + k] >= '0' && s[i + k] <= '9'))
			fail_msg("bad timestamp digits '%.*s'", (int)n, s);
	{
		int m = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
		int sec = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');
		int f = (s[i + 7] - '0') * 100 + (s[i + 8] - '0') * 10 + (s[i + 9] - '0');

		assert_true(m < 60 && sec < 60);
		if (hd > 2)
			assert_true(s[0] != '0'); /* no needless leading zeros */
		*ms = ((h * 60 + m) * 60 + sec) * 1000 + f;
	}
	return i + 10;
}

/* Appends cue text line s (n bytes) to out, unescaping VTT entities. */
static void vtext(struct vcue *c, const char *s, size_t n, int vtt)
{
	size_t o = strlen(c->text), i, line_start;

	assert_true(n > 0);
	assert_true(s[0] != ' ' && s[n - 1] != ' ');
	assert_true(hark_textnorm_utf8_valid(s, n));
	for (i = 0; i + 3 <= n; i++)
		assert_false(s[i] == '-' && s[i + 1] == '-' && s[i + 2] == '>');
	{
		uint32_t cp;

		hark_textnorm_utf8_decode(s, n, &cp);
		assert_false(cp >= 0x300 && cp <= 0x36F); /* never starts on a combining mark */
	}
	if (o)
		c->text[o++] = ' ';
	line_start = o;
	for (i = 0; i < n; i++) {
		assert_true((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
		if (vtt) {
			assert_true(s[i] != '<' && s[i] != '>');
			if (s[i] == '&') {
				static const char *const ent[][2] = {
					{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}};
				size_t k;

				for (k = 0; k < 3; k++) {
					size_t l = strlen(ent[k][0]);

					if (n - i >= l && memcmp(s + i, ent[k][0], l) == 0) {
						c->text[o++] = ent[k][1][0];
						i += l - 1;
						break;
					}
				}
				if (k == 3)
					fail_msg("bare '&' in VTT text");
				continue;
			}
		}
		assert_true(o + 1 < sizeof(c->text));
		c->text[o++] = s[i];
	}
	c->text[o] = '\0';
	/* Displayed width (entities count as one character). */
	assert_true(hark_textnorm_utf8_len(c->text + line_start, o - line_start) <= 42);
}

/* Validates SRT/VTT output against the format rules; returns the cues. */
static struct vcues validate(const char *buf, size_t len, int vtt)
{
	struct vcues r = {NULL, 0};
	size_t pos = 0, cap = 0, n;
	long long prev_end = -1;
	const char *line;
	char sep = vtt ? '.' : ',';

	assert_int_equal(strlen(buf), len);
	assert_true(hark_textnorm_utf8_valid(buf, len));
	if (vtt) {
		assert_true(len >= 8 && memcmp(buf, "WEBVTT\n\n", 8) == 0);
		pos = 8;
	}
	while (pos < len) {
		struct vcue *c;
		size_t i;

		if (r.n == cap) {
			cap = cap ? cap * 2 : 16;
			r.v = realloc(r.v, cap * sizeof(*r.v));
			assert_non_null(r.v);
		}
		c = &r.v[r.n];
		memset(c, 0, sizeof(*c));
		if (!vtt) {
			char want[32];

			n = vline(buf, len, &pos, &line);
			snprintf(want, sizeof(want), "%zu", r.n + 1);
			if (n != strlen(want) || memcmp(line, want, n) != 0)
				fail_msg("cue number '%.*s', want %s", (int)n, line, want);
		}
		n = vline(buf, len, &pos, &line);
		i = vtime(line, n, sep, &c->start);
		if (n < i + 5 || memcmp(line + i, " --> ", 5) != 0)
			fail_msg("bad timing line '%.*s'", (int)n, line);
		i += 5;
		i += vtime(line + i, n - i, sep, &c->end);
		assert_int_equal(i, n);
		assert_true(c->end > c->start);
		assert_true(c->start >= prev_end);
		prev_end = c->end;
		for (;;) {
			n = vline(buf, len, &pos, &line);
			if (!n)
				break;
			vtext(c, line, n, vtt);
			c->lines++;
		}
		assert_true(c->lines >= 1 && c->lines <= 2);
		r.n++;
	}
	return r;
}

/* Source text as a cue would show it: whitespace runs collapsed, trimmed. */
static void collapse(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	int space = 0;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
			space = 1;
			continue;
		}
		if (space && o)
			out[o++] = ' ';
		space = 0;
		assert_true(o + 2 < cap);
		out[o++] = *s;
	}
	out[o] = '\0';
}

static void strip_spaces(char *s)
{
	char *o = s;

	for (; *s; s++)
		if (*s != ' ')
			*o++ = *s;
	*o = '\0';
}

#define LONG_TEXT                                                                              \
	"This is a deliberately long segment with a na\xc3\xafve caf\xc3\xa9 \xe2\x80\x93 "       \
	"\xe6\x9d\xb1\xe4\xba\xac \xe2\x80\x94 that cannot fit on two subtitle lines of forty two " \
	"characters and therefore has to be split into several cues whose times are apportioned " \
	"by character count across the segment."

static struct hark_transcript *tricky(size_t *word_seg)
{
	struct hark_transcript *t = NULL;
	char cjk[512] = "", comb[256] = "";
	const char *wt[] = {"Word", "timed", "segment", "where", "every", "word", "has", "its",
			    "own", "timestamp", "so", "the", "later", "cues", "start", "exactly",
			    "when", "their", "first", "word", "is", "spoken", "by", "the",
			    "speaker", "in", "this", "test."};
	char wtext[512] = "";
	size_t i;

	for (i = 0; i < 50; i++)
		strcat(cjk, "\xe6\x9d\xb1\xe4\xba\xac"); /* 100 code points, no spaces */
	for (i = 0; i < 30; i++)
		strcat(comb, "e\xcc\x81"); /* e + combining acute: 60 code points */
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 0, 0.2, "Negative start", NULL, 0, 0, 0, 0,
						     0), HARK_OK);
	t->segments[0].start = -0.5; /* bypass the builder's clamp: render must clamp */
	assert_int_equal(hark_transcript_add_segment(t, 0.0, 2.5, " Hello & <world>", NULL, 0, 0, 0,
						     0, 0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 2.0, 4.0, "Overlapping\nthe previous\tone",
						     NULL, 0, 0, 0, 0, 0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 5.0, 5.0, "zero length", NULL, 0, 0, 0, 0,
						     0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 6.0, 6.5, "  \n\t ", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 10.0, 30.0, LONG_TEXT, NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	for (i = 0; i < sizeof(wt) / sizeof(wt[0]); i++) {
		strcat(wtext, " ");
		strcat(wtext, wt[i]);
	}
	*word_seg = t->n_segments;
	assert_int_equal(hark_transcript_add_segment(t, 40.0, 55.0, wtext, NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	for (i = 0; i < sizeof(wt) / sizeof(wt[0]); i++) {
		char w[64];

		snprintf(w, sizeof(w), " %s", wt[i]);
		assert_int_equal(hark_transcript_add_word(t, w, 40.0 + 0.5 * (double)i,
							  40.4 + 0.5 * (double)i, 0.9f), HARK_OK);
	}
	assert_int_equal(hark_transcript_add_segment(t, 60.0, 70.0, cjk, NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 71.0, 72.0, comb, NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 3725.5, 3730.25, "Over an hour in.", NULL, 0,
						     0, 0, 0, 0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 360000.1, 360002.2, "Past one hundred hours.",
						     NULL, 0, 0, 0, 0, 0), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 360002.2, 360002.2, "The end.", NULL, 0, 0,
						     0, 0, 0), HARK_OK);
	return t;
}

static const struct vcue *find_cue(const struct vcues *c, const char *prefix)
{
	for (size_t i = 0; i < c->n; i++)
		if (strncmp(c->v[i].text, prefix, strlen(prefix)) == 0)
			return &c->v[i];
	fail_msg("no cue starting with '%s'", prefix);
	return NULL;
}

static void check_subtitles(int vtt)
{
	size_t word_seg, i, k;
	struct hark_transcript *t = tricky(&word_seg), *u = NULL;
	char *buf = NULL, err[256], *want, *got;
	size_t len, wl = 0, gl = 0;
	struct vcues c;
	const struct vcue *q;

	assert_int_equal(hark_transcript_render(t, vtt ? HARK_FORMAT_VTT : HARK_FORMAT_SRT, &buf,
						&len), HARK_OK);
	c = validate(buf, len, vtt);

	/* Timing rules on known cases. */
	q = find_cue(&c, "Negative start");
	assert_int_equal(q->start, 0);
	assert_int_equal(q->end, 200);
	q = find_cue(&c, "Hello & <world>");
	assert_int_equal(q->start, 200);  /* clamped to previous end */
	assert_int_equal(q->end, 2000);   /* cut at the next cue's start */
	q = find_cue(&c, "Overlapping the previous one");
	assert_int_equal(q->start, 2000);
	assert_int_equal(q->end, 4000);
	q = find_cue(&c, "zero length");
	assert_int_equal(q->start, 5000);
	assert_int_equal(q->end, 5000 + HARK_SUB_MIN_CUE_MS);
	q = find_cue(&c, "Over an hour in.");
	assert_int_equal(q->start, 3725500);
	assert_int_equal(q->end, 3730250);
	q = find_cue(&c, "Past one hundred hours.");
	assert_int_equal(q->start, 360000100);
	assert_int_equal(q->end, 360002200);
	q = find_cue(&c, "The end.");
	assert_int_equal(q->start, 360002200);
	assert_int_equal(q->end, 360002200 + HARK_SUB_MIN_CUE_MS);
	assert_non_null(strstr(buf, vtt ? "100:00:00.100 --> 100:00:02.200"
					: "100:00:00,100 --> 100:00:02,200"));
	assert_non_null(strstr(buf, vtt ? "01:02:05.500 --> 01:02:10.250"
					: "01:02:05,500 --> 01:02:10,250"));
	if (vtt)
		assert_non_null(strstr(buf, "Hello &amp; &lt;world&gt;"));

	/* The long segment spans exactly its time in contiguous cues. */
	q = find_cue(&c, "This is a deliberately");
	assert_int_equal(q->start, 10000);
	k = (size_t)(q - c.v);
	assert_true(k + 2 < c.n);
	for (i = k; c.v[i].end != 30000; i++) {
		assert_true(i + 1 < c.n);
		assert_int_equal(c.v[i].end, c.v[i + 1].start);
		assert_int_equal(c.v[i].lines, 2); /* only the last may be short */
	}
	/* Word-timed segment: each later cue starts at its first word's start. */
	q = find_cue(&c, "Word timed segment");
	k = (size_t)(q - c.v);
	assert_int_equal(q->start, 40000);
	{
		size_t words_before = 0;

		for (i = k; i < c.n && c.v[i].start < 56000; i++) {
			if (i > k)
				assert_int_equal(c.v[i].start, 40000 + 500 * (long long)words_before);
			for (const char *p = c.v[i].text; *p; p++)
				words_before += *p == ' ';
			words_before++;
		}
		assert_int_equal(words_before, 28);
		assert_true(i - k >= 2);
		assert_int_equal(c.v[i - 1].end, 55000);
	}

	/* Text equality: all cues joined == all non-empty segments joined. */
	want = calloc(1, 8192);
	got = calloc(1, 8192);
	assert_non_null(want);
	assert_non_null(got);
	for (i = 0; i < t->n_segments; i++) {
		char tmp[2048];

		collapse(t->segments[i].text, tmp, sizeof(tmp));
		if (!tmp[0])
			continue;
		wl += (size_t)snprintf(want + wl, 8192 - wl, "%s%s", wl ? " " : "", tmp);
	}
	for (i = 0; i < c.n; i++)
		gl += (size_t)snprintf(got + gl, 8192 - gl, "%s%s", gl ? " " : "", c.v[i].text);
	/* Breaks inside an over-long word (the CJK run) necessarily read back
	 * as spaces, so compare ignoring spaces; short cues were compared
	 * exactly above. */
	strip_spaces(got);
	strip_spaces(want);
	assert_string_equal(got, want);

	/* Parse back: same cues, same times at ms precision, same text. */
	assert_int_equal(hark_subtitle_parse(buf, len, &u, err, sizeof(err)), HARK_OK);
	assert_int_equal(u->n_segments, c.n);
	for (i = 0; i < c.n; i++) {
		assert_int_equal(ms_of(u->segments[i].start), c.v[i].start);
		assert_int_equal(ms_of(u->segments[i].end), c.v[i].end);
		assert_string_equal(u->segments[i].text, c.v[i].text);
		if (i)
			assert_true(u->segments[i].start >= u->segments[i - 1].end);
	}
	{
		char *ut = strdup(u->text);

		assert_non_null(ut);
		strip_spaces(ut);
		assert_string_equal(ut, want);
		free(ut);
	}
	assert_int_equal(ms_of(u->duration), 360002200 + HARK_SUB_MIN_CUE_MS);
	/* Rendering the parsed transcript again is a fixed point. */
	{
		char *buf2 = NULL;
		size_t len2;

		assert_int_equal(hark_transcript_render(u, vtt ? HARK_FORMAT_VTT : HARK_FORMAT_SRT,
							&buf2, &len2), HARK_OK);
		assert_string_equal(buf2, buf);
		free(buf2);
	}
	hark_transcript_free(u);
	free(want);
	free(got);
	free(c.v);
	free(buf);
	hark_transcript_free(t);
}

static void test_srt_roundtrip(void **state)
{
	(void)state;
	check_subtitles(0);
}

static void test_vtt_roundtrip(void **state)
{
	(void)state;
	check_subtitles(1);
}

static void test_subtitle_edge_cases(void **state)
{
	struct hark_transcript *t = NULL;
	char *buf = NULL;
	size_t len, i;
	struct vcues c;

	(void)state;
	/* Empty transcript. */
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_SRT, &buf, &len), HARK_OK);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_VTT, &buf, &len), HARK_OK);
	assert_string_equal(buf, "WEBVTT\n\n");
	free(buf);
	/* "-->" in text, and a pile of cues at the same instant. */
	assert_int_equal(hark_transcript_add_segment(t, 1, 2, "a --> b", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	for (i = 0; i < 5; i++)
		assert_int_equal(hark_transcript_add_segment(t, 3, 3, "same", NULL, 0, 0, 0, 0, 0),
				 HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 3.0005, 3.001, "next", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	/* Out of order input keeps its order (text reads in order) and is
	 * pushed forward instead. */
	assert_int_equal(hark_transcript_add_segment(t, 0, 0.5, "late", NULL, 0, 0, 0, 0, 0),
			 HARK_OK);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_SRT, &buf, &len), HARK_OK);
	c = validate(buf, len, 0);
	assert_int_equal(c.n, 8);
	assert_string_equal(c.v[0].text, "a -> b");
	assert_int_equal(c.v[0].start, 1000);
	assert_int_equal(c.v[0].end, 2000);
	for (i = 1; i < 6; i++)
		assert_string_equal(c.v[i].text, "same");
	/* five empty cues at 3.000 share the 0.5 ms before "next": the first
	 * gets what is left, the rest are pushed 1 ms each */
	assert_int_equal(c.v[1].start, 3000);
	assert_string_equal(c.v[6].text, "next");
	assert_string_equal(c.v[7].text, "late");
	assert_int_equal(c.v[7].start, c.v[6].end);
	assert_int_equal(c.v[7].end, c.v[6].end + HARK_SUB_MIN_CUE_MS);
	free(c.v);
	free(buf);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_VTT, &buf, &len), HARK_OK);
	c = validate(buf, len, 1);
	assert_string_equal(c.v[0].text, "a --> b");
	free(c.v);
	free(buf);
	hark_transcript_free(t);

	/* Line balancing never breaks a word that fits on a line: a 38-letter
	 * word followed by a short one stays whole; and a text that needs
	 * three lines is not left with a one-word last line. */
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	assert_int_equal(hark_transcript_add_segment(t, 0, 1,
		"Pneumonoultramicroscopicsilicovolcanoc short", NULL, 0, 0, 0, 0, 0), HARK_OK);
	/* 17 four-letter words: greedy 42-wide lines hold 8, 8 and 1 words. */
	assert_int_equal(hark_transcript_add_segment(t, 2, 9,
		"word word word word word word word word word word word word word word word "
		"word last", NULL, 0, 0, 0, 0, 0), HARK_OK);
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_SRT, &buf, &len), HARK_OK);
	c = validate(buf, len, 0);
	assert_string_equal(c.v[0].text, "Pneumonoultramicroscopicsilicovolcanoc short");
	assert_int_equal(c.v[0].lines, 2);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.v[1].lines, 2);
	assert_int_equal(c.v[2].lines, 1);
	assert_true(strlen(c.v[2].text) >= 24); /* balanced: 5+ words, not "last" alone */
	free(c.v);
	free(buf);
	hark_transcript_free(t);
}

static void test_subtitle_parse_tolerant(void **state)
{
	static const char vtt[] =
		"\xef\xbb\xbfWEBVTT - Some title\r\nKind: captions\r\nLanguage: en\r\n\r\n"
		"NOTE this is a comment\r\nspanning two lines\r\n\r\n"
		"STYLE\r\n::cue { color: red }\r\n\r\n"
		"intro\r\n00:01.000 --> 00:04.500 align:start position:10%\r\n"
		"<v Bob>Hello &amp; welcome</v>\r\nto <i>the</i> show\r\n\r\n\r\n"
		"00:00:05.250 --> 00:00:07.000\r\nSecond &lt;cue&gt; &#233; &#x6771;\r\n";
	static const char srt[] =
		"1\r\n00:00:01,000 --> 00:00:02,000\r\n<i>Italic</i> text\r\n\r\n"
		"00:00:03.5 --> 00:00:04,25 X1:10 X2:20\r\n{\\an8}Top line\r\nsecond\r\n\r\n\r\n"
		"3\r\n100:00:00,000 --> 100:00:01,000\r\na < b > c\r\n\r\n"
		"4\r\n00:00:05,000 --> 00:00:06,000\r\n\r\n";
	static const char cr_only[] = "1\r00:00:01,000 --> 00:00:02,000\rhi\r";
	struct hark_transcript *t = NULL;
	char err[256];

	(void)state;
	assert_int_equal(hark_subtitle_parse(vtt, sizeof(vtt) - 1, &t, err, sizeof(err)), HARK_OK);
	assert_int_equal(t->n_segments, 2);
	assert_int_equal(ms_of(t->segments[0].start), 1000);
	assert_int_equal(ms_of(t->segments[0].end), 4500);
	assert_string_equal(t->segments[0].text, "Hello & welcome to the show");
	assert_int_equal(ms_of(t->segments[1].start), 5250);
	assert_string_equal(t->segments[1].text, "Second <cue> \xc3\xa9 \xe6\x9d\xb1");
	assert_string_equal(t->text, "Hello & welcome to the show Second <cue> \xc3\xa9 \xe6\x9d\xb1");
	assert_int_equal(ms_of(t->duration), 7000);
	hark_transcript_free(t);

	assert_int_equal(hark_subtitle_parse(srt, sizeof(srt) - 1, &t, err, sizeof(err)), HARK_OK);
	assert_int_equal(t->n_segments, 4);
	assert_string_equal(t->segments[0].text, "Italic text");
	assert_int_equal(ms_of(t->segments[1].start), 3500);
	assert_int_equal(ms_of(t->segments[1].end), 4250);
	assert_string_equal(t->segments[1].text, "Top line second");
	assert_int_equal(ms_of(t->segments[2].start), 360000000);
	assert_string_equal(t->segments[2].text, "a < b > c");
	assert_string_equal(t->segments[3].text, "");
	hark_transcript_free(t);

	assert_int_equal(hark_subtitle_parse(cr_only, sizeof(cr_only) - 1, &t, err, sizeof(err)),
			 HARK_OK);
	assert_int_equal(t->n_segments, 1);
	assert_string_equal(t->segments[0].text, "hi");
	hark_transcript_free(t);

	assert_int_equal(hark_subtitle_parse("WEBVTT\n", 7, &t, err, sizeof(err)), HARK_OK);
	assert_int_equal(t->n_segments, 0);
	hark_transcript_free(t);
	assert_int_equal(hark_transcript_parse("WEBVTT", 6, &t, err, sizeof(err)), HARK_OK);
	hark_transcript_free(t);
}

static void expect_sub_error_n(const char *doc, size_t len, int want_rc, const char *want)
{
	struct hark_transcript *t = (struct hark_transcript *)1;
	char err[256] = "";
	int rc = hark_subtitle_parse(doc, len, &t, err, sizeof(err));

	if (rc != want_rc || !strstr(err, want))
		fail_msg("parse: rc %d err '%s', want %d '%s'", rc, err, want_rc, want);
	assert_null(t);
}

static void expect_sub_error(const char *doc, int want_rc, const char *want)
{
	expect_sub_error_n(doc, strlen(doc), want_rc, want);
}

static void test_subtitle_parse_errors(void **state)
{
	static const char nul[] = "1\n00:00:01,000 --> 00:00:02,000\nh\0i\n";

	(void)state;
	expect_sub_error("", HARK_ERR_EMPTY, "empty");
	expect_sub_error("1\n00:00:01,000 --> 00:00:0x,000\nhi\n", HARK_ERR_FORMAT,
			 "line 2: malformed cue timing");
	expect_sub_error("1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\nnot a timing\n",
			 HARK_ERR_FORMAT, "line 6: expected a cue timing");
	expect_sub_error("hello there\n", HARK_ERR_FORMAT, "line 1: expected a cue number");
	expect_sub_error("WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nx\n", HARK_ERR_FORMAT,
			 "line 3: cue ends before it starts");
	expect_sub_error("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nok\n\n00:61.000 --> 00:62.000\n"
			 "bad\n", HARK_ERR_FORMAT, "line 6: malformed");
	expect_sub_error("WEBVTT\n\nid only\n", HARK_ERR_FORMAT, "line 4: expected a cue timing");
	expect_sub_error("WEBVTT\n\n1:00:01.000 -> 1:00:02.000\nx\n", HARK_ERR_FORMAT,
			 "line 4: expected a cue timing");
	expect_sub_error("1\r\n00:00:01,000 --> 00:00:02,000junk\r\nx\r\n", HARK_ERR_FORMAT,
			 "line 2: malformed");
	expect_sub_error_n(nul, sizeof(nul) - 1, HARK_ERR_FORMAT, "line 3: NUL byte");
	expect_sub_error("\x89PNG\r\n\x1a\n", HARK_ERR_FORMAT, "line 1:");
}

static void test_load_file(void **state)
{
	struct hark_transcript *t = sample(), *u = NULL;
	char path[] = "/tmp/hark_test_format_XXXXXX", err[512];
	char *buf = NULL;
	size_t len;
	int fd;
	FILE *f;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(hark_transcript_write(t, HARK_FORMAT_VTT, f), HARK_OK);
	fclose(f);
	assert_int_equal(hark_transcript_load(path, &u, err, sizeof(err)), HARK_OK);
	assert_int_equal(u->n_segments, 2);
	assert_string_equal(u->segments[1].text, "General Kenobi.");
	assert_int_equal(ms_of(u->segments[1].end), 3750);
	hark_transcript_free(u);
	/* JSON is detected from content, not the name. */
	assert_int_equal(hark_transcript_render(t, HARK_FORMAT_JSON, &buf, &len), HARK_OK);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
	free(buf);
	assert_int_equal(hark_transcript_load(path, &u, err, sizeof(err)), HARK_OK);
	assert_int_equal(u->n_words, 4);
	assert_string_equal(u->engine_name, "whisper");
	hark_transcript_free(u);
	/* Malformed content: the message names the file and the line. */
	f = fopen(path, "wb");
	assert_non_null(f);
	fputs("1\n00:00:01,000 --> nope\n", f);
	fclose(f);
	assert_int_equal(hark_transcript_load(path, &u, err, sizeof(err)), HARK_ERR_FORMAT);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "line 2"));
	assert_null(u);
	unlink(path);
	assert_int_equal(hark_transcript_load(path, &u, err, sizeof(err)), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_transcript_load("/tmp", &u, err, sizeof(err)), HARK_ERR_IS_DIR);
	hark_transcript_free(t);
}

/*
 * Real meeting text ($HARK_SHARED/meetings/qmsum, AMI ES2004a: 320 speaker
 * turns with disfluency markup, very short and very long turns): each turn
 * becomes a segment with per-word times and some crosstalk overlaps; every
 * format must render it validly and read back the same text and times.
 */
static void test_real_meeting(void **state)
{
	const char *shared = getenv("HARK_SHARED");
	char path[4096], err[256];
	json_error_t je;
	json_t *root, *turns;
	struct hark_transcript *t = NULL, *u = NULL;
	double clock = 0.0;
	size_t i, k;
	int vtt;

	(void)state;
	if (!shared || !*shared)
		shared = "../shared";
	snprintf(path, sizeof(path), "%s/meetings/qmsum/ES2004a.json", shared);
	root = json_load_file(path, 0, &je);
	if (!root) {
		print_message("skipping: %s not readable\n", path);
		skip();
	}
	turns = json_object_get(root, "meeting_transcripts");
	assert_true(json_array_size(turns) > 100);
	assert_int_equal(hark_transcript_new(&t), HARK_OK);
	for (i = 0; i < json_array_size(turns); i++) {
		const char *text = json_string_value(json_object_get(json_array_get(turns, i),
								      "content"));
		char *copy, *w, *save = NULL;
		size_t nw = 0;
		double start, end;

		assert_non_null(text);
		for (const char *p = text; *p; p++)
			nw += *p == ' ';
		nw++;
		start = i % 7 == 6 ? clock - 0.3 : clock; /* crosstalk overlap */
		if (start < 0)
			start = 0;
		end = start + 0.35 * (double)nw;
		assert_int_equal(hark_transcript_add_segment(t, start, end, text, NULL, 0, -0.2f, 0.1f,
							     0, 1.5f), HARK_OK);
		copy = strdup(text);
		assert_non_null(copy);
		k = 0;
		for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save), k++)
			assert_int_equal(hark_transcript_add_word(t, w, start + 0.35 * (double)k,
								  start + 0.35 * (double)k + 0.3,
								  0.8f), HARK_OK);
		free(copy);
		clock = end + 0.25;
	}
	assert_int_equal(hark_transcript_finalize_text(t), HARK_OK);
	t->duration = clock;

	for (vtt = 0; vtt <= 1; vtt++) {
		char *buf = NULL, *a, *b;
		size_t len;
		struct vcues c;
		struct hark_wer_counts wc;

		assert_int_equal(hark_transcript_render(t, vtt ? HARK_FORMAT_VTT : HARK_FORMAT_SRT,
							&buf, &len), HARK_OK);
		c = validate(buf, len, vtt);
		assert_true(c.n >= json_array_size(turns));
		assert_int_equal(hark_subtitle_parse(buf, len, &u, err, sizeof(err)), HARK_OK);
		assert_int_equal(u->n_segments, c.n);
		for (i = 0; i < c.n; i++) {
			assert_int_equal(ms_of(u->segments[i].start), c.v[i].start);
			assert_int_equal(ms_of(u->segments[i].end), c.v[i].end);
		}
		/* Word for word the same text (scored like ASR output: 0 errors). */
		assert_int_equal(hark_wer_compute(t->text, u->text, 0, &wc), HARK_OK);
		assert_int_equal(wc.sub + wc.del + wc.ins, 0);
		a = strdup(t->text);
		b = strdup(u->text);
		strip_spaces(a);
		strip_spaces(b);
		assert_string_equal(a, b);
		free(a);
		free(b);
		free(c.v);
		free(buf);
		hark_transcript_free(u);
		u = NULL;
	}
	{
		char *buf = NULL, *buf2 = NULL;
		size_t len, len2;

		assert_int_equal(hark_transcript_render(t, HARK_FORMAT_JSON, &buf, &len), HARK_OK);
		assert_int_equal(hark_transcript_from_json(buf, len, &u, err, sizeof(err)), HARK_OK);
		assert_int_equal(u->n_words, t->n_words);
		for (i = 0; i < t->n_segments; i++)
			assert_int_equal(u->segments[i].n_words, t->segments[i].n_words);
		assert_int_equal(hark_transcript_render(u, HARK_FORMAT_JSON, &buf2, &len2), HARK_OK);
		assert_string_equal(buf, buf2);
		free(buf);
		free(buf2);
		hark_transcript_free(u);
	}
	json_decref(root);
	hark_transcript_free(t);
}

/*
 * Real whisper.cpp `-oj` outputs ($HARK_SHARED/whisper/reference): read them,
 * compare with an independent jansson walk, and push them through SRT/VTT.
 * (These models have random weights, so the text is long and repetitive and
 * some offsets are negative; some files even hold raw control characters,
 * which is invalid JSON and must be refused with a line number.)
 */
static void test_real_whisper_cpp(void **state)
{
	static const char *const files[] = {
		"micro-en3/concat75.json", "micro-en3/pyannote_sample.json",
		"micro-en/jfk.json", "micro-en-f32/concat75.json",
		"micro-en-q8_0/pyannote_sample.json",
	};
	const char *shared = getenv("HARK_SHARED");
	size_t fi, i, checked = 0, refused = 0;

	(void)state;
	if (!shared || !*shared)
		shared = "../shared";
	for (fi = 0; fi < sizeof(files) / sizeof(files[0]); fi++) {
		char path[4096], err[512];
		struct hark_transcript *t = NULL, *u = NULL;
		json_error_t je;
		json_t *root, *tr;
		int rc, vtt;
		FILE *f;

		snprintf(path, sizeof(path), "%s/whisper/reference/%s", shared, files[fi]);
		f = fopen(path, "rb");
		if (!f)
			continue;
		fclose(f);
		root = json_load_file(path, 0, &je);
		rc = hark_transcript_load(path, &t, err, sizeof(err));
		if (!root) {
			/* Invalid JSON: refused, with the position. */
			assert_int_equal(rc, HARK_ERR_FORMAT);
			assert_non_null(strstr(err, "line "));
			refused++;
			continue;
		}
		assert_int_equal(rc, HARK_OK);
		tr = json_object_get(root, "transcription");
		assert_int_equal(t->n_segments, json_array_size(tr));
		for (i = 0; i < t->n_segments; i++) {
			json_t *it = json_array_get(tr, i), *off = json_object_get(it, "offsets");
			long long from = (long long)json_integer_value(json_object_get(off, "from"));
			long long to = (long long)json_integer_value(json_object_get(off, "to"));

			assert_string_equal(t->segments[i].text,
					    json_string_value(json_object_get(it, "text")));
			assert_int_equal(ms_of(t->segments[i].start), from < 0 ? 0 : from);
			assert_int_equal(ms_of(t->segments[i].end), to < 0 ? 0 : to);
			assert_int_equal(t->segments[i].n_tokens,
					 json_array_size(json_object_get(it, "tokens")));
		}
		for (vtt = 0; vtt <= 1; vtt++) {
			char *buf = NULL, *a, *b;
			size_t len;
			struct vcues c;

			assert_int_equal(hark_transcript_render(t, vtt ? HARK_FORMAT_VTT
								       : HARK_FORMAT_SRT,
								&buf, &len), HARK_OK);
			c = validate(buf, len, vtt);
			assert_int_equal(hark_subtitle_parse(buf, len, &u, err, sizeof(err)), HARK_OK);
			assert_int_equal(u->n_segments, c.n);
			a = strdup(t->text);
			b = strdup(u->text);
			strip_spaces(a);
			strip_spaces(b);
			assert_string_equal(a, b);
			free(a);
			free(b);
			free(c.v);
			free(buf);
			hark_transcript_free(u);
		}
		checked++;
		json_decref(root);
		hark_transcript_free(t);
	}
	if (!checked && !refused) {
		print_message("skipping: no whisper.cpp references under %s\n", shared);
		skip();
	}
	assert_true(checked > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builder),
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_json_structure),
		cmocka_unit_test(test_json_hostile_text),
		cmocka_unit_test(test_json_roundtrip),
		cmocka_unit_test(test_json_reader_errors),
		cmocka_unit_test(test_txt),
		cmocka_unit_test(test_write_file),
		cmocka_unit_test(test_srt_roundtrip),
		cmocka_unit_test(test_vtt_roundtrip),
		cmocka_unit_test(test_subtitle_edge_cases),
		cmocka_unit_test(test_subtitle_parse_tolerant),
		cmocka_unit_test(test_subtitle_parse_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_real_meeting),
		cmocka_unit_test(test_real_whisper_cpp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
