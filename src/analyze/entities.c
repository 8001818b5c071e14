/*
 * Offline entity extractor (see entities.h for the rules): every turn is
 * cleaned of bracketed annotations, cut into sentences and word tokens with
 * byte offsets; a first pass collects capitalised runs, acronyms and speaker
 * turns as occurrences of local candidates (keyed by the graph's normalized
 * name) and counts lowercase 2..3-word terms; a second pass emits the
 * occurrences of the repeated terms. Candidates are then filtered (mention
 * count, sentence-start-only runs, per-meeting cap), added to the graph with
 * one mention per occurrence, and co-occurrence / speaker "mentions"
 * relations are counted over sentence windows. Everything is ASCII-based
 * and locale-free; hash tables are only used for lookups, every emitted
 * list is sorted, so the output depends only on the input.
 */
#include "analyze/entities.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"
#include "util/errbuf.h"

#define MAX_SENT_TOKENS 256
#define MAX_OCCS ((size_t)4000000)
#define MAX_SENTS ((size_t)2000000)
#define MAX_CANDS ((size_t)1000000)
#define MAX_RUN 6
#define LOW_LEN 40
#define QUOTE_WORDS 30
#define EV_INLINE 8
#define NGRAM_MIN 3

/* ------------------------------------------------------- word lists ---- */

static const char *const stop_words[] = {
	"a", "about", "above", "actually", "after", "again", "against", "ago", "all", "almost",
	"also", "although", "always", "am", "among", "an", "and", "another", "any", "anybody",
	"anyone", "anything", "anyway", "anyways", "are", "aren't", "around", "as", "at", "away",
	"back", "basically", "be", "because", "been", "before", "being", "below", "best", "better",
	"between", "big", "bit", "both", "but", "by", "can", "can't", "cannot", "certain",
	"certainly", "come", "comes", "coming", "could", "couldn't", "did", "didn't", "different",
	"do", "does", "doesn't", "doing", "don't", "done", "down", "during", "each", "either",
	"else", "enough", "especially", "etc", "even", "ever", "every", "everybody", "everyone",
	"everything", "exactly", "fact", "far", "few", "fine", "first", "for", "from", "further",
	"get", "gets", "getting", "give", "given", "go", "goes", "going", "gonna", "good", "got",
	"gotta", "great", "guess", "guy", "guys", "had", "hadn't", "has", "hasn't", "have",
	"haven't", "having", "he", "he'd", "he'll", "he's", "her", "here", "here's", "hers",
	"herself", "him", "himself", "his", "how", "however", "i", "i'd", "i'll", "i'm", "i've",
	"idea", "if", "in", "instead", "into", "is", "isn't", "it", "it'd", "it'll", "it's", "its",
	"itself", "just", "keep", "kind", "kinda", "know", "knows", "last", "later", "least", "less",
	"let", "let's", "like", "likely", "little", "long", "look", "looking", "looks", "lot",
	"lots", "made", "make", "makes", "making", "many", "may", "maybe", "me", "mean", "means",
	"might", "mine", "more", "most", "much", "must", "my", "myself", "need", "needs", "never",
	"new", "next", "no", "nobody", "none", "nor", "not", "nothing", "now", "number", "of", "off",
	"often", "old", "on", "once", "one", "ones", "only", "onto", "or", "other", "others",
	"otherwise", "ought", "our", "ours", "ourselves", "out", "over", "own", "part", "people",
	"per", "perhaps", "point", "pretty", "probably", "put", "quite", "rather", "really",
	"right", "said", "same", "say", "saying", "says", "second", "see", "seem", "seems", "seen",
	"several", "shall", "she", "she'd", "she'll", "she's", "should", "shouldn't", "since",
	"so", "some", "somebody", "someone", "something", "sometimes", "somewhat", "somewhere",
	"sort", "start", "still", "stuff", "such", "sure", "take", "talk", "talking", "tell",
	"than", "thank", "thanks", "that", "that'd", "that'll", "that's", "the", "their",
	"theirs", "them", "themselves", "then", "there", "there's", "these", "they", "they'd",
	"they'll", "they're", "they've", "thing", "things", "think", "thinking", "this", "those",
	"though", "thought", "through", "thus", "time", "times", "to", "today", "together", "too",
	"toward", "towards", "try", "trying", "two", "three", "under", "until", "up", "upon", "us",
	"use", "used", "using", "usually", "very", "via", "want", "wanna", "wants", "was", "wasn't",
	"way", "ways", "we", "we'd", "we'll", "we're", "we've", "well", "went", "were", "weren't",
	"what", "what's", "whatever", "when", "where", "where's", "whether", "which", "while",
	"who", "who's", "whole", "whom", "whose", "why", "will", "with", "within", "without",
	"won't", "work", "would", "wouldn't", "yes", "yet", "you", "you'd", "you'll", "you're",
	"you've", "your", "yours", "yourself", "yourselves", "able", "already", "bad", "case",
	"couple", "four", "five", "guess", "hand", "huh", "kay", "lot", "once", "real", "sense",
	"true", "wait", "whatnot", "whereas", "yep", NULL};

static const char *const fillers[] = {
	"okay", "ok", "yeah", "yea", "yes", "um", "uh", "umm", "uhm", "hmm", "hm", "mm", "mmm",
	"mhm", "mm-hmm", "uh-huh", "uh-hmm", "huh", "ah", "oh", "eh", "er", "erm", "oops", "wow",
	"hey", "hi", "hello", "bye", "alright", "right", "so", "well", "like", "sorry", "please",
	"thanks", "cool", "nope", "yep", "yup", "nah", "kay", "'kay", "ooh", "aha", "gosh", "damn",
	"anyway", "exactly", "absolutely", "definitely", "sure", "great", "good", "fine", "true",
	"indeed", "hmm-hmm", "mm-hm", "uh-oh", NULL};

static const char *const calendar[] = {
	"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
	"february", "march", "april", "may", "june", "july", "august", "september", "october",
	"november", "december", "mon", "tue", "wed", "thu", "fri", "sat", "sun", "jan", "feb",
	"mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", NULL};

static const char *const connectors[] = {"of", "and", "de", "the", "for", "van", "von",
					 "du", "la", "del", "da", "der", NULL};

/* Abbreviations whose '.' ends no sentence when a lowercase word follows. */
static const char *const abbrevs[] = {"inc", "corp", "ltd", "co", "jr", "sr", "st", "vs",
				      "etc", "approx", "dept", "no", NULL};

