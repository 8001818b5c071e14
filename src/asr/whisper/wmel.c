/*
 * Incremental Whisper log-mel spectrogram (see wmel.h). Frame i covers the
 * padded signal [160 i, 160 i + 400), where the padded signal is 200 samples
 * of reflection (x[200] .. x[1]), the input, then zeros (whisper.cpp's
 * 30 s + 200 sample pad). A frame is computed once the input reaches its last
 * sample; frames overlapping the end are computed at finish(). Only the log10
 * values (before the global-max clamp) are stored, frame-major.
 */
#include "asr/whisper/wmel.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "asr/whisper/wmelstore.h"
#include "hark/hark.h"

#define BUF_CAP 16384  /* samples held at once (>= 400 + a feed slice) */
#define HEAD_N 201     /* x[0..200] kept for the reflective pad */

static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

struct hark_wmel {
	int n_mel;
	int use_fftw;
	float sinv[HARK_WMEL_N_FFT], cosv[HARK_WMEL_N_FFT];
	float wf_in[2 * HARK_WMEL_N_FFT];       /* whisper FFT scratch (input + halves) */
	float wf_out[8 * HARK_WMEL_N_FFT];      /* whisper FFT output + sub-results */
	float *filters;          /* [n_mel][201] */
	float hann[HARK_WMEL_N_FFT];
	float *fin;              /* fftw buffers */
	fftwf_complex *fout;
	fftwf_plan plan;
	float power[HARK_WMEL_N_BINS];

	float head[HEAD_N];      /* first samples, for the reflection */
	float *buf;              /* samples [buf_lo, buf_lo + buf_n) */
	size_t buf_lo, buf_n;
	size_t n_fed;

	struct hark_wmelstore *store; /* frames [n_frames][n_mel], pre-clamp log10 */
	size_t n_frames;

	int finished;
	int n_len, n_len_org;
	double clamp;            /* global max - 8 (double, as whisper.cpp) */
};

int hark_wmel_new(int n_mel, const float *filters, struct hark_wmel **out)
{
	return hark_wmel_new_ex(n_mel, filters, 0, out);
}

int hark_wmel_new_ex(int n_mel, const float *filters, int use_fftw, struct hark_wmel **out)
{
	return hark_wmel_new_store(n_mel, filters, use_fftw, NULL, out);
}

int hark_wmel_new_store(int n_mel, const float *filters, int use_fftw,
			const struct hark_wmelstore_params *sp, struct hark_wmel **out)
{
	*out = NULL;
	if (n_mel <= 0 || n_mel > 512 || !filters)
		return HARK_ERR_INVALID_ARG;
	struct hark_wmel *m = calloc(1, sizeof(*m));
	if (!m)
		return HARK_ERR_NOMEM;
	m->n_mel = n_mel;
	m->use_fftw = use_fftw;
	for (int i = 0; i < HARK_WMEL_N_FFT; i++) {
		const double theta = (2 * M_PI * i) / HARK_WMEL_N_FFT;
		m->sinv[i] = sinf((float)theta);
		m->cosv[i] = cosf((float)theta);
	}
	m->filters = malloc(sizeof(float) * (size_t)n_mel * HARK_WMEL_N_BINS);
	m->buf = malloc(sizeof(float) * BUF_CAP);
	m->fin = fftwf_malloc(sizeof(float) * HARK_WMEL_N_FFT);
	m->fout = fftwf_malloc(sizeof(fftwf_complex) * HARK_WMEL_N_BINS);
	if (!m->filters || !m->buf || !m->fin || !m->fout) {
		hark_wmel_free(m);
		return HARK_ERR_NOMEM;
	}
	memcpy(m->filters, filters, sizeof(float) * (size_t)n_mel * HARK_WMEL_N_BINS);
	/* whisper.cpp: 0.5 * (1.0 - cosf((2.0 * M_PI * i) / 400)), periodic. */
	for (int i = 0; i < HARK_WMEL_N_FFT; i++)
		m->hann[i] = (float)(0.5 * (1.0 - cosf((float)((2.0 * M_PI * i) / HARK_WMEL_N_FFT))));
	pthread_mutex_lock(&plan_lock);
	m->plan = fftwf_plan_dft_r2c_1d(HARK_WMEL_N_FFT, m->fin, m->fout, FFTW_ESTIMATE);
	pthread_mutex_unlock(&plan_lock);
	if (!m->plan) {
		hark_wmel_free(m);
		return HARK_ERR_NOMEM;
	}
	struct hark_wmelstore_params dp = hark_wmelstore_default_params();
	dp.max_frames = HARK_WMEL_MAX_FRAMES;
	if (hark_wmelstore_open(n_mel, sp ? sp : &dp, &m->store)) {
		hark_wmel_free(m);
		return HARK_ERR_NOMEM;
	}
	*out = m;
	return HARK_OK;
}

