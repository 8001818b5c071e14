/*
 * Whisper ggml model loader (contract in wmodel.h). The file is mapped
 * read-only; a cursor walks header, hparams, mel filters, vocabulary and
 * tensor records, checking every count, length and size against the bytes
 * that remain before reading them. Tensors are matched by name against the
 * list whisper.cpp expects for the hparams (shape and type checked), and the
 * special token ids are derived exactly as whisper.cpp's loader does.
 */
#include "asr/whisper/wmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asr/whisper/wkernels.h"
#include "hark/hark.h"
#include "util/errbuf.h"

#define WM_MAGIC 0x67676d6cu
#define WM_MAX_VOCAB 1000000
#define WM_MAX_CTX 65536
#define WM_MAX_STATE 16384
#define WM_MAX_HEAD 1024
#define WM_MAX_LAYER 256
#define WM_MAX_MELS 512
#define WM_NFFT 201

struct cursor {
	const unsigned char *p;
	size_t size;
	size_t off;
};

static int rd_i32(struct cursor *c, int32_t *v)
{
	if (c->size - c->off < 4)
		return -1;
	memcpy(v, c->p + c->off, 4);
	c->off += 4;
	return 0;
}

/* ------------------------------------------------- expected tensor list -- */

enum kind { K_F32ONLY, K_CONV, K_MATRIX };

struct expect {
	char name[64];
	int64_t ne[4];
	enum kind kind;
	const struct hark_wtensor **slot;
	int found;
};

struct explist {
	struct expect *e;
	int n, cap;
};

static void ex_add(struct explist *l, const struct hark_wtensor **slot, enum kind kind,
		   int64_t ne0, int64_t ne1, int64_t ne2, const char *fmt, ...)
{
	if (l->n >= l->cap)
		return; /* cannot happen: cap computed exactly */
	struct expect *e = &l->e[l->n++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->name, sizeof(e->name), fmt, ap);
	va_end(ap);
	e->ne[0] = ne0;
	e->ne[1] = ne1;
	e->ne[2] = ne2;
	e->ne[3] = 1;
	e->kind = kind;
	e->slot = slot;
	e->found = 0;
}

