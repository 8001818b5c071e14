/*
 * Video encoder behind video.h. The input's audio is decoded twice through
 * hark's audio decoder at the source rate (clamped to a rate the AAC encoder
 * takes) with up to two channels: a first streaming pass counts the samples,
 * which fixes the duration and so the frame count, the second feeds the AAC
 * encoder in frame_size chunks while the video is encoded, so memory stays
 * flat for any length. Frames are painted by worker threads into a ring of
 * 2 * threads + 2 cairo ARGB32 surfaces (frame k uses slot k mod ring; a
 * worker may take frame k only once frame k - ring was consumed); the
 * calling thread takes them in order, converts each with libswscale into one
 * YUV 4:2:0 AVFrame (BT.709, limited range), sends it to libx264 and after
 * each frame encodes the audio up to the same time, so libavformat's
 * interleaver only holds the encoders' delay. A frame whose key equals its
 * predecessor's is neither painted nor converted: the previous YUV frame is
 * sent again with the next timestamp. Output goes through our own file
 * descriptor (a custom AVIOContext, so the path is never parsed as a URL and
 * write errors keep their errno) to an O_EXCL temporary beside out_path,
 * renamed over out_path only after the trailer is written and the file
 * closed cleanly; every failure unlinks it.
 */
#include "render/video.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "audio/audio.h"
#include "hark/hark.h"
#include "util/errbuf.h"

#define IO_BUF_SIZE (256 * 1024)
#define MAX_THREADS 64
#define MIN_AUDIO_RATE 8000
#define MAX_AUDIO_RATE 96000
#define GOP_SECONDS 10
#define PROGRESS_STEPS 1000
#define TMP_TRIES 64

/* avio write callbacks take a const buffer from libavformat 61 on */
#if LIBAVFORMAT_VERSION_MAJOR < 61
#define IO_WRITE_BUF uint8_t *
#else
#define IO_WRITE_BUF const uint8_t *
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define CAIRO_PIX_FMT AV_PIX_FMT_0RGB    /* ARGB32 as bytes on big-endian */
#else
#define CAIRO_PIX_FMT AV_PIX_FMT_BGR0    /* ARGB32 as bytes on little-endian */
#endif

static const char *const presets[] = {"ultrafast", "superfast", "veryfast", "faster",
				      "fast", "medium", "slow", "slower", "veryslow",
				      "placebo", NULL};

/* One ring entry: the surface frame `frame` is painted into. */
struct slot {
	cairo_surface_t *surf;
	long frame;              /* frame held, -1 = none */
	int ready;               /* painted (or judged a repeat) */
	int reuse;               /* same key as the previous frame: not painted */
	int err;                 /* painter's error, 0 if none */
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t cv_work;  /* a slot was freed, or stop */
	pthread_cond_t cv_done;  /* a frame became ready */
	const struct hark_video_params *p;
	struct slot *slots;
	int nslots;
	long total;              /* frames in the video */
	long next;               /* next frame a worker takes */
	long consumed;           /* frames the encoder has taken */
	int stop;
	double paint_s;          /* summed over workers */
};

/* The output file: our descriptor behind a custom AVIOContext. */
struct out_file {
	int fd;
	int io_errno;            /* first write/seek failure */
	char *tmp_path;          /* NULL until created */
};

