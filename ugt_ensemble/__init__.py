"""ugt-ensemble: serve a UGT generative recommender on NVIDIA Triton as a three-step ensemble."""

__version__ = "0.1.0"
