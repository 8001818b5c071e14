/*
 * Whisper numeric kernels (see wkernels.h for the exact rounding contract):
 * fp16 conversion, ggml block formats, quantised / f16 / f32 matrix products
 * with portable C reference paths plus AVX2/F16C/FMA variants chosen at run
 * time by cpuid, and an OpenBLAS tile path for large f16/f32 products.
 */
#include "asr/whisper/wkernels.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define WK_X86 1
#else
#define WK_X86 0
#endif

#include "hark/hark.h"
#include "util/tpool.h"

#define QK 32

/* ------------------------------------------------------------ features -- */

static int g_has_avx2;   /* avx2 + fma + f16c */
static int g_has_avx512; /* avx512f/bw/vl + fma + f16c */
static int g_has_vnni;   /* avx512_vnni + avx512vl */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if WK_X86
static unsigned long long wk_xgetbv(void)
{
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((unsigned long long)hi << 32) | lo;
}
#endif

static void wk_detect(void)
{
#if WK_X86
	unsigned a, b, c, d;
	int avx2 = 0, avx512 = 0;
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
		unsigned long long xcr0 = osxsave ? wk_xgetbv() : 0;
		int ymm_ok = (xcr0 & 6) == 6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
		if (avx && fma && f16c && ymm_ok && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
			avx2 = (b >> 5) & 1;
			avx512 = avx2 && zmm_ok && ((b >> 16) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
			g_has_vnni = avx512 && ((c >> 11) & 1);
		}
	}
	g_has_avx2 = avx2;
	g_has_avx512 = avx512;
	const char *env = getenv("HARK_WK_NOSIMD");
	if (env && *env && strcmp(env, "0") != 0) {
		g_has_avx2 = 0;
		g_has_avx512 = 0;
		g_has_vnni = 0;
	}
#endif
	/* Our pool provides the parallelism; OpenBLAS must not add threads. */
	openblas_set_num_threads(1);
}

static void wk_init(void)
{
	pthread_once(&g_once, wk_detect);
}

static int g_det_avx2 = -1, g_det_avx512 = -1, g_det_vnni = -1;

void hark_wk_force_portable(int on)
{
	wk_init();
	if (g_det_avx2 < 0) {
		g_det_avx2 = g_has_avx2;
		g_det_avx512 = g_has_avx512;
		g_det_vnni = g_has_vnni;
	}
	g_has_avx2 = on ? 0 : g_det_avx2;
	g_has_avx512 = on ? 0 : g_det_avx512;
	g_has_vnni = on ? 0 : g_det_vnni;
}

const char *hark_wk_cpu_features(void)
{
	wk_init();
	if (g_has_vnni)
		return "avx512vnni+avx2+f16c+fma";
	if (g_has_avx512)
		return "avx512+avx2+f16c+fma";
	if (g_has_avx2)
		return "avx2+f16c+fma";
	return "portable";
}

/* ---------------------------------------------------------------- fp16 -- */

static inline uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static inline float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

float hark_wk_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f;
	uint32_t m = h & 0x3ff;
	if (e == 0) {
		float v = (float)m * 0x1p-24f; /* exact */
		return u2f(f2u(v) | sign);
	}
	if (e == 31) /* inf / NaN (quietened, as vcvtph2ps does) */
		return u2f(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
	return u2f(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t hark_wk_f32_to_f16(float f)
{
	uint32_t x = f2u(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u) /* NaN: quiet, payload truncated */
		return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
	if (ax >= 0x477ff000u) /* >= 65520 rounds to inf */
		return (uint16_t)(sign | 0x7c00);
	if (ax < 0x38800000u) { /* below 2^-14: subnormal half */
		float a = u2f(ax) * 0x1p24f; /* exact scaling */
		/* round half to even without depending on the FP env */
		float fl = floorf(a);
		float fr = a - fl;
		uint32_t q = (uint32_t)fl;
		if (fr > 0.5f || (fr == 0.5f && (q & 1)))
			q++;
		return (uint16_t)(sign | q);
	}
	uint32_t base = (ax >> 13) - (112u << 10);
	uint32_t rem = ax & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (base & 1)))
		base++;
	return (uint16_t)(sign | base);
}

float hark_wk_round_f16(float f)
{
	return hark_wk_f16_to_f32(hark_wk_f32_to_f16(f));
}

static inline uint16_t ld16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

#if WK_X86
__attribute__((target("avx2,f16c,fma")))
static void f16_to_f32_row_f16c(const unsigned char *s, float *d, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + 2 * i))));
	for (; i < n; i++)
		d[i] = hark_wk_f16_to_f32(ld16(s + 2 * i));
}

__attribute__((target("avx2,f16c,fma")))
static void f32_to_f16_row_f16c(const float *s, unsigned char *d, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(d + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), 0));
	for (; i < n; i++) {
		uint16_t h = hark_wk_f32_to_f16(s[i]);
		d[2 * i] = (unsigned char)h;
		d[2 * i + 1] = (unsigned char)(h >> 8);
	}
}

__attribute__((target("avx2,f16c,fma")))
static void round_f16_row_f16c(const float *s, float *d, int64_t n)
{
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(s + i), 0)));
	for (; i < n; i++)
		d[i] = hark_wk_round_f16(s[i]);
}
#endif

void hark_wk_f16_to_f32_row(const void *src, float *dst, int64_t n)
{
	const unsigned char *s = src;
	wk_init();
#if WK_X86
	if (g_has_avx2) {
		f16_to_f32_row_f16c(s, dst, n);
		return;
	}
#endif
	for (int64_t i = 0; i < n; i++)
		dst[i] = hark_wk_f16_to_f32(ld16(s + 2 * i));
}

void hark_wk_f32_to_f16_row(const float *src, void *dst, int64_t n)
{
	unsigned char *d = dst;
	wk_init();
#if WK_X86
	if (g_has_avx2) {
		f32_to_f16_row_f16c(src, d, n);
		return;
	}
#endif
	for (int64_t i = 0; i < n; i++) {
		uint16_t h = hark_wk_f32_to_f16(src[i]);
		d[2 * i] = (unsigned char)h;
		d[2 * i + 1] = (unsigned char)(h >> 8);
	}
}

void hark_wk_round_f16_row(const float *src, float *dst, int64_t n)
{
	wk_init();
#if WK_X86
	if (g_has_avx2) {
		round_f16_row_f16c(src, dst, n);
		return;
	}
#endif
	for (int64_t i = 0; i < n; i++)
		dst[i] = hark_wk_round_f16(src[i]);
}

/* ------------------------------------------------------- type geometry -- */

int hark_wk_type_block(int type)
{
	switch (type) {
	case HARK_WT_F32:
	case HARK_WT_F16:
		return 1;
	case HARK_WT_Q4_0:
	case HARK_WT_Q4_1:
	case HARK_WT_Q5_0:
	case HARK_WT_Q5_1:
	case HARK_WT_Q8_0:
	case HARK_WT_Q8_1:
		return QK;
	default:
		return 0;
	}
}

