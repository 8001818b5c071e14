/*
 * Whisper model management (see wmodels.h): catalogue of whisper.cpp's
 * published ggml files with their Hugging Face LFS sha256 digests, model
 * search paths, default-model choice, resumable verified downloads with
 * libcurl and OpenSSL, and streaming synthesis of random-weight models with
 * real dimensions, a synthetic vocabulary and real Slaney mel filters.
 */
#include "asr/whisper/wmodels.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asr/whisper/wkernels.h"
#include "asr/whisper/wmodel.h"
#include "hark/hark.h"
#include "util/errbuf.h"

/* ------------------------------------------------------------ catalogue -- */

/* Sizes and sha256 (= Git LFS oid) of huggingface.co/ggerganov/whisper.cpp
 * files, cross-checked in two independent public manifests. */
static const struct hark_wmodels_entry g_catalog[] = {
	{"tiny", 77691713, "be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21"},
	{"tiny-q5_1", 32152673, "818710568da3ca15689e31a743197b520007872ff9576237bda97bd1b469c3d7"},
	{"tiny-q8_0", 43537433, "c2085835d3f50733e2ff6e4b41ae8a2b8d8110461e18821b09a15c40c42d1cca"},
	{"tiny.en", 77704715, "921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f"},
	{"tiny.en-q5_1", 32166155, "c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b"},
	{"tiny.en-q8_0", 43550795, "5bc2b3860aa151a4c6e7bb095e1fcce7cf12c7b020ca08dcec0c6d018bb7dd94"},
	{"base", 147951465, "60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe"},
	{"base-q5_1", 59707625, "422f1ae452ade6f30a004d7e5c6a43195e4433bc370bf23fac9cc591f01a8898"},
	{"base-q8_0", 81768585, "c577b9a86e7e048a0b7eada054f4dd79a56bbfa911fbdacf900ac5b567cbb7d9"},
	{"base.en", 147964211, "a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002"},
	{"base.en-q5_1", 59721011, "4baf70dd0d7c4247ba2b81fafd9c01005ac77c2f9ef064e00dcf195d0e2fdd2f"},
	{"base.en-q8_0", 81781811, "a4d4a0768075e13cfd7e19df3ae2dbc4a68d37d36a7dad45e8410c9a34f8c87e"},
	{"small", 487601967, "1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b"},
	{"small-q5_1", 190085487, "ae85e4a935d7a567bd102fe55afc16bb595bdb618e11b2fc7591bc08120411bb"},
	{"small-q8_0", 264464607, "49c8fb02b65e6049d5fa6c04f81f53b867b5ec9540406812c643f177317f779f"},
	{"small.en", 487614201, "c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d"},
	{"small.en-q5_1", 190098681, "bfdff4894dcb76bbf647d56263ea2a96645423f1669176f4844a1bf8e478ad30"},
	{"small.en-q8_0", 264477561, "67a179f608ea6114bd3fdb9060e762b588a3fb3bd00c4387971be4d177958067"},
	{"medium", 1533763059, "6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208"},
	{"medium-q5_0", 539212467, "19fea4b380c3a618ec4723c3eef2eb785ffba0d0538cf43f8f235e7b3b34220f"},
	{"medium-q8_0", 823369779, "42a1ffcbe4167d224232443396968db4d02d4e8e87e213d3ee2e03095dea6502"},
	{"medium.en", 1533774781, "cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356"},
	{"medium.en-q5_0", 539225533, "76733e26ad8fe1c7a5bf7531a9d41917b2adc0f20f2e4f5531688a8c6cd88eb0"},
	{"medium.en-q8_0", 823382461, "43fa2cd084de5a04399a896a9a7a786064e221365c01700cea4666005218f11c"},
	{"large-v1", 3094623691, "7d99f41a10525d0206bddadd86760181fa920438b6b33237e3118ff6c83bb53d"},
	{"large-v2", 3094623691, "9a423fe4d40c82774b6af34115b8b935f34152246eb19e80e376071d3f999487"},
	{"large-v2-q5_0", 1080732091, "3a214837221e4530dbc1fe8d734f302af393eb30bd0ed046042ebf4baf70f6f2"},
	{"large-v2-q8_0", 1656129691, "fef54e6d898246a65c8285bfa83bd1807e27fadf54d5d4e81754c47634737e8c"},
	{"large-v3", 3095033483, "64d182b440b98d5203c4f9bd541544d84c605196c4f7b845dfa11fb23594d1e2"},
	{"large-v3-q5_0", 1081140203, "d75795ecff3f83b5faa89d1900604ad8c780abd5739fae406de19f23ecd98ad1"},
	{"large-v3-turbo", 1624555275, "1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69"},
	{"large-v3-turbo-q5_0", 574041195, "394221709cd5ad1f40c46e6031ca61bce88931e6e088c188294c6d5a55ffa7e2"},
	{"large-v3-turbo-q8_0", 874188075, "317eb69c11673c9de1e1f0d459b253999804ec71ac4c23c17ecf5fbe24e259a1"},
};

const struct hark_wmodels_entry *hark_wmodels_catalog(size_t *n)
{
	if (n)
		*n = sizeof(g_catalog) / sizeof(g_catalog[0]);
	return g_catalog;
}

