/*
 * Upload sniffing behind sniff.h, in four steps. (1) Container signatures
 * at the start of the bytes, each checked beyond its magic where a magic is
 * weak: RIFF/RF64 form types, ISO-BMFF major brands (image brands such as
 * HEIC/AVIF refused), the EBML DocType, MPEG-TS sync bytes every 188 bytes,
 * and for headerless MPEG audio and AAC ADTS a second frame header exactly
 * where the first frame's length says. (2) Signatures of common non-media
 * files (images, archives, documents, executables) and text (UTF-8/UTF-16,
 * JSON, HTML, subtitles) are refused outright. (3) Anything else is offered
 * to libavformat's probe (av_probe_input_format3 on a zero-padded copy, as
 * the API requires, no file name) and accepted only with a score above
 * AVPROBE_SCORE_RETRY from a demuxer that is neither one audio.c refuses
 * (text art, images, playlists, subtitles) nor missing from the MIME map
 * below (raw video elementary streams carry no audio). (4) NULL otherwise.
 */
#include "server/sniff.h"

#include "audio/audio.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>

#define SNIFF_MIN 16               /* below this, undecided input wants more */
#define SNIFF_WANT 4096            /* bytes the probe is happy with */
#define SNIFF_PROBE_MAX (1 << 20)  /* bytes handed to the probe at most */
#define SNIFF_MIN_SCORE (AVPROBE_SCORE_RETRY + 1)

/* Outcome of one signature check. */
enum sig {
	SIG_NO,      /* not this signature: keep looking */
	SIG_YES,     /* matched */
	SIG_MORE,    /* too few bytes to tell */
	SIG_REJECT,  /* a known kind that is not media (e.g. an HEIC image) */
};

static int has(const unsigned char *b, size_t n, size_t off, const char *s)
{
	size_t l = strlen(s);

	return n >= off + l && !memcmp(b + off, s, l);
}

/* ------------------------------------------------------ MPEG audio ---- */

/* Length in bytes of the MPEG audio frame whose header is at b, or 0 if b
 * is not a valid (non-free-format) header. *key gets version/layer/rate
 * bits, which stay the same from frame to frame. */
static size_t mpa_frame_len(const unsigned char *b, unsigned *key)
{
	static const uint16_t br[5][16] = {
		{ 0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0 },
		{ 0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0 },
		{ 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0 },
		{ 0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0 },
		{ 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0 },
	};
	static const uint32_t sr[3] = { 44100, 48000, 32000 };
	unsigned ver, layer, bri, sri, pad, kbps, rate;
	int table;

	if (b[0] != 0xff || (b[1] & 0xe0) != 0xe0)
		return 0;
	ver = (b[1] >> 3) & 3;   /* 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1 */
	layer = (b[1] >> 1) & 3; /* 1: III, 2: II, 3: I; 0 reserved */
	bri = b[2] >> 4;
	sri = (b[2] >> 2) & 3;
	pad = (b[2] >> 1) & 1;
	if (ver == 1 || layer == 0 || bri == 0 || bri == 15 || sri == 3)
		return 0;
	if (ver == 3)
		table = layer == 3 ? 0 : layer == 2 ? 1 : 2;
	else
		table = layer == 3 ? 3 : 4;
	kbps = br[table][bri];
	rate = sr[sri] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
	*key = (b[1] & 0xfe) << 8 | (b[2] & 0x0c);
	if (layer == 3)
		return (12 * kbps * 1000 / rate + pad) * 4;
	if (layer == 1 && ver != 3)
		return 72 * kbps * 1000 / rate + pad;
	return 144 * kbps * 1000 / rate + pad;
}

/* Two consecutive MPEG audio frames at b. */
static enum sig check_mpa(const unsigned char *b, size_t n)
{
	unsigned k1 = 0, k2 = 0;
	size_t l;

	if (n < 4)
		return b[0] == 0xff ? SIG_MORE : SIG_NO;
	l = mpa_frame_len(b, &k1);
	if (!l)
		return SIG_NO;
	if (n < l + 4)
		return SIG_MORE;
	if (!mpa_frame_len(b + l, &k2) || k1 != k2)
		return SIG_NO;
	return SIG_YES;
}

/* Two consecutive AAC ADTS frames at b. */
static enum sig check_adts(const unsigned char *b, size_t n)
{
	size_t l, l2;

