"""``kestrel check-config FILE``: validate a config file; exit 1 listing every problem."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.config import load_config

NAME = "check-config"
HELP = "validate a config file; exit 1 listing every problem"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    p.add_argument("file", type=Path)


def run(args: argparse.Namespace) -> int:
    """Print ``FILE: ok (...)``; a bad file raises :class:`~engine.config.ConfigError`."""
    cfg = load_config(args.file)
    print(f"{args.file}: ok ({len(cfg.channels)} channel(s), {len(cfg.overrides)} override(s))")
    return 0
