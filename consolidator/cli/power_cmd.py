"""CLI of the storage and power area: ``power read``, ``power wake``, ``db export|info|downsample``,
``bench store``. Meter and wake failures print one line and exit 1; bad input is a UserError (exit 2)."""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from consolidator.domain.errors import UserError
from consolidator.domain.registry import Table, describe
from consolidator.power.registry import METER_TIMEOUT, METERS, RETRY, WAKERS

power_app = typer.Typer(help="Read node power meters and wake hosts (IPMI, Redfish, WoL, AMT, RAPL, model).",
                        no_args_is_help=True)
db_app = typer.Typer(help="Run databases: export to CSV, inspect, downsample.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print their figures.", no_args_is_help=True)


# Choices from the one registration (power.registry), which imports no meter library.
MeterKind = StrEnum("MeterKind", {name: name for name in METERS.names()})  # type: ignore[misc]
WakeKind = StrEnum("WakeKind", {name: name for name in WAKERS.names()})  # type: ignore[misc]
RETRY_PARAM = {p.name: p for p in RETRY}


Address = Annotated[str | None, typer.Option("--address", help="HOST[:PORT] (or a URL for redfish/amt)")]
User = Annotated[str, typer.Option("--username", help="BMC / AMT user")]
PasswordFile = Annotated[Path | None, typer.Option("--password-file", help="file whose first line is the password")]
AsJson = Annotated[bool, typer.Option("--json", help="print one JSON object")]


