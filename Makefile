.PHONY: serve test lint bench diagram

serve:
	python3 tasks.py serve

test:
	python3 tasks.py test

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench:
	.venv/bin/python bench/ingest.py

diagram:
	.venv/bin/python manage.py graph_models storage --dot -o docs/storage-models.dot