/* Audio side: decoder feeding the AAC encoder. */
struct audio_feed {
	struct hark_audio *dec;
	const float *chunk;      /* interleaved frames from hark_audio_read */
	size_t chunk_n, chunk_off;
	int eof;
	int nch;
	int64_t next_pts;        /* samples sent to the encoder so far */
	AVCodecContext *enc;
	AVStream *st;
	AVFrame *frame;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct hark_video_params hark_video_default_params(void)
{
	struct hark_video_params p = {
		.width = 1280,
		.height = 720,
		.fps = 30,
		.threads = 0,
		.crf = 23,
		.preset = "ultrafast",
		.audio_bitrate = 128000,
	};
	return p;
}

static int check_params(const char *audio_path, const char *out_path,
			const struct hark_video_params *p, char *err, size_t errlen)
{
	int known = 0;

	if (!audio_path || !*audio_path || !out_path || !*out_path) {
		hark_errbuf_set(err, errlen, "missing input or output path");
		return HARK_ERR_INVALID_ARG;
	}
	if (!p || !p->paint) {
		hark_errbuf_set(err, errlen, "no painter given");
		return HARK_ERR_INVALID_ARG;
	}
	if (p->width < 64 || p->width > 3840 || p->height < 64 || p->height > 2160 ||
	    (p->width & 1) || (p->height & 1)) {
		hark_errbuf_set(err, errlen, "video size %dx%d: width and height must be even, "
				"64..3840 x 64..2160", p->width, p->height);
		return HARK_ERR_INVALID_ARG;
	}
	if (p->fps < 1 || p->fps > 60) {
		hark_errbuf_set(err, errlen, "frame rate %d outside 1..60", p->fps);
		return HARK_ERR_INVALID_ARG;
	}
	if (p->threads < 0 || p->threads > MAX_THREADS) {
		hark_errbuf_set(err, errlen, "threads %d outside 0..%d", p->threads, MAX_THREADS);
		return HARK_ERR_INVALID_ARG;
	}
	if (p->crf < 0 || p->crf > 51) {
		hark_errbuf_set(err, errlen, "crf %d outside 0..51", p->crf);
		return HARK_ERR_INVALID_ARG;
	}
	if (p->audio_bitrate < 8000 || p->audio_bitrate > 512000) {
		hark_errbuf_set(err, errlen, "audio bitrate %d outside 8000..512000",
				p->audio_bitrate);
		return HARK_ERR_INVALID_ARG;
	}
	for (int i = 0; p->preset && presets[i]; i++)
		known |= !strcmp(p->preset, presets[i]);
	if (p->preset && !known) {
		hark_errbuf_set(err, errlen, "unknown x264 preset '%s'", p->preset);
		return HARK_ERR_INVALID_ARG;
	}
	return HARK_OK;
}

/* errno of a failed write/create/rename to a hark error. */
static int map_write_errno(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
		return HARK_ERR_PERMISSION;
	case ENOENT:
	case ENOTDIR:
		return HARK_ERR_NOT_FOUND;
	case EISDIR:
		return HARK_ERR_IS_DIR;
	case ENOMEM:
		return HARK_ERR_NOMEM;
	default:
		return HARK_ERR_IO;
	}
}

/* ------------------------------------------------------------ output --- */

static int io_write(void *opaque, IO_WRITE_BUF buf, int size)
{
	struct out_file *o = opaque;
	int done = 0;

	while (done < size) {
		ssize_t n = write(o->fd, buf + done, (size_t)(size - done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!o->io_errno)
				o->io_errno = n < 0 ? errno : ENOSPC;
			return AVERROR(o->io_errno);
		}
		done += (int)n;
	}
	return size;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
	struct out_file *o = opaque;
	struct stat st;
	off_t r;

	if (whence & AVSEEK_SIZE) {
		if (fstat(o->fd, &st) != 0)
			return AVERROR(errno);
		return (int64_t)st.st_size;
	}
	whence &= ~AVSEEK_FORCE;
	r = lseek(o->fd, (off_t)off, whence);
	if (r < 0) {
		if (!o->io_errno)
			o->io_errno = errno;
		return AVERROR(errno);
	}
	return (int64_t)r;
}

/* Create "<out_path>.tmp-XXXXXX" exclusively, mode 0666 minus umask. */
static int create_tmp(struct out_file *o, const char *out_path, char *err, size_t errlen)
{
	static atomic_uint counter;
	size_t n = strlen(out_path) + 32;
	int e = 0;

	o->tmp_path = malloc(n);
	if (!o->tmp_path)
		return HARK_ERR_NOMEM;
	for (int i = 0; i < TMP_TRIES; i++) {
		unsigned v = (unsigned)getpid() * 2654435761u ^
			     (unsigned)atomic_fetch_add(&counter, 1) * 40503u ^
			     (unsigned)(now_s() * 1e6);

		snprintf(o->tmp_path, n, "%s.tmp-%06x", out_path, v & 0xffffffu);
		o->fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (o->fd >= 0)
			return HARK_OK;
		e = errno;
		if (e != EEXIST)
			break;
	}
	free(o->tmp_path);
	o->tmp_path = NULL;
	hark_errbuf_set(err, errlen, "cannot create the output file: %s", strerror(e));
	return map_write_errno(e);
}

