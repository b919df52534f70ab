#!/bin/sh
# Validate result declarations against PDF/A-3b with veraPDF (docs/result-pdf.md, "PDF/A").
#
#   tools/verapdf_check.sh result.pdf [more.pdf ...]   # validate these files
#   tools/verapdf_check.sh                             # build a small demo election's result.pdf and validate it
#
# Needs Java 17+ and Maven with access to Maven Central: CI has neither, so this is a maintainer's check,
# not a test. veraPDF's command-line validator is the fat jar org.verapdf.apps:greenfield-apps (main class
# org.verapdf.apps.GreenfieldCliWrapper); the jar is fetched once into $VERAPDF_DIR (default
# ~/.cache/tvote-verapdf), outside the repository, and checked against the SHA-256 pinned below.
# Exit status: 0 when every file is PDF/A-3b compliant, non-zero otherwise (veraPDF's own status).
set -eu

VERAPDF_VERSION=1.28.2
VERAPDF_SHA256=687d4d8bcfec48c9f7e931cf78ed061f1eeccfba55d4cdc000ba9b4d8aa46ce6
dir=${VERAPDF_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tvote-verapdf}
jar=$dir/greenfield-apps-$VERAPDF_VERSION.jar
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$jar" ]; then
    mkdir -p "$dir"
    if ! mvn -B -q dependency:copy -Dartifact="org.verapdf.apps:greenfield-apps:$VERAPDF_VERSION" \
        -DoutputDirectory="$dir" >"$dir/mvn.log" 2>&1; then
        cat "$dir/mvn.log" >&2
        exit 1
    fi
fi
echo "$VERAPDF_SHA256  $jar" | sha256sum -c --quiet -

if [ "$#" -eq 0 ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    "$repo/.venv/bin/tvote" demo --voters 20 --out "$out/demo" >/dev/null
    set -- "$out/demo/result.pdf"
fi

java -cp "$jar" org.verapdf.apps.GreenfieldCliWrapper --flavour 3b --format text --verbose "$@"
