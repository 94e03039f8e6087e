/* PSCI calls over the configured SMCCC conduit. */
#include "psci.h"
#include "smccc.h"

static uint32_t psci_call(uint32_t fid, uint32_t a1, uint32_t a2, uint32_t a3)
{
    struct smccc_res res;

    smccc_call(fid, a1, a2, a3, 0, 0, 0, 0, &res);
    return res.a0;
}

uint32_t psci_version(void)
{
    return psci_call(PSCI_0_2_FN_PSCI_VERSION, 0, 0, 0);
}

int32_t psci_features(uint32_t fid)
{
    return (int32_t)psci_call(PSCI_1_0_FN_PSCI_FEATURES, fid, 0, 0);
}

void psci_system_off(uint32_t status)
{
    fw_power_off(PSCI_0_2_FN_SYSTEM_OFF, status);
}

void psci_system_reset(void)
{
    psci_call(PSCI_0_2_FN_SYSTEM_RESET, 0, 0, 0);
    for (;;)
        __asm__ volatile("wfi");
}
