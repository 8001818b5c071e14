/*
 * Streaming media decoder behind audio.h. The file is opened with our own
 * file descriptor and handed to libavformat through a custom AVIOContext, so
 * the path is never parsed as a URL and no demuxer can open further files
 * (io_open is refused). The container is recognised from content only
 * (av_probe_input_buffer2 without a file name) and must reach a trustworthy
 * probe score; demuxers that "recognise" text, images, playlists or
 * subtitles are refused as not media. The best audio stream is decoded with
 * libavcodec (other streams discarded in the demuxer) and converted to
 * float at the output rate (16 kHz by default), mono or interleaved stereo:
 * s16 input already at the output rate taken as one channel (mono, or a
 * picked channel) bypasses libswresample so every sample is exactly
 * x / 32768; everything else goes through libswresample, for mono output
 * with an explicit rematrix (one-hot for a picked channel, 0.5/0.5 for
 * stereo, FFmpeg's default downmix for more channels), for stereo output
 * with FFmpeg's default matrix. Buffer sizes and positions below count
 * sample frames (one float per output channel). Decoded frames are converted in
 * slices into one pending buffer whose size is bounded by the chunk size
 * plus one slice, so memory stays flat for any input length.
 *
 * Cutting (offset_s / duration_s): the output timeline starts at the first
 * decoded sample of the stream. Small offsets decode from the start and drop
 * samples. Large offsets seek (backwards, SEEK_MARGIN_S before the target),
 * read the landing position from the first frame's timestamp, drop input
 * samples up to a position that maps onto an integer output sample (a
 * multiple of src_rate / gcd(src_rate, out_rate)), restart the resampler
 * there and drop output samples up to round(offset_s * out_rate). For PCM and
 * FLAC this gives exactly the samples of a full decode (the margin lets
 * decoder and resampler state converge). Lossless codecs in containers whose
 * time base cannot name a single sample (Matroska: 1 ms) decode from the
 * start instead; lossy codecs there are cut as exactly as those timestamps
 * allow (about 1 ms).
 *
 * Damage policy: a packet the demuxer or decoder rejects is skipped; more
 * than MAX_CONSEC_ERRORS consecutive failures end the stream with
 * HARK_ERR_CORRUPT (after the samples decoded so far were delivered). A
 * truncated file yields its decodable prefix. A file from which not a
 * single sample decodes fails hark_audio_open with HARK_ERR_CORRUPT.
 */
#include "audio/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/log.h>
#include <libavutil/mathematics.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>

#include "hark/hark.h"
#include "util/errbuf.h"

#define IO_BUF_SIZE (64 * 1024)
#define PROBE_MAX (1 << 20)              /* bytes probed at most */
#define MIN_PROBE_SCORE (AVPROBE_SCORE_RETRY + 1)
#define SEEK_MIN_S 10.0                  /* smaller offsets decode and drop */
#define SEEK_MARGIN_S 2.0                /* seek this far before the target */
#define MAX_CONSEC_ERRORS 32             /* rejected packets in a row */
#define MAX_EAGAIN 10000
#define MAX_CHUNK ((size_t)HARK_AUDIO_RATE * 600)   /* 10 min per chunk */
#define SLICE_IN 4096                    /* input samples converted per step */
#define PENDING_SLACK ((size_t)1 << 20)  /* pending cap = chunk + this */
#define MAX_CHANNELS 64
#define MIN_RATE 1000                    /* below: damaged header, not audio */
#define MAX_RATE 1536000

struct hark_audio {
	int fd;
	int64_t file_size;           /* -1 when not a regular file */
	int io_errno;                /* last read(2) failure, 0 if none */
	AVIOContext *pb;
	AVFormatContext *fmt;
	AVCodecContext *dec;
	AVPacket *pkt;
	AVFrame *frame;              /* frame being converted */
	int have_frame;
	int frame_off;               /* samples of frame already consumed */
	int stream;
	AVRational tb;               /* stream time base */
	int64_t origin;              /* stream start in tb (timeline zero) */

	struct hark_audio_params p;
	struct hark_audio_info info;
	int rate;                    /* output sample rate */
	int nout;                    /* output channels (1, 2; 0 = not yet known) */

	/* conversion */
	SwrContext *swr;
	int direct;                  /* current frames bypass swr */
	int conv_ready;
	int conv_rate, conv_fmt;     /* what the converter was built for */
	AVChannelLayout conv_layout;

	/* pipeline state */
	int demux_eof;               /* NULL packet sent to the decoder */
	int dec_eof;                 /* decoder fully drained */
	int done;                    /* no more output will be produced */
	int errors;                  /* consecutive rejected packets */
	int eagain;                  /* consecutive EAGAIN from the demuxer */
	int need_pos;                /* next frame sets in_pos from its pts */
	int64_t in_pos;              /* source-rate index of frame start */
	int64_t decoded;             /* samples ever decoded */

	/* output timeline */
	int64_t out_pos;             /* output-rate index of next produced sample */
	int64_t start;               /* first sample to deliver */
	int64_t limit;               /* samples to deliver; -1 = all */
	int64_t accepted;            /* samples accepted into buf so far */
	int64_t delivered;           /* samples handed to the caller */

	float *buf;                  /* pending output */
	size_t len, cap, handed;     /* handed = last chunk given out */
	size_t cap_max;

	int late_err;                /* error to report after pending data */
	char late_msg[160];
};

/* ------------------------------------------------------------ utils ---- */

