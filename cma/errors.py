"""The exceptions of the :mod:`cma` package.

Every error raised by the package derives from :class:`CMAError` and carries an
errno-like code (``errno``, a positive number such as :data:`errno.ENOMEM`) so a
service layer can hand ``-err.errno`` to a guest exactly as the 2010 C API did.
"""

from __future__ import annotations

import errno as _errno


class CMAError(Exception):
    """Base class of every error raised by :mod:`cma`."""

    errno: int = _errno.EINVAL


class InvalidArgument(CMAError):
    """A bad argument to an API call (size, alignment, unknown allocator ...)."""

    errno = _errno.EINVAL


class ConfigError(InvalidArgument):
    """A malformed configuration text.

    ``text`` is the text being parsed and ``pos`` the 0-based offset of the
    offending character; ``str()`` shows both, with a caret under the spot.
    """

    def __init__(self, message: str, text: str = "", pos: int | None = None) -> None:
        self.message = message
        self.text = text
        self.pos = pos
        super().__init__(self._render())

    def _render(self) -> str:
        if self.pos is None or not self.text:
            return self.message
        return f"{self.message} at position {self.pos}\n  {self.text}\n  {' ' * self.pos}^"


class NoMemory(CMAError):
    """No region had room for the request."""

    errno = _errno.ENOMEM


class NoRegion(CMAError):
    """No map rule or region serves this device and kind (or a region name is unknown)."""

    errno = _errno.ENOENT


class UnknownChunk(CMAError):
    """No allocated chunk starts at this address."""

    errno = _errno.ENOENT


class PlacementError(CMAError):
    """Regions could not be reserved at boot (overlap, outside RAM, no room, limit)."""

    errno = _errno.ENOMEM


class NotReachable(CMAError):
    """A device cannot reach a chunk through its DMA view."""

    errno = _errno.EFAULT
