"""Every benchmark in one run, each against its own baseline, with the targets side by side.

Runs the benchmark modules as child processes with ``--json`` (each measures its own
baseline in the same run: bare Unicorn, a bare ``mmio_map`` callback, ``uc.mem_write``,
``qemu-system-arm``, the ``bf`` allocator ...), then prints one Markdown table: what is
measured, the harness's number, the baseline's, the ratio, the target and whether it is
met, headed by the machine and the date. ``--out DIR`` also keeps every child's JSON and the
table (``summary.md``, ``report.json``).

``scripts/bench [--quick] [--linux] [--suite] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emu.atomic import write_atomic

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Row:
    """One line of the summary."""

    what: str
    harness: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: no target, or not measured


def _child(module: str, *args: str) -> dict[str, Any] | None:
    cmd = [sys.executable, "-m", module, *args, "--json"]
    print(f"$ {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    text = proc.stdout
    start = text.find("{")
    try:
        data: dict[str, Any] = json.loads(text[start:])
    except ValueError:
        print(f"{module}: no JSON in its output", file=sys.stderr)
        return None
    return data


def _x(v: float) -> str:
    return f"{v:.2f}x"


def cpu_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for w in r["rows"]:
        rows.append(Row(f"guest CPU, {w['workload']} ({w['instructions'] / 1e6:.0f} M instr.)",
                        f"{w['machine_mips']:.0f} MIPS", f"{w['bare_mips']:.0f} MIPS bare "
                        f"Unicorn ({_x(w['counted_ratio'])} with count=)",
                        _x(w["ratio"]), "≤ 1.25x", w["ratio"] <= 1.25))
    return rows


def io_rows(r: dict[str, Any]) -> list[Row]:
    mm, irq = r["mmio"], r["irq"]
    return [
        Row("MMIO access through the bus (PL011 IBRD ldr/str)", f"{mm['machine_us']:.2f} µs",
            f"{mm['bare_us']:.2f} µs bare mmio_map", _x(mm["ratio"]), "≤ 2x",
            mm["ratio"] <= mm["target_ratio"]),
        Row("timer interrupt delivery (WFI to handler end)", f"{irq['us_per_irq']:.1f} µs",
            "-", "-", "< 20 µs", irq["us_per_irq"] < irq["target_us"]),
    ]


def capture_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for c in r["rows"]:
        target = "≥ 30 fps" if c["height"] >= 720 else ""
        rows.append(Row(f"capture + verify {c['width']}x{c['height']} (firmware)",
                        f"{c['fps']:.1f} fps, {c['mb_per_s']:.0f} MB/s",
                        f"{c['guest_memcpy_mb_s']:.0f} MB/s bare guest memcpy",
                        _x(c["vs_guest_memcpy"]), target,
                        c["fps"] >= 30 if target else None))
    return rows


def dma_rows(r: dict[str, Any]) -> list[Row]:
    return [Row(f"camera DMA delivery {d['width']}x{d['height']} {d['format']}",
                f"{d['camera_gb_s']:.2f} GB/s", f"{d['baseline_gb_s']:.2f} GB/s bare mem_write",
                _x(d["ratio"]), "≥ 0.5x", d["ratio"] >= 0.5) for d in r["rows"]]


def cma_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for a in r["results"]:
        rows.append(Row(f"CMA allocator {a['spec']}: fragmenting workload",
                        f"success {a['success_rate']:.4f}, fragmentation "
                        f"{a['mean_ext_frag']:.3f}, {a['allocs_per_s'] / 1e3:.0f} k allocs/s",
                        "bf in the same run", _x(a["ratio_to_baseline"]), "reported", None))
    return rows


def cma_pairs_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    target = r.get("target_pairs_per_s", 200_000)
    for a in r["results"]:
        default = a["spec"] == "bf"
        rows.append(Row(f"CMA alloc/put pairs, 1,000 live chunks, {a['spec']}",
                        f"{a['pairs_per_s'] / 1e3:.0f} k pairs/s",
                        f"{a['bare_pairs_per_s'] / 1e3:.0f} k bare allocator, "
                        f"{r['dict_pairs_per_s'] / 1e6:.1f} M dict",
                        _x(a["pairs_per_s"] / a["bare_pairs_per_s"]),
                        f"≥ {target / 1e3:.0f} k (default allocator)" if default else "",
                        a["pairs_per_s"] >= target if default else None))
    return rows


def suite_rows(seconds: float, ok: bool) -> list[Row]:
    return [Row("test suite without external images", f"{seconds:.0f} s", "-", "-",
                "< 120 s", ok and seconds < 120)]


def linux_rows(r: dict[str, Any]) -> list[Row]:
    runs = {t["name"]: t for t in r["runs"]}
    emu = runs.get("emu --host-decompress")
    qemu = runs.get("qemu-system-arm")
    if emu is None or qemu is None:
        return []
    rows = []
    for phase, limit, label in (("first_line", 1.0, "< 1x"), ("shell", 2.0, "≤ 2x")):
        a, b = emu.get(phase), qemu.get(phase)
        if a is None or b is None:
            continue
        rows.append(Row(f"Linux to {phase.replace('_', ' ')} (host decompression)",
                        f"{a:.2f} s", f"{b:.2f} s qemu-system-arm", _x(a / b), label,
                        a / b < limit if phase == "first_line" else a / b <= limit))
    return rows


def _machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import PackageNotFoundError, version
    try:
        uc_version = version("unicorn")
    except PackageNotFoundError:
        uc_version = "?"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.node() or 'host'}: {cpu or platform.machine()}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}, Unicorn {uc_version}, load {load:.1f} at start")


def render(rows: Sequence[Row], header: str) -> str:
    out = [header, "", "| what | harness | baseline (same run) | ratio | target | met |",
           "|---|---:|---:|---:|---|---|"]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        out.append(f"| {r.what} | {r.harness} | {r.baseline} | {r.ratio} | {r.target} | {met} |")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    ap.add_argument("--linux", action="store_true",
                    help="also boot Linux against qemu-system-arm (a few minutes)")
    ap.add_argument("--suite", action="store_true",
                    help="also time the test suite without external images")
    ap.add_argument("--out", type=Path, help="directory for every JSON report and summary.md")
    args = ap.parse_args(argv)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"Measured {started} on {_machine()}."
    quick = args.quick
    plan: list[tuple[str, Callable[[dict[str, Any]], list[Row]], list[str]]] = [
        ("emu.benchmarks.cpu", cpu_rows, ["--repeat", "1" if quick else "3"]),
        ("emu.benchmarks.io", io_rows, ["--repeat", "1" if quick else "3"]
         + (["--accesses", "20000", "--interrupts", "2000"] if quick else [])),
        ("emu.benchmarks.capture", capture_rows, ["--frames", "8" if quick else "32"]),
        ("emu.benchmarks.dma", dma_rows, ["--frames", "4" if quick else "32"]),
        ("cma.bench", cma_rows, ["--allocs", "2000" if quick else "20000"]),
        ("cma.bench_pairs", cma_pairs_rows, ["--seconds", "0.2" if quick else "1"]),
    ]
    if args.linux:
        plan.append(("emu.benchmarks.linux", linux_rows, ["--no-zimage"]))
    rows: list[Row] = []
    reports: dict[str, Any] = {}
    for module, to_rows, extra in plan:
        if not (ROOT / (module.replace(".", "/") + ".py")).exists():
            continue
        data = _child(module, *extra)
        reports[module] = data
        if data is None:
            rows.append(Row(module, "failed", "-", "-", "-", False))
            continue
        try:
            rows.extend(to_rows(data))
        except (KeyError, TypeError, ValueError) as exc:
            rows.append(Row(module, f"unreadable report ({exc})", "-", "-", "-", False))
    if args.suite:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "not images",
                               "-p", "no:cacheprovider"], cwd=ROOT, check=False,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        reports["suite"] = {"seconds": seconds, "returncode": proc.returncode,
                            "tail": proc.stdout.strip().splitlines()[-1:]}
        rows.extend(suite_rows(seconds, proc.returncode == 0))
    text = render(rows, header)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out / "summary.md", text)
        write_atomic(args.out / "report.json", json.dumps(
            {"schema": "bench-suite/1", "started": started, "machine": _machine(),
             "reports": reports, "rows": [r.__dict__ for r in rows]}, indent=2) + "\n")
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
