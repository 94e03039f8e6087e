/*
 * capture: a bare-metal camera driver that does what a real one must. It finds the camera in
 * the device tree, allocates a ring of frame buffers from the CMA service, programs the camera
 * with each buffer's bus (DMA) address, captures frames on interrupts, and checks every frame
 * through the CPU's own virtual address (header, sequence number, geometry, CRC-32).
 *
 * Options come from /chosen/bootargs (see docs/capture.md): frames=N width= height= format=
 * buffers=N timeout=S bug=none|phys|virt|alias|use-after-put. The bug variants make one of
 * the classic DMA-address mistakes on purpose so the harness can be seen to name it.
 *
 * Exit status (PSCI SYSTEM_OFF): 0 every frame verified, 3 the camera reported a bus error,
 * 1 anything else.
 */
#include "fw.h"
#include "generated/cam_pattern.h"
#include "generated/camera_regs.h"
#include "generated/cma_abi.h"

#include "crc32.h"

#define CAPTURE_STATUS_BUS_ERROR  3

#define CAMERA_COMPATIBLE   "camsoc,camera-dma"
/* The CMA service ABI major version this program speaks. */
#define CMA_ABI_MAJOR       1u
/* bug=alias: the other of camsoc's two bus aliases of RAM (0x0... <-> 0xC...). */
#define BUS_ALIAS_XOR       0xc0000000u

#define MAX_SLOTS           CAM_BUF_ADDR_COUNT
#define DEFAULT_FRAMES      8u
#define DEFAULT_BUFFERS     4u
#define DEFAULT_WIDTH       640u
#define DEFAULT_HEIGHT      480u
#define DEFAULT_TIMEOUT_S   5u
#define MAX_DIMENSION       4096u
#define MAX_PATH            256
#define MAX_WORD            128

enum bug {
    BUG_NONE,
    BUG_PHYS,
    BUG_VIRT,
    BUG_ALIAS,
    BUG_USE_AFTER_PUT,
};

static const char *const bug_names[] = {
    [BUG_NONE] = "none",
    [BUG_PHYS] = "phys",
    [BUG_VIRT] = "virt",
    [BUG_ALIAS] = "alias",
    [BUG_USE_AFTER_PUT] = "use-after-put",
};

static const struct {
    const char *name;
    uint32_t code;
    uint32_t bpp;
} formats[] = {
    {"rgb565", CAM_FORMAT_RGB565, CAM_FORMAT_RGB565_BPP},
    {"rgb888", CAM_FORMAT_RGB888, CAM_FORMAT_RGB888_BPP},
    {"yuyv", CAM_FORMAT_YUYV, CAM_FORMAT_YUYV_BPP},
    {"xrgb8888", CAM_FORMAT_XRGB8888, CAM_FORMAT_XRGB8888_BPP},
};

struct options {
    uint32_t frames;
    uint32_t width, height;
    uint32_t format;          /* index into formats[] */
    uint32_t buffers;
    uint32_t timeout_s;
    enum bug bug;
};

struct buffer {
    uint32_t phys;            /* where the bytes are */
    uint32_t bus;             /* what the camera must be programmed with */
    uint32_t va;              /* where the CPU reads them (linear map) */
    uint32_t size;            /* rounded up to pages by the CMA service */
    uint32_t programmed;      /* what BUF_ADDRn was given */
    int allocated;
};

struct camera {
    int node;
    uintptr_t base;
    uint32_t irq;
    uint32_t phandle;
    uint32_t dev_ref;         /* phandle, or the physical address of path */
    uint32_t dev_flags;       /* 0 or CMA_FLAG_DEVICE_PATH */
};

/* The device path handed to the CMA service by physical address, so it lives in RAM. */
static char device_path[MAX_PATH] __attribute__((aligned(64)));

static struct options opt;
static struct camera cam;
static struct buffer bufs[MAX_SLOTS];
static uint32_t line_bytes, frame_bytes;

/* ---- state shared with the interrupt handlers ---------------------------------------- */

#define QUEUE_LEN  16u   /* a power of two above MAX_SLOTS: the ring never overfills it */