void hark_wmel_free(struct hark_wmel *m)
{
	if (!m)
		return;
	if (m->plan) {
		pthread_mutex_lock(&plan_lock);
		fftwf_destroy_plan(m->plan);
		pthread_mutex_unlock(&plan_lock);
	}
	fftwf_free(m->fin);
	fftwf_free(m->fout);
	hark_wmelstore_close(m->store);
	free(m->buf);
	free(m->filters);
	free(m);
}

size_t hark_wmel_n_samples(const struct hark_wmel *m) { return m->n_fed; }
int hark_wmel_n_len(const struct hark_wmel *m) { return m->n_len; }
int hark_wmel_n_len_org(const struct hark_wmel *m) { return m->n_len_org; }

/* Sample s of the padded signal's source: reflection for s < 0, zero at or
 * past the end (only reached in finish()). */
static float sample_at(const struct hark_wmel *m, long s)
{
	if (s < 0) {
		s = -s;
		if ((size_t)s >= m->n_fed || s >= HEAD_N)
			return 0.0f;
		return m->head[s];
	}
	if ((size_t)s >= m->n_fed)
		return 0.0f;
	return m->buf[(size_t)s - m->buf_lo];
}

static int push_frame(struct hark_wmel *m, const float *vals)
{
	int rc = hark_wmelstore_append(m->store, vals);
	if (rc)
		return rc;
	m->n_frames++;
	return HARK_OK;
}

/*
 * whisper.cpp's own FFT, for bit-identical spectra: a recursive radix-2
 * Cooley-Tukey split down to odd lengths (400 -> 200 -> 100 -> 50 -> 25),
 * where a direct DFT runs, with sin/cos from a 400-entry float table; all
 * float arithmetic, no fused multiply-add. The even/odd halves are staged in
 * `in` past the first N entries and the sub-transforms in `out` past 2N.
 */
static void wdft(const struct hark_wmel *m, const float *in, int N, float *out)
{
	const int step = HARK_WMEL_N_FFT / N;
	for (int k = 0; k < N; k++) {
		float re = 0, im = 0;
		for (int n = 0; n < N; n++) {
			const int idx = (k * n * step) % HARK_WMEL_N_FFT;
			re += in[n] * m->cosv[idx];
			im -= in[n] * m->sinv[idx];
		}
		out[k * 2 + 0] = re;
		out[k * 2 + 1] = im;
	}
}

static void wfft(const struct hark_wmel *m, float *in, int N, float *out)
{
	if (N == 1) {
		out[0] = in[0];
		out[1] = 0;
		return;
	}
	const int half = N / 2;
	if (N - half * 2 == 1) {
		wdft(m, in, N, out);
		return;
	}
	float *even = in + N;
	for (int i = 0; i < half; i++)
		even[i] = in[2 * i];
	float *even_fft = out + 2 * N;
	wfft(m, even, half, even_fft);
	float *odd = even;
	for (int i = 0; i < half; i++)
		odd[i] = in[2 * i + 1];
	float *odd_fft = even_fft + N;
	wfft(m, odd, half, odd_fft);
	const int step = HARK_WMEL_N_FFT / N;
	for (int k = 0; k < half; k++) {
		const int idx = k * step;
		const float re = m->cosv[idx];
		const float im = -m->sinv[idx];
		const float re_odd = odd_fft[2 * k + 0];
		const float im_odd = odd_fft[2 * k + 1];
		out[2 * k + 0] = even_fft[2 * k + 0] + re * re_odd - im * im_odd;
		out[2 * k + 1] = even_fft[2 * k + 1] + re * im_odd + im * re_odd;
		out[2 * (k + half) + 0] = even_fft[2 * k + 0] - re * re_odd + im * im_odd;
		out[2 * (k + half) + 1] = even_fft[2 * k + 1] - re * im_odd - im * re_odd;
	}
}

/* Computes frame m->n_frames from the samples present. */
static int compute_frame(struct hark_wmel *m)
{
	const long start = (long)m->n_frames * HARK_WMEL_HOP - HARK_WMEL_N_FFT / 2;
	if (m->use_fftw) {
		for (int j = 0; j < HARK_WMEL_N_FFT; j++)
			m->fin[j] = m->hann[j] * sample_at(m, start + j);
		fftwf_execute(m->plan);
		for (int k = 0; k < HARK_WMEL_N_BINS; k++) {
			const float re = m->fout[k][0], im = m->fout[k][1];
			m->power[k] = re * re + im * im;
		}
	} else {
		for (int j = 0; j < HARK_WMEL_N_FFT; j++)
			m->wf_in[j] = m->hann[j] * sample_at(m, start + j);
		wfft(m, m->wf_in, HARK_WMEL_N_FFT, m->wf_out);
		for (int k = 0; k < HARK_WMEL_N_BINS; k++) {
			const float re = m->wf_out[2 * k], im = m->wf_out[2 * k + 1];
			m->power[k] = re * re + im * im;
		}
	}
	float vals[512];
	const float *p = m->power;
	for (int j = 0; j < m->n_mel; j++) {
		const float *f = m->filters + (size_t)j * HARK_WMEL_N_BINS;
		double sum = 0.0;
		int k = 0;
		for (; k < HARK_WMEL_N_BINS - 3; k += 4) {
			const float t = p[k] * f[k] + p[k + 1] * f[k + 1] + p[k + 2] * f[k + 2] +
					p[k + 3] * f[k + 3];
			sum += t;
		}
		for (; k < HARK_WMEL_N_BINS; k++) {
			const float t = p[k] * f[k];
			sum += t;
		}
		vals[j] = (float)log10(sum > 1e-10 ? sum : 1e-10);
	}
	return push_frame(m, vals);
}

