"""Create the role groups and grant each its capabilities (``core.Access`` permissions).

The permissions are created here rather than left to post_migrate, so that the groups
are complete as soon as this migration has run.
"""

from django.db import migrations

# Frozen copy of apps.core.roles.GROUP_PERMISSIONS as of this migration; later changes
# of the roles come with their own migration.
GROUP_PERMISSIONS = {
    "viewer": ["view_dashboard", "predict"],
    "ml_engineer": [
        "view_dashboard",
        "predict",
        "upload_dataset",
        "override_validation",
        "launch_training",
        "register_model",
        "request_promotion",
        "deploy_nonproduction",
    ],
    "analyst": ["view_dashboard", "predict", "decide_promotion", "deploy_production", "deploy_nonproduction"],
    "service": ["predict"],
}

CAPABILITIES = {
    "view_dashboard": "Can read every page and chart",
    "upload_dataset": "Can upload datasets and correct their schema",
    "override_validation": "Can override a failed dataset validation",
    "launch_training": "Can launch and cancel training runs",
    "register_model": "Can register model versions",
    "request_promotion": "Can request promotion of a model version",
    "decide_promotion": "Can approve or reject promotion requests",
    "deploy_nonproduction": "Can deploy to non-production environments",
    "deploy_production": "Can deploy and roll back production",
    "predict": "Can call the prediction API",
    "view_audit": "Can read the audit log",
}


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_type, _ = ContentType.objects.get_or_create(app_label="core", model="access")
    permissions = {}
    for codename, name in CAPABILITIES.items():
        permissions[codename], _ = Permission.objects.get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
    for group_name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.add(*(permissions[c] for c in codenames))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUP_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("core", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