static volatile uint32_t q_slot[QUEUE_LEN], q_seq[QUEUE_LEN];
static volatile uint32_t q_head, q_tail;
static volatile uint32_t hw_owned;                  /* slots handed to the camera */
static volatile uint32_t stale_seq[MAX_SLOTS];      /* SLOT_SEQn when slot n was handed over */
static volatile int bus_error;
static volatile uint32_t error_addr, error_slot;
static volatile int timed_out;
static volatile uint64_t deadline;

static inline uint32_t cam_read(uint32_t reg)
{
    return mmio_read32(cam.base + reg);
}

static inline void cam_write(uint32_t reg, uint32_t val)
{
    mmio_write32(cam.base + reg, val);
}

static inline uint32_t slot_reg(uint32_t base, uint32_t stride, uint32_t slot)
{
    return base + slot * stride;
}

/* ---- options ---------------------------------------------------------------------------- */

static int parse_uint(const char *s, uint32_t len, uint32_t *out)
{
    uint32_t v = 0, base = 10, i = 0, d;

    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        i = 2;
    }
    if (i >= len)
        return -1;
    for (; i < len; i++) {
        char c = s[i];

        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return -1;
        if (v > (0xffffffffu - d) / base)
            return -1;
        v = v * base + d;
    }
    *out = v;
    return 0;
}

/* One "key=value" word of the command line; prints what is wrong and returns -1. */
static int parse_option(const char *key, const char *val)
{
    uint32_t i, n;

    if (!strcmp(key, "frames") || !strcmp(key, "width") || !strcmp(key, "height") ||
        !strcmp(key, "buffers") || !strcmp(key, "timeout")) {
        if (!val || parse_uint(val, (uint32_t)strlen(val), &n) < 0) {
            printf("capture: option %s needs a number, not '%s'\n", key, val ? val : "");
            return -1;
        }
        if (key[0] == 'f')
            opt.frames = n;
        else if (key[0] == 'w')
            opt.width = n;
        else if (key[0] == 'h')
            opt.height = n;
        else if (key[0] == 'b')
            opt.buffers = n;
        else
            opt.timeout_s = n;
        return 0;
    }
    if (!strcmp(key, "format")) {
        for (i = 0; val && i < ARRAY_SIZE(formats); i++) {
            if (!strcmp(val, formats[i].name)) {
                opt.format = i;
                return 0;
            }
        }
        printf("capture: format must be rgb565, rgb888, yuyv or xrgb8888, not '%s'\n",
               val ? val : "");
        return -1;
    }
    if (!strcmp(key, "bug")) {
        for (i = 0; val && i < ARRAY_SIZE(bug_names); i++) {
            if (!strcmp(val, bug_names[i])) {
                opt.bug = (enum bug)i;
                return 0;
            }
        }
        printf("capture: bug must be none, phys, virt, alias or use-after-put, not '%s'\n",
               val ? val : "");
        return -1;
    }
    /* The CMA configuration rides on the same command line; the platform consumes it. */
    if (!strcmp(key, "cma") || !strcmp(key, "cma_map"))
        return 0;
    printf("capture: unknown option '%s' (known: frames width height format buffers timeout "
           "bug)\n", key);
    return -1;
}