int hark_wmel_feed(struct hark_wmel *m, const float *pcm, size_t n)
{
	if (m->finished)
		return HARK_ERR_INVALID_ARG;
	while (n > 0) {
		/* drop samples no pending frame needs */
		long need_lo = (long)m->n_frames * HARK_WMEL_HOP - HARK_WMEL_N_FFT / 2;
		if (need_lo > (long)m->buf_lo) {
			size_t drop = (size_t)need_lo - m->buf_lo;
			if (drop > m->buf_n)
				drop = m->buf_n;
			memmove(m->buf, m->buf + drop, sizeof(float) * (m->buf_n - drop));
			m->buf_n -= drop;
			m->buf_lo += drop;
		}
		size_t room = BUF_CAP - m->buf_n;
		size_t take = n < room ? n : room;
		memcpy(m->buf + m->buf_n, pcm, sizeof(float) * take);
		/* non-finite samples would poison the global max: treat as 0 */
		for (size_t i = 0; i < take; i++)
			if (!isfinite(m->buf[m->buf_n + i]))
				m->buf[m->buf_n + i] = 0.0f;
		for (size_t i = 0; i < take && m->n_fed + i < HEAD_N; i++)
			m->head[m->n_fed + i] = m->buf[m->buf_n + i];
		m->buf_n += take;
		m->n_fed += take;
		pcm += take;
		n -= take;
		for (;;) {
			size_t end = m->n_frames * HARK_WMEL_HOP + HARK_WMEL_N_FFT / 2;
			if (end < HEAD_N)
				end = HEAD_N;
			if (m->n_fed < end)
				break;
			int rc = compute_frame(m);
			if (rc)
				return rc;
		}
	}
	return HARK_OK;
}

int hark_wmel_finish(struct hark_wmel *m)
{
	if (m->finished)
		return HARK_OK;
	const size_t n = m->n_fed;
	const long n_len = (long)((n + 480000) / HARK_WMEL_HOP);
	long n_comp = (long)((n + 200) / HARK_WMEL_HOP) + 1;
	if (n_comp > n_len)
		n_comp = n_len;
	if (n_len > HARK_WMEL_MAX_FRAMES + 3000)
		return HARK_ERR_LIMIT;
	while ((long)m->n_frames < n_comp) {
		int rc = compute_frame(m);
		if (rc)
			return rc;
	}
	m->n_len = (int)n_len;
	m->n_len_org = (int)(1 + ((long)n + 200 - HARK_WMEL_N_FFT) / HARK_WMEL_HOP);
	/* frames past n_comp hold log10(1e-10) = -10 */
	float vmax = hark_wmelstore_max(m->store);
	const float floor_v = (float)log10(1e-10);
	if ((long)m->n_frames < n_len && floor_v > vmax)
		vmax = floor_v;
	m->clamp = (double)vmax - 8.0;
	m->finished = 1;
	return HARK_OK;
}

static float norm_val(const struct hark_wmel *m, float v)
{
	if (v < m->clamp)
		v = (float)m->clamp;
	return (float)(((double)v + 4.0) / 4.0);
}

const char *hark_wmel_error(const struct hark_wmel *m)
{
	return hark_wmelstore_error(m->store);
}

int hark_wmel_window(const struct hark_wmel *m, int offset, int n_frames, float *dst)
{
	const int nm = m->n_mel;
	const float floor_n = norm_val(m, (float)log10(1e-10));
	float tmp[8192]; /* stored frames are read back in chunks of 8192 / nm */
	const int chunk = 8192 / nm;
	for (int t = 0; t < n_frames;) {
		const long f = (long)offset + t;
		if (f >= m->n_len || f < 0) {
			for (int j = 0; j < nm; j++)
				dst[(size_t)j * n_frames + t] = 0.0f;
			t++;
		} else if ((size_t)f >= m->n_frames) {
			for (int j = 0; j < nm; j++)
				dst[(size_t)j * n_frames + t] = floor_n;
			t++;
		} else {
			long n = (long)m->n_frames - f;
			if (n > n_frames - t)
				n = n_frames - t;
			if (n > chunk)
				n = chunk;
			int rc = hark_wmelstore_read(m->store, (size_t)f, (size_t)(f + n), tmp);
			if (rc)
				return rc;
			for (long i = 0; i < n; i++, t++) {
				const float *src = tmp + (size_t)i * nm;
				for (int j = 0; j < nm; j++)
					dst[(size_t)j * n_frames + t] = norm_val(m, src[j]);
			}
		}
	}
	return HARK_OK;
}
