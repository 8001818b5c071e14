/*
 * Whisper encoder / decoder forward pass with whisper.cpp's rounding points
 * (see wnet.h and docs/WHISPER.md). fp16/fp32 products are computed here in
 * ggml_vec_dot's exact summation order; quantised products go through
 * wkernels (q8 activation rounding as ggml). The element-wise ops (norm,
 * GELU table, soft_max_ext with ggml_v_expf) reproduce ggml-cpu's float
 * arithmetic, with an AVX-512 path that uses the very same intrinsics as
 * ggml and a scalar path that emulates them with fmaf.
 */
#include "asr/whisper/wnet.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WN_X86 1
#endif

#include "asr/whisper/wkernels.h"
#include "hark/hark.h"
#include "util/tpool.h"

/* ------------------------------------------------------------ GELU table -- */

static uint16_t gelu_tab[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

#ifdef WN_X86
static void detect_avx512(void);
#endif

static void gelu_init(void)
{
#ifdef WN_X86
	detect_avx512();
#endif
	const float c_a = 0.044715f;
	const float s2pi = 0.79788456080286535587989211986876f;
	for (int i = 0; i < (1 << 16); i++) {
		const float x = hark_wk_f16_to_f32((uint16_t)i);
		/* ggml_gelu_f32, compiled by ggml with FMA contraction */
		const float inner = s2pi * x * fmaf(c_a * x, x, 1.0f);
		const float y = 0.5f * x * (1.0f + tanhf(inner));
		gelu_tab[i] = hark_wk_f32_to_f16(y);
	}
}

static void gelu_row(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		const float v = x[i];
		if (v <= -10.0f)
			x[i] = 0.0f;
		else if (v >= 10.0f)
			x[i] = v;
		else
			x[i] = hark_wk_f16_to_f32(gelu_tab[hark_wk_f32_to_f16(v)]);
	}
}

/* -------------------------------------------------------------- softmax -- */

/* ggml_v_expf emulated with scalar fmaf (bit-identical to the AVX-512 code
 * when fmaf is a correctly rounded fused multiply-add). */
static float v_expf_scalar(float x)
{
	const float r = 0x1.8p23f;
	const float z = fmaf(x, 0x1.715476p+0f, r);
	const float n = z - r;
	const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
	if (fabsf(n) > 192.0f)
		return n <= 0.0f ? 0.0f : INFINITY;
	const float u = b * b;
	const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
				  fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
			     u, fmaf(0x1.ffffecp-1f, b, 1.0f));
	return ldexpf(j, (int)n);
}

/* _mm512_reduce_add_ps's order (GCC): halves 256, 128, then pairs. */
static float reduce16(const float *v)
{
	float t[8], u[4];
	for (int i = 0; i < 8; i++)
		t[i] = v[i + 8] + v[i];
	for (int i = 0; i < 4; i++)
		u[i] = t[i + 4] + t[i];
	const float w0 = u[0] + u[2], w1 = u[1] + u[3];
	return w0 + w1;
}

static double softmax_exp_scalar(float *y, const float *x, int n, float max, int *done)
{
	double sum = 0.0;
	int i = 0;
	float tmp[16];
	for (; i + 15 < n; i += 16) {
		for (int k = 0; k < 16; k++)
			tmp[k] = y[i + k] = v_expf_scalar(x[i + k] - max);
		sum += (double)reduce16(tmp);
	}
	*done = i;
	return sum;
}

#ifdef WN_X86
__attribute__((target("avx512f,avx512dq"))) static double softmax_exp_avx512(float *y, const float *x,
									     int n, float max, int *done)
{
	double sum = 0.0;
	int i = 0;
	for (; i + 15 < n; i += 16) {
		const __m512 xx = _mm512_sub_ps(_mm512_loadu_ps(x + i), _mm512_set1_ps(max));
		const __m512 r = _mm512_set1_ps(0x1.8p23f);
		const __m512 z = _mm512_fmadd_ps(xx, _mm512_set1_ps(0x1.715476p+0f), r);
		const __m512 nn = _mm512_sub_ps(z, r);
		const __m512 b = _mm512_fnmadd_ps(nn, _mm512_set1_ps(0x1.7f7d1cp-20f),
						  _mm512_fnmadd_ps(nn, _mm512_set1_ps(0x1.62e4p-1f), xx));
		const __mmask16 d = _mm512_cmp_ps_mask(_mm512_abs_ps(nn), _mm512_set1_ps(192), _CMP_GT_OQ);
		const __m512 u = _mm512_mul_ps(b, b);
		const __m512 j = _mm512_fmadd_ps(
			_mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b,
							_mm512_set1_ps(0x1.573e2ep-5f)),
					u,
					_mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b,
							_mm512_set1_ps(0x1.fffdb6p-2f))),
			u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0F)));
		__m512 res = _mm512_scalef_ps(j, nn);
		if (!_mm512_kortestz(d, d)) {
			const __m512 zero = _mm512_setzero_ps();
			const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(nn, zero, _CMP_LE_OQ),
								_mm512_set1_ps(INFINITY), zero);
			res = _mm512_mask_blend_ps(d, res, alt);
		}
		_mm512_storeu_ps(y + i, res);
		sum += (double)_mm512_reduce_add_ps(res);
	}
	*done = i;
	return sum;
}

/* AVX-512 kernels when the CPU has them; HARK_WHISPER_SCALAR=1 forces the
 * portable emulation (same results, for testing it). Decided once, in
 * wnet_init (pthread_once, before any state exists). */
static int g_avx512;

