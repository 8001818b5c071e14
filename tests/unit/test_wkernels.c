/*
 * Unit tests for the Whisper numeric kernels (src/asr/whisper/wkernels):
 * fp16 conversion exhaustively against hardware F16C (when present) and an
 * independent nearest-value search, activation quantisation and block dot
 * products against straightforward references written here, weight
 * quantisation against the bytes whisper.cpp's quantize tool wrote into the
 * shared micro models, every matmul path against a float64 reference, and
 * thread-count invariance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#include "asr/whisper/wkernels.h"
#include "asr/whisper/wmodel.h"
#include "hark/hark.h"
#include "util/tpool.h"

/* ------------------------------------------------------------- helpers -- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd64(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static float rndf(void) /* roughly N(0,1) */
{
	double s = 0;
	for (int i = 0; i < 4; i++)
		s += (double)(rnd64() >> 11) / 9007199254740992.0;
	return (float)((s - 2.0) * 1.7);
}

static float bits_f(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t f_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

/* Independent decode of a half: sign * mant * 2^(e-25) via ldexp. */
static double ref_h2d(uint16_t h)
{
	int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
	double v;
	if (e == 0)
		v = ldexp((double)m, -24);
	else if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = ldexp((double)(m + 1024), e - 25);
	return s ? -v : v;
}

#if defined(__x86_64__)
__attribute__((target("f16c"))) static float hw_h2f(uint16_t h)
{
	return _cvtsh_ss(h);
}
__attribute__((target("f16c"))) static uint16_t hw_f2h(float f)
{
	return _cvtss_sh(f, 0);
}
static int have_f16c(void)
{
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1) && ((c >> 27) & 1);
}
#endif

/* Nearest finite half to f by search over all positive halves, ties to even
 * mantissa; +-inf when |f| >= 65520. */
static uint16_t ref_f2h(float f)
{
	static double tab[0x7c01];
	static int init;
	if (!init) {
		for (int i = 0; i <= 0x7c00; i++)
			tab[i] = ref_h2d((uint16_t)i);
		init = 1;
	}
	uint16_t sign = (f_bits(f) >> 16) & 0x8000;
	double a = fabs((double)f);
	if (a >= 65520.0)
		return sign | 0x7c00;
	int lo = 0, hi = 0x7bff; /* largest finite */
	while (lo < hi) { /* first index with tab >= a */
		int mid = (lo + hi) / 2;
		if (tab[mid] >= a)
			hi = mid;
		else
			lo = mid + 1;
	}
	int best = lo;
	if (lo > 0) {
		double dlo = a - tab[lo - 1], dhi = tab[lo] - a;
		if (dlo < dhi || (dlo == dhi && ((lo - 1) & 1) == 0))
			best = lo - 1;
	}
	return (uint16_t)(sign | best);
}

/* ------------------------------------------------------------------ fp16 -- */

static void test_f16_to_f32_exhaustive(void **state)
{
	(void)state;
	int hw = 0;
#if defined(__x86_64__)
	hw = have_f16c();
#endif
	for (uint32_t h = 0; h < 65536; h++) {
		float f = hark_wk_f16_to_f32((uint16_t)h);
		double r = ref_h2d((uint16_t)h);
		if (isnan(r)) {
			assert_true(isnan(f));
		} else {
			assert_true((double)f == r);
			assert_int_equal(signbit(f) != 0, (h >> 15) != 0);
			/* round trip */
			assert_int_equal(hark_wk_f32_to_f16(f), h);
		}
#if defined(__x86_64__)
		if (hw)
			assert_int_equal(f_bits(f), f_bits(hw_h2f((uint16_t)h)));
#endif
	}
	/* row conversion agrees with the scalar one, unaligned source */
	unsigned char buf[2 * 1001 + 1];
	float out[1000];
	for (int i = 0; i < 1000; i++) {
		uint16_t h = (uint16_t)(rnd64() & 0xffff);
		buf[1 + 2 * i] = (unsigned char)h;
		buf[2 + 2 * i] = (unsigned char)(h >> 8);
	}
	hark_wk_f16_to_f32_row(buf + 1, out, 1000);
	for (int i = 0; i < 1000; i++) {
		uint16_t h = (uint16_t)(buf[1 + 2 * i] | (buf[2 + 2 * i] << 8));
		float f = hark_wk_f16_to_f32(h);
		assert_true(f_bits(f) == f_bits(out[i]) || (isnan(f) && isnan(out[i])));
	}
}

