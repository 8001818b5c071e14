/*
 * The SQLite backend of the job store: one database file DIR/hark.db in WAL
 * mode (synchronous=FULL by default, foreign keys on, a busy timeout for
 * other processes such as `hark keys`), schema versioned by PRAGMA
 * user_version, created or migrated step by step in one transaction. A
 * handle keeps a small pool of connections (mutex + condition variable; an
 * operation borrows one), each with its own lazily prepared, reused
 * statements. Write operations are serialised inside the process by a mutex
 * and run as BEGIN IMMEDIATE transactions, so in-process writers never spin
 * on SQLITE_BUSY and readers proceed concurrently under WAL. Every job state
 * change appends its event (data = job summary JSON after the change) in the
 * same transaction. The LLM layer's reply cache, call log and the shared
 * sliding-window rate limiter (one write transaction per reservation, so
 * every process on the file shares one budget) live here too, and so does
 * meeting analysis (schema version 3): analysed meetings and their chunks,
 * the per-chunk result cache, search documents with an FTS5 index (BM25,
 * snippets; a LIKE scan scored in C when the library lacks FTS5) and
 * embeddings. All SQL and locking of the store lives in this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_backend.h"
#include "util/errbuf.h"

#define POOL_MAX 8
#define SCHEMA_VERSION 3
#define LIST_MAX 1000

/* ---- schema ------------------------------------------------------------------ */

/*
 * The claim index is (status, priority, id, next_run_at): a claim scans the
 * queued jobs of one priority in id (= creation) order and stops at the first
 * ready one without sorting; next_run_at in the index lets it skip backed-off
 * jobs without reading their rows. The same index (status = 1 prefix) finds
 * the few running jobs for recovery and per-key caps.
 */
static const char schema_sql[] =
	"CREATE TABLE jobs ("
	" id TEXT PRIMARY KEY,"
	" type TEXT NOT NULL,"
	" status INTEGER NOT NULL,"
	" priority INTEGER NOT NULL,"
	" key_id TEXT NOT NULL DEFAULT '',"
	" blob_sha TEXT NOT NULL DEFAULT '',"
	" blob_size INTEGER NOT NULL DEFAULT 0,"
	" filename TEXT,"
	" media_type TEXT,"
	" options TEXT NOT NULL,"
	" input_text TEXT,"
	" dedup_key TEXT NOT NULL DEFAULT '',"
	" webhook TEXT,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" max_attempts INTEGER NOT NULL DEFAULT 3,"
	" cached INTEGER NOT NULL DEFAULT 0,"
	" cancel_requested INTEGER NOT NULL DEFAULT 0,"
	" stage TEXT,"
	" percent REAL NOT NULL DEFAULT 0,"
	" eta_s REAL NOT NULL DEFAULT -1,"
	" timings TEXT,"
	" error_code TEXT,"
	" error_message TEXT,"
	" audio_s REAL NOT NULL DEFAULT 0,"
	" created_at REAL NOT NULL,"
	" started_at REAL NOT NULL DEFAULT 0,"
	" finished_at REAL NOT NULL DEFAULT 0,"
	" next_run_at REAL NOT NULL DEFAULT 0,"
	" expires_at REAL NOT NULL DEFAULT 0,"
	" lease_owner TEXT NOT NULL DEFAULT '',"
	" lease_expires_at REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX jobs_claim ON jobs(status, priority, id, next_run_at);"
	"CREATE INDEX jobs_dedup ON jobs(dedup_key);"
	"CREATE INDEX jobs_key ON jobs(key_id, id);"
	"CREATE INDEX jobs_expires ON jobs(expires_at);"
	"CREATE INDEX jobs_blob ON jobs(blob_sha);"
	"CREATE TABLE results ("
	" job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	" format TEXT NOT NULL,"
	" body BLOB NOT NULL,"
	" PRIMARY KEY (job_id, format));"
	"CREATE TABLE events ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,"
	" type TEXT NOT NULL,"
	" data TEXT NOT NULL,"
	" at REAL NOT NULL);"
	"CREATE INDEX events_job ON events(job_id, seq);"
	"CREATE TABLE keys ("
	" id TEXT PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" hash TEXT NOT NULL UNIQUE,"
	" prefix TEXT NOT NULL,"
	" created_at REAL NOT NULL,"
	" revoked_at REAL NOT NULL DEFAULT 0,"
	" rate_rps REAL NOT NULL DEFAULT 0,"
	" rate_burst REAL NOT NULL DEFAULT 0,"
	" daily_quota_s REAL NOT NULL DEFAULT 0,"
	" max_concurrent INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX keys_prefix ON keys(prefix);"
	"CREATE TABLE usage ("
	" key_id TEXT NOT NULL,"
	" day TEXT NOT NULL,"
	" audio_s REAL NOT NULL DEFAULT 0,"
	" PRIMARY KEY (key_id, day));"
	"CREATE TABLE webhooks ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" job_id TEXT NOT NULL,"
	" url TEXT NOT NULL,"
	" body TEXT NOT NULL,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_at REAL NOT NULL);"
	"CREATE INDEX webhooks_next ON webhooks(next_at, id);"
	"CREATE TABLE meta ("
	" name TEXT PRIMARY KEY,"
	" value TEXT NOT NULL);";

/*
 * Version 2: the LLM layer. llm_cache holds replies keyed by the sha256 of
 * a canonical request (the partial index serves the expiry sweep);
 * llm_calls is the append-only accounting log, indexed for the usage
 * filters (job, key, model, each with the time, and the time alone);
 * llm_rate holds the reservations of the shared sliding-window limiter
 * (AUTOINCREMENT: a ticket is never reused, so a stale adjust cannot touch
 * a newer reservation) and llm_rate_block the Retry-After blocks per key.
 */
static const char schema_v2_sql[] =
	"CREATE TABLE llm_cache ("
	" hash TEXT PRIMARY KEY,"
	" model TEXT NOT NULL DEFAULT '',"
	" value BLOB NOT NULL,"
	" created_at REAL NOT NULL,"
	" expires_at REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX llm_cache_expires ON llm_cache(expires_at) WHERE expires_at>0;"
	"CREATE TABLE llm_calls ("
	" id INTEGER PRIMARY KEY,"
	" at REAL NOT NULL,"
	" job_id TEXT NOT NULL DEFAULT '',"
	" key_id TEXT NOT NULL DEFAULT '',"
	" task TEXT NOT NULL DEFAULT '',"
	" model TEXT NOT NULL DEFAULT '',"
	" kind TEXT NOT NULL DEFAULT '',"
	" http_status INTEGER NOT NULL DEFAULT 0,"
	" ok INTEGER NOT NULL DEFAULT 0,"
	" cached INTEGER NOT NULL DEFAULT 0,"
	" tokens_in INTEGER NOT NULL DEFAULT 0,"
	" tokens_out INTEGER NOT NULL DEFAULT 0,"
	" cost_usd REAL NOT NULL DEFAULT 0,"
	" latency_s REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX llm_calls_job ON llm_calls(job_id, at);"
	"CREATE INDEX llm_calls_key ON llm_calls(key_id, at);"
	"CREATE INDEX llm_calls_model ON llm_calls(model, at);"
	"CREATE INDEX llm_calls_at ON llm_calls(at);"
	"CREATE TABLE llm_rate ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" key TEXT NOT NULL,"
	" t REAL NOT NULL,"
	" tokens REAL NOT NULL DEFAULT 0);"
	"CREATE INDEX llm_rate_key ON llm_rate(key, t);"
	"CREATE TABLE llm_rate_block ("
	" key TEXT PRIMARY KEY,"
	" until REAL NOT NULL);";

/*
 * Version 3: meeting analysis. meetings holds one row per analysed meeting
 * (its minutes and graph documents), meeting_chunks its chunk list,
 * chunk_results the per-chunk analysis cache (a chunk already analysed by a
 * pipeline is never analysed again), search_docs the searchable texts of
 * every meeting (with the sha256 of the text, the key of its embedding) and
 * embeddings the vectors per (text sha, model). The FTS5 index over
 * search_docs is not part of this script: it is created at open when the
 * SQLite library has FTS5 (ensure_fts), so a library without it still
 * migrates. IF NOT EXISTS keeps the step idempotent.
 */
static const char schema_v3_sql[] =
	"CREATE TABLE IF NOT EXISTS meetings ("
	" name TEXT PRIMARY KEY,"
	" source TEXT,"
	" content_sha TEXT NOT NULL DEFAULT '',"
	" params_sha TEXT NOT NULL DEFAULT '',"
	" date TEXT,"
	" method TEXT,"
	" model TEXT,"
	" n_chunks INTEGER NOT NULL DEFAULT 0,"
	" analyzed_at REAL NOT NULL DEFAULT 0,"
	" minutes_json TEXT,"
	" graph_json TEXT);"
	"CREATE TABLE IF NOT EXISTS meeting_chunks ("
	" meeting TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" chunk_sha TEXT NOT NULL,"
	" start_s REAL NOT NULL DEFAULT -1,"
	" end_s REAL NOT NULL DEFAULT -1,"
	" first_turn INTEGER NOT NULL DEFAULT -1,"
	" last_turn INTEGER NOT NULL DEFAULT -1,"
	" PRIMARY KEY (meeting, seq));"
	"CREATE INDEX IF NOT EXISTS meeting_chunks_sha ON meeting_chunks(chunk_sha);"
	"CREATE TABLE IF NOT EXISTS chunk_results ("
	" chunk_sha TEXT NOT NULL,"
	" pipeline TEXT NOT NULL,"
	" model TEXT,"
	" result TEXT NOT NULL,"
	" created_at REAL NOT NULL,"
	" PRIMARY KEY (chunk_sha, pipeline));"
	"CREATE TABLE IF NOT EXISTS search_docs ("
	" id INTEGER PRIMARY KEY,"
	" meeting TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" speaker TEXT,"
	" text TEXT NOT NULL,"
	" text_sha TEXT NOT NULL,"
	" chunk_sha TEXT NOT NULL DEFAULT '',"
	" start_s REAL NOT NULL DEFAULT -1,"
	" end_s REAL NOT NULL DEFAULT -1,"
	" turn INTEGER NOT NULL DEFAULT -1);"
	"CREATE INDEX IF NOT EXISTS search_docs_meeting ON search_docs(meeting, kind);"
	"CREATE INDEX IF NOT EXISTS search_docs_sha ON search_docs(text_sha);"
	"CREATE TABLE IF NOT EXISTS embeddings ("
	" text_sha TEXT NOT NULL,"
	" model TEXT NOT NULL,"
	" dim INTEGER NOT NULL,"
	" vec BLOB NOT NULL,"
	" PRIMARY KEY (text_sha, model));"
	"CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model);";

/*
 * The FTS5 index: external content (the text lives once, in search_docs),
 * kept in step by triggers, Porter stemming over unicode61 with diacritics
 * folded. "rebuild" indexes rows written while the index did not exist.
 */
static const char fts_sql[] =
	"CREATE VIRTUAL TABLE search_fts USING fts5(text, speaker, content='search_docs',"
	" content_rowid='id', tokenize='porter unicode61 remove_diacritics 2');"
	"CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN"
	" INSERT INTO search_fts(rowid,text,speaker) VALUES(new.id,new.text,new.speaker); END;"
	"CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN"
	" INSERT INTO search_fts(search_fts,rowid,text,speaker)"
	" VALUES('delete',old.id,old.text,old.speaker); END;"
	"CREATE TRIGGER search_docs_au AFTER UPDATE ON search_docs BEGIN"
	" INSERT INTO search_fts(search_fts,rowid,text,speaker)"
	" VALUES('delete',old.id,old.text,old.speaker);"
	" INSERT INTO search_fts(rowid,text,speaker) VALUES(new.id,new.text,new.speaker); END;"
	"INSERT INTO search_fts(search_fts) VALUES('rebuild');";

/* migrations[v] takes a database from schema version v - 1 to v; a new data
 * directory goes through all of them, an older one through the missing ones,
 * in the one schema transaction. */
static const char *const migrations[SCHEMA_VERSION + 1] = {
	[1] = schema_sql,
	[2] = schema_v2_sql,
	[3] = schema_v3_sql,
};

/* ---- statements ----------------------------------------------------------------- */

#define JOB_COLS                                                                        \
	"id,type,status,priority,key_id,blob_sha,blob_size,filename,media_type,options,"  \
	"input_text,dedup_key,webhook,attempts,max_attempts,cached,cancel_requested,"     \
	"stage,percent,eta_s,timings,error_code,error_message,audio_s,created_at,"        \
	"started_at,finished_at,next_run_at,expires_at,lease_owner,lease_expires_at"
#define JOB_NCOLS 31
#define KEY_COLS                                                                        \
	"id,name,hash,prefix,created_at,revoked_at,rate_rps,rate_burst,daily_quota_s,"    \
	"max_concurrent"

#define LIST_SQL(st, key, cur)                                                          \
	"SELECT " JOB_COLS " FROM jobs WHERE 1=1" st key cur " ORDER BY id DESC LIMIT ?4"
#define LIST_ST " AND +status=?1"
#define LIST_KEY " AND key_id=?2"
#define LIST_CUR " AND id<?3"

#define LLM_USAGE_SQL(job, key, model)                                                   \
	"SELECT count(*), coalesce(sum(cached=0),0), coalesce(sum(cached<>0),0),"          \
	" coalesce(sum(ok=0),0), coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0),"  \
	" total(cost_usd) FROM llm_calls WHERE at>=?4" job key model
#define LLM_U_JOB " AND job_id=?1"
#define LLM_U_KEY " AND key_id=?2"
#define LLM_U_MODEL " AND model=?3"
#define LLM_CALL_COLS                                                                   \
	"at,job_id,key_id,task,model,kind,http_status,ok,cached,tokens_in,tokens_out,"    \
	"cost_usd,latency_s"

#define MEETING_COLS                                                                    \
	"name,source,content_sha,params_sha,date,method,model,n_chunks,analyzed_at,"      \
	"minutes_json,graph_json"
#define DOC_COLS "d.id,d.kind,d.meeting,d.speaker,d.text,d.chunk_sha,d.start_s,d.end_s,d.turn"

