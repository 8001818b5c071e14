/*
 * Numeric kernels of the Whisper engine: fp16 <-> fp32 conversion, ggml block
 * quantisation formats (q4_0, q4_1, q5_0, q5_1, q8_0 and the activation
 * formats q8_0 / q8_1), matrix products against model tensors of any type,
 * and row dequantisation. Every function rounds exactly where ggml's CPU
 * backend (whisper.cpp f0d2bfb, x86 AVX2/AVX-512/F16C build) rounds, so that
 * results differ from whisper.cpp only by the order of f32 summation:
 *
 *  - fp16 conversion is IEEE binary16 round-to-nearest-even (F16C
 *    _cvtss_sh(x, 0) / _mm256_cvtps_ph(x, 0)), overflow to +-inf, subnormals
 *    kept, NaN stays NaN (quiet). fp16 -> fp32 is exact.
 *  - Product with an F32 weight: plain f32 dot products of the f32
 *    activations (ggml_vec_dot_f32).
 *  - Product with an F16 weight: the activations are first rounded to fp16
 *    (ggml's vec_dot_type for F16 is F16), then multiplied with the fp16
 *    weights in f32 (each product is exact) and summed in f32.
 *  - Product with a q4_0 / q5_0 / q8_0 weight: each 32-float block of an
 *    activation row is quantised to q8_0 with ggml's AVX path of
 *    quantize_row_q8_0 (amax = max|x|; d = amax / 127.f stored as fp16;
 *    q = round-half-even(x * (amax != 0 ? 127.f / amax : 0)), saturated to
 *    int8), then every block contributes (float)(integer dot) * (fp16(dw) *
 *    fp16(da)) to an f32 sum.
 *  - Product with a q4_1 / q5_1 weight: activations quantised to q8_1 the same
 *    way, plus s = fp16(d * (float)sum(q)) with the unrounded d; each block
 *    contributes (float)idot * (dw * da) + mw * sa.
 *  - Summation order: by default exactly that of ggml's AVX2 vec_dot kernels
 *    (8 lanes of 4-product integer sums, acc = fma(dw*da, lanes, acc) per
 *    block, hsum_float_8, then + the sequential fma sum of mw*sa), so
 *    quantised products are bit-identical to ggml's; see also
 *    HARK_WK_Q4_0_REPACKED. F16/F32 products use OpenBLAS (n >= 6) or 8-lane
 *    dots, which differ from ggml's order by ~1e-7 relative.
 *
 * Tensor data lives in an unaligned mmap: kernels read it through memcpy /
 * unaligned vector loads only. Hot paths do not allocate: callers own a
 * struct hark_wk_scratch that grows (rarely) to the largest size needed.
 * Threading splits the output columns (rows of W) into fixed-size chunks that
 * do not depend on the thread count, so results are bit-identical for any
 * number of threads.
 */
#ifndef HARK_ASR_WHISPER_WKERNELS_H
#define HARK_ASR_WHISPER_WKERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "asr/whisper/wmodel.h"

struct hark_tpool;

/* ---------------------------------------------------------------- fp16 -- */

/* Exact fp16 -> fp32. */
float hark_wk_f16_to_f32(uint16_t h);
/* fp32 -> fp16, round to nearest even (bit-identical to F16C). */
uint16_t hark_wk_f32_to_f16(float f);
/* f32(f16(f)): the value ggml sees after casting f to fp16. */
float hark_wk_round_f16(float f);

/* Row conversions. src/dst may be unaligned (read/written bytewise-safe).
 * `src` of the f16 readers is n little-endian fp16 values. */
void hark_wk_f16_to_f32_row(const void *src, float *dst, int64_t n);
void hark_wk_f32_to_f16_row(const float *src, void *dst, int64_t n);
/* dst[i] = hark_wk_round_f16(src[i]); dst may equal src. */
void hark_wk_round_f16_row(const float *src, float *dst, int64_t n);

/* ------------------------------------------------------- type geometry -- */

/* Extra activation block formats (ggml type ids). */
#define HARK_WT_Q8_1 9

/* Elements per block (1 for F32/F16, 32 for the q formats); 0 if unknown. */
int hark_wk_type_block(int type);
/* Bytes per block (4, 2, 18, 20, 22, 24, 34, 36); 0 if unknown. */
size_t hark_wk_type_size(int type);
/* Bytes of a row of n elements (n must be a multiple of the block). 0 if
 * unknown type or n not a multiple of the block size. */
size_t hark_wk_row_size(int type, int64_t n);
/* "f32", "f16", "q4_0", ... or "?". */
const char *hark_wk_type_name(int type);

/* ------------------------------------------------------- quantisation -- */

/* Activation quantisers (ggml AVX path; see file comment). n % 32 == 0.
 * dst receives n/32 blocks (34 bytes for q8_0, 36 for q8_1). */
void hark_wk_quantize_q8_0(const float *x, void *dst, int64_t n);
void hark_wk_quantize_q8_1(const float *x, void *dst, int64_t n);

/* Weight quantisers: ggml's reference quantize_row_<type>_ref, which is what
 * whisper.cpp's `quantize` tool runs (type = HARK_WT_Q4_0 ... Q8_0; also
 * F16 and F32 for convenience). n % block == 0. Returns 0 or -1 (bad type). */
int hark_wk_quantize_weights(int type, const float *x, void *dst, int64_t n);

/* Dequantises n elements (n % block == 0) of any type starting at src. */
int hark_wk_dequantize(int type, const void *src, float *dst, int64_t n);

/* ggml_get_rows for one row: out[0..ne[0]) = W[row, :] as f32. row counts
 * rows of ne[0] elements over the whole tensor (ne[1]*ne[2] rows). Returns 0,
 * or -1 if row is out of range or the type is unknown. */
