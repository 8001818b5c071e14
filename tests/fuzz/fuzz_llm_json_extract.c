/*
 * Fuzz target for LLM reply checking (src/llm/schema): each input is a
 * model reply handed to hark_llm_json_extract; a value it extracts is
 * validated against a fixed schema (nested arrays of objects, anyOf, enum,
 * a recursive $ref, bounds), rendered as canonical text, parsed back and
 * rendered and validated again. The canonical text must parse, be a fixed
 * point (canonical(parse(canonical)) == canonical), and give the same
 * validation outcome; an error must come with a message. Any
 * breach aborts so the fuzzer records the input; the sanitizers catch
 * reads past the input (it is copied into an exactly sized buffer) and deep
 * recursion. Built with -fsanitize=fuzzer (clang, HARK_LIBFUZZER defined by
 * the fuzzer build) it is a libFuzzer target; otherwise a replay driver:
 *   fuzz_llm_json_extract FILE...   replays each file and prints the outcome.
 * To fuzz with clang:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -DHARK_LIBFUZZER -D_GNU_SOURCE -std=c11 -Isrc -Iinclude \
 *     tests/fuzz/fuzz_llm_json_extract.c src/llm/schema.c src/util/errbuf.c -ljansson \
 *     -o /tmp/fuzz_llm_json_extract
 *   /tmp/fuzz_llm_json_extract -max_len=65536 -max_total_time=600 /tmp/llm-corpus
 * (seed the corpus with a few replies: bare JSON, ```json fences, prose).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hark/hark.h"
#include "llm/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_schema =
	"{\"type\": \"object\", \"required\": [\"items\"], \"additionalProperties\": false,"
	" \"$defs\": {\"node\": {\"type\": \"object\", \"required\": [\"label\"],"
	"   \"properties\": {\"label\": {\"type\": \"string\", \"maxLength\": 40},"
	"     \"children\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/node\"}}}}},"
	" \"properties\": {"
	"  \"items\": {\"type\": \"array\", \"maxItems\": 50, \"items\": {"
	"    \"type\": \"object\", \"required\": [\"name\", \"kind\"],"
	"    \"additionalProperties\": false,"
	"    \"properties\": {\"name\": {\"type\": \"string\", \"minLength\": 1},"
	"      \"kind\": {\"enum\": [\"person\", \"org\", 1, null]},"
	"      \"score\": {\"type\": \"number\", \"minimum\": 0, \"maximum\": 1},"
	"      \"count\": {\"type\": \"integer\"},"
	"      \"due\": {\"anyOf\": [{\"type\": \"null\"}, {\"type\": \"string\"}]},"
	"      \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}}}}},"
	"  \"tree\": {\"$ref\": \"#/$defs/node\"},"
	"  \"version\": {\"const\": 1}}}";

static struct hark_llm_schema *schema(void)
{
	static struct hark_llm_schema *s;

	if (!s) {
		char err[256];

		if (hark_llm_schema_compile(fuzz_schema, &s, err, sizeof(err)) != HARK_OK) {
			fprintf(stderr, "fuzz schema does not compile: %s\n", err);
			abort();
		}
	}
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hark_llm_schema *s = schema();
	char err1[256], err2[256];
	char *buf, *c1 = NULL, *c2 = NULL;
	json_t *v = NULL, *back = NULL;
	int rc, r1, r2;

	/* an exact-size copy without a terminator: reading past size is a bug */
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	err1[0] = '\0';
	rc = hark_llm_json_extract(buf, size, &v, err1, sizeof(err1));
	if (rc != HARK_OK) {
		if (rc != HARK_ERR_FORMAT || v || !err1[0])
			abort();
		goto out;
	}
	if (!v || (!json_is_object(v) && !json_is_array(v)))
		abort();
	err1[0] = err2[0] = '\0';
	r1 = hark_llm_schema_validate(s, v, err1, sizeof(err1));
	if ((r1 != HARK_OK && r1 != HARK_ERR_FORMAT) || (r1 && !err1[0]))
		abort();
	c1 = hark_llm_json_canonical(v);
	if (!c1)
		abort();
	back = json_loads(c1, 0, NULL);
	if (!back)
		abort(); /* canonical text must be JSON */
	c2 = hark_llm_json_canonical(back);
	if (!c2 || strcmp(c1, c2) != 0)
		abort(); /* and a fixed point */
	r2 = hark_llm_schema_validate(s, back, err2, sizeof(err2));
	if (r1 != r2 || (r2 && !err2[0]))
		abort(); /* canonicalisation must not change the verdict (the message may:
			  * members not allowed are reported in the value's own order) */
out:
	free(c1);
	free(c2);
	json_decref(back);
	json_decref(v);
	free(buf);
	return 0;
}

#ifndef HARK_LIBFUZZER
int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr,
			"usage: %s FILE...  (replays inputs through json_extract + validate)\n",
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
