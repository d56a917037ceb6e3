"""Django's user and group admins, held to the same rule as ours: a list filters only as its page offers.

Django's UserAdmin would answer `?password__startswith=pbkdf2_sha256$...` one guess at a time.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User

from storage.admin.base import OfferedFiltersOnly


class UserAdmin(OfferedFiltersOnly, auth_admin.UserAdmin):
    pass


class GroupAdmin(OfferedFiltersOnly, auth_admin.GroupAdmin):
    pass


for model, model_admin in ((User, UserAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
