"""Pictures of a run: captured frames and the memory map (PNG, via Pillow)."""
