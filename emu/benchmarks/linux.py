"""Linux boot wall time: the machine against QEMU on the same kernel and initramfs.

Three runs of Debian's armmp kernel with the busybox initramfs on board ``virt``,
each timed from the start of the run (images loaded, for the machine also the
host-side decompression) to three points of the console:

* ``first line``: the first byte the guest prints;
* ``shell``: the shell's prompt after the initramfs marker;
* ``poweroff``: ``poweroff -f`` typed at the prompt has ended the run (PSCI
  SYSTEM_OFF for the machine, QEMU's process exit with ``-no-reboot``).

Runs: the machine with ``--host-decompress``, the machine running the zImage's own
decompressor, and ``qemu-system-arm -M virt -cpu cortex-a15 -m 128M -nographic``
(TCG), measured in the same invocation. Ratios are machine time over QEMU time.

``python -m emu.benchmarks.linux [--append TEXT] [--images DIR] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from emu.loaders.initramfs import READY_MARKER
from emu.machine import Machine

PROMPT = "# "
DEFAULT_APPEND = "console=ttyAMA0 earlycon=pl011,0x9000000"
PHASES = ("first_line", "shell", "poweroff")


@dataclass
class Timing:
    """Wall seconds from the start of one run to each phase (None: never reached)."""

    name: str
    first_line: float | None = None
    shell: float | None = None
    poweroff: float | None = None
    note: str = ""


class _Watch:
    """Follows console bytes and stamps the phases as they appear."""

    def __init__(self, timing: Timing, t0: float) -> None:
        self.timing = timing
        self.t0 = t0
        self.text = bytearray()

    def feed(self, data: bytes) -> None:
        now = time.perf_counter() - self.t0
        if data and self.timing.first_line is None:
            self.timing.first_line = now
        self.text += data
        if self.timing.shell is None:
            ready = self.text.find(READY_MARKER.encode())
            if ready >= 0 and self.text.find(PROMPT.encode(), ready) >= 0:
                self.timing.shell = now


def time_machine(kernel: Path, initrd: Path, append: str, host_decompress: bool,
                 max_seconds: float = 600.0) -> Timing:
    """Boot on our machine, type ``poweroff -f`` at the prompt, time the phases."""
    timing = Timing("emu --host-decompress" if host_decompress else "emu (zImage)")
    t0 = time.perf_counter()
    watch = _Watch(timing, t0)
    m = Machine("virt", console=watch.feed)
    m.load_kernel(kernel, host_decompress=host_decompress, initrd=initrd, append=append)
    m.send("poweroff -f\r", after=PROMPT)
    result = m.run(max_seconds=max_seconds)
    if result.reason == "poweroff":
        timing.poweroff = time.perf_counter() - t0
    timing.note = (f"{result.reason}; {result.instructions / 1e6:.0f} M instructions, "
                   f"{result.virtual_seconds:.2f} s virtual")
    return timing


def time_qemu(kernel: Path, initrd: Path, append: str, qemu: str,
              max_seconds: float = 300.0) -> Timing:
    """The same boot under ``qemu-system-arm -M virt`` (TCG), read through a pipe."""
    timing = Timing("qemu-system-arm")
    cmd = [qemu, "-M", "virt", "-cpu", "cortex-a15", "-m", "128M", "-kernel", str(kernel),
           "-initrd", str(initrd), "-append", append, "-nographic", "-no-reboot"]
    t0 = time.perf_counter()
    watch = _Watch(timing, t0)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    typed = False
    try:
        while time.perf_counter() - t0 < max_seconds:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    break
                watch.feed(data)
            if timing.shell is not None and not typed:
                proc.stdin.write(b"poweroff -f\r")
                proc.stdin.flush()
                typed = True
            if proc.poll() is not None and not ready:
                break
        if proc.wait(timeout=max(0.1, max_seconds - (time.perf_counter() - t0))) == 0 \
                and typed:
            timing.poweroff = time.perf_counter() - t0
        timing.note = f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        timing.note = "timed out"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return timing


def _fmt(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def report(timings: Sequence[Timing], baseline: Timing | None) -> str:
    """A Markdown table: one row per phase, one column per run, then the ratios."""
    runs = [t for t in timings if t is not baseline]
    head = ["phase", *(t.name for t in runs)]
    if baseline is not None:
        head += [baseline.name, *(f"{t.name} / qemu" for t in runs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for phase in PHASES:
        row = [phase.replace("_", " "), *(_fmt(getattr(t, phase)) for t in runs)]
        if baseline is not None:
            base = getattr(baseline, phase)
            row += [_fmt(base), *(_ratio(getattr(t, phase), base) for t in runs)]
        lines.append("| " + " | ".join(row) + " |")
    lines += [f"- {t.name}: {t.note}" for t in timings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser(prog="bench-linux", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=Path,
                   default=Path(os.environ.get("EMU_IMAGES", root / ".cache" / "images")))
    p.add_argument("--append", default=DEFAULT_APPEND, help="kernel command line")
    p.add_argument("--no-zimage", action="store_true",
                   help="skip the run with the emulated decompressor")
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    args = p.parse_args(argv)
    kernel, initrd = args.images / "vmlinuz", args.images / "initramfs.cpio.gz"
    for path in (kernel, initrd):
        if not path.exists():
            print(f"bench-linux: {path} is absent; run scripts/fetch-images", file=sys.stderr)
            return 2
    timings = [time_machine(kernel, initrd, args.append, host_decompress=True)]
    if not args.no_zimage:
        timings.append(time_machine(kernel, initrd, args.append, host_decompress=False))
    qemu = shutil.which("qemu-system-arm")
    baseline = time_qemu(kernel, initrd, args.append, qemu) if qemu else None
    if baseline is not None:
        timings.append(baseline)
    if args.json:
        print(json.dumps({"schema": 1, "append": args.append,
                          "runs": [asdict(t) for t in timings]}, indent=2))
    else:
        print(f"kernel command line: {args.append}")
        print(report(timings, baseline))
        if baseline is None:
            print("qemu-system-arm is not installed: no baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
