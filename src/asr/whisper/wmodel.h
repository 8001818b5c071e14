/*
 * Whisper model: a read-only, mmap'd view of a whisper.cpp ggml model file
 * (magic "ggml", 11 int32 hparams, mel filters, vocabulary, then tensors in
 * ggml order). The loader validates every length and offset against the
 * file size before touching data, so truncated, corrupt or hostile files fail
 * cleanly. A loaded struct hark_wmodel is immutable and shared by every
 * decoding state; per-run buffers live elsewhere (see wstate/wdecode).
 */
#ifndef HARK_ASR_WHISPER_WMODEL_H
#define HARK_ASR_WHISPER_WMODEL_H

#include <stddef.h>
#include <stdint.h>

/* ggml tensor types used by whisper.cpp files (values as stored on disk). */
enum hark_wtype {
	HARK_WT_F32 = 0,
	HARK_WT_F16 = 1,
	HARK_WT_Q4_0 = 2,
	HARK_WT_Q4_1 = 3,
	HARK_WT_Q5_0 = 6,
	HARK_WT_Q5_1 = 7,
	HARK_WT_Q8_0 = 8,
};

struct hark_wtensor {
	char name[64];
	int type;             /* enum hark_wtype */
	int n_dims;           /* 1..3 */
	int64_t ne[4];        /* ggml order: ne[0] is the contiguous (fastest) dim; unused = 1 */
	const void *data;     /* points into the mapping; NOT aligned (see shared README) */
	size_t nbytes;
};

struct hark_whparams {
	int32_t n_vocab;
	int32_t n_audio_ctx;
	int32_t n_audio_state;
	int32_t n_audio_head;
	int32_t n_audio_layer;
	int32_t n_text_ctx;
	int32_t n_text_state;
	int32_t n_text_head;
	int32_t n_text_layer;
	int32_t n_mels;
	int32_t ftype;        /* as stored: 0 f32, 1 f16, or 1000*qnt_version + ggml ftype */
};

struct hark_wenc_layer {
	const struct hark_wtensor *attn_ln_w, *attn_ln_b;
	const struct hark_wtensor *attn_q_w, *attn_q_b, *attn_k_w, *attn_v_w, *attn_v_b;
	const struct hark_wtensor *attn_out_w, *attn_out_b;
	const struct hark_wtensor *mlp_ln_w, *mlp_ln_b;
	const struct hark_wtensor *mlp_0_w, *mlp_0_b, *mlp_2_w, *mlp_2_b;
};

struct hark_wdec_layer {
	const struct hark_wtensor *attn_ln_w, *attn_ln_b;
	const struct hark_wtensor *attn_q_w, *attn_q_b, *attn_k_w, *attn_v_w, *attn_v_b;
	const struct hark_wtensor *attn_out_w, *attn_out_b;
	const struct hark_wtensor *cross_ln_w, *cross_ln_b;
	const struct hark_wtensor *cross_q_w, *cross_q_b, *cross_k_w, *cross_v_w, *cross_v_b;
	const struct hark_wtensor *cross_out_w, *cross_out_b;
	const struct hark_wtensor *mlp_ln_w, *mlp_ln_b;
	const struct hark_wtensor *mlp_0_w, *mlp_0_b, *mlp_2_w, *mlp_2_b;
};

/* Special token ids, derived exactly as whisper.cpp derives them. */
struct hark_wspecial {
	int32_t eot, sot, sot_lm, prev, nosp, not_ts, beg;
	int32_t translate, transcribe;
	int32_t lang_first;   /* id of <|en|> (sot + 1) */
};

struct hark_wmodel {
	struct hark_whparams hp;
	int is_multilingual;
	int n_langs;                  /* 99 or 100 (v3) */
	int n_mel_filters;            /* == hp.n_mels */
	int n_fft;                    /* 201 */
	float *filters;               /* owned, aligned copy: [n_mel_filters][n_fft] */

	/* Vocabulary: n_tokens entries from the file (bytes, not NUL-terminated;
	 * tok_bytes[i] has tok_len[i] bytes). Ids >= n_tokens are specials. */
	int32_t n_tokens;
	const char **tok_bytes;
	uint32_t *tok_len;
	struct hark_wspecial sp;

	struct hark_wtensor *tensors; /* every tensor in file order */
	int n_tensors;

	const struct hark_wtensor *e_pe, *e_conv1_w, *e_conv1_b, *e_conv2_w, *e_conv2_b;
	const struct hark_wtensor *e_ln_w, *e_ln_b;
	struct hark_wenc_layer *enc;  /* [hp.n_audio_layer] */
	const struct hark_wtensor *d_pe, *d_te, *d_ln_w, *d_ln_b;
	struct hark_wdec_layer *dec;  /* [hp.n_text_layer] */

	char *path;
	void *map;                    /* file mapping */
	size_t map_size;
};

/*
 * Loads and validates the model at path. On success *out owns the mapping;
 * release with hark_wmodel_free(). Errors: HARK_ERR_NOT_FOUND,
 * HARK_ERR_PERMISSION, HARK_ERR_IS_DIR, HARK_ERR_MODEL (with the reason in
 * err, errlen bytes), HARK_ERR_NOMEM.
 */
int hark_wmodel_load(const char *path, struct hark_wmodel **out, char *err, size_t errlen);

void hark_wmodel_free(struct hark_wmodel *m);

/* Tensor by exact name, or NULL. */
const struct hark_wtensor *hark_wmodel_tensor(const struct hark_wmodel *m, const char *name);

/* Human-readable model size class ("tiny", "base", ..., "large-v3", or
 * "custom") from the hparams; static storage. */
const char *hark_wmodel_type_name(const struct hark_wmodel *m);

#endif /* HARK_ASR_WHISPER_WMODEL_H */