static void check_f2h(float f, int hw)
{
	uint16_t got = hark_wk_f32_to_f16(f);
	if (isnan(f)) {
		assert_true((got & 0x7c00) == 0x7c00 && (got & 0x3ff));
	} else {
		uint16_t want = ref_f2h(f);
		if (got != want)
			print_error("f32_to_f16(%a) = %04x, want %04x\n", (double)f, got, want);
		assert_int_equal(got, want);
	}
#if defined(__x86_64__)
	if (hw)
		assert_int_equal(got, hw_f2h(f));
#else
	(void)hw;
#endif
}

static void test_f32_to_f16(void **state)
{
	(void)state;
	int hw = 0;
#if defined(__x86_64__)
	hw = have_f16c();
#endif
	/* a dense sweep over all bit patterns with a prime stride */
	for (uint64_t u = 0; u <= 0xffffffffULL; u += 4099)
		check_f2h(bits_f((uint32_t)u), hw);
	/* every half, its neighbours and the exact midpoints between halves */
	for (uint32_t h = 0; h < 0x7c00; h++) {
		float f = hark_wk_f16_to_f32((uint16_t)h);
		float g = hark_wk_f16_to_f32((uint16_t)(h + 1));
		float mid = (float)(((double)f + (double)g) / 2); /* exact in f32 */
		check_f2h(mid, hw);
		check_f2h(-mid, hw);
		check_f2h(nextafterf(mid, 0), hw);
		check_f2h(nextafterf(mid, INFINITY), hw);
		check_f2h(nextafterf(f, INFINITY), hw);
	}
	check_f2h(65519.99f, hw);
	check_f2h(65520.0f, hw);
	check_f2h(1e-30f, hw);
	check_f2h(INFINITY, hw);
	check_f2h(-INFINITY, hw);
	/* row rounding equals scalar rounding */
	float x[777], y[777];
	for (int i = 0; i < 777; i++)
		x[i] = rndf() * 100;
	hark_wk_round_f16_row(x, y, 777);
	for (int i = 0; i < 777; i++)
		assert_int_equal(f_bits(y[i]), f_bits(hark_wk_round_f16(x[i])));
}

/* -------------------------------------------------------- quantisation -- */

/* Straightforward q8 activation reference (ggml AVX semantics). */
static void ref_q8(const float *x, int8_t *q, float *d, int *sum)
{
	float amax = 0;
	for (int j = 0; j < 32; j++)
		if (fabsf(x[j]) > amax)
			amax = fabsf(x[j]);
	*d = amax / 127.f;
	float id = amax != 0 ? 127.f / amax : 0.f;
	*sum = 0;
	for (int j = 0; j < 32; j++) {
		float v = x[j] * id;
		float r = floorf(v);
		float fr = v - r;
		if (fr > 0.5f || (fr == 0.5f && fmodf(r, 2.0f) != 0))
			r += 1;
		q[j] = (int8_t)r;
		*sum += q[j];
	}
}

static uint16_t rd16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static void test_quantize_activations(void **state)
{
	(void)state;
	enum { N = 32 * 40 };
	float x[N];
	unsigned char q0[40 * 34], q1[40 * 36];
	for (int i = 0; i < N; i++)
		x[i] = rndf() * (i < 32 ? 0.f : (float)(1 + i % 7));
	x[40] = 0.5f * 127.f / 127.f; /* some exact halves after scaling */
	hark_wk_quantize_q8_0(x, q0, N);
	hark_wk_quantize_q8_1(x, q1, N);
	for (int b = 0; b < N / 32; b++) {
		int8_t q[32];
		float d;
		int sum;
		ref_q8(x + 32 * b, q, &d, &sum);
		assert_int_equal(rd16(q0 + 34 * b), hark_wk_f32_to_f16(d));
		assert_memory_equal(q0 + 34 * b + 2, q, 32);
		assert_int_equal(rd16(q1 + 36 * b), hark_wk_f32_to_f16(d));
		assert_int_equal(rd16(q1 + 36 * b + 2), hark_wk_f32_to_f16(d * (float)sum));
		assert_memory_equal(q1 + 36 * b + 4, q, 32);
	}
	/* ties: x*id exactly k + 0.5 must round to even */
	float t[32] = {0};
	t[0] = 127.f;  /* amax 127 -> id = 1 */
	t[1] = 2.5f;
	t[2] = 3.5f;
	t[3] = -2.5f;
	hark_wk_quantize_q8_0(t, q0, 32);
	assert_int_equal((int8_t)q0[2 + 1], 2);
	assert_int_equal((int8_t)q0[2 + 2], 4);
	assert_int_equal((int8_t)q0[2 + 3], -2);
}

