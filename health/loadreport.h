/*
 * The load figures and placement in /status and /metrics (health/report.c calls these): what
 * each instance's load probe last reported (backends/load.h), the score a new user would see
 * there, and placement's decisions by reason.
 */
#ifndef PG_HEALTH_LOADREPORT_H
#define PG_HEALTH_LOADREPORT_H

#include <cjson/cJSON.h>

#include "health/ops.h"

/* The "load" object of in's /status entry, or NULL when out of memory. The caller owns it. */
cJSON *loadreport_status(const struct ops_env *env, const struct instance *in, int64_t now_ms);

/* Appends the load and placement families to out. 0, PG_ENOMEM or PG_ETOOBIG. */
int loadreport_metrics(const struct ops_env *env, struct pg_buf *out, int64_t now_ms);

#endif
