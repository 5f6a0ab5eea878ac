// SPDX-License-Identifier: MIT
/*
 * fuzz_desired.c - the desired-state reader (meshctl apply -f, meshd's
 * state file): YAML or JSON text -> struct desired.
 *
 * Properties: whatever is accepted is valid (desired__validate), and
 * survives a round trip through its JSON form unchanged in size; the
 * strict JSON reader (API, state file) never crashes on the same text.
 */
#include "desired.h"
#include "fuzz.h"
#include "yamljson.h"

static void fuzz__round_trip(const struct desired *d)
{
	struct json_object *j = desired__to_json(d);
	struct desired back;

	if (!j)
		return; /* out of memory */
	if (desired__from_json(&back, j))
		fuzz__bug("an accepted state does not read back from its JSON");
	if (back.nservices != d->nservices)
		fuzz__bug("round trip changed the number of services");
	desired__free(&back);
	json_object_put(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL;
	struct desired d;
	char *text = fuzz__text(data, size);

	if (!text)
		return 0;
	if (!desired__from_string(&d, text, size)) {
		if (desired__validate(&d))
			fuzz__bug("an accepted state fails desired__validate");
		fuzz__round_trip(&d);
		desired__free(&d);
	}
	if (!yaml__parse_json(text, size, "fuzz", &o))
		json_object_put(o);
	free(text);
	return 0;
}