size_t hark_wk_type_size(int type)
{
	switch (type) {
	case HARK_WT_F32: return 4;
	case HARK_WT_F16: return 2;
	case HARK_WT_Q4_0: return 18;
	case HARK_WT_Q4_1: return 20;
	case HARK_WT_Q5_0: return 22;
	case HARK_WT_Q5_1: return 24;
	case HARK_WT_Q8_0: return 34;
	case HARK_WT_Q8_1: return 36;
	default: return 0;
	}
}

size_t hark_wk_row_size(int type, int64_t n)
{
	int b = hark_wk_type_block(type);
	if (b == 0 || n < 0 || n % b != 0)
		return 0;
	return (size_t)(n / b) * hark_wk_type_size(type);
}

const char *hark_wk_type_name(int type)
{
	switch (type) {
	case HARK_WT_F32: return "f32";
	case HARK_WT_F16: return "f16";
	case HARK_WT_Q4_0: return "q4_0";
	case HARK_WT_Q4_1: return "q4_1";
	case HARK_WT_Q5_0: return "q5_0";
	case HARK_WT_Q5_1: return "q5_1";
	case HARK_WT_Q8_0: return "q8_0";
	case HARK_WT_Q8_1: return "q8_1";
	default: return "?";
	}
}

/* ------------------------------------------------------- quantisation -- */

static inline void st16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

/* Round half to even independent of the FP environment's mode. */
static inline float rne(float v)
{
	float r = rintf(v); /* default env is round-to-nearest-even */
	return r;
}

/* cvtps_epi32 + two signed saturating packs: NaN -> INT_MIN -> -128 */
static inline int8_t sat8(float v)
{
	if (v != v)
		return -128;
	if (v > 127.0f)
		return 127;
	if (v < -128.0f)
		return -128;
	return (int8_t)v;
}

/* One 32-block of activation quantisation; returns the int sum of q. */
static int quant_block_q8(const float *x, unsigned char *blk_d, int8_t *qs, float *d_out)
{
	float amax = 0.0f;
	for (int j = 0; j < QK; j++) {
		float a = fabsf(x[j]);
		amax = a > amax ? a : amax;
	}
	const float d = amax / 127.f;
	const float id = amax != 0.0f ? 127.f / amax : 0.0f;
	st16(blk_d, hark_wk_f32_to_f16(d));
	int sum = 0;
	for (int j = 0; j < QK; j++) {
		qs[j] = sat8(rne(x[j] * id));
		sum += qs[j];
	}
	*d_out = d;
	return sum;
}

#if WK_X86
/* quant_block_q8 with ggml's AVX instruction sequence (bit-identical). */
__attribute__((target("avx2,f16c,fma")))
static int quant_block_q8_avx2(const float *x, unsigned char *blk_d, int8_t *qs, float *d_out)
{
	__m256 v[4];
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 mx = _mm256_setzero_ps();
	for (int i = 0; i < 4; i++) {
		v[i] = _mm256_loadu_ps(x + 8 * i);
		mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[i]));
	}
	__m128 m4 = _mm_max_ps(_mm256_extractf128_ps(mx, 1), _mm256_castps256_ps128(mx));
	m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
	m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
	const float amax = _mm_cvtss_f32(m4);
	const float d = amax / 127.f;
	const float id = amax != 0.0f ? 127.f / amax : 0.0f;
	uint16_t h = (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(d), 0), 0);
	blk_d[0] = (unsigned char)h;
	blk_d[1] = (unsigned char)(h >> 8);
	const __m256 mul = _mm256_set1_ps(id);
	__m256i q[4];
	for (int i = 0; i < 4; i++)
		q[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	__m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
	__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
	s4 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
	s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 1));
	__m256i p01 = _mm256_packs_epi32(q[0], q[1]);
	__m256i p23 = _mm256_packs_epi32(q[2], q[3]);
	__m256i p = _mm256_packs_epi16(p01, p23);
	p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
	_mm256_storeu_si256((__m256i *)qs, p);
	*d_out = d;
	return _mm_cvtsi128_si32(s4);
}
#endif

static int quant_block(const float *x, unsigned char *blk_d, int8_t *qs, float *d_out)
{
#if WK_X86
	if (g_has_avx2)
		return quant_block_q8_avx2(x, blk_d, qs, d_out);
#endif
	return quant_block_q8(x, blk_d, qs, d_out);
}

void hark_wk_quantize_q8_0(const float *x, void *dst, int64_t n)
{
	unsigned char *y = dst;
	wk_init();
	for (int64_t b = 0; b < n / QK; b++) {
		float d;
		quant_block(x + b * QK, y + b * 34, (int8_t *)(y + b * 34 + 2), &d);
	}
}

void hark_wk_quantize_q8_1(const float *x, void *dst, int64_t n)
{
	unsigned char *y = dst;
	wk_init();
	for (int64_t b = 0; b < n / QK; b++) {
		float d;
		int sum = quant_block(x + b * QK, y + b * 36, (int8_t *)(y + b * 36 + 4), &d);
		st16(y + b * 36 + 2, hark_wk_f32_to_f16(d * (float)sum));
	}
}

