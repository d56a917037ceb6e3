"""URL configuration: the admin is the whole user interface."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from storage.admin.dashboard import dashboard_index

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # The admin's index with the dashboard; it shadows admin.site's own index at the same URL.
    path("admin/", dashboard_index, name="dashboard"),
    path("admin/", admin.site.urls),
]

handler500 = "storage.views.server_error"
