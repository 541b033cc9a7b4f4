"""Data: image I/O, folder walking, batch processing, datasets."""
