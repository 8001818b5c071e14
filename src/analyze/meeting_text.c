/*
 * Meeting transcript reader (contract in meeting_text.h): QMSum JSON through
 * jansson, plain text line by line, each into an owned array of turns, with
 * caps on the file size and the turn count and format errors that name the
 * offending entry.
 */
#include "analyze/meeting_text.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hark/hark.h"
#include "util/errbuf.h"

struct hark_meeting_text_params hark_meeting_text_default_params(void)
{
	struct hark_meeting_text_params p;

	memset(&p, 0, sizeof(p));
	p.format = HARK_MEETING_TEXT_AUTO;
	p.max_bytes = (size_t)64 << 20;
	p.max_turns = 1000000;
	p.detokenize = 1;
	p.load_summary = 1;
	return p;
}

void hark_meeting_text_clear(struct hark_meeting_text *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_turns; i++) {
		free(m->turns[i].speaker);
		free(m->turns[i].text);
	}
	free(m->turns);
	free(m->reference_summary);
	memset(m, 0, sizeof(*m));
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

/* Heap copy of s[0..n) with both ends trimmed. */
static char *dup_trim(const char *s, size_t n)
{
	char *d;

	while (n > 0 && is_space((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && is_space((unsigned char)s[n - 1]))
		n--;
	d = malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

static int token_is_punct(const char *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strchr(".,?!;:%)]", t[i]))
			return 0;
	return n > 0;
}

static int token_is_clitic(const char *t, size_t n)
{
	static const char *const cl[] = {"'s", "'m", "'re", "'ve", "'ll", "'d", "n't", "'t"};

	for (size_t i = 0; i < sizeof(cl) / sizeof(cl[0]); i++)
		if (strlen(cl[i]) == n && strncasecmp(t, cl[i], n) == 0)
			return 1;
	return 0;
}

/*
 * Undoes QMSum's tokenised spacing in a heap string s (in place): no space
 * before punctuation tokens and clitics ("it 's" -> "it's"), "pre - existing"
 * -> "pre-existing", no space after "(" / "[". Whitespace runs collapse.
 */
static void detokenize(char *s)
{
	size_t n = strlen(s), i = 0, o = 0;
	int glue_next = 0, in_quote = 0;

	while (i < n) {
		size_t j, tl;
		const char *t;
		int glue;

		while (i < n && is_space((unsigned char)s[i]))
			i++;
		if (i >= n)
			break;
		j = i;
		while (j < n && !is_space((unsigned char)s[j]))
			j++;
		t = s + i;
		tl = j - i;
		glue = glue_next || token_is_punct(t, tl) || token_is_clitic(t, tl);
		glue_next = 0;
		if (tl == 1 && t[0] == '"') {
			/* a lone quote opens (glued to the next token) or closes
			 * (glued to the previous one), alternately */
			glue = in_quote;
			glue_next = !in_quote;
			in_quote = !in_quote;
		}
		if (tl == 1 && t[0] == '-' && o > 0 && is_alnum((unsigned char)s[o - 1])) {
			size_t k = j;

			while (k < n && is_space((unsigned char)s[k]))
				k++;
			if (k < n && is_alnum((unsigned char)s[k])) {
				glue = 1;
				glue_next = 1;
			}
		}
		if (tl == 1 && (t[0] == '(' || t[0] == '['))
			glue_next = 1;
		if (o > 0 && !glue)
			s[o++] = ' ';
		memmove(s + o, t, tl);
		o += tl;
		i = j;
	}
	s[o] = '\0';
}

static int add_turn(struct hark_meeting_text *m, size_t *cap, size_t max_turns, char *speaker,
		    char *text, char *err, size_t errlen)
{
	if (m->n_turns >= max_turns) {
		hark_errbuf_set(err, errlen, "%s: more than %zu turns", m->id, max_turns);
		free(speaker);
		free(text);
		return HARK_ERR_LIMIT;
	}
	if (m->n_turns == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct hark_meeting_turn *v = realloc(m->turns, nc * sizeof(*v));

		if (!v) {
			free(speaker);
			free(text);
			return HARK_ERR_NOMEM;
		}
		m->turns = v;
		*cap = nc;
	}
	m->turns[m->n_turns].speaker = speaker;
	m->turns[m->n_turns].text = text;
	m->turns[m->n_turns].start_s = -1;
	m->turns[m->n_turns].end_s = -1;
	m->n_turns++;
	return HARK_OK;
}

static int parse_qmsum(const char *data, size_t len, const struct hark_meeting_text_params *p,
		       struct hark_meeting_text *m, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *arr, *gq;
	size_t cap = 0;
	int rc = HARK_OK;

	root = json_loadb(data, len, 0, &jerr);
	if (!root) {
		hark_errbuf_set(err, errlen, "%s: invalid JSON at line %d column %d: %s", m->id,
				jerr.line, jerr.column, jerr.text);
		return HARK_ERR_FORMAT;
	}
	arr = json_is_object(root) ? json_object_get(root, "meeting_transcripts") : NULL;
	if (!json_is_array(arr)) {
		hark_errbuf_set(err, errlen,
				"%s: not a QMSum meeting (no \"meeting_transcripts\" array)", m->id);
		rc = HARK_ERR_FORMAT;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *e = json_array_get(arr, i);
		json_t *js = json_is_object(e) ? json_object_get(e, "speaker") : NULL;
		json_t *jc = json_is_object(e) ? json_object_get(e, "content") : NULL;
		char *spk = NULL, *txt;

		if (!json_is_string(js) || !json_is_string(jc)) {
			hark_errbuf_set(err, errlen,
					"%s: meeting_transcripts[%zu] needs string \"speaker\" and "
					"\"content\"",
					m->id, i);
			rc = HARK_ERR_FORMAT;
			goto out;
		}
		if (json_string_length(js) > 0) {
			spk = dup_trim(json_string_value(js), json_string_length(js));
			if (!spk) {
				rc = HARK_ERR_NOMEM;
				goto out;
			}
			if (!*spk) {
				free(spk);
				spk = NULL;
			}
		}
		txt = dup_trim(json_string_value(jc), json_string_length(jc));
		if (!txt) {
			free(spk);
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		if (p->detokenize)
			detokenize(txt);
		rc = add_turn(m, &cap, p->max_turns, spk, txt, err, errlen);
		if (rc)
			goto out;
	}
	gq = json_object_get(root, "general_query_list");
	if (p->load_summary && json_is_array(gq) && json_array_size(gq) > 0) {
		json_t *a = json_object_get(json_array_get(gq, 0), "answer");

		if (json_is_string(a)) {
			m->reference_summary = dup_trim(json_string_value(a), json_string_length(a));
			if (!m->reference_summary)
				rc = HARK_ERR_NOMEM;
		}
	}
out:
	json_decref(root);
	return rc;
}

/* Length of the "Label" of a "Label: text" line, or 0. */
static size_t label_len(const char *l, size_t n)
{
	size_t k, words = 1;

	if (n == 0 || !(((l[0] | 0x20) >= 'a' && (l[0] | 0x20) <= 'z') ||
			(unsigned char)l[0] >= 0x80))
		return 0;
	for (k = 0; k < n && k <= 64; k++) {
		char c = l[k];

		if (c == ':')
			break;
		if (c == '?' || c == '!' || c == '"' || c == ';' || c == '\t')
			return 0;
		if (c == ' ' && ++words > 8)
			return 0;
	}
	if (k == 0 || k > 64 || k >= n || l[k] != ':' || (k + 1 < n && l[k + 1] != ' '))
		return 0;
	return k;
}

static int parse_plain(const char *data, size_t len, const struct hark_meeting_text_params *p,
		       struct hark_meeting_text *m, char *err, size_t errlen)
{
	size_t i = 0, cap = 0, lines = 0, labelled = 0;
	int rc = HARK_OK;

	if (memchr(data, '\0', len)) {
		hark_errbuf_set(err, errlen, "%s: NUL bytes in a text transcript (binary file?)",
				m->id);
		return HARK_ERR_FORMAT;
	}
	/* pass 1: does every non-empty line carry a label? */
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - data) : len, a = i;

		while (a < e && is_space((unsigned char)data[a]))
			a++;
		if (a < e) {
			lines++;
			if (label_len(data + a, e - a))
				labelled++;
		}
		i = e + 1;
	}
	for (i = 0; i < len && rc == HARK_OK;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t e = nl ? (size_t)(nl - data) : len, a = i, k;
		char *spk = NULL, *txt;

		i = e + 1;
		while (a < e && is_space((unsigned char)data[a]))
			a++;
		if (a == e)
			continue;
		if (lines > 0 && labelled == lines && (k = label_len(data + a, e - a)) > 0) {
			spk = dup_trim(data + a, k);
			if (!spk)
				return HARK_ERR_NOMEM;
			a += k + 1;
		}
		txt = dup_trim(data + a, e - a);
		if (!txt) {
			free(spk);
			return HARK_ERR_NOMEM;
		}
		rc = add_turn(m, &cap, p->max_turns, spk, txt, err, errlen);
	}
	return rc;
}

static void set_id(struct hark_meeting_text *m, const char *id)
{
	static const char *const suffixes[] = {".transcript.txt", ".json", ".txt"};
	const char *b;
	size_t n;

	if (!id) {
		m->id[0] = '\0';
		return;
	}
	b = strrchr(id, '/');
	b = b ? b + 1 : id;
	n = strlen(b);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i]);

		if (n > sl && strcmp(b + n - sl, suffixes[i]) == 0) {
			n -= sl;
			break;
		}
	}
	if (n >= sizeof(m->id))
		n = sizeof(m->id) - 1;
	memcpy(m->id, b, n);
	m->id[n] = '\0';
}

