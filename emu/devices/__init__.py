"""Device models, one file per hardware block, grouped by function (char, intc, timer, dma ...)."""