enum stmt_id {
	S_BEGIN_IMMEDIATE,
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_JOB_INSERT,
	S_JOB_GET,
	S_JOB_FIND_DONE,
	S_RESULTS_COPY,
	S_LIST0, /* 8 variants: bit 0 status, bit 1 key, bit 2 cursor */
	S_LIST1,
	S_LIST2,
	S_LIST3,
	S_LIST4,
	S_LIST5,
	S_LIST6,
	S_LIST7,
	S_CLAIM_ANY,
	S_CLAIM_PICK,
	S_CLAIM_UPDATE,
	S_EVENT_INSERT,
	S_HEARTBEAT,
	S_PROGRESS,
	S_FINISH,
	S_RESULT_INSERT,
	S_USAGE_ADD,
	S_WEBHOOK_INSERT,
	S_REQUEUE,
	S_FAILED,
	S_CANCELED,
	S_CANCEL_REQ,
	S_RELEASE,
	S_RECOVER_PICK,
	S_DEL_RESULTS,
	S_DEL_EVENTS,
	S_DEL_JOB,
	S_BLOB_REF,
	S_SWEEP_PICK,
	S_COUNT_STATUS,
	S_COUNT_QUEUED,
	S_KEY_RUNNING,
	S_KEY_UNFINISHED,
	S_RESULT_GET,
	S_EVENT_LIST,
	S_KEY_INSERT,
	S_KEYS_BUMP,
	S_KEY_LIST,
	S_KEY_MATCH,
	S_KEY_REVOKE,
	S_KEY_BY_HASH,
	S_USAGE_GET,
	S_WH_NEXT,
	S_WH_DELETE,
	S_WH_RETRY,
	S_META_GET,
	S_META_SET,
	S_META_INIT,
	S_LLM_CACHE_GET,
	S_LLM_CACHE_PUT,
	S_LLM_CACHE_PURGE,
	S_LLM_CACHE_SWEEP,
	S_LLM_CALL_ADD,
	S_LLM_USAGE0, /* 8 variants: bit 0 job, bit 1 key, bit 2 model */
	S_LLM_USAGE1,
	S_LLM_USAGE2,
	S_LLM_USAGE3,
	S_LLM_USAGE4,
	S_LLM_USAGE5,
	S_LLM_USAGE6,
	S_LLM_USAGE7,
	S_LLM_RATE_PRUNE,
	S_LLM_RATE_SUM,
	S_LLM_RATE_WALK,
	S_LLM_RATE_INSERT,
	S_LLM_RATE_ADJUST,
	S_LLM_RATE_BLOCK_GET,
	S_LLM_RATE_BLOCK_SET,
	S_MEETING_UPSERT,
	S_MEETING_GET,
	S_MEETING_LIST,
	S_MEETING_LIST_NOJSON,
	S_MEETING_EXISTS,
	S_MEETING_DEL,
	S_MCHUNKS_DEL,
	S_MCHUNK_INSERT,
	S_MCHUNKS_GET,
	S_DOCS_DEL,
	S_DOC_INSERT,
	S_CHUNK_RESULT_GET,
	S_CHUNK_RESULT_PUT,
	S_SEARCH_FTS,
	S_SEARCH_SCAN,
	S_DOC_BY_ID,
	S_DOCS_BY_SHA,
	S_EMB_PUT,
	S_EMB_GET,
	S_EMB_SCAN,
	S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
	[S_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
	[S_BEGIN] = "BEGIN",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_JOB_INSERT] = "INSERT INTO jobs(" JOB_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,"
			 "?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27,"
			 "?28,?29,?30,?31)",
	[S_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id=?1",
	[S_JOB_FIND_DONE] = "SELECT " JOB_COLS " FROM jobs j WHERE dedup_key=?1 AND status=2"
			    " AND (expires_at=0 OR expires_at>?2)"
			    " AND EXISTS(SELECT 1 FROM results r WHERE r.job_id=j.id)"
			    " ORDER BY id DESC LIMIT 1",
	[S_RESULTS_COPY] = "INSERT INTO results(job_id,format,body)"
			   " SELECT ?1,format,body FROM results WHERE job_id=?2",
	[S_LIST0] = LIST_SQL("", "", ""),
	[S_LIST1] = LIST_SQL(LIST_ST, "", ""),
	[S_LIST2] = LIST_SQL("", LIST_KEY, ""),
	[S_LIST3] = LIST_SQL(LIST_ST, LIST_KEY, ""),
	[S_LIST4] = LIST_SQL("", "", LIST_CUR),
	[S_LIST5] = LIST_SQL(LIST_ST, "", LIST_CUR),
	[S_LIST6] = LIST_SQL("", LIST_KEY, LIST_CUR),
	[S_LIST7] = LIST_SQL(LIST_ST, LIST_KEY, LIST_CUR),
	[S_CLAIM_ANY] = "SELECT 1 FROM jobs WHERE status=0 AND next_run_at<=?1 LIMIT 1",
	/* keys at their cap are computed once per execution from the running jobs */
	[S_CLAIM_PICK] = "SELECT id FROM jobs WHERE status=0 AND priority=?1 AND next_run_at<=?2"
			 " AND key_id NOT IN (SELECT r.key_id FROM jobs r JOIN keys k ON k.id=r.key_id"
			 "  WHERE r.status=1 AND k.max_concurrent>0"
			 "  GROUP BY r.key_id, k.max_concurrent HAVING count(*)>=k.max_concurrent)"
			 " ORDER BY id LIMIT 1",
	[S_CLAIM_UPDATE] = "UPDATE jobs SET status=1, lease_owner=?2, lease_expires_at=?3,"
			   " attempts=attempts+1,"
			   " started_at=CASE WHEN started_at>0 THEN started_at ELSE ?4 END,"
			   " stage='starting', percent=0, eta_s=-1, cancel_requested=0"
			   " WHERE id=?1 AND status=0",
	[S_EVENT_INSERT] = "INSERT INTO events(job_id,type,data,at) VALUES(?1,?2,?3,?4)",
	[S_HEARTBEAT] = "UPDATE jobs SET lease_expires_at=?3 WHERE id=?1 AND status=1"
			" AND lease_owner=?2",
	[S_PROGRESS] = "UPDATE jobs SET stage=?2, percent=?3, eta_s=?4,"
		       " timings=COALESCE(?5,timings) WHERE id=?1",
	[S_FINISH] = "UPDATE jobs SET status=2, percent=100, eta_s=0, stage='done', audio_s=?3,"
		     " timings=COALESCE(?4,timings), finished_at=?5, lease_owner='',"
		     " lease_expires_at=0, cancel_requested=0"
		     " WHERE id=?1 AND status=1 AND lease_owner=?2",
	[S_RESULT_INSERT] = "INSERT INTO results(job_id,format,body) VALUES(?1,?2,?3)",
	[S_USAGE_ADD] = "INSERT INTO usage(key_id,day,audio_s) VALUES(?1,?2,?3)"
			" ON CONFLICT(key_id,day) DO UPDATE SET audio_s=audio_s+excluded.audio_s",
	[S_WEBHOOK_INSERT] = "INSERT INTO webhooks(job_id,url,body,attempts,next_at)"
			     " VALUES(?1,?2,?3,0,?4)",
	[S_REQUEUE] = "UPDATE jobs SET status=0, next_run_at=?2, lease_owner='', lease_expires_at=0,"
		      " stage='queued', percent=0, eta_s=-1, cancel_requested=0 WHERE id=?1",
	[S_FAILED] = "UPDATE jobs SET status=3, error_code=?2, error_message=?3, finished_at=?4,"
		     " lease_owner='', lease_expires_at=0, eta_s=-1, cancel_requested=0"
		     " WHERE id=?1",
	[S_CANCELED] = "UPDATE jobs SET status=4, finished_at=?2, stage='canceled', eta_s=-1,"
		       " lease_owner='', lease_expires_at=0 WHERE id=?1",
	[S_CANCEL_REQ] = "UPDATE jobs SET cancel_requested=1 WHERE id=?1 AND status=1",
	[S_RELEASE] = "UPDATE jobs SET status=0, attempts=CASE WHEN attempts>0 THEN attempts-1"
		      " ELSE 0 END, lease_owner='', lease_expires_at=0, stage='queued', percent=0,"
		      " eta_s=-1 WHERE id=?1",
	[S_RECOVER_PICK] = "SELECT id FROM jobs WHERE status=1 AND (lease_expires_at<?1 OR"
			   " (?2 IS NOT NULL AND substr(lease_owner,1,length(?2))=?2))"
			   " ORDER BY id",
	[S_DEL_RESULTS] = "DELETE FROM results WHERE job_id=?1",
	[S_DEL_EVENTS] = "DELETE FROM events WHERE job_id=?1",
	[S_DEL_JOB] = "DELETE FROM jobs WHERE id=?1",
	[S_BLOB_REF] = "SELECT 1 FROM jobs WHERE blob_sha=?1 LIMIT 1",
	[S_SWEEP_PICK] = "SELECT id FROM jobs WHERE expires_at>0 AND expires_at<=?1 AND status>=2"
			 " ORDER BY expires_at LIMIT ?2",
	[S_COUNT_STATUS] = "SELECT status, count(*) FROM jobs GROUP BY status",
	[S_COUNT_QUEUED] = "SELECT priority, count(*) FROM jobs WHERE status=0 GROUP BY priority",
	/* +key_id: walk the (few) running / unfinished jobs via the claim index,
	 * not the key's whole history */
	[S_KEY_RUNNING] = "SELECT count(*) FROM jobs WHERE status=1 AND +key_id=?1",
	[S_KEY_UNFINISHED] = "SELECT count(*) FROM jobs WHERE status<=1 AND +key_id=?1",
	[S_RESULT_GET] = "SELECT body FROM results WHERE job_id=?1 AND format=?2",
	[S_EVENT_LIST] = "SELECT seq,job_id,type,data,at FROM events WHERE job_id=?1 AND seq>?2"
			 " ORDER BY seq LIMIT ?3",
	[S_KEY_INSERT] = "INSERT INTO keys(" KEY_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
	[S_KEYS_BUMP] = "INSERT INTO meta(name,value) VALUES('keys_version','1')"
			" ON CONFLICT(name) DO UPDATE SET value=CAST(CAST(value AS INTEGER)+1 AS TEXT)",
	[S_KEY_LIST] = "SELECT " KEY_COLS " FROM keys ORDER BY created_at DESC, id DESC",
	[S_KEY_MATCH] = "SELECT id FROM keys WHERE id=?1 OR prefix=?1",
	[S_KEY_REVOKE] = "UPDATE keys SET revoked_at=?2 WHERE id=?1 AND revoked_at=0",
	[S_KEY_BY_HASH] = "SELECT " KEY_COLS " FROM keys WHERE hash=?1",
	[S_USAGE_GET] = "SELECT audio_s FROM usage WHERE key_id=?1 AND day=?2",
	[S_WH_NEXT] = "SELECT id,job_id,url,body,attempts,next_at FROM webhooks"
		      " WHERE next_at<=?1 AND attempts<?2 ORDER BY next_at, id LIMIT 1",
	[S_WH_DELETE] = "DELETE FROM webhooks WHERE id=?1",
	[S_WH_RETRY] = "UPDATE webhooks SET attempts=attempts+1, next_at=?2 WHERE id=?1",
	[S_META_GET] = "SELECT value FROM meta WHERE name=?1",
	[S_META_SET] = "INSERT INTO meta(name,value) VALUES(?1,?2)"
		       " ON CONFLICT(name) DO UPDATE SET value=excluded.value",
	[S_META_INIT] = "INSERT INTO meta(name,value) VALUES(?1,?2) ON CONFLICT(name) DO NOTHING",
	[S_LLM_CACHE_GET] = "SELECT value FROM llm_cache WHERE hash=?1"
			    " AND (expires_at=0 OR expires_at>?2)",
	[S_LLM_CACHE_PUT] = "INSERT INTO llm_cache(hash,model,value,created_at,expires_at)"
			    " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(hash) DO UPDATE SET"
			    " model=excluded.model, value=excluded.value,"
			    " created_at=excluded.created_at, expires_at=excluded.expires_at",
	[S_LLM_CACHE_PURGE] = "DELETE FROM llm_cache WHERE expires_at>0 AND expires_at<=?1",
	[S_LLM_CACHE_SWEEP] = "DELETE FROM llm_cache WHERE rowid IN (SELECT rowid FROM llm_cache"
			      " WHERE expires_at>0 AND expires_at<=?1 LIMIT ?2)",
	[S_LLM_CALL_ADD] = "INSERT INTO llm_calls(" LLM_CALL_COLS ") VALUES(?1,?2,?3,?4,?5,?6,"
			   "?7,?8,?9,?10,?11,?12,?13)",
	[S_LLM_USAGE0] = LLM_USAGE_SQL("", "", ""),
	[S_LLM_USAGE1] = LLM_USAGE_SQL(LLM_U_JOB, "", ""),
	[S_LLM_USAGE2] = LLM_USAGE_SQL("", LLM_U_KEY, ""),
	[S_LLM_USAGE3] = LLM_USAGE_SQL(LLM_U_JOB, LLM_U_KEY, ""),
	[S_LLM_USAGE4] = LLM_USAGE_SQL("", "", LLM_U_MODEL),
	[S_LLM_USAGE5] = LLM_USAGE_SQL(LLM_U_JOB, "", LLM_U_MODEL),
	[S_LLM_USAGE6] = LLM_USAGE_SQL("", LLM_U_KEY, LLM_U_MODEL),
	[S_LLM_USAGE7] = LLM_USAGE_SQL(LLM_U_JOB, LLM_U_KEY, LLM_U_MODEL),
	/* a reservation at t counts at time now while t + window > now (the
	 * same sum that gives retry_at, so retry_at is admitted exactly) */
	[S_LLM_RATE_PRUNE] = "DELETE FROM llm_rate WHERE key=?1 AND t+?2<=?3",
	[S_LLM_RATE_SUM] = "SELECT count(*), total(tokens) FROM llm_rate WHERE key=?1"
			   " AND t+?2>?3",
	[S_LLM_RATE_WALK] = "SELECT t, tokens FROM llm_rate WHERE key=?1 AND t+?2>?3"
			    " ORDER BY t, id",
	[S_LLM_RATE_INSERT] = "INSERT INTO llm_rate(key,t,tokens) VALUES(?1,?2,?3)",
	[S_LLM_RATE_ADJUST] = "UPDATE llm_rate SET tokens=?2 WHERE id=?1",
	[S_LLM_RATE_BLOCK_GET] = "SELECT until FROM llm_rate_block WHERE key=?1",
	[S_LLM_RATE_BLOCK_SET] = "INSERT INTO llm_rate_block(key,until) VALUES(?1,?2)"
				 " ON CONFLICT(key) DO UPDATE SET until=max(until,excluded.until)",
	[S_MEETING_UPSERT] = "INSERT INTO meetings(" MEETING_COLS ") VALUES(?1,?2,?3,?4,?5,?6,?7,"
			     "?8,?9,?10,?11) ON CONFLICT(name) DO UPDATE SET"
			     " source=excluded.source, content_sha=excluded.content_sha,"
			     " params_sha=excluded.params_sha, date=excluded.date,"
			     " method=excluded.method, model=excluded.model,"
			     " n_chunks=excluded.n_chunks, analyzed_at=excluded.analyzed_at,"
			     " minutes_json=excluded.minutes_json, graph_json=excluded.graph_json",
	[S_MEETING_GET] = "SELECT " MEETING_COLS " FROM meetings WHERE name=?1",
	[S_MEETING_LIST] = "SELECT " MEETING_COLS " FROM meetings ORDER BY name",
	[S_MEETING_LIST_NOJSON] = "SELECT name,source,content_sha,params_sha,date,method,model,"
				  "n_chunks,analyzed_at,NULL,NULL FROM meetings ORDER BY name",
	[S_MEETING_EXISTS] = "SELECT 1 FROM meetings WHERE name=?1",
	[S_MEETING_DEL] = "DELETE FROM meetings WHERE name=?1",
	[S_MCHUNKS_DEL] = "DELETE FROM meeting_chunks WHERE meeting=?1",
	[S_MCHUNK_INSERT] = "INSERT INTO meeting_chunks(meeting,seq,chunk_sha,start_s,end_s,"
			    "first_turn,last_turn) VALUES(?1,?2,?3,?4,?5,?6,?7)",
	[S_MCHUNKS_GET] = "SELECT seq,chunk_sha,start_s,end_s,first_turn,last_turn"
			  " FROM meeting_chunks WHERE meeting=?1 ORDER BY seq",
	[S_DOCS_DEL] = "DELETE FROM search_docs WHERE meeting=?1",
	[S_DOC_INSERT] = "INSERT INTO search_docs(meeting,kind,speaker,text,text_sha,chunk_sha,"
			 "start_s,end_s,turn) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
	[S_CHUNK_RESULT_GET] = "SELECT result FROM chunk_results WHERE chunk_sha=?1 AND pipeline=?2",
	[S_CHUNK_RESULT_PUT] = "INSERT INTO chunk_results(chunk_sha,pipeline,model,result,created_at)"
			       " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(chunk_sha,pipeline) DO UPDATE"
			       " SET model=excluded.model, result=excluded.result,"
			       " created_at=excluded.created_at",
	/* speaker names weigh a quarter of the text in the BM25 sum */
	[S_SEARCH_FTS] = "SELECT " DOC_COLS ", snippet(search_fts,0,'\xc2\xab','\xc2\xbb',"
			 "'\xe2\x80\xa6',24), bm25(search_fts,1.0,0.25) AS r"
			 " FROM search_fts JOIN search_docs d ON d.id=search_fts.rowid"
			 " WHERE search_fts MATCH ?1 AND (?2 IS NULL OR d.kind=?2)"
			 " AND (?3 IS NULL OR d.meeting=?3) ORDER BY r, d.id LIMIT ?4",
	[S_SEARCH_SCAN] = "SELECT d.id, d.text, d.speaker FROM search_docs d"
			  " WHERE (?1 IS NULL OR d.kind=?1) AND (?2 IS NULL OR d.meeting=?2)",
	[S_DOC_BY_ID] = "SELECT " DOC_COLS " FROM search_docs d WHERE d.id=?1",
	[S_DOCS_BY_SHA] = "SELECT " DOC_COLS " FROM search_docs d WHERE d.text_sha=?1"
			  " AND (?2 IS NULL OR d.kind=?2) AND (?3 IS NULL OR d.meeting=?3)"
			  " ORDER BY d.id",
	[S_EMB_PUT] = "INSERT INTO embeddings(text_sha,model,dim,vec) VALUES(?1,?2,?3,?4)"
		      " ON CONFLICT(text_sha,model) DO UPDATE SET dim=excluded.dim, vec=excluded.vec",
	[S_EMB_GET] = "SELECT dim, vec FROM embeddings WHERE text_sha=?1 AND model=?2",
	[S_EMB_SCAN] = "SELECT text_sha, dim, vec FROM embeddings WHERE model=?1",
};

/* ---- handle and connection pool ---------------------------------------------------- */

struct sq;

struct conn {
	struct sq *sq;
	sqlite3 *db;
	sqlite3_stmt *stmts[S__COUNT];
	int in_use;
	long pages_applied; /* max_page_count set on this connection (test hook) */
};

struct sq {
	char *dir;
	char *path;
	struct hark_store_params p;
	pthread_mutex_t lock; /* guards the pool */
	pthread_cond_t cond;
	struct conn conns[POOL_MAX];
	int n_open;
	pthread_mutex_t wlock; /* one write transaction at a time in this process */
	long max_pages;        /* test hook; 0 = unlimited */
	int has_fts;           /* search_fts exists and is used (set at open) */
};

/* Test hook: behave as if SQLite lacked FTS5 (hark_store_sqlite_force_no_fts). */
static int force_no_fts;

/* Maps an SQLite result code to a hark error with a message naming what failed. */
static int sq_err(struct conn *c, int rc, const char *what)
{
	int prim = rc & 0xff;
	int sys = (c && c->db) ? sqlite3_system_errno(c->db) : 0;
	const char *msg = (c && c->db) ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
	const char *path = (c && c->sq) ? c->sq->path : "hark.db";

	switch (prim) {
	case SQLITE_FULL:
		return hark_store_set_errmsg(HARK_ERR_IO, "%s: disk full (%s)", what, msg);
	case SQLITE_IOERR:
		if (sys == ENOSPC || sys == EDQUOT)
			return hark_store_set_errmsg(HARK_ERR_IO, "%s: disk full (%s)", what, msg);
		return hark_store_set_errmsg(HARK_ERR_IO, "%s: I/O error on %s (%s)", what, path,
					     msg);
	case SQLITE_NOTADB:
		return hark_store_set_errmsg(HARK_ERR_CORRUPT,
					     "%s: %s is not a hark database (%s)", what, path, msg);
	case SQLITE_CORRUPT:
		return hark_store_set_errmsg(HARK_ERR_CORRUPT, "%s: database %s is corrupt (%s)",
					     what, path, msg);
	case SQLITE_NOMEM:
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "%s: out of memory", what);
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return hark_store_set_errmsg(HARK_ERR_IO,
					     "%s: database %s stayed locked past the busy timeout (%s)",
					     what, path, msg);
	case SQLITE_CONSTRAINT:
		return hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "%s: %s", what, msg);
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return hark_store_set_errmsg(HARK_ERR_PERMISSION, "%s: %s is not writable (%s)",
					     what, path, msg);
	case SQLITE_CANTOPEN:
		return hark_store_set_errmsg(HARK_ERR_IO, "%s: cannot open %s (%s)", what, path,
					     msg);
	case SQLITE_TOOBIG:
		return hark_store_set_errmsg(HARK_ERR_LIMIT, "%s: value too large (%s)", what, msg);
	default:
		return hark_store_set_errmsg(HARK_ERR_INTERNAL, "%s: sqlite error %d (%s)", what, rc,
					     msg);
	}
}

