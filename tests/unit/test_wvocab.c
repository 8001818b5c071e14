/*
 * Unit tests for the Whisper tokenizer (src/asr/whisper/wvocab): token text
 * against every token whisper-cli wrote into the shared golden JSON files,
 * prompt encoding against whisper_tokenize()'s ids recorded in the logits
 * sidecars, whisper.cpp's regex pre-tokenisation rules, the language table
 * and the UTF-8 boundary helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "asr/whisper/wmodel.h"
#include "asr/whisper/wvocab.h"
#include "hark/hark.h"

#include "wd_util.h"

static const char *shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");
	return s ? s : "../shared";
}

struct fixture {
	struct hark_wmodel *m;
	struct hark_wvocab *v;
};

static int load(struct fixture *fx, const char *model)
{
	char path[1024], err[256];
	snprintf(path, sizeof(path), "%s/whisper/models/%s.bin", shared_dir(), model);
	if (hark_wmodel_load(path, &fx->m, err, sizeof(err)) != HARK_OK)
		return -1;
	assert_int_equal(hark_wvocab_new(fx->m, &fx->v), HARK_OK);
	return 0;
}

static void unload(struct fixture *fx)
{
	hark_wvocab_free(fx->v);
	hark_wmodel_free(fx->m);
}

/* Every {"text": "...", ..., "id": N} token of a whisper-cli -ojf file: the
 * text (only " and \ are escaped there) must equal our token bytes. */
static int check_json_tokens(struct fixture *fx, const char *rel)
{
	char path[1024];
	size_t len;
	snprintf(path, sizeof(path), "%s/whisper/reference/%s", shared_dir(), rel);
	char *s = wd_slurp(path, &len);
	assert_non_null(s);
	int n = 0;
	const char *p = s;
	const char *tkey = "\"text\": \"";
	while ((p = strstr(p, tkey)) != NULL) {
		p += strlen(tkey);
		char txt[512];
		size_t tl = 0;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			if (tl < sizeof(txt))
				txt[tl++] = *p;
			p++;
		}
		const char *obj_end = strchr(p, '}');
		const char *idp = strstr(p, "\"id\": ");
		const char *next = strstr(p, tkey);
		if (!idp || (next && idp > next))
			continue; /* a segment object, not a token */
		(void)obj_end;
		int id = atoi(idp + 6);
		size_t l;
		const char *tok = hark_wvocab_token(fx->v, id, &l);
		assert_non_null(tok);
		if (l != tl || memcmp(tok, txt, tl) != 0) {
			print_error("%s: token %d: got '%.*s' want '%.*s'\n", rel, id, (int)l, tok, (int)tl, txt);
			fail();
		}
		n++;
	}
	free(s);
	return n;
}

static void test_token_text_vs_goldens(void **state)
{
	(void)state;
	struct fixture fx;
	if (load(&fx, "micro-en") != 0) {
		skip();
		return;
	}
	assert_true(check_json_tokens(&fx, "micro-en/jfk.json") >= 220);
	assert_true(check_json_tokens(&fx, "micro-en/concat75.json") >= 660);
	unload(&fx);
	assert_int_equal(load(&fx, "micro-en3"), 0);
	assert_true(check_json_tokens(&fx, "micro-en3/pyannote_sample.json") > 100);
	unload(&fx);
	assert_int_equal(load(&fx, "micro-ml128"), 0);
	assert_true(check_json_tokens(&fx, "micro-ml128/concat75.lang-auto.json") > 400);
	assert_true(check_json_tokens(&fx, "micro-ml128/pyannote_sample.lang-en.json") > 100);
	unload(&fx);
}

/* Reads "key": [a, b, ...] ints from a sidecar. */
static int json_int_array(const char *s, const char *key, int *out, int max)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": [", key);
	const char *p = strstr(s, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	int n = 0;
	while (*p && *p != ']' && n < max) {
		out[n++] = (int)strtol(p, (char **)&p, 10);
		while (*p == ',' || *p == ' ')
			p++;
	}
	return n;
}

static int json_int(const char *s, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(s, pat);
	assert_non_null(p);
	return atoi(p + strlen(pat));
}

