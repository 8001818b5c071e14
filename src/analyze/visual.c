/*
 * Diagram making from speaker turns (contract in analyze/visual.h): offline
 * detection and page-by-page building through analyze/structure.h, then,
 * with an LLM client, one request that refines the first page's draft,
 * bounded re-asks that quote the validation error, and the offline draft as
 * the fallback whenever the answer cannot be made valid.
 */
#include "analyze/visual.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "analyze/prompts.h"
#include "hark/hark.h"
#include "llm/llm.h"
#include "util/errbuf.h"

/* With type detection, an input whose detected structure needs more pages
 * than this is summarised as a mind map of topics instead. */
#define VISUAL_AUTO_PAGES 3

/* Largest user message sent (bytes); longer transcripts are cut by turns. */
#define VISUAL_MAX_PROMPT ((size_t)200 * 1024)

struct hark_visual_params hark_visual_default_params(void)
{
	struct hark_visual_params p;

	memset(&p, 0, sizeof(p));
	p.type = -1;
	p.max_nodes = 24;
	p.max_pages = 12;
	p.duration_s = -1;
	p.task = "diagram";
	p.max_repairs = 1;
	p.max_prompt_turns = 400;
	return p;
}

void hark_visual_result_clear(struct hark_visual_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_pages; i++)
		hark_diagram_clear(&r->pages[i]);
	free(r->pages);
	memset(r, 0, sizeof(*r));
}