static int parse_bootargs(const void *dtb)
{
    int chosen = fdt_path_offset(dtb, "/chosen");
    const char *args = 0;
    char word[MAX_WORD], *eq;
    uint32_t n, pos = 0, total;
    int len = 0, failed = 0;

    opt.frames = DEFAULT_FRAMES;
    opt.width = DEFAULT_WIDTH;
    opt.height = DEFAULT_HEIGHT;
    opt.format = 0;
    opt.buffers = DEFAULT_BUFFERS;
    opt.timeout_s = 0;
    opt.bug = BUG_NONE;
    if (chosen >= 0)
        args = fdt_getprop(dtb, chosen, "bootargs", &len);
    total = (args && len > 0) ? (uint32_t)strnlen(args, (size_t)len) : 0;
    if (total)
        printf("capture: bootargs \"%s\"\n", args);
    while (pos < total) {
        while (pos < total && args[pos] == ' ')
            pos++;
        for (n = 0; pos < total && args[pos] != ' '; pos++) {
            if (n < sizeof(word) - 1)
                word[n++] = args[pos];
        }
        if (!n)
            break;
        word[n] = '\0';
        eq = strchr(word, '=');
        if (eq)
            *eq++ = '\0';
        if (parse_option(word, eq) < 0)
            failed = 1;
    }
    if (failed)
        return -1;
    if (!opt.frames) {
        printf("capture: frames must be at least 1\n");
        return -1;
    }
    if (opt.width < 2 || opt.width > MAX_DIMENSION || (opt.width & 1)) {
        printf("capture: width must be even and in 2..%u, not %u\n", MAX_DIMENSION, opt.width);
        return -1;
    }
    if (opt.height < 1 || opt.height > MAX_DIMENSION) {
        printf("capture: height must be in 1..%u, not %u\n", MAX_DIMENSION, opt.height);
        return -1;
    }
    if (opt.buffers < 1 || opt.buffers > MAX_SLOTS) {
        printf("capture: buffers must be in 1..%u, not %u\n", MAX_SLOTS, opt.buffers);
        return -1;
    }
    line_bytes = opt.width * formats[opt.format].bpp;
    if (line_bytes < CAM_PATTERN_HEADER_SIZE) {
        printf("capture: a line of %u bytes cannot hold the %u-byte frame header\n",
               line_bytes, CAM_PATTERN_HEADER_SIZE);
        return -1;
    }
    frame_bytes = line_bytes * opt.height;
    if (!opt.timeout_s) {   /* 5 s, or more when the frames themselves need longer at 30 fps */
        opt.timeout_s = DEFAULT_TIMEOUT_S + opt.frames / 15;
    }
    return 0;
}

/* ---- the camera node ------------------------------------------------------------------ */

/* The node's full path ("/soc/cambus@10000000/camera@0") into buf; -1 if it does not fit. */
static int node_path(const void *dtb, int node, char *buf, uint32_t size)
{
    int chain[16], depth = 0, i;
    uint32_t pos = 0, n;

    while (node > 0 && depth < (int)ARRAY_SIZE(chain)) {
        chain[depth++] = node;
        node = fdt_parent_offset(dtb, node);
    }
    if (node != 0)
        return -1;
    if (!depth) {
        if (size < 2)
            return -1;
        buf[0] = '/';
        buf[1] = '\0';
        return 0;
    }
    for (i = depth - 1; i >= 0; i--) {
        const char *name = fdt_get_name(dtb, chain[i]);

        n = name ? (uint32_t)strlen(name) : 0;
        if (pos + 1 + n + 1 > size)
            return -1;
        buf[pos++] = '/';
        memcpy(buf + pos, name, n);
        pos += n;
    }
    buf[pos] = '\0';
    return 0;
}

static int find_camera(const void *dtb)
{
    uint64_t base, size;
    struct fdt_irq irq;
    struct fdt_resmem rm;
    int rc, i;

    cam.node = fdt_node_offset_by_compatible(dtb, -1, CAMERA_COMPATIBLE);
    if (cam.node < 0) {
        printf("capture: no \"%s\" node in the device tree\n", CAMERA_COMPATIBLE);
        return -1;
    }
    if (node_path(dtb, cam.node, device_path, sizeof(device_path)) < 0) {
        printf("capture: the camera's node path is too long\n");
        return -1;
    }
    rc = fdt_get_reg(dtb, cam.node, 0, &base, &size);
    if (rc < 0 || base >> 32 || size < CAM_MMIO_SIZE) {
        printf("capture: %s: no usable reg (%s)\n", device_path,
               rc < 0 ? fdt_strerror(rc) : "outside 32 bits or too small");
        return -1;
    }
    cam.base = (uintptr_t)base;
    rc = fdt_get_interrupt(dtb, cam.node, 0, &irq);
    if (rc < 0 || irq.type != FDT_IRQ_TYPE_SPI) {
        printf("capture: %s: no SPI interrupt (%s)\n", device_path,
               rc < 0 ? fdt_strerror(rc) : "not an SPI");
        return -1;
    }
    cam.irq = irq.id;
    cam.phandle = fdt_get_phandle(dtb, cam.node);
    printf("camera %s: regs 0x%08x, SPI %u (interrupt %u), ", device_path, (uint32_t)cam.base,
           irq.number, cam.irq);
    if (cam.phandle)
        printf("phandle 0x%x\n", cam.phandle);
    else
        printf("no phandle: named by path\n");
    for (i = 0; fdt_memory_region(dtb, cam.node, i, &rm) >= 0; i++) {
        printf("camera memory-region %d: %s (%s%s%s) ", i, rm.name,
               rm.compatible[0] ? rm.compatible : "no compatible",
               rm.reusable ? ", reusable" : "", rm.no_map ? ", no-map" : "");
        if (rm.has_reg)
            printf("0x%08llx+0x%llx\n", rm.base, rm.size);
        else
            printf("dynamic, size 0x%llx\n", rm.size);
    }
    if (i)
        return 0;
    printf("camera memory-region: none\n");
    for (i = 0; fdt_reserved_memory(dtb, i, &rm) >= 0; i++) {
        if (rm.cma_default)
            printf("default CMA pool: %s 0x%08llx+0x%llx\n", rm.name, rm.base, rm.size);
    }
    return 0;
}

