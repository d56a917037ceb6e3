"""Django's SQLite backend, refusing files it must not open (see storage.db.files)."""