def _quiet() -> None:
    """Keep stderr to the one result line: per-attempt warnings are in the JSON ``errors`` already."""
    for name in ("sushy", "consolidator.power", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _fail(message: str, payload: dict[str, Any] | None, as_json: bool) -> None:
    if as_json and payload is not None:
        typer.echo(json.dumps(payload))
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@power_app.command("read")
def power_read(
    meter: Annotated[MeterKind, typer.Option("--meter", help=" | ".join(METERS.names()))],
    address: Address = None,
    username: User = "admin",
    password_file: PasswordFile = None,
    cpu_load: Annotated[float | None, typer.Option(help="model: CPU load in cores (default: this machine's)")] = None,
    cores: Annotated[float | None, typer.Option(help="model: the host's cores (default: this machine's)")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds to wait for the meter")] = METER_TIMEOUT.number,
    insecure: Annotated[bool, typer.Option(help="redfish: do not verify the TLS certificate")] = False,
    as_json: AsJson = False,
) -> None:
    """Read one node's power draw in watts (`consolidator power meters` lists the kinds)."""
    from consolidator.power.cli_support import build_meter, read_once
    from consolidator.power.meters import MeterError

    _quiet()
    try:
        m = build_meter(meter.value, address, {
            "username": username, "password_file": _path(password_file), "cpu_load": cpu_load, "cores": cores,
            "timeout_s": timeout_s, "insecure": insecure})
        watts = read_once(m, timeout_s + 2.0)  # the meter's own timeout names the peer; this is a backstop
    except MeterError as exc:
        _fail(str(exc), None, as_json)
    typer.echo(json.dumps({"watts": watts, "meter": meter.value}) if as_json else f"{watts:.1f} W")


@power_app.command("wake")
def power_wake(
    method: Annotated[WakeKind, typer.Option("--method", help=" | ".join(WAKERS.names()))],
    address: Address = None,
    mac: Annotated[str | None, typer.Option("--mac", help="wol: the host's MAC address")] = None,
    username: User = "admin",
    password_file: PasswordFile = None,
    attempts: Annotated[int, typer.Option(help="attempts before giving up")] = int(
        RETRY_PARAM["attempts_per_method"].number),
    verify_tcp: Annotated[str | None, typer.Option(help="HOST:PORT that answers once the host is up")] = None,
    verify_timeout_s: Annotated[float, typer.Option("--verify-timeout", help="seconds per attempt")] = RETRY_PARAM[
        "verify_timeout_s"].number,
    backoff_s: Annotated[float, typer.Option("--backoff", help="first pause between attempts, s")] = RETRY_PARAM[
        "backoff_s"].number,
    insecure: Annotated[bool, typer.Option(help="redfish/amt: do not verify the TLS certificate")] = False,
    as_json: AsJson = False,
) -> None:
    """Wake a host and verify it: by default IPMI/Redfish check the BMC reports power on; WoL and AMT
    are verified only with --verify-tcp (otherwise a sent request counts). `consolidator power wakers`
    lists the methods."""
    from consolidator.power.cli_support import build_waker

    _quiet()
    waker = build_waker(method.value, address, {
        "mac": mac, "username": username, "password_file": _path(password_file), "attempts_per_method": attempts,
        "verify_tcp": verify_tcp, "verify_timeout_s": verify_timeout_s, "backoff_s": backoff_s,
        "insecure": insecure})
    import asyncio

    result = asyncio.run(waker.wake())
    payload = {"ok": result.ok, "attempts": len(result.attempts), "method": result.method,
               "state": result.state.value, "verified": waker.verify is not None,
               "errors": [a.error for a in result.attempts if a.error]}
    if not result.ok:
        _fail(result.summary(), payload, as_json)
    typer.echo(json.dumps(payload) if as_json else result.summary())


@power_app.command("meters")
def power_meters(as_json: AsJson = False) -> None:
    """The kinds of power meter, with their parameters (keys of a power configuration) and defaults."""
    _list(METERS, as_json)


@power_app.command("wakers")
def power_wakers(as_json: AsJson = False) -> None:
    """The wake methods, with their parameters, and the retry parameters every host's wake shares."""
    _list(WAKERS, as_json, {"name": "(every host)", "summary": "retry and verification of a host's wake",
                            "params": {p.name: p.as_dict() for p in RETRY}})


def _list(table: Table[Any], as_json: bool = False, extra: dict[str, Any] | None = None) -> None:
    rows = describe(table) + ([extra] if extra else [])
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['name']}: {row['summary']}")
        for name, param in row["params"].items():
            default = "required" if param.get("required") else f"default {param['default']}"
            typer.echo(f"    {name} ({param['type']}, {default}): {param['help']}")


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


@db_app.command("export")
def db_export(
    database: Annotated[str, typer.Argument(help="run.sqlite path, sqlite:///… or postgresql://…")],
    out: Annotated[Path, typer.Option("--out", help="folder for <table>.csv files")],
    table: Annotated[list[str] | None, typer.Option("--table", help="only these tables (repeatable)")] = None,
    as_json: AsJson = False,
) -> None:
    """Export a run database to CSV, one file per table."""
    from consolidator.storage import open_store
    from consolidator.storage.engine import parse_target
    from consolidator.storage.export import export_csv

    _must_exist(database)
    with open_store(database) as store:
        written = export_csv(store, out, table)
    if as_json:
        typer.echo(json.dumps({"out": str(out), "rows": written, "database": parse_target(database).display}))
    else:
        for name, rows in written.items():
            typer.echo(f"{out / (name + '.csv')}: {rows} rows")


@db_app.command("info")
def db_info(database: Annotated[str, typer.Argument(help="path or URL")], as_json: AsJson = False) -> None:
    """Schema revision, row counts, last sample time and run metadata of a run database."""
    from consolidator.storage import open_store
    from consolidator.storage.engine import head_revision
    from consolidator.storage.schema import ALL_TABLES

    _must_exist(database)
    with open_store(database) as store:
        info = {"revision": head_revision(), "rows": {t: store.count(t) for t in ALL_TABLES},
                "last_t_s": store.resume_state().last_t_s, "meta": store.meta()}
    typer.echo(json.dumps(info) if as_json else json.dumps(info, indent=2))


@db_app.command("downsample")
def db_downsample(
    database: Annotated[str, typer.Argument(help="path or URL")],
    now_s: Annotated[float, typer.Option(help="run time to count ages from (default: last sample)")] = -1.0,
    raw_keep_s: Annotated[float, typer.Option(help="keep raw samples this long")] = 3600.0,
    bucket_s: Annotated[float, typer.Option(help="rollup bucket width")] = 60.0,
    rollup_keep_s: Annotated[float | None, typer.Option(help="drop rollups older than this")] = None,
) -> None:
    """Fold old raw samples into per-bucket rollups (and optionally drop old rollups)."""
    from consolidator.storage import open_store
    from consolidator.storage.retention import RetentionPolicy, apply_retention

    policy = RetentionPolicy(raw_keep_s, bucket_s, rollup_keep_s)
    _must_exist(database)
    with open_store(database) as store:
        now = now_s if now_s >= 0 else (store.resume_state().last_t_s or 0.0)
        result = apply_retention(store, now, policy)
    typer.echo(json.dumps({"raw_rows_folded": result.raw_rows_folded, "rollup_rows_added": result.rollup_rows_added,
                           "rollup_rows_dropped": result.rollup_rows_dropped}))


@bench_app.command("store")
def bench_store_cmd(
    seconds: Annotated[int, typer.Option(help="ticks of 100 hosts + 1,000 VMs to write")] = 200,
    postgres_url: Annotated[str | None, typer.Option(help="PostgreSQL to use (default: a private temp server)")] = None,
    as_json: AsJson = False,
) -> None:
    """Sample ingestion into SQLite and PostgreSQL, one flush per tick (target: >= 100,000 samples/s)."""
    from consolidator.storage.bench import bench_store

    if seconds < 1:
        raise UserError("must be >= 1", field="--seconds")
    figures = bench_store(seconds, postgres_url)
    if as_json:
        typer.echo(json.dumps(figures))
    else:
        for key, value in figures.items():
            typer.echo(f"{key}: {'n/a' if value is None else f'{value:,.0f}'}")


def _must_exist(database: str) -> None:
    """Reading commands must not create an empty database where the user mistyped a path."""
    if "://" not in database and not Path(database).exists():
        raise UserError("no such database file", source=database)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(power_app, name="power")
    app.add_typer(db_app, name="db")
    app.add_typer(bench_app, name="bench")

