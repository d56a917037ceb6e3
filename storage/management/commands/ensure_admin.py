"""Make sure someone can log into the admin, without ever using a fixed default password."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.template.defaultfilters import pluralize

from storage.services.accounts import ensure_admin


class Command(BaseCommand):
    help = (
        "Create a superuser if none exists: from DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL when set, "
        "otherwise 'admin' with a generated password printed once."
    )

    def handle(self, *args, **options):
        result = ensure_admin()
        if result.created and result.generated_password:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created admin user '{result.username}' with password: {result.generated_password}\n"
                    "This password is shown only now. Change it with: "
                    f"python manage.py changepassword {result.username}"
                )
            )
        elif result.created:
            self.stdout.write(self.style.SUCCESS(f"Created admin user '{result.username}' from DJANGO_SUPERUSER_*."))
        elif options["verbosity"]:
            count = get_user_model().objects.filter(is_superuser=True).count()
            self.stdout.write(
                f"{count} superuser account{pluralize(count)} already exist{pluralize(count, 's,')}; nothing to do."
            )