static void copy_name(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static void log_nothing(void *avcl, int level, const char *fmt, va_list vl)
{
	(void)avcl;
	(void)level;
	(void)fmt;
	(void)vl;
}

static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

static void quiet_ffmpeg(void)
{
	av_log_set_level(AV_LOG_QUIET);
	av_log_set_callback(log_nothing);
}

struct hark_audio_params hark_audio_default_params(void)
{
	struct hark_audio_params p = {
		.offset_s = 0.0,
		.duration_s = 0.0,
		.chunk_samples = HARK_AUDIO_RATE,
		.channel = -1,
	};
	return p;
}

/* -------------------------------------------------------- custom IO ---- */

static int io_read(void *opaque, uint8_t *buf, int size)
{
	struct hark_audio *a = opaque;
	ssize_t n;

	do
		n = read(a->fd, buf, (size_t)size);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		a->io_errno = errno;
		return AVERROR(errno);
	}
	if (n == 0)
		return AVERROR_EOF;
	return (int)n;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
	struct hark_audio *a = opaque;
	off_t r;

	if (whence & AVSEEK_SIZE)
		return a->file_size >= 0 ? a->file_size : AVERROR(ENOSYS);
	if (a->file_size < 0)
		return AVERROR(ESPIPE);
	whence &= ~AVSEEK_FORCE;
	r = lseek(a->fd, (off_t)off, whence);
	if (r < 0)
		return AVERROR(errno);
	return (int64_t)r;
}

/* Demuxers must not open anything beyond the file we handed them. */
static int io_open_refused(struct AVFormatContext *s, AVIOContext **pb,
			   const char *url, int flags, AVDictionary **options)
{
	(void)s;
	(void)pb;
	(void)url;
	(void)flags;
	(void)options;
	return AVERROR(EPERM);
}

/* ---------------------------------------------------------- probing ---- */

int hark_audio_demuxer_refused(const char *name)
{
	static const char *const deny[] = {
		"tty", "bin", "xbin", "adf", "idf", "ansi",
		"image2", "image2pipe", "gif", "apng", "ico", "alias_pix",
		"brender_pix", "mpjpeg", "webp", "jpegxl_anim", "imf",
		"hls", "dash", "concat", "ffmetadata", "sdp", "rtp", "rtsp",
		"srt", "ass", "ssa", "webvtt", "microdvd", "subviewer",
		"subviewer1", "mpl2", "mpsub", "pjs", "jacosub", "lrc",
		"realtext", "sami", "stl", "vplayer", "aqtitle", "scc", "mcc",
		"sup", "vobsub", "dvbsub", "dvbtxt", "tedcaptions", "libgme",
		"data", "fits", "smjpeg", NULL,
	};
	size_t n = strlen(name);

	if (n >= 5 && !strcmp(name + n - 5, "_pipe"))
		return 1;
	for (size_t i = 0; deny[i]; i++)
		if (!strcmp(name, deny[i]))
			return 1;
	return 0;
}

/*
 * Signature of a real media container at the start of the file: a file
 * carrying one that still fails to probe/open is damaged, not "not media".
 */
static const char *known_magic(const unsigned char *b, size_t n)
{
	if (n >= 3 && !memcmp(b, "ID3", 3))
		return "mp3";
	if (n >= 4 && !memcmp(b, "RIFF", 4))
		return "wav";
	if (n >= 4 && !memcmp(b, "RF64", 4))
		return "wav";
	if (n >= 4 && !memcmp(b, "fLaC", 4))
		return "flac";
	if (n >= 4 && !memcmp(b, "OggS", 4))
		return "ogg";
	if (n >= 4 && !memcmp(b, "FORM", 4))
		return "aiff";
	if (n >= 4 && !memcmp(b, "caff", 4))
		return "caf";
	if (n >= 4 && b[0] == 0x1a && b[1] == 0x45 && b[2] == 0xdf && b[3] == 0xa3)
		return "matroska";
	if (n >= 8 && !memcmp(b + 4, "ftyp", 4))
		return "mp4";
	if (n >= 2 && b[0] == 0xff && (b[1] & 0xe0) == 0xe0)
		return "mpeg audio";
	return NULL;
}

/*
 * FFmpeg errors while reading media. ENOMEM counts as damage: FFmpeg reports
 * it when a damaged size field asks for an absurd allocation (> INT_MAX),
 * which is by far its most common cause on real input.
 */
static int map_av_error(const struct hark_audio *a, int averr)
{
	if (a->io_errno && averr == AVERROR(a->io_errno))
		return HARK_ERR_IO;
	return HARK_ERR_CORRUPT;
}

/* stat + open(2): the file-system errors, before any probing. */
static int open_file(struct hark_audio *a, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (!path || !*path) {
		hark_errbuf_set(err, errlen, "empty file name");
		return HARK_ERR_INVALID_ARG;
	}
	if (stat(path, &st) != 0) {
		int e = errno;

		hark_errbuf_set(err, errlen, "%s", strerror(e));
		if (e == EACCES)
			return HARK_ERR_PERMISSION;
		if (e == ENOMEM)
			return HARK_ERR_NOMEM;
		if (e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG || e == ELOOP)
			return HARK_ERR_NOT_FOUND;
		return HARK_ERR_IO;
	}
	if (S_ISDIR(st.st_mode)) {
		hark_errbuf_set(err, errlen, "is a directory, not a media file");
		return HARK_ERR_IS_DIR;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
		hark_errbuf_set(err, errlen, "not a regular file");
		return HARK_ERR_UNSUPPORTED;
	}
	if (S_ISREG(st.st_mode) && st.st_size == 0) {
		hark_errbuf_set(err, errlen, "file is empty (0 bytes)");
		return HARK_ERR_EMPTY;
	}
	a->file_size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : -1;
	a->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (a->fd < 0) {
		int e = errno;

		hark_errbuf_set(err, errlen, "cannot open: %s", strerror(e));
		if (e == EACCES || e == EPERM)
			return HARK_ERR_PERMISSION;
		if (e == ENOENT)
			return HARK_ERR_NOT_FOUND;
		if (e == EISDIR)
			return HARK_ERR_IS_DIR;
		if (e == ENOMEM)
			return HARK_ERR_NOMEM;
		return HARK_ERR_IO;
	}
	return HARK_OK;
}

