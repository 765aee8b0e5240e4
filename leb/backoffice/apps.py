from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    name = "leb.backoffice"
    label = "backoffice"
    verbose_name = _("Back office")

    def ready(self) -> None:
        from .roles import sync_roles_after_migrate

        # Models added later bring new permissions: every migrate puts the
        # roles back in step with their definitions.
        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="backoffice.sync_roles")
