/*
 * Whisper engine benchmark. For one ggml model file (e.g. a random-weight
 * tiny/base made with `hark models synth`) and each requested thread count it
 * measures: the encoder time per 30 s window (median of N runs, after a
 * warm-up), the decoder time per token (single-token decodes on top of a
 * KV cache of realistic length, logits projection included), the sampling
 * cost is not included there; and, for every audio file given, the whole
 * transcription through the engine vtable (decode + mel + all windows) as a
 * real-time factor. Peak RSS of the process is printed at the end.
 *
 *   bench_whisper -m model.bin [-t 1,2] [-n 5] [--beam 5] [-nf] [audio...]
 *
 * Run it on an idle machine; the numbers are meaningless otherwise.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "asr/engine.h"
#include "asr/whisper/wmodel.h"
#include "asr/whisper/wnet.h"
#include "audio/audio.h"
#include "format/transcript.h"
#include "hark/hark.h"
#include "util/tpool.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b)
{
	const double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_d);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_whisper -m model.bin [-t 1,2] [-n reps] [--beam N] [-nf] [audio files...]\n");
}

/* Encoder ms per window and decoder ms per token for one thread count. */
static int bench_net(const struct hark_wmodel *m, int n_threads, int reps, double *enc_ms, double *dec_ms)
{
	char err[256];
	struct hark_tpool *pool = hark_tpool_new(n_threads);
	struct hark_wnet *net = NULL;
	int rc = hark_wnet_new(m, 1, pool, &net, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "wnet: %s\n", err);
		hark_tpool_free(pool);
		return rc;
	}
	/* a deterministic pseudo-spectrogram in whisper's normalised range */
	float *mel = hark_wnet_mel_buffer(net);
	const size_t nmel = (size_t)m->hp.n_mels * 2 * (size_t)m->hp.n_audio_ctx;
	uint32_t s = 12345;
	for (size_t i = 0; i < nmel; i++) {
		s = s * 1664525u + 1013904223u;
		mel[i] = (float)((s >> 8) & 0xffff) / 65536.0f * 1.5f - 0.5f;
	}
	double t[64];
	if (reps > 64)
		reps = 64;
	hark_wnet_encode(net); /* warm-up */
	for (int r = 0; r < reps; r++) {
		const double t0 = now_ms();
		if ((rc = hark_wnet_encode(net)))
			goto out;
		t[r] = now_ms() - t0;
	}
	*enc_ms = median(t, reps);

	/* decoder: a 64-token prompt, then 128 single-token steps */
	float *logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
	int32_t toks[64];
	int pos[64], seq[64] = {0};
	for (int i = 0; i < 64; i++) {
		toks[i] = 1000 + 37 * i;
		pos[i] = i;
	}
	hark_wnet_kv_clear(net);
	if ((rc = hark_wnet_decode(net, toks, pos, seq, 64, logits, 0))) {
		free(logits);
		goto out;
	}
	const int n_steps = m->hp.n_text_ctx - 64 < 128 ? m->hp.n_text_ctx - 64 : 128;
	const double t0 = now_ms();
	for (int i = 0; i < n_steps; i++) {
		const int32_t tok = 500 + 11 * i;
		const int p = 64 + i, sq = 0;
		if ((rc = hark_wnet_decode(net, &tok, &p, &sq, 1, logits, 0)))
			break;
	}
	*dec_ms = (now_ms() - t0) / n_steps;
	free(logits);
out:
	hark_wnet_free(net);
	hark_tpool_free(pool);
	return rc;
}

/* Whole-file transcription through the engine: returns seconds of audio
 * and wall milliseconds. */
