/*
 * Offline meeting-item cues (src/analyze/cues.c): real-looking sentences per
 * category (first-person commitments, named and unnamed assignments,
 * decisions, open questions) with owners, task text and due dates; negated,
 * hedged, presentational and question sentences that must not become items;
 * the sentence splitter; and two shared QMSum meetings run turn by turn,
 * checked for sane properties (items found, owners are participants or the
 * speaker, no item from a filler turn, tasks are substrings of the turn).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "analyze/cues.h"
#include "analyze/meeting_text.h"
#include "hark/hark.h"

static const char *const people[] = {"Maria Lopez", "John", "Priya Natarajan", "Tom"};
#define NPEOPLE (sizeof people / sizeof people[0])

static struct hark_cue_result run(const char *s, const char *speaker)
{
	struct hark_cues_params p = hark_cues_default_params();
	p.meeting_date = (struct hark_date){2024, 5, 6}; /* Monday */
	struct hark_cue_result r;
	assert_int_equal(hark_cues_classify(s, strlen(s), speaker, people, NPEOPLE, &p, &r), 0);
	return r;
}

struct want {
	const char *s;
	int type;
	const char *owner;   /* NULL: don't care; "": none */
	const char *task_has; /* substring the task must contain, or NULL */
	const char *due_iso;  /* NULL: no due; else the ISO date */
};

static void check(const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct hark_cue_result r = run(w[i].s, "Alice");
		if (r.type != w[i].type)
			fail_msg("'%s': type %d (rule %s, task '%s'), want %d", w[i].s, r.type, r.rule,
				 r.task, w[i].type);
		if (w[i].type == HARK_CUE_NONE) {
			assert_true(r.confidence == 0.0);
			assert_string_equal(r.task, "");
			continue;
		}
		assert_true(r.confidence >= 0.5 && r.confidence <= 0.95);
		if (w[i].owner && strcmp(r.owner, w[i].owner) != 0)
			fail_msg("'%s': owner '%s', want '%s'", w[i].s, r.owner, w[i].owner);
		if (w[i].task_has && !strstr(r.task, w[i].task_has))
			fail_msg("'%s': task '%s' lacks '%s'", w[i].s, r.task, w[i].task_has);
		/* the task never repeats the cue and is a substring of the sentence */
		assert_non_null(strstr(w[i].s, r.task));
		assert_true(r.cue_end > r.cue_start && r.cue_end <= strlen(w[i].s));
		if (w[i].due_iso) {
			if (strcmp(r.due_iso, w[i].due_iso) != 0)
				fail_msg("'%s': due '%s' (%s), want %s", w[i].s, r.due, r.due_iso,
					 w[i].due_iso);
			/* the due phrase is cut off the end of the task */
			assert_null(strstr(r.task, r.due));
		} else {
			assert_string_equal(r.due, "");
		}
	}
}

static void test_first_person(void **state)
{
	(void)state;
	static const struct want w[] = {
		{"I'll send the slides by Friday.", HARK_CUE_ACTION, "Alice", "send the slides", "2024-05-10"},
		{"I will draft the budget proposal tomorrow.", HARK_CUE_ACTION, "Alice", "draft the budget proposal", "2024-05-07"},
		{"OK, I'm going to update the requirements document before next Monday.", HARK_CUE_ACTION, "Alice", "update the requirements document", "2024-05-13"},
		{"I can take the user testing sessions.", HARK_CUE_ACTION, "Alice", "user testing sessions", NULL},
		{"Let me send you the cost breakdown after the meeting.", HARK_CUE_ACTION, "Alice", "send you the cost breakdown", NULL},
		{"I'll take care of booking the meeting room for next week.", HARK_CUE_ACTION, "Alice", "booking the meeting room", "2024-05-17"},
		{"So I'll email the supplier about battery prices.", HARK_CUE_ACTION, "Alice", "email the supplier", NULL},
		{"I\xE2\x80\x99ll circulate the minutes tonight.", HARK_CUE_ACTION, "Alice", "circulate the minutes", "2024-05-06"},
		{"Yeah, I'm gonna prototype the scroll wheel by the 15th.", HARK_CUE_ACTION, "Alice", "prototype the scroll wheel", "2024-05-15"},
		{"I'll I'll check the licence terms and report back.", HARK_CUE_ACTION, "Alice", "check the licence terms", NULL},
	};
	check(w, sizeof w / sizeof w[0]);
}

