"""The Faust app: one per worker process. Tables and agents attach to it on import."""

from __future__ import annotations

from pathlib import Path

import faust

from bus.settings import get_settings


def create_app() -> faust.App:
    s = get_settings()
    # Imported here so the error middleware is in place before Faust builds its aiohttp app.
    from bus.http.middleware import middlewares

    Path(s.data_dir).parent.mkdir(parents=True, exist_ok=True)  # faust makes only the leaf
    return faust.App(
        s.app_id,
        broker=[f"kafka://{server}" for server in s.bootstrap_servers],
        store="rocksdb://",  # faust uses rocksdict when python-rocksdb is absent
        datadir=s.data_dir,
        topic_replication_factor=s.replication_factor,
        topic_partitions=s.default_partitions,
        producer_acks=-1,
        autodiscover=False,
        web_application_options={
            "middlewares": middlewares(),
            "client_max_size": s.limits.max_request_bytes,
        },
    )


app = create_app()
