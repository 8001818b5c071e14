/*
 * Unit tests for the streaming multipart/form-data parser
 * (src/server/multipart). The main body is produced by libcurl itself: a
 * one-connection HTTP listener on 127.0.0.1 captures what curl's MIME API
 * sends (a binary file part full of CR, LF, "--" and near-boundary
 * sequences, text fields, repeated field names, a file name with a quote).
 * That body is parsed whole, byte by byte and in many random splits; every
 * way must give the same parts, equal to what was sent, and content must be
 * handed out with no more than a delimiter's worth held back. Hand-written
 * bodies cover quoted boundaries, preamble/epilogue, transport padding,
 * folded headers, and every error: missing close delimiter, malformed
 * headers, the 8 KiB header cap, the 64-part cap, bad Content-Type values
 * and callbacks that abort.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hark/hark.h"
#include "server/multipart.h"

/* ------------------------------------------------------ event recorder -- */

#define MAX_PARTS_REC 80

struct rec_part {
	char name[256];
	char filename[256];
	int has_filename;
	char ctype[128];
	int has_ctype;
	unsigned char *data;
	size_t len, cap;
	int ended;
};

struct rec {
	struct rec_part parts[MAX_PARTS_REC];
	int n;
	int begin_calls, end_calls;
	size_t data_calls;
	int empty_data_calls;
	int order_errors;      /* data or end outside a part */
	int open;
	/* abort controls */
	int abort_begin_at;    /* part index whose begin returns 1; -1 none */
	long abort_data_after; /* abort once this many bytes seen; -1 none */
	int abort_end;
	size_t total_data;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	r->abort_begin_at = -1;
	r->abort_data_after = -1;
}

static void rec_free(struct rec *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->parts[i].data);
}

static int cb_begin(void *u, const char *name, const char *filename, const char *ctype)
{
	struct rec *r = u;
	struct rec_part *p;

	r->begin_calls++;
	if (r->open)
		r->order_errors++;
	if (r->n >= MAX_PARTS_REC)
		return 1;
	p = &r->parts[r->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "(null)");
	if (filename) {
		p->has_filename = 1;
		snprintf(p->filename, sizeof(p->filename), "%s", filename);
	}
	if (ctype) {
		p->has_ctype = 1;
		snprintf(p->ctype, sizeof(p->ctype), "%s", ctype);
	}
	r->open = 1;
	return r->abort_begin_at == r->n - 1;
}

static int cb_data(void *u, const void *d, size_t n)
{
	struct rec *r = u;
	struct rec_part *p;

	r->data_calls++;
	if (n == 0)
		r->empty_data_calls++;
	if (!r->open || r->n == 0) {
		r->order_errors++;
		return 0;
	}
	p = &r->parts[r->n - 1];
	if (p->len + n > p->cap) {
		size_t nc = (p->len + n) * 2 + 64;
		unsigned char *nd = realloc(p->data, nc);

		if (!nd)
			return 1;
		p->data = nd;
		p->cap = nc;
	}
	memcpy(p->data + p->len, d, n);
	p->len += n;
	r->total_data += n;
	return r->abort_data_after >= 0 && r->total_data >= (size_t)r->abort_data_after;
}

static int cb_end(void *u)
{
	struct rec *r = u;

	r->end_calls++;
	if (!r->open)
		r->order_errors++;
	else
		r->parts[r->n - 1].ended = 1;
	r->open = 0;
	return r->abort_end;
}

static const struct hark_multipart_cb CB = { cb_begin, cb_data, cb_end };

static void assert_same_recs(const struct rec *a, const struct rec *b)
{
	assert_int_equal(a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		const struct rec_part *x = &a->parts[i], *y = &b->parts[i];

		assert_string_equal(x->name, y->name);
		assert_int_equal(x->has_filename, y->has_filename);
		assert_string_equal(x->filename, y->filename);
		assert_int_equal(x->has_ctype, y->has_ctype);
		assert_string_equal(x->ctype, y->ctype);
		assert_int_equal(x->len, y->len);
		if (x->len)
			assert_memory_equal(x->data, y->data, x->len);
		assert_int_equal(x->ended, y->ended);
	}
}