/* "ggml-x.bin" / "x.bin" / "x" -> "x" */
static int strip_name(const char *name, char *out, size_t outlen)
{
	if (!name || !*name)
		return -1;
	const char *s = name;
	if (strncmp(s, "ggml-", 5) == 0)
		s += 5;
	size_t l = strlen(s);
	if (l > 4 && strcmp(s + l - 4, ".bin") == 0)
		l -= 4;
	if (l == 0 || l + 1 > outlen)
		return -1;
	memcpy(out, s, l);
	out[l] = '\0';
	/* names are plain: letters, digits, '.', '-', '_' and no leading dot */
	if (out[0] == '.')
		return -1;
	for (size_t i = 0; i < l; i++) {
		char c = out[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '-' || c == '_'))
			return -1;
	}
	return 0;
}

const struct hark_wmodels_entry *hark_wmodels_lookup(const char *name)
{
	char n[128];
	if (strip_name(name, n, sizeof(n)))
		return NULL;
	for (size_t i = 0; i < sizeof(g_catalog) / sizeof(g_catalog[0]); i++)
		if (strcmp(g_catalog[i].name, n) == 0)
			return &g_catalog[i];
	return NULL;
}

/* ---------------------------------------------------------- search dirs -- */

#define MAX_DIRS 8

static int home_dir(char *out, size_t outlen)
{
	const char *h = getenv("HOME");
	if (!h || !*h)
		return HARK_ERR_NOT_FOUND;
	int n = snprintf(out, outlen, "%s/.cache/hark/models", h);
	return n < 0 || (size_t)n >= outlen ? HARK_ERR_LIMIT : HARK_OK;
}

/* Fills dirs with the search directories; returns the count. */
static int search_dirs(char dirs[MAX_DIRS][1024])
{
	int n = 0;
	const char *env = getenv("HARK_MODELS");
	if (env && *env) {
		const char *p = env;
		while (*p && n < MAX_DIRS - 1) {
			const char *e = strchr(p, ':');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			if (l > 0 && l < 1024) {
				memcpy(dirs[n], p, l);
				dirs[n][l] = '\0';
				n++;
			}
			if (!e)
				break;
			p = e + 1;
		}
	}
	if (n < MAX_DIRS && home_dir(dirs[n], 1024) == HARK_OK)
		n++;
	return n;
}

int hark_wmodels_dir(char *out, size_t outlen)
{
	const char *env = getenv("HARK_MODELS");
	if (!out || outlen == 0)
		return HARK_ERR_INVALID_ARG;
	if (env && *env) {
		const char *e = strchr(env, ':');
		size_t l = e ? (size_t)(e - env) : strlen(env);
		if (l > 0) {
			if (l + 1 > outlen)
				return HARK_ERR_LIMIT;
			memcpy(out, env, l);
			out[l] = '\0';
			return HARK_OK;
		}
	}
	return home_dir(out, outlen);
}

/* out = a + "/" + pre + b + post; -1 when it does not fit */
static int join(char *out, size_t outlen, const char *a, const char *pre, const char *b, const char *post)
{
	const char *parts[5] = {a, "/", pre, b, post};
	size_t l = 0;
	for (int i = 0; i < 5; i++) {
		size_t pl = strlen(parts[i]);
		if (l + pl + 1 > outlen)
			return -1;
		memcpy(out + l, parts[i], pl);
		l += pl;
	}
	out[l] = '\0';
	return 0;
}

static int is_regular(const char *path, int *is_dir)
{
	struct stat st;
	*is_dir = 0;
	if (stat(path, &st) != 0)
		return 0;
	if (S_ISDIR(st.st_mode))
		*is_dir = 1;
	return S_ISREG(st.st_mode);
}

static int copy_out(char *out, size_t outlen, const char *s)
{
	size_t l = strlen(s);
	if (l + 1 > outlen)
		return HARK_ERR_LIMIT;
	memcpy(out, s, l + 1);
	return HARK_OK;
}

int hark_wmodels_resolve(const char *name_or_path, char *out, size_t outlen)
{
	if (!name_or_path || !*name_or_path || !out || outlen == 0)
		return HARK_ERR_INVALID_ARG;
	int isdir;
	struct stat st;
	if (strchr(name_or_path, '/') || stat(name_or_path, &st) == 0) {
		if (is_regular(name_or_path, &isdir))
			return copy_out(out, outlen, name_or_path);
		return isdir ? HARK_ERR_IS_DIR : HARK_ERR_NOT_FOUND;
	}
	char name[128];
	if (strip_name(name_or_path, name, sizeof(name)))
		return HARK_ERR_NOT_FOUND;
	char dirs[MAX_DIRS][1024];
	int nd = search_dirs(dirs);
	for (int i = 0; i < nd; i++) {
		char p[1200];
		if (join(p, sizeof(p), dirs[i], "ggml-", name, ".bin") == 0 && is_regular(p, &isdir))
			return copy_out(out, outlen, p);
	}
	return HARK_ERR_NOT_FOUND;
}

