from django.apps import AppConfig


class StorageConfig(AppConfig):
    name = "storage"
    verbose_name = "FineFoundry storage"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from storage.db import server
        from storage.search import index as search_index
        from storage.services import adoption

        pre_migrate.connect(adoption.backup_before_adoption, sender=self)
        pre_migrate.connect(server.desktop_file_not_adopted, sender=self)
        post_migrate.connect(adoption.finish_adoption, sender=self)
        post_migrate.connect(search_index.after_migrate, sender=self)
