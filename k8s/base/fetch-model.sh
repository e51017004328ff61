#!/bin/sh
# Init step of every TF Serving pod: copy the pinned model version from the model store into the shared
# volume and verify it before TF Serving may start. POSIX sh + busybox (rclone/rclone is alpine).
#
# Environment (from the tf-serving-model ConfigMap an overlay renders from model.yaml):
#   MODEL_NAME, MODEL_VERSION, MODEL_LAYOUT
#   MODEL_SOURCE     where the version lives: `:gcs:bucket/path/...`, `:s3:bucket/path/...` (rclone), or an
#                    absolute directory (a PersistentVolumeClaim mounted read-only; copied with cp)
#   MODEL_DIGEST     "sha256:<hex>" of the version's SHA256SUMS, pinned in model.yaml; empty when none is
#   MODEL_BASE_PATH  TF Serving's base_path; the version lands in $MODEL_BASE_PATH/$MODEL_VERSION
#
# Accepts the version only when: SHA256SUMS exists (the exporter and `make publish` write it last, so
# without it the upload is partial), its sha256 equals MODEL_DIGEST, every listed file matches, and no
# unlisted file is present. Anything else exits non-zero with one "fetch-model: ERROR:" line, so the pod
# stays in Init:Error / Init:CrashLoopBackOff and never serves unverified bytes.
set -eu

log() { printf 'fetch-model: %s\n' "$*" >&2; }
fail() {
    log "ERROR: $*"
    exit 1
}

for var in MODEL_NAME MODEL_VERSION MODEL_LAYOUT MODEL_SOURCE MODEL_BASE_PATH; do
    eval "value=\${$var:-}"
    [ -n "$value" ] || fail "$var is not set: the overlay's tf-serving-model ConfigMap is incomplete"
done
case "$MODEL_VERSION" in
    *[!0-9]* | 0*) fail "MODEL_VERSION must be a positive integer, got '$MODEL_VERSION'" ;;
esac

# Fail closed before fetching anything: without a pinned digest nothing can be verified.
if [ -z "${MODEL_DIGEST:-}" ]; then
    # The pin command is the same for the first version of a fresh repository and after a revert of it.
    fail "model.yaml pins no digest for $MODEL_LAYOUT (model.digests.$MODEL_LAYOUT is unset):" \
        "pin version $MODEL_VERSION with \`make publish VERSION=$MODEL_VERSION\` then" \
        "\`make bump VERSION=$MODEL_VERSION\` (docs/gitops.md, \"The first version\");" \
        "refusing to serve an unverified model"
fi
want=${MODEL_DIGEST#sha256:}
if [ "$want" = "$MODEL_DIGEST" ] || [ "${#want}" -ne 64 ] || [ -n "$(printf '%s' "$want" | tr -d '0-9a-f')" ]; then
    fail "MODEL_DIGEST must be sha256:<64 lowercase hex>, got '$MODEL_DIGEST'"
fi

dest="$MODEL_BASE_PATH/$MODEL_VERSION"
# Staged beside base_path, never inside it: TF Serving must not see a half-copied version.
staging="$MODEL_BASE_PATH.partial-$MODEL_VERSION"
work=$(mktemp -d "${TMPDIR:-/tmp}/fetch-model.XXXXXX")
trap 'rm -rf "$staging" "$work"' EXIT
rm -rf "$staging"
mkdir -p "$staging"

log "fetching $MODEL_NAME version $MODEL_VERSION ($MODEL_LAYOUT) from $MODEL_SOURCE"
case "$MODEL_SOURCE" in
    /*)
        [ -d "$MODEL_SOURCE" ] ||
            fail "$MODEL_SOURCE does not exist in the model store: version $MODEL_VERSION was never published" \
                "(run \`make publish VERSION=$MODEL_VERSION\`)"
        cp -R "$MODEL_SOURCE/." "$staging/" || fail "could not copy $MODEL_SOURCE (see cp's message above)"
        ;;
    *)
        # IRSA injects AWS_REGION; rclone's S3 backend otherwise assumes us-east-1.
        if [ -z "${RCLONE_S3_REGION:-}" ] && [ -n "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" ]; then
            RCLONE_S3_REGION=${AWS_REGION:-$AWS_DEFAULT_REGION}
            export RCLONE_S3_REGION
        fi
        rclone copy --fast-list --retries 5 --low-level-retries 10 --log-level INFO \
            "$MODEL_SOURCE" "$staging" || fail "could not copy $MODEL_SOURCE (see rclone's message above)"
        ;;
esac

sums="$staging/SHA256SUMS"
[ -f "$sums" ] ||
    fail "$MODEL_SOURCE has no SHA256SUMS: a partial or unpublished upload (SHA256SUMS is written last);" \
        "publish version $MODEL_VERSION again with \`make publish\`"

got=$(sha256sum "$sums" | cut -d' ' -f1)
[ "$got" = "$want" ] ||
    fail "digest mismatch for $MODEL_SOURCE: its SHA256SUMS is sha256:$got but model.yaml pins $MODEL_DIGEST" \
        "(model.digests.$MODEL_LAYOUT); the store holds other bytes than the ones reviewed"

# Every line is "<64 hex>  <relative path>" with no way out of the version directory.
grep -v -E '^[0-9a-f]{64}  [^/]' "$sums" >"$work/bad" || true
[ ! -s "$work/bad" ] || fail "SHA256SUMS has a malformed line: $(head -n 1 "$work/bad")"
sed 's/^[0-9a-f]\{64\}  //' "$sums" | sort >"$work/listed"
grep -q -x 'saved_model.pb' "$work/listed" || fail "SHA256SUMS of $MODEL_SOURCE lists no saved_model.pb: not a SavedModel"
if grep -E '(^|/)\.\.(/|$)' "$work/listed" >"$work/bad"; then
    fail "SHA256SUMS names a path outside the version: $(head -n 1 "$work/bad")"
fi

(cd "$staging" && find . ! -type f ! -type d) >"$work/odd"
[ ! -s "$work/odd" ] || fail "$MODEL_SOURCE holds something that is not a regular file: $(head -n 1 "$work/odd")"

if ! (cd "$staging" && sha256sum -c SHA256SUMS) >"$work/check" 2>&1; then
    grep -v ': OK$' "$work/check" >&2 || true
    fail "files of $MODEL_SOURCE do not match its SHA256SUMS (tampered or truncated upload)"
fi

(cd "$staging" && find . -type f | sed 's|^\./||' | grep -v -x 'SHA256SUMS' | sort) >"$work/found" || true
awk 'NR == FNR { listed[$0] = 1; next } !($0 in listed)' "$work/listed" "$work/found" >"$work/extra"
[ ! -s "$work/extra" ] ||
    fail "$MODEL_SOURCE holds files SHA256SUMS does not list: $(tr '\n' ' ' <"$work/extra" | sed 's/ $//')"

rm -rf "$dest"
mkdir -p "$MODEL_BASE_PATH"
mv "$staging" "$dest"
log "verified $MODEL_DIGEST ($(wc -l <"$work/listed" | tr -d ' ') files); TF Serving loads $dest"
