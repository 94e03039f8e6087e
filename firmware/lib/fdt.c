/* Read-only FDT walker; see fdt.h. Offsets are relative to the structure block. */
#include "fdt.h"
#include "util.h"

#define FDT_BEGIN_NODE  1u
#define FDT_END_NODE    2u
#define FDT_PROP        3u
#define FDT_NOP         4u
#define FDT_END         9u

#define HDR_MAGIC           0
#define HDR_TOTALSIZE       4
#define HDR_OFF_STRUCT      8
#define HDR_OFF_STRINGS     12
#define HDR_VERSION         20
#define HDR_LAST_COMP       24
#define HDR_SIZE_STRINGS    32
#define HDR_SIZE_STRUCT     36

#define MAX_DEPTH           32

static uint32_t hdr(const void *fdt, int off)
{
    return fdt32_ld((const uint8_t *)fdt + off);
}

static const uint8_t *struct_base(const void *fdt)
{
    return (const uint8_t *)fdt + hdr(fdt, HDR_OFF_STRUCT);
}

static uint32_t struct_size(const void *fdt)
{
    return hdr(fdt, HDR_SIZE_STRUCT);
}

static const char *string_at(const void *fdt, uint32_t off)
{
    if (off >= hdr(fdt, HDR_SIZE_STRINGS))
        return 0;
    return (const char *)fdt + hdr(fdt, HDR_OFF_STRINGS) + off;
}

uint64_t fdt_read_cells(const uint32_t *cells, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = (v << 32) | fdt32_ld(&cells[i]);
    return v;
}

int fdt_check_header(const void *fdt)
{
    uint32_t total, version;

    if (!fdt || ((uintptr_t)fdt & 3))
        return FDT_ERR_BADMAGIC;
    if (hdr(fdt, HDR_MAGIC) != FDT_MAGIC)
        return FDT_ERR_BADMAGIC;
    version = hdr(fdt, HDR_VERSION);
    if (version < 17 || hdr(fdt, HDR_LAST_COMP) > 17)
        return FDT_ERR_BADVERSION;
    total = hdr(fdt, HDR_TOTALSIZE);
    if (hdr(fdt, HDR_OFF_STRUCT) > total
        || struct_size(fdt) > total - hdr(fdt, HDR_OFF_STRUCT)
        || hdr(fdt, HDR_OFF_STRINGS) > total
        || hdr(fdt, HDR_SIZE_STRINGS) > total - hdr(fdt, HDR_OFF_STRINGS))
        return FDT_ERR_TRUNCATED;
    if ((hdr(fdt, HDR_OFF_STRUCT) & 3) || struct_size(fdt) < 8)
        return FDT_ERR_BADSTRUCTURE;
    if (fdt32_ld(struct_base(fdt)) != FDT_BEGIN_NODE)
        return FDT_ERR_BADSTRUCTURE;
    return 0;
}

uint32_t fdt_totalsize(const void *fdt)
{
    return hdr(fdt, HDR_TOTALSIZE);
}

const char *fdt_strerror(int err)
{
    switch (err) {
    case 0:                     return "ok";
    case FDT_ERR_BADMAGIC:      return "bad magic";
    case FDT_ERR_BADVERSION:    return "unsupported version";
    case FDT_ERR_BADSTRUCTURE:  return "bad structure block";
    case FDT_ERR_NOTFOUND:      return "not found";
    case FDT_ERR_TRUNCATED:     return "truncated";
    case FDT_ERR_BADNCELLS:     return "bad #address-cells/#size-cells";
    case FDT_ERR_NOTRANSLATION: return "address not translatable";
    case FDT_ERR_BADVALUE:      return "bad property value";
    default:                    return "unknown error";
    }
}

/*
 * Read the tag at off; *next gets the offset of the following tag. Returns FDT_END on any
 * out-of-bounds structure so callers stop.
 */
