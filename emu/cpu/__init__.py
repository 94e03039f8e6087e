"""The ARMv7-A CPU: Unicorn plus what Unicorn leaves out (exception entry, MMU walks, timer)."""

from emu.cpu.core import CPU_MODELS, Cpu

__all__ = ["CPU_MODELS", "Cpu"]
