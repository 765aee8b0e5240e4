from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from leb.announcements.models import Announcement, Kind

_serial = itertools.count(1)


def make_announcement(now: datetime, **fields: Any) -> Announcement:
    n = next(_serial)
    values: dict[str, Any] = {
        "slug": f"news-{n}",
        "kind": Kind.PROMOTION,
        "title_en": f"News {n}",
        "title_zh_hans": f"消息{n}号",
        "title_zh_hant": f"消息{n}號",
        "body_en": "First paragraph.\n\nSecond paragraph.",
        "body_zh_hans": "第一段。\n\n第二段。",
        "body_zh_hant": "第一段。\n\n第二段。",
        "published_at": now - timedelta(days=1),
        "is_published": True,
    }
    values.update(fields)
    return Announcement.objects.create(**values)