static const char *const titles[] = {"dr", "mr", "mrs", "ms", "prof", "professor", NULL};

static const char *const org_words[] = {
	"inc", "corp", "corporation", "ltd", "llc", "gmbh", "plc", "university", "institute",
	"company", "committee", "association", "foundation", "agency", "organization",
	"organisation", "council", "department", "ministry", "bank", "group", "labs",
	"laboratory", "laboratories", "society", "college", "school", "board", "commission",
	"co", NULL};

static const char *const role_words[] = {
	"project", "manager", "marketing", "industrial", "designer", "user", "interface",
	"phd", "grad", "professor", "postdoc", "undergrad", "speaker", "expert", "director",
	"chair", "chairman", "moderator", "host", "guest", "member", "participant", "unknown",
	"student", "lecturer", "teacher", "presenter", "interviewer", "interviewee", "analyst",
	"assistant", "engineer", "officer", "secretary", "president", "minister", NULL};

/* Common technical acronyms that are not organisations. */
static const char *const tech_acronyms[] = {
	"lcd", "dvd", "usb", "led", "gps", "pda", "cpu", "gpu", "ram", "pdf", "url", "api",
	"faq", "asap", "eta", "rsi", "vcr", "mp3", "html", "http", "xml", "json", "csv", "sql",
	"ppt", "doc", "iso", "ceo", "cfo", "cto", "tbd", "fyi", "atm", "pin", "sms", "fft",
	"hmm", "ok", "gui", "pcb", "dos", "ip", "pc", "os", "ui", "ai", "id", "tv", "dvd",
	"lan", "wifi", "cd", "nlp", "asr", NULL};

static const char *const first_names[] = {
	"adam", "alan", "alex", "alice", "amy", "andrew", "anna", "anne", "barbara", "ben",
	"bill", "bob", "brian", "carl", "carol", "charles", "chris", "chuck", "claire", "dan",
	"daniel", "dave", "david", "diana", "ed", "emily", "emma", "eric", "frank", "fred",
	"george", "hannah", "harry", "helen", "henry", "jack", "james", "jane", "janet", "jason",
	"jeff", "jennifer", "jerry", "jim", "joe", "john", "jose", "julia", "karen", "kate",
	"kevin", "laura", "linda", "lisa", "liz", "maria", "mark", "mary", "matt", "michael",
	"mike", "nancy", "nick", "paul", "peter", "rachel", "richard", "rob", "robert", "ryan",
	"sam", "sarah", "scott", "steve", "steven", "sue", "susan", "thomas", "tim", "tom",
	"tony", "william", "jane", NULL};

/* The word lists sorted once (for binary search): in_list runs for every
 * token several times, and a linear scan of the stop words dominated the
 * extraction time on long meetings. */
static const char *const *const all_lists[] = {stop_words, fillers, calendar, connectors,
						abbrevs, titles, org_words, role_words,
						tech_acronyms, first_names};
#define N_LISTS (sizeof(all_lists) / sizeof(all_lists[0]))
static const char **sorted_lists[N_LISTS];
static size_t sorted_len[N_LISTS];
static pthread_once_t lists_once = PTHREAD_ONCE_INIT;

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void sort_lists(void)
{
	for (size_t l = 0; l < N_LISTS; l++) {
		size_t n = 0;
		const char **v;

		while (all_lists[l][n])
			n++;
		v = malloc((n ? n : 1) * sizeof(*v));
		if (!v)
			continue; /* in_list falls back to a scan */
		memcpy(v, all_lists[l], n * sizeof(*v));
		qsort(v, n, sizeof(*v), cmp_cstr);
		sorted_lists[l] = v;
		sorted_len[l] = n;
	}
}

static int in_list(const char *w, const char *const *list)
{
	pthread_once(&lists_once, sort_lists);
	for (size_t l = 0; l < N_LISTS; l++)
		if (all_lists[l] == list && sorted_lists[l])
			return bsearch(&w, sorted_lists[l], sorted_len[l], sizeof(char *), cmp_cstr) !=
			       NULL;
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], w) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ tables ---- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* String -> index map with owned keys. */
struct cmap {
	char **keys;
	size_t *vals;
	size_t cap, n;
};

static void cmap_free(struct cmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t cmap_slot(const struct cmap *m, const char *k)
{
	size_t i = (size_t)hash_str(k) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], k) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* Index of k or SIZE_MAX. */
static size_t cmap_get(const struct cmap *m, const char *k)
{
	if (!m->cap)
		return SIZE_MAX;
	size_t s = cmap_slot(m, k);
	return m->keys[s] ? m->vals[s] : SIZE_MAX;
}

static int cmap_put(struct cmap *m, const char *k, size_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 256;
		struct cmap nm = {calloc(nc, sizeof(char *)), calloc(nc, sizeof(size_t)), nc, m->n};
		if (!nm.keys || !nm.vals) {
			free(nm.keys);
			free(nm.vals);
			return HARK_ERR_NOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i]) {
				size_t s = cmap_slot(&nm, m->keys[i]);
				nm.keys[s] = m->keys[i];
				nm.vals[s] = m->vals[i];
			}
		free(m->keys);
		free(m->vals);
		*m = nm;
	}
	size_t s = cmap_slot(m, k);
	if (!m->keys[s]) {
		m->keys[s] = strdup(k);
		if (!m->keys[s])
			return HARK_ERR_NOMEM;
		m->n++;
	}
	m->vals[s] = v;
	return 0;
}

/* Pair (a, b) -> count + a few evidence sentences. */
struct pentry {
	uint64_t key; /* (a << 32 | b) + 1; 0 = empty */
	size_t count;
	size_t ev[EV_INLINE];
	size_t n_ev;
};

struct pmap {
	struct pentry *e;
	size_t cap, n;
};