static int build_expect(struct hark_wmodel *m, struct explist *l)
{
	const struct hark_whparams *hp = &m->hp;
	const int64_t sa = hp->n_audio_state, st = hp->n_text_state;
	l->cap = 11 + 15 * hp->n_audio_layer + 24 * hp->n_text_layer;
	l->n = 0;
	l->e = calloc((size_t)l->cap, sizeof(*l->e));
	if (!l->e)
		return HARK_ERR_NOMEM;

	ex_add(l, &m->e_pe, K_F32ONLY, sa, hp->n_audio_ctx, 1, "encoder.positional_embedding");
	ex_add(l, &m->e_conv1_w, K_CONV, 3, hp->n_mels, sa, "encoder.conv1.weight");
	ex_add(l, &m->e_conv1_b, K_F32ONLY, 1, sa, 1, "encoder.conv1.bias");
	ex_add(l, &m->e_conv2_w, K_CONV, 3, sa, sa, "encoder.conv2.weight");
	ex_add(l, &m->e_conv2_b, K_F32ONLY, 1, sa, 1, "encoder.conv2.bias");
	for (int i = 0; i < hp->n_audio_layer; i++) {
		struct hark_wenc_layer *L = &m->enc[i];
		const char *p = "encoder.blocks";
		ex_add(l, &L->attn_q_w, K_MATRIX, sa, sa, 1, "%s.%d.attn.query.weight", p, i);
		ex_add(l, &L->attn_q_b, K_F32ONLY, sa, 1, 1, "%s.%d.attn.query.bias", p, i);
		ex_add(l, &L->attn_k_w, K_MATRIX, sa, sa, 1, "%s.%d.attn.key.weight", p, i);
		ex_add(l, &L->attn_v_w, K_MATRIX, sa, sa, 1, "%s.%d.attn.value.weight", p, i);
		ex_add(l, &L->attn_v_b, K_F32ONLY, sa, 1, 1, "%s.%d.attn.value.bias", p, i);
		ex_add(l, &L->attn_out_w, K_MATRIX, sa, sa, 1, "%s.%d.attn.out.weight", p, i);
		ex_add(l, &L->attn_out_b, K_F32ONLY, sa, 1, 1, "%s.%d.attn.out.bias", p, i);
		ex_add(l, &L->attn_ln_w, K_F32ONLY, sa, 1, 1, "%s.%d.attn_ln.weight", p, i);
		ex_add(l, &L->attn_ln_b, K_F32ONLY, sa, 1, 1, "%s.%d.attn_ln.bias", p, i);
		ex_add(l, &L->mlp_0_w, K_MATRIX, sa, 4 * sa, 1, "%s.%d.mlp.0.weight", p, i);
		ex_add(l, &L->mlp_0_b, K_F32ONLY, 4 * sa, 1, 1, "%s.%d.mlp.0.bias", p, i);
		ex_add(l, &L->mlp_2_w, K_MATRIX, 4 * sa, sa, 1, "%s.%d.mlp.2.weight", p, i);
		ex_add(l, &L->mlp_2_b, K_F32ONLY, sa, 1, 1, "%s.%d.mlp.2.bias", p, i);
		ex_add(l, &L->mlp_ln_w, K_F32ONLY, sa, 1, 1, "%s.%d.mlp_ln.weight", p, i);
		ex_add(l, &L->mlp_ln_b, K_F32ONLY, sa, 1, 1, "%s.%d.mlp_ln.bias", p, i);
	}
	ex_add(l, &m->e_ln_w, K_F32ONLY, sa, 1, 1, "encoder.ln_post.weight");
	ex_add(l, &m->e_ln_b, K_F32ONLY, sa, 1, 1, "encoder.ln_post.bias");
	ex_add(l, &m->d_pe, K_F32ONLY, st, hp->n_text_ctx, 1, "decoder.positional_embedding");
	ex_add(l, &m->d_te, K_MATRIX, st, hp->n_vocab, 1, "decoder.token_embedding.weight");
	for (int i = 0; i < hp->n_text_layer; i++) {
		struct hark_wdec_layer *L = &m->dec[i];
		const char *p = "decoder.blocks";
		ex_add(l, &L->attn_q_w, K_MATRIX, st, st, 1, "%s.%d.attn.query.weight", p, i);
		ex_add(l, &L->attn_q_b, K_F32ONLY, st, 1, 1, "%s.%d.attn.query.bias", p, i);
		ex_add(l, &L->attn_k_w, K_MATRIX, st, st, 1, "%s.%d.attn.key.weight", p, i);
		ex_add(l, &L->attn_v_w, K_MATRIX, st, st, 1, "%s.%d.attn.value.weight", p, i);
		ex_add(l, &L->attn_v_b, K_F32ONLY, st, 1, 1, "%s.%d.attn.value.bias", p, i);
		ex_add(l, &L->attn_out_w, K_MATRIX, st, st, 1, "%s.%d.attn.out.weight", p, i);
		ex_add(l, &L->attn_out_b, K_F32ONLY, st, 1, 1, "%s.%d.attn.out.bias", p, i);
		ex_add(l, &L->attn_ln_w, K_F32ONLY, st, 1, 1, "%s.%d.attn_ln.weight", p, i);
		ex_add(l, &L->attn_ln_b, K_F32ONLY, st, 1, 1, "%s.%d.attn_ln.bias", p, i);
		ex_add(l, &L->cross_q_w, K_MATRIX, st, st, 1, "%s.%d.cross_attn.query.weight", p, i);
		ex_add(l, &L->cross_q_b, K_F32ONLY, st, 1, 1, "%s.%d.cross_attn.query.bias", p, i);
		ex_add(l, &L->cross_k_w, K_MATRIX, st, st, 1, "%s.%d.cross_attn.key.weight", p, i);
		ex_add(l, &L->cross_v_w, K_MATRIX, st, st, 1, "%s.%d.cross_attn.value.weight", p, i);
		ex_add(l, &L->cross_v_b, K_F32ONLY, st, 1, 1, "%s.%d.cross_attn.value.bias", p, i);
		ex_add(l, &L->cross_out_w, K_MATRIX, st, st, 1, "%s.%d.cross_attn.out.weight", p, i);
		ex_add(l, &L->cross_out_b, K_F32ONLY, st, 1, 1, "%s.%d.cross_attn.out.bias", p, i);
		ex_add(l, &L->cross_ln_w, K_F32ONLY, st, 1, 1, "%s.%d.cross_attn_ln.weight", p, i);
		ex_add(l, &L->cross_ln_b, K_F32ONLY, st, 1, 1, "%s.%d.cross_attn_ln.bias", p, i);
		ex_add(l, &L->mlp_0_w, K_MATRIX, st, 4 * st, 1, "%s.%d.mlp.0.weight", p, i);
		ex_add(l, &L->mlp_0_b, K_F32ONLY, 4 * st, 1, 1, "%s.%d.mlp.0.bias", p, i);
		ex_add(l, &L->mlp_2_w, K_MATRIX, 4 * st, st, 1, "%s.%d.mlp.2.weight", p, i);
		ex_add(l, &L->mlp_2_b, K_F32ONLY, st, 1, 1, "%s.%d.mlp.2.bias", p, i);
		ex_add(l, &L->mlp_ln_w, K_F32ONLY, st, 1, 1, "%s.%d.mlp_ln.weight", p, i);
		ex_add(l, &L->mlp_ln_b, K_F32ONLY, st, 1, 1, "%s.%d.mlp_ln.bias", p, i);
	}
	ex_add(l, &m->d_ln_w, K_F32ONLY, st, 1, 1, "decoder.ln.weight");
	ex_add(l, &m->d_ln_b, K_F32ONLY, st, 1, 1, "decoder.ln.bias");
	return HARK_OK;
}

