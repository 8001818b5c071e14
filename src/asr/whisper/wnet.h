/*
 * Whisper network forward pass: the audio encoder (two conv1d + GELU,
 * positional embedding, pre-LayerNorm transformer blocks, ln_post), the
 * cross-attention K/V precomputation, and the text decoder (token +
 * positional embedding, causal self-attention over an fp16 KV cache,
 * cross-attention, MLP, final LayerNorm, tied output projection). Every
 * rounding point follows whisper.cpp's ggml graph (see docs/WHISPER.md):
 * im2col in fp16 (fp32 for an fp32 conv kernel), K/V cast to fp16, softmax
 * computed as ggml's soft_max_ext (scale, mask, ggml_v_expf in blocks of 16,
 * double sum), softmax output rounded to fp16 before the V product, GELU via
 * ggml's fp16 lookup table, LayerNorm as ggml_norm then mul then add.
 *
 * Matrix products with fp16 / fp32 weights use ggml's own summation order
 * on AVX-512 (tinyBLAS for batches of >= 2 rows when the shapes allow it,
 * ggml_vec_dot otherwise), so results are bit-identical to whisper.cpp's on
 * such CPUs; quantised weights go through wkernels.
 *
 * A struct hark_wnet is per decoding state: all buffers (encoder
 * activations, cross K/V, the shared self-attention cell cache) are
 * allocated at creation; encode/decode allocate nothing.
 */
#ifndef HARK_ASR_WHISPER_WNET_H
#define HARK_ASR_WHISPER_WNET_H

#include <stdint.h>

#include "asr/whisper/wmodel.h"

struct hark_wnet;
struct hark_tpool;

/*
 * Creates the buffers for model m. n_decoders (1..8) sizes the shared
 * self-attention cache exactly as whisper.cpp does (GGML_PAD(n_text_ctx,
 * 256) cells, times n_decoders + 2 when n_decoders > 1). pool (may be NULL)
 * is borrowed and used for every parallel loop. Returns HARK_ERR_NOMEM or
 * HARK_ERR_MODEL (missing tensors / bad shapes) with a message in err.
 */
int hark_wnet_new(const struct hark_wmodel *m, int n_decoders, struct hark_tpool *pool,
		  struct hark_wnet **out, char *err, size_t errlen);

void hark_wnet_free(struct hark_wnet *net);

/* Encoder input buffer, [n_mels][2 * n_audio_ctx] floats, to be filled by
 * the caller (hark_wmel_window) before hark_wnet_encode(). */
float *hark_wnet_mel_buffer(struct hark_wnet *net);

/* Runs the encoder on the mel buffer and precomputes cross-attention K/V
 * for every decoder layer. Returns 0 or an error code. */
int hark_wnet_encode(struct hark_wnet *net);

/*
 * Self-attention KV cache, managed like whisper.cpp's whisper_kv_cache:
 * cells hold one position's K/V and the set of sequence ids (0..15) that
 * see it. clear empties every cell; seq_cp adds dst to every cell of src
 * (and resets the search head); seq_rm removes seq from every cell, freeing
 * cells left without a sequence.
 */
void hark_wnet_kv_clear(struct hark_wnet *net);
void hark_wnet_kv_seq_cp(struct hark_wnet *net, int src, int dst);
void hark_wnet_kv_seq_rm(struct hark_wnet *net, int seq);

/*
 * Decodes a batch of n tokens: token[i] at position pos[i] of sequence
 * seq[i] (attending to the cells of that sequence at positions <= pos[i]),
 * storing their K/V in free cells. Writes raw logits: for every row into
 * logits[i * n_vocab] when all_rows, else only the last row into logits.
 * n must not exceed n_text_ctx. Returns 0, HARK_ERR_INVALID_ARG,
 * HARK_ERR_LIMIT (cache full) or an error code.
 */
int hark_wnet_decode(struct hark_wnet *net, const int32_t *tokens, const int *pos, const int *seq, int n,
		     float *logits, int all_rows);

/* Encoder output of the last encode, [n_audio_ctx][n_audio_state]. */
const float *hark_wnet_encoder_out(const struct hark_wnet *net);

#endif /* HARK_ASR_WHISPER_WNET_H */