/* Name the camera for the CMA service: by phandle, else by the physical address of its path. */
static int camera_reference(void)
{
    uint32_t pa;

    if (cam.phandle) {
        cam.dev_ref = cam.phandle;
        cam.dev_flags = 0;
        return 0;
    }
    if (mmu_translate((uint32_t)(uintptr_t)device_path, &pa, 0) < 0) {
        printf("capture: the device path buffer is not mapped\n");
        return -1;
    }
    /* The service reads the string from memory, not through our caches. */
    dcache_clean_range((uintptr_t)device_path, strlen(device_path) + 1);
    cam.dev_ref = pa;
    cam.dev_flags = CMA_FLAG_DEVICE_PATH;
    return 0;
}

/* ---- the CMA service ------------------------------------------------------------------ */

static const char *cma_status_name(int32_t s)
{
    switch (s) {
    case CMA_STATUS_OK: return "OK";
    case CMA_STATUS_NOT_SUPPORTED: return "NOT_SUPPORTED";
    case CMA_STATUS_ENOENT: return "ENOENT";
    case CMA_STATUS_ENOMEM: return "ENOMEM";
    case CMA_STATUS_EFAULT: return "EFAULT";
    case CMA_STATUS_EINVAL: return "EINVAL";
    default: return "unknown status";
    }
}

static int cma_setup(void)
{
    struct smccc_res res;

    smccc_call(CMA_CALL_VERSION, 0, 0, 0, 0, 0, 0, 0, &res);
    if ((int32_t)res.a0 < 0 || res.a0 >> 16 != CMA_ABI_MAJOR) {
        printf("capture: CMA service version 0x%08x, need major %u\n", res.a0, CMA_ABI_MAJOR);
        return -1;
    }
    printf("cma: service version %u.%u\n", res.a0 >> 16, res.a0 & 0xffff);
    smccc_call(CMA_CALL_INFO, cam.dev_ref, 0, 0, 0, cam.dev_flags, 0, 0, &res);
    if ((int32_t)res.a0 < 0) {
        printf("capture: CMA INFO for the camera failed: %d (%s)\n", (int32_t)res.a0,
               cma_status_name((int32_t)res.a0));
        return -1;
    }
    printf("cma: camera served by %u region(s) in 0x%08x..0x%08x, 0x%x bytes\n", res.a0,
           res.a1, res.a2, res.a3);
    return 0;
}

