.PHONY: serve dev test lint bench diagram

serve:
	python3 tasks.py serve

dev:
	python3 tasks.py dev

test:
	python3 tasks.py test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	.venv/bin/python -m bench.ingest

# Needs Graphviz's `dot` (Debian: apt-get install graphviz) for the SVG.
diagram:
	.venv/bin/python manage.py graph_models storage --dot --disable-sort-fields -o docs/storage-models.dot
	sed -i '/^  \/\/ Created:/d' docs/storage-models.dot
	dot -Tsvg docs/storage-models.dot -o docs/storage-models.svg