	if (n < 7)
		return n >= 2 && b[0] == 0xff && (b[1] & 0xf6) == 0xf0 ? SIG_MORE : SIG_NO;
	if (b[0] != 0xff || (b[1] & 0xf6) != 0xf0 || ((b[2] >> 2) & 0x0f) > 12)
		return SIG_NO;
	l = (size_t)(b[3] & 3) << 11 | (size_t)b[4] << 3 | b[5] >> 5;
	if (l < 7)
		return SIG_NO;
	if (n < l + 7)
		return SIG_MORE;
	b += l;
	if (b[0] != 0xff || (b[1] & 0xf6) != 0xf0)
		return SIG_NO;
	l2 = (size_t)(b[3] & 3) << 11 | (size_t)b[4] << 3 | b[5] >> 5;
	return l2 >= 7 ? SIG_YES : SIG_NO;
}

/* ------------------------------------------------------- containers ---- */

/* ISO base media (MP4, M4A, MOV, 3GP): decided by the major brand. */
static const char *bmff_type(const unsigned char *b, size_t n, enum sig *s)
{
	static const char *const images[] = {
		"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif",
		"avis", "avci", "crx ", "jpeg", "jpgs", NULL,
	};
	uint32_t size;

	*s = SIG_NO;
	if (!has(b, n, 4, "ftyp"))
		return NULL;
	if (n < 12) {
		*s = SIG_MORE;
		return NULL;
	}
	size = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	if (size < 12 || size > 4096)
		return NULL;
	*s = SIG_YES;
	for (size_t i = 0; images[i]; i++)
		if (has(b, n, 8, images[i])) {
			*s = SIG_REJECT;
			return NULL;
		}
	if (has(b, n, 8, "M4A ") || has(b, n, 8, "M4B ") || has(b, n, 8, "M4P ") ||
	    has(b, n, 8, "F4A ") || has(b, n, 8, "F4B "))
		return "audio/mp4";
	if (has(b, n, 8, "qt  "))
		return "video/quicktime";
	if (has(b, n, 8, "3g2"))
		return "video/3gpp2";
	if (has(b, n, 8, "3gp") || has(b, n, 8, "3ge") || has(b, n, 8, "3gg"))
		return "video/3gpp";
	return "video/mp4";
}

/* Matroska/WebM: the EBML header's DocType. */
static const char *ebml_type(const unsigned char *b, size_t n, enum sig *s)
{
	size_t lim = n < 256 ? n : 256;

	*s = SIG_NO;
	if (n < 4 || b[0] != 0x1a || b[1] != 0x45 || b[2] != 0xdf || b[3] != 0xa3)
		return NULL;
	/* DocType element: ID 0x4282, a one-byte size, then the string */
	for (size_t i = 4; i + 3 < lim; i++) {
		if (b[i] != 0x42 || b[i + 1] != 0x82)
			continue;
		if (has(b, lim, i + 3, "webm")) {
			*s = SIG_YES;
			return "video/webm";
		}
		if (has(b, lim, i + 3, "matroska")) {
			*s = SIG_YES;
			return "video/x-matroska";
		}
	}
	if (n < 64)
		*s = SIG_MORE;
	return NULL;
}

/* MPEG transport stream: sync byte every 188 bytes. */
static enum sig check_ts(const unsigned char *b, size_t n)
{
	if (b[0] != 0x47)
		return SIG_NO;
	for (size_t off = 188; off < 4 * 188; off += 188) {
		if (off >= n)
			return SIG_MORE;
		if (b[off] != 0x47)
			return SIG_NO;
	}
	return SIG_YES;
}

/*
 * Media signatures. Returns the MIME type, or NULL with *s telling whether
 * the bytes are a known non-match (SIG_NO) or need more (SIG_MORE).
 */
