"""The admin account a new install needs."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction


@dataclass(frozen=True)
class AdminAccount:
    username: str
    created: bool
    generated_password: str | None = None


def ensure_admin() -> AdminAccount:
    """Create a superuser when none exists; the password comes from the environment or is generated."""
    User = get_user_model()
    with transaction.atomic():
        existing = User.objects.filter(is_superuser=True).order_by("pk").first()
        if existing is not None:
            return AdminAccount(username=existing.get_username(), created=False)
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = None
        if not password:
            generated = password = secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=username, email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""), password=password
        )
    return AdminAccount(username=username, created=True, generated_password=generated)
