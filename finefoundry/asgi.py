"""ASGI entry point for FineFoundry Storage."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")

application = get_asgi_application()
