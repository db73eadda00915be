#include "certs/tls.h"
#include "core/err.h"

#include <arpa/inet.h>
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/*
 * TLS 1.2 suites: Mozilla's "intermediate" list without DHE, i.e. ECDHE key exchange (forward
 * secrecy) with AEAD ciphers only. Every TLS 1.3 suite is AEAD, so OpenSSL's default set stays.
 */
static const char tls12_ciphers[] =
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const char tls_groups[] = "X25519:P-256:P-384";

/* ALPN's wire form: each name prefixed by its length (RFC 7301, section 3.1). */
static const unsigned char alpn_http11[] = "\x08http/1.1";
#define ALPN_HTTP11_LEN (sizeof(alpn_http11) - 1)

enum tls_phase {
	TLS_HANDSHAKE,	/* until SSL_do_handshake() returns 1 */
	TLS_OPEN,	/* application data; who sent close_notify is in SSL_get_shutdown() */
	TLS_FAILED,	/* fatal: OpenSSL forbids further I/O and SSL_shutdown() on this SSL */
};

struct tls_conn {
	SSL *ssl;
	BIO *in;		/* ciphertext from the peer; owned by ssl */
	struct pg_buf outq;	/* ciphertext for the peer, written by ssl through the sink BIO */
	enum tls_phase phase;
	char err[256];
};

/*
 * Largest output pending at once: above it a write fails (PG_ETLS). Callers take output after
 * every call (tls.h), so only one call's output is ever pending.
 */
#define TLS_OUT_MAX (64u << 20)

/* Room a record adds to its plaintext (header, content type or explicit nonce, AEAD tag). */
#define TLS_RECORD_OVERHEAD 32
#define TLS_RECORD_MAX 16384

/*
 * The output side is a sink BIO that appends to the connection's own buffer: a memory BIO
 * would need its bytes copied out again, and tls_conn_take_output() can instead hand the
 * buffer itself to the caller, who writes it to the socket.
 */
static int
sink_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct tls_conn *tc = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (pg_buf_append(&tc->outq, data, len) != 0)
		return 0;
	*written = len;
	return 1;
}

static long
sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *tc = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;	/* every write already landed in outq */
	case BIO_CTRL_WPENDING:
		return (long)tc->outq.len;
	default:
		return 0;	/* PENDING (nothing to read from a sink), kTLS, DGRAM, ...: no */
	}
}

static int
sink_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *sink_method;

static void
sink_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "poolgate TLS output");

	if (m != NULL && (BIO_meth_set_write_ex(m, sink_write) != 1 ||
	    BIO_meth_set_ctrl(m, sink_ctrl) != 1 || BIO_meth_set_create(m, sink_create) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	sink_method = m;	/* lives as long as the process, like OpenSSL's own methods */
}

static BIO *
sink_new(struct tls_conn *tc)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	pthread_once(&once, sink_method_init);
	if (sink_method == NULL || (b = BIO_new(sink_method)) == NULL)
		return NULL;
	BIO_set_data(b, tc);
	return b;
}

/* The only legal moves are forward: HANDSHAKE -> OPEN -> FAILED, or HANDSHAKE -> FAILED. */
static void
set_phase(struct tls_conn *tc, enum tls_phase next)
{
	assert(next > tc->phase);
	tc->phase = next;
}

static const char *
reason_of(unsigned long e, char *tmp, size_t tmplen)
{
	const char *s;

	/*
	 * OpenSSL has no static string for errno values (ENOENT from fopen), so it returns NULL for
	 * them; strerror_r is the GNU one, which may return a static string instead of filling tmp.
	 */
	if (ERR_SYSTEM_ERROR(e))
		return strerror_r(ERR_GET_REASON(e), tmp, tmplen);
	if ((s = ERR_reason_error_string(e)) != NULL)
		return s;
	ERR_error_string_n(e, tmp, tmplen);
	return tmp;
}

/*
 * Builds "<context>: <reason>" from the earliest queued OpenSSL error, the root cause (later
 * entries only add where it surfaced), and empties the queue so nothing reaches the next caller.
 */
static void __attribute__((format(printf, 3, 4)))
describe(char *err, size_t errlen, const char *fmt, ...)
{
	unsigned long e;
	char tmp[256];
	va_list ap;
	size_t n;
	int w;

	if (errlen == 0) {
		ERR_clear_error();
		return;
	}
	va_start(ap, fmt);
	w = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	n = w < 0 ? 0 : (size_t)w;
	e = ERR_peek_error();
	if (n < errlen)
		snprintf(err + n, errlen - n, ": %s",
		    e != 0 ? reason_of(e, tmp, sizeof(tmp)) : "unknown OpenSSL error");
	ERR_clear_error();
}