static void detect_avx512(void)
{
	const char *e = getenv("HARK_WHISPER_SCALAR");
	g_avx512 = !(e && *e == '1') && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

static int have_avx512(void)
{
	return g_avx512;
}
#endif

/*
 * ggml_soft_max_ext on one row of n values in place: x = x * scale (masked
 * entries are already -inf), then exp(x - max) / sum with ggml's block
 * structure (blocks of 16 through ggml_v_expf, tail through expf, double
 * sum, multiply by (float)(1/sum)).
 */
static void softmax_row(float *x, int n, float scale)
{
	float max = -INFINITY;
	for (int i = 0; i < n; i++) {
		x[i] = x[i] * scale;
		if (x[i] > max)
			max = x[i];
	}
	int i = 0;
	double sum;
#ifdef WN_X86
	if (have_avx512())
		sum = softmax_exp_avx512(x, x, n, max, &i);
	else
#endif
		sum = softmax_exp_scalar(x, x, n, max, &i);
	for (; i < n; i++) {
		const float v = expf(x[i] - max);
		sum += (double)v;
		x[i] = v;
	}
	sum = 1.0 / sum;
	const float s = (float)sum;
	for (i = 0; i < n; i++)
		x[i] *= s;
}

/* ----------------------------------------------------------------- norm -- */

/* ggml_norm + ggml_mul(w) + ggml_add(b) on one row. */
static void layer_norm_row(const float *x, float *y, int n, const float *w, const float *b)
{
	double sum = 0.0;
	for (int i = 0; i < n; i++)
		sum += (double)x[i];
	const float mean = (float)(sum / n);
	double sum2 = 0.0;
	for (int i = 0; i < n; i++) {
		const float v = x[i] - mean;
		y[i] = v;
		sum2 += (double)(v * v);
	}
	const float variance = (float)(sum2 / n);
	const float scale = 1.0f / sqrtf(variance + 1e-5f);
	for (int i = 0; i < n; i++) {
		const float t = y[i] * scale;
		const float u = t * w[i];
		y[i] = u + b[i];
	}
}

/* ----------------------------------------------- ggml-order dot products -- */

/*
 * ggml-cpu (AVX-512 build) computes an fp16 x fp16 or f32 x f32 product in
 * one of two orders:
 *  - tinyBLAS (llamafile_sgemm), used when the batch has >= 2 columns, the
 *    row count is a multiple of 4 and k a multiple of 16: one 16-lane
 *    accumulator per output, acc = fma(a, b, acc) over k in blocks of 16,
 *    then _mm512_reduce_add_ps;
 *  - ggml_vec_dot_f16/f32 otherwise: four 16-lane accumulators over blocks
 *    of 64, folded (0+2, 1+3, then 0+1), reduced, then the leftovers added
 *    one by one (in double for f16, in float with contraction for f32).
 * These functions reproduce both exactly; the scalar versions emulate the
 * same lanes with fmaf for CPUs without AVX-512.
 */

/* whisper.cpp builds ggml without GGML_LLAMAFILE by default (its
 * GGML_LLAMAFILE_DEFAULT is OFF), so the reference never takes the tinyBLAS
 * path; kept selectable for builds that enable it. */
#ifndef WN_GGML_LLAMAFILE
#define WN_GGML_LLAMAFILE 0
#endif

static int use_tiny(int n_cols, int64_t m_rows, int64_t k)
{
	return WN_GGML_LLAMAFILE && n_cols >= 2 && m_rows % 4 == 0 && k % 16 == 0;
}

static inline float ld_f16(const void *p, int64_t i)
{
	uint16_t h;
	memcpy(&h, (const char *)p + 2 * i, 2);
	return hark_wk_f16_to_f32(h);
}

/* a: row of k weights (fp16 bits if a16, else f32; may be unaligned);
 * b: f32 values (already fp16-rounded for fp16 products). */
static float dot_tiny_scalar(const void *a, int a16, const float *b, int64_t k)
{
	float lane[16] = {0};
	for (int64_t l = 0; l < k; l += 16)
		for (int t = 0; t < 16; t++) {
			float av;
			if (a16)
				av = ld_f16(a, l + t);
			else
				memcpy(&av, (const char *)a + 4 * (l + t), 4);
			lane[t] = fmaf(av, b[l + t], lane[t]);
		}
	return reduce16(lane);
}

static float dot_vec_scalar(const void *a, int a16, const float *b, int64_t n)
{
	float acc[4][16];
	memset(acc, 0, sizeof(acc));
	const int64_t np = n & ~(int64_t)63;
	for (int64_t i = 0; i < np; i += 64)
		for (int j = 0; j < 4; j++)
			for (int t = 0; t < 16; t++) {
				const int64_t e = i + j * 16 + t;
				float av;
				if (a16)
					av = ld_f16(a, e);
				else
					memcpy(&av, (const char *)a + 4 * e, 4);
				acc[j][t] = fmaf(av, b[e], acc[j][t]);
			}
	for (int t = 0; t < 16; t++) {
		acc[0][t] = acc[0][t] + acc[2][t];
		acc[1][t] = acc[1][t] + acc[3][t];
	}
	for (int t = 0; t < 16; t++)
		acc[0][t] = acc[0][t] + acc[1][t];
	if (a16) {
		double sum = (double)reduce16(acc[0]);
		for (int64_t i = np; i < n; i++)
			sum += (double)(ld_f16(a, i) * b[i]);
		return (float)sum;
	}
	float sum = reduce16(acc[0]);
	int64_t i = np;
	for (; n - i >= 8; i += (n - i >= 16 ? 16 : 8)) {
		const int cnt = n - i >= 16 ? 16 : 8;
		float prod[16];
		for (int t = 0; t < cnt; t++) {
			float av;
			memcpy(&av, (const char *)a + 4 * (i + t), 4);
			prod[t] = av * b[i + t];
		}
		for (int t = 0; t < cnt; t++)
			sum += prod[t];
	}
	for (; i < n; i++) {
		float av;
		memcpy(&av, (const char *)a + 4 * i, 4);
		sum = fmaf(av, b[i], sum);
	}
	return sum;
}

#ifdef WN_X86
__attribute__((target("avx512f,fma"))) static inline __m512 ld16(const void *p, int a16)
{
	if (a16)
		return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
	return _mm512_loadu_ps((const float *)p);
}

/* 4 weight rows x 4 inputs, tinyBLAS order; c[j][i] = dot(a_i, b_j). */
__attribute__((target("avx512f,fma"))) static void tiny_4x4(const char *a, size_t a_stride, int a16, int na,
							  const float *b, int64_t ldb, int nb, int64_t k,
							  float c[4][4])
{
	__m512 acc[4][4];
	for (int j = 0; j < 4; j++)
		for (int i = 0; i < 4; i++)
			acc[j][i] = _mm512_setzero_ps();
	const size_t esz = a16 ? 2 : 4;
	for (int64_t l = 0; l < k; l += 16) {
		__m512 av[4], bv[4];
		for (int i = 0; i < na; i++)
			av[i] = ld16(a + (size_t)i * a_stride + (size_t)l * esz, a16);
		for (int j = 0; j < nb; j++)
			bv[j] = _mm512_loadu_ps(b + (size_t)j * ldb + l);
		for (int j = 0; j < nb; j++)
			for (int i = 0; i < na; i++)
				acc[j][i] = _mm512_fmadd_ps(av[i], bv[j], acc[j][i]);
	}
	for (int j = 0; j < nb; j++)
		for (int i = 0; i < na; i++)
			c[j][i] = _mm512_reduce_add_ps(acc[j][i]);
}

__attribute__((target("avx512f,fma"))) static float dot_vec_avx512_t(const void *a, int a16, const float *b,
								      int64_t n, int dbl_tail)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	const int64_t np = n & ~(int64_t)63;
	const size_t esz = a16 ? 2 : 4;
	const char *ap = a;
	for (int64_t i = 0; i < np; i += 64) {
		s0 = _mm512_fmadd_ps(ld16(ap + (size_t)(i + 0) * esz, a16), _mm512_loadu_ps(b + i + 0), s0);
		s1 = _mm512_fmadd_ps(ld16(ap + (size_t)(i + 16) * esz, a16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(ld16(ap + (size_t)(i + 32) * esz, a16), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(ld16(ap + (size_t)(i + 48) * esz, a16), _mm512_loadu_ps(b + i + 48), s3);
	}
	s0 = _mm512_add_ps(s0, s2);
	s1 = _mm512_add_ps(s1, s3);
	s0 = _mm512_add_ps(s0, s1);
	/* leftovers, in order: products computed 16 at a time, summed one by
	 * one (double for fp16 as ggml_vec_dot_f16, fused float for f32) */
	float prod[16], av16[16];
	if (dbl_tail) {
		double sum = (double)_mm512_reduce_add_ps(s0);
		for (int64_t i = np; i < n; i += 16) {
			const int cnt = n - i < 16 ? (int)(n - i) : 16;
			float tb[16] = {0};
			__m512 av;
			if (a16) {
				uint16_t ta[16] = {0};
				memcpy(ta, ap + 2 * i, 2 * (size_t)cnt);
				av = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)ta));
			} else {
				float ta[16] = {0};
				memcpy(ta, ap + 4 * i, 4 * (size_t)cnt);
				av = _mm512_loadu_ps(ta);
			}
			memcpy(tb, b + i, 4 * (size_t)cnt);
			_mm512_storeu_ps(prod, _mm512_mul_ps(av, _mm512_loadu_ps(tb)));
			for (int t = 0; t < cnt; t++)
				sum += (double)prod[t];
		}
		return (float)sum;
	}
	/* ggml's f32 leftover loop as GCC vectorised it: blocks of 16, then
	 * 8, of rounded products added in order, then fused scalar steps */
	float sum = _mm512_reduce_add_ps(s0);
	int64_t i = np;
	for (; n - i >= 8; i += (n - i >= 16 ? 16 : 8)) {
		const int cnt = n - i >= 16 ? 16 : 8;
		memcpy(av16, ap + 4 * i, 4 * (size_t)cnt);
		for (int t = 0; t < cnt; t++)
			prod[t] = av16[t] * b[i + t];
		for (int t = 0; t < cnt; t++)
			sum += prod[t];
	}
	for (; i < n; i++) {
		float av;
		memcpy(&av, ap + 4 * i, 4);
		sum = __builtin_fmaf(av, b[i], sum);
	}
	return sum;
}
#endif

