"""``twoended``: two-ended best fit, keeping big buffers and small ones apart.

Camera and display buffers are large and live as long as a stream runs;
codec scratch buffers are small and come and go by the frame. Mixed in one
best-fit region, the short-lived small blocks end up between the long-lived
large ones, and when they are freed the holes they leave are too small for
the next frame buffer. This allocator places requests of at least
``threshold`` bytes towards the *top* of the region and smaller ones towards
the *bottom*, so the churn of small blocks stays at one end and the free
space between the two ends remains one large extent.

Each request still takes the best-fitting free extent (so small blocks fill
the gaps between large ones, as in ``bf``), but inside it a big block goes to
the top end, a small one to the bottom end, and among equally good extents a
big block prefers the highest, a small one the lowest. When the best fit is
the large free extent in the middle, the two classes thus grow towards each
other from opposite sides instead of interleaving.

Parameter: ``threshold=SIZE`` (memparse syntax, default ``400K``: just under
the smallest frame buffer in common use, 640x480 NV12 at 450 KiB, and above
the scratch and bitstream buffers a codec recycles every few frames). Set it
just below the smallest long-lived buffer of the platform.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cma.allocators import parse_size, register
from cma.allocators.bestfit import BestFit
from cma.errors import InvalidArgument

#: requests of at least this many bytes go to the top unless ``threshold=`` says otherwise
DEFAULT_THRESHOLD = 400 << 10


@register
class TwoEnded(BestFit):
    """Large blocks from the top, small blocks from the bottom."""

    name: ClassVar[str] = "twoended"
    summary: ClassVar[str] = "two-ended: blocks >= threshold from the top, smaller from the bottom"
    param_names: ClassVar[tuple[str, ...]] = ("threshold",)

    threshold: int

    def _configure(self, params: dict[str, str]) -> None:
        """Read ``threshold`` (bytes, memparse syntax)."""
        self.threshold = DEFAULT_THRESHOLD
        if "threshold" in params:
            self.threshold = parse_size(params["threshold"])
            if self.threshold <= 0:
                raise InvalidArgument(
                    f"{self.name}: threshold must be positive, not {params['threshold']!r}"
                )
        self._top_from = self.threshold

    def debug_view(self) -> dict[str, Any]:
        """The best-fit view plus the threshold in bytes."""
        return {**super().debug_view(), "threshold": self.threshold}