/* Independent unpacking of one weight block: levels with offsets applied. */
static void ref_unpack(int type, const unsigned char *b, int *q, double *d, double *m)
{
	*d = ref_h2d(rd16(b));
	*m = 0;
	uint32_t qh = 0;
	const unsigned char *qs = NULL;
	switch (type) {
	case HARK_WT_Q4_0: qs = b + 2; break;
	case HARK_WT_Q4_1: *m = ref_h2d(rd16(b + 2)); qs = b + 4; break;
	case HARK_WT_Q5_0: qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24; qs = b + 6; break;
	case HARK_WT_Q5_1: *m = ref_h2d(rd16(b + 2)); qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24; qs = b + 8; break;
	case HARK_WT_Q8_0:
		for (int j = 0; j < 32; j++)
			q[j] = (signed char)b[2 + j];
		return;
	}
	for (int j = 0; j < 32; j++) {
		int nib = j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
		int hb = (type == HARK_WT_Q5_0 || type == HARK_WT_Q5_1) ? (int)((qh >> j) & 1) << 4 : 0;
		int v = nib | hb;
		if (type == HARK_WT_Q4_0)
			v -= 8;
		if (type == HARK_WT_Q5_0)
			v -= 16;
		q[j] = v;
	}
}

static const int qtypes[] = {HARK_WT_Q4_0, HARK_WT_Q4_1, HARK_WT_Q5_0, HARK_WT_Q5_1, HARK_WT_Q8_0};

static void test_weight_quant_roundtrip(void **state)
{
	(void)state;
	enum { N = 32 * 64 };
	float x[N], y[N];
	unsigned char buf[N * 2];
	for (int i = 0; i < N; i++)
		x[i] = rndf() * 0.05f;
	for (size_t t = 0; t < sizeof(qtypes) / sizeof(qtypes[0]); t++) {
		int type = qtypes[t];
		assert_int_equal(hark_wk_quantize_weights(type, x, buf, N), 0);
		assert_int_equal(hark_wk_dequantize(type, buf, y, N), 0);
		size_t ts = hark_wk_type_size(type);
		for (int b = 0; b < N / 32; b++) {
			int q[32];
			double d, m;
			ref_unpack(type, buf + ts * (size_t)b, q, &d, &m);
			for (int j = 0; j < 32; j++) {
				double want = q[j] * d + m;
				assert_true(fabs(want - (double)y[32 * b + j]) <= 1e-6 * fabs(want) + 1e-12);
				/* quantisation error bounded by about one step */
				assert_true(fabs((double)x[32 * b + j] - want) <= fabs(d) * 1.01 + 1e-4);
			}
		}
	}
	assert_int_not_equal(hark_wk_quantize_weights(HARK_WT_Q8_0, x, buf, 31), 0);
}