static void wq_q4_0(const float *x, unsigned char *y)
{
	float amax = 0.0f, max = 0.0f;
	for (int j = 0; j < QK; j++) {
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	const float d = max / -8;
	const float id = d ? 1.0f / d : 0.0f;
	st16(y, hark_wk_f32_to_f16(d));
	for (int j = 0; j < 16; j++) {
		int a = (int8_t)(x[j] * id + 8.5f), b = (int8_t)(x[j + 16] * id + 8.5f);
		uint8_t a8 = (uint8_t)(a < 15 ? a : 15), b8 = (uint8_t)(b < 15 ? b : 15);
		y[2 + j] = (uint8_t)(a8 | (b8 << 4));
	}
}

static void wq_q4_1(const float *x, unsigned char *y)
{
	float min = x[0], max = x[0];
	for (int j = 1; j < QK; j++) {
		if (x[j] < min) min = x[j];
		if (x[j] > max) max = x[j];
	}
	const float d = (max - min) / 15;
	const float id = d ? 1.0f / d : 0.0f;
	st16(y, hark_wk_f32_to_f16(d));
	st16(y + 2, hark_wk_f32_to_f16(min));
	for (int j = 0; j < 16; j++) {
		int a = (int8_t)((x[j] - min) * id + 0.5f), b = (int8_t)((x[j + 16] - min) * id + 0.5f);
		uint8_t a8 = (uint8_t)(a < 15 ? a : 15), b8 = (uint8_t)(b < 15 ? b : 15);
		y[4 + j] = (uint8_t)(a8 | (b8 << 4));
	}
}

static void wq_q5_0(const float *x, unsigned char *y)
{
	float amax = 0.0f, max = 0.0f;
	for (int j = 0; j < QK; j++) {
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	const float d = max / -16;
	const float id = d ? 1.0f / d : 0.0f;
	st16(y, hark_wk_f32_to_f16(d));
	uint32_t qh = 0;
	for (int j = 0; j < 16; j++) {
		int a = (int8_t)(x[j] * id + 16.5f), b = (int8_t)(x[j + 16] * id + 16.5f);
		uint8_t a8 = (uint8_t)(a < 31 ? a : 31), b8 = (uint8_t)(b < 31 ? b : 31);
		y[6 + j] = (uint8_t)((a8 & 0x0f) | ((b8 & 0x0f) << 4));
		qh |= ((a8 & 0x10u) >> 4) << j;
		qh |= ((b8 & 0x10u) >> 4) << (j + 16);
	}
	memcpy(y + 2, &qh, 4);
}

static void wq_q5_1(const float *x, unsigned char *y)
{
	float min = x[0], max = x[0];
	for (int j = 1; j < QK; j++) {
		if (x[j] < min) min = x[j];
		if (x[j] > max) max = x[j];
	}
	const float d = (max - min) / 31;
	const float id = d ? 1.0f / d : 0.0f;
	st16(y, hark_wk_f32_to_f16(d));
	st16(y + 2, hark_wk_f32_to_f16(min));
	uint32_t qh = 0;
	for (int j = 0; j < 16; j++) {
		uint8_t a8 = (uint8_t)((x[j] - min) * id + 0.5f);
		uint8_t b8 = (uint8_t)((x[j + 16] - min) * id + 0.5f);
		y[8 + j] = (uint8_t)((a8 & 0x0f) | ((b8 & 0x0f) << 4));
		qh |= ((a8 & 0x10u) >> 4) << j;
		qh |= ((b8 & 0x10u) >> 4) << (j + 16);
	}
	memcpy(y + 4, &qh, 4);
}

static void wq_q8_0(const float *x, unsigned char *y)
{
	float amax = 0.0f;
	for (int j = 0; j < QK; j++)
		amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
	const float d = amax / 127;
	const float id = d ? 1.0f / d : 0.0f;
	st16(y, hark_wk_f32_to_f16(d));
	for (int j = 0; j < QK; j++)
		y[2 + j] = (unsigned char)(int8_t)roundf(x[j] * id);
}

int hark_wk_quantize_weights(int type, const float *x, void *dst, int64_t n)
{
	unsigned char *y = dst;
	int bs = hark_wk_type_block(type);
	size_t ts = hark_wk_type_size(type);
	if (bs == 0 || type == HARK_WT_Q8_1 || n % bs != 0)
		return -1;
	if (type == HARK_WT_F32) {
		memcpy(dst, x, (size_t)n * 4);
		return 0;
	}
	if (type == HARK_WT_F16) {
		hark_wk_f32_to_f16_row(x, dst, n);
		return 0;
	}
	for (int64_t b = 0; b < n / QK; b++) {
		const float *xb = x + b * QK;
		unsigned char *yb = y + (size_t)b * ts;
		switch (type) {
		case HARK_WT_Q4_0: wq_q4_0(xb, yb); break;
		case HARK_WT_Q4_1: wq_q4_1(xb, yb); break;
		case HARK_WT_Q5_0: wq_q5_0(xb, yb); break;
		case HARK_WT_Q5_1: wq_q5_1(xb, yb); break;
		case HARK_WT_Q8_0: wq_q8_0(xb, yb); break;
		default: return -1;
		}
	}
	return 0;
}

/* Unpacks one weight block into 32 integer levels (with the type's offset
 * applied for the symmetric formats) and returns d (and m for _1 types). */
static void unpack_block(int type, const unsigned char *b, int *q, float *d, float *m)
{
	uint32_t qh;
	*m = 0.0f;
	*d = hark_wk_f16_to_f32(ld16(b));
	switch (type) {
	case HARK_WT_Q4_0:
		for (int j = 0; j < 16; j++) {
			q[j] = (b[2 + j] & 0x0f) - 8;
			q[j + 16] = (b[2 + j] >> 4) - 8;
		}
		break;
	case HARK_WT_Q4_1:
		*m = hark_wk_f16_to_f32(ld16(b + 2));
		for (int j = 0; j < 16; j++) {
			q[j] = b[4 + j] & 0x0f;
			q[j + 16] = b[4 + j] >> 4;
		}
		break;
	case HARK_WT_Q5_0:
		memcpy(&qh, b + 2, 4);
		for (int j = 0; j < 16; j++) {
			q[j] = ((b[6 + j] & 0x0f) | (((qh >> j) & 1) << 4)) - 16;
			q[j + 16] = ((b[6 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
		}
		break;
	case HARK_WT_Q5_1:
		*m = hark_wk_f16_to_f32(ld16(b + 2));
		memcpy(&qh, b + 4, 4);
		for (int j = 0; j < 16; j++) {
			q[j] = (b[8 + j] & 0x0f) | (((qh >> j) & 1) << 4);
			q[j + 16] = (b[8 + j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
		}
		break;
	case HARK_WT_Q8_0:
		for (int j = 0; j < QK; j++)
			q[j] = (int8_t)b[2 + j];
		break;
	case HARK_WT_Q8_1:
		*m = 0.0f;
		for (int j = 0; j < QK; j++)
			q[j] = (int8_t)b[4 + j];
		break;
	default:
		for (int j = 0; j < QK; j++)
			q[j] = 0;
	}
}

int hark_wk_dequantize(int type, const void *src, float *dst, int64_t n)
{
	const unsigned char *s = src;
	int bs = hark_wk_type_block(type);
	if (bs == 0 || n % bs != 0)
		return -1;
	if (type == HARK_WT_F32) {
		memcpy(dst, src, (size_t)n * 4);
		return 0;
	}
	if (type == HARK_WT_F16) {
		hark_wk_f16_to_f32_row(src, dst, n);
		return 0;
	}
	size_t ts = hark_wk_type_size(type);
	for (int64_t b = 0; b < n / QK; b++) {
		int q[QK];
		float d, m;
		unpack_block(type, s + (size_t)b * ts, q, &d, &m);
		for (int j = 0; j < QK; j++)
			dst[b * QK + j] = (float)q[j] * d + m;
	}
	return 0;
}

int hark_wk_get_row(const struct hark_wtensor *w, int64_t row, float *out)
{
	if (!w || !out)
		return -1;
	int64_t k = w->ne[0];
	size_t rs = hark_wk_row_size(w->type, k);
	if (rs == 0 || row < 0 || (size_t)row >= w->nbytes / rs)
		return -1;
	return hark_wk_dequantize(w->type, (const char *)w->data + (size_t)row * rs, out, k);
}

/* ----------------------------------------------------------- dot cores -- */

static float dot_f32_c(const float *a, const float *b, int64_t n)
{
	float s[8] = {0};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			s[j] += a[i + j] * b[i + j];
	float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	for (; i < n; i++)
		r += a[i] * b[i];
	return r;
}

/* f16 row (unaligned bytes) . f32 vector */
static float dot_f16f32_c(const unsigned char *a, const float *b, int64_t n)
{
	float s[8] = {0};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			s[j] += hark_wk_f16_to_f32(ld16(a + 2 * (i + j))) * b[i + j];
	float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	for (; i < n; i++)
		r += hark_wk_f16_to_f32(ld16(a + 2 * i)) * b[i];
	return r;
}

/* f32 row read through memcpy (unaligned) . f32 vector */
static float dot_f32u_c(const unsigned char *a, const float *b, int64_t n)
{
	float s[8] = {0};
	int64_t i = 0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++) {
			float v;
			memcpy(&v, a + 4 * (i + j), 4);
			s[j] += v * b[i + j];
		}
	float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
	for (; i < n; i++) {
		float v;
		memcpy(&v, a + 4 * i, 4);
		r += v * b[i];
	}
	return r;
}

/* Portable quantised dot with the exact arithmetic of ggml's AVX2 kernels:
 * 8 lanes, lane j accumulating fma(d, (float)(sum of products 4j..4j+3)),
 * reduced like hsum_float_8, plus the sequential fma sum of the m*s terms. */
static float hsum8_c(const float *x)
{
	float r0 = x[4] + x[0], r1 = x[5] + x[1], r2 = x[6] + x[2], r3 = x[7] + x[3];
	return (r0 + r2) + (r1 + r3);
}

/* Q4_0 through ggml's repacked q4_0_8x8 kernels (what whisper.cpp runs for
 * Q4_0 linear weights on AVX2 CPUs): per block the full 32-product integer
 * sum, accumulated sequentially as acc = fma((float)isum, dw * da, acc). */
static float dot_q4_0_seq_c(const unsigned char *w, const unsigned char *aq, int64_t n)
{
	float acc = 0.0f;
	for (int64_t b = 0; b < n / QK; b++) {
		int q[QK];
		float dw, mw;
		unpack_block(HARK_WT_Q4_0, w + (size_t)b * 18, q, &dw, &mw);
		const unsigned char *ab = aq + (size_t)b * 34;
		const int8_t *qa = (const int8_t *)(ab + 2);
		int isum = 0;
		for (int j = 0; j < QK; j++)
			isum += q[j] * qa[j];
		acc = fmaf((float)isum, dw * hark_wk_f16_to_f32(ld16(ab)), acc);
	}
	return acc;
}

static float dot_q_c(int type, const unsigned char *w, const unsigned char *aq, int64_t n)
{
	size_t ts = hark_wk_type_size(type);
	int one = (type == HARK_WT_Q4_1 || type == HARK_WT_Q5_1);
	size_t as = one ? 36 : 34;
	float acc[8] = {0}, summs = 0.0f;
	for (int64_t b = 0; b < n / QK; b++) {
		int q[QK];
		float dw, mw;
		unpack_block(type, w + (size_t)b * ts, q, &dw, &mw);
		const unsigned char *ab = aq + (size_t)b * as;
		const int8_t *qa = (const int8_t *)(ab + (one ? 4 : 2));
		float d = dw * hark_wk_f16_to_f32(ld16(ab));
		for (int l = 0; l < 8; l++) {
			int s4 = q[4 * l] * qa[4 * l] + q[4 * l + 1] * qa[4 * l + 1] + q[4 * l + 2] * qa[4 * l + 2] +
				 q[4 * l + 3] * qa[4 * l + 3];
			acc[l] = fmaf(d, (float)s4, acc[l]);
		}
		if (one)
			summs = fmaf(mw, hark_wk_f16_to_f32(ld16(ab + 2)), summs);
	}
	return hsum8_c(acc) + summs;
}

#if WK_X86
/* exact fp16 -> fp32 with F16C (same value as hark_wk_f16_to_f32) */
__attribute__((target("avx2,f16c,fma")))
static inline float h2f(const unsigned char *p)
{
	return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(ld16(p))));
}

__attribute__((target("avx2,f16c,fma")))
static inline float hsum256(__m256 v)
{
	__m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	a = _mm_add_ps(a, _mm_movehl_ps(a, a));
	a = _mm_add_ss(a, _mm_movehdup_ps(a));
	return _mm_cvtss_f32(a);
}

__attribute__((target("avx2,f16c,fma")))
static float dot_f32u_avx2(const unsigned char *a, const float *b, int64_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i)), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i + 32)), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i + 64)), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i + 96)), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(a + 4 * i)), _mm256_loadu_ps(b + i), s0);
	float r = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
	for (; i < n; i++) {
		float v;
		memcpy(&v, a + 4 * i, 4);
		r += v * b[i];
	}
	return r;
}

