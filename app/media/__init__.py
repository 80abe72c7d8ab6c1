"""Media files: validation, exact frame decoding (the frame index), and size limits."""