static void test_dot_q(void **state)
{
	(void)state;
	enum { N = 32 * 24 };
	float w[N], a[N];
	unsigned char wq[N * 2], aq[N * 2];
	for (int i = 0; i < N; i++) {
		w[i] = rndf() * 0.1f;
		a[i] = rndf() * 3.0f;
	}
	for (size_t t = 0; t < sizeof(qtypes) / sizeof(qtypes[0]); t++) {
		int type = qtypes[t];
		int one = type == HARK_WT_Q4_1 || type == HARK_WT_Q5_1;
		hark_wk_quantize_weights(type, w, wq, N);
		if (one)
			hark_wk_quantize_q8_1(a, aq, N);
		else
			hark_wk_quantize_q8_0(a, aq, N);
		size_t ts = hark_wk_type_size(type), as = one ? 36 : 34;
		double ref = 0, mag = 0;
		for (int b = 0; b < N / 32; b++) {
			int q[32];
			double d, m;
			ref_unpack(type, wq + ts * (size_t)b, q, &d, &m);
			const unsigned char *ab = aq + as * (size_t)b;
			double da = ref_h2d(rd16(ab));
			const signed char *qa = (const signed char *)(ab + (one ? 4 : 2));
			long isum = 0;
			for (int j = 0; j < 32; j++)
				isum += (long)q[j] * qa[j];
			ref += (double)isum * (double)(float)(d * da);
			mag += fabs((double)isum * d * da);
			if (one) {
				ref += m * ref_h2d(rd16(ab + 2));
				mag += fabs(m * ref_h2d(rd16(ab + 2)));
			}
		}
		float got = hark_wk_dot_q(type, wq, aq, N);
		if (fabs(got - ref) > 1e-5 * mag + 1e-6)
			print_error("%s: got %.9g want %.9g\n", hark_wk_type_name(type), got, ref);
		assert_true(fabs(got - ref) <= 1e-5 * mag + 1e-6);
	}
}

/* --------------------------------------------------------------- matmul -- */

/* float64 reference of y = x W^T with ggml's rounding of the activations:
 * f16 weights see fp16-rounded x; q weights see q8 blocks (d rounded to
 * fp16) and, for the _1 types, the min term uses s = fp16(d * sum(q)). */
static void ref_matmul(int type, const void *wdata, int64_t k, int64_t rows, const float *x, int64_t n,
		       double *y, double *mag)
{
	size_t rs = hark_wk_row_size(type, k);
	int64_t nb = k / 32;
	double *xr = malloc(sizeof(double) * (size_t)k);
	double *wr = malloc(sizeof(double) * (size_t)k);
	int8_t *qa = malloc((size_t)k);
	double *da = malloc(sizeof(double) * (size_t)(nb + 1));
	double *sa = malloc(sizeof(double) * (size_t)(nb + 1));
	int one = type == HARK_WT_Q4_1 || type == HARK_WT_Q5_1;
	int quant = type != HARK_WT_F32 && type != HARK_WT_F16;
	for (int64_t i = 0; i < n; i++) {
		const float *xi = x + i * k;
		if (type == HARK_WT_F16) {
			for (int64_t j = 0; j < k; j++)
				xr[j] = ref_h2d(ref_f2h(xi[j]));
		} else if (type == HARK_WT_F32) {
			for (int64_t j = 0; j < k; j++)
				xr[j] = xi[j];
		} else {
			for (int64_t b = 0; b < nb; b++) {
				float d;
				int sum;
				ref_q8(xi + 32 * b, qa + 32 * b, &d, &sum);
				da[b] = ref_h2d(ref_f2h(d));
				sa[b] = ref_h2d(ref_f2h(d * (float)sum));
			}
		}
		for (int64_t r = 0; r < rows; r++) {
			const unsigned char *wb = (const unsigned char *)wdata + rs * (size_t)r;
			double s = 0, a = 0;
			if (type == HARK_WT_F32 || type == HARK_WT_F16) {
				for (int64_t j = 0; j < k; j++) {
					if (type == HARK_WT_F32) {
						float v;
						memcpy(&v, wb + 4 * j, 4);
						wr[j] = v;
					} else {
						wr[j] = ref_h2d(rd16(wb + 2 * j));
					}
					s += wr[j] * xr[j];
					a += fabs(wr[j] * xr[j]);
				}
			}
			if (quant) {
				size_t ts = hark_wk_type_size(type);
				for (int64_t b = 0; b < nb; b++) {
					int q[32];
					double d, m;
					long isum = 0;
					ref_unpack(type, wb + ts * (size_t)b, q, &d, &m);
					for (int j = 0; j < 32; j++)
						isum += (long)q[j] * qa[32 * b + j];
					double blk = (double)isum * d * da[b] + (one ? m * sa[b] : 0.0);
					s += blk;
					a += fabs((double)isum * d * da[b]) + (one ? fabs(m * sa[b]) : 0.0);
				}
			}
			y[i * rows + r] = s;
			mag[i * rows + r] = a;
		}
	}
	free(xr);
	free(wr);
	free(qa);
	free(da);
	free(sa);
}

