/*
 * Streaming multipart/form-data parser behind multipart.h. The body is a
 * byte-at-a-time state machine over: the preamble (discarded), a delimiter
 * ("CRLF--boundary", where the CRLF is implied before the very first one),
 * the delimiter's tail ("--" for the close delimiter, else optional
 * whitespace and CRLF), a part's header block (accumulated up to 8 KiB,
 * then parsed into name, filename and content type), the part's content
 * and, after the close delimiter, the epilogue (discarded). Content is
 * scanned for the delimiter with memchr on CR; because a boundary can hold
 * no CR, a failed partial match can never overlap a new one, so the bytes
 * of a partial match are always exactly a prefix of the delimiter and need
 * no buffer of their own: when a match spans two feeds and then fails, the
 * held prefix is replayed from the delimiter string itself. Content pieces
 * are handed to the callback straight from the caller's buffer.
 */
#include "server/multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hark/hark.h"

#define MP_MAX_BOUNDARY 70
#define MP_MAX_HEADER 8192   /* bytes of one part's header block */
#define MP_MAX_PARTS 64

enum mp_state {
	MP_PREAMBLE,      /* looking for the first delimiter, discarding */
	MP_TAIL,          /* just after a delimiter */
	MP_TAIL_DASH,     /* after "--boundary-" */
	MP_TAIL_LWSP,     /* transport padding after the boundary */
	MP_TAIL_CR,       /* after the CR ending a boundary line */
	MP_HEADERS,       /* accumulating a header block */
	MP_DATA,          /* part content */
	MP_EPILOGUE,      /* after the close delimiter */
};

struct hark_multipart {
	struct hark_multipart_cb cb;
	void *user;
	enum mp_state state;
	int rc;                      /* sticky error, 0 if none */
	int closed;                  /* close delimiter seen */
	int in_part;                 /* part_begin called, part_end not yet */
	int parts;                   /* parts begun */
	char delim[4 + MP_MAX_BOUNDARY + 1]; /* "\r\n--" boundary */
	size_t dlen;
	size_t m;                    /* bytes of delim matched so far */
	char hdr[MP_MAX_HEADER + 1];
	size_t hlen;
	char strs[MP_MAX_HEADER + 3]; /* decoded name, filename, type */
	char err[160];
};

/* ----------------------------------------------------------- helpers ---- */

static int fail(struct hark_multipart *mp, int rc, const char *msg)
{
	if (!mp->rc) {
		mp->rc = rc;
		snprintf(mp->err, sizeof(mp->err), "%s", msg);
	}
	return mp->rc;
}

static int is_lws(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 2046 bchars (the space may not be last, checked separately). */
static int is_bchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("'()+_,-./:=? ", c) != NULL;
}

/* RFC 7230 tchar. */
static int is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static const char *skip_lws(const char *s, const char *end)
{
	while (s < end && is_lws(*s))
		s++;
	return s;
}

/*
 * Reads a parameter value at *ps (a quoted-string with backslash escapes,
 * or a run of characters up to ';' or whitespace) into out (cap bytes,
 * NUL-terminated). Returns the decoded length, or -1 if malformed or too
 * long.
 */
