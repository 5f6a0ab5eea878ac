// SPDX-License-Identifier: MIT
/*
 * fuzz_kubeconfig.c - a kubeconfig file (YAML) -> connection settings
 * (server, credentials, CA) for the current context.
 *
 * The input is handed over as a memfd, named by its /proc path, because
 * the reader takes a path (relative file references resolve against
 * /proc/self/fd and are not found, which is an error it handles).
 */
#define _GNU_SOURCE
#include <unistd.h>
#include <sys/mman.h>

#include "fuzz.h"
#include "k8s_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct k8s_conn c;
	char path[64];
	int fd = memfd_create("kubeconfig", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (!k8s_conn__from_kubeconfig(&c, path))
			k8s_conn__free(&c);
	}
	close(fd);
	return 0;
}
