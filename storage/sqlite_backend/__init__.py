"""Django's SQLite backend, refusing files it must not open (see storage.database_file)."""