static int is_model_file(const char *fn)
{
	size_t l = strlen(fn);
	return strncmp(fn, "ggml-", 5) == 0 && l > 9 && strcmp(fn + l - 4, ".bin") == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted ggml-*.bin names of a directory (caller frees each and the array). */
static char **dir_models(const char *dir, size_t *n)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	size_t cap = 0;
	char **v = NULL;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (!is_model_file(e->d_name))
			continue;
		if (*n >= 4096)
			break;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **nv = realloc(v, nc * sizeof(*v));
			if (!nv)
				break;
			v = nv;
			cap = nc;
		}
		v[*n] = strdup(e->d_name);
		if (!v[*n])
			break;
		(*n)++;
	}
	closedir(d);
	if (v)
		qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static const char *const g_pref[] = {
	"base.en", "small.en", "tiny.en", "base", "small", "tiny", "medium.en", "medium",
	"large-v3-turbo", "large-v3", "large-v2", "large-v1",
};
static const char *const g_pref_q[] = {"", "-q8_0", "-q5_1", "-q5_0"};

static int pref_rank(const char *fn)
{
	char name[128];
	if (strip_name(fn, name, sizeof(name)))
		return 1 << 20;
	int r = 0;
	for (size_t i = 0; i < sizeof(g_pref) / sizeof(g_pref[0]); i++) {
		for (size_t q = 0; q < 4; q++, r++) {
			char want[64];
			snprintf(want, sizeof(want), "%s%s", g_pref[i], g_pref_q[q]);
			if (strcmp(want, name) == 0)
				return r;
		}
	}
	return 1 << 20;
}

int hark_wmodels_find_default(char *out, size_t outlen)
{
	if (!out || outlen == 0)
		return HARK_ERR_INVALID_ARG;
	char dirs[MAX_DIRS][1024];
	int nd = search_dirs(dirs);
	int best_rank = 1 << 30;
	char best[1200] = "";
	for (int i = 0; i < nd; i++) {
		size_t n;
		char **v = dir_models(dirs[i], &n);
		for (size_t k = 0; k < n; k++) {
			char p[1200];
			int isdir;
			if (join(p, sizeof(p), dirs[i], "", v[k], "") != 0 || !is_regular(p, &isdir))
				continue;
			int r = pref_rank(v[k]);
			if (r < best_rank) { /* strict: earlier dir / alphabetical wins ties */
				best_rank = r;
				snprintf(best, sizeof(best), "%s", p);
			}
		}
		free_list(v, n);
	}
	if (!best[0])
		return HARK_ERR_NOT_FOUND;
	return copy_out(out, outlen, best);
}

int hark_wmodels_list_local(struct hark_wmodels_local *out, size_t max, size_t *n)
{
	char dirs[MAX_DIRS][1024];
	int nd = search_dirs(dirs);
	*n = 0;
	for (int i = 0; i < nd; i++) {
		size_t cnt;
		char **v = dir_models(dirs[i], &cnt);
		for (size_t k = 0; k < cnt && *n < max; k++) {
			struct stat st;
			char p[1200];
			if (join(p, sizeof(p), dirs[i], "", v[k], "") != 0 || stat(p, &st) != 0 || !S_ISREG(st.st_mode) || strlen(p) >= sizeof(out->path))
				continue;
			memcpy(out[*n].path, p, strlen(p) + 1); /* length checked above */
			out[*n].size = (uint64_t)st.st_size;
			(*n)++;
		}
		free_list(v, cnt);
	}
	return HARK_OK;
}

/* ---------------------------------------------------------------- sha256 -- */

int hark_wmodels_sha256_file(const char *path, char hex[65])
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno == ENOENT ? HARK_ERR_NOT_FOUND : HARK_ERR_IO;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = HARK_ERR_IO;
	unsigned char *buf = malloc(1 << 20);
	if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	size_t r;
	while ((r = fread(buf, 1, 1 << 20, f)) > 0)
		if (EVP_DigestUpdate(ctx, buf, r) != 1)
			goto out;
	if (ferror(f))
		goto out;
	unsigned char md[32];
	unsigned int mdl = 0;
	if (EVP_DigestFinal_ex(ctx, md, &mdl) != 1 || mdl != 32)
		goto out;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	rc = HARK_OK;
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------------ pull -- */

struct dl {
	FILE *f;
	uint64_t have;          /* bytes in .part before this transfer */
	uint64_t got;           /* bytes written in this transfer */
	uint64_t limit;         /* 0 = none */
	int restarted;          /* server ignored Range: file truncated */
	int overflow;
	int io_error;
	long status;
	const struct hark_wmodels_pull_params *p;
	uint64_t total;
};

static size_t dl_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct dl *d = ud;
	size_t n = size * nmemb;
	if (d->got == 0 && !d->restarted) {
		/* first body bytes: decide whether to append or restart */
		long code = 0;
		(void)code;
		if (d->have > 0 && d->status == 200) {
			if (fflush(d->f) != 0 || ftruncate(fileno(d->f), 0) != 0 || fseek(d->f, 0, SEEK_SET) != 0) {
				d->io_error = 1;
				return 0;
			}
			d->have = 0;
			d->restarted = 1;
		}
	}
	if (d->status >= 300)
		return n; /* error body: discard */
	if (d->limit && d->have + d->got + n > d->limit) {
		d->overflow = 1;
		return 0;
	}
	if (fwrite(ptr, 1, n, d->f) != n) {
		d->io_error = 1;
		return 0;
	}
	d->got += n;
	return n;
}

static size_t dl_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct dl *d = ud;
	size_t n = size * nitems;
	if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
		/* status line of each response (redirects included) */
		const char *sp = memchr(buf, ' ', n);
		if (sp)
			d->status = strtol(sp + 1, NULL, 10);
	}
	return n;
}

