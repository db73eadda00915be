/*
 * Fuzz target: the PROXY protocol header parser (core/proxyproto.c). Besides not crashing:
 * a complete header lies within the input and within PROXYPROTO_MAX; an address is one of the
 * two families; the first decisive answer over growing prefixes is the whole input's answer
 * (a connection read byte by byte is judged as one read at once); and the reader, fed the input
 * in two pieces, agrees with the parser and hands back exactly the bytes after the header.
 */
#include "core/err.h"
#include "core/proxyproto.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct proxyproto_reader r;
	struct proxyproto_hdr h, hp;
	struct pg_slice rest[2];
	const char *why, *whyp;
	int rc = proxyproto_parse(data, size, &h, &why), rp = 0;
	size_t i, cut = size / 2, fed;

	if (rc != 0 && rc != 1 && rc != PG_EPARSE && rc != PG_ETOOBIG)
		__builtin_trap();
	if (rc < 0 && why == NULL)
		__builtin_trap();
	if (rc == 1 && (h.len == 0 || h.len > size || h.len > PROXYPROTO_MAX))
		__builtin_trap();
	if (rc == 1 && !h.local && h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6)
		__builtin_trap();
	for (i = 1; i <= size && size <= 4096; i++) {
		if ((rp = proxyproto_parse(data, i, &hp, &whyp)) != 0)
			break;
	}
	if (size <= 4096 && i <= size && (rp != rc || (rc == 1 && hp.len != h.len)))
		__builtin_trap();
	(void)proxyproto_looks_like(data, size);

	memset(&r, 0, sizeof(r));
	fed = cut;
	rp = proxyproto_reader_feed(&r, data, cut, &hp, rest, &whyp);
	if (rp == 0) {
		fed = size;
		rp = proxyproto_reader_feed(&r, data + cut, size - cut, &hp, rest, &whyp);
	}
	if (rp == 1) {
		/* The rest is what was fed after the header, nothing more, nothing less. */
		if (rc != 1 || hp.len != h.len || rest[0].len + rest[1].len != fed - h.len)
			__builtin_trap();
		if (memcmp(rest[0].p, data + h.len, rest[0].len) != 0 ||
		    memcmp(rest[1].p, data + h.len + rest[0].len, rest[1].len) != 0)
			__builtin_trap();
	} else if (rp != rc && !(rc == 0 && rp == 0)) {
		__builtin_trap();
	}
	return 0;
}
