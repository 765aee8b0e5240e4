from django.conf import settings
from django.db import migrations
from django.db.models import Q
from django.utils import timezone


def verify_existing(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Accounts made before verification existed keep receiving receipts and
    # can still reset their password: their contacts count as proven.
    profile_model = apps.get_model("accounts", "Profile")
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    now = timezone.now()
    missing = user_model.objects.filter(profile__isnull=True).values_list("pk", flat=True)
    profile_model.objects.bulk_create(
        [profile_model(user_id=pk) for pk in missing.iterator()], batch_size=1000
    )
    profile_model.objects.filter(email_verified_at__isnull=True).exclude(
        Q(user__email="") | Q(user__email__isnull=True)
    ).update(email_verified_at=now)
    profile_model.objects.filter(phone_verified_at__isnull=True, phone__isnull=False).update(
        phone_verified_at=now
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_verification"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(verify_existing, migrations.RunPython.noop)]