static const char *media_magic(const unsigned char *b, size_t n, enum sig *s)
{
	const char *t;
	enum sig r, more = SIG_NO;

	*s = SIG_NO;
	if (n < 4) {
		*s = SIG_MORE;
		return NULL;
	}
	if (has(b, n, 0, "RIFF") || has(b, n, 0, "RF64") || has(b, n, 0, "BW64")) {
		if (n < 12) {
			*s = SIG_MORE;
			return NULL;
		}
		if (has(b, n, 8, "WAVE"))
			return "audio/wav";
		if (has(b, n, 8, "AVI ") || has(b, n, 8, "AVIX"))
			return "video/x-msvideo";
		if (has(b, n, 8, "WEBP"))
			*s = SIG_REJECT;
		return NULL; /* other RIFF forms: left to the probe */
	}
	if (has(b, n, 0, "fLaC"))
		return "audio/flac";
	if (has(b, n, 0, "OggS")) {
		/* the first page carries the first stream's header packet */
		size_t lim = n < 256 ? n : 256;

		if (memmem(b, lim, "\x80theora", 7))
			return "video/ogg";
		return "audio/ogg";
	}
	if (has(b, n, 0, "ID3")) {
		if (n < 10) {
			*s = SIG_MORE;
			return NULL;
		}
		if (b[3] < 0xff && b[4] < 0xff && !((b[6] | b[7] | b[8] | b[9]) & 0x80))
			return "audio/mpeg";
	}
	if ((t = bmff_type(b, n, &r)) != NULL)
		return t;
	if (r == SIG_MORE)
		more = SIG_MORE;
	else if (r == SIG_REJECT) {
		*s = SIG_REJECT; /* ftyp of a still image */
		return NULL;
	}
	if ((t = ebml_type(b, n, &r)) != NULL)
		return t;
	if (r == SIG_MORE)
		more = SIG_MORE;
	if (has(b, n, 0, "FORM")) {
		if (n < 12) {
			*s = SIG_MORE;
			return NULL;
		}
		if (has(b, n, 8, "AIFF") || has(b, n, 8, "AIFC"))
			return "audio/aiff";
		return NULL;
	}
	if (has(b, n, 0, "caff"))
		return "audio/x-caf";
	if (has(b, n, 0, "#!AMR-WB\n"))
		return "audio/amr-wb";
	if (has(b, n, 0, "#!AMR\n"))
		return "audio/amr";
	if (has(b, n, 0, "\x30\x26\xb2\x75\x8e\x66\xcf\x11"))
		return "video/x-ms-asf";
	if (has(b, n, 0, "FLV\x01"))
		return "video/x-flv";
	if (has(b, n, 0, ".snd"))
		return "audio/basic";
	if (has(b, n, 0, "wvpk"))
		return "audio/x-wavpack";
	if (has(b, n, 0, "MAC ") && n >= 6 && b[5] == 0x0f)
		return "audio/x-ape";
	if (b[0] == 0 && b[1] == 0 && b[2] == 1 && b[3] == 0xba)
		return "video/mpeg";
	r = check_ts(b, n);
	if (r == SIG_YES)
		return "video/mp2t";
	if (r == SIG_MORE)
		more = SIG_MORE;
	r = check_adts(b, n);
	if (r == SIG_YES)
		return "audio/aac";
	if (r == SIG_MORE)
		more = SIG_MORE;
	r = check_mpa(b, n);
	if (r == SIG_YES)
		return "audio/mpeg";
	if (r == SIG_MORE)
		more = SIG_MORE;
	*s = more;
	return NULL;
}

/* ------------------------------------------------------- non-media ---- */

static int non_media_magic(const unsigned char *b, size_t n)
{
	static const struct {
		const char *magic;
		size_t len;
	} sigs[] = {
		{ "\x89PNG\r\n\x1a\n", 8 }, { "\xff\xd8\xff", 3 }, { "GIF87a", 6 },
		{ "GIF89a", 6 }, { "II*\0", 4 }, { "MM\0*", 4 }, { "%PDF-", 5 },
		{ "%!PS", 4 }, { "PK\x03\x04", 4 }, { "PK\x05\x06", 4 }, { "PK\x07\x08", 4 },
		{ "\x1f\x8b", 2 }, { "BZh", 3 }, { "\xfd" "7zXZ\0", 6 },
		{ "7z\xbc\xaf\x27\x1c", 6 }, { "Rar!\x1a\x07", 6 }, { "\x7f" "ELF", 4 },
		{ "MZ", 2 }, { "\xca\xfe\xba\xbe", 4 }, { "\xcf\xfa\xed\xfe", 4 },
		{ "SQLite format 3", 16 }, { "\0asm", 4 }, { "wOFF", 4 }, { "wOF2", 4 },
		{ "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8 }, { "ustar", 0 },
	};

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigs[i].len && n >= sigs[i].len && !memcmp(b, sigs[i].magic, sigs[i].len))
			return 1;
	if (n >= 262 && !memcmp(b + 257, "ustar", 5))
		return 1; /* tar */
	return 0;
}

/* Text: a BOM, or mostly printable UTF-8 without NUL bytes. */
static int looks_like_text(const unsigned char *b, size_t n)
{
	size_t lim = n < 1024 ? n : 1024, bad = 0, i = 0;

	if (n >= 3 && !memcmp(b, "\xef\xbb\xbf", 3))
		return 1;
	if (n >= 2 && ((b[0] == 0xff && b[1] == 0xfe) || (b[0] == 0xfe && b[1] == 0xff)))
		return 1;
	while (i < lim) {
		unsigned char c = b[i];
		size_t k, j;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f')
				bad++;
			else if (c == 0x7f)
				bad++;
			i++;
			continue;
		}
		/* UTF-8: lead byte, then k continuation bytes */
		k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2
		    : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
		for (j = 1; k && j <= k && i + j < lim; j++)
			if ((b[i + j] & 0xc0) != 0x80)
				break;
		if (!k || (j <= k && i + j < lim)) {
			bad++;  /* invalid lead or broken sequence */
			i++;
		} else {
			i += j; /* whole sequence, or cut by the window's end */
		}
	}
	return bad * 50 <= lim; /* at most 2% odd bytes */
}

