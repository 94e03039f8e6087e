"""ELF32 ARM images: PT_LOAD segments at their physical addresses, symbols for traces."""

from __future__ import annotations

import bisect
import io
from pathlib import Path
from typing import ClassVar

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from elftools.elf.segments import Segment as ElfSegment

from emu.errors import ImageError
from emu.loaders.raw import Segment, probe_bytes

EM_ARM = 40
#: ELF32 images address 4 GiB
ADDRESS_SPACE = 1 << 32


class ElfImage:
    """A little-endian 32-bit ARM ELF executable."""

    kind: ClassVar[str] = "elf"

    def __init__(self, data: bytes, name: str = "<elf>") -> None:
        self.name = name
        try:
            elf = ELFFile(io.BytesIO(data))
            if elf.elfclass != 32 or not elf.little_endian:
                raise ImageError(f"{name}: only little-endian ELF32 images are supported")
            if elf["e_machine"] not in ("EM_ARM", EM_ARM):
                raise ImageError(f"{name}: ELF machine must be ARM, not {elf['e_machine']!r}")
            self._segments: list[Segment] = []
            vaddr_map: list[tuple[int, int, int]] = []
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                    continue
                segment = _checked_segment(name, seg, len(data))
                for other in self._segments:
                    if segment.address < other.end and other.address < segment.end:
                        raise ImageError(
                            f"{name}: PT_LOAD segments [0x{other.address:x}, 0x{other.end:x}) "
                            f"and [0x{segment.address:x}, 0x{segment.end:x}) overlap"
                        )
                self._segments.append(segment)
                vaddr_map.append((seg["p_vaddr"], seg["p_paddr"], seg["p_memsz"]))
            if not self._segments:
                raise ImageError(f"{name}: ELF has no loadable (PT_LOAD) segment")
            entry = elf["e_entry"]
            for v, p, s in vaddr_map:
                if v <= entry & ~1 < v + s:
                    entry = p + (entry - v)
                    break
            else:
                raise ImageError(
                    f"{name}: entry point 0x{entry:x} lies in no loadable (PT_LOAD) segment"
                )
            self.entry = entry
            syms: dict[int, str] = {}
            self._by_name: dict[str, int] = {}
            for sec in elf.iter_sections():
                if isinstance(sec, SymbolTableSection):
                    for sym in sec.iter_symbols():
                        if sym.name and sym["st_info"]["type"] in ("STT_FUNC", "STT_NOTYPE",
                                                                   "STT_OBJECT") \
                                and sym["st_shndx"] != "SHN_UNDEF" and not sym.name.startswith("$"):
                            syms.setdefault(sym["st_value"] & ~1, sym.name)
                            self._by_name.setdefault(sym.name, sym["st_value"])
        except ELFError as exc:
            raise ImageError(f"{name}: not a valid ELF image: {exc}") from exc
        except (ValueError, KeyError, IndexError) as exc:  # truncated files
            raise ImageError(f"{name}: damaged ELF image: {exc}") from exc
        order = sorted(syms.items())
        self._sym_addrs = [a for a, _ in order]
        self._sym_names = [n for _, n in order]

    @staticmethod
    def is_compatible(data: bytes | str | Path) -> bool:
        """An ELF header (bytes or a file path)."""
        return probe_bytes(data)[:4] == b"\x7fELF"

    def segments(self) -> list[Segment]:
        return list(self._segments)

    def symbol(self, name: str) -> int | None:
        """The value of symbol ``name`` (bit 0 set for Thumb functions; None when absent)."""
        return self._by_name.get(name)

    def symbolize(self, addr: int) -> str:
        """``"name+0x10"`` for the nearest symbol at or below ``addr``; hex when none."""
        i = bisect.bisect_right(self._sym_addrs, addr & ~1) - 1
        if i < 0:
            return f"0x{addr:08x}"
        off = (addr & ~1) - self._sym_addrs[i]
        return self._sym_names[i] + (f"+0x{off:x}" if off else "")


def _checked_segment(name: str, seg: ElfSegment, file_size: int) -> Segment:
    """A PT_LOAD program header as a :class:`Segment`, refused when it cannot be loaded.

    Its file bytes must lie inside the file and fit its memory size, and the
    memory it covers must stay inside the 32-bit physical address space.
    """
    paddr, offset = seg["p_paddr"], seg["p_offset"]
    filesz, memsz = seg["p_filesz"], seg["p_memsz"]
    where = f"PT_LOAD segment at 0x{paddr:x}"
    if filesz > memsz:
        raise ImageError(
            f"{name}: {where}: p_filesz 0x{filesz:x} is larger than p_memsz 0x{memsz:x}"
        )
    if offset + filesz > file_size:
        raise ImageError(
            f"{name}: {where}: file bytes [0x{offset:x}, 0x{offset + filesz:x}) run past "
            f"the end of the file (0x{file_size:x} bytes)"
        )
    if paddr + memsz > ADDRESS_SPACE:
        raise ImageError(
            f"{name}: {where}: p_memsz 0x{memsz:x} runs past the 32-bit address space"
        )
    return Segment(paddr, bytes(seg.data()[:filesz]), memsz)