static int dl_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct dl *d = ud;
	(void)ultotal;
	(void)ulnow;
	if (d->p && d->p->cancel && d->p->cancel(d->p->user))
		return 1;
	if (d->p && d->p->progress) {
		uint64_t total = d->total ? d->total : (dltotal > 0 ? d->have + (uint64_t)dltotal : 0);
		d->p->progress(d->p->user, d->have + (uint64_t)(dlnow > 0 ? dlnow : 0), total);
	}
	return 0;
}

static int valid_hex(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (int i = 0; i < 64; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

static int mkdir_p(const char *dir)
{
	char tmp[1024];
	size_t l = strlen(dir);
	if (l == 0 || l >= sizeof(tmp))
		return -1;
	memcpy(tmp, dir, l + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int hark_wmodels_pull(const char *name, const struct hark_wmodels_pull_params *p,
		      char *out_path, size_t outlen, char *err, size_t errlen)
{
	struct hark_wmodels_pull_params defp = {0};
	char nm[128], dir[1024], final_path[1200], part[1300], url[2048];
	CURL *c = NULL;
	struct dl d = {0};
	int rc = HARK_OK;

	if (err && errlen)
		err[0] = '\0';
	if (!p)
		p = &defp;
	if (strip_name(name, nm, sizeof(nm))) {
		hark_errbuf_set(err, errlen, "invalid model name '%s'", name ? name : "");
		return HARK_ERR_INVALID_ARG;
	}
	const struct hark_wmodels_entry *e = hark_wmodels_lookup(nm);
	const char *want = p->sha256 ? p->sha256 : (e ? e->sha256 : NULL);
	if (p->sha256 && !valid_hex(p->sha256)) {
		hark_errbuf_set(err, errlen, "--sha256 must be 64 hex digits");
		return HARK_ERR_INVALID_ARG;
	}
	if (!want && !p->no_verify) {
		hark_errbuf_set(err, errlen, "model '%s' has no pinned sha256: pass --sha256 HEX or --no-verify", nm);
		return HARK_ERR_INVALID_ARG;
	}
	if (p->dir) {
		if (strlen(p->dir) >= sizeof(dir)) {
			hark_errbuf_set(err, errlen, "directory name too long");
			return HARK_ERR_LIMIT;
		}
		snprintf(dir, sizeof(dir), "%s", p->dir);
	} else if ((rc = hark_wmodels_dir(dir, sizeof(dir))) != HARK_OK) {
		hark_errbuf_set(err, errlen, "no models directory (set HARK_MODELS or HOME)");
		return rc;
	}
	if (mkdir_p(dir) != 0) {
		hark_errbuf_set(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return HARK_ERR_IO;
	}
	const char *base = p->base_url;
	if (!base)
		base = getenv("HARK_MODELS_URL");
	if (!base || !*base)
		base = HARK_WMODELS_BASE_URL;
	size_t bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	if ((size_t)snprintf(url, sizeof(url), "%.*s/ggml-%s.bin", (int)bl, base, nm) >= sizeof(url) ||
	    (size_t)snprintf(final_path, sizeof(final_path), "%s/ggml-%s.bin", dir, nm) >= sizeof(final_path) ||
	    (size_t)snprintf(part, sizeof(part), "%s.part", final_path) >= sizeof(part)) {
		hark_errbuf_set(err, errlen, "path or URL too long");
		return HARK_ERR_LIMIT;
	}

	d.f = fopen(part, "ab");
	if (!d.f) {
		hark_errbuf_set(err, errlen, "cannot open %s: %s", part, strerror(errno));
		return HARK_ERR_IO;
	}
	struct stat st;
	if (fstat(fileno(d.f), &st) != 0) {
		rc = HARK_ERR_IO;
		goto out;
	}
	d.have = (uint64_t)st.st_size;
	d.p = p;
	d.total = e && !p->sha256 ? e->size : 0;
	d.limit = d.total;
	if (d.total && d.have > d.total) { /* stale oversize partial */
		if (ftruncate(fileno(d.f), 0) != 0) {
			rc = HARK_ERR_IO;
			goto out;
		}
		d.have = 0;
	}

	if (!(d.total && d.have == d.total)) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		c = curl_easy_init();
		if (!c) {
			rc = HARK_ERR_NOMEM;
			goto out;
		}
		char cerr[CURL_ERROR_SIZE] = "";
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_USERAGENT, "hark/" HARK_VERSION_STRING);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, dl_write);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, dl_header);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, &d);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, dl_xfer);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, &d);
		char range[48];
		if (d.have > 0) {
			/* an explicit Range (not RESUME_FROM): a server that ignores it
			 * answers 200 and dl_write restarts the file */
			snprintf(range, sizeof(range), "%llu-", (unsigned long long)d.have);
			curl_easy_setopt(c, CURLOPT_RANGE, range);
		}
		CURLcode cc = curl_easy_perform(c);
		long code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (fflush(d.f) != 0)
			d.io_error = 1;
		if (d.io_error) {
			hark_errbuf_set(err, errlen, "write error on %s", part);
			rc = HARK_ERR_IO;
			goto out;
		}
		if (d.overflow) {
			hark_errbuf_set(err, errlen, "server sent more than the expected %llu bytes", (unsigned long long)d.limit);
			fclose(d.f);
			d.f = NULL;
			unlink(part);
			rc = HARK_ERR_LIMIT;
			goto out;
		}
		if (cc == CURLE_ABORTED_BY_CALLBACK) {
			hark_errbuf_set(err, errlen, "download canceled (partial file kept: %s)", part);
			rc = HARK_ERR_CANCELED;
			goto out;
		}
		if (code == 416 && d.have > 0) {
			/* nothing left to fetch: the .part is complete (checked below) */
		} else if (cc != CURLE_OK) {
			hark_errbuf_set(err, errlen, "download of %s failed: %s (partial file kept for resume)", url,
			       cerr[0] ? cerr : curl_easy_strerror(cc));
			rc = HARK_ERR_NETWORK;
			goto out;
		} else if (code >= 400 || (code != 200 && code != 206 && !(code == 0 && strncmp(url, "file:", 5) == 0))) {
			hark_errbuf_set(err, errlen, "download of %s failed: HTTP %ld", url, code);
			rc = HARK_ERR_NETWORK;
			goto out;
		}
	}
	if (fclose(d.f) != 0) {
		d.f = NULL;
		hark_errbuf_set(err, errlen, "write error on %s", part);
		rc = HARK_ERR_IO;
		goto out;
	}
	d.f = NULL;
	if (stat(part, &st) != 0) {
		rc = HARK_ERR_IO;
		goto out;
	}
	if (d.total && (uint64_t)st.st_size != d.total) {
		/* the transfer completed: the server's file is not the pinned one */
		hark_errbuf_set(err, errlen, "size mismatch for ggml-%s.bin: %llu bytes, expected %llu (download deleted)", nm,
		       (unsigned long long)st.st_size, (unsigned long long)d.total);
		unlink(part);
		rc = HARK_ERR_CHECKSUM;
		goto out;
	}
	if (!p->no_verify) {
		char hex[65];
		rc = hark_wmodels_sha256_file(part, hex);
		if (rc) {
			hark_errbuf_set(err, errlen, "cannot read %s", part);
			goto out;
		}
		if (strcasecmp(hex, want) != 0) {
			hark_errbuf_set(err, errlen, "sha256 mismatch for ggml-%s.bin: got %s, expected %s (download deleted)", nm,
			       hex, want);
			unlink(part);
			rc = HARK_ERR_CHECKSUM;
			goto out;
		}
	}
	if (rename(part, final_path) != 0) {
		hark_errbuf_set(err, errlen, "cannot rename %s: %s", part, strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	if (out_path && copy_out(out_path, outlen, final_path) != HARK_OK)
		rc = HARK_ERR_LIMIT;
out:
	if (d.f)
		fclose(d.f);
	if (c)
		curl_easy_cleanup(c);
	return rc;
}

/* ----------------------------------------------------------------- synth -- */

int hark_wmodels_ftype_from_name(const char *s)
{
	static const struct { const char *n; int t; } map[] = {
		{"f32", HARK_WT_F32}, {"f16", HARK_WT_F16}, {"q4_0", HARK_WT_Q4_0}, {"q4_1", HARK_WT_Q4_1},
		{"q5_0", HARK_WT_Q5_0}, {"q5_1", HARK_WT_Q5_1}, {"q8_0", HARK_WT_Q8_0},
	};
	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].n) == 0)
			return map[i].t;
	return -1;
}

