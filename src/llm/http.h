/*
 * HTTP transfers to OpenAI-compatible providers on top of libcurl. One
 * struct hark_llm_xfer is one request: it owns a CURL easy handle configured
 * for connection reuse, HTTP/2 where offered (ALPN on TLS, HTTP/1.1
 * otherwise), connect/total/idle timeouts, a capped response body, capture
 * of the rate-limit response headers, and (for streaming calls) an SSE
 * decoder that assembles chat-completion chunks into the same JSON shape a
 * non-streaming reply has. The caller owns the curl multi handle and its
 * event loop (see llm.c); this file only builds handles and interprets what
 * they produced, so it can be unit-tested without a network.
 */
#ifndef HARK_LLM_HTTP_H
#define HARK_LLM_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

enum hark_llm_xfer_outcome {
	HARK_LLM_XFER_OK = 0,        /* a complete HTTP response (any status) */
	HARK_LLM_XFER_CONNECT = 1,   /* could not connect / resolve / TLS */
	HARK_LLM_XFER_TIMEOUT = 2,   /* connect, total or idle timeout */
	HARK_LLM_XFER_TRUNCATED = 3, /* connection ended before the body/stream did */
	HARK_LLM_XFER_TOO_LARGE = 4, /* body exceeded max_response */
	HARK_LLM_XFER_CANCELED = 5,  /* the cancel flag was set */
	HARK_LLM_XFER_ERROR = 6,     /* other transport failure */
};

struct hark_llm_xfer_req {
	const char *url;            /* full URL, e.g. base_url + "/chat/completions" */
	const char *api_key;        /* sent as "Authorization: Bearer ..."; NULL = none */
	const char *body;           /* JSON request body (copied) */
	size_t body_len;
	double connect_timeout_s;   /* real seconds; 0 = libcurl default */
	double timeout_s;           /* whole transfer, real seconds; 0 = none */
	double idle_timeout_s;      /* max gap between received bytes, real seconds; 0 = none */
	size_t max_response;        /* body cap in bytes (> 0) */
	int stream;                 /* 1: the body is an SSE chat-completions stream */
	const volatile int *cancel; /* when *cancel != 0 the transfer aborts; may be NULL */
	void *user;                 /* opaque, returned by hark_llm_xfer_user */
};

/* What a finished transfer produced. Header values the server did not send
 * are < 0. Durations are in the provider's seconds as sent (the caller
 * applies its time scale). */
struct hark_llm_xfer_result {
	int outcome;                /* enum hark_llm_xfer_outcome */
	long status;                /* HTTP status, 0 if none was received */
	char *body;                 /* NUL-terminated response body (for stream: the
				     * assembled non-streaming-shaped JSON, see below);
				     * heap, owned by the result */
	size_t body_len;
	double retry_after_s;       /* Retry-After (delta seconds or HTTP-date) / retry-after-ms */
	double remaining_requests;  /* x-ratelimit-remaining-requests */
	double remaining_tokens;    /* x-ratelimit-remaining-tokens */
	double reset_requests_s;    /* x-ratelimit-reset-requests ("1s", "6m0s", "20ms", "0.5") */
	double reset_tokens_s;      /* x-ratelimit-reset-tokens */
	double elapsed_s;           /* real seconds from start to end */
	char error[256];            /* transport error text ("" if none) */
};

struct hark_llm_xfer;

/* Builds a transfer (not yet added to any multi handle). share: a CURLSH
 * sharing DNS/connections/TLS sessions between handles, or NULL. */
int hark_llm_xfer_new(const struct hark_llm_xfer_req *req, CURLSH *share,
		      struct hark_llm_xfer **out);

/* The easy handle to add to the caller's multi handle (owned by x). */
CURL *hark_llm_xfer_easy(struct hark_llm_xfer *x);

/* req->user of x. */
void *hark_llm_xfer_user(const struct hark_llm_xfer *x);

/*
 * Interprets a finished transfer: code is the CURLcode the multi handle
 * reported for it. Fills *out (hark_llm_xfer_result_clear releases it; the
 * body moves from x to out). For a streaming transfer the SSE events
 * (`data: {chunk}` ... `data: [DONE]`) are assembled into
 *   {"id":..,"model":..,"choices":[{"index":0,"message":{"role":"assistant",
 *    "content":"<all deltas>"},"finish_reason":..}],"usage":{..}}
 * (usage only if the stream carried one); a stream that ends without
 * [DONE] and without a finish_reason is HARK_LLM_XFER_TRUNCATED; a non-2xx
 * streaming reply keeps its raw body.
 */
void hark_llm_xfer_finish(struct hark_llm_xfer *x, CURLcode code,
			  struct hark_llm_xfer_result *out);

/* Frees x (removing it from no multi handle: the caller does that first). */
void hark_llm_xfer_free(struct hark_llm_xfer *x);

void hark_llm_xfer_result_clear(struct hark_llm_xfer_result *r);

/* Parses a rate-limit reset duration: "6m0s", "1m30.5s", "20ms", "1s",
 * "2h", or a bare number of seconds. Returns seconds, or -1 if malformed. */
double hark_llm_http_parse_duration(const char *s);

/* Parses a Retry-After value: delta-seconds, or an HTTP-date relative to
 * now_unix. Returns seconds (>= 0), or -1 if malformed. */
double hark_llm_http_parse_retry_after(const char *s, double now_unix);

/* One-time libcurl global init (thread-safe, idempotent). */
int hark_llm_http_global_init(void);

/*
 * A share handle for hark_llm_xfer_new that shares DNS cache, connections
 * and TLS sessions between transfers, with mutex lock callbacks so that
 * handles using it may run on several threads. *out is freed with
 * hark_llm_http_share_free once no easy handle uses it any more.
 */
int hark_llm_http_share_new(CURLSH **out);
void hark_llm_http_share_free(CURLSH *sh);

/* The transfer an easy handle made by hark_llm_xfer_new belongs to (it is
 * the handle's CURLOPT_PRIVATE); NULL for a foreign handle's NULL private. */
struct hark_llm_xfer *hark_llm_xfer_from_easy(CURL *easy);

#endif /* HARK_LLM_HTTP_H */
