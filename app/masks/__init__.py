"""Mask work on NumPy arrays: corrections, frame tools (GrabCut, polygons), propagation, overlays, mask PNGs."""