/* librosa's Slaney mel scale */
static double hz_to_mel(double f)
{
	const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
	const double logstep = log(6.4) / 27.0;
	if (f >= min_log_hz)
		return min_log_mel + log(f / min_log_hz) / logstep;
	return f / f_sp;
}

static double mel_to_hz(double m)
{
	const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
	const double logstep = log(6.4) / 27.0;
	if (m >= min_log_mel)
		return min_log_hz * exp(logstep * (m - min_log_mel));
	return f_sp * m;
}

void hark_wmodels_mel_filters(int sr, int n_fft, int n_mels, double fmax, float *out)
{
	int nb = n_fft / 2 + 1;
	int nm2 = n_mels + 2;
	double *mel_f = malloc(sizeof(double) * (size_t)nm2);
	double *fft = malloc(sizeof(double) * (size_t)nb);
	if (!mel_f || !fft) {
		free(mel_f);
		free(fft);
		memset(out, 0, sizeof(float) * (size_t)n_mels * (size_t)nb);
		return;
	}
	/* np.fft.rfftfreq(n_fft, 1/sr) */
	double val = 1.0 / ((double)n_fft * (1.0 / (double)sr));
	for (int k = 0; k < nb; k++)
		fft[k] = (double)k * val;
	/* np.linspace(hz_to_mel(0), hz_to_mel(fmax), n_mels + 2) then mel_to_hz */
	double m0 = hz_to_mel(0.0), m1 = hz_to_mel(fmax);
	double step = (m1 - m0) / (double)(nm2 - 1);
	for (int i = 0; i < nm2; i++) {
		double m = (i == nm2 - 1) ? m1 : (double)i * step + m0;
		mel_f[i] = mel_to_hz(m);
	}
	for (int i = 0; i < n_mels; i++) {
		double fd0 = mel_f[i + 1] - mel_f[i], fd1 = mel_f[i + 2] - mel_f[i + 1];
		double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
		for (int k = 0; k < nb; k++) {
			double lower = -(mel_f[i] - fft[k]) / fd0;
			double upper = (mel_f[i + 2] - fft[k]) / fd1;
			double w = lower < upper ? lower : upper;
			if (w < 0)
				w = 0;
			float w32 = (float)w;
			out[(size_t)i * (size_t)nb + (size_t)k] = (float)((double)w32 * enorm);
		}
	}
	free(mel_f);
	free(fft);
}