static struct pentry *pmap_get(struct pmap *m, size_t a, size_t b, int *err)
{
	uint64_t k = (((uint64_t)a << 32) | (uint64_t)b) + 1;
	if ((m->n + 1) * 2 > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 1024;
		struct pentry *ne = calloc(nc, sizeof(*ne));
		if (!ne) {
			*err = HARK_ERR_NOMEM;
			return NULL;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->e[i].key) {
				size_t s = (size_t)((m->e[i].key * 0x9E3779B97F4A7C15ull) >> 20) & (nc - 1);
				while (ne[s].key)
					s = (s + 1) & (nc - 1);
				ne[s] = m->e[i];
			}
		free(m->e);
		m->e = ne;
		m->cap = nc;
	}
	size_t s = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & (m->cap - 1);
	while (m->e[s].key && m->e[s].key != k)
		s = (s + 1) & (m->cap - 1);
	if (!m->e[s].key) {
		m->e[s].key = k;
		m->n++;
	}
	return &m->e[s];
}

/* ---------------------------------------------------------- context ---- */

struct sent {
	size_t turn;
	size_t s, e; /* byte range in the cleaned turn text */
};

struct occ {
	size_t cand;
	size_t sent;
	size_t off, len; /* surface in the cleaned turn text (speakers: len 0) */
	int initial;     /* run at a sentence start */
};

enum { C_CONCEPT = 1, C_PRODUCT, C_PROJECT, C_ORG, C_PERSON };

static const char *ctype_name(int t)
{
	switch (t) {
	case C_PERSON: return "person";
	case C_ORG: return "organization";
	case C_PROJECT: return "project";
	case C_PRODUCT: return "product";
	default: return "concept";
	}
}

struct cand {
	char *name;     /* first surface form */
	int type;       /* highest C_* seen */
	int speaker;
	int ngram;
	size_t count, mid, first;
	size_t gidx;    /* graph index once added */
	int kept;
	size_t rank;
};

struct tok {
	size_t s, e;
	int cap, allcaps, brk, digit, alpha_lower;
	int excl;          /* stop word, filler or calendar word (computed once) */
	char low[LOW_LEN];
	int long_tok;
};

struct ctx {
	const struct hark_entities_params *p;
	const struct hark_chunk_turn *turns;
	size_t n_turns;
	const char *meeting;
	char **clean;      /* cleaned text per turn */
	size_t *turn_spk;  /* speaker candidate per turn or SIZE_MAX */
	size_t *turn_sent; /* first sentence of each turn or SIZE_MAX */
	struct sent *sents;
	size_t n_sents, cap_sents;
	struct occ *occs;
	size_t n_occs, cap_occs;
	struct cand *cands;
	size_t n_cands, cap_cands;
	struct cmap cmap;   /* normalized key -> candidate */
	struct cmap ngrams; /* term -> index into ng_count */
	size_t *ng_count;
	size_t n_ng, cap_ng;
	char *ng_sel;       /* per term: selected */
	struct cmap fnames; /* participant first names */
	int pass;
	size_t cur_turn;
	struct tok tk[MAX_SENT_TOKENS];
	size_t nt;
	size_t sent_idx;    /* index of the sentence being processed */
	char *err;
	size_t errlen;
};

static int grow(void **arr, size_t *cap, size_t need, size_t elem, size_t limit)
{
	if (need <= *cap)
		return 0;
	if (need > limit)
		return HARK_ERR_LIMIT;
	size_t nc = *cap ? *cap * 2 : 64;
	while (nc < need)
		nc *= 2;
	if (nc > limit)
		nc = limit;
	void *np = realloc(*arr, nc * elem);
	if (!np)
		return HARK_ERR_NOMEM;
	*arr = np;
	*cap = nc;
	return 0;
}

/* Candidate for surface text (normalized key); created when absent. */
static int cand_get(struct ctx *c, const char *surface, int type, size_t *out)
{
	char *key = hark_graph_normalize_name(surface, "concept");
	int rc = 0;

	if (!key)
		return HARK_ERR_NOMEM;
	if (!key[0]) {
		*out = SIZE_MAX;
		goto out;
	}
	size_t i = cmap_get(&c->cmap, key);
	if (i == SIZE_MAX) {
		rc = grow((void **)&c->cands, &c->cap_cands, c->n_cands + 1, sizeof(*c->cands),
			  MAX_CANDS);
		if (rc)
			goto out;
		struct cand *cd = &c->cands[c->n_cands];
		memset(cd, 0, sizeof(*cd));
		cd->name = strdup(surface);
		if (!cd->name) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		cd->first = c->n_occs;
		cd->gidx = SIZE_MAX;
		i = c->n_cands++;
		rc = cmap_put(&c->cmap, key, i);
		if (rc)
			goto out;
	}
	if (type > c->cands[i].type)
		c->cands[i].type = type;
	*out = i;
out:
	free(key);
	return rc;
}

static int add_occ(struct ctx *c, size_t cand, size_t off, size_t len, int initial)
{
	int rc = grow((void **)&c->occs, &c->cap_occs, c->n_occs + 1, sizeof(*c->occs), MAX_OCCS);
	if (rc)
		return rc;
	c->occs[c->n_occs++] = (struct occ){cand, c->sent_idx, off, len, initial};
	c->cands[cand].count++;
	if (!initial)
		c->cands[cand].mid++;
	return 0;
}

/* ------------------------------------------------------ token tests ---- */

static int excluded_word(const char *low)
{
	return in_list(low, stop_words) || in_list(low, fillers) || in_list(low, calendar);
}

static int excluded(const struct tok *t)
{
	return t->excl;
}

static int is_title(const struct tok *t)
{
	return t->cap && in_list(t->low, titles);
}

static int is_initial_letter(const struct ctx *c, size_t i)
{
	const struct tok *t = &c->tk[i];
	return t->e - t->s == 1 && t->cap && c->clean[c->cur_turn][t->e] == '.' && i + 1 < c->nt &&
	       !c->tk[i + 1].brk;
}

static int is_acronym(const struct tok *t)
{
	size_t n = t->e - t->s;
	return t->allcaps && n >= 2 && n <= 8 && !in_list(t->low, fillers);
}

static int is_name_word(const struct tok *t)
{
	if (is_acronym(t))
		return 1;
	if (!t->cap || t->long_tok || t->e - t->s < 2 || excluded(t) || strchr(t->low, '_'))
		return 0;
	if (t->allcaps && t->e - t->s > 8)
		return 0;
	return 1;
}


/* ------------------------------------------------------- sentences ---- */

