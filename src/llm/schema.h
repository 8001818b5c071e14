/*
 * Structured-output checking for LLM replies: pulls the JSON value out of a
 * model's reply text (bare JSON, or wrapped in a ```json fence or in prose)
 * and validates it against a JSON Schema. The supported subset is what task
 * schemas use and what OpenAI's strict json_schema mode accepts: type
 * (string, number, integer, boolean, null, object, array, or a list of
 * them), properties, required, additionalProperties (false or a schema),
 * items, minItems, maxItems, enum, const, minLength, maxLength, minimum,
 * maximum, anyOf, and local $ref ("#/$defs/x", "#/definitions/x"). A keyword
 * outside the subset makes compilation fail rather than be ignored.
 */
#ifndef HARK_LLM_SCHEMA_H
#define HARK_LLM_SCHEMA_H

#include <stddef.h>

#include <jansson.h>

struct hark_llm_schema; /* compiled, immutable, shareable across threads */

/*
 * Compiles schema_json (NUL-terminated JSON Schema text). *out heap-owned
 * (hark_llm_schema_free). HARK_ERR_FORMAT if not JSON, HARK_ERR_INVALID_ARG
 * for an unsupported keyword or a malformed schema; err names the path.
 */
int hark_llm_schema_compile(const char *schema_json, struct hark_llm_schema **out, char *err,
			    size_t errlen);
void hark_llm_schema_free(struct hark_llm_schema *s);

/* The schema as a jansson value (borrowed; valid while s lives), for
 * embedding it in a response_format request member. */
const json_t *hark_llm_schema_json(const struct hark_llm_schema *s);

/*
 * Validates v against s. Returns 0 when valid; HARK_ERR_FORMAT otherwise,
 * with err describing the first violation by JSON pointer, e.g.
 * "/entities/3/name: expected string, got null". Nesting deeper than 64
 * levels is a violation (no unbounded recursion).
 */
int hark_llm_schema_validate(const struct hark_llm_schema *s, const json_t *v, char *err,
			     size_t errlen);

/*
 * Extracts one JSON value (object or array) from a model reply: the whole
 * text if it parses; else the body of the first ``` / ```json fence that
 * parses; else the first balanced {...} or [...] span (string-aware) that
 * parses. *out is a new reference. HARK_ERR_FORMAT when none parses; err
 * then says why (e.g. "truncated: unbalanced braces at end of reply").
 * Never reads past text[len).
 */
int hark_llm_json_extract(const char *text, size_t len, json_t **out, char *err,
			  size_t errlen);

/*
 * Canonical JSON text of v (keys sorted, compact, UTF-8, no trailing
 * newline), for hashing. Heap (free); NULL on allocation failure.
 */
char *hark_llm_json_canonical(const json_t *v);

#endif /* HARK_LLM_SCHEMA_H */
