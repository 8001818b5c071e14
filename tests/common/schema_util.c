/*
 * Schema helpers for tests (see schema_util.h): source-tree paths and
 * compiled share/schemas files checked with hark's JSON Schema validator.
 */
#include "schema_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/schema.h"
#include "wd_util.h"

char *su_source_path(const char *rel, char *buf, size_t n)
{
	const char *src = getenv("HARK_SOURCE_DIR");

	if (src && *src) {
		snprintf(buf, n, "%s/%s", src, rel);
	} else {
		/* this file is <root>/tests/common/schema_util.c */
		const char *me = __FILE__;
		const char *cut = strstr(me, "tests/common/schema_util.c");

		if (cut)
			snprintf(buf, n, "%.*s%s", (int)(cut - me), me, rel);
		else
			snprintf(buf, n, "%s", rel);
	}
	return buf;
}

struct hark_llm_schema *su_schema_load(const char *name)
{
	char rel[512], path[4096], err[256] = "";
	struct hark_llm_schema *s = NULL;
	char *text;

	snprintf(rel, sizeof(rel), "share/schemas/%s", name);
	text = wd_slurp(su_source_path(rel, path, sizeof(path)), NULL);
	if (!text) {
		fprintf(stderr, "schema_util: cannot read %s\n", path);
		return NULL;
	}
	if (hark_llm_schema_compile(text, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "schema_util: %s does not compile: %s\n", path, err);
		s = NULL;
	}
	free(text);
	return s;
}

int su_schema_check(const struct hark_llm_schema *s, const json_t *j, char *err, size_t errlen)
{
	if (!s || !j) {
		snprintf(err, errlen, "no schema or no JSON");
		return -1;
	}
	return hark_llm_schema_validate(s, j, err, errlen);
}

int su_schema_check_text(const struct hark_llm_schema *s, const char *text, char *err,
			 size_t errlen)
{
	json_error_t je;
	json_t *j = text ? json_loads(text, 0, &je) : NULL;
	int rc;

	if (!j) {
		snprintf(err, errlen, "not JSON: %s", text ? je.text : "NULL");
		return -1;
	}
	rc = su_schema_check(s, j, err, errlen);
	json_decref(j);
	return rc;
}
