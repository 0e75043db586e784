"""The ``--engine ray`` options of ``index build``: declared once, refused in one sentence when the
build runs here, and turned into :class:`audioscan.api.RayOptions`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

import audioscan.api as api


def _json_object(what: str, numbers: bool) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    """A click callback reading a JSON object given inline or as a file's path (``@file.json`` or a path)."""
    def read(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        text = value
        source = Path(value.removeprefix("@"))
        if value.startswith("@") or (not value.lstrip().startswith("{") and source.is_file()):
            try:
                text = source.read_text(encoding="utf-8")
            except OSError as err:
                raise click.BadParameter(f"cannot read {source} ({err.strerror or err})") from None
        try:
            found = json.loads(text)
        except ValueError:
            raise click.BadParameter(f"is not a JSON object (or the path of a file holding one) for {what}") from None
        if not isinstance(found, dict) or (numbers and not all(
                isinstance(amount, (int, float)) and not isinstance(amount, bool) and amount > 0
                for amount in found.values())):
            raise click.BadParameter(f"needs a JSON object of {what}")
        return found
    return read


# (name, default, option): every option of the Ray engine, and the value that means "not given".
RAY_OPTIONS: list[tuple[str, Any, Callable]] = [
    ("ray_address", None, click.option(
        "--ray-address", default=None,
        help="With --engine ray: the cluster to join (auto, host:6379, ray://head:10001; default $RAY_ADDRESS, "
             "else a local Ray on this machine's cores).")),
    ("ray_cpus", None, click.option(
        "--ray-cpus", type=click.IntRange(1), default=None,
        help="With --engine ray and no cluster address: cores the local Ray may use (default: all).")),
    ("ship_media", False, click.option(
        "--ship-media", is_flag=True,
        help="With --engine ray: workers read the media through this machine instead of at the same path on "
             "shared storage.")),
    ("readers", 2, click.option(
        "--readers", type=click.IntRange(1), default=2, show_default=True,
        help="With --ship-media: reader actors on this machine serving the files.")),
    ("actors", None, click.option(
        "--actors", type=click.IntRange(1), default=None,
        help="With --engine ray: embedding actors to start with (default: --actors-per-gpu per GPU, or one per "
             "two CPUs).")),
    ("max_actors", None, click.option(
        "--max-actors", type=click.IntRange(1), default=None,
        help="With --engine ray: the actor pool grows to this many while the cluster has room (an autoscaling "
             "cluster); default: --actors.")),
    ("actors_per_gpu", 1, click.option(
        "--actors-per-gpu", type=click.IntRange(1), default=1, show_default=True,
        help="With --engine ray: embedding actors sharing each GPU.")),
    ("gpus_per_actor", None, click.option(
        "--gpus-per-actor", type=click.FloatRange(min=0, min_open=True), default=None,
        help="With --engine ray: the GPU share each embedding actor holds (instead of 1/--actors-per-gpu); "
             "a cluster that adds GPU nodes on demand starts them for it.")),
    ("resources", None, click.option(
        "--resources", default=None, callback=_json_object("resource names and positive amounts", True),
        help="With --engine ray: custom resources each embedding actor asks for, as JSON ('{\"big-gpu\": 1}'), "
             "so actors run only on the nodes that have them.")),
    ("runtime_env", None, click.option(
        "--runtime-env", default=None, callback=_json_object("Ray's runtime_env fields", False),
        help="With --engine ray: Ray's runtime_env for the build's tasks and actors, as JSON or a JSON file's "
             "path (pip packages, env_vars, working_dir).")),
    ("ray_wait", 600.0, click.option(
        "--ray-wait", type=click.FloatRange(min=1), default=600.0, show_default=True,
        help="With --engine ray: seconds a build waits with no results (a lost node, no free CPU) before it "
             "stops, keeping what it committed; it says why it waits every minute.")),
]


def ray_options(command: Callable) -> Callable:
    """Adds every Ray option to ``command``."""
    for _, _, option in reversed(RAY_OPTIONS):
        command = option(command)
    return command


def cluster_of(engine: str, values: dict[str, Any]) -> "api.RayOptions | None":
    """The Ray options given, or None for a local build; a Ray option given to a local build is refused."""
    given = [name for name, default, _ in RAY_OPTIONS if values[name] != default]
    if engine != "ray":
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            one = len(given) == 1
            raise click.UsageError(f"{flags} {'goes' if one else 'go'} with --engine ray; add --engine ray, or leave "
                                   f"{'it' if one else 'them'} out for a build here")
        return None
    if values["readers"] != 2 and not values["ship_media"]:
        raise click.UsageError("--readers serves --ship-media; add it, or leave --readers out")
    return api.RayOptions(address=values["ray_address"], ship_media=values["ship_media"], actors=values["actors"],
                          actors_per_gpu=values["actors_per_gpu"], num_cpus=values["ray_cpus"],
                          wait=values["ray_wait"], max_actors=values["max_actors"],
                          gpus_per_actor=values["gpus_per_actor"], resources=values["resources"] or {},
                          runtime_env=values["runtime_env"], readers=values["readers"])