static int alloc_buffers(void)
{
    struct smccc_res res;
    uint32_t i;
    void *linear;

    for (i = 0; i < opt.buffers; i++) {
        struct buffer *b = &bufs[i];

        smccc_call(CMA_CALL_ALLOC, cam.dev_ref, 0, frame_bytes, 0, cam.dev_flags, 0, 0, &res);
        if ((int32_t)res.a0 != CMA_STATUS_OK) {
            printf("capture: CMA ALLOC of 0x%x bytes for buffer %u failed: %d (%s)\n",
                   frame_bytes, i, (int32_t)res.a0, cma_status_name((int32_t)res.a0));
            return -1;
        }
        b->phys = res.a1;
        b->bus = res.a2;
        b->size = res.a3;
        b->allocated = 1;
        linear = phys_to_virt(b->phys);
        if (!linear) {
            printf("capture: buffer %u at phys 0x%08x is outside the linear map\n", i, b->phys);
            return -1;
        }
        b->va = (uint32_t)(uintptr_t)linear;
        smccc_call(CMA_CALL_CPU_ADDR, b->phys, 0, 0, 0, 0, 0, 0, &res);
        if ((int32_t)res.a0 != CMA_STATUS_OK || res.a1 != b->va) {
            printf("capture: CMA CPU_ADDR(0x%08x) = %d, 0x%08x; the linear map says 0x%08x\n",
                   b->phys, (int32_t)res.a0, res.a1, b->va);
            return -1;
        }
        printf("buffer %u phys 0x%08x bus 0x%08x va 0x%08x\n", i, b->phys, b->bus, b->va);
    }
    return 0;
}

static int put_buffer(uint32_t i)
{
    struct smccc_res res;

    smccc_call(CMA_CALL_PUT, bufs[i].phys, 0, 0, 0, 0, 0, 0, &res);
    bufs[i].allocated = 0;
    if ((int32_t)res.a0 < 0) {
        printf("capture: CMA PUT of buffer %u (phys 0x%08x) failed: %d (%s)\n", i,
               bufs[i].phys, (int32_t)res.a0, cma_status_name((int32_t)res.a0));
        return -1;
    }
    return 0;
}

/* ---- interrupts ----------------------------------------------------------------------- */

/*
 * Acknowledge and queue: every slot the camera owned whose SLOT_SEQ moved on holds a new
 * frame (normally just LAST_SLOT, but a late interrupt may cover more), queued in frame order.
 */
static void camera_irq(uint32_t id, void *arg)
{
    uint32_t status = cam_read(CAM_IRQ_STATUS);
    uint32_t seqs[MAX_SLOTS], slots[MAX_SLOTS], n = 0, i, j, slot, seq;

    if (status & CAM_IRQ_STATUS_FRAME_DONE_MASK) {
        cam_write(CAM_IRQ_STATUS, CAM_IRQ_STATUS_FRAME_DONE_MASK);
        for (slot = 0; slot < opt.buffers; slot++) {
            if (!(hw_owned & (1u << slot)))
                continue;
            seq = cam_read(slot_reg(CAM_SLOT_SEQ, CAM_SLOT_SEQ_STRIDE, slot));
            if (seq == stale_seq[slot])
                continue;
            for (i = n; i > 0 && seqs[i - 1] > seq; i--) {
                seqs[i] = seqs[i - 1];
                slots[i] = slots[i - 1];
            }
            seqs[i] = seq;
            slots[i] = slot;
            n++;
        }
        for (j = 0; j < n; j++) {
            hw_owned &= ~(1u << slots[j]);
            q_slot[q_head % QUEUE_LEN] = slots[j];
            q_seq[q_head % QUEUE_LEN] = seqs[j];
            q_head++;
        }
    }
    if (status & CAM_IRQ_STATUS_BUS_ERROR_MASK) {
        error_addr = cam_read(CAM_ERROR_ADDR);
        error_slot = cam_read(CAM_ERROR_SLOT);
        bus_error = 1;
        cam_write(CAM_IRQ_STATUS, CAM_IRQ_STATUS_BUS_ERROR_MASK);
    }
}

/*
 * The timeout, on the library's periodic tick. The tick also bounds how long the main loop
 * can sleep if an interrupt slips in between its queue check and its WFI.
 */
#define TICK_HZ  100u

static void tick(uint64_t ticks)
{
    if (timer_count() >= deadline)
        timed_out = 1;
}

static int start_timeout(const struct platform *p)
{
    deadline = timer_count() + (uint64_t)p->timer_freq * opt.timeout_s;
    return timer_tick_start(p->timer_irq, TICK_HZ, tick);
}