#ifdef WN_X86
/*
 * ggml_vec_dot_f16 for k < 64 (everything is "leftover": float products
 * added one by one in double) for 8 weight rows at once: lane j of the
 * double accumulator follows row r0 + j's own sequential order, so each
 * result is bit-identical to the one-row version.
 */
__attribute__((target("avx512f,fma"))) static void dot_short8_f16(const char *a, size_t a_stride, int nr,
								  const float *b, int64_t ldb, int n_in, int64_t k,
								  float *c, int64_t ldc)
{
	float at[64][8];
	for (int j = 0; j < 8; j++)
		for (int64_t t = 0; t < k; t++)
			at[t][j] = j < nr ? ld_f16(a + (size_t)j * a_stride, t) : 0.0f;
	for (int i = 0; i < n_in; i++) {
		const float *bi = b + (size_t)i * ldb;
		__m512d acc = _mm512_setzero_pd();
		for (int64_t t = 0; t < k; t++) {
			const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(at[t]), _mm256_set1_ps(bi[t]));
			acc = _mm512_add_pd(acc, _mm512_cvtps_pd(p));
		}
		double out[8];
		_mm512_storeu_pd(out, acc);
		for (int j = 0; j < nr; j++)
			c[(size_t)i * ldc + j] = (float)out[j];
	}
}
#endif

#ifdef WN_X86
static float dot_vec_avx512(const void *a, int a16, const float *b, int64_t n)
{
	return dot_vec_avx512_t(a, a16, b, n, a16);
}

/*
 * Four ggml_vec_dot_f16 results at once (2 weight rows x 2 inputs) from
 * weight rows already widened to f32: every pair keeps its own four 16-lane
 * accumulators, fold and ordered double tail, so results equal the
 * one-at-a-time kernel bit for bit; only the loads are shared.
 */
__attribute__((target("avx512f,fma"))) static float fold_tail(__m512 q0, __m512 q1, __m512 q2, __m512 q3,
								 const float *a, const float *b, int64_t np, int64_t n)
{
	q0 = _mm512_add_ps(q0, q2);
	q1 = _mm512_add_ps(q1, q3);
	q0 = _mm512_add_ps(q0, q1);
	double sum = (double)_mm512_reduce_add_ps(q0);
	for (int64_t e = np; e < n; e++) {
		const float p = a[e] * b[e];
		sum += (double)p;
	}
	return (float)sum;
}

__attribute__((target("avx512f,fma"))) static void dot_vec_2x2(const float *a0, const float *a1, const float *b0,
							       const float *b1, int64_t n, float out[2][2])
{
	/* named accumulators so they stay in registers: sRI_j */
	__m512 s00_0 = _mm512_setzero_ps(), s00_1 = s00_0, s00_2 = s00_0, s00_3 = s00_0;
	__m512 s01_0 = s00_0, s01_1 = s00_0, s01_2 = s00_0, s01_3 = s00_0;
	__m512 s10_0 = s00_0, s10_1 = s00_0, s10_2 = s00_0, s10_3 = s00_0;
	__m512 s11_0 = s00_0, s11_1 = s00_0, s11_2 = s00_0, s11_3 = s00_0;
	const int64_t np = n & ~(int64_t)63;
#define WN_STEP(j)                                                                 \
	do {                                                                       \
		const __m512 x0 = _mm512_loadu_ps(a0 + e + 16 * (j));              \
		const __m512 x1 = _mm512_loadu_ps(a1 + e + 16 * (j));              \
		const __m512 y0 = _mm512_loadu_ps(b0 + e + 16 * (j));              \
		const __m512 y1 = _mm512_loadu_ps(b1 + e + 16 * (j));              \
		s00_##j = _mm512_fmadd_ps(x0, y0, s00_##j);                        \
		s01_##j = _mm512_fmadd_ps(x0, y1, s01_##j);                        \
		s10_##j = _mm512_fmadd_ps(x1, y0, s10_##j);                        \
		s11_##j = _mm512_fmadd_ps(x1, y1, s11_##j);                        \
	} while (0)
	for (int64_t e = 0; e < np; e += 64) {
		WN_STEP(0);
		WN_STEP(1);
		WN_STEP(2);
		WN_STEP(3);
	}
#undef WN_STEP
	out[0][0] = fold_tail(s00_0, s00_1, s00_2, s00_3, a0, b0, np, n);
	out[0][1] = fold_tail(s01_0, s01_1, s01_2, s01_3, a0, b1, np, n);
	out[1][0] = fold_tail(s10_0, s10_1, s10_2, s10_3, a1, b0, np, n);
	out[1][1] = fold_tail(s11_0, s11_1, s11_2, s11_3, a1, b1, np, n);
}
#endif

/* One product job: C[i * ldc + r] = dot(A row r, B row i) for r in
 * [0, m_rows), i in [0, n); the order follows rule (tiny or vec). */
struct mm_job {
	float **wbuf;    /* per-thread scratch for widened fp16 rows, or NULL */
	const char *a;
	size_t a_stride;
	int a16;
	const float *b;
	int64_t ldb, k;
	float *c;
	int64_t ldc, m_rows;
	int n, tiny;
};

#define MM_ROWS_PER_TASK 32

