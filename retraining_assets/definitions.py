"""The code location: every configured pipeline (the demo, and yours when configured), plus
the administrators' notifications shared by all of them."""

from __future__ import annotations

import dagster as dg

from retraining_assets.core.pipeline import Pipeline, configured_pipelines
from retraining_assets.defs.factory import build_pipeline_defs
from retraining_assets.defs.io_managers import FrameIOManagerResource
from retraining_assets.defs.jobs import job_names
from retraining_assets.defs.notifications import build_notification_defs
from retraining_assets.defs.resources import (
    CLOCK,
    PLATFORM,
    RECORDS,
    ClockResource,
    PlatformResource,
    RecordsResource,
)
from retraining_assets.errors import is_input_error
from retraining_assets.settings import Settings, load_settings


def build_definitions(
    settings: Settings, pipelines: list[Pipeline] | None = None
) -> dg.Definitions:
    pipelines = pipelines if pipelines is not None else configured_pipelines(settings)
    watched = [name for pipeline in pipelines for name in job_names(pipeline.name)]
    return dg.Definitions.merge(
        *(build_pipeline_defs(pipeline) for pipeline in pipelines),
        build_notification_defs(watched, settings),
        dg.Definitions(
            resources={
                PLATFORM: PlatformResource.from_settings(settings),
                CLOCK: ClockResource(),
                RECORDS: RecordsResource.of(pipelines),
                "io_manager": FrameIOManagerResource(base_url=settings.io_manager_url),
            }
        ),
    )


try:
    defs = build_definitions(load_settings())
except Exception as error:
    if not is_input_error(error):
        raise
    raise error.with_traceback(None) from None  # the line naming the setting, not its frames
