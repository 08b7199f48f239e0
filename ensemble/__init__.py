"""This folder is a Triton model repository: `python -m ugt_ensemble build` adds the configs, the model
files and the catalog indices beside the committed `model.py` of each Python-backend step. The file lets
the ugt-ensemble package ship those sources (Triton reads only the model folders)."""