/* ------------------------------------------------------------ workers -- */

static int painter_error(int r)
{
	return r > 0 && r < HARK_ERR__COUNT ? r : HARK_ERR_INTERNAL;
}

/* Paint (or judge a repeat) frame k into slot s; called without the lock. */
static void render_frame(const struct hark_video_params *p, struct slot *s, long k,
			 int *reuse, int *err)
{
	double t = (double)k / p->fps;
	cairo_t *cr;
	int r;

	*reuse = 0;
	*err = 0;
	if (p->key && k > 0 &&
	    p->key(t, k, p->paint_user_data) ==
	    p->key((double)(k - 1) / p->fps, k - 1, p->paint_user_data)) {
		*reuse = 1;
		return;
	}
	cr = cairo_create(s->surf);
	if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
		cairo_destroy(cr);
		*err = HARK_ERR_NOMEM;
		return;
	}
	r = p->paint(cr, t, k, p->width, p->height, p->paint_user_data);
	if (r)
		*err = painter_error(r);
	else if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
		*err = cairo_status(cr) == CAIRO_STATUS_NO_MEMORY ? HARK_ERR_NOMEM :
		       HARK_ERR_INTERNAL;
	cairo_destroy(cr);
	cairo_surface_flush(s->surf);
}

static void *worker_main(void *arg)
{
	struct pool *pl = arg;

	pthread_mutex_lock(&pl->mu);
	for (;;) {
		struct slot *s;
		long k;
		int reuse, err;
		double t0;

		while (!pl->stop && pl->next < pl->total &&
		       pl->next >= pl->consumed + pl->nslots)
			pthread_cond_wait(&pl->cv_work, &pl->mu);
		if (pl->stop || pl->next >= pl->total)
			break;
		k = pl->next++;
		s = &pl->slots[k % pl->nslots];
		pthread_mutex_unlock(&pl->mu);

		t0 = now_s();
		render_frame(pl->p, s, k, &reuse, &err);
		t0 = now_s() - t0;

		pthread_mutex_lock(&pl->mu);
		s->frame = k;
		s->reuse = reuse;
		s->err = err;
		s->ready = 1;
		pl->paint_s += t0;
		pthread_cond_broadcast(&pl->cv_done);
	}
	pthread_mutex_unlock(&pl->mu);
	return NULL;
}

/* ------------------------------------------------------------- audio --- */

/* The AAC encoder's rate nearest at or above src (its highest if none). */
static int aac_rate(const AVCodec *c, int src)
{
	int best = 0, top = 0;

	if (src < MIN_AUDIO_RATE)
		src = MIN_AUDIO_RATE;
	if (src > MAX_AUDIO_RATE)
		src = MAX_AUDIO_RATE;
	if (!c->supported_samplerates)
		return src;
	for (const int *r = c->supported_samplerates; *r; r++) {
		if (*r > top)
			top = *r;
		if (*r >= src && (!best || *r < best))
			best = *r;
	}
	return best ? best : top;
}

/* Deinterleave up to frame_size frames into af->frame; sets *got. */
static int audio_fill(struct audio_feed *af, int *got, char *err, size_t errlen)
{
	AVFrame *f = af->frame;
	int want = af->enc->frame_size > 0 ? af->enc->frame_size : 1024;
	int n = 0, ret;

	ret = av_frame_make_writable(f);
	if (ret < 0)
		return HARK_ERR_NOMEM;
	while (n < want && !af->eof) {
		size_t take;

		if (af->chunk_off >= af->chunk_n) {
			ret = hark_audio_read(af->dec, &af->chunk, &af->chunk_n, err, errlen);
			if (ret)
				return ret;
			af->chunk_off = 0;
			if (af->chunk_n == 0) {
				af->eof = 1;
				break;
			}
		}
		take = af->chunk_n - af->chunk_off;
		if (take > (size_t)(want - n))
			take = (size_t)(want - n);
		for (int c = 0; c < af->nch; c++) {
			float *dst = (float *)f->extended_data[c] + n;
			const float *src = af->chunk + af->chunk_off * (size_t)af->nch + (size_t)c;

			for (size_t i = 0; i < take; i++)
				dst[i] = src[i * (size_t)af->nch];
		}
		af->chunk_off += take;
		n += (int)take;
	}
	f->nb_samples = n;
	*got = n;
	return HARK_OK;
}

