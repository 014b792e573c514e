// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * New TCP connections per second, one thread each side (bench/connrate.ts runs it).
 *
 *   connrate server ADDR[@NETNS][,ADDR[@NETNS]…] PORT
 *                                      listen on each address, in the network namespace
 *                                      whose path follows its @ (else the current one);
 *                                      accept from whichever is ready; read one byte, write
 *                                      it back; wait for the client's close; close. One
 *                                      connection at a time, one process for every
 *                                      listener: the backends of a service benchmarked on
 *                                      one CPU then cost what one pod does (two server
 *                                      processes on one CPU add an address-space switch
 *                                      per connection, 7-11% by themselves, that backends
 *                                      on their own CPUs in a cluster do not pay).
 *   connrate client ADDR[,ADDR…] PORT SECONDS
 *                                      connect, send one byte, read it back, close; again,
 *                                      for SECONDS, taking the addresses in turn (what a
 *                                      service spreading over them makes its backends do,
 *                                      without the service). Prints one JSON line:
 *                                      {"connections":N,"seconds":S,"errors":E,"firstError":"..."}
 *
 * The client closes first (it holds TIME_WAIT; its namespace reuses those ports with
 * net.ipv4.tcp_tw_reuse), as a client of a service does. C rather than Node: a Node
 * client tops out near a third of this rate on plain pod → pod, so it would measure
 * itself (bench/connrate.ts records both). Compiled at bench time with clang.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int addr_of(const char *ip, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((unsigned short)atoi(port));
	return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

#define MAX_ADDRS 8

/* A listening socket on sa, made in the namespace at netns_path (NULL: the current one). */
static int listener(const struct sockaddr_in *sa, const char *netns_path)
{
	int one = 1, home = -1, ls;

	if (netns_path) {
		int ns = open(netns_path, O_RDONLY | O_CLOEXEC);

		home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (ns < 0 || home < 0 || setns(ns, CLONE_NEWNET)) {
			perror("connrate server: setns");
			return -1;
		}
		close(ns);
	}
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (const struct sockaddr *)sa, sizeof(*sa)) || listen(ls, 4096)) {
		perror("connrate server: bind/listen");
		return -1;
	}
	if (home >= 0 && (setns(home, CLONE_NEWNET) || close(home))) {
		perror("connrate server: setns back");
		return -1;
	}
	return ls;
}

static int serve(const struct sockaddr_in *sas, char **netns, int nsa)
{
	struct pollfd pfd[MAX_ADDRS];
	int one = 1;
	char b[64];

	for (int i = 0; i < nsa; i++) {
		pfd[i].fd = listener(&sas[i], netns[i]);
		pfd[i].events = POLLIN;
		if (pfd[i].fd < 0)
			return 1;
	}
	for (;;) {
		if (nsa > 1 && poll(pfd, nsa, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("connrate server: poll");
			return 1;
		}
		for (int i = 0; i < nsa; i++) {
			int c;

			if (nsa > 1 && !(pfd[i].revents & POLLIN))
				continue;
			c = accept(pfd[i].fd, NULL, NULL);
			if (c < 0) {
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				perror("connrate server: accept");
				return 1;
			}
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (read(c, b, 1) == 1 && write(c, b, 1) == 1)
				while (read(c, b, sizeof(b)) > 0) /* until the client's FIN */
					;
			close(c);
		}
	}
}

static int client(const struct sockaddr_in *sas, int nsa, double seconds)
{
	long n = 0, errors = 0;
	char first[128] = "";
	double start = now_s(), end = start + seconds, t = start;
	int one = 1;

	while (t < end && errors < 1000) {
		const struct sockaddr_in *sa = &sas[(n + errors) % nsa];
		int s = socket(AF_INET, SOCK_STREAM, 0);
		char b = 'x';
		const char *what = NULL;

		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(s, (const struct sockaddr *)sa, sizeof(*sa)))
			what = "connect";
		else if (write(s, &b, 1) != 1)
			what = "write";
		else if (read(s, &b, 1) != 1)
			what = "read";
		if (what) {
			if (!errors++)
				snprintf(first, sizeof(first), "%s: %s", what, strerror(errno));
		} else {
			n++;
		}
		close(s);
		if ((n & 63) == 0 || what)
			t = now_s();
	}
	t = now_s();
	printf("{\"connections\":%ld,\"seconds\":%.6f,\"errors\":%ld,\"firstError\":\"%s\"}\n", n, t - start, errors, first);
	return 0;
}

/*
 * Parses "ADDR[@NETNS][,ADDR[@NETNS]…]" into sas (and each namespace path into netns,
 * NULL where none is given; netns NULL: none may be given); returns how many, 0 on a
 * bad list.
 */
static int addrs_of(char *list, const char *port, struct sockaddr_in *sas, char **netns)
{
	int n = 0;

	for (char *a = strtok(list, ","); a; a = strtok(NULL, ",")) {
		char *at = strchr(a, '@');

		if (at && !netns)
			return 0;
		if (at)
			*at = 0;
		if (n == MAX_ADDRS || addr_of(a, port, &sas[n]))
			return 0;
		if (netns)
			netns[n] = at ? at + 1 : NULL;
		n++;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sas[MAX_ADDRS];
	char *netns[MAX_ADDRS];
	int n;

	if (argc >= 4 && !strcmp(argv[1], "server") && (n = addrs_of(argv[2], argv[3], sas, netns)) > 0)
		return serve(sas, netns, n);
	if (argc >= 5 && !strcmp(argv[1], "client") && (n = addrs_of(argv[2], argv[3], sas, NULL)) > 0 && atof(argv[4]) > 0)
		return client(sas, n, atof(argv[4]));
	fprintf(stderr, "usage: connrate server ADDR[@NETNS][,ADDR[@NETNS]…] PORT | connrate client ADDR[,ADDR…] PORT SECONDS\n");
	return 2;
}