static uint32_t next_tag(const void *fdt, int off, int *next)
{
    const uint8_t *base = struct_base(fdt);
    uint32_t size = struct_size(fdt);
    uint32_t tag, len;
    int p;

    if (off < 0 || (uint32_t)off + 4 > size)
        return FDT_END;
    tag = fdt32_ld(base + off);
    p = off + 4;
    switch (tag) {
    case FDT_BEGIN_NODE:
        while ((uint32_t)p < size && base[p])
            p++;
        if ((uint32_t)p >= size)
            return FDT_END;
        p = (int)ALIGN_UP((uint32_t)p + 1, 4u);
        break;
    case FDT_PROP:
        if ((uint32_t)p + 8 > size)
            return FDT_END;
        len = fdt32_ld(base + p);
        if (len > size - (uint32_t)p - 8)
            return FDT_END;
        p = (int)ALIGN_UP((uint32_t)p + 8 + len, 4u);
        break;
    case FDT_END_NODE:
    case FDT_NOP:
        break;
    default:
        return FDT_END;
    }
    *next = p;
    return tag;
}

int fdt_next_node(const void *fdt, int node, int *depth)
{
    int off = node, next = 0;
    uint32_t tag;

    if (node < 0) {
        if (next_tag(fdt, 0, &next) != FDT_BEGIN_NODE)
            return FDT_ERR_BADSTRUCTURE;
        if (depth)
            *depth = 0;
        return 0;
    }
    if (next_tag(fdt, off, &next) != FDT_BEGIN_NODE)
        return FDT_ERR_BADSTRUCTURE;
    for (;;) {
        off = next;
        tag = next_tag(fdt, off, &next);
        switch (tag) {
        case FDT_PROP:
        case FDT_NOP:
            break;
        case FDT_BEGIN_NODE:
            if (depth)
                ++*depth;
            return off;
        case FDT_END_NODE:
            if (depth && --*depth < 0)
                return FDT_ERR_NOTFOUND;
            break;
        default:
            return FDT_ERR_NOTFOUND;
        }
    }
}

int fdt_first_subnode(const void *fdt, int node)
{
    int depth = 0;
    int off = fdt_next_node(fdt, node, &depth);

    if (off < 0 || depth != 1)
        return FDT_ERR_NOTFOUND;
    return off;
}

int fdt_next_subnode(const void *fdt, int node)
{
    int depth = 1;
    int off = node;

    do {
        off = fdt_next_node(fdt, off, &depth);
        if (off < 0 || depth < 1)
            return FDT_ERR_NOTFOUND;
    } while (depth > 1);
    return off;
}

int fdt_parent_offset(const void *fdt, int node)
{
    int stack[MAX_DEPTH];
    int depth = 0, off;

    if (node <= 0)
        return FDT_ERR_NOTFOUND;
    for (off = fdt_next_node(fdt, -1, &depth); off >= 0; off = fdt_next_node(fdt, off, &depth)) {
        if (depth >= MAX_DEPTH)
            return FDT_ERR_BADSTRUCTURE;
        stack[depth] = off;
        if (off == node)
            return depth > 0 ? stack[depth - 1] : FDT_ERR_NOTFOUND;
    }
    return FDT_ERR_NOTFOUND;
}

const char *fdt_get_name(const void *fdt, int node)
{
    int next;

    if (next_tag(fdt, node, &next) != FDT_BEGIN_NODE)
        return 0;
    return (const char *)struct_base(fdt) + node + 4;
}

static int name_matches(const char *node_name, const char *name, int len)
{
    if (strncmp(node_name, name, (size_t)len) != 0)
        return 0;
    if (node_name[len] == '\0')
        return 1;
    /* "uart" matches "uart@9000000" when the caller gave no unit address. */
    if (node_name[len] != '@')
        return 0;
    for (int i = 0; i < len; i++)
        if (name[i] == '@')
            return 0;
    return 1;
}

static int subnode_n(const void *fdt, int parent, const char *name, int len)
{
    int off;

    for (off = fdt_first_subnode(fdt, parent); off >= 0; off = fdt_next_subnode(fdt, off)) {
        const char *n = fdt_get_name(fdt, off);

        if (n && name_matches(n, name, len))
            return off;
    }
    return FDT_ERR_NOTFOUND;
}

int fdt_subnode_offset(const void *fdt, int parent, const char *name)
{
    return subnode_n(fdt, parent, name, (int)strlen(name));
}