static int bench_file(const struct hark_engine_ops *ops, void *model, const char *path, int n_threads, int beam,
		      int nf, double *audio_s, double *wall_ms, size_t *n_segs)
{
	char err[512] = "";
	struct hark_audio *a = NULL;
	struct hark_audio_params ap = hark_audio_default_params();
	const double t0 = now_ms();
	int rc = hark_audio_open(path, &ap, &a, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: %s\n", path, err);
		return rc;
	}
	struct hark_engine_run_params rp;
	memset(&rp, 0, sizeof(rp));
	rp.language = "en";
	rp.n_threads = n_threads;
	rp.beam_size = beam;
	rp.best_of = 5;
	rp.no_fallback = nf;
	rp.word_timestamps = 1;
	void *st = NULL;
	struct hark_transcript *t = NULL;
	if ((rc = ops->state_new(model, &rp, &st, err, sizeof(err))))
		goto out;
	for (;;) {
		const float *pcm;
		size_t n;
		if ((rc = hark_audio_read(a, &pcm, &n, err, sizeof(err))))
			goto out;
		if (n == 0)
			break;
		if ((rc = ops->feed(st, pcm, n, err, sizeof(err))))
			goto out;
	}
	*audio_s = hark_audio_position(a);
	if ((rc = hark_transcript_new(&t)))
		goto out;
	if ((rc = ops->finish(st, t, err, sizeof(err))))
		goto out;
	*wall_ms = now_ms() - t0;
	*n_segs = t->n_segments;
out:
	if (rc)
		fprintf(stderr, "%s: %s (%s)\n", path, err, hark_strerror(rc));
	hark_transcript_free(t);
	if (st)
		ops->state_free(st);
	hark_audio_close(a);
	return rc;
}

int main(int argc, char **argv)
{
	const char *model_path = NULL;
	int threads[8] = {1, 2}, n_thr = 2, reps = 5, beam = 5, nf = 0;
	const char *files[64];
	int n_files = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-m") && i + 1 < argc) {
			model_path = argv[++i];
		} else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			n_thr = 0;
			for (char *p = argv[++i]; *p && n_thr < 8;) {
				threads[n_thr++] = (int)strtol(p, &p, 10);
				if (*p == ',')
					p++;
				else
					break;
			}
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			reps = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--beam") && i + 1 < argc) {
			beam = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "-nf")) {
			nf = 1;
		} else if (argv[i][0] == '-') {
			usage();
			return 2;
		} else if (n_files < 64) {
			files[n_files++] = argv[i];
		}
	}
	if (!model_path || reps < 1 || n_thr < 1) {
		usage();
		return 2;
	}
	char err[512];
	struct hark_wmodel *m;
	const double tl0 = now_ms();
	if (hark_wmodel_load(model_path, &m, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", model_path, err);
		return 1;
	}
	const double load_ms = now_ms() - tl0;
	printf("model %s (%s, state %d, %d+%d layers, ftype %d), load %.1f ms\n", model_path,
	       hark_wmodel_type_name(m), m->hp.n_audio_state, m->hp.n_audio_layer, m->hp.n_text_layer, m->hp.ftype,
	       load_ms);
	printf("\n%-8s %16s %16s\n", "threads", "encoder ms/30s", "decoder ms/tok");
	for (int i = 0; i < n_thr; i++) {
		double enc = NAN, dec = NAN;
		if (threads[i] < 1 || bench_net(m, threads[i], reps, &enc, &dec))
			printf("%-8d %16s %16s\n", threads[i], "error", "error");
		else
			printf("%-8d %16.1f %16.3f\n", threads[i], enc, dec);
	}
	hark_wmodel_free(m);

	if (n_files > 0) {
		void *model;
		const struct hark_engine_ops *ops = &hark_engine_whisper;
		if (ops->model_load(model_path, &model, err, sizeof(err))) {
			fprintf(stderr, "%s: %s\n", model_path, err);
			return 1;
		}
		printf("\n%-40s %8s %8s %10s %8s %6s\n", "file", "threads", "audio s", "wall ms", "x RT", "segs");
		for (int f = 0; f < n_files; f++)
			for (int i = 0; i < n_thr; i++) {
				double as = 0, wm = 0;
				size_t ns = 0;
				if (bench_file(ops, model, files[f], threads[i], beam, nf, &as, &wm, &ns) == 0)
					printf("%-40s %8d %8.2f %10.1f %8.2f %6zu\n", files[f], threads[i], as, wm,
					       wm > 0 ? as * 1000.0 / wm : 0.0, ns);
			}
		ops->model_free(model);
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("\npeak RSS %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
	return 0;
}