static void check_sidecar(const char *model, int n_skip)
{
	struct fixture fx;
	char path[1024];
	size_t len;
	if (load(&fx, model) != 0) {
		skip();
		return;
	}
	snprintf(path, sizeof(path), "%s/whisper/reference/%s/jfk.logits.json", shared_dir(), model);
	char *s = wd_slurp(path, &len);
	assert_non_null(s);
	/* forced ids = whisper_tokenize(" And so my fellow Americans"), possibly
	 * preceded by a timestamp token (n_skip) and truncated to 5 */
	int forced[16], prompt[8];
	int nf = json_int_array(s, "forced_ids", forced, 16);
	int np = json_int_array(s, "prompt_ids", prompt, 8);
	assert_true(nf == 5 && np >= 2);
	int32_t ids[16];
	int n = 0;
	assert_int_equal(hark_wvocab_encode(fx.v, " And so my fellow Americans", ids, 16, &n), HARK_OK);
	assert_int_equal(n, 5);
	for (int i = 0; i < nf - n_skip; i++)
		assert_int_equal(ids[i], forced[i + n_skip]);
	/* special ids as recorded */
	const char *sp = strstr(s, "\"special_ids\"");
	assert_non_null(sp);
	assert_int_equal(fx.m->sp.eot, json_int(sp, "eot"));
	assert_int_equal(fx.m->sp.sot, json_int(sp, "sot"));
	assert_int_equal(fx.m->sp.not_ts, json_int(sp, "not"));
	assert_int_equal(fx.m->sp.beg, json_int(sp, "beg"));
	assert_int_equal(hark_wvocab_lang_token(fx.m, hark_wvocab_lang_id("en")), json_int(sp, "lang_en"));
	/* prompt strings */
	size_t l;
	const char *t = hark_wvocab_token(fx.v, prompt[0], &l);
	assert_int_equal(l, 7);
	assert_memory_equal(t, "[_SOT_]", 7);
	free(s);
	unload(&fx);
}

static void test_encode_vs_whisper_tokenize(void **state)
{
	(void)state;
	check_sidecar("micro-en", 0);
	check_sidecar("micro-ml128", 1);
}

/* Decoding the ids of ASCII text must give the text back, and the piece
 * boundaries must follow whisper.cpp's regex. */
static void test_pretokenisation(void **state)
{
	(void)state;
	struct fixture fx;
	if (load(&fx, "micro-en") != 0) {
		skip();
		return;
	}
	const char *texts[] = {
		"Hello world", "it's they're we've I'm you'll he'd 'sup", "a  b   c\t\td\n",
		"  leading and trailing  ", "x123y 4567 8", "!!! ?? , ... -- a-b", "'", "''s",
		"caf\xc3\xa9 na\xc3\xafve", "\n\n\nend", "",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		int32_t ids[256];
		int n = 0;
		assert_int_equal(hark_wvocab_encode(fx.v, texts[i], ids, 256, &n), HARK_OK);
		char buf[1024];
		size_t bl = 0;
		for (int k = 0; k < n; k++) {
			size_t l;
			const char *t = hark_wvocab_token(fx.v, ids[k], &l);
			assert_true(bl + l < sizeof(buf));
			memcpy(buf + bl, t, l);
			bl += l;
		}
		assert_int_equal(bl, strlen(texts[i]));
		assert_memory_equal(buf, texts[i], bl);
	}
	/* bytes without a single-byte token are skipped, as whisper.cpp does
	 * (the ggml vocabulary has only the 128 ASCII single-byte tokens) */
	int32_t ids2[16];
	int n2 = 0;
	assert_int_equal(hark_wvocab_encode(fx.v, "\xf0\x9f\x98\x80", ids2, 16, &n2), HARK_OK);
	for (int k = 0; k < n2; k++)
		assert_true(ids2[k] >= 0 && ids2[k] < fx.m->n_tokens);
	/* whitespace: "a  b" -> "a", " ", " b" (\s+(?!\S) leaves one space) */
	int32_t ids[16];
	int n = 0;
	assert_int_equal(hark_wvocab_encode(fx.v, "a  b", ids, 16, &n), HARK_OK);
	assert_int_equal(n, 3);
	size_t l;
	const char *t = hark_wvocab_token(fx.v, ids[1], &l);
	assert_int_equal(l, 1);
	assert_int_equal(t[0], ' ');
	t = hark_wvocab_token(fx.v, ids[2], &l);
	assert_int_equal(l, 2);
	assert_memory_equal(t, " b", 2);
	/* contraction split: "'sup" -> "'s" + "up" even though "'" + "sup" exist */
	assert_int_equal(hark_wvocab_encode(fx.v, "'sup", ids, 16, &n), HARK_OK);
	t = hark_wvocab_token(fx.v, ids[0], &l);
	assert_int_equal(l, 2);
	assert_memory_equal(t, "'s", 2);
	/* limit */
	assert_int_equal(hark_wvocab_encode(fx.v, "one two three four", ids, 2, &n), HARK_ERR_LIMIT);
	assert_int_equal(n, 4);
	/* out of range ids */
	assert_null(hark_wvocab_token(fx.v, -1, &l));
	assert_null(hark_wvocab_token(fx.v, fx.m->hp.n_vocab, &l));
	assert_int_equal(l, 0);
	unload(&fx);
}

