"""`leb esim`: order a line's eSIM, and play the phone against the built-in
SM-DP+ simulator (download, install, enable, disable, delete)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client

from leb.lines.identifiers import normalize_iccid
from leb.lines.models import Line
from leb.provisioning import simulator
from leb.provisioning.actions import ProvisioningError, do_order_profile
from leb.provisioning.tasks import deliver_progress, use_transport

PHONE_ACTIONS = ("install", "enable", "disable", "delete")


def _client_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    from django.conf import settings

    path = url.removeprefix(settings.SITE_URL.rstrip("/"))
    extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return int(
        Client().post(path, data=body, content_type="application/json", headers=extra).status_code
    )


class Command(BaseCommand):
    help = "Order eSIM profiles and act as a phone against the SM-DP+ simulator."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        stock = sub.add_parser("stock", help="put lines' profiles in the simulator's stock")
        stock.add_argument("iccids", nargs="*")
        stock.add_argument("--all-lines", action="store_true", help="every line leb knows")
        order = sub.add_parser("order", help="downloadOrder + confirmOrder for a line")
        order.add_argument("iccid")
        order.add_argument("--eid", default="")
        download = sub.add_parser("download", help="the phone downloads a profile")
        download.add_argument("code", help="activation code (LPA:1$...) or matching ID")
        download.add_argument("--eid", required=True)
        download.add_argument("--confirmation-code", default="")
        download.add_argument("--install", action="store_true", help="install it at once")
        for name in PHONE_ACTIONS:
            action = sub.add_parser(name, help=f"the phone reports: profile {name}")
            action.add_argument("profile", help="ICCID, matching ID or activation code")
            action.add_argument("--eid", default="")
        for child in sub.choices.values():
            child.add_argument(
                "--now",
                action="store_true",
                help="deliver the progress notification here and now, without a worker",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "stock":
                self._stock(options)
            elif action == "order":
                self._order(options)
            else:
                self._phone(action, options)
        except (ProvisioningError, simulator.PhoneError) as exc:
            message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(message) from exc

    def _need_simulator(self) -> None:
        if not simulator.enabled():
            raise CommandError("The SM-DP+ simulator is off (LEB_SMDP_SIMULATOR).")

    def _stock(self, options: dict[str, Any]) -> None:
        self._need_simulator()
        iccids = []
        for raw in options["iccids"]:
            try:
                iccids.append(normalize_iccid(raw))
            except ValidationError as exc:
                raise CommandError(f"{raw}: {exc.messages[0]}") from exc
        if options["all_lines"]:
            iccids += list(Line.objects.values_list("iccid", flat=True))
        added = simulator.stock(iccids)
        self.stdout.write(f"{added} profiles added to the simulator's stock.")

    def _order(self, options: dict[str, Any]) -> None:
        try:
            iccid = normalize_iccid(options["iccid"])
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        line = Line.objects.filter(iccid=iccid).first()
        if line is None:
            raise CommandError(f"No line with ICCID {iccid}.")
        profile = do_order_profile(line, eid=options["eid"], actor="cli")
        self.stdout.write(f"{profile.iccid}: {profile.state}")
        if profile.activation_code:
            self.stdout.write(f"activation code: LPA:{profile.activation_code}")

    def _phone(self, action: str, options: dict[str, Any]) -> None:
        self._need_simulator()
        if action == "download":
            results = [
                simulator.phone_download(
                    options["code"],
                    eid=options["eid"],
                    confirmation_code=options["confirmation_code"],
                )
            ]
            if options["install"]:
                results.append(simulator.phone_act("install", results[0].iccid, eid=options["eid"]))
        else:
            results = [simulator.phone_act(action, options["profile"], eid=options["eid"])]
        for result in results:
            self.stdout.write(f"{result.iccid}: {result.state} on the SM-DP+")
        if options["now"]:
            self._deliver_now()
        else:
            self.stdout.write("Progress notification queued; the worker delivers it to leb.")

    def _deliver_now(self) -> None:
        from django_tasks_db.models import DBTaskResult

        rows = DBTaskResult.objects.filter(
            task_path="leb.provisioning.tasks.deliver_progress", status="READY"
        ).order_by("enqueued_at", "pk")
        with use_transport(_client_transport):
            for row in rows:
                row.status = "SUCCESSFUL"
                row.save(update_fields=["status"])
                outcome = deliver_progress.call(*row.args_kwargs["args"])
                self.stdout.write(f"notification: {outcome}")
