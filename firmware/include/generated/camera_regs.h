/* CAM registers: generated from emu.devices.dma.camera.CameraDma by emu.devices.header. */
/* Do not edit: regenerate instead. */
#ifndef CAM_REGS_H
#define CAM_REGS_H

#define CAM_MMIO_SIZE                           0x1000

/* ID: identification, reads 0x31434D43 (R) */
#define CAM_ID                                  0x000

/* VERSION: major << 16 | minor (R) */
#define CAM_VERSION                             0x004

/* CTRL: control (RW) */
#define CAM_CTRL                                0x008
#define CAM_CTRL_ENABLE_SHIFT                   0
#define CAM_CTRL_ENABLE_MASK                    0x00000001u
#define CAM_CTRL_RESET_SHIFT                    31
#define CAM_CTRL_RESET_MASK                     0x80000000u

/* STATUS: status (R) */
#define CAM_STATUS                              0x00c
#define CAM_STATUS_RUNNING_SHIFT                0
#define CAM_STATUS_RUNNING_MASK                 0x00000001u
#define CAM_STATUS_NEXT_SLOT_SHIFT              8
#define CAM_STATUS_NEXT_SLOT_MASK               0x00000700u

/* WIDTH: frame width in pixels (2..4096, even) (RW) */
#define CAM_WIDTH                               0x010

/* HEIGHT: frame height in lines (1..4096) (RW) */
#define CAM_HEIGHT                              0x014

/* FORMAT: pixel format: 0 RGB565, 1 RGB888, 2 YUYV, 3 XRGB8888 (RW) */
#define CAM_FORMAT                              0x018

/* STRIDE: bytes from one line to the next; 0 means width * bytes per pixel (RW) */
#define CAM_STRIDE                              0x01c

/* FRAME_INTERVAL: microseconds of virtual time between frames (30 fps by default) (RW) */
#define CAM_FRAME_INTERVAL                      0x020

/* RING_SIZE: number of ring slots in use (1..8) (RW) */
#define CAM_RING_SIZE                           0x024

/* BUF_READY: bit n set: slot n belongs to the hardware; cleared when its frame is done (W1S) */
#define CAM_BUF_READY                           0x030

/* FRAME_COUNT: frames completed since reset (R) */
#define CAM_FRAME_COUNT                         0x034

/* DROP_COUNT: frames dropped for want of a ready slot (R) */
#define CAM_DROP_COUNT                          0x038

/* LAST_SLOT: slot of the last completed frame (0xFFFFFFFF: none yet) (R) */
#define CAM_LAST_SLOT                           0x03c

/* BUF_ADDR: bus address (dma_addr_t) of slot n's buffer (RW) */
#define CAM_BUF_ADDR                            0x040
#define CAM_BUF_ADDR_COUNT                      8
#define CAM_BUF_ADDR_STRIDE                     4

/* IRQ_STATUS: interrupt status, write 1 to clear (W1C) */
#define CAM_IRQ_STATUS                          0x060
#define CAM_IRQ_STATUS_FRAME_DONE_SHIFT         0
#define CAM_IRQ_STATUS_FRAME_DONE_MASK          0x00000001u
#define CAM_IRQ_STATUS_BUS_ERROR_SHIFT          1
#define CAM_IRQ_STATUS_BUS_ERROR_MASK           0x00000002u
#define CAM_IRQ_STATUS_OVERFLOW_SHIFT           2
#define CAM_IRQ_STATUS_OVERFLOW_MASK            0x00000004u

/* IRQ_ENABLE: interrupt enable (RW) */
#define CAM_IRQ_ENABLE                          0x064
#define CAM_IRQ_ENABLE_FRAME_DONE_SHIFT         0
#define CAM_IRQ_ENABLE_FRAME_DONE_MASK          0x00000001u
#define CAM_IRQ_ENABLE_BUS_ERROR_SHIFT          1
#define CAM_IRQ_ENABLE_BUS_ERROR_MASK           0x00000002u
#define CAM_IRQ_ENABLE_OVERFLOW_SHIFT           2
#define CAM_IRQ_ENABLE_OVERFLOW_MASK            0x00000004u

/* ERROR_ADDR: the bus address of the refused write (R) */
#define CAM_ERROR_ADDR                          0x068

/* ERROR_SLOT: slot of the aborted frame (R) */
#define CAM_ERROR_SLOT                          0x06c

/* SLOT_SEQ: sequence number of the frame last written into slot n (R) */
#define CAM_SLOT_SEQ                            0x080
#define CAM_SLOT_SEQ_COUNT                      8
#define CAM_SLOT_SEQ_STRIDE                     4

#endif /* CAM_REGS_H */