/* ------------------------------------------------------------- hparams -- */

static int check_range(const char *what, int32_t v, int32_t lo, int32_t hi, char *err, size_t errlen)
{
	if (v < lo || v > hi) {
		hark_errbuf_set(err, errlen, "invalid hparam %s = %d (expected %d..%d)", what, (int)v, (int)lo, (int)hi);
		return -1;
	}
	return 0;
}

static int parse_hparams(struct hark_wmodel *m, struct cursor *c, char *err, size_t errlen)
{
	int32_t v[11];
	for (int i = 0; i < 11; i++) {
		if (rd_i32(c, &v[i])) {
			hark_errbuf_set(err, errlen, "truncated header (hparams)");
			return HARK_ERR_MODEL;
		}
	}
	struct hark_whparams *hp = &m->hp;
	hp->n_vocab = v[0];
	hp->n_audio_ctx = v[1];
	hp->n_audio_state = v[2];
	hp->n_audio_head = v[3];
	hp->n_audio_layer = v[4];
	hp->n_text_ctx = v[5];
	hp->n_text_state = v[6];
	hp->n_text_head = v[7];
	hp->n_text_layer = v[8];
	hp->n_mels = v[9];
	hp->ftype = v[10];
	if (check_range("n_vocab", hp->n_vocab, 1, WM_MAX_VOCAB, err, errlen) ||
	    check_range("n_audio_ctx", hp->n_audio_ctx, 1, WM_MAX_CTX, err, errlen) ||
	    check_range("n_audio_state", hp->n_audio_state, 1, WM_MAX_STATE, err, errlen) ||
	    check_range("n_audio_head", hp->n_audio_head, 1, WM_MAX_HEAD, err, errlen) ||
	    check_range("n_audio_layer", hp->n_audio_layer, 1, WM_MAX_LAYER, err, errlen) ||
	    check_range("n_text_ctx", hp->n_text_ctx, 1, WM_MAX_CTX, err, errlen) ||
	    check_range("n_text_state", hp->n_text_state, 1, WM_MAX_STATE, err, errlen) ||
	    check_range("n_text_head", hp->n_text_head, 1, WM_MAX_HEAD, err, errlen) ||
	    check_range("n_text_layer", hp->n_text_layer, 1, WM_MAX_LAYER, err, errlen) ||
	    check_range("n_mels", hp->n_mels, 1, WM_MAX_MELS, err, errlen) ||
	    check_range("ftype", hp->ftype, 0, 1000000, err, errlen))
		return HARK_ERR_MODEL;
	if (hp->n_audio_state % hp->n_audio_head || hp->n_text_state % hp->n_text_head) {
		hark_errbuf_set(err, errlen, "invalid hparams: state %d/%d not divisible by heads %d/%d",
		       hp->n_audio_state, hp->n_text_state, hp->n_audio_head, hp->n_text_head);
		return HARK_ERR_MODEL;
	}
	if (hp->n_audio_state != hp->n_text_state) {
		hark_errbuf_set(err, errlen, "invalid hparams: n_audio_state %d != n_text_state %d",
		       hp->n_audio_state, hp->n_text_state);
		return HARK_ERR_MODEL;
	}
	int ft = hp->ftype % 1000;
	if (!(ft == 0 || ft == 1 || ft == 2 || ft == 3 || ft == 7 || ft == 8 || ft == 9)) {
		hark_errbuf_set(err, errlen, "unsupported ftype %d", hp->ftype);
		return HARK_ERR_MODEL;
	}
	return HARK_OK;
}

