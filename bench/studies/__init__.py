"""Results as studies: each committed table declared once (bench.studies.catalog), planned, checked and
rebuilt through the library (bench.studies.base)."""

from bench.studies.base import LOCK, Status, Study, check, plan, write_lock
from bench.studies.catalog import studies

__all__ = ["LOCK", "Status", "Study", "check", "plan", "studies", "write_lock"]
