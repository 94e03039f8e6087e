"""Firmware services the machine provides over SMCCC calls (HVC and SMC): PSCI, and others."""

from emu.services.smccc import NOT_SUPPORTED, SmcccDispatcher

__all__ = ["NOT_SUPPORTED", "SmcccDispatcher"]