/* ---------------------------------------------------------- feeding ---- */

static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

enum split_mode { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

/*
 * Parses body with the given content type, fed according to mode; returns
 * the first non-zero code of feed or finish (finish is called only if every
 * feed succeeded).
 */
static int parse_body(const char *ctype, const unsigned char *body, size_t len,
		      enum split_mode mode, uint64_t seed, struct rec *r, char *msg, size_t msglen)
{
	struct hark_multipart *mp = NULL;
	int rc;
	size_t off = 0;

	rc = hark_multipart_new(ctype, &CB, r, &mp);
	if (rc)
		return rc;
	rng_state = seed ? seed : 88172645463325252ull;
	while (off < len) {
		size_t n;

		if (mode == SPLIT_WHOLE)
			n = len;
		else if (mode == SPLIT_BYTES)
			n = 1;
		else if (rng() % 7 == 0)
			n = 0; /* empty feeds are legal */
		else
			n = 1 + rng() % (rng() % 3 == 0 ? 3 : 200);
		if (n > len - off)
			n = len - off;
		rc = hark_multipart_feed(mp, body + off, n);
		if (rc)
			break;
		off += n;
	}
	if (!rc)
		rc = hark_multipart_finish(mp);
	if (msg)
		snprintf(msg, msglen, "%s", hark_multipart_error(mp));
	if (rc) {
		/* errors are sticky */
		assert_int_equal(hark_multipart_feed(mp, "x", 1), rc);
		assert_int_equal(hark_multipart_finish(mp), rc);
		assert_true(hark_multipart_error(mp)[0] != '\0');
	}
	hark_multipart_free(mp);
	return rc;
}

static int parse_str(const char *ctype, const char *body, struct rec *r)
{
	return parse_body(ctype, (const unsigned char *)body, strlen(body), SPLIT_WHOLE, 0, r,
			  NULL, 0);
}

/* Parses body in all three ways, asserting identical results; returns rc. */
static int parse_all_ways(const char *ctype, const unsigned char *body, size_t len,
			  struct rec *out)
{
	struct rec *other = malloc(sizeof(*other));
	int rc;

