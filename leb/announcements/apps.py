from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnnouncementsConfig(AppConfig):
    name = "leb.announcements"
    label = "announcements"
    verbose_name = _("Announcements")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from .models import Announcement
        from .queries import forget_pinned

        def _forget(**kwargs: object) -> None:
            forget_pinned()

        post_save.connect(_forget, sender=Announcement, weak=False, dispatch_uid="ann-pinned-save")
        post_delete.connect(
            _forget, sender=Announcement, weak=False, dispatch_uid="ann-pinned-delete"
        )
        # A pinned banner speaks for its promotion: a change there redraws it.
        from leb.catalog.models import Promotion

        post_save.connect(_forget, sender=Promotion, weak=False, dispatch_uid="ann-promo-save")
        post_delete.connect(_forget, sender=Promotion, weak=False, dispatch_uid="ann-promo-delete")
