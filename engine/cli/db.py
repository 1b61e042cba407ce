"""``kestrel db migrate``: bring the cold store's schema up to date."""

from __future__ import annotations

import argparse

from engine.cli.options import add_config, config_of

NAME = "db"
HELP = "the cold store's database (schema migrations)"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's actions and arguments."""
    actions = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    m = actions.add_parser(
        "migrate", help="apply the schema migrations not applied yet ([cold_store] url)"
    )
    add_config(m)
    m.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Exit 0 once the schema is current, 1 if the database cannot be used."""
    import json
    import sys

    from engine.sinks.cold_store import StoreError, open_store

    cfg = config_of(args)
    store = open_store(cfg.cold_store_url)
    try:
        applied = store.migrate()
        version = store.schema_version()
    except StoreError as exc:
        print(f"kestrel db migrate: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps({"store": store.shown_url, "applied": applied, "version": version}))
    elif applied:
        print(f"kestrel db migrate: {store.shown_url}: applied {applied}; schema version {version}")
    else:
        print(f"kestrel db migrate: {store.shown_url}: up to date (schema version {version})")
    return 0