static int emit_run(struct ctx *c, size_t a, size_t b, int initial)
{
	const char *txt = c->clean[c->cur_turn];
	const struct tok *t0 = &c->tk[a], *tl = &c->tk[b];
	size_t off = t0->s, len = tl->e - t0->s;
	char buf[512];
	int type = C_CONCEPT, rc;
	size_t ci;

	if (len >= sizeof(buf))
		return 0;
	size_t k = 0;
	for (size_t q = 0; q < len; q++) {
		char ch = txt[off + q];
		if (ch == ' ' || ch == '\n') {
			if (k > 0 && buf[k - 1] != ' ')
				buf[k++] = ' ';
			continue;
		}
		buf[k++] = ch;
	}
	buf[k] = '\0';
	if (a == b && is_acronym(t0)) {
		int digits = t0->digit;
		if (digits)
			type = C_PRODUCT;
		else if (len >= 3 && !in_list(t0->low, tech_acronyms))
			type = C_ORG;
	} else if (is_title(t0) && b > a) {
		type = C_PERSON;
	} else if (in_list(tl->low, org_words) || strcmp(t0->low, "university") == 0 ||
		   strcmp(t0->low, "institute") == 0) {
		type = C_ORG;
	} else if (strcmp(t0->low, "project") == 0 ||
		   (a > 0 && strcmp(c->tk[a - 1].low, "project") == 0) ||
		   (b + 1 < c->nt && strcmp(c->tk[b + 1].low, "project") == 0)) {
		type = C_PROJECT;
	} else if (strcmp(t0->low, "product") == 0 ||
		   (a > 0 && strcmp(c->tk[a - 1].low, "product") == 0) ||
		   (b + 1 < c->nt && strcmp(c->tk[b + 1].low, "product") == 0)) {
		type = C_PRODUCT;
	} else if (!t0->allcaps && (in_list(t0->low, first_names) ||
				    cmap_get(&c->fnames, t0->low) != SIZE_MAX) &&
		   b - a <= 2) {
		type = C_PERSON;
	}
	/* sentence-start runs count when they are people, organisations by
	 * suffix, acronyms or several capitalised words */
	if (type == C_PERSON || (type == C_ORG && !is_acronym(t0)) || is_acronym(t0) || b > a)
		initial = 0;
	rc = cand_get(c, buf, type, &ci);
	if (rc || ci == SIZE_MAX)
		return rc;
	return add_occ(c, ci, off, len, initial);
}

static void term_key(const struct ctx *c, size_t i, size_t n, char *buf, size_t cap)
{
	size_t k = 0;
	buf[0] = '\0';
	for (size_t j = i; j < i + n; j++) {
		size_t l = strlen(c->tk[j].low);
		if (k + l + 2 >= cap)
			return;
		if (j > i)
			buf[k++] = ' ';
		memcpy(buf + k, c->tk[j].low, l);
		k += l;
		buf[k] = '\0';
	}
}

static int is_term_word(const struct ctx *c, size_t i)
{
	const struct tok *t = &c->tk[i];
	if (!t->alpha_lower || t->e - t->s < 3 || excluded(t))
		return 0;
	return !t->cap || i == 0;
}

/* n-word term at i: all term words, no punctuation between them. */
static int term_at(const struct ctx *c, size_t i, size_t n)
{
	if (i + n > c->nt)
		return 0;
	for (size_t j = i; j < i + n; j++) {
		if (!is_term_word(c, j))
			return 0;
		if (j > i && c->tk[j].brk)
			return 0;
	}
	return 1;
}

static int process_sentence(struct ctx *c)
{
	int rc = 0;
	char key[3 * LOW_LEN + 4];

	if (c->nt == 0)
		return 0;
	if (c->pass == 1) {
		const char *txt = c->clean[c->cur_turn];
		size_t e = c->tk[c->nt - 1].e;
		while (txt[e] == '.' || txt[e] == '?' || txt[e] == '!')
			e++;
		rc = grow((void **)&c->sents, &c->cap_sents, c->n_sents + 1, sizeof(*c->sents),
			  MAX_SENTS);
		if (rc)
			return rc;
		c->sents[c->n_sents] = (struct sent){c->cur_turn, c->tk[0].s, e};
		c->sent_idx = c->n_sents++;
		if (c->turn_sent[c->cur_turn] == SIZE_MAX)
			c->turn_sent[c->cur_turn] = c->sent_idx;

		/* capitalised runs and acronyms */
		for (size_t i = 0; i < c->nt;) {
			size_t a = i, last = SIZE_MAX, k = i;
			int started = 0;
			while (k < c->nt) {
				const struct tok *t = &c->tk[k];
				if (started && t->brk)
					break;
				if (k - a >= MAX_RUN)
					break;
				if (is_name_word(t) || (!started && is_title(t) && k + 1 < c->nt) ||
				    is_initial_letter(c, k)) {
					if (!is_title(t) || started)
						last = k;
					started = 1;
					k++;
					continue;
				}
				if (started && in_list(t->low, connectors) && !t->cap && k + 1 < c->nt &&
				    !c->tk[k + 1].brk && is_name_word(&c->tk[k + 1])) {
					k++;
					continue;
				}
				break;
			}
			if (!started) {
				i++;
				continue;
			}
			if (last == SIZE_MAX || last < a) {
				i = k > a ? k : a + 1;
				continue;
			}
			/* "and" only inside organisation names */
			size_t b = last;
			for (size_t j = a + 1; j < b; j++)
				if (strcmp(c->tk[j].low, "and") == 0 &&
				    (!in_list(c->tk[b].low, org_words) ||
				     in_list(c->tk[j - 1].low, org_words))) {
					b = j - 1;
					break;
				}
			/* drop a trailing initial ("PhD A") unless it is the whole run */
			while (b > a && c->tk[b].e - c->tk[b].s == 1)
				b--;
			if (!(a == b && (c->tk[a].e - c->tk[a].s < 2 || is_title(&c->tk[a])))) {
				rc = emit_run(c, a, b, a == 0);
				if (rc)
					return rc;
			}
			i = b + 1 > a ? b + 1 : a + 1;
			if (i < k && strcmp(c->tk[i].low, "and") == 0)
				i++;
		}
		/* lowercase term counts */
		for (size_t n = 2; n <= 3; n++)
			for (size_t i = 0; i + n <= c->nt; i++) {
				if (!term_at(c, i, n))
					continue;
				term_key(c, i, n, key, sizeof(key));
				size_t x = cmap_get(&c->ngrams, key);
				if (x == SIZE_MAX) {
					rc = grow((void **)&c->ng_count, &c->cap_ng, c->n_ng + 1,
						  sizeof(*c->ng_count), MAX_CANDS);
					if (!rc)
						rc = cmap_put(&c->ngrams, key, c->n_ng);
					if (rc)
						return rc;
					x = c->n_ng;
					c->ng_count[c->n_ng++] = 0;
				}
				c->ng_count[x]++;
			}
		return 0;
	}
	/* pass 2: occurrences of the selected terms, longest first */
	c->sent_idx++;
	for (size_t i = 0; i < c->nt;) {
		size_t got = 0;
		for (size_t n = 3; n >= 2 && !got; n--) {
			if (!term_at(c, i, n))
				continue;
			term_key(c, i, n, key, sizeof(key));
			size_t x = cmap_get(&c->ngrams, key);
			if (x != SIZE_MAX && c->ng_sel[x]) {
				size_t off = c->tk[i].s, len = c->tk[i + n - 1].e - off, ci;
				rc = cand_get(c, key, C_CONCEPT, &ci);
				if (!rc && ci != SIZE_MAX) {
					c->cands[ci].ngram = 1;
					rc = add_occ(c, ci, off, len, 0);
				}
				if (rc)
					return rc;
				got = n;
			}
		}
		i += got ? got : 1;
	}
	return 0;
}

