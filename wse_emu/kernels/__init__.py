"""Host drivers for the programs in programs/: tile, load, run, gather."""
