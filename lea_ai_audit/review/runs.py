"""Audits logged to MLflow, for ``lea-audit review --tracking-uri URI``.

Each run tagged ``lea.report_id`` (``lea-audit run`` and ``audit(...)`` tag every run they log)
is downloaded once into the review's cache folder (report, cards, evidence, attestation and
sign-offs, as logged) with an ``mlflow.json`` beside it naming the run: a sign-off made in the
page is written there and logged back to the same run (``signoffs/`` artifacts and
``lea.signoff.*`` tags), as ``lea-audit signoff`` does for a logged audit. The sign-offs of a run
are fetched again at every listing, so an approval made elsewhere shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_RUNS = 200
_RUN_ID = re.compile(r"^[0-9a-zA-Z_-]{1,64}$")


def fetch_runs(tracking_uri: str, cache: Path | None, trust_store: Any = None
               ) -> Iterator[tuple[str, Path, str]]:
    """(run id, local folder, label) of every run that carries a report; a run whose
    artifacts cannot be fetched is skipped (the server log says why). The cards of a run
    that gained a sign-off are re-rendered in the cache, so they show it."""
    import tempfile

    from .._io import atomic_write_text
    from ..tracking import (
        SIDECAR_FILE,
        _client,
        _read_json,
        _short_timeouts,
        _signoff_name,
        _stored_uri,
    )

    if cache is None:
        cache = Path(tempfile.gettempdir()) / "lea-review-cache"
    cache.mkdir(parents=True, exist_ok=True)
    with _short_timeouts():
        client = _client(tracking_uri)
        exps = [e.experiment_id for e in client.search_experiments()]
        if not exps:
            return
        runs = client.search_runs(exps, filter_string="tags.`lea.report_id` LIKE '%'",
                                  max_results=MAX_RUNS, order_by=["attributes.start_time DESC"])
        for run in runs:
            run_id = run.info.run_id
            if not _RUN_ID.match(run_id):
                continue
            folder = cache / "mlflow" / run_id
            try:
                if not (folder / "report.json").is_file():
                    tmp = cache / "mlflow" / f".{run_id}.part"
                    shutil.rmtree(tmp, ignore_errors=True)
                    tmp.mkdir(parents=True)
                    client.download_artifacts(run_id, "", str(tmp))
                    if not (tmp / "report.json").is_file():
                        shutil.rmtree(tmp, ignore_errors=True)
                        continue
                    tmp.rename(folder)
                else:  # sign-offs made elsewhere since the last listing
                    names = [a.path for a in client.list_artifacts(run_id, "signoffs")]
                    # known by file name and by the digest MLflow names it with
                    fetched, have = False, set()
                    for p in (folder / "signoffs").glob("*.json"):
                        have |= {p.stem, _signoff_name(_read_json(p))}
                    for name in names:
                        base = Path(name).name
                        if Path(name).stem not in have and base.endswith(".json"):
                            with tempfile.TemporaryDirectory(dir=cache) as tmpd:
                                # MLflow puts a file at dst/<name> or dst/<path>: find it
                                client.download_artifacts(run_id, name, tmpd)
                                got = [p for p in Path(tmpd).rglob(base) if p.is_file()]
                                if got:
                                    (folder / "signoffs").mkdir(exist_ok=True)
                                    os.replace(got[0], folder / "signoffs" / base)
                                    fetched = True
                    if fetched:
                        from ..commands.oversight import _rerender_cards

                        _rerender_cards(folder, trust_store)
                atomic_write_text(folder / SIDECAR_FILE, json.dumps(
                    {"tracking_uri": _stored_uri(tracking_uri), "run_id": run_id,
                     "experiment_id": run.info.experiment_id,
                     "report_id": run.data.tags.get("lea.report_id")}, indent=2) + "\n")
            except Exception as exc:  # an unreachable artifact store: list the others
                print(f"review: MLflow run {run_id} skipped: {type(exc).__name__}: {exc}",
                      file=sys.stderr, flush=True)
                continue
            name = run.data.tags.get("mlflow.runName") or run_id
            yield run_id, folder, f"MLflow run {name}"