/* Probe the content and open the demuxer. */
static int open_container(struct hark_audio *a, char *err, size_t errlen)
{
	unsigned char head[16];
	ssize_t nhead = 0;
	const char *magic = NULL;
	const AVInputFormat *ifmt = NULL;
	unsigned char *iobuf;
	int score, ret;

	if (a->file_size > 0) {
		nhead = pread(a->fd, head, sizeof(head), 0);
		if (nhead < 0) {
			hark_errbuf_set(err, errlen, "read failed: %s", strerror(errno));
			return HARK_ERR_IO;
		}
		magic = known_magic(head, (size_t)nhead);
	}

	iobuf = av_malloc(IO_BUF_SIZE);
	if (!iobuf)
		return HARK_ERR_NOMEM;
	a->pb = avio_alloc_context(iobuf, IO_BUF_SIZE, 0, a, io_read, NULL,
				   io_seek);
	if (!a->pb) {
		av_free(iobuf);
		return HARK_ERR_NOMEM;
	}
	a->pb->seekable = a->file_size >= 0 ? AVIO_SEEKABLE_NORMAL : 0;

	/* No file name: the extension must not influence detection. */
	score = av_probe_input_buffer2(a->pb, &ifmt, "", NULL, 0, PROBE_MAX);
	if (a->io_errno) {
		hark_errbuf_set(err, errlen, "read failed: %s", strerror(a->io_errno));
		return HARK_ERR_IO;
	}
	if (score < 0 || !ifmt || score < MIN_PROBE_SCORE ||
	    hark_audio_demuxer_refused(ifmt->name)) {
		if (magic && !(ifmt && hark_audio_demuxer_refused(ifmt->name))) {
			hark_errbuf_set(err, errlen, "looks like %s but cannot be parsed "
			       "(truncated or damaged)", magic);
			return HARK_ERR_CORRUPT;
		}
		hark_errbuf_set(err, errlen, "not a recognised audio or video format");
		return HARK_ERR_NOT_MEDIA;
	}

	a->fmt = avformat_alloc_context();
	if (!a->fmt)
		return HARK_ERR_NOMEM;
	a->fmt->pb = a->pb;
	a->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	a->fmt->io_open = io_open_refused;
	ret = avformat_open_input(&a->fmt, "", ifmt, NULL);
	if (ret < 0) {
		/* avformat_open_input freed and NULLed a->fmt. */
		hark_errbuf_set(err, errlen, "cannot read %s header: %s", ifmt->name,
		       av_err2str(ret));
		return map_av_error(a, ret);
	}
	ret = avformat_find_stream_info(a->fmt, NULL);
	if (ret < 0 && a->fmt->nb_streams == 0) {
		hark_errbuf_set(err, errlen, "cannot read %s streams: %s", ifmt->name,
		       av_err2str(ret));
		return map_av_error(a, ret);
	}
	copy_name(a->info.container, sizeof(a->info.container), ifmt->name);
	return HARK_OK;
}

/* Pick the audio stream, open its decoder, discard everything else. */
static int open_decoder(struct hark_audio *a, char *err, size_t errlen)
{
	const AVCodec *codec = NULL;
	AVStream *st;
	AVCodecParameters *par;
	int idx, ret, usable = 0;

	for (unsigned i = 0; i < a->fmt->nb_streams; i++) {
		enum AVMediaType t = a->fmt->streams[i]->codecpar->codec_type;

		usable |= t == AVMEDIA_TYPE_AUDIO || t == AVMEDIA_TYPE_VIDEO ||
			  t == AVMEDIA_TYPE_SUBTITLE;
	}
	if (!usable) {
		/* no stream, or only unidentified data: e.g. an MP4 cut inside
		 * its index */
		hark_errbuf_set(err, errlen, "no usable streams (truncated or damaged %s)",
		       a->info.container);
		return HARK_ERR_CORRUPT;
	}
	idx = av_find_best_stream(a->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
	if (idx == AVERROR_STREAM_NOT_FOUND) {
		hark_errbuf_set(err, errlen, "the media has no audio stream");
		return HARK_ERR_NO_AUDIO;
	}
	if (idx == AVERROR_DECODER_NOT_FOUND) {
		unsigned tag = 0;

		for (unsigned i = 0; i < a->fmt->nb_streams; i++) {
			par = a->fmt->streams[i]->codecpar;
			if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
				copy_name(a->info.codec, sizeof(a->info.codec),
					  avcodec_get_name(par->codec_id));
				tag = par->codec_tag;
				break;
			}
		}
		if (!strcmp(a->info.codec, "none"))
			hark_errbuf_set(err, errlen, "unknown audio codec (tag 0x%04x)", tag);
		else
			hark_errbuf_set(err, errlen, "no decoder for audio codec '%s'",
			       a->info.codec);
		return HARK_ERR_UNSUPPORTED;
	}
	if (idx < 0 || !codec) {
		hark_errbuf_set(err, errlen, "cannot select an audio stream");
		return HARK_ERR_CORRUPT;
	}
	a->stream = idx;
	st = a->fmt->streams[idx];
	par = st->codecpar;
	a->tb = st->time_base;
	a->origin = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
	for (unsigned i = 0; i < a->fmt->nb_streams; i++)
		if ((int)i != idx)
			a->fmt->streams[i]->discard = AVDISCARD_ALL;

	copy_name(a->info.codec, sizeof(a->info.codec), avcodec_get_name(par->codec_id));
	a->info.src_rate = par->sample_rate;
	a->info.src_channels = par->ch_layout.nb_channels;
	if (st->duration != AV_NOPTS_VALUE && st->duration > 0 && a->tb.den > 0)
		a->info.duration_s = (double)st->duration * av_q2d(a->tb);
	else if (a->fmt->duration != AV_NOPTS_VALUE && a->fmt->duration > 0)
		a->info.duration_s = (double)a->fmt->duration / AV_TIME_BASE;

	if ((par->sample_rate != 0 && par->sample_rate < MIN_RATE) ||
	    par->sample_rate > MAX_RATE ||
	    par->ch_layout.nb_channels > MAX_CHANNELS) {
		hark_errbuf_set(err, errlen, "unsupported stream: %d Hz, %d channels",
		       par->sample_rate, par->ch_layout.nb_channels);
		return HARK_ERR_UNSUPPORTED;
	}
	if (a->p.channel >= 0 && par->ch_layout.nb_channels > 0 &&
	    a->p.channel >= par->ch_layout.nb_channels) {
		hark_errbuf_set(err, errlen, "channel %d requested but the audio has %d",
		       a->p.channel, par->ch_layout.nb_channels);
		return HARK_ERR_INVALID_ARG;
	}

	a->dec = avcodec_alloc_context3(codec);
	if (!a->dec)
		return HARK_ERR_NOMEM;
	ret = avcodec_parameters_to_context(a->dec, par);
	if (ret < 0) {
		hark_errbuf_set(err, errlen, "bad codec parameters: %s", av_err2str(ret));
		return ret == AVERROR(ENOMEM) ? HARK_ERR_NOMEM : HARK_ERR_UNSUPPORTED;
	}
	a->dec->pkt_timebase = st->time_base;
	a->dec->thread_count = 1;
	ret = avcodec_open2(a->dec, codec, NULL);
	if (ret < 0) {
		hark_errbuf_set(err, errlen, "cannot open %s decoder: %s", codec->name,
		       av_err2str(ret));
		/* damaged codec setup data vs a decoder that declines */
		if (ret == AVERROR_INVALIDDATA || ret == AVERROR(ENOMEM))
			return HARK_ERR_CORRUPT;
		return HARK_ERR_UNSUPPORTED;
	}
	a->pkt = av_packet_alloc();
	a->frame = av_frame_alloc();
	if (!a->pkt || !a->frame)
		return HARK_ERR_NOMEM;
	return HARK_OK;
}

