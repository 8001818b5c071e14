/*
 * Offline entity extraction: finds the people, organisations, projects,
 * products and salient concepts of one meeting transcript and their
 * co-occurrence relations, deterministically and without external NLP
 * resources, and adds them to a knowledge graph (analyze/graph.h).
 *   - Speakers become person entities named by their label (role labels
 *     such as "Project Manager", "Marketing", "PhD A" included), one mention
 *     per turn with content.
 *   - Capitalised word sequences (inner connectors "of", "and", "de", "the",
 *     "for" allowed; stop words, pronouns, weekdays, months, fillers and
 *     interjections excluded) that are not at a sentence start, or are at a
 *     sentence start and also occur capitalised mid-sentence somewhere in
 *     the meeting. Typed person (title "Dr."/"Mr."/... or a first name known
 *     from the speaker labels or a small built-in list), organization
 *     (suffix Inc/Corp/Ltd/University/Institute/Company/Committee/
 *     Association/...), project or product (next to the word "project" /
 *     "product"), else concept.
 *   - Acronyms: 2..8 capitals, digits allowed ("MP3"), spelled-out forms such
 *     as "L_C_D_" collapsed ("LCD"). Letter acronyms of 3+ letters are
 *     organizations, others concepts, letter+digit ones products.
 *   - For lowercase transcripts: repeated multi-word terms (2..3 content
 *     words, no stop words, at least 3 occurrences) become concepts.
 * Each mention carries the meeting, the surface form, the sentence as quote
 * (at most ~30 words), the turn index, start_s interpolated inside the turn
 * when the turn's times are known, and chunk -1. Relations: "co_occurs"
 * between two entities found within window_sentences consecutive sentences
 * (weight = number of such sentence windows), and "mentions" from a speaker
 * to an entity that speaker named at least twice.
 */
#ifndef HARK_ANALYZE_ENTITIES_H
#define HARK_ANALYZE_ENTITIES_H

#include <stddef.h>

#include "analyze/chunk.h"
#include "analyze/graph.h"

/* Called once per turn; nonzero stops the call with HARK_ERR_CANCELED. */
typedef int (*hark_entities_cancel_fn)(void *user_data);

struct hark_entities_params {
	size_t min_mentions;     /* keep an entity mentioned at least this often (2;
				  * speakers are always kept); >= 1 */
	size_t max_entities;     /* per meeting, most-mentioned first, speakers not
				  * counted (200); >= 1 */
	size_t window_sentences; /* co-occurrence window in sentences (1 = same
				  * sentence); >= 1 */
	size_t min_cooccur;      /* keep a co_occurs relation seen at least this
				  * often (2); >= 1 */
	size_t max_evidence;     /* quotes kept per relation of this meeting (5;
				  * at most 8 are kept) */
	size_t max_input_bytes;  /* cap on the summed text bytes (64 MiB); over it
				  * -> HARK_ERR_LIMIT */
	hark_entities_cancel_fn cancel; /* NULL = never */
	void *cancel_user_data;
};

/* The defaults above. */
struct hark_entities_params hark_entities_default_params(void);

/*
 * Adds to g the entities and relations found in turns[0..n) of the meeting
 * named meeting (non-empty; copied into every mention). p NULL = defaults.
 * The entities are not resolved: the caller runs hark_graph_resolve (ids
 * are NULL until then). Output depends only on the input. On error g may
 * hold part of the meeting's entities (the caller clears it).
 * Errors: HARK_ERR_INVALID_ARG (NULL g or meeting, turns NULL with n > 0,
 * bad params), HARK_ERR_LIMIT (input over max_input_bytes, graph caps),
 * HARK_ERR_CANCELED, HARK_ERR_NOMEM; err (errlen bytes) says why.
 */
int hark_entities_extract(const struct hark_chunk_turn *turns, size_t n, const char *meeting,
			  const struct hark_entities_params *p, struct hark_graph *g, char *err,
			  size_t errlen);

#endif /* HARK_ANALYZE_ENTITIES_H */