__attribute__((target("avx2,f16c,fma")))
static float dot_f16f32_avx2(const unsigned char *a, const float *b, int64_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	__m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
	int64_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i))), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i + 16))), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i + 32))), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i + 48))), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i))), _mm256_loadu_ps(b + i), s0);
	float r = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
	for (; i < n; i++)
		r += hark_wk_f16_to_f32(ld16(a + 2 * i)) * b[i];
	return r;
}

/* 32 signed/unsigned weight levels as bytes. */
__attribute__((target("avx2,f16c,fma")))
static inline __m256i nibbles32(const unsigned char *qs)
{
	__m128i x = _mm_loadu_si128((const __m128i *)qs);
	__m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
	return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

__attribute__((target("avx2,f16c,fma")))
static inline __m256i bits32(const unsigned char *qh)
{
	uint32_t x;
	memcpy(&x, qh, 4);
	__m256i v = _mm256_set1_epi32((int)x);
	const __m256i sh = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
					     0x0101010101010101LL, 0x0000000000000000LL);
	v = _mm256_shuffle_epi8(v, sh);
	const __m256i mask = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
	v = _mm256_and_si256(v, mask);
	return _mm256_cmpeq_epi8(v, mask); /* 0xff where bit set */
}

/* int32x8 partial sums of unsigned(x) * signed(y) */
__attribute__((target("avx2,f16c,fma")))
static inline __m256 mul_us8(__m256i ux, __m256i sy)
{
	__m256i p = _mm256_maddubs_epi16(ux, sy);
	return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

__attribute__((target("avx2,f16c,fma")))
static inline __m256 mul_ss8(__m256i x, __m256i y)
{
	return mul_us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

__attribute__((target("avx2,f16c,fma")))
static float dot_q_avx2(int type, const unsigned char *w, const unsigned char *aq, int64_t n)
{
	const int64_t nb = n / QK;
	__m256 acc = _mm256_setzero_ps();
	float summs = 0.0f;
	switch (type) {
	case HARK_WT_Q4_0:
		for (int64_t b = 0; b < nb; b++) {
			const unsigned char *x = w + b * 18, *y = aq + b * 34;
			__m256i qx = _mm256_sub_epi8(nibbles32(x + 2), _mm256_set1_epi8(8));
			__m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
			float d = h2f(x) * h2f(y);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mul_ss8(qx, qy), acc);
		}
		break;
	case HARK_WT_Q5_0:
		for (int64_t b = 0; b < nb; b++) {
			const unsigned char *x = w + b * 22, *y = aq + b * 34;
			__m256i hi = _mm256_andnot_si256(bits32(x + 2), _mm256_set1_epi8((char)0xf0));
			__m256i qx = _mm256_or_si256(nibbles32(x + 6), hi); /* (q | h<<4) - 16 */
			__m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
			float d = h2f(x) * h2f(y);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mul_ss8(qx, qy), acc);
		}
		break;
	case HARK_WT_Q8_0:
		for (int64_t b = 0; b < nb; b++) {
			const unsigned char *x = w + b * 34, *y = aq + b * 34;
			__m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
			__m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
			float d = h2f(x) * h2f(y);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mul_ss8(qx, qy), acc);
		}
		break;
	case HARK_WT_Q4_1:
		for (int64_t b = 0; b < nb; b++) {
			const unsigned char *x = w + b * 20, *y = aq + b * 36;
			summs = fmaf(h2f(x + 2), h2f(y + 2), summs);
			__m256i qx = nibbles32(x + 4);
			__m256i qy = _mm256_loadu_si256((const __m256i *)(y + 4));
			float d = h2f(x) * h2f(y);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mul_us8(qx, qy), acc);
		}
		break;
	case HARK_WT_Q5_1:
		for (int64_t b = 0; b < nb; b++) {
			const unsigned char *x = w + b * 24, *y = aq + b * 36;
			summs = fmaf(h2f(x + 2), h2f(y + 2), summs);
			__m256i hi = _mm256_and_si256(bits32(x + 4), _mm256_set1_epi8(0x10));
			__m256i qx = _mm256_or_si256(nibbles32(x + 8), hi);
			__m256i qy = _mm256_loadu_si256((const __m256i *)(y + 4));
			float d = h2f(x) * h2f(y);
			acc = _mm256_fmadd_ps(_mm256_set1_ps(d), mul_us8(qx, qy), acc);
		}
		break;
	default:
		return 0.0f;
	}
	return hsum256(acc) + summs;
}

