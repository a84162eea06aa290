"""Failure prediction across factories: the AI4I 2020 data split into member companies.

Each factory keeps its own machine log. Machine type L/M/H stands for three factories of
very different sizes (6000/2997/1003 rows); the largest is cut in two by product-ID range,
as two plants of one maker might be, so four factories federate. Failures are rare (3.4%
of rows, 2.1% to 5.2% by factory), which is why `kumiai bench industrial` reports PR-AUC,
balanced accuracy and recall at 90% precision rather than accuracy.

Built through the public services only, like the heart demo (`services.demo`).
"""

from datetime import timedelta
from importlib import resources
from pathlib import Path

import pandas as pd

from kumiai.domain.clock import utc_now
from kumiai.domain.errors import InvalidInput
from kumiai.services.agreements import request_data_use, sign_request
from kumiai.services.baselines import Site
from kumiai.services.consortium import init_consortium
from kumiai.services.datasets import register_dataset
from kumiai.services.demo import DemoConsortium
from kumiai.services.members import add_member
from kumiai.services.privacy import set_budget
from kumiai.services.projects import approve_project, propose_project
from kumiai.services.themes import add_theme

PROJECT = "failure-prediction"
PURPOSE = "Predict machine failures from process readings to plan maintenance"
RESEARCHER = "hongo-university"
# member -> (machine type, lowest product number, first product number beyond)
FACTORIES: dict[str, tuple[str, int, int | None]] = {
    "kawasaki-works": ("L", 0, 52_000),
    "yokkaichi-works": ("L", 52_000, None),
    "nagoya-plant": ("M", 0, None),
    "kitakyushu-mill": ("H", 0, None),
}
TARGET = "Target>0"
# UDI and Product ID name a row, Type is the factory itself, and Failure Type is the answer.
IGNORED = ("UDI", "Product ID", "Type", "Failure Type")
# The association's theme for factory data, when a consortium is built under one (the demo).
THEME = ("industrial", "Industrial AI", "Domain AI on machine logs that never leave a factory")


def ai4i_csv() -> Path:
    return Path(str(resources.files("kumiai") / "data" / "ai4i2020.csv"))


def factory_of(product_id: str) -> str:
    """The factory that made a product, from its ID ('L47181': type L, number 47181)."""
    kind, number = product_id[:1], int(product_id[1:])
    for member, (machine, low, beyond) in FACTORIES.items():
        if kind == machine and number >= low and (beyond is None or number < beyond):
            return member
    raise InvalidInput(f"product ID {product_id!r} belongs to no factory (types L, M, H)")


def export_factory_files(folder: Path) -> dict[str, Path]:
    """Each factory's own machine log: its rows of the AI4I file."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(ai4i_csv(), dtype=str, keep_default_na=False)
    owner = frame["Product ID"].map(factory_of)
    files = {}
    for member in FACTORIES:
        path = folder / f"{member}.csv"
        frame[owner == member].to_csv(path, index=False)
        files[member] = path
    return files


def build_factory_consortium(
    home: Path,
    epsilon_cap: float | None = None,
    lifetime_epsilon: float | None = None,
    *,
    ignore: tuple[str, ...] = IGNORED,
    themed: bool = False,
    job_kinds: str = "train,evaluate",
    min_cohort: int = 0,
) -> DemoConsortium:
    """A fresh consortium in `home`: four factories and a university; every steward signs.

    The demo (services.demo_industrial) keeps `Type` for its cross-tab, files the project
    under the industrial THEME and asks for `statistics` too, with a minimum cohort.
    """
    if home.exists() and any(home.iterdir()):
        raise InvalidInput(
            f"{home} is not empty; the factories are built in a fresh directory (remove it "
            "or pass another --dir)"
        )
    consortium = init_consortium(home)
    add_member(consortium, RESEARCHER, "university")
    sites: dict[str, Site] = {}
    for member, path in export_factory_files(home / "exports").items():
        add_member(consortium, member, "company")
        dataset = f"{member}-log"
        register_dataset(
            consortium, member=member, file=path, name=dataset, target=TARGET, ignore=ignore
        )
        sites[dataset] = Site(consortium.node(member), dataset)
    theme, title, description = THEME
    if themed:
        add_theme(consortium, name=theme, title=title, description=description, by=RESEARCHER)
    propose_project(
        consortium,
        name=PROJECT,
        title="Failure prediction across factories",
        purpose=PURPOSE,
        proposed_by=RESEARCHER,
        members=tuple(FACTORIES),
        theme=theme if themed else None,
    )
    approve_project(consortium, PROJECT, next(iter(FACTORIES)))
    for member in FACTORIES:
        request = request_data_use(
            consortium,
            project=PROJECT,
            dataset=f"{member}-log",
            requested_by=RESEARCHER,
            job_kinds=job_kinds,
            min_cohort=min_cohort,
            max_rounds=200,
            expires_at=utc_now() + timedelta(days=180),
            epsilon_cap=epsilon_cap,
        )
        if lifetime_epsilon is not None:
            set_budget(consortium, f"{member}-log", lifetime_epsilon)
        sign_request(consortium, request.id)
    return DemoConsortium(consortium, PROJECT, sites)
