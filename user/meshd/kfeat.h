/* SPDX-License-Identifier: MIT */
/*
 * kfeat.h - the running kernel's features (user/lib/core/kfeatures.h) as
 * meshd reports them: one warning per missing feature at start, naming
 * what Sluice does without it, and the "kernel" object of `status`.
 */
#ifndef MESHD_KFEAT_H
#define MESHD_KFEAT_H

#include <json-c/json.h>

/* Probe (cached by the library) and log each missing feature. */
void kfeat__log(void);
/* {"release","features":{name:bool,...},"missing":[{"feature","what","without"}]} */
struct json_object *kfeat__json(void);

#endif /* MESHD_KFEAT_H */