/* Runs one or more statements of SQL text without results. */
static int exec_sql(struct conn *c, const char *sql, const char *what)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? HARK_OK : sq_err(c, rc, what);
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < S__COUNT; i++) {
		if (c->stmts[i])
			sqlite3_finalize(c->stmts[i]);
		c->stmts[i] = NULL;
	}
	if (c->db)
		sqlite3_close(c->db);
	c->db = NULL;
}

static int apply_max_pages(struct conn *c, long pages)
{
	char sql[64];

	if (pages <= 0 || c->pages_applied == pages)
		return HARK_OK;
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count=%ld", pages);
	c->pages_applied = pages;
	return exec_sql(c, sql, "set page limit");
}

/* Opens connection c on sq->path with the per-connection settings. */
static int conn_open(struct sq *sq, struct conn *c)
{
	char sql[128];
	int rc;

	memset(c, 0, sizeof(*c));
	c->sq = sq;
	rc = sqlite3_open_v2(sq->path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		int e = sq_err(c, rc, "open database");

		conn_close(c);
		return e;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, (int)(sq->p.busy_timeout_s * 1000.0));
	snprintf(sql, sizeof(sql), "PRAGMA foreign_keys=ON; PRAGMA synchronous=%s;",
		 sq->p.sync_full ? "FULL" : "NORMAL");
	rc = exec_sql(c, sql, "configure database");
	if (rc == HARK_OK)
		rc = apply_max_pages(c, sq->max_pages);
	if (rc != HARK_OK)
		conn_close(c);
	return rc;
}

/* Borrows a connection (opening one if the pool has room, else waiting). */
static int borrow(struct sq *sq, struct conn **out)
{
	int rc = HARK_OK;

	*out = NULL;
	pthread_mutex_lock(&sq->lock);
	for (;;) {
		for (int i = 0; i < sq->n_open; i++) {
			if (!sq->conns[i].in_use) {
				*out = &sq->conns[i];
				break;
			}
		}
		if (*out)
			break;
		if (sq->n_open < POOL_MAX) {
			rc = conn_open(sq, &sq->conns[sq->n_open]);
			if (rc != HARK_OK)
				break;
			*out = &sq->conns[sq->n_open++];
			break;
		}
		pthread_cond_wait(&sq->cond, &sq->lock);
	}
	if (*out) {
		(*out)->in_use = 1;
		if (sq->max_pages != (*out)->pages_applied)
			rc = apply_max_pages(*out, sq->max_pages);
	}
	pthread_mutex_unlock(&sq->lock);
	return rc;
}

static void give_back_conn(struct sq *sq, struct conn *c)
{
	sqlite3_stmt *s = NULL;

	if (!c)
		return;
	/* No statement may keep a read snapshot open while the connection idles. */
	while ((s = sqlite3_next_stmt(c->db, s)) != NULL)
		if (sqlite3_stmt_busy(s))
			sqlite3_reset(s);
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&sq->lock);
	c->in_use = 0;
	pthread_cond_signal(&sq->cond);
	pthread_mutex_unlock(&sq->lock);
}

/* The cached statement id on c, reset and unbound; NULL with *rc set on error. */
static sqlite3_stmt *prep(struct conn *c, int id, int *rc)
{
	sqlite3_stmt *s = c->stmts[id];
	int r;

	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	r = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (r != SQLITE_OK) {
		*rc = sq_err(c, r, "prepare statement");
		return NULL;
	}
	c->stmts[id] = s;
	return s;
}

/* Steps s to completion (rows, e.g. from RETURNING, are ignored) and resets it. */
static int run(struct conn *c, sqlite3_stmt *s, const char *what)
{
	int r;

	do
		r = sqlite3_step(s);
	while (r == SQLITE_ROW);
	if (r != SQLITE_DONE) {
		int e = sq_err(c, r, what);

		sqlite3_reset(s);
		return e;
	}
	sqlite3_reset(s);
	return HARK_OK;
}

/* One step of a query: 1 = a row (the caller resets s when done with it),
 * 0 = no more rows, -1 = error (hark error in *rc); s is reset on 0 and -1. */
static int step_row(struct conn *c, sqlite3_stmt *s, const char *what, int *rc)
{
	int r = sqlite3_step(s);

	if (r == SQLITE_ROW)
		return 1;
	if (r != SQLITE_DONE)
		*rc = sq_err(c, r, what);
	sqlite3_reset(s);
	return r == SQLITE_DONE ? 0 : -1;
}

static int exec_id(struct conn *c, int id, const char *what)
{
	int rc = HARK_OK;
	sqlite3_stmt *s = prep(c, id, &rc);

	return s ? run(c, s, what) : rc;
}

/* Read transaction: borrow + BEGIN (for multi-statement consistent reads). */
static int rbegin(struct sq *sq, struct conn **c, int txn)
{
	int rc = borrow(sq, c);

	if (rc != HARK_OK)
		return rc;
	if (txn) {
		rc = exec_id(*c, S_BEGIN, "begin read");
		if (rc != HARK_OK) {
			give_back_conn(sq, *c);
			*c = NULL;
		}
	}
	return rc;
}

static int rend(struct sq *sq, struct conn *c, int txn, int rc)
{
	if (!c)
		return rc;
	if (txn && !sqlite3_get_autocommit(c->db))
		exec_id(c, S_COMMIT, "end read");
	give_back_conn(sq, c);
	return rc;
}

/* Write transaction: process write lock, borrow, BEGIN IMMEDIATE (waits up to
 * the busy timeout for other processes). */
static int wbegin(struct sq *sq, struct conn **c)
{
	int rc;

	pthread_mutex_lock(&sq->wlock);
	rc = borrow(sq, c);
	if (rc == HARK_OK) {
		rc = exec_id(*c, S_BEGIN_IMMEDIATE, "begin write");
		if (rc != HARK_OK)
			give_back_conn(sq, *c);
	}
	if (rc != HARK_OK) {
		*c = NULL;
		pthread_mutex_unlock(&sq->wlock);
	}
	return rc;
}

/* Commits (rc == OK) or rolls back, returns the connection, drops the lock. */
static int wend(struct sq *sq, struct conn *c, int rc)
{
	if (!c)
		return rc;
	if (rc == HARK_OK) {
		rc = exec_id(c, S_COMMIT, "commit");
		if (rc != HARK_OK && !sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	} else if (!sqlite3_get_autocommit(c->db)) {
		if (exec_id(c, S_ROLLBACK, "rollback") != HARK_OK &&
		    !sqlite3_get_autocommit(c->db))
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	}
	give_back_conn(sq, c);
	pthread_mutex_unlock(&sq->wlock);
	return rc;
}

/* ---- binding and reading ---------------------------------------------------------- */

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static int col_dup(sqlite3_stmt *s, int i, char **out)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	*out = NULL;
	if (!t)
		return sqlite3_column_type(s, i) == SQLITE_NULL ? HARK_OK : HARK_ERR_NOMEM;
	*out = strdup((const char *)t);
	return *out ? HARK_OK : HARK_ERR_NOMEM;
}

static void col_copy(sqlite3_stmt *s, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

/* Fills j from a row of JOB_COLS. */
static int job_from_row(sqlite3_stmt *s, struct hark_job *j)
{
	int bad = 0;

	memset(j, 0, sizeof(*j));
	col_copy(s, 0, j->id, sizeof(j->id));
	col_copy(s, 1, j->type, sizeof(j->type));
	j->status = sqlite3_column_int(s, 2);
	j->priority = sqlite3_column_int(s, 3);
	col_copy(s, 4, j->key_id, sizeof(j->key_id));
	col_copy(s, 5, j->blob_sha, sizeof(j->blob_sha));
	j->blob_size = sqlite3_column_int64(s, 6);
	bad |= col_dup(s, 7, &j->filename);
	bad |= col_dup(s, 8, &j->media_type);
	bad |= col_dup(s, 9, &j->options);
	bad |= col_dup(s, 10, &j->input_text);
	col_copy(s, 11, j->dedup_key, sizeof(j->dedup_key));
	bad |= col_dup(s, 12, &j->webhook);
	j->attempts = sqlite3_column_int(s, 13);
	j->max_attempts = sqlite3_column_int(s, 14);
	j->cached = sqlite3_column_int(s, 15);
	j->cancel_requested = sqlite3_column_int(s, 16);
	bad |= col_dup(s, 17, &j->stage);
	j->percent = sqlite3_column_double(s, 18);
	j->eta_s = sqlite3_column_double(s, 19);
	bad |= col_dup(s, 20, &j->timings);
	bad |= col_dup(s, 21, &j->error_code);
	bad |= col_dup(s, 22, &j->error_message);
	j->audio_s = sqlite3_column_double(s, 23);
	j->created_at = sqlite3_column_double(s, 24);
	j->started_at = sqlite3_column_double(s, 25);
	j->finished_at = sqlite3_column_double(s, 26);
	j->next_run_at = sqlite3_column_double(s, 27);
	j->expires_at = sqlite3_column_double(s, 28);
	col_copy(s, 29, j->lease_owner, sizeof(j->lease_owner));
	j->lease_expires_at = sqlite3_column_double(s, 30);
	if (bad) {
		hark_job_clear(j);
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory reading a job");
	}
	return HARK_OK;
}

static void bind_job(sqlite3_stmt *s, const struct hark_job *j)
{
	sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, j->type, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, j->status);
	sqlite3_bind_int(s, 4, j->priority);
	sqlite3_bind_text(s, 5, j->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, j->blob_sha, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, j->blob_size);
	bind_text(s, 8, j->filename);
	bind_text(s, 9, j->media_type);
	sqlite3_bind_text(s, 10, j->options ? j->options : "{}", -1, SQLITE_STATIC);
	bind_text(s, 11, j->input_text);
	sqlite3_bind_text(s, 12, j->dedup_key, -1, SQLITE_STATIC);
	bind_text(s, 13, j->webhook);
	sqlite3_bind_int(s, 14, j->attempts);
	sqlite3_bind_int(s, 15, j->max_attempts);
	sqlite3_bind_int(s, 16, j->cached ? 1 : 0);
	sqlite3_bind_int(s, 17, j->cancel_requested ? 1 : 0);
	bind_text(s, 18, j->stage);
	sqlite3_bind_double(s, 19, j->percent);
	sqlite3_bind_double(s, 20, j->eta_s);
	bind_text(s, 21, j->timings);
	bind_text(s, 22, j->error_code);
	bind_text(s, 23, j->error_message);
	sqlite3_bind_double(s, 24, j->audio_s);
	sqlite3_bind_double(s, 25, j->created_at);
	sqlite3_bind_double(s, 26, j->started_at);
	sqlite3_bind_double(s, 27, j->finished_at);
	sqlite3_bind_double(s, 28, j->next_run_at);
	sqlite3_bind_double(s, 29, j->expires_at);
	sqlite3_bind_text(s, 30, j->lease_owner, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 31, j->lease_expires_at);
}

/* ---- shared transaction steps ---------------------------------------------------- */

static int load_job(struct conn *c, const char *id, struct hark_job *j)
{
	int rc = HARK_OK, r;
	sqlite3_stmt *s = prep(c, S_JOB_GET, &rc);

	memset(j, 0, sizeof(*j));
	if (!s)
		return rc;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	r = step_row(c, s, "read job", &rc);
	if (r < 0)
		return rc;
	if (r == 0)
		return hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "job %s not found", id);
	rc = job_from_row(s, j);
	sqlite3_reset(s);
	return rc;
}

/* Loads a job that must be running under owner (lease held). */
static int load_leased(struct conn *c, const char *id, const char *owner, struct hark_job *j)
{
	int rc = load_job(c, id, j);

	if (rc != HARK_OK)
		return rc;
	if (j->status != HARK_JOB_RUNNING || strcmp(j->lease_owner, owner) != 0) {
		hark_job_clear(j);
		return hark_store_set_errmsg(HARK_ERR_NOT_FOUND,
					     "job %s is not running under %s (lease lost)", id, owner);
	}
	return HARK_OK;
}

/* Appends an event for job j (its state after the change); fills ev if non-NULL. */
static int append_event(struct conn *c, const struct hark_job *j, const char *type, double at,
			struct hark_event *ev)
{
	int rc = HARK_OK;
	char *data = hark_store_job_summary_json(j);
	sqlite3_stmt *s;

	if (!data)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory building an event");
	s = prep(c, S_EVENT_INSERT, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, data, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 4, at);
	rc = run(c, s, "append event");
	if (rc != HARK_OK)
		goto out;
	if (ev) {
		hark_event_clear(ev);
		ev->seq = sqlite3_last_insert_rowid(c->db);
		snprintf(ev->job_id, sizeof(ev->job_id), "%s", j->id);
		snprintf(ev->type, sizeof(ev->type), "%s", type);
		ev->data = data;
		ev->at = at;
		data = NULL;
	}
out:
	free(data);
	return rc;
}

/* Reloads job id and appends its event. */
static int reload_and_event(struct conn *c, const char *id, const char *type, double at,
			    struct hark_job *j, struct hark_event *ev)
{
	int rc;

