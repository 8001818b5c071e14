/*
 * Offline meeting-item cues (see cues.h for the cue list and scoring): the
 * sentence is lowercased into a word array that keeps byte offsets into the
 * original text, explicit cue word sequences are searched in a fixed order
 * (open question, decision, assignment, first-person commitment, team
 * action, interrogative), negation / hedges / questions veto or lower a cue,
 * and the task text is cut from the original bytes after the cue.
 */
#include "analyze/cues.h"

#include <stdio.h>
#include <string.h>

#include "hark/hark.h"

#define CUE_MAX_BYTES 4096
#define CUE_MAX_WORDS 512
#define WLEN 32

struct word {
	size_t os, oe;    /* offsets in the original sentence */
	char t[WLEN];     /* lowercase, ASCII apostrophe */
	int comma_after;  /* a ',' or ':' directly follows */
	int cap;          /* first letter uppercase in the original */
	int after_disf;   /* a disfluency marker ("{disfmarker}", "--") precedes */
};

struct ctx {
	const char *s;
	size_t len;
	struct word w[CUE_MAX_WORDS];
	size_t n;
	int question;     /* ends with '?' */
};

struct hark_cues_params hark_cues_default_params(void)
{
	struct hark_cues_params p;
	memset(&p, 0, sizeof p);
	p.min_confidence = 0.5;
	p.interrogative_questions = 0;
	p.max_sentence_bytes = 2000;
	return p;
}

/* ------------------------------------------------------------ words ----- */

static int wordc(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '\'' || c == '-';
}

/* length of a UTF-8 right single quote at s (3) or 0 */
static int rsquo(const char *s, size_t rem)
{
	return rem >= 3 && (unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x80 &&
	       ((unsigned char)s[2] == 0x99 || (unsigned char)s[2] == 0x98) ? 3 : 0;
}

static void split_words(struct ctx *c)
{
	size_t i = 0;
	int disf = 0;
	c->n = 0;
	while (i < c->len && c->n < CUE_MAX_WORDS) {
		while (i < c->len && !wordc((unsigned char)c->s[i]) && !rsquo(c->s + i, c->len - i)) {
			if (c->s[i] == '{') {
				/* transcript marker such as {disfmarker} / {vocalsound}: skipped;
				 * a disfluency marker breaks the clause */
				const char *e = memchr(c->s + i, '}', c->len - i);
				if (!e)
					break;
				if ((size_t)(e - (c->s + i)) >= 5 && !strncmp(c->s + i + 1, "disf", 4))
					disf = 1;
				i = (size_t)(e - c->s) + 1;
				continue;
			}
			if (c->s[i] == '-' && i + 1 < c->len && c->s[i + 1] == '-')
				disf = 1;
			i++;
		}
		if (i >= c->len || c->s[i] == '{')
			break;
		struct word *w = &c->w[c->n];
		size_t st = i, L = 0;
		while (i < c->len) {
			int q = rsquo(c->s + i, c->len - i);
			char ch;
			if (q) {
				ch = '\'';
				i += (size_t)q;
			} else if (wordc((unsigned char)c->s[i])) {
				ch = c->s[i];
				i++;
			} else {
				break;
			}
			if (ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			if (L < WLEN - 1)
				w->t[L++] = ch;
		}
		w->t[L] = 0;
		/* trim leading/trailing apostrophes and dashes */
		while (L > 0 && (w->t[L - 1] == '\'' || w->t[L - 1] == '-'))
			w->t[--L] = 0;
		size_t off = 0;
		while (off < L && (w->t[off] == '\'' || w->t[off] == '-'))
			off++;
		if (off)
			memmove(w->t, w->t + off, L - off + 1);
		if (!w->t[0])
			continue;
		w->os = st;
		w->oe = i;
		w->after_disf = disf;
		disf = 0;
		w->cap = c->s[st] >= 'A' && c->s[st] <= 'Z';
		size_t k = i;
		while (k < c->len && c->s[k] == ' ')
			k++;
		w->comma_after = k < c->len && (c->s[k] == ',' || c->s[k] == ':');
		c->n++;
	}
	size_t e = c->len;
	while (e > 0 && (c->s[e - 1] == ' ' || c->s[e - 1] == '\n' || c->s[e - 1] == '\t' ||
			 c->s[e - 1] == '"' || c->s[e - 1] == ')'))
		e--;
	c->question = e > 0 && c->s[e - 1] == '?';
}

/* number of words of pat (space separated) matching at i, else 0 */
static size_t seq_at(const struct ctx *c, size_t i, const char *pat)
{
	size_t k = 0;
	const char *p = pat;
	while (*p) {
		const char *e = strchr(p, ' ');
		size_t L = e ? (size_t)(e - p) : strlen(p);
		if (i + k >= c->n)
			return 0;
		const char *t = c->w[i + k].t;
		if (strlen(t) != L || memcmp(t, p, L) != 0)
			return 0;
		k++;
		p += L;
		if (*p == ' ')
			p++;
	}
	return k;
}

/* first i >= from where one of pats matches; its index into pats and word
 * count via *which / *nw; -1 when none */
static long find_any(const struct ctx *c, size_t from, const char *const *pats, size_t npats,
		     size_t *which, size_t *nw)
{
	for (size_t i = from; i < c->n; i++)
		for (size_t k = 0; k < npats; k++) {
			size_t m = seq_at(c, i, pats[k]);
			if (m) {
				*which = k;
				*nw = m;
				return (long)i;
			}
		}
	return -1;
}

static int in_list(const char *t, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t, list[i]))
			return 1;
	return 0;
}