static void mm_task_ex(void *ctx, int task, int n_tasks, int thread)
{
	(void)n_tasks;
	const struct mm_job *J = ctx;
	const int64_t r0 = (int64_t)task * MM_ROWS_PER_TASK;
	int64_t r1 = r0 + MM_ROWS_PER_TASK;
	if (r1 > J->m_rows)
		r1 = J->m_rows;
#ifdef WN_X86
	if (have_avx512()) {
		if (J->tiny) {
			for (int64_t r = r0; r < r1; r += 4) {
				const int na = r1 - r < 4 ? (int)(r1 - r) : 4;
				for (int i = 0; i < J->n; i += 4) {
					const int nb = J->n - i < 4 ? J->n - i : 4;
					float c[4][4];
					tiny_4x4(J->a + (size_t)r * J->a_stride, J->a_stride, J->a16, na,
						 J->b + (size_t)i * J->ldb, J->ldb, nb, J->k, c);
					for (int jj = 0; jj < nb; jj++)
						for (int ii = 0; ii < na; ii++)
							J->c[(size_t)(i + jj) * J->ldc + r + ii] = c[jj][ii];
				}
			}
		} else if (J->a16 && J->k < 64) {
			for (int64_t r = r0; r < r1; r += 8) {
				const int nr = r1 - r < 8 ? (int)(r1 - r) : 8;
				dot_short8_f16(J->a + (size_t)r * J->a_stride, J->a_stride, nr, J->b, J->ldb, J->n, J->k,
					       J->c + r, J->ldc);
			}
		} else if (J->a16 && J->wbuf && J->n >= 4) {
			/* widen the task's fp16 rows once, then 2x2 blocks */
			float *wb = J->wbuf[thread];
			for (int64_t r = r0; r < r1; r++)
				hark_wk_f16_to_f32_row(J->a + (size_t)r * J->a_stride, wb + (size_t)(r - r0) * J->k, J->k);
			for (int i0 = 0; i0 < J->n; i0 += 16) {
				const int i1 = J->n - i0 < 16 ? J->n : i0 + 16;
				int64_t r = r0;
				for (; r + 1 < r1; r += 2) {
					const float *a0 = wb + (size_t)(r - r0) * J->k, *a1 = a0 + J->k;
					int i = i0;
					for (; i + 1 < i1; i += 2) {
						float o[2][2];
						dot_vec_2x2(a0, a1, J->b + (size_t)i * J->ldb, J->b + (size_t)(i + 1) * J->ldb,
							    J->k, o);
						J->c[(size_t)i * J->ldc + r] = o[0][0];
						J->c[(size_t)(i + 1) * J->ldc + r] = o[0][1];
						J->c[(size_t)i * J->ldc + r + 1] = o[1][0];
						J->c[(size_t)(i + 1) * J->ldc + r + 1] = o[1][1];
					}
					for (; i < i1; i++) {
						J->c[(size_t)i * J->ldc + r] =
							dot_vec_avx512_t(a0, 0, J->b + (size_t)i * J->ldb, J->k, 1);
						J->c[(size_t)i * J->ldc + r + 1] =
							dot_vec_avx512_t(a1, 0, J->b + (size_t)i * J->ldb, J->k, 1);
					}
				}
				for (; r < r1; r++)
					for (int i = i0; i < i1; i++)
						J->c[(size_t)i * J->ldc + r] = dot_vec_avx512_t(
							wb + (size_t)(r - r0) * J->k, 0, J->b + (size_t)i * J->ldb, J->k, 1);
			}
		} else {
			/* blocks of 16 inputs x the task's rows stay in cache */
			for (int i0 = 0; i0 < J->n; i0 += 16) {
				const int i1 = J->n - i0 < 16 ? J->n : i0 + 16;
				for (int64_t r = r0; r < r1; r++)
					for (int i = i0; i < i1; i++)
						J->c[(size_t)i * J->ldc + r] =
							dot_vec_avx512(J->a + (size_t)r * J->a_stride, J->a16,
								       J->b + (size_t)i * J->ldb, J->k);
			}
		}
		return;
	}
#endif
	for (int64_t r = r0; r < r1; r++)
		for (int i = 0; i < J->n; i++) {
			const void *ar = J->a + (size_t)r * J->a_stride;
			const float *bi = J->b + (size_t)i * J->ldb;
			J->c[(size_t)i * J->ldc + r] =
				J->tiny ? dot_tiny_scalar(ar, J->a16, bi, J->k) : dot_vec_scalar(ar, J->a16, bi, J->k);
		}
}

static void run_mm(struct hark_tpool *pool, struct mm_job *J)
{
	const int n_tasks = (int)((J->m_rows + MM_ROWS_PER_TASK - 1) / MM_ROWS_PER_TASK);
	if (!pool || n_tasks <= 1 || (int64_t)J->n * J->m_rows * J->k < 524288) {
		for (int t = 0; t < n_tasks; t++)
			mm_task_ex(J, t, n_tasks, 0);
	} else {
		hark_tpool_run_ex(pool, mm_task_ex, J, n_tasks);
	}
}

/* ----------------------------------------------------------- net struct -- */

struct enc_layer {
	const float *ln1_w, *ln1_b, *q_b, *v_b, *o_b, *ln2_w, *ln2_b, *m0_b, *m2_b;
};

struct dec_layer {
	const float *ln1_w, *ln1_b, *q_b, *v_b, *o_b;
	const float *lnc_w, *lnc_b, *cq_b, *cv_b, *co_b;
	const float *ln2_w, *ln2_b, *m0_b, *m2_b;
};

#define MAX_BATCH_DEC 8

struct hark_wnet {
	const struct hark_wmodel *m;
	struct hark_tpool *pool;
	struct hark_wk_scratch *ws;
	int n_mels, actx, as, ahead, alayer;
	int tctx, ts, thead, tlayer, n_vocab;

	float *arena;
	size_t arena_used, arena_cap;
	struct enc_layer *el;
	struct dec_layer *dl;
	const float *conv1_b, *conv2_b, *eln_w, *eln_b, *dln_w, *dln_b;

	float *xr;       /* fp16-rounded activations for products, [max rows][max k] */
	size_t xr_cap;
	float **wbuf;    /* per pool thread: MM_ROWS_PER_TASK widened weight rows */
	int n_wbuf;
	int64_t wbuf_k;  /* max row length wbuf holds */

	/* encoder */
	float *mel;      /* [n_mels][2 actx] */
	float *cols;     /* im2col [2 actx][3 max(n_mels, as)] */
	float *h1;       /* conv1 out [2 actx][as] */
	float *x, *cur, *q, *k, *v, *att; /* [actx][as] */
	float *mlp;      /* [actx][4 as] */
	uint16_t *k16;   /* [actx][as] */
	uint16_t *v16t;  /* [as][actx] */
	float *scores;   /* [actx][actx] */

	uint16_t *ck;    /* [tlayer][actx][ts] */
	uint16_t *cv;    /* [tlayer][ts][actx] */

	/* self-attention cell cache (whisper_kv_cache) */
	int kv_size, kv_head;
	int *cell_pos;
	uint32_t *cell_seq;
	uint16_t *sk;    /* [tlayer][kv_size][ts] */
	uint16_t *sv;    /* [tlayer][ts][kv_size] */

	int max_rows;    /* decoder batch capacity (n_text_ctx) */
	float *dx, *dcur, *dq, *dk, *dv, *datt; /* [max_rows][ts] */
	float *dmlp;     /* [max_rows][4 ts] */
	float *dscores;  /* decoder scores */
	size_t dscores_cap;
	float *dlast;    /* [max_rows][ts] normed rows for the logits */
	int *slot;       /* cell of each batch row */
};

static const float *arena_vec(struct hark_wnet *net, const struct hark_wtensor *t, int64_t n, int *bad)
{
	if (!t || t->ne[0] * t->ne[1] * t->ne[2] != n || net->arena_used + (size_t)n > net->arena_cap) {
		*bad = 1;
		return NULL;
	}
	float *dst = net->arena + net->arena_used;
	if (hark_wk_dequantize(t->type, t->data, dst, n) != 0) {
		*bad = 1;
		return NULL;
	}
	net->arena_used += (size_t)n;
	return dst;
}

void hark_wnet_free(struct hark_wnet *net)
{
	if (!net)
		return;
	hark_wk_scratch_free(net->ws);
	free(net->arena);
	free(net->el);
	free(net->dl);
	free(net->xr);
	for (int i = 0; i < net->n_wbuf; i++)
		free(net->wbuf[i]);
	free(net->wbuf);
	free(net->mel);
	free(net->cols);
	free(net->h1);
	free(net->x);
	free(net->cur);
	free(net->q);
	free(net->k);
	free(net->v);
	free(net->att);
	free(net->mlp);
	free(net->k16);
	free(net->v16t);
	free(net->scores);
	free(net->ck);
	free(net->cv);
	free(net->cell_pos);
	free(net->cell_seq);
	free(net->sk);
	free(net->sv);
	free(net->dx);
	free(net->dcur);
	free(net->dq);
	free(net->dk);
	free(net->dv);
	free(net->datt);
	free(net->dmlp);
	free(net->dscores);
	free(net->dlast);
	free(net->slot);
	free(net);
}

static void *zalloc(size_t n, size_t sz, int *bad)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		*bad = 1;
	return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

