"""How the selected connectivity values shrink from 1 to 0 (``--decreasing``).

First letter: ``s`` decreases every update, ``e`` every epoch. Second letter: ``a`` arithmetic
(``c <- c - r``), ``g`` geometric (``c <- c * r``, reaching 1e-5 on the last tick). Values are computed
in closed form from the tick number, so a resumed run continues exactly where it stopped, and the last
tick of the period is clamped to exactly 0 (the original ran a hard-coded 1102 steps per epoch and did
not clamp), which makes the physical slicing that follows exact.
"""
from dataclasses import dataclass

SCHEDULES = ("sa", "sg", "ea", "eg")
GEOMETRIC_FLOOR = 1e-5


@dataclass(frozen=True)
class Schedule:
    kind: str
    steps_per_epoch: int
    epochs: int  # length of the shrinking period

    def __post_init__(self):
        if self.kind not in SCHEDULES:
            raise ValueError(f"--decreasing must be one of {', '.join(SCHEDULES)}; got {self.kind!r}")
        if self.steps_per_epoch < 1 or self.epochs < 1:
            raise ValueError("a pruning period needs at least one epoch of at least one update")

    @property
    def total_updates(self) -> int:
        return self.steps_per_epoch * self.epochs

    @property
    def ticks(self) -> int:
        return self.total_updates if self.kind[0] == "s" else self.epochs

    def tick_of(self, k: int) -> int:
        """Tick reached by the k-th update (0-based) of the period: update 0 already trains with the
        first decrease, and the last update of the period trains with c = 0."""
        return k + 1 if self.kind[0] == "s" else k // self.steps_per_epoch + 1

    def value(self, tick: int) -> float:
        n = self.ticks
        if tick >= n:
            return 0.0
        if tick <= 0:
            return 1.0
        if self.kind[1] == "a":
            return 1.0 - tick / n
        return GEOMETRIC_FLOOR ** (tick / n)

    def value_at_update(self, k: int) -> float:
        return self.value(self.tick_of(k))
