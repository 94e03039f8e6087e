"""Memory-technology devices: parallel NOR flash."""
