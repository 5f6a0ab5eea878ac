// SPDX-License-Identifier: MIT
/*
 * names.c - metric/CLI names of counters and drop reasons, generated from
 * the X-macros in sluice_abi.h so a new reason cannot go unnamed.
 */
#include "sluice.h"

static const char *const counter_names[SLUICE_CNT__MAX] = {
#define X(name, str, help) [SLUICE_CNT_##name] = str,
	SLUICE_COUNTERS(X)
#undef X
};

static const char *const counter_help[SLUICE_CNT__MAX] = {
#define X(name, str, help) [SLUICE_CNT_##name] = help,
	SLUICE_COUNTERS(X)
#undef X
};

static const char *const drop_names[SLUICE_DROP__MAX] = {
#define X(name, str, help) [SLUICE_DROP_##name] = str,
	SLUICE_DROP_REASONS(X)
#undef X
};

static const char *const drop_help[SLUICE_DROP__MAX] = {
#define X(name, str, help) [SLUICE_DROP_##name] = help,
	SLUICE_DROP_REASONS(X)
#undef X
};

/* Out-of-range values map to "unknown" so callers can print the result
 * unconditionally (e.g. a newer datapath reporting a reason we lack). */
const char *sluice__counter_name(enum sluice_counter c)
{
	return (unsigned int)c < SLUICE_CNT__MAX ? counter_names[c] : "unknown";
}

const char *sluice__counter_help(enum sluice_counter c)
{
	return (unsigned int)c < SLUICE_CNT__MAX ? counter_help[c] : "unknown counter";
}

const char *sluice__drop_name(enum sluice_drop_reason r)
{
	return (unsigned int)r < SLUICE_DROP__MAX ? drop_names[r] : "unknown";
}

const char *sluice__drop_help(enum sluice_drop_reason r)
{
	return (unsigned int)r < SLUICE_DROP__MAX ? drop_help[r] : "unknown drop reason";
}