/* ------------------------------------------------------------- muxing -- */

struct muxer {
	AVFormatContext *fmt;
	struct out_file *out;
	AVPacket *pkt;
};

static int mux_error(const struct muxer *m, int averr, const char *what, char *err,
		     size_t errlen)
{
	if (m->out->io_errno) {
		hark_errbuf_set(err, errlen, "writing the video failed: %s",
				strerror(m->out->io_errno));
		return map_write_errno(m->out->io_errno);
	}
	if (averr == AVERROR(ENOMEM))
		return HARK_ERR_NOMEM;
	hark_errbuf_set(err, errlen, "%s failed: %s", what, av_err2str(averr));
	return HARK_ERR_INTERNAL;
}

/* Move every packet the encoder has ready into the interleaver. */
static int drain(struct muxer *m, AVCodecContext *enc, AVStream *st, char *err,
		 size_t errlen)
{
	int ret;

	for (;;) {
		ret = avcodec_receive_packet(enc, m->pkt);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
			return HARK_OK;
		if (ret < 0)
			return mux_error(m, ret, "encoding", err, errlen);
		if (m->pkt->duration == 0 && enc->codec_type == AVMEDIA_TYPE_VIDEO)
			m->pkt->duration = 1;
		av_packet_rescale_ts(m->pkt, enc->time_base, st->time_base);
		m->pkt->stream_index = st->index;
		ret = av_interleaved_write_frame(m->fmt, m->pkt);
		av_packet_unref(m->pkt);
		if (ret < 0)
			return mux_error(m, ret, "writing a packet", err, errlen);
	}
}

/* Encode audio until `until` samples were sent (or the end; flush then). */
static int audio_until(struct muxer *m, struct audio_feed *af, int64_t until, int flush,
		       char *err, size_t errlen)
{
	int ret, got;

	while (!af->eof && af->next_pts < until) {
		if ((ret = audio_fill(af, &got, err, errlen)))
			return ret;
		if (got == 0)
			break;
		af->frame->pts = af->next_pts;
		af->next_pts += got;
		ret = avcodec_send_frame(af->enc, af->frame);
		if (ret < 0)
			return mux_error(m, ret, "audio encoding", err, errlen);
		if ((ret = drain(m, af->enc, af->st, err, errlen)))
			return ret;
	}
	if (flush) {
		ret = avcodec_send_frame(af->enc, NULL);
		if (ret < 0 && ret != AVERROR_EOF)
			return mux_error(m, ret, "audio encoding", err, errlen);
		return drain(m, af->enc, af->st, err, errlen);
	}
	return HARK_OK;
}

/* First pass: how many sample frames does the audio really hold? */
static int count_samples(const char *path, const struct hark_audio_params *ap,
			 const struct hark_video_params *p, int64_t *total, char *err,
			 size_t errlen)
{
	struct hark_audio *a = NULL;
	const float *pcm;
	size_t n;
	int ret;

	*total = 0;
	if ((ret = hark_audio_open(path, ap, &a, err, errlen)))
		goto out;
	for (;;) {
		if (p->cancel && p->cancel(p->cb_user_data)) {
			hark_errbuf_set(err, errlen, "canceled");
			ret = HARK_ERR_CANCELED;
			goto out;
		}
		if ((ret = hark_audio_read(a, &pcm, &n, err, errlen)))
			goto out;
		if (n == 0)
			break;
		*total += (int64_t)n;
	}
	if (*total == 0) {
		hark_errbuf_set(err, errlen, "the audio holds no samples");
		ret = HARK_ERR_EMPTY;
	}
out:
	hark_audio_close(a);
	return ret;
}

