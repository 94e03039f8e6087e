"""Shared fixtures: where the real images and tools are, and how their absence is treated.

Locally a test that needs an external image or tool is skipped with a one-line reason;
under CI (``CI=true``) the same absence is a failure, because ``.ci/run`` installs and
fetches everything the suite needs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = Path(os.environ.get("EMU_IMAGES", ROOT / ".cache" / "images"))


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI must provide it: scripts/bootstrap installs and fetches it)")
    pytest.skip(reason)


def need_image(relative: str) -> Path:
    """The path of a fetched image, or skip (locally) / fail (CI) with the reason."""
    path = IMAGES / relative
    if not path.exists():
        _missing(f"{path} is absent; run scripts/fetch-images")
    return path.resolve()


def need_tool(name: str) -> str:
    """The path of a host tool, or skip (locally) / fail (CI) with the reason."""
    found = shutil.which(name)
    if found is None:
        _missing(f"{name} is not installed; run scripts/bootstrap")
        raise AssertionError  # unreachable: _missing raises
    return found


@pytest.fixture
def images_dir() -> Path:
    if not IMAGES.exists():
        _missing(f"{IMAGES} is absent; run scripts/fetch-images")
    return IMAGES


@pytest.fixture
def uboot_bin() -> Path:
    return need_image("u-boot-qemu-arm.bin")


@pytest.fixture
def dtbs_dir() -> Path:
    return need_image("dtbs")


@pytest.fixture
def linux_zimage() -> Path:
    return need_image("vmlinuz")
