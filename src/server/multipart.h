/*
 * Streaming multipart/form-data parser (RFC 7578). Bytes arrive in arbitrary
 * pieces as the HTTP body is read; the parser calls back for each part's
 * headers, each piece of its content and its end, holding at most one
 * boundary's worth of bytes. It never buffers a part's content, so uploads of
 * any size pass through in constant memory; header blocks are capped.
 * Written for hark rather than using lws_spa because the server needs
 * repeated field names (timestamp_granularities[]), the part's declared
 * content type, and a parser that can be unit-tested and fuzzed without a
 * live connection.
 */
#ifndef HARK_SERVER_MULTIPART_H
#define HARK_SERVER_MULTIPART_H

#include <stddef.h>

struct hark_multipart;

struct hark_multipart_cb {
	/* A part begins. name: the form field name; filename: NULL unless the
	 * part is a file; content_type: NULL if absent. Strings are borrowed
	 * (valid during the call). Return non-zero to abort parsing. */
	int (*part_begin)(void *user, const char *name, const char *filename,
			  const char *content_type);
	/* A piece of the current part's content (never empty). */
	int (*part_data)(void *user, const void *p, size_t n);
	/* The current part ended. */
	int (*part_end)(void *user);
};

/*
 * Creates a parser for the boundary taken from a Content-Type header value
 * ("multipart/form-data; boundary=..."; quoted boundaries are accepted).
 * HARK_ERR_FORMAT if the header has no valid boundary (1..70 chars).
 */
int hark_multipart_new(const char *content_type, const struct hark_multipart_cb *cb,
		       void *user, struct hark_multipart **out);

/*
 * Feeds n bytes. Returns 0, HARK_ERR_FORMAT for malformed input (message via
 * hark_multipart_error), HARK_ERR_LIMIT when a part's header block exceeds
 * 8 KiB or there are more than 64 parts, HARK_ERR_CANCELED when a callback
 * returned non-zero. After an error further feeds return the same error.
 */
int hark_multipart_feed(struct hark_multipart *mp, const void *p, size_t n);

/* Call at the end of the body: HARK_ERR_FORMAT unless the closing boundary
 * was seen. */
int hark_multipart_finish(struct hark_multipart *mp);

/* Static/handle-owned description of the last error ("" if none). */
const char *hark_multipart_error(const struct hark_multipart *mp);

void hark_multipart_free(struct hark_multipart *mp);

#endif /* HARK_SERVER_MULTIPART_H */
