"""Image loaders in an explicit registry, each with an ``is_compatible`` probe.

:func:`identify` tries ELF, then zImage; the raw-binary loader accepts
anything and is tried last (it needs a load address).
"""

from __future__ import annotations

from pathlib import Path

from emu.errors import ImageError
from emu.loaders.elf import ElfImage
from emu.loaders.raw import RawImage, Segment
from emu.loaders.zimage import ZImage

#: loaders in probing order; the raw loader comes last and accepts anything
LOADERS: tuple[type[ElfImage] | type[ZImage] | type[RawImage], ...] = (ElfImage, ZImage, RawImage)


def read_image(path: str | Path) -> bytes:
    """The bytes of an image file, with an :class:`ImageError` naming it when unreadable."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read image {str(path)!r}: {exc.strerror or exc}") from exc


def identify(data: bytes | str | Path) -> str:
    """The name of the first loader whose probe accepts ``data`` (bytes or a path)."""
    for loader in LOADERS:
        if loader.is_compatible(data):
            return loader.kind
    return RawImage.kind


__all__ = ["LOADERS", "ElfImage", "RawImage", "Segment", "ZImage", "identify", "read_image"]
