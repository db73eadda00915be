/*
 * Which host keys poolgate trusts for its instances (DESIGN.md, SSH: instances' host keys are
 * checked against a pool known_hosts file; `tofu` records first-seen keys in state_dir). One
 * policy per process, shared by everything that logs in to instances (the SSH front door, the
 * load probe), so a key recorded at first sight by one is known to the other and the tofu file
 * gets one line per host.
 *
 * The files are read into memory at start and on SIGHUP (hostpolicy_configure, synchronous like
 * every start-up read; the reload re-reads them on the loop, a known exception in
 * ARCHITECTURE.md); a check is then a lookup in memory. A tofu record is appended to the file
 * and to the copy in memory.
 *
 * Return convention: 0 or a negative PG_E* code.
 */
#ifndef PG_CERTS_HOSTPOLICY_H
#define PG_CERTS_HOSTPOLICY_H

#include <stdint.h>

#include "certs/sshkey.h"
#include "core/config.h"

struct hostpolicy;

/* An empty policy (trusts nobody until configured). NULL when out of memory. */
struct hostpolicy *hostpolicy_new(void);
void hostpolicy_free(struct hostpolicy *p);	/* accepts NULL */

/*
 * Takes the settings: known_hosts (ssh.known_hosts, may be NULL), tofu_file
 * (state_dir/known_hosts) and mode (ssh.host_key_check), and reads both files. An unreadable
 * known_hosts file is logged and then refuses every instance it would have listed. Logs a warning
 * when mode is known_hosts without a file. Returns 0 or PG_ENOMEM (the old settings then stay).
 */
int hostpolicy_configure(struct hostpolicy *p, const char *known_hosts, const char *tofu_file,
    enum ssh_hostkey_check mode);

/*
 * Decides on key, the host key instance inst_id presented at addr:port. Returns 0 to trust it;
 * otherwise a negative code and, in *why, a reason for the user or /status (static): the key
 * changed (PG_EAUTH), is in no known_hosts (PG_ENOTFOUND), or cannot be checked. Every refusal,
 * and every tofu record, is logged under log_prefix with the key's fingerprint.
 */
int hostpolicy_check(struct hostpolicy *p, const char *inst_id, const char *addr, uint16_t port,
    const struct sshkey *key, const char **why, const char *log_prefix);

#endif
