/*
 * Chat requests and deterministic replies of hark-llm-sim: parses a
 * /chat/completions body once (messages, token count, request hash and
 * identity, directives, chunk markers, the schema the reply must follow),
 * generates the reply content derived from SHA-256 of (model, messages,
 * response_format): a schema instance whose strings are extracted from the
 * request's chunks, {"reply": ...} for json_object without a schema, or an
 * extractive free-text line; and keeps the per-(identity, directive)
 * arrival counters.
 */
#ifndef HARK_SIM_REPLY_H
#define HARK_SIM_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sim/sim_text.h"

#define HARK_SIM_MAX_CHUNKS 4096
#define HARK_SIM_MAX_DIRECTIVES 32

enum hark_sim_rf {
	HARK_SIM_RF_NONE = 0,
	HARK_SIM_RF_TEXT = 1,
	HARK_SIM_RF_JSON_OBJECT = 2,
	HARK_SIM_RF_JSON_SCHEMA = 3,
};

enum hark_sim_variant {
	HARK_SIM_REPLY_NORMAL = 0,
	HARK_SIM_REPLY_BAD_JSON = 1,     /* content is not valid JSON */
	HARK_SIM_REPLY_WRONG_SCHEMA = 2, /* JSON missing a required member */
};

struct hark_sim_chat {
	json_t *root;              /* the parsed body; owns every borrowed string below */
	const char *model;
	size_t n_msgs;
	const char **roles;        /* n_msgs entries */
	const char **contents;     /* n_msgs entries (array contents joined into owned[]) */
	char **owned;
	long max_tokens;           /* max_completion_tokens, else max_tokens; -1 = not given */
	int stream;
	int include_usage;         /* stream_options.include_usage */
	int rf;                    /* enum hark_sim_rf */
	const json_t *schema;      /* the schema the reply follows, or NULL */
	json_t *prompt_schema;     /* owned: a schema found in the prompt */
	long prompt_tokens;        /* hark_llm_tokens_chat */
	uint64_t h;                /* first 64 bits of the request hash */
	char hash_hex[65];         /* sha256(model, messages, response_format) */
	char identity[65];         /* sha256 of the first user message's content */
	struct hark_sim_directive *dirs;
	size_t n_dirs, dirs_cap;
	struct hark_sim_chunk *chunks; /* from system/user/tool messages, in order */
	size_t n_chunks, chunks_cap;
};

/*
 * Parses a chat-completions request body. On success *out is heap-owned
 * (hark_sim_chat_free). HARK_ERR_FORMAT when the body is not a JSON object,
 * HARK_ERR_INVALID_ARG for a missing or malformed member; err (errlen bytes)
 * is the message for the 400 reply, *param the member at fault (static
 * string or NULL).
 */
int hark_sim_chat_parse(const char *body, size_t len, struct hark_sim_chat **out,
			const char **param, char *err, size_t errlen);
void hark_sim_chat_free(struct hark_sim_chat *c);

/*
 * The whole (uncut) reply content for variant (enum hark_sim_variant):
 * heap, NUL-terminated, *len bytes. HARK_ERR_NOMEM on allocation failure.
 * The same request always gives the same content.
 */
int hark_sim_chat_content(const struct hark_sim_chat *c, int variant, char **content,
			  size_t *len);

/*
 * Instance of schema (root: the document $refs resolve in) filled from the
 * given chunks (may be 0) or, without chunks, from fallback text; choices
 * by seed. New reference, or NULL on allocation failure. Exposed for tests.
 */
json_t *hark_sim_schema_instance(const json_t *schema, const json_t *root,
				 const struct hark_sim_chunk *chunks, size_t n_chunks,
				 const char *fallback, size_t fallback_len, uint64_t seed);

/* ---- directive counters ------------------------------------------------------------- */

struct hark_sim_counters;

struct hark_sim_counters *hark_sim_counters_new(void);
void hark_sim_counters_free(struct hark_sim_counters *c);
/* The arrival counter of (identity, name), created at 0; NULL when full or
 * out of memory (the directive then applies as if never seen). */
long *hark_sim_counters_slot(struct hark_sim_counters *c, const char *identity,
			     const char *name);

#endif /* HARK_SIM_REPLY_H */