/* Special ids, exactly as whisper_model_load computes them. */
static int derive_specials(struct hark_wmodel *m, char *err, size_t errlen)
{
	struct hark_wspecial *sp = &m->sp;
	const int32_t nv = m->hp.n_vocab;
	m->is_multilingual = nv >= 51865;
	int n_langs = nv - 51765 - (m->is_multilingual ? 1 : 0);
	sp->eot = 50256;
	sp->sot = 50257;
	sp->translate = 50357;
	sp->transcribe = 50358;
	sp->sot_lm = 50359;
	sp->prev = 50360;
	sp->nosp = 50361;
	sp->not_ts = 50362;
	sp->beg = 50363;
	if (m->is_multilingual) {
		int dt = n_langs - 98;
		sp->eot++;
		sp->sot++;
		sp->translate += dt;
		sp->transcribe += dt;
		sp->sot_lm += dt;
		sp->prev += dt;
		sp->nosp += dt;
		sp->not_ts += dt;
		sp->beg += dt;
	}
	sp->lang_first = sp->sot + 1;
	if (sp->beg >= nv || n_langs < 1 || n_langs > 100) {
		hark_errbuf_set(err, errlen, "unsupported n_vocab %d (special tokens do not fit)", nv);
		return HARK_ERR_MODEL;
	}
	m->n_langs = n_langs;
	return HARK_OK;
}

/* ------------------------------------------------------------- tensors -- */

static int type_ok(int t)
{
	return t == HARK_WT_F32 || t == HARK_WT_F16 || t == HARK_WT_Q4_0 || t == HARK_WT_Q4_1 ||
	       t == HARK_WT_Q5_0 || t == HARK_WT_Q5_1 || t == HARK_WT_Q8_0;
}

