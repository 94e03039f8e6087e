/*
 * PSCI 0.2+ over SMCCC. SYSTEM_OFF carries the program's exit status in r1: PSCI itself
 * ignores the argument, the harness reports it (QEMU ignores it too).
 */
#ifndef FW_PSCI_H
#define FW_PSCI_H

#define PSCI_0_2_FN_PSCI_VERSION    0x84000000u
#define PSCI_0_2_FN_CPU_SUSPEND     0x84000001u
#define PSCI_0_2_FN_CPU_OFF         0x84000002u
#define PSCI_0_2_FN_CPU_ON          0x84000003u
#define PSCI_0_2_FN_AFFINITY_INFO   0x84000004u
#define PSCI_0_2_FN_SYSTEM_OFF      0x84000008u
#define PSCI_0_2_FN_SYSTEM_RESET    0x84000009u
#define PSCI_1_0_FN_PSCI_FEATURES   0x8400000au

#define PSCI_RET_SUCCESS            0
#define PSCI_RET_NOT_SUPPORTED      (-1)
#define PSCI_RET_INVALID_PARAMS     (-2)
#define PSCI_RET_DENIED             (-3)

#ifndef __ASSEMBLY__
#include <stdint.h>

#define PSCI_VERSION_MAJOR(v)  ((uint32_t)(v) >> 16)
#define PSCI_VERSION_MINOR(v)  ((uint32_t)(v) & 0xffffu)

uint32_t psci_version(void);
/* PSCI_FEATURES (PSCI 1.0+): >= 0 when fid is implemented, PSCI_RET_NOT_SUPPORTED if not. */
int32_t psci_features(uint32_t fid);
/* Power off with an exit status in r1; never returns. */
void psci_system_off(uint32_t status) __attribute__((noreturn));
void psci_system_reset(void) __attribute__((noreturn));

/* start.S: SYSTEM_OFF over the configured conduit with interrupts masked. */
void fw_power_off(uint32_t fid, uint32_t status) __attribute__((noreturn));
#endif
#endif /* FW_PSCI_H */
