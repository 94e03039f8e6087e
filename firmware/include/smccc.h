/*
 * Arm SMC Calling Convention (SMC32/HVC32): function ID in r0, arguments in r1-r7, results in
 * r0-r3. PSCI and the CMA service are reached this way; the conduit (HVC or SMC) comes from
 * the device tree's /psci "method" and defaults to HVC.
 */
#ifndef FW_SMCCC_H
#define FW_SMCCC_H

#define SMCCC_CONDUIT_HVC   0
#define SMCCC_CONDUIT_SMC   1

/* Function ID fields. */
#define SMCCC_FAST_CALL        0x80000000u
#define SMCCC_OWNER_SHIFT      24
#define SMCCC_OWNER_ARCH       0u
#define SMCCC_OWNER_SIP        2u
#define SMCCC_OWNER_STANDARD   4u
#define SMCCC_FID(owner, num)  (SMCCC_FAST_CALL | ((owner) << SMCCC_OWNER_SHIFT) | (num))

#define SMCCC_VERSION          0x80000000u
#define SMCCC_ARCH_FEATURES    0x80000001u
#define SMCCC_NOT_SUPPORTED    (-1)

#ifndef __ASSEMBLY__
#include <stdint.h>

struct smccc_res {
    uint32_t a0;
    uint32_t a1;
    uint32_t a2;
    uint32_t a3;
};

/* Raw calls over one conduit; res receives r0-r3. */
void smccc_hvc(uint32_t fid, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4,
               uint32_t a5, uint32_t a6, uint32_t a7, struct smccc_res *res);
void smccc_smc(uint32_t fid, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4,
               uint32_t a5, uint32_t a6, uint32_t a7, struct smccc_res *res);

/* A call over the configured conduit. */
void smccc_call(uint32_t fid, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4,
                uint32_t a5, uint32_t a6, uint32_t a7, struct smccc_res *res);

/* The conduit smccc_call() and power-off use (SMCCC_CONDUIT_HVC after reset). */
extern uint32_t smccc_conduit;
void smccc_set_conduit(uint32_t conduit);

#endif
#endif /* FW_SMCCC_H */
