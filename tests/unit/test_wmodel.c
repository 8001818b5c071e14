/*
 * Unit tests for the Whisper model loader (src/asr/whisper/wmodel): every
 * shared micro model loads with the hparams, tensor counts, tensor types and
 * special ids documented in whisper/COMMANDS.md and the logits sidecars; bad
 * and hostile files (missing, directory, empty, wrong magic, truncated at
 * many offsets, absurd counts and lengths, overflowing shapes, unknown types
 * and names, trailing garbage) fail cleanly with the right error. Also the
 * model tooling of wmodels: Slaney mel filters bit-identical to the real
 * filter blocks, synthesised models that load with the documented layout
 * and weight statistics, the catalogue, and model search / default choice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "asr/whisper/wkernels.h"
#include "asr/whisper/wmodel.h"
#include "asr/whisper/wmodels.h"
#include "hark/hark.h"

#include "wd_util.h"

static const char *shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");
	return s ? s : "../shared";
}

static void model_path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/whisper/models/%s.bin", shared_dir(), name);
}

/* ---------------------------------------------------------- good models -- */

struct expect_model {
	const char *name;
	int n_vocab, n_mels, ftype, n_text_layer, n_tensors;
	int wtype;      /* type of the linear weights */
	int n_f32, n_conv_f16;
};

static const struct expect_model good[] = {
	{"micro-en", 51864, 80, 1, 2, 89, HARK_WT_F16, 54, 2},
	{"micro-en-f32", 51864, 80, 0, 2, 89, HARK_WT_F32, 89, 0},
	{"micro-en-q8_0", 51864, 80, 2007, 2, 89, HARK_WT_Q8_0, 54, 2},
	{"micro-en-q5_0", 51864, 80, 2008, 2, 89, HARK_WT_Q5_0, 54, 2},
	{"micro-en-q5_1", 51864, 80, 2009, 2, 89, HARK_WT_Q5_1, 54, 2},
	{"micro-en-q4_0", 51864, 80, 2002, 2, 89, HARK_WT_Q4_0, 54, 2},
	{"micro-en3", 51864, 80, 1, 3, 113, HARK_WT_F16, 68, 2},
	{"micro-en3-q8_0", 51864, 80, 2007, 3, 113, HARK_WT_Q8_0, 68, 2},
	{"micro-ml128", 51866, 128, 1, 2, 89, HARK_WT_F16, 54, 2},
};

static int json_int(const char *s, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(s, pat);
	assert_non_null(p);
	return atoi(p + strlen(pat));
}