/* ----------------------------------------------------- decode loop ---- */

/* A rejected packet (see map_av_error on ENOMEM); too many in a row end
 * the stream. */
static int count_error(struct hark_audio *a, int averr, char *err, size_t errlen)
{
	if (a->io_errno && averr == AVERROR(a->io_errno)) {
		hark_errbuf_set(err, errlen, "read failed: %s", strerror(a->io_errno));
		return HARK_ERR_IO;
	}
	if (++a->errors > MAX_CONSEC_ERRORS) {
		hark_errbuf_set(err, errlen, "too many damaged packets in a row (%s)",
		       averr == AVERROR(ENOMEM) ? "implausible sizes" :
		       av_err2str(averr));
		return HARK_ERR_CORRUPT;
	}
	return HARK_OK;
}

/*
 * Next decoded frame of the selected stream into a->frame.
 * Returns 1 (frame), 0 (end of stream) or -hark_err.
 */
static int next_frame(struct hark_audio *a, char *err, size_t errlen)
{
	int ret, e;

	av_frame_unref(a->frame);
	for (;;) {
		if (a->dec_eof)
			return 0;
		ret = avcodec_receive_frame(a->dec, a->frame);
		if (ret == 0) {
			if (a->frame->nb_samples <= 0) {
				av_frame_unref(a->frame);
				continue;
			}
			a->errors = 0;
			a->decoded += a->frame->nb_samples;
			return 1;
		}
		if (ret == AVERROR_EOF) {
			a->dec_eof = 1;
			return 0;
		}
		if (ret != AVERROR(EAGAIN)) {
			if ((e = count_error(a, ret, err, errlen)))
				return -e;
			continue;
		}
		if (a->demux_eof) {
			/* Drained decoder asks for input after EOF: stop. */
			a->dec_eof = 1;
			return 0;
		}
		ret = av_read_frame(a->fmt, a->pkt);
		if (ret == AVERROR_EOF || (ret < 0 && avio_feof(a->fmt->pb) &&
					   !a->io_errno)) {
			a->demux_eof = 1;
			ret = avcodec_send_packet(a->dec, NULL);
			if (ret < 0 && ret != AVERROR_EOF)
				a->dec_eof = 1;
			continue;
		}
		if (ret == AVERROR(EAGAIN)) {
			/* never expected from a file: do not spin forever */
			if (++a->eagain > MAX_EAGAIN) {
				hark_errbuf_set(err, errlen, "demuxer makes no progress");
				return -HARK_ERR_CORRUPT;
			}
			continue;
		}
		a->eagain = 0;
		if (ret < 0) {
			if ((e = count_error(a, ret, err, errlen)))
				return -e;
			continue;
		}
		if (a->pkt->stream_index != a->stream) {
			av_packet_unref(a->pkt);
			continue;
		}
		ret = avcodec_send_packet(a->dec, a->pkt);
		av_packet_unref(a->pkt);
		if (ret < 0 && ret != AVERROR(EAGAIN)) {
			if ((e = count_error(a, ret, err, errlen)))
				return -e;
		}
	}
}

/* ------------------------------------------------------- conversion ---- */

static int grow_buf(struct hark_audio *a, size_t need, char *err, size_t errlen)
{
	size_t ncap;
	float *nb;

	if (need <= a->cap)
		return HARK_OK;
	if (need > a->cap_max) {
		hark_errbuf_set(err, errlen, "decoder output buffer limit exceeded");
		return HARK_ERR_LIMIT;
	}
	ncap = a->cap ? a->cap : 4096;
	while (ncap < need)
		ncap *= 2;
	if (ncap > a->cap_max)
		ncap = a->cap_max;
	nb = realloc(a->buf, ncap * (size_t)a->nout * sizeof(*nb));
	if (!nb)
		return HARK_ERR_NOMEM;
	a->buf = nb;
	a->cap = ncap;
	return HARK_OK;
}

/*
 * Account for n freshly produced frames at frame a->len: drop those
 * before a->start, cut at the duration limit, keep the rest.
 */
