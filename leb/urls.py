from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from leb.observability import views as observability

admin.site.site_header = _("leb back office")
admin.site.site_title = _("leb back office")
admin.site.index_title = _("Lines, top-ups and the books")

handler404 = "leb.common.problems.not_found"

urlpatterns = [
    path("ops/", admin.site.urls),
    path("healthz", observability.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    path("metrics", observability.metrics_view, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("leb.accounts.urls")),
    path("", include("leb.payments.urls")),
    path("", include("leb.announcements.urls")),
    path("", include("leb.apiv1.urls")),
    path("agent/v1/", include("leb.agents.urls")),
    path("agent/portal/", include("leb.agents.urls_portal")),
    path("", include("leb.agents.urls_public")),
    path("", include("leb.mylines.urls")),
    path("", include("leb.webtopup.urls")),
    path("", include("leb.receipts.urls")),
    path("", include("leb.support.urls")),
    path("", include("leb.notifications.urls")),
    path("", include("leb.provisioning.urls")),
    path("", include("leb.reminders.urls")),
    path("", include("leb.planner.urls")),
    path("", include("leb.autokeep.urls")),
    path("", include("leb.vouchers.urls")),
    path("", include("leb.telephony.urls")),
    path("", include("leb.portal.urls")),
]
