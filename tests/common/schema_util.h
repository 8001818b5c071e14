/*
 * Test helper for the JSON Schemas under share/schemas: finds a file of the
 * source tree ($HARK_SOURCE_DIR, which CTest sets, else the tree this file
 * was compiled from) and compiles a schema with hark's own validator, so
 * every test checks outputs against the same documented schema files.
 */
#ifndef HARK_TESTS_SCHEMA_UTIL_H
#define HARK_TESTS_SCHEMA_UTIL_H

#include <stddef.h>

#include <jansson.h>

struct hark_llm_schema;

/* Writes the path of rel (e.g. "share/schemas/graph.json") inside the
 * source tree into buf (n bytes); returns buf. */
char *su_source_path(const char *rel, char *buf, size_t n);

/* Compiles share/schemas/<name>; NULL (with the reason on stderr) when the
 * file is missing or does not compile. Free with hark_llm_schema_free. */
struct hark_llm_schema *su_schema_load(const char *name);

/* 0 when j matches s; else nonzero with the first violation in err. */
int su_schema_check(const struct hark_llm_schema *s, const json_t *j, char *err, size_t errlen);

/* The same for JSON text (a parse error counts as a violation). */
int su_schema_check_text(const struct hark_llm_schema *s, const char *text, char *err,
			 size_t errlen);

#endif /* HARK_TESTS_SCHEMA_UTIL_H */
