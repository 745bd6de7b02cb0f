from django.db import migrations


def create(apps, schema_editor):
    Environment = apps.get_model("deployments", "Environment")
    Environment.objects.get_or_create(name="staging", defaults={
        "description": "Pre-production: smoke tests and shadow traffic", "required_stage": "staging", "order": 1})
    Environment.objects.get_or_create(name="production", defaults={
        "description": "Live traffic", "required_stage": "production", "is_production": True, "order": 2})


class Migration(migrations.Migration):
    dependencies = [("deployments", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