static int open_video_encoder(AVCodecContext **out, const struct hark_video_params *p,
			      int global_header, char *err, size_t errlen)
{
	const AVCodec *c = avcodec_find_encoder_by_name("libx264");
	AVCodecContext *enc;
	char crf[16];
	int ret;

	if (!c) {
		hark_errbuf_set(err, errlen, "this FFmpeg has no libx264 H.264 encoder");
		return HARK_ERR_UNSUPPORTED;
	}
	enc = avcodec_alloc_context3(c);
	if (!enc)
		return HARK_ERR_NOMEM;
	*out = enc;
	enc->width = p->width;
	enc->height = p->height;
	enc->pix_fmt = AV_PIX_FMT_YUV420P;
	enc->time_base = (AVRational){1, p->fps};
	enc->framerate = (AVRational){p->fps, 1};
	enc->gop_size = GOP_SECONDS * p->fps;
	/* libavcodec's default is one thread; let x264 use the cores (its
	 * frame threads overlap with our painters, which are idle most of the
	 * time because unchanged frames are reused) */
	enc->thread_count = 0;
	enc->color_range = AVCOL_RANGE_MPEG;
	enc->color_primaries = AVCOL_PRI_BT709;
	enc->color_trc = AVCOL_TRC_BT709;
	enc->colorspace = AVCOL_SPC_BT709;
	if (global_header)
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	snprintf(crf, sizeof(crf), "%d", p->crf);
	if (av_opt_set(enc->priv_data, "preset", p->preset ? p->preset : "ultrafast", 0) < 0 ||
	    av_opt_set(enc->priv_data, "crf", crf, 0) < 0 ||
	    /* lossless (crf 0) needs the High 4:4:4 Predictive profile */
	    (p->crf > 0 && av_opt_set(enc->priv_data, "profile", "high", 0) < 0)) {
		hark_errbuf_set(err, errlen, "libx264 rejected its options");
		return HARK_ERR_UNSUPPORTED;
	}
	ret = avcodec_open2(enc, c, NULL);
	if (ret < 0) {
		hark_errbuf_set(err, errlen, "cannot open libx264: %s", av_err2str(ret));
		return ret == AVERROR(ENOMEM) ? HARK_ERR_NOMEM : HARK_ERR_UNSUPPORTED;
	}
	return HARK_OK;
}

static int open_audio_encoder(AVCodecContext **out, const AVCodec *c, int rate, int nch,
			      int bitrate, int global_header, char *err, size_t errlen)
{
	AVCodecContext *enc = avcodec_alloc_context3(c);
	int ret;

	if (!enc)
		return HARK_ERR_NOMEM;
	*out = enc;
	enc->sample_fmt = AV_SAMPLE_FMT_FLTP;
	enc->sample_rate = rate;
	av_channel_layout_default(&enc->ch_layout, nch);
	enc->bit_rate = bitrate;
	enc->time_base = (AVRational){1, rate};
	if (global_header)
		enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	/* the "fast" coder: speech at 128 kb/s sounds the same, at a fraction
	 * of the default two-loop search's cost (best effort: an encoder
	 * without the option keeps its default) */
	av_opt_set(enc->priv_data, "aac_coder", "fast", 0);
	ret = avcodec_open2(enc, c, NULL);
	if (ret < 0) {
		hark_errbuf_set(err, errlen, "cannot open the AAC encoder: %s", av_err2str(ret));
		return ret == AVERROR(ENOMEM) ? HARK_ERR_NOMEM : HARK_ERR_UNSUPPORTED;
	}
	return HARK_OK;
}

/* Wait for frame k in the ring; returns its slot. */
static struct slot *wait_frame(struct pool *pl, long k)
{
	struct slot *s = &pl->slots[k % pl->nslots];

	pthread_mutex_lock(&pl->mu);
	while (!(s->ready && s->frame == k))
		pthread_cond_wait(&pl->cv_done, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
	return s;
}

static void release_frame(struct pool *pl, struct slot *s, long k)
{
	pthread_mutex_lock(&pl->mu);
	s->ready = 0;
	pl->consumed = k + 1;
	pthread_cond_broadcast(&pl->cv_work);
	pthread_mutex_unlock(&pl->mu);
}

int hark_video_encode(const char *audio_path, const char *out_path,
		      const struct hark_video_params *p, struct hark_video_stats *stats,
		      char *err, size_t errlen)
{
	struct hark_video_params vp;
	struct hark_audio_params ap = hark_audio_default_params();
	struct hark_audio *probe = NULL;
	struct out_file of = {.fd = -1};
	struct muxer mx = {.out = &of};
	struct audio_feed af = {0};
	struct pool pl = {0};
	pthread_t tids[MAX_THREADS];
	AVCodecContext *venc = NULL;
	AVStream *vst = NULL;
	AVIOContext *pb = NULL;
	struct SwsContext *sws = NULL;
	AVFrame *yuv = NULL;
	const AVCodec *aac;
	int64_t nsamples = 0;
	double t_start = now_s(), t_enc = 0.0, t0;
	long total, painted = 0, k = 0;
	int ret, rate, nthreads, nstarted = 0, sync_ok = 0, last_step = -1;
	int global_header;

	if (err && errlen)
		err[0] = '\0';
	if (stats)
		memset(stats, 0, sizeof(*stats));
	if ((ret = check_params(audio_path, out_path, p, err, errlen)))
		return ret;
	{
		struct stat st;

		if (stat(out_path, &st) == 0 && S_ISDIR(st.st_mode)) {
			hark_errbuf_set(err, errlen, "the output path is a directory");
			return HARK_ERR_IS_DIR;
		}
	}
	vp = *p;
	if (!vp.preset)
		vp.preset = "ultrafast";
	nthreads = vp.threads;
	if (nthreads == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);

		nthreads = c < 1 ? 1 : c > MAX_THREADS ? MAX_THREADS : (int)c;
	}

