"""Host-side errors of the :mod:`emu` package (bad board, bad image, bad argument).

Guest mistakes are never raised: devices log and model them like hardware.
"""

from __future__ import annotations


class EmuError(Exception):
    """Base class of every host-side error raised by :mod:`emu`."""


class DeviceTreeError(EmuError):
    """A device tree that cannot be read or does not describe a usable machine."""


class ImageError(EmuError):
    """An image file that cannot be loaded (bad ELF, zImage, overlapping segments ...)."""


class ConfigurationError(EmuError):
    """A machine configuration that cannot be built (bad option, overlapping maps ...)."""