int fdt_path_offset(const void *fdt, const char *path)
{
    const char *p = path, *q;
    int off = 0;

    if (*p != '/') {
        /* Alias: the first component names a property of /aliases holding a path. */
        const char *alias;
        char name[64];
        int aliases, len, plen;

        q = strchr(p, '/');
        len = q ? (int)(q - p) : (int)strlen(p);
        aliases = fdt_path_offset(fdt, "/aliases");
        if (aliases < 0)
            return FDT_ERR_NOTFOUND;
        if (len <= 0 || len >= (int)sizeof(name))
            return FDT_ERR_NOTFOUND;
        memcpy(name, p, (size_t)len);
        name[len] = '\0';
        alias = fdt_getprop(fdt, aliases, name, &plen);
        if (!alias || plen < 2 || alias[plen - 1] != '\0')
            return FDT_ERR_NOTFOUND;
        if (!alias || *alias != '/')
            return FDT_ERR_NOTFOUND;
        off = fdt_path_offset(fdt, alias);
        if (off < 0 || !q)
            return off;
        p = q;
    }
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        q = strchr(p, '/');
        if (!q)
            q = p + strlen(p);
        off = subnode_n(fdt, off, p, (int)(q - p));
        if (off < 0)
            return off;
        p = q;
    }
    return off;
}

const void *fdt_getprop(const void *fdt, int node, const char *name, int *lenp)
{
    const uint8_t *b = struct_base(fdt);
    int off, next;
    uint32_t tag;

    if (next_tag(fdt, node, &next) != FDT_BEGIN_NODE) {
        if (lenp)
            *lenp = FDT_ERR_BADSTRUCTURE;
        return 0;
    }
    for (off = next; ; off = next) {
        tag = next_tag(fdt, off, &next);
        if (tag == FDT_NOP)
            continue;
        if (tag != FDT_PROP)
            break;
        {
            const char *pname = string_at(fdt, fdt32_ld(b + off + 8));

            if (pname && !strcmp(pname, name)) {
                if (lenp)
                    *lenp = (int)fdt32_ld(b + off + 4);
                return b + off + 12;
            }
        }
    }
    if (lenp)
        *lenp = FDT_ERR_NOTFOUND;
    return 0;
}

uint32_t fdt_getprop_u32(const void *fdt, int node, const char *name, uint32_t dflt)
{
    int len;
    const uint32_t *p = fdt_getprop(fdt, node, name, &len);

    return p && len == 4 ? fdt32_ld(p) : dflt;
}

int fdt_stringlist_contains(const char *list, int len, const char *str)
{
    int slen = (int)strlen(str);

    while (len > 0) {
        int n = (int)strnlen(list, (size_t)len);

        if (n == slen && !memcmp(list, str, (size_t)n))
            return 1;
        list += n + 1;
        len -= n + 1;
    }
    return 0;
}

int fdt_node_check_compatible(const void *fdt, int node, const char *compat)
{
    int len;
    const char *p = fdt_getprop(fdt, node, "compatible", &len);

    return p && fdt_stringlist_contains(p, len, compat);
}

int fdt_node_offset_by_compatible(const void *fdt, int start, const char *compat)
{
    int off;

    for (off = fdt_next_node(fdt, start, 0); off >= 0; off = fdt_next_node(fdt, off, 0))
        if (fdt_node_check_compatible(fdt, off, compat))
            return off;
    return FDT_ERR_NOTFOUND;
}

uint32_t fdt_get_phandle(const void *fdt, int node)
{
    uint32_t ph = fdt_getprop_u32(fdt, node, "phandle", 0);

    return ph ? ph : fdt_getprop_u32(fdt, node, "linux,phandle", 0);
}

int fdt_node_offset_by_phandle(const void *fdt, uint32_t phandle)
{
    int off;

    if (phandle == 0 || phandle == 0xffffffffu)
        return FDT_ERR_BADVALUE;
    for (off = fdt_next_node(fdt, -1, 0); off >= 0; off = fdt_next_node(fdt, off, 0))
        if (fdt_get_phandle(fdt, off) == phandle)
            return off;
    return FDT_ERR_NOTFOUND;
}