int hark_meeting_text_parse(const char *data, size_t len, const char *id,
			    const struct hark_meeting_text_params *p,
			    struct hark_meeting_text *out, char *err, size_t errlen)
{
	struct hark_meeting_text_params defaults = hark_meeting_text_default_params();
	size_t a = 0;
	int fmt, rc;

	if (!out || (!data && len > 0)) {
		hark_errbuf_set(err, errlen, "NULL argument");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &defaults;
	set_id(out, id);
	if (p->format < HARK_MEETING_TEXT_AUTO || p->format > HARK_MEETING_TEXT_PLAIN) {
		hark_errbuf_set(err, errlen, "unknown transcript format %d", p->format);
		return HARK_ERR_INVALID_ARG;
	}
	if (len > p->max_bytes) {
		hark_errbuf_set(err, errlen, "%s: transcript over %zu bytes", out->id, p->max_bytes);
		return HARK_ERR_LIMIT;
	}
	while (a < len && is_space((unsigned char)data[a]))
		a++;
	if (a == len) {
		hark_errbuf_set(err, errlen, "%s: empty transcript", out->id);
		return HARK_ERR_EMPTY;
	}
	fmt = p->format;
	if (fmt == HARK_MEETING_TEXT_AUTO)
		fmt = data[a] == '{' ? HARK_MEETING_TEXT_QMSUM : HARK_MEETING_TEXT_PLAIN;
	out->format = fmt;
	rc = fmt == HARK_MEETING_TEXT_QMSUM ? parse_qmsum(data, len, p, out, err, errlen)
					    : parse_plain(data, len, p, out, err, errlen);
	if (rc == HARK_OK && out->n_turns == 0) {
		hark_errbuf_set(err, errlen, "%s: no turns", out->id);
		rc = HARK_ERR_EMPTY;
	}
	if (rc) {
		char keep[sizeof(out->id)];

		if (rc == HARK_ERR_NOMEM)
			hark_errbuf_set(err, errlen, "out of memory");
		memcpy(keep, out->id, sizeof(keep));
		hark_meeting_text_clear(out);
		memcpy(out->id, keep, sizeof(keep));
	}
	return rc;
}

static int errno_to_err(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return HARK_ERR_NOT_FOUND;
	case EACCES:
	case EPERM:
		return HARK_ERR_PERMISSION;
	case EISDIR:
		return HARK_ERR_IS_DIR;
	default:
		return HARK_ERR_IO;
	}
}

