/*
 * Benchmark of the Whisper matmul kernels (src/asr/whisper/wkernels): GFLOP/s
 * of y = x W^T for every weight type at the shapes that dominate tiny/base
 * inference - the encoder MLP (n = 1500 activations, k = 384, 1536 rows),
 * the encoder attention projections (1500 x 384 x 384), and single-token
 * decoder products (n = 1 and n = 5 for beam search) - with 1 and 2 threads.
 *
 *   bench_wkernels [--quick] [--types f16,q5_0,...] [--threads 1,2]
 *
 * Run on an idle machine (see shared PERF-NOTES.md); set
 * OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs before starting it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asr/whisper/wkernels.h"
#include "asr/whisper/wmodel.h"
#include "util/tpool.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct shape {
	const char *what;
	int64_t n, k, rows;
};

static const struct shape shapes[] = {
	{"enc mlp.0 (1500x384 . 1536x384^T)", 1500, 384, 1536},
	{"enc attn  (1500x384 . 384x384^T)", 1500, 384, 384},
	{"enc mlp.0 base (1500x512 . 2048x512^T)", 1500, 512, 2048},
	{"dec mlp.0 n=1 (1x384 . 1536x384^T)", 1, 384, 1536},
	{"dec mlp.0 n=5 (5x384 . 1536x384^T)", 5, 384, 1536},
	{"dec logits n=1 (1x384 . 51864x384^T)", 1, 384, 51864},
};

static const int types[] = {HARK_WT_F32, HARK_WT_F16, HARK_WT_Q8_0, HARK_WT_Q5_0, HARK_WT_Q5_1, HARK_WT_Q4_0, HARK_WT_Q4_1};

static int in_list(const char *list, const char *name)
{
	if (!list)
		return 1;
	size_t l = strlen(name);
	for (const char *p = list; (p = strstr(p, name)) != NULL; p += l)
		if ((p == list || p[-1] == ',') && (p[l] == ',' || p[l] == '\0'))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	int quick = 0;
	const char *tlist = NULL;
	int threads[4] = {1, 2}, nthr = 2;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--types") && i + 1 < argc)
			tlist = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			nthr = 0;
			for (char *p = strtok(argv[++i], ","); p && nthr < 4; p = strtok(NULL, ","))
				threads[nthr++] = atoi(p);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--types f16,q5_0,...] [--threads 1,2]\n", argv[0]);
			return 2;
		}
	}
	printf("kernels: %s\n", hark_wk_cpu_features());
	srand(1);
	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		const struct shape *sh = &shapes[si];
		float *wf = malloc(sizeof(float) * (size_t)(sh->k * sh->rows));
		float *x = malloc(sizeof(float) * (size_t)(sh->k * sh->n));
		float *y = malloc(sizeof(float) * (size_t)(sh->rows * sh->n));
		unsigned char *wq = malloc((size_t)(sh->k * sh->rows) * 4 + 1);
		if (!wf || !x || !y || !wq)
			return 1;
		for (int64_t i = 0; i < sh->k * sh->rows; i++)
			wf[i] = (float)((double)rand() / RAND_MAX - 0.5);
		for (int64_t i = 0; i < sh->k * sh->n; i++)
			x[i] = (float)((double)rand() / RAND_MAX - 0.5);
		printf("\n%s\n", sh->what);
		for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
			int type = types[ti];
			if (!in_list(tlist, hark_wk_type_name(type)))
				continue;
			/* odd offset: model tensors are unaligned */
			hark_wk_quantize_weights(type, wf, wq + 1, sh->k * sh->rows);
			struct hark_wtensor t = {.type = type, .n_dims = 2, .ne = {sh->k, sh->rows, 1, 1}, .data = wq + 1,
						 .nbytes = hark_wk_row_size(type, sh->k) * (size_t)sh->rows};
			printf("  %-5s", hark_wk_type_name(type));
			for (int th = 0; th < nthr; th++) {
				struct hark_tpool *pool = hark_tpool_new(threads[th]);
				struct hark_wk_scratch *sc = hark_wk_scratch_new(0);
				hark_wk_matmul(&t, x, sh->n, y, sc, pool); /* warm-up */
				double flop = 2.0 * (double)sh->n * (double)sh->k * (double)sh->rows;
				double budget = quick ? 0.2 : 1.0, t0 = now(), el;
				int reps = 0;
				do {
					hark_wk_matmul(&t, x, sh->n, y, sc, pool);
					reps++;
					el = now() - t0;
				} while (el < budget);
				printf("   %dT %8.1f GFLOP/s (%7.3f ms)", threads[th], flop * reps / el * 1e-9, el / reps * 1e3);
				hark_wk_scratch_free(sc);
				hark_tpool_free(pool);
			}
			printf("\n");
		}
		free(wf);
		free(x);
		free(y);
		free(wq);
	}
	return 0;
}