static int parse_tensors(struct hark_wmodel *m, struct cursor *c, struct explist *ex,
			 char *err, size_t errlen)
{
	int n = 0;
	while (c->off < c->size) {
		size_t start = c->off;
		int32_t n_dims, name_len, ttype;
		if (rd_i32(c, &n_dims) || rd_i32(c, &name_len) || rd_i32(c, &ttype)) {
			hark_errbuf_set(err, errlen, "truncated tensor header at offset %zu", start);
			return HARK_ERR_MODEL;
		}
		if (n_dims < 1 || n_dims > 3) {
			hark_errbuf_set(err, errlen, "tensor at offset %zu: invalid n_dims %d", start, (int)n_dims);
			return HARK_ERR_MODEL;
		}
		if (name_len < 1 || name_len > 63) {
			hark_errbuf_set(err, errlen, "tensor at offset %zu: invalid name length %d", start, (int)name_len);
			return HARK_ERR_MODEL;
		}
		if (!type_ok(ttype)) {
			hark_errbuf_set(err, errlen, "tensor at offset %zu: unsupported type %d", start, (int)ttype);
			return HARK_ERR_MODEL;
		}
		int64_t ne[4] = {1, 1, 1, 1};
		int64_t nel = 1;
		for (int i = 0; i < n_dims; i++) {
			int32_t d;
			if (rd_i32(c, &d)) {
				hark_errbuf_set(err, errlen, "truncated tensor header at offset %zu", start);
				return HARK_ERR_MODEL;
			}
			if (d <= 0) {
				hark_errbuf_set(err, errlen, "tensor at offset %zu: invalid dimension %d", start, (int)d);
				return HARK_ERR_MODEL;
			}
			ne[i] = d;
			if (nel > ((int64_t)1 << 40) / d) {
				hark_errbuf_set(err, errlen, "tensor at offset %zu: element count overflows", start);
				return HARK_ERR_MODEL;
			}
			nel *= d;
		}
		if (c->size - c->off < (size_t)name_len) {
			hark_errbuf_set(err, errlen, "truncated tensor name at offset %zu", c->off);
			return HARK_ERR_MODEL;
		}
		char name[64];
		memcpy(name, c->p + c->off, (size_t)name_len);
		name[name_len] = '\0';
		c->off += (size_t)name_len;
		if (strlen(name) != (size_t)name_len) {
			hark_errbuf_set(err, errlen, "tensor at offset %zu: name contains NUL", start);
			return HARK_ERR_MODEL;
		}
		int bs = hark_wk_type_block(ttype);
		if (ne[0] % bs != 0) {
			hark_errbuf_set(err, errlen, "tensor '%s': ne[0] = %lld not a multiple of block %d",
			       name, (long long)ne[0], bs);
			return HARK_ERR_MODEL;
		}
		size_t rs = hark_wk_row_size(ttype, ne[0]);
		size_t nbytes = rs * (size_t)(nel / ne[0]);
		if (c->size - c->off < nbytes) {
			hark_errbuf_set(err, errlen, "tensor '%s': data truncated (%zu bytes needed, %zu left)",
			       name, nbytes, c->size - c->off);
			return HARK_ERR_MODEL;
		}
		struct expect *e = NULL;
		for (int i = 0; i < ex->n; i++) {
			if (strcmp(ex->e[i].name, name) == 0) {
				e = &ex->e[i];
				break;
			}
		}
		if (!e) {
			hark_errbuf_set(err, errlen, "unknown tensor '%s' in model file", name);
			return HARK_ERR_MODEL;
		}
		if (e->found) {
			hark_errbuf_set(err, errlen, "duplicate tensor '%s' in model file", name);
			return HARK_ERR_MODEL;
		}
		if (ne[0] != e->ne[0] || ne[1] != e->ne[1] || ne[2] != e->ne[2]) {
			hark_errbuf_set(err, errlen, "tensor '%s' has wrong shape: got [%lld, %lld, %lld], expected [%lld, %lld, %lld]",
			       name, (long long)ne[0], (long long)ne[1], (long long)ne[2],
			       (long long)e->ne[0], (long long)e->ne[1], (long long)e->ne[2]);
			return HARK_ERR_MODEL;
		}
		if ((e->kind == K_F32ONLY && ttype != HARK_WT_F32) ||
		    (e->kind == K_CONV && ttype != HARK_WT_F32 && ttype != HARK_WT_F16)) {
			hark_errbuf_set(err, errlen, "tensor '%s' has unsupported type %s", name, hark_wk_type_name(ttype));
			return HARK_ERR_MODEL;
		}
		if (n >= ex->n) { /* cannot happen: names are unique and known */
			hark_errbuf_set(err, errlen, "too many tensors");
			return HARK_ERR_MODEL;
		}
		struct hark_wtensor *t = &m->tensors[n++];
		memcpy(t->name, name, (size_t)name_len + 1);
		t->type = ttype;
		t->n_dims = n_dims;
		memcpy(t->ne, ne, sizeof(ne));
		t->data = c->p + c->off;
		t->nbytes = nbytes;
		c->off += nbytes;
		e->found = 1;
		*e->slot = t;
	}
	m->n_tensors = n;
	for (int i = 0; i < ex->n; i++) {
		if (!ex->e[i].found) {
			hark_errbuf_set(err, errlen, "missing tensor '%s' (%d of %d tensors present)", ex->e[i].name, n, ex->n);
			return HARK_ERR_MODEL;
		}
	}
	return HARK_OK;
}

