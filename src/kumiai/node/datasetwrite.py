"""A dataset's file and record put into a node home so that a failure leaves no trace."""

import os
import shutil
from pathlib import Path

from kumiai.node.home import LocalDataset, NodeHome


class DatasetWrite:
    """One registration or update of a dataset's file on its node.

    The constructor copies the steward's file beside its final place. `install`, called
    just before the caller's database transaction commits, swaps it in with the record and
    keeps the previous version aside; `undo` restores what was there; `finish` drops the
    old file once the commit has succeeded.
    """

    def __init__(self, home: NodeHome, name: str, source: Path) -> None:
        self.home = home
        self.name = name
        self.stored = home.data_dir / f"{name}{source.suffix.lower()}"
        self.staged = self.stored.with_name(f".{self.stored.name}.incoming")
        self.previous = home.dataset_or_none(name)
        self.backup: Path | None = None
        self.installed = False
        self.stored.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.staged)

    def install(self, record: LocalDataset) -> None:
        self.installed = True
        old = self.previous.file if self.previous is not None else None
        if old is not None and old.is_file():
            self.backup = old.with_name(f".{old.name}.previous")
            os.replace(old, self.backup)
        os.replace(self.staged, self.stored)
        self.home.save_dataset(record)

    def undo(self) -> None:
        self.staged.unlink(missing_ok=True)
        if not self.installed:
            return
        if self.previous is None:
            self.home.forget_dataset(self.name)
            self.stored.unlink(missing_ok=True)
            return
        self.home.save_dataset(self.previous)
        if self.stored != self.previous.file:
            self.stored.unlink(missing_ok=True)
        if self.backup is not None:
            os.replace(self.backup, self.previous.file)

    def finish(self) -> None:
        if self.backup is not None:
            self.backup.unlink(missing_ok=True)