	aac = avcodec_find_encoder_by_name("aac");
	if (!aac || !avcodec_find_encoder_by_name("libx264")) {
		hark_errbuf_set(err, errlen, "this FFmpeg lacks the %s encoder",
				aac ? "libx264 H.264" : "AAC");
		return HARK_ERR_UNSUPPORTED;
	}

	/* Probe the input: its rate and channels decide the audio format. */
	if ((ret = hark_audio_open(audio_path, NULL, &probe, err, errlen)))
		goto out;
	rate = aac_rate(aac, hark_audio_info(probe)->src_rate);
	hark_audio_close(probe);
	probe = NULL;
	if (rate <= 0) {
		hark_errbuf_set(err, errlen, "the AAC encoder lists no usable sample rate");
		ret = HARK_ERR_UNSUPPORTED;
		goto out;
	}
	ap.out_rate = rate;
	ap.out_channels = 2;
	if ((ret = count_samples(audio_path, &ap, &vp, &nsamples, err, errlen)))
		goto out;
	total = (long)((nsamples * vp.fps * 2 + rate) / (2 * (int64_t)rate));
	if (total < 1)
		total = 1;

	if ((ret = hark_audio_open(audio_path, &ap, &af.dec, err, errlen)))
		goto out;
	af.nch = hark_audio_channels(af.dec);