#define NEL(a) (sizeof(a) / sizeof((a)[0]))

static const char *const negations[] = {
	"not", "never", "won't", "wont", "can't", "cant", "cannot", "didn't", "didnt", "don't",
	"dont", "doesn't", "haven't", "hasn't", "hadn't", "isn't", "aren't", "wasn't",
	"weren't", "shouldn't", "wouldn't", "couldn't", "mustn't", "nobody", "neither", "nor"};

static const char *const hedges[] = {"maybe", "perhaps", "probably", "might", "possibly"};

static const char *const fillers[] = {"so", "okay", "ok", "and", "then", "um", "uh", "um", "well",
				      "alright", "right", "yeah", "now", "also", "but", "oh",
				      "mm", "hmm", "great", "good", "fine", "sure"};

/* negation within [a-2, b] (b = index one past the cue, checked too) */
static int negated(const struct ctx *c, size_t a, size_t b, int allow_not_to)
{
	size_t lo = a >= 2 ? a - 2 : 0;
	for (size_t i = lo; i <= b && i < c->n; i++) {
		if (!in_list(c->w[i].t, negations, NEL(negations)))
			continue;
		if (allow_not_to && i == b && seq_at(c, i, "not to"))
			continue;
		return 1;
	}
	return 0;
}

/* "if" / "unless" / "whether" earlier in the same clause (back to the
 * previous comma, at most 8 words) */
static int conditional_before(const struct ctx *c, size_t a)
{
	size_t lo = a;
	while (lo > 0 && a - lo < 8 && !c->w[lo - 1].comma_after)
		lo--;
	for (size_t i = lo; i < a; i++)
		if (!strcmp(c->w[i].t, "if") || !strcmp(c->w[i].t, "unless") ||
		    !strcmp(c->w[i].t, "whether"))
			return 1;
	return 0;
}

static int hedged(const struct ctx *c, size_t a, size_t b)
{
	size_t lo = a >= 2 ? a - 2 : 0;
	for (size_t i = lo; i <= b + 1 && i < c->n; i++)
		if (in_list(c->w[i].t, hedges, NEL(hedges)))
			return 1;
	return 0;
}

/* index of the first word after leading fillers */
static size_t skip_fillers(const struct ctx *c, size_t i)
{
	while (i < c->n && in_list(c->w[i].t, fillers, NEL(fillers)))
		i++;
	return i;
}

/* ---------------------------------------------------------- names ------- */

