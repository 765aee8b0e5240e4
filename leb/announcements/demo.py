"""Sample announcements for the demo site, in all three languages: the two
demo promotions (linked, so their words come from the promotions), a fee
change and a maintenance window. Running it again updates the same rows."""

# Chinese text uses full-width punctuation, as it should.
# ruff: noqa: RUF001

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leb.catalog.models import Promotion

from .models import Announcement, Kind


def _samples(now: datetime) -> list[dict[str, Any]]:
    return [
        {
            # Title and text come from the promotion itself (see promotions.py);
            # the names here only label the row in the back office.
            "slug": "summer-bonus-2026",
            "kind": Kind.PROMOTION,
            "promotion_code": "hk-bonus-10",
            "pinned": True,
            "published_at": now - timedelta(days=2),
            "expires_at": now + timedelta(days=60),
            "title_en": "Bonus credit on HKD plans",
            "title_zh_hans": "港币套餐充值赠送话费",
            "title_zh_hant": "港幣套餐增值贈送通話額",
            "body_en": "",
            "body_zh_hans": "",
            "body_zh_hant": "",
        },
        {
            "slug": "keep30-2026",
            "kind": Kind.PROMOTION,
            "promotion_code": "hk-keep30",
            "pinned": False,
            "published_at": now - timedelta(days=5),
            "expires_at": now + timedelta(days=60),
            "title_en": "KEEP30: extra validity days",
            "title_zh_hans": "KEEP30：加送有效期",
            "title_zh_hant": "KEEP30：加送有效期",
            "body_en": "",
            "body_zh_hans": "",
            "body_zh_hant": "",
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
    """Create or refresh the sample announcements (idempotent). The promotion
    announcements link to the demo promotions by code; without them (the
    catalog demo not loaded) those announcements are left out."""
    loaded = []
    for sample in _samples(now):
        slug = sample.pop("slug")
        code = sample.pop("promotion_code", None)
        if code is not None:
            promotion = Promotion.objects.filter(code=code).first()
            if promotion is None:
                continue
            sample["promotion"] = promotion
        announcement, _created = Announcement.objects.update_or_create(
            slug=slug, defaults={**sample, "is_published": True}
        )
        loaded.append(announcement)
    return loaded
