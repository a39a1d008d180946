/* Headers handed to bindgen. Keep this list in step with the crate docs. */
#include <rte_config.h>

/* EAL, lcores, launch, errno, cycles */
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_errno.h>
#include <rte_cycles.h>
#include <rte_memory.h>

/* mempool / mbuf */
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_mbuf_ptype.h>

/* ethdev (incl. xstats, link, RSS) */
#include <rte_ether.h>
#include <rte_ethdev.h>

/* ring */
#include <rte_ring.h>

/* LPM */
#include <rte_lpm.h>
#include <rte_lpm6.h>

/* hash */
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_hash_crc.h>

/* our shim over the static inline fast path */
#include "dpdk_shim.h"
