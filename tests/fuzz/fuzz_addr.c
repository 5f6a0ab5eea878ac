// SPDX-License-Identifier: MIT
/*
 * fuzz_addr.c - address, port, protocol and "VIP:PORT/PROTO" parsing (CLI
 * arguments, config fields, API references).
 *
 * Properties: what parses prints back to text that parses to the same
 * value.
 */
#include "desired.h"
#include "fuzz.h"
#include "sluice.h"

static void fuzz__addr(const char *text)
{
	char buf[SLUICE_ADDRPORT_STRLEN];
	struct sluice_addr a, b;
	__u16 port, port2;

	if (!sluice_addr__parse(&a, text)) {
		sluice_addr__str(&a, buf, sizeof(buf));
		if (sluice_addr__parse(&b, buf) || !sluice_addr__eq(&a, &b))
			fuzz__bug("an address does not survive printing");
	}
	if (!sluice_addr__parse_port(&a, &port, text)) {
		sluice_addr__str_port(&a, port, buf, sizeof(buf));
		if (sluice_addr__parse_port(&b, &port2, buf) || !sluice_addr__eq(&a, &b) ||
		    port != port2)
			fuzz__bug("an address:port does not survive printing");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz__text(data, size);
	struct sluice_addr vip;
	__u16 port;
	__u8 proto;

	if (!text)
		return 0;
	fuzz__addr(text);
	(void)sluice_proto__parse(&proto, text);
	(void)desired__parse_svc_ref(text, &vip, &port, &proto);
	free(text);
	return 0;
}
