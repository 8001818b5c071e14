/*
 * Content-addressed blob files for uploaded media: DIR/blobs/<aa>/<sha256>,
 * where aa is the first two hex digits. A writer streams bytes into a
 * temporary file under DIR/blobs/tmp while hashing them, and commit makes the
 * blob durable (file fsync, atomic rename, directory fsync) under its hash.
 * Identical content is stored once. Writers are independent; any thread may
 * use its own writer. Nothing here ever uses a client-supplied name.
 */
#ifndef HARK_STORE_BLOB_H
#define HARK_STORE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct hark_blob_writer;

/*
 * Starts a blob in data_dir (the server's --data directory; blobs/ and
 * blobs/tmp are created as needed). max_bytes caps the size (0 = no cap):
 * a write past it fails with HARK_ERR_LIMIT. Errors: HARK_ERR_IO,
 * HARK_ERR_PERMISSION, HARK_ERR_NOMEM (message in err).
 */
int hark_blob_writer_new(const char *data_dir, int64_t max_bytes,
			 struct hark_blob_writer **out, char *err, size_t errlen);

/* Appends n bytes. HARK_ERR_LIMIT past the cap, HARK_ERR_IO on write failure
 * (disk full: message says so). */
int hark_blob_writer_write(struct hark_blob_writer *w, const void *p, size_t n);

/* Why the last hark_blob_writer_write() failed ("disk full (...)", "upload
 * exceeds N bytes", ...); "" if none did. Borrowed, valid until the writer is
 * freed. (Added by the store module.) */
const char *hark_blob_writer_errmsg(const struct hark_blob_writer *w);

/* Bytes written so far. */
int64_t hark_blob_writer_size(const struct hark_blob_writer *w);

/* The first up to 4096 bytes written (for content sniffing); *n gets the
 * count. Borrowed, valid until the writer is freed. */
const unsigned char *hark_blob_writer_head(const struct hark_blob_writer *w, size_t *n);

/*
 * Makes the blob durable and names it by its sha256 (hex into sha). If the
 * blob already exists the temporary file is discarded. After commit only
 * hark_blob_writer_free() may be called.
 */
int hark_blob_writer_commit(struct hark_blob_writer *w, char sha[HARK_SHA_HEX_LEN],
			    char *err, size_t errlen);

/* Discards an uncommitted temporary file and frees w. NULL is a no-op. */
void hark_blob_writer_free(struct hark_blob_writer *w);

/* Path of blob sha under data_dir into out. HARK_ERR_LIMIT if it does not fit;
 * HARK_ERR_INVALID_ARG unless sha is 64 lowercase hex digits. */
int hark_blob_path(const char *data_dir, const char *sha, char *out, size_t outlen);

/* Deletes blob sha (missing is not an error). */
int hark_blob_remove(const char *data_dir, const char *sha);

/* Removes leftover temporary files (after a crash); returns how many. */
size_t hark_blob_clean_tmp(const char *data_dir);

#endif /* HARK_STORE_BLOB_H */
