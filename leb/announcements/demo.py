"""Sample announcements for the demo site: one of each kind, in all three
languages. Running it again updates the same three rows."""

# Chinese text uses full-width punctuation, as it should.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .models import Announcement, Kind


def _samples(now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "slug": "summer-bonus-2026",
            "kind": Kind.PROMOTION,
            "pinned": True,
            "published_at": now - timedelta(days=2),
            "expires_at": now + timedelta(days=60),
            "title_en": "Summer bonus: 20% extra credit on HK$100 top-ups",
            "title_zh_hans": "夏日优惠：充值100港元额外赠送20%话费",
            "title_zh_hant": "夏日優惠：增值100港元額外贈送20%話費",
            "body_en": (
                "Top up HK$100 or more before the end of the promotion and we add 20% "
                "extra credit to your line.\n\n"
                "The bonus is added at once and the validity is extended as usual. "
                "One bonus per line per month."
            ),
            "body_zh_hans": (
                "活动期间充值100港元或以上，即可额外获赠20%话费。\n\n"
                "赠送话费即时到账，有效期照常延长。每个号码每月限享一次。"
            ),
            "body_zh_hant": (
                "活動期間增值100港元或以上，即可額外獲贈20%話費。\n\n"
                "贈送話費即時到賬，有效期照常延長。每個號碼每月限享一次。"
            ),
        },
        {
            "slug": "fee-change-restore-2026",
            "kind": Kind.FEE_CHANGE,
            "pinned": False,
            "published_at": now - timedelta(days=10),
            "expires_at": None,
            "title_en": "Change to the restore fee for suspended lines",
            "title_zh_hans": "停机号码复机费调整通知",
            "title_zh_hant": "暫停號碼復機費調整通知",
            "body_en": (
                "From next month, restoring a suspended line costs HK$10, taken from the "
                "top-up that restores it.\n\n"
                "Lines that are active or in their grace period are not affected. "
                "Top up before your validity date to avoid the fee."
            ),
            "body_zh_hans": (
                "自下月起，恢复已停机的号码将收取10港元复机费，从恢复时的充值金额中扣除。\n\n"
                "正常使用或处于宽限期的号码不受影响。请在有效期届满前充值，以免产生此费用。"
            ),
            "body_zh_hant": (
                "由下月起，恢復已暫停的號碼將收取10港元復機費，從恢復時的增值金額中扣除。\n\n"
                "正常使用或處於寬限期的號碼不受影響。請在有效期屆滿前增值，以免產生此費用。"
            ),
        },
        {
            "slug": "maintenance-window-2026",
            "kind": Kind.MAINTENANCE,
            "pinned": False,
            "published_at": now - timedelta(days=1),
            "expires_at": now + timedelta(days=7),
            "title_en": "Planned maintenance: online top-up paused for two hours",
            "title_zh_hans": "系统维护：网上充值暂停两小时",
            "title_zh_hant": "系統維護：網上增值暫停兩小時",
            "body_en": (
                "Online top-up will be unavailable on Sunday from 02:00 to 04:00 "
                "Hong Kong time while we upgrade our systems.\n\n"
                "Calls, SMS and your validity are not affected. You can still top up "
                "through an authorised agent during this time."
            ),
            "body_zh_hans": (
                "因系统升级，本周日香港时间凌晨2时至4时暂停网上充值服务。\n\n"
                "通话、短信及号码有效期均不受影响。维护期间仍可通过授权代理商充值。"
            ),
            "body_zh_hant": (
                "因系統升級，本週日香港時間凌晨2時至4時暫停網上增值服務。\n\n"
                "通話、短訊及號碼有效期均不受影響。維護期間仍可透過授權代理商增值。"
            ),
        },
    ]


def load_demo_announcements(now: datetime) -> list[Announcement]:
    """Create or refresh the three sample announcements (idempotent)."""
    loaded = []
    for sample in _samples(now):
        slug = sample.pop("slug")
        announcement, _created = Announcement.objects.update_or_create(
            slug=slug, defaults={**sample, "is_published": True}
        )
        loaded.append(announcement)
    return loaded
