// SPDX-License-Identifier: MIT
/*
 * fuzz_api.c - the API request reader: bytes a client writes to meshd's
 * socket -> one JSON message (api__read_msg), then what meshd reads out
 * of it: "op" and, for apply, the "desired" state.
 *
 * The input goes through a socketpair, so framing (newline, EOF, partial
 * reads) is exercised as meshd sees it.
 */
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>

#include "api.h"
#include "desired.h"
#include "fuzz.h"

/* Inputs are small (libFuzzer's -max_len); a socketpair holds them. */
#define FUZZ_API_MAX 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *msg = NULL, *v;
	struct desired d;
	int sv[2];

	if (size > FUZZ_API_MAX || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	if (write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);
	if (!api__read_msg(sv[0], 1000, &msg) && msg) {
		if (json_object_object_get_ex(msg, "op", &v))
			(void)json_object_get_string(v);
		if (json_object_object_get_ex(msg, "desired", &v) && !desired__from_json(&d, v)) {
			if (desired__validate(&d))
				fuzz__bug("an accepted API state fails desired__validate");
			desired__free(&d);
		}
	}
	json_object_put(msg);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