static void accept_output(struct hark_audio *a, size_t n)
{
	size_t drop = 0, keep, nc = (size_t)a->nout;

	if (a->out_pos < a->start) {
		int64_t d = a->start - a->out_pos;

		drop = (size_t)d < n ? (size_t)d : n;
	}
	a->out_pos += (int64_t)n;
	keep = n - drop;
	if (a->limit >= 0 && (int64_t)keep > a->limit - a->accepted)
		keep = (size_t)(a->limit - a->accepted);
	if (drop && keep)
		memmove(a->buf + a->len * nc, a->buf + (a->len + drop) * nc,
			keep * nc * sizeof(float));
	a->len += keep;
	a->accepted += (int64_t)keep;
	if (a->limit >= 0 && a->accepted >= a->limit)
		a->done = 1;
}

static int is_direct(const struct hark_audio *a, const AVFrame *f)
{
	return f->sample_rate == a->rate && a->nout == 1 &&
	       (f->format == AV_SAMPLE_FMT_S16 || f->format == AV_SAMPLE_FMT_S16P) &&
	       (f->ch_layout.nb_channels == 1 || a->p.channel >= 0);
}

/* Float sources may hold NaN or values beyond full scale: keep [-1, 1]. */
static void clamp_pcm(float *x, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		float v = x[i];

		if (!(v >= -1.0f))
			x[i] = isnan(v) ? 0.0f : -1.0f;
		else if (v > 1.0f)
			x[i] = 1.0f;
	}
}

/* Drain whatever the resampler still holds into the pending buffer. */
static int flush_swr(struct hark_audio *a, char *err, size_t errlen)
{
	int ret;

	while (a->swr && !a->done) {
		int room = swr_get_out_samples(a->swr, 0);
		uint8_t *out;

		if (room <= 0)
			break;
		if ((ret = grow_buf(a, a->len + (size_t)room, err, errlen)))
			return ret;
		out = (uint8_t *)(a->buf + a->len * (size_t)a->nout);
		ret = swr_convert(a->swr, &out, room, NULL, 0);
		if (ret < 0) {
			hark_errbuf_set(err, errlen, "resampler failed: %s", av_err2str(ret));
			return HARK_ERR_INTERNAL;
		}
		if (ret == 0)
			break;
		clamp_pcm(a->buf + a->len * (size_t)a->nout, (size_t)ret * (size_t)a->nout);
		accept_output(a, (size_t)ret);
	}
	return HARK_OK;
}

/* Build the converter for frame f (first frame, or after a format change). */
static int setup_conv(struct hark_audio *a, const AVFrame *f, char *err, size_t errlen)
{
	AVChannelLayout in = {0}, out = AV_CHANNEL_LAYOUT_MONO;
	int nch = f->ch_layout.nb_channels, ret;
	double *m = NULL;
	size_t mlen;

	if (f->sample_rate < MIN_RATE || f->sample_rate > MAX_RATE || nch <= 0 ||
	    nch > MAX_CHANNELS || av_get_bytes_per_sample(f->format) <= 0) {
		hark_errbuf_set(err, errlen, "unsupported decoded audio: %d Hz, %d channels, "
		       "sample format %s", f->sample_rate, nch,
		       av_get_sample_fmt_name(f->format) ?
		       av_get_sample_fmt_name(f->format) : "unknown");
		return HARK_ERR_UNSUPPORTED;
	}
	if (a->p.channel >= nch) {
		hark_errbuf_set(err, errlen, "channel %d requested but the audio has %d",
		       a->p.channel, nch);
		return HARK_ERR_INVALID_ARG;
	}
	if (a->nout == 0)
		a->nout = a->p.out_channels == 2 && a->p.channel < 0 && nch >= 2 ? 2 : 1;
	if (a->nout == 2)
		out = (AVChannelLayout)AV_CHANNEL_LAYOUT_STEREO;
	mlen = (size_t)nch * (size_t)a->nout;
	if ((ret = flush_swr(a, err, errlen)))
		return ret;
	swr_free(&a->swr);
	av_channel_layout_uninit(&a->conv_layout);
	a->conv_ready = 0;
	a->conv_rate = f->sample_rate;
	a->conv_fmt = f->format;
	if (av_channel_layout_copy(&a->conv_layout, &f->ch_layout) < 0)
		return HARK_ERR_NOMEM;
	a->direct = is_direct(a, f);
	if (a->direct) {
		a->conv_ready = 1;
		return HARK_OK;
	}

	/* Unknown channel order: give the resampler a layout it can map. */
	if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
		av_channel_layout_default(&in, nch);
	else if (av_channel_layout_copy(&in, &f->ch_layout) < 0)
		return HARK_ERR_NOMEM;

	ret = swr_alloc_set_opts2(&a->swr, &out, AV_SAMPLE_FMT_FLT, a->rate,
				  &in, f->format, f->sample_rate, 0, NULL);
	if (ret < 0)
		goto fail;
	if (a->nout == 1 && (a->p.channel >= 0 || nch <= 2)) {
		m = calloc((size_t)nch, sizeof(*m));
		if (!m) {
			ret = AVERROR(ENOMEM);
			goto fail;
		}
		if (a->p.channel >= 0)
			m[a->p.channel] = 1.0;
		else
			for (int c = 0; c < nch; c++)
				m[c] = 1.0 / nch;
		ret = swr_set_matrix(a->swr, m, nch);
		if (ret < 0)
			goto fail;
	}
	ret = swr_init(a->swr);
	if (ret < 0 && !m) {
		/* No default downmix for this layout: average all channels. */
		swr_free(&a->swr);
		ret = swr_alloc_set_opts2(&a->swr, &out, AV_SAMPLE_FMT_FLT,
					  a->rate, &in, f->format,
					  f->sample_rate, 0, NULL);
		if (ret < 0)
			goto fail;
		m = calloc(mlen, sizeof(*m));
		if (!m) {
			ret = AVERROR(ENOMEM);
			goto fail;
		}
		/* every output channel gets the average of all inputs */
		for (size_t c = 0; c < mlen; c++)
			m[c] = 1.0 / nch;
		ret = swr_set_matrix(a->swr, m, nch);
		if (ret >= 0)
			ret = swr_init(a->swr);
	}
	if (ret < 0)
		goto fail;
	free(m);
	av_channel_layout_uninit(&in);
	a->conv_ready = 1;
	return HARK_OK;
fail:
	free(m);
	av_channel_layout_uninit(&in);
	swr_free(&a->swr);
	if (ret == AVERROR(ENOMEM))
		return HARK_ERR_NOMEM;
	hark_errbuf_set(err, errlen, "cannot convert %s audio at %d Hz with %d channels: %s",
	       av_get_sample_fmt_name(f->format), f->sample_rate, nch, av_err2str(ret));
	return HARK_ERR_UNSUPPORTED;
}

