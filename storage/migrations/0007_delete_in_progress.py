# Adds the "deleting" state (storage.services.sessions.delete_scrape_session): choices only, no SQL on either engine.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("storage", "0006_jobs"),
    ]

    operations = [
        migrations.AlterField(
            model_name="importinprogress",
            name="state",
            field=models.TextField(
                choices=[("writing", "Writing"), ("moving", "Moving"), ("deleting", "Deleting")], default="writing"
            ),
        ),
    ]