	hark_job_clear(j);
	rc = load_job(c, id, j);
	if (rc == HARK_OK)
		rc = append_event(c, j, type, at, ev);
	return rc;
}

static int enqueue_webhook(struct conn *c, const struct hark_job *j, double now)
{
	int rc = HARK_OK;
	char *body;
	sqlite3_stmt *s;

	if (!j->webhook || !*j->webhook)
		return HARK_OK;
	body = hark_store_job_summary_json(j);
	if (!body)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory building a webhook");
	s = prep(c, S_WEBHOOK_INSERT, &rc);
	if (s) {
		sqlite3_bind_text(s, 1, j->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, j->webhook, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, body, -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 4, now);
		rc = run(c, s, "enqueue webhook");
	}
	free(body);
	return rc;
}

/* Runs a single-id update statement (?1 = id) with up to one extra double. */
static int update_id(struct conn *c, int sid, const char *id, int has_d, double d,
		     const char *what)
{
	int rc = HARK_OK;
	sqlite3_stmt *s = prep(c, sid, &rc);

	if (!s)
		return rc;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (has_d)
		sqlite3_bind_double(s, 2, d);
	return run(c, s, what);
}

/* Running job -> canceled (worker stopped, or requeue of a job whose cancel
 * was requested), with its event. */
static int to_canceled(struct conn *c, struct hark_job *j, double now, struct hark_event *ev)
{
	char id[HARK_ID_LEN];
	int rc;

	snprintf(id, sizeof(id), "%s", j->id);
	rc = update_id(c, S_CANCELED, id, 1, now, "cancel job");
	if (rc == HARK_OK)
		rc = reload_and_event(c, id, "canceled", now, j, ev);
	return rc;
}

static int to_failed(struct conn *c, struct hark_job *j, const char *code, const char *message,
		     double now, struct hark_event *ev)
{
	char id[HARK_ID_LEN];
	int rc = HARK_OK;
	sqlite3_stmt *s = prep(c, S_FAILED, &rc);

	if (!s)
		return rc;
	snprintf(id, sizeof(id), "%s", j->id);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, message, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 4, now);
	rc = run(c, s, "fail job");
	if (rc == HARK_OK)
		rc = reload_and_event(c, id, "failed", now, j, ev);
	if (rc == HARK_OK)
		rc = enqueue_webhook(c, j, now);
	return rc;
}

static int to_requeued(struct conn *c, struct hark_job *j, double next_run_at, double now,
		       struct hark_event *ev)
{
	char id[HARK_ID_LEN];
	int rc;

	snprintf(id, sizeof(id), "%s", j->id);
	rc = update_id(c, S_REQUEUE, id, 1, next_run_at, "requeue job");
	if (rc == HARK_OK)
		rc = reload_and_event(c, id, "requeued", now, j, ev);
	return rc;
}

/* ---- open / close --------------------------------------------------------------------- */

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);
	struct stat sb;

	if (n == 0 || n >= sizeof(buf)) {
		hark_errbuf_set(err, errlen, "data directory path too long");
		return HARK_ERR_LIMIT;
	}
	memcpy(buf, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
			int e = errno;

			hark_errbuf_set(err, errlen, "cannot create %s: %s", buf, strerror(e));
			return e == EACCES || e == EPERM || e == EROFS ? HARK_ERR_PERMISSION
								       : HARK_ERR_IO;
		}
		buf[i] = i < n ? '/' : '\0';
	}
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		hark_errbuf_set(err, errlen, "%s is not a directory", dir);
		return HARK_ERR_IO;
	}
	return HARK_OK;
}

static void sq_free(struct sq *sq)
{
	if (!sq)
		return;
	for (int i = 0; i < sq->n_open; i++)
		conn_close(&sq->conns[i]);
	pthread_mutex_destroy(&sq->lock);
	pthread_cond_destroy(&sq->cond);
	pthread_mutex_destroy(&sq->wlock);
	free(sq->dir);
	free(sq->path);
	free(sq);
}

/*
 * Inside the schema transaction: makes sure the FTS5 index over search_docs
 * exists when the library has FTS5 (creating and filling it if it does not
 * yet), and records in c->sq->has_fts whether search can use it. A library
 * without FTS5 (or the test hook) leaves the store on the LIKE fallback;
 * that is not an error.
 */
static int ensure_fts(struct conn *c)
{
	sqlite3_stmt *s = NULL;
	int r, exists = 0, rc = HARK_OK;

	c->sq->has_fts = 0;
	if (force_no_fts)
		return HARK_OK;
	r = sqlite3_prepare_v2(c->db,
			       "SELECT 1 FROM sqlite_master WHERE type='table' AND name='search_fts'",
			       -1, &s, NULL);
	if (r == SQLITE_OK) {
		r = sqlite3_step(s);
		exists = r == SQLITE_ROW;
		if (r == SQLITE_ROW || r == SQLITE_DONE)
			r = SQLITE_OK;
	}
	sqlite3_finalize(s);
	if (r != SQLITE_OK)
		return sq_err(c, r, "look for the search index");
	if (exists) {
		c->sq->has_fts = 1;
		return HARK_OK;
	}
	/* sqlite3_compileoption_used("ENABLE_FTS5") misses a module loaded some
	 * other way: simply try, and undo on failure */
	rc = exec_sql(c, "SAVEPOINT fts", "create search index");
	if (rc != HARK_OK)
		return rc;
	r = sqlite3_exec(c->db, fts_sql, NULL, NULL, NULL);
	if (r == SQLITE_OK) {
		c->sq->has_fts = 1;
		return exec_sql(c, "RELEASE fts", "create search index");
	}
	if ((r & 0xff) == SQLITE_FULL || (r & 0xff) == SQLITE_IOERR || (r & 0xff) == SQLITE_NOMEM)
		return sq_err(c, r, "create search index");
	/* no FTS5 module: roll the attempt back, keep the rest of the schema */
	rc = exec_sql(c, "ROLLBACK TO fts", "create search index");
	if (rc == HARK_OK)
		rc = exec_sql(c, "RELEASE fts", "create search index");
	return rc;
}

/* WAL mode and the schema, on the first connection. */
static int init_db(struct conn *c)
{
	int rc = HARK_OK, r, version = -1;
	sqlite3_stmt *s = NULL;
	const unsigned char *mode;

	/* Switching a fresh file to WAL takes an exclusive lock and SQLite
	 * answers SQLITE_BUSY at once (no busy handler) when another process
	 * is opening the same new store: retry for a while. */
	for (int tries = 0;; tries++) {
		r = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
		if (r == SQLITE_OK)
			r = sqlite3_step(s);
		if ((r != SQLITE_BUSY && r != SQLITE_LOCKED) || tries >= 2000)
			break;
		sqlite3_finalize(s);
		s = NULL;
		sqlite3_sleep(5 + tries % 7);
	}
	if (r != SQLITE_ROW) {
		rc = sq_err(c, r, "open database");
		sqlite3_finalize(s);
		return rc;
	}
	mode = sqlite3_column_text(s, 0);
	if (!mode || strcmp((const char *)mode, "wal") != 0)
		rc = hark_store_set_errmsg(HARK_ERR_IO, "cannot switch %s to WAL mode (got %s)",
					   c->sq->path, mode ? (const char *)mode : "?");
	sqlite3_finalize(s);
	if (rc != HARK_OK)
		return rc;

	rc = exec_sql(c, "BEGIN IMMEDIATE", "begin schema transaction");
	if (rc != HARK_OK)
		return rc;
	r = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL);
	if (r == SQLITE_OK && (r = sqlite3_step(s)) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	else
		rc = sq_err(c, r, "read schema version");
	sqlite3_finalize(s);
	if (rc == HARK_OK && version >= 0 && version < SCHEMA_VERSION) {
		for (int v = version + 1; rc == HARK_OK && v <= SCHEMA_VERSION; v++) {
			rc = exec_sql(c, migrations[v], v == 1 ? "create schema" : "migrate schema");
			if (rc != HARK_OK && rc != HARK_ERR_IO && rc != HARK_ERR_NOMEM && v == 1)
				rc = hark_store_set_errmsg(
					HARK_ERR_CORRUPT,
					"%s is an SQLite database but not a hark store (%s)",
					c->sq->path, hark_store_errmsg(NULL));
			else if (rc != HARK_OK && rc != HARK_ERR_IO && rc != HARK_ERR_NOMEM)
				rc = hark_store_set_errmsg(
					HARK_ERR_CORRUPT,
					"%s: cannot migrate the hark store from schema version %d to "
					"%d (%s)",
					c->sq->path, v - 1, v, hark_store_errmsg(NULL));
		}
		if (rc == HARK_OK) {
			char sql[64];

			snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
			rc = exec_sql(c, sql, "set schema version");
		}
	} else if (rc == HARK_OK && version > SCHEMA_VERSION) {
		rc = hark_store_set_errmsg(HARK_ERR_UNSUPPORTED,
					   "%s has schema version %d; this hark knows up to %d",
					   c->sq->path, version, SCHEMA_VERSION);
	}
	if (rc == HARK_OK)
		rc = ensure_fts(c);
	if (rc == HARK_OK)
		rc = exec_sql(c, "COMMIT", "commit schema");
	if (rc != HARK_OK && !sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* True if path starts with the 16-byte SQLite 3 file header. */
static int has_sqlite_magic(const char *path)
{
	static const char magic[16] = "SQLite format 3";
	char head[16];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 1; /* unreadable: let SQLite report it */
	n = fread(head, 1, sizeof(head), f);
	fclose(f);
	return n == sizeof(head) && memcmp(head, magic, sizeof(head)) == 0;
}

void hark_store_sqlite_force_no_fts(int on)
{
	force_no_fts = on != 0;
}

static int sq_open(const char *location, const struct hark_store_params *p, void **be,
		   char *err, size_t errlen)
{
	char ebuf[512] = "";
	struct sq *sq = NULL;
	struct stat sb;
	int rc;

	*be = NULL;
	rc = mkdir_p(location, ebuf, sizeof(ebuf));
	if (rc != HARK_OK)
		goto out;
	if (access(location, R_OK | W_OK | X_OK) != 0) {
		hark_errbuf_set(ebuf, sizeof(ebuf), "data directory %s is not writable: %s", location,
			 strerror(errno));
		rc = HARK_ERR_PERMISSION;
		goto out;
	}
	sq = calloc(1, sizeof(*sq));
	if (!sq) {
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	pthread_mutex_init(&sq->lock, NULL);
	pthread_cond_init(&sq->cond, NULL);
	pthread_mutex_init(&sq->wlock, NULL);
	sq->dir = strdup(location);
	if (!sq->dir || asprintf(&sq->path, "%s/hark.db", location) < 0) {
		sq->path = NULL;
		rc = HARK_ERR_NOMEM;
		goto out;
	}
	if (stat(sq->path, &sb) == 0) {
		if (S_ISDIR(sb.st_mode)) {
			hark_errbuf_set(ebuf, sizeof(ebuf), "%s is a directory", sq->path);
			rc = HARK_ERR_IS_DIR;
			goto out;
		}
		if (access(sq->path, R_OK | W_OK) != 0) {
			hark_errbuf_set(ebuf, sizeof(ebuf), "%s is not readable and writable: %s",
				 sq->path, strerror(errno));
			rc = HARK_ERR_PERMISSION;
			goto out;
		}
		/* SQLite would silently reuse a short non-database file: check the magic */
		if (sb.st_size > 0 && !has_sqlite_magic(sq->path)) {
			hark_errbuf_set(ebuf, sizeof(ebuf),
				 "%s is not a hark database (not an SQLite file); move it away",
				 sq->path);
			rc = HARK_ERR_CORRUPT;
			goto out;
		}
	} else {
		/* create it private (0600): SQLite would use 0644, and its -wal and
		 * -shm files copy the database file's mode */
		int fd = open(sq->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd >= 0)
			close(fd);
	}
	sq->p = *p;
	if (!(sq->p.busy_timeout_s > 0))
		sq->p.busy_timeout_s = 10;
	rc = conn_open(sq, &sq->conns[0]);
	if (rc == HARK_OK) {
		sq->n_open = 1;
		rc = init_db(&sq->conns[0]);
	}
	if (rc != HARK_OK)
		hark_errbuf_set(ebuf, sizeof(ebuf), "%s", hark_store_errmsg(NULL));
out:
	if (rc != HARK_OK) {
		if (!ebuf[0])
			hark_errbuf_set(ebuf, sizeof(ebuf), "%s", hark_strerror(rc));
		hark_store_set_errmsg(rc, "%s", ebuf);
		if (err && errlen)
			hark_errbuf_set(err, errlen, "%s", ebuf);
		sq_free(sq);
		return rc;
	}
	*be = sq;
	return HARK_OK;
}

static void sq_close(void *be)
{
	sq_free(be);
}

int hark_store_sqlite_limit_pages(struct hark_store *st, long max_pages)
{
	struct sq *sq;

	if (!st || st->ops != &hark_store_sqlite_ops)
		return HARK_ERR_UNSUPPORTED;
	sq = st->be;
	pthread_mutex_lock(&sq->lock);
	sq->max_pages = max_pages;
	pthread_mutex_unlock(&sq->lock);
	return HARK_OK;
}

/* ---- jobs --------------------------------------------------------------------------------- */

static int sq_job_insert(void *be, const struct hark_job *j, struct hark_event *ev)
{
	struct sq *sq = be;
	struct hark_job row = *j; /* shallow: only the scalars are adjusted */
	struct conn *c = NULL;
	double now = hark_store_now();
	sqlite3_stmt *s;
	int rc;

	if (row.cached) {
		row.status = HARK_JOB_DONE;
		row.percent = 100;
		row.stage = (char *)"done";
		if (!(row.finished_at > 0))
			row.finished_at = now;
	} else {
		row.status = HARK_JOB_QUEUED;
		if (!row.stage)
			row.stage = (char *)"queued";
	}
	if (!row.options)
		row.options = (char *)"{}";
	if (!(row.created_at > 0))
		row.created_at = now;
	row.lease_owner[0] = '\0';
	row.lease_expires_at = 0;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_JOB_INSERT, &rc);
	if (!s)
		goto out;
	bind_job(s, &row);
	rc = run(c, s, "insert job");
	if (rc != HARK_OK)
		goto out;
	rc = append_event(c, &row, row.cached ? "done" : "queued", now, ev);
out:
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_find_done(void *be, const char *dedup_key, struct hark_job *out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_JOB_FIND_DONE, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, dedup_key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, hark_store_now());
	r = step_row(c, s, "find finished job", &rc);
	if (r == 0)
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no finished job with this content");
	else if (r > 0)
		rc = job_from_row(s, out);
out:
	return rend(sq, c, 0, rc);
}

static int sq_job_insert_cached(void *be, const struct hark_job *j, const char *source_id,
				struct hark_event *ev)
{
	struct sq *sq = be;
	struct hark_job row = *j, src;
	struct conn *c = NULL;
	double now = hark_store_now();
	sqlite3_stmt *s;
	int rc;

	memset(&src, 0, sizeof(src));
	row.status = HARK_JOB_DONE;
	row.cached = 1;
	row.percent = 100;
	row.eta_s = 0;
	row.stage = (char *)"done";
	if (!row.options)
		row.options = (char *)"{}";
	if (!(row.created_at > 0))
		row.created_at = now;
	if (!(row.started_at > 0))
		row.started_at = row.created_at;
	if (!(row.finished_at > 0))
		row.finished_at = now;
	row.lease_owner[0] = '\0';
	row.lease_expires_at = 0;
	row.error_code = row.error_message = NULL;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_job(c, source_id, &src);
	if (rc != HARK_OK)
		goto out;
	if (src.status != HARK_JOB_DONE) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "source job %s is not done",
					   source_id);
		goto out;
	}
	if (!(row.audio_s > 0))
		row.audio_s = src.audio_s;
	if (!row.timings)
		row.timings = src.timings;
	s = prep(c, S_JOB_INSERT, &rc);
	if (!s)
		goto out;
	bind_job(s, &row);
	rc = run(c, s, "insert cached job");
	if (rc != HARK_OK)
		goto out;
	s = prep(c, S_RESULTS_COPY, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, row.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, source_id, -1, SQLITE_STATIC);
	rc = run(c, s, "copy results");
	if (rc != HARK_OK)
		goto out;
	if (sqlite3_changes(c->db) == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "source job %s has no results",
					   source_id);
		goto out;
	}
	rc = append_event(c, &row, "done", now, ev);
	if (rc == HARK_OK)
		rc = enqueue_webhook(c, &row, now);
