/*
 * Fuzz target: the admin API's request handling (health/admin.c) without sockets: the path and
 * its percent-decoding, the token check, the JSON bodies (including the config's instance
 * validator for "add"), and the actions on a small registry and pin table made afresh for each
 * input. Input: byte 0 picks the method (low bits) and whether the right token goes along (high
 * bit clear); then the path up to a newline; the rest is the body.
 */
#include "backends/pins.h"
#include "core/log.h"
#include "health/admin.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "fuzz-token-0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct admin *ad;
static uv_loop_t loop;

static int
stub_reload(void *arg)
{
	return 0;
}

static void
init(void)
{
	char dir[] = "/tmp/pg-fuzz-admin-XXXXXX", path[64], err[256];
	int fd;

	pg_log_setup(PG_LOG_ERR, PG_LOG_TEXT);
	if (mkdtemp(dir) == NULL || uv_loop_init(&loop) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/token", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0 ||
	    write(fd, TOKEN, strlen(TOKEN)) != (ssize_t)strlen(TOKEN))
		abort();
	close(fd);
	if (admin_new(&loop, path, &ad, err, sizeof(err)) != 0)
		abort();
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int methods[] = { HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_HEAD,
		HTTP_PATCH, HTTP_POST, HTTP_PUT };
	struct inst_conf conf[2] = {
		{ .id = "c1", .address = "10.0.0.1", .ssh_port = 22, .http_port = 8000,
		  .http_tls_verify = 1, .capacity = 8 },
		{ .id = "c2", .address = "10.0.0.2", .ssh_port = 22, .http_port = 8000,
		  .http_tls_verify = 1, .capacity = 8, .admin = INST_DRAINING },
	};
	char path[HTTPREQ_MAX_URL + 1], body[HTTPREQ_MAX_BODY + 1];
	const uint8_t *nl;
	struct ops_env env;
	struct httpreq rq;
	struct admin_answer ans;
	size_t plen, blen;
	cJSON *json;

	if (ad == NULL)
		init();
	if (size < 1)
		return 0;
	nl = memchr(data + 1, '\n', size - 1);
	plen = nl != NULL ? (size_t)(nl - data - 1) : size - 1;
	blen = nl != NULL ? size - 1 - plen - 1 : 0;
	if (plen > HTTPREQ_MAX_URL || blen > HTTPREQ_MAX_BODY || memchr(data + 1, '\0', plen) != NULL)
		return 0;
	memcpy(path, data + 1, plen);
	path[plen] = '\0';
	memcpy(body, nl != NULL ? nl + 1 : data, blen);
	body[blen] = '\0';

	memset(&env, 0, sizeof(env));
	if ((env.reg = reg_new()) == NULL || (env.pins = pins_new()) == NULL ||
	    reg_apply(env.reg, INST_SRC_CONFIG, conf, 2) != 0)
		abort();
	inst_set_health(reg_find(env.reg, "c1"), HEALTH_UP, "ok");
	pins_set(env.pins, "alice", "c1", 1);
	env.admin = ad;
	env.start_reload = stub_reload;
	rq = (struct httpreq){ methods[data[0] & 7], path, plen, 1,
		(data[0] & 0x80) ? NULL : "Bearer " TOKEN, (data[0] & 0x80) ? 0 : 7 + strlen(TOKEN),
		body, blen };
	pg_buf_init(&ans.body, 1u << 20);
	if (admin_handle(ad, &env, &rq, path, plen, "fuzz", &ans) != 0)
		__builtin_trap();
	/* Every answer is one JSON object, with "error" exactly when it is not a success. */
	json = cJSON_ParseWithLength((const char *)ans.body.p, ans.body.len);
	if (!cJSON_IsObject(json) || (ans.status >= 300) !=
	    cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "error")) ||
	    ans.status < 200 || ans.status > 599)
		__builtin_trap();
	cJSON_Delete(json);
	pg_buf_free(&ans.body);
	pins_free(env.pins);
	reg_free(env.reg);
	return 0;
}
