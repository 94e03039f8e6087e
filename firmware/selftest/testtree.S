/* The compiled selftest/testtree.dts, embedded read-only and 8-byte aligned. */
    .section .rodata.testtree, "a"
    .balign 8
    .global testtree_dtb
testtree_dtb:
    .incbin "testtree.dtb"
    .size testtree_dtb, . - testtree_dtb
