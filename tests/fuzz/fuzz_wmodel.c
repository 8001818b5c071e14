/*
 * Fuzz target for the Whisper model loader: each input is written to a
 * temporary file and loaded with hark_wmodel_load() (which mmaps it), then
 * the vocabulary is built and a few tokens rendered, and everything is
 * freed. Built with -fsanitize=fuzzer (clang, HARK_LIBFUZZER defined by the
 * fuzzer build) it is a libFuzzer target; otherwise a replay driver:
 *   fuzz_wmodel FILE...   loads each file (e.g. a crash reproducer or a
 *                         corpus) and reports the result.
 * See docs/MODELS.md for the fuzzing command.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asr/whisper/wmodel.h"
#include "asr/whisper/wvocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_path[64];

static int fuzz_load(const char *path)
{
	struct hark_wmodel *m = NULL;
	char err[256];
	int rc = hark_wmodel_load(path, &m, err, sizeof(err));
	if (rc == 0) {
		struct hark_wvocab *v = NULL;
		if (hark_wvocab_new(m, &v) == 0) {
			size_t l;
			for (int32_t id = m->hp.n_vocab - 3; id < m->hp.n_vocab; id++)
				(void)hark_wvocab_token(v, id, &l);
			int32_t ids[16];
			int n;
			hark_wvocab_encode(v, " hello world", ids, 16, &n);
			hark_wvocab_free(v);
		}
		hark_wmodel_free(m);
	}
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!g_path[0]) {
		snprintf(g_path, sizeof(g_path), "/tmp/hark-fuzz-wmodel-%ld.bin", (long)getpid());
	}
	FILE *f = fopen(g_path, "wb");
	if (!f)
		return 0;
	if (size && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return 0;
	}
	fclose(f);
	fuzz_load(g_path);
	unlink(g_path);
	return 0;
}

#ifndef HARK_LIBFUZZER
int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE...  (replays inputs through the model loader)\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			continue;
		}
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fseek(f, 0, SEEK_SET);
		uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
		size_t got = buf ? fread(buf, 1, (size_t)(n > 0 ? n : 0), f) : 0;
		fclose(f);
		if (!buf)
			return 1;
		LLVMFuzzerTestOneInput(buf, got);
		printf("%s: %zu bytes replayed\n", argv[i], got);
		free(buf);
	}
	return 0;
}
#endif