/* ---- the camera ----------------------------------------------------------------------- */

static uint32_t programmed_address(const struct buffer *b)
{
    switch (opt.bug) {
    case BUG_PHYS: return b->phys;
    case BUG_VIRT: return b->va;
    case BUG_ALIAS: return b->bus ^ BUS_ALIAS_XOR;
    case BUG_NONE:
    case BUG_USE_AFTER_PUT:
    default: return b->bus;
    }
}

static uint32_t popcount(uint32_t v)
{
    uint32_t n = 0;

    for (; v; v &= v - 1)
        n++;
    return n;
}

/* Give slot n (back) to the camera: remember its SLOT_SEQ so the interrupt sees it change. */
static void hand_to_camera(uint32_t slot)
{
    uint32_t masked = read_cpsr() & CPSR_I;

    irq_disable();
    stale_seq[slot] = cam_read(slot_reg(CAM_SLOT_SEQ, CAM_SLOT_SEQ_STRIDE, slot));
    hw_owned |= 1u << slot;
    cam_write(CAM_BUF_READY, 1u << slot);
    if (!masked)
        irq_enable();
}

static int start_camera(void)
{
    uint32_t i;

    cam_write(CAM_CTRL, CAM_CTRL_RESET_MASK);
    printf("camera: id 0x%08x version %u.%u, %ux%u %s, %u buffers of 0x%x bytes\n",
           cam_read(CAM_ID), cam_read(CAM_VERSION) >> 16, cam_read(CAM_VERSION) & 0xffff,
           opt.width, opt.height, formats[opt.format].name, opt.buffers, frame_bytes);
    cam_write(CAM_WIDTH, opt.width);
    cam_write(CAM_HEIGHT, opt.height);
    cam_write(CAM_FORMAT, formats[opt.format].code);
    cam_write(CAM_STRIDE, line_bytes);
    for (i = 0; i < opt.buffers; i++) {
        bufs[i].programmed = programmed_address(&bufs[i]);
        if (opt.bug != BUG_NONE && opt.bug != BUG_USE_AFTER_PUT)
            printf("bug=%s: slot %u programmed with 0x%08x instead of bus 0x%08x\n",
                   bug_names[opt.bug], i, bufs[i].programmed, bufs[i].bus);
        cam_write(slot_reg(CAM_BUF_ADDR, CAM_BUF_ADDR_STRIDE, i), bufs[i].programmed);
        /* Nothing of ours may be written back over the device's data later. */
        dcache_clean_inval_range(bufs[i].va, frame_bytes);
    }
    cam_write(CAM_RING_SIZE, opt.buffers);
    cam_write(CAM_IRQ_STATUS, CAM_IRQ_STATUS_FRAME_DONE_MASK | CAM_IRQ_STATUS_BUS_ERROR_MASK |
                              CAM_IRQ_STATUS_OVERFLOW_MASK);
    if (gic_set_handler(cam.irq, camera_irq, 0) < 0 ||
        gic_enable_irq(cam.irq, GIC_PRIO_DEFAULT, 1, 0) < 0) {
        printf("capture: cannot enable interrupt %u in the GIC\n", cam.irq);
        return -1;
    }
    for (i = 0; i < opt.buffers && i < opt.frames; i++)
        hand_to_camera(i);
    cam_write(CAM_IRQ_ENABLE, CAM_IRQ_ENABLE_FRAME_DONE_MASK | CAM_IRQ_ENABLE_BUS_ERROR_MASK);
    cam_write(CAM_CTRL, CAM_CTRL_ENABLE_MASK);
    if (!(cam_read(CAM_STATUS) & CAM_STATUS_RUNNING_MASK)) {
        printf("capture: the camera refused to start\n");
        return -1;
    }
    return 0;
}

static void stop_camera(void)
{
    cam_write(CAM_CTRL, 0);
    cam_write(CAM_IRQ_ENABLE, 0);
    gic_disable_irq(cam.irq);
    cam_write(CAM_IRQ_STATUS, CAM_IRQ_STATUS_FRAME_DONE_MASK | CAM_IRQ_STATUS_BUS_ERROR_MASK |
                              CAM_IRQ_STATUS_OVERFLOW_MASK);
}

