// SPDX-License-Identifier: MIT
/*
 * runstat - run a command, print its wall time and peak RSS as JSON (B4:
 * iptables-restore and nft -f next to svcload, which reports its own).
 *
 * Contract: `runstat CMD [ARGS...]`; the command inherits stdin (the
 * ruleset), its stdout goes to /dev/null (nft -f prints nothing, but
 * restores with --verbose would), stderr stays. Prints
 * {"wall_ms": ..., "maxrss_kb": ..., "rc": ...} on stdout and exits with
 * the command's status. The time runs from fork to reaped exit: process
 * start-up is included, as it is in every kube-proxy sync.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	double t0, wall;
	int status, rc;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "Usage: runstat CMD [ARGS...]\n");
		return 2;
	}
	t0 = now_ms();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "Error: fork: %s\n", strerror(errno));
		return 1;
	}
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "Error: running %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		fprintf(stderr, "Error: wait4: %s\n", strerror(errno));
		return 1;
	}
	wall = now_ms() - t0;
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("{\"wall_ms\": %.3f, \"maxrss_kb\": %ld, \"rc\": %d}\n", wall, ru.ru_maxrss, rc);
	return rc;
}
