/*
 * Content-addressed blob files (see blob.h): an upload streams into a
 * private temporary file DIR/blobs/tmp/<random>.part (O_EXCL, mode 0600)
 * while an incremental SHA-256 runs over the same bytes; commit fsyncs the
 * file, renames it to DIR/blobs/<aa>/<sha256> and fsyncs the directory, so a
 * committed blob survives a crash. Identical content is kept once. File
 * names never come from clients.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/blob.h"
#include "util/errbuf.h"

#define HEAD_MAX 4096

struct hark_blob_writer {
	char *data_dir;
	char tmp_path[PATH_MAX];
	int fd;               /* -1 once closed */
	EVP_MD_CTX *md;
	int64_t size;
	int64_t max_bytes;    /* 0 = no cap */
	unsigned char head[HEAD_MAX];
	size_t head_n;
	int committed;
	int failed;           /* an earlier write failed: the content is incomplete */
	char errmsg[256];     /* why the last call failed */
};

static int errno_to_err(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
		return HARK_ERR_PERMISSION;
	case ENOMEM:
		return HARK_ERR_NOMEM;
	default:
		return HARK_ERR_IO;
	}
}

static int is_disk_full(int e)
{
	return e == ENOSPC || e == EDQUOT;
}

/* mkdir that tolerates an existing directory. */
static int ensure_dir(const char *path, char *err, size_t errlen)
{
	struct stat sb;

	if (mkdir(path, 0700) == 0)
		return HARK_OK;
	if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return HARK_OK;
	if (errno == EEXIST) {
		hark_errbuf_set(err, errlen, "%s exists and is not a directory", path);
		return HARK_ERR_IO;
	}
	hark_errbuf_set(err, errlen, "cannot create %s: %s", path, strerror(errno));
	return is_disk_full(errno) ? HARK_ERR_IO : errno_to_err(errno);
}

/* Creates data_dir (and missing parents), blobs and blobs/tmp. */
static int ensure_tree(const char *data_dir, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	size_t n = strlen(data_dir);
	int rc;

	if (n == 0 || n + 16 >= sizeof(buf)) {
		hark_errbuf_set(err, errlen, "data directory path is empty or too long");
		return HARK_ERR_LIMIT;
	}
	memcpy(buf, data_dir, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			hark_errbuf_set(err, errlen, "cannot create %s: %s", buf, strerror(errno));
			return errno_to_err(errno);
		}
		buf[i] = '/';
	}
	rc = ensure_dir(buf, err, errlen);
	if (rc != HARK_OK)
		return rc;
	snprintf(buf, sizeof(buf), "%s/blobs", data_dir);
	rc = ensure_dir(buf, err, errlen);
	if (rc != HARK_OK)
		return rc;
	snprintf(buf, sizeof(buf), "%s/blobs/tmp", data_dir);
	return ensure_dir(buf, err, errlen);
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int hark_blob_writer_new(const char *data_dir, int64_t max_bytes,
			 struct hark_blob_writer **out, char *err, size_t errlen)
{
	struct hark_blob_writer *w = NULL;
	unsigned char rnd[12];
	char name[2 * sizeof(rnd) + 1];
	int rc, tries;

