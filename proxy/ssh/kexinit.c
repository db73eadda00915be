/* KEXINIT: build, parse, negotiate (RFC 4253 7.1), with OpenSSH's strict kex and RFC 8308 markers. */
#include "proxy/ssh/kex.h"
#include "proxy/ssh/cipher.h"
#include "core/sshwire.h"
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

static const char *const list_names[SSH_KI_NLISTS] = {
	"kex algorithm", "host key algorithm", "cipher client->server", "cipher server->client",
	"MAC client->server", "MAC server->client", "compression client->server",
	"compression server->client", "language client->server", "language server->client",
};

int
ssh_kexinit_build(struct pg_buf *out, const struct ssh_kex_prefs *prefs, int is_server,
    int initial)
{
	const char *kex = prefs->kex ? prefs->kex : SSH_KEX_DEFAULT;
	const char *hk = prefs->hostkey ? prefs->hostkey : SSH_HOSTKEY_ALGS_DEFAULT;
	const char *enc = prefs->ciphers ? prefs->ciphers : SSH_CIPHERS_DEFAULT;
	const char *mac = prefs->macs ? prefs->macs : SSH_MACS_DEFAULT;
	uint8_t cookie[16];
	size_t old = out->len;
	int r;

	if (RAND_bytes(cookie, sizeof(cookie)) != 1)
		return PG_ENOMEM;
	/*
	 * byte SSH_MSG_KEXINIT, byte[16] cookie, name-list kex_algorithms ... languages (10 lists),
	 * boolean first_kex_packet_follows, uint32 0 (reserved)
	 */
	if ((r = ssh_put_u8(out, SSH_MSG_KEXINIT)) != 0 || (r = pg_buf_append(out, cookie, 16)) != 0)
		goto out;
	/* The kex list: the markers go last, where no peer would pick them as a method. */
	if ((r = ssh_put_u32(out, 0)) != 0)
		goto out;
	{
		size_t at = out->len;

		if ((r = pg_buf_append_str(out, kex)) != 0)
			goto out;
		if (initial && (r = pg_buf_printf(out, ",%s,%s", is_server ? SSH_EXT_INFO_S :
		    SSH_EXT_INFO_C, is_server ? SSH_KEX_STRICT_S : SSH_KEX_STRICT_C)) != 0)
			goto out;
		ssh_poke_u32(out->p + at - 4, (uint32_t)(out->len - at));
	}
	if ((r = ssh_put_cstring(out, hk)) != 0 || (r = ssh_put_cstring(out, enc)) != 0 ||
	    (r = ssh_put_cstring(out, enc)) != 0 || (r = ssh_put_cstring(out, mac)) != 0 ||
	    (r = ssh_put_cstring(out, mac)) != 0 || (r = ssh_put_cstring(out, "none")) != 0 ||
	    (r = ssh_put_cstring(out, "none")) != 0 || (r = ssh_put_cstring(out, "")) != 0 ||
	    (r = ssh_put_cstring(out, "")) != 0 || (r = ssh_put_bool(out, 0)) != 0 ||
	    (r = ssh_put_u32(out, 0)) != 0)
		goto out;
out:
	if (r != 0)
		out->len = old;
	return r;
}

int
ssh_kexinit_parse(struct pg_slice payload, struct ssh_kexinit *ki)
{
	struct ssh_kexinit k;
	uint32_t reserved;
	uint8_t type;

	if (ssh_get_u8(&payload, &type) != 0 || type != SSH_MSG_KEXINIT ||
	    ssh_get_bytes(&payload, 16, &k.cookie) != 0)
		return PG_EPARSE;
	for (int i = 0; i < SSH_KI_NLISTS; i++)
		if (ssh_get_namelist(&payload, &k.lists[i]) != 0)
			return PG_EPARSE;
	/* The reserved word is for future extension: ignore its value, as OpenSSH does. */
	if (ssh_get_bool(&payload, &k.first_kex_follows) != 0 || ssh_get_u32(&payload, &reserved) != 0)
		return PG_EPARSE;
	*ki = k;
	return 0;
}

static int
is_marker(struct pg_slice n)
{
	return ssh_slice_eq(n, SSH_KEX_STRICT_C) || ssh_slice_eq(n, SSH_KEX_STRICT_S) ||
	    ssh_slice_eq(n, SSH_EXT_INFO_C) || ssh_slice_eq(n, SSH_EXT_INFO_S);
}

