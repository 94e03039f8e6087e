/*
 * A minimal read-only flattened device tree (FDT, DTB) walker. Nodes are named by their
 * offset in the structure block (the root is 0), as libfdt does; negative values are errors.
 * All addresses returned are CPU physical addresses: `reg` is translated through every
 * parent's `ranges` (empty = identity; plain <child parent size> triplets of 1 or 2 cells).
 */
#ifndef FW_FDT_H
#define FW_FDT_H

#include <stdint.h>

#define FDT_MAGIC           0xd00dfeedu

#define FDT_ERR_BADMAGIC       (-1)
#define FDT_ERR_BADVERSION     (-2)
#define FDT_ERR_BADSTRUCTURE   (-3)
#define FDT_ERR_NOTFOUND       (-4)
#define FDT_ERR_TRUNCATED      (-5)
#define FDT_ERR_BADNCELLS      (-6)
#define FDT_ERR_NOTRANSLATION  (-7)
#define FDT_ERR_BADVALUE       (-8)

/* Big-endian cell reads (FDT data is 4-byte aligned, so 32-bit loads are safe). */
static inline uint32_t fdt32_ld(const void *p)
{
    return __builtin_bswap32(*(const uint32_t *)p);
}

/* Read n (1 or 2) cells as one number; 0 cells read as 0. */
uint64_t fdt_read_cells(const uint32_t *cells, int n);

/* Header checks: magic, version >= 17 (last compatible <= 17), blocks inside totalsize. */
int fdt_check_header(const void *fdt);
uint32_t fdt_totalsize(const void *fdt);
const char *fdt_strerror(int err);

/* Tree walking. depth (may be NULL) is adjusted like libfdt's fdt_next_node(). */
int fdt_next_node(const void *fdt, int node, int *depth);
int fdt_first_subnode(const void *fdt, int node);
int fdt_next_subnode(const void *fdt, int node);
int fdt_parent_offset(const void *fdt, int node);
const char *fdt_get_name(const void *fdt, int node);

/* A child by name: "uart" matches "uart@9000000" too; an exact "uart@9000000" always matches. */
int fdt_subnode_offset(const void *fdt, int parent, const char *name);
/* An absolute path ("/chosen", "/soc/uart@1000") or one starting with an alias ("serial0"). */
int fdt_path_offset(const void *fdt, const char *path);

/* Properties. Returns a pointer into the blob, or NULL (and *lenp = error) if absent. */
const void *fdt_getprop(const void *fdt, int node, const char *name, int *lenp);
/* One-cell property; returns dflt when absent or malformed. */
uint32_t fdt_getprop_u32(const void *fdt, int node, const char *name, uint32_t dflt);
int fdt_stringlist_contains(const char *list, int len, const char *str);
int fdt_node_check_compatible(const void *fdt, int node, const char *compat);
/* The next node after `start` (-1: from the top) whose compatible list contains compat. */
int fdt_node_offset_by_compatible(const void *fdt, int start, const char *compat);

/* phandles. */
uint32_t fdt_get_phandle(const void *fdt, int node);
int fdt_node_offset_by_phandle(const void *fdt, uint32_t phandle);

/* #address-cells / #size-cells a node declares for its children (defaults 2 and 1). */
int fdt_address_cells(const void *fdt, int node);
int fdt_size_cells(const void *fdt, int node);

/* Translate an address on node's parent bus into a CPU physical address. */
int fdt_translate_address(const void *fdt, int node, uint64_t *addr);
/* Entry `index` of node's reg, translated. size may be NULL. */
int fdt_get_reg(const void *fdt, int node, int index, uint64_t *addr, uint64_t *size);

/* Bank `index` over all device_type = "memory" nodes' reg entries, in tree order. */
int fdt_memory_bank(const void *fdt, int index, uint64_t *base, uint64_t *size);

/* A /reserved-memory child (static with reg, or dynamic with size/alignment). */
struct fdt_resmem {
    int node;
    const char *name;
    const char *compatible;   /* first string, or "" */
    int has_reg;
    uint64_t base;            /* valid when has_reg */
    uint64_t size;            /* reg size, or the "size" property of a dynamic region */
    uint64_t alignment;       /* "alignment" property, 0 if absent */
    int no_map;
    int reusable;
    int cma_default;          /* linux,cma-default */
};

int fdt_resmem_from_node(const void *fdt, int node, struct fdt_resmem *out);
/* Child `index` of /reserved-memory; FDT_ERR_NOTFOUND past the end. */
int fdt_reserved_memory(const void *fdt, int index, struct fdt_resmem *out);
/* Entry `index` of node's memory-region phandle list, resolved. */
int fdt_memory_region(const void *fdt, int node, int index, struct fdt_resmem *out);

/* Interrupt specifier `index` of node's `interrupts`, decoded for a GIC parent. */
#define FDT_IRQ_TYPE_SPI    0
#define FDT_IRQ_TYPE_PPI    1
struct fdt_irq {
    int parent;         /* interrupt controller node */
    uint32_t type;      /* FDT_IRQ_TYPE_SPI / _PPI (cell 0 of a 3-cell GIC specifier) */
    uint32_t number;    /* cell 1 */
    uint32_t flags;     /* cell 2: trigger type and, for PPIs, CPU mask */
    uint32_t id;        /* GIC interrupt ID: SPI n -> 32 + n, PPI n -> 16 + n */
};
int fdt_get_interrupt(const void *fdt, int node, int index, struct fdt_irq *out);

#endif /* FW_FDT_H */
