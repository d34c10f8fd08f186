"""Small helpers shared across habitat_fih (no simulator or torch imports)."""

from habitat_fih.utils.atomic import atomic_write, atomic_write_bytes

__all__ = ["atomic_write", "atomic_write_bytes"]