static int frame_changed(const struct hark_audio *a, const AVFrame *f)
{
	return !a->conv_ready || f->sample_rate != a->conv_rate ||
	       f->format != a->conv_fmt ||
	       av_channel_layout_compare(&f->ch_layout, &a->conv_layout) != 0;
}

/* Convert up to SLICE_IN samples of the current frame. */
static int convert_slice(struct hark_audio *a, char *err, size_t errlen)
{
	AVFrame *f = a->frame;
	int nch = f->ch_layout.nb_channels;
	int n = f->nb_samples - a->frame_off, ret;

	if (n > SLICE_IN)
		n = SLICE_IN;
	if (a->direct) {
		int k = a->p.channel >= 0 ? a->p.channel : 0;
		float *o;

		if ((ret = grow_buf(a, a->len + (size_t)n, err, errlen)))
			return ret;
		o = a->buf + a->len;
		if (f->format == AV_SAMPLE_FMT_S16P) {
			const int16_t *s = (const int16_t *)f->extended_data[k] + a->frame_off;

			for (int i = 0; i < n; i++)
				o[i] = (float)s[i] / 32768.0f;
		} else {
			const int16_t *s = (const int16_t *)f->extended_data[0] +
					   (size_t)a->frame_off * (size_t)nch + (size_t)k;

			for (int i = 0; i < n; i++)
				o[i] = (float)s[(size_t)i * (size_t)nch] / 32768.0f;
		}
		accept_output(a, (size_t)n);
	} else {
		const uint8_t *in[MAX_CHANNELS];
		size_t nc = (size_t)a->nout;
		int bps = av_get_bytes_per_sample(f->format);
		int planar = av_sample_fmt_is_planar(f->format);
		int room = swr_get_out_samples(a->swr, n);
		uint8_t *out;

		if (room < 0) {
			hark_errbuf_set(err, errlen, "resampler failed: %s", av_err2str(room));
			return HARK_ERR_INTERNAL;
		}
		if ((ret = grow_buf(a, a->len + (size_t)room + 1, err, errlen)))
			return ret;
		if (planar) {
			for (int c = 0; c < nch; c++)
				in[c] = f->extended_data[c] + (size_t)a->frame_off * (size_t)bps;
		} else {
			in[0] = f->extended_data[0] +
				(size_t)a->frame_off * (size_t)bps * (size_t)nch;
		}
		out = (uint8_t *)(a->buf + a->len * nc);
		ret = swr_convert(a->swr, &out, room + 1, in, n);
		if (ret < 0) {
			hark_errbuf_set(err, errlen, "resampler failed: %s", av_err2str(ret));
			return HARK_ERR_INTERNAL;
		}
		clamp_pcm(a->buf + a->len * nc, (size_t)ret * nc);
		accept_output(a, (size_t)ret);
	}
	a->frame_off += n;
	a->in_pos += n;
	if (a->frame_off >= f->nb_samples)
		a->have_frame = 0;
	return HARK_OK;
}

static int64_t gcd64(int64_t x, int64_t y)
{
	while (y) {
		int64_t t = x % y;

		x = y;
		y = t;
	}
	return x;
}

/*
 * The first frame after a seek: where is it on the timeline? Drops input
 * samples so the converter starts on a source index that maps to an integer
 * output index. Returns 1 when positioned, 0 when the frame was consumed
 * entirely (get the next one), -2 when the position is unknown or past the
 * target (caller rewinds to the start).
 */
