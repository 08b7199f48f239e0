"""Catalogs: item_id -> (l1, l2, l3) semantic IDs, from a file or synthesised."""

from ugt_ensemble.catalog.catalog import COLUMNS, Catalog
from ugt_ensemble.catalog.files import load_catalog, save_catalog_csv
from ugt_ensemble.catalog.synthetic import synthetic_catalog

__all__ = ["COLUMNS", "Catalog", "load_catalog", "save_catalog_csv", "synthetic_catalog"]
