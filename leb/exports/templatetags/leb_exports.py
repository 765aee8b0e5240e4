"""`{% export_links %}`: the "Export" links of a changelist, one per dataset
that takes this list's filters and that the member of staff may export."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from ..registry import registry

register = template.Library()


@register.simple_tag(takes_context=True)
def export_links(context: Any) -> list[dict[str, str]]:
    request = context.get("request")
    changelist = context.get("cl")
    if request is None or changelist is None:
        return []
    label = changelist.opts.label_lower
    links = []
    for dataset in registry.for_changelist(label):
        if not request.user.has_perm(dataset.permission):
            continue
        params = [(key, value) for key, value in request.GET.items() if key != "dataset"]
        query = urlencode([("dataset", dataset.name), *params])
        links.append(
            {
                "url": f"{reverse('admin:exports_exportjob_request')}?{query}",
                "label": _("Export: %(dataset)s") % {"dataset": dataset.label},
            }
        )
    return links
