"""Datasets in and out: formats, exporting, importing, readers, records, atomic files."""
