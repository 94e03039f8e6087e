"""An in-memory, editable device tree read from and written to flattened (DTB) form.

Reading and writing go through ``libfdt`` (the library U-Boot and Linux use), and
``.dts`` sources are compiled by ``dtc``: nothing here parses DTS text. The tree keeps
property values as raw big-endian bytes, exactly as they are in the blob, and offers
typed accessors on top (cells, strings, ``reg`` pairs) that raise
:class:`~emu.errors.DeviceTreeError` naming the node and the bad value.

Cell counts follow the Devicetree Specification: a node's ``reg`` is read with its
*parent's* ``#address-cells``/``#size-cells``; a node without them gives its children
the defaults 2 and 1 (they are not inherited from further up).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import libfdt

from cma.devicetree import dtb_problem
from emu.atomic import write_atomic
from emu.errors import DeviceTreeError

#: first word of every flattened device tree
FDT_MAGIC = 0xD00DFEED
#: ``#address-cells`` / ``#size-cells`` a bus node gives its children when it says nothing
DEFAULT_ADDRESS_CELLS = 2
DEFAULT_SIZE_CELLS = 1
#: the biggest phandle value the format allows (0 and 0xffffffff are reserved)
MAX_PHANDLE = 0xFFFFFFFE
#: the most cells an address or a size may have (Linux's ``OF_MAX_ADDR_CELLS``)
MAX_CELLS = 4
#: the deepest node nesting read from a blob (Linux's ``FDT_MAX_DEPTH`` in drivers/of/fdt.c)
MAX_DEPTH = 64

#: what :meth:`Node.set_prop` accepts: raw bytes, a string, a list of strings,
#: one 32-bit cell, a list of cells, or True for an empty (boolean) property
PropValue = bytes | str | int | bool | Sequence[int] | Sequence[str]


def encode_cells(values: Sequence[int], cells: int = 1) -> bytes:
    """Encode ``values`` as big-endian numbers of ``cells`` 32-bit cells each."""
    out = bytearray()
    for value in values:
        if value < 0 or value >= 1 << (32 * cells):
            raise DeviceTreeError(f"value {value:#x} does not fit in {cells} cell(s)")
        out += value.to_bytes(4 * cells, "big")
    return bytes(out)


def decode_number(data: bytes) -> int:
    """A big-endian number of any number of cells (``of_read_number``)."""
    return int.from_bytes(data, "big")


def encode_value(value: PropValue) -> bytes:
    """The raw bytes of a property value given in one of the :data:`PropValue` forms."""
    if isinstance(value, bool):
        if not value:
            raise DeviceTreeError("a boolean property is set with True; remove it instead")
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode() + b"\0"
    if isinstance(value, int):
        return encode_cells([value])
    strings = [item for item in value if isinstance(item, str)]
    numbers = [item for item in value if isinstance(item, int)]
    if strings and len(strings) == len(value):
        return b"".join(item.encode() + b"\0" for item in strings)
    if len(numbers) == len(value):
        return encode_cells(numbers)
    raise DeviceTreeError(f"cannot encode property value {value!r}")


def _decode_strings(data: bytes) -> list[str] | None:
    """The NUL-terminated strings in ``data``, or None when it is not a string list."""
    if not data or not data.endswith(b"\0"):
        return None
    try:
        return data[:-1].decode("utf-8").split("\0")
    except UnicodeDecodeError:
        return None


class Node:
    """One device-tree node: its name, properties (raw bytes) and children, in order."""

    def __init__(self, name: str, parent: Node | None = None) -> None:
        self.name = name
        self.parent = parent
        self.children: list[Node] = []
        self.props: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"Node({self.path!r})"

    # -- identity ---------------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The full path, ``/`` for the root."""
        if self.parent is None:
            return "/"
        parent = self.parent.path
        return f"{parent}{self.name}" if parent == "/" else f"{parent}/{self.name}"

    @property
    def basename(self) -> str:
        """The name without its unit address (``serial`` for ``serial@9000000``)."""
        return self.name.split("@", 1)[0]

    @property
    def unit_address(self) -> str | None:
        """The text after ``@`` in the name, if any."""
        return self.name.split("@", 1)[1] if "@" in self.name else None

    @property
    def root(self) -> Node:
        node = self
        while node.parent is not None:
            node = node.parent
        return node

    @property
    def phandle(self) -> int | None:
        """The node's phandle (``phandle`` or the older ``linux,phandle``), if it has one."""
        for name in ("phandle", "linux,phandle"):
            if name in self.props:
                return self.get_u32(name)
        return None

    # -- typed property access --------------------------------------------------------------
    def has_prop(self, name: str) -> bool:
        return name in self.props

    def _value(self, name: str) -> bytes:
        try:
            return self.props[name]
        except KeyError:
            raise DeviceTreeError(f"{self.path}: no property {name!r}") from None

    def get_u32(self, name: str, default: int | None = None) -> int:
        """A one-cell property; ``default`` when absent (absent without default raises)."""
        if name not in self.props and default is not None:
            return default
        data = self._value(name)
        if len(data) != 4:
            raise DeviceTreeError(
                f"{self.path}: {name} must be one 32-bit cell, not {len(data)} bytes "
                f"({data.hex()!r})"
            )
        return decode_number(data)

    def get_cells(self, name: str) -> list[int]:
        """A property as a list of 32-bit cells."""
        data = self._value(name)
        if len(data) % 4:
            raise DeviceTreeError(
                f"{self.path}: {name} must be a whole number of 32-bit cells, "
                f"not {len(data)} bytes ({data.hex()!r})"
            )
        return [decode_number(data[i : i + 4]) for i in range(0, len(data), 4)]

    def get_string(self, name: str, default: str | None = None) -> str:
        """A string property (the first string of a string list)."""
        if name not in self.props and default is not None:
            return default
        return self.get_strings(name)[0]

    def get_strings(self, name: str) -> list[str]:
        """A string-list property (``compatible``, ``clock-names`` ...)."""
        data = self._value(name)
        strings = _decode_strings(data)
        if strings is None:
            raise DeviceTreeError(f"{self.path}: {name} is not a string list ({data!r})")
        return strings

    @property
    def compatible(self) -> list[str]:
        """The ``compatible`` strings, most specific first; [] when absent."""
        return self.get_strings("compatible") if "compatible" in self.props else []

    def is_compatible(self, name: str) -> bool:
        return name in self.compatible

    @property
    def status(self) -> str:
        return self.get_string("status") if "status" in self.props else "okay"

    @property
    def is_enabled(self) -> bool:
        """True unless ``status`` says otherwise (``okay``/``ok`` or absent mean enabled)."""
        return self.status in ("okay", "ok")

    # -- addressing -------------------------------------------------------------------------
    @property
    def address_cells(self) -> int:
        """``#address-cells`` this node gives its children (default 2, at most 4)."""
        return self._cell_count("#address-cells", DEFAULT_ADDRESS_CELLS)

    @property
    def size_cells(self) -> int:
        """``#size-cells`` this node gives its children (default 1, at most 4)."""
        return self._cell_count("#size-cells", DEFAULT_SIZE_CELLS)

    def _cell_count(self, name: str, default: int) -> int:
        value = self.get_u32(name, default)
        if value > MAX_CELLS:
            raise DeviceTreeError(f"{self.path}: {name} must be at most {MAX_CELLS}, not {value}")
        return value

    @property
    def reg_cells(self) -> tuple[int, int]:
        """(address cells, size cells) of this node's ``reg``: its parent's counts."""
        if self.parent is None:
            return self.address_cells, self.size_cells
        return self.parent.address_cells, self.parent.size_cells

    @property
    def reg(self) -> list[tuple[int, int]]:
        """``reg`` as (address, size) pairs in the parent bus's address space."""
        if "reg" not in self.props:
            return []
        na, ns = self.reg_cells
        if na == 0:
            raise DeviceTreeError(
                f"{self.path}: reg needs an #address-cells of 1 to {MAX_CELLS} in the parent, not 0"
            )
        return [(a, s) for a, s in self.read_pairs("reg", na, ns)]

    def read_pairs(self, name: str, first: int, second: int) -> list[tuple[int, int]]:
        """A property read as repeated (``first``-cell, ``second``-cell) numbers."""
        return [(t[0], t[1]) for t in self.read_tuples(name, (first, second))]

    def read_tuples(self, name: str, widths: Sequence[int]) -> list[tuple[int, ...]]:
        """A property read as repeated groups of numbers of the given widths in cells."""
        data = self._value(name)
        stride = 4 * sum(widths)
        if stride == 0 or len(data) % stride:
            raise DeviceTreeError(
                f"{self.path}: {name} has {len(data)} bytes, not a multiple of "
                f"{'+'.join(map(str, widths))} cells ({data.hex()!r})"
            )
        out: list[tuple[int, ...]] = []
        for start in range(0, len(data), stride):
            values: list[int] = []
            pos = start
            for width in widths:
                values.append(decode_number(data[pos : pos + 4 * width]))
                pos += 4 * width
            out.append(tuple(values))
        return out

    # -- navigation -------------------------------------------------------------------------
    def child(self, name: str) -> Node | None:
        """The child called ``name``; a name without ``@`` also matches ``name@...``."""
        for node in self.children:
            if node.name == name:
                return node
        if "@" not in name:
            for node in self.children:
                if node.basename == name:
                    return node
        return None

    def find(self, relpath: str) -> Node | None:
        """The descendant at ``relpath`` (components separated by ``/``), or None."""
        node: Node | None = self
        for part in relpath.strip("/").split("/"):
            if not part:
                continue
            assert node is not None
            node = node.child(part)
            if node is None:
                return None
        return node

    def iter_nodes(self) -> Iterator[Node]:
        """This node and every descendant, depth first, in tree order."""
        yield self
        for node in self.children:
            yield from node.iter_nodes()

    def ancestors(self) -> Iterator[Node]:
        """The parent, grandparent ... up to the root."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    # -- editing ----------------------------------------------------------------------------
    def set_prop(self, name: str, value: PropValue) -> None:
        """Set (or replace) a property; see :data:`PropValue` for the accepted forms."""
        self.props[name] = encode_value(value)

    def remove_prop(self, name: str) -> None:
        self.props.pop(name, None)

    def add_child(self, name: str) -> Node:
        """Append a new, empty child node; a child of that name must not exist yet."""
        if not name or "/" in name:
            raise DeviceTreeError(f"{self.path}: bad node name {name!r}")
        if any(node.name == name for node in self.children):
            raise DeviceTreeError(f"{self.path}: a child named {name!r} already exists")
        node = Node(name, self)
        self.children.append(node)
        return node

    def remove(self) -> None:
        """Detach this node (and its subtree) from its parent."""
        if self.parent is None:
            raise DeviceTreeError("the root node cannot be removed")
        self.parent.children.remove(self)
        self.parent = None


class DeviceTree:
    """A whole device tree: the root node, the memory reservation map and the boot CPU."""

    def __init__(self, root: Node | None = None) -> None:
        self.root = root if root is not None else Node("")
        #: the blob's ``/memreserve/`` entries as (address, size)
        self.mem_reserve: list[tuple[int, int]] = []
        self.boot_cpuid_phys = 0
        #: where the tree was read from, for messages
        self.source = "<memory>"

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> DeviceTree:
        """Read a ``.dtb`` or ``.dts`` file (told apart by the DTB magic, not the name)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DeviceTreeError(f"cannot read device tree {path}: {exc.strerror}") from None
        if data[:4] == FDT_MAGIC.to_bytes(4, "big"):
            tree = cls.from_dtb(data, source=str(path))
        else:
            blob = run_dtc(
                ["-I", "dts", "-O", "dtb", "-i", str(path.parent), str(path)], None, what=str(path)
            )
            tree = cls.from_dtb(blob, source=str(path))
        return tree

    @classmethod
    def from_dts(cls, text: str, include_dirs: Sequence[str | Path] = ()) -> DeviceTree:
        """Compile DTS source text with ``dtc``."""
        args = ["-I", "dts", "-O", "dtb"]
        for directory in include_dirs:
            args += ["-i", str(directory)]
        blob = run_dtc([*args, "-"], text.encode(), what="<dts text>")
        return cls.from_dtb(blob, source="<dts text>")

    @classmethod
    def from_dtb(cls, data: bytes, source: str = "<dtb>") -> DeviceTree:
        """Parse a flattened device tree blob.

        The whole blob is checked first (:func:`cma.devicetree.dtb_problem`).
        """
        blob = bytearray(data)
        problem = dtb_problem(blob)
        if problem is not None:
            raise DeviceTreeError(f"{source}: {problem}")
        try:
            fdt = libfdt.Fdt(blob)
            tree = cls(_read_node(fdt, 0, "", None, 0))
            tree.mem_reserve = [
                (int(entry[0]), int(entry[1]))
                for entry in (fdt.get_mem_rsv(i) for i in range(fdt.num_mem_rsv()))
            ]
            tree.boot_cpuid_phys = int(fdt.boot_cpuid_phys())
        except libfdt.FdtException as exc:
            raise DeviceTreeError(f"{source}: not a valid device tree blob ({exc})") from None
        except (UnicodeError, SystemError) as exc:
            # pylibfdt decodes node and property names as UTF-8 (a failure inside its C
            # wrapper surfaces as a SystemError caused by the UnicodeDecodeError)
            cause = exc if isinstance(exc, UnicodeError) else exc.__cause__
            if not isinstance(cause, UnicodeDecodeError):
                raise
            raise DeviceTreeError(
                f"{source}: a node or property name is not UTF-8 text "
                f"({cause.object[cause.start : cause.end + 8]!r})"
            ) from None
        tree.source = source
        return tree

    # -- writing ----------------------------------------------------------------------------
    def to_dtb(self) -> bytes:
        """Serialise with libfdt's sequential writer; properties and phandles kept as they are."""
        try:
            sw = libfdt.FdtSw()
            for address, size in self.mem_reserve:
                sw.add_reservemap_entry(address, size)
            sw.finish_reservemap()
            _write_node(sw, self.root)
            # fdt_finish() appends the END tag; pylibfdt's as_fdt() does not grow a full buffer
            sw.resize(len(sw.as_bytearray()) + 16)
            blob = bytearray(sw.as_fdt().as_bytearray())
        except (libfdt.FdtException, TypeError, UnicodeError) as exc:
            raise DeviceTreeError(f"{self.source}: cannot serialise the tree ({exc})") from None
        total = struct.unpack_from(">I", blob, 4)[0]
        del blob[total:]
        struct.pack_into(">I", blob, 28, self.boot_cpuid_phys)
        return bytes(blob)

    def to_dts(self) -> str:
        """The tree as DTS source text, as ``dtc -I dtb -O dts`` prints it."""
        return run_dtc(["-I", "dtb", "-O", "dts", "-"], self.to_dtb(), what=self.source).decode()

    def save(self, path: str | Path) -> None:
        """Write the tree as a DTB, or as DTS text when the name ends in ``.dts``."""
        path = Path(path)
        if path.suffix == ".dts":
            write_atomic(path, self.to_dts())
        else:
            write_atomic(path, self.to_dtb())

    # -- lookup -----------------------------------------------------------------------------
    def iter_nodes(self) -> Iterator[Node]:
        return self.root.iter_nodes()

    def find(self, path: str) -> Node | None:
        """The node at an absolute ``path``, or at an alias (``serial0`` or ``serial0/x``)."""
        if path.startswith("/"):
            return self.root.find(path)
        alias, _, rest = path.partition("/")
        target = self.aliases().get(alias)
        if target is None or not target.startswith("/"):
            return None
        node = self.root.find(target)
        return node.find(rest) if node is not None and rest else node

    def node(self, path: str) -> Node:
        """Like :meth:`find`, but a missing node is an error."""
        node = self.find(path)
        if node is None:
            raise DeviceTreeError(f"{self.source}: no node {path!r}")
        return node

    def ensure_node(self, path: str) -> Node:
        """The node at ``path``, creating it (and missing parents) when absent."""
        node = self.root
        for part in path.strip("/").split("/"):
            if part:
                node = node.child(part) or node.add_child(part)
        return node

    def by_phandle(self, phandle: int) -> Node | None:
        for node in self.iter_nodes():
            if node.phandle == phandle:
                return node
        return None

    def phandles(self) -> dict[int, Node]:
        return {ph: node for node in self.iter_nodes() if (ph := node.phandle) is not None}

    def ensure_phandle(self, node: Node) -> int:
        """The node's phandle, allocating a fresh one (one above the highest in use)."""
        existing = node.phandle
        if existing is not None:
            return existing
        used = self.phandles()
        value = max(used, default=0) + 1
        if value > MAX_PHANDLE:
            value = next(v for v in range(1, MAX_PHANDLE + 1) if v not in used)
        node.set_prop("phandle", value)
        return value

    # -- aliases and /chosen ----------------------------------------------------------------
    def aliases(self) -> dict[str, str]:
        """``/aliases`` as name -> path (values that are not strings are skipped)."""
        node = self.root.child("aliases")
        if node is None:
            return {}
        out: dict[str, str] = {}
        for name, data in node.props.items():
            strings = _decode_strings(data)
            if strings and len(strings) == 1:
                out[name] = strings[0]
        return out

    def set_alias(self, name: str, path: str) -> None:
        if self.root.find(path) is None:
            raise DeviceTreeError(f"{self.source}: alias {name!r} names a missing node {path!r}")
        self.ensure_node("/aliases").set_prop(name, path)

    @property
    def chosen(self) -> Node:
        """``/chosen``, created when absent."""
        return self.ensure_node("/chosen")

    @property
    def stdout_path(self) -> str | None:
        """``/chosen/stdout-path`` as written (it may carry ``:options``)."""
        node = self.root.child("chosen")
        if node is None:
            return None
        for name in ("stdout-path", "linux,stdout-path"):
            if name in node.props:
                return node.get_string(name)
        return None

    @stdout_path.setter
    def stdout_path(self, value: str) -> None:
        self.chosen.set_prop("stdout-path", value)

    def stdout_node(self) -> Node | None:
        """The console node named by ``stdout-path`` (alias resolved, options dropped)."""
        path = self.stdout_path
        if path is None:
            return None
        return self.find(path.split(":", 1)[0])

    def stdout_options(self) -> str | None:
        """The part of ``stdout-path`` after ``:`` (``115200n8``), if any."""
        path = self.stdout_path
        if path is None or ":" not in path:
            return None
        return path.split(":", 1)[1]

    # -- whole-tree facts -------------------------------------------------------------------
    def memory_banks(self) -> list[tuple[int, int]]:
        """RAM as (start, size) from every enabled ``device_type = "memory"`` node."""
        banks: list[tuple[int, int]] = []
        for node in self.root.children:
            if node.props.get("device_type") == b"memory\0" and node.is_enabled:
                banks.extend((a, s) for a, s in node.reg if s)
        return sorted(banks)


