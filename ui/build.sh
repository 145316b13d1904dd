#!/bin/sh
# build.sh OUT - the /ui/ app's files as rfm-serve serves them (docs/ui.md).
# Every script and style sheet of ui/ and ECharts (node_modules, `make deps`)
# is copied as NAME.HASH.EXT (the first 10 hex digits of its sha256), so a
# browser may keep it for a year; index.html names them through {{NAME}}
# placeholders and an import map (<!--IMPORTMAP-->) that sends each module's
# plain "./NAME.js" imports to its hashed file. Text files get a gzip -9
# twin (NAME.gz, no time stamp inside: the same input gives the same bytes).
# ECharts' LICENSE and NOTICE go beside it. OUT is replaced whole.
set -eu
out=$1
src=$(dirname "$0")
ech=node_modules/echarts
[ -f $ech/dist/echarts.min.js ] || { echo "ui/build.sh: $ech is missing: run make deps (npm ci)" >&2; exit 1; }
tmp=$out.tmp-$$
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
hashed() { # FILE NAME-BEFORE-HASH EXT: copy into tmp, print the new name
    h=$(sha256sum "$1" | cut -c1-10)
    cp "$1" "$tmp/$2.$h$3"
    echo "$2.$h$3"
}
sed_args=""
map=""
for f in "$src"/*.js "$src"/*.css; do
    b=$(basename "$f")
    ext=".${b##*.}"
    n=$(hashed "$f" "${b%.*}" "$ext")
    sed_args="$sed_args -e s|{{$b}}|$n|g"
    [ "$ext" = .js ] && map="$map${map:+,}\"./$b\":\"./$n\""
done
n=$(hashed $ech/dist/echarts.min.js echarts .min.js)
sed_args="$sed_args -e s|{{echarts.min.js}}|$n|g"
cp $ech/LICENSE "$tmp/echarts-LICENSE.txt"
cp $ech/NOTICE "$tmp/echarts-NOTICE.txt"
# shellcheck disable=SC2086
sed $sed_args -e "s|<!--IMPORTMAP-->|<script type=\"importmap\">{\"imports\":{$map}}</script>|" \
    "$src/index.html" >"$tmp/index.html"
if grep -q '{{' "$tmp/index.html"; then
    echo "ui/build.sh: index.html names a file ui/ does not have: $(grep -o '{{[^}]*}}' "$tmp/index.html" | head -1)" >&2
    exit 1
fi
for f in "$tmp"/*; do
    gzip -9 -n -k "$f"
done
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
