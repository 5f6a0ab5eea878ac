// SPDX-License-Identifier: MIT
/*
 * kfeat.c - see kfeat.h. The probes run once (the library caches them);
 * a feature missing here is a degraded mode, never a start failure: what
 * it costs is said in the log and in `meshctl status`.
 */
#include <sys/utsname.h>

#include "kfeat.h"
#include "kfeatures.h"
#include "log.h"

void kfeat__log(void)
{
	struct sluice_features f;
	int missing = 0;

	sluice__features(&f);
	for (int i = 0; i < SLUICE_FEAT__MAX; i++) {
		if (f.has[i])
			continue;
		missing++;
		pr_warn("kernel: no %s (%s): %s", sluice_feature__name(i), sluice_feature__what(i),
			sluice_feature__without(i));
	}
	if (!missing)
		pr_info("kernel: all %d probed features present", SLUICE_FEAT__MAX);
}

struct json_object *kfeat__json(void)
{
	struct json_object *o = json_object_new_object();
	struct json_object *has = json_object_new_object();
	struct json_object *missing = json_object_new_array();
	struct sluice_features f;
	struct utsname u;

	sluice__features(&f);
	json_object_object_add(o, "release",
			       json_object_new_string(uname(&u) ? "unknown" : u.release));
	for (int i = 0; i < SLUICE_FEAT__MAX; i++) {
		struct json_object *m;

		json_object_object_add(has, sluice_feature__name(i),
				       json_object_new_boolean(f.has[i]));
		if (f.has[i])
			continue;
		m = json_object_new_object();
		json_object_object_add(m, "feature",
				       json_object_new_string(sluice_feature__name(i)));
		json_object_object_add(m, "what", json_object_new_string(sluice_feature__what(i)));
		json_object_object_add(m, "without",
				       json_object_new_string(sluice_feature__without(i)));
		json_object_array_add(missing, m);
	}
	json_object_object_add(o, "features", has);
	json_object_object_add(o, "missing", missing);
	return o;
}
