/* Camera test pattern: generated from emu.devices.dma.testpattern by emu.headers. */
/* Do not edit: regenerate with scripts/gen-headers. See docs/camera.md. */
#ifndef CAM_PATTERN_H
#define CAM_PATTERN_H

#define CAM_PATTERN_MAGIC                       0x464d4143u
#define CAM_PATTERN_HEADER_SIZE                 16
#define CAM_FORMAT_RGB565                       0
#define CAM_FORMAT_RGB565_BPP                   2
#define CAM_FORMAT_RGB888                       1
#define CAM_FORMAT_RGB888_BPP                   3
#define CAM_FORMAT_YUYV                         2
#define CAM_FORMAT_YUYV_BPP                     2
#define CAM_FORMAT_XRGB8888                     3
#define CAM_FORMAT_XRGB8888_BPP                 4

#endif /* CAM_PATTERN_H */
