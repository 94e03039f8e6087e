"""The one native part: the virtual clock's per-block instruction counter (emu/_blockclock.c).

Everything else is declared in pyproject.toml. The machine loads the built extension with
ctypes and falls back to Unicorn's per-instruction counter when it is missing.
"""

from setuptools import Extension, setup

# optional: without a C compiler the install still succeeds (and the tests say so under CI)
setup(ext_modules=[Extension("emu._blockclock", sources=["emu/_blockclock.c"], optional=True)])
