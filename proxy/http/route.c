/*
 * Routing for the HTTPS front door. (Interim: the up instance with the fewest connections routed
 * so far; pins and the affinity cookie replace this.)
 */
#include "proxy/http/route.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

struct router {
	struct registry *reg;
};

struct router *
route_new(struct registry *reg)
{
	struct router *rt = calloc(1, sizeof(*rt));

	if (rt != NULL)
		rt->reg = reg;
	return rt;
}

void
route_free(struct router *rt)
{
	free(rt);
}

int
route_pick(struct router *rt, const struct route_req *req, struct route_result *res)
{
	memset(res, 0, sizeof(*res));
	for (struct instance *in = reg_first(rt->reg); in != NULL; in = in->next) {
		if (inst_state(in) == INST_S_UP) {
			res->in = in;
			inst_ref(in);
			break;
		}
	}
	return 0;
}
