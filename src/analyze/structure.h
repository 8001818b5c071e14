/*
 * Diagram structure from speech, offline: decides which kind of diagram a
 * spoken explanation is (rules and features, no model) and builds the spec
 * (render/diagram.h) from the transcript's speaker turns.
 *
 * Detection features, scored per type and normalised:
 *   - flowchart: step sequencers ("first", "then", "next", "after that",
 *     "finally", "step N"), conditions ("if", "otherwise", "else", "unless",
 *     "in case"), imperative process verbs;
 *   - timeline: date expressions (analyze/dates.h), years, months, weekdays,
 *     ordinal events ("in 2019", "last March", "by Q3", "phase one"),
 *     past/future narrative markers;
 *   - mind map: topic/subtopic structure ("there are three aspects",
 *     "regarding", "another topic", "on the one hand", enumerations of
 *     nouns) with few sequencers and few dates;
 *   - hierarchy: reporting or containment ("reports to", "is part of",
 *     "consists of", "under", "belongs to", "is made up of", "manages",
 *     "team", "department", "division");
 *   - sequence: turn-by-turn exchanges between named parties ("X sends Y",
 *     "Y replies to X", "the client asks the server", "A calls B", "returns
 *     ... to"), or a dialogue of alternating speakers addressing each other.
 * A text with no clear structure gets a mind map of its topics.
 *
 * Builders per type (each element keeps the turn and time span it came
 * from): flowchart steps in spoken order with decision nodes and yes/no
 * edges for conditions; timeline events ordered by resolved date (else by
 * order of mention); mind map root = the main topic, children = topics
 * (analyze/offline.h topics / keyphrases), grandchildren = their keywords;
 * hierarchy from "X reports to Y" / "X is part of Y" relations; sequence
 * participants from the named parties and messages in spoken order. Long
 * inputs are summarised to at most max_nodes nodes (or split into pages),
 * never drawn as a hairball.
 */
#ifndef HARK_ANALYZE_STRUCTURE_H
#define HARK_ANALYZE_STRUCTURE_H

#include <stddef.h>

#include "analyze/chunk.h"
#include "render/diagram.h"

/* Detection result. */
struct hark_structure_scores {
	double score[HARK_DIAGRAM_N_TYPES]; /* >= 0; higher = more likely */
	int best;                           /* enum hark_diagram_type */
	double confidence;                  /* 0..1: margin of best over the runner-up */
	char reason[160];                   /* the features that decided, for people */
};

/*
 * Scores turns[0..n) for every diagram type into *out (deterministic).
 * n == 0 or text without features gives best = HARK_DIAGRAM_MINDMAP with
 * confidence 0. Returns HARK_ERR_INVALID_ARG for NULL out or turns NULL
 * with n > 0, else 0.
 */
int hark_structure_detect(const struct hark_chunk_turn *turns, size_t n,
			  struct hark_structure_scores *out);

struct hark_structure_params {
	size_t max_nodes;     /* at most this many nodes per page (24; <= HARK_DIAGRAM_MAX_NODES) */
	size_t max_label;     /* label length in characters before shortening (60) */
	int page;             /* 1-based page to build when the input needs several (1) */
	const char *title;    /* NULL = derived from the content */
	const char *meeting_date; /* "YYYY-MM-DD" for relative dates, or NULL */
};

struct hark_structure_params hark_structure_default_params(void);

/*
 * Builds a spec of the given type (enum hark_diagram_type) from turns[0..n)
 * into *out (caller clears; left empty on error). The result always passes
 * hark_diagram_validate. A type whose structure is absent from the text
 * falls back to a mind map of topics (out->type says which was built).
 * Errors: HARK_ERR_INVALID_ARG, HARK_ERR_EMPTY (no words at all),
 * HARK_ERR_NOMEM; err (errlen bytes) says why.
 */
int hark_structure_build(const struct hark_chunk_turn *turns, size_t n, int type,
			 const struct hark_structure_params *p, struct hark_diagram *out,
			 char *err, size_t errlen);

#endif /* HARK_ANALYZE_STRUCTURE_H */
