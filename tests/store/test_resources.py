"""The library of storage resources in the repository: round trips, status changes (an
approval records who and when), the missing flag (never dropped), delete, and a file
reopened keeps it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovmtui.errors import RepositoryError
from ovmtui.storage_model import Resource, ResourceKind, ResourceStatus
from ovmtui.store import Repository

ISO = Resource(
    ResourceKind.ISO,
    "p1",
    "/OVS/iso_pool/el5/el5.iso",
    "el5",
    ResourceStatus.PENDING,
    size_bytes=4096,
    registered_by="alice",
    registered_at=10.0,
)
TEMPLATE = Resource(
    ResourceKind.TEMPLATE,
    "p1",
    "/OVS/seed_pool/OVM_EL5 64",
    "OVM_EL5 64",
    ResourceStatus.IMPORTING,
    percent=12.5,
    source_url="ftp://repo/x.tgz",
    imported_by="bob",
    imported_at=11.0,
)


async def test_round_trip_status_and_missing_flag(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    async with await Repository.open(path) as repo:
        stored = await repo.upsert_resource(ISO)
        assert stored.id is not None
        assert stored == Resource(**{**_fields(ISO), "id": stored.id})
        await repo.upsert_resource(TEMPLATE)
        # The same path of another pool is another record.
        await repo.upsert_resource(Resource(**{**_fields(ISO), "pool": "p2"}))
        assert [r.name for r in await repo.resources("p1")] == ["el5", "OVM_EL5 64"]
        assert len(await repo.resources()) == 3

        approved = await repo.set_resource_status(
            "p1", ISO.path, ResourceStatus.APPROVED, by="carol", at=20.0
        )
        assert (approved.approved_by, approved.approved_at, approved.status_text) == (
            "carol",
            20.0,
            "approved",
        )
        failed = await repo.set_resource_status(
            "p1", TEMPLATE.path, ResourceStatus.FAILED, why="checksum mismatch"
        )
        assert failed.status_text == "failed: checksum mismatch" and failed.approved_by is None

        gone, back = await repo.flag_missing_resources("p1", [], at=30.0)
        assert [r.path for r in gone] == [ISO.path, TEMPLATE.path] and back == []
        again, _ = await repo.flag_missing_resources("p1", [], at=40.0)
        assert again == []  # flagged once, its time kept
        flagged = await repo.resource("p1", ISO.path)
        assert flagged is not None and flagged.missing_since == 30.0
        assert flagged.status_text == "approved (missing)"
        # Of the other pool, untouched.
        other = await repo.resource("p2", ISO.path)
        assert other is not None and other.missing_since is None

    async with await Repository.open(path) as repo:  # reopened: all kept
        assert len(await repo.resources("p1")) == 2
        _, back = await repo.flag_missing_resources("p1", [ISO.path], kinds=[ResourceKind.ISO])
        assert [r.path for r in back] == [ISO.path]
        template = await repo.resource("p1", TEMPLATE.path)
        assert template is not None and template.missing  # not a kind that was read
        assert await repo.delete_resource("p1", ISO.path)
        assert not await repo.delete_resource("p1", ISO.path)
        assert await repo.resource("p1", ISO.path) is None


async def test_an_import_under_way_is_never_flagged_missing(tmp_path: Path) -> None:
    async with await Repository.open(tmp_path / "r.sqlite") as repo:
        await repo.upsert_resource(TEMPLATE)
        gone, _ = await repo.flag_missing_resources("p1", [])
        assert gone == []


async def test_status_of_an_unknown_path_is_refused(tmp_path: Path) -> None:
    async with await Repository.open(tmp_path / "r.sqlite") as repo:
        with pytest.raises(RepositoryError, match="not in the library"):
            await repo.set_resource_status("p1", "/nope", ResourceStatus.APPROVED, by="x")


def _fields(resource: Resource) -> dict[str, object]:
    return {name: getattr(resource, name) for name in Resource.__dataclass_fields__}
