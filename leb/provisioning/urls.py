from django.urls import URLPattern, URLResolver, path

from . import notifications, simulator

app_name = "provisioning"

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "gsma/rsp2/es2plus/handleDownloadProgressInfo",
        notifications.progress_view,
        name="progress",
    ),
    # The built-in SM-DP+ simulator's ES2+ side; 404 unless LEB_SMDP_SIMULATOR is on.
    path(
        "simulator/smdp/gsma/rsp2/es2plus/<str:function>",
        simulator.es2_view,
        name="simulator_es2",
    ),
]