static void test_load_shared_models(void **state)
{
	(void)state;
	char path[1024], err[256];
	model_path(path, sizeof(path), "micro-en");
	if (access(path, R_OK) != 0) {
		skip();
		return;
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const struct expect_model *e = &good[i];
		struct hark_wmodel *m = NULL;
		model_path(path, sizeof(path), e->name);
		int rc = hark_wmodel_load(path, &m, err, sizeof(err));
		if (rc)
			print_error("%s: %s\n", e->name, err);
		assert_int_equal(rc, HARK_OK);
		const struct hark_whparams *hp = &m->hp;
		assert_int_equal(hp->n_vocab, e->n_vocab);
		assert_int_equal(hp->n_audio_ctx, 1500);
		assert_int_equal(hp->n_text_ctx, 448);
		assert_int_equal(hp->n_audio_state, 64);
		assert_int_equal(hp->n_text_state, 64);
		assert_int_equal(hp->n_audio_head, 2);
		assert_int_equal(hp->n_text_head, 2);
		assert_int_equal(hp->n_audio_layer, 2);
		assert_int_equal(hp->n_text_layer, e->n_text_layer);
		assert_int_equal(hp->n_mels, e->n_mels);
		assert_int_equal(hp->ftype, e->ftype);
		assert_int_equal(m->n_tensors, e->n_tensors);
		assert_int_equal(m->n_mel_filters, e->n_mels);
		assert_int_equal(m->n_fft, 201);
		assert_int_equal(m->n_tokens, 50257);
		assert_int_equal(m->is_multilingual, e->n_vocab >= 51865);
		assert_int_equal(m->n_langs, e->n_vocab == 51866 ? 100 : 99);
		assert_string_equal(hark_wmodel_type_name(m), "custom");
		int n_f32 = 0, n_conv = 0;
		for (int t = 0; t < m->n_tensors; t++) {
			const struct hark_wtensor *w = &m->tensors[t];
			if (w->type == HARK_WT_F32)
				n_f32++;
			if (strstr(w->name, "conv") && strstr(w->name, "weight")) {
				n_conv++;
				assert_int_equal(w->type, e->ftype == 0 ? HARK_WT_F32 : HARK_WT_F16);
			}
			assert_int_equal(w->nbytes, hark_wk_row_size(w->type, w->ne[0]) * (size_t)(w->ne[1] * w->ne[2]));
		}
		assert_int_equal(n_f32, e->n_f32);
		assert_int_equal(n_conv, 2);
		/* typed views */
		assert_int_equal(m->d_te->type, e->wtype);
		assert_int_equal(m->d_te->ne[0], 64);
		assert_int_equal(m->d_te->ne[1], e->n_vocab);
		assert_int_equal(m->enc[1].mlp_0_w->type, e->wtype);
		assert_int_equal(m->enc[1].mlp_0_w->ne[1], 256);
		assert_int_equal(m->dec[e->n_text_layer - 1].cross_v_w->type, e->wtype);
		assert_int_equal(m->e_conv1_w->ne[1], e->n_mels);
		assert_int_equal(m->e_pe->type, HARK_WT_F32);
		assert_ptr_equal(hark_wmodel_tensor(m, "decoder.ln.bias"), m->d_ln_b);
		assert_null(hark_wmodel_tensor(m, "decoder.ln.nope"));
		/* the 80-mel filters are the real ones: first row peaks early */
		float fsum = 0;
		for (int k = 0; k < m->n_mel_filters * m->n_fft; k++)
			fsum += m->filters[k];
		assert_true(fsum > 0);
		/* the last vocabulary entry of .en files is <|endoftext|> */
		if (!m->is_multilingual) {
			assert_int_equal(m->tok_len[50256], 13);
			assert_memory_equal(m->tok_bytes[50256], "<|endoftext|>", 13);
		}
		/* special ids against the logits sidecar */
		char sc[1024];
		size_t sl;
		snprintf(sc, sizeof(sc), "%s/whisper/reference/%s/jfk.logits.json", shared_dir(), e->name);
		char *s = wd_slurp(sc, &sl);
		assert_non_null(s);
		s[sl] = '\0';
		const char *sp = strstr(s, "\"special_ids\"");
		assert_non_null(sp);
		assert_int_equal(m->sp.eot, json_int(sp, "eot"));
		assert_int_equal(m->sp.sot, json_int(sp, "sot"));
		assert_int_equal(m->sp.translate, json_int(sp, "translate"));
		assert_int_equal(m->sp.transcribe, json_int(sp, "transcribe"));
		assert_int_equal(m->sp.sot_lm, json_int(sp, "solm"));
		assert_int_equal(m->sp.prev, json_int(sp, "prev"));
		assert_int_equal(m->sp.nosp, json_int(sp, "nosp"));
		assert_int_equal(m->sp.not_ts, json_int(sp, "not"));
		assert_int_equal(m->sp.beg, json_int(sp, "beg"));
		assert_int_equal(m->sp.lang_first, json_int(sp, "lang_en"));
		free(s);
		hark_wmodel_free(m);
	}
}

/* ----------------------------------------------------------- bad files -- */

static char tmpdir[256];
static char tmpfile_path[300];

