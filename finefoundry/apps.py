"""The project's app configurations."""

from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """Django's admin, with FineFoundry's site (the dashboard on its index) as `admin.site`."""

    default_site = "storage.admin_site.FineFoundryAdminSite"