struct like {
	const char *name;
	int n_vocab, state, heads, a_layers, t_layers, mels;
};

static const struct like g_likes[] = {
	{"micro.en", 51864, 64, 2, 2, 2, 80},
	{"micro", 51865, 64, 2, 2, 2, 80},
	{"tiny.en", 51864, 384, 6, 4, 4, 80},
	{"tiny", 51865, 384, 6, 4, 4, 80},
	{"base.en", 51864, 512, 8, 6, 6, 80},
	{"base", 51865, 512, 8, 6, 6, 80},
	{"small.en", 51864, 768, 12, 12, 12, 80},
	{"small", 51865, 768, 12, 12, 12, 80},
	{"medium.en", 51864, 1024, 16, 24, 24, 80},
	{"medium", 51865, 1024, 16, 24, 24, 80},
	{"large-v1", 51865, 1280, 20, 32, 32, 80},
	{"large-v2", 51865, 1280, 20, 32, 32, 80},
	{"large-v3", 51866, 1280, 20, 32, 32, 128},
	{"large-v3-turbo", 51866, 1280, 20, 32, 4, 128},
};

/* splitmix64 -> xoshiro-like stream; Box-Muller normals */
struct rng {
	uint64_t s;
	int has;
	double spare;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_gauss(struct rng *r)
{
	if (r->has) {
		r->has = 0;
		return r->spare;
	}
	double u1 = ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
	double u2 = (double)(rng_next(r) >> 11) / 9007199254740992.0;
	double rad = sqrt(-2.0 * log(u1));
	r->spare = rad * sin(2 * M_PI * u2);
	r->has = 1;
	return rad * cos(2 * M_PI * u2);
}

static uint64_t name_seed(uint64_t seed, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ seed;
	for (const char *p = name; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 1099511628211ULL;
	}
	return h;
}

enum init { I_LINEAR, I_CONV, I_BIAS, I_LNW, I_EPE, I_DPE, I_TE };

struct synth {
	FILE *f;
	const struct like *lk;
	int ftype;
	uint64_t seed;
	uint64_t total, done;
	const struct hark_wmodels_synth_params *p;
	float *buf;
	unsigned char *qbuf;
	size_t buf_elems;
	int canceled;
};

static int w32(FILE *f, int32_t v)
{
	return fwrite(&v, 4, 1, f) == 1 ? 0 : -1;
}

/* Writes one tensor, generating values in chunks of whole rows. */
static int synth_tensor(struct synth *s, const char *name, int n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
			enum init init, int type)
{
	size_t nl = strlen(name);
	if (w32(s->f, n_dims) || w32(s->f, (int32_t)nl) || w32(s->f, type) || w32(s->f, (int32_t)ne0) ||
	    (n_dims > 1 && w32(s->f, (int32_t)ne1)) || (n_dims > 2 && w32(s->f, (int32_t)ne2)) ||
	    fwrite(name, 1, nl, s->f) != nl)
		return HARK_ERR_IO;
	struct rng r = {name_seed(s->seed, name), 0, 0};
	int64_t rows = ne1 * ne2;
	int64_t chunk_rows = (int64_t)(s->buf_elems / (size_t)ne0);
	if (chunk_rows < 1)
		return HARK_ERR_INTERNAL;
	double sd = 0;
	switch (init) {
	case I_LINEAR: sd = 1.0 / sqrt((double)ne0); break;
	case I_CONV: sd = 1.0 / sqrt(3.0 * (double)ne1); break;
	case I_BIAS: sd = 0.02; break;
	case I_LNW: sd = 0.05; break;
	case I_DPE: sd = 0.01; break;
	case I_TE: sd = 0.02; break;
	case I_EPE: break;
	}
	for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
		int64_t nr = rows - r0 < chunk_rows ? rows - r0 : chunk_rows;
		for (int64_t rr = 0; rr < nr; rr++) {
			float *row = s->buf + rr * ne0;
			int64_t t = r0 + rr;
			for (int64_t j = 0; j < ne0; j++) {
				double v;
				if (init == I_EPE) {
					int64_t half = ne0 / 2;
					int64_t i = j < half ? j : j - half;
					double inv = exp(-(double)i * log(10000.0) / (double)(half - 1));
					v = j < half ? sin((double)t * inv) : cos((double)t * inv);
				} else if (init == I_LNW) {
					v = 1.0 + sd * rng_gauss(&r);
				} else {
					v = sd * rng_gauss(&r);
				}
				row[j] = (float)v;
			}
		}
		int64_t nel = nr * ne0;
		size_t bytes = hark_wk_row_size(type, ne0) * (size_t)nr;
		if (hark_wk_quantize_weights(type, s->buf, s->qbuf, nel) != 0)
			return HARK_ERR_INTERNAL;
		if (fwrite(s->qbuf, 1, bytes, s->f) != bytes)
			return HARK_ERR_IO;
		s->done += (uint64_t)nel;
		if (s->p->progress && s->total)
			s->p->progress(s->p->user, (double)s->done / (double)s->total);
		if (s->p->cancel && s->p->cancel(s->p->user)) {
			s->canceled = 1;
			return HARK_ERR_CANCELED;
		}
	}
	return HARK_OK;
}

