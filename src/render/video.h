/*
 * Video encoder: an MP4 (H.264 video through libavcodec's libx264 encoder,
 * AAC audio through libavcodec's native encoder) whose picture is painted
 * frame by frame by a caller-supplied cairo painter and whose sound is the
 * original audio of the input file, decoded, resampled to the AAC encoder's
 * format (keeping the source rate and up to two channels) and re-encoded.
 *
 * The video lasts exactly as long as the audio: the frame count is
 * round(duration * fps) with duration taken from the decoded samples (not the
 * container's claim), the last frame is held to the audio's end, and
 * timestamps are exact multiples of 1/fps. Frames are painted in parallel by
 * `threads` workers into ARGB32 cairo image surfaces (a small ring of
 * frames, so memory is flat whatever the length), converted to YUV 4:2:0 with
 * libswscale and encoded in order on the calling thread.
 *
 * The file is written to a temporary name beside out_path and renamed when
 * complete, so a failure (full disk, cancel, bad audio) never leaves a
 * half-written video under the final name.
 */
#ifndef HARK_RENDER_VIDEO_H
#define HARK_RENDER_VIDEO_H

#include <stddef.h>

#include <cairo.h>

/*
 * Paints frame `frame` (time t_s = frame / fps seconds) onto cr, a fresh
 * width x height ARGB32 surface (contents undefined: paint everything).
 * Called concurrently from several threads for different frames; must be
 * reentrant. Return 0, or a hark_err to stop the encode with that error.
 */
typedef int (*hark_video_paint_fn)(cairo_t *cr, double t_s, long frame, int width, int height,
				   void *user_data);

/*
 * Optional: a value identifying what frame `frame` looks like (same value =
 * same picture). When two consecutive frames have the same key the second
 * reuses the first's painted and converted picture instead of painting
 * again; most frames of a diagram video are unchanged, so this is where the
 * speed comes from. Reentrant like the painter.
 */
typedef unsigned long long (*hark_video_key_fn)(double t_s, long frame, void *user_data);

struct hark_video_params {
	int width, height;      /* even, 64..3840 x 64..2160 (1280 x 720) */
	int fps;                /* 1..60 (30) */
	int threads;            /* painting threads; 0 = online cores (0) */
	int crf;                /* x264 constant rate factor 0..51 (23) */
	const char *preset;     /* x264 preset ("ultrafast": diagram frames are mostly unchanged, so the
				 * fastest preset already gives sharp text) */
	int audio_bitrate;      /* AAC bits per second (128000) */
	hark_video_paint_fn paint;  /* required */
	hark_video_key_fn key;      /* may be NULL = paint every frame */
	void *paint_user_data;      /* passed to paint and key */
	/* progress(done_frames / total_frames, ud) from the calling thread; may be NULL */
	void (*progress)(double fraction, void *user_data);
	/* nonzero = stop with HARK_ERR_CANCELED; polled per frame; may be NULL */
	int (*cancel)(void *user_data);
	void *cb_user_data;
};

struct hark_video_params hark_video_default_params(void);

struct hark_video_stats {
	double duration_s;      /* audio duration = video duration */
	long frames;            /* frames written */
	long painted;           /* frames actually painted (the rest reused by key) */
	double paint_s;         /* wall seconds spent painting (summed over threads) */
	double encode_s;        /* wall seconds in colour conversion + encoders + muxing */
	double wall_s;          /* total wall seconds */
};

/*
 * Encodes audio_path (any format the audio decoder accepts; its first audio
 * stream) and the painted frames into out_path (MP4). stats may be NULL.
 * Errors: HARK_ERR_INVALID_ARG (bad params, no painter), HARK_ERR_NOT_FOUND,
 * HARK_ERR_NOT_MEDIA, HARK_ERR_NO_AUDIO, HARK_ERR_CORRUPT, HARK_ERR_EMPTY (no
 * samples), HARK_ERR_UNSUPPORTED (no H.264/AAC encoder in this FFmpeg),
 * HARK_ERR_IO / HARK_ERR_PERMISSION (writing), HARK_ERR_CANCELED, HARK_ERR_NOMEM,
 * or the painter's error; err (errlen bytes) says why. On error out_path is
 * not created (and an existing file there is left untouched).
 */
int hark_video_encode(const char *audio_path, const char *out_path,
		      const struct hark_video_params *p, struct hark_video_stats *stats,
		      char *err, size_t errlen);

#endif /* HARK_RENDER_VIDEO_H */