static void check_matmul(int type, int64_t k, int64_t rows, int64_t n, struct hark_tpool *pool,
			 struct hark_wk_scratch *sc)
{
	float *wf = malloc(sizeof(float) * (size_t)(k * rows));
	float *x = malloc(sizeof(float) * (size_t)(k * n));
	size_t rs = hark_wk_row_size(type, k);
	unsigned char *wq = malloc(rs * (size_t)rows + 1);
	float *y = malloc(sizeof(float) * (size_t)(n * rows));
	double *yr = malloc(sizeof(double) * (size_t)(n * rows));
	double *mg = malloc(sizeof(double) * (size_t)(n * rows));
	for (int64_t i = 0; i < k * rows; i++)
		wf[i] = rndf() / sqrtf((float)k);
	for (int64_t i = 0; i < k * n; i++)
		x[i] = rndf();
	/* store W at an odd address to exercise unaligned reads */
	assert_int_equal(hark_wk_quantize_weights(type, wf, wq + 1, k * rows), 0);
	struct hark_wtensor t = {.type = type, .n_dims = 2, .ne = {k, rows, 1, 1}, .data = wq + 1,
				 .nbytes = rs * (size_t)rows};
	snprintf(t.name, sizeof(t.name), "test");
	assert_int_equal(hark_wk_matmul(&t, x, n, y, sc, pool), HARK_OK);
	ref_matmul(type, wq + 1, k, rows, x, n, yr, mg);
	for (int64_t i = 0; i < n * rows; i++) {
		double tol = 2e-6 * mg[i] + 1e-6;
		if (fabs(y[i] - yr[i]) > tol) {
			print_error("%s k=%lld rows=%lld n=%lld: y[%lld]=%.9g ref %.9g\n", hark_wk_type_name(type),
				    (long long)k, (long long)rows, (long long)n, (long long)i, y[i], yr[i]);
			fail();
		}
	}
	/* get_row gives the dequantised row */
	float *row = malloc(sizeof(float) * (size_t)k);
	assert_int_equal(hark_wk_get_row(&t, rows - 1, row), 0);
	float *deq = malloc(sizeof(float) * (size_t)k);
	hark_wk_dequantize(type, wq + 1 + rs * (size_t)(rows - 1), deq, k);
	assert_memory_equal(row, deq, sizeof(float) * (size_t)k);
	assert_int_equal(hark_wk_get_row(&t, rows, row), -1);
	free(deq);
	free(row);
	free(wf);
	free(x);
	free(wq);
	free(y);
	free(yr);
	free(mg);
}

static const int all_types[] = {HARK_WT_F32, HARK_WT_F16, HARK_WT_Q4_0, HARK_WT_Q4_1,
				HARK_WT_Q5_0, HARK_WT_Q5_1, HARK_WT_Q8_0};

static void test_matmul_all_types(void **state)
{
	(void)state;
	struct hark_wk_scratch *sc = hark_wk_scratch_new(0);
	struct hark_tpool *pool = hark_tpool_new(2);
	assert_non_null(sc);
	assert_non_null(pool);
	for (size_t t = 0; t < sizeof(all_types) / sizeof(all_types[0]); t++) {
		check_matmul(all_types[t], 64, 40, 1, NULL, sc);     /* decoder-like */
		check_matmul(all_types[t], 96, 130, 3, pool, sc);
		check_matmul(all_types[t], 128, 150, 37, pool, NULL); /* BLAS tile path */
		check_matmul(all_types[t], 64, 140, 530, pool, sc);   /* > one activation chunk */
	}
	hark_tpool_free(pool);
	hark_wk_scratch_free(sc);
}

static void run_mm(int type, const void *w, int64_t k, int64_t rows, const float *x, int64_t n, float *y,
		   int threads)
{
	struct hark_tpool *pool = hark_tpool_new(threads);
	struct hark_wk_scratch *sc = hark_wk_scratch_new(0);
	assert_int_equal(hark_wk_matmul_raw(type, w, k, rows, hark_wk_row_size(type, k), x, k, n, y, rows, sc, pool),
			 HARK_OK);
	hark_wk_scratch_free(sc);
	hark_tpool_free(pool);
}