static int is_word_byte(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '\'' || ch == '_' || ch == '-' || ch >= 0x80;
}

/* Tokenises turn t's cleaned text and processes its sentences. */
static int scan_turn(struct ctx *c, size_t t)
{
	const char *s = c->clean[t];
	size_t len = strlen(s), pos = 0, prev_end = 0;
	int rc;

	c->cur_turn = t;
	c->nt = 0;
	while (pos < len) {
		while (pos < len && !is_word_byte((unsigned char)s[pos]))
			pos++;
		if (pos >= len)
			break;
		size_t a = pos;
		while (pos < len && is_word_byte((unsigned char)s[pos]))
			pos++;
		size_t b = pos;
		while (a < b && (s[a] == '\'' || s[a] == '-' || s[a] == '_'))
			a++;
		while (b > a && (s[b - 1] == '\'' || s[b - 1] == '-' || s[b - 1] == '_'))
				b--;
		if (a >= b)
			continue;
		/* possessive 's on capitalised words */
		if (b - a > 3 && s[b - 2] == '\'' && (s[b - 1] == 's' || s[b - 1] == 'S') &&
		    s[a] >= 'A' && s[a] <= 'Z')
			b -= 2;

		/* sentence boundary in the gap? */
		int brk = 0, boundary = 0;
		if (c->nt > 0) {
			const struct tok *pt = &c->tk[c->nt - 1];
			int abbrev = is_title(pt) || (pt->e - pt->s == 1 && pt->cap) ||
				     (in_list(pt->low, abbrevs) && s[a] >= 'a' && s[a] <= 'z');
			for (size_t k = prev_end; k < a; k++) {
				char ch = s[k];
				if (ch == ' ' || ch == '\t')
					continue;
				if (ch == '\n' || ch == '\r' || ch == '?' || ch == '!') {
					boundary = 1;
				} else if (ch == '.') {
					int num = k > 0 && s[k - 1] >= '0' && s[k - 1] <= '9' &&
						  s[k + 1] >= '0' && s[k + 1] <= '9';
					if (!(abbrev && k == prev_end) && !num)
						boundary = 1;
				} else {
					brk = 1;
				}
			}
			if (boundary || c->nt >= MAX_SENT_TOKENS) {
				rc = process_sentence(c);
				if (rc)
					return rc;
				c->nt = 0;
				brk = 0;
			}
		}
		struct tok *tk = &c->tk[c->nt++];
		memset(tk, 0, sizeof(*tk));
		tk->s = a;
		tk->e = b;
		tk->brk = brk;
		tk->cap = s[a] >= 'A' && s[a] <= 'Z';
		tk->long_tok = b - a >= LOW_LEN;
		int lower = 0, upper = 0, digit = 0, other = 0;
		size_t k = 0;
		for (size_t i = a; i < b; i++) {
			char ch = s[i];
			if (ch >= 'a' && ch <= 'z')
				lower++;
			else if (ch >= 'A' && ch <= 'Z')
				upper++;
			else if (ch >= '0' && ch <= '9')
				digit++;
			else
				other++;
			if (k + 1 < LOW_LEN)
				tk->low[k++] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
		}
		tk->low[k] = '\0';
		tk->allcaps = upper >= 2 && lower == 0 && other == 0;
		tk->digit = digit > 0;
		tk->alpha_lower = upper <= 1 && digit == 0 && other == 0 && lower > 0 &&
				  (upper == 0 || tk->cap);
		tk->excl = excluded_word(tk->low);
		prev_end = b;
	}
	return process_sentence(c);
}

/* Copy of text with bracketed annotations ({...}, [...], <...>) blanked and
 * spelled-out acronyms ("L_C_D_") collapsed. */
static char *clean_text(const char *text)
{
	size_t n = strlen(text);
	char *o = malloc(n + 1);
	size_t k = 0;

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char ch = text[i];
		char close = ch == '{' ? '}' : ch == '[' ? ']' : ch == '<' ? '>' : 0;
		if (close) {
			size_t j = i + 1;
			while (j < n && j - i < 64 && text[j] != close && text[j] != '\n')
				j++;
			if (j < n && text[j] == close) {
				o[k++] = ' ';
				i = j;
				continue;
			}
		}
		if (ch == '\t' || ch == '\r')
			ch = ' ';
		o[k++] = ch;
	}
	o[k] = '\0';
	/* collapse "L_C_D_" -> "LCD" */
	size_t w = 0;
	for (size_t i = 0; i < k;) {
		if (o[i] >= 'A' && o[i] <= 'Z' && i + 1 < k && o[i + 1] == '_' &&
		    (i == 0 || !is_word_byte((unsigned char)o[i - 1]))) {
			size_t j = i;
			while (j + 1 < k && o[j] >= 'A' && o[j] <= 'Z' && o[j + 1] == '_')
				j += 2;
			if (j - i >= 4 && (j >= k || !is_word_byte((unsigned char)o[j]))) {
				for (size_t q = i; q < j; q += 2)
					o[w++] = o[q];
				i = j;
				continue;
			}
		}
		o[w++] = o[i++];
	}
	o[w] = '\0';
	return o;
}