static int setup_tmp(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/hark-wmodel-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(tmpfile_path, sizeof(tmpfile_path), "%s/m.bin", tmpdir);
	return 0;
}

static int teardown_tmp(void **state)
{
	(void)state;
	unlink(tmpfile_path);
	rmdir(tmpdir);
	return 0;
}

static void write_file(const void *data, size_t n)
{
	FILE *f = fopen(tmpfile_path, "wb");
	assert_non_null(f);
	if (n)
		assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static int load_bytes(const void *data, size_t n, char *err, size_t errlen)
{
	struct hark_wmodel *m = NULL;
	write_file(data, n);
	int rc = hark_wmodel_load(tmpfile_path, &m, err, errlen);
	if (rc == HARK_OK) {
		assert_non_null(m);
		hark_wmodel_free(m);
	} else {
		assert_null(m);
		assert_true(strlen(err) > 0);
	}
	return rc;
}

static void test_missing_dir_empty(void **state)
{
	(void)state;
	struct hark_wmodel *m = (struct hark_wmodel *)1;
	char err[256];
	assert_int_equal(hark_wmodel_load("/nonexistent/dir/model.bin", &m, err, sizeof(err)), HARK_ERR_NOT_FOUND);
	assert_null(m);
	assert_int_equal(hark_wmodel_load(tmpdir, &m, err, sizeof(err)), HARK_ERR_IS_DIR);
	assert_int_equal(load_bytes("", 0, err, sizeof(err)), HARK_ERR_MODEL);
	assert_int_equal(load_bytes("lmgg", 4, err, sizeof(err)), HARK_ERR_MODEL);
	assert_int_equal(load_bytes("GGUF\3\0\0\0", 8, err, sizeof(err)), HARK_ERR_MODEL);
	assert_non_null(strstr(err, "magic"));
	assert_int_equal(hark_wmodel_load(NULL, &m, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	/* unreadable file (skipped when running as root) */
	write_file("x", 1);
	chmod(tmpfile_path, 0);
	if (geteuid() != 0)
		assert_int_equal(hark_wmodel_load(tmpfile_path, &m, err, sizeof(err)), HARK_ERR_PERMISSION);
	chmod(tmpfile_path, 0600);
	/* a NULL err buffer is allowed */
	assert_int_equal(hark_wmodel_load("/nonexistent", &m, NULL, 0), HARK_ERR_NOT_FOUND);
}

/* Offset of the first tensor record, computed independently. */
static size_t tensor_region(const unsigned char *d, size_t n)
{
	int32_t nmel, nfft, ntok;
	size_t off = 4 + 44;
	memcpy(&nmel, d + off, 4);
	memcpy(&nfft, d + off + 4, 4);
	off += 8 + (size_t)nmel * (size_t)nfft * 4;
	memcpy(&ntok, d + off, 4);
	off += 4;
	for (int i = 0; i < ntok; i++) {
		uint32_t l;
		memcpy(&l, d + off, 4);
		off += 4 + l;
	}
	assert_true(off < n);
	return off;
}

static void put32(unsigned char *p, int32_t v)
{
	memcpy(p, &v, 4);
}

static void test_truncated(void **state)
{
	(void)state;
	char path[1024], err[256];
	size_t n;
	model_path(path, sizeof(path), "micro-en-q5_1");
	unsigned char *d = (unsigned char *)wd_slurp(path, &n);
	if (!d) {
		skip();
		return;
	}
	size_t tr = tensor_region(d, n);
	/* the whole file loads */
	assert_int_equal(load_bytes(d, n, err, sizeof(err)), HARK_OK);
	/* every prefix length up to 64, then every ~1-4 KB through the header */
	int count = 0;
	size_t step = 1;
	for (size_t len = 1; len < tr + 64; len += step) {
		int rc = load_bytes(d, len, err, sizeof(err));
		if (rc != HARK_ERR_MODEL)
			print_error("prefix %zu: rc %d (%s)\n", len, rc, err);
		assert_int_equal(rc, HARK_ERR_MODEL);
		count++;
		step = len < 64 ? 1 : 1024 + (len * 2654435761u) % 3072;
	}
	/* random points of the tensor region, plus exact tensor boundaries */
	uint64_t x = 12345;
	for (int i = 0; i < 60; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		size_t len = tr + (size_t)((x >> 20) % (n - tr));
		int rc = load_bytes(d, len, err, sizeof(err));
		assert_int_equal(rc, HARK_ERR_MODEL);
		count++;
	}
	/* cut exactly after the first tensor: "missing tensor" naming the next */
	{
		int32_t nd, nl, tt, ne[3];
		memcpy(&nd, d + tr, 4);
		memcpy(&nl, d + tr + 4, 4);
		memcpy(&tt, d + tr + 8, 4);
		size_t ne_all = 1;
		for (int i = 0; i < nd; i++) {
			memcpy(&ne[i], d + tr + 12 + 4 * i, 4);
			ne_all *= (size_t)ne[i];
		}
		size_t end = tr + 12 + 4 * (size_t)nd + (size_t)nl + hark_wk_row_size(tt, ne[0]) * (ne_all / (size_t)ne[0]);
		assert_int_equal(load_bytes(d, end, err, sizeof(err)), HARK_ERR_MODEL);
		assert_non_null(strstr(err, "missing tensor 'encoder.conv1.weight'"));
	}
	/* trailing garbage */
	unsigned char *g = malloc(n + 16);
	memcpy(g, d, n);
	memset(g + n, 0x5a, 16);
	for (size_t extra = 1; extra <= 16; extra += 5)
		assert_int_equal(load_bytes(g, n + extra, err, sizeof(err)), HARK_ERR_MODEL);
	free(g);
	assert_true(count > 100);
	free(d);
}

static void test_hostile_headers(void **state)
{
	(void)state;
	char path[1024], err[256];
	size_t n;
	model_path(path, sizeof(path), "micro-en");
	unsigned char *d = (unsigned char *)wd_slurp(path, &n);
	if (!d) {
		skip();
		return;
	}
	unsigned char *b = malloc(n + 4096);
	size_t tr = tensor_region(d, n);
	const size_t vocab_off = 4 + 44 + 8 + 80 * 201 * 4;

	/* hparams out of range */
	const struct { int idx; int32_t v; const char *msg; } hp[] = {
		{0, 2000000000, "n_vocab"}, {0, 0, "n_vocab"}, {0, -5, "n_vocab"},
		{0, 1000, "n_vocab"},       {1, 0, "n_audio_ctx"}, {2, -64, "n_audio_state"},
		{3, 3, "divisible"},        {4, 100000, "n_audio_layer"}, {9, 0, "n_mels"},
		{9, 4096, "n_mels"},        {10, 5, "ftype"}, {10, 2010, "ftype"}, {6, 128, "n_text_state"},
	};
	for (size_t i = 0; i < sizeof(hp) / sizeof(hp[0]); i++) {
		memcpy(b, d, n);
		put32(b + 4 + 4 * hp[i].idx, hp[i].v);
		assert_int_equal(load_bytes(b, n, err, sizeof(err)), HARK_ERR_MODEL);
		if (!strstr(err, hp[i].msg))
			print_error("hparam %d=%d: '%s'\n", hp[i].idx, hp[i].v, err);
		assert_non_null(strstr(err, hp[i].msg));
	}
	/* mel filter block mismatch */
	memcpy(b, d, n);
	put32(b + 48, 81);
	assert_int_equal(load_bytes(b, n, err, sizeof(err)), HARK_ERR_MODEL);
	memcpy(b, d, n);
	put32(b + 52, 200);
	assert_int_equal(load_bytes(b, n, err, sizeof(err)), HARK_ERR_MODEL);
	/* vocabulary: huge / negative count, huge token length */
	const int32_t counts[] = {2000000000, -1, 51865};
	for (size_t i = 0; i < 3; i++) {
		memcpy(b, d, n);
		put32(b + vocab_off, counts[i]);
		assert_int_equal(load_bytes(b, n, err, sizeof(err)), HARK_ERR_MODEL);
	}
	const int32_t lens[] = {0x7fffffff, -1, (int32_t)n};
	for (size_t i = 0; i < 3; i++) {
		memcpy(b, d, n);
		put32(b + vocab_off + 4, lens[i]);
		assert_int_equal(load_bytes(b, n, err, sizeof(err)), HARK_ERR_MODEL);
	}
	/* tensor record fields: n_dims, name_len, ttype, ne */
	const struct { size_t off; int32_t v; const char *msg; } tf[] = {
		{0, 0, "n_dims"}, {0, 4, "n_dims"}, {0, -1, "n_dims"},
		{4, 0, "name length"}, {4, 64, "name length"}, {4, 0x7fffffff, "name length"}, {4, -3, "name length"},
		{8, 5, "type"}, {8, 99, "type"}, {8, -1, "type"}, {8, 10, "type"},
		{12, -64, "dimension"}, {12, 0, "dimension"}, {16, -1, "dimension"},
		{12, 0x7fffffff, "overflow"}, {12, 128, "shape"}, {16, 0x7fffffff, "truncated"},
		{8, HARK_WT_F16, "type"}, /* pos. embedding must be f32 */
	};
	for (size_t i = 0; i < sizeof(tf) / sizeof(tf[0]); i++) {
		memcpy(b, d, n);
		put32(b + tr + tf[i].off, tf[i].v);
		int rc = load_bytes(b, n, err, sizeof(err));
		assert_int_equal(rc, HARK_ERR_MODEL);
		if (!strstr(err, tf[i].msg))
			print_error("tensor field +%zu=%d: '%s'\n", tf[i].off, tf[i].v, err);
		assert_non_null(strstr(err, tf[i].msg));
	}
	/* three dims whose product overflows: rewrite the first record */
	{
		size_t o = 0;
		memcpy(b, d, tr);
		o = tr;
		put32(b + o, 3); put32(b + o + 4, 4); put32(b + o + 8, HARK_WT_F32);
		put32(b + o + 12, 0x7fffffff); put32(b + o + 16, 0x7fffffff); put32(b + o + 20, 0x7fffffff);
		memcpy(b + o + 24, "abcd", 4);
		assert_int_equal(load_bytes(b, o + 28 + 64, err, sizeof(err)), HARK_ERR_MODEL);
		assert_non_null(strstr(err, "overflow"));
		/* quantized type with ne[0] not a multiple of 32 */
		put32(b + o, 1); put32(b + o + 4, 4); put32(b + o + 8, HARK_WT_Q8_0);
		put32(b + o + 12, 33);
		memcpy(b + o + 16, "abcd", 4);
		assert_int_equal(load_bytes(b, o + 20 + 64, err, sizeof(err)), HARK_ERR_MODEL);
		assert_non_null(strstr(err, "multiple"));
		/* unknown tensor name */
		put32(b + o, 1); put32(b + o + 4, 4); put32(b + o + 8, HARK_WT_F32);
		put32(b + o + 12, 4);
		memcpy(b + o + 16, "abcd", 4);
		assert_int_equal(load_bytes(b, o + 20 + 16, err, sizeof(err)), HARK_ERR_MODEL);
		assert_non_null(strstr(err, "unknown tensor 'abcd'"));
		/* NUL inside the name */
		memcpy(b + o + 16, "ab\0d", 4);
		assert_int_equal(load_bytes(b, o + 20 + 16, err, sizeof(err)), HARK_ERR_MODEL);
	}
	/* wrong shape names the tensor: decoder.ln.bias is the last record, 64 f32 */
	{
		const char *nm = "decoder.ln.bias";
		size_t rec = n - 64 * 4 - strlen(nm) - 4 - 12;
		int32_t nd;
		memcpy(&nd, d + rec, 4);
		assert_int_equal(nd, 1);
		assert_memory_equal(d + rec + 16, nm, strlen(nm));
		memcpy(b, d, n);
		put32(b + rec + 12, 32);
		assert_int_equal(load_bytes(b, n - 128, err, sizeof(err)), HARK_ERR_MODEL);
		assert_non_null(strstr(err, "'decoder.ln.bias' has wrong shape"));
		/* duplicate: append a second copy of the last record */
		memcpy(b, d, n);
		memcpy(b + n, d + rec, n - rec);
		assert_int_equal(load_bytes(b, n + (n - rec), err, sizeof(err)), HARK_ERR_MODEL);
		assert_non_null(strstr(err, "duplicate tensor 'decoder.ln.bias'"));
	}
	free(b);
	free(d);
}

/* ------------------------------------------------------------- tooling -- */

static void test_mel_filters_match_real(void **state)
{
	(void)state;
	const char *names[] = {"micro-en", "micro-ml128"};
	for (int i = 0; i < 2; i++) {
		char path[1024], err[256];
		struct hark_wmodel *m = NULL;
		model_path(path, sizeof(path), names[i]);
		if (hark_wmodel_load(path, &m, err, sizeof(err)) != HARK_OK) {
			skip();
			return;
		}
		size_t n = (size_t)m->n_mel_filters * 201;
		float *f = malloc(n * sizeof(float));
		hark_wmodels_mel_filters(16000, 400, m->n_mel_filters, 8000.0, f);
		size_t diff = 0;
		for (size_t k = 0; k < n; k++)
			diff += f[k] != m->filters[k];
		if (diff)
			print_error("%s: %zu of %zu filter values differ\n", names[i], diff, n);
		assert_int_equal(diff, 0);
		free(f);
		hark_wmodel_free(m);
	}
}

static double tensor_stat(const struct hark_wtensor *t, double *mean)
{
	int64_t k = t->ne[0], rows = t->ne[1] * t->ne[2];
	float *row = malloc(sizeof(float) * (size_t)k);
	double s = 0, s2 = 0;
	for (int64_t r = 0; r < rows; r++) {
		assert_int_equal(hark_wk_get_row(t, r, row), 0);
		for (int64_t j = 0; j < k; j++) {
			s += row[j];
			s2 += (double)row[j] * row[j];
		}
	}
	free(row);
	double n = (double)(k * rows);
	*mean = s / n;
	return sqrt(s2 / n - (*mean) * (*mean));
}

static void test_synth_models(void **state)
{
	(void)state;
	const int ftypes[] = {HARK_WT_F16, HARK_WT_F32, HARK_WT_Q8_0, HARK_WT_Q5_0, HARK_WT_Q5_1, HARK_WT_Q4_0, HARK_WT_Q4_1};
	const int hdr[] = {1, 0, 2007, 2008, 2009, 2002, 2003};
	char err[256];
	for (size_t i = 0; i < sizeof(ftypes) / sizeof(ftypes[0]); i++) {
		struct hark_wmodels_synth_params p = {.like = i == 1 ? "micro" : "micro.en", .seed = 42, .ftype = ftypes[i]};
		assert_int_equal(hark_wmodels_synth(&p, tmpfile_path, err, sizeof(err)), HARK_OK);
		struct hark_wmodel *m = NULL;
		assert_int_equal(hark_wmodel_load(tmpfile_path, &m, err, sizeof(err)), HARK_OK);
		assert_int_equal(m->hp.ftype, hdr[i]);
		assert_int_equal(m->hp.n_vocab, i == 1 ? 51865 : 51864);
		assert_int_equal(m->n_tensors, 89);
		assert_int_equal(m->n_tokens, 50257);
		assert_int_equal(m->d_te->type, ftypes[i]);
		assert_int_equal(m->enc[0].attn_q_w->type, ftypes[i]);
		assert_int_equal(m->e_conv1_w->type, ftypes[i] == HARK_WT_F32 ? HARK_WT_F32 : HARK_WT_F16);
		assert_int_equal(m->e_conv1_b->type, HARK_WT_F32);
		assert_int_equal(m->e_pe->type, HARK_WT_F32);
		if (i == 1) /* multilingual: last vocabulary entry is empty */
			assert_int_equal(m->tok_len[50256], 0);
		else
			assert_memory_equal(m->tok_bytes[50256], "<|endoftext|>", 13);
		/* init statistics of COMMANDS.md section 4 */
		double mean, sd = tensor_stat(m->enc[1].mlp_2_w, &mean); /* fan_in 256 */
		assert_true(fabs(sd - 1.0 / 16) < 0.006 && fabs(mean) < 0.005);
		sd = tensor_stat(m->dec[0].mlp_ln_w, &mean);
		assert_true(fabs(mean - 1.0) < 0.03 && sd > 0.02 && sd < 0.09);
		sd = tensor_stat(m->d_te, &mean);
		assert_true(fabs(sd - 0.02) < 0.002);
		sd = tensor_stat(m->e_conv2_w, &mean); /* 1/sqrt(3*64) */
		assert_true(fabs(sd - 1.0 / sqrt(192.0)) < 0.01);
		/* sinusoidal encoder positions: row t, column j < 32 is sin(t * inv_j) */
		float row[64];
		assert_int_equal(hark_wk_get_row(m->e_pe, 7, row), 0);
		double inv3 = exp(-3.0 * log(10000.0) / 31.0);
		assert_true(fabs(row[3] - sin(7 * inv3)) < 1e-6 && fabs(row[35] - cos(7 * inv3)) < 1e-6);
		/* real mel filters */
		float f[80 * 201];
		hark_wmodels_mel_filters(16000, 400, 80, 8000.0, f);
		assert_memory_equal(f, m->filters, sizeof(f));
		hark_wmodel_free(m);
	}
	struct hark_wmodels_synth_params bad = {.like = "huge", .seed = 1, .ftype = HARK_WT_F16};
	assert_int_equal(hark_wmodels_synth(&bad, tmpfile_path, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	bad.like = "micro";
	bad.ftype = 5;
	assert_int_equal(hark_wmodels_synth(&bad, tmpfile_path, err, sizeof(err)), HARK_ERR_INVALID_ARG);
	unlink(tmpfile_path);
}

static void touch(const char *dir, const char *name)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
}

static void test_search_and_default(void **state)
{
	(void)state;
	char d1[300], d2[300], env[700], out[1200];
	snprintf(d1, sizeof(d1), "%s/a", tmpdir);
	snprintf(d2, sizeof(d2), "%s/b", tmpdir);
	mkdir(d1, 0755);
	mkdir(d2, 0755);
	snprintf(env, sizeof(env), "%s:%s", d1, d2);
	char *old_models = getenv("HARK_MODELS") ? strdup(getenv("HARK_MODELS")) : NULL;
	char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HARK_MODELS", env, 1);
	setenv("HOME", tmpdir, 1); /* ~/.cache/hark/models does not exist there */

	assert_int_equal(hark_wmodels_find_default(out, sizeof(out)), HARK_ERR_NOT_FOUND);
	touch(d2, "ggml-zzz-custom.bin");
	assert_int_equal(hark_wmodels_find_default(out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/b/ggml-zzz-custom.bin"));
	touch(d1, "ggml-tiny.bin");
	touch(d1, "ggml-medium.en.bin.part"); /* ignored */
	assert_int_equal(hark_wmodels_find_default(out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/a/ggml-tiny.bin"));
	touch(d2, "ggml-base.en-q5_1.bin");
	touch(d1, "ggml-small.en.bin");
	assert_int_equal(hark_wmodels_find_default(out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/b/ggml-base.en-q5_1.bin"));
	touch(d2, "ggml-base.en.bin");
	assert_int_equal(hark_wmodels_find_default(out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/b/ggml-base.en.bin"));

	/* resolve: name, file name, explicit path, directory, missing */
	assert_int_equal(hark_wmodels_resolve("tiny", out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/a/ggml-tiny.bin"));
	assert_int_equal(hark_wmodels_resolve("ggml-base.en-q5_1.bin", out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/b/ggml-base.en-q5_1.bin"));
	assert_int_equal(hark_wmodels_resolve("medium.en", out, sizeof(out)), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_wmodels_resolve("../etc/passwd", out, sizeof(out)), HARK_ERR_NOT_FOUND);
	assert_int_equal(hark_wmodels_resolve(d1, out, sizeof(out)), HARK_ERR_IS_DIR);
	char p[400];
	snprintf(p, sizeof(p), "%s/ggml-tiny.bin", d1);
	assert_int_equal(hark_wmodels_resolve(p, out, sizeof(out)), HARK_OK);
	assert_string_equal(out, p);
	assert_int_equal(hark_wmodels_resolve(p, out, 5), HARK_ERR_LIMIT);
	assert_int_equal(hark_wmodels_dir(out, sizeof(out)), HARK_OK);
	assert_string_equal(out, d1);
	struct hark_wmodels_local loc[8];
	size_t nl = 0;
	assert_int_equal(hark_wmodels_list_local(loc, 8, &nl), HARK_OK);
	assert_int_equal(nl, 5);
	unsetenv("HARK_MODELS");
	assert_int_equal(hark_wmodels_dir(out, sizeof(out)), HARK_OK);
	assert_non_null(strstr(out, "/.cache/hark/models"));

	if (old_models)
		setenv("HARK_MODELS", old_models, 1);
	if (old_home)
		setenv("HOME", old_home, 1);
	free(old_models);
	free(old_home);
	const char *rm[] = {"a/ggml-tiny.bin", "a/ggml-medium.en.bin.part", "a/ggml-small.en.bin", "b/ggml-zzz-custom.bin",
			    "b/ggml-base.en-q5_1.bin", "b/ggml-base.en.bin"};
	for (size_t i = 0; i < sizeof(rm) / sizeof(rm[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, rm[i]);
		unlink(p);
	}
	rmdir(d1);
	rmdir(d2);
}

static void test_catalog(void **state)
{
	(void)state;
	size_t n;
	const struct hark_wmodels_entry *c = hark_wmodels_catalog(&n);
	assert_true(n >= 30);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(c[i].sha256);
		assert_int_equal(strlen(c[i].sha256), 64);
		assert_true(c[i].size > 30000000);
		for (size_t j = i + 1; j < n; j++)
			assert_true(strcmp(c[i].name, c[j].name) != 0);
	}
	const struct hark_wmodels_entry *e = hark_wmodels_lookup("ggml-tiny.en.bin");
	assert_non_null(e);
	assert_string_equal(e->name, "tiny.en");
	assert_int_equal(e->size, 77704715);
	assert_non_null(hark_wmodels_lookup("large-v3-turbo"));
	assert_null(hark_wmodels_lookup("tiny.en/../x"));
	assert_null(hark_wmodels_lookup(""));
	assert_int_equal(hark_wmodels_ftype_from_name("q5_1"), HARK_WT_Q5_1);
	assert_int_equal(hark_wmodels_ftype_from_name("q3_k"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_shared_models),
		cmocka_unit_test(test_missing_dir_empty),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_mel_filters_match_real),
		cmocka_unit_test(test_synth_models),
		cmocka_unit_test(test_search_and_default),
		cmocka_unit_test(test_catalog),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
