#!/usr/bin/env bash
# `make dist`: the xunjian wheel plus a wheelhouse of every runtime dependency, for a host without a package
# index (a hospital intranet). Installs there with:
#   pip install --no-index --find-links wheelhouse 'xunjian[oracle,odbc,postgres,mysql,dicom]'
#
# Wheels with compiled code are per Python version, CPU architecture and C library, so the wheelhouse is built
# for one target, named by these variables (defaults: this Python, this machine, glibc 2.28):
#   DIST_PYTHON_VERSION  3.11             the target's `python3 --version` (major.minor)
#   DIST_ARCH            x86_64 | aarch64 the target's `uname -m`
#   DIST_GLIBC           2.28             the oldest glibc among the targets (`ldd --version`); every wheel
#                                         chosen runs on it and on anything newer
#   DIST_EXTRAS          oracle,odbc,postgres,mysql,dicom   optional drivers to include
#   DIST_DIR             dist             where the wheel, the wheelhouse and the bundle go
# Only wheels are taken (never a source package to compile on the target); a dependency without a wheel for
# the target stops the build and pip names it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DIST_DIR=${DIST_DIR:-dist}
DIST_EXTRAS=${DIST_EXTRAS:-oracle,odbc,postgres,mysql,dicom}
DIST_PYTHON_VERSION=${DIST_PYTHON_VERSION:-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
DIST_ARCH=${DIST_ARCH:-$(uname -m)}
DIST_GLIBC=${DIST_GLIBC:-2.28}

die() { echo "dist: $*" >&2; exit 2; }
[[ $DIST_PYTHON_VERSION =~ ^3\.[0-9]+$ ]] || die "DIST_PYTHON_VERSION must look like 3.11, got '$DIST_PYTHON_VERSION'"
[[ $DIST_GLIBC =~ ^2\.([0-9]+)$ ]] || die "DIST_GLIBC must look like 2.28, got '$DIST_GLIBC'"
glibc_minor=${BASH_REMATCH[1]}
(( glibc_minor >= 17 )) || die "DIST_GLIBC below 2.17 (manylinux2014) is not supported by the dependencies"
[[ $DIST_ARCH =~ ^(x86_64|aarch64|ppc64le|s390x)$ ]] \
  || die "DIST_ARCH must be x86_64, aarch64, ppc64le or s390x, got '$DIST_ARCH'"
[[ $DIST_EXTRAS =~ ^[a-z0-9,]*$ ]] \
  || die "DIST_EXTRAS must be comma-separated extras such as oracle,postgres, got '$DIST_EXTRAS'"

# pip does not widen a manylinux tag to the older ones it implies, so every glibc from the floor down is named.
platforms=()
for ((m = glibc_minor; m >= 17; m--)); do platforms+=(--platform "manylinux_2_${m}_${DIST_ARCH}"); done
platforms+=(--platform "manylinux2014_${DIST_ARCH}")
if [ "$DIST_ARCH" = x86_64 ]; then
  for ((m = 16; m >= 5; m--)); do platforms+=(--platform "manylinux_2_${m}_${DIST_ARCH}"); done
  platforms+=(--platform "manylinux2010_${DIST_ARCH}" --platform "manylinux1_${DIST_ARCH}")
fi
pytag="cp${DIST_PYTHON_VERSION/./}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# Build from a copy of the tracked (and new, not ignored) files: the checkout gets no build/ or egg-info, and
# nothing local (.venv, data dirs, an old dist/) ends up in the wheel.
mkdir "$stage/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -T - -cf - | tar -xf - -C "$stage/src"
else
  tar --exclude=./.venv --exclude=./dist --exclude=./build --exclude=./.xunjian --exclude='*.egg-info' \
    --exclude=__pycache__ -cf - . | tar -xf - -C "$stage/src"
fi
echo "dist: building the xunjian wheel"
"$PYTHON" -m pip wheel -q --no-deps -w "$stage/wheel" "$stage/src"
wheel=$(ls "$stage"/wheel/xunjian-*.whl)
version=$(basename "$wheel" | cut -d- -f2)

wheelhouse="$DIST_DIR/wheelhouse"
rm -rf "$wheelhouse" && mkdir -p "$wheelhouse"
cp "$wheel" "$DIST_DIR/"
cp "$wheel" "$wheelhouse/"
echo "dist: collecting wheels for CPython $DIST_PYTHON_VERSION, $DIST_ARCH, glibc >= $DIST_GLIBC" \
  "(extras: ${DIST_EXTRAS:-none})"
"$PYTHON" -m pip download -q --only-binary=:all: --python-version "$DIST_PYTHON_VERSION" --implementation cp \
  "${platforms[@]}" -d "$wheelhouse" "$wheel${DIST_EXTRAS:+[$DIST_EXTRAS]}"
(cd "$wheelhouse" && sha256sum -- *.whl > SHA256SUMS)

# One file to carry across: the wheelhouse with the units, example configs, grant scripts and the install guide.
spec="xunjian${DIST_EXTRAS:+[$DIST_EXTRAS]}"
name="xunjian-$version-$pytag-manylinux_2_${glibc_minor}_$DIST_ARCH"
bundle="$stage/$name"
mkdir -p "$bundle/docs"
cp -r "$wheelhouse" "$bundle/wheelhouse"
cp -r "$stage/src/deploy" "$bundle/deploy"
cp "$stage/src/docs/"*.md "$bundle/docs/"
# The Grafana wall and the alert rules are files a hospital imports (Grafana provisioning, Prometheus rule_files).
mkdir -p "$bundle/dashboards"
for part in json provisioning rules previews prometheus.example.yml; do
  cp -r "$stage/src/dashboards/$part" "$bundle/dashboards/$part"
done
cat > "$bundle/INSTALL.txt" <<EOF
xunjian $version for CPython $DIST_PYTHON_VERSION on Linux $DIST_ARCH with glibc $DIST_GLIBC or newer.
Extras included: ${DIST_EXTRAS:-none}. The full guide is docs/deploy.md; the Grafana dashboards and
alert rules are in dashboards/ (docs/dashboards.md).

  (cd wheelhouse && sha256sum -c SHA256SUMS)
  python$DIST_PYTHON_VERSION -m venv /opt/xunjian
  /opt/xunjian/bin/pip install --no-index --find-links wheelhouse '$spec'
  /opt/xunjian/bin/xunjian --version
EOF
tar -czf "$DIST_DIR/$name.tar.gz" -C "$stage" "$name"
count=$(ls "$wheelhouse"/*.whl | wc -l)
echo "dist: $DIST_DIR/$(basename "$wheel"), $wheelhouse/ ($count wheels), $DIST_DIR/$name.tar.gz"