	assert_non_null(other);
	rec_init(out);
	rc = parse_body(ctype, body, len, SPLIT_WHOLE, 0, out, NULL, 0);
	rec_init(other);
	assert_int_equal(parse_body(ctype, body, len, SPLIT_BYTES, 0, other, NULL, 0), rc);
	assert_same_recs(out, other);
	assert_int_equal(other->empty_data_calls, 0);
	assert_int_equal(other->order_errors, 0);
	rec_free(other);
	for (uint64_t seed = 1; seed <= 40; seed++) {
		rec_init(other);
		assert_int_equal(parse_body(ctype, body, len, SPLIT_RANDOM, seed * 7919, other,
					    NULL, 0), rc);
		assert_same_recs(out, other);
		assert_int_equal(other->empty_data_calls, 0);
		rec_free(other);
	}
	free(other);
	return rc;
}

/* ------------------------------------------- capture what curl sends ---- */

struct capture {
	int lfd;
	char ctype[512];
	unsigned char *body;
	size_t len;
	int ok;
};

static void *capture_main(void *p)
{
	struct capture *c = p;
	int fd = accept(c->lfd, NULL, NULL);
	char *buf = NULL;
	size_t len = 0, cap = 0, hdr_end = 0, clen = 0;
	int have_clen = 0;

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t got;

		if (len + 65536 > cap) {
			cap = cap * 2 + 65536;
			buf = realloc(buf, cap + 1);
			if (!buf)
				goto out;
		}
		got = recv(fd, buf + len, cap - len, 0);
		if (got <= 0)
			goto out;
		len += (size_t)got;
		buf[len] = '\0';
		if (!hdr_end) {
			char *e = strstr(buf, "\r\n\r\n");

			if (!e)
				continue;
			hdr_end = (size_t)(e - buf) + 4;
			for (char *line = strstr(buf, "\r\n") + 2; line < e;
			     line = strstr(line, "\r\n") + 2) {
				if (!strncasecmp(line, "Content-Length:", 15)) {
					clen = strtoul(line + 15, NULL, 10);
					have_clen = 1;
				} else if (!strncasecmp(line, "Content-Type:", 13)) {
					const char *v = line + 13;
					size_t n = strcspn(v, "\r");

					while (*v == ' ')
						v++, n--;
					snprintf(c->ctype, sizeof(c->ctype), "%.*s", (int)n, v);
				}
			}
			if (!have_clen)
				goto out; /* chunked: not expected for in-memory parts */
		}
		if (hdr_end && len >= hdr_end + clen)
			break;
	}
	c->body = malloc(clen ? clen : 1);
	if (c->body) {
		memcpy(c->body, buf + hdr_end, clen);
		c->len = clen;
		c->ok = 1;
	}
	{
		static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
					   "Connection: close\r\n\r\n";
		ssize_t w = send(fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL);

		(void)w;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

/*
 * POSTs mime with easy handle h to a local listener; fills c on success.
 * (libcurl 7.88 rewinds a reused mime only on the same easy handle.)
 */
static int curl_capture(CURL *h, curl_mime *mime, struct capture *c)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	pthread_t th;
	struct curl_slist *hdrs = NULL;
	char url[64];
	CURLcode cc;

	memset(c, 0, sizeof(*c));
	c->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->lfd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(c->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(c->lfd, 1) ||
	    getsockname(c->lfd, (struct sockaddr *)&sa, &sl)) {
		close(c->lfd);
		return -1;
	}
	if (pthread_create(&th, NULL, capture_main, c)) {
		close(c->lfd);
		return -1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/jobs", ntohs(sa.sin_port));
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	cc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	pthread_join(th, NULL);
	close(c->lfd);
	return cc == CURLE_OK && c->ok ? 0 : -1;
}

/* The boundary from "multipart/form-data; boundary=XYZ". */
static void boundary_of(const char *ctype, char *out, size_t n)
{
	const char *b = strstr(ctype, "boundary=");

	assert_non_null(b);
	snprintf(out, n, "%s", b + 9);
}

/* ------------------------------------------------------- curl bodies ---- */

#define FILE_LEN 300000

/*
 * Binary content with every troublesome sequence relative to boundary b:
 * lone CR/LF, CRLF, "--", "\r\n--", the delimiter minus its last byte, the
 * delimiter with its last byte changed, "--b" without CRLF, runs of CR, and
 * a CR as the very last byte.
 */
static unsigned char *make_tricky(const char *b, size_t *len_out)
{
	unsigned char *d = malloc(FILE_LEN);
	size_t n = 0, bl = strlen(b);
	char seq[6][400];
	int ns = 0;

	assert_non_null(d);
	snprintf(seq[ns++], sizeof(seq[0]), "\r\n--%.*s", (int)(bl - 1), b);
	snprintf(seq[ns++], sizeof(seq[0]), "\r\n--%.*s%c", (int)(bl - 1), b,
		 b[bl - 1] == 'x' ? 'y' : 'x');
	snprintf(seq[ns++], sizeof(seq[0]), "--%s\r\n", b);
	snprintf(seq[ns++], sizeof(seq[0]), "\r\r\n-\r\n--\r\n-");
	snprintf(seq[ns++], sizeof(seq[0]), "\r\n--%.*s\r\n--%s-", (int)(bl / 2), b, b + 1);
	snprintf(seq[ns++], sizeof(seq[0]), "\n\r\r\r--");
	/* starts with a near-delimiter */
	memcpy(d, seq[0], strlen(seq[0]));
	n = strlen(seq[0]);
	rng_state = 0x9e3779b97f4a7c15ull;
	while (n < FILE_LEN - 200) {
		uint64_t r = rng();

		if (r % 50 == 0) {
			const char *s = seq[(r >> 8) % (uint64_t)ns];

			memcpy(d + n, s, strlen(s));
			n += strlen(s);
		} else if (r % 11 == 0) {
			d[n++] = "\r\n-"[(r >> 16) % 3];
		} else {
			d[n++] = (unsigned char)(r >> 24);
		}
	}
	d[n++] = '\r'; /* ends in CR, right before the real delimiter's CRLF */
	/* a sender guarantees the delimiter is absent from content: break any
	 * that the random bytes completed (e.g. after a near-delimiter) */
	{
		char delim[256];
		size_t dl = (size_t)snprintf(delim, sizeof(delim), "\r\n--%s", b);
		unsigned char *hit;

		while ((hit = memmem(d, n, delim, dl)) != NULL)
			hit[dl - 1] ^= 0x20;
	}
	*len_out = n;
	return d;
}

static void test_curl_body(void **state)
{
	CURL *easy;
	curl_mime *mime;
	curl_mimepart *filepart;
	struct capture c1, c2;
	char boundary[128];
	unsigned char *data;
	size_t dlen;
	struct rec *r = malloc(sizeof(*r));
	static const char json[] = "{\"language\":\"en\",\"formats\":[\"json\",\"srt\"]}";

	(void)state;
	assert_non_null(r);
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	easy = curl_easy_init();
	assert_non_null(easy);
	mime = curl_mime_init(easy);
	assert_non_null(mime);
	filepart = curl_mime_addpart(mime);
	curl_mime_name(filepart, "file");
	curl_mime_filename(filepart, "talk \"final\" v2.bin");
	curl_mime_type(filepart, "application/octet-stream");
	curl_mime_data(filepart, "x", 1);
	{
		curl_mimepart *p = curl_mime_addpart(mime);

		curl_mime_name(p, "options");
		curl_mime_data(p, json, CURL_ZERO_TERMINATED);
		p = curl_mime_addpart(mime);
		curl_mime_name(p, "timestamp_granularities[]");
		curl_mime_data(p, "word", CURL_ZERO_TERMINATED);
		p = curl_mime_addpart(mime);
		curl_mime_name(p, "timestamp_granularities[]");
		curl_mime_data(p, "segment", CURL_ZERO_TERMINATED);
		p = curl_mime_addpart(mime);
		curl_mime_name(p, "empty");
		curl_mime_data(p, "", 0);
		p = curl_mime_addpart(mime);
		curl_mime_name(p, "note");
		curl_mime_type(p, "text/plain; charset=utf-8");
		curl_mime_data(p, "line one\r\nline two\r\n--\r\n", CURL_ZERO_TERMINATED);
	}
	/* first request only learns the boundary this mime handle uses */
	if (curl_capture(easy, mime, &c1) != 0) {
		curl_mime_free(mime);
		curl_easy_cleanup(easy);
		free(r);
		skip();
	}
	boundary_of(c1.ctype, boundary, sizeof(boundary));
	free(c1.body);
	data = make_tricky(boundary, &dlen);
	curl_mime_data(filepart, (const char *)data, dlen);
	assert_int_equal(curl_capture(easy, mime, &c2), 0);
	curl_easy_cleanup(easy);
	curl_mime_free(mime);
	assert_string_equal(c1.ctype, c2.ctype);
	/* the body really contains the near-boundary sequences */
	assert_non_null(memmem(c2.body, c2.len, data, 64));

	assert_int_equal(parse_all_ways(c2.ctype, c2.body, c2.len, r), HARK_OK);
	assert_int_equal(r->n, 6);
	assert_int_equal(r->begin_calls, 6);
	assert_int_equal(r->end_calls, 6);
	assert_int_equal(r->order_errors, 0);
	assert_int_equal(r->empty_data_calls, 0);

	assert_string_equal(r->parts[0].name, "file");
	assert_true(r->parts[0].has_filename);
	/* curl (like browsers, per HTML5) sends '"' as %22; the parser hands
	 * the name over verbatim and does not percent-decode */
	assert_string_equal(r->parts[0].filename, "talk %22final%22 v2.bin");
	assert_string_equal(r->parts[0].ctype, "application/octet-stream");
	assert_int_equal(r->parts[0].len, dlen);
	assert_memory_equal(r->parts[0].data, data, dlen);

	assert_string_equal(r->parts[1].name, "options");
	assert_false(r->parts[1].has_filename);
	assert_int_equal(r->parts[1].len, strlen(json));
	assert_memory_equal(r->parts[1].data, json, strlen(json));

	assert_string_equal(r->parts[2].name, "timestamp_granularities[]");
	assert_int_equal(r->parts[2].len, 4);
	assert_memory_equal(r->parts[2].data, "word", 4);
	assert_string_equal(r->parts[3].name, "timestamp_granularities[]");
	assert_int_equal(r->parts[3].len, 7);
	assert_memory_equal(r->parts[3].data, "segment", 7);

	assert_string_equal(r->parts[4].name, "empty");
	assert_int_equal(r->parts[4].len, 0);
	assert_true(r->parts[4].ended);

	assert_string_equal(r->parts[5].name, "note");
	assert_true(r->parts[5].has_ctype);
	assert_string_equal(r->parts[5].ctype, "text/plain; charset=utf-8");
	assert_int_equal(r->parts[5].len, strlen("line one\r\nline two\r\n--\r\n"));
	assert_memory_equal(r->parts[5].data, "line one\r\nline two\r\n--\r\n", r->parts[5].len);
	rec_free(r);

	/*
	 * Lookahead bound: fed byte by byte, after each byte of the file part
	 * the content handed out lags the content fed by at most the
	 * delimiter's length (CRLF "--" boundary).
	 */
	{
		const unsigned char *start = memmem(c2.body, c2.len, data, dlen);
		size_t off0, lag_max = 0;
		struct hark_multipart *mp = NULL;

		assert_non_null(start);
		off0 = (size_t)(start - c2.body);
		rec_init(r);
		assert_int_equal(hark_multipart_new(c2.ctype, &CB, r, &mp), HARK_OK);
		for (size_t i = 0; i < c2.len; i++) {
			assert_int_equal(hark_multipart_feed(mp, c2.body + i, 1), HARK_OK);
			if (i >= off0 && i < off0 + dlen) {
				size_t fed = i + 1 - off0, lag = fed - r->parts[0].len;

				assert_true(r->n == 1);
				assert_true(lag <= 4 + strlen(boundary));
				if (lag > lag_max)
					lag_max = lag;
			}
		}
		assert_int_equal(hark_multipart_finish(mp), HARK_OK);
		hark_multipart_free(mp);
		/* the near-delimiters really were held back (test not vacuous) */
		assert_int_equal(lag_max, 3 + strlen(boundary));
		rec_free(r);
	}
	free(c2.body);
	free(data);
	free(r);
	curl_global_cleanup();
}

/* --------------------------------------------------- hand-made bodies ---- */

static void test_quoted_boundary_preamble_epilogue(void **state)
{
	/* quoted boundary with a space and specials; preamble; padding after
	 * the boundary; folded header; epilogue with a fake delimiter */
	const char *ct = "Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b'()+_,-./:=?z\"";
	const char *body =
		"This is the preamble. --a b'()+_,-./:=?z is not at a line start\r\n"
		"--a b'()+_,-./:=?z \t \r\n"
		"content-disposition: form-data;\r\n"
		"\tname=\"model\"\r\n"
		"X-Ignored: yes\r\n"
		"\r\n"
		"base.en\r\n"
		"--a b'()+_,-./:=?z\r\n"
		"Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\n"
		"Content-Type:   audio/wav   \r\n"
		"\r\n"
		"\r\n"
		"\r\n"
		"--a b'()+_,-./:=?z--  \r\n"
		"epilogue\r\n--a b'()+_,-./:=?z\r\ngarbage";
	struct rec *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	assert_int_equal(parse_all_ways(ct, (const unsigned char *)body, strlen(body), r), HARK_OK);
	assert_int_equal(r->n, 2);
	assert_string_equal(r->parts[0].name, "model");
	assert_false(r->parts[0].has_filename);
	assert_false(r->parts[0].has_ctype);
	assert_int_equal(r->parts[0].len, 7);
	assert_memory_equal(r->parts[0].data, "base.en", 7);
	assert_string_equal(r->parts[1].name, "file");
	assert_true(r->parts[1].has_filename);
	assert_string_equal(r->parts[1].filename, "");
	assert_string_equal(r->parts[1].ctype, "audio/wav");
	/* content is exactly one CRLF (the delimiter's CRLF is not content) */
	assert_int_equal(r->parts[1].len, 2);
	assert_memory_equal(r->parts[1].data, "\r\n", 2);
	rec_free(r);
	free(r);
}

static void test_escapes_and_params(void **state)
{
	const char *ct = "multipart/form-data; boundary=XyZ";
	const char *body =
		"--XyZ\r\n"
		"Content-Disposition: form-data; filename=\"C:\\\\dir\\\\a\\\"b.wav\"; "
		"name=file; filename*=UTF-8''ignored.wav\r\n"
		"\r\n"
		"RIFF\r\n"
		"--XyZ--";
	struct rec r;

	(void)state;
	rec_init(&r);
	assert_int_equal(parse_str(ct, body, &r), HARK_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.parts[0].name, "file");
	assert_string_equal(r.parts[0].filename, "C:\\dir\\a\"b.wav");
	assert_int_equal(r.parts[0].len, 4);
	rec_free(&r);
}

static void test_zero_parts(void **state)
{
	struct rec r;

	(void)state;
	rec_init(&r);
	assert_int_equal(parse_str("multipart/form-data; boundary=b", "--b--\r\n", &r), HARK_OK);
	assert_int_equal(r.n, 0);
}

static void test_content_type_values(void **state)
{
	struct hark_multipart *mp = NULL;
	char b70[80], ct[200];
	static const char *const bad[] = {
		"multipart/form-data",
		"multipart/form-data;",
		"multipart/form-data; boundary=",
		"multipart/form-data; boundary=\"\"",
		"multipart/form-data; boundary=\"unterminated",
		"multipart/form-data; boundary=a@b",
		"multipart/form-data; boundary=\"trailing \"",
		"multipart/form-data; boundary=a; boundary=b",
		"multipart/form-data boundary=abc",
		"multipart/mixed; boundary=abc",
		"application/json; boundary=abc",
		"multipart/form-data; name; boundary=abc",
		"",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mp = (struct hark_multipart *)&mp; /* must be reset to NULL */
		if (hark_multipart_new(bad[i], &CB, NULL, &mp) != HARK_ERR_FORMAT)
			fail_msg("accepted bad Content-Type \"%s\"", bad[i]);
		assert_null(mp);
	}
	memset(b70, 'b', 70);
	b70[70] = '\0';
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%s", b70);
	assert_int_equal(hark_multipart_new(ct, &CB, NULL, &mp), HARK_OK);
	hark_multipart_free(mp);
	snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%sb", b70);
	assert_int_equal(hark_multipart_new(ct, &CB, NULL, &mp), HARK_ERR_FORMAT);
	assert_int_equal(hark_multipart_new(NULL, &CB, NULL, &mp), HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_multipart_new("multipart/form-data; boundary=a", NULL, NULL, &mp),
			 HARK_ERR_INVALID_ARG);
	assert_int_equal(hark_multipart_new(" multipart/form-data ; boundary=a ; x=\"y;z\"",
					    &CB, NULL, &mp), HARK_OK);
	hark_multipart_free(mp);
}

/* Every split way must report the same error code. */
static void expect_error(const char *ct, const char *body, size_t len, int want)
{
	struct rec *r = malloc(sizeof(*r));
	char msg[200];

	assert_non_null(r);
	assert_int_equal(parse_all_ways(ct, (const unsigned char *)body, len, r), want);
	rec_free(r);
	rec_init(r);
	assert_int_equal(parse_body(ct, (const unsigned char *)body, len, SPLIT_WHOLE, 0, r, msg,
				    sizeof(msg)), want);
	assert_true(msg[0] != '\0');
	rec_free(r);
	free(r);
}

static void test_malformed(void **state)
{
	const char *ct = "multipart/form-data; boundary=BB";
	static const char *const bodies[] = {
		/* missing closing boundary */
		"--BB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue",
		"--BB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--BB\r\n",
		"--BB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--BB-",
		/* body without any delimiter / empty */
		"just some text, no multipart at all\r\n",
		"",
		/* garbage after a delimiter */
		"--BBx\r\n",
		"--BB\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--BB-x",
		"--BB\rContent-Disposition: form-data; name=a\r\n\r\nv\r\n--BB--",
		/* headers */
		"--BB\r\nContent-Disposition: form-data; name=\"unterminated\r\n\r\nv\r\n--BB--",
		"--BB\r\nno colon here\r\n\r\nv\r\n--BB--",
		"--BB\r\n: empty name\r\n\r\nv\r\n--BB--",
		"--BB\r\nBad Name: x\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Type: text/plain\r\n\r\nv\r\n--BB--",
		"--BB\r\n\r\nno headers\r\n--BB--",
		"--BB\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data; name=a\r\n"
		"Content-Disposition: form-data; name=b\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data; name=a\nX: y\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data; name=a junk\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data; =a\r\n\r\nv\r\n--BB--",
		"--BB\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--BB",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		expect_error(ct, bodies[i], strlen(bodies[i]), HARK_ERR_FORMAT);
	/* NUL in a header */
	{
		static const char b[] = "--BB\r\nContent-Disposition: form-data; name=\"a\0b\"\r\n"
					"\r\nv\r\n--BB--";

		expect_error(ct, b, sizeof(b) - 1, HARK_ERR_FORMAT);
	}
}

static char *make_header_body(size_t block_len)
{
	/* one part whose header block (through the blank line) is block_len */
	const char *cd = "Content-Disposition: form-data; name=\"f\"\r\nX-Pad: ";
	size_t pre = strlen("--BB\r\n"), fixed = strlen(cd) + 4; /* "\r\n\r\n" */
	char *b = malloc(block_len + 64);
	size_t n;

	assert_non_null(b);
	assert_true(block_len > fixed);
	n = (size_t)sprintf(b, "--BB\r\n%s", cd);
	memset(b + n, 'p', block_len - fixed);
	n += block_len - fixed;
	n += (size_t)sprintf(b + n, "\r\n\r\nv\r\n--BB--\r\n");
	assert_int_equal(n, pre + block_len + strlen("v\r\n--BB--\r\n"));
	return b;
}

static void test_header_cap(void **state)
{
	const char *ct = "multipart/form-data; boundary=BB";
	char *b;
	struct rec r;

	(void)state;
	b = make_header_body(8192);
	rec_init(&r);
	assert_int_equal(parse_str(ct, b, &r), HARK_OK);
	assert_int_equal(r.n, 1);
	rec_free(&r);
	free(b);
	b = make_header_body(8193);
	expect_error(ct, b, strlen(b), HARK_ERR_LIMIT);
	free(b);
	/* a header block that never ends */
	b = malloc(100000);
	assert_non_null(b);
	strcpy(b, "--BB\r\nContent-Disposition: form-data; name=a\r\n");
	memset(b + strlen(b), 'h', 50000);
	b[strlen("--BB\r\nContent-Disposition: form-data; name=a\r\n") + 50000] = '\0';
	rec_init(&r);
	assert_int_equal(parse_str(ct, b, &r), HARK_ERR_LIMIT);
	assert_int_equal(r.n, 0);
	free(b);
}

static char *make_parts_body(int n)
{
	size_t cap = (size_t)n * 100 + 100, len = 0;
	char *b = malloc(cap);

	assert_non_null(b);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(b + len, cap - len,
					"--BB\r\nContent-Disposition: form-data; name=\"p%d\"\r\n"
					"\r\n%d\r\n", i, i);
	snprintf(b + len, cap - len, "--BB--\r\n");
	return b;
}

static void test_part_cap(void **state)
{
	const char *ct = "multipart/form-data; boundary=BB";
	char *b = make_parts_body(64);
	struct rec *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	rec_init(r);
	assert_int_equal(parse_str(ct, b, r), HARK_OK);
	assert_int_equal(r->n, 64);
	assert_string_equal(r->parts[63].name, "p63");
	assert_memory_equal(r->parts[63].data, "63", 2);
	rec_free(r);
	free(b);
	b = make_parts_body(65);
	rec_init(r);
	assert_int_equal(parse_str(ct, b, r), HARK_ERR_LIMIT);
	assert_int_equal(r->n, 64); /* the 65th never began */
	rec_free(r);
	expect_error(ct, b, strlen(b), HARK_ERR_LIMIT);
	free(b);
	free(r);
}

static void test_callback_abort(void **state)
{
	const char *ct = "multipart/form-data; boundary=BB";
	const char *body =
		"--BB\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n0123456789\r\n"
		"--BB\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nxyz\r\n--BB--\r\n";
	struct rec r;

	(void)state;
	rec_init(&r);
	r.abort_begin_at = 1;
	assert_int_equal(parse_str(ct, body, &r), HARK_ERR_CANCELED);
	assert_int_equal(r.begin_calls, 2);
	assert_int_equal(r.data_calls, 1); /* nothing of part b */
	rec_free(&r);

	rec_init(&r);
	r.abort_data_after = 3;
	assert_int_equal(parse_body(ct, (const unsigned char *)body, strlen(body), SPLIT_BYTES, 0,
				    &r, NULL, 0), HARK_ERR_CANCELED);
	assert_int_equal(r.total_data, 3);
	assert_int_equal(r.end_calls, 0);
	rec_free(&r);

	rec_init(&r);
	r.abort_end = 1;
	assert_int_equal(parse_str(ct, body, &r), HARK_ERR_CANCELED);
	assert_int_equal(r.end_calls, 1);
	assert_int_equal(r.begin_calls, 1);
	rec_free(&r);
}

static void test_null_callbacks(void **state)
{
	struct hark_multipart_cb none = { NULL, NULL, NULL };
	struct hark_multipart *mp = NULL;
	const char *body = "--q\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--q--";

	(void)state;
	assert_int_equal(hark_multipart_new("multipart/form-data; boundary=q", &none, NULL, &mp),
			 HARK_OK);
	assert_string_equal(hark_multipart_error(mp), "");
	assert_int_equal(hark_multipart_feed(mp, body, strlen(body)), HARK_OK);
	assert_int_equal(hark_multipart_finish(mp), HARK_OK);
	hark_multipart_free(mp);
	hark_multipart_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_curl_body),
		cmocka_unit_test(test_quoted_boundary_preamble_epilogue),
		cmocka_unit_test(test_escapes_and_params),
		cmocka_unit_test(test_zero_parts),
		cmocka_unit_test(test_content_type_values),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_header_cap),
		cmocka_unit_test(test_part_cap),
		cmocka_unit_test(test_callback_abort),
		cmocka_unit_test(test_null_callbacks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