static int position_after_seek(struct hark_audio *a)
{
	AVFrame *f = a->frame;
	int64_t pts = f->best_effort_timestamp != AV_NOPTS_VALUE ?
		      f->best_effort_timestamp : f->pts;
	int64_t rate = f->sample_rate, step, pos, skip;

	if (a->need_pos == 1) {
		if (pts == AV_NOPTS_VALUE)
			return -2;
		a->in_pos = av_rescale_q_rnd(pts - a->origin, a->tb,
					     (AVRational){1, (int)rate},
					     AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
		if (a->in_pos < 0)
			a->in_pos = 0;
		/* Landed after the first wanted sample: cannot cut exactly. */
		if (a->in_pos * a->rate > a->start * rate)
			return -2;
		a->need_pos = 2;
	}
	step = rate / gcd64(rate, a->rate);
	pos = a->in_pos;
	skip = (step - pos % step) % step;
	if (skip >= f->nb_samples) {
		a->in_pos += f->nb_samples;
		return 0;
	}
	a->frame_off = (int)skip;
	a->in_pos += skip;
	a->out_pos = a->in_pos / step * (a->rate / gcd64(rate, a->rate));
	a->need_pos = 0;
	return 1;
}

/*
 * Seeking finds the landing sample from timestamps. A time base coarser than
 * one source sample (Matroska's 1 ms) cannot tell it exactly: lossless
 * codecs, which promise sample-exact cuts, then decode from the start and
 * drop; lossy ones accept the container's precision.
 */
static int seek_is_exact_enough(const struct hark_audio *a)
{
	const AVCodecParameters *par = a->fmt->streams[a->stream]->codecpar;
	const AVCodecDescriptor *d = avcodec_descriptor_get(par->codec_id);
	int lossless = d && (d->props & AV_CODEC_PROP_LOSSLESS) &&
		       !(d->props & AV_CODEC_PROP_LOSSY);
	int coarse = par->sample_rate <= 0 || a->tb.den <= 0 ||
		     (int64_t)a->tb.num * par->sample_rate > (int64_t)a->tb.den;

	return !(lossless && coarse);
}

/* Seek back to the stream start and decode from there (slow but exact). */
static int rewind_to_start(struct hark_audio *a, char *err, size_t errlen)
{
	int ret = av_seek_frame(a->fmt, a->stream, a->origin, AVSEEK_FLAG_BACKWARD);

	if (ret < 0)
		ret = avformat_seek_file(a->fmt, -1, INT64_MIN, 0, 0, 0);
	if (ret < 0) {
		hark_errbuf_set(err, errlen, "cannot seek back to the start: %s", av_err2str(ret));
		return HARK_ERR_CORRUPT;
	}
	avcodec_flush_buffers(a->dec);
	a->demux_eof = a->dec_eof = 0;
	a->need_pos = 0;
	a->in_pos = 0;
	a->out_pos = 0;
	return HARK_OK;
}

/*
 * Make a->frame hold an unconsumed frame with its converter ready.
 * Returns 1, 0 at end of stream, or -hark_err.
 */
static int load_frame(struct hark_audio *a, char *err, size_t errlen)
{
	int ret, rewound = 0;

	for (;;) {
		ret = next_frame(a, err, errlen);
		if (ret <= 0)
			return ret;
		a->frame_off = 0;
		if (a->need_pos) {
			ret = position_after_seek(a);
			if (ret == 0)
				continue;
			if (ret == -2) {
				if (rewound)
					return -HARK_ERR_CORRUPT;
				rewound = 1;
				if ((ret = rewind_to_start(a, err, errlen)))
					return -ret;
				continue;
			}
		}
		if (frame_changed(a, a->frame)) {
			if ((ret = setup_conv(a, a->frame, err, errlen)))
				return -ret;
		}
		a->have_frame = 1;
		return 1;
	}
}

/* Fill the pending buffer up to one chunk (or to the end of the stream). */
static void fill(struct hark_audio *a)
{
	size_t want = a->p.chunk_samples;
	int ret;

	while (a->len < want && !a->done && !a->late_err) {
		if (!a->have_frame) {
			ret = load_frame(a, a->late_msg, sizeof(a->late_msg));
			if (ret < 0) {
				a->late_err = -ret;
				break;
			}
			if (ret == 0) {
				ret = flush_swr(a, a->late_msg, sizeof(a->late_msg));
				if (ret)
					a->late_err = ret;
				a->done = 1;
				break;
			}
		}
		ret = convert_slice(a, a->late_msg, sizeof(a->late_msg));
		if (ret)
			a->late_err = ret;
	}
}

/* ------------------------------------------------------------ public --- */

static void audio_free(struct hark_audio *a)
{
	if (!a)
		return;
	swr_free(&a->swr);
	av_channel_layout_uninit(&a->conv_layout);
	av_frame_free(&a->frame);
	av_packet_free(&a->pkt);
	avcodec_free_context(&a->dec);
	avformat_close_input(&a->fmt);
	if (a->pb) {
		av_freep(&a->pb->buffer);
		avio_context_free(&a->pb);
	}
	if (a->fd >= 0)
		close(a->fd);
	free(a->buf);
	free(a);
}

int hark_audio_open(const char *path, const struct hark_audio_params *p,
		    struct hark_audio **out, char *err, size_t errlen)
{
	struct hark_audio *a = NULL;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!out) {
		hark_errbuf_set(err, errlen, "no output handle");
		return HARK_ERR_INVALID_ARG;
	}
	*out = NULL;
	pthread_once(&quiet_once, quiet_ffmpeg);

	a = calloc(1, sizeof(*a));
	if (!a)
		return HARK_ERR_NOMEM;
	a->fd = -1;
	a->p = p ? *p : hark_audio_default_params();
	a->rate = a->p.out_rate ? a->p.out_rate : HARK_AUDIO_RATE;
	if (a->p.chunk_samples == 0)
		a->p.chunk_samples = (size_t)a->rate;
	if (!(a->p.offset_s >= 0.0) || !isfinite(a->p.offset_s) ||
	    !(a->p.duration_s >= 0.0) || !isfinite(a->p.duration_s) ||
	    a->p.offset_s > 1e9 || a->p.duration_s > 1e9 ||
	    a->p.chunk_samples > MAX_CHUNK || a->p.channel < -1 ||
	    a->p.channel >= MAX_CHANNELS || a->rate < MIN_RATE ||
	    a->rate > MAX_RATE || a->p.out_channels < 0 || a->p.out_channels > 2) {
		hark_errbuf_set(err, errlen, "invalid decode parameters");
		ret = HARK_ERR_INVALID_ARG;
		goto out;
	}
	a->start = llround(a->p.offset_s * a->rate);
	a->limit = a->p.duration_s > 0 ? llround(a->p.duration_s * a->rate) : -1;
	a->cap_max = a->p.chunk_samples + PENDING_SLACK;

	if ((ret = open_file(a, path, err, errlen)))
		goto out;
	if ((ret = open_container(a, err, errlen)))
		goto out;
	if ((ret = open_decoder(a, err, errlen)))
		goto out;
	if (a->info.src_channels > 0)
		a->nout = a->p.out_channels == 2 && a->p.channel < 0 &&
			  a->info.src_channels >= 2 ? 2 : 1;

	if (a->p.offset_s >= SEEK_MIN_S && a->pb->seekable && seek_is_exact_enough(a)) {
		int64_t ts = a->origin + av_rescale_q(
			llround((a->p.offset_s - SEEK_MARGIN_S) * AV_TIME_BASE),
			AV_TIME_BASE_Q, a->tb);

		if (av_seek_frame(a->fmt, a->stream, ts, AVSEEK_FLAG_BACKWARD) >= 0) {
			avcodec_flush_buffers(a->dec);
			a->need_pos = 1;
		}
	}

	/* Decode the first frame now so undecodable input fails here. */
	ret = load_frame(a, err, errlen);
	if (ret < 0) {
		ret = -ret;
		goto out;
	}
	if (ret == 0) {
		if (a->decoded == 0 && !a->need_pos) {
			hark_errbuf_set(err, errlen, "no decodable audio in the %s stream",
			       a->info.codec);
			ret = HARK_ERR_CORRUPT;
			goto out;
		}
		a->done = 1;   /* offset past the end: an empty span */
	}
	if (a->info.src_rate <= 0)
		a->info.src_rate = a->frame->sample_rate;
	if (a->info.src_channels <= 0)
		a->info.src_channels = a->frame->ch_layout.nb_channels;
	if (a->nout == 0)
		a->nout = 1;   /* nothing decoded (offset past the end) */
	ret = HARK_OK;
out:
	if (ret) {
		if (err && errlen && !err[0])
			hark_errbuf_set(err, errlen, "%s", hark_strerror(ret));
		audio_free(a);
		return ret;
	}
	*out = a;
	return HARK_OK;
}