json_t *hark_visual_result_to_json(const struct hark_visual_result *r)
{
	const struct hark_diagram *d;
	json_t *j;
	int bad = 0;

	if (!r || r->n_pages == 0)
		return NULL;
	d = &r->pages[0];
	j = json_object();
	if (!j)
		return NULL;
	bad |= json_object_set_new(j, "type", json_string(hark_diagram_type_name(d->type)));
	bad |= json_object_set_new(j, "requested",
				   json_string(r->requested < 0 ? "auto"
								: hark_diagram_type_name(r->requested)));
	bad |= json_object_set_new(j, "detected",
				   json_string(hark_diagram_type_name(r->scores.best)));
	bad |= json_object_set_new(j, "confidence", json_real(r->scores.confidence));
	bad |= json_object_set_new(j, "reason", json_string(r->scores.reason));
	bad |= json_object_set_new(j, "method", json_string(r->used_llm ? "llm" : "offline"));
	bad |= json_object_set_new(j, "note", json_string(r->note));
	bad |= json_object_set_new(j, "title", json_string(d->title ? d->title : ""));
	bad |= json_object_set_new(j, "pages", json_integer((json_int_t)r->n_pages));
	bad |= json_object_set_new(j, "total_pages", json_integer((json_int_t)r->total_pages));
	bad |= json_object_set_new(j, "nodes", json_integer((json_int_t)d->n_nodes));
	bad |= json_object_set_new(j, "edges", json_integer((json_int_t)d->n_edges));
	bad |= json_object_set_new(j, "llm_calls", json_integer(r->llm_calls));
	bad |= json_object_set_new(j, "tokens_in", json_integer(r->tokens_in));
	bad |= json_object_set_new(j, "tokens_out", json_integer(r->tokens_out));
	bad |= json_object_set_new(j, "cost_usd", json_real(r->cost_usd));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int canceled(const struct hark_visual_params *p)
{
	return p->cancel && p->cancel(p->user_data);
}

/* ---- LLM refinement ---------------------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
	int fail;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->fail)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		char *t;

		while (cap < b->len + n + 1)
			cap *= 2;
		t = realloc(b->s, cap);
		if (!t) {
			b->fail = 1;
			return;
		}
		b->s = t;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* The user message: type line, numbered turns, the draft in a json fence. */
static char *user_message(const struct hark_chunk_turn *turns, size_t n, int requested,
			  const struct hark_visual_result *r, const struct hark_visual_params *p)
{
	struct sbuf b = {0};
	char line[256], *draft_txt = NULL;
	json_t *draft = NULL;
	size_t nt = n < p->max_prompt_turns ? n : p->max_prompt_turns;

	if (requested >= 0)
		snprintf(line, sizeof(line), "Diagram type: %s\n\n",
			 hark_diagram_type_name(requested));
	else
		snprintf(line, sizeof(line), "Diagram type: auto (offline analysis suggests %s)\n\n",
			 hark_diagram_type_name(r->scores.best));
	sb_str(&b, line);
	sb_str(&b, "Transcript:\n");
	for (size_t i = 0; i < nt && b.len < VISUAL_MAX_PROMPT; i++) {
		const char *t = turns[i].text ? turns[i].text : "";

		if (turns[i].start_s >= 0)
			snprintf(line, sizeof(line), "[t%zu %.1fs] ", i, turns[i].start_s);
		else
			snprintf(line, sizeof(line), "[t%zu] ", i);
		sb_str(&b, line);
		if (turns[i].speaker && turns[i].speaker[0]) {
			sb_str(&b, turns[i].speaker);
			sb_str(&b, ": ");
		}
		sb_add(&b, t, strnlen(t, 4000));
		sb_str(&b, "\n");
	}
	if (nt < n) {
		snprintf(line, sizeof(line), "(%zu more turns not shown)\n", n - nt);
		sb_str(&b, line);
	}
	draft = hark_diagram_to_json(&r->pages[0]);
	draft_txt = draft ? json_dumps(draft, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(draft);
	if (!draft_txt) {
		free(b.s);
		return NULL;
	}
	sb_str(&b, "\nOffline draft:\n```json\n");
	sb_str(&b, draft_txt);
	sb_str(&b, "\n```\n");
	free(draft_txt);
	if (b.fail) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* Times of every element from the turn it names; unknown turns lose their
 * turn and keep valid times only. */
static void fill_times(struct hark_diagram *d, const struct hark_chunk_turn *turns, size_t n,
		       const struct hark_visual_params *p)
{
	struct hark_diagram_span *sp;

	for (size_t i = 0; i < d->n_nodes + d->n_edges; i++) {
		sp = i < d->n_nodes ? &d->nodes[i].span : &d->edges[i - d->n_nodes].span;
		if (sp->turn >= 0 && (size_t)sp->turn < n) {
			sp->start_s = turns[sp->turn].start_s;
			sp->end_s = turns[sp->turn].end_s >= sp->start_s ? turns[sp->turn].end_s
									 : sp->start_s;
		} else {
			sp->turn = -1;
		}
		if (!(sp->start_s >= 0) || !isfinite(sp->start_s))
			sp->start_s = -1;
		if (sp->start_s < 0 || !(sp->end_s >= sp->start_s) || !isfinite(sp->end_s))
			sp->end_s = sp->start_s;
	}
	d->duration_s = p->duration_s;
	d->page = 1;
	d->pages = 1;
	free(d->source);
	d->source = p->source ? strdup(p->source) : NULL;
}

/* Parses and validates one answer into *spec (cleared on failure; why). */
static int accept_answer(const char *content, int requested, const struct hark_chunk_turn *turns,
			 size_t n, const struct hark_visual_params *p, struct hark_diagram *spec,
			 char *why, size_t whylen)
{
	json_error_t je;
	json_t *j = json_loads(content, 0, &je);
	int rc;

	memset(spec, 0, sizeof(*spec));
	if (!j) {
		hark_errbuf_set(why, whylen, "the answer is not JSON (%s)", je.text);
		return HARK_ERR_FORMAT;
	}
	rc = hark_diagram_from_json(j, spec, why, whylen);
	json_decref(j);
	if (rc == HARK_OK && requested >= 0 && spec->type != requested) {
		hark_errbuf_set(why, whylen, "type is %s, %s was asked for",
				hark_diagram_type_name(spec->type), hark_diagram_type_name(requested));
		rc = HARK_ERR_FORMAT;
	}
	if (rc == HARK_OK && spec->n_nodes > p->max_nodes) {
		hark_errbuf_set(why, whylen, "%zu nodes, at most %zu make a readable diagram",
				spec->n_nodes, p->max_nodes);
		rc = HARK_ERR_FORMAT;
	}
	if (rc == HARK_OK) {
		fill_times(spec, turns, n, p);
		rc = hark_diagram_validate(spec, why, whylen);
	}
	if (rc != HARK_OK)
		hark_diagram_clear(spec);
	return rc;
}

static void refine(const struct hark_chunk_turn *turns, size_t n, int requested,
		   const struct hark_visual_params *p, struct hark_visual_result *r)
{
	const char *sys = NULL, *schema = NULL;
	char *user = NULL, *repair = NULL, why[300] = "";
	struct hark_llm_msg msgs[4];
	struct hark_llm_request req;
	struct hark_llm_result res;
	struct hark_diagram spec;
	size_t nm;
	int rc;

	memset(&res, 0, sizeof(res));
	memset(msgs, 0, sizeof(msgs));
	if (hark_prompts_get("prompts/diagram.md", &sys, NULL) != HARK_OK ||
	    hark_prompts_get("schemas/diagram.json", &schema, NULL) != HARK_OK) {
		snprintf(r->note, sizeof(r->note), "diagram prompt or schema unavailable: offline spec");
		return;
	}
	user = user_message(turns, n, requested, r, p);
	if (!user) {
		snprintf(r->note, sizeof(r->note), "out of memory building the prompt: offline spec");
		return;
	}
	msgs[0].role = "system";
	msgs[0].content = sys;
	msgs[1].role = "user";
	msgs[1].content = user;
	nm = 2;
	for (int attempt = 0; attempt <= p->max_repairs; attempt++) {
		if (canceled(p))
			break;
		memset(&req, 0, sizeof(req));
		req.task = p->task;
		req.messages = msgs;
		req.n_messages = nm;
		req.schema = schema;
		req.schema_name = "diagram";
		req.job_id = p->job_id;
		req.key_id = p->key_id;
		rc = hark_llm_chat(p->llm, &req, &res);
		r->llm_calls++;
		r->tokens_in += res.tokens_in;
		r->tokens_out += res.tokens_out;
		r->cost_usd += res.cost_usd;
		if (rc != HARK_OK) {
			snprintf(r->note, sizeof(r->note), "LLM failed (%.200s): offline spec",
				 res.error[0] ? res.error : hark_strerror(rc));
			break;
		}
		if (accept_answer(res.content, requested, turns, n, p, &spec, why, sizeof(why)) ==
		    HARK_OK) {
			hark_diagram_clear(&r->pages[0]);
			r->pages[0] = spec;
			r->used_llm = 1;
			r->note[0] = '\0';
			break;
		}
		snprintf(r->note, sizeof(r->note), "LLM spec invalid (%.200s): offline spec", why);
		if (attempt == p->max_repairs)
			break;
		/* re-ask: the answer and what is wrong with it */
		free(repair);
		{
			size_t rl = strlen(why) + 200;

			repair = malloc(rl);
			if (!repair)
				break;
			snprintf(repair, rl,
				 "That diagram is invalid: %s. Answer again with the corrected "
				 "JSON object only.",
				 why);
		}
		free((char *)msgs[2].content);
		msgs[2].role = "assistant";
		msgs[2].content = res.content;
		res.content = NULL;
		msgs[3].role = "user";
		msgs[3].content = repair;
		nm = 4;
		hark_llm_result_clear(&res);
	}
	hark_llm_result_clear(&res);
	free((char *)msgs[2].content);
	free(repair);
	free(user);
}

/* ---- build --------------------------------------------------------------------------- */

int hark_visual_build(const struct hark_chunk_turn *turns, size_t n,
		      const struct hark_visual_params *p, struct hark_visual_result *out,
		      char *err, size_t errlen)
{
	struct hark_visual_params dp = hark_visual_default_params();
	struct hark_structure_params sp = hark_structure_default_params();
	int type, rc;
	size_t want;

	if (!out || (!turns && n > 0)) {
		hark_errbuf_set(err, errlen, "invalid arguments");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &dp;
	if (p->type < -1 || p->type >= HARK_DIAGRAM_N_TYPES || p->max_pages < 1 ||
	    p->max_pages > 64 || p->max_repairs < 0 || p->max_repairs > 3) {
		hark_errbuf_set(err, errlen, "invalid diagram parameters");
		return HARK_ERR_INVALID_ARG;
	}
	out->requested = p->type;
	rc = hark_structure_detect(turns, n, &out->scores);
	if (rc != HARK_OK) {
		hark_errbuf_set(err, errlen, "type detection failed");
		return rc;
	}
	type = p->type >= 0 ? p->type : out->scores.best;
	sp.max_nodes = p->max_nodes;
	sp.title = p->title;
	sp.meeting_date = p->meeting_date;
	out->pages = calloc(1, sizeof(*out->pages));
	if (!out->pages) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	sp.page = 1;
	rc = hark_structure_build(turns, n, type, &sp, &out->pages[0], err, errlen);
	if (rc != HARK_OK)
		goto out;
	out->n_pages = 1;
	out->total_pages = out->pages[0].pages > 0 ? (size_t)out->pages[0].pages : 1;
	if (p->type < 0 && type != HARK_DIAGRAM_MINDMAP && out->total_pages > VISUAL_AUTO_PAGES) {
		/* a long meeting whose cues are spread thin: one readable mind map
		 * of its topics rather than many pages of a detected structure */
		size_t had = out->total_pages;

		hark_diagram_clear(&out->pages[0]);
		rc = hark_structure_build(turns, n, HARK_DIAGRAM_MINDMAP, &sp, &out->pages[0], err,
					  errlen);
		if (rc != HARK_OK)
			goto out;
		out->total_pages = 1;
		snprintf(out->note, sizeof(out->note),
			 "long input: a mind map of its topics instead of %zu %s pages", had,
			 hark_diagram_type_name(type));
	} else if (out->pages[0].type != type)
		snprintf(out->note, sizeof(out->note),
			 "no %s structure found: a mind map of the topics instead",
			 hark_diagram_type_name(type));
	want = out->total_pages < p->max_pages ? out->total_pages : p->max_pages;
	if (want > 1) {
		struct hark_diagram *pg = realloc(out->pages, want * sizeof(*pg));

		if (!pg) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		out->pages = pg;
		for (size_t k = 1; k < want; k++) {
			if (canceled(p)) {
				rc = HARK_ERR_CANCELED;
				hark_errbuf_set(err, errlen, "canceled");
				goto out;
			}
			memset(&out->pages[k], 0, sizeof(out->pages[k]));
			sp.page = (int)k + 1;
			rc = hark_structure_build(turns, n, out->pages[0].type, &sp, &out->pages[k],
						  err, errlen);
			if (rc != HARK_OK)
				goto out;
			out->n_pages++;
		}
	}
	for (size_t k = 0; k < out->n_pages; k++) {
		out->pages[k].duration_s = p->duration_s;
		if (p->source && !out->pages[k].source)
			out->pages[k].source = strdup(p->source);
	}
	if (p->llm && out->total_pages == 1 && !canceled(p))
		refine(turns, n, p->type, p, out);
	else if (p->llm && out->total_pages > 1)
		snprintf(out->note, sizeof(out->note),
			 "%zu pages: long inputs are drawn from the offline structure",
			 out->total_pages);
	if (canceled(p)) {
		rc = HARK_ERR_CANCELED;
		hark_errbuf_set(err, errlen, "canceled");
		goto out;
	}
	rc = HARK_OK;
out:
	if (rc != HARK_OK)
		hark_visual_result_clear(out);
	return rc;
}
