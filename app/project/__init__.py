"""The project file: the SQLite store (the only writer), its schema and migrations, the lock, RLE."""
