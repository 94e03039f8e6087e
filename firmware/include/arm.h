/*
 * ARMv7-A architectural primitives: barriers, CPSR and CP15 system register access, and the
 * memory map constants every program shares.
 */
#ifndef FW_ARM_H
#define FW_ARM_H

/* Physical placement of images; matches lib/link.ld and both boards' RAM. */
#define RAM_BASE_DEFAULT   0x40000000u
#define IMAGE_BASE         0x40200000u

/* CPSR fields. */
#define CPSR_MODE_MASK  0x1fu
#define CPSR_MODE_USR   0x10u
#define CPSR_MODE_FIQ   0x11u
#define CPSR_MODE_IRQ   0x12u
#define CPSR_MODE_SVC   0x13u
#define CPSR_MODE_ABT   0x17u
#define CPSR_MODE_HYP   0x1au
#define CPSR_MODE_UND   0x1bu
#define CPSR_MODE_SYS   0x1fu
#define CPSR_T          (1u << 5)
#define CPSR_F          (1u << 6)
#define CPSR_I          (1u << 7)
#define CPSR_A          (1u << 8)

/* SCTLR bits. */
#define SCTLR_M   (1u << 0)
#define SCTLR_A   (1u << 1)
#define SCTLR_C   (1u << 2)
#define SCTLR_Z   (1u << 11)
#define SCTLR_I   (1u << 12)
#define SCTLR_V   (1u << 13)
#define SCTLR_TRE (1u << 28)
#define SCTLR_AFE (1u << 29)
#define SCTLR_TE  (1u << 30)

#ifndef __ASSEMBLY__

#include <stdint.h>

#define dsb()  __asm__ volatile("dsb sy" ::: "memory")
#define dmb()  __asm__ volatile("dmb sy" ::: "memory")
#define isb()  __asm__ volatile("isb" ::: "memory")
#define wfi()  __asm__ volatile("wfi" ::: "memory")

/* Reads and writes of 32-bit CP15 registers: cp15_read(c1, c0, 0, 0) is SCTLR. */
#define cp15_read(crn, crm, op1, op2) ({                                          \
        uint32_t v_;                                                              \
        __asm__ volatile("mrc p15, " #op1 ", %0, " #crn ", " #crm ", " #op2       \
                         : "=r"(v_) :: "memory");                                 \
        v_; })
#define cp15_write(crn, crm, op1, op2, val) do {                                  \
        uint32_t v_ = (val);                                                      \
        __asm__ volatile("mcr p15, " #op1 ", %0, " #crn ", " #crm ", " #op2       \
                         :: "r"(v_) : "memory");                                  \
    } while (0)
/* 64-bit CP15 registers (MRRC/MCRR): cp15_read64(c14, 1) is CNTVCT. */
#define cp15_read64(crm, op1) ({                                                  \
        uint32_t lo_, hi_;                                                        \
        __asm__ volatile("mrrc p15, " #op1 ", %0, %1, " #crm                      \
                         : "=r"(lo_), "=r"(hi_) :: "memory");                     \
        ((uint64_t)hi_ << 32) | lo_; })

#define read_sctlr()      cp15_read(c1, c0, 0, 0)
#define write_sctlr(v)    cp15_write(c1, c0, 0, 0, v)
#define read_midr()       cp15_read(c0, c0, 0, 0)
#define read_mpidr()      cp15_read(c0, c0, 0, 5)
#define read_vbar()       cp15_read(c12, c0, 0, 0)
#define read_dfsr()       cp15_read(c5, c0, 0, 0)
#define read_ifsr()       cp15_read(c5, c0, 0, 1)
#define read_dfar()       cp15_read(c6, c0, 0, 0)
#define read_ifar()       cp15_read(c6, c0, 0, 2)

static inline uint32_t read_cpsr(void)
{
    uint32_t v;
    __asm__ volatile("mrs %0, cpsr" : "=r"(v) :: "memory");
    return v;
}

static inline void irq_enable(void)  { __asm__ volatile("cpsie i" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }

/* MMIO accessors: volatile, no barriers (device memory is ordered with respect to itself). */
static inline uint32_t mmio_read32(uintptr_t addr)
{
    return *(volatile uint32_t *)addr;
}
static inline void mmio_write32(uintptr_t addr, uint32_t val)
{
    *(volatile uint32_t *)addr = val;
}

#endif /* __ASSEMBLY__ */
#endif /* FW_ARM_H */