	/* Output file and muxer. */
	if ((ret = create_tmp(&of, out_path, err, errlen)))
		goto out;
	ret = avformat_alloc_output_context2(&mx.fmt, NULL, "mp4", NULL);
	if (ret < 0 || !mx.fmt) {
		hark_errbuf_set(err, errlen, "this FFmpeg has no MP4 muxer");
		ret = ret == AVERROR(ENOMEM) ? HARK_ERR_NOMEM : HARK_ERR_UNSUPPORTED;
		goto out;
	}
	{
		unsigned char *iobuf = av_malloc(IO_BUF_SIZE);

		if (!iobuf) {
			ret = HARK_ERR_NOMEM;
			goto out;
		}
		pb = avio_alloc_context(iobuf, IO_BUF_SIZE, 1, &of, NULL, io_write, io_seek);
		if (!pb) {
			av_free(iobuf);
			ret = HARK_ERR_NOMEM;
			goto out;
		}
	}
	pb->seekable = AVIO_SEEKABLE_NORMAL;
	mx.fmt->pb = pb;
	mx.fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	global_header = (mx.fmt->oformat->flags & AVFMT_GLOBALHEADER) != 0;
	mx.pkt = av_packet_alloc();
	af.frame = av_frame_alloc();
	yuv = av_frame_alloc();
	if (!mx.pkt || !af.frame || !yuv) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}

	if ((ret = open_video_encoder(&venc, &vp, global_header, err, errlen)))
		goto out;
	if ((ret = open_audio_encoder(&af.enc, aac, rate, af.nch, vp.audio_bitrate,
				      global_header, err, errlen)))
		goto out;
	vst = avformat_new_stream(mx.fmt, NULL);
	af.st = avformat_new_stream(mx.fmt, NULL);
	if (!vst || !af.st) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	vst->time_base = venc->time_base;
	vst->avg_frame_rate = venc->framerate;
	af.st->time_base = af.enc->time_base;
	if (avcodec_parameters_from_context(vst->codecpar, venc) < 0 ||
	    avcodec_parameters_from_context(af.st->codecpar, af.enc) < 0) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	ret = avformat_write_header(mx.fmt, NULL);
	if (ret < 0) {
		ret = mux_error(&mx, ret, "writing the MP4 header", err, errlen);
		goto out;
	}

	/* Frames: YUV target, converter, audio frame, ring, workers. */
	yuv->format = AV_PIX_FMT_YUV420P;
	yuv->width = vp.width;
	yuv->height = vp.height;
	yuv->color_range = AVCOL_RANGE_MPEG;
	yuv->color_primaries = AVCOL_PRI_BT709;
	yuv->color_trc = AVCOL_TRC_BT709;
	yuv->colorspace = AVCOL_SPC_BT709;
	af.frame->format = AV_SAMPLE_FMT_FLTP;
	af.frame->sample_rate = rate;
	af.frame->nb_samples = af.enc->frame_size > 0 ? af.enc->frame_size : 1024;
	if (av_channel_layout_copy(&af.frame->ch_layout, &af.enc->ch_layout) < 0 ||
	    av_frame_get_buffer(yuv, 0) < 0 || av_frame_get_buffer(af.frame, 0) < 0) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	sws = sws_getContext(vp.width, vp.height, CAIRO_PIX_FMT, vp.width, vp.height,
			     AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
	if (!sws) {
		hark_errbuf_set(err, errlen, "cannot set up the colour conversion");
		ret = HARK_ERR_UNSUPPORTED;
		goto out;
	}
	/* full-range RGB in, BT.709 limited-range YUV out */
	sws_setColorspaceDetails(sws, sws_getCoefficients(SWS_CS_DEFAULT), 1,
				 sws_getCoefficients(SWS_CS_ITU709), 0, 0, 1 << 16, 1 << 16);

	pl.p = &vp;
	pl.total = total;
	pl.nslots = 2 * nthreads + 2;
	pl.slots = calloc((size_t)pl.nslots, sizeof(*pl.slots));
	if (!pl.slots) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	for (int i = 0; i < pl.nslots; i++) {
		pl.slots[i].frame = -1;
		pl.slots[i].surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, vp.width,
							      vp.height);
		if (cairo_surface_status(pl.slots[i].surf) != CAIRO_STATUS_SUCCESS) {
			ret = HARK_ERR_NOMEM;
			goto out;
		}
	}
	if (pthread_mutex_init(&pl.mu, NULL) != 0) {
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	if (pthread_cond_init(&pl.cv_work, NULL) != 0) {
		pthread_mutex_destroy(&pl.mu);
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	if (pthread_cond_init(&pl.cv_done, NULL) != 0) {
		pthread_cond_destroy(&pl.cv_work);
		pthread_mutex_destroy(&pl.mu);
		ret = HARK_ERR_NOMEM;
		goto out;
	}
	sync_ok = 1;
	for (; nstarted < nthreads; nstarted++)
		if (pthread_create(&tids[nstarted], NULL, worker_main, &pl) != 0)
			break;
	if (nstarted == 0) {
		hark_errbuf_set(err, errlen, "cannot start painting threads");
		ret = HARK_ERR_NOMEM;
		goto out;
	}

	for (k = 0; k < total; k++) {
		struct slot *s;
		int step;

		if (vp.cancel && vp.cancel(vp.cb_user_data)) {
			hark_errbuf_set(err, errlen, "canceled");
			ret = HARK_ERR_CANCELED;
			goto out;
		}
		if (of.io_errno) {   /* full disk etc.: stop now, not at the end */
			ret = mux_error(&mx, AVERROR(of.io_errno), "writing", err, errlen);
			goto out;
		}
		s = wait_frame(&pl, k);
		if (s->err) {
			ret = s->err;
			hark_errbuf_set(err, errlen, "painting frame %ld failed: %s", k,
					hark_strerror(ret));
			goto out;
		}
		t0 = now_s();
		if (!s->reuse) {
			const uint8_t *src[1] = {cairo_image_surface_get_data(s->surf)};
			int stride[1] = {cairo_image_surface_get_stride(s->surf)};

			if (av_frame_make_writable(yuv) < 0) {
				ret = HARK_ERR_NOMEM;
				goto out;
			}
			sws_scale(sws, src, stride, 0, vp.height, yuv->data, yuv->linesize);
			painted++;
		}
		release_frame(&pl, s, k);
		yuv->pts = k;
		ret = avcodec_send_frame(venc, yuv);
		if (ret < 0) {
			ret = mux_error(&mx, ret, "video encoding", err, errlen);
			goto out;
		}
		if ((ret = drain(&mx, venc, vst, err, errlen)))
			goto out;
		if ((ret = audio_until(&mx, &af, (int64_t)(k + 1) * rate / vp.fps, 0, err,
				       errlen)))
			goto out;
		t_enc += now_s() - t0;
		step = (int)((double)(k + 1) * PROGRESS_STEPS / (double)total);
		if (vp.progress && step != last_step) {
			last_step = step;
			vp.progress((double)(k + 1) / (double)total, vp.cb_user_data);
		}
	}

	t0 = now_s();
	ret = avcodec_send_frame(venc, NULL);
	if (ret < 0) {
		ret = mux_error(&mx, ret, "video encoding", err, errlen);
		goto out;
	}
	if ((ret = drain(&mx, venc, vst, err, errlen)))
		goto out;
	if ((ret = audio_until(&mx, &af, INT64_MAX, 1, err, errlen)))
		goto out;
	ret = av_write_trailer(mx.fmt);
	if (ret < 0) {
		ret = mux_error(&mx, ret, "finishing the MP4", err, errlen);
		goto out;
	}
	avio_flush(pb);
	if (of.io_errno || pb->error) {
		ret = mux_error(&mx, pb->error, "writing the video", err, errlen);
		goto out;
	}
	if (close(of.fd) != 0) {
		of.fd = -1;
		hark_errbuf_set(err, errlen, "writing the video failed: %s", strerror(errno));
		ret = map_write_errno(errno);
		goto out;
	}
	of.fd = -1;
	if (rename(of.tmp_path, out_path) != 0) {
		int e = errno;

		hark_errbuf_set(err, errlen, "cannot move the video into place: %s", strerror(e));
		ret = map_write_errno(e);
		goto out;
	}
	free(of.tmp_path);
	of.tmp_path = NULL;
	t_enc += now_s() - t0;
	if (vp.progress && last_step != PROGRESS_STEPS)
		vp.progress(1.0, vp.cb_user_data);
	if (stats) {
		stats->duration_s = (double)nsamples / rate;
		stats->frames = total;
		stats->painted = painted;
	}
	ret = HARK_OK;
out:
	if (sync_ok) {
		pthread_mutex_lock(&pl.mu);
		pl.stop = 1;
		pthread_cond_broadcast(&pl.cv_work);
		pthread_mutex_unlock(&pl.mu);
		for (int i = 0; i < nstarted; i++)
			pthread_join(tids[i], NULL);
		pthread_cond_destroy(&pl.cv_done);
		pthread_cond_destroy(&pl.cv_work);
		pthread_mutex_destroy(&pl.mu);
	}
	if (stats) {
		stats->paint_s = pl.paint_s;
		stats->encode_s = t_enc;
		stats->wall_s = now_s() - t_start;
		if (ret) {
			stats->frames = k;
			stats->painted = painted;
		}
	}
	for (int i = 0; pl.slots && i < pl.nslots; i++)
		if (pl.slots[i].surf)
			cairo_surface_destroy(pl.slots[i].surf);
	free(pl.slots);
	sws_freeContext(sws);
	av_frame_free(&yuv);
	av_frame_free(&af.frame);
	avcodec_free_context(&af.enc);
	avcodec_free_context(&venc);
	av_packet_free(&mx.pkt);
	avformat_free_context(mx.fmt);   /* also frees a half-written muxer's state */
	if (pb) {
		av_freep(&pb->buffer);
		avio_context_free(&pb);
	}
	if (of.fd >= 0)
		close(of.fd);
	if (of.tmp_path) {
		unlink(of.tmp_path);
		free(of.tmp_path);
	}
	hark_audio_close(af.dec);
	hark_audio_close(probe);
	if (ret && err && errlen && !err[0])
		hark_errbuf_set(err, errlen, "%s", hark_strerror(ret));
	return ret;
}
