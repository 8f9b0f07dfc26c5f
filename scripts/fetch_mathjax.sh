#!/usr/bin/env bash
# Copy the MathJax 3 files the book needs from the npm registry into _assets/mathjax, so the
# built HTML renders math without a network connection.
set -euo pipefail
version=3.2.2
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/_assets/mathjax"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack -s "mathjax@$version" >/dev/null && tar xzf "mathjax-$version.tgz")
src="$work/package/es5"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/output/chtml" "$dest.tmp/input/tex"
cp "$src/tex-mml-chtml.js" "$dest.tmp/"
cp -r "$src/output/chtml/fonts" "$dest.tmp/output/chtml/"
cp -r "$src/input/tex/extensions" "$dest.tmp/input/tex/"
cp -r "$src/ui" "$src/a11y" "$src/sre" "$dest.tmp/"
rm -rf "$dest" && mv "$dest.tmp" "$dest"
echo "MathJax $version copied to $dest"
