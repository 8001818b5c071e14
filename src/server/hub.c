/*
 * Job event hub: a mutex-guarded FIFO inbox filled from any thread, and a
 * fixed hash table of subscriber chains (keyed by job id) that only the
 * service thread touches. Dispatch moves the whole inbox out under the lock,
 * then walks it without the lock, so producers never wait for subscribers.
 */
#include "server/hub.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hark/hark.h"

#define HUB_BUCKETS 4096u

struct hark_hub {
	pthread_mutex_t mu;
	struct hark_hub_event *in_head, *in_tail; /* guarded by mu */
	size_t in_len, max_inbox;                 /* guarded by mu */
	uint64_t dropped;                         /* guarded by mu */
	size_t n_subs;                            /* service thread */
	struct hark_hub_sub *buckets[HUB_BUCKETS]; /* service thread */
};

static unsigned hash_id(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % HUB_BUCKETS;
}

int hark_hub_type_is_final(const char *type)
{
	return strcmp(type, "done") == 0 || strcmp(type, "failed") == 0 ||
	       strcmp(type, "canceled") == 0;
}

struct hark_hub *hark_hub_new(size_t max_inbox)
{
	struct hark_hub *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return NULL;
	}
	h->max_inbox = max_inbox ? max_inbox : 1;
	return h;
}

void hark_hub_free(struct hark_hub *h)
{
	struct hark_hub_event *e, *nx;

	if (!h)
		return;
	for (e = h->in_head; e; e = nx) {
		nx = e->next;
		free(e);
	}
	pthread_mutex_destroy(&h->mu);
	free(h);
}

struct hark_hub_event *hark_hub_event_new(const struct hark_event *ev)
{
	const char *data = ev->data ? ev->data : "{}";
	size_t len = strlen(data);
	struct hark_hub_event *e = malloc(sizeof(*e) + len + 1);

	if (!e)
		return NULL;
	e->refs = 1;
	e->seq = ev->seq;
	snprintf(e->type, sizeof(e->type), "%s", ev->type);
	snprintf(e->job_id, sizeof(e->job_id), "%s", ev->job_id);
	e->final = hark_hub_type_is_final(e->type);
	e->next = NULL;
	e->len = len;
	memcpy(e->data, data, len + 1);
	return e;
}

struct hark_hub_event *hark_hub_event_ref(struct hark_hub_event *ev)
{
	if (ev)
		ev->refs++;
	return ev;
}

void hark_hub_event_unref(struct hark_hub_event *ev)
{
	if (ev && --ev->refs <= 0)
		free(ev);
}

int hark_hub_post(struct hark_hub *h, const struct hark_event *ev)
{
	struct hark_hub_event *e;

	if (!h || !ev || !ev->job_id[0])
		return HARK_ERR_INVALID_ARG;
	pthread_mutex_lock(&h->mu);
	if (h->in_len >= h->max_inbox) {
		h->dropped++;
		pthread_mutex_unlock(&h->mu);
		return HARK_ERR_LIMIT;
	}
	pthread_mutex_unlock(&h->mu);
	e = hark_hub_event_new(ev);
	if (!e)
		return HARK_ERR_NOMEM;
	pthread_mutex_lock(&h->mu);
	if (h->in_tail)
		h->in_tail->next = e;
	else
		h->in_head = e;
	h->in_tail = e;
	h->in_len++;
	pthread_mutex_unlock(&h->mu);
	return HARK_OK;
}

void hark_hub_subscribe(struct hark_hub *h, struct hark_hub_sub *s, const char *job_id)
{
	if (s->active)
		hark_hub_unsubscribe(h, s);
	snprintf(s->job_id, sizeof(s->job_id), "%s", job_id);
	s->bucket = hash_id(s->job_id);
	s->prev = NULL;
	s->next = h->buckets[s->bucket];
	if (s->next)
		s->next->prev = s;
	h->buckets[s->bucket] = s;
	s->active = 1;
	h->n_subs++;
}

void hark_hub_unsubscribe(struct hark_hub *h, struct hark_hub_sub *s)
{
	if (!s->active)
		return;
	if (s->prev)
		s->prev->next = s->next;
	else
		h->buckets[s->bucket] = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->active = 0;
	h->n_subs--;
}

size_t hark_hub_dispatch(struct hark_hub *h)
{
	struct hark_hub_event *list, *e, *nx_e;
	size_t n = 0;

	pthread_mutex_lock(&h->mu);
	list = h->in_head;
	h->in_head = h->in_tail = NULL;
	h->in_len = 0;
	pthread_mutex_unlock(&h->mu);

	for (e = list; e; e = nx_e) {
		struct hark_hub_sub *s, *nx;

		nx_e = e->next;
		e->next = NULL;
		for (s = h->buckets[hash_id(e->job_id)]; s; s = nx) {
			nx = s->next;
			if (strcmp(s->job_id, e->job_id) == 0 && s->fn)
				s->fn(s, e);
		}
		hark_hub_event_unref(e);
		n++;
	}
	return n;
}

uint64_t hark_hub_dropped(struct hark_hub *h)
{
	uint64_t d;

	pthread_mutex_lock(&h->mu);
	d = h->dropped;
	pthread_mutex_unlock(&h->mu);
	return d;
}

size_t hark_hub_subscribers(struct hark_hub *h)
{
	return h->n_subs;
}