static long read_value(const char **ps, const char *end, char *out, size_t cap)
{
	const char *s = *ps;
	size_t n = 0;

	if (s < end && *s == '"') {
		s++;
		for (;;) {
			if (s >= end)
				return -1; /* unterminated */
			char c = *s++;

			if (c == '"')
				break;
			if (c == '\\') {
				if (s >= end)
					return -1;
				c = *s++;
			}
			if (n + 1 >= cap)
				return -1;
			out[n++] = c;
		}
	} else {
		while (s < end && *s != ';' && !is_lws(*s)) {
			if (*s == '"' || n + 1 >= cap)
				return -1;
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	*ps = s;
	return (long)n;
}

/*
 * Walks "; name=value" parameters in [s, end). For each one calls
 * fn(ctx, name, name_len, value, value_len); fn returns non-zero to fail.
 * Returns 0 or -1 on syntax error.
 */
typedef int (*param_fn)(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen);

static int walk_params(const char *s, const char *end, char *scratch, size_t cap,
		       param_fn fn, void *ctx)
{
	for (;;) {
		const char *name;
		size_t nlen;
		long vlen;

		s = skip_lws(s, end);
		if (s >= end)
			return 0;
		if (*s != ';')
			return -1;
		s = skip_lws(s + 1, end);
		if (s >= end)
			return 0; /* trailing ';' */
		name = s;
		while (s < end && is_tchar((unsigned char)*s))
			s++;
		nlen = (size_t)(s - name);
		if (!nlen)
			return -1;
		s = skip_lws(s, end);
		if (s >= end || *s != '=')
			return -1;
		s = skip_lws(s + 1, end);
		vlen = read_value(&s, end, scratch, cap);
		if (vlen < 0)
			return -1;
		if (fn(ctx, name, nlen, scratch, (size_t)vlen))
			return -1;
	}
}

static int name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && !strncasecmp(name, want, nlen);
}

/* ----------------------------------------------------- content type ---- */

struct ct_ctx {
	char boundary[MP_MAX_BOUNDARY + 1];
	int found, bad;
};

static int ct_param(void *p, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct ct_ctx *c = p;

	if (!name_is(name, nlen, "boundary"))
		return 0;
	if (c->found || vlen < 1 || vlen > MP_MAX_BOUNDARY) {
		c->bad = 1;
		return 1;
	}
	for (size_t i = 0; i < vlen; i++)
		if (!is_bchar((unsigned char)val[i])) {
			c->bad = 1;
			return 1;
		}
	if (val[vlen - 1] == ' ') {
		c->bad = 1;
		return 1;
	}
	memcpy(c->boundary, val, vlen);
	c->boundary[vlen] = '\0';
	c->found = 1;
	return 0;
}

int hark_multipart_new(const char *content_type, const struct hark_multipart_cb *cb,
		       void *user, struct hark_multipart **out)
{
	static const char want[] = "multipart/form-data";
	struct ct_ctx ctx;
	char scratch[1024];
	struct hark_multipart *mp;
	const char *s, *end, *t;

	if (!out)
		return HARK_ERR_INVALID_ARG;
	*out = NULL;
	if (!content_type || !cb)
		return HARK_ERR_INVALID_ARG;
	memset(&ctx, 0, sizeof(ctx));
	s = content_type;
	end = s + strlen(s);
	s = skip_lws(s, end);
	t = s;
	while (t < end && *t != ';' && !is_lws(*t))
		t++;
	if ((size_t)(t - s) != sizeof(want) - 1 || strncasecmp(s, want, sizeof(want) - 1))
		return HARK_ERR_FORMAT;
	if (walk_params(t, end, scratch, sizeof(scratch), ct_param, &ctx) != 0 ||
	    ctx.bad || !ctx.found)
		return HARK_ERR_FORMAT;

	mp = calloc(1, sizeof(*mp));
	if (!mp)
		return HARK_ERR_NOMEM;
	mp->cb = *cb;
	mp->user = user;
	mp->state = MP_PREAMBLE;
	mp->dlen = (size_t)snprintf(mp->delim, sizeof(mp->delim), "\r\n--%s", ctx.boundary);
	mp->m = 2; /* the body starts as if just after a CRLF */
	*out = mp;
	return HARK_OK;
}

/* ----------------------------------------------------- part headers ---- */

struct cd_ctx {
	char *name, *filename;   /* into the handle's strs area */
	char *next;              /* free space in strs */
	int bad;
};

static int cd_param(void *p, const char *name, size_t nlen, const char *val, size_t vlen)
{
	struct cd_ctx *c = p;
	char **slot = NULL;

	if (name_is(name, nlen, "name"))
		slot = &c->name;
	else if (name_is(name, nlen, "filename"))
		slot = &c->filename;
	else
		return 0; /* filename* and others are ignored (RFC 7578 4.2) */
	if (*slot || memchr(val, '\0', vlen)) {
		c->bad = 1; /* duplicate parameter: ambiguous */
		return 1;
	}
	memcpy(c->next, val, vlen);
	c->next[vlen] = '\0';
	*slot = c->next;
	c->next += vlen + 1;
	return 0;
}

/*
 * Parses the complete header block in mp->hdr (ending with CRLF CRLF, or a
 * lone CRLF for an empty block) and calls part_begin.
 */
static int parse_headers(struct hark_multipart *mp)
{
	char *p = mp->hdr, *end = mp->hdr + mp->hlen;
	char scratch[MP_MAX_HEADER + 1];
	struct cd_ctx cd;
	char *ctype = NULL;
	int have_cd = 0;

	memset(&cd, 0, sizeof(cd));
	cd.next = mp->strs;
	/* unfold: a CRLF followed by SP/HT continues the previous line */
	for (char *q = p; q + 2 < end; q++)
		if (q[0] == '\r' && q[1] == '\n' && is_lws(q[2]))
			q[0] = q[1] = ' ';
	while (p < end) {
		char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		char *colon, *v, *vend;

		if (!eol)
			return fail(mp, HARK_ERR_FORMAT, "part header line without CRLF");
		if (eol == p)
			break; /* the empty line ending the block */
		for (char *q = p; q < eol; q++) {
			unsigned char c = (unsigned char)*q;

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return fail(mp, HARK_ERR_FORMAT, "control character in part header");
		}
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return fail(mp, HARK_ERR_FORMAT, "malformed part header line");
		for (char *q = p; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return fail(mp, HARK_ERR_FORMAT, "malformed part header name");
		v = (char *)skip_lws(colon + 1, eol);
		vend = eol;
		while (vend > v && is_lws(vend[-1]))
			vend--;
		if (name_is(p, (size_t)(colon - p), "Content-Disposition")) {
			const char *t = v;

			if (have_cd)
				return fail(mp, HARK_ERR_FORMAT, "duplicate Content-Disposition");
			have_cd = 1;
			while (t < vend && is_tchar((unsigned char)*t))
				t++;
			if (!name_is(v, (size_t)(t - v), "form-data"))
				return fail(mp, HARK_ERR_FORMAT,
					    "part Content-Disposition is not form-data");
			if (walk_params(t, vend, scratch, sizeof(scratch), cd_param, &cd) != 0 ||
			    cd.bad)
				return fail(mp, HARK_ERR_FORMAT,
					    "malformed Content-Disposition parameters");
		} else if (name_is(p, (size_t)(colon - p), "Content-Type")) {
			size_t n = (size_t)(vend - v);

			if (ctype)
				return fail(mp, HARK_ERR_FORMAT, "duplicate part Content-Type");
			if (n) {
				/* stored after the names; strs has room for all */
				ctype = cd.next;
				memcpy(ctype, v, n);
				ctype[n] = '\0';
				cd.next += n + 1;
			}
		}
		p = eol + 2;
	}
	if (!have_cd || !cd.name)
		return fail(mp, HARK_ERR_FORMAT, "part without Content-Disposition name");
	if (mp->cb.part_begin &&
	    mp->cb.part_begin(mp->user, cd.name, cd.filename, ctype))
		return fail(mp, HARK_ERR_CANCELED, "canceled by callback");
	mp->in_part = 1;
	return 0;
}

/* ----------------------------------------------------------- feeding ---- */

static int emit(struct hark_multipart *mp, const void *p, size_t n)
{
	if (!n || mp->state != MP_DATA || !mp->cb.part_data)
		return 0;
	if (mp->cb.part_data(mp->user, p, n))
		return fail(mp, HARK_ERR_CANCELED, "canceled by callback");
	return 0;
}

/*
 * Scans [p + *pi, p + n) in the preamble or content state for the
 * delimiter, handing content to part_data. Returns 1 when the delimiter
 * completed (with *pi just past it), 0 when the input ran out, -1 when a
 * callback aborted (the error is in mp->rc).
 */
static int scan_delim(struct hark_multipart *mp, const unsigned char *p, size_t n, size_t *pi)
{
	size_t i = *pi;
	size_t run = i;          /* start of content not yet handed out */
	long mstart = mp->m ? -1 : 0; /* where the current match began; -1 = earlier feed */

	while (i < n) {
		if (mp->m == 0) {
			const unsigned char *cr = memchr(p + i, '\r', n - i);

			if (!cr) {
				i = n;
				break;
			}
			i = (size_t)(cr - p);
			mstart = (long)i;
			mp->m = 1;
			i++;
			continue;
		}
		if (p[i] == (unsigned char)mp->delim[mp->m]) {
			mp->m++;
			i++;
			if (mp->m == mp->dlen) {
				if (mstart >= 0 && emit(mp, p + run, (size_t)mstart - run))
					return -1;
				mp->m = 0;
				*pi = i;
				return 1;
			}
			continue;
		}
		/* mismatch: the held prefix is content; p[i] is re-examined */
		if (mstart < 0) {
			if (emit(mp, mp->delim, mp->m))
				return -1;
			run = i;
		}
		mp->m = 0;
	}
	if (mp->m == 0) {
		if (emit(mp, p + run, n - run))
			return -1;
	} else if (mstart >= 0) {
		if (emit(mp, p + run, (size_t)mstart - run))
			return -1;
	}
	*pi = n;
	return 0;
}

int hark_multipart_feed(struct hark_multipart *mp, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0;

	if (!mp)
		return HARK_ERR_INVALID_ARG;
	if (mp->rc)
		return mp->rc;
	if (n && !p)
		return HARK_ERR_INVALID_ARG;
	while (i < n) {
		unsigned char c;

		switch (mp->state) {
		case MP_PREAMBLE:
		case MP_DATA: {
			int r = scan_delim(mp, p, n, &i);

			if (r < 0)
				return mp->rc;
			if (r == 0)
				break;
			if (mp->in_part) {
				mp->in_part = 0;
				if (mp->cb.part_end && mp->cb.part_end(mp->user))
					return fail(mp, HARK_ERR_CANCELED, "canceled by callback");
			}
			mp->state = MP_TAIL;
			break;
		}
		case MP_TAIL:
			c = p[i++];
			if (c == '-')
				mp->state = MP_TAIL_DASH;
			else if (c == ' ' || c == '\t')
				mp->state = MP_TAIL_LWSP;
			else if (c == '\r')
				mp->state = MP_TAIL_CR;
			else
				return fail(mp, HARK_ERR_FORMAT,
					    "boundary followed by unexpected characters");
			break;
		case MP_TAIL_DASH:
			c = p[i++];
			if (c != '-')
				return fail(mp, HARK_ERR_FORMAT,
					    "boundary followed by unexpected characters");
			mp->state = MP_EPILOGUE;
			mp->closed = 1;
			break;
		case MP_TAIL_LWSP:
			c = p[i++];
			if (c == '\r')
				mp->state = MP_TAIL_CR;
			else if (c != ' ' && c != '\t')
				return fail(mp, HARK_ERR_FORMAT,
					    "boundary followed by unexpected characters");
			break;
		case MP_TAIL_CR:
			c = p[i++];
			if (c != '\n')
				return fail(mp, HARK_ERR_FORMAT, "boundary line without CRLF");
			if (mp->parts >= MP_MAX_PARTS)
				return fail(mp, HARK_ERR_LIMIT, "too many parts (more than 64)");
			mp->parts++;
			mp->hlen = 0;
			mp->state = MP_HEADERS;
			break;
		case MP_HEADERS:
			if (mp->hlen >= MP_MAX_HEADER)
				return fail(mp, HARK_ERR_LIMIT, "part header block over 8 KiB");
			mp->hdr[mp->hlen++] = (char)p[i++];
			if ((mp->hlen == 2 && !memcmp(mp->hdr, "\r\n", 2)) ||
			    (mp->hlen >= 4 && !memcmp(mp->hdr + mp->hlen - 4, "\r\n\r\n", 4))) {
				mp->hdr[mp->hlen] = '\0';
				if (parse_headers(mp))
					return mp->rc;
				mp->state = MP_DATA;
				mp->m = 0;
			}
			break;
		case MP_EPILOGUE:
			i = n; /* discarded */
			break;
		}
	}
	return mp->rc;
}

int hark_multipart_finish(struct hark_multipart *mp)
{
	if (!mp)
		return HARK_ERR_INVALID_ARG;
	if (mp->rc)
		return mp->rc;
	if (!mp->closed)
		return fail(mp, HARK_ERR_FORMAT, mp->parts ? "missing closing boundary"
				: "no multipart boundary found in body");
	return HARK_OK;
}

const char *hark_multipart_error(const struct hark_multipart *mp)
{
	return mp ? mp->err : "";
}

void hark_multipart_free(struct hark_multipart *mp)
{
	free(mp);
}
