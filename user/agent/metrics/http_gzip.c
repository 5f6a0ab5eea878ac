// SPDX-License-Identifier: MIT
/*
 * http_gzip.c - content coding for the metrics server: does a request
 * accept gzip, and gzip a response body (zlib). Kept apart from http.c so
 * code that only needs these (unit tests) does not link libmicrohttpd.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "http.h"

int http__accepts_gzip(const char *ae)
{
	while (ae && *ae) {
		const char *tok, *end = strchr(ae, ',');
		size_t n;
		double q = 1;

		if (!end)
			end = ae + strlen(ae);
		while (ae < end && isspace((unsigned char)*ae))
			ae++;
		tok = ae;
		while (ae < end && *ae != ';' && !isspace((unsigned char)*ae))
			ae++;
		n = ae - tok;
		/* parameters: only q matters ("gzip;q=0" refuses gzip) */
		for (const char *p = ae; p < end; p++)
			if ((*p == 'q' || *p == 'Q') && p + 1 < end && p[1] == '=' &&
			    (p[-1] == ';' || isspace((unsigned char)p[-1])))
				q = strtod(p + 2, NULL);
		if (q > 0 && ((n == 4 && !strncasecmp(tok, "gzip", 4)) || (n == 1 && *tok == '*')))
			return 1;
		ae = *end ? end + 1 : end;
	}
	return 0;
}

int http__gzip(const void *src, size_t len, void **dst, size_t *dst_len)
{
	z_stream zs = {};
	void *out;
	size_t cap;
	int rc;

	/* windowBits 15 + 16: a gzip wrapper instead of zlib's */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	cap = deflateBound(&zs, len) + 32;
	out = malloc(cap);
	if (!out) {
		deflateEnd(&zs);
		return -ENOMEM;
	}
	zs.next_in = (Bytef *)src;
	zs.avail_in = len;
	zs.next_out = out;
	zs.avail_out = cap;
	rc = deflate(&zs, Z_FINISH);
	*dst_len = zs.total_out;
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(out);
		return -EIO;
	}
	*dst = out;
	return 0;
}
