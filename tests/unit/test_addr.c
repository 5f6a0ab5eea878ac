// SPDX-License-Identifier: MIT
/*
 * test_addr.c - address/port/protocol parsing and formatting: round trips
 * for both families, and every malformed input rejected with -EINVAL and a
 * message that names it. Also the counter and drop-reason names.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include "sluice.h"
#include "test.h"

static void test_parse_v4(void)
{
	struct sluice_addr a;
	char buf[SLUICE_ADDR_STRLEN];

	if (!ASSERT_OK(sluice_addr__parse(&a, "10.1.2.3"), "parse"))
		return;
	ASSERT_EQ(a.family, SLUICE_AF_INET, "family");
	ASSERT_EQ(a.addr[0], htonl(0x0a010203), "addr[0] in network order");
	ASSERT_EQ(a.addr[1] | a.addr[2] | a.addr[3], 0, "addr[1..3] zero");
	ASSERT_TRUE(!strcmp(sluice_addr__str(&a, buf, sizeof(buf)), "10.1.2.3"), "format");
}

static void test_parse_v6(void)
{
	static const char *const texts[] = { "fd00::1", "::1", "2001:db8::a:b:c:d",
					     "::ffff:10.0.0.1", "fe80::" };
	struct sluice_addr a;
	char buf[SLUICE_ADDR_STRLEN];

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		if (!ASSERT_OK(sluice_addr__parse(&a, texts[i]), texts[i]))
			continue;
		ASSERT_EQ(a.family, SLUICE_AF_INET6, "family");
		if (!ASSERT_TRUE(!strcmp(sluice_addr__str(&a, buf, sizeof(buf)), texts[i]),
				 "round trip"))
			fprintf(stderr, "    %s -> %s\n", texts[i], buf);
	}
	ASSERT_OK(sluice_addr__parse(&a, "[fd00::2]"), "bracketed without port");
	ASSERT_EQ(a.addr[3], htonl(2), "last word");
	ASSERT_OK(sluice_addr__parse(&a, "FD00:0:0::0002"), "upper case, long form");
	ASSERT_TRUE(!strcmp(sluice_addr__str(&a, buf, sizeof(buf)), "fd00::2"), "canonical form");
}

static void test_parse_port(void)
{
	struct sluice_addr a;
	char buf[SLUICE_ADDRPORT_STRLEN];
	__u16 port = 0;

	if (ASSERT_OK(sluice_addr__parse_port(&a, &port, "192.168.0.1:80"), "v4:port")) {
		ASSERT_EQ(a.family, SLUICE_AF_INET, "family");
		ASSERT_EQ(port, 80, "port (host order)");
		ASSERT_TRUE(!strcmp(sluice_addr__str_port(&a, port, buf, sizeof(buf)),
				    "192.168.0.1:80"),
			    "format v4:port");
	}
	if (ASSERT_OK(sluice_addr__parse_port(&a, &port, "[fd00::10]:65535"), "[v6]:port")) {
		ASSERT_EQ(a.family, SLUICE_AF_INET6, "family");
		ASSERT_EQ(port, 65535, "port");
		ASSERT_TRUE(!strcmp(sluice_addr__str_port(&a, port, buf, sizeof(buf)),
				    "[fd00::10]:65535"),
			    "format [v6]:port");
	}
	ASSERT_OK(sluice_addr__parse_port(&a, &port, "1.2.3.4:1"), "port 1");
	ASSERT_EQ(port, 1, "port 1");
}

struct bad_case {
	const char *text;
	const char *in_msg; /* substring the message must contain */
};

static void check_bad(const struct bad_case *c, bool with_port)
{
	struct sluice_addr a = { .family = 99 };
	__u16 port = 4242;
	int err;

	err = with_port ? sluice_addr__parse_port(&a, &port, c->text) :
			  sluice_addr__parse(&a, c->text);
	if (!ASSERT_EQ(err, -EINVAL, c->text ? c->text : "(null)"))
		return;
	if (!ASSERT_TRUE(strstr(sluice__errmsg(), c->in_msg) != NULL, "message names the input"))
		fprintf(stderr, "    input \"%s\": message \"%s\"\n", c->text, sluice__errmsg());
	ASSERT_EQ(a.family, 99, "output untouched");
	ASSERT_EQ(port, 4242, "port untouched");
}