	if (out)
		*out = NULL;
	if (!data_dir || !*data_dir || !out || max_bytes < 0) {
		hark_errbuf_set(err, errlen, "invalid blob writer arguments");
		return HARK_ERR_INVALID_ARG;
	}
	rc = ensure_tree(data_dir, err, errlen);
	if (rc != HARK_OK)
		return rc;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->data_dir = strdup(data_dir)) || !(w->md = EVP_MD_CTX_new())) {
		rc = HARK_ERR_NOMEM;
		hark_errbuf_set(err, errlen, "out of memory");
		goto fail;
	}
	w->fd = -1;
	w->max_bytes = max_bytes;
	if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		rc = HARK_ERR_INTERNAL;
		hark_errbuf_set(err, errlen, "cannot initialise SHA-256");
		goto fail;
	}
	for (tries = 0; tries < 8 && w->fd < 0; tries++) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			rc = HARK_ERR_INTERNAL;
			hark_errbuf_set(err, errlen, "system random generator failed");
			goto fail;
		}
		hex_encode(rnd, sizeof(rnd), name);
		if (snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/blobs/tmp/%s.part", data_dir,
			     name) >= (int)sizeof(w->tmp_path)) {
			rc = HARK_ERR_LIMIT;
			hark_errbuf_set(err, errlen, "data directory path too long");
			goto fail;
		}
		w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST) {
			int e = errno;

			rc = errno_to_err(e);
			hark_errbuf_set(err, errlen, "cannot create %s: %s%s", w->tmp_path,
					strerror(e), is_disk_full(e) ? " (disk full)" : "");
			goto fail;
		}
	}
	if (w->fd < 0) {
		rc = HARK_ERR_IO;
		hark_errbuf_set(err, errlen, "cannot create a unique temporary file");
		goto fail;
	}
	*out = w;
	return HARK_OK;
fail:
	if (w) {
		w->tmp_path[0] = '\0';
		hark_blob_writer_free(w);
	}
	return rc;
}

int hark_blob_writer_write(struct hark_blob_writer *w, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t off = 0;

	if (!w || (!p && n) || w->committed || w->fd < 0)
		return HARK_ERR_INVALID_ARG;
	if (w->failed)
		return HARK_ERR_IO;
	if (n == 0)
		return HARK_OK;
	if (w->max_bytes > 0 && (uint64_t)w->size + n > (uint64_t)w->max_bytes) {
		snprintf(w->errmsg, sizeof(w->errmsg), "upload exceeds %lld bytes",
			 (long long)w->max_bytes);
		return HARK_ERR_LIMIT;
	}
	if (w->head_n < HEAD_MAX) {
		size_t k = HEAD_MAX - w->head_n < n ? HEAD_MAX - w->head_n : n;

		memcpy(w->head + w->head_n, b, k);
		w->head_n += k;
	}
	while (off < n) {
		ssize_t r = write(w->fd, b + off, n - off);

		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			w->failed = 1;
			if (is_disk_full(e))
				snprintf(w->errmsg, sizeof(w->errmsg), "disk full (%s)", strerror(e));
			else
				snprintf(w->errmsg, sizeof(w->errmsg), "cannot write upload: %s",
					 strerror(e));
			return HARK_ERR_IO;
		}
		off += (size_t)r;
	}
	if (EVP_DigestUpdate(w->md, b, n) != 1) {
		w->failed = 1;
		return HARK_ERR_INTERNAL;
	}
	w->size += (int64_t)n;
	return HARK_OK;
}

const char *hark_blob_writer_errmsg(const struct hark_blob_writer *w)
{
	return w ? w->errmsg : "";
}

int64_t hark_blob_writer_size(const struct hark_blob_writer *w)
{
	return w ? w->size : 0;
}

const unsigned char *hark_blob_writer_head(const struct hark_blob_writer *w, size_t *n)
{
	if (n)
		*n = w ? w->head_n : 0;
	return w ? w->head : NULL;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -1;
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = -1;
	close(fd);
	return rc;
}