static void test_thread_invariance(void **state)
{
	(void)state;
	const int64_t k = 256, rows = 300;
	const int64_t ns[] = {1, 4, 70, 600}; /* 600: several activation chunks */
	float *wf = malloc(sizeof(float) * (size_t)(k * rows));
	float *x = malloc(sizeof(float) * (size_t)(k * 600));
	unsigned char *wq = malloc((size_t)(k * rows) * 4);
	float *y1 = malloc(sizeof(float) * (size_t)(600 * rows));
	float *y2 = malloc(sizeof(float) * (size_t)(600 * rows));
	float *y3 = malloc(sizeof(float) * (size_t)(600 * rows));
	for (int64_t i = 0; i < k * rows; i++)
		wf[i] = rndf() * 0.05f;
	for (int64_t i = 0; i < k * 600; i++)
		x[i] = rndf();
	for (size_t t = 0; t < sizeof(all_types) / sizeof(all_types[0]); t++) {
		hark_wk_quantize_weights(all_types[t], wf, wq, k * rows);
		for (size_t c = 0; c < 4; c++) {
			run_mm(all_types[t], wq, k, rows, x, ns[c], y1, 1);
			run_mm(all_types[t], wq, k, rows, x, ns[c], y2, 2);
			run_mm(all_types[t], wq, k, rows, x, ns[c], y3, 3);
			assert_memory_equal(y1, y2, sizeof(float) * (size_t)(ns[c] * rows));
			assert_memory_equal(y1, y3, sizeof(float) * (size_t)(ns[c] * rows));
		}
	}
	free(wf);
	free(x);
	free(wq);
	free(y1);
	free(y2);
	free(y3);
}

/* The portable quantised kernels reproduce the SIMD ones bit for bit (both
 * follow ggml's AVX2 lane order), so results do not depend on the CPU. */
static void test_portable_matches_simd(void **state)
{
	(void)state;
	const int64_t k = 384, rows = 70, n = 9;
	float *wf = malloc(sizeof(float) * (size_t)(k * rows));
	float *x = malloc(sizeof(float) * (size_t)(k * n));
	unsigned char *wq = malloc((size_t)(k * rows) * 4);
	float *y1 = malloc(sizeof(float) * (size_t)(n * rows));
	float *y2 = malloc(sizeof(float) * (size_t)(n * rows));
	for (int64_t i = 0; i < k * rows; i++)
		wf[i] = rndf() * 0.05f;
	for (int64_t i = 0; i < k * n; i++)
		x[i] = rndf() * 2;
	for (size_t t = 0; t < sizeof(qtypes) / sizeof(qtypes[0]); t++) {
		hark_wk_quantize_weights(qtypes[t], wf, wq, k * rows);
		size_t rs = hark_wk_row_size(qtypes[t], k);
		assert_int_equal(hark_wk_matmul_raw(qtypes[t], wq, k, rows, rs, x, k, n, y1, rows, NULL, NULL), 0);
		hark_wk_force_portable(1);
		assert_int_equal(hark_wk_matmul_raw(qtypes[t], wq, k, rows, rs, x, k, n, y2, rows, NULL, NULL), 0);
		hark_wk_force_portable(0);
		if (memcmp(y1, y2, sizeof(float) * (size_t)(n * rows)) != 0) {
			print_error("%s: portable and SIMD kernels differ\n", hark_wk_type_name(qtypes[t]));
			fail();
		}
	}
	/* the repacked-Q4_0 arithmetic: portable == SIMD (n = 1 and n >= 4
	 * paths), close to the standard one, but not identical to it */
	hark_wk_quantize_weights(HARK_WT_Q4_0, wf, wq, k * rows);
	size_t rs = hark_wk_row_size(HARK_WT_Q4_0, k);
	float *y3 = malloc(sizeof(float) * (size_t)(n * rows));
	for (int64_t nn = 1; nn <= n; nn += n - 1) {
		assert_int_equal(hark_wk_matmul_raw_ex(HARK_WT_Q4_0, wq, k, rows, rs, x, k, nn, y1, rows,
						       HARK_WK_Q4_0_REPACKED, NULL, NULL), 0);
		hark_wk_force_portable(1);
		assert_int_equal(hark_wk_matmul_raw_ex(HARK_WT_Q4_0, wq, k, rows, rs, x, k, nn, y2, rows,
						       HARK_WK_Q4_0_REPACKED, NULL, NULL), 0);
		hark_wk_force_portable(0);
		assert_memory_equal(y1, y2, sizeof(float) * (size_t)(nn * rows));
		assert_int_equal(hark_wk_matmul_raw(HARK_WT_Q4_0, wq, k, rows, rs, x, k, nn, y3, rows, NULL, NULL), 0);
		int differ = 0;
		for (int64_t i = 0; i < nn * rows; i++) {
			assert_true(fabsf(y1[i] - y3[i]) <= 1e-5f * (fabsf(y3[i]) + 1.0f));
			differ += y1[i] != y3[i];
		}
		assert_true(differ > 0); /* the summation order really differs */
	}
	free(y3);
	free(wf);
	free(x);
	free(wq);
	free(y1);
	free(y2);
}