int fdt_address_cells(const void *fdt, int node)
{
    uint32_t n = fdt_getprop_u32(fdt, node, "#address-cells", 2);

    return n > 4 ? FDT_ERR_BADNCELLS : (int)n;
}

int fdt_size_cells(const void *fdt, int node)
{
    uint32_t n = fdt_getprop_u32(fdt, node, "#size-cells", 1);

    return n > 4 ? FDT_ERR_BADNCELLS : (int)n;
}

int fdt_translate_address(const void *fdt, int node, uint64_t *addr)
{
    int bus = fdt_parent_offset(fdt, node);

    while (bus > 0) {
        int len, parent, ca, pa, sc, entry, i;
        const uint32_t *r = fdt_getprop(fdt, bus, "ranges", &len);
        int found = 0;

        if (!r)
            return FDT_ERR_NOTRANSLATION;
        parent = fdt_parent_offset(fdt, bus);
        if (parent < 0)
            return parent;
        if (len == 0) {
            bus = parent;
            continue;
        }
        ca = fdt_address_cells(fdt, bus);
        sc = fdt_size_cells(fdt, bus);
        pa = fdt_address_cells(fdt, parent);
        if (ca < 0 || sc < 0 || pa < 0 || ca > 2 || sc > 2 || pa > 2 || ca == 0)
            return FDT_ERR_BADNCELLS;
        entry = ca + pa + sc;
        if (len % (entry * 4))
            return FDT_ERR_BADVALUE;
        for (i = 0; i < len / 4; i += entry) {
            uint64_t child = fdt_read_cells(r + i, ca);
            uint64_t pbase = fdt_read_cells(r + i + ca, pa);
            uint64_t size = fdt_read_cells(r + i + ca + pa, sc);

            if (*addr >= child && *addr - child < size) {
                *addr = *addr - child + pbase;
                found = 1;
                break;
            }
        }
        if (!found)
            return FDT_ERR_NOTRANSLATION;
        bus = parent;
    }
    return 0;
}

int fdt_get_reg(const void *fdt, int node, int index, uint64_t *addr, uint64_t *size)
{
    int parent = fdt_parent_offset(fdt, node);
    int len, ac, sc;
    const uint32_t *reg;

    if (parent < 0)
        return parent;
    ac = fdt_address_cells(fdt, parent);
    sc = fdt_size_cells(fdt, parent);
    if (ac < 1 || ac > 2 || sc < 0 || sc > 2)
        return FDT_ERR_BADNCELLS;
    reg = fdt_getprop(fdt, node, "reg", &len);
    if (!reg)
        return FDT_ERR_NOTFOUND;
    if (index < 0 || (index + 1) * (ac + sc) * 4 > len)
        return FDT_ERR_NOTFOUND;
    reg += index * (ac + sc);
    *addr = fdt_read_cells(reg, ac);
    if (size)
        *size = fdt_read_cells(reg + ac, sc);
    return fdt_translate_address(fdt, node, addr);
}

int fdt_memory_bank(const void *fdt, int index, uint64_t *base, uint64_t *size)
{
    int off;

    for (off = fdt_next_node(fdt, -1, 0); off >= 0; off = fdt_next_node(fdt, off, 0)) {
        int len, i;
        const char *type = fdt_getprop(fdt, off, "device_type", &len);

        if (!type || len < 7 || strcmp(type, "memory"))
            continue;
        for (i = 0; ; i++) {
            uint64_t b, s;

            if (fdt_get_reg(fdt, off, i, &b, &s) < 0)
                break;
            if (s == 0)
                continue;
            if (index-- == 0) {
                *base = b;
                *size = s;
                return off;
            }
        }
    }
    return FDT_ERR_NOTFOUND;
}

static uint64_t prop_cells(const void *fdt, int node, const char *name, int cells, int *ok)
{
    int len;
    const uint32_t *p = fdt_getprop(fdt, node, name, &len);

    if (!p || cells < 1 || cells > 2 || len != cells * 4) {
        *ok = 0;
        return 0;
    }
    *ok = 1;
    return fdt_read_cells(p, cells);
}

