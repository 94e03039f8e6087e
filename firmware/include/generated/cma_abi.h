/* CMA service ABI: generated from emu.services.cma by emu.headers. */
/* Do not edit: regenerate with scripts/gen-headers. See docs/abi.md. */
#ifndef CMA_ABI_H
#define CMA_ABI_H

#define CMA_SIP_BASE                            0x82000100u
#define CMA_CALL_VERSION                        0x82000100u
#define CMA_CALL_ALLOC                          0x82000101u
#define CMA_CALL_GET                            0x82000102u
#define CMA_CALL_PUT                            0x82000103u
#define CMA_CALL_INFO                           0x82000104u
#define CMA_CALL_PHYS_TO_DMA                    0x82000105u
#define CMA_CALL_DMA_TO_PHYS                    0x82000106u
#define CMA_CALL_CPU_ADDR                       0x82000107u

#define CMA_FLAG_DEVICE_PATH                    0x1u

#define CMA_STATUS_OK                           (0)
#define CMA_STATUS_NOT_SUPPORTED                (-1)
#define CMA_STATUS_ENOENT                       (-2)
#define CMA_STATUS_ENOMEM                       (-12)
#define CMA_STATUS_EFAULT                       (-14)
#define CMA_STATUS_EINVAL                       (-22)

#endif /* CMA_ABI_H */