static void test_gemm_f16_strided(void **state)
{
	(void)state;
	/* a: 20 rows of 48 halves inside a row stride of 64; b: 7 rows, ldb 50 */
	const int64_t k = 48, rows = 20, lda = 64, n = 7, ldb = 50, ldc = 25;
	uint16_t a[20 * 64];
	float b[7 * 50], c[7 * 25];
	for (int i = 0; i < 20 * 64; i++)
		a[i] = hark_wk_f32_to_f16(rndf());
	for (int i = 0; i < 7 * 50; i++)
		b[i] = rndf();
	for (int i = 0; i < 7 * 25; i++)
		c[i] = 12345.f;
	assert_int_equal(hark_wk_gemm_f16(a, lda, rows, k, b, ldb, n, c, ldc, NULL, NULL), HARK_OK);
	for (int64_t i = 0; i < n; i++) {
		for (int64_t r = 0; r < ldc; r++) {
			if (r >= rows) {
				assert_true(c[i * ldc + r] == 12345.f); /* untouched */
				continue;
			}
			double s = 0, m = 0;
			for (int64_t j = 0; j < k; j++) {
				double p = ref_h2d(a[r * lda + j]) * ref_h2d(ref_f2h(b[i * ldb + j]));
				s += p;
				m += fabs(p);
			}
			assert_true(fabs(c[i * ldc + r] - s) <= 2e-6 * m + 1e-7);
		}
	}
	/* bad arguments */
	assert_int_equal(hark_wk_gemm_f16(a, 10, rows, k, b, ldb, n, c, ldc, NULL, NULL), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_wk_matmul_raw(HARK_WT_Q8_0, a, 40, 2, 100, b, 50, 1, c, 25, NULL, NULL),
			 HARK_ERR_INVALID_ARG);
}

static void test_scratch_cap(void **state)
{
	(void)state;
	struct hark_wk_scratch *sc = hark_wk_scratch_new(1024);
	float w[64 * 64], x[64 * 64], y[64 * 64];
	for (int i = 0; i < 64 * 64; i++)
		w[i] = x[i] = 0.5f;
	/* f16 path needs n*k*4 bytes of scratch: over a 1 KiB cap */
	uint16_t wh[64 * 64];
	hark_wk_f32_to_f16_row(w, wh, 64 * 64);
	assert_int_equal(hark_wk_matmul_raw(HARK_WT_F16, wh, 64, 64, 128, x, 64, 64, y, 64, sc, NULL),
			 HARK_ERR_NOMEM);
	hark_wk_scratch_free(sc);
}

/* whisper.cpp's quantize tool made micro-en-q*.bin from micro-en.bin: our
 * weight quantiser must reproduce its bytes exactly. */