static SSL_CTX *
ctx_new(char *err, size_t errlen)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_method())) == NULL) {
		describe(err, errlen, "cannot create TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, tls_groups) != 1) {
		describe(err, errlen, "cannot set TLS protocol limits");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/*
	 * TLS 1.2 renegotiation is a CPU-exhaustion lever for peers and nothing we serve needs it;
	 * TLS 1.3 has none.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	return ctx;
}

SSL_CTX *
tls_client_ctx_new(const char *ca_file, int verify, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = ctx_new(err, errlen)) == NULL)
		return NULL;
	if (verify && ca_file != NULL &&
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		describe(err, errlen, "cannot load CA file %s", ca_file);
		goto fail;
	}
	if (verify && ca_file == NULL && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		describe(err, errlen, "cannot load the system CA store");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	/* Unlike the rest of the SSL_CTX API, this one returns 0 on success. */
	if (SSL_CTX_set_alpn_protos(ctx, alpn_http11, ALPN_HTTP11_LEN) != 0) {
		describe(err, errlen, "cannot set ALPN");
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * OpenSSL's default prompts for a passphrase on the controlling terminal; a daemon must fail
 * instead of hanging on a reload.
 */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	return 0;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	unsigned char *sel;

	/* sel is not const only by OpenSSL's signature; it points into one of the two lists. */
	if (SSL_select_next_proto(&sel, outlen, alpn_http11, ALPN_HTTP11_LEN, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;	/* no_application_protocol */
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *
tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = ctx_new(err, errlen)) == NULL)
		return NULL;
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		describe(err, errlen, "cannot load certificate chain %s", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		describe(err, errlen, "cannot load private key %s", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		describe(err, errlen, "private key %s does not match certificate %s", key_file,
		    cert_file);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int
is_ip_literal(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

struct tls_conn *
tls_conn_new(SSL_CTX *ctx, int is_server, const char *server_name)
{
	struct tls_conn *tc = NULL;
	BIO *in = NULL, *out = NULL;

	/* A verifying client without a name would accept any certificate its CAs ever signed. */
	if (!is_server && server_name == NULL &&
	    (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) != 0)
		return NULL;
	ERR_clear_error();
	if ((tc = calloc(1, sizeof(*tc))) == NULL)
		goto fail;
	tc->phase = TLS_HANDSHAKE;
	pg_buf_init(&tc->outq, TLS_OUT_MAX);
	if ((tc->ssl = SSL_new(ctx)) == NULL)
		goto fail;
	/* Idle connections give back OpenSSL's record buffers (about 34 KiB each). */
	SSL_set_mode(tc->ssl, SSL_MODE_RELEASE_BUFFERS);
	if ((in = BIO_new(BIO_s_mem())) == NULL || (out = sink_new(tc)) == NULL)
		goto fail;
	/*
	 * An empty input BIO means "no data yet" (retry), not end of stream: the socket's EOF is
	 * the caller's to interpret.
	 */
	BIO_set_mem_eof_return(in, -1);
	SSL_set_bio(tc->ssl, in, out);
	tc->in = in;
	in = out = NULL;
	if (is_server) {
		SSL_set_accept_state(tc->ssl);
		return tc;
	}
	SSL_set_connect_state(tc->ssl);
	if (server_name == NULL)
		return tc;
	if (is_ip_literal(server_name)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tc->ssl), server_name) != 1)
			goto fail;
	} else {
		SSL_set_hostflags(tc->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(tc->ssl, server_name) != 1 ||
		    SSL_set1_host(tc->ssl, server_name) != 1)
			goto fail;
	}
	return tc;
fail:
	ERR_clear_error();
	BIO_free(in);
	BIO_free(out);
	tls_conn_free(tc);
	return NULL;
}

void
tls_conn_free(struct tls_conn *tc)
{
	if (tc == NULL)
		return;
	SSL_free(tc->ssl);	/* frees both BIOs */
	pg_buf_free(&tc->outq);
	free(tc);
}

/*
 * Records why the connection failed and drains the error queue. A failed certificate check
 * appears in the queue only as "certificate verify failed"; the why (self-signed, expired,
 * hostname mismatch) is in the verify result, so it is appended.
 */
static int
fail(struct tls_conn *tc, int ssl_error)
{
	unsigned long e, first = 0;
	int verify_failed = 0;
	char tmp[256];
	long vr;

	while ((e = ERR_get_error()) != 0) {
		if (first == 0)
			first = e;
		if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
		    ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
			verify_failed = 1;
	}
	if (verify_failed && (vr = SSL_get_verify_result(tc->ssl)) != X509_V_OK)
		snprintf(tc->err, sizeof(tc->err), "certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
	else if (first != 0)
		snprintf(tc->err, sizeof(tc->err), "%s", reason_of(first, tmp, sizeof(tmp)));
	else
		snprintf(tc->err, sizeof(tc->err), "TLS failure without a reason (SSL error %d)",
		    ssl_error);
	set_phase(tc, TLS_FAILED);
	return PG_ETLS;
}

int
tls_conn_feed(struct tls_conn *tc, const uint8_t *p, size_t len)
{
	size_t n;

	if (tc->phase == TLS_FAILED)
		return PG_ETLS;
	if (len > TLS_CONN_MAX_INPUT || BIO_ctrl_pending(tc->in) > TLS_CONN_MAX_INPUT - len)
		return PG_ETOOBIG;
	if (len == 0)
		return 0;
	if (BIO_write_ex(tc->in, p, len, &n) != 1 || n != len) {
		ERR_clear_error();
		return PG_ENOMEM;	/* a memory BIO fails only to grow */
	}
	return 0;
}

int
tls_conn_handshake(struct tls_conn *tc)
{
	int r, e;

	if (tc->phase == TLS_FAILED)
		return PG_ETLS;
	if (tc->phase == TLS_OPEN)
		return 1;
	/* SSL_get_error() reads the queue, which must be empty before the call it explains. */
	ERR_clear_error();
	if ((r = SSL_do_handshake(tc->ssl)) == 1) {
		set_phase(tc, TLS_OPEN);
		return 1;
	}
	e = SSL_get_error(tc->ssl, r);
	/* The output BIO always accepts, so WANT_WRITE would only mean "send, then call again". */
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return fail(tc, e);
}

int
tls_conn_read(struct tls_conn *tc, uint8_t *out, size_t cap, size_t *got)
{
	size_t n;
	int e;

	if (tc->phase == TLS_FAILED)
		return PG_ETLS;
	if (tc->phase != TLS_OPEN || cap == 0)
		return PG_EINVAL;
	ERR_clear_error();
	if (SSL_read_ex(tc->ssl, out, cap, &n) == 1) {
		*got = n;
		return 0;
	}
	switch ((e = SSL_get_error(tc->ssl, 0))) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		*got = 0;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		return PG_ECLOSED;
	}
	return fail(tc, e);
}

int
tls_conn_write(struct tls_conn *tc, const uint8_t *p, size_t len)
{
	size_t n;
	int e;

	if (tc->phase == TLS_FAILED)
		return PG_ETLS;
	if (tc->phase != TLS_OPEN)
		return PG_EINVAL;
	if (len == 0)
		return 0;
	/* One allocation for the records this write makes, rather than growth record by record. */
	if (len <= TLS_OUT_MAX)
		(void)pg_buf_reserve(&tc->outq,
		    len + (len / TLS_RECORD_MAX + 1) * TLS_RECORD_OVERHEAD);
	ERR_clear_error();
	/*
	 * Without SSL_MODE_ENABLE_PARTIAL_WRITE success means all of it. With renegotiation off and
	 * an output BIO that always accepts, nothing can make a write wait for the peer.
	 */
	if (SSL_write_ex(tc->ssl, p, len, &n) == 1)
		return 0;
	e = SSL_get_error(tc->ssl, 0);
	return fail(tc, e);
}

int
tls_conn_take_output(struct tls_conn *tc, struct pg_buf *dst)
{
	struct pg_buf *q = &tc->outq;
	int r;

	if (q->len == 0)
		return 0;
	if (dst->len == 0 && q->cap <= dst->max) {
		/* Hand the buffer over: the caller writes what OpenSSL wrote, not a copy of it. */
		uint8_t *p = dst->p;
		size_t cap = dst->cap;

		dst->p = q->p;
		dst->len = q->len;
		dst->cap = q->cap;
		q->p = p;
		q->cap = cap;
		q->len = 0;
	} else if ((r = pg_buf_append(dst, q->p, q->len)) != 0) {
		return r;
	}
	/* Nothing stays allocated for a connection between writes. */
	pg_buf_free(q);
	return 0;
}

int
tls_conn_shutdown(struct tls_conn *tc)
{
	int r, e;

	if (tc->phase == TLS_FAILED)
		return PG_ETLS;
	if (tc->phase != TLS_OPEN)
		return PG_EINVAL;
	ERR_clear_error();
	/* 0: ours is queued, the peer's not seen yet; 1: both done. Either is success here. */
	if ((r = SSL_shutdown(tc->ssl)) >= 0)
		return 0;
	/* A second call waits for the peer's close_notify; ours is already queued. */
	e = SSL_get_error(tc->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	return fail(tc, e);
}

const char *
tls_conn_error(const struct tls_conn *tc)
{
	return tc->err;
}

const char *
tls_conn_version(const struct tls_conn *tc)
{
	return SSL_get_version(tc->ssl);
}
