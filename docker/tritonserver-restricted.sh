#!/bin/sh
# tritonserver with the operator key's restriction flags, then the arguments given (the image's CMD):
# model-repository (load/unload), logging, trace and shared-memory demand the HTTP header
# ugt-operator-key (gRPC: triton-grpc-protocol-ugt-operator-key); inference, health, metadata and
# statistics stay open. The key: $UGT_OPERATOR_KEY, or the file named by $UGT_OPERATOR_KEY_FILE (a
# Docker or Kubernetes secret mounted as a file). Without one, tritonserver is not started.
set -eu
if [ -z "${UGT_OPERATOR_KEY:-}" ] && [ -n "${UGT_OPERATOR_KEY_FILE:-}" ]; then
    UGT_OPERATOR_KEY=$(cat "$UGT_OPERATOR_KEY_FILE")
fi
if [ -z "${UGT_OPERATOR_KEY:-}" ]; then
    echo "no operator key: run with -e UGT_OPERATOR_KEY=\"\$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\" or UGT_OPERATOR_KEY_FILE=/run/secrets/..." >&2
    exit 2
fi
case "$UGT_OPERATOR_KEY" in
    *[!A-Za-z0-9_~.+/-]*)
        echo "operator key: use 16-256 characters from A-Z a-z 0-9 _ ~ . + / -" >&2
        exit 2 ;;
esac
if [ "${#UGT_OPERATOR_KEY}" -lt 16 ] || [ "${#UGT_OPERATOR_KEY}" -gt 256 ]; then
    echo "operator key: use 16-256 characters from A-Z a-z 0-9 _ ~ . + / -" >&2
    exit 2
fi
apis=model-repository,logging,trace,shared-memory
# NVIDIA's image starts everything through its entrypoint (environment checks, banner); keep it.
entry=/opt/nvidia/nvidia_entrypoint.sh
[ -x "$entry" ] || entry=
exec $entry tritonserver \
    "--http-restricted-api=$apis:ugt-operator-key=$UGT_OPERATOR_KEY" \
    "--grpc-restricted-protocol=$apis:ugt-operator-key=$UGT_OPERATOR_KEY" "$@"
