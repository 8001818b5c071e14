/*
 * The meeting-analysis pipeline shared by `hark analyze`, `hark run` and the
 * server's analyze/run jobs: reads transcripts (hark JSON, OpenAI
 * verbose_json, SRT/VTT, QMSum JSON, plain "Speaker: text" lines), chunks
 * them, runs the offline analyzer on every meeting (minutes, entities and
 * co-occurrence relations), and, when an LLM client is given, the batched
 * LLM extraction (only of chunks whose result is not yet in the store;
 * identical chunks across meetings are sent once) and the per-meeting
 * reduce. Each meeting's minutes, graph, chunk list and search documents go
 * into the store in one transaction as soon as it is done, and each chunk's
 * LLM result as soon as its batch settles, so a canceled or killed run
 * continues where it stopped, and a meeting whose content and parameters are
 * unchanged is not analysed again (its stored results are returned).
 */
#ifndef HARK_ANALYZE_PIPELINE_H
#define HARK_ANALYZE_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "analyze/chunk.h"
#include "analyze/entities.h"
#include "analyze/graph.h"
#include "analyze/offline.h"

struct hark_store;
struct hark_llm;
struct hark_transcript;

/* Pipeline stages, in order (progress reports name them). */
enum hark_pipeline_stage {
	HARK_PIPELINE_READ = 0,    /* parse the inputs */
	HARK_PIPELINE_OFFLINE = 1, /* chunking + offline minutes + entities */
	HARK_PIPELINE_EXTRACT = 2, /* LLM map step (per batch) */
	HARK_PIPELINE_REDUCE = 3,  /* LLM reduce step (per meeting) */
	HARK_PIPELINE_INDEX = 4,   /* store + search index (+ embeddings) */
	HARK_PIPELINE_GRAPH = 5,   /* corpus graph */
	HARK_PIPELINE_N_STAGES = 6,
};

/* "read", "offline", "extract", "reduce", "index", "graph". */
const char *hark_pipeline_stage_name(int stage);

/* One meeting to analyse (borrowed for the call). Exactly one of path,
 * data or transcript is set. */
struct hark_pipeline_input {
	const char *name;       /* meeting name (output base name); NULL = from path
				 * (file name without directory and extension) */
	const char *path;       /* transcript file */
	const char *data;       /* transcript text in memory (server uploads) */
	size_t len;
	const struct hark_transcript *transcript; /* already transcribed (hark run) */
	const char *date;       /* "YYYY-MM-DD"; NULL = from the input's metadata
				 * (a top-level "date" member of JSON input, a
				 * YYYY-MM-DD in the name) or unknown */
};

struct hark_pipeline_params {
	struct hark_chunk_params chunk;       /* 1200/100 tokens */
	struct hark_offline_params offline;
	struct hark_entities_params entities;
	size_t batch_chunks;                  /* chunks per LLM extraction request (10) */
	struct hark_llm *llm;                 /* NULL = offline only */
	int embed;                            /* 1: embed chunks (route "embed") for hybrid
					       * search; needs llm */
	int force;                            /* 1: analyse even unchanged meetings */
	size_t max_input_bytes;               /* per transcript (64 MiB) */
	const char *job_id, *key_id;          /* LLM accounting */
	/* progress: stage (enum hark_pipeline_stage), units done of total in that
	 * stage (meetings, or batches for EXTRACT); on the calling thread */
	void (*progress)(int stage, size_t done, size_t total, void *user_data);
	/* polled often; nonzero stops the run with HARK_ERR_CANCELED (work
	 * finished so far stays stored) */
	int (*cancel)(void *user_data);
	void *user_data;
};

struct hark_pipeline_params hark_pipeline_default_params(void);

/* Outcome for one input. */
struct hark_pipeline_meeting {
	char name[128];
	int err;                /* HARK_OK or why this meeting failed (others go on) */
	char error[512];
	int reused;             /* 1: unchanged since the stored analysis; results loaded */
	char *minutes_json;     /* heap, NULL on failure */
	char *minutes_md;       /* heap */
	char *graph_json;       /* heap: this meeting's resolved graph */
	size_t turns, chunks;
	size_t chunks_sent;     /* chunks sent to the LLM in this run */
	size_t chunks_failed;   /* chunks whose LLM extraction finally failed */
	char method[16];        /* "offline" or "llm" */
	char warning[256];      /* non-fatal problem (e.g. reduce fell back to offline) */
};

/* Frees the strings of m (not m itself). */
void hark_pipeline_meeting_clear(struct hark_pipeline_meeting *m);

/* Totals of one run. */
struct hark_pipeline_stats {
	size_t meetings, failed, reused;
	size_t chunks, chunks_unique, chunks_sent, chunks_cached, chunks_failed;
	size_t llm_requests;
	int64_t tokens_in, tokens_out;
	double cost_usd;
	double seconds;         /* the whole run */
	double llm_seconds;     /* of which in the LLM map and reduce steps */
};

/*
 * Analyses in[0..n) with p (NULL = defaults) against store st (required).
 * out: caller array of n entries, each filled (clear each with
 * hark_pipeline_meeting_clear). corpus (may be NULL): receives the resolved
 * merge of the successful meetings' graphs. stats may be NULL.
 * Returns HARK_OK when every meeting was attempted (check out[i].err),
 * HARK_ERR_CANCELED when canceled, or a run-wide error (HARK_ERR_INVALID_ARG,
 * HARK_ERR_NOMEM, a store failure); err (errlen bytes) says why.
 */
int hark_pipeline_run(struct hark_store *st, const struct hark_pipeline_input *in, size_t n,
		      const struct hark_pipeline_params *p, struct hark_pipeline_meeting *out,
		      struct hark_graph *corpus, struct hark_pipeline_stats *stats, char *err,
		      size_t errlen);

/*
 * Reads one transcript into turns (the same readers hark_pipeline_run uses;
 * exposed for the diagram and tests). *turns (n_turns) and their strings
 * live in *owner, one heap blob (the array is its start): the caller frees
 * *owner with free() and must not free *turns separately. *date_out (11
 * bytes) gets a metadata date or "". Errors: HARK_ERR_EMPTY, HARK_ERR_FORMAT,
 * HARK_ERR_LIMIT, file errors, HARK_ERR_NOMEM; err says why.
 */
int hark_pipeline_read(const struct hark_pipeline_input *in, size_t max_bytes,
		       struct hark_chunk_turn **turns, size_t *n_turns, void **owner,
		       char date_out[11], char *err, size_t errlen);

#endif /* HARK_ANALYZE_PIPELINE_H */
