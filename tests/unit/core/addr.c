/* core/addr.c: "ip:port" / "[ipv6]:port" parsing and formatting, IP literals only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/addr.h"
#include "core/err.h"

static void
test_round_trip(void **state)
{
	static const char *const forms[] = { "127.0.0.1:9090", "0.0.0.0:1", "255.255.255.255:65535",
		"[::1]:9090", "[2001:db8::7]:22", "[fe80::1:2]:8000", "[::ffff:192.0.2.1]:443" };

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct sockaddr_storage ss;
		char buf[PG_ADDRSTRLEN];

		assert_int_equal(pg_addr_parse_hostport(forms[i], &ss), 0);
		assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), forms[i]);
	}
}

static void
test_parse_fields(void **state)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	struct in6_addr loop6 = IN6ADDR_LOOPBACK_INIT;

	assert_int_equal(pg_addr_parse_hostport("10.1.2.3:2222", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 2222);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a010203);

	assert_int_equal(pg_addr_parse_hostport("[::1]:9090", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 9090);
	assert_memory_equal(&sin6->sin6_addr, &loop6, sizeof(loop6));
}

/* A normalised form comes back from format, not the input spelling. */
static void
test_format_normalises(void **state)
{
	struct sockaddr_storage ss;
	char buf[PG_ADDRSTRLEN];

	assert_int_equal(pg_addr_parse_hostport("[2001:DB8:0:0::1]:80", &ss), 0);
	assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), "[2001:db8::1]:80");
	assert_int_equal(pg_addr_parse_hostport("1.2.3.4:0080", &ss), 0);
	assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), "1.2.3.4:80");
}

static void
test_rejects(void **state)
{
	static const struct {
		const char *in;
		int want;
	} cases[] = {
		{ "1.2.3.4", PG_EPARSE },
		{ "1.2.3.4:0", PG_ERANGE },
		{ "1.2.3.4:65536", PG_ERANGE },
		{ "1.2.3.4:99999999999999999999999", PG_ERANGE },
		{ "::1:90", PG_EPARSE },
		{ "[::1]x:1", PG_EPARSE },
		{ "host:80", PG_EPARSE },
		{ "localhost:9090", PG_EPARSE },
		{ "1.2.3.4:", PG_EPARSE },
		{ "1.2.3.4:80x", PG_EPARSE },
		{ "1.2.3.4:-1", PG_EPARSE },
		{ "1.2.3.4: 80", PG_EPARSE },
		{ "1.2.3.4:+80", PG_EPARSE },
		{ ":80", PG_EPARSE },
		{ "[]:80", PG_EPARSE },
		{ "[::1:80", PG_EPARSE },
		{ "::1]:80", PG_EPARSE },
		{ "1.2.3:80", PG_EPARSE },
		{ "", PG_EPARSE },
		{ "[1.2.3.4]:80", PG_EPARSE },	/* brackets are for IPv6 only */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		int r = pg_addr_parse_hostport(cases[i].in, &ss);

		if (r != cases[i].want)
			print_error("\"%s\": got %d, expected %d\n", cases[i].in, r, cases[i].want);
		assert_int_equal(r, cases[i].want);
	}
}

static void
test_from_ip(void **state)
{
	struct sockaddr_storage ss;
	char buf[PG_ADDRSTRLEN];

	assert_int_equal(pg_addr_from_ip("192.0.2.9", 22, &ss), 0);
	assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), "192.0.2.9:22");
	assert_int_equal(pg_addr_from_ip("fd00::5", 8000, &ss), 0);
	assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), "[fd00::5]:8000");
	assert_int_equal(pg_addr_from_ip("[fd00::5]", 1, &ss), PG_EPARSE);
	assert_int_equal(pg_addr_from_ip("example.com", 1, &ss), PG_EPARSE);
	assert_int_equal(pg_addr_from_ip("1.2.3.4:5", 1, &ss), PG_EPARSE);
	assert_int_equal(pg_addr_from_ip("", 1, &ss), PG_EPARSE);
	/* A failure leaves the output as it was (STYLE.md: out-parameters set only on success). */
	assert_int_equal(pg_addr_from_ip("192.0.2.9", 22, &ss), 0);
	assert_int_equal(pg_addr_from_ip("nope", 1, &ss), PG_EPARSE);
	assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), "192.0.2.9:22");
}

static void
test_format_unknown_family(void **state)
{
	struct sockaddr_storage ss;
	char buf[PG_ADDRSTRLEN];

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_string_equal(pg_addr_format((struct sockaddr *)&ss, buf), "?");
}

static void
test_cidr(void **state)
{
	static const char *const bad[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.1/8",
		"10.0.0.0/08", "10.0.0.0/8x", "fd00::1/8", "fd00::/129", "example.com/8", "10.0.0.0 /8",
		"10.0.0.0/-1" };
	struct pg_cidr c;
	struct sockaddr_storage ss;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pg_cidr_parse(bad[i], &c) != PG_EPARSE)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_int_equal(pg_cidr_parse("10.0.0.0/8", &c), 0);
	assert_int_equal(pg_addr_from_ip("10.200.3.4", 1, &ss), 0);
	assert_true(pg_cidr_match(&c, (struct sockaddr *)&ss));
	assert_int_equal(pg_addr_from_ip("::ffff:10.200.3.4", 1, &ss), 0);
	assert_true(pg_cidr_match(&c, (struct sockaddr *)&ss));	/* IPv4-mapped counts as IPv4 */
	assert_int_equal(pg_addr_from_ip("11.0.0.1", 1, &ss), 0);
	assert_false(pg_cidr_match(&c, (struct sockaddr *)&ss));
	assert_int_equal(pg_cidr_parse("192.0.2.7", &c), 0);	/* one address: /32 */
	assert_int_equal(c.bits, 32);
	assert_int_equal(pg_addr_from_ip("192.0.2.7", 1, &ss), 0);
	assert_true(pg_cidr_match(&c, (struct sockaddr *)&ss));
	assert_int_equal(pg_addr_from_ip("192.0.2.6", 1, &ss), 0);
	assert_false(pg_cidr_match(&c, (struct sockaddr *)&ss));
	assert_int_equal(pg_cidr_parse("2001:db8:80::/41", &c), 0);
	assert_int_equal(pg_addr_from_ip("2001:db8:ff::1", 1, &ss), 0);
	assert_true(pg_cidr_match(&c, (struct sockaddr *)&ss));
	assert_int_equal(pg_addr_from_ip("2001:db8:7f::1", 1, &ss), 0);
	assert_false(pg_cidr_match(&c, (struct sockaddr *)&ss));
	assert_int_equal(pg_addr_from_ip("10.0.0.1", 1, &ss), 0);
	assert_false(pg_cidr_match(&c, (struct sockaddr *)&ss));	/* families differ */
	assert_int_equal(pg_cidr_parse("0.0.0.0/0", &c), 0);
	assert_true(pg_cidr_match(&c, (struct sockaddr *)&ss));
}

static void
test_ip_only(void **state)
{
	struct sockaddr_storage ss;
	char buf[PG_ADDRSTRLEN];

	assert_int_equal(pg_addr_from_ip("2001:db8::1", 22, &ss), 0);
	assert_string_equal(pg_addr_ip((struct sockaddr *)&ss, buf), "2001:db8::1");
	assert_int_equal(pg_addr_from_ip("192.0.2.1", 22, &ss), 0);
	assert_string_equal(pg_addr_ip((struct sockaddr *)&ss, buf), "192.0.2.1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_format_normalises),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_from_ip),
		cmocka_unit_test(test_format_unknown_family),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_ip_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
