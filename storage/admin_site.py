"""FineFoundry's admin site: Django's AdminSite with the dashboard on its index page.

Installed as the default site through finefoundry.apps.AdminConfig, so `admin.site` and every
`@admin.register` mean this site, and its index is the one view at /admin/ (nothing shadows it).

It lives outside the storage.admin package on purpose: Django imports this module while it creates
`admin.site`, and importing anything under storage.admin first runs the package, whose registrations
would ask for `admin.site` again half-way through and land on a second, discarded site.
"""

from __future__ import annotations

from django.contrib import admin


class FineFoundryAdminSite(admin.AdminSite):
    site_header = "FineFoundry Storage"
    site_title = "FineFoundry Storage"
    index_title = "Dashboard"
    index_template = "admin/storage/dashboard.html"
    # There is no site besides the admin: Django's "View site" link would lead back here.
    site_url = None

    def index(self, request, extra_context=None):
        """Django's admin index (app list, permissions, login) with the dashboard's numbers and charts."""
        from storage.admin.dashboard import dashboard_context  # see the module's docstring

        return super().index(
            request, extra_context={"dashboard": dashboard_context(request.user), **(extra_context or {})}
        )
