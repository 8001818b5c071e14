/*
 * Diagram making, the step shared by `hark diagram`, `hark video` and the
 * server's diagram/video jobs: from a transcript's speaker turns to one or
 * more validated diagram specs (render/diagram.h). The offline path detects
 * the type (analyze/structure.h, unless one is forced) and builds the spec,
 * page by page when the input is too long for one readable diagram. With an
 * LLM client the first page's offline draft, the transcript and the type go
 * to the LLM layer (prompt share/prompts/diagram.md, schema
 * share/schemas/diagram.json); the answer is parsed, its times are taken
 * from the turns it names, and it is validated. An invalid answer is re-asked
 * with the validation error, within a bound, and otherwise the offline draft
 * is used: a broken diagram is never returned.
 */
#ifndef HARK_ANALYZE_VISUAL_H
#define HARK_ANALYZE_VISUAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "analyze/chunk.h"
#include "analyze/structure.h"
#include "render/diagram.h"

struct hark_llm;

struct hark_visual_params {
	int type;                 /* enum hark_diagram_type, or -1 = detect (-1) */
	size_t max_nodes;         /* nodes per page (24) */
	size_t max_pages;         /* pages built at most; the rest is reported (12; 1..64) */
	const char *title;        /* NULL = derived */
	const char *meeting_date; /* "YYYY-MM-DD" or NULL */
	const char *source;       /* input name for the spec, or NULL */
	double duration_s;        /* audio length, < 0 = unknown (-1) */
	struct hark_llm *llm;     /* NULL = offline only */
	const char *task;         /* LLM route ("diagram") */
	int max_repairs;          /* re-asks after an invalid spec (1; 0..3) */
	size_t max_prompt_turns;  /* transcript turns sent to the LLM at most (400) */
	const char *job_id, *key_id; /* LLM accounting, may be NULL */
	int (*cancel)(void *user_data); /* polled between steps; may be NULL */
	void *user_data;
};

struct hark_visual_params hark_visual_default_params(void);

struct hark_visual_result {
	struct hark_diagram *pages;  /* n_pages valid specs (heap) */
	size_t n_pages;
	size_t total_pages;          /* pages the input needs (> n_pages when capped) */
	struct hark_structure_scores scores; /* offline detection */
	int requested;               /* the type asked for, -1 = auto */
	int used_llm;                /* 1: pages[0] is the LLM's validated answer */
	int llm_calls;               /* chat requests made (repairs included) */
	int64_t tokens_in, tokens_out;
	double cost_usd;
	char note[320];              /* why the LLM answer was not used, or a fallback; "" */
};

/*
 * Builds the diagram pages of turns[0..n) into *out (caller clears with
 * hark_visual_result_clear; left empty on error). p NULL = defaults. Every
 * page passes hark_diagram_validate. Errors: HARK_ERR_INVALID_ARG,
 * HARK_ERR_EMPTY (no words: no speech), HARK_ERR_CANCELED, HARK_ERR_NOMEM;
 * err (errlen bytes) says why. LLM failures are never errors: they end in
 * the offline result with out->note saying why.
 */
int hark_visual_build(const struct hark_chunk_turn *turns, size_t n,
		      const struct hark_visual_params *p, struct hark_visual_result *out,
		      char *err, size_t errlen);

void hark_visual_result_clear(struct hark_visual_result *r);

/*
 * What a build decided, as a new JSON object (NULL when out of memory) for
 * reports (`hark diagram --json`, the server's job summary): type,
 * requested ("auto" or a type), detected, confidence, reason, method
 * ("llm" or "offline"), note, title, pages, total_pages, nodes and edges of
 * page 1, llm_calls, tokens_in, tokens_out, cost_usd. r must hold a page.
 */
json_t *hark_visual_result_to_json(const struct hark_visual_result *r);

#endif /* HARK_ANALYZE_VISUAL_H */
