/*
 * The load probe (DESIGN.md, health/): every health.load.interval_ms, per instance, log in to its
 * sshd with libssh2 as health.load.user, run a read-only command (health/loadparse.h), and put
 * what it reports into the instance's load (backends/load.h), which placement weighs.
 *
 * The SSH session is kept between rounds (one login per instance, a new channel per round); a
 * round on a kept session that finds it broken reconnects once at once. A failing round (refused
 * login, host key refused, timeout, command failure, unparsable output) makes the instance's load
 * unknown with the reason, and never touches its health.
 *
 * Everything runs on the loop: a non-blocking socket watched by a uv_poll handle, libssh2 in
 * non-blocking mode, and libssh2_session_block_directions() choosing what to wait for. Each phase
 * (connect, handshake, login, channel, exec, output, close) is bounded by health.load.timeout_ms.
 * The instance's host key is checked against the pool's known_hosts policy (certs/hostpolicy.h),
 * the same one the SSH front door uses, before any login.
 *
 * Identity: health.load.auth "key" signs with a private key file (ed25519 or ECDSA; libssh2 1.10
 * signs RSA logins with SHA-1, which OpenSSH refuses); "certificate" makes an ECDSA P-256 key at
 * start and presents a short-lived certificate for the probe user that the pool user CA signs
 * (libssh2 1.10 cannot present ed25519 certificates). Signatures are made by certs/sshkey, never
 * by libssh2, so no key material is handed to it.
 */
#ifndef PG_HEALTH_LOADPROBE_H
#define PG_HEALTH_LOADPROBE_H

#include <stddef.h>
#include <uv.h>

#include "backends/instance.h"
#include "certs/hostpolicy.h"
#include "core/config.h"

#define LOADPROBE_MAX_OUTPUT (64u << 10)	/* command output past this fails the round */

struct loadprober;

/*
 * Loads the probe identity (start-up only: it reads files) from cfg: health.load.key, or the
 * pool user CA (ssh.upstream_auth.ca_key, else state_dir/user_ca_ed25519, made if missing), and
 * starts probing every instance of reg, following it through its hooks. hosts must outlive the
 * prober. Returns 0, or a negative code with a message naming the file in err.
 */
int loadprober_start(uv_loop_t *loop, struct registry *reg, struct hostpolicy *hosts,
    const struct pg_config *cfg, struct loadprober **out, char *err, size_t errlen);

/*
 * Takes a reloaded config. Interval, timeout, jitter and command apply from each instance's next
 * round; a new user drops the kept sessions (they are logged in as the old one). A change of
 * auth or key needs the identity read again: it is named in a warning and waits for a restart.
 * Returns 0 or PG_ENOMEM (the old settings then stay).
 */
int loadprober_reload(struct loadprober *lp, const struct pg_config *cfg);

/*
 * Stops every probe (kept sessions get an SSH disconnect) and turns every instance's load off.
 * Memory goes when the last handle has closed; the loop must keep running. Accepts NULL.
 */
void loadprober_stop(struct loadprober *lp);

#endif
