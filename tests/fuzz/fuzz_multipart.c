/*
 * Fuzz target for the streaming multipart/form-data parser
 * (src/server/multipart). Each input is parsed twice under a fixed boundary:
 * once in a single feed and once cut into pieces whose sizes come from a
 * small PRNG seeded by the input's first byte. Both runs must report the
 * same error code and the same stream of callbacks (part names, file names,
 * content types, a hash of each part's content); a difference, or content
 * handed out of a part, aborts so the fuzzer records the input. The first
 * byte also selects one of a few boundaries (short, long, quoted with
 * specials). Built with -fsanitize=fuzzer (clang, HARK_LIBFUZZER defined by
 * the fuzzer build) it is a libFuzzer target; otherwise a replay driver:
 *   fuzz_multipart FILE...   parses each file and prints the outcome.
 * To fuzz with clang (the parser needs nothing but itself):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -DHARK_LIBFUZZER -D_GNU_SOURCE -std=c11 -Isrc -Iinclude \
 *     tests/fuzz/fuzz_multipart.c src/server/multipart.c -o /tmp/fuzz_multipart
 *   /tmp/fuzz_multipart -max_len=4096 -max_total_time=600 /tmp/mp-corpus
 * (seed the corpus with a selector byte followed by a small valid body).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Order-sensitive digest of every callback. */
struct digest {
	uint64_t h;
	int in_part;
	int bad;
	size_t parts;
};

static void mix(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		d->h = (d->h ^ b[i]) * 1099511628211ull;
}

static void mix_str(struct digest *d, const char *s)
{
	if (s)
		mix(d, s, strlen(s) + 1);
	else
		mix(d, "\xff", 1);
}

static int on_begin(void *u, const char *name, const char *filename, const char *ctype)
{
	struct digest *d = u;

	if (d->in_part || !name)
		d->bad = 1;
	d->in_part = 1;
	d->parts++;
	mix(d, "B", 1);
	mix_str(d, name);
	mix_str(d, filename);
	mix_str(d, ctype);
	return 0;
}

static int on_data(void *u, const void *p, size_t n)
{
	struct digest *d = u;

	if (!d->in_part || n == 0)
		d->bad = 1;
	/* content only: piece boundaries differ between the two runs */
	mix(d, p, n);
	return 0;
}

static int on_end(void *u)
{
	struct digest *d = u;

	if (!d->in_part)
		d->bad = 1;
	d->in_part = 0;
	mix(d, "E", 1);
	return 0;
}

static int run(const char *ct, const uint8_t *p, size_t n, int split, uint32_t seed,
	       struct digest *d)
{
	static const struct hark_multipart_cb cb = { on_begin, on_data, on_end };
	struct hark_multipart *mp = NULL;
	size_t off = 0;
	int rc;

	memset(d, 0, sizeof(*d));
	d->h = 14695981039346656037ull;
	if (hark_multipart_new(ct, &cb, d, &mp) != 0)
		abort(); /* the content types below are all valid */
	while (off < n) {
		size_t k = n - off;

		if (split) {
			seed = seed * 1103515245u + 12345u;
			k = (seed >> 16) % 17; /* 0..16, empty feeds included */
			if (k > n - off)
				k = n - off;
		}
		rc = hark_multipart_feed(mp, p + off, k);
		if (rc)
			goto out;
		off += k;
	}
	rc = hark_multipart_finish(mp);
out:
	if (rc && hark_multipart_feed(mp, "x", 1) != rc)
		abort(); /* errors must be sticky */
	(void)hark_multipart_error(mp);
	hark_multipart_free(mp);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const cts[] = {
		"multipart/form-data; boundary=X",
		"multipart/form-data; boundary=----------------------------1234567890abcdef",
		"multipart/form-data; boundary=\"a b'()+_,-./:=?z\"",
		"multipart/form-data; boundary=--",
	};
	struct digest a, b;
	int ra, rb;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	ra = run(cts[sel % 4], data + 1, size - 1, 0, 0, &a);
	rb = run(cts[sel % 4], data + 1, size - 1, 1, sel, &b);
	if (a.bad || b.bad)
		abort(); /* callbacks out of order or empty data */
	/* the outcome must agree; on success so must everything delivered */
	if (ra != rb || (ra == 0 && (a.h != b.h || a.parts != b.parts)))
		abort();
	return 0;
}

#ifndef HARK_LIBFUZZER
int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE...  (replays inputs through the multipart parser)\n",
			argv[0]);
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
