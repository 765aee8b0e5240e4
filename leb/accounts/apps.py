from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "leb.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .actions import stamp_session

        # Every sign-in (portal or back office) joins the account's current epoch.
        user_logged_in.connect(
            lambda sender, request, user, **kwargs: stamp_session(request, user),
            dispatch_uid="leb.accounts.stamp_session",
            weak=False,
        )