out:
	rc = wend(sq, c, rc);
	hark_job_clear(&src);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_get(void *be, const char *id, struct hark_job *out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	int rc = rbegin(sq, &c, 0);

	if (rc != HARK_OK)
		return rc;
	rc = load_job(c, id, out);
	return rend(sq, c, 0, rc);
}

static int sq_job_list(void *be, const struct hark_job_filter *f, struct hark_job **out,
		       size_t *n, char next_cursor[HARK_ID_LEN])
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job *arr = NULL;
	size_t limit = f->limit, cnt = 0;
	int variant = 0, rc, r;
	sqlite3_stmt *s;

	if (limit < 1)
		limit = 1;
	if (limit > LIST_MAX)
		limit = LIST_MAX;
	if (f->status >= 0)
		variant |= 1;
	if (f->key_id)
		variant |= 2;
	if (f->cursor && *f->cursor)
		variant |= 4;
	arr = calloc(limit + 1, sizeof(*arr));
	if (!arr)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory listing jobs");
	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK) {
		free(arr);
		return rc;
	}
	s = prep(c, S_LIST0 + variant, &rc);
	if (!s)
		goto out;
	sqlite3_bind_int(s, 1, f->status);
	bind_text(s, 2, f->key_id);
	bind_text(s, 3, f->cursor);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)limit + 1);
	while ((r = step_row(c, s, "list jobs", &rc)) > 0) {
		rc = job_from_row(s, &arr[cnt]);
		if (rc != HARK_OK) {
			sqlite3_reset(s);
			break;
		}
		if (++cnt == limit + 1) {
			sqlite3_reset(s);
			break;
		}
	}
out:
	rc = rend(sq, c, 0, rc);
	if (rc != HARK_OK) {
		hark_job_array_free(arr, cnt);
		return rc;
	}
	if (cnt == limit + 1) {
		hark_job_clear(&arr[limit]);
		cnt = limit;
		snprintf(next_cursor, HARK_ID_LEN, "%s", arr[limit - 1].id);
	}
	if (cnt == 0) {
		free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = cnt;
	return HARK_OK;
}

static int sq_job_claim(void *be, const int *prio_order, const char *owner, double now,
			double lease_s, struct hark_job *out, struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	char id[HARK_ID_LEN] = "";
	sqlite3_stmt *s;
	int rc, r;

	/* Idle workers poll: answer "nothing runnable" from a read snapshot
	 * without queueing for the write lock. A job queued right after this
	 * check is picked up by the next poll or wake-up. */
	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_CLAIM_ANY, &rc);
	if (s) {
		sqlite3_bind_double(s, 1, now);
		r = step_row(c, s, "look for runnable jobs", &rc);
		if (r > 0)
			sqlite3_reset(s);
		else if (r == 0)
			rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no runnable job");
	}
	rend(sq, c, 0, rc);
	c = NULL;
	if (rc != HARK_OK)
		return rc;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	for (int i = 0; i < HARK_PRIO_COUNT && !id[0]; i++) {
		s = prep(c, S_CLAIM_PICK, &rc);
		if (!s)
			goto out;
		sqlite3_bind_int(s, 1, prio_order[i]);
		sqlite3_bind_double(s, 2, now);
		r = step_row(c, s, "pick job", &rc);
		if (r < 0)
			goto out;
		if (r > 0) {
			col_copy(s, 0, id, sizeof(id));
			sqlite3_reset(s);
		}
	}
	if (!id[0]) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no runnable job");
		goto out;
	}
	s = prep(c, S_CLAIM_UPDATE, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, now + lease_s);
	sqlite3_bind_double(s, 4, now);
	rc = run(c, s, "claim job");
	if (rc != HARK_OK)
		goto out;
	if (sqlite3_changes(c->db) != 1) {
		rc = hark_store_set_errmsg(HARK_ERR_INTERNAL, "claimed job %s changed under the lock",
					   id);
		goto out;
	}
	rc = reload_and_event(c, id, "running", now, out, ev);
out:
	rc = wend(sq, c, rc);
	if (rc != HARK_OK) {
		hark_job_clear(out);
		hark_event_clear(ev);
	}
	return rc;
}

static int sq_job_heartbeat(void *be, const char *id, const char *owner, double lease_until,
			    int *cancel_requested)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	sqlite3_stmt *s;
	int rc;

	memset(&j, 0, sizeof(j));
	*cancel_requested = 0;
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_leased(c, id, owner, &j);
	if (rc != HARK_OK)
		goto out;
	*cancel_requested = j.cancel_requested;
	s = prep(c, S_HEARTBEAT, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, lease_until);
	rc = run(c, s, "heartbeat");
out:
	hark_job_clear(&j);
	return wend(sq, c, rc);
}

static int sq_job_progress(void *be, const char *id, const char *owner, const char *stage,
			   double percent, double eta_s, const char *timings,
			   struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	sqlite3_stmt *s;
	int rc, changed;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_leased(c, id, owner, &j);
	if (rc != HARK_OK)
		goto out;
	changed = !j.stage || strcmp(j.stage, stage) != 0;
	s = prep(c, S_PROGRESS, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, stage, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, percent);
	sqlite3_bind_double(s, 4, eta_s);
	bind_text(s, 5, timings);
	rc = run(c, s, "record progress");
	if (rc == HARK_OK)
		rc = reload_and_event(c, id, changed ? "stage" : "progress", hark_store_now(), &j,
				      ev);
out:
	hark_job_clear(&j);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_finish(void *be, const char *id, const char *owner,
			 const struct hark_result *results, size_t n, double audio_s,
			 const char *timings, struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	double now = hark_store_now();
	sqlite3_stmt *s;
	int rc;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_FINISH, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 3, audio_s);
	bind_text(s, 4, timings);
	sqlite3_bind_double(s, 5, now);
	rc = run(c, s, "finish job");
	if (rc != HARK_OK)
		goto out;
	if (sqlite3_changes(c->db) != 1) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND,
					   "job %s is not running under %s (lease lost)", id, owner);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		s = prep(c, S_RESULT_INSERT, &rc);
		if (!s)
			goto out;
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, results[i].format, -1, SQLITE_STATIC);
		sqlite3_bind_blob64(s, 3, results[i].body ? results[i].body : "",
				    (sqlite3_uint64)results[i].len, SQLITE_STATIC);
		rc = run(c, s, "store result");
		if (rc != HARK_OK)
			goto out;
	}
	rc = reload_and_event(c, id, "done", now, &j, ev);
	if (rc != HARK_OK)
		goto out;
	if (j.key_id[0] && audio_s > 0) {
		char day[11];

		hark_store_utc_day(now, day);
		s = prep(c, S_USAGE_ADD, &rc);
		if (!s)
			goto out;
		sqlite3_bind_text(s, 1, j.key_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, day, -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 3, audio_s);
		rc = run(c, s, "add usage");
		if (rc != HARK_OK)
			goto out;
	}
	rc = enqueue_webhook(c, &j, now);
out:
	hark_job_clear(&j);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_fail(void *be, const char *id, const char *owner, const char *code,
		       const char *message, double retry_at, struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	double now = hark_store_now();
	int rc;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_leased(c, id, owner, &j);
	if (rc != HARK_OK)
		goto out;
	if (retry_at > 0 && j.attempts < j.max_attempts) {
		if (j.cancel_requested)
			rc = to_canceled(c, &j, now, ev);
		else
			rc = to_requeued(c, &j, retry_at, now, ev);
	} else {
		rc = to_failed(c, &j, code, message, now, ev);
	}
out:
	hark_job_clear(&j);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_cancel(void *be, const char *id, int *status_out, struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	int rc;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_job(c, id, &j);
	if (rc != HARK_OK)
		goto out;
	*status_out = j.status;
	if (j.status == HARK_JOB_QUEUED)
		rc = to_canceled(c, &j, hark_store_now(), ev);
	else if (j.status == HARK_JOB_RUNNING)
		rc = update_id(c, S_CANCEL_REQ, id, 0, 0, "request cancel");
out:
	hark_job_clear(&j);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_canceled(void *be, const char *id, const char *owner, struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	int rc;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_leased(c, id, owner, &j);
	if (rc == HARK_OK)
		rc = to_canceled(c, &j, hark_store_now(), ev);
	hark_job_clear(&j);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

static int sq_job_release(void *be, const char *id, const char *owner, struct hark_event *ev)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_job j;
	double now = hark_store_now();
	int rc;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	rc = load_leased(c, id, owner, &j);
	if (rc != HARK_OK)
		goto out;
	if (j.cancel_requested) {
		/* the client asked to cancel: do not run it again */
		rc = to_canceled(c, &j, now, ev);
	} else {
		rc = update_id(c, S_RELEASE, id, 0, 0, "release job");
		if (rc == HARK_OK)
			rc = reload_and_event(c, id, "requeued", now, &j, ev);
	}
out:
	hark_job_clear(&j);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		hark_event_clear(ev);
	return rc;
}

/* Collects the first column (text ids) of a query into a heap array. */
static int collect_ids(struct conn *c, sqlite3_stmt *s, const char *what,
		       char (**ids)[HARK_ID_LEN], size_t *n)
{
	size_t cap = 0;
	int rc = HARK_OK, r;

	*ids = NULL;
	*n = 0;
	while ((r = step_row(c, s, what, &rc)) > 0) {
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char(*grown)[HARK_ID_LEN] = realloc(*ids, ncap * sizeof(**ids));

			if (!grown) {
				sqlite3_reset(s);
				return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
			}
			*ids = grown;
			cap = ncap;
		}
		col_copy(s, 0, (*ids)[*n], HARK_ID_LEN);
		(*n)++;
	}
	return r < 0 ? rc : HARK_OK;
}

static int sq_job_recover(void *be, double now, const char *owner_prefix, size_t *n_out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	char(*ids)[HARK_ID_LEN] = NULL;
	size_t n = 0;
	struct hark_job j;
	sqlite3_stmt *s;
	int rc;

	memset(&j, 0, sizeof(j));
	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_RECOVER_PICK, &rc);
	if (!s)
		goto out;
	sqlite3_bind_double(s, 1, now);
	bind_text(s, 2, owner_prefix);
	rc = collect_ids(c, s, "find stale jobs", &ids, &n);
	for (size_t i = 0; rc == HARK_OK && i < n; i++) {
		rc = load_job(c, ids[i], &j);
		if (rc != HARK_OK)
			break;
		if (j.cancel_requested)
			rc = to_canceled(c, &j, now, NULL);
		else if (j.attempts >= j.max_attempts)
			rc = to_failed(c, &j, "internal", "worker died repeatedly", now, NULL);
		else
			rc = to_requeued(c, &j, j.next_run_at < now ? j.next_run_at : now, now,
					 NULL);
		hark_job_clear(&j);
	}
out:
	free(ids);
	rc = wend(sq, c, rc);
	if (rc == HARK_OK)
		*n_out = n;
	return rc;
}

/* Deletes one finished job; orphan gets its blob sha if no job references it. */
static int purge_one(struct conn *c, const char *id, char orphan[HARK_SHA_HEX_LEN])
{
	struct hark_job j;
	sqlite3_stmt *s;
	int rc, r;

	orphan[0] = '\0';
	rc = load_job(c, id, &j);
	if (rc != HARK_OK)
		return rc;
	if (j.status == HARK_JOB_QUEUED || j.status == HARK_JOB_RUNNING) {
		rc = hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "job %s is %s; cancel it first",
					   id, hark_store_status_name(j.status));
		goto out;
	}
	rc = update_id(c, S_DEL_RESULTS, id, 0, 0, "delete results");
	if (rc == HARK_OK)
		rc = update_id(c, S_DEL_EVENTS, id, 0, 0, "delete events");
	if (rc == HARK_OK)
		rc = update_id(c, S_DEL_JOB, id, 0, 0, "delete job");
	if (rc != HARK_OK || !j.blob_sha[0])
		goto out;
	s = prep(c, S_BLOB_REF, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, j.blob_sha, -1, SQLITE_STATIC);
	r = step_row(c, s, "check blob references", &rc);
	if (r == 0)
		snprintf(orphan, HARK_SHA_HEX_LEN, "%s", j.blob_sha);
	else if (r > 0)
		sqlite3_reset(s);
out:
	hark_job_clear(&j);
	return rc;
}

static int sq_job_purge(void *be, const char *id, char orphan_sha[HARK_SHA_HEX_LEN])
{
	struct sq *sq = be;
	struct conn *c = NULL;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	rc = purge_one(c, id, orphan_sha);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK)
		orphan_sha[0] = '\0';
	return rc;
}

static int sq_sweep(void *be, double now, size_t limit, size_t *n_jobs,
		    char (**orphans)[HARK_SHA_HEX_LEN], size_t *n_orphans)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	char(*ids)[HARK_ID_LEN] = NULL;
	char(*orph)[HARK_SHA_HEX_LEN] = NULL;
	size_t n = 0, no = 0;
	sqlite3_stmt *s;
	int rc;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	/* expired LLM replies go in the same sweep, at most limit per call */
	s = prep(c, S_LLM_CACHE_SWEEP, &rc);
	if (!s)
		goto out;
	sqlite3_bind_double(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
	rc = run(c, s, "remove expired LLM replies");
	if (rc != HARK_OK)
		goto out;
	s = prep(c, S_SWEEP_PICK, &rc);
	if (!s)
		goto out;
	sqlite3_bind_double(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
	rc = collect_ids(c, s, "find expired jobs", &ids, &n);
	if (rc != HARK_OK || n == 0)
		goto out;
	orph = calloc(n, sizeof(*orph));
	if (!orph) {
		rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n && rc == HARK_OK; i++) {
		rc = purge_one(c, ids[i], orph[no]);
		if (rc == HARK_OK && orph[no][0])
			no++;
	}
out:
	free(ids);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK || no == 0) {
		free(orph);
		orph = NULL;
		no = 0;
	}
	if (rc == HARK_OK) {
		*n_jobs = n;
		*orphans = orph;
		*n_orphans = no;
	}
	return rc;
}

static int sq_job_counts(void *be, int64_t by_status[HARK_JOB_STATUS_COUNT],
			 int64_t queued_by_prio[HARK_PRIO_COUNT])
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 1);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_COUNT_STATUS, &rc);
	if (!s)
		goto out;
	while ((r = step_row(c, s, "count jobs", &rc)) > 0) {
		int st = sqlite3_column_int(s, 0);

		if (st >= 0 && st < HARK_JOB_STATUS_COUNT)
			by_status[st] = sqlite3_column_int64(s, 1);
	}
	if (r < 0)
		goto out;
	s = prep(c, S_COUNT_QUEUED, &rc);
	if (!s)
		goto out;
	while ((r = step_row(c, s, "count queued jobs", &rc)) > 0) {
		int p = sqlite3_column_int(s, 0);

		if (p >= 0 && p < HARK_PRIO_COUNT)
			queued_by_prio[p] = sqlite3_column_int64(s, 1);
	}
out:
	return rend(sq, c, 1, rc);
}

/* Runs a query with one text parameter whose single row/column is an integer. */
static int query_int64(struct sq *sq, int sid, const char *a, int64_t *out, const char *what)
{
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	*out = 0;
	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, sid, &rc);
	if (!s)
		goto out;
	bind_text(s, 1, a);
	r = step_row(c, s, what, &rc);
	if (r > 0) {
		*out = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	} else if (r == 0) {
		rc = HARK_ERR_NOT_FOUND;
	}
out:
	return rend(sq, c, 0, rc);
}

static int sq_key_running(void *be, const char *key_id, int64_t *n)
{
	return query_int64(be, S_KEY_RUNNING, key_id, n, "count running jobs");
}

static int sq_key_unfinished(void *be, const char *key_id, int64_t *n)
{
	return query_int64(be, S_KEY_UNFINISHED, key_id, n, "count unfinished jobs");
}

/* ---- results and events ------------------------------------------------------------ */

