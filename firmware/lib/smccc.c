/* SMCCC conduit selection; the calls themselves are in smccc_call.S. */
#include "smccc.h"

uint32_t smccc_conduit = SMCCC_CONDUIT_HVC;

void smccc_set_conduit(uint32_t conduit)
{
    smccc_conduit = conduit == SMCCC_CONDUIT_SMC ? SMCCC_CONDUIT_SMC : SMCCC_CONDUIT_HVC;
}

void smccc_call(uint32_t fid, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4,
                uint32_t a5, uint32_t a6, uint32_t a7, struct smccc_res *res)
{
    if (smccc_conduit == SMCCC_CONDUIT_SMC)
        smccc_smc(fid, a1, a2, a3, a4, a5, a6, a7, res);
    else
        smccc_hvc(fid, a1, a2, a3, a4, a5, a6, a7, res);
}
