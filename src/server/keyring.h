/*
 * An in-memory cache of API keys for the server's service thread: looks a
 * bearer token up by its sha256 without touching the database. A refresh
 * call (from a background thread) reloads the keys from the store when the
 * store's keys version changed, so `hark keys create|revoke` in another
 * process takes effect within one refresh period. Thread-safe (a mutex
 * guards a hash table; lookups copy the key out).
 */
#ifndef HARK_SERVER_KEYRING_H
#define HARK_SERVER_KEYRING_H

#include "store/store.h"

struct hark_keyring;

struct hark_keyring *hark_keyring_new(void);
void hark_keyring_free(struct hark_keyring *kr);

/* Reloads from st if hark_store_keys_version changed since the last load
 * (always on the first call). Blocking (SQL): call off the service thread. */
int hark_keyring_refresh(struct hark_keyring *kr, struct hark_store *st);

/*
 * Finds the key whose token is token. Returns 1 and fills *out (a plain copy:
 * out->name is set to NULL, everything else copied) if known, else 0.
 * Revoked keys are returned too (check out->revoked_at). Non-blocking.
 */
int hark_keyring_lookup(struct hark_keyring *kr, const char *token, struct hark_key *out);

/* Number of keys loaded (active and revoked). */
size_t hark_keyring_count(struct hark_keyring *kr);

/* How many times refresh actually (re)loaded the keys from the store. */
unsigned long hark_keyring_loads(struct hark_keyring *kr);

#endif /* HARK_SERVER_KEYRING_H */
