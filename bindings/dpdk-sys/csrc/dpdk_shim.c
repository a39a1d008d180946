/*
 * Out-of-line wrappers over DPDK's static inline fast path. See dpdk_shim.h.
 * Compiled by build.rs with the flags from `pkg-config --cflags libdpdk`
 * (which bring -include rte_config.h and the -march DPDK was built for).
 */
#include <string.h>

#include <rte_config.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_lpm.h>
#include <rte_vect.h>
#include <rte_jhash.h>
#include <rte_hash_crc.h>

#include "dpdk_shim.h"

/* ---- EAL / lcore / cycles / errno ---- */
int dpdk_shim_errno(void) { return rte_errno; }
void dpdk_shim_set_errno(int value) { rte_errno = value; }
unsigned int dpdk_shim_lcore_id(void) { return rte_lcore_id(); }
uint64_t dpdk_shim_rdtsc(void) { return rte_rdtsc(); }
uint64_t dpdk_shim_rdtsc_precise(void) { return rte_rdtsc_precise(); }
uint64_t dpdk_shim_get_tsc_cycles(void) { return rte_get_tsc_cycles(); }

/* ---- ethdev ---- */
uint16_t dpdk_shim_rx_burst(uint16_t port_id, uint16_t queue_id,
			    struct rte_mbuf **rx_pkts, uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t dpdk_shim_tx_burst(uint16_t port_id, uint16_t queue_id,
			    struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

uint16_t dpdk_shim_tx_prepare(uint16_t port_id, uint16_t queue_id,
			      struct rte_mbuf **tx_pkts, uint16_t nb_pkts)
{
	return rte_eth_tx_prepare(port_id, queue_id, tx_pkts, nb_pkts);
}

/* ---- mempool ---- */
int dpdk_shim_mempool_get_bulk(struct rte_mempool *mp, void **obj_table, unsigned int n)
{
	return rte_mempool_get_bulk(mp, obj_table, n);
}

void dpdk_shim_mempool_put_bulk(struct rte_mempool *mp, void *const *obj_table, unsigned int n)
{
	rte_mempool_put_bulk(mp, obj_table, n);
}

/* ---- mbuf ---- */
struct rte_mbuf *dpdk_shim_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int dpdk_shim_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs,
				 unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(pool, mbufs, count);
}

void dpdk_shim_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
void dpdk_shim_pktmbuf_reset(struct rte_mbuf *m) { rte_pktmbuf_reset(m); }
void *dpdk_shim_pktmbuf_mtod(const struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t dpdk_shim_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t dpdk_shim_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t dpdk_shim_pktmbuf_data_off(const struct rte_mbuf *m) { return m->data_off; }
uint16_t dpdk_shim_pktmbuf_port(const struct rte_mbuf *m) { return m->port; }
uint32_t dpdk_shim_pktmbuf_rss_hash(const struct rte_mbuf *m) { return m->hash.rss; }
uint32_t dpdk_shim_pktmbuf_packet_type(const struct rte_mbuf *m) { return m->packet_type; }
uint64_t dpdk_shim_pktmbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }
void *dpdk_shim_pktmbuf_buf_addr(const struct rte_mbuf *m) { return m->buf_addr; }
uint16_t dpdk_shim_pktmbuf_buf_len(const struct rte_mbuf *m) { return m->buf_len; }
uint16_t dpdk_shim_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t dpdk_shim_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
char *dpdk_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *dpdk_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *dpdk_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int dpdk_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t dpdk_shim_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }

/* ---- ring ---- */
#define RING_WRAP(name, objty, outname)                                              \
	unsigned int dpdk_shim_##name(struct rte_ring *r, objty obj_table,           \
				      unsigned int n, unsigned int *outname)         \
	{                                                                            \
		return rte_##name(r, obj_table, n, outname);                         \
	}

RING_WRAP(ring_sp_enqueue_burst, void *const *, free_space)
RING_WRAP(ring_mp_enqueue_burst, void *const *, free_space)
RING_WRAP(ring_enqueue_burst, void *const *, free_space)
RING_WRAP(ring_sp_enqueue_bulk, void *const *, free_space)
RING_WRAP(ring_mp_enqueue_bulk, void *const *, free_space)
RING_WRAP(ring_enqueue_bulk, void *const *, free_space)
RING_WRAP(ring_sc_dequeue_burst, void **, available)
RING_WRAP(ring_mc_dequeue_burst, void **, available)
RING_WRAP(ring_dequeue_burst, void **, available)
RING_WRAP(ring_sc_dequeue_bulk, void **, available)
RING_WRAP(ring_mc_dequeue_bulk, void **, available)
RING_WRAP(ring_dequeue_bulk, void **, available)

unsigned int dpdk_shim_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
unsigned int dpdk_shim_ring_free_count(const struct rte_ring *r) { return rte_ring_free_count(r); }

/* ---- LPM ---- */
int dpdk_shim_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop)
{
	return rte_lpm_lookup(lpm, ip, next_hop);
}

int dpdk_shim_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips,
			      uint32_t *next_hops, unsigned int n)
{
	return rte_lpm_lookup_bulk(lpm, ips, next_hops, n);
}

void dpdk_shim_lpm_lookupx4(const struct rte_lpm *lpm, const uint32_t ip[4],
			    uint32_t hop[4], uint32_t defv)
{
	xmm_t v;

	/* xmm_t is __m128i on x86 and int32x4_t on Arm: 16 bytes, lane i = ip[i]. */
	memcpy(&v, ip, sizeof(v));
	rte_lpm_lookupx4(lpm, v, hop, defv);
}

/* ---- hash functions ---- */
uint32_t dpdk_shim_jhash(const void *key, uint32_t length, uint32_t initval)
{
	return rte_jhash(key, length, initval);
}

uint32_t dpdk_shim_hash_crc(const void *data, uint32_t data_len, uint32_t init_val)
{
	return rte_hash_crc(data, data_len, init_val);
}