/* Unpacks a quantised weight row into int8 levels (offsets applied for the
 * symmetric types, raw 0..31 for the _1 types) plus per-block d and m, so
 * that one row can be multiplied with many activation rows. */
__attribute__((target("avx2,f16c,fma")))
static void unpack_row_avx2(int type, const unsigned char *w, int64_t nb, int8_t *q, float *d, float *m)
{
	for (int64_t b = 0; b < nb; b++) {
		__m256i v;
		const unsigned char *x;
		switch (type) {
		case HARK_WT_Q4_0:
			x = w + b * 18;
			v = _mm256_sub_epi8(nibbles32(x + 2), _mm256_set1_epi8(8));
			m[b] = 0.0f;
			break;
		case HARK_WT_Q5_0:
			x = w + b * 22;
			v = _mm256_or_si256(nibbles32(x + 6), _mm256_andnot_si256(bits32(x + 2), _mm256_set1_epi8((char)0xf0)));
			m[b] = 0.0f;
			break;
		case HARK_WT_Q8_0:
			x = w + b * 34;
			v = _mm256_loadu_si256((const __m256i *)(x + 2));
			m[b] = 0.0f;
			break;
		case HARK_WT_Q4_1:
			x = w + b * 20;
			v = nibbles32(x + 4);
			m[b] = h2f(x + 2);
			break;
		default: /* HARK_WT_Q5_1 */
			x = w + b * 24;
			v = _mm256_or_si256(nibbles32(x + 8), _mm256_and_si256(bits32(x + 4), _mm256_set1_epi8(0x10)));
			m[b] = h2f(x + 2);
			break;
		}
		d[b] = h2f(x);
		_mm256_storeu_si256((__m256i *)(q + b * QK), v);
	}
}

/*
 * Products of one unpacked weight row with NA activation rows (levels al[t],
 * per-block scales ad[t], sums as[t]) with exactly the arithmetic of ggml's
 * AVX2 vec_dot: per block, 8 int32 lanes of 4 products each, converted to
 * float and accumulated with fma(dw * da, lanes, acc); then hsum_float_8 and
 * the sequential fma sum of mw * sa (the _1 types). MULSUM is the int8 dot:
 * maddubs+madd (AVX2) or dpbusd (AVX512-VNNI) give the same integers.
 */
#define QK_KERNEL(NAME, TARGET, MULSUM)                                                                    \
	__attribute__((target(TARGET))) static void NAME(int one, const int8_t *wq, const float *wd,          \
							 const float *wm, int64_t nb, int na,                 \
							 const int8_t *const *al, const float *const *ad,     \
							 const float *const *as, float *out)                  \
	{                                                                                                  \
		__m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),             \
				 _mm256_setzero_ps()};                                                      \
		float summs[4] = {0, 0, 0, 0};                                                             \
		for (int64_t b = 0; b < nb; b++) {                                                         \
			const __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + b * QK));              \
			const __m256i aw = one ? wv : _mm256_sign_epi8(wv, wv);                             \
			for (int t = 0; t < na; t++) {                                                     \
				__m256i yv = _mm256_loadu_si256((const __m256i *)(al[t] + b * QK));         \
				if (!one)                                                                  \
					yv = _mm256_sign_epi8(yv, wv);                                     \
				__m256 p = _mm256_cvtepi32_ps(MULSUM(aw, yv));                              \
				acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(wd[b] * ad[t][b]), p, acc[t]);      \
				if (one)                                                                   \
					summs[t] = fmaf(wm[b], as[t][b], summs[t]);                        \
			}                                                                                  \
		}                                                                                          \
		for (int t = 0; t < na; t++)                                                               \
			out[t] = hsum256(acc[t]) + summs[t];                                               \
	}

__attribute__((target("avx2,f16c,fma")))
static inline __m256i mulsum_avx2(__m256i ux, __m256i sy)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(ux, sy), _mm256_set1_epi16(1));
}

__attribute__((target("avx2,f16c,fma,avx512vnni,avx512vl")))
static inline __m256i mulsum_vnni(__m256i ux, __m256i sy)
{
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ux, sy);
}

QK_KERNEL(qk_rows_avx2, "avx2,f16c,fma", mulsum_avx2)
QK_KERNEL(qk_rows_vnni, "avx2,f16c,fma,avx512vnni,avx512vl", mulsum_vnni)

