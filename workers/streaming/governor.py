"""Render-time governor: scale the rendered (and encoded) size to hold the frame rate.

On a software renderer (llvmpipe) or an overloaded GPU the frame cost is mostly per pixel, so
the lever is resolution: the governor picks a scale from :data:`LEVELS` for the per-eye size of
the current quality rung. It steps down as soon as the measured frame cost (render, convert and
encode, wall clock) stays over the frame budget, straight to the level the pixel count predicts
will fit, and climbs back one level at a time once the predicted cost of the next level has had
headroom for ``up_after_s``. Full quality (scale 1) whenever the budget allows it. The first
frames after a change are not judged (keyframe, new targets), and a climb undone soon after
doubles the wait before the next one, so two levels never see-saw a keyframe every few seconds.

The scaled picture is encoded at its own size (so x264, the network and the client's decoder
all get the saving) and the client's video element scales it back up. Changes are rare and each
costs one keyframe. The current scale travels in the frame metadata and the stats report so
that a reduced picture is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.streaming.frames import STAMP_WIDTH

LEVELS: tuple[float, ...] = (1.0, 0.875, 0.75, 0.625, 0.5, 0.4)
ALIGN = 8  # per-eye width and height stay multiples of 8 (x264, chroma, the frame-id stamp)
MIN_EYE_WIDTH = STAMP_WIDTH // 2  # the frame-id stamp spans both eyes of the smallest picture


@dataclass(frozen=True, slots=True)
class GovernorChange:
    old: float
    new: float
    cost_ms: float  # the smoothed frame cost that triggered it
    budget_ms: float


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The stereo (side-by-side) size at ``scale``, aligned; ``size`` is the full stereo size."""
    width, height = size
    # Never below the stamp's width: small rungs (tests) keep their size.
    scale = max(scale, min(1.0, MIN_EYE_WIDTH / max(width / 2, 1.0)))
    if scale >= 1.0:
        return size
    eye = max(ALIGN, int(width / 2 * scale) // ALIGN * ALIGN)
    rows = max(ALIGN, int(height * scale) // ALIGN * ALIGN)
    return 2 * eye, rows


class RenderGovernor:
    """Pure logic with injected time, fed one frame cost at a time."""

    def __init__(
        self,
        *,
        fps: float,
        enabled: bool = True,
        budget_fraction: float = 0.85,
        min_scale: float = LEVELS[-1],
        down_after_frames: int = 6,
        up_after_s: float = 2.0,
        up_headroom: float = 0.8,
        smoothing: float = 0.2,
        settle_frames: int = 8,
        max_up_after_s: float = 32.0,
    ) -> None:
        self.enabled = enabled
        self.levels = tuple(level for level in LEVELS if level >= min_scale) or (1.0,)
        self.down_after_frames = down_after_frames
        self.up_after_s = up_after_s
        # The first frames at a new size pay for the keyframe and new render targets: they
        # say nothing about the steady cost, and judging by them undid every climb at once.
        self.settle_frames = settle_frames
        self._settle = 0
        # A climb undone within a few seconds doubles the wait before the next one (up to
        # max_up_after_s): each change costs a keyframe, so no see-saw between two levels.
        self.max_up_after_s = max_up_after_s
        self._up_wait_s = up_after_s
        self._climbed_at: float | None = None
        self.up_headroom = up_headroom
        self.smoothing = smoothing
        self.budget_fraction = budget_fraction
        self.budget_ms = 1000.0 / fps * budget_fraction
        self.index = 0
        self.cost_ms: float | None = None  # EWMA of the frame cost at the current level
        self._over = 0
        self._since: float | None = None  # when the current level started
        self.changes = 0

    @property
    def scale(self) -> float:
        return self.levels[self.index]

    def set_fps(self, fps: float) -> None:
        self.budget_ms = 1000.0 / max(fps, 1.0) * self.budget_fraction

    def reset(self) -> None:
        """Forget the measured cost (a new rung or scene): measure again from here."""
        self.cost_ms = None
        self._over = 0
        self._since = None
        self._settle = 0
        self._up_wait_s = self.up_after_s
        self._climbed_at = None

    def _predicted(self, level: int) -> float:
        assert self.cost_ms is not None
        # Cost scales with the pixel count: (scale ratio) squared.
        return self.cost_ms * (self.levels[level] / self.scale) ** 2

    def _move(self, level: int, now: float) -> GovernorChange:
        change = GovernorChange(
            self.scale, self.levels[level], round(self.cost_ms or 0.0, 2), self.budget_ms
        )
        if level < self.index:  # up
            self._climbed_at = now
        elif self._climbed_at is not None:  # undone before observe() saw it hold
            self._up_wait_s = min(2 * self._up_wait_s, self.max_up_after_s)
            self._climbed_at = None
        self.index = level
        self.changes += 1
        self.cost_ms = None
        self._over = 0
        self._since = now
        self._settle = self.settle_frames
        return change

    def observe(self, cost_ms: float, now: float) -> GovernorChange | None:
        """One frame's cost in ms at the current scale; returns a change of scale, if any."""
        if not self.enabled or cost_ms <= 0:
            return None
        if self._since is None:
            self._since = now
        if self._settle > 0:
            self._settle -= 1
            return None
        if self._climbed_at is not None and now - self._climbed_at >= 2 * self._up_wait_s:
            self._up_wait_s, self._climbed_at = self.up_after_s, None  # the climb held
        previous = self.cost_ms
        self.cost_ms = (
            cost_ms if previous is None else previous + self.smoothing * (cost_ms - previous)
        )
        if self.cost_ms > self.budget_ms:
            self._over += 1
        else:
            self._over = 0
        last = len(self.levels) - 1
        # Far over budget (a heavy scene, a higher rung) is clear after two frames: waiting
        # for six of them would be seconds of a frozen picture.
        far_over = self._over >= 2 and cost_ms > 3 * self.budget_ms
        if (self._over >= self.down_after_frames or far_over) and self.index < last:
            target = self.index + 1
            while target < last and self._predicted(target) > self.budget_ms:
                target += 1
            return self._move(target, now)
        if (
            self.index > 0
            and now - self._since >= self._up_wait_s
            and self._predicted(self.index - 1) <= self.budget_ms * self.up_headroom
        ):
            return self._move(self.index - 1, now)
        return None