int fdt_resmem_from_node(const void *fdt, int node, struct fdt_resmem *out)
{
    int parent = fdt_parent_offset(fdt, node);
    int len, ok;
    const char *compat;
    uint64_t v;

    if (parent < 0)
        return parent;
    memset(out, 0, sizeof(*out));
    out->node = node;
    out->name = fdt_get_name(fdt, node);
    compat = fdt_getprop(fdt, node, "compatible", &len);
    out->compatible = compat && len > 0 ? compat : "";
    out->no_map = fdt_getprop(fdt, node, "no-map", 0) != 0;
    out->reusable = fdt_getprop(fdt, node, "reusable", 0) != 0;
    out->cma_default = fdt_getprop(fdt, node, "linux,cma-default", 0) != 0;
    if (fdt_get_reg(fdt, node, 0, &out->base, &out->size) == 0) {
        out->has_reg = 1;
    } else {
        v = prop_cells(fdt, node, "size", fdt_size_cells(fdt, parent), &ok);
        if (!ok)
            return FDT_ERR_BADVALUE;
        out->size = v;
    }
    v = prop_cells(fdt, node, "alignment", fdt_size_cells(fdt, parent), &ok);
    out->alignment = ok ? v : 0;
    return node;
}

int fdt_reserved_memory(const void *fdt, int index, struct fdt_resmem *out)
{
    int rm = fdt_path_offset(fdt, "/reserved-memory");
    int off;

    if (rm < 0)
        return FDT_ERR_NOTFOUND;
    for (off = fdt_first_subnode(fdt, rm); off >= 0; off = fdt_next_subnode(fdt, off))
        if (index-- == 0)
            return fdt_resmem_from_node(fdt, off, out);
    return FDT_ERR_NOTFOUND;
}

int fdt_memory_region(const void *fdt, int node, int index, struct fdt_resmem *out)
{
    int len, target;
    const uint32_t *p = fdt_getprop(fdt, node, "memory-region", &len);

    if (!p || index < 0 || (index + 1) * 4 > len)
        return FDT_ERR_NOTFOUND;
    target = fdt_node_offset_by_phandle(fdt, fdt32_ld(&p[index]));
    if (target < 0)
        return target;
    return fdt_resmem_from_node(fdt, target, out);
}

static int interrupt_parent(const void *fdt, int node)
{
    while (node >= 0) {
        uint32_t ph = fdt_getprop_u32(fdt, node, "interrupt-parent", 0);

        if (ph)
            return fdt_node_offset_by_phandle(fdt, ph);
        if (node == 0)
            break;
        node = fdt_parent_offset(fdt, node);
    }
    return FDT_ERR_NOTFOUND;
}

int fdt_get_interrupt(const void *fdt, int node, int index, struct fdt_irq *out)
{
    int len, cells, ctrl = interrupt_parent(fdt, node);
    const uint32_t *p;

    if (ctrl < 0)
        return ctrl;
    cells = (int)fdt_getprop_u32(fdt, ctrl, "#interrupt-cells", 0);
    if (cells < 1 || cells > 4)
        return FDT_ERR_BADNCELLS;
    p = fdt_getprop(fdt, node, "interrupts", &len);
    if (!p || index < 0 || (index + 1) * cells * 4 > len)
        return FDT_ERR_NOTFOUND;
    p += index * cells;
    memset(out, 0, sizeof(*out));
    out->parent = ctrl;
    if (cells >= 3) {
        out->type = fdt32_ld(&p[0]);
        out->number = fdt32_ld(&p[1]);
        out->flags = fdt32_ld(&p[2]);
        if (out->type == FDT_IRQ_TYPE_SPI)
            out->id = out->number + 32;
        else if (out->type == FDT_IRQ_TYPE_PPI)
            out->id = out->number + 16;
        else
            return FDT_ERR_BADVALUE;
    } else {
        out->type = FDT_IRQ_TYPE_SPI;
        out->number = fdt32_ld(&p[0]);
        out->flags = cells > 1 ? fdt32_ld(&p[1]) : 0;
        out->id = out->number;
    }
    return 0;
}