int hark_wk_get_row(const struct hark_wtensor *w, int64_t row, float *out);

/* --------------------------------------------------------------- scratch -- */

/* Growable per-caller scratch for the matmul kernels. Not thread-safe: one
 * per decoding state. Growth is capped at cap_bytes (0 = 1 GiB). */
struct hark_wk_scratch;
struct hark_wk_scratch *hark_wk_scratch_new(size_t cap_bytes);
void hark_wk_scratch_free(struct hark_wk_scratch *s);
/* Bytes currently held. */
size_t hark_wk_scratch_bytes(const struct hark_wk_scratch *s);

/* ---------------------------------------------------------------- matmul -- */

/*
 * General product against a row-major matrix W of `type` with `rows` rows of
 * k elements each, row r starting at (const char *)w + r * w_stride bytes
 * (w_stride >= hark_wk_row_size(type, k); W may be unaligned):
 *
 *     y[i * ldy + r] = sum_j x[i * ldx + j] * W[r][j]   for i < n, r < rows
 *
 * with the rounding of the file comment for `type` (for F16 the x values are
 * rounded to fp16 first; for q types x is quantised to q8_0/q8_1). This is
 * ggml_mul_mat(W, X) with W as src0. k must be a multiple of the block size
 * of type (32 for q types). ldx >= k, ldy >= rows. x and y must not overlap.
 * s may be NULL (then temporary memory is allocated for this call). pool may
 * be NULL (single thread).
 * Returns 0, HARK_ERR_INVALID_ARG (bad shapes/type) or HARK_ERR_NOMEM.
 */
int hark_wk_matmul_raw(int type, const void *w, int64_t k, int64_t rows, size_t w_stride,
		       const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy,
		       struct hark_wk_scratch *s, struct hark_tpool *pool);

/*
 * Flags for hark_wk_matmul_raw_ex.
 * HARK_WK_Q4_0_REPACKED: for a Q4_0 W, use the arithmetic of ggml's repacked
 * q4_0_8x8 gemm/gemv kernels, which whisper.cpp (ggml CPU "extra buffer
 * type", AVX2 builds) uses for every 2-D Q4_0 MUL_MAT weight with
 * ne[1] % 8 == 0, i.e. all linear layers but not the token embedding (that
 * one is a GET_ROWS tensor and goes through the standard vec_dot). The
 * activations are quantised to q8_0 exactly as for the standard path; each
 * output is acc = fma((float)isum_b, dw_b * da_b, acc) over the blocks b in
 * order, where isum_b is the full 32-product integer dot of block b (the
 * standard vec_dot instead keeps 8 lane partial sums and adds them at the
 * end). Ignored for other types.
 */
#define HARK_WK_Q4_0_REPACKED 1u

/* Same as hark_wk_matmul_raw with flags (see above). */
int hark_wk_matmul_raw_ex(int type, const void *w, int64_t k, int64_t rows, size_t w_stride,
			  const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy, unsigned flags,
			  struct hark_wk_scratch *s, struct hark_tpool *pool);

/* The flags whisper.cpp's behaviour implies for model tensor w:
 * HARK_WK_Q4_0_REPACKED for 2-D Q4_0 tensors with ne[1] % 8 == 0 other than
 * "decoder.token_embedding.weight"; else 0. */
unsigned hark_wk_tensor_flags(const struct hark_wtensor *w);

/*
 * y[n][rows] = x[n][k] . W^T for a model tensor W with ne[0] = k and
 * rows = ne[1] * ne[2] (a linear weight [in, out] gives y = x W^T + 0, i.e.
 * torch's F.linear without bias). Contiguous x (ldx = k) and y (ldy = rows).
 * Same rounding / errors as hark_wk_matmul_raw, with the flags of
 * hark_wk_tensor_flags(w) (so Q4_0 linear weights follow the repacked-kernel
 * arithmetic, as in whisper.cpp).
 */
int hark_wk_matmul(const struct hark_wtensor *w, const float *x, int64_t n, float *y,
		   struct hark_wk_scratch *s, struct hark_tpool *pool);

/*
 * Convenience for attention products against fp16 buffers (K/V caches, cast
 * tensors): identical to hark_wk_matmul_raw(HARK_WT_F16, a, k, rows,
 * lda * 2, b, ldb, n, c, ldc, s, pool), i.e.
 *     c[i * ldc + r] = sum_j f16(b[i * ldb + j]) * a[r * lda + j]
 * a holds fp16 bit patterns (lda in elements).
 */
int hark_wk_gemm_f16(const uint16_t *a, int64_t lda, int64_t rows, int64_t k,
		     const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
		     struct hark_wk_scratch *s, struct hark_tpool *pool);

/* Dot products used by the above (exposed for tests). f16 inputs are fp16
 * bit patterns (may be unaligned); blocks are the raw block bytes. */
float hark_wk_dot_f32(const float *a, const float *b, int64_t n);
float hark_wk_dot_f16(const void *a, const void *b, int64_t n);
/* Quantised weight row (type q4_0/q5_0/q8_0 with q8_0 activations, or
 * q4_1/q5_1 with q8_1 activations), n elements. */
float hark_wk_dot_q(int type, const void *w, const void *aq, int64_t n);

/* Which SIMD variants the dispatcher picked, e.g. "avx2+f16c+fma"; static. */
const char *hark_wk_cpu_features(void);

/* Testing/benchmark hook: on != 0 forces the portable C kernels (as the
 * environment variable HARK_WK_NOSIMD=1 does), 0 restores cpuid dispatch.
 * The quantised kernels give bit-identical results either way. Not
 * thread-safe: call while no kernel runs. */
void hark_wk_force_portable(int on);

#endif /* HARK_ASR_WHISPER_WKERNELS_H */