static void test_weight_quant_matches_whisper_cpp(void **state)
{
	(void)state;
	const char *sh = getenv("HARK_SHARED");
	char p16[1024], pq[1024], err[256];
	if (!sh)
		sh = "../shared";
	snprintf(p16, sizeof(p16), "%s/whisper/models/micro-en.bin", sh);
	struct hark_wmodel *m16 = NULL;
	if (hark_wmodel_load(p16, &m16, err, sizeof(err)) != HARK_OK) {
		skip();
		return;
	}
	const char *names[] = {"q4_0", "q5_0", "q5_1", "q8_0"};
	const int types[] = {HARK_WT_Q4_0, HARK_WT_Q5_0, HARK_WT_Q5_1, HARK_WT_Q8_0};
	for (int q = 0; q < 4; q++) {
		snprintf(pq, sizeof(pq), "%s/whisper/models/micro-en-%s.bin", sh, names[q]);
		struct hark_wmodel *mq = NULL;
		assert_int_equal(hark_wmodel_load(pq, &mq, err, sizeof(err)), HARK_OK);
		int checked = 0;
		for (int i = 0; i < mq->n_tensors; i++) {
			const struct hark_wtensor *tq = &mq->tensors[i];
			if (tq->type != types[q])
				continue;
			const struct hark_wtensor *tf = hark_wmodel_tensor(m16, tq->name);
			assert_non_null(tf);
			assert_int_equal(tf->type, HARK_WT_F16);
			int64_t ne = tf->ne[0] * tf->ne[1] * tf->ne[2];
			float *f = malloc(sizeof(float) * (size_t)ne);
			unsigned char *out = malloc(tq->nbytes);
			hark_wk_f16_to_f32_row(tf->data, f, ne);
			assert_int_equal(hark_wk_quantize_weights(types[q], f, out, ne), 0);
			if (memcmp(out, tq->data, tq->nbytes) != 0) {
				print_error("%s: tensor %s differs from whisper.cpp's quantisation\n", names[q], tq->name);
				fail();
			}
			free(out);
			free(f);
			checked++;
		}
		assert_int_equal(checked, 33);
		hark_wmodel_free(mq);
	}
	hark_wmodel_free(m16);
}

static void test_tensor_flags(void **state)
{
	(void)state;
	const char *sh = getenv("HARK_SHARED");
	char path[1024], err[256];
	snprintf(path, sizeof(path), "%s/whisper/models/micro-en-q4_0.bin", sh ? sh : "../shared");
	struct hark_wmodel *m = NULL;
	if (hark_wmodel_load(path, &m, err, sizeof(err)) != HARK_OK) {
		skip();
		return;
	}
	int flagged = 0;
	for (int i = 0; i < m->n_tensors; i++)
		flagged += hark_wk_tensor_flags(&m->tensors[i]) != 0;
	assert_int_equal(flagged, 32); /* 33 q4_0 tensors minus the token embedding */
	assert_int_equal(hark_wk_tensor_flags(m->d_te), 0);
	assert_int_equal(hark_wk_tensor_flags(m->enc[0].mlp_0_w), HARK_WK_Q4_0_REPACKED);
	assert_int_equal(hark_wk_tensor_flags(m->e_conv1_w), 0);
	hark_wmodel_free(m);
}

static void test_type_geometry(void **state)
{
	(void)state;
	assert_int_equal(hark_wk_type_size(HARK_WT_Q4_0), 18);
	assert_int_equal(hark_wk_type_size(HARK_WT_Q5_1), 24);
	assert_int_equal(hark_wk_row_size(HARK_WT_Q8_0, 64), 68);
	assert_int_equal(hark_wk_row_size(HARK_WT_Q8_0, 63), 0);
	assert_int_equal(hark_wk_row_size(HARK_WT_F16, 63), 126);
	assert_int_equal(hark_wk_type_block(42), 0);
	assert_string_equal(hark_wk_type_name(HARK_WT_Q5_0), "q5_0");
	assert_non_null(hark_wk_cpu_features());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_geometry),
		cmocka_unit_test(test_tensor_flags),
		cmocka_unit_test(test_f16_to_f32_exhaustive),
		cmocka_unit_test(test_f32_to_f16),
		cmocka_unit_test(test_quantize_activations),
		cmocka_unit_test(test_weight_quant_roundtrip),
		cmocka_unit_test(test_dot_q),
		cmocka_unit_test(test_matmul_all_types),
		cmocka_unit_test(test_thread_invariance),
		cmocka_unit_test(test_portable_matches_simd),
		cmocka_unit_test(test_gemm_f16_strided),
		cmocka_unit_test(test_scratch_cap),
		cmocka_unit_test(test_weight_quant_matches_whisper_cpp),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
