#!/bin/bash
# Readiness probe of the tf-serving container: succeeds only while the pinned model version is AVAILABLE.
#
# TF Serving's REST status call (GET /v1/models/<name>/versions/<n>) answers 200 in every state, LOADING
# and END included, so an httpGet probe cannot tell; this reads the state. The tensorflow/serving image has
# bash but no curl or wget, hence bash's /dev/tcp. Environment: MODEL_NAME, MODEL_VERSION (the
# tf-serving-model ConfigMap), REST_PORT (default 8501, TF Serving's REST port).
set -u

port=${REST_PORT:-8501}
path="/v1/models/${MODEL_NAME:?}/versions/${MODEL_VERSION:?}"

if ! exec 3<>"/dev/tcp/127.0.0.1/$port"; then
    echo "model-ready: TF Serving does not accept connections on port $port"
    exit 1
fi
printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
# The whole response, up to the server closing the connection (Connection: close); -t bounds a silent
# server even where the kubelet's probe timeout is not enforced.
IFS= read -r -d '' -t 4 response <&3 || true
exec 3<&-

status_line=${response%%$'\r'*}
if [[ ! $status_line =~ ^HTTP/1\.[01]\ 200 ]]; then
    echo "model-ready: GET $path answered '${status_line:-nothing}'"
    exit 1
fi
if [[ ! $response =~ \"state\"[[:space:]]*:[[:space:]]*\"AVAILABLE\" ]]; then
    state=$(sed -n 's/.*"state"[[:space:]]*:[[:space:]]*"\([A-Z_]*\)".*/\1/p' <<<"$response" | head -n 1)
    echo "model-ready: $MODEL_NAME version $MODEL_VERSION is ${state:-in no known state}, not AVAILABLE"
    exit 1
fi
