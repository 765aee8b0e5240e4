"""The support, finance and admin groups (their permissions: roles.py)."""

from typing import Any

from django.db import migrations


def create_roles(apps: Any, schema_editor: Any) -> None:
    from django.contrib.auth.management import create_permissions

    from leb.backoffice.roles import sync_roles

    # Permissions are normally created after all migrations: make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    sync_roles(apps.get_model("auth", "Permission"), apps.get_model("auth", "Group"))


def remove_roles(apps: Any, schema_editor: Any) -> None:
    from leb.backoffice.roles import ROLE_PERMISSIONS

    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    run_before: list[tuple[str, str]] = []

    operations = [migrations.RunPython(create_roles, remove_roles)]