const struct hark_audio_info *hark_audio_info(const struct hark_audio *a)
{
	return a ? &a->info : NULL;
}

int hark_audio_read(struct hark_audio *a, const float **pcm, size_t *n,
		    char *err, size_t errlen)
{
	size_t give;

	if (!a || !pcm || !n) {
		hark_errbuf_set(err, errlen, "invalid arguments");
		return HARK_ERR_INVALID_ARG;
	}
	*pcm = NULL;
	*n = 0;
	if (a->handed) {
		memmove(a->buf, a->buf + a->handed * (size_t)a->nout,
			(a->len - a->handed) * (size_t)a->nout * sizeof(float));
		a->len -= a->handed;
		a->handed = 0;
	}
	fill(a);
	if (a->len == 0 && a->late_err) {
		int e = a->late_err;

		hark_errbuf_set(err, errlen, "%s", a->late_msg[0] ? a->late_msg : hark_strerror(e));
		a->late_err = 0;
		a->done = 1;
		return e;
	}
	give = a->len < a->p.chunk_samples ? a->len : a->p.chunk_samples;
	a->handed = give;
	a->delivered += (int64_t)give;
	*pcm = give ? a->buf : NULL;
	*n = give;
	return HARK_OK;
}

double hark_audio_position(const struct hark_audio *a)
{
	return a ? (double)a->delivered / a->rate : 0.0;
}

int hark_audio_channels(const struct hark_audio *a)
{
	return a ? a->nout : 0;
}

void hark_audio_close(struct hark_audio *a)
{
	audio_free(a);
}

int hark_audio_decode_all(const char *path, const struct hark_audio_params *p,
			  size_t max_samples, float **pcm, size_t *n,
			  char *err, size_t errlen)
{
	struct hark_audio *a = NULL;
	float *buf = NULL, *nb;
	size_t len = 0, cap = 0, nc;
	int ret;

	if (!pcm || !n) {
		hark_errbuf_set(err, errlen, "invalid arguments");
		return HARK_ERR_INVALID_ARG;
	}
	*pcm = NULL;
	*n = 0;
	if ((ret = hark_audio_open(path, p, &a, err, errlen)))
		goto out;
	nc = (size_t)a->nout;
	for (;;) {
		const float *chunk;
		size_t got;

		if ((ret = hark_audio_read(a, &chunk, &got, err, errlen)))
			goto out;
		if (got == 0)
			break;
		if (got > max_samples - len) {
			hark_errbuf_set(err, errlen, "audio longer than %zu samples", max_samples);
			ret = HARK_ERR_LIMIT;
			goto out;
		}
		if (len + got > cap) {
			size_t ncap = cap ? cap * 2 : (size_t)a->rate * 30;

			while (ncap < len + got)
				ncap *= 2;
			if (ncap > max_samples)
				ncap = max_samples;
			nb = realloc(buf, ncap * nc * sizeof(*nb));
			if (!nb) {
				ret = HARK_ERR_NOMEM;
				goto out;
			}
			buf = nb;
			cap = ncap;
		}
		memcpy(buf + len * nc, chunk, got * nc * sizeof(*chunk));
		len += got;
	}
	*pcm = buf;
	*n = len;
	buf = NULL;
	ret = HARK_OK;
out:
	free(buf);
	hark_audio_close(a);
	return ret;
}

/* "YYYY-MM-DD..." at the start of v into out; 1 when it is a plausible date. */
static int iso_date_prefix(const char *v, char out[11])
{
	int y, m, d;

	if (!v || strlen(v) < 10 || v[4] != '-' || v[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (v[i] < '0' || v[i] > '9'))
			return 0;
	y = atoi(v);
	m = (v[5] - '0') * 10 + (v[6] - '0');
	d = (v[8] - '0') * 10 + (v[9] - '0');
	if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
		return 0;
	memcpy(out, v, 10);
	out[10] = '\0';
	return 1;
}

static int date_from_dict(const AVDictionary *md, char out[11])
{
	static const char *const keys[] = {"creation_time", "date", "DATE", "ICRD", NULL};

	for (int i = 0; keys[i]; i++) {
		const AVDictionaryEntry *e = av_dict_get(md, keys[i], NULL, 0);

		if (e && iso_date_prefix(e->value, out))
			return 1;
	}
	return 0;
}

int hark_audio_probe_date(const char *path, char out[11])
{
	AVFormatContext *fc = NULL;
	int found = 0;

	if (!path || !out)
		return 0;
	out[0] = '\0';
	if (avformat_open_input(&fc, path, NULL, NULL) != 0)
		return 0;
	found = date_from_dict(fc->metadata, out);
	for (unsigned i = 0; !found && i < fc->nb_streams; i++)
		if (fc->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
			found = date_from_dict(fc->streams[i]->metadata, out);
	avformat_close_input(&fc);
	return found;
}