static int sq_result_get(void *be, const char *job_id, const char *format, char **body,
			 size_t *len)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_RESULT_GET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, format, -1, SQLITE_STATIC);
	r = step_row(c, s, "read result", &rc);
	if (r == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no %s result for job %s", format,
					   job_id);
	} else if (r > 0) {
		const void *p = sqlite3_column_blob(s, 0);
		size_t n = (size_t)sqlite3_column_bytes(s, 0);

		*body = malloc(n + 1);
		if (!*body) {
			rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory reading a result");
		} else {
			if (n)
				memcpy(*body, p, n);
			(*body)[n] = '\0';
			*len = n;
		}
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

static int sq_event_list(void *be, const char *job_id, int64_t after_seq, size_t limit,
			 struct hark_event **out, size_t *n)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_event *arr = NULL;
	size_t cap = 0, cnt = 0;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_EVENT_LIST, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, job_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, after_seq);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)limit);
	while ((r = step_row(c, s, "list events", &rc)) > 0) {
		struct hark_event *e;

		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct hark_event *grown = realloc(arr, ncap * sizeof(*arr));

			if (!grown) {
				rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
				sqlite3_reset(s);
				break;
			}
			arr = grown;
			cap = ncap;
		}
		e = &arr[cnt];
		memset(e, 0, sizeof(*e));
		e->seq = sqlite3_column_int64(s, 0);
		col_copy(s, 1, e->job_id, sizeof(e->job_id));
		col_copy(s, 2, e->type, sizeof(e->type));
		if (col_dup(s, 3, &e->data) != HARK_OK) {
			rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
			sqlite3_reset(s);
			break;
		}
		e->at = sqlite3_column_double(s, 4);
		cnt++;
	}
out:
	rc = rend(sq, c, 0, rc);
	if (rc != HARK_OK) {
		hark_event_array_free(arr, cnt);
		return rc;
	}
	if (cnt == 0) {
		free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = cnt;
	return HARK_OK;
}

/* ---- keys and usage ---------------------------------------------------------------- */

static int key_from_row(sqlite3_stmt *s, struct hark_key *k)
{
	memset(k, 0, sizeof(*k));
	col_copy(s, 0, k->id, sizeof(k->id));
	if (col_dup(s, 1, &k->name) != HARK_OK)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
	col_copy(s, 2, k->hash, sizeof(k->hash));
	col_copy(s, 3, k->prefix, sizeof(k->prefix));
	k->created_at = sqlite3_column_double(s, 4);
	k->revoked_at = sqlite3_column_double(s, 5);
	k->rate_rps = sqlite3_column_double(s, 6);
	k->rate_burst = sqlite3_column_double(s, 7);
	k->daily_quota_s = sqlite3_column_double(s, 8);
	k->max_concurrent = sqlite3_column_int(s, 9);
	return HARK_OK;
}

static int sq_key_insert(void *be, const struct hark_key *k)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_KEY_INSERT, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, k->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, k->name ? k->name : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, k->hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, k->prefix, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, k->created_at > 0 ? k->created_at : hark_store_now());
	sqlite3_bind_double(s, 6, k->revoked_at);
	sqlite3_bind_double(s, 7, k->rate_rps);
	sqlite3_bind_double(s, 8, k->rate_burst);
	sqlite3_bind_double(s, 9, k->daily_quota_s);
	sqlite3_bind_int(s, 10, k->max_concurrent);
	rc = run(c, s, "insert key");
	if (rc == HARK_OK)
		rc = exec_id(c, S_KEYS_BUMP, "bump keys version");
out:
	return wend(sq, c, rc);
}

static int sq_key_list(void *be, struct hark_key **out, size_t *n)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_key *arr = NULL;
	size_t cap = 0, cnt = 0;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_KEY_LIST, &rc);
	if (!s)
		goto out;
	while ((r = step_row(c, s, "list keys", &rc)) > 0) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct hark_key *grown = realloc(arr, ncap * sizeof(*arr));

			if (!grown) {
				rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
				sqlite3_reset(s);
				break;
			}
			arr = grown;
			cap = ncap;
		}
		rc = key_from_row(s, &arr[cnt]);
		if (rc != HARK_OK) {
			sqlite3_reset(s);
			break;
		}
		cnt++;
	}
out:
	rc = rend(sq, c, 0, rc);
	if (rc != HARK_OK) {
		hark_key_array_free(arr, cnt);
		return rc;
	}
	if (cnt == 0) {
		free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = cnt;
	return HARK_OK;
}

static int sq_key_revoke(void *be, const char *id_or_prefix, double now)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	char(*ids)[HARK_ID_LEN] = NULL;
	size_t n = 0;
	sqlite3_stmt *s;
	int rc;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_KEY_MATCH, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, id_or_prefix, -1, SQLITE_STATIC);
	rc = collect_ids(c, s, "find key", &ids, &n);
	if (rc != HARK_OK)
		goto out;
	if (n == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no key with id or prefix %s",
					   id_or_prefix);
		goto out;
	}
	if (n > 1) {
		rc = hark_store_set_errmsg(HARK_ERR_INVALID_ARG,
					   "%zu keys share the prefix %s; revoke by id", n,
					   id_or_prefix);
		goto out;
	}
	s = prep(c, S_KEY_REVOKE, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, ids[0], -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, now);
	rc = run(c, s, "revoke key");
	if (rc == HARK_OK && sqlite3_changes(c->db) > 0)
		rc = exec_id(c, S_KEYS_BUMP, "bump keys version");
out:
	free(ids);
	return wend(sq, c, rc);
}

static int sq_key_get_by_hash(void *be, const char *hash, struct hark_key *out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_KEY_BY_HASH, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	r = step_row(c, s, "find key", &rc);
	if (r == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "unknown key");
	} else if (r > 0) {
		rc = key_from_row(s, out);
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

static int sq_usage_get(void *be, const char *key_id, const char *day, double *audio_s)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	*audio_s = 0;
	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_USAGE_GET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, key_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, day, -1, SQLITE_STATIC);
	r = step_row(c, s, "read usage", &rc);
	if (r > 0) {
		*audio_s = sqlite3_column_double(s, 0);
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

/* ---- settings ------------------------------------------------------------------------ */

static int meta_read(struct conn *c, const char *name, char **value)
{
	sqlite3_stmt *s;
	int rc = HARK_OK, r;

	*value = NULL;
	s = prep(c, S_META_GET, &rc);
	if (!s)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = step_row(c, s, "read setting", &rc);
	if (r == 0)
		return hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no setting %s", name);
	if (r < 0)
		return rc;
	if (col_dup(s, 0, value) != HARK_OK || !*value)
		rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
	sqlite3_reset(s);
	return rc;
}

static int sq_keys_version(void *be, int64_t *version)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	char *v = NULL;
	int rc;

	*version = 0;
	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	rc = meta_read(c, "keys_version", &v);
	if (rc == HARK_OK)
		*version = strtoll(v, NULL, 10);
	else if (rc == HARK_ERR_NOT_FOUND)
		rc = hark_store_set_errmsg(HARK_OK, "%s", ""); /* none yet: version 0 */
	free(v);
	return rend(sq, c, 0, rc);
}

static int sq_meta_get(void *be, const char *name, char **value)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	int rc = rbegin(sq, &c, 0);

	if (rc != HARK_OK)
		return rc;
	rc = meta_read(c, name, value);
	return rend(sq, c, 0, rc);
}

static int meta_write(struct conn *c, int sid, const char *name, const char *value)
{
	int rc = HARK_OK;
	sqlite3_stmt *s = prep(c, sid, &rc);

	if (!s)
		return rc;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	return run(c, s, "write setting");
}

static int sq_meta_set(void *be, const char *name, const char *value)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	rc = meta_write(c, S_META_SET, name, value);
	return wend(sq, c, rc);
}

static int sq_meta_init(void *be, const char *name, const char *value, char **out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	rc = meta_write(c, S_META_INIT, name, value);
	if (rc == HARK_OK)
		rc = meta_read(c, name, out);
	rc = wend(sq, c, rc);
	if (rc != HARK_OK) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static int sq_ping_write(void *be)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	char now[32];
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	snprintf(now, sizeof(now), "%.3f", hark_store_now());
	rc = meta_write(c, S_META_SET, "last_ping", now);
	return wend(sq, c, rc);
}

/* ---- webhooks ------------------------------------------------------------------------- */

static int sq_webhook_next(void *be, double now, int max_attempts, struct hark_webhook *out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_WH_NEXT, &rc);
	if (!s)
		goto out;
	sqlite3_bind_double(s, 1, now);
	sqlite3_bind_int(s, 2, max_attempts);
	r = step_row(c, s, "read webhook", &rc);
	if (r == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no webhook due");
	} else if (r > 0) {
		out->id = sqlite3_column_int64(s, 0);
		col_copy(s, 1, out->job_id, sizeof(out->job_id));
		if (col_dup(s, 2, &out->url) != HARK_OK || col_dup(s, 3, &out->body) != HARK_OK ||
		    !out->url || !out->body) {
			hark_webhook_clear(out);
			rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
		}
		out->attempts = sqlite3_column_int(s, 4);
		out->next_at = sqlite3_column_double(s, 5);
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

static int sq_webhook_update(void *be, int64_t id, int ok, double next_at)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, ok ? S_WH_DELETE : S_WH_RETRY, &rc);
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	if (!ok)
		sqlite3_bind_double(s, 2, next_at);
	rc = run(c, s, "update webhook");
	if (rc == HARK_OK && sqlite3_changes(c->db) == 0)
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no webhook delivery %lld",
					   (long long)id);
out:
	return wend(sq, c, rc);
}

/* ---- LLM layer: reply cache, call accounting, shared rate limits ------------------------ */

/* Binds a fixed-size char array that may lack its NUL (read at most cap bytes). */
static void bind_fixed(sqlite3_stmt *s, int i, const char *v, size_t cap)
{
	sqlite3_bind_text(s, i, v, (int)strnlen(v, cap), SQLITE_STATIC);
}

static int sq_llm_cache_get(void *be, const char *hash, double now, char **value, size_t *len)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_CACHE_GET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, now);
	r = step_row(c, s, "read cached LLM reply", &rc);
	if (r == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no cached reply %s", hash);
	} else if (r > 0) {
		const void *p = sqlite3_column_blob(s, 0);
		size_t n = (size_t)sqlite3_column_bytes(s, 0);

		*value = malloc(n + 1);
		if (!*value) {
			rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory reading a reply");
		} else {
			if (n)
				memcpy(*value, p, n);
			(*value)[n] = '\0';
			*len = n;
		}
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

static int sq_llm_cache_put(void *be, const char *hash, const char *model, const char *value,
			    size_t len, double expires_at)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_CACHE_PUT, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, model, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 3, value, (sqlite3_uint64)len, SQLITE_STATIC);
	sqlite3_bind_double(s, 4, hark_store_now());
	sqlite3_bind_double(s, 5, expires_at);
	rc = run(c, s, "store LLM reply");
out:
	return wend(sq, c, rc);
}

static int sq_llm_cache_purge(void *be, double now, int64_t *n_out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_CACHE_PURGE, &rc);
	if (!s)
		goto out;
	sqlite3_bind_double(s, 1, now);
	rc = run(c, s, "remove expired LLM replies");
	if (rc == HARK_OK)
		*n_out = sqlite3_changes(c->db);
out:
	return wend(sq, c, rc);
}

static int sq_llm_call_add(void *be, const struct hark_llm_call *call)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_CALL_ADD, &rc);
	if (!s)
		goto out;
	sqlite3_bind_double(s, 1, call->at);
	bind_fixed(s, 2, call->job_id, sizeof(call->job_id));
	bind_fixed(s, 3, call->key_id, sizeof(call->key_id));
	bind_fixed(s, 4, call->task, sizeof(call->task));
	bind_fixed(s, 5, call->model, sizeof(call->model));
	bind_fixed(s, 6, call->kind, sizeof(call->kind));
	sqlite3_bind_int(s, 7, call->http_status);
	sqlite3_bind_int(s, 8, call->ok ? 1 : 0);
	sqlite3_bind_int(s, 9, call->cached ? 1 : 0);
	sqlite3_bind_int64(s, 10, call->tokens_in);
	sqlite3_bind_int64(s, 11, call->tokens_out);
	sqlite3_bind_double(s, 12, call->cost_usd);
	sqlite3_bind_double(s, 13, call->latency_s);
	rc = run(c, s, "record LLM call");
out:
	return wend(sq, c, rc);
}

static int sq_llm_usage(void *be, const char *job_id, const char *key_id, const char *model,
			double since, struct hark_llm_usage *out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int sid = S_LLM_USAGE0 + (job_id ? 1 : 0) + (key_id ? 2 : 0) + (model ? 4 : 0);
	int rc, r;

	rc = rbegin(sq, &c, 0);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, sid, &rc);
	if (!s)
		goto out;
	bind_text(s, 1, job_id);
	bind_text(s, 2, key_id);
	bind_text(s, 3, model);
	sqlite3_bind_double(s, 4, since);
	r = step_row(c, s, "sum LLM usage", &rc);
	if (r > 0) {
		out->calls = sqlite3_column_int64(s, 0);
		out->requests = sqlite3_column_int64(s, 1);
		out->cached = sqlite3_column_int64(s, 2);
		out->failed = sqlite3_column_int64(s, 3);
		out->tokens_in = sqlite3_column_int64(s, 4);
		out->tokens_out = sqlite3_column_int64(s, 5);
		out->cost_usd = sqlite3_column_double(s, 6);
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

/*
 * Whether one more request of `tokens` fits beside n reservations holding
 * tok tokens: an empty window admits anything (an oversize request could
 * never fit otherwise), else both limits must hold (0 = unlimited).
 */
static int rate_fits(int64_t n, double tok, double rpm, double tpm, double tokens)
{
	if (n <= 0)
		return 1;
	if (rpm > 0 && (double)n + 1 > rpm)
		return 0;
	if (tpm > 0 && tok + tokens > tpm)
		return 0;
	return 1;
}

/*
 * One reservation attempt in one write transaction (BEGIN IMMEDIATE also
 * serialises other processes): read the key's block, drop reservations long
 * gone, sum the ones inside the window (t + window > now), then either insert
 * (ticket = its id) or walk the window's reservations oldest first until
 * enough of them have left for both limits; the one whose departure makes
 * room gives retry_at = t + window, computed exactly as the sum computes it,
 * so a retry at retry_at is admitted when nothing else arrived meanwhile.
 *
 * Rows are deleted only once t + 2 x window <= now, not as soon as they
 * leave the window: a caller whose `now` is a little stale (it waited for the
 * write lock while another process went ahead with a later clock) still
 * sees every reservation that shares a window with its own. The sum filters
 * by time, so the extra rows never count.
 */
static int sq_llm_rate_acquire(void *be, const char *key, double rpm, double tpm,
			       double window_s, double tokens, double now, int *admitted,
			       double *retry_at, int64_t *ticket)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	double until = 0, tok = 0, retry = 0;
	int64_t n = 0;
	int rc, r, found = 0;

	rc = wbegin(sq, &c);
	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_RATE_BLOCK_GET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	r = step_row(c, s, "read rate block", &rc);
	if (r < 0)
		goto out;
	if (r > 0) {
		until = sqlite3_column_double(s, 0);
		sqlite3_reset(s);
	}
	if (rpm <= 0 && tpm <= 0) {
		/* unlimited: only a block holds it back; nothing to reserve */
		if (until > now)
			*retry_at = until;
		else
			*admitted = 1;
		goto out;
	}

	s = prep(c, S_LLM_RATE_PRUNE, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, 2 * window_s);
	sqlite3_bind_double(s, 3, now);
	rc = run(c, s, "prune rate window");
	if (rc != HARK_OK)
		goto out;

	s = prep(c, S_LLM_RATE_SUM, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, window_s);
	sqlite3_bind_double(s, 3, now);
	r = step_row(c, s, "sum rate window", &rc);
	if (r < 0)
		goto out;
	if (r > 0) {
		n = sqlite3_column_int64(s, 0);
		tok = sqlite3_column_double(s, 1);
		sqlite3_reset(s);
	}

	if (rate_fits(n, tok, rpm, tpm, tokens)) {
		if (until > now) {
			*retry_at = until;
			goto out;
		}
		s = prep(c, S_LLM_RATE_INSERT, &rc);
		if (!s)
			goto out;
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 2, now);
		sqlite3_bind_double(s, 3, tokens);
		rc = run(c, s, "reserve rate");
		if (rc != HARK_OK)
			goto out;
		*ticket = sqlite3_last_insert_rowid(c->db);
		*admitted = 1;
		goto out;
	}

	s = prep(c, S_LLM_RATE_WALK, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, window_s);
	sqlite3_bind_double(s, 3, now);
	while ((r = step_row(c, s, "walk rate window", &rc)) > 0) {
		double t = sqlite3_column_double(s, 0);

		n--;
		tok -= sqlite3_column_double(s, 1);
		if (rate_fits(n, tok, rpm, tpm, tokens)) {
			retry = t + window_s;
			found = 1;
			sqlite3_reset(s);
			break;
		}
	}
	if (r < 0)
		goto out;
	if (!found) {
		rc = hark_store_set_errmsg(HARK_ERR_INTERNAL, "rate window of %s changed while read",
					   key);
		goto out;
	}
	*retry_at = until > retry ? until : retry;