int hark_wnet_new(const struct hark_wmodel *m, int n_decoders, struct hark_tpool *pool,
		  struct hark_wnet **out, char *err, size_t errlen)
{
	*out = NULL;
	if (n_decoders < 1)
		n_decoders = 1;
	if (n_decoders > MAX_BATCH_DEC)
		n_decoders = MAX_BATCH_DEC;
	const struct hark_whparams *hp = &m->hp;
	if (hp->n_audio_head <= 0 || hp->n_audio_state % hp->n_audio_head || hp->n_text_head <= 0 ||
	    hp->n_text_state % hp->n_text_head || hp->n_audio_ctx <= 0 || hp->n_text_ctx <= 0 ||
	    hp->n_audio_ctx > 4096 || hp->n_text_ctx > 4096 || hp->n_mels <= 0 || hp->n_audio_state > 8192 ||
	    hp->n_text_state > 8192 || hp->n_audio_layer < 0 || hp->n_text_layer < 1) {
		snprintf(err, errlen, "whisper model has unsupported dimensions");
		return HARK_ERR_MODEL;
	}
	pthread_once(&gelu_once, gelu_init);
	struct hark_wnet *net = calloc(1, sizeof(*net));
	if (!net)
		return HARK_ERR_NOMEM;
	net->m = m;
	net->pool = pool;
	net->n_mels = hp->n_mels;
	net->actx = hp->n_audio_ctx;
	net->as = hp->n_audio_state;
	net->ahead = hp->n_audio_head;
	net->alayer = hp->n_audio_layer;
	net->tctx = hp->n_text_ctx;
	net->ts = hp->n_text_state;
	net->thead = hp->n_text_head;
	net->tlayer = hp->n_text_layer;
	net->n_vocab = hp->n_vocab;
	net->kv_size = ((net->tctx + 255) / 256) * 256 * (n_decoders > 1 ? n_decoders + 2 : 1);

	int bad = 0;
	const int as = net->as, ts = net->ts, actx = net->actx, tctx = net->tctx;
	net->arena_cap = (size_t)net->alayer * 13 * (size_t)as + (size_t)net->tlayer * 18 * (size_t)ts +
			 8 * (size_t)(as + ts) + 64;
	net->arena = zalloc(net->arena_cap, sizeof(float), &bad);
	net->el = zalloc((size_t)net->alayer, sizeof(*net->el), &bad);
	net->dl = zalloc((size_t)net->tlayer, sizeof(*net->dl), &bad);
	net->ws = hark_wk_scratch_new(0);
	if (!net->ws)
		bad = 1;
	if (bad) {
		hark_wnet_free(net);
		return HARK_ERR_NOMEM;
	}
	int mbad = 0;
	net->conv1_b = arena_vec(net, m->e_conv1_b, as, &mbad);
	net->conv2_b = arena_vec(net, m->e_conv2_b, as, &mbad);
	net->eln_w = arena_vec(net, m->e_ln_w, as, &mbad);
	net->eln_b = arena_vec(net, m->e_ln_b, as, &mbad);
	net->dln_w = arena_vec(net, m->d_ln_w, ts, &mbad);
	net->dln_b = arena_vec(net, m->d_ln_b, ts, &mbad);
	for (int l = 0; l < net->alayer && !mbad; l++) {
		const struct hark_wenc_layer *L = &m->enc[l];
		struct enc_layer *e = &net->el[l];
		e->ln1_w = arena_vec(net, L->attn_ln_w, as, &mbad);
		e->ln1_b = arena_vec(net, L->attn_ln_b, as, &mbad);
		e->q_b = arena_vec(net, L->attn_q_b, as, &mbad);
		e->v_b = arena_vec(net, L->attn_v_b, as, &mbad);
		e->o_b = arena_vec(net, L->attn_out_b, as, &mbad);
		e->ln2_w = arena_vec(net, L->mlp_ln_w, as, &mbad);
		e->ln2_b = arena_vec(net, L->mlp_ln_b, as, &mbad);
		e->m0_b = arena_vec(net, L->mlp_0_b, 4 * (int64_t)as, &mbad);
		e->m2_b = arena_vec(net, L->mlp_2_b, as, &mbad);
	}
	for (int l = 0; l < net->tlayer && !mbad; l++) {
		const struct hark_wdec_layer *L = &m->dec[l];
		struct dec_layer *d = &net->dl[l];
		d->ln1_w = arena_vec(net, L->attn_ln_w, ts, &mbad);
		d->ln1_b = arena_vec(net, L->attn_ln_b, ts, &mbad);
		d->q_b = arena_vec(net, L->attn_q_b, ts, &mbad);
		d->v_b = arena_vec(net, L->attn_v_b, ts, &mbad);
		d->o_b = arena_vec(net, L->attn_out_b, ts, &mbad);
		d->lnc_w = arena_vec(net, L->cross_ln_w, ts, &mbad);
		d->lnc_b = arena_vec(net, L->cross_ln_b, ts, &mbad);
		d->cq_b = arena_vec(net, L->cross_q_b, ts, &mbad);
		d->cv_b = arena_vec(net, L->cross_v_b, ts, &mbad);
		d->co_b = arena_vec(net, L->cross_out_b, ts, &mbad);
		d->ln2_w = arena_vec(net, L->mlp_ln_w, ts, &mbad);
		d->ln2_b = arena_vec(net, L->mlp_ln_b, ts, &mbad);
		d->m0_b = arena_vec(net, L->mlp_0_b, 4 * (int64_t)ts, &mbad);
		d->m2_b = arena_vec(net, L->mlp_2_b, ts, &mbad);
	}
	if (mbad || !m->e_conv1_w || !m->e_conv2_w || !m->e_pe || !m->d_pe || !m->d_te ||
	    m->e_conv1_w->ne[0] != 3 || m->e_conv1_w->ne[1] != net->n_mels || m->e_conv1_w->ne[2] != as ||
	    m->e_conv2_w->ne[0] != 3 || m->e_conv2_w->ne[1] != as || m->e_conv2_w->ne[2] != as ||
	    m->e_pe->ne[0] != as || m->e_pe->ne[1] < actx || m->d_pe->ne[0] != ts || m->d_pe->ne[1] < tctx ||
	    m->d_te->ne[0] != ts || m->d_te->ne[1] != net->n_vocab || as != ts) {
		snprintf(err, errlen, "whisper model tensors are missing or have unexpected shapes");
		hark_wnet_free(net);
		return HARK_ERR_MODEL;
	}
	const size_t T2 = 2 * (size_t)actx;
	const size_t cin = (size_t)(net->n_mels > as ? net->n_mels : as) * 3;
	net->max_rows = tctx;
	net->xr_cap = max_sz(max_sz(T2 * cin, (size_t)actx * 4 * as), (size_t)tctx * 4 * ts);
	net->xr_cap = max_sz(net->xr_cap, (size_t)actx * actx);
	net->xr_cap = max_sz(net->xr_cap, (size_t)tctx * (size_t)(net->kv_size > actx ? net->kv_size : actx));
	net->xr = zalloc(net->xr_cap, sizeof(float), &bad);
	net->wbuf_k = (int64_t)max_sz(max_sz(4 * (size_t)as, 4 * (size_t)ts), max_sz(cin, (size_t)actx));
	net->wbuf_k = (int64_t)max_sz((size_t)net->wbuf_k, (size_t)net->kv_size);
	net->n_wbuf = hark_tpool_n_threads(pool);
	net->wbuf = zalloc((size_t)net->n_wbuf, sizeof(float *), &bad);
	for (int i = 0; net->wbuf && i < net->n_wbuf; i++)
		net->wbuf[i] = zalloc((size_t)MM_ROWS_PER_TASK * (size_t)net->wbuf_k, sizeof(float), &bad);
	net->mel = zalloc((size_t)net->n_mels * T2, sizeof(float), &bad);
	net->cols = zalloc(T2 * cin, sizeof(float), &bad);
	net->h1 = zalloc(T2 * as, sizeof(float), &bad);
	net->x = zalloc((size_t)actx * as, sizeof(float), &bad);
	net->cur = zalloc((size_t)actx * as, sizeof(float), &bad);
	net->q = zalloc((size_t)actx * as, sizeof(float), &bad);
	net->k = zalloc((size_t)actx * as, sizeof(float), &bad);
	net->v = zalloc((size_t)actx * as, sizeof(float), &bad);
	net->att = zalloc((size_t)actx * as, sizeof(float), &bad);
	net->mlp = zalloc((size_t)actx * 4 * as, sizeof(float), &bad);
	net->k16 = zalloc((size_t)actx * as, sizeof(uint16_t), &bad);
	net->v16t = zalloc((size_t)actx * as, sizeof(uint16_t), &bad);
	net->scores = zalloc((size_t)actx * actx, sizeof(float), &bad);
	net->ck = zalloc((size_t)net->tlayer * actx * ts, sizeof(uint16_t), &bad);
	net->cv = zalloc((size_t)net->tlayer * actx * ts, sizeof(uint16_t), &bad);
	net->cell_pos = zalloc((size_t)net->kv_size, sizeof(int), &bad);
	net->cell_seq = zalloc((size_t)net->kv_size, sizeof(uint32_t), &bad);
	net->sk = zalloc((size_t)net->tlayer * net->kv_size * ts, sizeof(uint16_t), &bad);
	net->sv = zalloc((size_t)net->tlayer * net->kv_size * ts, sizeof(uint16_t), &bad);
	net->dx = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->dcur = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->dq = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->dk = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->dv = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->datt = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->dmlp = zalloc((size_t)tctx * 4 * ts, sizeof(float), &bad);
	net->dscores_cap = (size_t)tctx * (size_t)(net->kv_size > actx ? net->kv_size : actx);
	net->dscores = zalloc(net->dscores_cap, sizeof(float), &bad);
	net->dlast = zalloc((size_t)tctx * ts, sizeof(float), &bad);
	net->slot = zalloc((size_t)tctx, sizeof(int), &bad);
	if (bad) {
		hark_wnet_free(net);
		return HARK_ERR_NOMEM;
	}
	hark_wnet_kv_clear(net);
	*out = net;
	return HARK_OK;
}