/* ---------------------------------------------------------- output ---- */

/* The sentence as a quote: whitespace collapsed, at most QUOTE_WORDS words. */
static char *make_quote(const struct ctx *c, size_t si)
{
	const struct sent *st = &c->sents[si];
	const char *s = c->clean[st->turn];
	size_t n = st->e - st->s, k = 0, words = 0;
	char *o = malloc(n + 5);
	int sp = 0;

	if (!o)
		return NULL;
	for (size_t i = st->s; i < st->e; i++) {
		char ch = s[i];
		if (ch == ' ' || ch == '\n') {
			sp = k > 0;
			continue;
		}
		if (sp) {
			if (++words >= QUOTE_WORDS) {
				memcpy(o + k, " ...", 4);
				k += 4;
				break;
			}
			o[k++] = ' ';
			sp = 0;
		}
		o[k++] = ch;
	}
	o[k] = '\0';
	return o;
}

static double sent_time(const struct ctx *c, size_t si)
{
	const struct sent *st = &c->sents[si];
	const struct hark_chunk_turn *t = &c->turns[st->turn];
	if (t->start_s < 0)
		return -1.0;
	if (t->end_s <= t->start_s)
		return t->start_s;
	size_t len = strlen(c->clean[st->turn]);
	double f = len ? (double)st->s / (double)len : 0.0;
	return t->start_s + f * (t->end_s - t->start_s);
}

static int make_mention(const struct ctx *c, size_t si, size_t turn, const char *surface,
			struct hark_graph_mention *m)
{
	memset(m, 0, sizeof(*m));
	m->meeting = (char *)c->meeting;
	m->surface = (char *)surface;
	m->chunk = -1;
	m->turn = (long)turn;
	m->start_s = c->turns[turn].start_s >= 0 ? c->turns[turn].start_s : -1.0;
	if (si != SIZE_MAX) {
		m->quote = make_quote(c, si);
		if (!m->quote)
			return HARK_ERR_NOMEM;
		m->start_s = sent_time(c, si);
	}
	return 0;
}

