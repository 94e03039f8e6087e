/*
 * Exit statuses passed in r1 of PSCI SYSTEM_OFF (the harness reports them; QEMU ignores them).
 */
#ifndef FW_STATUS_H
#define FW_STATUS_H

#define FW_STATUS_PASS            0   /* main() returned 0 */
#define FW_STATUS_FAIL            1   /* a program's own check failed */
#define FW_STATUS_PANIC           2   /* the library hit an impossible state (panic()) */
#define FW_STATUS_EXCEPTION_BASE  16  /* + EXC_* kind: unhandled exception */

#endif /* FW_STATUS_H */