static void test_specials_rendering(void **state)
{
	(void)state;
	struct fixture fx;
	if (load(&fx, "micro-ml128") != 0) {
		skip();
		return;
	}
	size_t l;
	const char *s = hark_wvocab_token(fx.v, fx.m->sp.eot, &l);
	assert_string_equal(s, "[_EOT_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.transcribe, &l), "[_TRANSCRIBE_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.translate, &l), "[_TRANSLATE_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.sot_lm, &l), "[_SOLM_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.prev, &l), "[_PREV_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.nosp, &l), "[_NOSP_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.beg, &l), "[_BEG_]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.beg + 1500, &l), "[_TT_1500]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.sot + 1, &l), "[_LANG_en]");
	assert_string_equal(hark_wvocab_token(fx.v, fx.m->sp.sot + 100, &l), "[_LANG_yue]");
	assert_int_equal(fx.m->n_langs, 100);
	unload(&fx);
}

static void test_languages(void **state)
{
	(void)state;
	assert_int_equal(hark_wvocab_lang_id("en"), 0);
	assert_int_equal(hark_wvocab_lang_id("de"), 2);
	assert_int_equal(hark_wvocab_lang_id("german"), 2);
	assert_int_equal(hark_wvocab_lang_id("ht"), 80);
	assert_int_equal(hark_wvocab_lang_id("haw"), 93);
	assert_int_equal(hark_wvocab_lang_id("yue"), 99);
	assert_int_equal(hark_wvocab_lang_id("xx"), -1);
	assert_int_equal(hark_wvocab_lang_id(NULL), -1);
	assert_string_equal(hark_wvocab_lang_code(99), "yue");
	assert_string_equal(hark_wvocab_lang_name(80), "haitian creole");
	assert_null(hark_wvocab_lang_code(100));
	for (int i = 0; i < HARK_WLANG_COUNT; i++)
		assert_int_equal(hark_wvocab_lang_id(hark_wvocab_lang_code(i)), i);
}

static void test_utf8(void **state)
{
	(void)state;
	const char *e = "a\xc3\xa9";     /* complete */
	assert_int_equal(hark_wvocab_utf8_complete(e, 3), 3);
	assert_int_equal(hark_wvocab_utf8_complete(e, 2), 1); /* lead byte held */
	assert_int_equal(hark_wvocab_utf8_complete("\xf0\x9f\x98", 3), 0);
	assert_int_equal(hark_wvocab_utf8_complete("\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(hark_wvocab_utf8_complete("ab\xe2\x80", 4), 2);
	assert_int_equal(hark_wvocab_utf8_complete("\x80\x80", 2), 2); /* stray continuation */

	/* feed an emoji and an e-acute split into every possible way */
	const char *txt = "x\xf0\x9f\x98\x80y\xc3\xa9z";
	size_t tl = strlen(txt);
	for (size_t cut1 = 0; cut1 <= tl; cut1++) {
		for (size_t cut2 = cut1; cut2 <= tl; cut2++) {
			struct hark_wutf8 c = {{0}, 0};
			char out[64];
			size_t len = 0;
			out[0] = '\0';
			assert_int_equal(hark_wutf8_feed(&c, txt, cut1, out, sizeof(out), &len), 0);
			assert_int_equal(hark_wvocab_utf8_complete(out, len), len);
			assert_int_equal(hark_wutf8_feed(&c, txt + cut1, cut2 - cut1, out, sizeof(out), &len), 0);
			assert_int_equal(hark_wvocab_utf8_complete(out, len), len);
			assert_int_equal(hark_wutf8_feed(&c, txt + cut2, tl - cut2, out, sizeof(out), &len), 0);
			assert_int_equal(hark_wutf8_flush(&c, out, sizeof(out), &len), 0);
			assert_int_equal(len, tl);
			assert_string_equal(out, txt);
		}
	}
	struct hark_wutf8 c = {{0}, 0};
	char small[4];
	size_t len = 0;
	assert_int_equal(hark_wutf8_feed(&c, "hello", 5, small, sizeof(small), &len), HARK_ERR_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_languages),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_specials_rendering),
		cmocka_unit_test(test_encode_vs_whisper_tokenize),
		cmocka_unit_test(test_pretokenisation),
		cmocka_unit_test(test_token_text_vs_goldens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
