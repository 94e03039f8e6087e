"""DMA masters: the camera capture engine."""