/* ----------------------------------------------------------- probing ---- */


/* Demuxer name -> MIME type; NULL for demuxers we do not accept. */
static const char *demuxer_mime(const char *name)
{
	static const struct {
		const char *demuxer, *mime;
	} map[] = {
		{ "wav", "audio/wav" }, { "w64", "audio/wav" }, { "mp3", "audio/mpeg" },
		{ "flac", "audio/flac" }, { "ogg", "audio/ogg" },
		{ "mov,mp4,m4a,3gp,3g2,mj2", "video/mp4" },
		{ "matroska,webm", "video/x-matroska" }, { "aac", "audio/aac" },
		{ "loas", "audio/aac" }, { "aiff", "audio/aiff" }, { "amr", "audio/amr" },
		{ "amrnb", "audio/amr" }, { "amrwb", "audio/amr-wb" }, { "caf", "audio/x-caf" },
		{ "avi", "video/x-msvideo" }, { "mpegts", "video/mp2t" }, { "mpeg", "video/mpeg" },
		{ "asf", "video/x-ms-asf" }, { "flv", "video/x-flv" }, { "au", "audio/basic" },
		{ "ac3", "audio/ac3" }, { "eac3", "audio/eac3" }, { "dts", "audio/vnd.dts" },
		{ "truehd", "audio/vnd.dolby.mlp" }, { "mlp", "audio/vnd.dolby.mlp" },
		{ "wv", "audio/x-wavpack" }, { "ape", "audio/x-ape" },
		{ "mpc", "audio/x-musepack" }, { "mpc8", "audio/x-musepack" },
		{ "tta", "audio/x-tta" }, { "voc", "audio/x-voc" }, { "gsm", "audio/gsm" },
		{ "rm", "application/vnd.rn-realmedia" }, { "nut", "video/x-nut" },
		{ "mxf", "application/mxf" }, { "dsf", "audio/x-dsf" }, { "dv", "video/x-dv" },
		{ "shorten", "audio/x-shorten" }, { "tak", "audio/x-tak" },
		{ "sox", "audio/x-sox" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(name, map[i].demuxer))
			return map[i].mime;
	return NULL;
}

static const char *probe(const unsigned char *b, size_t n)
{
	unsigned char stackbuf[SNIFF_WANT + AVPROBE_PADDING_SIZE];
	unsigned char *buf = stackbuf;
	const AVInputFormat *fmt;
	const char *mime = NULL;
	AVProbeData pd;
	int score = 0;

	if (n > SNIFF_PROBE_MAX)
		n = SNIFF_PROBE_MAX;
	if (n > SNIFF_WANT) {
		buf = malloc(n + AVPROBE_PADDING_SIZE);
		if (!buf)
			return NULL;
	}
	memcpy(buf, b, n);
	memset(buf + n, 0, AVPROBE_PADDING_SIZE);
	memset(&pd, 0, sizeof(pd));
	pd.filename = ""; /* no name: the extension must not count */
	pd.buf = buf;
	pd.buf_size = (int)n;
	fmt = av_probe_input_format3(&pd, 1, &score);
	if (fmt && score >= SNIFF_MIN_SCORE && !hark_audio_demuxer_refused(fmt->name))
		mime = demuxer_mime(fmt->name);
	if (buf != stackbuf)
		free(buf);
	return mime;
}

const char *hark_sniff_media(const unsigned char *head, size_t n, int *need_more)
{
	const char *mime;
	enum sig s;

	if (need_more)
		*need_more = 0;
	if (!head || n == 0) {
		if (need_more)
			*need_more = 1;
		return NULL;
	}
	mime = media_magic(head, n, &s);
	if (mime)
		return mime;
	if (s == SIG_REJECT || non_media_magic(head, n))
		return NULL;
	if (s == SIG_MORE) {
		if (need_more)
			*need_more = 1;
		return NULL;
	}
	if (n < SNIFF_MIN) {
		if (need_more)
			*need_more = 1;
		return NULL;
	}
	if (looks_like_text(head, n))
		return NULL;
	mime = probe(head, n);
	if (!mime && n < SNIFF_WANT && need_more)
		*need_more = 1;
	return mime;
}