out:
	rc = wend(sq, c, rc);
	if (rc != HARK_OK) {
		*admitted = 0;
		*retry_at = 0;
		*ticket = 0;
	}
	return rc;
}

static int sq_llm_rate_adjust(void *be, int64_t ticket, double tokens)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_RATE_ADJUST, &rc);
	if (!s)
		goto out;
	sqlite3_bind_int64(s, 1, ticket);
	sqlite3_bind_double(s, 2, tokens);
	rc = run(c, s, "adjust rate reservation"); /* no row: expired ticket, ignored */
out:
	return wend(sq, c, rc);
}

static int sq_llm_rate_block(void *be, const char *key, double until)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_LLM_RATE_BLOCK_SET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 2, until);
	rc = run(c, s, "block rate key");
out:
	return wend(sq, c, rc);
}

/* ---- meeting analysis: meetings, chunk results, search documents, embeddings ---------- */

/* Runs statement sid with text ?1 = a. */
static int exec_text1(struct conn *c, int sid, const char *a, const char *what)
{
	int rc = HARK_OK;
	sqlite3_stmt *s = prep(c, sid, &rc);

	if (!s)
		return rc;
	sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
	return run(c, s, what);
}

/* Fills m from a row of MEETING_COLS. */
static int meeting_from_row(sqlite3_stmt *s, struct hark_meeting_rec *m)
{
	int bad = 0;

	memset(m, 0, sizeof(*m));
	bad |= col_dup(s, 0, &m->name);
	bad |= col_dup(s, 1, &m->source);
	col_copy(s, 2, m->content_sha, sizeof(m->content_sha));
	col_copy(s, 3, m->params_sha, sizeof(m->params_sha));
	bad |= col_dup(s, 4, &m->date);
	bad |= col_dup(s, 5, &m->method);
	bad |= col_dup(s, 6, &m->model);
	m->n_chunks = sqlite3_column_int64(s, 7);
	m->analyzed_at = sqlite3_column_double(s, 8);
	bad |= col_dup(s, 9, &m->minutes_json);
	bad |= col_dup(s, 10, &m->graph_json);
	if (bad || !m->name) {
		hark_meeting_rec_clear(m);
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory reading a meeting");
	}
	return HARK_OK;
}

static int sq_meeting_put(void *be, const struct hark_meeting_rec *m,
			  const struct hark_meeting_chunk *chunks, size_t n,
			  const struct hark_search_doc *docs, size_t n_docs)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	char sha[HARK_SHA_HEX_LEN];
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_MEETING_UPSERT, &rc);
	if (!s)
		goto out;
	bind_text(s, 1, m->name);
	bind_text(s, 2, m->source);
	bind_fixed(s, 3, m->content_sha, sizeof(m->content_sha));
	bind_fixed(s, 4, m->params_sha, sizeof(m->params_sha));
	bind_text(s, 5, m->date);
	bind_text(s, 6, m->method);
	bind_text(s, 7, m->model);
	sqlite3_bind_int64(s, 8, m->n_chunks);
	sqlite3_bind_double(s, 9, m->analyzed_at > 0 ? m->analyzed_at : hark_store_now());
	bind_text(s, 10, m->minutes_json);
	bind_text(s, 11, m->graph_json);
	rc = run(c, s, "store meeting");
	if (rc == HARK_OK)
		rc = exec_text1(c, S_MCHUNKS_DEL, m->name, "replace meeting chunks");
	for (size_t i = 0; rc == HARK_OK && i < n; i++) {
		s = prep(c, S_MCHUNK_INSERT, &rc);
		if (!s)
			break;
		sqlite3_bind_text(s, 1, m->name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, chunks[i].seq);
		bind_fixed(s, 3, chunks[i].chunk_sha, sizeof(chunks[i].chunk_sha));
		sqlite3_bind_double(s, 4, chunks[i].start_s);
		sqlite3_bind_double(s, 5, chunks[i].end_s);
		sqlite3_bind_int64(s, 6, chunks[i].first_turn);
		sqlite3_bind_int64(s, 7, chunks[i].last_turn);
		rc = run(c, s, "store meeting chunk");
	}
	if (rc == HARK_OK)
		rc = exec_text1(c, S_DOCS_DEL, m->name, "replace search documents");
	for (size_t i = 0; rc == HARK_OK && i < n_docs; i++) {
		const struct hark_search_doc *d = &docs[i];

		hark_store_key_hash(d->text, sha);
		if (!sha[0]) {
			rc = hark_store_set_errmsg(HARK_ERR_INTERNAL, "sha256 failed");
			break;
		}
		s = prep(c, S_DOC_INSERT, &rc);
		if (!s)
			break;
		sqlite3_bind_text(s, 1, m->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, d->kind, -1, SQLITE_STATIC);
		bind_text(s, 3, d->speaker && *d->speaker ? d->speaker : NULL);
		sqlite3_bind_text(s, 4, d->text, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 5, sha, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 6, d->chunk_sha ? d->chunk_sha : "", -1, SQLITE_STATIC);
		sqlite3_bind_double(s, 7, d->start_s);
		sqlite3_bind_double(s, 8, d->end_s);
		sqlite3_bind_int64(s, 9, d->turn);
		rc = run(c, s, "store search document");
	}
out:
	return wend(sq, c, rc);
}

static int sq_meeting_get(void *be, const char *name, struct hark_meeting_rec *out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = rbegin(sq, &c, 0), r;

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_MEETING_GET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = step_row(c, s, "read meeting", &rc);
	if (r == 0) {
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no analysed meeting named %s", name);
	} else if (r > 0) {
		rc = meeting_from_row(s, out);
		sqlite3_reset(s);
	}
out:
	return rend(sq, c, 0, rc);
}

#define MEETING_LIST_MAX 1000000

static int sq_meeting_list(void *be, int with_json, struct hark_meeting_rec **out, size_t *n)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_meeting_rec *v = NULL;
	size_t cap = 0, cnt = 0;
	sqlite3_stmt *s;
	int rc = rbegin(sq, &c, 0), r;

	if (rc != HARK_OK)
		return rc;
	s = prep(c, with_json ? S_MEETING_LIST : S_MEETING_LIST_NOJSON, &rc);
	if (!s)
		goto out;
	while ((r = step_row(c, s, "list meetings", &rc)) > 0) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct hark_meeting_rec *nv;

			if (cnt >= MEETING_LIST_MAX) {
				rc = hark_store_set_errmsg(HARK_ERR_LIMIT, "more than %d meetings",
							   MEETING_LIST_MAX);
				break;
			}
			nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		rc = meeting_from_row(s, &v[cnt]);
		if (rc != HARK_OK)
			break;
		cnt++;
	}
	if (r > 0)
		sqlite3_reset(s);
out:
	if (rc != HARK_OK) {
		hark_meeting_rec_array_free(v, cnt);
		v = NULL;
		cnt = 0;
	}
	*out = v;
	*n = cnt;
	return rend(sq, c, 0, rc);
}

static int sq_meeting_chunks(void *be, const char *name, struct hark_meeting_chunk **out,
			     size_t *n)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_meeting_chunk *v = NULL;
	size_t cap = 0, cnt = 0;
	sqlite3_stmt *s;
	int rc = rbegin(sq, &c, 1), r;

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_MEETING_EXISTS, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	r = step_row(c, s, "read meeting", &rc);
	if (r <= 0) {
		if (r == 0)
			rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no analysed meeting named %s",
						   name);
		goto out;
	}
	sqlite3_reset(s);
	s = prep(c, S_MCHUNKS_GET, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	while ((r = step_row(c, s, "read meeting chunks", &rc)) > 0) {
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			struct hark_meeting_chunk *nv;

			if (cnt >= HARK_STORE_CHUNKS_MAX) {
				rc = hark_store_set_errmsg(HARK_ERR_LIMIT, "too many chunks");
				break;
			}
			nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		memset(&v[cnt], 0, sizeof(v[cnt]));
		v[cnt].seq = sqlite3_column_int64(s, 0);
		col_copy(s, 1, v[cnt].chunk_sha, sizeof(v[cnt].chunk_sha));
		v[cnt].start_s = sqlite3_column_double(s, 2);
		v[cnt].end_s = sqlite3_column_double(s, 3);
		v[cnt].first_turn = (long)sqlite3_column_int64(s, 4);
		v[cnt].last_turn = (long)sqlite3_column_int64(s, 5);
		cnt++;
	}
	if (r > 0)
		sqlite3_reset(s);
out:
	if (rc != HARK_OK) {
		free(v);
		v = NULL;
		cnt = 0;
	}
	*out = v;
	*n = cnt;
	return rend(sq, c, 1, rc);
}

static int sq_meeting_delete(void *be, const char *name)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	rc = exec_text1(c, S_DOCS_DEL, name, "delete search documents");
	if (rc == HARK_OK)
		rc = exec_text1(c, S_MCHUNKS_DEL, name, "delete meeting chunks");
	if (rc == HARK_OK)
		rc = exec_text1(c, S_MEETING_DEL, name, "delete meeting");
	if (rc == HARK_OK && sqlite3_changes(c->db) == 0)
		rc = hark_store_set_errmsg(HARK_ERR_NOT_FOUND, "no analysed meeting named %s", name);
	return wend(sq, c, rc);
}

static int sq_chunk_result_get_many(void *be, const char *pipeline, const char *const *shas,
				    size_t n, char **out_json)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = rbegin(sq, &c, 1), r;

	if (rc != HARK_OK)
		return rc;
	for (size_t i = 0; rc == HARK_OK && i < n; i++) {
		s = prep(c, S_CHUNK_RESULT_GET, &rc);
		if (!s)
			break;
		sqlite3_bind_text(s, 1, shas[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, pipeline, -1, SQLITE_STATIC);
		r = step_row(c, s, "read chunk result", &rc);
		if (r > 0) {
			if (col_dup(s, 0, &out_json[i]) != HARK_OK || !out_json[i])
				rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
			sqlite3_reset(s);
		}
	}
	if (rc != HARK_OK) {
		for (size_t i = 0; i < n; i++) {
			free(out_json[i]);
			out_json[i] = NULL;
		}
	}
	return rend(sq, c, 1, rc);
}

static int sq_chunk_result_put(void *be, const char *chunk_sha, const char *pipeline,
			       const char *model, const char *json)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	s = prep(c, S_CHUNK_RESULT_PUT, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, chunk_sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, pipeline, -1, SQLITE_STATIC);
	bind_text(s, 3, model);
	sqlite3_bind_text(s, 4, json, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 5, hark_store_now());
	rc = run(c, s, "store chunk result");
out:
	return wend(sq, c, rc);
}

/* ---- search: query terms, snippets, the FTS5 path and the LIKE fallback ---- */

#define TERMS_MAX 32
#define TERM_LEN 64
#define SNIP_BEFORE 80
#define SNIP_LEN 280

struct terms {
	char t[TERMS_MAX][TERM_LEN + 1];
	size_t len[TERMS_MAX];
	size_t n;
};

/* A byte that belongs to a word: ASCII letter/digit or any byte of a UTF-8
 * multi-byte sequence (non-ASCII letters). */
static int word_byte(unsigned char b)
{
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
	       b >= 0x80;
}

static unsigned char lower_ascii(unsigned char b)
{
	return (b >= 'A' && b <= 'Z') ? (unsigned char)(b - 'A' + 'a') : b;
}

/* Crude suffix stripping for the fallback (which matches word prefixes):
 * plural s, -ing, -ed. */
static void stem_crude(char *w, size_t *len)
{
	size_t n = *len;

	if (n > 5 && memcmp(w + n - 3, "ing", 3) == 0)
		n -= 3;
	else if (n > 4 && memcmp(w + n - 2, "ed", 2) == 0)
		n -= 2;
	else if (n > 3 && w[n - 1] == 's' && w[n - 2] != 's')
		n -= 1;
	w[n] = '\0';
	*len = n;
}

static void terms_add(struct terms *t, const char *w, size_t len)
{
	char buf[TERM_LEN + 1];
	size_t n = len > TERM_LEN ? TERM_LEN : len;

	if (t->n >= TERMS_MAX || n == 0)
		return;
	while (n > 0 && len > n && ((unsigned char)w[n] & 0xc0) == 0x80)
		n--; /* do not cut a UTF-8 sequence */
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)lower_ascii((unsigned char)w[i]);
	buf[n] = '\0';
	if ((len == 2 && memcmp(w, "OR", 2) == 0) || (len == 3 && memcmp(w, "AND", 3) == 0) ||
	    (len == 3 && memcmp(w, "NOT", 3) == 0) || (len == 4 && memcmp(w, "NEAR", 4) == 0))
		return; /* a bare operator, not a term (terms come quoted) */
	stem_crude(buf, &n);
	for (size_t i = 0; i < t->n; i++)
		if (t->len[i] == n && memcmp(t->t[i], buf, n) == 0)
			return;
	memcpy(t->t[t->n], buf, n + 1);
	t->len[t->n++] = n;
}

/* The words of a query in the form hark_search builds ("a" OR "b"), bare
 * words too; operators and punctuation are skipped. */
static void terms_parse(const char *q, struct terms *t)
{
	const char *p = q;

	memset(t, 0, sizeof(*t));
	while (p && *p) {
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				const char *w;

				while (*p && *p != '"' && !word_byte((unsigned char)*p))
					p++;
				w = p;
				while (*p && *p != '"' && word_byte((unsigned char)*p))
					p++;
				if (p > w) {
					char buf[TERM_LEN + 8];
					size_t n = (size_t)(p - w);

					/* quoted words are never operators */
					if (n > TERM_LEN)
						n = TERM_LEN;
					memcpy(buf, w, n);
					buf[n] = '\0';
					for (size_t i = 0; i < n; i++)
						buf[i] = (char)lower_ascii((unsigned char)buf[i]);
					terms_add(t, buf, n);
				}
			}
			if (*p == '"')
				p++;
		} else if (word_byte((unsigned char)*p)) {
			const char *w = p;

			while (*p && word_byte((unsigned char)*p))
				p++;
			terms_add(t, w, (size_t)(p - w));
		} else {
			p++;
		}
	}
}

/* At a word start of text (pos), the index of the first term that prefixes
 * the word (ASCII case-insensitive), or -1. */
static int term_at(const char *text, size_t len, size_t pos, const struct terms *t)
{
	if (pos > 0 && word_byte((unsigned char)text[pos - 1]))
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t k;

		if (t->len[i] > len - pos)
			continue;
		for (k = 0; k < t->len[i]; k++)
			if (lower_ascii((unsigned char)text[pos + k]) != (unsigned char)t->t[i][k])
				break;
		if (k == t->len[i])
			return (int)i;
	}
	return -1;
}

/* Moves i back to the start of a UTF-8 sequence. */
static size_t utf8_back(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
		i--;
	return i;
}

/*
 * An excerpt of text around the first word that a term prefixes, with
 * every such word wrapped in «»; "…" marks cuts. Heap (NULL: no memory).
 */
