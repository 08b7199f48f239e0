"""Deploying a built repository beyond one machine: shared-memory sizing and Kubernetes / KServe manifests."""
