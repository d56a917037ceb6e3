"""storage_adoption: one row while adopting a desktop database is under way (see storage.services.adoption).

Adoption itself creates the table before the first migration (it must record itself before
0001 runs); this migration makes every database have it. A plain CREATE TABLE: nothing rebuilt.
"""

from django.db import migrations

from storage.services.adoption import CREATE_ADOPTION_TABLE, DROP_ADOPTION_TABLE


class Migration(migrations.Migration):
    dependencies = [("storage", "0003_postgres_search")]

    operations = [migrations.RunSQL(CREATE_ADOPTION_TABLE, DROP_ADOPTION_TABLE)]