/* The first name of client that server lists too; markers never match. 1 if found. */
static int
choose(struct pg_slice client, struct pg_slice server, char *out)
{
	struct pg_slice c, s;

	while (ssh_namelist_next(&client, &c)) {
		struct pg_slice sl = server;

		if (is_marker(c) || c.len >= SSH_ALG_MAX)
			continue;
		while (ssh_namelist_next(&sl, &s)) {
			if (s.len == c.len && memcmp(s.p, c.p, c.len) == 0) {
				memcpy(out, c.p, c.len);
				out[c.len] = '\0';
				return 1;
			}
		}
	}
	return 0;
}

/* RFC 4253 7: a guess is right when both sides' first kex and host key algorithms are equal. */
static int
first_equal(struct pg_slice a, struct pg_slice b)
{
	struct pg_slice fa, fb;

	if (!ssh_namelist_next(&a, &fa) || !ssh_namelist_next(&b, &fb))
		return 0;
	return fa.len == fb.len && memcmp(fa.p, fb.p, fa.len) == 0;
}

static int __attribute__((format(printf, 3, 4)))
no_match(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return PG_EPROTO;
}

int
ssh_kex_negotiate(const struct ssh_kexinit *client, const struct ssh_kexinit *server,
    int is_server, int initial, struct ssh_kex_algs *out, char *why, size_t whylen)
{
	const struct ssh_kexinit *peer = is_server ? client : server;
	struct ssh_kex_algs a;
	char comp[SSH_ALG_MAX];

	memset(&a, 0, sizeof(a));
	if (!choose(client->lists[SSH_KI_KEX], server->lists[SSH_KI_KEX], a.kex))
		goto fail_kex;
	if (!choose(client->lists[SSH_KI_HOSTKEY], server->lists[SSH_KI_HOSTKEY], a.hostkey))
		return no_match(why, whylen, "no common %s", list_names[SSH_KI_HOSTKEY]);
	for (int d = 0; d < 2; d++) {
		int el = d == 0 ? SSH_KI_ENC_CS : SSH_KI_ENC_SC;
		int ml = d == 0 ? SSH_KI_MAC_CS : SSH_KI_MAC_SC;
		int cl = d == 0 ? SSH_KI_COMP_CS : SSH_KI_COMP_SC;

		if (!choose(client->lists[el], server->lists[el], a.enc[d]))
			return no_match(why, whylen, "no common %s (client offers %.*s)",
			    list_names[el], (int)client->lists[el].len, client->lists[el].p);
		/* An AEAD authenticates itself; the MAC list is not consulted (as in OpenSSH). */
		if (!ssh_cipher_is_aead(a.enc[d]) &&
		    !choose(client->lists[ml], server->lists[ml], a.mac[d]))
			return no_match(why, whylen, "no common %s (client offers %.*s)",
			    list_names[ml], (int)client->lists[ml].len, client->lists[ml].p);
		if (!choose(client->lists[cl], server->lists[cl], comp) || strcmp(comp, "none") != 0)
			return no_match(why, whylen, "no common %s", list_names[cl]);
	}
	if (initial) {
		a.strict = ssh_namelist_has(client->lists[SSH_KI_KEX], SSH_KEX_STRICT_C) &&
		    ssh_namelist_has(server->lists[SSH_KI_KEX], SSH_KEX_STRICT_S);
		a.peer_ext_info = ssh_namelist_has(peer->lists[SSH_KI_KEX],
		    is_server ? SSH_EXT_INFO_C : SSH_EXT_INFO_S);
	}
	a.skip_guess = peer->first_kex_follows &&
	    (!first_equal(client->lists[SSH_KI_KEX], server->lists[SSH_KI_KEX]) ||
	     !first_equal(client->lists[SSH_KI_HOSTKEY], server->lists[SSH_KI_HOSTKEY]));
	*out = a;
	return 0;
fail_kex:
	return no_match(why, whylen, "no common %s (client offers %.*s)", list_names[SSH_KI_KEX],
	    (int)client->lists[SSH_KI_KEX].len, client->lists[SSH_KI_KEX].p);
}