def _read_node(fdt: libfdt.Fdt, offset: int, name: str, parent: Node | None, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise DeviceTreeError(
            f"{parent.path if parent else '/'}: nodes nested deeper than {MAX_DEPTH} levels"
        )
    node = Node(name, parent)
    prop_offset = fdt.first_property_offset(offset, libfdt.QUIET_NOTFOUND)
    while prop_offset >= 0:
        prop = fdt.get_property_by_offset(prop_offset)
        node.props[prop.name] = bytes(prop)
        prop_offset = fdt.next_property_offset(prop_offset, libfdt.QUIET_NOTFOUND)
    child = fdt.first_subnode(offset, libfdt.QUIET_NOTFOUND)
    while child >= 0:
        child_name = fdt.get_name(child)
        try:
            child_name.encode("utf-8")
        except UnicodeEncodeError:  # pylibfdt hands undecodable bytes over as surrogates
            raise DeviceTreeError(
                f"{node.path}: a child node name is not UTF-8 text ({child_name!r})"
            ) from None
        node.children.append(_read_node(fdt, child, child_name, node, depth + 1))
        child = fdt.next_subnode(child, libfdt.QUIET_NOTFOUND)
    return node


def _write_node(sw: libfdt.FdtSw, node: Node) -> None:
    sw.begin_node(node.name)
    for name, value in node.props.items():
        sw.property(name, value)
    for child in node.children:
        _write_node(sw, child)
    sw.end_node()


def run_dtc(args: Sequence[str], stdin: bytes | None, what: str) -> bytes:
    """Run ``dtc -q`` and return its output; its error text becomes a DeviceTreeError."""
    dtc = shutil.which("dtc")
    if dtc is None:
        raise DeviceTreeError(
            f"cannot compile {what}: dtc is not installed (Debian package device-tree-compiler)"
        )
    result = subprocess.run(
        [dtc, "-q", "-o", "-", *args], input=stdin, capture_output=True, check=False
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        message = message or f"exit status {result.returncode}"
        raise DeviceTreeError(f"dtc failed on {what}:\n{message}")
    return result.stdout