/* Reads a whole regular file (<= max bytes) into a heap buffer. */
static int slurp(const char *path, size_t max, char **out, size_t *len, char *err,
		 size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int fd, rc = HARK_OK;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		return errno_to_err(errno);
	}
	if (fstat(fd, &st) != 0) {
		rc = errno_to_err(errno);
		hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		hark_errbuf_set(err, errlen, "%s: is a directory", path);
		rc = HARK_ERR_IS_DIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > (uint64_t)max) {
		hark_errbuf_set(err, errlen, "%s: %s", path,
				S_ISREG(st.st_mode) ? "transcript too large" : "not a regular file");
		rc = S_ISREG(st.st_mode) ? HARK_ERR_LIMIT : HARK_ERR_IO;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			hark_errbuf_set(err, errlen, "%s: %s", path, strerror(errno));
			rc = HARK_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int hark_meeting_text_read(const char *path, const struct hark_meeting_text_params *p,
			   struct hark_meeting_text *out, char *err, size_t errlen)
{
	struct hark_meeting_text_params defaults = hark_meeting_text_default_params();
	char *data = NULL, *sum = NULL, *sp = NULL;
	size_t len = 0, pl, sl;
	int rc;

	if (!path || !out) {
		hark_errbuf_set(err, errlen, "NULL argument");
		return HARK_ERR_INVALID_ARG;
	}
	memset(out, 0, sizeof(*out));
	if (!p)
		p = &defaults;
	rc = slurp(path, p->max_bytes, &data, &len, err, errlen);
	if (rc == HARK_ERR_NOMEM)
		hark_errbuf_set(err, errlen, "out of memory");
	if (rc)
		goto out;
	rc = hark_meeting_text_parse(data, len, path, p, out, err, errlen);
	if (rc || !p->load_summary || out->reference_summary)
		goto out;
	/* AMI: <id>.transcript.txt -> <id>.abssumm.txt beside it (optional) */
	pl = strlen(path);
	sl = strlen(".transcript.txt");
	if (pl > sl && strcmp(path + pl - sl, ".transcript.txt") == 0) {
		sp = malloc(pl + 16);
		if (!sp) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		memcpy(sp, path, pl - sl);
		strcpy(sp + pl - sl, ".abssumm.txt");
		if (slurp(sp, p->max_bytes, &sum, &len, NULL, 0) == HARK_OK) {
			out->reference_summary = dup_trim(sum, len);
			if (!out->reference_summary)
				rc = HARK_ERR_NOMEM;
		}
	}
out:
	if (rc == HARK_ERR_NOMEM) {
		hark_errbuf_set(err, errlen, "out of memory");
		hark_meeting_text_clear(out);
	}
	free(sp);
	free(sum);
	free(data);
	return rc;
}