/*
 * Check the frame in slot n through its CPU virtual address, the way docs/camera.md defines
 * it. Returns 1 if good; *crc_out is the CRC-32 computed over the payload, why says what is
 * wrong otherwise.
 */
static int verify_frame(uint32_t slot, uint32_t seq, uint32_t *crc_out, char *why,
                        uint32_t why_size)
{
    const struct buffer *b = &bufs[slot];
    const uint8_t *frame = (const uint8_t *)(uintptr_t)b->va;
    const volatile uint32_t *hdr = (const volatile uint32_t *)(uintptr_t)b->va;
    uint32_t want_geo = formats[opt.format].code | opt.width << 4 | opt.height << 18;
    uint32_t crc, y;

    /* The camera wrote behind the caches: drop any stale lines before reading. */
    dcache_inval_range(b->va, frame_bytes);
    crc = crc32_update(0, frame + CAM_PATTERN_HEADER_SIZE, line_bytes - CAM_PATTERN_HEADER_SIZE);
    for (y = 1; y < opt.height; y++)
        crc = crc32_update(crc, frame + y * line_bytes, line_bytes);
    *crc_out = crc;
    if (hdr[0] != CAM_PATTERN_MAGIC) {
        snprintf(why, why_size, "no frame header: magic 0x%08x", hdr[0]);
        return 0;
    }
    if (hdr[1] != seq) {
        snprintf(why, why_size, "header says frame %u, SLOT_SEQ%u says %u", hdr[1], slot, seq);
        return 0;
    }
    if (hdr[3] != want_geo) {
        snprintf(why, why_size, "geometry word 0x%08x, expected 0x%08x", hdr[3], want_geo);
        return 0;
    }
    if (hdr[2] != crc) {
        snprintf(why, why_size, "payload CRC 0x%08x, header says 0x%08x", crc, hdr[2]);
        return 0;
    }
    return 1;
}

/* use-after-put: free a buffer the camera still owns (not `keep`), and carry on. */
static void put_while_in_use(uint32_t keep)
{
    uint32_t slot;

    for (slot = 0; slot < opt.buffers; slot++) {
        if (slot != keep && (hw_owned & (1u << slot)) && bufs[slot].allocated)
            break;
    }
    if (slot == opt.buffers) {
        printf("bug=use-after-put: no other buffer is in the camera's hands (buffers=1?); "
               "putting buffer %u after handing it back\n", keep);
        slot = keep;
    }
    printf("bug=use-after-put: CMA PUT of buffer %u (phys 0x%08x) while slot %u is still "
           "queued in the camera\n", slot, bufs[slot].phys, slot);
    put_buffer(slot);
}