static char *make_snippet(const char *text, const struct terms *t)
{
	size_t len = strlen(text), first = len, start = 0, end, o = 0;
	char *out;

	for (size_t i = 0; i < len && t && t->n; i++) {
		if (term_at(text, len, i, t) >= 0) {
			first = i;
			break;
		}
	}
	if (first < len && first > SNIP_BEFORE) {
		start = utf8_back(text, first - SNIP_BEFORE);
		while (start < first && word_byte((unsigned char)text[start]))
			start++; /* begin at a word boundary */
	}
	end = start + SNIP_LEN;
	if (end >= len) {
		end = len;
	} else {
		size_t e = end;

		while (e > start + SNIP_LEN / 2 && word_byte((unsigned char)text[e]))
			e--;
		end = e > start + SNIP_LEN / 2 ? e : utf8_back(text, end);
	}
	/* each byte may become at most "«" + byte + "»" (5 bytes) */
	out = malloc((end - start) * 5 + 16);
	if (!out)
		return NULL;
	if (start > 0) {
		memcpy(out, "\xe2\x80\xa6", 3);
		o = 3;
	}
	for (size_t i = start; i < end;) {
		if (t && t->n && term_at(text, len, i, t) >= 0) {
			size_t w = i;

			while (w < end && word_byte((unsigned char)text[w]))
				w++;
			if (w == i) { /* cannot happen: a term starts with a word byte */
				out[o++] = text[i++];
				continue;
			}
			memcpy(out + o, "\xc2\xab", 2);
			o += 2;
			memcpy(out + o, text + i, w - i);
			o += w - i;
			memcpy(out + o, "\xc2\xbb", 2);
			o += 2;
			i = w;
		} else {
			out[o++] = text[i++];
		}
	}
	if (end < len) {
		memcpy(out + o, "\xe2\x80\xa6", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

/* Fills h from a row of DOC_COLS. */
static int hit_from_row(sqlite3_stmt *s, struct hark_search_hit *h)
{
	int bad = 0;

	memset(h, 0, sizeof(*h));
	h->doc_id = sqlite3_column_int64(s, 0);
	bad |= col_dup(s, 1, &h->kind);
	bad |= col_dup(s, 2, &h->meeting);
	bad |= col_dup(s, 3, &h->speaker);
	bad |= col_dup(s, 4, &h->text);
	col_copy(s, 5, h->chunk_sha, sizeof(h->chunk_sha));
	h->start_s = sqlite3_column_double(s, 6);
	h->end_s = sqlite3_column_double(s, 7);
	h->turn = (long)sqlite3_column_int64(s, 8);
	if (bad || !h->kind || !h->meeting || !h->text)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory reading a document");
	return HARK_OK;
}

static int search_fts5(struct conn *c, const char *q, const char *kind, const char *meeting,
		       size_t limit, struct hark_search_hit *hits, size_t *n)
{
	sqlite3_stmt *s;
	int rc = HARK_OK, r = SQLITE_DONE;

	s = prep(c, S_SEARCH_FTS, &rc);
	if (!s)
		return rc;
	sqlite3_bind_text(s, 1, q, -1, SQLITE_STATIC);
	bind_text(s, 2, kind);
	bind_text(s, 3, meeting);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
	while (*n < limit && (r = sqlite3_step(s)) == SQLITE_ROW) {
		struct hark_search_hit *h = &hits[*n];

		rc = hit_from_row(s, h);
		(*n)++;
		if (rc == HARK_OK && col_dup(s, 9, &h->snippet) != HARK_OK)
			rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
		if (rc != HARK_OK)
			break;
		h->score = -sqlite3_column_double(s, 10);
		h->bm25_rank = (int)*n;
	}
	if (rc == HARK_OK && *n < limit && r != SQLITE_DONE) {
		if ((r & 0xff) == SQLITE_ERROR)
			rc = hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "invalid search query: %s",
						   sqlite3_errmsg(c->db));
		else
			rc = sq_err(c, r, "search");
	}
	sqlite3_reset(s);
	return rc;
}

/* Occurrences of terms at word starts in text: tf[i] per term, *len_out bytes. */
static void count_terms(const char *text, const struct terms *t, unsigned *tf)
{
	size_t len = strlen(text);

	memset(tf, 0, sizeof(unsigned) * t->n);
	for (size_t i = 0; i < len; i++) {
		int k;

		if (!word_byte((unsigned char)text[i]) ||
		    (i > 0 && word_byte((unsigned char)text[i - 1])))
			continue;
		k = term_at(text, len, i, t);
		if (k >= 0)
			tf[k]++;
	}
}

struct scored {
	int64_t id;
	double score;
};

/* Keeps the best limit entries of top (sorted by score desc, id asc). */
static void top_insert(struct scored *top, size_t *n, size_t limit, int64_t id, double score)
{
	size_t i;

	if (*n == limit && !(score > top[limit - 1].score ||
			     (score == top[limit - 1].score && id < top[limit - 1].id)))
		return;
	i = *n < limit ? (*n)++ : limit - 1;
	while (i > 0 && (top[i - 1].score < score ||
			 (top[i - 1].score == score && top[i - 1].id > id))) {
		top[i] = top[i - 1];
		i--;
	}
	top[i].id = id;
	top[i].score = score;
}

/*
 * The fallback without FTS5: two passes over the (filtered) documents, the
 * first counting document frequencies and the mean length, the second
 * scoring each matching document with the BM25 formula over word-prefix
 * matches (k1 1.2, b 0.75) and keeping the best limit; then the winners
 * are loaded with C-made snippets.
 */
static int search_like(struct conn *c, const char *q, const char *kind, const char *meeting,
		       size_t limit, struct hark_search_hit *hits, size_t *n)
{
	struct terms t;
	unsigned tf[TERMS_MAX], df[TERMS_MAX];
	double idf[TERMS_MAX], total_len = 0, avg = 1;
	struct scored *top = NULL;
	size_t n_top = 0, n_docs = 0;
	sqlite3_stmt *s;
	int rc = HARK_OK, r;

	terms_parse(q, &t);
	if (t.n == 0)
		return hark_store_set_errmsg(HARK_ERR_INVALID_ARG, "search query has no words");
	memset(df, 0, sizeof(df));
	top = calloc(limit, sizeof(*top));
	if (!top)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
	for (int pass = 0; pass < 2 && rc == HARK_OK; pass++) {
		s = prep(c, S_SEARCH_SCAN, &rc);
		if (!s)
			break;
		bind_text(s, 1, kind);
		bind_text(s, 2, meeting);
		if (pass == 1) {
			avg = n_docs ? total_len / (double)n_docs : 1;
			if (avg < 1)
				avg = 1;
			for (size_t k = 0; k < t.n; k++)
				idf[k] = log(1.0 + ((double)n_docs - df[k] + 0.5) / (df[k] + 0.5));
		}
		while ((r = step_row(c, s, "search", &rc)) > 0) {
			const unsigned char *txt = sqlite3_column_text(s, 1);
			double len, score = 0;
			int any = 0;

			if (!txt)
				continue;
			count_terms((const char *)txt, &t, tf);
			len = (double)sqlite3_column_bytes(s, 1);
			if (pass == 0) {
				n_docs++;
				total_len += len;
				for (size_t k = 0; k < t.n; k++)
					df[k] += tf[k] > 0;
				continue;
			}
			for (size_t k = 0; k < t.n; k++) {
				if (!tf[k])
					continue;
				any = 1;
				score += idf[k] * tf[k] * 2.2 /
					 (tf[k] + 1.2 * (0.25 + 0.75 * len / avg));
			}
			if (any)
				top_insert(top, &n_top, limit, sqlite3_column_int64(s, 0), score);
		}
	}
	for (size_t i = 0; rc == HARK_OK && i < n_top; i++) {
		s = prep(c, S_DOC_BY_ID, &rc);
		if (!s)
			break;
		sqlite3_bind_int64(s, 1, top[i].id);
		r = step_row(c, s, "read document", &rc);
		if (r <= 0)
			continue; /* gone meanwhile (cannot happen inside one read transaction) */
		rc = hit_from_row(s, &hits[*n]);
		(*n)++;
		sqlite3_reset(s);
		if (rc != HARK_OK)
			break;
		hits[*n - 1].snippet = make_snippet(hits[*n - 1].text, &t);
		if (!hits[*n - 1].snippet)
			rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
		hits[*n - 1].score = top[i].score;
		hits[*n - 1].bm25_rank = (int)*n;
	}
	free(top);
	return rc;
}

static int sq_search_bm25(void *be, const char *fts_query, const char *kind, const char *meeting,
			  size_t limit, struct hark_search_hit **out, size_t *n)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_search_hit *hits;
	size_t cnt = 0;
	int rc;

	hits = calloc(limit, sizeof(*hits));
	if (!hits)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
	rc = rbegin(sq, &c, 1);
	if (rc == HARK_OK) {
		if (sq->has_fts)
			rc = search_fts5(c, fts_query, kind, meeting, limit, hits, &cnt);
		else
			rc = search_like(c, fts_query, kind, meeting, limit, hits, &cnt);
		rc = rend(sq, c, 1, rc);
	}
	if (rc != HARK_OK) {
		hark_search_hits_free(hits, cnt);
		return rc;
	}
	if (cnt == 0) {
		free(hits);
		hits = NULL;
	}
	*out = hits;
	*n = cnt;
	return HARK_OK;
}

static int sq_search_docs_by_sha(void *be, const char *const *shas, size_t n, const char *kind,
				 const char *meeting, const char *highlight, size_t limit,
				 struct hark_search_hit **out, size_t *n_out)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	struct hark_search_hit *hits;
	struct terms t;
	size_t cnt = 0;
	sqlite3_stmt *s;
	int rc, r;

	terms_parse(highlight, &t);
	hits = calloc(limit, sizeof(*hits));
	if (!hits)
		return hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
	rc = rbegin(sq, &c, 1);
	for (size_t i = 0; rc == HARK_OK && i < n && cnt < limit; i++) {
		s = prep(c, S_DOCS_BY_SHA, &rc);
		if (!s)
			break;
		sqlite3_bind_text(s, 1, shas[i], -1, SQLITE_STATIC);
		bind_text(s, 2, kind);
		bind_text(s, 3, meeting);
		while (cnt < limit && (r = step_row(c, s, "read documents", &rc)) > 0) {
			rc = hit_from_row(s, &hits[cnt]);
			cnt++;
			if (rc == HARK_OK) {
				hits[cnt - 1].snippet = make_snippet(hits[cnt - 1].text, &t);
				if (!hits[cnt - 1].snippet)
					rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
			}
			if (rc != HARK_OK)
				break;
		}
		sqlite3_reset(s);
	}
	if (c)
		rc = rend(sq, c, 1, rc);
	if (rc != HARK_OK) {
		hark_search_hits_free(hits, cnt);
		return rc;
	}
	if (cnt == 0) {
		free(hits);
		hits = NULL;
	}
	*out = hits;
	*n_out = cnt;
	return HARK_OK;
}

static int sq_search_has_fts(void *be)
{
	return ((struct sq *)be)->has_fts;
}

static int sq_embedding_put_many(void *be, const char *model, const char *const *shas,
				 size_t n, const float *vecs, size_t dim)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = wbegin(sq, &c);

	if (rc != HARK_OK)
		return rc;
	for (size_t i = 0; rc == HARK_OK && i < n; i++) {
		s = prep(c, S_EMB_PUT, &rc);
		if (!s)
			break;
		sqlite3_bind_text(s, 1, shas[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, model, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, (sqlite3_int64)dim);
		sqlite3_bind_blob64(s, 4, vecs + i * dim, (sqlite3_uint64)(dim * sizeof(float)),
				    SQLITE_STATIC);
		rc = run(c, s, "store embedding");
	}
	return wend(sq, c, rc);
}

/* The vector of the current row (dim column, blob column), checked. */
static int row_vector(sqlite3_stmt *s, int dim_col, int vec_col, size_t *dim, const void **blob)
{
	sqlite3_int64 d = sqlite3_column_int64(s, dim_col);
	const void *b = sqlite3_column_blob(s, vec_col);
	size_t bytes = (size_t)sqlite3_column_bytes(s, vec_col);

	if (d <= 0 || d > HARK_STORE_EMBED_DIM_MAX || !b || bytes != (size_t)d * sizeof(float))
		return 0;
	*dim = (size_t)d;
	*blob = b;
	return 1;
}

static int sq_embedding_get_many(void *be, const char *model, const char *const *shas, size_t n,
				 float **vecs, size_t *dims)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	sqlite3_stmt *s;
	int rc = rbegin(sq, &c, 1), r;

	if (rc != HARK_OK)
		return rc;
	for (size_t i = 0; rc == HARK_OK && i < n; i++) {
		const void *blob;
		size_t dim;

		s = prep(c, S_EMB_GET, &rc);
		if (!s)
			break;
		sqlite3_bind_text(s, 1, shas[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, model, -1, SQLITE_STATIC);
		r = step_row(c, s, "read embedding", &rc);
		if (r <= 0)
			continue;
		if (row_vector(s, 0, 1, &dim, &blob)) {
			vecs[i] = malloc(dim * sizeof(float));
			if (!vecs[i])
				rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
			else {
				memcpy(vecs[i], blob, dim * sizeof(float));
				dims[i] = dim;
			}
		}
		sqlite3_reset(s);
	}
	if (rc != HARK_OK) {
		for (size_t i = 0; i < n; i++) {
			free(vecs[i]);
			vecs[i] = NULL;
			dims[i] = 0;
		}
	}
	return rend(sq, c, 1, rc);
}

static int sq_embedding_scan(void *be, const char *model,
			     int (*cb)(const char *text_sha, const float *v, size_t dim, void *ud),
			     void *ud)
{
	struct sq *sq = be;
	struct conn *c = NULL;
	float *buf = NULL;
	sqlite3_stmt *s;
	int rc = rbegin(sq, &c, 1), r;

	if (rc != HARK_OK)
		return rc;
	buf = malloc(HARK_STORE_EMBED_DIM_MAX * sizeof(float));
	if (!buf) {
		rc = hark_store_set_errmsg(HARK_ERR_NOMEM, "out of memory");
		goto out;
	}
	s = prep(c, S_EMB_SCAN, &rc);
	if (!s)
		goto out;
	sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
	while ((r = step_row(c, s, "scan embeddings", &rc)) > 0) {
		const unsigned char *sha = sqlite3_column_text(s, 0);
		const void *blob;
		size_t dim;

		if (!sha || !row_vector(s, 1, 2, &dim, &blob))
			continue; /* a malformed row is skipped, never read past its end */
		memcpy(buf, blob, dim * sizeof(float)); /* aligned copy */
		if (cb((const char *)sha, buf, dim, ud)) {
			sqlite3_reset(s);
			break;
		}
	}
out:
	free(buf);
	return rend(sq, c, 1, rc);
}

const struct hark_store_ops hark_store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.job_insert = sq_job_insert,
	.job_find_done = sq_job_find_done,
	.job_insert_cached = sq_job_insert_cached,
	.job_get = sq_job_get,
	.job_list = sq_job_list,
	.job_claim = sq_job_claim,
	.job_heartbeat = sq_job_heartbeat,
	.job_progress = sq_job_progress,
	.job_finish = sq_job_finish,
	.job_fail = sq_job_fail,
	.job_cancel = sq_job_cancel,
	.job_canceled = sq_job_canceled,
	.job_release = sq_job_release,
	.job_recover = sq_job_recover,
	.job_purge = sq_job_purge,
	.sweep = sq_sweep,
	.job_counts = sq_job_counts,
	.key_running = sq_key_running,
	.key_unfinished = sq_key_unfinished,
	.result_get = sq_result_get,
	.event_list = sq_event_list,
	.key_insert = sq_key_insert,
	.key_list = sq_key_list,
	.key_revoke = sq_key_revoke,
	.key_get_by_hash = sq_key_get_by_hash,
	.usage_get = sq_usage_get,
	.keys_version = sq_keys_version,
	.webhook_next = sq_webhook_next,
	.webhook_update = sq_webhook_update,
	.meta_get = sq_meta_get,
	.meta_set = sq_meta_set,
	.meta_init = sq_meta_init,
	.ping_write = sq_ping_write,
	.llm_cache_get = sq_llm_cache_get,
	.llm_cache_put = sq_llm_cache_put,
	.llm_cache_purge = sq_llm_cache_purge,
	.llm_call_add = sq_llm_call_add,
	.llm_usage = sq_llm_usage,
	.llm_rate_acquire = sq_llm_rate_acquire,
	.llm_rate_adjust = sq_llm_rate_adjust,
	.llm_rate_block = sq_llm_rate_block,
	.meeting_put = sq_meeting_put,
	.meeting_get = sq_meeting_get,
	.meeting_list = sq_meeting_list,
	.meeting_chunks = sq_meeting_chunks,
	.meeting_delete = sq_meeting_delete,
	.chunk_result_get_many = sq_chunk_result_get_many,
	.chunk_result_put = sq_chunk_result_put,
	.search_bm25 = sq_search_bm25,
	.search_docs_by_sha = sq_search_docs_by_sha,
	.search_has_fts = sq_search_has_fts,
	.embedding_put_many = sq_embedding_put_many,
	.embedding_get_many = sq_embedding_get_many,
	.embedding_scan = sq_embedding_scan,
};
