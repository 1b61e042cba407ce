"""``kestrel store``: run the cold-store consumer alone (workers also run one each)."""

from __future__ import annotations

import argparse

from engine.cli.options import add_config, config_of

NAME = "store"
HELP = "fill the cold store from Kafka alone (each worker also runs this, see [cold_store])"


def configure(p: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    add_config(p)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    """Run in the foreground until SIGTERM/SIGINT."""
    import asyncio
    import logging
    import signal

    from engine.runtime.cold_store import ColdStoreConsumer

    cfg = config_of(args)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)

    async def main() -> None:
        consumer = ColdStoreConsumer(cfg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        consumer.start()
        await stop.wait()
        await consumer.stop(cfg.worker.shutdown_timeout_seconds)

    asyncio.run(main())
    return 0