int main(uintptr_t dtb_addr)
{
    const void *dtb = (const void *)dtb_addr;
    struct platform p;
    uint32_t verified = 0, bad = 0, errors = 0, dropped, slot, seq, crc, i;
    uint32_t last_seq = 0xffffffffu;
    int started = 0, running = 0, put_done = 0, ok, rc = FW_STATUS_FAIL;
    const char *why_fail = 0;
    char why[96], fail_buf[96];

    if (platform_init(dtb, &p) < 0)
        return FW_STATUS_FAIL;
    printf("capture: %s, RAM 0x%08llx+0x%llx\n", p.model, p.ram_base, p.ram_size);
    crc32_init();
    if (parse_bootargs(dtb) < 0) {
        printf("capture: FAIL (bad options)\n");
        return FW_STATUS_FAIL;
    }
    printf("capture: frames=%u width=%u height=%u format=%s buffers=%u timeout=%us bug=%s\n",
           opt.frames, opt.width, opt.height, formats[opt.format].name, opt.buffers,
           opt.timeout_s, bug_names[opt.bug]);
    if (find_camera(dtb) < 0) {
        printf("capture: FAIL (no camera)\n");
        return FW_STATUS_FAIL;
    }
    if (mmu_init((uint32_t)p.ram_base, (uint32_t)p.ram_size) < 0) {
        printf("capture: FAIL (RAM 0x%08llx+0x%llx cannot be mapped)\n", p.ram_base,
               p.ram_size);
        return FW_STATUS_FAIL;
    }
    mmu_enable();
    if (camera_reference() < 0 || cma_setup() < 0) {
        printf("capture: FAIL (CMA service)\n");
        return FW_STATUS_FAIL;
    }
    if (alloc_buffers() < 0) {
        why_fail = "buffer allocation";
        goto out;
    }
    if (start_timeout(&p) < 0) {
        why_fail = "no timer interrupt";
        goto out;
    }
    if (start_camera() < 0) {
        why_fail = "camera start";
        goto out;
    }
    running = 1;
    started = 1;
    irq_enable();
    while (verified + bad < opt.frames && !bus_error && !timed_out) {
        /*
         * Sleep with IRQs unmasked: the handlers run as soon as the core wakes. An interrupt
         * taken between this check and the WFI only delays the wake-up to the next one (the
         * next frame or the 100 Hz tick), never loses it.
         */
        if (q_tail == q_head && !bus_error && !timed_out)
            wfi();
        while (q_tail != q_head) {
            /* Every frame still needed is captured: stop before the camera runs dry. */
            if (running && !hw_owned && verified + bad + (q_head - q_tail) >= opt.frames) {
                cam_write(CAM_CTRL, 0);
                running = 0;
            }
            slot = q_slot[q_tail % QUEUE_LEN];
            seq = q_seq[q_tail % QUEUE_LEN];
            q_tail++;
            ok = verify_frame(slot, seq, &crc, why, sizeof(why));
            if (ok && last_seq != 0xffffffffu && seq <= last_seq) {
                snprintf(why, sizeof(why), "frame %u after frame %u", seq, last_seq);
                ok = 0;
            }
            printf("frame %u slot %u bus 0x%08x phys 0x%08x va 0x%08x crc 0x%08x ", seq, slot,
                   bufs[slot].programmed, bufs[slot].phys, bufs[slot].va, crc);
            if (ok) {
                printf("ok\n");
                verified++;
            } else {
                printf("BAD (%s)\n", why);
                bad++;
            }
            last_seq = seq;
            /* Hand the slot back only while more frames are needed than are on their way. */
            if (running && verified + bad + (q_head - q_tail) + popcount(hw_owned) < opt.frames)
                hand_to_camera(slot);
            if (opt.bug == BUG_USE_AFTER_PUT && verified == 1 && !put_done) {
                put_while_in_use(slot);
                put_done = 1;
            }
        }
    }
    irq_disable();
out:
    dropped = started ? cam_read(CAM_DROP_COUNT) : 0;
    if (started)
        stop_camera();
    timer_tick_stop();
    if (bus_error) {
        printf("bus error at bus 0x%08x slot %u\n", error_addr, error_slot);
        errors++;
    }
    for (i = 0; i < opt.buffers; i++) {
        if (bufs[i].allocated && put_buffer(i) < 0)
            errors++;
    }
    errors += bad;
    printf("capture: %u frames verified, %u dropped, %u errors\n", verified, dropped, errors);
    if (!why_fail) {
        if (bus_error) {
            snprintf(fail_buf, sizeof(fail_buf), "bus error at bus 0x%08x", error_addr);
            why_fail = fail_buf;
            rc = CAPTURE_STATUS_BUS_ERROR;
        } else if (bad) {
            snprintf(fail_buf, sizeof(fail_buf), "%u bad frame(s)", bad);
            why_fail = fail_buf;
        } else if (timed_out) {
            snprintf(fail_buf, sizeof(fail_buf), "timeout after %u s with %u of %u frames",
                     opt.timeout_s, verified, opt.frames);
            why_fail = fail_buf;
        } else if (errors) {
            why_fail = "CMA PUT failed";
        } else if (verified < opt.frames) {
            why_fail = "too few frames";
        }
    }
    if (why_fail) {
        printf("capture: FAIL (%s)\n", why_fail);
        return rc;
    }
    printf("capture: PASS\n");
    return FW_STATUS_PASS;
}
