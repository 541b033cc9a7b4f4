"""Settings of donor-context hallucination (``hallucinate --method donor``), checked on creation."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from facefill.errors import ConfigError


@dataclass(frozen=True)
class DonorSettings:
    """How donors are chosen (:mod:`facefill.donor.select`) and fitted (:mod:`facefill.donor.composite`).

    ``variants``: outputs per face, each from a different donor. ``seed``: makes the choice of
    variants after the first reproducible. ``identity``, ``shape``, ``pose``, ``skin``,
    ``padding``, ``silhouette``: weights of the donor cost terms; ``consensus``: how many of the
    cheapest donors define the outline the silhouette term compares with. ``duplicate``: descriptor distance under which a
    donor counts as the query itself. ``pool``: how many of the cheapest donors variants are drawn
    from; ``diversity``: how strongly variants avoid looking like each other; ``anchor``: how
    strongly variants stay close (descriptor distance) to the best donor. ``band``: width in
    pixels of the seam correction outside the face; ``reach``: how far (pixels) from the face the
    skin colour is carried over to the donor's skin (neck, ears, forehead). Both are pixels of a
    128 px crop: the fit multiplies them by S / 128 (20 and 48 px at 256).

    Gender and age (:func:`facefill.donor.select.gender_age_cost`): ``gender_margin``: a query
    with ``p_male`` in ``[margin, 1 - margin]`` is unsure (no gender filter; 0.5 turns the
    filter off); a sure query never gets a donor of the other gender, and ``gender`` weighs how
    much less sure the donor is; ``age``: cost per 10 years of age difference; ``age_band``:
    donors further apart in years are not chosen while any donor of the query's gender is closer.

    The user's say: ``exclude``: bank names never chosen (``--exclude-donors``); ``pin``:
    ``(input name, bank name)`` pairs, the donor of that input's first output (``--pin-donor``;
    input ``"*"``: every input)."""

    variants: int = 1
    seed: int = 0
    identity: float = 1.0
    shape: float = 0.02
    pose: float = 1.0
    skin: float = 0.5
    padding: float = 1.5  # 0.5 before the share counted baked streaks: docs/donor.md, "Padding in the choice"
    silhouette: float = 2.0
    consensus: int = 5
    duplicate: float = 0.25
    pool: int = 24
    diversity: float = 1.0
    anchor: float = 1.0
    band: int = 10
    reach: float = 24.0
    cover: float = 4.5
    gender_margin: float = 0.2
    gender: float = 1.0
    age: float = 0.1
    age_band: float = 20.0
    exclude: tuple[str, ...] = ()
    pin: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"donor setting {f.name}={v}: must be a finite number >= 0")
        if not 1 <= self.variants <= 64:
            raise ConfigError(f"--variants {self.variants}: must be between 1 and 64")
        if self.pool < 1 or self.consensus < 1 or self.band < 1 or self.band > 32:
            raise ConfigError("donor settings: pool and consensus must be >= 1, band between 1 and 32 pixels")
        if self.gender_margin > 0.5:
            raise ConfigError(f"donor setting gender_margin={self.gender_margin}: must be between 0 and 0.5")

    def pinned(self, name: str) -> str | None:
        """The bank name pinned for the input ``name`` (relative to the input folder), or None."""
        pins = dict(self.pin)
        return pins.get(name, pins.get("*"))
