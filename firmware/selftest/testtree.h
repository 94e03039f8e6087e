/* The walker test tree (selftest/testtree.dts), linked in by testtree.S. */
#ifndef SELFTEST_TESTTREE_H
#define SELFTEST_TESTTREE_H

#include <stdint.h>

extern const uint8_t testtree_dtb[];

#endif
