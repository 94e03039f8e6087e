"""The one native part: the virtual clock's per-block instruction counter (emu/_blockclock.c).

Everything else is declared in pyproject.toml. The machine loads the built extension with
ctypes and falls back to Unicorn's per-instruction counter when it is missing.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("emu._blockclock", sources=["emu/_blockclock.c"])])
