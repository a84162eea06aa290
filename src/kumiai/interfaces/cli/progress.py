"""A Rich progress bar per round, fed by the training service."""

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kumiai.services.recorder import RoundReport


class RichTrainingProgress:
    def __init__(self, console: Console, rounds: int, label: str = "training") -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.bar.add_task(label, total=rounds, status="starting Flower…")

    def __enter__(self) -> "RichTrainingProgress":
        self.bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.bar.stop()

    def admitted(self, job_id: str, sites: list[str], refused: dict[str, str]) -> None:
        self.console.print(
            f"Job [bold]{job_id}[/]: {len(sites)} site(s) admitted the job: " + ", ".join(sites)
        )
        for dataset, reason in refused.items():
            self.console.print(f"  [yellow]refused[/] {escape(dataset)}: {escape(reason)}")
        self.bar.update(self.task, status="round 1…")

    def refused(self, dataset: str, reason: str, server_round: int) -> None:
        self.console.print(f"  [yellow]left[/] {escape(dataset)}: {escape(reason)}")

    def round_done(self, report: RoundReport) -> None:
        acc, auc = report.overall.get("accuracy"), report.overall.get("auc")
        status = f"acc {acc:.3f}" if isinstance(acc, float) else ""
        status += f"  auc {auc:.3f}" if isinstance(auc, float) else ""
        self.bar.update(
            self.task, completed=report.round, status=f"{status}  {report.seconds:.2f}s/round"
        )