/* type of a tensor for the file's ftype */
static int ttype(const struct synth *s, int n_dims, const char *name, enum init init)
{
	if (s->ftype == HARK_WT_F32)
		return HARK_WT_F32;
	if (n_dims < 2 || init == I_EPE || init == I_DPE || strstr(name, "conv1.bias") || strstr(name, "conv2.bias"))
		return HARK_WT_F32;
	if (init == I_CONV)
		return HARK_WT_F16;
	return s->ftype; /* linear weights and token embedding */
}

#define T(name, nd, a, b, c, init)                                                                         \
	do {                                                                                               \
		int tt_ = ttype(s, nd, name, init);                                                        \
		rc = synth_tensor(s, name, nd, a, b, c, init, tt_);                                        \
		if (rc)                                                                                    \
			return rc;                                                                         \
	} while (0)

static int synth_block(struct synth *s, const char *pfx, int i, int64_t n, int cross)
{
	char nm[96];
	int rc;
	static const char *const att[] = {"attn", "cross_attn"};
	for (int a = 0; a <= cross; a++) {
		snprintf(nm, sizeof(nm), "%s.%d.%s.query.weight", pfx, i, att[a]);
		T(nm, 2, n, n, 1, I_LINEAR);
		snprintf(nm, sizeof(nm), "%s.%d.%s.query.bias", pfx, i, att[a]);
		T(nm, 1, n, 1, 1, I_BIAS);
		snprintf(nm, sizeof(nm), "%s.%d.%s.key.weight", pfx, i, att[a]);
		T(nm, 2, n, n, 1, I_LINEAR);
		snprintf(nm, sizeof(nm), "%s.%d.%s.value.weight", pfx, i, att[a]);
		T(nm, 2, n, n, 1, I_LINEAR);
		snprintf(nm, sizeof(nm), "%s.%d.%s.value.bias", pfx, i, att[a]);
		T(nm, 1, n, 1, 1, I_BIAS);
		snprintf(nm, sizeof(nm), "%s.%d.%s.out.weight", pfx, i, att[a]);
		T(nm, 2, n, n, 1, I_LINEAR);
		snprintf(nm, sizeof(nm), "%s.%d.%s.out.bias", pfx, i, att[a]);
		T(nm, 1, n, 1, 1, I_BIAS);
		snprintf(nm, sizeof(nm), "%s.%d.%s_ln.weight", pfx, i, att[a]);
		T(nm, 1, n, 1, 1, I_LNW);
		snprintf(nm, sizeof(nm), "%s.%d.%s_ln.bias", pfx, i, att[a]);
		T(nm, 1, n, 1, 1, I_BIAS);
	}
	snprintf(nm, sizeof(nm), "%s.%d.mlp.0.weight", pfx, i);
	T(nm, 2, n, 4 * n, 1, I_LINEAR);
	snprintf(nm, sizeof(nm), "%s.%d.mlp.0.bias", pfx, i);
	T(nm, 1, 4 * n, 1, 1, I_BIAS);
	snprintf(nm, sizeof(nm), "%s.%d.mlp.2.weight", pfx, i);
	T(nm, 2, 4 * n, n, 1, I_LINEAR);
	snprintf(nm, sizeof(nm), "%s.%d.mlp.2.bias", pfx, i);
	T(nm, 1, n, 1, 1, I_BIAS);
	snprintf(nm, sizeof(nm), "%s.%d.mlp_ln.weight", pfx, i);
	T(nm, 1, n, 1, 1, I_LNW);
	snprintf(nm, sizeof(nm), "%s.%d.mlp_ln.bias", pfx, i);
	T(nm, 1, n, 1, 1, I_BIAS);
	return HARK_OK;
}

