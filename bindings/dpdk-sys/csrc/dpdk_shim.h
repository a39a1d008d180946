/*
 * dpdk_shim: out-of-line wrappers for DPDK's `static inline` fast-path
 * functions (and macros / thread-locals) that bindgen cannot link against.
 * Each dpdk_shim_X calls exactly the DPDK function named in its comment,
 * with the same arguments and result.
 */
#ifndef DPDK_SHIM_H
#define DPDK_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;
struct rte_lpm;

/* ---- EAL / lcore / cycles / errno ---- */
/** rte_errno (a per-lcore thread-local). */
int dpdk_shim_errno(void);
/** rte_errno = value. */
void dpdk_shim_set_errno(int value);
/** rte_lcore_id(). */
unsigned int dpdk_shim_lcore_id(void);
/** rte_rdtsc(). */
uint64_t dpdk_shim_rdtsc(void);
/** rte_rdtsc_precise() (barrier before the read). */
uint64_t dpdk_shim_rdtsc_precise(void);
/** rte_get_tsc_cycles(). */
uint64_t dpdk_shim_get_tsc_cycles(void);

/* ---- ethdev ---- */
/** rte_eth_rx_burst(). */
uint16_t dpdk_shim_rx_burst(uint16_t port_id, uint16_t queue_id,
			    struct rte_mbuf **rx_pkts, uint16_t nb_pkts);
/** rte_eth_tx_burst(). */
uint16_t dpdk_shim_tx_burst(uint16_t port_id, uint16_t queue_id,
			    struct rte_mbuf **tx_pkts, uint16_t nb_pkts);
/** rte_eth_tx_prepare(). */
uint16_t dpdk_shim_tx_prepare(uint16_t port_id, uint16_t queue_id,
			      struct rte_mbuf **tx_pkts, uint16_t nb_pkts);

/* ---- mempool ---- */
/** rte_mempool_get_bulk(). */
int dpdk_shim_mempool_get_bulk(struct rte_mempool *mp, void **obj_table,
			       unsigned int n);
/** rte_mempool_put_bulk(). */
void dpdk_shim_mempool_put_bulk(struct rte_mempool *mp, void *const *obj_table,
				unsigned int n);

/* ---- mbuf ---- */
/** rte_pktmbuf_alloc(). */
struct rte_mbuf *dpdk_shim_pktmbuf_alloc(struct rte_mempool *mp);
/** rte_pktmbuf_alloc_bulk(). */
int dpdk_shim_pktmbuf_alloc_bulk(struct rte_mempool *pool,
				 struct rte_mbuf **mbufs, unsigned int count);
/** rte_pktmbuf_free() (whole chain; NULL is allowed). */
void dpdk_shim_pktmbuf_free(struct rte_mbuf *m);
/** rte_pktmbuf_reset(). */
void dpdk_shim_pktmbuf_reset(struct rte_mbuf *m);
/** rte_pktmbuf_mtod(m, void *): buf_addr + data_off. */
void *dpdk_shim_pktmbuf_mtod(const struct rte_mbuf *m);
/** rte_pktmbuf_data_len(m). */
uint16_t dpdk_shim_pktmbuf_data_len(const struct rte_mbuf *m);
/** rte_pktmbuf_pkt_len(m). */
uint32_t dpdk_shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
/** m->data_off. */
uint16_t dpdk_shim_pktmbuf_data_off(const struct rte_mbuf *m);
/** m->port. */
uint16_t dpdk_shim_pktmbuf_port(const struct rte_mbuf *m);
/** m->hash.rss. */
uint32_t dpdk_shim_pktmbuf_rss_hash(const struct rte_mbuf *m);
/** m->packet_type. */
uint32_t dpdk_shim_pktmbuf_packet_type(const struct rte_mbuf *m);
/** m->ol_flags. */
uint64_t dpdk_shim_pktmbuf_ol_flags(const struct rte_mbuf *m);
/** m->buf_addr. */
void *dpdk_shim_pktmbuf_buf_addr(const struct rte_mbuf *m);
/** m->buf_len. */
uint16_t dpdk_shim_pktmbuf_buf_len(const struct rte_mbuf *m);
/** rte_pktmbuf_headroom(). */
uint16_t dpdk_shim_pktmbuf_headroom(const struct rte_mbuf *m);
/** rte_pktmbuf_tailroom(). */
uint16_t dpdk_shim_pktmbuf_tailroom(const struct rte_mbuf *m);
/** rte_pktmbuf_prepend(): NULL if not enough headroom. */
char *dpdk_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
/** rte_pktmbuf_append(): NULL if not enough tailroom. */
char *dpdk_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
/** rte_pktmbuf_adj(): NULL if len > data_len. */
char *dpdk_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
/** rte_pktmbuf_trim(): -1 if len > data_len. */
int dpdk_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
/** rte_mbuf_refcnt_read(). */
uint16_t dpdk_shim_mbuf_refcnt_read(const struct rte_mbuf *m);

