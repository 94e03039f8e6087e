"""PSCI 1.0 for a single-CPU machine, over SMCCC (HVC or SMC).

| function            | ID (SMC32)  | result                                              |
|---------------------|-------------|-----------------------------------------------------|
| PSCI_VERSION        | 0x84000000  | 0x00010000 (1.0)                                    |
| CPU_SUSPEND         | 0x84000001  | SUCCESS at once (as if woken immediately)           |
| CPU_OFF             | 0x84000002  | the only CPU going off ends the run ("poweroff")    |
| CPU_ON              | 0x84000003  | NOT_SUPPORTED: one CPU                              |
| AFFINITY_INFO       | 0x84000004  | 0 (ON) for CPU 0 at level 0, INVALID_PARAMETERS     |
| MIGRATE_INFO_TYPE   | 0x84000006  | 2: no trusted OS, nothing to migrate                |
| SYSTEM_OFF          | 0x84000008  | ends the run ("poweroff"); exit status from r1      |
| SYSTEM_RESET        | 0x84000009  | ends the run ("reset")                              |
| PSCI_FEATURES       | 0x8400000A  | 0 for an implemented ID, NOT_SUPPORTED otherwise    |

SYSTEM_OFF takes no argument in the PSCI specification; our own firmware puts
an exit status in r1, and the run's exit status is ``r1 & 0xff`` (other guests
leave r1 as it happens to be; see docs/machine.md). The 64-bit (SMC64) IDs
0xC4... of CPU_SUSPEND, CPU_ON and AFFINITY_INFO are answered like their 32-bit forms.
"""

from __future__ import annotations

from collections.abc import Callable

from emu.services.smccc import NOT_SUPPORTED, Call, Result, SmcccDispatcher

PSCI_VERSION = 0x8400_0000
CPU_SUSPEND = 0x8400_0001
CPU_OFF = 0x8400_0002
CPU_ON = 0x8400_0003
AFFINITY_INFO = 0x8400_0004
MIGRATE = 0x8400_0005
MIGRATE_INFO_TYPE = 0x8400_0006
MIGRATE_INFO_UP_CPU = 0x8400_0007
SYSTEM_OFF = 0x8400_0008
SYSTEM_RESET = 0x8400_0009
PSCI_FEATURES = 0x8400_000A

SUCCESS = 0
INVALID_PARAMETERS = -2
VERSION_1_0 = 0x0001_0000
MIGRATE_TYPE_NONE = 2

IMPLEMENTED = frozenset({PSCI_VERSION, CPU_SUSPEND, CPU_OFF, AFFINITY_INFO, MIGRATE_INFO_TYPE,
                         SYSTEM_OFF, SYSTEM_RESET, PSCI_FEATURES})

StopRequest = Callable[[str, int | None], None]
"""``(reason, exit_status)``: asks the machine to end the run after this call."""


class Psci:
    """PSCI 1.0 function handlers for one CPU."""

    def __init__(self, request_stop: StopRequest, on_suspend: Callable[[], None] | None = None,
                 ) -> None:
        self.request_stop = request_stop
        self.on_suspend = on_suspend

    def register(self, dispatcher: SmcccDispatcher) -> None:
        dispatcher.register((0x8400_0000, 0x8400_001F), self.handle, "PSCI")
        dispatcher.register((0xC400_0000, 0xC400_001F), self.handle, "PSCI64")

    def handle(self, call: Call) -> Result:
        fid = call.fid & ~0x4000_0000  # SMC64 forms behave like the SMC32 ones
        if fid == PSCI_VERSION:
            return [VERSION_1_0]
        if fid == PSCI_FEATURES:
            queried = call.args[0] & 0xFFFF_FFFF
            return [SUCCESS if (queried & ~0x4000_0000) in IMPLEMENTED else NOT_SUPPORTED]
        if fid == SYSTEM_OFF:
            self.request_stop("poweroff", call.args[0] & 0xFF)
            return [SUCCESS]
        if fid == SYSTEM_RESET:
            self.request_stop("reset", None)
            return [SUCCESS]
        if fid == CPU_OFF:
            self.request_stop("poweroff", None)
            return [SUCCESS]
        if fid == CPU_SUSPEND:
            if self.on_suspend is not None:
                self.on_suspend()
            return [SUCCESS]
        if fid == AFFINITY_INFO:  # r1 target MPIDR, r2 lowest affinity level (only 0 here)
            ok = call.args[0] & 0xFF_FFFF == 0 and call.args[1] == 0
            return [0 if ok else INVALID_PARAMETERS]
        if fid == MIGRATE_INFO_TYPE:
            return [MIGRATE_TYPE_NONE]
        return [NOT_SUPPORTED]