static int cmp_rank(const void *a, const void *b, void *ctx)
{
	const struct cand *cs = ctx;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	if (cs[x].count != cs[y].count)
		return cs[x].count > cs[y].count ? -1 : 1;
	if (cs[x].first != cs[y].first)
		return cs[x].first < cs[y].first ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int cmp_occ(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	if (x->sent != y->sent)
		return x->sent < y->sent ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->cand < y->cand ? -1 : x->cand > y->cand;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_pentry(const void *a, const void *b)
{
	const struct pentry *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

static int bump_pair(struct pmap *pm, size_t a, size_t b, size_t si, size_t max_ev)
{
	int err = 0;
	struct pentry *e = pmap_get(pm, a, b, &err);
	if (!e)
		return err;
	e->count++;
	if (e->n_ev < max_ev && e->n_ev < EV_INLINE)
		e->ev[e->n_ev++] = si;
	return 0;
}

/* Adds the pairs of pm with count >= min as relations of type type. */
static int emit_pairs(struct ctx *c, struct pmap *pm, size_t min, const char *type,
		      struct hark_graph *g)
{
	struct pentry *all = malloc((pm->n + 1) * sizeof(*all));
	size_t n = 0;
	int rc = 0;

	if (!all)
		return HARK_ERR_NOMEM;
	for (size_t i = 0; i < pm->cap; i++)
		if (pm->e[i].key)
			all[n++] = pm->e[i];
	qsort(all, n, sizeof(*all), cmp_pentry);
	for (size_t i = 0; i < n && !rc; i++) {
		struct pentry *e = &all[i];
		if (e->count < min)
			continue;
		size_t ca = (size_t)((e->key - 1) >> 32), cb = (size_t)((e->key - 1) & 0xffffffffu);
		size_t ga = c->cands[ca].gidx, gb = c->cands[cb].gidx;
		if (ga == SIZE_MAX || gb == SIZE_MAX || ga == gb)
			continue;
		size_t before = g->n_relations;
		for (size_t k = 0; k < e->n_ev && !rc; k++) {
			struct hark_graph_mention m;
			size_t si = e->ev[k];
			rc = make_mention(c, si, c->sents[si].turn, NULL, &m);
			if (!rc)
				rc = hark_graph_add_relation(g, ga, gb, type, &m);
			free(m.quote);
		}
		if (!rc && e->n_ev == 0)
			rc = hark_graph_add_relation(g, ga, gb, type, NULL);
		if (rc)
			break;
		/* weight = total count for this meeting */
		size_t lo = before < g->n_relations ? before : 0;
		size_t s = ga, t = gb;
		if (strcmp(type, "co_occurs") == 0 && s > t) {
			s = gb;
			t = ga;
		}
		for (size_t r = g->n_relations; r-- > lo;) {
			struct hark_graph_relation *rel = &g->relations[r];
			if (rel->source == s && rel->target == t && strcmp(rel->type, type) == 0) {
				size_t added = e->n_ev ? e->n_ev : 1;
				rel->weight += (double)(e->count - added);
				break;
			}
		}
	}
	free(all);
	return rc;
}

struct hark_entities_params hark_entities_default_params(void)
{
	struct hark_entities_params p;
	memset(&p, 0, sizeof(p));
	p.min_mentions = 2;
	p.max_entities = 200;
	p.window_sentences = 1;
	p.min_cooccur = 2;
	p.max_evidence = 5;
	p.max_input_bytes = (size_t)64 << 20;
	return p;
}

int hark_entities_extract(const struct hark_chunk_turn *turns, size_t n, const char *meeting,
			  const struct hark_entities_params *pp, struct hark_graph *g, char *err,
			  size_t errlen)
{
	struct hark_entities_params dp = hark_entities_default_params();
	const struct hark_entities_params *p = pp ? pp : &dp;
	struct ctx c;
	int rc = 0;
	size_t *order = NULL, *sc = NULL, *soff = NULL, *prev = NULL;
	struct pmap co = {0}, men = {0};

	memset(&c, 0, sizeof(c));
	if (!g || !meeting || !meeting[0] || (!turns && n > 0) || p->min_mentions < 1 ||
	    p->max_entities < 1 || p->window_sentences < 1 || p->min_cooccur < 1) {
		hark_errbuf_set(err, errlen, "entities: invalid argument");
		return HARK_ERR_INVALID_ARG;
	}
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		total += turns[i].text ? strlen(turns[i].text) : 0;
		total += turns[i].speaker ? strlen(turns[i].speaker) : 0;
		if (total > p->max_input_bytes) {
			hark_errbuf_set(err, errlen, "entities: input over %zu bytes",
					p->max_input_bytes);
			return HARK_ERR_LIMIT;
		}
	}
	c.p = p;
	c.turns = turns;
	c.n_turns = n;
	c.meeting = meeting;
	c.err = err;
	c.errlen = errlen;
	c.clean = calloc(n + 1, sizeof(char *));
	c.turn_spk = malloc((n + 1) * sizeof(size_t));
	c.turn_sent = malloc((n + 1) * sizeof(size_t));
	if (!c.clean || !c.turn_spk || !c.turn_sent) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}

	/* speakers and participant first names */
	for (size_t t = 0; t < n; t++) {
		c.turn_spk[t] = SIZE_MAX;
		c.turn_sent[t] = SIZE_MAX;
		c.clean[t] = clean_text(turns[t].text ? turns[t].text : "");
		if (!c.clean[t]) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		const char *sp = turns[t].speaker;
		if (!sp || !sp[strspn(sp, " \t")])
			continue;
		char lab[HARK_CHUNK_MAX_SPEAKER + 1];
		snprintf(lab, sizeof(lab), "%s", sp);
		/* "Name (Role ...)" -> "Name" */
		char *paren = strstr(lab, " (");
		if (paren && paren > lab)
			*paren = '\0';
		size_t ci;
		rc = cand_get(&c, lab, C_PERSON, &ci);
		if (rc)
			goto out;
		if (ci == SIZE_MAX)
			continue;
		c.cands[ci].speaker = 1;
		c.turn_spk[t] = ci;
		/* the first word of a name-like label (titles skipped) is a first name */
		char w[LOW_LEN];
		size_t k = 0, words = 0;
		for (const char *q = lab;; q++) {
			if ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z')) {
				if (k + 1 < LOW_LEN)
					w[k++] = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
				continue;
			}
			w[k] = '\0';
			if (k > 0 && !in_list(w, titles) && strcmp(w, "hon") != 0 &&
			    strcmp(w, "the") != 0) {
				if (words++ == 0 && k >= 3 && !in_list(w, role_words) &&
				    !in_list(w, stop_words) && cmap_get(&c.fnames, w) == SIZE_MAX) {
					rc = cmap_put(&c.fnames, w, 1);
					if (rc)
						goto out;
				}
			}
			k = 0;
			if (!*q || *q == '(')
				break;
		}
	}
	/* pass 1 */
	c.pass = 1;
	for (size_t t = 0; t < n; t++) {
		if (p->cancel && p->cancel(p->cancel_user_data)) {
			rc = HARK_ERR_CANCELED;
			goto out;
		}
		rc = scan_turn(&c, t);
		if (rc)
			goto out;
	}
	/* select repeated terms; a pair contained in an equally frequent
	 * selected triple is dropped */
	c.ng_sel = calloc(c.n_ng + 1, 1);
	if (!c.ng_sel) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < c.ngrams.cap; i++) {
		if (!c.ngrams.keys[i])
			continue;
		size_t x = c.ngrams.vals[i];
		c.ng_sel[x] = c.ng_count[x] >= NGRAM_MIN;
	}
	for (size_t i = 0; i < c.ngrams.cap; i++) {
		const char *k3 = c.ngrams.keys[i];
		if (!k3)
			continue;
		size_t x = c.ngrams.vals[i];
		const char *s1 = strchr(k3, ' '), *s2 = s1 ? strchr(s1 + 1, ' ') : NULL;
		if (!c.ng_sel[x] || !s2)
			continue;
		char left[3 * LOW_LEN + 4];
		snprintf(left, sizeof(left), "%.*s", (int)(s2 - k3), k3);
		size_t y = cmap_get(&c.ngrams, left), z = cmap_get(&c.ngrams, s1 + 1);
		if (y != SIZE_MAX && c.ng_count[y] <= c.ng_count[x])
			c.ng_sel[y] = 0;
		if (z != SIZE_MAX && c.ng_count[z] <= c.ng_count[x])
			c.ng_sel[z] = 0;
	}
	/* pass 2 */
	c.pass = 2;
	c.sent_idx = SIZE_MAX;
	for (size_t t = 0; t < n; t++) {
		rc = scan_turn(&c, t);
		if (rc)
			goto out;
	}
	/* single capitalised words that are a person's first or last name */
	for (size_t i = 0; i < c.n_cands; i++) {
		struct cand *cd = &c.cands[i];
		if (cd->type != C_PERSON || cd->speaker)
			continue;
		char *nm = hark_graph_normalize_name(cd->name, "person");
		if (!nm) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		char *sp = strchr(nm, ' ');
		{
			if (sp)
				*sp = '\0';
			size_t a = cmap_get(&c.cmap, nm);
			char *ls = sp ? strrchr(sp + 1, ' ') : NULL;
			size_t b = sp ? cmap_get(&c.cmap, ls ? ls + 1 : sp + 1) : SIZE_MAX;
			if (a != SIZE_MAX && c.cands[a].type == C_CONCEPT && !c.cands[a].ngram)
				c.cands[a].type = C_PERSON;
			if (b != SIZE_MAX && c.cands[b].type == C_CONCEPT && !c.cands[b].ngram)
				c.cands[b].type = C_PERSON;
		}
		free(nm);
	}

	/* speaker mentions: one per turn with a sentence */
	for (size_t t = 0; t < n; t++) {
		size_t ci = c.turn_spk[t];
		if (ci == SIZE_MAX || c.turn_sent[t] == SIZE_MAX ||
		    hark_chunk_is_low_value(turns[t].text))
			continue;
		c.sent_idx = c.turn_sent[t];
		rc = add_occ(&c, ci, 0, 0, 0);
		if (rc)
			goto out;
	}
	if (c.n_occs)
		qsort(c.occs, c.n_occs, sizeof(*c.occs), cmp_occ);

	/* filters */
	order = malloc((c.n_cands + 1) * sizeof(size_t));
	if (!order) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	size_t no = 0;
	for (size_t i = 0; i < c.n_cands; i++) {
		struct cand *cd = &c.cands[i];
		if (cd->speaker)
			continue;
		if (cd->count < p->min_mentions || cd->mid == 0)
			continue;
		order[no++] = i;
	}
	qsort_r(order, no, sizeof(size_t), cmp_rank, c.cands);
	if (no > p->max_entities)
		no = p->max_entities;
	for (size_t i = 0; i < no; i++)
		c.cands[order[i]].kept = 1;

	/* speakers first (in turn order), then by rank */
	for (size_t t = 0; t < n; t++) {
		size_t ci = c.turn_spk[t];
		if (ci == SIZE_MAX || c.cands[ci].kept)
			continue;
		c.cands[ci].kept = 1;
		if (c.cands[ci].count == 0) {
			struct hark_graph_mention m;
			rc = make_mention(&c, c.turn_sent[t], t, c.cands[ci].name, &m);
			if (!rc)
				rc = hark_graph_add_entity(g, c.cands[ci].name, "person", &m,
							   &c.cands[ci].gidx);
			free(m.quote);
			if (rc)
				goto out;
		}
	}
	for (size_t i = 0; i < c.n_occs; i++) {
		const struct occ *o = &c.occs[i];
		struct cand *cd = &c.cands[o->cand];
		if (!cd->kept)
			continue;
		size_t turn = c.sents[o->sent].turn;
		char surf[512];
		if (o->len) {
			/* whitespace collapsed (blanked annotations leave runs) */
			size_t k = 0;
			const char *src = c.clean[turn] + o->off;
			for (size_t q = 0; q < o->len && k + 1 < sizeof(surf); q++) {
				if (src[q] == ' ' || src[q] == '\n') {
					if (k > 0 && surf[k - 1] != ' ')
						surf[k++] = ' ';
					continue;
				}
				surf[k++] = src[q];
			}
			while (k > 0 && surf[k - 1] == ' ')
				k--;
			surf[k] = '\0';
		} else
			snprintf(surf, sizeof(surf), "%s", cd->name);
		struct hark_graph_mention m;
		rc = make_mention(&c, o->sent, turn, surf, &m);
		if (!rc)
			rc = hark_graph_add_entity(g, cd->name, ctype_name(cd->type), &m, &cd->gidx);
		free(m.quote);
		if (rc)
			goto out;
		if (p->cancel && (i & 1023) == 0 && p->cancel(p->cancel_user_data)) {
			rc = HARK_ERR_CANCELED;
			goto out;
		}
	}

	/* co-occurrence over sentence windows, speaker "mentions" */
	soff = calloc(c.n_sents + 2, sizeof(size_t));
	sc = malloc((c.n_occs + 1) * sizeof(size_t));
	prev = malloc((c.n_occs + 1) * sizeof(size_t));
	if (!soff || !sc || !prev) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	size_t nsc = 0;
	for (size_t si = 0, oi = 0; si < c.n_sents; si++) {
		soff[si] = nsc;
		size_t st = nsc;
		for (; oi < c.n_occs && c.occs[oi].sent == si; oi++) {
			const struct occ *o = &c.occs[oi];
			const struct cand *cd = &c.cands[o->cand];
			if (!cd->kept || cd->speaker || cd->gidx == SIZE_MAX)
				continue;
			sc[nsc++] = o->cand;
			size_t sp = c.turn_spk[c.sents[si].turn];
			if (sp != SIZE_MAX && sp != o->cand) {
				rc = bump_pair(&men, sp, o->cand, si, p->max_evidence);
				if (rc)
					goto out;
			}
		}
		qsort(sc + st, nsc - st, sizeof(size_t), cmp_size);
		size_t u = st;
		for (size_t k = st; k < nsc; k++)
			if (k == st || sc[k] != sc[k - 1])
				sc[u++] = sc[k];
		nsc = u;
	}
	soff[c.n_sents] = nsc;
	for (size_t j = 0; j < c.n_sents; j++) {
		const size_t *sj = sc + soff[j];
		size_t nj = soff[j + 1] - soff[j];
		if (!nj)
			continue;
		for (size_t a = 0; a < nj; a++)
			for (size_t b = a + 1; b < nj; b++) {
				rc = bump_pair(&co, sj[a], sj[b], j, p->max_evidence);
				if (rc)
					goto out;
			}
		size_t np = 0;
		for (size_t k = j >= p->window_sentences - 1 ? j - (p->window_sentences - 1) : 0; k < j;
		     k++)
			for (size_t q = soff[k]; q < soff[k + 1]; q++)
				prev[np++] = sc[q];
		if (!np)
			continue;
		qsort(prev, np, sizeof(size_t), cmp_size);
		for (size_t q = 0; q < np; q++) {
			if (q > 0 && prev[q] == prev[q - 1])
				continue;
			int in_j = 0;
			for (size_t a = 0; a < nj; a++)
				in_j |= sj[a] == prev[q];
			if (in_j)
				continue;
			for (size_t a = 0; a < nj; a++) {
				size_t x = sj[a] < prev[q] ? sj[a] : prev[q];
				size_t y = sj[a] < prev[q] ? prev[q] : sj[a];
				rc = bump_pair(&co, x, y, j, p->max_evidence);
				if (rc)
					goto out;
			}
		}
	}
	rc = emit_pairs(&c, &co, p->min_cooccur, "co_occurs", g);
	if (!rc)
		rc = emit_pairs(&c, &men, 2, "mentions", g);
out:
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "entities: out of memory");
	else if (rc == HARK_ERR_LIMIT)
		hark_errbuf_set(err, errlen, "entities: size limit exceeded in %s", meeting);
	else if (rc == HARK_ERR_CANCELED)
		hark_errbuf_set(err, errlen, "entities: canceled");
	else if (rc)
		hark_errbuf_set(err, errlen, "entities: %s", hark_strerror(rc));
	if (c.clean)
		for (size_t t = 0; t < n; t++)
			free(c.clean[t]);
	free(c.clean);
	free(c.turn_spk);
	free(c.turn_sent);
	free(c.sents);
	free(c.occs);
	for (size_t i = 0; i < c.n_cands; i++)
		free(c.cands[i].name);
	free(c.cands);
	cmap_free(&c.cmap);
	cmap_free(&c.ngrams);
	cmap_free(&c.fnames);
	free(c.ng_count);
	free(c.ng_sel);
	free(order);
	free(sc);
	free(soff);
	free(prev);
	free(co.e);
	free(men.e);
	return rc;
}