int hark_blob_writer_commit(struct hark_blob_writer *w, char sha[HARK_SHA_HEX_LEN],
			    char *err, size_t errlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char dir[PATH_MAX], path[PATH_MAX], blobs[PATH_MAX];
	struct stat sb;
	int created_dir = 0, e;

	if (sha)
		sha[0] = '\0';
	if (!w || !sha || w->committed || w->fd < 0) {
		hark_errbuf_set(err, errlen, "blob writer already committed or closed");
		return HARK_ERR_INVALID_ARG;
	}
	if (w->failed) {
		hark_errbuf_set(err, errlen, "%s",
				w->errmsg[0] ? w->errmsg : "an earlier write to the blob failed");
		return HARK_ERR_IO;
	}
	if (fsync(w->fd) != 0) {
		e = errno;
		hark_errbuf_set(err, errlen, "cannot sync upload: %s%s", strerror(e),
				is_disk_full(e) ? " (disk full)" : "");
		w->failed = 1;
		return HARK_ERR_IO;
	}
	if (close(w->fd) != 0) {
		e = errno;
		w->fd = -1;
		hark_errbuf_set(err, errlen, "cannot close upload: %s%s", strerror(e),
				is_disk_full(e) ? " (disk full)" : "");
		w->failed = 1;
		return HARK_ERR_IO;
	}
	w->fd = -1;
	if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen != 32) {
		hark_errbuf_set(err, errlen, "SHA-256 failed");
		return HARK_ERR_INTERNAL;
	}
	hex_encode(md, 32, sha);
	snprintf(blobs, sizeof(blobs), "%s/blobs", w->data_dir);
	if (snprintf(dir, sizeof(dir), "%s/blobs/%.2s", w->data_dir, sha) >= (int)sizeof(dir) ||
	    snprintf(path, sizeof(path), "%s/%s", dir, sha) >= (int)sizeof(path)) {
		hark_errbuf_set(err, errlen, "blob path too long");
		sha[0] = '\0';
		return HARK_ERR_LIMIT;
	}
	if (mkdir(dir, 0700) == 0) {
		created_dir = 1;
	} else if (errno != EEXIST) {
		e = errno;
		hark_errbuf_set(err, errlen, "cannot create %s: %s%s", dir, strerror(e),
				is_disk_full(e) ? " (disk full)" : "");
		sha[0] = '\0';
		return errno_to_err(e);
	}
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		/* identical content already stored */
		unlink(w->tmp_path);
	} else if (rename(w->tmp_path, path) != 0) {
		e = errno;
		hark_errbuf_set(err, errlen, "cannot store blob %s: %s", sha, strerror(e));
		sha[0] = '\0';
		return errno_to_err(e);
	}
	w->tmp_path[0] = '\0';
	w->committed = 1;
	if (fsync_dir(dir) != 0 || (created_dir && fsync_dir(blobs) != 0)) {
		e = errno;
		hark_errbuf_set(err, errlen, "cannot sync blob directory: %s", strerror(e));
		return HARK_ERR_IO;
	}
	return HARK_OK;
}

void hark_blob_writer_free(struct hark_blob_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path[0] && !w->committed)
		unlink(w->tmp_path);
	EVP_MD_CTX_free(w->md);
	free(w->data_dir);
	free(w);
}

static int sha_valid(const char *sha)
{
	if (!sha)
		return 0;
	for (int i = 0; i < 64; i++) {
		char c = sha[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
	}
	return sha[64] == '\0';
}

int hark_blob_path(const char *data_dir, const char *sha, char *out, size_t outlen)
{
	int n;

	if (!data_dir || !out || !outlen || !sha_valid(sha))
		return HARK_ERR_INVALID_ARG;
	n = snprintf(out, outlen, "%s/blobs/%.2s/%s", data_dir, sha, sha);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		return HARK_ERR_LIMIT;
	}
	return HARK_OK;
}

int hark_blob_remove(const char *data_dir, const char *sha)
{
	char path[PATH_MAX];
	int rc = hark_blob_path(data_dir, sha, path, sizeof(path));

	if (rc != HARK_OK)
		return rc;
	if (unlink(path) != 0 && errno != ENOENT)
		return errno_to_err(errno);
	return HARK_OK;
}

size_t hark_blob_clean_tmp(const char *data_dir)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	if (!data_dir || snprintf(dir, sizeof(dir), "%s/blobs/tmp", data_dir) >= (int)sizeof(dir))
		return 0;
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (unlink(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}
