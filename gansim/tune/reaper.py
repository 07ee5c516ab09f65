"""Free the worker placement groups of trials that Tune stopped (ASHA) or that ended while Ray Train shut down.

Why: a Ray Train V2 run reserves its workers' CPUs/GPUs in a placement group created by its controller actor.
Ray removes a placement group only when both its creator actor *and* its creator job are dead; the job here is
the long-lived `gansim tune` process. Ray Train's own PlacementGroupCleaner relies on the State API, which
needs the full dashboard (aiohttp etc., absent on many HPC installs). Without it, every trial killed by ASHA
keeps its workers' CPUs reserved and later trials wait forever. So after each trial, gansim removes placement
groups whose creator actor is dead; Tune's own per-trial groups (created by this driver, no creator actor)
and those of live trials are never touched.
"""

from __future__ import annotations

import logging
from typing import Any

from ray.tune import Callback

log = logging.getLogger(__name__)


def orphan_placement_groups() -> list[str]:
    """Hex ids of CREATED/PENDING placement groups whose creating actor is dead (read from the GCS table)."""
    import ray
    from ray.core.generated import gcs_pb2

    from gansim.compat import placement_group_table

    out = []
    for pg in placement_group_table():
        live = pg.state in (gcs_pb2.PlacementGroupTableData.CREATED, gcs_pb2.PlacementGroupTableData.PENDING,
                            gcs_pb2.PlacementGroupTableData.RESCHEDULING)
        has_actor_creator = any(pg.creator_actor_id) and pg.creator_actor_id != ray.ActorID.nil().binary()
        if live and has_actor_creator and pg.creator_actor_dead and not pg.is_detached:
            out.append(pg.placement_group_id.hex())
    return out


def reap_orphans() -> int:
    """Remove orphaned placement groups; returns how many. Never raises (a cleanup must not stop a study)."""
    try:
        from ray.util.placement_group import PlacementGroup, remove_placement_group

        ids = orphan_placement_groups()
        for hex_id in ids:
            import ray

            remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(hex_id))))
        return len(ids)
    except Exception as exc:  # private Ray API: degrade to Ray's own behaviour rather than fail
        log.debug("placement-group reaper skipped: %s", exc)
        return 0


class PlacementGroupReaper(Callback):
    """Tune callback: reap after every finished or failed trial, and now and then while trials run."""

    def __init__(self, every_steps: int = 50) -> None:
        self.every_steps = every_steps
        self.reaped = 0

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.reaped += reap_orphans()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.reaped += reap_orphans()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if iteration % self.every_steps == 0:
            self.reaped += reap_orphans()