static void test_assignments(void **state)
{
	(void)state;
	static const struct want w[] = {
		{"John, can you update the spec by next week?", HARK_CUE_ACTION, "John", "update the spec", "2024-05-17"},
		{"Maria, could you contact the plastics supplier?", HARK_CUE_ACTION, "Maria Lopez", "contact the plastics supplier", NULL},
		{"Maria will prepare the market survey.", HARK_CUE_ACTION, "Maria Lopez", "prepare the market survey", NULL},
		{"Priya Natarajan is going to write the evaluation script.", HARK_CUE_ACTION, "Priya Natarajan", "write the evaluation script", NULL},
		{"Tom to review the contract by the 15th.", HARK_CUE_ACTION, "Tom", "review the contract", "2024-05-15"},
		{"Let's assign the logo redesign to Priya.", HARK_CUE_ACTION, "Priya Natarajan", "logo redesign", NULL},
		{"Action item for John: benchmark the new decoder.", HARK_CUE_ACTION, "John", "benchmark the new decoder", NULL},
		{"Okay so John, you'll need to fix the build on Tuesday.", HARK_CUE_ACTION, "John", "fix the build", "2024-05-07"},
		{"Can you send me the recording of the session?", HARK_CUE_ACTION, "", "send me the recording", NULL},
		{"We need to finish the prototype by end of the week.", HARK_CUE_ACTION, "", "finish the prototype", "2024-05-10"},
	};
	check(w, sizeof w / sizeof w[0]);
}

static void test_decisions(void **state)
{
	(void)state;
	static const struct want w[] = {
		{"We agreed to use rubber buttons.", HARK_CUE_DECISION, "", "use rubber buttons", NULL},
		{"So we decided on a kinetic charger.", HARK_CUE_DECISION, "", "a kinetic charger", NULL},
		{"Let's go with the yellow case.", HARK_CUE_DECISION, "", "the yellow case", NULL},
		{"The decision is that we drop the LCD screen.", HARK_CUE_DECISION, "", "drop the LCD screen", NULL},
		{"Okay, we'll go with the cheaper chip.", HARK_CUE_DECISION, "", "the cheaper chip", NULL},
		{"We've decided to ship the beta in Q3.", HARK_CUE_DECISION, "", "ship the beta", "2024-09-30"},
		{"Agreed, the remote will only control the TV.", HARK_CUE_DECISION, "", "only control the TV", NULL},
		{"We decided not to include speech recognition.", HARK_CUE_DECISION, "", "not to include speech recognition", NULL},
		{"In the end we settled on a curved design.", HARK_CUE_DECISION, "", "a curved design", NULL},
	};
	check(w, sizeof w / sizeof w[0]);
}

static void test_open_questions(void **state)
{
	(void)state;
	static const struct want w[] = {
		{"We still need to figure out the battery supplier.", HARK_CUE_QUESTION, "", "battery supplier", NULL},
		{"The launch date is still TBD.", HARK_CUE_QUESTION, "", "launch date", NULL},
		{"We haven't decided on the colour scheme yet.", HARK_CUE_QUESTION, "", "colour scheme", NULL},
		{"It's an open question whether customers will pay for voice control.", HARK_CUE_QUESTION, "", "customers will pay", NULL},
		{"We need to decide whether the case is recyclable.", HARK_CUE_QUESTION, "", "case is recyclable", NULL},
		{"The pricing model is to be determined.", HARK_CUE_QUESTION, "", "pricing model", NULL},
	};
	check(w, sizeof w / sizeof w[0]);
}