float *hark_wnet_mel_buffer(struct hark_wnet *net) { return net->mel; }
const float *hark_wnet_encoder_out(const struct hark_wnet *net) { return net->x; }

/* ------------------------------------------------------------- products -- */

/*
 * y[i * ldy + r] = W[r] . x[i] for a weight tensor W ([k, rows]) and n input
 * rows x ([n][k]); rule_n is the batch size ggml sees (it picks the
 * summation order). fp16/fp32 weights: ggml order; quantised: wkernels.
 */
static int linear(struct hark_wnet *net, const struct hark_wtensor *w, const float *x, int n, int rule_n, float *y)
{
	const int64_t k = w->ne[0], rows = w->ne[1] * w->ne[2];
	if (w->type != HARK_WT_F16 && w->type != HARK_WT_F32)
		return hark_wk_matmul(w, x, n, y, net->ws, net->pool);
	if ((size_t)n * (size_t)k > net->xr_cap)
		return HARK_ERR_INTERNAL;
	const float *b = x;
	if (w->type == HARK_WT_F16) {
		hark_wk_round_f16_row(x, net->xr, (int64_t)n * k);
		b = net->xr;
	}
	struct mm_job J = {.wbuf = k <= net->wbuf_k ? net->wbuf : NULL,
			   .a = w->data, .a_stride = (size_t)k * (w->type == HARK_WT_F16 ? 2 : 4),
			   .a16 = w->type == HARK_WT_F16, .b = b, .ldb = k, .k = k, .c = y, .ldc = rows,
			   .m_rows = rows, .n = n, .tiny = use_tiny(rule_n, rows, k)};
	run_mm(net->pool, &J);
	return 0;
}

/* Attention product against an fp16 buffer: c[i * ldc + r] = A[r] . f16(b[i])
 * for r < m (A rows of k at lda elements), i < n; m_rule is ggml's row count. */
static int attn_mm(struct hark_wnet *net, const uint16_t *a, int64_t lda, int64_t m, int64_t m_rule, int64_t k,
		   const float *b, int64_t ldb, int n, float *c, int64_t ldc)
{
	if ((size_t)n * (size_t)k > net->xr_cap)
		return HARK_ERR_INTERNAL;
	for (int i = 0; i < n; i++)
		hark_wk_round_f16_row(b + (size_t)i * ldb, net->xr + (size_t)i * k, k);
	struct mm_job J = {.wbuf = k <= net->wbuf_k ? net->wbuf : NULL,
			   .a = (const char *)a, .a_stride = (size_t)lda * 2, .a16 = 1, .b = net->xr, .ldb = k,
			   .k = k, .c = c, .ldc = ldc, .m_rows = m, .n = n, .tiny = use_tiny(n, m_rule, k)};
	run_mm(net->pool, &J);
	return 0;
}

/* ------------------------------------------------------- parallel loops -- */

struct rows_job {
	int kind;
	float *buf;
	int n_rows, row_len, ld;
	float scale;
	const float *w, *b;
	float *dst;
};

enum { JOB_SOFTMAX, JOB_GELU, JOB_NORM };

#define ROWS_PER_TASK 16

static void rows_task(void *ctx, int task, int n_tasks)
{
	(void)n_tasks;
	struct rows_job *j = ctx;
	int r0 = task * ROWS_PER_TASK, r1 = r0 + ROWS_PER_TASK;
	if (r1 > j->n_rows)
		r1 = j->n_rows;
	for (int r = r0; r < r1; r++) {
		float *row = j->buf + (size_t)r * j->ld;
		switch (j->kind) {
		case JOB_SOFTMAX:
			softmax_row(row, j->row_len, j->scale);
			break;
		case JOB_GELU:
			gelu_row(row, j->row_len);
			break;
		default:
			layer_norm_row(row, j->dst + (size_t)r * j->ld, j->row_len, j->w, j->b);
			break;
		}
	}
}

