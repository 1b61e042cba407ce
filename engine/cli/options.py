"""Arguments several commands share."""

from __future__ import annotations

import argparse

from engine.config import Config, load_config

__all__ = ["add_config", "config_of"]


def add_config(p: argparse.ArgumentParser) -> None:
    """Add ``--config FILE``."""
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $KESTREL_CONFIG, else built-in defaults)",
    )


def config_of(args: argparse.Namespace) -> Config:
    """The configuration ``--config`` names (see :func:`engine.config.load_config`)."""
    return load_config(args.config)
