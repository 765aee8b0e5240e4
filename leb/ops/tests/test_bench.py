"""The benchmarks run end to end in a tiny configuration. Speed is not tested
here: the goals live in `leb bench` output and docs/performance.md."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from leb.ops.bench.agents import run_agents_bench
from leb.ops.bench.fulfil import run_fulfil_bench
from leb.ops.bench.sweep import run_sweep_bench
from leb.ops.management.commands.bench import BENCHES, QUICK, SummaryRow, render_summary
from leb.ops.management.commands.bench import Command as BenchCommand

# transaction=True: the raw replay and the worker processes use their own
# connections, which only see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def test_fulfil_bench_fulfils_every_order_and_the_ledger_verifies() -> None:
    # given an empty database
    # when
    result = run_fulfil_bench(orders=20, clients=1)

    # then
    assert [(p.name, p.orders, p.errors) for p in result.phases] == [
        ("spread", 20, 0),
        ("hot", 20, 0),
    ]
    assert result.fulfilled == 40
    # the raw replay wrote its orders too, and the books still balance
    assert [(r.name, r.orders, r.transactions) for r in result.raw] == [
        ("spread", 20, 2),
        ("hot", 20, 2),
    ]
    assert result.verify_ok, result.verify_problems


@pytest.mark.postgres
def test_fulfil_bench_with_worker_processes() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several clients need a database other processes can reach")
    # given an empty database
    # when
    result = run_fulfil_bench(orders=10, clients=2)

    # then
    assert [(p.orders, p.errors) for p in result.phases] == [(10, 0), (10, 0)]
    assert [r.orders for r in result.raw] == [10, 10]
    assert result.fulfilled == 20
    assert result.verify_ok, result.verify_problems


def test_sweep_bench_sweeps_exactly_the_due_lines_and_the_ledger_verifies() -> None:
    # given an empty database
    # when
    result = run_sweep_bench(lines=400, due=40)

    # then
    assert result.swept_lines == 40
    assert result.complete
    assert result.terminated == result.expected_terminated > 0
    assert result.forfeited_minor["HKD"] == result.expected_forfeited > 0
    assert result.plan
    assert result.verify_ok, result.verify_problems


@pytest.mark.postgres
def test_sweep_bench_with_two_workers_splits_the_due_lines() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several sweep workers need SKIP LOCKED and a shared database")
    # given an empty database
    # when
    result = run_sweep_bench(lines=400, due=40, workers=2)

    # then every due line was swept once, by one worker or the other
    assert result.swept_lines == 40
    assert result.complete
    assert result.verify_ok, result.verify_problems


def test_agents_bench_sells_every_top_up_once_from_one_float() -> None:
    # given an empty database
    # when
    result = run_agents_bench(lines=6, clients=1, count=12)

    # then every top-up was sold once, from the one float, and the books balance
    assert (result.service.topups, result.service.errors) == (12, 0)
    assert result.service.rate > 0
    assert result.verified is not None
    assert result.verified.ok, result.verified.problems
    # 12 timed and the client's warm-up sale, each 10,000 less the agent's 8 %
    assert result.verified.completed == 13
    assert result.verified.float_available == result.seeded.deposit - 13 * 9_200


@pytest.mark.postgres
def test_agents_bench_with_worker_processes_on_one_float() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("several clients need a database other processes can reach")
    # given an empty database
    # when two clients sell at once from the one float
    result = run_agents_bench(lines=6, clients=2, count=10)

    # then
    assert (result.service.clients, result.service.topups, result.service.errors) == (2, 10, 0)
    assert result.verified is not None
    assert result.verified.ok, result.verified.problems
    # and one warm-up sale per client
    assert result.verified.completed == 12


@pytest.mark.own_database
def test_leb_bench_agents_prints_figures_and_the_books_balance(tmp_path: Path) -> None:
    # given a scratch SQLite file (the command recreates it)
    out = io.StringIO()

    # when: a tiny run of both phases, the HTTP one through gunicorn
    call_command(
        "bench",
        "agents",
        "--database-url",
        f"sqlite:///{tmp_path / 'agents_bench.sqlite3'}",
        "--lines",
        "3",
        "--topups",
        "6",
        "--http-seconds",
        "1",
        "--http-warmup",
        "0.5",
        "--http-connections",
        "2",
        "--http-processes",
        "1",
        "--web-workers",
        "1",
        stdout=out,
    )

    # then
    text = out.getvalue()
    assert re.search(r"service layer: 6 top-ups in [\d.]+ s = [\d,.]+ top-ups/s", text), text
    http = re.search(
        r"HTTP: (\d+) signed top-ups in 1 s = [\d,.]+/s .*p50 [\d.]+ ms, p99 [\d.]+ ms; (\d+) errors",
        text,
    )
    assert http, text
    assert int(http.group(1)) > 0 and http.group(2) == "0"
    assert "goal: >= 500 signed top-ups/s" in text
    assert re.search(r"books: \d+ completed top-ups, each once", text), text
    assert "ledger verify on the benchmark database: OK" in text


@pytest.mark.own_database
def test_leb_bench_http_prints_both_scenarios_and_the_books_balance(tmp_path: Path) -> None:
    # given a scratch SQLite file (the command recreates it)
    out = io.StringIO()

    # when: both scenarios through gunicorn, for a second each
    call_command(
        "bench",
        "http",
        "--database-url",
        f"sqlite:///{tmp_path / 'http_bench.sqlite3'}",
        "--lines",
        "4",
        "--seconds",
        "1",
        "--warmup",
        "0.5",
        "--connections",
        "2",
        "--processes",
        "1",
        "--web-workers",
        "1",
        stdout=out,
    )

    # then each scenario prints its figures beside the service layer's
    text = out.getvalue()
    assert "LEB_API_LINE_CHECK_RATE empty" in text
    for plural, noun in (("quick checks", "quick check"), ("top-ups", "top-up")):
        http = re.search(
            rf"  HTTP: ([\d,]+) {plural} in 1 s = [\d,.]+ {plural}/s; ([\d,]+) requests = "
            rf"[\d,.]+ requests/s",
            text,
        )
        assert http, text
        assert int(http.group(1).replace(",", "")) > 0
        assert re.search(
            rf"latency per {noun} p50 [\d.]+ ms, p99 [\d.]+ ms; per request p50 [\d.]+ ms, "
            r"p99 [\d.]+ ms",
            text,
        ), text
        assert f"; 0 {plural} failed" in text
        assert re.search(
            rf"  service layer: [\d,]+ {plural} in 1 s = [\d,.]+ {plural}/s .*; 0 failed", text
        ), text
        assert re.search(rf"CPU per {noun}: gunicorn [\d.]+ ms", text), text
    # a top-up is several requests; a quick check one
    assert re.search(r"statuses \{'200': \d+\}; 0 quick checks failed", text), text
    assert re.search(r"statuses \{'200': \d+, '201': \d+, '302': \d+\}; 0 top-ups", text), text
    assert len(re.findall(r"  HTTP/service = [\d.]+", text)) == 2
    assert len(re.findall(r"  CPU in the timed window \(cores busy, of \d+\): gunicorn", text)) == 2
    assert len(re.findall(r"  limit: ", text)) == 2
    assert "goal: >= 1,000 quick checks/s: " in text
    assert "goal: >= 300 top-ups/s: " in text
    assert "p99 < 50 ms per request: " in text
    books = re.search(
        r"books: ([\d,]+) top-ups fulfilled, each once.*\{'fulfilled': ([\d,]+)\}", text
    )
    assert books, text
    assert books.group(1) == books.group(2) and int(books.group(1)) > 0
    assert "ledger verify on the benchmark database: OK" in text


@pytest.mark.django_db(transaction=False)
def test_leb_bench_all_needs_postgresql(tmp_path: Path) -> None:
    # given a SQLite URL
    # when / then
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command(
            "bench", "all", "--quick", "--database-url", f"sqlite:///{tmp_path / 'bench.sqlite3'}"
        )


@pytest.mark.django_db(transaction=False)
def test_leb_bench_all_quick_parameters_are_each_benchmarks_own_options() -> None:
    # given the command and its table of quick parameters
    command = BenchCommand()

    # when each row is parsed as `leb bench <bench> <row>` would be
    parsed = {
        bench: command.bench_options(bench, [*QUICK[bench], "--database-url", "postgres://x/y"])
        for bench in BENCHES
    }

    # then every bench has a row, and every value reached its option
    assert set(QUICK) == set(BENCHES) == {"fulfil", "sweep", "reminders", "agents", "http"}
    assert parsed["fulfil"]["orders"] == 50 and parsed["fulfil"]["clients"] == 2
    assert parsed["sweep"]["lines"] == 20_000 and parsed["sweep"]["compare_lines"] == 2_000
    assert parsed["reminders"]["compare_lines"] == 0
    assert parsed["agents"]["seconds"] == 3 and parsed["agents"]["web_workers"] == 2
    assert parsed["http"]["seconds"] == 3.0 and parsed["http"]["scenario"] == "all"
    assert all(options["database_url"] == "postgres://x/y" for options in parsed.values())
    # and without --quick each runs with its defaults
    assert command.bench_options("http", [])["seconds"] == 15.0


def test_bench_summary_renders_one_aligned_row_per_figure() -> None:
    # given figures as the benches record them
    rows = [
        SummaryRow(
            "fulfil spread",
            "82 orders/s (8 clients)",
            "0.039 x pgbench",
            ">= 0.5 x pgbench",
            "MISSED",
        ),
        SummaryRow(
            "http quick-check", "1,204.0 quick checks/s", "0.52 x service", ">= 1,000/s", "met"
        ),
    ]

    # when
    lines = render_summary(rows)

    # then a header, a rule and the rows, the columns aligned
    assert lines[0].split() == ["bench", "figure", "ratio", "goal", "verdict"]
    assert set(lines[1]) == {"-"}
    assert lines[2].startswith("fulfil spread ") and lines[2].endswith("MISSED")
    assert lines[3].startswith("http quick-check ") and lines[3].endswith("met")
    assert lines[2].index("0.039") == lines[3].index("0.52")
    assert lines[2].index(">= 0.5") == lines[3].index(">= 1,000")
