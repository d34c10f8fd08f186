"""Alias of :mod:`habitat_fih.datasets.generate` (kept for old instructions).

    python -m habitat_fih.datasets.make_starter_data [--out data]
"""

from __future__ import annotations

from habitat_fih.datasets.generate import main

if __name__ == "__main__":
    main()