/* ---------------------------------------------------------------- load -- */

static int parse(struct hark_wmodel *m, char *err, size_t errlen)
{
	struct cursor c = {m->map, m->map_size, 0};
	struct explist ex = {0};
	int rc;
	int32_t magic;
	if (rd_i32(&c, &magic) || (uint32_t)magic != WM_MAGIC) {
		hark_errbuf_set(err, errlen, "not a whisper.cpp ggml model (bad magic)");
		return HARK_ERR_MODEL;
	}
	rc = parse_hparams(m, &c, err, errlen);
	if (rc)
		return rc;
	rc = derive_specials(m, err, errlen);
	if (rc)
		return rc;

	/* mel filters */
	int32_t n_mel, n_fft;
	if (rd_i32(&c, &n_mel) || rd_i32(&c, &n_fft)) {
		hark_errbuf_set(err, errlen, "truncated header (mel filters)");
		return HARK_ERR_MODEL;
	}
	if (n_mel != m->hp.n_mels || n_fft != WM_NFFT) {
		hark_errbuf_set(err, errlen, "invalid mel filter block %d x %d (expected %d x %d)",
		       (int)n_mel, (int)n_fft, m->hp.n_mels, WM_NFFT);
		return HARK_ERR_MODEL;
	}
	size_t fbytes = (size_t)n_mel * (size_t)n_fft * 4;
	if (c.size - c.off < fbytes) {
		hark_errbuf_set(err, errlen, "truncated mel filters");
		return HARK_ERR_MODEL;
	}
	m->n_mel_filters = n_mel;
	m->n_fft = n_fft;
	m->filters = aligned_alloc(64, (fbytes + 63) & ~(size_t)63);
	if (!m->filters)
		return HARK_ERR_NOMEM;
	memcpy(m->filters, c.p + c.off, fbytes);
	c.off += fbytes;

	/* vocabulary */
	int32_t n_tokens;
	if (rd_i32(&c, &n_tokens)) {
		hark_errbuf_set(err, errlen, "truncated header (vocabulary size)");
		return HARK_ERR_MODEL;
	}
	if (n_tokens < 0 || n_tokens > m->hp.n_vocab || (size_t)n_tokens > (c.size - c.off) / 4) {
		hark_errbuf_set(err, errlen, "invalid vocabulary size %d (n_vocab %d)", (int)n_tokens, m->hp.n_vocab);
		return HARK_ERR_MODEL;
	}
	m->n_tokens = n_tokens;
	m->tok_bytes = calloc((size_t)n_tokens + 1, sizeof(*m->tok_bytes));
	m->tok_len = calloc((size_t)n_tokens + 1, sizeof(*m->tok_len));
	if (!m->tok_bytes || !m->tok_len)
		return HARK_ERR_NOMEM;
	for (int32_t i = 0; i < n_tokens; i++) {
		int32_t len;
		if (rd_i32(&c, &len)) {
			hark_errbuf_set(err, errlen, "truncated vocabulary at token %d", (int)i);
			return HARK_ERR_MODEL;
		}
		uint32_t ulen = (uint32_t)len;
		if (ulen > c.size - c.off || ulen > 4096) {
			hark_errbuf_set(err, errlen, "invalid length %u of token %d", ulen, (int)i);
			return HARK_ERR_MODEL;
		}
		m->tok_bytes[i] = (const char *)c.p + c.off;
		m->tok_len[i] = ulen;
		c.off += ulen;
	}

	/* tensors */
	m->enc = calloc((size_t)m->hp.n_audio_layer, sizeof(*m->enc));
	m->dec = calloc((size_t)m->hp.n_text_layer, sizeof(*m->dec));
	if (!m->enc || !m->dec)
		return HARK_ERR_NOMEM;
	rc = build_expect(m, &ex);
	if (rc)
		goto out;
	m->tensors = calloc((size_t)ex.n, sizeof(*m->tensors));
	if (!m->tensors) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	rc = parse_tensors(m, &c, &ex, err, errlen);
out:
	free(ex.e);
	return rc;
}

