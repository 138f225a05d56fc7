"""Create the role groups with their permissions (later apps' permissions are attached by the
post_migrate receiver in ``signals.py`` once they exist)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from apps.accounts.roles import ROLES, role_grants


def create_roles(apps, schema_editor):  # type: ignore[no-untyped-def]
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = list(Permission.objects.select_related("content_type"))
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            [
                p
                for p in permissions
                if role_grants(role, f"{p.content_type.app_label}.{p.codename}")
            ]
        )


def remove_roles(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_roles, remove_roles)]