__attribute__((target("avx2,f16c,fma")))
static inline int hsum_i32x8(__m256i v)
{
	__m128i a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	a = _mm_add_epi32(a, _mm_unpackhi_epi64(a, a));
	a = _mm_add_epi32(a, _mm_shuffle_epi32(a, 1));
	return _mm_cvtsi128_si32(a);
}

/* Q4_0 with the repacked-kernel arithmetic (see dot_q4_0_seq_c). */
#define QK_SEQ_KERNEL(NAME, TARGET, MULSUM)                                                                \
	__attribute__((target(TARGET))) static void NAME(const int8_t *wq, const float *wd, int64_t nb, int na, \
							 const int8_t *const *al, const float *const *ad,     \
							 float *out)                                          \
	{                                                                                                  \
		float acc[4] = {0, 0, 0, 0};                                                               \
		for (int64_t b = 0; b < nb; b++) {                                                         \
			const __m256i wv = _mm256_loadu_si256((const __m256i *)(wq + b * QK));              \
			const __m256i aw = _mm256_sign_epi8(wv, wv);                                        \
			for (int t = 0; t < na; t++) {                                                     \
				__m256i yv = _mm256_loadu_si256((const __m256i *)(al[t] + b * QK));         \
				int isum = hsum_i32x8(MULSUM(aw, _mm256_sign_epi8(yv, wv)));                \
				acc[t] = fmaf((float)isum, wd[b] * ad[t][b], acc[t]);                      \
			}                                                                                  \
		}                                                                                          \
		for (int t = 0; t < na; t++)                                                               \
			out[t] = acc[t];                                                                   \
	}

QK_SEQ_KERNEL(qk_seq_avx2, "avx2,f16c,fma", mulsum_avx2)
QK_SEQ_KERNEL(qk_seq_vnni, "avx2,f16c,fma,avx512vnni,avx512vl", mulsum_vnni)

__attribute__((target("avx2,f16c,fma")))
static float dot_q4_0_seq_avx2(const unsigned char *w, const unsigned char *aq, int64_t n)
{
	float acc = 0.0f;
	for (int64_t b = 0; b < n / QK; b++) {
		const unsigned char *x = w + b * 18, *y = aq + b * 34;
		__m256i qx = _mm256_sub_epi8(nibbles32(x + 2), _mm256_set1_epi8(8));
		__m256i qy = _mm256_loadu_si256((const __m256i *)(y + 2));
		int isum = hsum_i32x8(mulsum_avx2(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx)));
		acc = fmaf((float)isum, h2f(x) * h2f(y), acc);
	}
	return acc;
}
#endif

float hark_wk_dot_f32(const float *a, const float *b, int64_t n)
{
	wk_init();
#if WK_X86
	if (g_has_avx2)
		return dot_f32u_avx2((const unsigned char *)a, b, n);
#endif
	return dot_f32_c(a, b, n);
}

float hark_wk_dot_f16(const void *a, const void *b, int64_t n)
{
	/* both fp16: widen b 256 at a time */
	const unsigned char *pa = a, *pb = b;
	float tmp[256];
	float r = 0.0f;
	for (int64_t i = 0; i < n; i += 256) {
		int64_t m = n - i < 256 ? n - i : 256;
		hark_wk_f16_to_f32_row(pb + 2 * i, tmp, m);
#if WK_X86
		if (g_has_avx2) {
			r += dot_f16f32_avx2(pa + 2 * i, tmp, m);
			continue;
		}
#endif
		r += dot_f16f32_c(pa + 2 * i, tmp, m);
	}
	return r;
}

float hark_wk_dot_q(int type, const void *w, const void *aq, int64_t n)
{
	wk_init();
#if WK_X86
	if (g_has_avx2)
		return dot_q_avx2(type, w, aq, n);
#endif
	return dot_q_c(type, w, aq, n);
}

/* --------------------------------------------------------------- scratch -- */

struct hark_wk_scratch {
	void *buf;
	size_t size;
	size_t cap;
};

struct hark_wk_scratch *hark_wk_scratch_new(size_t cap_bytes)
{
	struct hark_wk_scratch *s = calloc(1, sizeof(*s));
	if (s)
		s->cap = cap_bytes ? cap_bytes : ((size_t)1 << 30);
	return s;
}

void hark_wk_scratch_free(struct hark_wk_scratch *s)
{
	if (!s)
		return;
	free(s->buf);
	free(s);
}

size_t hark_wk_scratch_bytes(const struct hark_wk_scratch *s)
{
	return s ? s->size : 0;
}

static int scratch_reserve(struct hark_wk_scratch *s, size_t need)
{
	if (need <= s->size)
		return 0;
	if (need > s->cap)
		return HARK_ERR_NOMEM;
	size_t sz = need + need / 4;
	sz = (sz + 63) & ~(size_t)63;
	if (sz > s->cap)
		sz = need;
	void *p = aligned_alloc(64, (sz + 63) & ~(size_t)63);
	if (!p)
		return HARK_ERR_NOMEM;
	free(s->buf);
	s->buf = p;
	s->size = sz;
	return 0;
}

/* ---------------------------------------------------------------- matmul -- */

#define GEMM_MIN_N 6     /* use the BLAS tile path from this many x rows */
#ifndef GEMM_TILE
#define GEMM_TILE 128    /* W rows per BLAS tile (fixed: thread-invariant) */
#endif
#ifndef GEMM_XCHUNK
#define GEMM_XCHUNK 512  /* activation rows per BLAS call */
#endif
#define DOT_CHUNK 16     /* W rows per task on the dot path */

struct mm_job {
	int type;
	const unsigned char *w;
	int64_t k, rows;
	size_t w_stride;
	const float *x;       /* converted activations (rounded f32) or NULL */
	int64_t ldx;
	const unsigned char *xq; /* quantised activations */
	size_t xq_stride;
	int64_t n;
	float *y;
	int64_t ldy;
	float *tiles;         /* per-thread [GEMM_TILE][k] */
	int seq;              /* Q4_0 with the repacked-kernel arithmetic */
	unsigned char *unp;   /* per-thread unpacked quantised rows */
	size_t unp_stride;
	const int8_t *xl;     /* activation levels [n][k] */
	const float *xd;      /* activation block d [n][nb] */
	const float *xs;      /* activation block s [n][nb] (_1 types) */
	const float *xsrc;    /* activations to quantise */
	int64_t ldxsrc;
	int chunk;
};