int hark_wmodel_load(const char *path, struct hark_wmodel **out, char *err, size_t errlen)
{
	struct hark_wmodel *m = NULL;
	int fd = -1;
	int rc = HARK_OK;
	struct stat st;

	if (err && errlen)
		err[0] = '\0';
	if (!path || !out) {
		hark_errbuf_set(err, errlen, "invalid argument");
		return HARK_ERR_INVALID_ARG;
	}
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(e));
		if (e == ENOENT || e == ENOTDIR)
			return HARK_ERR_NOT_FOUND;
		if (e == EACCES || e == EPERM)
			return HARK_ERR_PERMISSION;
		if (e == EISDIR)
			return HARK_ERR_IS_DIR;
		return HARK_ERR_IO;
	}
	if (fstat(fd, &st) != 0) {
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		hark_errbuf_set(err, errlen, "%s: is a directory", path);
		rc = HARK_ERR_IS_DIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		hark_errbuf_set(err, errlen, "%s: not a regular file", path);
		rc = HARK_ERR_MODEL;
		goto out;
	}
	if (st.st_size == 0) {
		hark_errbuf_set(err, errlen, "%s: empty file", path);
		rc = HARK_ERR_MODEL;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	m->path = strdup(path);
	if (!m->path) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	m->map_size = (size_t)st.st_size;
	m->map = mmap(NULL, m->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m->map == MAP_FAILED) {
		m->map = NULL;
		hark_errbuf_set(err, errlen, "%s: mmap: %s", path, strerror(errno));
		rc = errno == ENOMEM ? HARK_ERR_NOMEM : HARK_ERR_IO;
		goto out;
	}
	rc = parse(m, err, errlen);
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory while loading %s", path);
out:
	if (fd >= 0)
		close(fd);
	if (rc) {
		hark_wmodel_free(m);
		return rc;
	}
	*out = m;
	return HARK_OK;
}

void hark_wmodel_free(struct hark_wmodel *m)
{
	if (!m)
		return;
	if (m->map)
		munmap(m->map, m->map_size);
	free(m->tensors);
	free(m->dec);
	free(m->enc);
	free(m->tok_len);
	free(m->tok_bytes);
	free(m->filters);
	free(m->path);
	free(m);
}

const struct hark_wtensor *hark_wmodel_tensor(const struct hark_wmodel *m, const char *name)
{
	if (!m || !name)
		return NULL;
	for (int i = 0; i < m->n_tensors; i++)
		if (strcmp(m->tensors[i].name, name) == 0)
			return &m->tensors[i];
	return NULL;
}

const char *hark_wmodel_type_name(const struct hark_wmodel *m)
{
	if (!m)
		return "custom";
	switch (m->hp.n_audio_layer) {
	case 4: return "tiny";
	case 6: return "base";
	case 12: return "small";
	case 24: return "medium";
	case 32:
		if (m->hp.n_vocab == 51866)
			return m->hp.n_text_layer == 4 ? "large-v3-turbo" : "large-v3";
		return "large";
	default: return "custom";
	}
}