static int synth_body(struct synth *s)
{
	const struct like *lk = s->lk;
	const int64_t n = lk->state;
	int rc;
	/* header */
	int32_t ftype_hdr = s->ftype == HARK_WT_F32 ? 0 : s->ftype == HARK_WT_F16 ? 1 : 2000;
	if (s->ftype > HARK_WT_F16) {
		static const int ggml_ftype[] = {[HARK_WT_Q4_0] = 2, [HARK_WT_Q4_1] = 3, [HARK_WT_Q5_0] = 8,
						 [HARK_WT_Q5_1] = 9, [HARK_WT_Q8_0] = 7};
		ftype_hdr += ggml_ftype[s->ftype];
	}
	int32_t hp[11] = {lk->n_vocab, 1500, lk->state, lk->heads, lk->a_layers, 448, lk->state, lk->heads,
			  lk->t_layers, lk->mels, ftype_hdr};
	if (w32(s->f, (int32_t)0x67676d6c) || fwrite(hp, 4, 11, s->f) != 11)
		return HARK_ERR_IO;
	/* mel filters */
	float *filt = malloc(sizeof(float) * (size_t)lk->mels * 201);
	if (!filt)
		return HARK_ERR_NOMEM;
	hark_wmodels_mel_filters(16000, 400, lk->mels, 8000.0, filt);
	int bad = w32(s->f, lk->mels) || w32(s->f, 201) || fwrite(filt, 4, (size_t)lk->mels * 201, s->f) != (size_t)lk->mels * 201;
	free(filt);
	if (bad)
		return HARK_ERR_IO;
	/* vocabulary: 50257 entries */
	const int n_tok = 50257;
	if (w32(s->f, n_tok))
		return HARK_ERR_IO;
	for (int i = 0; i < n_tok; i++) {
		char tok[32];
		size_t l;
		if (i < 256) {
			tok[0] = (char)i;
			l = 1;
		} else if (i == n_tok - 1) {
			const char *last = lk->n_vocab >= 51865 ? "" : "<|endoftext|>";
			l = strlen(last);
			memcpy(tok, last, l);
		} else {
			/* a unique pseudo-word: optional space + base-26 letters of i */
			l = 0;
			if (i % 3 != 0)
				tok[l++] = ' ';
			for (int v = i; v > 0 && l < sizeof(tok); v /= 26)
				tok[l++] = (char)('a' + v % 26);
		}
		if (w32(s->f, (int32_t)l) || (l && fwrite(tok, 1, l, s->f) != l))
			return HARK_ERR_IO;
	}
	/* tensors, in convert-pt-to-ggml.py order */
	T("encoder.positional_embedding", 2, n, 1500, 1, I_EPE);
	T("encoder.conv1.weight", 3, 3, lk->mels, n, I_CONV);
	T("encoder.conv1.bias", 2, 1, n, 1, I_BIAS);
	T("encoder.conv2.weight", 3, 3, n, n, I_CONV);
	T("encoder.conv2.bias", 2, 1, n, 1, I_BIAS);
	for (int i = 0; i < lk->a_layers; i++)
		if ((rc = synth_block(s, "encoder.blocks", i, n, 0)) != HARK_OK)
			return rc;
	T("encoder.ln_post.weight", 1, n, 1, 1, I_LNW);
	T("encoder.ln_post.bias", 1, n, 1, 1, I_BIAS);
	T("decoder.positional_embedding", 2, n, 448, 1, I_DPE);
	T("decoder.token_embedding.weight", 2, n, lk->n_vocab, 1, I_TE);
	for (int i = 0; i < lk->t_layers; i++)
		if ((rc = synth_block(s, "decoder.blocks", i, n, 1)) != HARK_OK)
			return rc;
	T("decoder.ln.weight", 1, n, 1, 1, I_LNW);
	T("decoder.ln.bias", 1, n, 1, 1, I_BIAS);
	return HARK_OK;
}

int hark_wmodels_synth(const struct hark_wmodels_synth_params *p, const char *path, char *err, size_t errlen)
{
	struct synth s = {0};
	char tmp[1100];
	int rc;
	if (err && errlen)
		err[0] = '\0';
	if (!p || !path || !p->like) {
		hark_errbuf_set(err, errlen, "missing --like or output path");
		return HARK_ERR_INVALID_ARG;
	}
	for (size_t i = 0; i < sizeof(g_likes) / sizeof(g_likes[0]); i++)
		if (strcmp(g_likes[i].name, p->like) == 0)
			s.lk = &g_likes[i];
	if (!s.lk) {
		hark_errbuf_set(err, errlen, "unknown model shape '%s'", p->like);
		return HARK_ERR_INVALID_ARG;
	}
	if (hark_wk_type_block(p->ftype) == 0 || p->ftype == HARK_WT_Q8_1) {
		hark_errbuf_set(err, errlen, "unsupported ftype %d", p->ftype);
		return HARK_ERR_INVALID_ARG;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		hark_errbuf_set(err, errlen, "output path too long");
		return HARK_ERR_LIMIT;
	}
	s.ftype = p->ftype;
	s.seed = p->seed;
	s.p = p;
	const struct like *lk = s.lk;
	uint64_t n = (uint64_t)lk->state;
	s.total = n * 1500 + 3 * (uint64_t)lk->mels * n + 3 * n * n + 2 * n + n * 448 + n * (uint64_t)lk->n_vocab +
		  (uint64_t)lk->a_layers * (12 * n * n + 13 * n) + (uint64_t)lk->t_layers * (16 * n * n + 19 * n) + 4 * n;
	s.buf_elems = (size_t)1 << 20;
	if (s.buf_elems < (size_t)lk->state * 4 * 3)
		s.buf_elems = (size_t)lk->state * 4 * 3;
	s.buf = malloc(s.buf_elems * sizeof(float));
	s.qbuf = malloc(s.buf_elems * sizeof(float));
	if (!s.buf || !s.qbuf) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	s.f = fopen(tmp, "wb");
	if (!s.f) {
		hark_errbuf_set(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		rc = HARK_ERR_IO;
		goto out;
	}
	rc = synth_body(&s);
	if (fclose(s.f) != 0 && rc == HARK_OK)
		rc = HARK_ERR_IO;
	s.f = NULL;
	if (rc == HARK_OK && rename(tmp, path) != 0) {
		hark_errbuf_set(err, errlen, "cannot rename to %s: %s", path, strerror(errno));
		rc = HARK_ERR_IO;
	}
	if (rc != HARK_OK) {
		unlink(tmp);
		if (err && errlen && !err[0])
			hark_errbuf_set(err, errlen, "%s", rc == HARK_ERR_CANCELED ? "canceled" : "write failed");
	}
out:
	free(s.buf);
	free(s.qbuf);
	return rc;
}