static void test_negatives(void **state)
{
	(void)state;
	static const struct want w[] = {
		{"I won't send the slides.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I will not be able to finish the report.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"We didn't decide on the colour.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"We never agreed on that price.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I'll think about it.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I'll be honest, it looks bad.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Let me show you the design.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I'm going to talk about the user interface.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I'll do it.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Can you hear me?", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Can you see the screen?", HARK_CUE_NONE, NULL, NULL, NULL},
		{"So what do you think?", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Should I send the slides?", HARK_CUE_NONE, NULL, NULL, NULL},
		{"If I'll have time, I'll look.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I'll go over what we decided last meeting.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Yeah.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"We should maybe look at the colours.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"As we decided last Friday.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Mm-hmm.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Okay, agreed.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I agree with Maria.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"The marketing will be hard this year.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"john will probably disagree.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"Did we agree to the price?", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I will {disfmarker} oh yeah, the data collection.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"I'll take that as a yes.", HARK_CUE_NONE, NULL, NULL, NULL},
		{"", HARK_CUE_NONE, NULL, NULL, NULL},
	};
	check(w, sizeof w / sizeof w[0]);
}

static void test_params_and_errors(void **state)
{
	(void)state;
	struct hark_cues_params p = hark_cues_default_params();
	assert_true(p.min_confidence > 0.0 && p.min_confidence < 1.0);
	assert_int_equal(p.interrogative_questions, 0);
	struct hark_cue_result r;
	const char *q = "So should we use a solar cell or a battery?";
	assert_int_equal(hark_cues_classify(q, strlen(q), "A", NULL, 0, &p, &r), 0);
	assert_int_equal(r.type, HARK_CUE_NONE);
	p.interrogative_questions = 1;
	p.min_confidence = 0.3;
	assert_int_equal(hark_cues_classify(q, strlen(q), "A", NULL, 0, &p, &r), 0);
	assert_int_equal(r.type, HARK_CUE_QUESTION);
	/* team actions are below the default threshold unless dated */
	p = hark_cues_default_params();
	const char *t1 = "We need to finish the prototype soon.";
	assert_int_equal(hark_cues_classify(t1, strlen(t1), "A", NULL, 0, &p, &r), 0);
	assert_int_equal(r.type, HARK_CUE_NONE);
	p.min_confidence = 0.3;
	assert_int_equal(hark_cues_classify(t1, strlen(t1), "A", NULL, 0, &p, &r), 0);
	assert_int_equal(r.type, HARK_CUE_ACTION);
	assert_string_equal(r.owner, "");
	/* no meeting date: due phrase but no ISO */
	p = hark_cues_default_params();
	const char *t2 = "I'll send the invoice by Friday.";
	assert_int_equal(hark_cues_classify(t2, strlen(t2), NULL, NULL, 0, &p, &r), 0);
	assert_int_equal(r.type, HARK_CUE_ACTION);
	assert_string_equal(r.owner, "");
	assert_string_equal(r.due, "by Friday");
	assert_string_equal(r.due_iso, "");
	/* a sentence over the byte cap is NONE */
	p.max_sentence_bytes = 10;
	assert_int_equal(hark_cues_classify(t2, strlen(t2), "A", NULL, 0, &p, &r), 0);
	assert_int_equal(r.type, HARK_CUE_NONE);
	assert_int_equal(hark_cues_classify(t2, strlen(t2), "A", NULL, 0, NULL, NULL),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_cues_classify(NULL, 4, "A", NULL, 0, NULL, &r), HARK_ERR_INVALID_ARG);
	assert_int_equal(r.type, HARK_CUE_NONE);
}

static void test_split(void **state)
{
	(void)state;
	const char *t = "Okay. Mr. Smith said 3.5 is fine! Will you send it? yes  and then";
	struct hark_cue_span sp[8];
	size_t n = 0;
	assert_int_equal(hark_cues_split_sentences(t, strlen(t), sp, 8, &n), 0);
	assert_int_equal(n, 4);
	const char *want[4] = {"Okay.", "Mr. Smith said 3.5 is fine!", "Will you send it?",
			       "yes  and then"};
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(sp[i].end - sp[i].start, strlen(want[i]));
		assert_memory_equal(t + sp[i].start, want[i], strlen(want[i]));
	}
	assert_int_equal(hark_cues_split_sentences(t, strlen(t), sp, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(hark_cues_split_sentences("", 0, sp, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(hark_cues_split_sentences(NULL, 3, sp, 8, &n), HARK_ERR_INVALID_ARG);
}

/* random word salads from the cue vocabulary plus random bytes: no crash
 * (ASan build), invariants hold */
static void test_random_input(void **state)
{
	(void)state;
	static const char *const vocab[] = {
		"I'll", "I", "will", "not", "we", "agreed", "decided", "let's", "go", "with", "John",
		"Maria", ",", "can", "you", "send", "the", "slides", "by", "Friday", "next", "end",
		"of", "month", "TBD", "?", ".", "{disfmarker}", "to", "assign", "action", "item",
		"for", ":", "3/14", "the 15th", "in", "two", "weeks", "Q3", "\xE2\x80\x99", "um",
		"if", "what", "open", "question", "still", "need", "figure", "out", "take"};
	uint64_t x = 88172645463325252ULL;
	char buf[600];
	struct hark_cues_params p = hark_cues_default_params();
	p.meeting_date = (struct hark_date){2025, 12, 31};
	for (int it = 0; it < 4000; it++) {
		size_t L = 0;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int nw = (int)(x % 40);
		for (int k = 0; k < nw && L + 40 < sizeof buf; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (it % 4 == 3) {
				buf[L++] = (char)(x >> 24);
				continue;
			}
			L += (size_t)snprintf(buf + L, sizeof buf - L, "%s ",
					      vocab[(x >> 20) % (sizeof vocab / sizeof vocab[0])]);
		}
		struct hark_cue_result r;
		assert_int_equal(hark_cues_classify(buf, L, "Alice", people, NPEOPLE, &p, &r), 0);
		if (r.type != HARK_CUE_NONE) {
			assert_true(r.confidence >= p.min_confidence && r.confidence <= 0.95);
			assert_true(r.task[0] != 0);
			assert_true(r.cue_end <= L && r.cue_start < r.cue_end);
			assert_true(strlen(r.task) < sizeof r.task);
			if (r.owner[0]) {
				int ok = !strcmp(r.owner, "Alice");
				for (size_t k = 0; k < NPEOPLE; k++)
					ok |= !strcmp(r.owner, people[k]);
				assert_true(ok);
			}
		}
		struct hark_cue_span sp[16];
		size_t ns;
		assert_int_equal(hark_cues_split_sentences(buf, L, sp, 16, &ns), 0);
		for (size_t k = 0; k < ns; k++)
			assert_true(sp[k].start < sp[k].end && sp[k].end <= L);
		struct hark_date_match dm[8];
		size_t nd;
		assert_int_equal(hark_dates_find(buf, L, &p.meeting_date, dm, 8, &nd), 0);
		for (size_t k = 0; k < nd; k++) {
			assert_true(dm[k].start < dm[k].end && dm[k].end <= L);
			if (dm[k].resolved)
				assert_true(hark_date_valid(dm[k].date.year, dm[k].date.month,
							    dm[k].date.day));
		}
	}
}

/* ------------------------------------------------------- real meetings --- */

static const char *shared_dir(void)
{
	const char *s = getenv("HARK_SHARED");
	return s && *s ? s : "../shared";
}

/* a filler turn: only backchannel words / markers */
static int filler_turn(const char *t)
{
	static const char *const fw[] = {"yeah", "yes", "okay", "ok", "mm-hmm", "mm", "hmm", "uh",
					 "um", "right", "no", "oh", "so", "alright", "sure", "uh-huh",
					 "yep", "mhm", "huh", "ah", "well", "and", "but", "good"};
	char w[32];
	size_t L = 0;
	int words = 0;
	for (const char *p = t;; p++) {
		char ch = *p;
		int wc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '\'';
		if (ch == '{') {
			const char *e = strchr(p, '}');
			if (!e)
				return 0;
			p = e;
			continue;
		}
		if (wc && L < sizeof w - 1) {
			w[L++] = (char)((ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch);
			continue;
		}
		if (L) {
			w[L] = 0;
			int ok = 0;
			for (size_t k = 0; k < sizeof fw / sizeof fw[0]; k++)
				ok |= !strcmp(w, fw[k]);
			if (!ok)
				return 0;
			words++;
			L = 0;
		}
		if (!ch)
			break;
		if (ch >= '0' && ch <= '9')
			return 0;
	}
	return words > 0;
}

static void run_meeting(const char *file, int *items_out, int *fillers_out)
{
	char path[1024], err[256];
	snprintf(path, sizeof path, "%s/meetings/qmsum/%s", shared_dir(), file);
	struct stat st;
	if (stat(path, &st) != 0)
		skip();
	struct hark_meeting_text m;
	assert_int_equal(hark_meeting_text_read(path, NULL, &m, err, sizeof err), 0);
	const char *names[64];
	size_t nn = 0;
	for (size_t i = 0; i < m.n_turns; i++) {
		const char *s = m.turns[i].speaker;
		if (!s)
			continue;
		size_t k = 0;
		while (k < nn && strcmp(names[k], s))
			k++;
		if (k == nn && nn < 64)
			names[nn++] = s;
	}
	assert_true(nn >= 2);
	struct hark_cues_params p = hark_cues_default_params();
	int items = 0, fillers = 0, types[4] = {0};
	for (size_t i = 0; i < m.n_turns; i++) {
		const char *t = m.turns[i].text;
		int is_filler = filler_turn(t);
		fillers += is_filler;
		struct hark_cue_span sp[128];
		size_t ns = 0;
		assert_int_equal(hark_cues_split_sentences(t, strlen(t), sp, 128, &ns), 0);
		for (size_t j = 0; j < ns; j++) {
			struct hark_cue_result r;
			size_t L = sp[j].end - sp[j].start;
			assert_int_equal(hark_cues_classify(t + sp[j].start, L, m.turns[i].speaker, names,
							    nn, &p, &r),
					 0);
			assert_true(r.type >= HARK_CUE_NONE && r.type <= HARK_CUE_QUESTION);
			if (r.type == HARK_CUE_NONE)
				continue;
			items++;
			types[r.type]++;
			if (is_filler)
				fail_msg("%s: item from filler turn '%s'", file, t);
			assert_true(r.confidence >= p.min_confidence && r.confidence <= 0.95);
			assert_true(r.task[0] != 0);
			/* the task is text of this sentence (or a truncated prefix of it) */
			char head[40];
			size_t hl = strlen(r.task);
			if (hl > sizeof head - 1)
				hl = sizeof head - 1;
			memcpy(head, r.task, hl);
			head[hl] = 0;
			int found = 0;
			for (size_t o = 0; o + hl <= L && !found; o++)
				found = !memcmp(t + sp[j].start + o, head, hl);
			if (!found)
				fail_msg("%s: task '%s' not in '%.*s'", file, r.task, (int)L, t + sp[j].start);
			assert_true(r.cue_start < r.cue_end && r.cue_end <= L);
			if (r.owner[0]) {
				int ok = m.turns[i].speaker && !strcmp(r.owner, m.turns[i].speaker);
				for (size_t k = 0; k < nn && !ok; k++)
					ok = !strcmp(r.owner, names[k]);
				if (!ok)
					fail_msg("%s: owner '%s' is no participant", file, r.owner);
			}
			if (!strcmp(r.rule, "first_person"))
				assert_string_equal(r.owner, m.turns[i].speaker ? m.turns[i].speaker : "");
		}
	}
	/* conservative: items are few compared with the turns */
	assert_true(items <= (int)(m.n_turns / 10) + 1);
	*items_out = items;
	*fillers_out = fillers;
	hark_meeting_text_clear(&m);
}

static void test_real_meetings(void **state)
{
	(void)state;
	int i1, f1, i2, f2;
	run_meeting("ES2004d.json", &i1, &f1);
	run_meeting("Bmr006.json", &i2, &f2);
	/* both meetings contain explicit commitments/decisions */
	assert_true(i1 >= 2);
	assert_true(i2 >= 2);
	/* the filler detector actually saw filler turns */
	assert_true(f1 > 10 && f2 > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_person),
		cmocka_unit_test(test_assignments),
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_open_questions),
		cmocka_unit_test(test_negatives),
		cmocka_unit_test(test_params_and_errors),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_random_input),
		cmocka_unit_test(test_real_meetings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