static void lower_copy(char *dst, size_t cap, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++) {
		char ch = src[i];
		dst[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	dst[i] = 0;
}

/* participant index named at word i (capitalised), words used in *nw; -1 */
static long name_at(const struct ctx *c, size_t i, const char *const *names, size_t nn,
		    size_t *nw)
{
	if (i >= c->n || !c->w[i].cap)
		return -1;
	for (size_t k = 0; k < nn; k++) {
		if (!names[k] || !names[k][0])
			continue;
		char full[128];
		lower_copy(full, sizeof full, names[k]);
		/* full name as a word sequence (spaces only) */
		size_t m = seq_at(c, i, full);
		if (m) {
			*nw = m;
			return (long)k;
		}
		char first[WLEN];
		size_t L = 0;
		while (full[L] && full[L] != ' ' && L < WLEN - 1) {
			first[L] = full[L];
			L++;
		}
		first[L] = 0;
		if (L >= 3 && !strcmp(c->w[i].t, first)) {
			*nw = 1;
			return (long)k;
		}
	}
	return -1;
}

/* ---------------------------------------------------------- task text --- */

static const char *const lead_strip[] = {"to", "that", "on", "upon", "just", "also", "please",
					 "um", "uh", "eh", "er", "erm", "uh-huh",
					 "then", "go ahead and", "definitely", "quickly"};
static const char *const cut_at[] = {"but", "because", "though", "although", "unless",
				     "otherwise", "whereas"};
static const char *const trail_strip[] = {"please", "then", "okay", "ok", "too", "right",
					  "yeah", "as well", "alright", "so", "yet"};
static const char *const clause_openers[] = {"so", "then", "we", "we'll", "i", "i'll", "you",
					    "they", "it", "it's", "that's", "there", "there's"};
static const char *const vague[] = {
	"it", "that", "this", "the", "a", "an", "do", "so", "them", "those", "these", "thing",
	"things", "one", "something", "stuff", "some", "of", "to", "and", "or", "again", "now",
	"there", "here", "then", "up", "out", "yeah", "okay", "ok", "right", "just", "well",
	"be", "is", "um", "uh", "too", "you", "i", "we", "me", "us", "go", "get", "what",
	"about", "with", "all", "on", "in", "for", "more", "bit", "little", "like"};

/* Builds the task from words [from, to) of the original text into out.
 * due_os: original start of the due phrase or (size_t)-1. Returns the
 * number of content words. */
static int make_task(const struct ctx *c, size_t from, size_t to, size_t due_os, size_t due_oe,
		     char *out, size_t cap)
{
	out[0] = 0;
	/* leading strips (repeat) */
	for (int again = 1; again && from < to;) {
		again = 0;
		for (size_t k = 0; k < NEL(lead_strip); k++) {
			size_t m = seq_at(c, from, lead_strip[k]);
			if (m && from + m <= to) {
				from += m;
				again = 1;
				break;
			}
		}
	}
	/* a disfluency right after the cue: the speaker abandoned it */
	if (from < to && c->w[from].after_disf)
		return 0;
	/* cut at clause breaks */
	for (size_t i = from + 1; i < to; i++) {
		if (c->w[i].after_disf) {
			to = i;
			break;
		}
		if (in_list(c->w[i].t, cut_at, NEL(cut_at)) || c->w[i - 1].comma_after) {
			if (c->w[i - 1].comma_after) {
				/* a comma cuts only before a filler or a new clause */
				if (!in_list(c->w[i].t, fillers, NEL(fillers)) &&
				    !in_list(c->w[i].t, cut_at, NEL(cut_at)) && strcmp(c->w[i].t, "if") &&
				    strcmp(c->w[i].t, "you") && strcmp(c->w[i].t, "we") &&
				    strcmp(c->w[i].t, "i"))
					continue;
			}
			to = i;
			break;
		}
		/* "... and so ...", "... and we'll ...": a new clause */
		if (!strcmp(c->w[i].t, "and") && i + 1 < to &&
		    in_list(c->w[i + 1].t, clause_openers, NEL(clause_openers))) {
			to = i;
			break;
		}
		if (c->s[c->w[i - 1].oe] == ';') {
			to = i;
			break;
		}
	}
	/* drop a due phrase at the end */
	if (due_os != (size_t)-1) {
		size_t lastw = to;
		while (lastw > from && c->w[lastw - 1].os >= due_os)
			lastw--;
		if (lastw < to && c->w[to - 1].oe <= due_oe + 1)
			to = lastw;
	}
	for (int again = 1; again && to > from;) {
		again = 0;
		for (size_t k = 0; k < NEL(trail_strip); k++) {
			const char *pat = trail_strip[k];
			size_t pw = 1;
			for (const char *q = pat; *q; q++)
				pw += *q == ' ';
			if (to - from > pw && seq_at(c, to - pw, pat) == pw) {
				to -= pw;
				again = 1;
				break;
			}
		}
	}
	if (to <= from)
		return 0;
	size_t os = c->w[from].os, oe = c->w[to - 1].oe;
	size_t L = oe - os;
	if (L >= cap) {
		L = cap - 1;
		while (L > 0 && ((unsigned char)c->s[os + L] & 0xC0) == 0x80)
			L--; /* don't split a UTF-8 sequence */
	}
	memcpy(out, c->s + os, L);
	out[L] = 0;
	int content = 0, total = 0;
	for (size_t i = from; i < to; i++) {
		total++;
		if (!in_list(c->w[i].t, vague, NEL(vague)) && strlen(c->w[i].t) > 1)
			content++;
	}
	if (total < 2)
		return 0;
	return content;
}

/* ---------------------------------------------------------- classifier -- */

static const char *const q_cues[] = {
	"we still need to figure out", "still need to figure out", "still have to figure out",
	"need to figure out", "have to figure out", "open question", "open questions",
	"open issue", "tbd", "to be decided", "to be determined", "to be confirmed",
	"haven't decided", "have not decided", "not decided yet", "haven't figured out",
	"still unclear", "still not clear", "not clear yet", "we need to decide",
	"need to decide", "have to decide", "remains to be seen", "not sure yet", "undecided",
	"still open", "don't know yet", "haven't agreed", "have not agreed", "not yet decided",
	"yet to be decided", "still to be decided", "need to find out", "still need to decide"};

static const char *const d_cues[] = {
	"we all agreed", "we agreed", "we've agreed", "we have agreed", "we've all agreed",
	"we decided", "we've decided", "we have decided", "we've all decided", "let's go with",
	"let us go with", "we'll go with", "we will go with", "we're going with",
	"we are going with", "we're going to go with", "we are going to go with",
	"the decision is", "our decision is", "the final decision is", "final decision",
	"we settled on", "we've settled on", "it's decided", "it is decided",
	"let's stick with", "we'll stick with", "we're sticking with", "it was decided",
	"decision was made", "we're agreed", "we are agreed", "agreed"};

static const char *const fp_cues[] = {
	"i'll take care of", "i will take care of", "i can take care of", "i'll take",
	"i will take", "i can take", "i'll", "i will", "i'm going to", "i am going to",
	"i'm gonna", "i'm on it", "leave it with me", "let me", "i can", "i'll be",
	"i'll make sure", "i will make sure"};

/* verbs after a first-person cue that are not commitments */
static const char *const fp_reject[] = {
	"think", "say", "admit", "guess", "bet", "be", "tell", "talk", "present", "start", "show",
	"explain", "describe", "begin", "move", "pass", "hand", "just", "see", "imagine", "hear",
	"understand", "ask", "know", "go", "give", "try", "put", "summarize", "recap", "finish",
	"repeat", "read", "stop", "leave", "let", "have", "get", "do", "come", "mean",
	"remember", "believe", "agree", "wonder", "suppose", "assume", "expect", "hope",
	"like", "love", "want", "need", "point", "skip", "turn", "take", "keep", "continue",
	"find", "draw", "open", "close", "sit", "write", "play", "use", "also", "still",
	"probably", "maybe", "only", "actually", "really", "definitely", "certainly", "check"};

/* verbs after "I can"/"let me" that are fine even though listed above */
static const char *const fp_accept_strong[] = {"send", "email", "forward", "share", "prepare",
	"write", "draft", "update", "check", "look", "follow", "circulate", "set", "book",
	"schedule", "organize", "organise", "contact", "call", "review", "fix", "finish",
	"investigate", "research", "find", "talk", "ask", "get", "put", "make", "build",
	"create", "handle", "take", "do", "test", "implement", "run", "compile", "order",
	"buy", "write", "sort", "figure", "work", "reach", "coordinate", "confirm", "upload",
	"post", "add", "change", "bring", "mail", "print", "clean", "design", "sketch"};

static const char *const assign_after_name[] = {
	"will", "is going to", "is gonna", "can take", "is taking", "takes", "to",
	"will take care of", "is responsible for", "should", "needs to", "has to"};

static const char *const you_cues[] = {
	"can you", "could you", "would you", "will you", "you'll need to", "you will need to",
	"you need to", "you should", "you'll", "you will", "you're going to", "please",
	"you have to", "would you mind"};

static const char *const you_reject[] = {
	"hear", "see", "repeat", "say", "explain", "tell", "imagine", "believe", "give", "speak",
	"read", "remind", "clarify", "think", "guess", "be", "go", "talk", "move", "pass",
	"just", "help", "zoom", "like", "feel", "understand", "know", "mean", "describe", "show",
	"open", "close", "turn", "stop", "wait", "come", "sit", "use", "put", "do", "get",
	"also", "still", "maybe", "probably", "actually", "really", "find", "have", "want",
	"need", "press", "click", "push", "notice", "remember", "try", "prefer", "rather", "pay",
	"agree", "recommend", "suggest", "consider", "buy", "choose", "pick", "rate", "expect"};

static const char *const team_cues[] = {
	"we need to", "we have to", "we should", "we must", "we've got to", "we'll need to",
	"we will need to", "someone needs to", "somebody needs to", "someone should",
	"somebody should", "someone has to", "we'll have to", "we will have to"};

static const char *const iq_cues[] = {"should we", "do we", "how do we", "how should we",
	"who will", "who is going to", "when will", "when do we", "are we going to",
	"what do we do about", "what about", "shall we", "who's going to"};

static const char *const hesitations[] = {"um", "uh", "eh", "er", "erm", "ah", "hmm", "mm"};

static const char *const rel_words[] = {"what", "whatever", "as", "whether", "if", "how", "when",
					"why", "where", "which", "before", "once", "after"};

static int take_like(const char *cue)
{
	return strstr(cue, "take") != NULL;
}

static void result_none(struct hark_cue_result *r)
{
	memset(r, 0, sizeof *r);
	r->type = HARK_CUE_NONE;
}

/* fills due fields from the sentence; returns 1 when a date was found */
static int find_due(const struct ctx *c, const struct hark_cues_params *p,
		    struct hark_cue_result *r, size_t *os, size_t *oe)
{
	struct hark_date_match m[8];
	size_t n = 0;
	*os = (size_t)-1;
	*oe = 0;
	if (hark_dates_find(c->s, c->len, p->meeting_date.year ? &p->meeting_date : NULL, m, 8,
			    &n) != 0 || n == 0)
		return 0;
	size_t pick = 0;
	for (size_t i = 0; i < n; i++)
		if (m[i].deadline) {
			pick = i;
			break;
		}
	size_t L = m[pick].end - m[pick].start;
	if (L >= sizeof r->due)
		L = sizeof r->due - 1;
	memcpy(r->due, c->s + m[pick].start, L);
	r->due[L] = 0;
	if (m[pick].resolved)
		memcpy(r->due_iso, m[pick].iso, 11);
	*os = m[pick].start;
	*oe = m[pick].end;
	return 1;
}

static double clampc(double v)
{
	return v > 0.95 ? 0.95 : v < 0 ? 0 : v;
}

int hark_cues_classify(const char *sentence, size_t len, const char *speaker,
		       const char *const *participants, size_t n_participants,
		       const struct hark_cues_params *pp, struct hark_cue_result *out)
{
	if (!out)
		return HARK_ERR_INVALID_ARG;
	result_none(out);
	if (!sentence && len > 0)
		return HARK_ERR_INVALID_ARG;
	struct hark_cues_params p = pp ? *pp : hark_cues_default_params();
	if (p.meeting_date.year &&
	    !hark_date_valid(p.meeting_date.year, p.meeting_date.month, p.meeting_date.day))
		p.meeting_date.year = 0;
	if (!participants)
		n_participants = 0;
	size_t maxb = p.max_sentence_bytes ? p.max_sentence_bytes : 2000;
	if (maxb > CUE_MAX_BYTES)
		maxb = CUE_MAX_BYTES;
	if (len == 0 || len > maxb)
		return 0;

	static _Thread_local struct ctx cbuf;
	struct ctx *c = &cbuf;
	c->s = sentence;
	c->len = len;
	split_words(c);
	if (c->n < 2)
		return 0;

	struct hark_cue_result r;
	result_none(&r);
	size_t due_os, due_oe;
	int has_due = find_due(c, &p, &r, &due_os, &due_oe);
	size_t which, nw;
	long at;
	double conf = 0;
	int type = HARK_CUE_NONE;
	size_t task_from = 0, cue_a = 0, cue_b = 0;
	const char *rule = "";
	char owner[64] = "";

	/* 1. explicit open-question markers (may contain a negation) */
	at = find_any(c, 0, q_cues, NEL(q_cues), &which, &nw);
	if (at >= 0) {
		type = HARK_CUE_QUESTION;
		conf = 0.65;
		rule = "open_question";
		cue_a = (size_t)at;
		cue_b = (size_t)at + nw;
		task_from = cue_b;
		goto build;
	}

	/* 2. decisions */
	for (size_t from = 0; from < c->n;) {
		at = find_any(c, from, d_cues, NEL(d_cues), &which, &nw);
		if (at < 0)
			break;
		size_t a = (size_t)at, b = a + nw;
		from = a + 1;
		if (!strcmp(d_cues[which], "agreed")) {
			/* bare "agreed" only as an opener: "Agreed, ..." / "agreed:" */
			if (skip_fillers(c, 0) != a || !c->w[a].comma_after)
				continue;
		}
		if (c->question || negated(c, a, b, 1) || conditional_before(c, a))
			continue;
		/* "what we decided", "whether we agreed": a reference, not a decision */
		if (a > 0 && in_list(c->w[a - 1].t, rel_words, NEL(rel_words)))
			continue;
		type = HARK_CUE_DECISION;
		conf = 0.75;
		rule = "decision";
		cue_a = a;
		cue_b = b;
		task_from = b;
		goto build;
	}

	/* 3a. vocative assignment: "<Name>, can you ..." */
	{
		size_t s0 = skip_fillers(c, 0);
		size_t nmw;
		long who = name_at(c, s0, participants, n_participants, &nmw);
		if (who >= 0 && c->w[s0 + nmw - 1].comma_after) {
			size_t y = skip_fillers(c, s0 + nmw);
			for (size_t k = 0; k < NEL(you_cues); k++) {
				size_t m = seq_at(c, y, you_cues[k]);
				if (!m || y + m >= c->n)
					continue;
				if (negated(c, y, y + m, 0) ||
				    in_list(c->w[y + m].t, you_reject, NEL(you_reject)))
					break;
				type = HARK_CUE_ACTION;
				conf = 0.70;
				rule = "assign_vocative";
				snprintf(owner, sizeof owner, "%s", participants[who]);
				cue_a = s0;
				cue_b = y + m;
				task_from = cue_b;
				goto build;
			}
		}
	}
	/* 3b. "<Name> will / is going to / to <verb> ..." */
	for (size_t i = 0; i < c->n && !c->question; i++) {
		size_t nmw;
		long who = name_at(c, i, participants, n_participants, &nmw);
		if (who < 0)
			continue;
		size_t j = i + nmw;
		for (size_t k = 0; k < NEL(assign_after_name); k++) {
			size_t m = seq_at(c, j, assign_after_name[k]);
			if (!m || j + m >= c->n)
				continue;
			/* "<Name> to <verb>" only opens a sentence */
			if (!strcmp(assign_after_name[k], "to") && skip_fillers(c, 0) != i)
				continue;
			if (negated(c, j, j + m, 0) || conditional_before(c, i) ||
			    in_list(c->w[j + m].t, you_reject, NEL(you_reject)))
				break;
			type = HARK_CUE_ACTION;
			conf = 0.70;
			rule = "assign_named";
			snprintf(owner, sizeof owner, "%s", participants[who]);
			cue_a = i;
			cue_b = j + m;
			task_from = cue_b;
			goto build;
		}
	}
	/* 3c. "assign(ed) <task> to <Name>" / "action item for <Name>" */
	for (size_t i = 0; i < c->n; i++) {
		const char *t = c->w[i].t;
		if (!strcmp(t, "assign") || !strcmp(t, "assigned") || !strcmp(t, "assigning")) {
			for (size_t j = i + 1; j + 1 < c->n; j++) {
				size_t nmw;
				long who;
				if (strcmp(c->w[j].t, "to") ||
				    (who = name_at(c, j + 1, participants, n_participants, &nmw)) < 0)
					continue;
				if (negated(c, i, i + 1, 0) || c->question)
					break;
				type = HARK_CUE_ACTION;
				conf = 0.75;
				rule = "assign_to";
				snprintf(owner, sizeof owner, "%s", participants[who]);
				cue_a = i;
				cue_b = i + 1;
				if (make_task(c, i + 1, j, due_os, due_oe, r.task, sizeof r.task) < 1)
					break;
				goto build_have_task;
			}
		}
		if (seq_at(c, i, "action item for")) {
			size_t nmw;
			long who = name_at(c, i + 3, participants, n_participants, &nmw);
			if (who < 0)
				continue;
			type = HARK_CUE_ACTION;
			conf = 0.80;
			rule = "action_item_for";
			snprintf(owner, sizeof owner, "%s", participants[who]);
			cue_a = i;
			cue_b = i + 3 + nmw;
			task_from = cue_b;
			goto build;
		}
	}

	/* 4. first-person commitments */
	if (!c->question) {
		for (size_t from = 0; from < c->n;) {
			at = find_any(c, from, fp_cues, NEL(fp_cues), &which, &nw);
			if (at < 0)
				break;
			size_t a = (size_t)at, b = a + nw;
			from = a + 1;
			const char *cue = fp_cues[which];
			if (b >= c->n && strcmp(cue, "i'm on it") && strcmp(cue, "leave it with me"))
				continue;
			if (!strcmp(cue, "i'll be")) {
				/* "I'll be sending ..." */
				size_t L = strlen(c->w[b].t);
				if (L < 4 || strcmp(c->w[b].t + L - 3, "ing"))
					continue;
			}
			if (negated(c, a, b, 0) || conditional_before(c, a))
				continue;
			size_t vb = b;
			while (vb < c->n && in_list(c->w[vb].t, hesitations, NEL(hesitations)))
				vb++;
			const char *verb = vb < c->n ? c->w[vb].t : "";
			/* stutter "I'll I'll ...": the later cue is the real one */
			if (!strcmp(verb, "i'll") || !strcmp(verb, "i") || !strcmp(verb, "i'm"))
				continue;
			if (take_like(cue) && b + 1 < c->n && seq_at(c, b + 1, "as"))
				continue; /* "I'll take that as a yes" */
			int weak = !strcmp(cue, "i can") || !strcmp(cue, "let me");
			int take_cue = take_like(cue);
			if (!take_cue && strcmp(cue, "i'll be") && strcmp(cue, "i'm on it") &&
			    strcmp(cue, "leave it with me")) {
				if (weak) {
					if (!in_list(verb, fp_accept_strong, NEL(fp_accept_strong)))
						continue;
					/* "let me check" etc. is immediate, keep but weaker */
				} else if (in_list(verb, fp_reject, NEL(fp_reject)) &&
					   !in_list(verb, fp_accept_strong, NEL(fp_accept_strong))) {
					continue;
				}
				/* presentation-style "I'll talk about", "I'm going to show" */
				if (!strcmp(verb, "talk") && seq_at(c, vb + 1, "about"))
					continue;
			}
			type = HARK_CUE_ACTION;
			conf = !strcmp(cue, "let me") ? 0.60 : weak ? 0.55 : 0.70;
			if (hedged(c, a, b))
				conf -= 0.15;
			rule = "first_person";
			if (speaker)
				snprintf(owner, sizeof owner, "%s", speaker);
			cue_a = a;
			cue_b = b;
			task_from = b;
			if (!strcmp(cue, "i'm on it") || !strcmp(cue, "leave it with me")) {
				/* the task is what precedes */
				if (make_task(c, 0, a, due_os, due_oe, r.task, sizeof r.task) < 1)
					continue;
				goto build_have_task;
			}
			goto build;
		}
	}

	/* 5. unnamed addressee ("can you ...") at the sentence start */
	{
		size_t s0 = skip_fillers(c, 0);
		for (size_t k = 0; k < NEL(you_cues); k++) {
			size_t m = seq_at(c, s0, you_cues[k]);
			if (!m || s0 + m >= c->n)
				continue;
			if (!strcmp(you_cues[k], "please") || !strcmp(you_cues[k], "you'll") ||
			    !strcmp(you_cues[k], "would you") || !strcmp(you_cues[k], "will you") ||
			    !strcmp(you_cues[k], "you will") || !strcmp(you_cues[k], "you should") ||
			    !strcmp(you_cues[k], "you need to") || !strcmp(you_cues[k], "you have to"))
				break; /* too generic without a name */
			if (negated(c, s0, s0 + m, 0) ||
			    in_list(c->w[s0 + m].t, you_reject, NEL(you_reject)))
				break;
			type = HARK_CUE_ACTION;
			conf = 0.50;
			rule = "assign_unnamed";
			cue_a = s0;
			cue_b = s0 + m;
			task_from = cue_b;
			goto build;
		}
	}

	/* 6. team actions */
	if (!c->question) {
		at = find_any(c, 0, team_cues, NEL(team_cues), &which, &nw);
		if (at >= 0 && !negated(c, (size_t)at, (size_t)at + nw, 0) &&
		    !conditional_before(c, (size_t)at) && (size_t)at + nw < c->n &&
		    (!in_list(c->w[at + (long)nw].t, fp_reject, NEL(fp_reject)) ||
		     in_list(c->w[at + (long)nw].t, fp_accept_strong, NEL(fp_accept_strong)))) {
			type = HARK_CUE_ACTION;
			conf = 0.40;
			if (hedged(c, (size_t)at, (size_t)at + nw))
				conf -= 0.15;
			rule = "team";
			cue_a = (size_t)at;
			cue_b = (size_t)at + nw;
			task_from = cue_b;
			goto build;
		}
	}

	/* 7. plain interrogatives about the group's course */
	if (c->question && p.interrogative_questions) {
		size_t s0 = skip_fillers(c, 0);
		for (size_t k = 0; k < NEL(iq_cues); k++) {
			size_t m = seq_at(c, s0, iq_cues[k]);
			if (!m)
				continue;
			type = HARK_CUE_QUESTION;
			conf = 0.35;
			rule = "interrogative";
			cue_a = s0;
			cue_b = s0 + m;
			task_from = s0;
			goto build;
		}
	}
	return 0;

build:
	if (type == HARK_CUE_QUESTION) {
		/* the question text: after the marker, or the whole sentence */
		if (make_task(c, task_from, c->n, (size_t)-1, 0, r.task, sizeof r.task) < 1 &&
		    make_task(c, skip_fillers(c, 0), c->n, (size_t)-1, 0, r.task, sizeof r.task) < 1)
			return 0;
	} else {
		/* self-directed and unnamed actions need a substantive task */
		int need = (!strcmp(rule, "first_person") || !strcmp(rule, "assign_unnamed") ||
			    !strcmp(rule, "team")) ? 2 : 1;
		if (make_task(c, task_from, c->n, has_due ? due_os : (size_t)-1, due_oe, r.task,
			      sizeof r.task) < need)
			return 0;
	}
build_have_task:
	if (has_due && type != HARK_CUE_QUESTION)
		conf += 0.10;
	if (owner[0])
		conf += 0.05;
	conf = clampc(conf);
	if (conf + 1e-9 < p.min_confidence)
		return 0;
	r.type = type;
	r.confidence = conf;
	snprintf(r.rule, sizeof r.rule, "%s", rule);
	snprintf(r.owner, sizeof r.owner, "%s", owner);
	r.cue_start = c->w[cue_a].os;
	r.cue_end = cue_b > cue_a ? c->w[cue_b - 1].oe : c->w[cue_a].oe;
	if (!has_due || type == HARK_CUE_QUESTION) {
		r.due[0] = 0;
		r.due_iso[0] = 0;
	}
	*out = r;
	return 0;
}

/* ---------------------------------------------------------- sentences --- */

static int abbrev_before(const char *t, size_t dot)
{
	static const char *const ab[] = {"mr", "mrs", "ms", "dr", "prof", "vs", "etc", "e.g",
					 "i.e", "st", "no", "approx", "jr", "sr"};
	size_t s = dot;
	while (s > 0 && ((t[s - 1] >= 'a' && t[s - 1] <= 'z') || (t[s - 1] >= 'A' && t[s - 1] <= 'Z') ||
			 t[s - 1] == '.'))
		s--;
	size_t L = dot - s;
	if (L == 1)
		return 1; /* single letter: initials */
	char w[8];
	if (L == 0 || L >= sizeof w)
		return 0;
	for (size_t i = 0; i < L; i++) {
		char ch = t[s + i];
		w[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	w[L] = 0;
	return in_list(w, ab, NEL(ab));
}

static void push_span(const char *t, size_t a, size_t b, struct hark_cue_span *out, size_t cap,
		      size_t *n)
{
	while (a < b && (t[a] == ' ' || t[a] == '\t' || t[a] == '\n' || t[a] == '\r'))
		a++;
	while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\n' || t[b - 1] == '\r'))
		b--;
	if (b <= a)
		return;
	if (*n < cap) {
		out[*n].start = a;
		out[*n].end = b;
	}
	(*n)++;
}

int hark_cues_split_sentences(const char *text, size_t len, struct hark_cue_span *out,
			      size_t cap, size_t *n_out)
{
	if (!n_out || (!text && len > 0) || (!out && cap > 0))
		return HARK_ERR_INVALID_ARG;
	size_t n = 0, st = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (ch != '.' && ch != '!' && ch != '?')
			continue;
		size_t j = i + 1;
		while (j < len && (text[j] == '.' || text[j] == '!' || text[j] == '?' || text[j] == '"' ||
				   text[j] == ')'))
			j++;
		if (j < len && text[j] != ' ' && text[j] != '\n' && text[j] != '\t')
			continue; /* "3.5", "e.g" */
		if (ch == '.' && abbrev_before(text, i))
			continue;
		push_span(text, st, j, out, cap, &n);
		st = j;
		i = j - 1;
	}
	push_span(text, st, len, out, cap, &n);
	*n_out = n < cap ? n : cap;
	return 0;
}