static void mm_dot_task(void *ctx, int task, int n_tasks, int thread)
{
	const struct mm_job *j = ctx;
	int64_t r0 = (int64_t)task * j->chunk;
	int64_t r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
#if WK_X86
	if (g_has_avx2 && j->unp && j->n >= 4) {
		/* quantised: unpack the chunk's W rows once, then multiply them
		 * with groups of 4 activation rows (the group stays in L1) */
		int64_t nb = j->k / QK;
		int one = (j->type == HARK_WT_Q4_1 || j->type == HARK_WT_Q5_1);
		size_t kq = ((size_t)j->k + 63) & ~(size_t)63;
		size_t row_bytes = kq + (size_t)nb * 8;
		unsigned char *base = j->unp + (size_t)thread * j->unp_stride;
		for (int64_t r = r0; r < r1; r++) {
			unsigned char *ub = base + (size_t)(r - r0) * row_bytes;
			float *d = (float *)(ub + kq);
			unpack_row_avx2(j->type, j->w + (size_t)r * j->w_stride, nb, (int8_t *)ub, d, d + nb);
		}
		for (int64_t i0 = 0; i0 < j->n; i0 += 4) {
			int na = j->n - i0 < 4 ? (int)(j->n - i0) : 4;
			const int8_t *al[4];
			const float *ad[4], *as[4];
			for (int t = 0; t < na; t++) {
				al[t] = j->xl + (size_t)(i0 + t) * (size_t)j->k;
				ad[t] = j->xd + (size_t)(i0 + t) * (size_t)nb;
				as[t] = one ? j->xs + (size_t)(i0 + t) * (size_t)nb : NULL;
			}
			for (int64_t r = r0; r < r1; r++) {
				const unsigned char *ub = base + (size_t)(r - r0) * row_bytes;
				const float *d = (const float *)(ub + kq);
				float out[4];
				if (j->seq) {
					if (g_has_vnni)
						qk_seq_vnni((const int8_t *)ub, d, nb, na, al, ad, out);
					else
						qk_seq_avx2((const int8_t *)ub, d, nb, na, al, ad, out);
				} else if (g_has_vnni) {
					qk_rows_vnni(one, (const int8_t *)ub, d, d + nb, nb, na, al, ad, as, out);
				} else {
					qk_rows_avx2(one, (const int8_t *)ub, d, d + nb, nb, na, al, ad, as, out);
				}
				for (int t = 0; t < na; t++)
					j->y[(i0 + t) * j->ldy + r] = out[t];
			}
		}
		return;
	}
#endif
	for (int64_t r = r0; r < r1; r++) {
		const unsigned char *wr = j->w + (size_t)r * j->w_stride;
		for (int64_t i = 0; i < j->n; i++) {
			float v;
			if (j->type == HARK_WT_F32) {
#if WK_X86
				v = g_has_avx2 ? dot_f32u_avx2(wr, j->x + i * j->ldx, j->k)
					       : dot_f32u_c(wr, j->x + i * j->ldx, j->k);
#else
				v = dot_f32u_c(wr, j->x + i * j->ldx, j->k);
#endif
			} else if (j->type == HARK_WT_F16) {
#if WK_X86
				v = g_has_avx2 ? dot_f16f32_avx2(wr, j->x + i * j->ldx, j->k)
					       : dot_f16f32_c(wr, j->x + i * j->ldx, j->k);
#else
				v = dot_f16f32_c(wr, j->x + i * j->ldx, j->k);
#endif
			} else {
				const unsigned char *aq = j->xq + (size_t)i * j->xq_stride;
#if WK_X86
				if (j->seq)
					v = g_has_avx2 ? dot_q4_0_seq_avx2(wr, aq, j->k) : dot_q4_0_seq_c(wr, aq, j->k);
				else
					v = g_has_avx2 ? dot_q_avx2(j->type, wr, aq, j->k)
						       : dot_q_c(j->type, wr, aq, j->k);
#else
				v = j->seq ? dot_q4_0_seq_c(wr, aq, j->k) : dot_q_c(j->type, wr, aq, j->k);
#endif
			}
			j->y[i * j->ldy + r] = v;
		}
	}
}

#define QUANT_ROWS 32

/* Quantises activation rows [task*QUANT_ROWS, ...) to q8_0/q8_1 blocks and,
 * for the SIMD kernels, also to plain levels + float scales. */
static void mm_quant_task(void *ctx, int task, int n_tasks, int thread)
{
	const struct mm_job *j = ctx;
	int one = (j->type == HARK_WT_Q4_1 || j->type == HARK_WT_Q5_1);
	int64_t nb = j->k / QK;
	int64_t i0 = (int64_t)task * QUANT_ROWS;
	int64_t i1 = i0 + QUANT_ROWS < j->n ? i0 + QUANT_ROWS : j->n;
	for (int64_t i = i0; i < i1; i++) {
		unsigned char *row = (unsigned char *)j->xq + (size_t)i * j->xq_stride;
		if (one)
			hark_wk_quantize_q8_1(j->xsrc + i * j->ldxsrc, row, j->k);
		else
			hark_wk_quantize_q8_0(j->xsrc + i * j->ldxsrc, row, j->k);
		if (!j->unp)
			continue;
		size_t bs = one ? 36 : 34, ho = one ? 4 : 2;
		int8_t *xl = (int8_t *)j->xl + (size_t)i * (size_t)j->k;
		float *xd = (float *)j->xd + (size_t)i * (size_t)nb;
		float *xs = (float *)j->xs + (size_t)i * (size_t)nb;
		for (int64_t b = 0; b < nb; b++) {
			const unsigned char *blk = row + (size_t)b * bs;
			memcpy(xl + b * QK, blk + ho, QK);
			xd[b] = hark_wk_f16_to_f32(ld16(blk));
			if (one)
				xs[b] = hark_wk_f16_to_f32(ld16(blk + 2));
		}
	}
}

static void mm_gemm_task(void *ctx, int task, int n_tasks, int thread)
{
	const struct mm_job *j = ctx;
	int64_t n_xc = (j->n + GEMM_XCHUNK - 1) / GEMM_XCHUNK;
	int64_t rp = task / n_xc, xc = task % n_xc;
	int64_t r0 = rp * GEMM_TILE;
	int64_t nr = j->rows - r0 < GEMM_TILE ? j->rows - r0 : GEMM_TILE;
	int64_t i0 = xc * GEMM_XCHUNK;
	int64_t ni = j->n - i0 < GEMM_XCHUNK ? j->n - i0 : GEMM_XCHUNK;
	float *t = j->tiles + (size_t)thread * GEMM_TILE * (size_t)j->k;
	for (int64_t r = 0; r < nr; r++) {
		const unsigned char *wr = j->w + (size_t)(r0 + r) * j->w_stride;
		if (j->type == HARK_WT_F16)
			hark_wk_f16_to_f32_row(wr, t + r * j->k, j->k);
		else
			memcpy(t + r * j->k, wr, (size_t)j->k * 4);
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)ni, (blasint)nr, (blasint)j->k,
		    1.0f, j->x + i0 * j->ldx, (blasint)j->ldx, t, (blasint)j->k, 0.0f, j->y + i0 * j->ldy + r0,
		    (blasint)j->ldy);
}