static void run_rows(struct hark_wnet *net, struct rows_job *j)
{
	const int n_tasks = (j->n_rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
	if (n_tasks <= 1 || !net->pool)
		for (int t = 0; t < n_tasks; t++)
			rows_task(j, t, n_tasks);
	else
		hark_tpool_run(net->pool, rows_task, j, n_tasks);
}

static void par_softmax(struct hark_wnet *net, float *buf, int n_rows, int row_len, int ld, float scale)
{
	struct rows_job j = {.kind = JOB_SOFTMAX, .buf = buf, .n_rows = n_rows, .row_len = row_len, .ld = ld,
			     .scale = scale};
	run_rows(net, &j);
}

static void par_gelu(struct hark_wnet *net, float *buf, int n_rows, int row_len)
{
	struct rows_job j = {.kind = JOB_GELU, .buf = buf, .n_rows = n_rows, .row_len = row_len, .ld = row_len};
	run_rows(net, &j);
}

static void par_norm(struct hark_wnet *net, const float *src, float *dst, int n_rows, int row_len,
		     const float *w, const float *b)
{
	struct rows_job j = {.kind = JOB_NORM, .buf = (float *)src, .n_rows = n_rows, .row_len = row_len,
			     .ld = row_len, .w = w, .b = b, .dst = dst};
	run_rows(net, &j);
}

static void add_bias(float *y, int n_rows, int n, const float *b)
{
	for (int r = 0; r < n_rows; r++)
		for (int i = 0; i < n; i++)
			y[(size_t)r * n + i] += b[i];
}

/* y = a + b element-wise (ggml_add); y may alias a or b. */
static void add_vec(float *y, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

/* --------------------------------------------------------------- encoder -- */

/* conv1d, kernel 3, padding 1 (ggml_conv_1d_ph): x is [len_in][cin]
 * (time-major) or [cin][len_in] (chan_major); out [len_out][cout]. The
 * im2col rows hold [ic][k] as ggml; for an fp16 kernel they are fp16. */
static int conv1d(struct hark_wnet *net, const struct hark_wtensor *w, const float *x, int len_in, int cin,
		  int stride, float *out, int len_out, const float *bias, int chan_major)
{
	const int64_t kk = (int64_t)cin * 3;
	const int64_t cout = w->ne[2];
	float *cols = net->cols;
	for (int t = 0; t < len_out; t++) {
		float *c = cols + (size_t)t * kk;
		for (int ic = 0; ic < cin; ic++)
			for (int k = 0; k < 3; k++) {
				const int s = t * stride + k - 1;
				float v = 0.0f;
				if (s >= 0 && s < len_in)
					v = chan_major ? x[(size_t)ic * len_in + s] : x[(size_t)s * cin + ic];
				c[ic * 3 + k] = v;
			}
	}
	if (w->type == HARK_WT_F32 || w->type == HARK_WT_F16) {
		if (w->type == HARK_WT_F16)
			hark_wk_round_f16_row(cols, cols, (int64_t)len_out * kk);
		/* ggml: mul_mat(im2col [kk, len_out], kernel [kk, cout]):
		 * rows = len_out, batch = cout; per element symmetric */
		struct mm_job J = {.wbuf = kk <= net->wbuf_k ? net->wbuf : NULL,
				   .a = w->data, .a_stride = (size_t)kk * (w->type == HARK_WT_F16 ? 2 : 4),
				   .a16 = w->type == HARK_WT_F16, .b = cols, .ldb = kk, .k = kk, .c = out,
				   .ldc = cout, .m_rows = cout, .n = len_out,
				   .tiny = use_tiny((int)cout, len_out, kk)};
		run_mm(net->pool, &J);
	} else {
		hark_wk_round_f16_row(cols, cols, (int64_t)len_out * kk);
		int rc = hark_wk_matmul_raw(w->type, w->data, kk, cout, hark_wk_row_size(w->type, kk), cols, kk,
					    len_out, out, cout, net->ws, net->pool);
		if (rc)
			return rc;
	}
	add_bias(out, len_out, (int)cout, bias);
	par_gelu(net, out, len_out, (int)cout);
	return 0;
}

int hark_wnet_encode(struct hark_wnet *net)
{
	const struct hark_wmodel *m = net->m;
	const int T = net->actx, S = net->as, T2 = 2 * T;
	int rc;
	rc = conv1d(net, m->e_conv1_w, net->mel, T2, net->n_mels, 1, net->h1, T2, net->conv1_b, 1);
	if (rc)
		return rc;
	rc = conv1d(net, m->e_conv2_w, net->h1, T2, S, 2, net->cur, T, net->conv2_b, 0);
	if (rc)
		return rc;
	for (int t = 0; t < T; t++) {
		float *pe = net->q; /* scratch row */
		if (hark_wk_get_row(m->e_pe, t, pe))
			return HARK_ERR_MODEL;
		add_vec(net->x + (size_t)t * S, pe, net->cur + (size_t)t * S, (size_t)S);
	}
	const int d = S / net->ahead;
	const float kq_scale = 1.0f / sqrtf((float)d);
	for (int l = 0; l < net->alayer; l++) {
		const struct hark_wenc_layer *L = &m->enc[l];
		const struct enc_layer *e = &net->el[l];
		par_norm(net, net->x, net->cur, T, S, e->ln1_w, e->ln1_b);
		if ((rc = linear(net, L->attn_q_w, net->cur, T, T, net->q)))
			return rc;
		add_bias(net->q, T, S, e->q_b);
		if ((rc = linear(net, L->attn_k_w, net->cur, T, T, net->k)))
			return rc;
		if ((rc = linear(net, L->attn_v_w, net->cur, T, T, net->v)))
			return rc;
		add_bias(net->v, T, S, e->v_b);
		hark_wk_f32_to_f16_row(net->k, net->k16, (int64_t)T * S);
		for (int t = 0; t < T; t++)
			for (int c = 0; c < S; c++)
				net->v16t[(size_t)c * T + t] = hark_wk_f32_to_f16(net->v[(size_t)t * S + c]);
		for (int h = 0; h < net->ahead; h++) {
			/* KQ: ggml rows = keys (T), batch = queries (T), k = d */
			if ((rc = attn_mm(net, net->k16 + (size_t)h * d, S, T, T, d, net->q + (size_t)h * d, S, T,
					  net->scores, T)))
				return rc;
			par_softmax(net, net->scores, T, T, T, kq_scale);
			/* KQV: rows = d, batch = queries, k = T */
			if ((rc = attn_mm(net, net->v16t + (size_t)h * d * T, T, d, d, T, net->scores, T, T,
					  net->att + (size_t)h * d, S)))
				return rc;
		}
		if ((rc = linear(net, L->attn_out_w, net->att, T, T, net->cur)))
			return rc;
		add_bias(net->cur, T, S, e->o_b);
		add_vec(net->x, net->cur, net->x, (size_t)T * S);
		par_norm(net, net->x, net->cur, T, S, e->ln2_w, e->ln2_b);
		if ((rc = linear(net, L->mlp_0_w, net->cur, T, T, net->mlp)))
			return rc;
		add_bias(net->mlp, T, 4 * S, e->m0_b);
		par_gelu(net, net->mlp, T, 4 * S);
		if ((rc = linear(net, L->mlp_2_w, net->mlp, T, T, net->cur)))
			return rc;
		add_bias(net->cur, T, S, e->m2_b);
		add_vec(net->x, net->cur, net->x, (size_t)T * S);
	}
	par_norm(net, net->x, net->cur, T, S, net->eln_w, net->eln_b);
	memcpy(net->x, net->cur, sizeof(float) * (size_t)T * S);

	/* cross-attention K (scaled by d^-1/4) and V for every decoder layer */
	const int TS = net->ts;
	const int dt = TS / net->thead;
	const float k_scale = (float)pow((double)(float)dt, -0.25);
	for (int l = 0; l < net->tlayer; l++) {
		const struct hark_wdec_layer *L = &m->dec[l];
		if ((rc = linear(net, L->cross_k_w, net->x, T, T, net->k)))
			return rc;
		uint16_t *ck = net->ck + (size_t)l * T * TS;
		for (size_t i = 0; i < (size_t)T * TS; i++)
			ck[i] = hark_wk_f32_to_f16(net->k[i] * k_scale);
		if ((rc = linear(net, L->cross_v_w, net->x, T, T, net->v)))
			return rc;
		add_bias(net->v, T, TS, net->dl[l].cv_b);
		uint16_t *cv = net->cv + (size_t)l * T * TS;
		for (int t = 0; t < T; t++)
			for (int c = 0; c < TS; c++)
				cv[(size_t)c * T + t] = hark_wk_f32_to_f16(net->v[(size_t)t * TS + c]);
	}
	return 0;
}

/* -------------------------------------------------------------- KV cache -- */

void hark_wnet_kv_clear(struct hark_wnet *net)
{
	for (int i = 0; i < net->kv_size; i++) {
		net->cell_pos[i] = -1;
		net->cell_seq[i] = 0;
	}
	net->kv_head = 0;
	/* ggml_backend_buffer_clear(cache, 0) */
	memset(net->sk, 0, sizeof(uint16_t) * (size_t)net->tlayer * net->kv_size * net->ts);
	memset(net->sv, 0, sizeof(uint16_t) * (size_t)net->tlayer * net->kv_size * net->ts);
}

void hark_wnet_kv_seq_cp(struct hark_wnet *net, int src, int dst)
{
	if (src < 0 || src > 31 || dst < 0 || dst > 31)
		return;
	net->kv_head = 0;
	for (int i = 0; i < net->kv_size; i++)
		if ((net->cell_seq[i] >> src) & 1u)
			net->cell_seq[i] |= 1u << dst;
}

void hark_wnet_kv_seq_rm(struct hark_wnet *net, int seq)
{
	if (seq < 0 || seq > 31)
		return;
	int new_head = net->kv_size;
	for (int i = 0; i < net->kv_size; i++) {
		if (net->cell_pos[i] < 0 || !((net->cell_seq[i] >> seq) & 1u))
			continue;
		net->cell_seq[i] &= ~(1u << seq);
		if (net->cell_seq[i] == 0) {
			net->cell_pos[i] = -1;
			if (new_head == net->kv_size)
				new_head = i;
		}
	}
	if (new_head != net->kv_size)
		net->kv_head = new_head;
}

/* whisper_kv_cache_find_slot: n contiguous free cells from the head. */
static int kv_find_slot(struct hark_wnet *net, const int *pos, const int *seq, int n)
{
	const int n_ctx = net->kv_size;
	if (n > n_ctx)
		return HARK_ERR_LIMIT;
	int n_tested = 0;
	for (;;) {
		if (net->kv_head + n > n_ctx) {
			n_tested += n_ctx - net->kv_head;
			net->kv_head = 0;
			continue;
		}
		int found = 1;
		for (int i = 0; i < n; i++)
			if (net->cell_pos[net->kv_head + i] >= 0) {
				found = 0;
				net->kv_head += i + 1;
				n_tested += i + 1;
				break;
			}
		if (found)
			break;
		if (n_tested >= n_ctx)
			return HARK_ERR_LIMIT;
	}
	for (int i = 0; i < n; i++) {
		net->cell_pos[net->kv_head + i] = pos[i];
		net->cell_seq[net->kv_head + i] |= 1u << seq[i];
		net->slot[i] = net->kv_head + i;
	}
	return 0;
}

static int kv_cell_max(const struct hark_wnet *net)
{
	for (int i = net->kv_size - 1; i > 0; i--)
		if (net->cell_pos[i] >= 0 && net->cell_seq[i])
			return i + 1;
	return 1;
}

/* --------------------------------------------------------------- decoder -- */

int hark_wnet_decode(struct hark_wnet *net, const int32_t *tokens, const int *pos, const int *seq, int n,
		     float *logits, int all_rows)
{
	const struct hark_wmodel *m = net->m;
	const int S = net->ts, T = net->actx, KV = net->kv_size;
	int rc;
	if (n <= 0 || n > net->max_rows)
		return HARK_ERR_INVALID_ARG;
	for (int i = 0; i < n; i++) {
		if (tokens[i] < 0 || tokens[i] >= net->n_vocab || pos[i] < 0 || pos[i] >= net->tctx || seq[i] < 0 ||
		    seq[i] > 31)
			return HARK_ERR_INVALID_ARG;
		float *row = net->dx + (size_t)i * S;
		if (hark_wk_get_row(m->d_te, tokens[i], row) || hark_wk_get_row(m->d_pe, pos[i], net->dlast))
			return HARK_ERR_MODEL;
		add_vec(row, row, net->dlast, (size_t)S);
	}
	if ((rc = kv_find_slot(net, pos, seq, n)))
		return rc;
	const int n_kv = kv_cell_max(net);
	if ((size_t)n * (size_t)(n_kv > T ? n_kv : T) > net->dscores_cap)
		return HARK_ERR_INTERNAL;
	const int d = S / net->thead;
	const float kq_scale = (float)pow((double)(float)d, -0.25);
	for (int l = 0; l < net->tlayer; l++) {
		const struct hark_wdec_layer *L = &m->dec[l];
		const struct dec_layer *e = &net->dl[l];
		par_norm(net, net->dx, net->dcur, n, S, e->ln1_w, e->ln1_b);
		if ((rc = linear(net, L->attn_q_w, net->dcur, n, n, net->dq)))
			return rc;
		add_bias(net->dq, n, S, e->q_b);
		for (size_t i = 0; i < (size_t)n * S; i++)
			net->dq[i] *= kq_scale;
		if ((rc = linear(net, L->attn_k_w, net->dcur, n, n, net->dk)))
			return rc;
		if ((rc = linear(net, L->attn_v_w, net->dcur, n, n, net->dv)))
			return rc;
		add_bias(net->dv, n, S, e->v_b);
		uint16_t *K = net->sk + (size_t)l * KV * S, *V = net->sv + (size_t)l * KV * S;
		for (int i = 0; i < n; i++) {
			const int cell = net->slot[i];
			for (int c = 0; c < S; c++) {
				K[(size_t)cell * S + c] = hark_wk_f32_to_f16(net->dk[(size_t)i * S + c] * kq_scale);
				V[(size_t)c * KV + cell] = hark_wk_f32_to_f16(net->dv[(size_t)i * S + c]);
			}
		}
		for (int h = 0; h < net->thead; h++) {
			if ((rc = attn_mm(net, K + (size_t)h * d, S, n_kv, n_kv, d, net->dq + (size_t)h * d, S, n,
					  net->dscores, n_kv)))
				return rc;
			for (int i = 0; i < n; i++) {
				float *row = net->dscores + (size_t)i * n_kv;
				const uint32_t bit = 1u << seq[i];
				for (int c = 0; c < n_kv; c++)
					if (!(net->cell_seq[c] & bit) || net->cell_pos[c] > pos[i])
						row[c] = -INFINITY;
				softmax_row(row, n_kv, 1.0f);
			}
			if ((rc = attn_mm(net, V + (size_t)h * d * KV, KV, d, d, n_kv, net->dscores, n_kv, n,
					  net->datt + (size_t)h * d, S)))
				return rc;
		}
		if ((rc = linear(net, L->attn_out_w, net->datt, n, n, net->dcur)))
			return rc;
		add_bias(net->dcur, n, S, e->o_b);
		add_vec(net->dx, net->dcur, net->dx, (size_t)n * S);

		/* cross-attention */
		par_norm(net, net->dx, net->dcur, n, S, e->lnc_w, e->lnc_b);
		if ((rc = linear(net, L->cross_q_w, net->dcur, n, n, net->dq)))
			return rc;
		add_bias(net->dq, n, S, e->cq_b);
		const uint16_t *CK = net->ck + (size_t)l * T * S, *CV = net->cv + (size_t)l * T * S;
		for (int h = 0; h < net->thead; h++) {
			if ((rc = attn_mm(net, CK + (size_t)h * d, S, T, T, d, net->dq + (size_t)h * d, S, n,
					  net->dscores, T)))
				return rc;
			for (int i = 0; i < n; i++)
				softmax_row(net->dscores + (size_t)i * T, T, kq_scale);
			if ((rc = attn_mm(net, CV + (size_t)h * d * T, T, d, d, T, net->dscores, T, n,
					  net->datt + (size_t)h * d, S)))
				return rc;
		}
		if ((rc = linear(net, L->cross_out_w, net->datt, n, n, net->dcur)))
			return rc;
		add_bias(net->dcur, n, S, e->co_b);
		add_vec(net->dx, net->dcur, net->dx, (size_t)n * S);

		par_norm(net, net->dx, net->dcur, n, S, e->ln2_w, e->ln2_b);
		if ((rc = linear(net, L->mlp_0_w, net->dcur, n, n, net->dmlp)))
			return rc;
		add_bias(net->dmlp, n, 4 * S, e->m0_b);
		par_gelu(net, net->dmlp, n, 4 * S);
		if ((rc = linear(net, L->mlp_2_w, net->dmlp, n, n, net->dcur)))
			return rc;
		add_bias(net->dcur, n, S, e->m2_b);
		add_vec(net->dx, net->dcur, net->dx, (size_t)n * S);
	}
	if (all_rows) {
		par_norm(net, net->dx, net->dlast, n, S, net->dln_w, net->dln_b);
		return linear(net, m->d_te, net->dlast, n, n, logits);
	}
	layer_norm_row(net->dx + (size_t)(n - 1) * S, net->dlast, S, net->dln_w, net->dln_b);
	return linear(net, m->d_te, net->dlast, 1, n, logits);
}
