/*
 * Upload content sniffing: decides from the first bytes of an upload whether
 * it is audio or video hark can decode, never from the file name or the
 * client's Content-Type. Known container signatures are checked first (WAV,
 * MP3/ID3, FLAC, Ogg, MP4/M4A/MOV, WebM/Matroska, AIFF, AAC ADTS, AMR, CAF,
 * AVI, MPEG-TS/PS); anything else is offered to libavformat's probe, which
 * must be confident (score > 25) and name a demuxer. Pure function of the
 * bytes: no I/O, safe from any thread including the server's service thread.
 */
#ifndef HARK_SERVER_SNIFF_H
#define HARK_SERVER_SNIFF_H

#include <stddef.h>

/*
 * head: the first n bytes of the upload (n may be small; 4096 is plenty).
 * Returns a static MIME type ("audio/wav", "audio/mpeg", "audio/flac",
 * "audio/ogg", "video/mp4", "video/webm", ...) or NULL when the bytes are
 * not recognisably media. *need_more (if non-NULL) is set to 1 when n was
 * too small to decide and more bytes could change the answer.
 */
const char *hark_sniff_media(const unsigned char *head, size_t n, int *need_more);

#endif /* HARK_SERVER_SNIFF_H */
