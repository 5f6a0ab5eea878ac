// SPDX-License-Identifier: MIT
/*
 * svc_vips.c - service_addr_bits (#17): the datapath's filter in front of
 * the services lookup.
 *
 * Contract: for every key of `services` (services and VIP markers) the
 * bit sluice_addr_bit(key.addr, key.family) is set in the mmapped array
 * before the key is written (svc__vip_bit_set, an atomic OR), so a packet
 * to a service's address always reaches the services lookup. A clear bit
 * is a promise that no key has that address; a set bit may be stale (the
 * packet only pays the lookup it paid before the filter). Bits are
 * cleared only by svc__vip_bits_sync(): a walk of `services` builds the
 * wanted words and only words that differ are written, so a live key's
 * bit is never seen cleared, even for a moment (a failed update clears
 * the bit it set, after its keys are deleted again, so a rejected update
 * leaves the bits as they were). The rebuild runs after VIP markers
 * were deleted (the last service of an address went) and at open when no
 * bit is set while `services` has a key (pins of a library without the
 * filter: filled before any program of this one can be attached). One
 * writer process (the handle's owner), as for every map.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <bpf/bpf.h>

#include "internal.h"

#define VIP_BITS_BYTES (SLUICE_ADDR_BITS_WORDS * sizeof(__u64))

int svc__vip_bits_map(struct sluice *s)
{
	void *mem = mmap(NULL, VIP_BITS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
			 s->fds[SLUICE_MAP_SERVICE_ADDR_BITS], 0);

	if (mem == MAP_FAILED)
		return maps__err(-errno, "service_addr_bits", "mmap", "of the service filter");
	s->vip_bits = mem;
	return 0;
}

void svc__vip_bits_unmap(struct sluice *s)
{
	if (s->vip_bits)
		munmap(s->vip_bits, VIP_BITS_BYTES);
	s->vip_bits = NULL;
}

bool svc__vip_bit_set(struct sluice *s, const struct sluice_svc_key *k)
{
	__u32 bit = sluice_addr_bit(k->addr, k->family);
	__u64 m = 1ULL << (bit % 64);

	return s->vip_bits && !(__atomic_fetch_or(&s->vip_bits[bit / 64], m, __ATOMIC_SEQ_CST) & m);
}

/* A clear bit found by svc__vip_bit_set() means no key had the address's
 * bit: once the failed update's keys are deleted again, none has. */
void svc__vip_bit_clear(struct sluice *s, const struct sluice_svc_key *k)
{
	__u32 bit = sluice_addr_bit(k->addr, k->family);

	if (s->vip_bits)
		__atomic_fetch_and(&s->vip_bits[bit / 64], ~(1ULL << (bit % 64)), __ATOMIC_SEQ_CST);
}

static int svc__vip_note(const void *key, const void *value, void *ctx)
{
	const struct sluice_svc_key *k = key;
	__u64 *want = ctx;
	__u32 bit = sluice_addr_bit(k->addr, k->family);

	(void)value;
	want[bit / 64] |= 1ULL << (bit % 64);
	return 0;
}

/* want replaces the mapped bits: only words that differ are written. */
static void svc__vip_bits_write(struct sluice *s, const __u64 *want)
{
	for (__u32 w = 0; w < SLUICE_ADDR_BITS_WORDS; w++)
		if (__atomic_load_n(&s->vip_bits[w], __ATOMIC_RELAXED) != want[w])
			__atomic_store_n(&s->vip_bits[w], want[w], __ATOMIC_SEQ_CST);
}

int svc__vip_bits_sync(struct sluice *s)
{
	__u64 *want;
	int err;

	if (!s->vip_bits)
		return 0;
	want = calloc(SLUICE_ADDR_BITS_WORDS, sizeof(*want));
	if (!want) {
		sluice__set_err("out of memory rebuilding service_addr_bits");
		return -ENOMEM;
	}
	err = maps__for_each(s->fds[SLUICE_MAP_SERVICES], "services", sizeof(struct sluice_svc_key),
			     sizeof(struct sluice_svc), svc__vip_note, want);
	if (!err) /* a failed walk clears nothing: extra bits only cost lookups */
		svc__vip_bits_write(s, want);
	free(want);
	return err;
}

int svc__vip_bits_sync_keys(struct sluice *s, const struct sluice_svc_key *keys, __u32 n)
{
	__u64 *want;

	if (!s->vip_bits)
		return 0;
	want = calloc(SLUICE_ADDR_BITS_WORDS, sizeof(*want));
	if (!want) {
		sluice__set_err("out of memory rebuilding service_addr_bits");
		return -ENOMEM;
	}
	for (__u32 i = 0; i < n; i++)
		svc__vip_note(&keys[i], NULL, want);
	svc__vip_bits_write(s, want);
	free(want);
	return 0;
}

int svc__vip_bits_sync_if_empty(struct sluice *s)
{
	struct sluice_svc_key k;

	if (bpf_map_get_next_key(s->fds[SLUICE_MAP_SERVICES], NULL, &k))
		return 0;
	for (__u32 w = 0; w < SLUICE_ADDR_BITS_WORDS; w++)
		if (s->vip_bits[w])
			return 0;
	return svc__vip_bits_sync(s);
}
