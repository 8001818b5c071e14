/*
 * Meeting analysis through a language model (the LLM layer, llm/llm.h), as
 * a map step and a reduce step. Map: transcript chunks (analyze/chunk.h) are
 * sent in batches, each chunk marked `[chunk cK]` with batch-local IDs, with
 * the prompt share/prompts/minutes_extract.md and the schema
 * share/schemas/minutes_extract.json (analyze/prompts.h); every item of the
 * reply names its chunk, and the reply is cut into one canonical JSON slice
 * per chunk, which callers store by chunk hash so that unchanged chunks are
 * never extracted twice. Reduce: the slices of one meeting become LLM
 * minutes (analyze/minutes.h: summary and topics from a reduce request over
 * the ordered notes, hierarchical when they do not fit one request;
 * decisions, action items and open questions from the slices, de-duplicated
 * across overlapping chunks and located in the transcript by their evidence
 * quote) and knowledge-graph entities and relations (analyze/graph.h,
 * unresolved).
 */
#ifndef HARK_ANALYZE_LLM_MINUTES_H
#define HARK_ANALYZE_LLM_MINUTES_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/chunk.h"
#include "analyze/dates.h"
#include "analyze/graph.h"
#include "analyze/minutes.h"

struct hark_llm;

/* Bumped whenever the way slices are requested or cut changes. */
#define HARK_LLM_MINUTES_VERSION 1

/* Longest slice JSON accepted per chunk (bytes). */
#define HARK_LLM_MINUTES_MAX_SLICE ((size_t)1 << 20)

struct hark_llm_minutes_params {
	size_t batch_chunks;       /* chunks per extraction request (10; 1..50) */
	long max_tokens_per_chunk; /* completion budget per chunk in a batch (800; 16..100000);
				    * single-chunk retries get twice this */
	long reduce_max_tokens;    /* completion budget of a reduce request (2048; 64..100000) */
	const char *extract_task;  /* LLM route of extraction requests ("extract") */
	const char *reduce_task;   /* LLM route of reduce requests ("summarize") */
	const char *job_id, *key_id; /* accounting; NULL = none */
	int (*cancel)(void *ud);   /* polled; nonzero aborts (NULL = never) */
	void (*progress)(size_t done, size_t total, void *ud); /* requests settled of total */
	void *user_data;           /* ud of cancel and progress */
};

/* The defaults above (strings static). */
struct hark_llm_minutes_params hark_llm_minutes_default_params(void);

/*
 * The pipeline key: lowercase hex sha256 over HARK_LLM_MINUTES_VERSION and
 * the extract prompt and schema texts as hark_prompts_get returns them (so
 * an override changes it). Stored per-chunk slices are only valid under the
 * key they were made with. Errors: those of hark_prompts_get,
 * HARK_ERR_INTERNAL (crypto).
 */
int hark_llm_minutes_pipeline_key(char out[65]);

/* One chunk to extract (borrowed). sha256 identifies it (may be NULL); text
 * is what the model reads. */
struct hark_llm_chunk_in {
	const char *sha256;
	const char *text;
};

/* Accounting (added to, never reset: zero it before the first call). */
struct hark_llm_minutes_stats {
	size_t requests;       /* LLM requests submitted (cache hits included) */
	size_t batches;        /* extraction batches (first attempts) */
	size_t failed_batches; /* requests that finally failed (batches, split retries, reduces) */
	size_t chunks_ok, chunks_failed;
	size_t items_dropped;  /* items naming an unknown chunk or quoting nothing found in it */
	size_t reduce_requests;
	size_t reduce_levels;  /* reduce passes of the deepest meeting (1 = flat) */
	int64_t tokens_in, tokens_out;
	double cost_usd;
	size_t cached;         /* requests answered from the LLM cache */
};

