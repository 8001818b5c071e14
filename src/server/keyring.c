/*
 * API-key cache behind keyring.h. A loaded set is an array of key records
 * (names dropped: lookups never return them) plus an open-addressing index
 * over their token hashes; the hex sha256 is already uniform, so its first
 * 16 digits serve as the slot hash. A refresh reads the store's keys
 * version first and the key list second (so a change racing the refresh
 * costs at most one extra reload, never a missed one), builds the new set
 * without holding the mutex and swaps it in; lookups hash the token outside
 * the mutex and hold it only to probe and copy one record.
 */
#include "server/keyring.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

#define KR_MAX_KEYS ((size_t)1 << 22)

struct kr_set {
	struct hark_key *keys;   /* name always NULL */
	size_t n;
	size_t *slots;           /* index + 1; 0 = empty */
	size_t nslots;           /* power of two, > 2 n */
};

struct hark_keyring {
	pthread_mutex_t mu;
	struct kr_set *set;      /* NULL before the first load */
	int64_t version;
	unsigned long loads;
};

static void set_free(struct kr_set *s)
{
	if (!s)
		return;
	free(s->keys);
	free(s->slots);
	free(s);
}

static size_t slot_of(const char *hash, size_t nslots)
{
	uint64_t h = 0;

	for (int i = 0; i < 16 && hash[i]; i++) {
		char c = hash[i];

		h = h << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return (size_t)(h & (nslots - 1));
}

/* Builds a set from a store listing (takes nothing from list). */
static int set_build(const struct hark_key *list, size_t n, struct kr_set **out)
{
	struct kr_set *s = calloc(1, sizeof(*s));
	size_t ns = 16;

	*out = NULL;
	if (!s)
		return HARK_ERR_NOMEM;
	while (ns <= 2 * n)
		ns <<= 1;
	s->keys = calloc(n ? n : 1, sizeof(*s->keys));
	s->slots = calloc(ns, sizeof(*s->slots));
	if (!s->keys || !s->slots) {
		set_free(s);
		return HARK_ERR_NOMEM;
	}
	s->nslots = ns;
	for (size_t i = 0; i < n; i++) {
		size_t j;

		if (strnlen(list[i].hash, HARK_SHA_HEX_LEN) != HARK_SHA_HEX_LEN - 1)
			continue; /* not a sha256 hex: can never match a token */
		for (j = slot_of(list[i].hash, ns); s->slots[j]; j = (j + 1) & (ns - 1))
			if (!strcmp(s->keys[s->slots[j] - 1].hash, list[i].hash))
				break;
		if (s->slots[j])
			continue; /* duplicate hash: keep the first (newest) */
		s->keys[s->n] = list[i];
		s->keys[s->n].name = NULL;
		s->slots[j] = ++s->n;
	}
	*out = s;
	return HARK_OK;
}

struct hark_keyring *hark_keyring_new(void)
{
	struct hark_keyring *kr = calloc(1, sizeof(*kr));

	if (!kr)
		return NULL;
	if (pthread_mutex_init(&kr->mu, NULL) != 0) {
		free(kr);
		return NULL;
	}
	kr->version = -1;
	return kr;
}

void hark_keyring_free(struct hark_keyring *kr)
{
	if (!kr)
		return;
	set_free(kr->set);
	pthread_mutex_destroy(&kr->mu);
	free(kr);
}

int hark_keyring_refresh(struct hark_keyring *kr, struct hark_store *st)
{
	struct hark_key *list = NULL;
	struct kr_set *s = NULL, *old;
	size_t n = 0;
	int64_t version = 0;
	int loaded, rc;

	if (!kr || !st)
		return HARK_ERR_INVALID_ARG;
	rc = hark_store_keys_version(st, &version);
	if (rc)
		return rc;
	pthread_mutex_lock(&kr->mu);
	loaded = kr->set != NULL && kr->version == version;
	pthread_mutex_unlock(&kr->mu);
	if (loaded)
		return HARK_OK;
	rc = hark_store_key_list(st, &list, &n);
	if (rc)
		goto out;
	if (n > KR_MAX_KEYS) {
		rc = HARK_ERR_LIMIT;
		goto out;
	}
	rc = set_build(list, n, &s);
	if (rc)
		goto out;
	pthread_mutex_lock(&kr->mu);
	old = kr->set;
	kr->set = s;
	kr->version = version;
	kr->loads++;
	pthread_mutex_unlock(&kr->mu);
	set_free(old);
out:
	hark_key_array_free(list, n);
	return rc;
}

int hark_keyring_lookup(struct hark_keyring *kr, const char *token, struct hark_key *out)
{
	char hash[HARK_SHA_HEX_LEN];
	int found = 0;

	if (!kr || !token || !out)
		return 0;
	hark_store_key_hash(token, hash);
	pthread_mutex_lock(&kr->mu);
	if (kr->set) {
		const struct kr_set *s = kr->set;

		for (size_t j = slot_of(hash, s->nslots); s->slots[j]; j = (j + 1) & (s->nslots - 1))
			if (!strcmp(s->keys[s->slots[j] - 1].hash, hash)) {
				*out = s->keys[s->slots[j] - 1];
				out->name = NULL;
				found = 1;
				break;
			}
	}
	pthread_mutex_unlock(&kr->mu);
	return found;
}

size_t hark_keyring_count(struct hark_keyring *kr)
{
	size_t n = 0;

	if (!kr)
		return 0;
	pthread_mutex_lock(&kr->mu);
	if (kr->set)
		n = kr->set->n;
	pthread_mutex_unlock(&kr->mu);
	return n;
}

unsigned long hark_keyring_loads(struct hark_keyring *kr)
{
	unsigned long n = 0;

	if (!kr)
		return 0;
	pthread_mutex_lock(&kr->mu);
	n = kr->loads;
	pthread_mutex_unlock(&kr->mu);
	return n;
}