static void test_bad_addr(void)
{
	static const struct bad_case cases[] = {
		{ NULL, "empty" },
		{ "", "empty" },
		{ "10.0.0", "\"10.0.0\"" },
		{ "10.0.0.256", "\"10.0.0.256\"" },
		{ " 10.0.0.1", "\" 10.0.0.1\"" },
		{ "10.0.0.1 ", "\"10.0.0.1 \"" },
		{ "fd00:::1", "\"fd00:::1\"" },
		{ "fe80::1%eth0", "\"fe80::1%eth0\"" },
		{ "[fd00::1", "unbalanced" },
		{ "[10.0.0.1]", "only for IPv6" },
		{ "10.0.0.1:80", "\"10.0.0.1:80\"" },
		{ "example.com", "\"example.com\"" },
		{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee",
		  "too long" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		check_bad(&cases[i], false);
}

static void test_bad_addr_port(void)
{
	static const struct bad_case cases[] = {
		{ NULL, "empty" },
		{ "10.0.0.1", "missing port" },
		{ "10.0.0.1:", "missing port" },
		{ "10.0.0.1:0", "out of range" },
		{ "10.0.0.1:65536", "\"65536\"" },
		{ "10.0.0.1:123456", "\"123456\"" },
		{ "10.0.0.1:-1", "\"-1\"" },
		{ "10.0.0.1:+80", "\"+80\"" },
		{ "10.0.0.1:8o", "\"8o\"" },
		{ "10.0.0.1: 80", "\" 80\"" },
		{ "fd00::1:80", "needs brackets" },
		{ "[fd00::1]80", "[addr]:port" },
		{ "[fd00::1", "unbalanced" },
		{ "[10.0.0.1]:80", "only for IPv6" },
		{ "[fd00::zz]:80", "\"[fd00::zz]:80\"" },
		{ "300.0.0.1:80", "\"300.0.0.1:80\"" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		check_bad(&cases[i], true);
}

static void test_proto(void)
{
	char buf[8];
	__u8 p = 0;

	ASSERT_OK(sluice_proto__parse(&p, "tcp"), "tcp");
	ASSERT_EQ(p, IPPROTO_TCP, "tcp");
	ASSERT_OK(sluice_proto__parse(&p, "UDP"), "UDP");
	ASSERT_EQ(p, IPPROTO_UDP, "udp");
	ASSERT_OK(sluice_proto__parse(&p, "6"), "6");
	ASSERT_EQ(p, IPPROTO_TCP, "6 is tcp");
	p = 42;
	ASSERT_EQ(sluice_proto__parse(&p, "sctp"), -EINVAL, "sctp");
	ASSERT_TRUE(strstr(sluice__errmsg(), "\"sctp\"") != NULL, "message names sctp");
	ASSERT_EQ(sluice_proto__parse(&p, ""), -EINVAL, "empty");
	ASSERT_EQ(sluice_proto__parse(&p, "tcpx"), -EINVAL, "tcpx");
	ASSERT_EQ(p, 42, "output untouched");
	ASSERT_TRUE(!strcmp(sluice_proto__str(IPPROTO_TCP, buf, sizeof(buf)), "tcp"), "tcp str");
	ASSERT_TRUE(!strcmp(sluice_proto__str(IPPROTO_UDP, buf, sizeof(buf)), "udp"), "udp str");
	ASSERT_TRUE(!strcmp(sluice_proto__str(132, buf, sizeof(buf)), "132"), "numeric str");
}

static void test_format_odd(void)
{
	struct sluice_addr a = { .family = 7 };
	char small[6], buf[SLUICE_ADDR_STRLEN];

	ASSERT_TRUE(strstr(sluice_addr__str(&a, buf, sizeof(buf)), "7") != NULL, "bad family");
	sluice_addr__parse(&a, "fd00::1234:5678");
	sluice_addr__str(&a, small, sizeof(small));
	ASSERT_EQ(strlen(small), sizeof(small) - 1, "truncated, terminated");
}

static void test_svc_str(void)
{
	struct sluice_svc_key key = { .port = htons(53), .proto = IPPROTO_UDP };
	char buf[SLUICE_SVC_STRLEN];
	struct sluice_addr a;

	ASSERT_OK(sluice_addr__parse(&a, "10.96.0.10"), "v4");
	ASSERT_TRUE(!strcmp(sluice_svc__str(&a, 80, IPPROTO_TCP, buf, sizeof(buf)),
			    "10.96.0.10:80/tcp"),
		    "v4 service");
	ASSERT_OK(sluice_addr__parse(&a, "fd00::10"), "v6");
	key.family = a.family;
	memcpy(key.addr, a.addr, sizeof(key.addr));
	ASSERT_TRUE(!strcmp(sluice_svc_key__str(&key, buf, sizeof(buf)), "[fd00::10]:53/udp"),
		    "v6 key");
}

static void test_names(void)
{
	ASSERT_TRUE(!strcmp(sluice__counter_name(SLUICE_CNT_LB_NEW), "lb_new"), "lb_new");
	ASSERT_TRUE(!strcmp(sluice__drop_name(SLUICE_DROP_FRAGMENT), "fragment"), "fragment");
	ASSERT_TRUE(!strcmp(sluice__drop_name(SLUICE_DROP__MAX), "unknown"), "out of range");
	ASSERT_TRUE(!strcmp(sluice__counter_name((enum sluice_counter) - 1), "unknown"),
		    "negative");
	for (int i = 0; i < SLUICE_CNT__MAX; i++)
		ASSERT_TRUE(sluice__counter_name(i)[0] && sluice__counter_help(i)[0],
			    "counter named");
	for (int i = 0; i < SLUICE_DROP__MAX; i++)
		ASSERT_TRUE(sluice__drop_name(i)[0] && sluice__drop_help(i)[0], "drop named");
}

static const struct test tests[] = {
	TEST(test_parse_v4),   TEST(test_parse_v6),      TEST(test_parse_port),
	TEST(test_bad_addr),   TEST(test_bad_addr_port), TEST(test_proto),
	TEST(test_format_odd), TEST(test_svc_str),       TEST(test_names),
};

int main(int argc, char **argv)
{
	return test__run_all("addr", tests, ARRAY_SIZE(tests), argc, argv);
}