/*
 * Map step. Extracts chunks[0..n) (the caller has de-duplicated them and
 * removed those with stored slices) in batches of p->batch_chunks (p NULL =
 * defaults), all batches submitted together through one hark_llm_run (the
 * layer bounds concurrency and rate); the request of a batch is a pure
 * function of its chunk texts (IDs "c1".."cN"), so repeated batches come
 * from the LLM cache. As each batch settles, on_chunk(index, json, err, msg,
 * ud) is called once per chunk of the batch, on the calling thread: json is
 * that chunk's slice as canonical JSON text {"action_items": [{task, owner,
 * due, evidence}], "decisions": [{decision, evidence}], "entities": [{name,
 * type, evidence}], "notes": [{text}], "open_questions": [{question,
 * evidence}], "relations": [{source, target, type, evidence}]} (borrowed for
 * the call; items without their "chunk" member; items naming an unknown
 * chunk or whose evidence is not found in the chunk are dropped and
 * counted), err 0; or json NULL and err != 0 (HARK_ERR_* of the request,
 * msg says why) for each chunk of a failed batch. A failed batch of more
 * than one chunk is retried once as single-chunk requests before its chunks
 * are reported failed; one failed batch never fails the others. Every
 * chunk is reported exactly once unless the call returns an error first.
 * Returns 0 when every chunk was reported (check err per chunk);
 * HARK_ERR_INVALID_ARG (bad arguments, chunk text NULL),
 * HARK_ERR_CANCELED (p->cancel; chunks not yet reported are reported with
 * HARK_ERR_CANCELED first), HARK_ERR_NOMEM, or a hark_prompts_get error.
 */
int hark_llm_minutes_extract(struct hark_llm *c, const struct hark_llm_chunk_in *chunks, size_t n,
			     const struct hark_llm_minutes_params *p,
			     void (*on_chunk)(size_t index, const char *json, int err,
					      const char *msg, void *ud),
			     void *ud,
			     struct hark_llm_minutes_stats *stats);

/*
 * Reduce step for one meeting. turns[0..n_turns): the input the chunks were
 * cut from; chunks: hark_chunk_split's list; chunk_json[i]: chunk i's slice
 * (as hark_llm_minutes_extract made it), NULL when that chunk failed. Fills
 * *out (cleared first; caller releases with hark_minutes_clear) with
 * method "llm", model = the reduce request's model, and adds the slices'
 * entities and relations to *graph (may be NULL; not resolved) with mentions
 * {meeting, chunk index, turn, start_s} located by finding the evidence
 * quote in the chunk's turns (falling back to the chunk's first turn and
 * start). Summary, key points and topics come from reduce requests (prompt
 * minutes_reduce) over the ordered chunk notes; when a request does not fit
 * the route's context window, the notes are reduced in groups whose partial
 * topics and summaries are reduced again (never truncated). Topic ranges
 * come from the chunk IDs the reply names (unknown IDs drop the topic).
 * Decisions, action items (due_iso resolved with analyze/dates.h against
 * *date when known) and open questions come from the slices, de-duplicated
 * across overlapping chunks. Participants, duration and date are copied
 * from *offline (the offline minutes of the same meeting). When the reduce
 * fails, summary, points and topics are offline's and err says why, but
 * the call still returns 0.
 * Errors: HARK_ERR_INVALID_ARG (NULL arguments), HARK_ERR_FORMAT (a slice
 * that is not JSON; err names the chunk), HARK_ERR_CANCELED, HARK_ERR_NOMEM,
 * HARK_ERR_LIMIT (item caps).
 */
int hark_llm_minutes_build(struct hark_llm *c, const char *meeting,
			   const struct hark_chunk_turn *turns, size_t n_turns,
			   const struct hark_chunk_list *chunks, const char *const *chunk_json,
			   const struct hark_date *date, const struct hark_minutes *offline,
			   const struct hark_llm_minutes_params *p, struct hark_minutes *out,
			   struct hark_graph *graph, struct hark_llm_minutes_stats *stats,
			   char *err, size_t errlen);

/*
 * 1 when quote (after normalisation: ASCII case folded, bracketed
 * annotations such as "{vocalsound}" removed, every run of non-alphanumeric
 * bytes made one space) occurs in text normalised the same way; an empty
 * quote is never found. Exposed for tests.
 */
int hark_llm_minutes_quote_in(const char *quote, const char *text);

#endif /* HARK_ANALYZE_LLM_MINUTES_H */
