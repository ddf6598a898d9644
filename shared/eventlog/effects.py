"""What a writer asks to run with its append, atomically (intake's reject reports and XACKs, matching's
reports): commands on keys of the same exchange, which only a Redis log can run."""

from __future__ import annotations

from typing import NamedTuple

from shared.resp import Command

__all__ = ["SEQ_PLACEHOLDER", "Effect"]


class Effect(NamedTuple):
    """A command on one key that a writer wants run atomically with its append, once the batch landed.

    `reports`: the batch's entry (1-based) whose seq completes it, 0 for none: the script puts that seq
    in place of the first NUL byte of each argument (SEQ_PLACEHOLDER)."""

    command: str
    key: str
    args: tuple[str | bytes | int, ...]
    reports: int = 0

    def as_command(self) -> Command:
        """The same command to send on its own (or in a MULTI)."""
        if self.reports:
            raise ValueError("an effect completed with an entry's seq runs only inside the append")
        return (self.command, self.key, *self.args)


SEQ_PLACEHOLDER = b"\x00"  # what the append script replaces with the reported entry's seq