int hark_wk_matmul_raw(int type, const void *w, int64_t k, int64_t rows, size_t w_stride,
		       const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy,
		       struct hark_wk_scratch *s, struct hark_tpool *pool)
{
	return hark_wk_matmul_raw_ex(type, w, k, rows, w_stride, x, ldx, n, y, ldy, 0, s, pool);
}

unsigned hark_wk_tensor_flags(const struct hark_wtensor *w)
{
	if (w && w->type == HARK_WT_Q4_0 && w->n_dims == 2 && w->ne[1] % 8 == 0 &&
	    strcmp(w->name, "decoder.token_embedding.weight") != 0)
		return HARK_WK_Q4_0_REPACKED;
	return 0;
}

int hark_wk_matmul_raw_ex(int type, const void *w, int64_t k, int64_t rows, size_t w_stride,
			  const float *x, int64_t ldx, int64_t n, float *y, int64_t ldy, unsigned flags,
			  struct hark_wk_scratch *s, struct hark_tpool *pool)
{
	wk_init();
	if (!w || !x || !y || k <= 0 || rows <= 0 || n < 0 || ldx < k || ldy < rows)
		return HARK_ERR_INVALID_ARG;
	size_t rs = hark_wk_row_size(type, k);
	if (rs == 0 || type == HARK_WT_Q8_1 || w_stride < rs)
		return HARK_ERR_INVALID_ARG;
	if (n == 0)
		return HARK_OK;
	if (n > ((int64_t)1 << 31) || k > ((int64_t)1 << 31) || rows > ((int64_t)1 << 31))
		return HARK_ERR_INVALID_ARG;

	struct hark_wk_scratch tmp = {NULL, 0, (size_t)1 << 31};
	struct hark_wk_scratch *sc = s ? s : &tmp;
	int nth = hark_tpool_n_threads(pool);
	struct mm_job j = {
		.type = type, .w = w, .k = k, .rows = rows, .w_stride = w_stride,
		.n = n, .y = y, .ldy = ldy, .chunk = DOT_CHUNK,
		.seq = (flags & HARK_WK_Q4_0_REPACKED) && type == HARK_WT_Q4_0,
	};
	int rc = HARK_OK;
	int quant = type != HARK_WT_F32 && type != HARK_WT_F16;
	if (quant) {
		int one = (type == HARK_WT_Q4_1 || type == HARK_WT_Q5_1);
		size_t qrs = hark_wk_row_size(one ? HARK_WT_Q8_1 : HARK_WT_Q8_0, k);
		int64_t nb = k / QK;
		size_t xqb = (qrs * (size_t)n + 63) & ~(size_t)63;
		size_t xlb = 0, xdb = 0, ustride = 0;
		if (g_has_avx2) {
			xlb = ((size_t)n * (size_t)k + 63) & ~(size_t)63;
			xdb = ((size_t)n * (size_t)nb * 4 + 63) & ~(size_t)63;
			ustride = ((((size_t)k + 63) & ~(size_t)63) + (size_t)nb * 8) * DOT_CHUNK + 64;
		}
		rc = scratch_reserve(sc, xqb + xlb + 2 * xdb + ustride * (size_t)nth);
		if (rc)
			goto out;
		unsigned char *xq = sc->buf;
		if (g_has_avx2) {
			unsigned char *p8 = (unsigned char *)sc->buf + xqb;
			j.xl = (const int8_t *)p8;
			/* cppcheck-suppress invalidPointerCast ; 64-byte aligned scratch */
			j.xd = (const float *)(p8 + xlb);
			/* cppcheck-suppress invalidPointerCast ; 64-byte aligned scratch */
			j.xs = (const float *)(p8 + xlb + xdb);
			j.unp = p8 + xlb + 2 * xdb;
			j.unp_stride = ustride;
		}
		j.xq = xq;
		j.xq_stride = qrs;
		j.xsrc = x;
		j.ldxsrc = ldx;
		hark_tpool_run_ex(pool, mm_quant_task, &j, (int)((n + QUANT_ROWS - 1) / QUANT_ROWS));
		int nt = (int)((rows + DOT_CHUNK - 1) / DOT_CHUNK);
		hark_tpool_run_ex(pool, mm_dot_task, &j, nt);
		goto out;
	}

	int gemm = n >= GEMM_MIN_N;
	size_t xbytes = type == HARK_WT_F16 ? (size_t)n * (size_t)k * 4 : 0;
	size_t tbytes = gemm ? (size_t)nth * GEMM_TILE * (size_t)k * 4 : 0;
	rc = scratch_reserve(sc, xbytes + tbytes + 64);
	if (rc)
		goto out;
	if (type == HARK_WT_F16) {
		float *xr = sc->buf;
		for (int64_t i = 0; i < n; i++)
			hark_wk_round_f16_row(x + i * ldx, xr + i * k, k);
		j.x = xr;
		j.ldx = k;
	} else {
		j.x = x;
		j.ldx = ldx;
	}
	if (gemm) {
		/* cppcheck-suppress invalidPointerCast ; 64-byte aligned scratch */
		j.tiles = (float *)((char *)sc->buf + ((xbytes + 63) & ~(size_t)63));
		int nt = (int)(((rows + GEMM_TILE - 1) / GEMM_TILE) * ((n + GEMM_XCHUNK - 1) / GEMM_XCHUNK));
		hark_tpool_run_ex(pool, mm_gemm_task, &j, nt);
	} else {
		int nt = (int)((rows + DOT_CHUNK - 1) / DOT_CHUNK);
		hark_tpool_run_ex(pool, mm_dot_task, &j, nt);
	}
out:
	if (!s)
		free(tmp.buf);
	return rc;
}

int hark_wk_matmul(const struct hark_wtensor *w, const float *x, int64_t n, float *y,
		   struct hark_wk_scratch *s, struct hark_tpool *pool)
{
	if (!w)
		return HARK_ERR_INVALID_ARG;
	int64_t k = w->ne[0];
	size_t rs = hark_wk_row_size(w->type, k);
	if (rs == 0)
		return HARK_ERR_INVALID_ARG;
	int64_t rows = w->ne[1] * w->ne[2] * w->ne[3];
	if ((size_t)rows * rs > w->nbytes)
		return HARK_ERR_INVALID_ARG;
	return hark_wk_matmul_raw_ex(w->type, w->data, k, rows, rs, x, k, n, y, rows, hark_wk_tensor_flags(w), s,
				     pool);
}

int hark_wk_gemm_f16(const uint16_t *a, int64_t lda, int64_t rows, int64_t k,
		     const float *b, int64_t ldb, int64_t n, float *c, int64_t ldc,
		     struct hark_wk_scratch *s, struct hark_tpool *pool)
{
	if (lda < k)
		return HARK_ERR_INVALID_ARG;
	return hark_wk_matmul_raw(HARK_WT_F16, a, k, rows, (size_t)lda * 2, b, ldb, n, c, ldc, s, pool);
}
