"""Running it in production: versions side by side (`versions`, `deploy`), rollouts and rollbacks on a
live server (`rollout`), A/B variants (`variants`), and per-model metrics from Triton (`metrics`)."""