/* ---- ring ---- */
/** rte_ring_sp_enqueue_burst(). */
unsigned int dpdk_shim_ring_sp_enqueue_burst(struct rte_ring *r, void *const *obj_table,
					     unsigned int n, unsigned int *free_space);
/** rte_ring_mp_enqueue_burst(). */
unsigned int dpdk_shim_ring_mp_enqueue_burst(struct rte_ring *r, void *const *obj_table,
					     unsigned int n, unsigned int *free_space);
/** rte_ring_enqueue_burst() (sync mode chosen at rte_ring_create). */
unsigned int dpdk_shim_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table,
					  unsigned int n, unsigned int *free_space);
/** rte_ring_sp_enqueue_bulk(). */
unsigned int dpdk_shim_ring_sp_enqueue_bulk(struct rte_ring *r, void *const *obj_table,
					    unsigned int n, unsigned int *free_space);
/** rte_ring_mp_enqueue_bulk(). */
unsigned int dpdk_shim_ring_mp_enqueue_bulk(struct rte_ring *r, void *const *obj_table,
					    unsigned int n, unsigned int *free_space);
/** rte_ring_enqueue_bulk(). */
unsigned int dpdk_shim_ring_enqueue_bulk(struct rte_ring *r, void *const *obj_table,
					 unsigned int n, unsigned int *free_space);
/** rte_ring_sc_dequeue_burst(). */
unsigned int dpdk_shim_ring_sc_dequeue_burst(struct rte_ring *r, void **obj_table,
					     unsigned int n, unsigned int *available);
/** rte_ring_mc_dequeue_burst(). */
unsigned int dpdk_shim_ring_mc_dequeue_burst(struct rte_ring *r, void **obj_table,
					     unsigned int n, unsigned int *available);
/** rte_ring_dequeue_burst(). */
unsigned int dpdk_shim_ring_dequeue_burst(struct rte_ring *r, void **obj_table,
					  unsigned int n, unsigned int *available);
/** rte_ring_sc_dequeue_bulk(). */
unsigned int dpdk_shim_ring_sc_dequeue_bulk(struct rte_ring *r, void **obj_table,
					    unsigned int n, unsigned int *available);
/** rte_ring_mc_dequeue_bulk(). */
unsigned int dpdk_shim_ring_mc_dequeue_bulk(struct rte_ring *r, void **obj_table,
					    unsigned int n, unsigned int *available);
/** rte_ring_dequeue_bulk(). */
unsigned int dpdk_shim_ring_dequeue_bulk(struct rte_ring *r, void **obj_table,
					 unsigned int n, unsigned int *available);
/** rte_ring_count(). */
unsigned int dpdk_shim_ring_count(const struct rte_ring *r);
/** rte_ring_free_count(). */
unsigned int dpdk_shim_ring_free_count(const struct rte_ring *r);

/* ---- LPM ---- */
/** rte_lpm_lookup(): 0 on hit, -ENOENT on miss, -EINVAL on bad args. */
int dpdk_shim_lpm_lookup(const struct rte_lpm *lpm, uint32_t ip, uint32_t *next_hop);
/** rte_lpm_lookup_bulk() (the macro for rte_lpm_lookup_bulk_func()). Each
 *  next_hops[i] has RTE_LPM_LOOKUP_SUCCESS set on a hit. */
int dpdk_shim_lpm_lookup_bulk(const struct rte_lpm *lpm, const uint32_t *ips,
			      uint32_t *next_hops, unsigned int n);
/** rte_lpm_lookupx4() with the xmm_t argument passed as uint32_t[4]
 *  (host byte order, like rte_lpm_lookup). Misses get defv. */
void dpdk_shim_lpm_lookupx4(const struct rte_lpm *lpm, const uint32_t ip[4],
			    uint32_t hop[4], uint32_t defv);

/* ---- hash functions, usable as rte_hash_parameters.hash_func ---- */
/** rte_jhash(). */
uint32_t dpdk_shim_jhash(const void *key, uint32_t length, uint32_t initval);
/** rte_hash_crc() (SSE4.2 / Armv8 CRC32 when the build flags allow). */
uint32_t dpdk_shim_hash_crc(const void *data, uint32_t data_len, uint32_t init_val);

#endif /* DPDK_SHIM_H */
