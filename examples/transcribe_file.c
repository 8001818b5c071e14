/*
 * Example: using hark as a library. Loads a speech model once, transcribes
 * one file and prints the result as SRT, using only the public API in
 * <hark/transcribe.h>. Build: cc transcribe_file.c -lhark_core ... (see
 * README); the test suite compiles and runs it.
 *
 *   usage: example_transcribe_file AUDIO [ENGINE [MODEL]]
 */
#include <stdio.h>

#include <hark/transcribe.h>

int main(int argc, char **argv)
{
	struct hark_model_params mp = hark_model_default_params();
	struct hark_transcribe_params tp = hark_transcribe_default_params();
	struct hark_model *model = NULL;
	struct hark_ctx *ctx = NULL;
	struct hark_transcript *t = NULL;
	char err[512];
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s AUDIO [ENGINE [MODEL]]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		mp.engine = argv[2];
	if (argc > 3)
		mp.model_path = argv[3];

	rc = hark_model_load(&mp, &model, err, sizeof(err));
	if (rc != HARK_OK) {
		fprintf(stderr, "model: %s (%s)\n", err, hark_err_code(rc));
		goto out;
	}
	rc = hark_ctx_init(model, &ctx);
	if (rc != HARK_OK)
		goto out;
	rc = hark_transcribe_file(ctx, argv[1], &tp, &t);
	if (rc != HARK_OK) {
		fprintf(stderr, "%s: %s (%s)\n", argv[1], hark_ctx_errmsg(ctx), hark_err_code(rc));
		goto out;
	}
	printf("# engine=%s duration=%.2fs segments=%zu words=%zu\n", t->engine_name,
	       t->duration, t->n_segments, t->n_words);
	rc = hark_transcript_write(t, HARK_FORMAT_SRT, stdout);
out:
	hark_transcript_free(t);
	hark_ctx_free(ctx);
	hark_model_free(model);
	return rc == HARK_OK ? 0 : 1;
}
