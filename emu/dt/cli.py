"""``emu dt``: look at a board's device tree as the machine and Linux read it.

``emu dt map BOARD [--json] [--all]`` lists every device with its CPU-visible register
windows and its DMA view; ``emu dt dump BOARD [--dtb OUT]`` prints the tree as DTS (or
writes the compiled blob). The JSON schema is documented in ``docs/devicetree.md``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from emu.boards import BOARDS, load_board
from emu.dt.address import cpu_reg_windows
from emu.dt.dmamap import DmaMap, dma_map_for
from emu.dt.tree import DeviceTree, Node
from emu.errors import DeviceTreeError

#: identifies the JSON layout of ``emu dt map --json``; bumped on incompatible changes
MAP_SCHEMA = "emu.dt.map/1"


def register(subparsers: Any) -> None:
    """Add ``dt map`` and ``dt dump`` to the ``emu`` command."""
    boards = ", ".join(BOARDS)
    dt = subparsers.add_parser("dt", help="inspect a board's device tree")
    sub = dt.add_subparsers(dest="dt_command", metavar="ACTION", required=True)

    map_parser = sub.add_parser("map", help="CPU register windows and DMA views of every device")
    map_parser.add_argument("board", metavar="BOARD", help=f"{boards}, or a .dts/.dtb file")
    map_parser.add_argument("--json", action="store_true", help="print JSON (schema in docs)")
    map_parser.add_argument("--all", action="store_true", help="include disabled nodes")
    map_parser.set_defaults(func=cmd_map)

    dump_parser = sub.add_parser("dump", help="print the board's device tree as DTS")
    dump_parser.add_argument("board", metavar="BOARD", help=f"{boards}, or a .dts/.dtb file")
    dump_parser.add_argument("--dtb", metavar="OUT", help="write the compiled blob to OUT")
    dump_parser.set_defaults(func=cmd_dump)


def cmd_dump(args: argparse.Namespace) -> int:
    tree = load_board(args.board)
    if args.dtb:
        tree.save(args.dtb)
        print(f"wrote {args.dtb}", file=args.stdout)
    else:
        args.stdout.write(tree.to_dts())
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    tree = load_board(args.board)
    report = device_map(tree, include_disabled=args.all)
    report["board"] = args.board
    if args.json:
        json.dump(report, args.stdout, indent=2)
        args.stdout.write("\n")
    else:
        _print_table(report, args.stdout)
    return 0


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _available(node: Node) -> bool:
    return node.is_enabled and all(a.is_enabled for a in node.ancestors())


def _can_master(node: Node) -> bool:
    """Whether Linux would configure DMA for this node (it becomes a platform device).

    Memory, CPUs and reserved-memory pools never master the bus, and neither do
    nodes on a bus the CPU cannot address (I2C or SPI clients).
    """
    if node.props.get("device_type") in (b"memory\0", b"cpu\0"):
        return False
    return all(a.name not in ("cpus", "reserved-memory") for a in node.ancestors())


def device_entry(tree: DeviceTree, node: Node) -> dict[str, Any] | None:
    """One ``devices[]`` element of the JSON report, or None when there is nothing to say."""
    reg: list[dict[str, Any]] = []
    reg_error = None
    try:
        windows = cpu_reg_windows(node)
        reg = [
            {"cpu_start": a, "size": s, "cpu_start_hex": _hex(a), "size_hex": _hex(s)}
            for a, s in windows
        ]
    except DeviceTreeError as exc:
        reg_error = str(exc)
    master = _can_master(node) and reg_error is None
    dma: dict[str, Any]
    if not master:
        dma = {"kind": "none"}
    else:
        try:
            dma = _dma_entry(dma_map_for(tree, node))
        except DeviceTreeError as exc:
            dma = {"kind": "error", "problem": str(exc)}
    if "reg" not in node.props and (not node.compatible or dma["kind"] in ("none", "identity")):
        return None
    return {
        "path": node.path,
        "compatible": node.compatible,
        "enabled": node.is_enabled,
        "reg": reg,
        "reg_error": reg_error,
        "dma": dma,
    }


def _dma_entry(view: DmaMap) -> dict[str, Any]:
    windows = [
        {
            "dma_start": w.dma_start,
            "cpu_start": w.cpu_start,
            "size": w.size,
            "dma_start_hex": _hex(w.dma_start),
            "cpu_start_hex": _hex(w.cpu_start),
            "size_hex": _hex(w.size),
        }
        for w in view.windows or ()
    ]
    return {
        "kind": "identity" if view.identity else "windows",
        "windows": windows,
        "source": view.source,
        "dma_parent": view.dma_parent,
        "bus_dma_limit": view.bus_dma_limit,
        "bus_dma_limit_hex": _hex(view.bus_dma_limit),
        "dma_mask": view.dma_mask,
        "dma_mask_hex": _hex(view.dma_mask),
        "coherent": view.coherent,
        "problem": view.problem,
    }


def device_map(tree: DeviceTree, include_disabled: bool = False) -> dict[str, Any]:
    """The whole ``emu dt map --json`` document for ``tree`` (without ``board``)."""
    devices = []
    for node in tree.iter_nodes():
        if node.parent is None or not (include_disabled or _available(node)):
            continue
        entry = device_entry(tree, node)
        if entry is not None:
            devices.append(entry)
    model = tree.root.get_string("model") if "model" in tree.root.props else None
    return {"schema": MAP_SCHEMA, "source": tree.source, "model": model, "devices": devices}


def _print_table(report: dict[str, Any], out: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['board']}: {report['model'] or report['source']}")
    table.add_column("device")
    table.add_column("compatible")
    table.add_column("registers (CPU)")
    table.add_column("DMA view: bus -> physical, size")
    for entry in report["devices"]:
        if entry["reg_error"]:
            regs = "not CPU-visible"
        else:
            regs = "\n".join(f"{r['cpu_start_hex']} +{r['size_hex']}" for r in entry["reg"])
        dma = entry["dma"]
        if dma["kind"] == "windows":
            view = "\n".join(
                f"{w['dma_start_hex']} -> {w['cpu_start_hex']}, {w['size_hex']}"
                for w in dma["windows"]
            )
        else:
            view = dma["kind"]
        if dma.get("coherent"):
            view += " (coherent)"
        if dma.get("problem"):
            view += f"\n! {dma['problem']}"
        name = entry["path"] + ("" if entry["enabled"] else " (disabled)")
        table.add_row(name, ", ".join(entry["compatible"][:1]), regs, view)
    Console(file=out, width=None if out.isatty() else 200, highlight=False).print(table)
