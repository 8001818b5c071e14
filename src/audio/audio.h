/*
 * Streaming media decoder: opens any container FFmpeg's libavformat reads
 * (detected from content, never from the file name), picks the best audio
 * stream, decodes it with libavcodec and converts it with libswresample to
 * float in [-1, 1]: 16 kHz mono by default (what speech recognition wants),
 * or another rate and interleaved stereo on request (what re-encoding the
 * original sound wants). Samples are delivered in bounded chunks so memory
 * stays flat however long the input is.
 */
#ifndef HARK_AUDIO_AUDIO_H
#define HARK_AUDIO_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#define HARK_AUDIO_RATE 16000

struct hark_audio;  /* opaque decoder handle */

struct hark_audio_info {
	double duration_s;       /* container duration of the audio stream, 0 if unknown */
	int src_rate;            /* source sample rate (Hz) */
	int src_channels;
	char codec[32];          /* codec short name, e.g. "mp3" */
	char container[32];      /* demuxer short name, e.g. "wav", "mov,mp4,..." (truncated) */
};

struct hark_audio_params {
	double offset_s;         /* skip this much audio at the start (>= 0) */
	double duration_s;       /* deliver at most this much; 0 = all */
	size_t chunk_samples;    /* samples per delivered chunk; 0 = 16000 (1 s) */
	int channel;             /* -1 = downmix all channels (default); k = take channel k only */
	int out_rate;            /* output sample rate (Hz), 1000..1536000; 0 = 16000 */
	int out_channels;        /* 0 or 1 = mono (downmix or `channel`); 2 = interleaved
				  * stereo when channel == -1 and the source has >= 2
				  * channels (more are downmixed), else mono */
};

struct hark_audio_params hark_audio_default_params(void);

/*
 * Opens path and probes it. Errors: HARK_ERR_NOT_FOUND, HARK_ERR_IS_DIR,
 * HARK_ERR_PERMISSION, HARK_ERR_EMPTY, HARK_ERR_NOT_MEDIA, HARK_ERR_NO_AUDIO,
 * HARK_ERR_UNSUPPORTED, HARK_ERR_CORRUPT, HARK_ERR_NOMEM. On error *out is
 * NULL and err (errlen bytes) holds a one-line reason without the file name.
 */
int hark_audio_open(const char *path, const struct hark_audio_params *p,
		    struct hark_audio **out, char *err, size_t errlen);

/* Stream facts, valid after a successful open. */
const struct hark_audio_info *hark_audio_info(const struct hark_audio *a);

/* Channels per delivered sample frame (1 or 2), fixed at open; 0 for NULL. */
int hark_audio_channels(const struct hark_audio *a);

/*
 * Decodes the next chunk. On success *pcm points at *n samples owned by the
 * decoder (valid until the next call or close); *n == 0 means end of stream.
 * With stereo output (see out_channels) *n counts sample frames and *pcm
 * holds 2 * *n interleaved floats (left, right, ...); chunk_samples, offset,
 * duration, position and max_samples likewise count frames at out_rate.
 * A decode error mid-stream returns HARK_ERR_CORRUPT with the reason in err.
 */
int hark_audio_read(struct hark_audio *a, const float **pcm, size_t *n,
		    char *err, size_t errlen);

/* Seconds of audio delivered so far, counted from the start of the cut
 * (offset_s not included). */
double hark_audio_position(const struct hark_audio *a);

void hark_audio_close(struct hark_audio *a);

/*
 * Convenience: decodes the whole file (honouring p) into a new malloc'd
 * buffer *pcm of *n samples. At most max_samples are accepted
 * (HARK_ERR_LIMIT beyond). For tests and short clips only.
 */
int hark_audio_decode_all(const char *path, const struct hark_audio_params *p,
			  size_t max_samples, float **pcm, size_t *n,
			  char *err, size_t errlen);

/*
 * 1 if the libavformat demuxer called name accepts content that is not
 * audio/video media (text art, still images, subtitles, playlists, scripts
 * that reference other files), so hark refuses it; else 0.
 */
int hark_audio_demuxer_refused(const char *name);

/*
 * The recording date of a media file from its container metadata (the
 * format's or first audio stream's "creation_time", "date" or "year"-less
 * ISO date tag, as FFmpeg reads it) as "YYYY-MM-DD" into out (11 bytes).
 * Returns 1 when found, 0 when the file has none or cannot be opened (never
 * an error: the date is optional).
 */
int hark_audio_probe_date(const char *path, char out[11]);

#endif /* HARK_AUDIO_AUDIO_H */
